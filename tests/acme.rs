//! ACME for real, offline: Debian's `pebble` (Let's Encrypt's test CA) on loopback validates
//! mailconf through TLS-ALPN-01, resolving the names through mailconf's own DNS; the issued
//! certificate then serves HTTPS that verifies against pebble's root, and survives a restart.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::pebble::{acme_status, issued, pebble_for};
use common::{Server, https_get, temp_dir, tool};

/// mailconf's settings with ACME from pebble's directory at `acme_port`.
fn write_config(config: &std::path::Path, dir: &std::path::Path, acme_port: u16) {
    let text = config_text(dir, acme_port, "", "autoconfig_addresses = [\"127.0.0.1\"]\n");
    std::fs::write(
        config,
        text + r#"
# No DNS records: its validation fails (pebble asks our DNS, which refuses), and that must not
# hold up acme.test.
[[domain]]
name = "fail.test"
provider = "p"
"#,
    )
    .unwrap();
}

/// Settings with ACME from pebble at `acme_port` (plus `acme` in `[server.tls.acme]`) and the
/// domain acme.test with DNS (plus `dns` in its `[domain.dns]`), served by mailconf.
pub(crate) fn config_text(dir: &std::path::Path, acme_port: u16, acme: &str, dns: &str) -> String {
    format!(
        r#"[server]
[server.tls.acme]
directory = "https://127.0.0.1:{acme_port}/dir"
contact = ["mailto:postmaster@acme.test"]
cache_dir = "{d}/acme-cache"
ca_roots = "{d}/pebble.pem"
{acme}
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
hosts = {{ mail = ["127.0.0.1"], ns = ["127.0.0.1"] }}
{dns}"#,
        d = dir.display()
    )
}

#[test]
fn certificate_from_pebble_via_tls_alpn_01_and_from_cache_after_restart() {
    let dir = temp_dir("acme");
    let config = dir.join("mailconf.toml");
    // Pebble binds ports named in its configuration, so they are found free first; when another
    // process takes one before pebble binds it, everything starts again on new ports. mailconf
    // binds port 0 and pebble is told what it got (its DNS, and the port TLS-ALPN-01 dials).
    let (s, _pebble, mgmt_port, _, tls_port) =
        pebble_for(&dir, &|acme_port| write_config(&config, &dir, acme_port), &|| {
            Server::start(
                &config,
                &["--dns-listen", "127.0.0.1:0", "--https-listen", "127.0.0.1:0"],
                2,
            )
        });
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
    let root_pem = common::pebble::root(&dir, mgmt_port);
    let tls_addr: std::net::SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    let r = https_get(
        tls_addr,
        &root_pem,
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

/// Settings for the scale test: `fail.test` first (no DNS records, so its validation fails), then
/// `n` domains that validate, and a small order budget.
fn write_scale_config(config: &std::path::Path, dir: &std::path::Path, acme_port: u16, n: usize, orders_per_3h: u32) {
    let mut text = format!(
        r#"[server]
[server.tls.acme]
directory = "https://127.0.0.1:{acme_port}/dir"
contact = ["mailto:postmaster@scale.test"]
cache_dir = "{d}/acme-cache"
ca_roots = "{d}/pebble.pem"
orders_per_3h = {orders_per_3h}
retry_after = 1

[provider.p]
display_name = "ACME Scale Test"
[[provider.p.server]]
protocol = "imap"
host = "mail.scale.test"
port = 993
security = "tls"
[[provider.p.server]]
protocol = "smtp"
host = "mail.scale.test"
port = 465
security = "tls"

[[domain]]
name = "fail.test"
provider = "p"
"#,
        d = dir.display()
    );
    for i in 0..n {
        text += &format!(
            r#"
[[domain]]
name = "d{i:02}.scale.test"
provider = "p"
[domain.dns]
nameservers = ["ns.d{i:02}.scale.test"]
autoconfig_addresses = ["127.0.0.1"]
hosts = {{ ns = ["127.0.0.1"] }}
"#
        );
    }
    std::fs::write(config, text).unwrap();
}

/// Pebble's "Added order" lines: one per new order it accepted.
fn pebble_orders(dir: &std::path::Path) -> usize {
    std::fs::read_to_string(dir.join("pebble.log"))
        .unwrap_or_default()
        .matches("Added order")
        .count()
}

/// Wait until every order the log says started has ended.
fn orders_done(s: &Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let count = |what: &str| s.log_text().matches(what).count();
    while count("ACME order started") > count("ACME certificate issued") + count("ACME order failed") {
        assert!(Instant::now() < deadline, "orders never finished:\n{}", s.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Issue 13: 1,000 domains and a budget of 12 orders. The scheduler never orders more than the
/// budget (pebble's count), a handshake for the last domain moves it to the front, the failing
/// domain is retried while the others get certificates, and a restart with a larger budget orders
/// only what is missing.
#[test]
fn a_thousand_domains_within_an_order_budget_with_on_demand_first_and_resume_after_restart() {
    const N: usize = 1000;
    const BUDGET: usize = 12;
    let dir = temp_dir("acme-scale");
    let config = dir.join("mailconf.toml");
    let ports = std::cell::Cell::new((0u16, 0u16));
    let (s, _pebble, mgmt_port, dns_port, tls_port) = pebble_for(
        &dir,
        &|acme_port| write_scale_config(&config, &dir, acme_port, N, BUDGET as u32),
        &|| {
            let s = Server::start(
                &config,
                &[
                    "--dns-listen",
                    "127.0.0.1:0",
                    "--https-listen",
                    "127.0.0.1:0",
                    "--metrics-listen",
                    "127.0.0.1:0",
                ],
                3,
            );
            // The first handshake for the last domain: no certificate yet, so it fails, and
            // the domain goes to the front of the queue.
            let tls = s.addrs("HTTPS")[0];
            let last = format!("autoconfig.d{}.scale.test", N - 1);
            assert!(https_get(tls, &dir.join("pebble.pem"), &last, "/healthz").is_err());
            // A name that is not configured orders nothing.
            assert!(https_get(tls, &dir.join("pebble.pem"), "autoconfig.elsewhere.test", "/healthz").is_err());
            ports.set((s.addrs("DNS")[0].port(), tls.port()));
            s
        },
    );
    assert_eq!(ports.get(), (dns_port, tls_port));
    let last = format!("autoconfig.d{}.scale.test", N - 1);
    let last = last.as_str();
    // The domain number of a certificate's first name.
    let number = |n: &str| -> usize {
        n.trim_start_matches("autoconfig.d")
            .split('.')
            .next()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !s.log_text().contains("ACME order budget used up") {
        assert!(Instant::now() < deadline, "budget never used up:\n{}", s.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    orders_done(&s);
    std::thread::sleep(Duration::from_secs(2));
    let log = s.log_text();
    assert_eq!(
        pebble_orders(&dir),
        BUDGET,
        "pebble's new orders = the budget, no more\n{log}"
    );
    assert_eq!(log.matches("ACME order started").count(), BUDGET, "{log}");
    let first = issued(&s);
    assert!(
        first.iter().any(|n| n == last),
        "the name asked for by a handshake was ordered within the budget: {first:?}\n{log}"
    );
    assert!(
        !first.iter().any(|n| number(n) >= N - 10 && n != last),
        "the domains before the last wait their turn: {first:?}"
    );
    assert!(
        log.contains(&format!(
            "ACME on demand: a handshake asked for it, ordered next certificate={last}"
        )),
        "{log}"
    );
    // The failing domain was tried more than once (backoff of 1 s, 2 s, …) and the others
    // went ahead meanwhile.
    let failures = log
        .lines()
        .filter(|l| l.contains("certificate=autoconfig.fail.test") && l.contains("will retry"))
        .count();
    assert!(failures >= 2, "fail.test retried: {failures}\n{log}");
    assert!(!log.contains("elsewhere.test"), "{log}");
    assert!(first.len() >= 6, "{first:?}");
    // Progress on /metrics.
    let metrics = common::http_get(s.addrs("metrics")[0], "/metrics", "x").text();
    let gauge = |state: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("mailconf_acme_certificates{{state=\"{state}\"}}")))
            .and_then(|l| l.rsplit(' ').next()?.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no {state} gauge:\n{metrics}"))
    };
    assert_eq!(gauge("certified"), first.len(), "{metrics}");
    assert_eq!(
        gauge("certified") + gauge("queued") + gauge("failing"),
        N + 1,
        "{metrics}"
    );
    let next: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mailconf_acme_next_order_timestamp_seconds "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        next > now + 60,
        "budget spent: next order in 15 min, not {}",
        next - now
    );
    // The certificate that jumped the queue serves HTTPS, verified against pebble's root.
    common::pebble::root(&dir, mgmt_port);
    let tls_addr: std::net::SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    assert_eq!(
        https_get(tls_addr, &dir.join("root.pem"), last, "/healthz")
            .unwrap()
            .status,
        200
    );
    // `acme status` reads the cache: the certified ones valid, the rest none yet (exit 1).
    let out = acme_status(&config, Some(&format!("d{}.scale.test", N - 1)));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with(&format!("{last} autodiscover.d{}.scale.test: valid until ", N - 1)),
        "{text}"
    );
    assert!(
        text.contains("order budget: 0 of 12 per 3 h left, next order allowed 20"),
        "{text}"
    );
    let out = acme_status(&config, None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "some have none yet:\n{text}");
    assert_eq!(text.matches(": valid until").count(), first.len(), "{text}");
    assert_eq!(text.matches(": none yet").count(), N + 1 - first.len(), "{text}");
    drop(s);

    // Restart on the same ports with a larger budget: the cached certificates are used, only
    // the missing ones are ordered, and only up to the new budget.
    let orders_before = pebble_orders(&dir);
    let acme_port: u16 = std::fs::read_to_string(&config)
        .unwrap()
        .split("https://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next()?.parse().ok())
        .unwrap();
    write_scale_config(&config, &dir, acme_port, N, 20);
    let s = Server::start(
        &config,
        &[
            "--dns-listen",
            &format!("127.0.0.1:{dns_port}"),
            "--https-listen",
            &format!("127.0.0.1:{tls_port}"),
        ],
        2,
    );
    s.wait_log(
        |l| l.contains(&format!("ACME cache: {} certified", first.len())),
        1,
        "the cache scan",
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while !s.log_text().contains("ACME order budget used up") {
        assert!(Instant::now() < deadline, "new budget never used up:\n{}", s.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    orders_done(&s);
    let log = s.log_text();
    let restarted: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ACME order started"))
        .filter_map(|l| l.split("certificate=").nth(1)?.split_whitespace().next())
        .collect();
    // The raised budget less what was spent (plus one if the bucket refilled one meanwhile:
    // 20 per 3 h is one every 9 minutes).
    assert!(
        (20 - BUDGET..=21 - BUDGET).contains(&restarted.len()),
        "the raised budget less what was spent: {restarted:?}"
    );
    for name in &first {
        assert!(
            !restarted.contains(&name.as_str()),
            "{name} re-ordered after restart:\n{log}"
        );
    }
    assert_eq!(pebble_orders(&dir), orders_before + restarted.len());
    assert_eq!(
        https_get(tls_addr, &dir.join("root.pem"), last, "/healthz")
            .unwrap()
            .status,
        200
    );
    // A reload without the last domain: its certificate is no longer served nor renewed.
    write_scale_config(&config, &dir, acme_port, N - 1, 20);
    s.signal("HUP");
    s.wait_log(
        |l| l.contains("ACME certificate no longer configured") && l.contains(last),
        1,
        "the last domain dropped",
    );
    assert!(https_get(tls_addr, &dir.join("root.pem"), last, "/healthz").is_err());
    let other = first.iter().find(|n| *n != last).unwrap();
    assert_eq!(
        https_get(tls_addr, &dir.join("root.pem"), other, "/healthz")
            .unwrap()
            .status,
        200
    );
}

/// The value of `key=` in a log line.
fn log_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(&format!("{key}=")).nth(1)?.split_whitespace().next()
}

/// Wait (≤ `secs`) for a log line that matches; returns it.
fn wait_line(s: &Server, secs: u64, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(l) = s.log_text().lines().find(|l| pred(l)) {
            return l.to_string();
        }
        assert!(Instant::now() < deadline, "no {what}:\n{}", s.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Issue 13: a failed order's back-off is saved in `cache_dir`. After a restart the failing
/// domain is not ordered again before its retry time (pebble's count of orders does not move),
/// then it is, and its failure count went on (the next wait is doubled).
#[test]
fn a_failing_domain_waits_out_its_backoff_after_a_restart() {
    const RETRY: i64 = 20;
    let dir = temp_dir("acme-backoff");
    let config = dir.join("mailconf.toml");
    let write = |acme_port| {
        write_scale_config(&config, &dir, acme_port, 1, 100);
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            text.replace("retry_after = 1\n", &format!("retry_after = {RETRY}\n")),
        )
        .unwrap();
    };
    let start = |dns: &str, tls: &str| Server::start(&config, &["--dns-listen", dns, "--https-listen", tls], 2);
    let (s, _pebble, _mgmt, dns_port, tls_port) = pebble_for(&dir, &write, &|| start("127.0.0.1:0", "127.0.0.1:0"));
    let fail = "certificate=autoconfig.fail.test";
    let first = wait_line(&s, 60, "failed order for fail.test", |l| {
        l.contains(fail) && l.contains("ACME order failed")
    });
    let retry_at = log_field(&first, "retry_at").unwrap().to_string();
    wait_line(&s, 60, "d00 issued", |l| l.contains("ACME certificate issued"));
    drop(s);
    let orders = pebble_orders(&dir);

    // `acme status` reads the failure from the cache.
    let out = acme_status(&config, Some("fail.test"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(": none yet; 1 failed order(s), next try {retry_at}: ")),
        "{text}"
    );

    // Restart on the same ports (pebble dials them): d00 from the cache, fail.test waits.
    let (dns, tls) = (format!("127.0.0.1:{dns_port}"), format!("127.0.0.1:{tls_port}"));
    let s = start(&dns, &tls);
    wait_line(&s, 20, "the cache scan", |l| {
        l.contains("ACME cache: 1 certified, 0 to order, 1 waiting after failed orders")
    });
    let now = || mailconf::acme::clock::iso(mailconf::acme::clock::now());
    assert!(now() < retry_at, "the restart took too long to test anything");
    // Until the retry time nothing is ordered: no order started, none at pebble.
    while now() < retry_at {
        assert!(
            !s.log_text().contains("ACME order started"),
            "ordered before {retry_at}:\n{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(pebble_orders(&dir), orders, "no order at pebble during the back-off");
    let started = wait_line(&s, 30, "the retry", |l| {
        l.contains("ACME order started") && l.contains(fail)
    });
    assert!(started.contains("reason=Retry"), "{started}");
    let second = wait_line(&s, 60, "the second failure", |l| {
        l.contains(fail) && l.contains("ACME order failed")
    });
    // The second failure in a row waits 2 × retry_after from its time.
    let next = log_field(&second, "retry_at").unwrap().to_string();
    let at = mailconf::acme::clock::now();
    let expect = |d: i64| mailconf::acme::clock::iso(at + d);
    assert!(
        expect(2 * RETRY - 5) <= next && next <= expect(2 * RETRY + 1),
        "doubled after the restart: {second}"
    );
}

/// Issue 13: the CA's limit per registered domain. Ten domains under `scale.test` and a limit
/// of 3 new certificates per registered domain per 7 days: three are ordered, the rest wait
/// (while `fail.test`, another registered domain, goes on being retried), and after a restart
/// the spent budget is still spent.
#[test]
fn new_certificates_per_registered_domain_stay_within_the_weekly_limit() {
    const LIMIT: usize = 3;
    let dir = temp_dir("acme-per-domain");
    let config = dir.join("mailconf.toml");
    let write = |acme_port| {
        write_scale_config(&config, &dir, acme_port, 10, 100);
        let text = std::fs::read_to_string(&config).unwrap();
        let limit = format!("retry_after = 1\ncerts_per_registered_domain_7d = {LIMIT}\n");
        std::fs::write(&config, text.replace("retry_after = 1\n", &limit)).unwrap();
    };
    let start = |dns: &str, tls: &str| Server::start(&config, &["--dns-listen", dns, "--https-listen", tls], 2);
    let (s, _pebble, _mgmt, dns_port, tls_port) = pebble_for(&dir, &write, &|| start("127.0.0.1:0", "127.0.0.1:0"));
    let held = wait_line(&s, 60, "the registered domain's limit", |l| {
        l.contains("ACME certificates for this registered domain used up")
    });
    assert!(held.contains("registered_domain=scale.test"), "{held}");
    orders_done(&s);
    // fail.test is retried meanwhile (its own registered domain, and failures do not count).
    let deadline = Instant::now() + Duration::from_secs(30);
    while s
        .log_text()
        .lines()
        .filter(|l| l.contains("ACME order failed") && l.contains("fail.test"))
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "fail.test not retried:
{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    orders_done(&s);
    let log = s.log_text();
    let started = |log: &str| {
        log.lines()
            .filter(|l| l.contains("ACME order started") && l.contains(".scale.test"))
            .count()
    };
    assert_eq!(started(&log), LIMIT, "{log}");
    assert_eq!(issued(&s).len(), LIMIT, "{log}");
    assert_eq!(
        log.matches("registered domain used up").count(),
        1,
        "logged once:\n{log}"
    );
    let fail_orders = log
        .lines()
        .filter(|l| l.contains("ACME order started") && l.contains("fail.test"))
        .count();
    assert!(fail_orders >= 2, "{log}");
    assert_eq!(pebble_orders(&dir), LIMIT + fail_orders, "pebble's count");
    drop(s);

    let out = acme_status(&config, Some("d09.scale.test"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "registered domain scale.test: 0 of {LIMIT} new certificates per 7 days left, next allowed 20"
        )),
        "{text}"
    );

    // A restart keeps the spent budget: nothing more for scale.test.
    let (dns, tls) = (format!("127.0.0.1:{dns_port}"), format!("127.0.0.1:{tls_port}"));
    let s = start(&dns, &tls);
    wait_line(&s, 20, "the cache scan", |l| {
        l.contains(&format!("ACME cache: {LIMIT} certified"))
    });
    wait_line(&s, 20, "the limit after the restart", |l| {
        l.contains("ACME certificates for this registered domain used up") && l.contains("scale.test")
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(started(&s.log_text()), 0, "{}", s.log_text());
}

/// Not a test: fills a cache directory for `benches/acme-100k.sh` with one certificate per
/// domain `d{i}.bench.test` (its autoconfig. and autodiscover. names), each with its own P-256
/// key, signed by a local CA (written as `ca.pem` beside). File names come from mailconf's own
/// `cache::cert_file`. Run as `MAILCONF_BENCH_CACHE=DIR MAILCONF_BENCH_N=100000
/// MAILCONF_BENCH_DIRECTORY=URL cargo test --test all -- --ignored generate_acme_cache`.
#[test]
#[ignore]
fn generate_acme_cache() {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let dir = std::path::PathBuf::from(var("MAILCONF_BENCH_CACHE"));
    let n: usize = var("MAILCONF_BENCH_N").parse().unwrap();
    let directory = var("MAILCONF_BENCH_DIRECTORY");
    std::fs::create_dir_all(&dir).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "mailconf bench CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let started = Instant::now();
    for i in 0..n {
        let names: Vec<String> = ["autoconfig", "autodiscover"]
            .iter()
            .map(|l| format!("{l}.d{i}.bench.test"))
            .collect();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(names.clone())
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        // As an ACME order leaves it: the key, a blank line, the chain.
        let pem = format!("{}\n{}{}", key.serialize_pem(), cert.pem(), ca_cert.pem());
        let file = mailconf::acme::cache::cert_file(&dir, &names, &directory);
        mailconf::acme::cache::write(&file, pem.as_bytes()).unwrap();
    }
    eprintln!("{n} certificates in {:.1} s", started.elapsed().as_secs_f64());
}

/// Issue 13: `names_per_certificate = 3` and five domains: two orders at pebble, one
/// certificate for d00–d02 and one for d03–d04, each serving all of its domains' names; `acme
/// status` lists them so, and a restart (the sharing is kept in `cache_dir`) orders nothing.
#[test]
fn three_domains_per_certificate_five_domains_two_orders() {
    let dir = temp_dir("acme-bundles");
    let config = dir.join("mailconf.toml");
    let write = |acme_port| {
        write_scale_config(&config, &dir, acme_port, 5, 2);
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("[[domain]]\nname = \"fail.test\"\nprovider = \"p\"\n", "")
            .replace("retry_after = 1\n", "retry_after = 1\nnames_per_certificate = 3\n");
        std::fs::write(&config, text).unwrap();
    };
    let start = |dns: &str, tls: &str| Server::start(&config, &["--dns-listen", dns, "--https-listen", tls], 2);
    let (s, _pebble, mgmt_port, dns_port, tls_port) = pebble_for(&dir, &write, &|| start("127.0.0.1:0", "127.0.0.1:0"));
    let deadline = Instant::now() + Duration::from_secs(90);
    while issued(&s).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "two certificates within 90 s:\n{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    orders_done(&s);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(pebble_orders(&dir), 2, "pebble's new orders\n{}", s.log_text());
    // mailconf read pebble's directory itself (our own HTTPS client): no `renewalInfo` in
    // Pebble 2.4, so renewals stay at two thirds of the lifetime.
    s.wait_log(
        |l| l.contains("the CA offers no renewal information (ARI)"),
        1,
        "the directory read for ARI",
    );
    assert_eq!(s.log_text().matches("ACME order started").count(), 2);
    let root = common::pebble::root(&dir, mgmt_port);
    let tls: std::net::SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    for i in 0..5 {
        for label in ["autoconfig", "autodiscover"] {
            let name = format!("{label}.d{i:02}.scale.test");
            let r = https_get(tls, &root, &name, "/healthz").unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(r.status, 200, "{name}");
        }
    }
    let out = acme_status(&config, None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(": valid until")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    let names = |l: &str| l.split(": ").next().unwrap().split(' ').count();
    assert_eq!((names(lines[0]), names(lines[1])), (6, 4), "{text}");
    assert!(
        lines[0].starts_with("autoconfig.d00.scale.test autodiscover.d00.scale.test autoconfig.d01"),
        "{text}"
    );
    drop(s);

    let s = start(&format!("127.0.0.1:{dns_port}"), &format!("127.0.0.1:{tls_port}"));
    s.wait_log(
        |l| l.contains("ACME cache: 2 certified, 0 to order"),
        1,
        "the cache scan",
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(!s.log_text().contains("ACME order started"), "{}", s.log_text());
    assert_eq!(
        https_get(tls, &root, "autodiscover.d04.scale.test", "/healthz")
            .unwrap()
            .status,
        200
    );

    // d01 leaves: d00 and d02 need a certificate without its names. The order budget (2 per
    // 3 h) is spent, so it waits; meanwhile they keep the old certificate, which still covers
    // them. d01's names get none.
    let text = std::fs::read_to_string(&config).unwrap();
    let d01 = text.find("[[domain]]\nname = \"d01.scale.test\"").unwrap();
    let end = d01 + text[d01..].find("hosts = ").unwrap();
    let end = end + text[end..].find('\n').unwrap() + 1;
    std::fs::write(&config, format!("{}{}", &text[..d01], &text[end..])).unwrap();
    s.signal("HUP");
    s.wait_log(
        |l| l.contains("ACME order budget used up"),
        1,
        "the new certificate for d00 and d02 waiting",
    );
    for name in ["autoconfig.d00.scale.test", "autodiscover.d02.scale.test"] {
        let r = https_get(tls, &root, name, "/healthz");
        assert_eq!(r.map(|r| r.status), Ok(200), "{name} meanwhile");
    }
    assert!(
        https_get(tls, &root, "autoconfig.d01.scale.test", "/healthz").is_err(),
        "d01 is gone"
    );
    assert!(!s.log_text().contains("ACME order started"), "{}", s.log_text());
}
