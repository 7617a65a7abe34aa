//! TCP transport (RFC 7766): length-prefixed messages, several per connection, idle timeout,
//! a cap on concurrent connections; AXFR answers go out as several frames. When the cap is
//! reached, every connection waiting for its next message is closed (RFC 7766 §6.2.3: a busy
//! server may close idle connections), so a flood of idle connections cannot keep a new client
//! waiting behind it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tracing::debug;

use super::authority::{Authority, Reply, Transport};

/// Close a connection that sends nothing for this long (RFC 7766 §6.2.3 suggests seconds).
const IDLE: Duration = Duration::from_secs(10);
/// Concurrent TCP connections per listener; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 512;

pub(crate) async fn serve(listener: TcpListener, state: Arc<ArcSwap<Authority>>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Notified when every slot is taken: idle connections close.
    let full = Arc::new(Notify::new());
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                full.notify_waiters();
                let Ok(p) = slots.clone().acquire_owned().await else {
                    return;
                };
                p
            }
        };
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                debug!(error = %e, "TCP accept error");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (state, full) = (state.clone(), full.clone());
        tokio::spawn(async move {
            if let Err(e) = connection(stream, peer, &state, &full).await {
                debug!(%peer, error = %e, "DNS TCP connection ended");
            }
            drop(permit);
        });
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    state: &ArcSwap<Authority>,
    full: &Notify,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 65535];
    loop {
        let len = tokio::select! {
            biased; // a message already here is read, not dropped
            r = tokio::time::timeout(IDLE, stream.read_u16()) => match r {
                Ok(Ok(n)) => n as usize,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(()), // idle
            },
            _ = full.notified() => return Ok(()), // idle while every slot is taken
        };
        match tokio::time::timeout(IDLE, stream.read_exact(&mut buf[..len])).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        let req = &buf[..len];
        let reply = state.load().respond(req, Transport::Tcp, peer.ip());
        if let Reply::Message(m) = &reply {
            let qtype = crate::metrics::qtype_of(req, super::wire::question_name_end(req));
            crate::metrics::METRICS.dns(qtype, m.get(3).map_or(0, |b| b & 0x0f));
        }
        let frames = match reply {
            Reply::Message(m) => vec![m],
            Reply::Transfer(frames) => frames,
            Reply::Drop => continue,
        };
        for f in frames {
            let mut framed = Vec::with_capacity(f.len() + 2);
            framed.extend_from_slice(&(f.len() as u16).to_be_bytes());
            framed.extend_from_slice(&f);
            stream.write_all(&framed).await?;
        }
    }
}
