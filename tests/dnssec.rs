//! DNSSEC, checked by validators nobody here wrote: Unbound (stub zone to mailconf, mailconf's
//! DS as trust anchor) and BIND's `delv`. A validator that got a bad signature, a missing proof
//! or the wrong key answers SERVFAIL (or "resolution failed"), never AD: these tests fail then.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, Server, flags, root, section, status, temp_dir, tool};

/// The DNS test fixture with `[server] dnssec`, a `_tcp` sub-zone (DS in the parent) and
/// `state_dir`; `extra` goes into `[server]`.
fn config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(root().join("tests/fixtures/dns.toml")).unwrap();
    let text = text.replace(
        "spf = \"v=spf1 mx -all\"",
        "spf = \"v=spf1 mx -all\"\nzones = [\"@\", \"_tcp\"]",
    );
    let path = dir.join("mailconf.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nstate_dir = \"{}\"\ndnssec = true\n{extra}\n\n{text}",
            dir.join("state").display()
        ),
    )
    .unwrap();
    path
}

/// `mailconf zone --format ds --domain DOMAIN`: its one DS line, checked.
pub(crate) fn ds_line(config: &Path, domain: &str) -> String {
    let out = common::mailconf(&[
        "zone",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "ds",
        "--domain",
        domain,
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = common::stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one DS, for {domain} (a sub-zone's DS is in {domain} itself):\n{text}"
    );
    let f: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(f[0], format!("{domain}."), "{text}");
    assert!(f[1].parse::<u32>().is_ok(), "a TTL: {text}");
    assert_eq!(&f[2..4], ["IN", "DS"], "{text}");
    assert_eq!(f[6], "2", "digest type 2 (SHA-256)");
    assert_eq!(f[7].len(), 64, "{text}");
    lines[0].to_string()
}

/// A validating Unbound on loopback, killed on drop.
struct Unbound {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Unbound {
    /// Unbound with `anchor` (a DS line) as its only trust anchor and mail.test stubbed to `auth`.
    fn start(dir: &Path, auth: SocketAddr, anchor: &str) -> Unbound {
        let unbound = tool("unbound", "unbound");
        let _ = std::fs::create_dir_all(dir);
        for _ in 0..5 {
            let port = common::free_port();
            let conf = dir.join("unbound.conf");
            std::fs::write(
                &conf,
                format!(
                    "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-daemonize: no\n  username: \"\"\n  \
                     chroot: \"\"\n  directory: \"{dir}\"\n  pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  \
                     verbosity: 1\n  val-log-level: 2\n  num-threads: 1\n  do-not-query-localhost: no\n  \
                     module-config: \"validator iterator\"\n  access-control: 127.0.0.0/8 allow\n  \
                     local-zone: \"test.\" nodefault\n  harden-dnssec-stripped: yes\n  \
                     trust-anchor: \"{anchor}\"\nstub-zone:\n  name: \"mail.test\"\n  stub-addr: {ip}@{p}\n",
                    dir = dir.display(),
                    anchor = anchor.replace(" 3600 IN ", " "),
                    ip = auth.ip(),
                    p = auth.port()
                ),
            )
            .unwrap();
            let child = Command::new(&unbound)
                .args(["-d", "-c"])
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start unbound");
            let mut u = Unbound {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = u.child.try_wait().unwrap() {
                    let mut err = String::new();
                    use std::io::Read;
                    let _ = u.child.stderr.take().unwrap().read_to_string(&mut err);
                    assert!(
                        err.contains("address already in use"),
                        "unbound exited ({status}):\n{err}"
                    );
                    break;
                }
                // Unbound answers itself (REFUSED or not) once it listens; before that dig
                // prints only its own complaint (connection refused, timeout), no status.
                if status(&dig(u.addr, &["version.bind", "CH", "TXT"])) != "?" {
                    return u;
                }
                assert!(Instant::now() < deadline, "unbound did not start");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("unbound found no free port in 5 attempts");
    }
}

fn dig(addr: SocketAddr, args: &[&str]) -> String {
    let out = Command::new(tool("dig", "dnsutils"))
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), "+time=5", "+tries=1"])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Ask the validating resolver; the answer must be validated (AD) with `want` as RCODE.
fn validated(u: &Unbound, name: &str, rtype: &str, want: &str) -> Vec<String> {
    let out = dig(u.addr, &["+dnssec", name, rtype]);
    assert_eq!(status(&out), want, "{name} {rtype} through Unbound:\n{out}");
    assert!(
        flags(&out).contains(&"ad"),
        "{name} {rtype}: no AD bit, so not validated:\n{out}"
    );
    section(&out, "ANSWER")
}

/// `delv` (BIND's validator) with the DS as trust anchor (and its owner as the root of the
/// validation), straight at mailconf.
pub(crate) fn delv(auth: SocketAddr, ds: &str, dir: &Path, name: &str, rtype: &str) -> String {
    let f: Vec<&str> = ds.split_whitespace().collect();
    let anchors = dir.join("anchors.conf");
    std::fs::write(
        &anchors,
        format!(
            "trust-anchors {{\n  {} static-ds {} {} {} \"{}\";\n}};\n",
            f[0], f[4], f[5], f[6], f[7]
        ),
    )
    .unwrap();
    let out = Command::new(tool("delv", "bind9-dnsutils"))
        .arg(format!("@{}", auth.ip()))
        .args(["-p", &auth.port().to_string(), "-a"])
        .arg(&anchors)
        .arg(format!("+root={}", f[0]))
        .args([name, rtype])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn unbound_and_delv_validate_answers_and_denials_and_keys_survive_a_restart() {
    let dir = temp_dir("dnssec-validate");
    let config = config(&dir, "");
    // The DS can be had before the first start (the command makes the key), and the server
    // then signs with that same key.
    let ds = ds_line(&config, "mail.test");
    let server = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
    let auth = server.addrs("DNS")[0];
    let unbound = Unbound::start(&dir.join("unbound"), auth, &ds);

    let srv = validated(&unbound, "_imaps._tcp.mail.test", "SRV", "NOERROR");
    assert!(
        srv.iter().any(|l| l.ends_with("SRV 0 1 993 imap.mail.test.")),
        "{srv:?}"
    );
    assert!(srv.iter().any(|l| l.contains(" RRSIG SRV 13 ")), "{srv:?}");
    let txt = validated(&unbound, "mail.test", "TXT", "NOERROR");
    assert!(txt.iter().any(|l| l.contains("\"v=spf1 mx -all\"")), "{txt:?}");
    let a = validated(&unbound, "imap.mail.test", "A", "NOERROR");
    assert!(a.iter().any(|l| l.ends_with("A 192.0.2.143")), "{a:?}");
    // NXDOMAIN in both zones, NODATA at a name and at an empty non-terminal.
    validated(&unbound, "nope.mail.test", "A", "NXDOMAIN");
    validated(&unbound, "nope._tcp.mail.test", "SRV", "NXDOMAIN");
    assert!(validated(&unbound, "imap.mail.test", "TXT", "NOERROR").is_empty());
    assert!(validated(&unbound, "_submissions._tcp.mail.test", "TXT", "NOERROR").is_empty());

    for (name, rtype) in [
        ("_imaps._tcp.mail.test", "SRV"),
        ("mail.test", "TXT"),
        ("imap.mail.test", "A"),
        ("nope.mail.test", "A"),
        ("imap.mail.test", "TXT"),
    ] {
        let out = delv(auth, &ds, &dir, name, rtype);
        assert!(out.contains("fully validated"), "delv {name} {rtype}:\n{out}");
    }

    // A validator with another key's DS must refuse the same answers: the AD above is earned.
    let mut wrong: Vec<String> = ds.split_whitespace().map(String::from).collect();
    wrong[7] = wrong[7].chars().rev().collect();
    let bogus = Unbound::start(&dir.join("unbound-bogus"), auth, &wrong.join(" "));
    let out = dig(bogus.addr, &["+dnssec", "mail.test", "TXT"]);
    assert_eq!(status(&out), "SERVFAIL", "a wrong trust anchor must fail:\n{out}");

    // Without DO, the signed zone's answers are the unsigned ones (no RRSIG).
    let plain = dig(auth, &["+norec", "_imaps._tcp.mail.test", "SRV"]);
    assert!(!plain.contains("RRSIG"), "{plain}");
    assert!(plain.contains(";; ADDITIONAL SECTION:"), "glue as before:\n{plain}");

    // A restart signs with the same keys: same DNSKEY set, and the validator still says AD.
    let dnskey = |addr: SocketAddr| {
        let out = dig(addr, &["+norec", "+short", "mail.test", "DNSKEY"]);
        let ksks = out.lines().filter(|l| l.starts_with("257 3 13 ")).count();
        let zsks = out.lines().filter(|l| l.starts_with("256 3 13 ")).count();
        assert!(
            ksks == 1 && (1..=2).contains(&zsks) && out.lines().count() == 1 + zsks,
            "one KSK and its ZSK(s):\n{out}"
        );
        out
    };
    let before = dnskey(auth);
    drop(server);
    let server = Server::start(&config, &["--dns-listen", &auth.to_string()], 1);
    let auth2 = server.addrs("DNS")[0];
    assert_eq!(dnskey(auth2), before, "same key after a restart");
    assert_eq!(ds_line(&config, "mail.test"), ds, "same DS after a restart");
    validated(&unbound, "smtp.mail.test", "A", "NOERROR");

    // A changed record is served with a signature over the new data (a new signed view),
    // after a reload, with the same key.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("v=spf1 mx -all", "v=spf1 mx ~all")).unwrap();
    server.signal("HUP");
    server.wait_log(|l| l.contains("DNS zones reloaded"), 1, "the reload");
    let out = delv(auth2, &ds, &dir, "mail.test", "TXT");
    assert!(
        out.contains("fully validated") && out.contains("v=spf1 mx ~all"),
        "{out}"
    );
    assert_eq!(dnskey(auth2), before, "same key after a reload");
}

/// A positive DO answer asked again comes from the RRSIG cache (the zone's unsigned records and
/// the signatures its view made, not a view): the owner keeps the question's spelling as in
/// unsigned answers (a view writes it in lower case), the RRSIG is the same (ECDSA signatures are
/// random, so it was not made again), and validators accept it.
#[test]
fn repeated_do_answers_come_from_the_rrsig_cache_and_validate() {
    let dir = temp_dir("dnssec-rrsig-cache");
    let config = config(&dir, "");
    let ds = ds_line(&config, "mail.test");
    let server = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
    let auth = server.addrs("DNS")[0];
    let answer_type = |name: &str, rtype: &str| {
        let out = dig(auth, &["+norec", "+dnssec", name, rtype]);
        assert_eq!(status(&out), "NOERROR", "{out}");
        let lines = section(&out, "ANSWER");
        // The ZSK's RRSIG (and the KSK's beside it in the first epochs after the ZSKs came).
        let mut sigs: Vec<String> = lines
            .iter()
            .filter(|l| l.contains(&format!(" RRSIG {rtype} 13 ")))
            .map(|l| l.split_whitespace().skip(4).collect::<Vec<_>>().join(" "))
            .collect();
        assert!(!sigs.is_empty(), "{out}");
        sigs.sort();
        (lines, sigs.join("\n"), section(&out, "ADDITIONAL"))
    };
    let answer = |name: &str| {
        let (lines, sigs, _) = answer_type(name, "TXT");
        (lines, sigs)
    };
    let (first, sig1) = answer("MaIl.TeSt");
    assert!(
        first.iter().all(|l| l.starts_with("mail.test.")),
        "a view's answer: {first:?}"
    );
    let (second, sig2) = answer("MaIl.TeSt");
    assert!(
        second.iter().all(|l| l.starts_with("MaIl.TeSt.")),
        "from the cache: {second:?}"
    );
    assert_eq!(sig1, sig2, "the same signature, kept");
    assert_eq!(second.len(), first.len());
    let unbound = Unbound::start(&dir.join("unbound"), auth, &ds);
    let txt = validated(&unbound, "mail.test", "TXT", "NOERROR");
    for sig in sig1.lines() {
        assert!(
            txt.iter().any(|l| l.contains(sig)),
            "Unbound got the cached signatures: {txt:?}"
        );
    }
    let out = delv(auth, &ds, &dir, "mail.test", "TXT");
    assert!(out.contains("fully validated"), "{out}");
    // An SRV whose target is in the zone: unsigned, its address rides along in the additional
    // section; with DO, from a view or from the cache, the answer section alone.
    let plain = dig(auth, &["+norec", "_imaps._tcp.mail.test", "SRV"]);
    assert!(!section(&plain, "ADDITIONAL").is_empty(), "glue without DO:\n{plain}");
    let (a1, s1, add1) = answer_type("_IMAPS._tcp.mail.test", "SRV");
    let (a2, s2, add2) = answer_type("_IMAPS._tcp.mail.test", "SRV");
    assert!(
        a1.iter().all(|l| l.starts_with("_imaps._tcp.mail.test.")),
        "a view's: {a1:?}"
    );
    assert!(
        a2.iter().all(|l| l.starts_with("_IMAPS._tcp.mail.test.")),
        "cached: {a2:?}"
    );
    assert_eq!((s1, a1.len()), (s2, a2.len()));
    assert!(add1.is_empty() && add2.is_empty(), "{add1:?} {add2:?}");
    let srv = validated(&unbound, "_imaps._tcp.mail.test", "SRV", "NOERROR");
    assert!(
        srv.iter().any(|l| l.ends_with("SRV 0 1 993 imap.mail.test.")),
        "{srv:?}"
    );
    // A changed record: new data, so new signatures, never the cached ones.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("v=spf1 mx -all", "v=spf1 mx ~all")).unwrap();
    server.signal("HUP");
    server.wait_log(|l| l.contains("DNS zones reloaded"), 1, "the reload");
    let (after, sig3) = answer("mail.test");
    assert!(after.iter().any(|l| l.contains("v=spf1 mx ~all")), "{after:?}");
    assert_ne!(sig3, sig1, "signed again for the new data");
    let out = delv(auth, &ds, &dir, "mail.test", "TXT");
    assert!(
        out.contains("fully validated") && out.contains("v=spf1 mx ~all"),
        "{out}"
    );
}

#[test]
fn ed25519_validates_too() {
    let dir = temp_dir("dnssec-ed25519");
    let config = config(&dir, "dnssec_algorithm = \"ed25519\"");
    let ds = ds_line(&config, "mail.test");
    assert_eq!(ds.split_whitespace().nth(5), Some("15"), "{ds}");
    // ZSKs served for long already (`zsk-since` in 1970): the ZSK alone signs the records (the
    // first epochs, where the KSK signs beside it, are tested with P-256).
    std::fs::write(dir.join("state/dnssec/rolls"), "zsk-since 0 604800 5\n").unwrap();
    let server = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
    let auth = server.addrs("DNS")[0];
    for (name, rtype) in [
        ("_imaps._tcp.mail.test", "SRV"),
        ("nope.mail.test", "A"),
        ("imap.mail.test", "TXT"),
    ] {
        let out = delv(auth, &ds, &dir, name, rtype);
        assert!(out.contains("fully validated"), "delv {name} {rtype}:\n{out}");
    }
    let keys = dig(auth, &["+norec", "+short", "mail.test", "DNSKEY"]);
    assert!(
        keys.lines().any(|l| l.starts_with("257 3 15 ")) && keys.lines().any(|l| l.starts_with("256 3 15 ")),
        "an Ed25519 KSK and ZSK:\n{keys}"
    );
    let soa = dig(auth, &["+norec", "+dnssec", "mail.test", "SOA"]);
    let sigs: Vec<String> = section(&soa, "ANSWER")
        .into_iter()
        .filter(|l| l.contains(" RRSIG "))
        .collect();
    assert_eq!(sigs.len(), 1, "the ZSK's signature alone:\n{soa}");
    for zone in ["mail.test", "_tcp.mail.test"] {
        let text = dig(auth, &["+norec", "+nocmd", "+nostats", "+onesoa", zone, "AXFR"]);
        check_signed_copy(&dir, zone, &text);
    }
}

#[test]
fn check_refuses_dnssec_without_state_dir() {
    let dir = temp_dir("dnssec-check");
    let text = std::fs::read_to_string(root().join("tests/fixtures/dns.toml")).unwrap();
    let path = dir.join("mailconf.toml");
    let text = text.replace("negative_ttl = 120", "negative_ttl = 120\ndnssec = true");
    std::fs::write(&path, &text).unwrap();
    let out = common::mailconf(&["check", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let line = text.lines().position(|l| l == "dnssec = true").unwrap() + 1;
    let err = common::stderr(&out) + &common::stdout(&out);
    assert!(
        err.contains(&format!(
            "mailconf.toml:{line}:10: domain[0].dns.dnssec: needs `[server] state_dir`"
        )),
        "{err}"
    );
    std::fs::write(
        &path,
        format!("[server]\ndnssec = true\n{}", text.replace("dnssec = true", "")),
    )
    .unwrap();
    let out = common::mailconf(&["check", "--config", path.to_str().unwrap()]);
    let err = common::stderr(&out) + &common::stdout(&out);
    assert!(
        err.contains("mailconf.toml:2:10: server.dnssec: needs `state_dir`"),
        "{err}"
    );
}

/// The record types of `dig` output lines.
fn types(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| l.split_whitespace().nth(3).map(String::from))
        .collect()
}

/// An AXFR'd copy of each signed zone passes BIND's `dnssec-verify` (every RRset signed by the
/// zone's key, a complete NSEC chain, DS for the sub-zone in the parent), Knot's
/// `kzonecheck --dnssec on` and `named-checkzone`.
#[test]
fn axfr_of_a_signed_zone_passes_dnssec_verify() {
    let dir = temp_dir("dnssec-axfr");
    let config = config(&dir, "");
    let server = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
    let auth = server.addrs("DNS")[0];
    for zone in ["mail.test", "_tcp.mail.test"] {
        let text = dig(auth, &["+norec", "+nocmd", "+nostats", "+onesoa", zone, "AXFR"]);
        assert!(
            text.contains(" NSEC ") && text.contains(" RRSIG ") && text.contains(" DNSKEY "),
            "{text}"
        );
        check_signed_copy(&dir, zone, &text);
    }
    // Without DNSSEC the transfer is what it was: no DNSSEC records.
    let plain = temp_dir("dnssec-axfr-plain");
    let text = std::fs::read_to_string(&config).unwrap().replace("dnssec = true\n", "");
    std::fs::write(plain.join("mailconf.toml"), text).unwrap();
    let server = Server::start(&plain.join("mailconf.toml"), &["--dns-listen", "127.0.0.1:0"], 1);
    let text = dig(server.addrs("DNS")[0], &["+norec", "mail.test", "AXFR"]);
    let types = types(&text);
    assert!(types.contains(&"SOA".to_string()), "{text}");
    assert!(
        !types
            .iter()
            .any(|t| ["RRSIG", "NSEC", "DNSKEY", "DS"].contains(&t.as_str())),
        "{text}"
    );
}

/// Seconds since 1970 of a dig RRSIG time field (`YYYYMMDDHHmmSS`, UTC).
fn rrsig_time(field: &str) -> u64 {
    let n = |r: std::ops::Range<usize>| field[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(4..6), n(6..8));
    // Days from civil (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    (days * 86_400 + n(8..10) * 3600 + n(10..12) * 60 + n(12..14)) as u64
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The SOA serial and the SOA's RRSIG (inception, expiration) in a `dig +dnssec SOA` answer.
fn soa_and_times(out: &str) -> (u32, u64, u64) {
    let answer = section(out, "ANSWER");
    let soa = answer
        .iter()
        .find(|l| l.contains(" SOA "))
        .unwrap_or_else(|| panic!("{out}"));
    let sig = answer
        .iter()
        .find(|l| l.contains(" RRSIG SOA "))
        .unwrap_or_else(|| panic!("{out}"));
    let f: Vec<&str> = sig.split_whitespace().collect();
    (
        soa.split_whitespace().nth(6).unwrap().parse().unwrap(),
        rrsig_time(f[9]),
        rrsig_time(f[8]),
    )
}

/// Check an AXFR'd copy of signed `zone` with BIND's `dnssec-verify` and Knot's `kzonecheck`
/// (which checks DNSSEC with `--dnssec on`), and BIND's `named-checkzone`.
fn check_signed_copy(dir: &Path, zone: &str, text: &str) {
    let file = dir.join(format!("{zone}.axfr"));
    std::fs::write(&file, text).unwrap();
    let run = |cmd: &mut Command, what: &str| {
        let out = cmd.output().unwrap();
        let report = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{what} {zone}:\n{report}\n{text}");
        report
    };
    // Without -z: BIND checks the roles too (the KSK signs the key set, a ZSK the rest).
    let report = run(
        Command::new(tool("dnssec-verify", "bind9-utils"))
            .args(["-o", zone])
            .arg(&file),
        "dnssec-verify",
    );
    assert!(report.contains("Zone fully signed"), "{report}");
    run(
        Command::new(tool("kzonecheck", "knot-dnssecutils"))
            .args(["--dnssec", "on", "-o", zone])
            .arg(&file),
        "kzonecheck --dnssec on",
    );
    let report = run(
        Command::new(tool("named-checkzone", "bind9-utils"))
            .arg(zone)
            .arg(&file),
        "named-checkzone",
    );
    assert!(report.contains("OK"), "{report}");
}

/// Re-signing is visible to secondaries. With 20-second signatures a new signing epoch starts
/// every 10 s: watched for 25 s, the served signatures are never expired (nor before their
/// inception) and always keep at least half their life; each new epoch comes with a greater
/// SOA serial and a NOTIFY for that serial to the secondary (which acknowledges it here); and
/// an AXFR after the change carries the new signatures and passes dnssec-verify, kzonecheck
/// and named-checkzone, while delv still validates.
#[test]
fn resigning_moves_the_serial_and_notifies_secondaries() {
    let dir = temp_dir("dnssec-resign");
    // The secondary: a UDP socket that acknowledges every NOTIFY and reports the zone.
    let (sock, port) = loop {
        let port = common::free_port();
        if let Ok(s) = std::net::UdpSocket::bind(("127.0.0.1", port)) {
            break (s, port);
        }
    };
    let notified = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = notified.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if n < 17 || buf[2] & 0xf8 != 0x20 {
                continue; // not a NOTIFY query
            }
            let mut name = String::new();
            let mut i = 12;
            while i < n && buf[i] != 0 && i + 1 + buf[i] as usize <= n {
                name.push_str(&String::from_utf8_lossy(&buf[i + 1..i + 1 + buf[i] as usize]));
                name.push('.');
                i += 1 + buf[i] as usize;
            }
            seen.lock().unwrap().push(name);
            let mut reply = buf[..n].to_vec();
            reply[2] |= 0x80;
            let _ = sock.send_to(&reply, from);
        }
    });
    let config = config(&dir, "dnssec_signature_lifetime = 20");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "transfer_to = [\"127.0.0.1\"]",
        &format!("transfer_to = [\"127.0.0.1:{port}\"]"),
    );
    std::fs::write(&config, text).unwrap();
    let ds = ds_line(&config, "mail.test");
    let server = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
    let auth = server.addrs("DNS")[0];

    let mut serials: Vec<u32> = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(25) {
        let out = dig(auth, &["+norec", "+dnssec", "mail.test", "SOA"]);
        let now = unix_now();
        let (serial, inception, expiration) = soa_and_times(&out);
        assert!(inception <= now, "inception {inception} after now {now}:\n{out}");
        // Half of the 20 s lifetime left, less a tick (1 s) and a second of rounding.
        assert!(
            expiration >= now + 8,
            "expiration {expiration} too close to now {now}:\n{out}"
        );
        if serials.last() != Some(&serial) {
            if let Some(&before) = serials.last() {
                assert!(
                    serial.wrapping_sub(before) < 0x8000_0000,
                    "the serial went back: {before} → {serial}"
                );
            }
            serials.push(serial);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        serials.len() >= 3,
        "a new serial every 10 s, seen over 25 s: {serials:?}\n{}",
        server.log_text()
    );
    // Each new serial was NOTIFYed and acknowledged (the log names the serial).
    let last = serials[serials.len() - 2];
    server.wait_log(
        |l| l.contains("NOTIFY acknowledged") && l.contains("zone=mail.test.") && l.contains(&format!("serial={last}")),
        1,
        "the NOTIFY of a re-signed serial",
    );
    assert!(
        notified.lock().unwrap().iter().filter(|z| *z == "mail.test.").count() >= 2,
        "{:?}",
        notified.lock().unwrap()
    );
    server.wait_log(|l| l.contains("zones re-signed with new serials"), 2, "re-signing");

    // What a secondary transfers after the change: the new serial and signatures, complete.
    for zone in ["mail.test", "_tcp.mail.test"] {
        let text = dig(auth, &["+norec", "+nocmd", "+nostats", "+onesoa", zone, "AXFR"]);
        check_signed_copy(&dir, zone, &text);
    }
    for (name, rtype) in [("_imaps._tcp.mail.test", "SRV"), ("nope.mail.test", "A")] {
        let out = delv(auth, &ds, &dir, name, rtype);
        assert!(out.contains("fully validated"), "delv {name} {rtype}:\n{out}");
    }
}

/// `mailconf zone` writes a signed domain's zone files signed: each passes dnssec-verify,
/// kzonecheck and named-checkzone, carries the serial `serve` serves, is not rewritten by a
/// second run in the same signing epoch, and `--unsigned` writes it without DNSSEC.
#[test]
fn zone_writes_signed_zone_files() {
    let dir = temp_dir("dnssec-zonefiles");
    let config = config(&dir, "");
    let c = config.to_str().unwrap();
    let out_dir = dir.join("zones");
    let o = out_dir.to_str().unwrap();
    let zone_cmd = |extra: &[&str]| {
        let out = common::mailconf(&[&["zone", "--config", c][..], extra].concat());
        assert!(out.status.success(), "{}", common::stderr(&out));
        common::stdout(&out)
    };
    // Serve first, so that the state file holds the served serials.
    let server = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
    let auth = server.addrs("DNS")[0];
    server.wait_log(|l| l.contains("DNS zones built"), 1, "the warm-up");
    let served = dig(auth, &["+norec", "+short", "mail.test", "SOA"]);
    let served_serial = served.split_whitespace().nth(2).unwrap().to_string();
    zone_cmd(&["--out", o]);
    for zone in ["mail.test", "_tcp.mail.test", "alias.test", "_tcp.alias.test"] {
        let text = std::fs::read_to_string(out_dir.join(format!("{zone}.zone"))).unwrap();
        assert!(
            text.contains(" RRSIG ") && text.contains(" NSEC ") && text.contains(" DNSKEY "),
            "{text}"
        );
        check_signed_copy(&dir, zone, &text);
    }
    let file = out_dir.join("mail.test.zone");
    let text = std::fs::read_to_string(&file).unwrap();
    let soa = text.lines().find(|l| l.contains(" SOA ")).unwrap();
    assert!(
        soa.split_whitespace().any(|f| f == served_serial),
        "the served serial {served_serial} in {soa}"
    );
    // The same epoch: not rewritten (ECDSA signatures differ each time, so this is the check).
    let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    zone_cmd(&["--out", o]);
    assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), modified);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    // Unsigned on request.
    zone_cmd(&["--out", o, "--unsigned"]);
    let unsigned = std::fs::read_to_string(&file).unwrap();
    assert!(
        !unsigned.contains("RRSIG") && !unsigned.contains("DNSKEY"),
        "{unsigned}"
    );
    // One zone to standard output: signed as well.
    let one = dir.join("one.toml");
    std::fs::write(
        &one,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("zones = [\"@\", \"_tcp\"]\n", ""),
    )
    .unwrap();
    let out = common::mailconf(&["zone", "--config", one.to_str().unwrap(), "--domain", "mail.test"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    check_signed_copy(&dir, "mail.test", &common::stdout(&out));
}

/// Keys are made off the query path, in batches, by a background thread at start:
/// - while a zone has no key (here: none can be made), a DO query gets the unsigned answer
///   (NOERROR with the records, no RRSIG), never SERVFAIL, and the log says why;
/// - `kill -9` at varied moments while batches are written leaves only whole keys (ring's
///   PKCS#8 of a P-256 key: 138 bytes), never replaces a key made before, and the temporary
///   files of the killed process are removed by the next start;
/// - after the last restart every zone has its key, and a validator accepts the zone with the
///   DS of the key made before the kills.
#[test]
fn keys_are_made_in_background_batches_and_kill_9_leaves_no_half_key() {
    let dir = temp_dir("dnssec-keys-kill");
    let config = config(&dir, "");
    let mut text = std::fs::read_to_string(&config).unwrap();
    let domains = 3000;
    for i in 0..domains {
        text.push_str(&format!(
            "\n[[domain]]\nname = \"d{i}.test\"\nprovider = \"p\"\n[domain.dns]\nnameservers = [\"ns1.example.net.\"]\n"
        ));
    }
    std::fs::write(&config, text).unwrap();
    // mail.test and alias.test with their _tcp sub-zones, and one zone per extra domain.
    let zones = 4 + domains;
    let keys = dir.join("state").join("dnssec");

    // No key can be made (a file where the key directory goes): DO answers are unsigned.
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::write(&keys, b"not a directory").unwrap();
    let server = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
    let auth = server.addrs("DNS")[0];
    server.wait_log(|l| l.contains("cannot make DNSSEC keys"), 1, "the key maker's failure");
    let out = dig(auth, &["+norec", "+dnssec", "_imaps._tcp.mail.test", "SRV"]);
    assert_eq!(status(&out), "NOERROR", "{out}");
    let answer = section(&out, "ANSWER");
    assert!(answer.iter().any(|l| l.contains(" SRV ")), "{out}");
    assert!(!out.contains("RRSIG"), "no key, no signature:\n{out}");
    drop(server);
    std::fs::remove_file(&keys).unwrap();

    let mut seen: std::collections::HashMap<String, Vec<u8>> = Default::default();
    let mut temps_left = 0;
    let mut partial = false;
    for round in 0..5u64 {
        let mut s = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
        std::thread::sleep(Duration::from_millis(50 + round * 100));
        s.child.kill().unwrap(); // SIGKILL
        s.child.wait().unwrap();
        let Ok(entries) = std::fs::read_dir(&keys) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".new-") {
                temps_left += 1;
                continue;
            }
            if name == "rolls" {
                continue; // the DNSSEC state (`zsk-since`), not a key
            }
            let bytes = std::fs::read(e.path()).unwrap();
            assert_eq!(bytes.len(), 138, "round {round}: {name} is not a whole key");
            if let Some(before) = seen.get(&name) {
                assert_eq!(before, &bytes, "round {round}: the key {name} was replaced");
            }
            seen.insert(name, bytes);
        }
        eprintln!("round {round}: {} keys", seen.len());
        partial |= !seen.is_empty() && seen.len() < zones;
    }
    assert!(
        partial,
        "the kills should fall in the middle of the key making: {} of {zones} keys",
        seen.len()
    );

    let server = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
    let auth = server.addrs("DNS")[0];
    let deadline = Instant::now() + Duration::from_secs(60);
    let names = loop {
        let names: Vec<String> = std::fs::read_dir(&keys)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "rolls")
            .collect();
        // Done: every key there and no batch under way (its temporary files gone).
        let made = names.iter().filter(|n| !n.starts_with(".new-")).count();
        if (made >= zones && made == names.len()) || Instant::now() > deadline {
            break names;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if seen.len() < zones {
        server.wait_log(|l| l.contains("DNSSEC keys made"), 1, "the rest of the keys");
    }
    assert!(
        names.iter().all(|n| !n.starts_with(".new-")),
        "temporary files left ({temps_left} seen after kills): {names:?}"
    );
    assert_eq!(names.len(), zones, "one key per zone: {names:?}");
    for (name, bytes) in &seen {
        assert_eq!(&std::fs::read(keys.join(name)).unwrap(), bytes, "{name} replaced");
    }
    // Every key parses (the command reads them all), and the zone validates with its DS.
    let ds = ds_line(&config, "mail.test");
    let out = delv(auth, &ds, &dir, "_imaps._tcp.mail.test", "SRV");
    assert!(out.contains("fully validated"), "{out}");
}

/// `mailconf dnssec roll` then `retire`: a KSK rollover by double signature, the zone validating
/// at every step with the DS in force then (Unbound, each step's trust anchor), the serial moving
/// at each step (secondaries follow), the AXFR'd copy mid-rollover passing `dnssec-verify`. The
/// ZSK signs all but the key sets throughout (the state says ZSKs have been served for long).
#[test]
fn ksk_rollover_validates_at_every_step() {
    let dir = temp_dir("dnssec-roll");
    let config = config(&dir, "");
    let c = config.to_str().unwrap().to_string();
    let ds0 = ds_line(&config, "mail.test");
    // ZSKs served since 1970 on the default schedule (7-day epochs, 5 per ZSK).
    std::fs::write(dir.join("state/dnssec/rolls"), "zsk-since 0 604800 5\n").unwrap();
    let server = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
    let auth = server.addrs("DNS")[0];
    // The KSKs (flags 257) once there are `n`, beside one or two ZSKs (flags 256).
    let dnskeys = |n: usize| -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = dig(auth, &["+norec", "+short", "mail.test", "DNSKEY"]);
            let keys: Vec<String> = out
                .lines()
                .filter(|l| l.starts_with("257 "))
                .map(String::from)
                .collect();
            let zsks = out.lines().filter(|l| l.starts_with("256 ")).count();
            if keys.len() == n && (1..=2).contains(&zsks) {
                return keys;
            }
            assert!(Instant::now() < deadline, "{n} KSKs expected:\n{out}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let serial = || -> u32 {
        let out = dig(auth, &["+norec", "+short", "mail.test", "SOA"]);
        out.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    let check = |u: &Unbound| {
        validated(u, "_imaps._tcp.mail.test", "SRV", "NOERROR");
        validated(u, "nope.mail.test", "A", "NXDOMAIN");
        validated(u, "mail.test", "DNSKEY", "NOERROR");
    };
    // No parent here: `retire --force` skips the check of the parent's DS (and asks no resolver).
    let step = |what: &str| {
        let force: &[&str] = if what == "retire" { &["--force"] } else { &[] };
        let out = common::mailconf(&[&["dnssec", what, "--config", &c, "--domain", "mail.test"][..], force].concat());
        (out.status.success(), common::stdout(&out), common::stderr(&out))
    };
    let ds_of = |text: &str| -> String {
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("mail.test. ")).collect();
        assert_eq!(lines.len(), 1, "{text}");
        lines[0].to_string()
    };

    // Step 0: one key, the DS the registrar has.
    let before = dnskeys(1);
    let u0 = Unbound::start(&dir.join("u0"), auth, &ds0);
    check(&u0);
    let s0 = serial();

    // Step 1: roll. Both keys published, both sign: the old DS and the new one both validate.
    let (ok, out, err) = step("roll");
    assert!(ok, "{err}");
    let ds1 = ds_of(&out);
    assert_ne!(ds1, ds0, "{out}");
    let (ok, _, err) = step("roll");
    assert!(!ok && err.contains("under way"), "a second roll is refused: {err}");
    server.wait_log(|l| l.contains("DNSSEC key rollover state changed"), 1, "the rollover");
    let both = dnskeys(2);
    assert!(both.contains(&before[0]), "the old key stays published: {both:?}");
    let s1 = serial();
    assert_ne!(s1, s0, "the serial moves, so secondaries transfer the new keys");
    check(&u0); // a resolver that had the old key set
    check(&Unbound::start(&dir.join("u1-old"), auth, &ds0));
    check(&Unbound::start(&dir.join("u1-new"), auth, &ds1));
    let out = common::mailconf(&["zone", "--config", &c, "--format", "ds", "--domain", "mail.test"]);
    let listed = common::stdout(&out);
    assert!(
        listed.lines().count() == 2 && listed.contains(&ds0) && listed.contains(&ds1),
        "both DS during the rollover:\n{listed}"
    );
    let cds = dig(auth, &["+norec", "+short", "mail.test", "CDS"]);
    assert_eq!(cds.lines().count(), 2, "CDS for both keys:\n{cds}");
    // The copy a secondary transfers mid-rollover: every RRset signed by both keys. BIND's
    // dnssec-verify checks it; kzonecheck 3.2.6 is left out here: with two DNSKEYs it reports
    // one RRset, a different one from run to run on the same file, as without a valid
    // signature, where dnspython validates every RRSIG of that file and BIND agrees.
    let text = dig(auth, &["+norec", "+nocmd", "+nostats", "+onesoa", "mail.test", "AXFR"]);
    let file = dir.join("rolling.axfr");
    std::fs::write(&file, &text).unwrap();
    let out = Command::new(tool("dnssec-verify", "bind9-utils"))
        .args(["-z", "-o", "mail.test"])
        .arg(&file)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && report.contains("Zone fully signed") && report.contains("KSKs: 2 active"),
        "{report}\n{text}"
    );
    let sigs = |rtype: &str| {
        text.lines()
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(3) == Some(&"RRSIG") && f.get(4) == Some(&rtype)
            })
            .count()
    };
    assert_eq!(sigs("DNSKEY"), 2, "the key set signed by both KSKs:\n{text}");
    assert_eq!(sigs("CDS"), 2, "{text}");
    assert_eq!(sigs("SOA"), 1, "the SOA by the ZSK alone:\n{text}");

    // Step 2: retire. Only the new key: the new DS validates, the old one no longer does.
    let (ok, out, err) = step("retire");
    assert!(ok, "{err}");
    assert_eq!(ds_of(&out), ds1);
    assert!(out.contains("--force: the parent's DS was not checked"), "{out}");
    server.wait_log(|l| l.contains("DNSSEC key rollover state changed"), 2, "the retirement");
    let after = dnskeys(1);
    assert!(!after.contains(&before[0]) && both.contains(&after[0]), "{after:?}");
    let s2 = serial();
    assert_ne!(s2, s1);
    let u2 = Unbound::start(&dir.join("u2"), auth, &ds1);
    check(&u2);
    let old = Unbound::start(&dir.join("u2-old"), auth, &ds0);
    let out = dig(old.addr, &["+dnssec", "mail.test", "TXT"]);
    assert_eq!(status(&out), "SERVFAIL", "the old key is gone:\n{out}");
    drop(old); // before it retries in the background
    assert_eq!(ds_line(&config, "mail.test"), ds1);
    let (ok, _, err) = step("retire");
    assert!(!ok && err.contains("no rollover"), "{err}");
    let text = dig(auth, &["+norec", "+nocmd", "+nostats", "+onesoa", "mail.test", "AXFR"]);
    check_signed_copy(&dir, "mail.test", &text);

    // A restart keeps the new key.
    drop(u0);
    drop(server);
    let server = Server::start(&config, &["--dns-listen", &auth.to_string()], 1);
    assert_eq!(server.addrs("DNS")[0], auth);
    assert_eq!(dnskeys(1), after);
    check(&u2);
    drop(u2); // the resolver first, so that nothing queries the server's port once it is free
    drop(server);
}

/// Knot authoritative for `test.`, the parent of mail.test, on loopback: a zone file this test
/// writes (delegation, glue, the DS records it is given, all with TTL 2), reloaded with `knotc`.
struct ParentKnot {
    _child: common::pebble::Kill,
    dir: std::path::PathBuf,
    addr: SocketAddr,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ParentKnot {
    fn zone(&self, serial: u32, ds: &[&str]) {
        let mut text = format!(
            "$TTL 2\ntest. SOA ns.test. hostmaster.test. {serial} 3600 600 86400 2\ntest. NS ns.test.\n\
             ns.test. A 127.0.0.1\nmail.test. NS ns.mail.test.\nns.mail.test. A 127.0.0.1\n"
        );
        for line in ds {
            // `mail.test. 3600 IN DS …` from mailconf, with the parent's TTL.
            let f: Vec<&str> = line.split_whitespace().collect();
            text.push_str(&format!("{} 2 {}\n", f[0], f[2..].join(" ")));
        }
        std::fs::write(self.dir.join("test.zone"), text).unwrap();
    }

    fn start(dir: &Path, ds: &[&str]) -> ParentKnot {
        std::fs::create_dir_all(dir).unwrap();
        for _ in 0..5 {
            let port = common::free_port();
            let conf = dir.join("knot.conf");
            std::fs::write(
                &conf,
                format!(
                    "server:\n  rundir: {d}\n  listen: 127.0.0.1@{port}\n\ndatabase:\n  storage: {d}\n\nlog:\n  - target: stderr\n    any: info\n\n\
                     zone:\n  - domain: test.\n    storage: {d}\n    file: test.zone\n    zonefile-sync: -1\n    journal-content: none\n",
                    d = dir.display()
                ),
            )
            .unwrap();
            let mut child = Command::new(tool("knotd", "knot"))
                .args(["-c", conf.to_str().unwrap()])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let log = common::collect_lines(child.stderr.take().unwrap());
            let mut knot = ParentKnot {
                _child: common::pebble::Kill(child),
                dir: dir.to_path_buf(),
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                log,
            };
            knot.zone(1, ds);
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let text = knot.log.lock().unwrap().join("\n");
                if text.contains("server started") {
                    knot.wait_for(ds.len());
                    return knot;
                }
                if knot._child.0.try_wait().unwrap().is_some() {
                    assert!(text.contains("cannot bind address"), "knotd stopped:\n{text}");
                    break;
                }
                assert!(Instant::now() < deadline, "knotd did not start:\n{text}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("knotd found no free port in 5 attempts");
    }

    /// Serve `ds` from now on: the zone file rewritten with a new serial, `knotc zone-reload`.
    fn serve(&self, serial: u32, ds: &[&str]) {
        self.zone(serial, ds);
        let out = Command::new(tool("knotc", "knot"))
            .arg("-c")
            .arg(self.dir.join("knot.conf"))
            .args(["zone-reload", "test."])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        self.wait_for(ds.len());
    }

    /// Until Knot answers `mail.test DS` with `n` records.
    fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = common::dig(self.addr, &["mail.test", "DS"]);
            if status(&out) == "NOERROR" && section(&out, "ANSWER").len() == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Knot never served {n} DS:\n{out}\n{}",
                self.log.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `mailconf dnssec retire` asks the parent (Knot for `test.`, through `--resolver` or
/// `--parent-server`): refused while the parent lacks the new DS (the DS to give is printed,
/// nothing changes), then, once it serves it, the first sighting is recorded and the retirement
/// refused until the DS set's TTL (2 s) has passed; then it retires, and `serve` drops the old
/// key. The sighting moves no serial. A resolver that does not answer is an error naming it.
#[test]
fn retire_waits_until_the_parent_has_served_the_new_ds_for_its_ttl() {
    let dir = temp_dir("dnssec-parent");
    let config = config(&dir, "");
    let c = config.to_str().unwrap().to_string();
    let ds0 = ds_line(&config, "mail.test");
    let server = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
    let auth = server.addrs("DNS")[0];
    let dnskeys = || dig(auth, &["+norec", "+short", "mail.test", "DNSKEY"]);
    let serial = || -> u32 {
        let out = dig(auth, &["+norec", "+short", "mail.test", "SOA"]);
        out.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    let rolled = common::mailconf(&["dnssec", "roll", "--config", &c, "--domain", "mail.test"]);
    assert!(rolled.status.success(), "{}", common::stderr(&rolled));
    let text = common::stdout(&rolled);
    let ds1 = text.lines().find(|l| l.starts_with("mail.test. ")).unwrap().to_string();
    server.wait_log(|l| l.contains("DNSSEC key rollover state changed"), 1, "the rollover");
    let knot = ParentKnot::start(&dir.join("knot"), &[&ds0]);
    let rolls = dir.join("state/dnssec/rolls");
    let retire = |how: &[&str]| {
        let out = common::mailconf(&[&["dnssec", "retire", "--config", &c, "--domain", "mail.test"][..], how].concat());
        (out.status.code(), common::stdout(&out), common::stderr(&out))
    };
    let knot_addr = knot.addr.to_string();
    let resolver = ["--resolver", knot_addr.as_str()];
    let parent_server = ["--parent-server", knot_addr.as_str()];

    // The parent serves the old DS only: refused, with the DS to give and what the parent serves.
    // The rollover's line (and the ZSK schedule's `zsk-since` line, which is not ours here).
    let rollover = |text: &str| {
        text.lines()
            .filter(|l| !l.starts_with("zsk-since "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let state = std::fs::read_to_string(&rolls).unwrap();
    assert_eq!(rollover(&state), "mail.test 13 0 rolling");
    let keys = dnskeys();
    let s1 = serial();
    for how in [resolver, parent_server] {
        let (code, out, err) = retire(&how);
        assert_eq!(code, Some(3), "refused, not failed:\n{out}\n{err}");
        assert!(err.contains("not retired yet"), "{err}");
        assert!(
            out.contains("the parent does not serve the DS of the new key") && out.contains(&knot_addr),
            "{out}"
        );
        assert!(out.lines().any(|l| l == ds1), "the DS for the registrar:\n{out}");
        assert!(
            out.contains(&format!("; {}", ds0.replace(" 3600 IN ", " 2 IN "))),
            "what the parent serves:\n{out}"
        );
        assert_eq!(std::fs::read_to_string(&rolls).unwrap(), state, "nothing changes");
    }

    // A resolver that does not answer: an error (exit 2) that names it; nothing changes. Its
    // port stays bound here (silent): a port only picked free could meanwhile be another test's
    // `dig` source port, which would then receive this query.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead = silent.local_addr().unwrap().to_string();
    let started = Instant::now();
    let (code, _, err) = retire(&["--resolver", &dead, "--timeout", "1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("cannot ask the resolver {dead} for the DS of mail.test.")),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(std::fs::read_to_string(&rolls).unwrap(), state);

    // The registrar adds the new DS: the first retire records the sighting and refuses until
    // the DS set's TTL (2 s) has passed; a second one (straight at the parent) still refuses,
    // with the same time.
    knot.serve(2, &[&ds0, &ds1]);
    let (code, first, err) = retire(&resolver);
    assert_eq!(code, Some(3), "{first}\n{err}");
    let since = |out: &str| -> String {
        let at = out
            .find("the parent serves the new DS of mail.test. since ")
            .unwrap_or_else(|| panic!("{out}"));
        out[at..].split_whitespace().nth(9).unwrap().to_string()
    };
    assert!(
        first.contains("resolvers may hold the old DS set until")
            && first.contains("run `mailconf dnssec retire --domain mail.test` again after"),
        "{first}"
    );
    let saved = std::fs::read_to_string(&rolls).unwrap();
    let kept = rollover(&saved);
    let lines: Vec<&str> = kept.lines().collect();
    assert_eq!(lines[0], "mail.test 13 0 rolling", "{saved}");
    assert!(
        lines.len() == 2 && lines[1].starts_with("mail.test 13 ds-seen 1 ") && lines[1].ends_with(" 2"),
        "the sighting with the TTL:\n{saved}"
    );
    let (code, again, _) = retire(&parent_server);
    assert_eq!(code, Some(3), "{again}");
    assert_eq!(since(&again), since(&first), "{again}");
    assert_eq!(std::fs::read_to_string(&rolls).unwrap(), saved);

    // The parent drops the new DS again: the sighting is forgotten; back, it is a new sighting.
    knot.serve(3, &[&ds0]);
    let (code, out, _) = retire(&resolver);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("the parent does not serve the DS of the new key"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&rolls).unwrap(),
        state,
        "the sighting is forgotten"
    );
    knot.serve(4, &[&ds1]);
    let seen = Instant::now();
    let (code, first, _) = retire(&resolver);
    assert_eq!(code, Some(3), "{first}");
    let saved = std::fs::read_to_string(&rolls).unwrap();
    assert!(saved.contains(" ds-seen 1 "), "{saved}");

    // Past the TTL (and past `serve`'s 2 s look at the file): the sightings moved no serial and
    // no key; retire now retires.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(seen.elapsed()));
    assert_eq!(serial(), s1, "a sighting changes nothing served");
    assert_eq!(dnskeys(), keys);
    let (code, out, err) = retire(&resolver);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("longer than the old DS set's TTL (2 s)"), "{out}");
    assert!(out.lines().any(|l| l == ds1) && out.contains("retired"), "{out}");
    assert_eq!(
        rollover(&std::fs::read_to_string(&rolls).unwrap()),
        "mail.test 13 1 done",
        "the sighting is forgotten"
    );
    server.wait_log(|l| l.contains("DNSSEC key rollover state changed"), 2, "the retirement");
    let deadline = Instant::now() + Duration::from_secs(20);
    while dnskeys().lines().filter(|l| l.starts_with("257 ")).count() != 1 {
        assert!(Instant::now() < deadline, "the old KSK stays published:\n{}", dnskeys());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_ne!(serial(), s1);
    let rollover_lines = server
        .log_text()
        .lines()
        .filter(|l| l.contains("DNSSEC key rollover state changed"))
        .count();
    assert_eq!(rollover_lines, 2, "the roll and the retirement, not the sighting");
    drop(knot);
    drop(server);
}

/// RFC 4034 Appendix B key tag of a `dig` DNSKEY line's RDATA (`FLAGS 3 ALG BASE64...`).
fn key_tag(fields: &[&str]) -> u16 {
    use base64::Engine;
    let flags: u16 = fields[0].parse().unwrap();
    let mut rdata = flags.to_be_bytes().to_vec();
    rdata.push(fields[1].parse().unwrap());
    rdata.push(fields[2].parse().unwrap());
    rdata.extend(
        base64::engine::general_purpose::STANDARD
            .decode(fields[3..].concat())
            .unwrap(),
    );
    let mut ac: u32 = 0;
    for (i, b) in rdata.iter().enumerate() {
        ac += if i & 1 == 1 { u32::from(*b) } else { u32::from(*b) << 8 };
    }
    ac += (ac >> 16) & 0xFFFF;
    (ac & 0xFFFF) as u16
}

/// What a zone publishes and who signs, at one moment: the KSK and ZSK tags of the DNSKEY set,
/// the key tags of the RRSIGs over it and over the apex TXT RRset.
#[derive(Debug, Clone, PartialEq)]
struct KeyState {
    serial: u32,
    ksks: Vec<u16>,
    zsks: Vec<u16>,
    dnskey_signers: Vec<u16>,
    txt_signers: Vec<u16>,
}

/// The key state of mail.test at `auth`, if the zone did not change while it was asked (the
/// same serial before and after).
fn key_state(auth: SocketAddr) -> Option<KeyState> {
    let serial = || -> u32 {
        let out = dig(auth, &["+norec", "+short", "mail.test", "SOA"]);
        out.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    let before = serial();
    let keys = section(&dig(auth, &["+norec", "+dnssec", "mail.test", "DNSKEY"]), "ANSWER");
    let txt = section(&dig(auth, &["+norec", "+dnssec", "mail.test", "TXT"]), "ANSWER");
    if serial() != before {
        return None;
    }
    let signers = |lines: &[String], covered: &str| -> Vec<u16> {
        let mut tags: Vec<u16> = lines
            .iter()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f[3] == "RRSIG" && f[4] == covered)
            .map(|f| f[10].parse().unwrap())
            .collect();
        tags.sort();
        tags
    };
    let with_flags = |flags: &str| -> Vec<u16> {
        let mut tags: Vec<u16> = keys
            .iter()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f[3] == "DNSKEY" && f[4] == flags)
            .map(|f| key_tag(&f[4..]))
            .collect();
        tags.sort();
        tags
    };
    Some(KeyState {
        serial: before,
        ksks: with_flags("257"),
        zsks: with_flags("256"),
        dnskey_signers: signers(&keys, "DNSKEY"),
        txt_signers: signers(&txt, "TXT"),
    })
}

/// The automatic ZSK rollover, with 12-second signatures (a signing epoch every 6 s) and ZSKs
/// that sign for two epochs, 1-second TTLs, watched with a validating Unbound that keeps its
/// cache throughout (trust anchor: the KSK's DS, taken once before the start):
/// - the DNSKEY set always holds the one KSK (the DS's) and one or two ZSKs; the KSK alone signs
///   it; the TXT RRset is signed by a published ZSK, and in the first epochs after the first
///   start (`zsk-since`) by the KSK too;
/// - each signing ZSK was published in the epoch before (pre-published) and stays published in
///   its first epoch after it stopped signing; a full roll (B pre-published while A signs, B
///   signing with A still there, A gone) is seen;
/// - at every epoch the serial moves, SRV and TXT answers validate (AD) through Unbound, and the
///   AXFR'd copy passes dnssec-verify, kzonecheck and named-checkzone;
/// - a reload with another `dnssec_zsk_lifetime` (which numbers the ZSKs anew) moves the serial
///   at once, and the KSK signs beside the new ZSK until that was published for an epoch;
/// - the DS the command prints stays the KSK's alone.
#[test]
fn zsk_rolls_by_itself_and_the_zone_validates_at_every_epoch() {
    let dir = temp_dir("dnssec-zsk-roll");
    let config = config(&dir, "dnssec_signature_lifetime = 12\ndnssec_zsk_lifetime = 12");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("ttl = 3600\nnegative_ttl = 120", "ttl = 1\nnegative_ttl = 1");
    std::fs::write(&config, text).unwrap();
    let ds = ds_line(&config, "mail.test");
    let ksk: u16 = ds.split_whitespace().nth(4).unwrap().parse().unwrap();
    let server = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
    let auth = server.addrs("DNS")[0];
    let unbound = Unbound::start(&dir.join("unbound"), auth, &ds);
    let started = Instant::now();

    // The ZSK that signs in `s`, and whether the KSK signs beside it.
    let signer = |s: &KeyState| -> (u16, bool) {
        match s.txt_signers.as_slice() {
            [z] => (*z, false),
            [a, b] if *a == ksk => (*b, true),
            [a, b] if *b == ksk => (*a, true),
            other => panic!("TXT signed by {other:?}: {s:?}"),
        }
    };
    // Watch the zone epoch by epoch (one state per serial, in order, into `epochs`) until
    // `done` says so, checking each state and each step.
    let watch = |epochs: &mut Vec<KeyState>, done: &dyn Fn(&[KeyState]) -> bool, what: &str| {
        let from = epochs.len();
        while !done(&epochs[from..]) {
            assert!(
                started.elapsed() < Duration::from_secs(80),
                "{what}: not seen in time: {epochs:#?}\n{}",
                server.log_text()
            );
            let Some(state) = key_state(auth) else { continue };
            assert_eq!(state.ksks, [ksk], "the one KSK, the DS's: {state:?}");
            assert_eq!(state.dnskey_signers, [ksk], "the KSK alone signs DNSKEY: {state:?}");
            assert!((1..=2).contains(&state.zsks.len()), "{state:?}");
            let (zsk, ksk_too) = signer(&state);
            assert!(state.zsks.contains(&zsk), "the signing ZSK is published: {state:?}");
            match epochs.last() {
                Some(last) if last.serial == state.serial => {
                    assert_eq!(*last, state, "one state per serial");
                    std::thread::sleep(Duration::from_millis(300));
                    continue;
                }
                Some(last) => {
                    assert!(
                        state.serial.wrapping_sub(last.serial) < 0x8000_0000,
                        "the serial went back: {last:?} → {state:?}"
                    );
                    let (before, ksk_before) = signer(last);
                    assert!(
                        !ksk_too || ksk_before || epochs.len() == from,
                        "the KSK signs again after it stopped: {last:?} → {state:?}"
                    );
                    // A new ZSK alone must have been announced, and the old one stays an epoch.
                    if before != zsk && !ksk_too {
                        assert!(
                            last.zsks.contains(&zsk),
                            "{zsk} signs unannounced: {last:?} → {state:?}"
                        );
                        assert!(
                            state.zsks.contains(&before),
                            "{before} dropped at once: {last:?} → {state:?}"
                        );
                    }
                }
                None => assert!(ksk_too, "the first epoch: {state:?}"),
            }
            // A new epoch: validated through Unbound, and a secondary's copy checked.
            validated(&unbound, "_imaps._tcp.mail.test", "SRV", "NOERROR");
            validated(&unbound, "mail.test", "TXT", "NOERROR");
            let text = dig(auth, &["+norec", "+nocmd", "+nostats", "+onesoa", "mail.test", "AXFR"]);
            check_signed_copy(&dir, "mail.test", &text);
            eprintln!("{:>5.1} s: {state:?}", started.elapsed().as_secs_f32());
            epochs.push(state);
        }
    };

    // A full roll, after the first epochs where the KSK signs too.
    let mut epochs: Vec<KeyState> = Vec::new();
    let rolled = |epochs: &[KeyState]| {
        // Signing ZSK of each epoch where it signs alone, with the ZSKs published then.
        let plain: Vec<(u16, &[u16])> = epochs
            .iter()
            .filter(|s| s.txt_signers.len() == 1)
            .map(|s| (s.txt_signers[0], &s.zsks[..]))
            .collect();
        plain.windows(3).any(|w| {
            let (a, b) = (w[0].0, w[1].0);
            a != b && w[0].1.contains(&b) && w[1].1.contains(&a) && w[2].0 == b && !w[2].1.contains(&a)
        })
    };
    watch(&mut epochs, &rolled, "a full ZSK roll");
    assert!(signer(&epochs[0]).1, "the KSK signs beside the ZSK first: {epochs:#?}");

    // Another ZSK lifetime: new ZSK numbers, so the KSK signs beside the new ZSK for an epoch.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("dnssec_zsk_lifetime = 12", "dnssec_zsk_lifetime = 18"),
    )
    .unwrap();
    let last = epochs.last().unwrap().serial;
    server.signal("HUP");
    server.wait_log(|l| l.contains("DNS zones reloaded"), 1, "the reload");
    let reloaded = key_state(auth).or_else(|| key_state(auth)).unwrap();
    assert_ne!(reloaded.serial, last, "rebuilt at the reload: {reloaded:?}");
    let ksk_then_alone = |epochs: &[KeyState]| {
        epochs.first().is_some_and(|s| signer(s).1) && epochs.last().is_some_and(|s| !signer(s).1)
    };
    watch(
        &mut epochs,
        &ksk_then_alone,
        "the KSK beside the new ZSK, then the ZSK alone",
    );
    assert_eq!(ds_line(&config, "mail.test"), ds, "the DS stays the KSK's");
    drop(unbound);
    drop(server);
}
