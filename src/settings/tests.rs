//! Validation rules, each with the exact message a postmaster sees.

use super::*;

const PROVIDER: &str = r#"
[provider.examplemail]
display_name = "Example Mail"
[[provider.examplemail.server]]
protocol = "imap"
host = "mail.example.net"
port = 993
security = "tls"
[[provider.examplemail.server]]
protocol = "smtp"
host = "mail.example.net"
port = 465
security = "tls"
"#;

const DOMAIN: &str = r#"
[[domain]]
name = "example.com"
provider = "examplemail"
[domain.dns]
nameservers = ["ns1.example.net."]
autoconfig_addresses = ["192.0.2.10"]
"#;

/// Every diagnostic of `text` as `line:col: path: message`.
fn errors(text: &str) -> Vec<String> {
    match Settings::from_toml(text, "t.toml") {
        Ok(_) => Vec::new(),
        Err(d) => {
            d.0.iter()
                .map(|d| d.to_string().trim_start_matches("t.toml:").to_string())
                .collect()
        }
    }
}

fn ok(text: &str) -> Settings {
    Settings::from_toml(text, "t.toml").unwrap_or_else(|e| panic!("expected valid settings, got:\n{e}"))
}

/// Line number (1-based) of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect("needle in text") + 1
}

#[test]
fn minimal_is_valid() {
    let s = ok(&format!("{PROVIDER}{DOMAIN}"));
    let d = s.domain("EXAMPLE.com.").unwrap();
    assert_eq!(d.provider.short_name, "examplemail");
    assert_eq!(d.provider.servers[0].username, "%EMAILADDRESS%");
    assert_eq!(d.provider.servers[0].auth, vec![Auth::PasswordCleartext]);
    let dns = d.dns.as_ref().unwrap();
    assert_eq!(
        (dns.ttl, dns.negative_ttl, &*dns.zones),
        (3600, 300, &[String::new()][..])
    );
}

#[test]
fn unknown_provider_suggests_the_closest() {
    let text = format!(
        "{PROVIDER}{}",
        DOMAIN.replace("provider = \"examplemail\"", "provider = \"exmaple\"")
    );
    let line = line_of(&text, "exmaple");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{line}:12: domain[0].provider: unknown provider \"exmaple\"; did you mean \"examplemail\"?"
        )]
    );
}

#[test]
fn unknown_keys_are_refused_in_every_table() {
    // Inject a bogus key into every table of the example configuration (hickory's trick).
    let example = include_str!("../../deploy/mailconf.example.toml");
    let mut tables = 0;
    for (i, line) in example.lines().enumerate() {
        if !line.starts_with('[') {
            continue;
        }
        tables += 1;
        let mut lines: Vec<&str> = example.lines().collect();
        lines.insert(i + 1, "bogus_key = 1");
        let errs = errors(&lines.join("\n"));
        assert_eq!(errs.len(), 1, "table `{line}`: {errs:?}");
        assert!(errs[0].starts_with(&format!("{}:1: ", i + 2)), "{errs:?}");
        assert!(errs[0].contains("bogus_key: unknown field `bogus_key`"), "{errs:?}");
    }
    assert!(tables >= 10, "example has {tables} tables");
}

#[test]
fn bad_hostnames_ports_and_addresses() {
    let text = format!(
        "{}{}",
        PROVIDER.replace(
            "host = \"mail.example.net\"\nport = 993",
            "host = \"mail_example.net\"\nport = 0"
        ),
        DOMAIN.replace("192.0.2.10", "192.0.2.300")
    );
    let errs = errors(&text);
    assert_eq!(
        errs,
        vec![
            format!(
                "{}:8: provider.examplemail.server[0].host: `mail_example.net` is not a valid host name (labels of letters, digits and `-`, at most 63 octets each, 253 in all, at least two labels)",
                line_of(&text, "mail_example")
            ),
            format!(
                "{}:8: provider.examplemail.server[0].port: port 0 is not a port",
                line_of(&text, "port = 0")
            ),
            format!(
                "{}:25: domain[0].dns.autoconfig_addresses[0]: `192.0.2.300` is not an IP address",
                line_of(&text, "192.0.2.300")
            ),
        ]
    );
}

#[test]
fn port_out_of_range_is_located() {
    let text = PROVIDER.replace("port = 993", "port = 70000");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}:8: provider.examplemail.server[0].port: invalid value: integer `70000`, expected u16",
            line_of(&text, "70000")
        )]
    );
}

#[test]
fn duplicate_domains_also_across_aliases() {
    let text = format!(
        "{PROVIDER}{DOMAIN}{}",
        DOMAIN.replace(
            "name = \"example.com\"",
            "name = \"example.org\"\naliases = [\"Example.COM\"]"
        )
    );
    let line = line_of(&text, "Example.COM");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{line}:12: domain[1].aliases[0]: domain `example.com` is configured twice (first at domain[0].name)"
        )]
    );
}

#[test]
fn provider_must_offer_sending_and_receiving() {
    let only_imap = &PROVIDER[..PROVIDER.rfind("[[provider").unwrap()];
    let errs = errors(only_imap);
    assert_eq!(
        errs,
        vec!["2:1: provider.examplemail.server: offers no way to send mail: add an `smtp` server".to_string()]
    );
    let only_smtp = PROVIDER
        .replacen("protocol = \"imap\"", "protocol = \"smtp\"", 1)
        .replacen("port = 993", "port = 587", 1);
    assert_eq!(
        errors(&only_smtp),
        vec![
            "2:1: provider.examplemail.server: offers no way to receive mail: add an `imap` or `pop3` server"
                .to_string()
        ]
    );
}

#[test]
fn cleartext_passwords_need_explicit_consent() {
    let text = PROVIDER.replacen("port = 993\nsecurity = \"tls\"", "port = 143\nsecurity = \"none\"", 1);
    let line = line_of(&text, "\"none\"");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{line}:12: provider.examplemail.server[0].security: `none` with password-cleartext auth sends passwords unencrypted; use `tls` or `starttls`, or set `allow_cleartext = true` to publish it anyway"
        )]
    );
    ok(&text.replacen("security = \"none\"", "security = \"none\"\nallow_cleartext = true", 1));
    // Without a password there is nothing to protect.
    ok(&text.replacen(
        "security = \"none\"",
        "security = \"none\"\nauth = [\"client-ip-address\"]",
        1,
    ));
}

#[test]
fn unknown_placeholders() {
    let text = PROVIDER.replace(
        "display_name = \"Example Mail\"",
        "display_name = \"Example Mail\"\nusername = \"%EMAILUSER%\"",
    );
    assert_eq!(
        errors(&text),
        vec![
            "4:12: provider.examplemail.username: unknown placeholder `%EMAILUSER%` (known: %EMAILADDRESS%, %EMAILLOCALPART%, %EMAILDOMAIN%)"
                .to_string()
        ]
    );
    let text = PROVIDER.replace("security = \"tls\"\n[[", "security = \"tls\"\nusername = \"50%\"\n[[");
    assert_eq!(
        errors(&text),
        vec!["9:12: provider.examplemail.server[0].username: unmatched `%` in `50%`".to_string()]
    );
    ok(&PROVIDER.replace(
        "display_name = \"Example Mail\"",
        "display_name = \"X\"\nusername = \"%EMAILLOCALPART%+%EMAILDOMAIN%\"",
    ));
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let text = format!(
        "{}{}",
        PROVIDER.replace("port = 465", "port = 0"),
        DOMAIN
            .replace("examplemail", "nope")
            .replace("ns1.example.net.", "ns1..example.net.")
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].contains("server[1].port: port 0 is not a port"));
    assert!(errs[1].contains("domain[0].provider: unknown provider \"nope\""));
    assert!(errs[2].contains("domain[0].dns.nameservers[0]: `ns1..example.net.` is not a valid host name"));
}

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
fn syntax_errors_are_located() {
    let errs = errors("[provider.x\ndisplay_name = 1");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("1:"), "{errs:?}");
}

#[test]
fn unicode_domains_become_ascii() {
    let s = ok(&format!(
        "{PROVIDER}{}",
        DOMAIN.replace("example.com", "bücher.example")
    ));
    assert_eq!(s.domains[0].name, "xn--bcher-kva.example");
    assert!(
        s.domain("BÜCHER.example").is_none(),
        "lookups take ASCII names; the HTTP layer converts"
    );
    assert!(s.domain("xn--bcher-kva.example").is_some());
}

#[test]
fn documentation_url() {
    let with = |url: &str| {
        format!(
            "{}{DOMAIN}",
            PROVIDER.replace(
                "display_name = \"Example Mail\"",
                &format!("display_name = \"Example Mail\"\ndocumentation = \"{url}\"")
            )
        )
    };
    let s = ok(&with("https://help.example.net/mail?lang=en"));
    assert_eq!(
        s.domain("example.com").unwrap().provider.documentation.as_deref(),
        Some("https://help.example.net/mail?lang=en")
    );
    assert!(
        ok(&with("http://help.example.net")).providers[0]
            .documentation
            .is_some()
    );
    assert!(ok(&format!("{PROVIDER}{DOMAIN}")).providers[0].documentation.is_none());
    for (bad, why) in [
        ("ftp://help.example.net/", "must be an http or https URL"),
        ("help.example.net", "must be an http or https URL"),
        ("https://user@help.example.net/", "no user info"),
        ("https://help.example.net/a b", "characters a URL cannot have"),
        ("https://help.example.net/#x", "fragment"),
        ("https://help..example.net/", "bad host"),
        ("https://help.example.net:0/", "bad port"),
        ("javascript:alert(1)", "must be an http or https URL"),
    ] {
        let errs = errors(&with(bad));
        assert_eq!(errs.len(), 1, "{bad}: {errs:?}");
        assert!(errs[0].contains("provider.examplemail.documentation: `"), "{errs:?}");
        assert!(errs[0].contains(why), "{bad}: {errs:?}");
    }
}

/// The example provider with `extra` appended to its table (before its servers).
fn provider_with(extra: &str) -> String {
    format!(
        "{}{DOMAIN}",
        PROVIDER.replace(
            "display_name = \"Example Mail\"\n",
            &format!("display_name = \"Example Mail\"\n{extra}\n")
        )
    )
}

#[test]
fn dav_oauth2_and_pacc() {
    let s = ok(&provider_with(
        "pacc = true\ncaldav = { url = \"https://DAV.example.net/cal/\" }\n\
         carddav = { url = \"https://dav.example.net:8443/card\", username = \"%EMAILLOCALPART%\" }",
    ));
    let p = &s.providers[0];
    assert!(p.pacc);
    let cal = p.dav(Dav::CalDav).unwrap();
    assert_eq!(
        (
            cal.url.as_str(),
            cal.host.as_str(),
            cal.port,
            cal.path.as_str(),
            cal.username.as_str()
        ),
        (
            "https://dav.example.net/cal/",
            "dav.example.net",
            443,
            "/cal/",
            "%EMAILADDRESS%"
        )
    );
    let card = p.dav(Dav::CardDav).unwrap();
    assert_eq!(
        (card.url.as_str(), card.port, card.path.as_str(), card.username.as_str()),
        ("https://dav.example.net:8443/card", 8443, "/card", "%EMAILLOCALPART%")
    );
    for (extra, want) in [
        (
            "caldav = { url = \"http://dav.example.net/cal/\" }",
            "provider.examplemail.caldav.url: `http://dav.example.net/cal/` must be an https URL",
        ),
        (
            "carddav = { url = \"https://dav.example.net/\" }",
            "provider.examplemail.carddav.url: needs an ASCII context path",
        ),
        (
            "carddav = { url = \"https://dav.example.net/card\", username = \"%USER%\" }",
            "provider.examplemail.carddav.username: unknown placeholder `%USER%`",
        ),
        (
            "oauth2 = { issuer = \"https://login.example.net\" }",
            "provider.examplemail.oauth2: no server lists auth = [\"oauth2\"]",
        ),
        (
            "caldav = { url = \"https://dav.example.net/c\", bogus = 1 }",
            "unknown field `bogus`",
        ),
    ] {
        let errs = errors(&provider_with(extra));
        assert_eq!(errs.len(), 1, "{extra}: {errs:?}");
        assert!(errs[0].contains(want), "{extra}: {errs:?}");
    }
    // PACC fixes the ports: a STARTTLS-only provider cannot publish it.
    let starttls = provider_with("pacc = true")
        .replace("port = 465", "port = 587")
        .replace("port = 587\nsecurity = \"tls\"", "port = 587\nsecurity = \"starttls\"");
    let errs = errors(&starttls);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("provider.examplemail.pacc: PACC can only describe"),
        "{errs:?}"
    );
    // OAuth 2: https issuer, with a server that uses it.
    let oauth = PROVIDER.replace(
        "port = 993\nsecurity = \"tls\"",
        "port = 993\nsecurity = \"tls\"\nauth = [\"oauth2\", \"password-cleartext\"]",
    );
    let with_issuer = |issuer: &str| {
        format!(
            "{}{DOMAIN}",
            oauth.replace(
                "display_name = \"Example Mail\"\n",
                &format!("display_name = \"Example Mail\"\noauth2 = {{ issuer = \"{issuer}\", scope = \"imap\" }}\n")
            )
        )
    };
    let s = ok(&with_issuer("https://login.example.net"));
    let o = s.providers[0].oauth2.as_ref().unwrap();
    assert_eq!(
        (o.issuer.as_str(), o.scope.as_deref()),
        ("https://login.example.net", Some("imap"))
    );
    let errs = errors(&with_issuer("http://login.example.net"));
    assert!(
        errs.len() == 1 && errs[0].contains("oauth2.issuer: `http://login.example.net` must be an https URL"),
        "{errs:?}"
    );
}

#[test]
fn pacc_host_is_a_web_host() {
    let text = provider_with("pacc = true").replace(
        "autoconfig_addresses = [\"192.0.2.10\"]",
        "autoconfig_cname = \"web.example.net.\"\n[domain.dns.hosts]\n\"ua-auto-config\" = [\"192.0.2.1\"]",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("`ua-auto-config.example.com` is a CNAME (autoconfig_cname) and cannot have addresses"),
        "{errs:?}"
    );
    // Without PACC the name is free.
    assert!(errors(&text.replace("pacc = true", "")).is_empty());
    // ACME certifies it with the other web hosts.
    let s = ok(&provider_with("pacc = true"));
    assert_eq!(
        crate::acme::names_for(&s),
        vec![vec![
            "autoconfig.example.com".to_string(),
            "autodiscover.example.com".into(),
            "ua-auto-config.example.com".into()
        ]]
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

#[cfg(feature = "sources")] // settings refuse [[source]] without it
const SOURCE: &str = r#"
[[source]]
name = "pfa"
kind = "sqlite"
url = "sqlite:///var/lib/postfix.db"
query = "SELECT domain, alias_of FROM d"
provider = "examplemail"
[source.domain.dns]
nameservers = ["ns1.example.net."]
autoconfig_addresses = ["192.0.2.10"]
mx = [{ host = "mx.example.net.", preference = 10 }]
[source.domain.mta_sts]
mode = "testing"
"#;

#[cfg(feature = "sources")]
fn row(domain: Option<&str>, provider: Option<&str>, alias_of: Option<&str>) -> Row {
    Row {
        domain: domain.map(Into::into),
        provider: provider.map(Into::into),
        alias_of: alias_of.map(Into::into),
        problem: None,
    }
}

#[cfg(feature = "sources")]
#[test]
fn source_settings_are_checked() {
    let text = format!(
        "{PROVIDER}\n[[source]]\nkind = \"oracle\"\nurl = \"x\"\nquery = \"\"\n\
         [[source]]\nkind = \"sqlite\"\nurl = \"postgres://h/db\"\nurl_file = \"/f\"\nquery = \"q\"\nlisten = \"ch\"\nprovider = \"nope\"\nrefresh = 0\n\
         [[source]]\nname = \"a b\"\nkind = \"mysql\"\nquery = \"q\"\n"
    );
    let e = errors(&text);
    let want = [
        "source[0].kind: `oracle` is not one of postgres, mysql, sqlite",
        "source[0].query: must not be empty",
        "source[1].url: give either url or url_file, not both",
        "source[1].provider: unknown provider \"nope\"",
        "source[1].refresh: must be 1 to 86400 seconds",
        "source[1].listen: LISTEN is PostgreSQL only",
        "source[2].name: must be 1 to 64 letters, digits, `-` or `_` (it names the file kept in state_dir)",
        "source[2]: needs a connection: url, or url_file",
    ];
    for w in want {
        assert!(e.iter().any(|l| l.contains(w)), "missing `{w}` in {e:#?}");
    }
    assert!(!format!("{e:?}").contains("postgres://h/db"), "a URL is never echoed");
    let s = ok(&format!("{PROVIDER}{SOURCE}"));
    assert_eq!(s.sources[0].refresh, std::time::Duration::from_secs(60));
    assert!(!format!("{:?}", s.sources[0]).contains("postfix.db"));
}

#[cfg(feature = "sources")]
#[test]
fn source_rows_join_the_file_domains() {
    let base = ok(&format!("{PROVIDER}{DOMAIN}{SOURCE}"));
    let long = "a".repeat(300);
    let mut too_long = Row::default();
    too_long.domain = too_long.value("domain", Ok::<_, String>(Some(long)));
    let rows = vec![
        row(Some("one.example"), None, None),
        row(Some("Two.Example."), None, None),
        row(Some("alias.example"), None, Some("one.example")),
        row(Some("example.com"), None, None),
        row(None, None, None),
        row(Some("bad_name"), None, None),
        row(Some("three.example"), Some("nope"), None),
        row(Some("orphan.example"), None, Some("missing.example")),
        row(Some("one.example"), None, None),
        too_long,
    ];
    let (s, report) = base.with_sources(&[Some(std::sync::Arc::new(rows.clone()))], None);
    let bad: Vec<String> = report.bad.iter().map(ToString::to_string).collect();
    assert_eq!(
        bad,
        [
            "source `pfa` row 5 (domain `NULL`): domain is NULL",
            "source `pfa` row 6 (domain `bad_name`): `bad_name` is not a valid host name (labels of letters, digits and `-`, at most 63 octets each, 253 in all, at least two labels)",
            "source `pfa` row 7 (domain `three.example`): unknown provider \"nope\"",
            &format!(
                "source `pfa` row 10 (domain `{}…`): `domain` is longer than 253 bytes",
                "a".repeat(64)
            ),
            "source `pfa` row 8 (domain `orphan.example`): alias of `missing.example`, which this source does not return",
        ]
    );
    assert_eq!(
        report.duplicates.iter().map(|d| d.1.as_str()).collect::<Vec<_>>(),
        [
            "domain `example.com` is defined in the settings file (domain[0]) and by source `pfa` row 4: the file's definition wins",
            "domain `one.example` is defined by source `pfa` row 1 and by source `pfa` row 9: the first wins",
        ]
    );
    assert_eq!(report.counts, [(10, 3)]);
    assert_eq!(s.domains.len(), 3);
    let one = s.domain("alias.example").unwrap();
    assert_eq!(one.name, "one.example");
    let two = s.domain("two.example").unwrap();
    // One copy of [source.domain] for every domain of the source.
    assert!(std::sync::Arc::ptr_eq(
        one.dns.as_ref().unwrap(),
        two.dns.as_ref().unwrap()
    ));
    assert!(std::sync::Arc::ptr_eq(
        one.mta_sts.as_ref().unwrap(),
        two.mta_sts.as_ref().unwrap()
    ));
    assert_eq!(*two.mta_sts.as_ref().unwrap().mx, ["mx.example.net"]);
    assert!(s.domain("example.com").unwrap().dns.as_ref().unwrap().mx.is_empty());

    // A new result: what did not change is shared with the previous settings.
    let mut changed = rows;
    changed[1] = row(Some("two.example"), Some("examplemail"), None);
    changed.push(row(Some("four.example"), None, None));
    changed.remove(0);
    changed.remove(1);
    let (after, _) = base.with_sources(&[Some(std::sync::Arc::new(changed))], Some(&s));
    assert!(after.domain("one.example").is_some(), "row 9 is one.example too");
    let shared = |n: &str| {
        let a: *const Domain = s.domain(n).unwrap();
        let b: *const Domain = after.domain(n).unwrap();
        a == b
    };
    assert!(shared("two.example") && shared("example.com"));
    assert!(!shared("one.example"), "lost its alias");
    assert!(after.domain("alias.example").is_none());
}

#[test]
fn acme_budget_retry_and_cache_size() {
    let with = |extra: &str| {
        format!(
            "[server.tls.acme]\ndirectory = \"https://ca.example/dir\"\ncache_dir = \"/var/lib/x\"\n{extra}\n{PROVIDER}{DOMAIN}"
        )
    };
    let s = ok(&with(""));
    let a = s.server.acme.as_ref().unwrap();
    assert_eq!(
        (a.orders_per_3h, a.retry_after.as_secs(), a.cert_cache),
        (300, 300, 4096)
    );
    let s = ok(&with("orders_per_3h = 12\nretry_after = 1\ncert_cache = 10"));
    let a = s.server.acme.as_ref().unwrap();
    assert_eq!((a.orders_per_3h, a.retry_after.as_secs(), a.cert_cache), (12, 1, 10));
    assert_eq!(
        errors(&with("orders_per_3h = 0\nretry_after = 86401\ncert_cache = 0")),
        vec![
            "4:17: server.tls.acme.orders_per_3h: must be 1 to 1000000",
            "5:15: server.tls.acme.retry_after: must be 1 to 86400",
            "6:14: server.tls.acme.cert_cache: must be 1 to 10000000",
        ]
    );
}

#[test]
fn acme_certificates_per_registered_domain() {
    let with = |extra: &str| {
        format!(
            "[server.tls.acme]\ndirectory = \"https://ca.example/dir\"\ncache_dir = \"/var/lib/x\"\n{extra}\n{PROVIDER}{DOMAIN}"
        )
    };
    let limit = |text: &str| ok(text).server.acme.as_ref().unwrap().certs_per_registered_domain_7d;
    assert_eq!(limit(&with("")), 50, "Let's Encrypt's limit");
    assert_eq!(limit(&with("certs_per_registered_domain_7d = 3")), 3);
    assert_eq!(
        errors(&with("certs_per_registered_domain_7d = 0")),
        vec!["4:34: server.tls.acme.certs_per_registered_domain_7d: must be 1 to 1000000"]
    );
}

#[test]
fn acme_challenge_type() {
    let with = |extra: &str| {
        format!(
            "[server.tls.acme]\ndirectory = \"https://ca.example/dir\"\ncache_dir = \"/var/lib/x\"\n{extra}\n{PROVIDER}{DOMAIN}"
        )
    };
    let per = |text: &str| ok(text).server.acme.as_ref().unwrap().names_per_certificate;
    assert_eq!(per(&with("")), 1, "one domain per certificate unless asked");
    assert_eq!(per(&with("names_per_certificate = 100")), 100);
    assert_eq!(
        errors(&with("names_per_certificate = 101")),
        vec!["4:25: server.tls.acme.names_per_certificate: must be 1 to 100"]
    );
    let challenge = |text: &str| ok(text).server.acme.as_ref().unwrap().challenge;
    assert_eq!(challenge(&with("")), crate::settings::AcmeChallenge::TlsAlpn01);
    assert_eq!(
        challenge(&with("challenge = \"dns-01\"")),
        crate::settings::AcmeChallenge::Dns01
    );
    assert_eq!(
        errors(&with("challenge = \"http-01\"")),
        vec!["4:13: server.tls.acme.challenge: unknown challenge `http-01`: `tls-alpn-01` (the default) or `dns-01`"]
    );
}

/// `caldav`, `carddav`, `oauth2` and `documentation` on a `[[domain]]` (and `[source.domain]`):
/// the provider's rules, located at the domain; each replaces only the provider's of its name.
#[test]
fn a_domain_declares_its_own_services() {
    let provider = provider_with(
        "pacc = true\nusername = \"%EMAILLOCALPART%\"\ncaldav = { url = \"https://dav.example.net/cal/\" }\n\
         carddav = { url = \"https://dav.example.net/card/\" }",
    );
    let own =
        "caldav = { url = \"https://cal.example.com:8443/dav/\" }\ndocumentation = \"https://help.example.com/\"\n";
    let text = format!("{provider}[[domain]]\nname = \"sibling.example\"\nprovider = \"examplemail\"\n").replace(
        "name = \"example.com\"\nprovider = \"examplemail\"\n",
        &format!("name = \"example.com\"\nprovider = \"examplemail\"\n{own}"),
    );
    let s = ok(&text);
    let d = s.domain("example.com").unwrap();
    let sv = d.services();
    let cal = sv.dav(Dav::CalDav).unwrap();
    assert_eq!(
        (
            cal.url.as_str(),
            cal.host.as_str(),
            cal.port,
            cal.path.as_str(),
            cal.username.as_str()
        ),
        (
            "https://cal.example.com:8443/dav/",
            "cal.example.com",
            8443,
            "/dav/",
            "%EMAILLOCALPART%"
        ),
        "the provider's default username template applies"
    );
    assert_eq!(
        sv.dav(Dav::CardDav).unwrap().url,
        "https://dav.example.net/card/",
        "not declared: the provider's"
    );
    assert_eq!(sv.documentation, Some("https://help.example.com/"));
    assert_eq!(sv.oauth2, None);
    let sibling = s.domain("sibling.example").unwrap();
    assert!(sibling.own.is_none());
    assert_eq!(sibling.services(), sibling.provider.services());
    assert_eq!(
        sibling.services().dav(Dav::CalDav).unwrap().url,
        "https://dav.example.net/cal/"
    );

    // The same rules, located at the domain.
    let at = |extra: &str| text.replace(own, extra);
    for (extra, want) in [
        (
            "caldav = { url = \"http://cal.example.com/dav/\" }\n",
            "domain[0].caldav.url: `http://cal.example.com/dav/` must be an https URL",
        ),
        (
            "carddav = { url = \"https://cal.example.com\" }\n",
            "domain[0].carddav.url: needs an ASCII context path",
        ),
        (
            "carddav = { url = \"https://cal.example.com/c\", username = \"%USER%\" }\n",
            "domain[0].carddav.username: unknown placeholder `%USER%`",
        ),
        (
            "oauth2 = { issuer = \"https://login.example.com\" }\n",
            "domain[0].oauth2: no server lists auth = [\"oauth2\"]",
        ),
        (
            "documentation = \"ftp://help.example.com/\"\n",
            "domain[0].documentation: `ftp://help.example.com/` must be an http or https URL",
        ),
    ] {
        let t = at(extra);
        let errs = errors(&t);
        assert_eq!(errs.len(), 1, "{extra}: {errs:?}");
        let line = line_of(&t, extra.lines().next().unwrap());
        assert!(errs[0].starts_with(&format!("{line}:")), "{extra}: {errs:?}");
        assert!(errs[0].contains(want), "{extra}: {errs:?}");
    }
    // An issuer with a provider whose servers use OAuth 2.
    let oauth = at("oauth2 = { issuer = \"https://login.example.com\" }\n").replace(
        "port = 993\nsecurity = \"tls\"",
        "port = 993\nsecurity = \"tls\"\nauth = [\"oauth2\"]",
    );
    let s = ok(&oauth);
    assert_eq!(
        s.domain("example.com")
            .unwrap()
            .services()
            .oauth2
            .map(|o| o.issuer.as_str()),
        Some("https://login.example.com")
    );
    assert_eq!(s.domain("sibling.example").unwrap().services().oauth2, None);
}

/// `[source.domain]` services: shared by every row; an issuer needs the source's provider.
#[cfg(feature = "sources")]
#[test]
fn a_source_declares_services_for_its_domains() {
    let provider = provider_with(
        "pacc = true\nusername = \"%EMAILLOCALPART%\"\ncaldav = { url = \"https://dav.example.net/cal/\" }\n\
         carddav = { url = \"https://dav.example.net/card/\" }",
    );
    let src = format!("{provider}{SOURCE}[source.domain.caldav]\nurl = \"https://cal.example.org/dav/\"\n");
    let s = ok(&src);
    let (merged, _) = s.with_sources(
        &[Some(std::sync::Arc::new(vec![
            row(Some("one.example"), None, None),
            row(Some("two.example"), None, None),
        ]))],
        None,
    );
    let (one, two) = (
        merged.domain("one.example").unwrap(),
        merged.domain("two.example").unwrap(),
    );
    assert_eq!(
        one.services().dav(Dav::CalDav).unwrap().url,
        "https://cal.example.org/dav/"
    );
    assert!(std::sync::Arc::ptr_eq(
        one.own.as_ref().unwrap(),
        two.own.as_ref().unwrap()
    ));
    let errs = errors(&src.replace("provider = \"examplemail\"\n[source", "[source").replace(
        "[source.domain.caldav]\nurl = \"https://cal.example.org/dav/\"\n",
        "[source.domain.oauth2]\nissuer = \"https://login.example.org\"\n",
    ));
    assert!(
        errs.iter()
            .any(|e| e.contains("source[0].domain.oauth2: needs the source's `provider`")),
        "{errs:?}"
    );
}

/// A build without the `sources` feature refuses `[[source]]` rather than ignore it.
#[cfg(not(feature = "sources"))]
#[test]
fn sources_need_the_feature() {
    let text = format!(
        "{PROVIDER}\n[[source]]\nkind = \"sqlite\"\nurl = \"sqlite:///x.db\"\nquery = \"SELECT domain FROM d\"\nprovider = \"examplemail\"\n"
    );
    let e = errors(&text);
    assert!(
        e.iter()
            .any(|l| l
                .ends_with("source[0]: this mailconf was built without database sources (cargo feature `sources`)")),
        "{e:?}"
    );
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
