//! `mailconf probe` against real local peers: mailconf's own DNS and HTTP, and SMTP/IMAP/POP3
//! peers (tests/peers/mailpeer.py) that are correct or broken in one specific way each. Every
//! server must get exactly the expected finding and nothing else.

use crate::common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{Server, mailconf, root, temp_dir};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, date_time_ymd};

const HOST: &str = "mail.probe.test";

struct Peers(Vec<Child>);
impl Drop for Peers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A loopback port that refuses connections: bound, never listening, held until dropped (so no
/// other test can take it meanwhile, as a port found free and let go could be).
struct Closed(socket2::Socket);

impl Closed {
    fn new() -> Closed {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into())
            .unwrap();
        Closed(s)
    }

    fn port(&self) -> u16 {
        self.0.local_addr().unwrap().as_socket().unwrap().port()
    }
}

/// A CA, a good leaf for HOST, an expired one, a self-signed one and a "web" leaf for
/// mailconf's HTTPS; returns the CA file and (cert, key) paths by kind.
fn certs(dir: &Path) -> (PathBuf, Vec<(&'static str, PathBuf, PathBuf)>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mailconf probe test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut out = Vec::new();
    for kind in ["good", "expired", "selfsigned", "web"] {
        let key = KeyPair::generate().unwrap();
        let names = if kind == "web" {
            // mailconf's own HTTPS: the domain and its autoconfig/autodiscover hosts.
            vec![
                "probe.test".to_string(),
                "autoconfig.probe.test".to_string(),
                "autodiscover.probe.test".to_string(),
            ]
        } else {
            vec![HOST.to_string()]
        };
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{HOST} {kind}"));
        if kind == "expired" {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
        }
        let cert = if kind == "selfsigned" {
            params.self_signed(&key).unwrap()
        } else {
            params.signed_by(&key, &issuer).unwrap()
        };
        let (c, k) = (dir.join(format!("{kind}.pem")), dir.join(format!("{kind}.key")));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        out.push((kind, c, k));
    }
    (ca_file, out)
}

/// Start a peer on a port it binds itself; wait for its "ready PORT"; the peer and its port.
fn peer(proto: &str, mode: &str, name: &str, cert: Option<&(&str, PathBuf, PathBuf)>) -> (Child, u16) {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("tests/peers/mailpeer.py"))
        .args([proto, mode, "0", name]);
    if let Some((_, c, k)) = cert {
        cmd.arg(c).arg(k);
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{proto} {mode} peer did not start: {line:?}"));
    (child, port)
}

struct Case {
    proto: &'static str,
    security: &'static str,
    mode: &'static str,
    cert: &'static str,
    greeting: &'static str,
    /// Expected (level, text fragment) findings for this server, nothing else.
    want: &'static [(&'static str, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        proto: "smtp",
        security: "tls",
        mode: "implicit",
        cert: "good",
        greeting: HOST,
        want: &[("pass", "AUTH PLAIN LOGIN")],
    },
    Case {
        proto: "smtp",
        security: "starttls",
        mode: "starttls",
        cert: "good",
        greeting: HOST,
        want: &[("pass", "STARTTLS, certificate valid")],
    },
    Case {
        proto: "imap",
        security: "tls",
        mode: "implicit",
        cert: "good",
        greeting: HOST,
        want: &[("pass", "AUTH PLAIN")],
    },
    Case {
        proto: "imap",
        security: "starttls",
        mode: "starttls",
        cert: "good",
        greeting: HOST,
        want: &[("pass", "STARTTLS")],
    },
    Case {
        proto: "pop3",
        security: "starttls",
        mode: "starttls",
        cert: "good",
        greeting: HOST,
        want: &[("pass", "CAPA")],
    },
    Case {
        proto: "smtp",
        security: "starttls",
        mode: "starttls-last",
        cert: "good",
        greeting: HOST,
        want: &[("warn", "only on the last EHLO line")],
    },
    Case {
        proto: "smtp",
        security: "starttls",
        mode: "no-starttls",
        cert: "good",
        greeting: HOST,
        want: &[("fail", "STARTTLS is not offered")],
    },
    Case {
        proto: "smtp",
        security: "starttls",
        mode: "auth-before-tls",
        cert: "good",
        greeting: HOST,
        want: &[("fail", "AUTH PLAIN LOGIN is offered before TLS")],
    },
    Case {
        proto: "smtp",
        security: "starttls",
        mode: "no-auth",
        cert: "good",
        greeting: HOST,
        want: &[("fail", "no AUTH offered")],
    },
    Case {
        proto: "smtp",
        security: "tls",
        mode: "plain",
        cert: "good",
        greeting: HOST,
        want: &[("fail", "does not speak TLS")],
    },
    Case {
        proto: "smtp",
        security: "tls",
        mode: "implicit",
        cert: "expired",
        greeting: HOST,
        want: &[("fail", "certificate expired")],
    },
    Case {
        proto: "imap",
        security: "tls",
        mode: "implicit",
        cert: "selfsigned",
        greeting: HOST,
        want: &[("fail", "not issued by a trusted CA")],
    },
    Case {
        proto: "imap",
        security: "starttls",
        mode: "auth-before-tls",
        cert: "good",
        greeting: HOST,
        want: &[("fail", "allowed before TLS")],
    },
    Case {
        proto: "smtp",
        security: "tls",
        mode: "implicit",
        cert: "good",
        greeting: "other.example",
        want: &[("warn", "greets as `other.example`")],
    },
    // Published, but nothing listens there.
    Case {
        proto: "smtp",
        security: "starttls",
        mode: "",
        cert: "",
        greeting: HOST,
        want: &[("fail", "cannot connect")],
    },
];

/// Write a config for `probe.test` with `servers` (TOML `[[provider.p.server]]` tables) and
/// serve its DNS and plain HTTP on loopback, and HTTPS with `tls` (cert, key) when given.
fn serve(dir: &Path, servers: &str, tls: Option<(&Path, &Path)>) -> (PathBuf, Server) {
    let config = dir.join("mailconf.toml");
    // HTTPS also answers on the bare domain (`.well-known`, Outlook's first POX URL).
    let apex = if tls.is_some() { "\"@\" = [\"127.0.0.1\"]\n" } else { "" };
    let tls_table = tls.map_or_else(String::new, |(c, k)| {
        format!(
            "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n\n",
            c.display(),
            k.display()
        )
    });
    std::fs::write(
        &config,
        format!(
            "{tls_table}[provider.p]\ndisplay_name = \"Probe Test\"\n\n{servers}[[domain]]\nname = \"probe.test\"\nprovider = \"p\"\n[domain.dns]\nnameservers = [\"ns.probe.test\"]\nautoconfig_addresses = [\"127.0.0.1\"]\nmx = [{{ host = \"{HOST}\", preference = 10 }}]\nspf = \"v=spf1 mx -all\"\ndmarc = \"v=DMARC1; p=reject\"\n[domain.dns.hosts]\nmail = [\"127.0.0.1\"]\nns = [\"127.0.0.1\"]\n{apex}"
        ),
    )
    .unwrap();
    let mut args = vec!["--dns-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"];
    if tls.is_some() {
        args.extend(["--https-listen", "127.0.0.1:0"]);
    }
    let s = Server::start(&config, &args, args.len() / 2);
    (config, s)
}

/// `mailconf probe probe.test` arguments against `s` (HTTPS at `closed` unless it serves it).
fn probe_args(s: &Server, ca: &Path, closed: &Closed, extra: &[&str]) -> Vec<String> {
    let (dns, http) = (s.addrs("DNS")[0], s.addrs("HTTP listening")[0]);
    let https = s.addrs("HTTPS").first().map_or_else(|| closed.port(), |a| a.port());
    let mut v: Vec<String> = [
        "probe",
        "probe.test",
        "--resolver",
        &dns.to_string(),
        "--ca-file",
        ca.to_str().unwrap(),
        "--timeout",
        "3",
        "--http-port",
        &http.port().to_string(),
        "--https-port",
        &https.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Run the probe; the JSON report's findings.
fn probe_json(args: &[String]) -> (Option<i32>, Vec<serde_json::Value>) {
    let out = mailconf(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), report["findings"].as_array().unwrap().clone())
}

#[test]
fn probe_reports_exactly_the_expected_findings() {
    let dir = temp_dir("probe");
    let (ca, certs) = certs(&dir);
    let mut peers = Peers(Vec::new());
    let mut servers = String::new();
    let mut subjects = Vec::new();
    let mut closed = Vec::new();
    for case in CASES {
        let port = if case.mode.is_empty() {
            closed.push(Closed::new());
            closed.last().unwrap().port()
        } else {
            let cert = certs.iter().find(|c| c.0 == case.cert);
            let (child, port) = peer(case.proto, case.mode, case.greeting, cert);
            peers.0.push(child);
            port
        };
        servers.push_str(&format!(
            "[[provider.p.server]]\nprotocol = \"{}\"\nhost = \"{HOST}\"\nport = {port}\nsecurity = \"{}\"\n\n",
            case.proto, case.security
        ));
        let tls = if case.security == "tls" { "tls" } else { "starttls" };
        subjects.push(format!("{} {HOST}:{port} ({tls})", case.proto));
    }
    let (config, s) = serve(&dir, &servers, None);
    let no_https = Closed::new();
    let args = |extra: &[&str]| probe_args(&s, &ca, &no_https, extra);
    let (code, findings) = probe_json(&args(&["--json", "--config", config.to_str().unwrap()]));
    assert_eq!(code, Some(1), "failures present → exit 1");
    let text = serde_json::to_string_pretty(&findings).unwrap();
    for (case, subject) in CASES.iter().zip(&subjects) {
        let got: Vec<(String, String)> = findings
            .iter()
            .filter(|f| f["step"] == "mail" && f["subject"] == subject.as_str())
            .map(|f| {
                (
                    f["level"].as_str().unwrap().to_string(),
                    f["message"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(got.len(), case.want.len(), "{subject} ({}): {got:?}", case.mode);
        for ((level, msg), (want_level, want_text)) in got.iter().zip(case.want) {
            assert_eq!(level, want_level, "{subject} ({}): {msg}", case.mode);
            assert!(
                msg.contains(want_text),
                "{subject} ({}): `{msg}` lacks `{want_text}`",
                case.mode
            );
        }
    }
    // DNS: everything as configured, so no DNS failure and no diff.
    assert!(
        findings
            .iter()
            .filter(|f| f["step"] == "dns")
            .all(|f| f["level"] != "fail"),
        "{text}"
    );
    // HTTP: https closed → warnings; http works and agrees with SRV.
    let http_findings: Vec<_> = findings.iter().filter(|f| f["step"] == "http").collect();
    assert!(
        http_findings
            .iter()
            .any(|f| f["subject"] == "thunderbird autoconfig" && f["level"] == "pass"),
        "{text}"
    );
    assert!(
        http_findings
            .iter()
            .any(|f| f["subject"] == "outlook autodiscover" && f["level"] == "pass"),
        "{text}"
    );
    assert!(http_findings.iter().all(|f| f["level"] != "fail"), "{text}");

    // A config that differs from what DNS serves is reported as a diff.
    let changed = dir.join("changed.toml");
    std::fs::write(
        &changed,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("v=spf1 mx -all", "v=spf1 -all"),
    )
    .unwrap();
    let (_, findings) = probe_json(&args(&["--json", "--config", changed.to_str().unwrap()]));
    let spf = findings
        .iter()
        .find(|f| f["subject"] == "probe.test TXT")
        .unwrap()
        .clone();
    assert_eq!(spf["level"], "fail");
    assert_eq!(
        spf["message"],
        "differs from the config: - \"v=spf1 -all\"; + \"v=spf1 mx -all\""
    );

    // Text output ends with the summary line.
    let a = args(&[]);
    let out = mailconf(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().last().unwrap().ends_with("failed"), "{text}");
}

/// Cleartext servers (`security = "none"`, `allow_cleartext`) are published under the plain SRV
/// labels, which stand for STARTTLS *and* cleartext (RFC 6186 §3): the probe must read them back
/// as agreeing with the documents, and talk to them without TLS.
#[test]
fn probe_reads_cleartext_servers_back_as_published() {
    let dir = temp_dir("probe-cleartext");
    let (ca, certs) = certs(&dir);
    let (_, web_cert, web_key) = certs.iter().find(|c| c.0 == "web").unwrap();
    let ((imap_peer, imap), (smtp_peer, smtp)) = (
        peer("imap", "no-starttls", HOST, None),
        peer("smtp", "plain", HOST, None),
    );
    let _peers = Peers(vec![imap_peer, smtp_peer]);
    let servers = format!(
        "[[provider.p.server]]\nprotocol = \"imap\"\nhost = \"{HOST}\"\nport = {imap}\nsecurity = \"none\"\nallow_cleartext = true\n\n\
         [[provider.p.server]]\nprotocol = \"smtp\"\nhost = \"{HOST}\"\nport = {smtp}\nsecurity = \"none\"\nallow_cleartext = true\n\n"
    );
    // With HTTPS this time, so the probe's HTTPS client is exercised too.
    let (config, s) = serve(&dir, &servers, Some((web_cert, web_key)));
    let (_, findings) = probe_json(&probe_args(
        &s,
        &ca,
        &Closed::new(),
        &["--json", "--config", config.to_str().unwrap()],
    ));
    let text = serde_json::to_string_pretty(&findings).unwrap();
    let level = |subject: &str| -> Vec<(String, String)> {
        findings
            .iter()
            .filter(|f| f["subject"] == subject)
            .map(|f| {
                (
                    f["level"].as_str().unwrap().to_string(),
                    f["message"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    // Every Thunderbird URL answers (https first), Outlook's first https URL answers.
    for (url, level_wanted) in [
        (
            "thunderbird https://autoconfig.probe.test/mail/config-v1.1.xml?emailaddress=probe%40probe.test",
            "pass",
        ),
        (
            "thunderbird https://probe.test/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=probe%40probe.test",
            "pass",
        ),
        (
            "thunderbird http://autoconfig.probe.test/mail/config-v1.1.xml?emailaddress=probe%40probe.test",
            "warn",
        ),
        ("outlook https://probe.test/autodiscover/autodiscover.xml", "pass"),
    ] {
        let got = level(url);
        assert_eq!(got.len(), 1, "{url}: {text}");
        assert_eq!(got[0].0, level_wanted, "{url}: {text}");
    }
    // Both documents agree with the SRV records.
    for what in ["thunderbird autoconfig", "outlook autodiscover"] {
        let got = level(what);
        assert_eq!(got.len(), 1, "{what}: {text}");
        assert_eq!(got[0].0, "pass", "{what}: {text}");
    }
    // The servers are probed as published: no STARTTLS attempted, cleartext submission flagged.
    assert_eq!(
        level(&format!("imap {HOST}:{imap} (plain)")),
        [("pass".to_string(), "AUTH PLAIN".to_string())],
        "{text}"
    );
    let smtp_findings = level(&format!("smtp {HOST}:{smtp} (plain)"));
    assert_eq!(smtp_findings.len(), 1, "{text}");
    assert_eq!(smtp_findings[0].0, "warn", "{text}");
    assert!(smtp_findings[0].1.contains("cleartext submission"), "{text}");
    assert!(findings.iter().all(|f| f["level"] != "fail"), "{text}");
}
