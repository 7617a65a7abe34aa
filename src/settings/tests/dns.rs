//! Rules of `[domain.dns]` and the DNS parts of `[server]`: records, delegated zones, MTA-STS,
//! TSIG keys and secondaries, DNSSEC signature lifetimes.

use super::*;

#[test]
fn dns_record_rules() {
    let base = format!("{PROVIDER}{DOMAIN}");
    let with = |extra: &str| format!("{base}{extra}\n");
    let cases: &[(&str, &str)] = &[
        (
            "spf = \"v=spf2 mx\"",
            "domain[0].dns.spf: must start with `v=spf1` (RFC 7208 §4.5)",
        ),
        (
            "dmarc = \"p=reject; v=DMARC1\"",
            "domain[0].dns.dmarc: must start with `v=DMARC1` (RFC 7489 §6.4)",
        ),
        (
            "dmarc = \"v=DMARC1; rua=mailto:d@example.com; p=reject\"",
            "domain[0].dns.dmarc: `p=none|quarantine|reject` must follow `v=DMARC1` (RFC 7489 §6.4)",
        ),
        (
            "tls_rpt = \"tlsrpt@example.com\"",
            "domain[0].dns.tls_rpt: must be `mailto:` or `https://` report URIs, comma separated (RFC 8460 §3)",
        ),
        (
            "dmarc = \"v=DMARC1; p=none; rua=mailto:d@bücher.example\"",
            "domain[0].dns.dmarc: must be ASCII: write international domain names in their xn-- form",
        ),
        (
            "ttl = 0",
            "domain[0].dns.ttl: must be 1 to 2147483647 seconds (RFC 2181 §8)",
        ),
        (
            "autoconfig_cname = \"web.example.net.\"",
            "domain[0].dns.autoconfig_cname: give either autoconfig_addresses or autoconfig_cname, not both",
        ),
        (
            "mx = [{ host = \".\", preference = 10 }]",
            "domain[0].dns.mx[0].host: the null MX `.` (RFC 7505) must be the only MX, with preference 0",
        ),
        (
            "mx = [{ host = \"mx.example.com\", preference = 10 }]",
            "domain[0].dns.mx[0].host: `mx.example.com` is inside the zone but has no address; add it under `hosts`",
        ),
        (
            "zones = [\"_tcp.example.org\"]",
            "domain[0].dns.zones[0]: `_tcp.example.org` is not inside `example.com` (write names relative to the domain, or in full)",
        ),
        (
            "zones = [\"a b\"]",
            "domain[0].dns.zones[0]: `a b` is not a name relative to `example.com` (write `@` for the domain itself)",
        ),
        (
            "hostmaster = \"nobody\"",
            "domain[0].dns.hostmaster: `nobody` is not a mail address",
        ),
        (
            "transfer_to = [\"ns2.example.net\"]",
            "domain[0].dns.transfer_to[0]: `ns2.example.net` is not an IP address or IP:port",
        ),
    ];
    for (extra, want) in cases {
        let errs = errors(&with(extra));
        assert_eq!(errs.len(), 1, "{extra}: {errs:?}");
        assert!(errs[0].ends_with(want), "{extra}:\n got {}\nwant …{want}", errs[0]);
    }
    ok(&with(
        "mx = [{ host = \"mx.example.com\", preference = 10 }]\nhosts = { mx = [\"192.0.2.25\"] }",
    ));
    ok(&with("mx = [{ host = \".\", preference = 0 }]"));
}

#[test]
fn no_srv_or_mx_target_is_a_cname_we_create() {
    let text = format!(
        "{}{}",
        PROVIDER.replace("mail.example.net", "autoconfig.example.com"),
        DOMAIN.replace(
            "autoconfig_addresses = [\"192.0.2.10\"]",
            "autoconfig_cname = \"web.example.net.\""
        )
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].ends_with("provider.examplemail.server[0].host: `autoconfig.example.com` is a CNAME that domain[0].dns creates; an SRV target must not be an alias (RFC 2782)"), "{errs:?}");
}

#[test]
fn delegated_zone_cannot_be_a_cname() {
    let text = format!(
        "{PROVIDER}{}",
        DOMAIN.replace(
            "autoconfig_addresses = [\"192.0.2.10\"]",
            "autoconfig_cname = \"web.example.net.\"\nzones = [\"_tcp\", \"autoconfig\"]"
        )
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].ends_with("domain[0].dns.zones: `autoconfig.example.com` cannot be both a zone apex and a CNAME; use autoconfig_addresses"), "{errs:?}");
}

#[test]
fn mta_sts_rules() {
    let base = format!("{PROVIDER}{DOMAIN}");
    assert!(
        errors(&format!(
            "{base}[domain.mta_sts]\nmode = \"strict\"\nmx = [\"mx.example.net\"]\n"
        ))[0]
            .ends_with("domain[0].mta_sts.mode: `strict` is not one of enforce, testing, none (RFC 8461 §3.2)")
    );
    assert!(
        errors(&format!("{base}[domain.mta_sts]\nmode = \"enforce\"\n"))[0]
            .ends_with("domain[0].mta_sts.mx: no MX hosts: list them here or under dns.mx")
    );
    let s = ok(&format!(
        "{base}mx = [{{ host = \"mx1.example.net.\", preference = 10 }}]\n[domain.mta_sts]\nmode = \"testing\"\n"
    ));
    let sts = s.domains[0].mta_sts.as_ref().unwrap();
    assert_eq!(
        crate::mta_sts::policy(sts),
        "version: STSv1\r\nmode: testing\r\nmx: mx1.example.net\r\nmax_age: 604800\r\n"
    );
}

#[test]
fn tsig_keys_and_keyed_secondaries() {
    let secret = "bWFpbGNvbmYgdGVzdCBrZXksIDMyIG9jdGV0cyBvayE=";
    let with = |server: &str| format!("[server]\n{server}\n{PROVIDER}{DOMAIN}");
    let s = ok(&with(&format!(
        "transfer_to = [\"192.0.2.53 key xfr.Example.NET\", \"192.0.2.54:5353\"]\n\
         [server.tsig.\"xfr.example.net.\"]\nalgorithm = \"hmac-sha512\"\nsecret = \"{secret}\""
    )));
    assert_eq!(s.server.tsig.len(), 1);
    assert_eq!(s.server.tsig[0].name, "xfr.example.net.");
    assert_eq!(s.server.tsig[0].algorithm, TsigAlgorithm::HmacSha512);
    assert_eq!(s.server.tsig[0].secret, b"mailconf test key, 32 octets ok!");
    assert_eq!(s.server.transfer_keys.get(&"192.0.2.53".parse().unwrap()), Some(&0));
    assert_eq!(s.server.transfer_keys.len(), 1);
    assert_eq!(s.server.transfer_to.len(), 2);
    assert!(!format!("{:?}", s.server).contains(secret), "Debug hides the secret");
    ok(&with("[server.tsig.tsig-key]\nsecret_file = \"/run/keys/xfr\""));

    let key = format!("[server.tsig.xfr]\nsecret = \"{secret}\"");
    let cases = [
        (
            format!("transfer_to = [\"192.0.2.53 key nope\"]\n{key}"),
            "server.transfer_to[0]: no key `nope.`: define it as [server.tsig.\"nope.\"]",
        ),
        (
            format!("transfer_to = [\"192.0.2.53 xfr\"]\n{key}"),
            "server.transfer_to[0]: `192.0.2.53 xfr` is not `IP`, `IP:port` or `IP key NAME`",
        ),
        (
            format!(
                "transfer_to = [\"192.0.2.53 key xfr\", \"192.0.2.53:54 key other\"]\n{key}\n[server.tsig.other]\nsecret = \"{secret}\""
            ),
            "server.transfer_to[1]: secondary 192.0.2.53 is given two different keys",
        ),
        (
            "[server.tsig.xfr]\nsecret = \"not base64!\"".into(),
            "server.tsig.\"xfr\".secret: the secret is not base64 (as tsig-keygen or keymgr print it)",
        ),
        (
            format!("[server.tsig.xfr]\nalgorithm = \"hmac-md5\"\nsecret = \"{secret}\""),
            "server.tsig.\"xfr\".algorithm: `hmac-md5` is not hmac-sha256 or hmac-sha512",
        ),
        (
            format!("[server.tsig.xfr]\nsecret = \"{secret}\"\nsecret_file = \"/k\""),
            "server.tsig.\"xfr\": give either secret or secret_file, not both",
        ),
        (
            "[server.tsig.xfr]\nalgorithm = \"hmac-sha256\"".into(),
            "server.tsig.\"xfr\": needs secret (base64) or secret_file",
        ),
        (
            format!("[server.tsig.\"bad key\"]\nsecret = \"{secret}\""),
            "server.tsig.\"bad key\": `bad key` is not a TSIG key name (labels of letters, digits, `-` and `_`, as `xfr.example.net.`)",
        ),
    ];
    for (server, want) in cases {
        let errs = errors(&with(&server));
        assert_eq!(errs.len(), 1, "{server}: {errs:?}");
        assert!(errs[0].ends_with(want), "{server}:\n got {}\nwant …{want}", errs[0]);
        assert!(!errs[0].contains(secret), "{errs:?}");
    }
    let s = ok(&with("catalog = \"Catalog.Example.NET.\""));
    assert_eq!(s.server.catalog.as_deref(), Some("catalog.example.net"));
    let errs = errors(&with("catalog = \"not a name\""));
    assert!(
        errs.len() == 1 && errs[0].contains("server.catalog: `not a name` is not a valid host name"),
        "{errs:?}"
    );
    // Keys are required in [server] transfer_to only.
    let errs = errors(&format!(
        "{PROVIDER}{}",
        DOMAIN.replace("[domain.dns]", "[domain.dns]\ntransfer_to = [\"192.0.2.53 key xfr\"]")
    ));
    assert!(
        errs.len() == 1
            && errs[0]
                .ends_with("domain[0].dns.transfer_to[0]: a TSIG key can be required in [server] transfer_to only"),
        "{errs:?}"
    );
}

#[test]
fn tsig_secret_files_are_read_in_the_file_step() {
    let dir = std::env::temp_dir().join(format!("mailconf-tsig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = "bWFpbGNvbmYgdGVzdCBrZXksIDMyIG9jdGV0cyBvayE=";
    let files = [
        ("plain", format!("{secret}\n")),
        (
            "bind",
            format!("key \"xfr\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{secret}\";\n}};\n"),
        ),
        (
            "knot",
            format!("key:\n  - id: xfr\n    algorithm: hmac-sha256\n    secret: {secret}\n"),
        ),
    ];
    for (name, text) in &files {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let mut s = ok(&format!(
            "[server.tsig.xfr]\nsecret_file = \"{}\"\n{PROVIDER}{DOMAIN}",
            path.display()
        ));
        assert!(s.server.tsig[0].secret.is_empty(), "not read before read_files");
        s.read_files().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.server.tsig[0].secret, b"mailconf test key, 32 octets ok!", "{name}");
    }
    let path = dir.join("broken");
    std::fs::write(&path, "secret: s3cr3t-but-not-base64!\n").unwrap();
    let mut s = ok(&format!(
        "[server.tsig.xfr]\nsecret_file = \"{}\"\n{PROVIDER}{DOMAIN}",
        path.display()
    ));
    let errs = s.read_files().unwrap_err().to_string();
    assert!(
        errs.contains("server.tsig.\"xfr\".secret_file:") && errs.contains("is not base64") && !errs.contains("s3cr3t"),
        "{errs}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dnssec_signature_lifetime_is_bounded() {
    let with =
        |extra: &str| format!("[server]\nstate_dir = \"/var/lib/x\"\ndnssec = true\n{extra}\n{PROVIDER}{DOMAIN}");
    assert_eq!(ok(&with("")).server.dnssec_signature_lifetime, 0, "0: the default");
    assert_eq!(
        ok(&with("dnssec_signature_lifetime = 86400"))
            .server
            .dnssec_signature_lifetime,
        86_400
    );
    for bad in ["9", "7776001"] {
        assert_eq!(
            errors(&with(&format!("dnssec_signature_lifetime = {bad}"))),
            vec!["4:29: server.dnssec_signature_lifetime: must be 10 to 7776000 seconds (90 days)"]
        );
    }
    assert_eq!(ok(&with("")).server.dnssec_zsk_lifetime, 0, "0: the default");
    assert_eq!(ok(&with("dnssec_zsk_lifetime = 20")).server.dnssec_zsk_lifetime, 20);
    for bad in ["9", "31536001"] {
        assert_eq!(
            errors(&with(&format!("dnssec_zsk_lifetime = {bad}"))),
            vec!["4:23: server.dnssec_zsk_lifetime: must be 10 to 31536000 seconds (365 days)"]
        );
    }
    assert_eq!(
        ok(&with("dnssec_cache_zones = 300000")).server.dnssec_cache_zones,
        300_000
    );
    assert_eq!(
        errors(&with("dnssec_cache_zones = 0")),
        vec!["4:22: server.dnssec_cache_zones: must be 1 to 10000000"]
    );
}
