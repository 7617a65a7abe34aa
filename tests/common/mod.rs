//! Helpers shared by the integration tests: run the real binary, find external tools.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod pebble;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run the real `mailconf` binary with `args`, from the repository root.
pub fn mailconf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailconf"))
        .args(args)
        .current_dir(root())
        .env_remove("MAILCONF_CONFIG")
        .output()
        .expect("run mailconf")
}

/// Path of an external tool; fails the test with an install hint when it is missing.
pub fn tool(name: &str, package: &str) -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
    {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` not found: install the Debian package `{package}` (bash tests/install-deps.sh)");
}

/// A loopback port free for both UDP and TCP when asked, for a peer the test starts itself
/// (Knot, NSD, BIND, Pebble, a database) and so cannot hand an already bound socket.
///
/// It is taken below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`, 32768 and up
/// by default), never from it: a port from that range, once released, can be handed to any
/// socket bound to port 0 (a `dig` of another test, another server) while mailconf still sends
/// NOTIFYs to it, and that `dig` then reads a NOTIFY instead of its answer. Tests running in
/// parallel take different ports: a counter per process, starting at a point set by the PID.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000; // 20000..32000
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..SPAN {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        if udp.is_ok() && tcp.is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {FIRST} and {}", FIRST + SPAN);
}

/// The RCODE of a `dig` output (`NOERROR`, `NXDOMAIN`…), `?` when dig got no answer.
pub fn status(out: &str) -> &str {
    out.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("?")
}

/// The header flags of a `dig` output (`qr`, `aa`, `ad`…).
pub fn flags(out: &str) -> Vec<&str> {
    out.split(";; flags: ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap_or("")
        .split_whitespace()
        .collect()
}

/// `dig @addr -p port ARGS +norec` (an authoritative question, 2 s, one try) and its output.
pub fn dig(addr: std::net::SocketAddr, args: &[&str]) -> String {
    let out = std::process::Command::new(tool("dig", "dnsutils"))
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), "+norec", "+time=2", "+tries=1"])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Records of one section of a `dig` output (`ANSWER`, `AUTHORITY`, `ADDITIONAL`) as
/// whitespace-normalised lines.
pub fn section(out: &str, name: &str) -> Vec<String> {
    let Some(start) = out.find(&format!(";; {name} SECTION:")) else {
        return Vec::new();
    };
    out[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// A fresh temporary directory under the target dir, removed and recreated.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A running `mailconf serve`, killed on drop. Its stderr is collected in the background.
pub struct Server {
    pub child: std::process::Child,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Start `mailconf serve --config CONFIG ARGS…` and wait until `listeners` log lines say
    /// "listening". Listeners are given as port 0 and their addresses read from the log
    /// ([`Server::addrs`]), so no test races another for a port; if the server stops before it
    /// listens, this fails at once with its log.
    pub fn start(config: &Path, args: &[&str], listeners: usize) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mailconf"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .args(args)
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start mailconf serve");
        let log = collect_lines(child.stderr.take().unwrap());
        let mut server = Server { child, log };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while server
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("listening"))
            .count()
            < listeners
        {
            if let Some(status) = server.child.try_wait().unwrap() {
                // Let the reader thread catch the last lines.
                std::thread::sleep(std::time::Duration::from_millis(100));
                panic!(
                    "mailconf serve exited ({status}) before listening; log:\n{}",
                    server.log_text()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for listeners; log:\n{}",
                server.log_text()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        server
    }

    /// Wait (≤ 20 s) until `count` log lines match; panics with the log otherwise.
    pub fn wait_log(&self, pred: impl Fn(&str) -> bool, count: usize, what: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if self.log.lock().unwrap().iter().filter(|l| pred(l)).count() >= count {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Addresses from "… listening … addr=IP:PORT" log lines whose text contains `kind`.
    pub fn addrs(&self, kind: &str) -> Vec<std::net::SocketAddr> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(kind) && l.contains("listening"))
            .filter_map(|l| l.split("addr=").nth(1)?.split_whitespace().next()?.parse().ok())
            .collect()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response as the tests read it.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request through hyper's client (an implementation independent of mailconf's
/// server code), over plain TCP or a TLS stream; 30 s for the whole exchange.
pub fn http_request(
    addr: std::net::SocketAddr,
    tls: Option<(std::sync::Arc<rustls::ClientConfig>, &str)>,
    method: &str,
    path: &str,
    host: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<HttpResponse, String> {
    use http_body_util::BodyExt;
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host);
    if let Some(ct) = content_type {
        req = req.header(hyper::header::CONTENT_TYPE, ct);
    }
    let req = req
        .body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(body)))
        .map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let exchange = async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            let io: Box<dyn Io> = match tls {
                Some((cfg, sni)) => {
                    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
                    Box::new(
                        tokio_rustls::TlsConnector::from(cfg)
                            .connect(name, tcp)
                            .await
                            .map_err(|e| e.to_string())?,
                    )
                }
                None => Box::new(tcp),
            };
            let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
                .await
                .map_err(|e| e.to_string())?;
            let driver = tokio::spawn(conn);
            let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes()
                .to_vec();
            driver.abort();
            Ok(HttpResponse { status, headers, body })
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), exchange)
            .await
            .map_err(|_| "no answer within 30 s".to_string())?
    })
}

/// A byte stream hyper can run over: plain TCP or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Hostile input no HTTP client library sends (e.g. a URI over the 64 KiB `http` allows): write
/// `raw` as is and return the status code of the answer, if any.
pub fn raw_request_status(addr: std::net::SocketAddr, raw: &[u8]) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let _ = s.write_all(raw); // the server may answer and close before reading it all
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(head.strip_prefix(b"HTTP/1.1 ")?).ok()?.parse().ok()
}

fn short(path: &str) -> String {
    path.chars().take(100).collect()
}

pub fn http_get(addr: std::net::SocketAddr, path: &str, host: &str) -> HttpResponse {
    http_request(addr, None, "GET", path, host, None, b"").unwrap_or_else(|e| panic!("GET {}: {e}", short(path)))
}

pub fn http_post(
    addr: std::net::SocketAddr,
    path: &str,
    host: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> HttpResponse {
    http_request(addr, None, "POST", path, host, content_type, body)
        .unwrap_or_else(|e| panic!("POST {}: {e}", short(path)))
}

/// The example config without listen addresses (tests never bind 53/80).
pub fn example_without_listeners(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("deploy/mailconf.example.toml")).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("dns_listen") && !l.starts_with("http_listen"))
        .collect();
    let path = dir.join("mailconf.toml");
    std::fs::write(&path, kept.join("\n")).unwrap();
    path
}

/// GET over TLS with a rustls client that trusts only `ca`, for `sni`.
pub fn https_get(addr: std::net::SocketAddr, ca: &Path, sni: &str, path: &str) -> Result<HttpResponse, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    http_request(addr, Some((std::sync::Arc::new(cfg), sni)), "GET", path, sni, None, b"")
}

/// The lines a child writes to `stderr`, collected by a thread as they arrive.
pub fn collect_lines(stderr: std::process::ChildStderr) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use std::io::BufRead;
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    log
}

/// A Python that has dnspython: the PATH one, else the system one (Debian's python3-dnspython,
/// which tests/install-deps.sh installs). Fails, never skips, without one.
pub fn python_with_dnspython() -> String {
    for py in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(py)
            .args(["-c", "import dns.message, dns.query"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return py.to_string();
        }
    }
    panic!("no python3 with dnspython: install the Debian package `python3-dnspython` (bash tests/install-deps.sh)");
}
