//! Listening TCP sockets, the same way for every front: IPv6 sockets are IPv6-only (so `[::]:53`
//! and `0.0.0.0:53` can both be listed), SO_REUSEADDR for quick restarts, a deep backlog.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

/// Bind and listen on `addr`; `what` names the service in the error ("DNS", "HTTP", …).
pub fn tcp(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    let sock = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())
        .with_context(|| format!("failed to bind {what} on TCP {addr}"))?;
    sock.listen(1024)?;
    Ok(TcpListener::from_std(sock.into())?)
}
