//! `mailconf zone` and `mailconf check` end to end: the real binary, `named-checkzone`, and
//! hickory's zone parser reading the files back.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{mailconf, root, stderr, stdout, temp_dir, tool};
use hickory_server::proto::rr::Name;
use hickory_server::proto::serialize::txt::Parser;
use mailconf::records;
use mailconf::settings::Settings;

const EXAMPLE: &str = "deploy/mailconf.example.toml";
const EDGE: &str = "tests/fixtures/edge.toml";
/// CalDAV/CardDAV (RFC 6764) and PACC records.
const DAV: &str = "tests/fixtures/dav.toml";

/// Write every zone of `config` into a fresh directory and return it.
fn write_zones(config: &str, name: &str) -> std::path::PathBuf {
    let dir = temp_dir(name);
    let out = mailconf(&["zone", "--config", config, "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "mailconf zone failed: {}", stderr(&out));
    dir
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Compare a generated directory with a checked-in one; `UPDATE_GOLDEN=1` rewrites it.
fn assert_same_dir(generated: &Path, checked_in: &Path, regenerate: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(checked_in);
        std::fs::create_dir_all(checked_in).unwrap();
        for (name, bytes) in files(generated) {
            std::fs::write(checked_in.join(name), bytes).unwrap();
        }
    }
    let want = files(checked_in);
    let got = files(generated);
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&got),
        names(&want),
        "{} is stale: {regenerate}",
        checked_in.display()
    );
    for ((name, g), (_, w)) in got.iter().zip(&want) {
        assert!(
            g == w,
            "{}/{name} is stale: {regenerate}\n--- generated ---\n{}",
            checked_in.display(),
            String::from_utf8_lossy(g)
        );
    }
}

#[test]
fn zones_dir_is_generated_from_the_example_config() {
    let dir = write_zones(EXAMPLE, "zones-example");
    assert_same_dir(
        &dir,
        &root().join("zones"),
        "run `cargo run -- zone --config deploy/mailconf.example.toml --out zones` (or UPDATE_GOLDEN=1 cargo test)",
    );
}

#[test]
fn edge_case_zones_match_golden_files() {
    let dir = write_zones(EDGE, "zones-edge");
    assert_same_dir(
        &dir,
        &root().join("tests/golden/zones-edge"),
        "review, then UPDATE_GOLDEN=1 cargo test",
    );
}

#[test]
fn dav_and_pacc_zones_match_golden_files() {
    let dir = write_zones(DAV, "zones-dav");
    assert_same_dir(
        &dir,
        &root().join("tests/golden/zones-dav"),
        "review, then UPDATE_GOLDEN=1 cargo test",
    );
}

#[test]
fn output_is_deterministic() {
    let a = files(&write_zones(EDGE, "zones-det-a"));
    let b = files(&write_zones(EDGE, "zones-det-b"));
    assert_eq!(a, b);
}

#[test]
fn named_checkzone_accepts_every_zone() {
    let checker = tool("named-checkzone", "bind9-utils");
    let mut checked = 0;
    for (config, name) in [(EXAMPLE, "nck-example"), (EDGE, "nck-edge"), (DAV, "nck-dav")] {
        let dir = write_zones(config, name);
        for (file, _) in files(&dir).iter().filter(|(f, _)| f.ends_with(".zone")) {
            let zone = file.trim_end_matches(".zone");
            let out = Command::new(&checker)
                .args(["-k", "fail", "-n", "fail", "-M", "fail", "-S", "fail"])
                .arg(zone)
                .arg(dir.join(file))
                .output()
                .unwrap();
            let text = format!("{}{}", stdout(&out), stderr(&out));
            assert!(
                out.status.success() && text.trim_end().ends_with("OK"),
                "named-checkzone {zone}:\n{text}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 12, "only {checked} zones checked");
}

/// Every zone file, parsed back with hickory's zone parser, holds exactly the records that
/// `records` says (names, types, TTLs and RDATA), so the text cannot silently drift (e.g. TXT
/// quoting, which named-checkzone does not catch).
#[test]
fn zone_files_parse_back_to_the_record_set() {
    for (config, name) in [(EXAMPLE, "rt-example"), (EDGE, "rt-edge"), (DAV, "rt-dav")] {
        let settings = Settings::load(&root().join(config)).unwrap();
        let dir = write_zones(config, name);
        let mut zones = 0;
        for dr in records::all(&settings) {
            for zone in &dr.zones {
                let file = dir.join(format!("{}zone", zone.origin.to_ascii()));
                let text = std::fs::read_to_string(&file).unwrap();
                let (origin, sets) = Parser::new(text, Some(file.clone()), None).parse().unwrap();
                assert_eq!(origin, zone.origin);
                let parsed: BTreeSet<String> = sets
                    .values()
                    .flat_map(|rs| {
                        rs.records_without_rrsigs()
                            .map(|r| format!("{} {} {:?}", r.name.to_ascii().to_lowercase(), r.ttl, r.data))
                    })
                    .collect();
                let want: BTreeSet<String> = zone
                    .records()
                    .map(|r| format!("{} {} {:?}", r.name.to_ascii().to_lowercase(), r.ttl, r.data))
                    .collect();
                assert_eq!(parsed, want, "{}", file.display());
                zones += 1;
            }
        }
        assert!(zones >= 3);
    }
}

#[test]
fn long_txt_is_split_and_escaped() {
    let text = std::fs::read_to_string(write_zones(EDGE, "txt-edge").join("xn--bcher-kva.example.zone")).unwrap();
    let spf = text.lines().find(|l| l.contains("v=spf1")).unwrap();
    let first = &spf[spf.find('"').unwrap()..];
    let strings: Vec<&str> = first.split("\" \"").collect();
    assert_eq!(strings.len(), 2, "{spf}");
    assert_eq!(strings[0].len() - 1, 255, "first string is 255 octets");
    let dmarc = text.lines().find(|l| l.contains("v=DMARC1")).unwrap();
    assert!(dmarc.contains(r#"ruf=mailto:\"forensic\\\"@example.net""#), "{dmarc}");
}

#[test]
fn one_domain_to_stdout_equals_its_file() {
    let out = mailconf(&["zone", "--config", EXAMPLE, "--domain", "Example.COM"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        std::fs::read_to_string(root().join("zones/example.com.zone")).unwrap()
    );
}

#[test]
fn several_zones_need_an_out_dir() {
    let out = mailconf(&["zone", "--config", EXAMPLE, "--domain", "example.info"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("3 zones selected; a master file holds one"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn parent_lines_for_delegated_zones() {
    let out = mailconf(&[
        "zone",
        "--config",
        EXAMPLE,
        "--domain",
        "example.info",
        "--format",
        "parent",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "_tcp.example.info.",
        "autoconfig.example.info.",
        "autodiscover.example.info.",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(line) && l.ends_with("IN NS ns1.example.net.")),
            "{line} NS in:\n{text}"
        );
    }
    assert!(text.contains("IN MX 10 mx1.example.net."), "{text}");
    assert!(!text.contains("SRV"), "SRV records live in the delegated zone:\n{text}");
    // A domain served whole has no parent lines.
    let out = mailconf(&[
        "zone",
        "--config",
        EXAMPLE,
        "--domain",
        "example.com",
        "--format",
        "parent",
    ]);
    assert_eq!(stdout(&out), "");
}

#[test]
fn snippet_has_data_but_no_soa_or_ns() {
    let out = mailconf(&[
        "zone",
        "--config",
        EXAMPLE,
        "--domain",
        "example.info",
        "--format",
        "snippet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains(" SOA ") && !text.contains(" NS "), "{text}");
    for want in [
        "_imaps._tcp.example.info.",
        "_pop3._tcp.example.info.",
        "IN MX 10",
        "v=spf1",
        "autoconfig.example.info.",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    assert!(!text.contains("$ORIGIN"));
    let _ = Name::root();
}

#[test]
fn check_accepts_the_example_and_rejects_broken_files() {
    let out = mailconf(&["check", "--config", EXAMPLE]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("OK (1 providers, 3 domains, 5 zones)"),
        "{}",
        stdout(&out)
    );

    let fixtures = root().join("tests/fixtures/bad");
    let mut n = 0;
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let rel = format!("tests/fixtures/bad/{}", path.file_name().unwrap().to_string_lossy());
        let out = mailconf(&["check", "--config", &rel]);
        assert_eq!(out.status.code(), Some(1), "{rel}");
        let want = std::fs::read_to_string(path.with_extension("stderr")).unwrap();
        assert_eq!(stderr(&out), want, "{rel}");
        n += 1;
    }
    assert!(n >= 2);

    let out = mailconf(&["check", "--config", "does/not/exist.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("failed to read `does/not/exist.toml`"),
        "{}",
        stderr(&out)
    );
}

/// The `_ua-auto-config` TXT holds base64(SHA-256) of exactly the bytes `mailconf render pacc`
/// prints, computed here by openssl.
#[test]
fn pacc_digest_in_the_zone_is_the_body_digest() {
    let openssl = tool("openssl", "openssl");
    let out = mailconf(&["render", "pacc", "--config", DAV, "--address", "fred@example.org"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let body = out.stdout;
    let mut child = Command::new(&openssl)
        .args(["dgst", "-sha256", "-binary"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&body).unwrap();
    let raw = child.wait_with_output().unwrap().stdout;
    assert_eq!(raw.len(), 32);
    let mut b64 = Command::new(&openssl)
        .args(["base64", "-A"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    b64.stdin.take().unwrap().write_all(&raw).unwrap();
    let digest = String::from_utf8(b64.wait_with_output().unwrap().stdout).unwrap();
    let zone = std::fs::read_to_string(write_zones(DAV, "pacc-digest").join("example.org.zone")).unwrap();
    let want = format!(
        "_ua-auto-config.example.org.    600 IN TXT \"v=UAAC1; a=sha256; d={}\"",
        digest.trim()
    );
    assert!(zone.contains(&want), "{want}\nnot in\n{zone}");
    // A provider without `pacc` publishes neither the record nor the host.
    let edu = std::fs::read_to_string(write_zones(DAV, "pacc-none").join("example.edu.zone")).unwrap();
    assert!(!edu.contains("ua-auto-config"), "{edu}");
}
