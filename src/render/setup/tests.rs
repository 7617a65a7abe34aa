use super::*;
use crate::model::EmailAddress;
use crate::settings::Settings;

const SETTINGS: &str = r#"
[provider.p]
display_name = "Fred's <b>Mail</b> & Co"
username = "%EMAILLOCALPART%+x"
documentation = "https://help.example.net/mail?a=1&b=2"
[[provider.p.server]]
protocol = "imap"
host = "imap.example.net"
port = 993
security = "tls"
[[provider.p.server]]
protocol = "imap"
host = "imap2.example.net"
port = 143
security = "none"
allow_cleartext = true
auth = ["password-encrypted", "oauth2"]
[[provider.p.server]]
protocol = "smtp"
host = "smtp.example.net"
port = 587
security = "starttls"
[[domain]]
name = "example.com"
provider = "p"
[domain.dns]
nameservers = ["ns1.example.net."]
autoconfig_addresses = ["192.0.2.10"]
"#;

fn render(lang: Lang, address: Option<&str>) -> String {
    let s = Settings::from_toml(SETTINGS, "t.toml").unwrap();
    let a = address.map(|a| EmailAddress::parse(a).unwrap());
    let cfg = ClientConfig::for_domain(&s, "example.com", a.as_ref()).unwrap();
    let dr = crate::records::for_name(&s, cfg.domain, &cfg.requested);
    page(&cfg, lang, dr.as_ref().map(records_text).as_deref())
}

#[test]
fn english_page_names_every_server_in_order() {
    let p = render(Lang::En, None);
    assert!(p.starts_with("<!DOCTYPE html><html lang=\"en\">"), "{p}");
    let at = |needle: &str| p.find(needle).unwrap_or_else(|| panic!("{needle} missing:\n{p}"));
    assert!(at("imap.example.net") < at("imap2.example.net"));
    assert!(at("imap2.example.net") < at("smtp.example.net"));
    for needle in [
        "<title>E-mail settings for example.com</title>",
        "<caption>IMAP · recommended</caption>",
        "<caption>IMAP · alternative</caption>",
        "<caption>SMTP · recommended</caption>",
        "<td>SSL/TLS</td>",
        "<td>STARTTLS</td>",
        "<td>none</td>",
        "<td>Encrypted password / OAuth2</td>",
        "<code>993</code>",
        "<em>‹the part of your address before the @›</em><code>+x</code>",
        // Everything from the settings is escaped, attributes included.
        "Fred's &lt;b&gt;Mail&lt;/b&gt; &amp; Co",
        "href=\"https://help.example.net/mail?a=1&amp;b=2\"",
        "href=\"https://autoconfig.example.com/apple/profile.mobileconfig\"",
        "_imaps._tcp.example.com.",
        "href=\"/setup?lang=de\" hreflang=\"de\" lang=\"de\">Deutsch</a>",
    ] {
        at(needle);
    }
    assert!(!p.contains("<b>") && !p.contains("%EMAIL"), "{p}");
    assert!(!p.contains("<script"), "no JavaScript");
}

#[test]
fn german_page_with_an_address() {
    let p = render(Lang::De, Some("o'neil+&x@example.com"));
    for needle in [
        "<html lang=\"de\">",
        "E-Mail-Einstellungen für example.com",
        "<td>keine</td>",
        "<td>Verschlüsseltes Passwort / OAuth2</td>",
        "Posteingang",
        "<code>o'neil+&amp;x+x</code>",
        "value=\"o'neil+&amp;x@example.com\"",
        "profile.mobileconfig?emailaddress=o%27neil%2B%26x%40example.com",
        "href=\"/setup?email=o%27neil%2B%26x%40example.com&amp;lang=en\"",
    ] {
        assert!(p.contains(needle), "{needle} missing:\n{p}");
    }
    assert!(!p.contains("+&x"));
}

#[test]
fn error_pages_name_nothing() {
    for l in Lang::all() {
        let p = not_found(l);
        assert!(
            p.contains(&format!("lang=\"{}\"", l.tag())) && !p.contains("example"),
            "{p}"
        );
        let p = bad_address(l);
        assert!(p.contains("<form"), "{p}");
    }
}

/// The provider of [`SETTINGS`] with calendars and contacts, and a domain that declares its own
/// CardDAV.
fn dav_settings(display_name: &str) -> Settings {
    let toml = SETTINGS.replace("Fred's <b>Mail</b> & Co", display_name).replace(
        "[[provider.p.server]]\nprotocol = \"imap\"\nhost = \"imap.example.net\"",
        "caldav = { url = \"https://dav.example.net/cal/\", username = \"%EMAILADDRESS%\" }\n\
             carddav = { url = \"https://dav.example.net:8443/card/\", username = \"%EMAILLOCALPART%\" }\n\
             [[provider.p.server]]\nprotocol = \"imap\"\nhost = \"imap.example.net\"",
    ) + "[[domain]]\nname = \"own.example\"\nprovider = \"p\"\n\
           carddav = { url = \"https://contacts.own.example/dav/\" }\n";
    Settings::from_toml(&toml, "t.toml").unwrap()
}

#[test]
fn calendars_and_contacts_in_the_same_tables() {
    let s = dav_settings("Fred's Mail");
    let a = EmailAddress::parse("ann@example.com").unwrap();
    let cfg = ClientConfig::for_domain(&s, "example.com", Some(&a)).unwrap();
    let p = page(&cfg, Lang::En, None);
    let at = |needle: &str| p.find(needle).unwrap_or_else(|| panic!("{needle} missing:\n{p}"));
    assert!(at("<h2 id=\"outgoing\">") < at("<h2 id=\"dav\">Calendars and contacts</h2>"));
    assert!(at("<h2 id=\"dav\">") < at("<h2 id=\"apple\">"));
    assert!(at("<caption>CalDAV · calendars</caption>") < at("<caption>CardDAV · contacts</caption>"));
    for needle in [
        "<section aria-labelledby=\"dav\">",
        "<th scope=\"row\">Server address (URL)</th><td><code>https://dav.example.net/cal/</code></td>",
        "<th scope=\"row\">Server</th><td><code>dav.example.net</code></td>",
        "<th scope=\"row\">Port</th><td><code>8443</code></td>",
        "<th scope=\"row\">User name</th><td><code>ann@example.com</code></td>",
        "<th scope=\"row\">User name</th><td><code>ann</code></td>",
    ] {
        at(needle);
    }
    let de = page(
        &ClientConfig::for_domain(&s, "example.com", None).unwrap(),
        Lang::De,
        None,
    );
    for needle in [
        "<h2 id=\"dav\">Kalender und Kontakte</h2>",
        "<caption>CalDAV · Kalender</caption>",
        "<caption>CardDAV · Kontakte</caption>",
        "<th scope=\"row\">Serveradresse (URL)</th>",
        "<em>‹Ihre E-Mail-Adresse›</em>",
    ] {
        assert!(de.contains(needle), "{needle} missing:\n{de}");
    }
    // The domain's own CardDAV replaces the provider's; its CalDAV is the provider's.
    let own = page(
        &ClientConfig::for_domain(&s, "own.example", None).unwrap(),
        Lang::En,
        None,
    );
    assert!(own.contains("<code>https://contacts.own.example/dav/</code>"), "{own}");
    assert!(own.contains("<code>https://dav.example.net/cal/</code>"), "{own}");
    assert!(!own.contains("/card/"), "{own}");
    // Without DAV, no section.
    assert!(!render(Lang::En, None).contains("id=\"dav\""));
}

/// A template filled for an address is, byte for byte, the page rendered whole for it.
#[test]
fn templates_fill_to_the_whole_page() {
    let s = dav_settings("Fred's <b>Mail</b> & Co");
    for domain in ["example.com", "own.example"] {
        let plain = ClientConfig::for_domain(&s, domain, None).unwrap();
        let dr = crate::records::for_name(&s, plain.domain, &plain.requested);
        let records = dr.as_ref().map(records_text);
        for lang in Lang::all() {
            let t = template(&plain, lang, records.as_deref()).unwrap();
            assert_eq!(
                t.fill(&plain),
                page(&plain, lang, records.as_deref()),
                "{domain} {lang:?}"
            );
            for a in [
                "fred@example.com",
                "o'neil+&x@example.com",
                "a%b=c@example.com",
                &format!("{}@example.com", "l".repeat(64)),
            ] {
                let a = EmailAddress::parse(a).unwrap();
                let cfg = ClientConfig::for_domain(&s, domain, Some(&a)).unwrap();
                assert!(template(&cfg, lang, None).is_none(), "only from no address");
                let whole = page(&cfg, lang, records.as_deref());
                assert_eq!(t.fill(&cfg), whole, "{domain} {lang:?} {a}");
                assert!(whole.contains(&format!("value=\"{}\"", a.to_string().replace('&', "&amp;"))));
            }
        }
    }
    // A configured value holding the mark: no template, the whole page instead.
    let s = dav_settings("Fred\\u0000s Mail");
    let cfg = ClientConfig::for_domain(&s, "example.com", None).unwrap();
    assert!(template(&cfg, Lang::En, None).is_none());
}
