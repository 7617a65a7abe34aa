//! Faults a server meets in production, on the real binary (issue 17): what mailconf does when
//! its settings file is clobbered.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::{Server, example_without_listeners, http_get, temp_dir, tool};

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
