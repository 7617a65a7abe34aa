//! Authoritative DNS front, UDP and TCP: wire request → zones from `records` → wire answer.
//!
//! Built on hickory-proto's message types (re-exported by hickory-server). The transports are
//! our own: hickory-server's generic request path reached 0.42× Knot's UDP rate on this
//! hardware, so positive answers are encoded once per (re)load and UDP queries are answered by
//! patching ID, flags and the question's case (see `wire`). Everything else (negative answers,
//! EDNS versions, AXFR, malformed packets) goes through `Authority::respond`.

mod authority;
mod notify;
mod state;
mod tcp;
mod udp;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use tracing::info;

use crate::settings::Settings;
use authority::Authority;

/// A running DNS server.
pub struct DnsServer {
    state: Arc<ArcSwap<Authority>>,
    stop: Arc<AtomicBool>,
    udp_threads: Vec<JoinHandle<()>>,
    tcp_tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The addresses actually bound (port 0 resolved).
    pub local_addrs: Vec<SocketAddr>,
}

impl DnsServer {
    /// Bind every address (UDP and TCP) and answer for the zones of `settings`.
    pub async fn start(addrs: &[SocketAddr], settings: &Arc<Settings>) -> anyhow::Result<DnsServer> {
        let s = settings.clone();
        let saved = state::load(settings.server.state_dir.as_deref());
        let auth = tokio::task::spawn_blocking(move || Authority::build(&s, &saved)).await?;
        state::save(settings.server.state_dir.as_deref(), &auth.served());
        info!(zones = auth.zones().count(), "DNS zones loaded");
        let state = Arc::new(ArcSwap::from_pointee(auth));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
        let mut server = DnsServer {
            state,
            stop,
            udp_threads: Vec::new(),
            tcp_tasks: Vec::new(),
            local_addrs: Vec::new(),
        };
        for addr in addrs {
            let (bound, handles) = udp::spawn(*addr, threads, server.state.clone(), server.stop.clone())?;
            server.udp_threads.extend(handles);
            // TCP on the same port as UDP (matters when the port was 0).
            let listener = crate::listen::tcp(bound, "DNS")?;
            server
                .tcp_tasks
                .push(tokio::spawn(tcp::serve(listener, server.state.clone())));
            info!(addr = %bound, "DNS listening on UDP and TCP");
            server.local_addrs.push(bound);
        }
        Ok(server)
    }

    /// Swap in the zones of new settings and NOTIFY the secondaries of zones whose serial moved.
    pub async fn reload(&self, settings: &Arc<Settings>) {
        let old = self.state.load_full();
        let s = settings.clone();
        let prev = old.served();
        let Ok(new) = tokio::task::spawn_blocking(move || Authority::build(&s, &prev)).await else {
            return;
        };
        state::save(settings.server.state_dir.as_deref(), &new.served());
        let changed: Vec<_> = new
            .zones()
            .filter(|z| old.zone(&z.origin).is_none_or(|o| o.serial != z.serial))
            .cloned()
            .collect();
        info!(
            zones = new.zones().count(),
            changed = changed.len(),
            "DNS zones reloaded"
        );
        self.state.store(Arc::new(new));
        for zone in changed {
            tokio::spawn(notify::send(zone));
        }
    }

    /// Stop answering.
    pub async fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in &self.tcp_tasks {
            t.abort();
        }
        let threads = self.udp_threads;
        let _ = tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join()))).await;
    }
}
