//! UDP transport: one blocking thread per core and address on SO_REUSEPORT sockets, so the
//! kernel spreads queries and no async machinery sits on the hot path.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, Socket, Type};
use tracing::debug;

use super::answer::{Question, udp_limit};
use super::authority::{Authority, Reply, Transport};
use super::wire::{self, question_name_end};
use crate::metrics::{METRICS, qtype_of};

/// Bind `threads` sockets to `addr` and start one answering thread per socket.
pub(crate) fn spawn(
    addr: SocketAddr,
    threads: usize,
    state: Arc<ArcSwap<Authority>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(SocketAddr, Vec<JoinHandle<()>>)> {
    let first = bind(addr)?;
    let bound = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..threads {
        sockets.push(bind(bound)?);
    }
    // One limiter for all threads of an address: SO_REUSEPORT hashes a client's flows over the
    // threads, so per-thread buckets would give a client `rate / threads` or `rate × threads`.
    let limiter = Arc::new(std::sync::Mutex::new(RateLimiter::default()));
    let handles = sockets
        .into_iter()
        .enumerate()
        .map(|(i, sock)| {
            let limiter = limiter.clone();
            let state = state.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("dns-udp-{i}"))
                .spawn(move || serve(&sock, &state, &stop, &limiter))
                .expect("spawn a thread")
        })
        .collect();
    Ok((bound, handles))
}

fn bind(addr: SocketAddr) -> anyhow::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_reuse_port(true)?;
    sock.bind(&addr.into())
        .with_context(|| format!("failed to bind UDP {addr}"))?;
    let sock: UdpSocket = sock.into();
    // Wake up now and then to notice shutdown.
    sock.set_read_timeout(Some(Duration::from_millis(250)))?;
    Ok(sock)
}

fn serve(sock: &UdpSocket, state: &ArcSwap<Authority>, stop: &AtomicBool, limiter: &std::sync::Mutex<RateLimiter>) {
    let mut buf = [0u8; 4096];
    let mut out = Vec::with_capacity(1500);
    while !stop.load(Ordering::Relaxed) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => {
                debug!(error = %e, "UDP receive error");
                continue;
            }
        };
        let pkt = &buf[..n];
        let auth = state.load();
        let limit = auth.rate_limit;
        // Over the limit: Some(slip).
        let limited = (limit > 0)
            .then(|| {
                let mut l = limiter.lock().unwrap_or_else(|e| e.into_inner());
                (!l.allow(peer.ip(), limit as f32)).then(|| l.slip())
            })
            .flatten();
        if let Some(slip) = limited {
            METRICS.dns_rate_limited();
            // Slip: every other limited answer is an empty TC=1 reply, so real clients retry
            // over TCP (which is not limited) while a spoofed victim gets little.
            if slip && let Some(tc) = truncated(pkt) {
                let _ = sock.send_to(&tc, peer);
            }
            continue;
        }
        let sent = match wire::plain(pkt) {
            Some(p) if !Question::is_transfer(p.qtype) => {
                auth.answer(&Question::plain(pkt, &p), udp_limit(p.edns), &mut out);
                METRICS.dns(p.qtype, out[3] & 0x0f);
                sock.send_to(&out, peer)
            }
            _ => match auth.respond(pkt, Transport::Udp, peer.ip()) {
                Reply::Message(bytes) => {
                    METRICS.dns(
                        qtype_of(pkt, question_name_end(pkt)),
                        bytes.get(3).map_or(0, |b| b & 0x0f),
                    );
                    sock.send_to(&bytes, peer)
                }
                Reply::Transfer(_) | Reply::Drop => continue,
            },
        };
        if let Err(e) = sent {
            debug!(%peer, error = %e, "UDP send error");
        }
    }
}

/// An empty answer with TC set: header and question of the query.
fn truncated(pkt: &[u8]) -> Option<Vec<u8>> {
    let end = question_name_end(pkt)? + 4;
    let mut r = pkt.get(..end)?.to_vec();
    r[2] = (r[2] & 0x79) | 0x80 | 0x02; // QR, opcode and RD kept, TC
    r[3] = 0;
    r[4..12].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    Some(r)
}

/// Token buckets per client network (/24 for IPv4, /56 for IPv6), one table per thread.
#[derive(Default)]
struct RateLimiter {
    buckets: std::collections::HashMap<u64, (f32, std::time::Instant)>,
    dropped: u64,
}

impl RateLimiter {
    fn allow(&mut self, ip: std::net::IpAddr, rate: f32) -> bool {
        let key = match ip {
            std::net::IpAddr::V4(v4) => u64::from(u32::from(v4) >> 8),
            std::net::IpAddr::V6(v6) => (1 << 63) | (u128::from(v6) >> 72) as u64,
        };
        if self.buckets.len() > 100_000 {
            self.buckets.clear(); // bounded memory under a spoofed flood
        }
        let now = std::time::Instant::now();
        let (tokens, last) = self.buckets.entry(key).or_insert((rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f32() * rate).min(rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn slip(&mut self) -> bool {
        self.dropped += 1;
        self.dropped % 2 == 1
    }
}
