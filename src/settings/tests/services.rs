//! Rules of what a domain or provider offers besides mail servers: CalDAV/CardDAV, OAuth2, PACC,
//! and services declared per domain.

use super::*;

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
