//! Faults of the ACME CA (issue 17), on the real binary against Pebble on loopback: the CA down
//! or silent at start, errors and cut connections in the middle of orders, a domain that cannot
//! validate, and certificate cache files someone broke.
//!
//! mailconf talks to Pebble through [`Front`], a TLS-terminating proxy in the test that forwards
//! each request or, by the test's rules, answers 503, closes the connection, or never answers; it
//! also counts what mailconf asks (rustls-acme opens one connection per request).

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::pebble::{Kill, acme_status, issued, pebble_for, root};
use common::{Server, http_get, https_get, temp_dir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What [`Front`] does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Forward,
    /// Answer this status with an ACME problem document (`serverInternal`).
    Status(u16),
    /// Close the connection without an answer.
    Drop,
    /// Never answer (until the client gives up).
    Hang,
    /// Forward, and add a `renewalInfo` URL (on the front) to the directory Pebble answers.
    WithRenewalInfo,
    /// Answer a RenewalInfo object (RFC 9773 §4.2) whose window starts and ends at these unix
    /// times (a window that has passed: renew at once).
    Window(i64, i64),
}

/// The front's rule: the action for a request, from its method and path.
type Rule = Box<dyn FnMut(&str, &str) -> Action + Send>;

struct FrontState {
    upstream: u16,
    /// A CA that is not running: every connection is reset before TLS.
    down: bool,
    rule: Rule,
    /// Each request: method, path, what was done.
    seen: Vec<(String, String, Action)>,
    /// When each connection was reset while down.
    refused: Vec<Instant>,
    /// The body of each request that had one.
    bodies: Vec<Vec<u8>>,
}

/// A TLS-terminating proxy in front of Pebble, with Pebble's listener certificate.
struct Front {
    addr: SocketAddr,
    state: Arc<Mutex<FrontState>>,
}

impl Front {
    /// Listen on a loopback port; requests go to the port [`Front::upstream`] names.
    fn start(dir: &Path) -> Front {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(FrontState {
            upstream: 0,
            down: false,
            rule: Box::new(|_, _| Action::Forward),
            seen: Vec::new(),
            refused: Vec::new(),
            bodies: Vec::new(),
        }));
        let (st, dir) = (state.clone(), dir.to_path_buf());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    tokio::spawn(serve(tcp, dir.clone(), st.clone()));
                }
            });
        });
        Front { addr, state }
    }

    fn upstream(&self, port: u16) {
        self.state.lock().unwrap().upstream = port;
    }

    fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    fn rule(&self, rule: impl FnMut(&str, &str) -> Action + Send + 'static) {
        self.state.lock().unwrap().rule = Box::new(rule);
    }

    fn refused(&self) -> Vec<Instant> {
        self.state.lock().unwrap().refused.clone()
    }

    /// Requests whose method and path start as given, and what was done with them.
    fn seen(&self, method: &str, path: &str) -> Vec<Action> {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|(m, p, _)| m == method && p.starts_with(path))
            .map(|(_, _, a)| *a)
            .collect()
    }

    /// The payloads of the JWS-signed requests (RFC 8555 §6.2), decoded.
    fn payloads(&self) -> Vec<String> {
        use base64::Engine;
        let st = self.state.lock().unwrap();
        st.bodies
            .iter()
            .filter_map(|b| {
                let jws: serde_json::Value = serde_json::from_slice(b).ok()?;
                let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(jws.get("payload")?.as_str()?)
                    .ok()?;
                Some(String::from_utf8_lossy(&payload).into_owned())
            })
            .collect()
    }

    fn log(&self) -> String {
        let st = self.state.lock().unwrap();
        st.seen.iter().map(|(m, p, a)| format!("{m} {p} {a:?}\n")).collect()
    }
}

fn pebble_certificate(
    dir: &Path,
) -> (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(dir.join("pebble.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(dir.join("pebble.key")).unwrap();
    (certs, key)
}

/// One connection to the front: one request (rustls-acme does not reuse connections).
async fn serve(tcp: tokio::net::TcpStream, dir: PathBuf, state: Arc<Mutex<FrontState>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let upstream = {
        let mut st = state.lock().unwrap();
        if st.down {
            st.refused.push(Instant::now());
            let _ = tcp.set_zero_linger();
            return;
        }
        st.upstream
    };
    let (certs, key) = pebble_certificate(&dir);
    let front_port = tcp.local_addr().map_or(0, |a| a.port());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs.clone(), key)
        .unwrap();
    let Ok(mut tls) = tokio_rustls::TlsAcceptor::from(Arc::new(server)).accept(tcp).await else {
        return;
    };
    // The whole request, its body too, kept for the test.
    let Some((head, body_at, length)) = read_message(&mut tls).await else {
        return;
    };
    if length > 0 {
        state.lock().unwrap().bodies.push(head[body_at..].to_vec());
    }
    let line = String::from_utf8_lossy(&head[..head.iter().position(|&b| b == b'\r').unwrap()]).into_owned();
    let mut words = line.split(' ');
    let (method, path) = (
        words.next().unwrap_or("").to_string(),
        words.next().unwrap_or("").to_string(),
    );
    let action = {
        let mut st = state.lock().unwrap();
        let action = (st.rule)(&method, &path);
        st.seen.push((method, path, action));
        action
    };
    match action {
        Action::Forward | Action::WithRenewalInfo => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(certs[0].clone()).unwrap();
            let client = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let Ok(tcp) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
                return;
            };
            let name = rustls::pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
            let Ok(mut up) = tokio_rustls::TlsConnector::from(Arc::new(client))
                .connect(name, tcp)
                .await
            else {
                return;
            };
            if action == Action::Forward {
                if up.write_all(&head).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                }
                return;
            }
            // The whole answer (Pebble sends a Content-Length), then the directory with one
            // more entry, on a connection closed after it.
            if up.write_all(&head).await.is_err() {
                return;
            }
            let Some((answer, body_at, length)) = read_message(&mut up).await else {
                return;
            };
            let body = String::from_utf8_lossy(&answer[body_at..body_at + length]).replacen(
                '{',
                &format!(r#"{{"renewalInfo": "https://127.0.0.1:{front_port}/renewal-info","#),
                1,
            );
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(reply.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
        Action::Window(start, end) => {
            let iso = |t: i64| mailconf::acme::clock::iso(t);
            let body = format!(
                r#"{{"suggestedWindow": {{"start": "{}", "end": "{}"}}}}"#,
                iso(start),
                iso(end)
            );
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nRetry-After: 21600\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(reply.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
        Action::Status(code) => {
            let body =
                format!(r#"{{"type":"urn:ietf:params:acme:error:serverInternal","detail":"test front: {code}"}}"#);
            let answer = format!(
                "HTTP/1.1 {code} Oops\r\nContent-Type: application/problem+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(answer.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
        Action::Drop => drop(tls),
        Action::Hang => {
            // Until the client gives up (it closes), at most 10 minutes.
            let _ = tokio::time::timeout(Duration::from_secs(600), async {
                let mut chunk = [0u8; 4096];
                while matches!(tls.read(&mut chunk).await, Ok(n) if n > 0) {}
            })
            .await;
        }
    }
}

/// Settings: ACME from the front at `acme_port`, a domain per name in `valid` (its DNS names
/// our loopback, so Pebble validates it) and one per name in `invalid` (no DNS: it never does).
fn write_config(config: &Path, dir: &Path, acme_port: u16, valid: &[&str], invalid: &[&str]) {
    let mut text = format!(
        r#"[server]
[server.tls.acme]
directory = "https://127.0.0.1:{acme_port}/dir"
contact = ["mailto:postmaster@faults.test"]
cache_dir = "{d}/acme-cache"
ca_roots = "{d}/pebble.pem"
retry_after = 1

[provider.p]
display_name = "ACME Faults Test"
[[provider.p.server]]
protocol = "imap"
host = "mail.faults.test"
port = 993
security = "tls"
[[provider.p.server]]
protocol = "smtp"
host = "mail.faults.test"
port = 465
security = "tls"
"#,
        d = dir.display()
    );
    for name in invalid {
        text += &format!("\n[[domain]]\nname = \"{name}\"\nprovider = \"p\"\n");
    }
    for name in valid {
        text += &format!(
            r#"
[[domain]]
name = "{name}"
provider = "p"
[domain.dns]
nameservers = ["ns.{name}"]
autoconfig_addresses = ["127.0.0.1"]
hosts = {{ ns = ["127.0.0.1"] }}
"#
        );
    }
    std::fs::write(config, text).unwrap();
}

/// One HTTP/1.1 message read whole (head, then as much body as its Content-Length says): its
/// bytes, where the body starts and the body's length. `None` when the peer stops before.
async fn read_message(r: &mut (impl tokio::io::AsyncRead + Unpin)) -> Option<(Vec<u8>, usize, usize)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let body_at = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let length: usize = String::from_utf8_lossy(&buf[..body_at])
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < body_at + length {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some((buf, body_at, length))
}

/// Start Pebble behind `front` and mailconf with `valid` and `invalid` domains (HTTPS, DNS,
/// HTTP and metrics listeners). Returns mailconf, Pebble, its management port, mailconf's DNS
/// and HTTPS ports.
fn start(dir: &Path, front: &Front, valid: &[&str], invalid: &[&str]) -> (Server, Kill, u16, u16, u16) {
    let config = dir.join("mailconf.toml");
    pebble_for(
        dir,
        &|acme_port| {
            front.upstream(acme_port);
            write_config(&config, dir, front.addr.port(), valid, invalid);
        },
        &|| mailconf_on(&config, "127.0.0.1:0", "127.0.0.1:0"),
    )
}

/// mailconf with `config` and its DNS and HTTPS listeners on `dns` and `tls` (HTTP and metrics
/// on free ports).
fn mailconf_on(config: &Path, dns: &str, tls: &str) -> Server {
    Server::start(
        config,
        &[
            "--dns-listen",
            dns,
            "--https-listen",
            tls,
            "--http-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        4,
    )
}

/// mailconf again on the same DNS and HTTPS ports (Pebble resolves and validates there).
fn restart(dir: &Path, dns_port: u16, tls_port: u16) -> Server {
    mailconf_on(
        &dir.join("mailconf.toml"),
        &format!("127.0.0.1:{dns_port}"),
        &format!("127.0.0.1:{tls_port}"),
    )
}

/// Log lines with `what`.
fn lines(s: &Server, what: &str) -> usize {
    s.log_text().lines().filter(|l| l.contains(what)).count()
}

/// Wait up to `secs` until `pred` holds; panics with `what`, mailconf's log and the front's.
fn wait(s: &Server, front: &Front, secs: u64, what: &str, pred: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !pred() {
        assert!(alive(s), "mailconf stopped waiting for {what}:\n{}", s.log_text());
        assert!(
            Instant::now() < deadline,
            "timed out ({secs} s) waiting for {what}:\n{}\n--- front ---\n{}",
            s.log_text(),
            front.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether mailconf still runs (not exited, not a zombie).
fn alive(s: &Server) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", s.child.id())).is_ok_and(|stat| {
        !matches!(
            stat.rsplit_once(')').map(|(_, r)| r.trim_start().as_bytes()[0]),
            Some(b'Z' | b'X')
        )
    })
}

/// The names of the first certificate in a PEM file.
fn cert_names(path: &Path) -> Vec<String> {
    use rustls::pki_types::pem::PemObject;
    let Some(Ok(der)) = rustls::pki_types::CertificateDer::pem_file_iter(path).unwrap().next() else {
        return Vec::new();
    };
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect()
}

/// The plain HTTP listener (`addrs("HTTP")` also finds HTTPS).
fn plain_http(s: &Server) -> SocketAddr {
    s.log_text()
        .lines()
        .filter(|l| l.contains("HTTP listening"))
        .find_map(|l| l.split("addr=").nth(1)?.split_whitespace().next()?.parse().ok())
        .expect("an HTTP listener")
}

/// How often the process's threads have been switched out (woken up again), from /proc: a loop
/// that sleeps 0 s goes round once per millisecond of the runtime's timer, cheap in CPU with
/// few domains but visible here.
fn wakeups(pid: u32) -> u64 {
    let mut n = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap_or_default();
        n += status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    n
}

/// CPU seconds (user + system) the process has used, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// An HTTPS GET of /healthz for `name`, verified against `root`.
fn healthz(tls: SocketAddr, root: &Path, name: &str) -> Result<u16, String> {
    https_get(tls, root, name, "/healthz").map(|r| r.status)
}

/// The CA not running when mailconf starts: HTTP is served, the pause is logged once (not per
/// domain), attempts
/// back off (the front counts them: 1 s, 2 s, 4 s … apart, no busy loop), and the certificate is
/// ordered once the CA is there. Then a restart while the CA accepts connections but never
/// answers: the cached certificate is served, and each exchange with the CA gives up after 30 s
/// (before, one silent CA held the scheduler forever), and orders resume when it answers.
#[test]
fn ca_down_or_silent_at_start_pauses_once_backs_off_and_orders_when_it_answers() {
    let dir = temp_dir("acme-faults-down");
    let front = Front::start(&dir);
    front.set_down(true);
    let first = ["one.faults.test", "three.faults.test"];
    let (s, _pebble, mgmt_port, dns_port, tls_port) = start(&dir, &front, &first, &[]);
    let t0 = Instant::now();
    wait(&s, &front, 60, "four attempts to reach the CA", || {
        front.refused().len() >= 4
    });
    // Plain HTTP is served meanwhile.
    let http = plain_http(&s);
    let r = http_get(
        http,
        "/mail/config-v1.1.xml?emailaddress=fred%40one.faults.test",
        "autoconfig.one.faults.test",
    );
    assert_eq!(r.status, 200);
    assert!(r.text().contains("mail.faults.test"));
    let refused = front.refused();
    let gaps: Vec<f64> = refused.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    assert!(
        refused.len() <= 6 && gaps[1] >= 0.8 && gaps[2] >= 2.8,
        "attempts back off (1 s, 2 s, 4 s …, each up to 1 s less: the clock is in whole seconds): {} in {:?}, gaps {gaps:?}",
        refused.len(),
        t0.elapsed()
    );
    assert_eq!(
        lines(&s, "ACME orders paused"),
        1,
        "the pause is logged once:\n{}",
        s.log_text()
    );
    assert!(issued(&s).is_empty());
    // The CA comes up: the next attempt orders.
    front.set_down(false);
    wait(&s, &front, 90, "certificates once the CA is up", || {
        issued(&s).len() == 2
    });
    wait(&s, &front, 10, "the resume line", || {
        lines(&s, "ACME orders resume") == 1
    });
    let root = root(&dir, mgmt_port);
    assert_eq!(
        healthz(
            SocketAddr::from(([127, 0, 0, 1], tls_port)),
            &root,
            "autoconfig.one.faults.test"
        ),
        Ok(200)
    );
    assert_eq!(lines(&s, "ACME orders paused"), 1, "{}", s.log_text());
    drop(s);

    // Restart with a second domain while the CA accepts connections and never answers.
    front.rule(|_, _| Action::Hang);
    write_config(
        &dir.join("mailconf.toml"),
        &dir,
        front.addr.port(),
        &["one.faults.test", "three.faults.test", "two.faults.test"],
        &[],
    );
    let s = restart(&dir, dns_port, tls_port);
    let tls = s.addrs("HTTPS")[0];
    s.wait_log(|l| l.contains("ACME cache: 2 certified"), 1, "the cache scan");
    assert_eq!(
        healthz(tls, &root, "autoconfig.one.faults.test"),
        Ok(200),
        "the cached certificate"
    );
    wait(&s, &front, 90, "the silent CA to pause orders", || {
        s.log_text()
            .lines()
            .any(|l| l.contains("ACME orders paused") && l.contains("no answer from the CA within 30 s"))
    });
    assert_eq!(healthz(tls, &root, "autoconfig.one.faults.test"), Ok(200));
    front.rule(|_, _| Action::Forward);
    wait(&s, &front, 90, "two.faults.test once the CA answers", || {
        issued(&s) == ["autoconfig.two.faults.test"]
    });
    assert_eq!(healthz(tls, &root, "autoconfig.two.faults.test"), Ok(200));
    assert_eq!(lines(&s, "ACME orders paused"), 1, "{}", s.log_text());
    assert!(alive(&s), "{}", s.log_text());
}

/// Errors in the middle of orders, beside a domain that never validates: the CA's first answer
/// to a new order is a 503 (every order pauses, nothing is counted), the first four finalize
/// requests get no answer (all four order slots wait; the failing domain's retries fall due
/// meanwhile and must not spin the scheduler), the fifth's connection is cut, the sixth gets a
/// 503. Each of those orders fails alone and is retried after its back-off; every domain that
/// can validate gets its certificate; the failing one keeps being retried, as `/metrics` and
/// `mailconf acme status` show.
#[test]
fn errors_mid_order_and_a_failing_domain_hold_up_nothing() {
    let dir = temp_dir("acme-faults-mid-order");
    let front = Front::start(&dir);
    let (mut new_orders, mut finalizes) = (0, 0);
    front.rule(move |method, path| {
        if method != "POST" {
            return Action::Forward;
        }
        if path.starts_with("/order-plz") {
            new_orders += 1;
            if new_orders == 1 {
                return Action::Status(503);
            }
        }
        if path.starts_with("/finalize-order/") {
            finalizes += 1;
            return match finalizes {
                1..=4 => Action::Hang,
                5 => Action::Drop,
                6 => Action::Status(503),
                _ => Action::Forward,
            };
        }
        Action::Forward
    });
    let valid = ["a.faults.test", "b.faults.test", "c.faults.test", "d.faults.test"];
    let (s, _pebble, mgmt_port, _, tls_port) = start(&dir, &front, &valid, &["fail.faults.test"]);
    wait(&s, &front, 90, "four orders waiting at finalize", || {
        front.seen("POST", "/finalize-order/").len() >= 4
    });
    // All four slots wait on the CA; the failing domain's retry falls due meanwhile.
    let pid = s.child.id();
    let (cpu, woken) = (cpu_seconds(pid), wakeups(pid));
    std::thread::sleep(Duration::from_secs(10));
    let (cpu, woken) = (cpu_seconds(pid) - cpu, wakeups(pid) - woken);
    eprintln!("while every order waits: {cpu:.2} s of CPU and {woken} wake-ups in 10 s");
    assert!(
        cpu < 2.0 && woken < 2000,
        "{cpu:.1} s of CPU and {woken} wake-ups in 10 s while every order waits: a busy loop\n{}",
        s.log_text()
    );
    assert_eq!(issued(&s), Vec::<String>::new());
    wait(&s, &front, 150, "every domain that validates", || {
        issued(&s).len() == valid.len()
    });
    let log = s.log_text();
    let failed = |what: &str| {
        log.lines()
            .filter(|l| l.contains("ACME order failed (will retry)") && l.contains(what))
            .count()
    };
    assert_eq!(failed("no answer from the CA within 30 s"), 4, "{log}");
    assert!(failed("503") >= 1, "{log}");
    assert_eq!(
        lines(&s, "ACME orders paused"),
        1,
        "the 503 to a new order paused all:\n{log}"
    );
    assert!(
        failed("certificate=autoconfig.fail.faults.test") >= 2,
        "the failing domain is retried:\n{log}"
    );
    // Each order that failed was retried and issued.
    let mut names = issued(&s);
    names.sort();
    assert_eq!(names, valid.map(|d| format!("autoconfig.{d}")));
    let root = root(&dir, mgmt_port);
    let tls = SocketAddr::from(([127, 0, 0, 1], tls_port));
    for d in valid {
        assert_eq!(healthz(tls, &root, &format!("autodiscover.{d}")), Ok(200));
    }
    assert!(healthz(tls, &root, "autoconfig.fail.faults.test").is_err());
    // /metrics: four certified, the failing one failing (between its retries).
    let metrics = s.addrs("metrics")[0];
    wait(&s, &front, 60, "/metrics to show 4 certified and 1 failing", || {
        acme_gauge(metrics, "certified") == Some(4) && acme_gauge(metrics, "failing") == Some(1)
    });
    let out = acme_status(dir.join("mailconf.toml"), None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "one has none:\n{text}");
    assert_eq!(text.matches(": valid until").count(), 4, "{text}");
    assert!(
        text.contains("autoconfig.fail.faults.test autodiscover.fail.faults.test: none yet"),
        "{text}"
    );
    assert!(alive(&s), "{}", s.log_text());
}

/// Cache files broken while mailconf was stopped: one cut inside the CA's certificate, one cut
/// inside the leaf, one with another private key. None is served: the first two are reported at
/// start, the third when a handshake loads it; each is ordered again, and then served.
#[test]
fn broken_certificate_cache_files_are_reported_and_ordered_again_never_served() {
    let dir = temp_dir("acme-faults-cache");
    let front = Front::start(&dir);
    let valid = ["cut-chain.faults.test", "cut-leaf.faults.test", "other-key.faults.test"];
    let (s, _pebble, mgmt_port, dns_port, tls_port) = start(&dir, &front, &valid, &[]);
    wait(&s, &front, 90, "three certificates", || issued(&s).len() == 3);
    drop(s);
    let root = root(&dir, mgmt_port);
    let cache = dir.join("acme-cache");
    let file_of = |domain: &str| -> PathBuf {
        std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name().unwrap().to_string_lossy().starts_with("cached_cert_")
                    && cert_names(p).iter().any(|n| n.ends_with(domain))
            })
            .unwrap_or_else(|| panic!("no cache file for {domain}"))
    };
    let pem = |p: &Path| std::fs::read_to_string(p).unwrap();
    let chain = file_of("cut-chain.faults.test");
    let text = pem(&chain);
    let second = text
        .match_indices("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .expect("a chain")
        .0;
    std::fs::write(&chain, &text[..second + 200]).unwrap();
    let leaf = file_of("cut-leaf.faults.test");
    let text = pem(&leaf);
    let first = text.find("-----BEGIN CERTIFICATE-----").unwrap();
    std::fs::write(&leaf, &text[..first + 300]).unwrap();
    let other = file_of("other-key.faults.test");
    let text = pem(&other);
    let first = text.find("-----BEGIN CERTIFICATE-----").unwrap();
    let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    std::fs::write(&other, format!("{key}\n{}", &text[first..])).unwrap();

    // `acme status` checks what a handshake would load.
    let out = acme_status(dir.join("mailconf.toml"), None);
    let status = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{status}");
    assert!(
        status.contains("cut-chain.faults.test: unusable (a PEM section is cut or damaged)"),
        "{status}"
    );
    assert!(
        status.contains("cut-leaf.faults.test: unusable (a PEM section is cut or damaged)"),
        "{status}"
    );
    assert!(
        status.contains("other-key.faults.test: unusable (the private key is not the certificate's)"),
        "{status}"
    );

    let s = restart(&dir, dns_port, tls_port);
    s.wait_log(|l| l.contains("ACME cache: 1 certified"), 1, "the cache scan");
    let unusable = |d: &str| {
        s.log_text()
            .lines()
            .filter(|l| {
                l.contains("ACME cached certificate unusable") && l.contains(&format!("certificate=autoconfig.{d}"))
            })
            .count()
    };
    assert_eq!(unusable("cut-chain.faults.test"), 1, "{}", s.log_text());
    assert_eq!(unusable("cut-leaf.faults.test"), 1, "{}", s.log_text());
    // The scan takes the file with another key (it is whole); the first handshake loads it,
    // refuses it, and offers no certificate (not one with the wrong key).
    let tls = s.addrs("HTTPS")[0];
    let err = healthz(tls, &root, "autoconfig.other-key.faults.test").unwrap_err();
    assert!(
        err.contains("AccessDenied"),
        "no certificate offered (the server refuses the handshake): {err}"
    );
    wait(&s, &front, 20, "the wrong key reported", || {
        unusable("other-key.faults.test") == 1
    });
    wait(&s, &front, 90, "all three ordered again", || issued(&s).len() == 3);
    for d in valid {
        assert_eq!(healthz(tls, &root, &format!("autoconfig.{d}")), Ok(200), "{d}");
    }
    assert!(alive(&s), "{}", s.log_text());
}

/// The test's own CA (not Pebble's), for certificates put into the cache as an earlier order
/// would have left them, with the lifetimes a test needs: Pebble's are valid for years, so a
/// renewal never falls due in a test. Its root is `dir/local-ca.pem`.
struct LocalCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
    root: PathBuf,
}

impl LocalCa {
    fn new(dir: &Path) -> LocalCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mailconf test local CA");
        let pem = params.self_signed(&key).unwrap().pem();
        let root = dir.join("local-ca.pem");
        std::fs::write(&root, &pem).unwrap();
        LocalCa {
            issuer: rcgen::Issuer::new(params, key),
            pem,
            root,
        }
    }

    /// Put a certificate for `domain`'s web names into `cache` (for the CA at `directory`),
    /// issued `age` ago and valid for `left` more.
    fn seed(&self, cache: &Path, directory: &str, domain: &str, age: Duration, left: Duration) {
        let names: Vec<String> = mailconf::vocab::web_labels(false, false)
            .map(|l| mailconf::vocab::web_host(l, domain))
            .collect();
        let now = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(mailconf::acme::clock::now() as u64);
        let mut params = rcgen::CertificateParams::new(names.clone()).unwrap();
        params.not_before = now - age;
        params.not_after = now + left;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        std::fs::create_dir_all(cache).unwrap();
        let pem = format!("{}\n{}{}", key.serialize_pem(), cert.pem(), self.pem);
        mailconf::acme::cache::write(
            &mailconf::acme::cache::cert_file(cache, &names, directory),
            pem.as_bytes(),
        )
        .unwrap();
    }
}

/// The CA down when a certificate falls due for renewal: a certificate from the cache, issued
/// two hours ago and expiring in 30 minutes (renewal is due at two thirds of its lifetime), is
/// served while the CA resets connections and then answers 503 to every new order; the attempts
/// back off as orders do (1 s, 2 s, 4 s …, one pause logged); once the CA answers, the
/// certificate is renewed and the new one is served, without a restart. Which certificate is
/// served is told by the client's roots: the local CA's verifies only the old one, Pebble's
/// only the new one.
#[test]
fn ca_down_at_renewal_keeps_serving_the_old_certificate_and_renews_when_it_answers() {
    let dir = temp_dir("acme-faults-renewal");
    let front = Front::start(&dir);
    front.set_down(true);
    let local = LocalCa::new(&dir);
    let domain = "renew.faults.test";
    let directory = format!("https://127.0.0.1:{}/dir", front.addr.port());
    local.seed(
        &dir.join("acme-cache"),
        &directory,
        domain,
        Duration::from_secs(2 * 3600),
        Duration::from_secs(1800),
    );
    let (s, _pebble, mgmt_port, _, tls_port) = start(&dir, &front, &[domain], &[]);
    let tls = SocketAddr::from(([127, 0, 0, 1], tls_port));
    let name = format!("autoconfig.{domain}");
    s.wait_log(
        |l| l.contains("ACME cache: 0 certified, 1 to order"),
        1,
        "the cache scan",
    );
    let pebble_root = root(&dir, mgmt_port);
    let served = |what: &str| {
        let old = healthz(tls, &local.root, &name);
        let new = healthz(tls, &pebble_root, &name);
        eprintln!("{what}: local CA's {old:?}, Pebble's {new:?}");
        (old == Ok(200), new == Ok(200))
    };

    // Down: connections reset.
    wait(&s, &front, 60, "three attempts to reach the CA", || {
        front.refused().len() >= 3
    });
    assert_eq!(served("CA down"), (true, false), "the old certificate");
    let refused = front.refused();
    let gaps: Vec<f64> = refused.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    assert!(
        refused.len() <= 4 && gaps[1] >= 0.8,
        "attempts back off: {} attempts, gaps {gaps:?}",
        refused.len()
    );

    // Up, but every new order gets a 503.
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    front.rule(move |method, path| {
        if method == "POST" && path.starts_with("/order-plz") {
            seen.lock().unwrap().push(Instant::now());
            return Action::Status(503);
        }
        Action::Forward
    });
    front.set_down(false);
    wait(&s, &front, 60, "two new orders answered 503", || {
        errors.lock().unwrap().len() >= 2
    });
    assert_eq!(served("CA answering 503"), (true, false), "still the old certificate");
    let at = errors.lock().unwrap().clone();
    assert!(
        (at[1] - at[0]).as_secs_f64() >= 3.0,
        "the back-off went on growing: {:?} between the 503s",
        at[1] - at[0]
    );
    assert_eq!(
        lines(&s, "ACME orders paused"),
        1,
        "one pause for the whole outage:\n{}",
        s.log_text()
    );
    assert!(issued(&s).is_empty());

    // The CA answers: renewed, and the new certificate is served by the same process.
    front.rule(|_, _| Action::Forward);
    wait(&s, &front, 120, "the renewal once the CA answers", || {
        issued(&s) == [name.clone()]
    });
    assert_eq!(served("renewed"), (false, true), "the new certificate");
    let started: Vec<String> = s
        .log_text()
        .lines()
        .filter(|l| l.contains("ACME order started"))
        .map(str::to_string)
        .collect();
    assert!(started.iter().all(|l| l.contains("reason=Renewal")), "{started:?}");
    assert_eq!(lines(&s, "ACME orders resume"), 1, "{}", s.log_text());
    assert!(alive(&s), "{}", s.log_text());
}

/// The ACME account key file in `cache_dir`.
fn account_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir.join("acme-cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("cached_account_") && !name.contains(".damaged-")
        })
        .expect("an account key file")
}

/// Whether `der` is a P-256 key in PKCS #8, as the ACME client signs with (read by ring).
fn p256_key(der: &[u8]) -> bool {
    ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        der,
        &ring::rand::SystemRandom::new(),
    )
    .is_ok()
}

/// The account key file damaged while mailconf was stopped: cut, garbage, a key of another type.
/// Each time the next start reports it once (the file and why), keeps it aside as
/// `NAME.damaged-UNIXTIME` with its bytes, makes a new key and account at the CA, and orders
/// the new domain. Before, every order stayed paused for good, retried with back-off.
#[test]
fn a_damaged_account_key_is_kept_aside_and_a_new_account_made() {
    let dir = temp_dir("acme-faults-account");
    let front = Front::start(&dir);
    let mut domains = vec!["first.faults.test".to_string()];
    fn names(d: &[String]) -> Vec<&str> {
        d.iter().map(String::as_str).collect()
    }
    let (s, _pebble, _, dns_port, tls_port) = start(&dir, &front, &names(&domains), &[]);
    wait(&s, &front, 90, "the first certificate", || issued(&s).len() == 1);
    drop(s);
    let file = account_file(&dir);
    let good = std::fs::read(&file).unwrap();
    assert!(p256_key(&good), "the saved key reads");
    assert_eq!(front.seen("POST", "/sign-me-up").len(), 1);
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
        .unwrap()
        .serialize_der();
    let damages: [(&str, Vec<u8>, &str); 3] = [
        ("cut", good[..good.len() / 2].to_vec(), "not a whole PKCS #8 P-256 key"),
        (
            "garbage",
            b"-----BEGIN NONSENSE-----\n\x00\xff\x13 not a key\n".to_vec(),
            "not a whole PKCS #8 P-256 key",
        ),
        ("p384", p384, "not a P-256 ECDSA key"),
    ];
    for (i, (what, bytes, why)) in damages.into_iter().enumerate() {
        std::fs::write(&file, &bytes).unwrap();
        let domain = format!("{what}.faults.test");
        domains.push(domain.clone());
        write_config(
            &dir.join("mailconf.toml"),
            &dir,
            front.addr.port(),
            &names(&domains),
            &[],
        );
        let s = restart(&dir, dns_port, tls_port);
        wait(&s, &front, 90, &format!("{domain} with a new account"), || {
            issued(&s) == [format!("autoconfig.{domain}")]
        });
        let reports: Vec<String> = s
            .log_text()
            .lines()
            .filter(|l| l.contains("ACME account key damaged"))
            .map(str::to_string)
            .collect();
        assert_eq!(reports.len(), 1, "{what}: reported once:\n{}", s.log_text());
        assert!(
            reports[0].contains(&file.display().to_string()) && reports[0].contains(why),
            "{what}: the file and why: {}",
            reports[0]
        );
        assert_eq!(lines(&s, "ACME orders paused"), 0, "{}", s.log_text());
        let aside = reports[0]
            .split("kept_as=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("where it was kept: {}", reports[0]));
        assert!(
            aside
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{}.damaged-", file.file_name().unwrap().to_string_lossy())),
            "{aside:?}"
        );
        assert_eq!(std::fs::read(&aside).unwrap(), bytes, "{what}: kept as it was");
        let new = std::fs::read(&file).unwrap();
        assert!(p256_key(&new) && new != good, "{what}: a new key saved");
        assert_eq!(
            front.seen("POST", "/sign-me-up").len(),
            i + 2,
            "{what}: a new account at the CA"
        );
        drop(s);
    }
}

/// The `mailconf_acme_certificates{state=…}` gauge, if `/metrics` has it.
fn acme_gauge(metrics: SocketAddr, state: &str) -> Option<u64> {
    let text = http_get(metrics, "/metrics", "x").text();
    text.lines()
        .find(|l| l.starts_with(&format!("mailconf_acme_certificates{{state=\"{state}\"}}")))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

/// A CA that accepts connections and never answers while the account is made (30 s until that
/// exchange gives up): nothing else waits for it. Within a few seconds of the CA's first
/// silence, `/metrics` shows the cache scan, a handshake for a cached certificate is served, a
/// handshake for a missing one is taken as on demand, and a reload (SIGHUP) that adds a domain
/// is scanned; the pause comes when the 30 s are over. Before, the scheduler made the account
/// inside its loop: none of that happened until the CA gave up. No Pebble: the certificates are
/// the test's own CA's, and the CA is only the silent front.
///
/// Meanwhile a certificate due for renewal expires (20 s after the test made it): served before,
/// no longer after (no certificate offered, as for a name without one), although a handshake
/// had put it in memory; before, the one in memory was served expired.
#[test]
fn a_silent_ca_while_the_account_is_made_holds_up_nothing_else_and_no_expired_cert_is_served() {
    let dir = temp_dir("acme-faults-account-silent");
    let front = Front::start(&dir);
    front.rule(|_, _| Action::Hang);
    let local = LocalCa::new(&dir);
    let directory = format!("https://127.0.0.1:{}/dir", front.addr.port());
    let cache = dir.join("acme-cache");
    let (day, month) = (Duration::from_secs(86_400), Duration::from_secs(30 * 86_400));
    for d in ["a.faults.test", "b.faults.test", "later.faults.test"] {
        local.seed(&cache, &directory, d, day, month);
    }
    let expires = mailconf::acme::clock::now() + 20;
    local.seed(
        &cache,
        &directory,
        "expiring.faults.test",
        Duration::from_secs(7200),
        Duration::from_secs(20),
    );
    // The front's certificate, in ca_roots (Pebble's, had it run).
    common::pebble::listener_cert(&dir);
    let config = dir.join("mailconf.toml");
    let domains = [
        "a.faults.test",
        "b.faults.test",
        "none.faults.test",
        "expiring.faults.test",
    ];
    write_config(&config, &dir, front.addr.port(), &domains, &[]);
    let s = mailconf_on(&config, "127.0.0.1:0", "127.0.0.1:0");
    let (tls, metrics) = (s.addrs("HTTPS")[0], s.addrs("metrics")[0]);
    let expiring = "autoconfig.expiring.faults.test";
    assert_eq!(healthz(tls, &local.root, expiring), Ok(200), "not expired yet");
    assert!(
        mailconf::acme::clock::now() < expires,
        "the start took too long to test anything"
    );
    wait(&s, &front, 20, "the CA asked for its directory", || {
        front.seen("GET", "/dir") == [Action::Hang]
    });
    let silent = Instant::now();
    // Each check must hold well before the CA's 30 s are over.
    let soon = |what: &str, pred: &dyn Fn() -> bool| {
        while !pred() {
            assert!(
                silent.elapsed() < Duration::from_secs(10),
                "{what}: still not done {:?} into the CA's silence:\n{}",
                silent.elapsed(),
                s.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{what}: {:?} into the CA's silence", silent.elapsed());
    };
    soon("/metrics shows the cache scan", &|| {
        acme_gauge(metrics, "certified") == Some(2) && acme_gauge(metrics, "queued") == Some(2)
    });
    assert_eq!(healthz(tls, &local.root, "autoconfig.a.faults.test"), Ok(200));
    assert!(healthz(tls, &local.root, "autoconfig.none.faults.test").is_err());
    soon("the handshake's request taken", &|| lines(&s, "ACME on demand") == 1);
    write_config(
        &config,
        &dir,
        front.addr.port(),
        &[
            "a.faults.test",
            "b.faults.test",
            "none.faults.test",
            "expiring.faults.test",
            "later.faults.test",
        ],
        &[],
    );
    s.signal("HUP");
    soon("the reload's domain scanned", &|| {
        acme_gauge(metrics, "certified") == Some(3)
    });
    assert_eq!(healthz(tls, &local.root, "autoconfig.later.faults.test"), Ok(200));
    assert_eq!(lines(&s, "ACME orders paused"), 0, "the CA is still silent");
    assert_eq!(
        front.seen("GET", "/dir"),
        [Action::Hang],
        "one account attempt at a time"
    );
    // Waiting for the account is no busy loop (an order is due all along).
    let pid = s.child.id();
    let (cpu, woken) = (cpu_seconds(pid), wakeups(pid));
    std::thread::sleep(Duration::from_secs(5));
    let (cpu, woken) = (cpu_seconds(pid) - cpu, wakeups(pid) - woken);
    eprintln!("while the account is made: {cpu:.2} s of CPU and {woken} wake-ups in 5 s");
    assert!(
        cpu < 1.0 && woken < 1000,
        "{cpu:.1} s of CPU, {woken} wake-ups in 5 s: a busy loop"
    );
    // Expired while the CA is silent: offered no more, like a name without a certificate.
    while mailconf::acme::clock::now() <= expires + 1 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let none = healthz(tls, &local.root, "autoconfig.none.faults.test").unwrap_err();
    let expired = healthz(tls, &local.root, expiring).unwrap_err();
    eprintln!("expired: {expired}; none: {none}");
    assert!(
        !expired.contains("Expired") && expired == none.replace("none.", "expiring."),
        "no certificate offered once expired: {expired} (a name without one: {none})"
    );
    assert_eq!(healthz(tls, &local.root, "autoconfig.a.faults.test"), Ok(200));
    assert!(
        mailconf::acme::clock::now() < expires + 5,
        "the CA's silence is not over yet"
    );
    // The attempt gives up after 30 s and pauses orders; the others were served all along.
    wait(&s, &front, 60, "the silent CA to pause orders", || {
        s.log_text()
            .lines()
            .any(|l| l.contains("ACME orders paused") && l.contains("no answer from the CA within 30 s"))
    });
    assert!(silent.elapsed() >= Duration::from_secs(29));
    assert!(alive(&s), "{}", s.log_text());
}

/// Issue 13, ARI (RFC 9773) against a CA that offers it: Pebble 2.4 has none, so the front adds
/// a `renewalInfo` URL to its directory and answers renewal information itself, with a window
/// that has passed (as after a revocation). mailconf reads the directory with its own client,
/// asks for the certificate's window under its certID — the one openssl computes from the
/// certificate's Authority Key Identifier and serial number — and renews at once: a second order,
/// as a renewal.
#[test]
fn a_renewal_window_from_the_ca_that_has_passed_renews_at_once() {
    use base64::Engine;
    let dir = temp_dir("acme-faults-ari");
    let front = Front::start(&dir);
    let now = mailconf::acme::clock::now();
    front.rule(move |method, path| match (method, path) {
        ("GET", "/dir") => Action::WithRenewalInfo,
        ("GET", p) if p.starts_with("/renewal-info/") => Action::Window(now - 2 * 86_400, now - 86_400),
        _ => Action::Forward,
    });
    let name = "one.faults.test";
    let (s, _pebble, _mgmt, _dns, _tls) = start(&dir, &front, &[name], &[]);
    wait(&s, &front, 90, "the first certificate", || issued(&s).len() == 1);
    // The certificate's ID as RFC 9773 §4.1 makes it, from openssl's reading of the cache file.
    let names = vec![format!("autoconfig.{name}"), format!("autodiscover.{name}")];
    let directory = format!("https://127.0.0.1:{}/dir", front.addr.port());
    let file = mailconf::acme::cache::cert_file(&dir.join("acme-cache"), &names, &directory);
    let out = Command::new(common::tool("openssl", "openssl"))
        .args(["x509", "-noout", "-serial", "-ext", "authorityKeyIdentifier", "-in"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let hex = |h: &str| -> Vec<u8> {
        let h: String = h.chars().filter(char::is_ascii_hexdigit).collect();
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    };
    let serial = hex(text.lines().find_map(|l| l.strip_prefix("serial=")).unwrap());
    // DER content octets: a leading zero when the high bit is set.
    let serial = if serial[0] & 0x80 != 0 {
        [&[0u8][..], &serial].concat()
    } else {
        serial
    };
    let aki = hex(text
        .lines()
        .skip_while(|l| !l.contains("Authority Key Identifier"))
        .nth(1)
        .unwrap()
        .trim()
        .trim_start_matches("keyid:"));
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let cert_id = format!("{}.{}", b64(&aki), b64(&serial));
    wait(&s, &front, 60, "the renewal", || issued(&s).len() == 2);
    assert!(
        lines(&s, "the CA offers renewal information (ARI)") == 1,
        "{}",
        s.log_text()
    );
    assert_eq!(
        front.seen("GET", &format!("/renewal-info/{cert_id}")).len(),
        1,
        "asked once, under the certID openssl gives ({cert_id}):\n{}",
        front.log()
    );
    let log = s.log_text();
    assert_eq!(lines(&s, "ACME renewal inside the CA's window (ARI)"), 1, "{log}");
    let renewal = log
        .lines()
        .filter(|l| l.contains("ACME order started"))
        .nth(1)
        .unwrap_or_else(|| panic!("no second order:\n{log}"));
    assert!(renewal.contains("reason=Renewal"), "{renewal}");
    // The renewal order says which certificate it replaces (RFC 9773 §5); the first order
    // replaced none. Pebble 2.4 ignores the field and issues.
    let orders: Vec<String> = front
        .payloads()
        .into_iter()
        .filter(|p| p.contains("\"identifiers\""))
        .collect();
    assert_eq!(orders.len(), 2, "{orders:?}");
    assert!(!orders[0].contains("replaces"), "{}", orders[0]);
    let second: serde_json::Value = serde_json::from_str(&orders[1]).unwrap();
    assert_eq!(second["replaces"], cert_id.as_str(), "{second}");
    // Such a renewal is exempt from the new-order limit (as at Let's Encrypt): only the first
    // order took from the budget.
    let status = acme_status(dir.join("mailconf.toml"), None);
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(status.contains("order budget: 299 of 300 per 3 h left"), "{status}");
    // The window kept for `acme status` was the replaced certificate's: the new one shows
    // two thirds of its lifetime until the CA is asked about it.
    assert!(status.contains("(two thirds of its lifetime)"), "{status}");
    // The renewed certificate asks later (within six hours), not in a loop.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(front.seen("GET", "/renewal-info/").len(), 1, "{}", front.log());
}

/// Issue 13, ARI: a window in the future is kept: no renewal yet, and `mailconf acme status`
/// (which reads only `cache_dir`) says when inside the CA's window the certificate renews,
/// instead of two thirds of its lifetime. The time is drawn once per window: asked again after
/// a restart, the CA's same window gives the same time (a new draw at every answer would pull
/// renewals towards the window's start).
#[test]
fn a_renewal_window_ahead_is_what_acme_status_shows() {
    let dir = temp_dir("acme-faults-ari-ahead");
    let front = Front::start(&dir);
    let now = mailconf::acme::clock::now();
    front.rule(move |method, path| match (method, path) {
        ("GET", "/dir") => Action::WithRenewalInfo,
        ("GET", p) if p.starts_with("/renewal-info/") => Action::Window(now + 3 * 3600, now + 4 * 3600),
        _ => Action::Forward,
    });
    let (s, _pebble, _mgmt, dns_port, tls_port) = start(&dir, &front, &["ahead.faults.test"], &[]);
    wait(&s, &front, 90, "the first certificate", || issued(&s).len() == 1);
    let status = || {
        let out = acme_status(dir.join("mailconf.toml"), None);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    wait(&s, &front, 30, "the window in `acme status`", || {
        status().contains("the CA's window")
    });
    let text = status();
    let line = text.lines().find(|l| l.contains("the CA's window")).unwrap();
    // "… renews T (the CA's window A to B)": A ≤ T < B, and A is about 3 h from now.
    let times: Vec<i64> = line
        .split([' ', '(', ')', ','])
        .filter_map(mailconf::acme::ari::rfc3339)
        .collect();
    assert_eq!(times.len(), 4, "not_after, renewal, window start and end: {line}");
    let (at, start, end) = (times[1], times[2], times[3]);
    assert!(start <= at && at < end, "{line}");
    assert_eq!((start, end), (now + 3 * 3600, now + 4 * 3600), "{line}");
    assert_eq!(
        lines(&s, "ACME renewal inside the CA's window (ARI)"),
        1,
        "{}",
        s.log_text()
    );
    assert_eq!(issued(&s).len(), 1, "no renewal yet:\n{}", s.log_text());
    drop(s);

    let asked = front.seen("GET", "/renewal-info/").len();
    let s = restart(&dir, dns_port, tls_port);
    wait(&s, &front, 60, "the window asked for again", || {
        front.seen("GET", "/renewal-info/").len() > asked
    });
    wait(&s, &front, 10, "the answer taken", || {
        s.log_text().contains("ACME renewal inside the CA's window (ARI)")
    });
    let again = status();
    assert!(
        again.contains(line),
        "the same renewal time after a restart:\n{line}\n{again}"
    );
    assert_eq!(issued(&s).len(), 0, "no renewal yet:\n{}", s.log_text());
}
