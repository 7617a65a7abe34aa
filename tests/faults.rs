//! Faults a server meets in production, on the real binary (issue 17): what mailconf does when
//! its settings file is clobbered.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::common::{self, Server, example_without_listeners, http_get, temp_dir, tool};

/// The IMAPS SRV answer for example.com, over UDP, as dig prints it.
fn imaps_srv(dns: SocketAddr) -> String {
    let out = Command::new(tool("dig", "dnsutils"))
        .arg(format!("@{}", dns.ip()))
        .args(["-p", &dns.port().to_string(), "+norec", "+time=2", "+tries=2", "+short"])
        .args(["SRV", "_imaps._tcp.example.com"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The settings file replaced (as config managers do: write, rename over) by an empty, a cut,
/// a binary and a 100 MB file, each noticed by `--watch` and then by SIGHUP: every reload
/// fails, each is reported once, and the previous answers keep being served over DNS and HTTP.
#[test]
fn clobbered_settings_files_keep_the_old_answers() {
    let dir = temp_dir("faults-settings");
    let config = example_without_listeners(&dir);
    let good = std::fs::read(&config).unwrap();
    let s = Server::start(
        &config,
        &["--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--watch"],
        2,
    );
    let (http, dns) = (s.addrs("HTTP")[0], s.addrs("DNS")[0]);
    let thunderbird = || http_get(http, "/mail/config-v1.1.xml?emailaddress=fred%40example.com", "x");
    let srv_before = imaps_srv(dns);
    assert!(srv_before.contains(" 993 "), "SRV before: {srv_before:?}");
    let doc_before = thunderbird().body;
    assert!(String::from_utf8_lossy(&doc_before).contains("<port>993</port>"));

    let text = String::from_utf8(good.clone()).unwrap();
    let cut = text.find("\"mail.example.net\"").unwrap() + 6; // inside a string
    let binary: Vec<u8> = (0..=255u8).cycle().take(64 * 1024).collect();
    let mut line = vec![b'x'; 99];
    line.push(b'\n');
    let huge = line.repeat(1 << 20);
    let cases: [(&str, &[u8]); 4] = [
        ("empty", b""),
        ("cut", &good[..cut]),
        ("binary", &binary),
        ("100 MB", &huge),
    ];
    let failed = |l: &str| l.contains("reload failed") || l.contains("reload refused");
    let mut reports = 0;
    for (what, bytes) in cases {
        let tmp = dir.join("mailconf.toml.new");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, &config).unwrap();
        reports += 1;
        if bytes.len() > 1 << 20 {
            // Answers go on while the big file is read and parsed (seconds in a debug build).
            s.wait_log(
                |l| l.contains("settings file changed"),
                4,
                "the watch to see the 100 MB file",
            );
            assert_eq!(imaps_srv(dns), srv_before, "DNS during the parse of the {what} file");
            assert_eq!(
                thunderbird().body,
                doc_before,
                "HTTP during the parse of the {what} file"
            );
            wait_long(&s, failed, reports, Duration::from_secs(120));
        }
        s.wait_log(failed, reports, &format!("the watch to reject the {what} file"));
        s.signal("HUP");
        reports += 1;
        wait_long(&s, failed, reports, Duration::from_secs(120));
        // Late duplicate reports would show up here.
        std::thread::sleep(Duration::from_millis(800));
        let log = s.log_text();
        assert_eq!(
            log.lines().filter(|l| failed(l)).count(),
            reports,
            "the {what} file: one report per reload; log:\n{log}"
        );
        assert!(!log.contains("reload done"), "the {what} file was taken; log:\n{log}");
        assert_eq!(imaps_srv(dns), srv_before, "DNS after the {what} file");
        let doc = thunderbird();
        assert_eq!(doc.status, 200, "HTTP after the {what} file");
        assert_eq!(doc.body, doc_before, "HTTP after the {what} file");
    }
    // Each problem said what it was, once per reload.
    let log = s.log_text();
    let said = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(said("no domains"), 2, "empty file; log:\n{log}");
    assert_eq!(said("valid UTF-8"), 2, "binary file; log:\n{log}");

    // The good file again: taken at once.
    std::fs::write(dir.join("mailconf.toml.new"), &good).unwrap();
    std::fs::rename(dir.join("mailconf.toml.new"), &config).unwrap();
    s.wait_log(|l| l.contains("reload done"), 1, "the good file to be taken again");
    assert_eq!(imaps_srv(dns), srv_before);
}

/// [`Server::wait_log`] with a longer deadline.
fn wait_long(s: &Server, pred: impl Fn(&str) -> bool, count: usize, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    while s.log.lock().unwrap().iter().filter(|l| pred(l)).count() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out; log:\n{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `state_dir` cannot be written (its parent is a file: root ignores read-only permissions, so
/// this is the fault a test can make): serving goes on, the problem is logged once however many
/// reloads try again, /metrics shows it, and its end is logged once when the disk is back.
#[test]
fn unwritable_state_dir_is_reported_once_and_serving_goes_on() {
    let dir = temp_dir("faults-state");
    let config = example_without_listeners(&dir);
    let blocker = dir.join("disk");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let state = blocker.join("state");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen(
        "[server]\n",
        &format!("[server]\nstate_dir = \"{}\"\n", state.display()),
        1,
    );
    assert!(text.contains("state_dir"), "the example has a [server] table");
    std::fs::write(&config, text).unwrap();
    let s = Server::start(
        &config,
        &["--dns-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"],
        2,
    );
    let (dns, metrics) = (s.addrs("DNS")[0], s.addrs("metrics")[0]);
    let cannot = |l: &str| l.contains("cannot save zone serials");
    s.wait_log(cannot, 1, "the failed write after the warm-up");
    for i in 1..=3 {
        s.signal("HUP");
        s.wait_log(|l| l.contains("reload done"), i, "a reload");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        imaps_srv(dns).contains(" 993 "),
        "DNS answers without its state directory"
    );
    let log = s.log_text();
    assert_eq!(log.lines().filter(|l| cannot(l)).count(), 1, "logged once; log:\n{log}");
    let scrape = || http_get(metrics, "/metrics", "x").text();
    let m = scrape();
    let failures: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("mailconf_state_write_failures_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no failure counter in:\n{m}"));
    assert!(failures >= 4, "a failure per write (start and 3 reloads): {failures}");
    assert!(m.contains("mailconf_state_write_failing 1"), "{m}");

    // The disk is back: the next write works and says so once.
    std::fs::remove_file(&blocker).unwrap();
    s.signal("HUP");
    s.wait_log(|l| l.contains("zone serials saved again"), 1, "the write to work again");
    assert!(state.join("serials").is_file());
    // The zone warm-up after the reload saves once more: its temporary file may exist for a
    // moment, but not for long.
    let renamed = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        !state.join("serials.tmp").exists()
    });
    assert!(renamed, "the temporary file is renamed");
    std::thread::sleep(Duration::from_millis(300));
    assert!(scrape().contains("mailconf_state_write_failing 0"));
}

/// `kill -9` at varied moments during reloads with `state_dir`: after every restart the state
/// file is whole (every line `ORIGIN SERIAL DIGEST`) and no serial went backwards.
#[test]
fn kill_9_during_reloads_never_moves_serials_back() {
    let dir = temp_dir("faults-kill");
    let state = dir.join("state");
    let config = dir.join("mailconf.toml");
    let fixture = std::fs::read_to_string(common::root().join("tests/fixtures/dns.toml")).unwrap();
    let write = |port: u32| {
        let text = fixture.replace("port = 993", &format!("port = {port}"));
        let tmp = dir.join("new.toml");
        std::fs::write(&tmp, format!("[server]\nstate_dir = \"{}\"\n\n{text}", state.display())).unwrap();
        std::fs::rename(&tmp, &config).unwrap();
    };
    let serial = |dns: SocketAddr| -> u32 {
        let out = Command::new(tool("dig", "dnsutils"))
            .arg(format!("@{}", dns.ip()))
            .args(["-p", &dns.port().to_string(), "+norec", "+time=2", "+tries=2", "+short"])
            .args(["SOA", "mail.test"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no SOA serial in {text:?}"))
    };
    // RFC 1982: `a` is behind `b` when b - a (mod 2^32) is in 1..2^31.
    let behind = |a: u32, b: u32| b != a && b.wrapping_sub(a) < 1 << 31;
    let mut last: Option<u32> = None;
    for round in 0..6u32 {
        write(1000 + round);
        let mut s = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
        let dns = s.addrs("DNS")[0];
        let first = serial(dns);
        if let Some(last) = last {
            assert!(
                !behind(first, last),
                "round {round}: serial {first} after restart, {last} served before"
            );
        }
        last = Some(first);
        // A reload that changes the zone, killed 0–50 ms after SIGHUP.
        write(2000 + round);
        s.signal("HUP");
        std::thread::sleep(Duration::from_millis(u64::from(round * 10)));
        if s.log_text().contains("reload done") {
            last = Some(serial(dns));
        }
        s.child.kill().unwrap(); // SIGKILL
        s.child.wait().unwrap();
        if let Ok(text) = std::fs::read_to_string(state.join("serials")) {
            for line in text.lines() {
                let f: Vec<&str> = line.split(' ').collect();
                assert!(
                    f.len() == 3 && f[1].parse::<u32>().is_ok() && f[2].len() == 64,
                    "round {round}: a half-written state line {line:?}"
                );
            }
            assert!(text.ends_with('\n'), "round {round}: state file cut short");
        }
    }
}
