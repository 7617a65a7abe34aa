//! Golden files for every client document, rendered by the real binary (`mailconf render`), for
//! a multi-domain example and the edge-case config. `UPDATE_GOLDEN=1 cargo test` rewrites them.

use crate::common;

use common::{mailconf, root, stderr};

const CASES: &[(&str, &str, &str, &str)] = &[
    ("deploy/mailconf.example.toml", "thunderbird", "fred@example.com", "xml"),
    (
        "deploy/mailconf.example.toml",
        "thunderbird",
        "Wilma.F@Example.ORG",
        "xml",
    ),
    (
        "deploy/mailconf.example.toml",
        "thunderbird",
        "fred@example.info",
        "xml",
    ),
    (
        "deploy/mailconf.example.toml",
        "autodiscover",
        "fred@example.com",
        "xml",
    ),
    (
        "deploy/mailconf.example.toml",
        "autodiscover-json",
        "fred@example.com",
        "json",
    ),
    (
        "deploy/mailconf.example.toml",
        "mobileconfig",
        "fred@example.com",
        "mobileconfig",
    ),
    ("deploy/mailconf.example.toml", "mta-sts", "fred@example.com", "txt"),
    ("tests/fixtures/edge.toml", "thunderbird", "ann@bücher.example", "xml"),
    ("tests/fixtures/edge.toml", "autodiscover", "ann@bücher.example", "xml"),
    (
        "tests/fixtures/edge.toml",
        "mobileconfig",
        "ann@bücher.example",
        "mobileconfig",
    ),
    ("tests/fixtures/edge.toml", "mta-sts", "ann@bücher.example", "txt"),
    // Calendars, contacts, OAuth 2, documentation and PACC (issue 15).
    ("tests/fixtures/dav.toml", "thunderbird", "fred@example.org", "xml"),
    (
        "tests/fixtures/dav.toml",
        "mobileconfig",
        "fred@example.org",
        "mobileconfig",
    ),
    ("tests/fixtures/dav.toml", "pacc", "fred@example.org", "json"),
    ("tests/fixtures/dav.toml", "thunderbird", "ann@example.edu", "xml"),
    // A domain's own calendars and documentation over its provider's.
    ("tests/fixtures/dav.toml", "thunderbird", "fred@owndav.example", "xml"),
    (
        "tests/fixtures/dav.toml",
        "mobileconfig",
        "fred@owndav.example",
        "mobileconfig",
    ),
    ("tests/fixtures/dav.toml", "pacc", "fred@owndav.example", "json"),
    // Outlook's ServiceHome with the domain's own documentation; PACC without any (issue 16).
    ("tests/fixtures/dav.toml", "autodiscover", "fred@owndav.example", "xml"),
    ("tests/fixtures/pacc-setup.toml", "pacc", "fred@example.net", "json"),
];

#[test]
fn documents_match_golden_files() {
    let dir = root().join("tests/golden/render");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    std::fs::create_dir_all(&dir).unwrap();
    for (config, format, address, ext) in CASES {
        let out = mailconf(&["render", format, "--config", config, "--address", address]);
        assert!(out.status.success(), "{format} {address}: {}", stderr(&out));
        let name = format!("{format}-{}.{ext}", address.to_lowercase());
        let path = dir.join(&name);
        if update {
            std::fs::write(&path, &out.stdout).unwrap();
        }
        let want = std::fs::read(&path).unwrap_or_else(|_| panic!("{name} missing: UPDATE_GOLDEN=1 cargo test"));
        assert!(
            out.stdout == want,
            "{name} differs from the golden file (review, then UPDATE_GOLDEN=1):\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn render_refuses_unknown_domains_and_bad_addresses() {
    let out = mailconf(&[
        "render",
        "thunderbird",
        "--config",
        "deploy/mailconf.example.toml",
        "--address",
        "a@unknown.example",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("domain `unknown.example` is not in"),
        "{}",
        stderr(&out)
    );
    let out = mailconf(&[
        "render",
        "thunderbird",
        "--config",
        "deploy/mailconf.example.toml",
        "--address",
        "<x>@example.com",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
