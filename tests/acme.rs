//! ACME for real, offline: Debian's `pebble` (Let's Encrypt's test CA) on loopback validates
//! mailconf through TLS-ALPN-01, resolving the names through mailconf's own DNS; the issued
//! certificate then serves HTTPS that verifies against pebble's root, and survives a restart.

use crate::common;

use std::net::{TcpListener, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, https_get, temp_dir, tool};
use rcgen::{CertificateParams, KeyPair};

fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Kills the child when dropped.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// mailconf's settings with ACME from pebble's directory at `acme_port`.
fn write_config(config: &std::path::Path, dir: &std::path::Path, acme_port: u16) {
    std::fs::write(
        config,
        format!(
            r#"[server]
[server.tls.acme]
directory = "https://127.0.0.1:{acme_port}/dir"
contact = ["mailto:postmaster@acme.test"]
cache_dir = "{d}/acme-cache"
ca_roots = "{d}/pebble.pem"

[provider.p]
display_name = "ACME Test"
[[provider.p.server]]
protocol = "imap"
host = "mail.acme.test"
port = 993
security = "tls"
[[provider.p.server]]
protocol = "smtp"
host = "mail.acme.test"
port = 465
security = "tls"

[[domain]]
name = "acme.test"
provider = "p"
[domain.dns]
nameservers = ["ns.acme.test"]
autoconfig_addresses = ["127.0.0.1"]
hosts = {{ mail = ["127.0.0.1"], ns = ["127.0.0.1"] }}

# No DNS records: its validation fails (pebble asks our DNS, which refuses), and that must not
# hold up acme.test.
[[domain]]
name = "fail.test"
provider = "p"
"#,
            d = dir.display()
        ),
    )
    .unwrap();
}

#[test]
fn certificate_from_pebble_via_tls_alpn_01_and_from_cache_after_restart() {
    let pebble = tool("pebble", "pebble");
    let dir = temp_dir("acme");
    // Pebble's own listener certificate (Debian ships none).
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("pebble.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("pebble.key"), key.serialize_pem()).unwrap();
    // Pebble dials this for HTTP-01, which is never asked for; held so that it stays unused.
    let unused = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = dir.join("mailconf.toml");
    // Pebble binds ports named in its configuration, so they are found free first; when another
    // process takes one before pebble binds it, everything starts again on new ports. mailconf
    // binds port 0 and pebble is told what it got (its DNS, and the port TLS-ALPN-01 dials).
    let mut attempt = 0;
    let (s, _pebble, mgmt_port, tls_port) = loop {
        attempt += 1;
        let (acme_port, mgmt_port) = (free_port(), free_port());
        write_config(&config, &dir, acme_port);
        let s = Server::start(
            &config,
            &["--dns-listen", "127.0.0.1:0", "--https-listen", "127.0.0.1:0"],
            2,
        );
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
        let child = Command::new(&pebble)
            .args([
                "-config",
                dir.join("pebble.json").to_str().unwrap(),
                "-dnsserver",
                &format!("127.0.0.1:{dns_port}"),
            ])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut child = Kill(child);
        let start = Instant::now();
        let up = loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                let log = std::fs::read_to_string(dir.join("pebble.log")).unwrap_or_default();
                assert!(
                    log.contains("address already in use") && attempt < 5,
                    "pebble stopped ({status}) in attempt {attempt}:\n{log}"
                );
                eprintln!("pebble could not bind its ports: trying others");
                break false;
            }
            // Both ports answer, and still pebble's a moment later (not another process's).
            if std::net::TcpStream::connect(("127.0.0.1", acme_port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", mgmt_port)).is_ok()
            {
                std::thread::sleep(Duration::from_millis(200));
                if child.0.try_wait().unwrap().is_none() {
                    break true;
                }
                continue;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "pebble did not start");
            std::thread::sleep(Duration::from_millis(100));
        };
        if up {
            break (s, child, mgmt_port, tls_port);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !s.log_text().contains("ACME certificate issued") {
        assert!(
            Instant::now() < deadline,
            "no certificate within 60 s:\n{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Pebble's root (it makes a new one at every start), from its management interface.
    let root = https_get(
        format!("127.0.0.1:{mgmt_port}").parse().unwrap(),
        &dir.join("pebble.pem"),
        "localhost",
        "/roots/0",
    )
    .unwrap();
    assert_eq!(root.status, 200);
    std::fs::write(dir.join("root.pem"), &root.body).unwrap();
    let tls_addr: std::net::SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    let r = https_get(
        tls_addr,
        &dir.join("root.pem"),
        "autoconfig.acme.test",
        "/mail/config-v1.1.xml?emailaddress=fred%40acme.test",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.text().contains("<hostname>mail.acme.test</hostname>"));
    let r = https_get(tls_addr, &dir.join("root.pem"), "autodiscover.acme.test", "/healthz").unwrap();
    assert_eq!(r.status, 200, "one certificate covers the domain's names");
    // The failing domain was tried on its own and failed without affecting acme.test.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s
        .log_text()
        .lines()
        .any(|l| l.contains("autoconfig.fail.test") && l.contains("will retry"))
    {
        assert!(
            Instant::now() < deadline,
            "no failed order for fail.test:\n{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        https_get(tls_addr, &dir.join("root.pem"), "autoconfig.fail.test", "/healthz").is_err(),
        "no certificate yet"
    );
    // The Apple profile is signed with the ACME certificate; openssl verifies it against pebble's root.
    let signed_profile = |tls_addr| {
        let r = https_get(
            tls_addr,
            &dir.join("root.pem"),
            "autoconfig.acme.test",
            "/apple/profile.mobileconfig?emailaddress=fred%40acme.test",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        std::fs::write(dir.join("profile.der"), &r.body).unwrap();
        let out = Command::new(tool("openssl", "openssl"))
            .args(["cms", "-verify", "-inform", "DER", "-purpose", "any", "-CAfile"])
            .arg(dir.join("root.pem"))
            .arg("-in")
            .arg(dir.join("profile.der"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("<string>fred@acme.test</string>"));
    };
    signed_profile(tls_addr);
    // HTTP/2 through ALPN beside the challenge protocol (curl offers h2 and http/1.1).
    let out = Command::new(tool("curl", "curl"))
        .args([
            "-sS",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
            "--cacert",
        ])
        .arg(dir.join("root.pem"))
        .arg("--resolve")
        .arg(format!("autoconfig.acme.test:{tls_port}:127.0.0.1"))
        .arg(format!("https://autoconfig.acme.test:{tls_port}/healthz"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2 200",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(s);

    // A restart deploys the cached certificate and orders nothing (pebble's DNS and TLS ports
    // are the old ones now: fail.test keeps failing, acme.test needs none of them).
    let s = Server::start(
        &config,
        &["--dns-listen", "127.0.0.1:0", "--https-listen", "127.0.0.1:0"],
        2,
    );
    let tls_addr = s.addrs("HTTPS")[0];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !s.log_text().contains("ACME cache: 1 certified") {
        assert!(
            Instant::now() < deadline,
            "cached certificate not used:\n{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!s.log_text().contains("ACME certificate issued"), "{}", s.log_text());
    let r = https_get(tls_addr, &dir.join("root.pem"), "autoconfig.acme.test", "/healthz").unwrap();
    assert_eq!(r.status, 200);
    // The certificate read back from the cache signs profiles too, from memory: the cache
    // directory is not read per request (emptied here, signing still works).
    std::fs::remove_dir_all(dir.join("acme-cache")).unwrap();
    signed_profile(tls_addr);
}
