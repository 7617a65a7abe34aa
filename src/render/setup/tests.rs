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
