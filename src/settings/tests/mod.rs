//! Validation rules, each with the exact message a postmaster sees: the general ones and
//! `[server.tls.acme]` here, one file per table group beside.

mod dns;
mod services;
mod sources;

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
    let example = include_str!("../../../deploy/mailconf.example.toml");
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
