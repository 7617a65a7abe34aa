//! HTTP front (hyper 1, HTTP/1.1): autoconfig, Autodiscover, profiles, MTA-STS, health.
//!
//! Transport only: accept, limits, timeouts, logging. `routes` decides every answer.
//! Protections: header read timeout (hyper needs an explicit timer for it, else it is silently
//! off), a body cap (413), a body read timeout (408), a cap on concurrent connections, graceful
//! shutdown with a bound.

pub mod routes;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, info};

use crate::settings::Settings;

/// Largest request body (an Autodiscover request is well under 1 KiB; Stalwart caps at 8 KiB).
pub const MAX_BODY: usize = 64 * 1024;
/// Time allowed for the request head, and separately for the body.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent connections per listener.
const MAX_CONNECTIONS: usize = 4096;
/// How long shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// A running HTTP server.
pub struct HttpServer {
    state: Arc<ArcSwap<Settings>>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The addresses actually bound (port 0 resolved).
    pub local_addrs: Vec<SocketAddr>,
}

impl HttpServer {
    /// Bind every address and serve the domains of `settings`.
    pub async fn start(addrs: &[SocketAddr], settings: &Arc<Settings>) -> anyhow::Result<HttpServer> {
        let state = Arc::new(ArcSwap::new(settings.clone()));
        let (stop, _) = watch::channel(false);
        let mut server = HttpServer {
            state,
            stop,
            tasks: Vec::new(),
            local_addrs: Vec::new(),
        };
        for addr in addrs {
            let listener = bind(*addr)?;
            let bound = listener.local_addr()?;
            info!(addr = %bound, "HTTP listening");
            server.local_addrs.push(bound);
            server.tasks.push(tokio::spawn(accept_loop(
                listener,
                server.state.clone(),
                server.stop.subscribe(),
            )));
        }
        Ok(server)
    }

    /// Swap in new settings; requests in flight finish with the old ones.
    pub fn reload(&self, settings: &Arc<Settings>) {
        self.state.store(settings.clone());
    }

    /// Stop accepting and finish in-flight requests (at most [`DRAIN`]).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let sock = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())
        .with_context(|| format!("failed to bind HTTP {addr}"))?;
    sock.listen(1024)?;
    Ok(TcpListener::from_std(sock.into())?)
}

async fn accept_loop(listener: TcpListener, state: Arc<ArcSwap<Settings>>, mut stop: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    debug!(error = %e, "HTTP accept error");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(READ_TIMEOUT)
            .max_buf_size(64 * 1024)
            .serve_connection(
                TokioIo::new(stream),
                service_fn(move |req| serve(req, state.clone(), peer)),
            );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "HTTP connection error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        info!("HTTP shutdown: gave up waiting for slow connections");
    }
}

async fn serve(
    req: Request<Incoming>,
    state: Arc<ArcSwap<Settings>>,
    peer: SocketAddr,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(parts.uri.host())
        .map(str::to_string);
    let body = match tokio::time::timeout(READ_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err((413, "request body too large"))
        }
        Ok(Err(_)) => Err((400, "unreadable request body")),
        Err(_) => Err((408, "request body timed out")),
    };
    let reply = match body {
        Ok(body) => {
            let settings = state.load();
            let time = clock();
            routes::handle(
                &settings,
                &routes::Request {
                    method: parts.method.as_str(),
                    path: parts.uri.path(),
                    query: parts.uri.query(),
                    host: host.as_deref(),
                    body: &body,
                    time: &time,
                },
            )
        }
        Err((status, msg)) => routes::Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: vec![("connection", "close".into())],
            body: format!("{msg}\n").into_bytes(),
            endpoint: "unknown",
            domain: None,
        },
    };
    info!(
        client = %peer.ip(),
        host = host.as_deref().unwrap_or("-"),
        method = %parts.method,
        endpoint = reply.endpoint,
        domain = reply.domain.as_deref().unwrap_or("-"),
        status = reply.status,
        latency_us = started.elapsed().as_micros() as u64,
        "request"
    );
    let mut resp = Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type);
    for (k, v) in &reply.headers {
        resp = resp.header(*k, v);
    }
    Ok(resp
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

/// `hh:mm:ss` (UTC) for Autodiscover error documents.
fn clock() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
