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

use super::authority::{Authority, Reply, Transport};
use super::wire;

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
    let handles = sockets
        .into_iter()
        .enumerate()
        .map(|(i, sock)| {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("dns-udp-{i}"))
                .spawn(move || serve(&sock, &state, &stop))
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

fn serve(sock: &UdpSocket, state: &ArcSwap<Authority>, stop: &AtomicBool) {
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
        let sent = match wire::plain(pkt) {
            Some(q) if wire::answer(&auth, pkt, &q, &mut out) => sock.send_to(&out, peer),
            _ => match auth.respond(pkt, Transport::Udp, peer.ip()) {
                Reply::Message(bytes) => sock.send_to(&bytes, peer),
                Reply::Transfer(_) | Reply::Drop => continue,
            },
        };
        if let Err(e) = sent {
            debug!(%peer, error = %e, "UDP send error");
        }
    }
}
