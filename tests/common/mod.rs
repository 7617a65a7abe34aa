//! Helpers shared by the integration tests: run the real binary, find external tools.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
        use std::io::BufRead;
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
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
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

/// A parsed HTTP/1.1 response.
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

/// Send raw bytes, read the whole answer (the request should say `Connection: close`).
pub fn http_raw(addr: std::net::SocketAddr, raw: &[u8]) -> HttpResponse {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let _ = s.write_all(raw);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse_http(&buf)
}

pub fn parse_http(buf: &[u8]) -> HttpResponse {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: buf[split + 4..].to_vec(),
    }
}

pub fn http_get(addr: std::net::SocketAddr, path: &str, host: &str) -> HttpResponse {
    http_raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

pub fn http_post(
    addr: std::net::SocketAddr,
    path: &str,
    host: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> HttpResponse {
    let ct = content_type
        .map(|c| format!("Content-Type: {c}\r\n"))
        .unwrap_or_default();
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{ct}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    http_raw(addr, &raw)
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
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    use std::io::{Read, Write};
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
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), ServerName::try_from(sni.to_string()).unwrap())
        .map_err(|e| e.to_string())?;
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    match tls.read_to_end(&mut buf) {
        Ok(_) => {}
        Err(e) if !buf.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => return Err(e.to_string()),
    }
    Ok(parse_http(&buf))
}
