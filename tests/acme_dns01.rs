//! ACME DNS-01 from mailconf's own zones (issue 13), for real: Debian's `pebble` asks mailconf's
//! DNS for `_acme-challenge.<name>` TXT, and a Knot secondary of the zone must serve the
//! record before mailconf lets pebble validate.

use crate::common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::pebble::{issued, pebble_for};
use common::{Server, dig, https_get, section, status, temp_dir, tool};

fn serial(addr: SocketAddr) -> Option<u32> {
    section(&dig(addr, &["acme.test", "SOA"]), "ANSWER")
        .first()?
        .split_whitespace()
        .nth(6)?
        .parse()
        .ok()
}

/// `challenge = "dns-01"`; acme.test's web names point at 127.0.0.2, where nothing listens, so
/// TLS-ALPN-01 could not succeed: only DNS-01 can. Knot at `knot_port` is the zone's secondary.
fn write_config(config: &std::path::Path, dir: &std::path::Path, acme_port: u16, knot_port: u16) {
    let dns = format!("autoconfig_addresses = [\"127.0.0.2\"]\ntransfer_to = [\"127.0.0.1:{knot_port}\"]\n");
    let text = super::acme::config_text(dir, acme_port, "challenge = \"dns-01\"\n", &dns);
    std::fs::write(config, text).unwrap();
}

/// A Knot secondary of acme.test from mailconf at `primary`, listening on `port`; its stderr
/// collected.
fn start_knot(
    dir: &std::path::Path,
    port: u16,
    primary: SocketAddr,
) -> (common::pebble::Kill, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let conf = dir.join("knot.conf");
    std::fs::create_dir_all(dir.join("knot")).unwrap();
    std::fs::write(
        &conf,
        format!(
            "server:\n  rundir: {d}\n  listen: 127.0.0.1@{port}\n\ndatabase:\n  storage: {d}\n\nlog:\n  - target: stderr\n    any: info\n\nremote:\n  - id: mailconf\n    address: 127.0.0.1@{p}\n\nacl:\n  - id: notify_from_mailconf\n    address: 127.0.0.1\n    action: notify\n\nzone:\n  - domain: acme.test\n    storage: {d}\n    file: acme.test.zone\n    master: mailconf\n    acl: notify_from_mailconf\n    zonefile-sync: -1\n    journal-content: none\n",
            d = dir.join("knot").display(),
            p = primary.port(),
        ),
    )
    .unwrap();
    let mut child = Command::new(tool("knotd", "knot"))
        .args(["-c", conf.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = common::collect_lines(child.stderr.take().unwrap());
    let knot = common::pebble::Kill(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !log.lock().unwrap().iter().any(|l| l.contains("server started")) {
        assert!(
            Instant::now() < deadline,
            "knotd did not start:\n{}",
            log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (knot, log)
}

/// Issue 13: pebble validates acme.test's names by DNS-01, asking mailconf's DNS. mailconf puts
/// the TXT records into the zone (its serial moves, Knot gets a NOTIFY) and asks pebble to
/// validate only once Knot serves them too (Knot starts 3 s late: the order waits for it).
/// After the order the records are gone from mailconf and from Knot, whose serial follows, and
/// `mailconf zone` never shows them.
#[test]
fn certificate_via_dns_01_from_our_own_zone_after_the_secondary_serves_it() {
    let dir = temp_dir("acme-dns01");
    let config = dir.join("mailconf.toml");
    let knot_port = common::free_port();
    // Held until Knot starts: mailconf's NOTIFY and challenge queries go to this port, and a
    // client of another test must not get it as its own port meanwhile.
    let hold = std::net::UdpSocket::bind(("127.0.0.1", knot_port)).ok();
    let (s, _pebble, mgmt_port, dns_port, tls_port) = pebble_for(
        &dir,
        &|acme_port| write_config(&config, &dir, acme_port, knot_port),
        &|| {
            Server::start(
                &config,
                &["--dns-listen", "127.0.0.1:0", "--https-listen", "127.0.0.1:0"],
                2,
            )
        },
    );
    let primary: SocketAddr = format!("127.0.0.1:{dns_port}").parse().unwrap();
    let knot_addr: SocketAddr = format!("127.0.0.1:{knot_port}").parse().unwrap();
    // The serial of the zone without challenges, as `mailconf zone` writes it.
    let zone_file = || common::stdout(&common::mailconf(&["zone", "--config", config.to_str().unwrap()]));
    let base: u32 = zone_file()
        .lines()
        .find(|l| l.contains(" SOA "))
        .and_then(|l| l.split_whitespace().nth(6)?.parse().ok())
        .unwrap();
    s.wait_log(
        |l| l.contains("ACME DNS-01 challenges: zones rebuilt") && l.contains("served=2"),
        1,
        "the challenges in the zone",
    );
    // mailconf serves the record at once, with a new serial; nothing else changed.
    let txt = dig(primary, &["_acme-challenge.autoconfig.acme.test", "TXT"]);
    assert_eq!(status(&txt), "NOERROR", "{txt}");
    let value = section(&txt, "ANSWER")[0].split('"').nth(1).unwrap().to_string();
    assert_eq!(value.len(), 43, "base64url of a SHA-256: {txt}");
    let with = serial(primary).unwrap();
    assert_ne!(with, base, "the serial moved for the secondaries");
    let mx = dig(primary, &["acme.test", "MX"]);
    assert_eq!(status(&mx), "NOERROR", "{mx}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !s.log_text().contains("validation asked"),
        "pebble asked to validate before the secondary serves the record:\n{}",
        s.log_text()
    );
    drop(hold);
    let (_knot, knot_log) = start_knot(&dir, knot_port, primary);
    let result = std::panic::catch_unwind(|| {
        let deadline = Instant::now() + Duration::from_secs(90);
        while issued(&s).is_empty() {
            assert!(
                Instant::now() < deadline,
                "no certificate within 90 s:\n{}",
                s.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = s.log_text();
        let asked = log.lines().find(|l| l.contains("validation asked")).unwrap();
        assert!(asked.contains("names=2") && asked.contains("secondaries=1"), "{asked}");
        let waited: u64 = asked
            .split("waited_ms=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
            .unwrap();
        assert!(waited >= 3000, "it waited for Knot, which started 3 s late: {asked}");
        assert!(!log.contains("TLS-ALPN-01 instead"), "{log}");
        // The certificate verifies against pebble's root.
        let root = common::pebble::root(&dir, mgmt_port);
        let tls: SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
        assert_eq!(
            https_get(tls, &root, "autodiscover.acme.test", "/healthz")
                .unwrap()
                .status,
            200
        );
        // Taken down: gone from mailconf, and from Knot once it followed the NOTIFY.
        s.wait_log(
            |l| l.contains("ACME DNS-01 challenges: zones rebuilt") && l.contains("challenges=0"),
            1,
            "the challenges taken down",
        );
        let gone = dig(primary, &["_acme-challenge.autoconfig.acme.test", "TXT"]);
        assert_eq!(status(&gone), "NXDOMAIN", "{gone}");
        let last = serial(primary).unwrap();
        assert!(last != with && last != base, "serials only grow: {base} {with} {last}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while serial(knot_addr) != Some(last) {
            assert!(Instant::now() < deadline, "knot never reached serial {last}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let knot_txt = dig(knot_addr, &["_acme-challenge.autoconfig.acme.test", "TXT"]);
        assert_eq!(status(&knot_txt), "NXDOMAIN", "{knot_txt}");
        // Zone files never hold a challenge.
        let text = zone_file();
        assert!(text.contains("autoconfig"), "{text}");
        assert!(!text.contains("_acme-challenge"), "{text}");
    });
    if let Err(e) = result {
        eprintln!("knotd log:\n{}", knot_log.lock().unwrap().join("\n"));
        std::panic::resume_unwind(e);
    }
}

/// DNS-01 in a DNSSEC-signed zone: while the challenge waits (here for a secondary that never
/// answers, so it stays up), BIND's `delv`, with mailconf's DS as trust anchor, validates the TXT
/// record and the zone's other answers; nothing was ever served unsigned.
#[test]
fn a_dns_01_challenge_in_a_signed_zone_validates() {
    let dir = temp_dir("acme-dns01-signed");
    let config = dir.join("mailconf.toml");
    // A secondary that never answers: a socket held by the test (so that no other test's
    // client gets this port while mailconf sends it queries).
    let silent_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent = silent_socket.local_addr().unwrap().port();
    let write = |acme_port| {
        write_config(&config, &dir, acme_port, silent);
        let text = std::fs::read_to_string(&config).unwrap().replacen(
            "[server]\n",
            &format!(
                "[server]\nstate_dir = \"{}\"\ndnssec = true\n",
                dir.join("state").display()
            ),
            1,
        );
        std::fs::write(&config, text).unwrap();
    };
    let (s, _pebble, _mgmt, dns_port, _tls) = pebble_for(&dir, &write, &|| {
        Server::start(
            &config,
            &["--dns-listen", "127.0.0.1:0", "--https-listen", "127.0.0.1:0"],
            2,
        )
    });
    let primary: SocketAddr = format!("127.0.0.1:{dns_port}").parse().unwrap();
    s.wait_log(
        |l| l.contains("ACME DNS-01 challenges: zones rebuilt") && l.contains("served=2"),
        1,
        "the challenges in the zone",
    );
    let ds = super::dnssec::ds_line(&config, "acme.test");
    let delv = |name: &str, rtype: &str| super::dnssec::delv(primary, &ds, &dir, name, rtype);
    let txt = delv("_acme-challenge.autoconfig.acme.test", "TXT");
    assert!(txt.contains("fully validated") && txt.contains(" IN TXT"), "{txt}");
    assert!(txt.contains(" IN RRSIG TXT 13 "), "signed with the zone:\n{txt}");
    let a = delv("autodiscover.acme.test", "A");
    assert!(a.contains("fully validated"), "{a}");
    let none = delv("_acme-challenge.nope.acme.test", "TXT");
    assert!(
        none.contains("fully validated") || none.contains("ncache"),
        "a validated denial:\n{none}"
    );
    assert!(
        !s.log_text().contains("validation asked"),
        "the silent secondary holds the order"
    );
}
