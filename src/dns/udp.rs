//! UDP transport: one blocking thread per core and address on SO_REUSEPORT sockets, so the
//! kernel spreads queries (a port the kernel picks is one socket the threads share) and no async
//! machinery sits on the hot path; queries and answers move in batches (`recvmmsg`/`sendmmsg`).

use std::io::{IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use socket2::{Domain, Protocol, Socket, Type};
use tracing::debug;

use super::answer::{Question, udp_limit};
use super::authority::{Authority, Reply, Transport};
use super::wire::{self, question_name_end};
use crate::metrics::{METRICS, qtype_of};

/// Where the UDP threads read.
pub(crate) enum Udp {
    /// A configured port (53): one SO_REUSEPORT socket per thread, so the kernel spreads queries.
    At(SocketAddr),
    /// A socket already on a port the kernel picked (`:0`, as tests ask; see [`bind_picked`]),
    /// which every thread reads.
    Picked(UdpSocket),
}

/// A socket on a port the kernel picks, without SO_REUSEPORT. With SO_REUSEPORT on a port from
/// the ephemeral range, the kernel may give that same port to another program's client socket
/// that sets SO_REUSEPORT too (dig does), if it runs as the same user; such a client, connected
/// to us, then receives its own queries (dig: "query response not set"). A fixed port (53) is
/// never handed out that way.
pub(crate) fn bind_picked(addr: SocketAddr) -> anyhow::Result<UdpSocket> {
    bind(addr, false)
}

/// Start one answering thread per socket: `threads` of them.
pub(crate) fn spawn(
    at: Udp,
    threads: usize,
    state: Arc<ArcSwap<Authority>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(SocketAddr, Vec<JoinHandle<()>>)> {
    let (first, shared) = match at {
        Udp::At(addr) => (bind(addr, true)?, false),
        Udp::Picked(sock) => (sock, true),
    };
    let bound = first.local_addr()?;
    let mut sockets = Vec::with_capacity(threads.max(1));
    for _ in 1..threads {
        sockets.push(if shared { first.try_clone()? } else { bind(bound, true)? });
    }
    sockets.push(first);
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

fn bind(addr: SocketAddr, reuse_port: bool) -> anyhow::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_reuse_port(reuse_port)?;
    sock.bind(&addr.into())
        .with_context(|| format!("failed to bind UDP {addr}"))?;
    let sock: UdpSocket = sock.into();
    // Wake up now and then to notice shutdown.
    sock.set_read_timeout(Some(Duration::from_millis(250)))?;
    Ok(sock)
}

/// Queries taken from the socket per system call, and answers sent per system call.
const BATCH: usize = 32;
/// Receive buffer per query: larger UDP queries are not real DNS traffic.
const QUERY_MAX: usize = 4096;

/// Answer queries until `stop`: up to [`BATCH`] queries per `recvmmsg`, their answers with one
/// `sendmmsg`. Under load this halves the system calls and wake-ups per query; when queries
/// come one at a time it behaves like `recv_from`/`send_to` (`MSG_WAITFORONE`).
fn serve(sock: &UdpSocket, state: &ArcSwap<Authority>, stop: &AtomicBool, limiter: &std::sync::Mutex<RateLimiter>) {
    let fd = sock.as_raw_fd();
    let mut bufs = vec![[0u8; QUERY_MAX]; BATCH];
    let mut outs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(1500)).collect();
    let mut rx = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut tx = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut got: Vec<(usize, SockaddrStorage)> = Vec::with_capacity(BATCH);
    while !stop.load(Ordering::Relaxed) {
        got.clear();
        {
            let mut iovs: Vec<[IoSliceMut; 1]> = bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
            match recvmmsg(fd, &mut rx, iovs.iter_mut(), MsgFlags::MSG_WAITFORONE, None) {
                Ok(msgs) => got.extend(msgs.filter_map(|m| Some((m.bytes, m.address?)))),
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(e) => {
                    debug!(error = %e, "UDP receive error");
                    continue;
                }
            }
        }
        let auth = state.load();
        // (answer index, peer) of every query that gets an answer.
        let mut replies: Vec<(usize, SockaddrStorage)> = Vec::with_capacity(got.len());
        for (i, (len, from)) in got.iter().enumerate() {
            let Some(peer) = socket_addr(from) else { continue };
            if handle(&bufs[i][..*len], peer, &auth, limiter, &mut outs[i]) {
                replies.push((i, *from));
            }
        }
        send_all(fd, &mut tx, &outs, &replies);
    }
}

/// Send `outs[i]` to each `(i, peer)`; a message the kernel refuses is logged and skipped.
fn send_all(fd: RawFd, tx: &mut MultiHeaders<SockaddrStorage>, outs: &[Vec<u8>], replies: &[(usize, SockaddrStorage)]) {
    let mut rest = replies;
    while !rest.is_empty() {
        let slices: Vec<[IoSlice; 1]> = rest.iter().map(|(i, _)| [IoSlice::new(&outs[*i])]).collect();
        let addrs: Vec<Option<SockaddrStorage>> = rest.iter().map(|(_, a)| Some(*a)).collect();
        let sent = match sendmmsg(fd, tx, slices.iter(), &addrs, [], MsgFlags::empty()) {
            Ok(results) => results.count(),
            Err(e) => {
                debug!(peer = %rest[0].1, error = %e, "UDP send error");
                0
            }
        };
        // `sent` went out; the next one failed (or all did): skip it.
        rest = &rest[(sent + 1).min(rest.len())..];
        if sent == slices.len() {
            break;
        }
    }
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        Some(SocketAddr::V4((*v4).into()))
    } else {
        a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
    }
}

/// One query: `true` when `out` holds the answer to send.
fn handle(
    pkt: &[u8],
    peer: SocketAddr,
    auth: &Authority,
    limiter: &std::sync::Mutex<RateLimiter>,
    out: &mut Vec<u8>,
) -> bool {
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
        return slip && truncated(pkt, out);
    }
    match answer(auth, pkt, peer.ip(), out) {
        Some(qtype) => {
            METRICS.dns(qtype, out.get(3).map_or(0, |b| b & 0x0f));
            true
        }
        None => false,
    }
}

/// The UDP answer to `pkt` (in `out`) and its query type for the metrics; `None`: send nothing.
/// Plain queries take the fast path, everything else `Authority::respond`.
pub(crate) fn answer(auth: &Authority, pkt: &[u8], peer: IpAddr, out: &mut Vec<u8>) -> Option<u16> {
    match wire::plain(pkt) {
        // SOA from a secondary that must sign: the general path refuses it unsigned.
        Some(p) if !(Question::is_transfer(p.qtype) || p.qtype == 6 && auth.needs_key(peer)) => {
            auth.answer(&Question::plain(pkt, &p), udp_limit(p.edns), out);
            // Not in a mail domain's zones: perhaps the catalog zone (general path).
            if out[3] & 0x0f == 5
                && auth.in_catalog(p.lower())
                && let Reply::Message(m) = auth.respond(pkt, Transport::Udp, peer)
            {
                *out = m;
            }
            Some(p.qtype)
        }
        _ => match auth.respond(pkt, Transport::Udp, peer) {
            Reply::Message(bytes) => {
                *out = bytes;
                Some(qtype_of(pkt, question_name_end(pkt)))
            }
            Reply::Transfer(_) | Reply::Drop => None,
        },
    }
}

/// An empty answer with TC set, header and question of the query, into `out`; `false` for
/// a query without a whole question, and for a response: answering one would let two servers
/// bounce a spoofed packet between them.
pub(crate) fn truncated(pkt: &[u8], out: &mut Vec<u8>) -> bool {
    if pkt.get(2).is_none_or(|b| b & 0x80 != 0) {
        return false;
    }
    let Some(q) = question_name_end(pkt).and_then(|end| pkt.get(..end + 4)) else {
        return false;
    };
    out.clear();
    out.extend_from_slice(q);
    out[2] = (out[2] & 0x79) | 0x80 | 0x02; // QR, opcode and RD kept, TC
    out[3] = 0;
    out[4..12].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    true
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

#[cfg(test)]
mod slip_tests {
    use super::truncated;

    /// Found by the `dns_udp` fuzz target (fuzz/regressions/dns_udp/slip-answers-a-response):
    /// the slip answered packets with QR set.
    #[test]
    fn slip_never_answers_a_response() {
        let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01";
        let mut out = Vec::new();
        assert!(truncated(query, &mut out), "a query gets a slip");
        assert_eq!(out[2] & 0x82, 0x82, "QR and TC");
        let mut response = *query;
        response[2] |= 0x80;
        assert!(!truncated(&response, &mut out));
    }
}
