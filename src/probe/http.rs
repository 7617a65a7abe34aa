//! The probe's HTTP client: hyper's HTTP/1.1 client over tokio, plain or through tokio-rustls
//! with the probe's roots, with timeouts and a body cap. One request per connection.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use super::Options;
use super::net::{self, Resolver};

/// What the web step reads from an answer.
pub(super) struct Fetched {
    pub status: u16,
    pub content_type: String,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

const MAX_RESPONSE: usize = 1024 * 1024;

/// One HTTP/1.1 exchange with `host` (resolved through the probe's resolver), through hyper's
/// client: connecting and then the whole exchange (TLS handshake, request, response up to
/// `MAX_RESPONSE` bytes) each get `opts.timeout`.
pub(super) fn fetch(
    opts: &Options,
    resolver: &Resolver,
    tls: &Arc<rustls::ClientConfig>,
    https: bool,
    host: &str,
    request: Request<Full<Bytes>>,
) -> Result<Fetched, String> {
    let ip = *resolver.addresses(host)?.first().ok_or("no address")?;
    let addr = SocketAddr::new(ip, if https { opts.https_port } else { opts.http_port });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the HTTP client: {e}"))?;
    rt.block_on(async {
        let tcp = timeout(opts.timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("cannot connect to {addr}: no answer within {:?}", opts.timeout))?
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let exchange = async {
            if https {
                let name = ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))?;
                let stream = TlsConnector::from(tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(net::describe_tls_error)?;
                send(stream, request).await
            } else {
                send(tcp, request).await
            }
        };
        timeout(opts.timeout, exchange)
            .await
            .map_err(|_| format!("no complete answer within {:?}", opts.timeout))?
    })
}

async fn send<S>(stream: S, request: Request<Full<Bytes>>) -> Result<Fetched, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let driver = tokio::spawn(conn);
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("no HTTP response: {e}"))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let location = response
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| format!("bad response body: {e}"))?
            .to_bytes()
            .to_vec();
        Ok(Fetched {
            status,
            content_type,
            location,
            body,
        })
    }
    .await;
    driver.abort();
    result
}

/// A request as the clients send it: origin-form path, `Host`, a probe User-Agent.
pub(super) fn request(
    method: Method,
    host: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, host)
        .header(USER_AGENT, "mailconf-probe")
        .header(ACCEPT, "*/*");
    if let Some(ct) = content_type {
        b = b.header(CONTENT_TYPE, ct);
    }
    b.body(Full::new(Bytes::from(body.to_string())))
        .expect("method, path and header values are valid")
}
