//! HTTP front (hyper 1): autoconfig, Autodiscover, profiles, MTA-STS, health. Plain HTTP speaks
//! HTTP/1.1; HTTPS offers HTTP/2 and HTTP/1.1 through ALPN.
//!
//! Transport only: accept, limits, timeouts, logging. `routes` decides every answer.
//! Protections: header read timeout (hyper needs an explicit timer for it, else it is silently
//! off; HTTP/2, which hyper gives none, closes connections idle that long instead), a body cap
//! (413), a body read timeout (408), a cap on concurrent connections (and streams per HTTP/2
//! connection), graceful shutdown with a bound.
//!
//! Over 400 lines: HTTP/1.1 and HTTP/2 over plain TCP and TLS share accept, limits, timeouts,
//! logging and graceful shutdown here, so that `routes` stays free of transport concerns.

pub mod pages;
pub mod routes;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
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
/// Concurrent requests on one HTTP/2 connection.
const H2_STREAMS: u32 = 100;

/// A running HTTP server.
pub struct HttpServer {
    state: Arc<ArcSwap<Settings>>,
    /// Setup pages rendered for `state`.
    pages: Arc<pages::PageCache>,
    /// The rustls configuration of the HTTPS listeners, rebuilt from the settings on reload.
    tls: Arc<ArcSwap<Option<Arc<rustls::ServerConfig>>>>,
    /// Present when certificates come from ACME.
    acme: Option<Arc<crate::acme::Acme>>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The addresses actually bound (port 0 resolved).
    pub local_addrs: Vec<SocketAddr>,
}

impl HttpServer {
    /// Bind every address (plain HTTP and HTTPS) and serve the domains of `settings`.
    pub async fn start(
        plain: &[SocketAddr],
        secure: &[SocketAddr],
        settings: &Arc<Settings>,
    ) -> anyhow::Result<HttpServer> {
        let state = Arc::new(ArcSwap::new(settings.clone()));
        let tls = Arc::new(ArcSwap::from_pointee(None));
        let mut acme = None;
        if !secure.is_empty() {
            if let Some(cfg) = &settings.server.acme {
                let a = Arc::new(crate::acme::Acme::default());
                a.ensure(cfg, crate::acme::names_for(settings));
                tls.store(Arc::new(Some(crate::acme::server_config(a.clone()))));
                acme = Some(a);
            } else {
                let files = settings
                    .server
                    .tls
                    .as_ref()
                    .context("HTTPS needs [server.tls] cert and key, or [server.tls.acme]")?;
                tls.store(Arc::new(Some(tls_config(files)?)));
            }
        }
        let (stop, _) = watch::channel(false);
        let mut server = HttpServer {
            state,
            pages: Arc::new(pages::PageCache::new(settings)),
            tls,
            acme,
            stop,
            tasks: Vec::new(),
            local_addrs: Vec::new(),
        };
        let https_available = !secure.is_empty();
        for (addr, is_tls) in plain.iter().map(|a| (a, false)).chain(secure.iter().map(|a| (a, true))) {
            let listener = crate::listen::tcp(*addr, "HTTP")?;
            let bound = listener.local_addr()?;
            info!(addr = %bound, "{} listening", if is_tls { "HTTPS" } else { "HTTP" });
            server.local_addrs.push(bound);
            let front = Front {
                state: server.state.clone(),
                pages: server.pages.clone(),
                tls: is_tls.then(|| server.tls.clone()),
                https_available,
                acme: server.acme.clone(),
            };
            server
                .tasks
                .push(tokio::spawn(accept_loop(listener, front, server.stop.subscribe())));
        }
        Ok(server)
    }

    /// Swap in new settings (and certificate); requests in flight finish with the old ones.
    pub fn reload(&self, settings: &Arc<Settings>) {
        if let Some(acme) = &self.acme {
            // New domains get their certificates ordered; existing ones keep theirs.
            match &settings.server.acme {
                Some(cfg) => acme.ensure(cfg, crate::acme::names_for(settings)),
                None => {
                    tracing::error!("[server.tls.acme] removed while HTTPS is listening: keeping the ACME certificates")
                }
            }
        } else if self.tls.load().is_some() {
            match settings.server.tls.as_ref().map(|f| tls_config(f)) {
                Some(Ok(cfg)) => self.tls.store(Arc::new(Some(cfg))),
                Some(Err(e)) => tracing::error!(error = %e, "new certificate unusable: keeping the old one"),
                None => tracing::error!("[server.tls] removed while HTTPS is listening: keeping the old certificate"),
            }
        }
        self.state.store(settings.clone());
        self.pages.reset(settings);
    }

    /// Stop accepting and finish in-flight requests (at most [`DRAIN`]).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// What one listener serves.
#[derive(Clone)]
struct Front {
    state: Arc<ArcSwap<Settings>>,
    pages: Arc<pages::PageCache>,
    /// Present on HTTPS listeners.
    tls: Option<Arc<ArcSwap<Option<Arc<rustls::ServerConfig>>>>>,
    https_available: bool,
    /// The ACME certificates, which sign Apple profiles when they are in use.
    acme: Option<Arc<crate::acme::Acme>>,
}

/// The application protocols HTTPS offers, preferred first.
pub(crate) const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The start of every HTTPS server configuration (certificate files or ACME): rustls on ring,
/// TLS 1.2 and 1.3, and the server's order of cipher suites, AES-128-GCM with SHA-256 first.
///
/// Clients list AES-256-GCM-SHA384 first (OpenSSL, and rustls follows the client's order by
/// default), whose key schedule runs on SHA-384. On x86 CPUs without SHA-512 instructions
/// (every AMD and most Intel servers) ring computes that in software: 11 % of a new HTTPS
/// connection's CPU in `benches/http.sh`, where SHA-256 runs on the SHA extensions. AES-128-GCM
/// is TLS 1.3's mandatory suite (RFC 8446 §9.1) and as strong as the X25519 key exchange it
/// comes with; ChaCha20 stays for clients that offer nothing else.
pub(crate) fn server_tls() -> rustls::ConfigBuilder<rustls::ServerConfig, rustls::WantsVerifier> {
    use rustls::crypto::ring::cipher_suite as cs;
    let mut provider = rustls::crypto::ring::default_provider();
    let preferred = [
        cs::TLS13_AES_128_GCM_SHA256.suite(),
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256.suite(),
        cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256.suite(),
    ];
    provider.cipher_suites.sort_by_key(|s| !preferred.contains(&s.suite()));
    rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
}

/// Finish a server configuration from [`server_tls`]: the server's suite order, ALPN.
pub(crate) fn finish_tls(mut cfg: rustls::ServerConfig) -> rustls::ServerConfig {
    cfg.ignore_client_order = true;
    cfg.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    cfg
}

/// rustls (ring) server configuration from PEM files already checked by `settings`.
fn tls_config(files: &crate::settings::TlsFiles) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let cfg = server_tls()
        .with_no_client_auth()
        .with_single_cert(files.chain.clone(), files.key.clone_key())
        .with_context(|| format!("certificate `{}` with key `{}`", files.cert_path, files.key_path))?;
    let cfg = finish_tls(cfg);
    if let Some(not_after) = not_after(&files.chain[0]) {
        crate::metrics::METRICS.set_cert_not_after(not_after);
    }
    Ok(Arc::new(cfg))
}

/// Expiry (unix time) of a certificate, for the metrics.
pub(crate) fn not_after(cert: &rustls::pki_types::CertificateDer<'_>) -> Option<i64> {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(c.validity().not_after.timestamp())
}

async fn accept_loop(listener: TcpListener, front: Front, stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let stopped = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    // Notified when every slot is taken: connections without a request in flight close, so a
    // flood of idle connections cannot keep a new client waiting behind it.
    let full = Arc::new(Notify::new());
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                full.notify_waiters();
                tokio::select! {
                    p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                    _ = stopped(stop.clone()) => break,
                }
            }
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
            _ = stopped(stop.clone()) => break,
        };
        let _ = stream.set_nodelay(true);
        let front = front.clone();
        let stop = stop.clone();
        let full = full.clone();
        tokio::spawn(async move {
            let result = match &front.tls {
                None => connection(TokioIo::new(stream), Protocol::Http1, &front, peer, stop, &full).await,
                Some(cfg) => {
                    let Some(cfg) = cfg.load_full().as_ref().clone() else {
                        return;
                    };
                    let acme = front.acme.clone();
                    let accept = async move {
                        let Some(acme) = acme else {
                            return tokio_rustls::TlsAcceptor::from(cfg).accept(stream).await;
                        };
                        // ACME: the certificate is read from the cache (if it is not in memory)
                        // before the handshake goes on, off the worker threads.
                        let start =
                            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await?;
                        let hello = start.client_hello();
                        let name = hello
                            .server_name()
                            .filter(|_| !rustls_acme::is_tls_alpn_challenge(&hello))
                            .map(str::to_string);
                        if let Some(name) = name {
                            acme.preload(&name).await;
                        }
                        start.into_stream(cfg).await
                    };
                    let tls = tokio::select! {
                        r = tokio::time::timeout(READ_TIMEOUT, accept) => r,
                        _ = stopped(stop.clone()) => return,
                        _ = full.notified() => return,
                    };
                    match tls {
                        Ok(Ok(tls)) => {
                            let protocol = match tls.get_ref().1.alpn_protocol() {
                                // A TLS-ALPN-01 validation connection: the handshake was the answer.
                                Some(p) if p == rustls_acme::acme::ACME_TLS_ALPN_NAME => return,
                                Some(b"h2") => Protocol::Http2,
                                Some(_) => Protocol::Http1,
                                // No ALPN: HTTP/1.1, or HTTP/2 if the client starts with its preface.
                                None => Protocol::Either,
                            };
                            connection(TokioIo::new(tls), protocol, &front, peer, stop, &full).await
                        }
                        Ok(Err(e)) => {
                            debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "HTTP connection error");
            }
            drop(permit);
        });
    }
    drop(listener);
    // Every connection holds a slot until it ends: wait for them all (they were told to stop).
    if tokio::time::timeout(DRAIN, slots.acquire_many(MAX_CONNECTIONS as u32))
        .await
        .is_err()
    {
        info!("HTTP shutdown: gave up waiting for slow connections");
    }
}

/// What a connection speaks: decided by ALPN on HTTPS; plain HTTP is HTTP/1.1 only.
#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Http1,
    Http2,
    Either,
}

/// Serve one connection until it ends, the idle limit passes (HTTP/2), or `stop` fires or
/// every slot is taken (`full`; then requests in flight finish first).
async fn connection<I>(
    io: I,
    protocol: Protocol,
    front: &Front,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
    full: &Notify,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(READ_TIMEOUT)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_STREAMS)
        .max_header_list_size(64 * 1024);
    let builder = match protocol {
        Protocol::Http1 => builder.http1_only(),
        Protocol::Http2 => builder.http2_only(),
        Protocol::Either => builder,
    };
    // HTTP/2 has no header read timeout in hyper: a connection with no request in flight for
    // READ_TIMEOUT is closed instead (a half-sent HEADERS frame never reaches the service).
    let activity = (protocol != Protocol::Http1).then(|| Arc::new(Activity::new()));
    let secure = front.tls.is_some();
    let service = {
        let front = front.clone();
        let activity = activity.clone();
        service_fn(move |req| {
            let front = front.clone();
            let activity = activity.clone();
            async move {
                let _busy = activity.as_ref().map(|a| a.begin());
                serve(req, front, peer, secure).await
            }
        })
    };
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    let mut idle = activity.as_ref().map(|_| Box::pin(tokio::time::sleep(READ_TIMEOUT)));
    loop {
        tokio::select! {
            r = conn.as_mut() => return r,
            r = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                if r.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = full.notified(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = async { idle.as_mut().expect("guarded").as_mut().await }, if idle.is_some() && !stopping => {
                let a = activity.as_ref().expect("set with idle");
                match a.idle_until(READ_TIMEOUT) {
                    None => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    Some(next) => idle.as_mut().expect("guarded").as_mut().reset(next),
                }
            }
        }
    }
}

/// Requests in flight on one connection, and when the last one ended.
struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    last: std::sync::Mutex<Instant>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            in_flight: 0.into(),
            last: std::sync::Mutex::new(Instant::now()),
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Busy(self.clone())
    }

    /// `None` when the connection has been idle for `limit`; else when to look again.
    fn idle_until(&self, limit: Duration) -> Option<tokio::time::Instant> {
        let now = Instant::now();
        if self.in_flight.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            return Some((now + limit).into());
        }
        let last = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        (now < last + limit).then(|| (last + limit).into())
    }
}

/// One request in flight; its end counts as activity.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn serve(
    req: Request<Incoming>,
    front: Front,
    peer: SocketAddr,
    secure: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(parts.uri.host())
        .map(str::to_string);
    let accept_language = parts
        .headers
        .get(hyper::header::ACCEPT_LANGUAGE)
        .and_then(|h| h.to_str().ok());
    // A request without a body (every GET) needs no read, and so no timer.
    let body = if body.is_end_stream() {
        Ok(Bytes::new())
    } else {
        read_body(body).await
    };
    let reply = match body {
        Ok(body) => {
            let settings = front.state.load();
            routes::handle(
                &settings,
                &routes::Request {
                    method: parts.method.as_str(),
                    path: parts.uri.path(),
                    query: parts.uri.query(),
                    host: host.as_deref(),
                    body: &body,
                    time: clock,
                    secure,
                    https_available: front.https_available,
                    acme: front.acme.as_deref(),
                    accept_language,
                    pages: &front.pages,
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
    crate::metrics::METRICS.http(reply.endpoint, reply.status);
    crate::accesslog::log(&crate::accesslog::Entry {
        client: peer.ip(),
        tls: secure,
        host: host.as_deref(),
        method: parts.method.as_str(),
        endpoint: reply.endpoint,
        domain: reply.domain.as_deref(),
        status: reply.status,
        latency_us: started.elapsed().as_micros() as u64,
    });
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

/// The body of a request, at most [`MAX_BODY`] bytes, within [`READ_TIMEOUT`].
async fn read_body(body: Incoming) -> Result<Bytes, (u16, &'static str)> {
    match tokio::time::timeout(READ_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err((413, "request body too large"))
        }
        Ok(Err(_)) => Err((400, "unreadable request body")),
        Err(_) => Err((408, "request body timed out")),
    }
}

/// `hh:mm:ss` (UTC) for Autodiscover error documents.
fn clock() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Serve Prometheus text at `/metrics` on its own listener until `stop` fires.
pub async fn serve_metrics(addr: SocketAddr, mut stop: watch::Receiver<bool>) -> anyhow::Result<SocketAddr> {
    let listener = crate::listen::tcp(addr, "metrics")?;
    let bound = listener.local_addr()?;
    info!(addr = %bound, "metrics listening");
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                r = listener.accept() => match r { Ok((s, _)) => s, Err(_) => continue },
                _ = stop.changed() => return,
            };
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    let (status, body) = if req.uri().path() == "/metrics" {
                        (200, crate::metrics::METRICS.render())
                    } else {
                        (404, "not found\n".into())
                    };
                    Ok::<_, Infallible>(
                        Response::builder()
                            .status(status)
                            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                            .body(Full::new(Bytes::from(body)))
                            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))),
                    )
                });
                let mut b = http1::Builder::new();
                b.timer(TokioTimer::new()).header_read_timeout(READ_TIMEOUT);
                let _ = b.serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Ok(bound)
}
