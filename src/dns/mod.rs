//! Authoritative DNS front, UDP and TCP: wire request → zones from `records` → wire answer.
//!
//! Built on hickory-proto's message types (re-exported by hickory-server) where a message is
//! rare (errors, transfers, NOTIFY). The hot path is our own: hickory-server's generic request
//! path reached 0.42× Knot's UDP rate on this hardware. `zone` encodes every answer once, with
//! names under the mail domain as pointers into the question, so one provider's answers are
//! shared by all its domains; `answer` writes header + question + those bytes; `authority`
//! indexes the names and builds zones on demand; `transfer` answers AXFR from `records`.
//!
//! This file holds `DnsServer` (binding, start, reload, shutdown); `tasks` its background work
//! (warm-up, key making, re-signing, rollover and ACME watchers); `rollover` and `signer` the
//! command line's DNSSEC work; `fuzz_core` the socket-less core the fuzz targets drive.

mod answer;
mod authority;
mod catalog;
mod dnssec;
mod encode;
mod epochs;
mod fuzz_core;
mod keystore;
mod notify;
mod parent;
mod rollover;
mod rolls;
mod signed;
mod signer;
mod state;
mod tasks;
mod tcp;
mod transfer;
mod tsig;
mod udp;
mod wire;
mod zone;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use tracing::info;

use crate::settings::Settings;
use authority::{Authority, Shared};
use rollover::record_zsk_since;
use tasks::{acme_challenges, install, make_keys, resign, warm_up, watch_rolls};

pub use parent::server_addr;
pub use rollover::{Outcome, ParentCheck, ds_records, make_keys_for, retire, roll};
pub use signer::{SIGNED_MARK, ZoneSigner};

pub(crate) use fuzz_core::Core;

/// A running DNS server.
pub struct DnsServer {
    state: Arc<ArcSwap<Authority>>,
    /// Held while a new snapshot is made from the current one (a reload, re-signing), so
    /// that neither replaces the other's.
    swapping: Arc<tokio::sync::Mutex<()>>,
    stop: Arc<AtomicBool>,
    resign_task: Option<tokio::task::JoinHandle<()>>,
    rolls_task: Option<tokio::task::JoinHandle<()>>,
    acme_task: Option<tokio::task::JoinHandle<()>>,
    udp_threads: Vec<JoinHandle<()>>,
    tcp_tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The addresses actually bound (port 0 resolved).
    pub local_addrs: Vec<SocketAddr>,
}

impl DnsServer {
    /// Bind every address (UDP and TCP) and answer for the zones of `settings`. Zones are built
    /// on their first query and by a background warm-up that starts here.
    pub async fn start(addrs: &[SocketAddr], settings: &Arc<Settings>) -> anyhow::Result<DnsServer> {
        let previous = state::load(settings.server.state_dir.as_deref());
        record_zsk_since(settings);
        let shared = Arc::new(Shared {
            previous,
            ..Shared::default()
        });
        let s = settings.clone();
        let pacc = crate::pacc::Rollover::load(settings.server.state_dir.as_deref());
        let auth = tokio::task::spawn_blocking(move || Authority::new(s, shared, &pacc)).await?;
        auth.pacc().save(settings.server.state_dir.as_deref());
        info!(
            names = auth.counts().0,
            dnssec_cache_zones = auth.shared().views.capacity(),
            "DNS names indexed"
        );
        let state = Arc::new(ArcSwap::from_pointee(auth));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
        let mut server = DnsServer {
            state,
            swapping: Arc::default(),
            stop,
            resign_task: None,
            rolls_task: None,
            acme_task: None,
            udp_threads: Vec::new(),
            tcp_tasks: Vec::new(),
            local_addrs: Vec::new(),
        };
        for addr in addrs {
            // UDP and TCP on one port. For port 0, a UDP socket without SO_REUSEPORT (so it can
            // share with no one) finds a port free for UDP; it holds the port until TCP has it too
            // and is then the socket served.
            let mut tries = if addr.port() == 0 { 20 } else { 1 };
            let (listener, bound, handles) = loop {
                tries -= 1;
                let attempt = (|| {
                    let (at, udp_at) = if addr.port() == 0 {
                        let sock = udp::bind_picked(*addr)?;
                        (sock.local_addr()?, udp::Udp::Picked(sock))
                    } else {
                        (*addr, udp::Udp::At(*addr))
                    };
                    let listener = crate::listen::tcp(at, "DNS")?;
                    let (bound, handles) = udp::spawn(udp_at, threads, server.state.clone(), server.stop.clone())?;
                    anyhow::Ok((listener, bound, handles))
                })();
                match attempt {
                    Ok(done) => break done,
                    Err(e) if tries == 0 => return Err(e),
                    Err(_) => continue,
                }
            };
            server.udp_threads.extend(handles);
            server
                .tcp_tasks
                .push(tokio::spawn(tcp::serve(listener, server.state.clone())));
            info!(addr = %bound, "DNS listening on UDP and TCP");
            server.local_addrs.push(bound);
        }
        warm_up(&server.state, &server.stop);
        make_keys(&server.state, &server.stop);
        server.resign_task = Some(tokio::spawn(resign(
            server.state.clone(),
            server.swapping.clone(),
            server.stop.clone(),
        )));
        server.rolls_task = Some(tokio::spawn(watch_rolls(
            server.state.clone(),
            server.swapping.clone(),
            server.stop.clone(),
        )));
        server.acme_task = Some(tokio::spawn(acme_challenges(
            server.state.clone(),
            server.swapping.clone(),
            server.stop.clone(),
        )));
        Ok(server)
    }

    /// Swap in the zones of new settings and NOTIFY the secondaries of zones whose serial moved.
    /// Domains whose settings did not change keep their zones as they are.
    pub async fn reload(&self, settings: &Arc<Settings>) {
        let _one_at_a_time = self.swapping.lock().await;
        let started = std::time::Instant::now();
        let old = self.state.load_full();
        let s = settings.clone();
        let recorded = settings.clone();
        let _ = tokio::task::spawn_blocking(move || record_zsk_since(&recorded)).await;
        let Ok((new, changed)) = tokio::task::spawn_blocking(move || old.reload(s)).await else {
            return;
        };
        info!(
            names = new.counts().0,
            changed = changed.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "DNS zones reloaded"
        );
        install(&self.state, &self.stop, new, changed).await;
    }

    /// Stop answering.
    pub async fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self
            .tcp_tasks
            .iter()
            .chain(&self.resign_task)
            .chain(&self.rolls_task)
            .chain(&self.acme_task)
        {
            t.abort();
        }
        let threads = self.udp_threads;
        let _ = tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join()))).await;
    }
}
