//! Production serving: HTTPS from certificate files (verified by a real TLS client), the plain
//! HTTP rules when HTTPS exists, certificate reload, Prometheus metrics, DNS response rate
//! limiting, and a reload under load that fails no request.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, example_without_listeners, http_get, http_post, https_get, mailconf, stderr, temp_dir};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A CA and leaf certificates for the example's web names; returns (ca.pem, cert, key).
fn make_certs(dir: &Path, names: &[&str], tag: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, format!("test CA {tag}"));
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (ca_file, cert_file, key_file) = (
        dir.join(format!("ca-{tag}.pem")),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    std::fs::write(&cert_file, format!("{}{}", leaf.pem(), ca_cert.pem())).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    (ca_file, cert_file, key_file)
}

fn with_tls(config: &Path, cert: &Path, key: &Path, extra_server: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let text = text.replacen("[server]\n", &format!("[server]\n{extra_server}\n"), 1);
    std::fs::write(
        config,
        format!(
            "{text}\n[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
}

#[test]
fn https_from_files_and_http_rules() {
    let dir = temp_dir("ops-https");
    let config = example_without_listeners(&dir);
    let (ca, cert, key) = make_certs(
        &dir,
        &[
            "autoconfig.example.com",
            "autodiscover.example.com",
            "mta-sts.example.com",
        ],
        "a",
    );
    with_tls(&config, &cert, &key, "");
    let out = mailconf(&["check", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = Server::start(
        &config,
        &["--http-listen", "127.0.0.1:0", "--https-listen", "127.0.0.1:0"],
        2,
    );
    let http = s.addrs("HTTP listening")[0];
    let https = s.addrs("HTTPS")[0];
    let r = https_get(
        https,
        &ca,
        "autoconfig.example.com",
        "/mail/config-v1.1.xml?emailaddress=fred%40example.com",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.text().contains("<username>fred@example.com</username>"));
    // A client trusting another CA refuses the certificate.
    let (other_ca, _, _) = make_certs(&temp_dir("ops-https-other"), &["x.example"], "b");
    assert!(https_get(https, &other_ca, "autoconfig.example.com", "/healthz").is_err());
    // Plain HTTP: Thunderbird's fallback and the POX POST stay; Outlook's GET gets its 302;
    // everything else moves to https.
    assert_eq!(
        http_get(
            http,
            "/mail/config-v1.1.xml?emailaddress=fred%40example.com",
            "autoconfig.example.com"
        )
        .status,
        200
    );
    let pox = "<Autodiscover><Request><EMailAddress>fred@example.com</EMailAddress></Request></Autodiscover>";
    assert_eq!(
        http_post(
            http,
            "/autodiscover/autodiscover.xml",
            "autodiscover.example.com",
            None,
            pox.as_bytes()
        )
        .status,
        200
    );
    let r = http_get(http, "/AutoDiscover/AutoDiscover.xml", "autodiscover.example.com");
    assert_eq!(
        (r.status, r.header("location")),
        (
            302,
            Some("https://autodiscover.example.com/autodiscover/autodiscover.xml")
        )
    );
    let r = http_get(
        http,
        "/apple/profile.mobileconfig?emailaddress=fred%40example.com",
        "autoconfig.example.com:80",
    );
    assert_eq!(
        (r.status, r.header("location")),
        (
            301,
            Some("https://autoconfig.example.com/apple/profile.mobileconfig?emailaddress=fred%40example.com")
        )
    );
    assert_eq!(
        http_get(http, "/.well-known/mta-sts.txt", "mta-sts.example.com").status,
        301
    );

    // Reload with a new certificate from another CA: new handshakes use it.
    let (ca2, cert2, key2) = make_certs(&temp_dir("ops-https-2"), &["autoconfig.example.com"], "c");
    std::fs::copy(&cert2, &cert).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    s.signal("HUP");
    s.wait_log(|l| l.contains("reload done"), 1, "reload");
    assert!(https_get(https, &ca2, "autoconfig.example.com", "/healthz").is_ok_and(|r| r.status == 200));
    assert!(https_get(https, &ca, "autoconfig.example.com", "/healthz").is_err());
    // A broken key on reload: the settings are refused as a whole, the old certificate stays.
    std::fs::write(&key, "not a key").unwrap();
    s.signal("HUP");
    s.wait_log(|l| l.contains("reload failed"), 1, "failed reload");
    assert!(s.log_text().contains("server.tls.key"), "{}", s.log_text());
    assert!(https_get(https, &ca2, "autoconfig.example.com", "/healthz").is_ok_and(|r| r.status == 200));
}

#[test]
fn broken_tls_settings_are_located() {
    let dir = temp_dir("ops-badtls");
    let config = example_without_listeners(&dir);
    let (_, cert, _) = make_certs(&dir, &["autoconfig.example.com"], "d");
    let other_key = dir.join("other.key");
    std::fs::write(&other_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    with_tls(&config, &cert, &other_key, "https_listen = [\"127.0.0.1:0\"]");
    let out = mailconf(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("server.tls.key: does not belong to the certificate"),
        "{}",
        stderr(&out)
    );
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace(cert.to_str().unwrap(), "/nonexistent.pem"),
    )
    .unwrap();
    let out = mailconf(&["check", "--config", config.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("server.tls.cert: cannot read `/nonexistent.pem`"),
        "{}",
        stderr(&out)
    );
}

fn scrape(addr: SocketAddr) -> String {
    http_get(addr, "/metrics", "x").text()
}

#[test]
fn metrics_count_dns_http_and_reloads() {
    let dir = temp_dir("ops-metrics");
    let config = example_without_listeners(&dir);
    let s = Server::start(
        &config,
        &[
            "--dns-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        3,
    );
    let (dns, http, metrics) = (s.addrs("DNS")[0], s.addrs("HTTP")[0], s.addrs("metrics")[0]);
    for _ in 0..3 {
        assert_eq!(
            http_get(http, "/mail/config-v1.1.xml", "autoconfig.example.com").status,
            200
        );
    }
    assert_eq!(http_get(http, "/nope", "x").status, 404);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 1500];
    for (name, qtype) in [
        (&b"\x06_imaps\x04_tcp\x07example\x03com\x00"[..], 33u8),
        (b"\x04nope\x07example\x03com\x00", 1),
    ] {
        let mut q = vec![0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(name);
        q.extend_from_slice(&[0, qtype, 0, 1]);
        sock.send_to(&q, dns).unwrap();
        sock.recv_from(&mut buf).unwrap();
    }
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap() + "\nbroken = ").unwrap();
    s.signal("HUP");
    s.wait_log(|l| l.contains("reload failed"), 1, "failed reload");
    let text = scrape(metrics);
    for want in [
        "mailconf_http_requests_total{endpoint=\"thunderbird\",status=\"200\"} 3",
        "mailconf_http_requests_total{endpoint=\"unknown\",status=\"404\"} 1",
        "mailconf_dns_responses_total{qtype=\"SRV\",rcode=\"NOERROR\"} 1",
        "mailconf_dns_responses_total{qtype=\"A\",rcode=\"NXDOMAIN\"} 1",
        "mailconf_reloads_total{result=\"failed\"} 1",
        "# TYPE mailconf_dns_responses_total counter",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
}

#[test]
fn dns_rate_limit_drops_and_slips_over_udp_but_tcp_answers() {
    let dir = temp_dir("ops-rrl");
    let config = example_without_listeners(&dir);
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replacen("[server]\n", "[server]\ndns_rate_limit = 50\n", 1),
    )
    .unwrap();
    let s = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
    let dns = s.addrs("DNS")[0];
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut q = vec![0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(b"\x06_imaps\x04_tcp\x07example\x03com\x00\x00\x21\x00\x01");
    for _ in 0..2000 {
        sock.send_to(&q, dns).unwrap();
    }
    let (mut full, mut tc) = (0, 0);
    let mut buf = [0u8; 1500];
    let started = Instant::now();
    while let Ok((n, _)) = sock.recv_from(&mut buf) {
        if buf[2] & 0x02 != 0 && buf[7] == 0 {
            tc += 1;
        } else if n > 40 {
            full += 1;
        }
        if started.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    assert!(
        (45..=150).contains(&full),
        "one client gets the whole budget (burst 50 + 50/s), not a thread's share: {full}"
    );
    assert!(tc > 100, "every other limited answer slips as TC: {tc}");
    // Many flows from one network: SO_REUSEPORT spreads them over the threads, and they still
    // share one budget.
    std::thread::sleep(Duration::from_millis(1500));
    let socks: Vec<UdpSocket> = (0..8).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
    for sock in &socks {
        for _ in 0..100 {
            sock.send_to(&q, dns).unwrap();
        }
    }
    let mut spread_full = 0;
    for sock in &socks {
        sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            if buf[2] & 0x02 == 0 && n > 40 {
                spread_full += 1;
            }
        }
    }
    assert!(
        (40..=100).contains(&spread_full),
        "8 flows share the network's budget (burst 50 + 50/s): {spread_full}"
    );
    // TCP is not limited.
    let mut t = TcpStream::connect(dns).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    t.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    t.read_exact(&mut len).unwrap();
    let mut resp = vec![0u8; u16::from_be_bytes(len) as usize];
    t.read_exact(&mut resp).unwrap();
    assert_eq!((resp[3] & 0x0f, resp[7]), (0, 1), "NOERROR with one answer over TCP");
}

/// Change the settings file again and again while clients keep asking: no request may fail and
/// every answer is either the old or the new content (IMAP port 993 or 994), over HTTP and DNS;
/// once a reload is done, DNS answers with the new content only.
#[test]
fn reload_under_load_fails_no_request() {
    let dir = temp_dir("ops-reload-load");
    let config = example_without_listeners(&dir);
    let original = std::fs::read_to_string(&config).unwrap();
    let changed = original.replace("port     = 993", "port     = 994");
    assert_ne!(changed, original, "the example's IMAP port line moved: fix this test");
    let s = Server::start(
        &config,
        &["--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0"],
        2,
    );
    let (http, dns) = (s.addrs("HTTP")[0], s.addrs("DNS")[0]);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Each client counts answers with port 993 and with 994, and keeps every other answer.
    let mut clients = Vec::new();
    for _ in 0..3 {
        let stop = stop.clone();
        clients.push(std::thread::spawn(move || {
            let (mut seen, mut bad) = ([0usize; 2], Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = http_get(http, "/mail/config-v1.1.xml?emailaddress=fred%40example.com", "x");
                let t = r.text();
                match (r.status, t.contains("<port>993</port>"), t.contains("<port>994</port>")) {
                    (200, true, false) => seen[0] += 1,
                    (200, false, true) => seen[1] += 1,
                    _ => bad.push(format!("HTTP {} {t}", r.status)),
                }
            }
            (seen, bad)
        }));
    }
    {
        let stop = stop.clone();
        clients.push(std::thread::spawn(move || {
            let (mut seen, mut bad) = ([0usize; 2], Vec::new());
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut id = 0u16;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                id = id.wrapping_add(1);
                match imaps_srv_ports(&udp, dns, id) {
                    Ok(p) if p == [993] => seen[0] += 1,
                    Ok(p) if p == [994] => seen[1] += 1,
                    other => bad.push(format!("DNS {other:?}")),
                }
            }
            (seen, bad)
        }));
    }
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    for i in 0..10 {
        let (text, port) = if i % 2 == 0 { (&changed, 994) } else { (&original, 993) };
        std::fs::write(&config, text).unwrap();
        s.signal("HUP");
        s.wait_log(|l| l.contains("reload done"), i + 1, "reload");
        assert_eq!(
            imaps_srv_ports(&udp, dns, 0x8000 + i as u16),
            Ok(vec![port]),
            "after reload {i}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for (n, c) in clients.into_iter().enumerate() {
        let (seen, bad) = c.join().unwrap();
        assert!(
            bad.is_empty(),
            "client {n}: {} wrong answers during reloads, e.g. {:?}",
            bad.len(),
            &bad[..bad.len().min(3)]
        );
        assert!(
            seen[0] > 0 && seen[1] > 0,
            "client {n} saw old and new content ({seen:?} answers with 993, 994)"
        );
    }
}

/// Ask `_imaps._tcp.example.com SRV` over UDP; the ports of the SRV answers, or what was wrong.
fn imaps_srv_ports(udp: &UdpSocket, dns: SocketAddr, id: u16) -> Result<Vec<u16>, String> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(b"\x06_imaps\x04_tcp\x07example\x03com\x00\x00\x21\x00\x01");
    udp.send_to(&q, dns).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1500];
    let n = loop {
        let (n, _) = udp.recv_from(&mut buf).map_err(|e| format!("no answer: {e}"))?;
        // A late answer to an earlier, timed-out query is not this one's.
        if n >= 12 && buf[..2] == id.to_be_bytes() {
            break n;
        }
    };
    let msg = &buf[..n];
    if msg[3] & 0x0f != 0 || msg[2] & 0x02 != 0 {
        return Err(format!("rcode {} flags {:02x}{:02x}", msg[3] & 0x0f, msg[2], msg[3]));
    }
    let count = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]) as usize;
    let (qd, an) = (count(4), count(6));
    // Skips a (possibly compressed) name; returns the offset after it.
    let skip_name = |mut at: usize| -> Option<usize> {
        loop {
            let len = *msg.get(at)? as usize;
            match len {
                0 => return Some(at + 1),
                l if l & 0xc0 == 0xc0 => return Some(at + 2),
                l => at += 1 + l,
            }
        }
    };
    let mut at = 12;
    for _ in 0..qd {
        at = skip_name(at).ok_or("short question")? + 4;
    }
    let mut ports = Vec::new();
    for _ in 0..an {
        at = skip_name(at).ok_or("short answer")?;
        let head = msg.get(at..at + 10).ok_or("short answer")?;
        let rdlen = u16::from_be_bytes([head[8], head[9]]) as usize;
        let rdata = msg.get(at + 10..at + 10 + rdlen).ok_or("short rdata")?;
        if head[..2] == [0, 33] {
            ports.push(u16::from_be_bytes([rdata[4], rdata[5]]));
        }
        at += 10 + rdlen;
    }
    Ok(ports)
}

#[test]
fn sigterm_stops_cleanly() {
    let dir = temp_dir("ops-term");
    let config = example_without_listeners(&dir);
    let mut s = Server::start(
        &config,
        &["--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0"],
        2,
    );
    s.signal("TERM");
    let started = Instant::now();
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}\n{}", s.log_text());
    s.wait_log(|l| l.contains("shutting down"), 1, "shutdown log");
}

#[test]
fn apple_profiles_are_signed_with_the_serving_certificate() {
    let dir = temp_dir("ops-sign");
    let config = example_without_listeners(&dir);
    let (ca, cert, key) = make_certs(&dir, &["autoconfig.example.com"], "s");
    with_tls(&config, &cert, &key, "");
    let s = Server::start(&config, &["--http-listen", "127.0.0.1:0"], 1);
    let http = s.addrs("HTTP")[0];
    let r = http_get(
        http,
        "/apple/profile.mobileconfig?emailaddress=fred%40example.com",
        "autoconfig.example.com",
    );
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("application/x-apple-aspen-config"))
    );
    let signed = dir.join("signed.mobileconfig");
    std::fs::write(&signed, &r.body).unwrap();
    let content = dir.join("content.plist");
    let verify = |file: &Path| {
        std::process::Command::new(common::tool("openssl", "openssl"))
            .args(["cms", "-verify", "-inform", "DER", "-purpose", "any", "-CAfile"])
            .arg(&ca)
            .arg("-in")
            .arg(file)
            .arg("-out")
            .arg(&content)
            .output()
            .unwrap()
    };
    let out = verify(&signed);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let unsigned = mailconf(&[
        "render",
        "mobileconfig",
        "--config",
        config.to_str().unwrap(),
        "--address",
        "fred@example.com",
    ]);
    assert_eq!(
        std::fs::read(&content).unwrap(),
        unsigned.stdout,
        "the signed content is the profile itself"
    );
    // One flipped byte inside the signed content breaks the signature.
    let mut tampered = r.body.clone();
    let at = tampered.windows(16).position(|w| w == b"mail.example.net").unwrap();
    tampered[at] ^= 0x01;
    let bad = dir.join("tampered.mobileconfig");
    std::fs::write(&bad, &tampered).unwrap();
    assert!(!verify(&bad).status.success());
}

#[test]
fn watch_reloads_when_the_file_changes() {
    let dir = temp_dir("ops-watch");
    let config = example_without_listeners(&dir);
    let s = Server::start(&config, &["--http-listen", "127.0.0.1:0", "--watch"], 1);
    let http = s.addrs("HTTP")[0];
    let get = || http_get(http, "/mail/config-v1.1.xml?emailaddress=fred%40example.com", "x").text();
    assert!(get().contains("<port>993</port>"));
    // Replace the file the way editors and config managers do: write a new one, rename it over.
    let tmp = dir.join("mailconf.toml.new");
    std::fs::write(
        &tmp,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("port     = 993", "port     = 1993"),
    )
    .unwrap();
    std::fs::rename(&tmp, &config).unwrap();
    s.wait_log(|l| l.contains("reload done"), 1, "reload after the file changed");
    assert!(get().contains("<port>1993</port>"));
}
