//! Pebble (Let's Encrypt's test CA, Debian's `pebble`) on loopback for the ACME tests, started
//! beside a mailconf it validates: its DNS and TLS-ALPN-01 port are mailconf's.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, KeyPair};

use super::{Server, https_get, tool};

/// Kills the child when dropped.
pub struct Kill(pub std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pebble's listener certificate and key (Debian's pebble ships none): self-signed for
/// `localhost` and `127.0.0.1`, in `dir/pebble.pem` and `dir/pebble.key`.
pub fn listener_cert(dir: &std::path::Path) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("pebble.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("pebble.key"), key.serialize_pem()).unwrap();
}

/// Start pebble on free ports, answering to mailconf (which `start` starts, with `write` making
/// its settings for pebble's ACME port); on a port clash with another process, all again.
/// Returns mailconf, pebble, pebble's management port, mailconf's DNS and HTTPS ports.
pub fn pebble_for(
    dir: &std::path::Path,
    write: &dyn Fn(u16),
    start: &dyn Fn() -> Server,
) -> (Server, Kill, u16, u16, u16) {
    let pebble = tool("pebble", "pebble");
    listener_cert(dir);
    let unused = TcpListener::bind("127.0.0.1:0").unwrap();
    for attempt in 1..=5 {
        let (acme_port, mgmt_port) = (super::free_port(), super::free_port());
        write(acme_port);
        let s = start();
        let (dns_port, tls_port) = (s.addrs("DNS")[0].port(), s.addrs("HTTPS")[0].port());
        std::fs::write(
            dir.join("pebble.json"),
            format!(
                r#"{{"pebble": {{"listenAddress": "127.0.0.1:{acme_port}", "managementListenAddress": "127.0.0.1:{mgmt_port}",
                  "certificate": "{d}/pebble.pem", "privateKey": "{d}/pebble.key", "httpPort": {http_port}, "tlsPort": {tls_port},
                  "ocspResponderURL": "", "externalAccountBindingRequired": false}}}}"#,
                d = dir.display(),
                http_port = unused.local_addr().unwrap().port(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("pebble.log")).unwrap();
        let mut child = Kill(
            Command::new(&pebble)
                .args(["-config", dir.join("pebble.json").to_str().unwrap()])
                .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let started = Instant::now();
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                let log = std::fs::read_to_string(dir.join("pebble.log")).unwrap_or_default();
                assert!(
                    log.contains("address already in use"),
                    "pebble stopped ({status}):\n{log}"
                );
                break;
            }
            if std::net::TcpStream::connect(("127.0.0.1", acme_port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", mgmt_port)).is_ok()
            {
                std::thread::sleep(Duration::from_millis(200));
                if child.0.try_wait().unwrap().is_none() {
                    return (s, child, mgmt_port, dns_port, tls_port);
                }
                continue;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "pebble did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("pebble could not bind its ports (attempt {attempt}): trying others");
    }
    panic!("pebble never started");
}

/// Pebble's root (it makes a new one at every start), from its management port, written to
/// `dir/root.pem`; returns that path.
pub fn root(dir: &std::path::Path, mgmt_port: u16) -> std::path::PathBuf {
    let root = https_get(
        format!("127.0.0.1:{mgmt_port}").parse().unwrap(),
        &dir.join("pebble.pem"),
        "localhost",
        "/roots/0",
    )
    .unwrap();
    assert_eq!(root.status, 200);
    std::fs::write(dir.join("root.pem"), &root.body).unwrap();
    dir.join("root.pem")
}

/// Names whose certificate the log says was issued, in order.
pub fn issued(s: &Server) -> Vec<String> {
    s.log_text()
        .lines()
        .filter(|l| l.contains("ACME certificate issued"))
        .filter_map(|l| {
            l.split("certificate=")
                .nth(1)?
                .split_whitespace()
                .next()
                .map(str::to_string)
        })
        .collect()
}

/// `mailconf acme status --config CONFIG [--domain DOMAIN]` (it reads only `cache_dir`).
pub fn acme_status(config: impl AsRef<std::path::Path>, domain: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailconf"));
    cmd.args(["acme", "status", "--config"]).arg(config.as_ref());
    if let Some(d) = domain {
        cmd.args(["--domain", d]);
    }
    cmd.output().unwrap()
}
