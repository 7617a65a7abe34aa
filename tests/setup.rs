//! The setup page for people, end to end: the real binary on loopback, read by headless
//! Chromium (screenshots at phone and desktop width, the DOM it builds), zbarimg (the QR code)
//! and tidy (HTML errors). Screenshots are kept in `target/tmp/setup-screens/`.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Server, http_request, temp_dir, tool};
use mailconf::settings::Settings;

/// Three customers: one on a modern provider with its own help page, one on a legacy server
/// that still offers cleartext (so "none" must show), one with calendars and contacts.
const CONFIG: &str = r#"
[provider.examplemail]
display_name  = "Example Mail"
documentation = "https://help.example.net/mail"
[[provider.examplemail.server]]
protocol = "imap"
host     = "imap.example.net"
port     = 993
security = "tls"
[[provider.examplemail.server]]
protocol = "pop3"
host     = "pop.example.net"
port     = 995
security = "tls"
[[provider.examplemail.server]]
protocol = "smtp"
host     = "smtp.example.net"
port     = 465
security = "tls"
[[provider.examplemail.server]]
protocol = "smtp"
host     = "smtp.example.net"
port     = 587
security = "starttls"

[provider.legacy]
display_name = "Legacy Host"
username     = "%EMAILLOCALPART%"
[[provider.legacy.server]]
protocol = "imap"
host     = "old.legacy.example"
port     = 143
security = "none"
allow_cleartext = true
[[provider.legacy.server]]
protocol = "smtp"
host     = "old.legacy.example"
port     = 25
security = "starttls"
auth     = ["password-encrypted"]

[[domain]]
name     = "example.com"
provider = "examplemail"
aliases  = ["example.org"]
[domain.dns]
nameservers = ["ns1.example.net."]
autoconfig_addresses = ["192.0.2.10"]
mx = [{ host = "mx1.example.net.", preference = 10 }]

[provider.davmail]
display_name = "Dav Mail"
caldav       = { url = "https://dav.example.net/caldav/" }
carddav      = { url = "https://dav.example.net:8443/carddav/", username = "%EMAILLOCALPART%" }
[[provider.davmail.server]]
protocol = "imap"
host     = "mail.dav.example"
port     = 993
security = "tls"
[[provider.davmail.server]]
protocol = "smtp"
host     = "mail.dav.example"
port     = 465
security = "tls"

[[domain]]
name     = "legacy.example"
provider = "legacy"

[[domain]]
name     = "dav.example"
provider = "davmail"
"#;

fn serve(name: &str) -> (Server, SocketAddr, PathBuf) {
    let dir = temp_dir(name);
    let config = dir.join("mailconf.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let s = Server::start(&config, &["--http-listen", "127.0.0.1:0"], 1);
    let addr = s.addrs("HTTP")[0];
    (s, addr, dir)
}

/// A GET with the extra request headers a browser sends (hyper's client in `common` sends none).
struct Page {
    status: u16,
    head: String,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

fn get(addr: SocketAddr, host: &str, path: &str, headers: &[(&str, &str)]) -> Page {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    s.write_all(format!("{req}\r\n").as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response head");
    Page {
        status: head[9..12].parse().unwrap(),
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// Headless Chromium with every name resolving to mailconf; `args` add the action.
fn chromium(dir: &Path, addr: SocketAddr, args: &[&str], url: &str) -> std::process::Output {
    let profile = dir.join(format!("chromium-{}", args.join("-").replace(['/', '=', ','], "_")));
    let out = Command::new(tool("chromium", "chromium"))
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
            &format!("--host-resolver-rules=MAP * {addr}, EXCLUDE localhost"),
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn screens() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("setup-screens");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The words a reader must find for every server of `domain`, in preference order.
fn expected_words(domain: &str, lang: &str) -> Vec<String> {
    let settings = Settings::from_toml(CONFIG, "setup.toml").unwrap();
    let d = settings.domain(domain).unwrap();
    let none = if lang == "de" { "keine" } else { "none" };
    let mut words = Vec::new();
    // Incoming first, then outgoing, each in the configured order.
    for incoming in [true, false] {
        for s in d.provider.servers.iter().filter(|s| s.is_incoming() == incoming) {
            words.push(s.protocol.people().to_string());
            words.push(s.host.clone());
            words.push(s.port.to_string());
            words.push(s.security.people().unwrap_or(none).to_string());
        }
    }
    // Then calendars and contacts: the protocol's name, URL, host and port.
    for dav in d.services().dav_all() {
        words.push(dav.kind.words().people.to_string());
        words.push(dav.url.clone());
        words.push(dav.host.clone());
        words.push(dav.port.to_string());
    }
    words
}

/// `words` occur in `text` in this order.
fn assert_in_order(text: &str, words: &[String], what: &str) {
    let mut at = 0;
    for w in words {
        match text[at..].find(w.as_str()) {
            Some(i) => at += i + w.len(),
            None => panic!("{what}: `{w}` missing (or out of order) after byte {at}:\n{text}"),
        }
    }
}

#[test]
fn browsers_show_every_server_in_english_and_german() {
    let (_s, addr, dir) = serve("setup-browser");
    let out = screens();
    for (lang, accept) in [("en", "en-US,en"), ("de", "de-DE,de;q=0.9,en;q=0.5")] {
        let accept_arg = format!("--accept-lang={accept}");
        for (domain, host) in [
            ("example.com", "autoconfig.example.com"),
            ("legacy.example", "autodiscover.legacy.example"),
            ("dav.example", "autoconfig.dav.example"),
        ] {
            let dom = chromium(&dir, addr, &[&accept_arg, "--dump-dom"], &format!("http://{host}/"));
            let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
            assert!(dom.contains(&format!("<html lang=\"{lang}\">")), "{lang}: {dom}");
            assert_in_order(&dom, &expected_words(domain, lang), &format!("{lang} {domain}"));
            assert!(!dom.contains("<script"), "no JavaScript");
            let words: &[&str] = if lang == "de" {
                &[
                    "E-Mail-Einstellungen für",
                    "Posteingang",
                    "Verschlüsselung",
                    "Benutzername",
                ]
            } else {
                &["E-mail settings for", "Incoming mail", "Encryption", "User name"]
            };
            for w in words {
                assert!(dom.contains(w), "{lang}: {w}: {dom}");
            }
            let dav = if lang == "de" {
                "Kalender und Kontakte"
            } else {
                "Calendars and contacts"
            };
            assert_eq!(dom.contains(dav), domain == "dav.example", "{lang} {domain}: {dom}");
        }
        for width in [360, 1280] {
            let png = out.join(format!("setup-{lang}-{width}.png"));
            let _ = std::fs::remove_file(&png);
            chromium(
                &dir,
                addr,
                &[
                    &accept_arg,
                    &format!("--window-size={width},{}", if width < 400 { 2200 } else { 1500 }),
                    &format!("--screenshot={}", png.display()),
                ],
                "http://autoconfig.example.com/setup",
            );
            let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
            assert!(
                bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
                "{}",
                png.display()
            );
        }
    }
}

/// zbarimg reads the QR code off the rendered page, and what it reads is the profile's URL,
/// which mailconf then serves.
#[test]
fn qr_code_opens_the_profile() {
    let (_s, addr, dir) = serve("setup-qr");
    for (query, want) in [
        ("", "https://autoconfig.example.com/apple/profile.mobileconfig"),
        (
            "?email=fred.bloggs%40example.com",
            "https://autoconfig.example.com/apple/profile.mobileconfig?emailaddress=fred.bloggs%40example.com",
        ),
    ] {
        let png = dir.join(format!("qr{}.png", query.len()));
        chromium(
            &dir,
            addr,
            &["--window-size=1280,2400", &format!("--screenshot={}", png.display())],
            &format!("http://autoconfig.example.com/setup{query}"),
        );
        let z = Command::new(tool("zbarimg", "zbar-tools"))
            .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
            .arg(&png)
            .output()
            .unwrap();
        let decoded = String::from_utf8_lossy(&z.stdout).trim().to_string();
        assert_eq!(decoded, want, "zbarimg: {}", String::from_utf8_lossy(&z.stderr));
        let path = want.strip_prefix("https://autoconfig.example.com").unwrap();
        let r = http_request(addr, None, "GET", path, "autoconfig.example.com", None, b"").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/x-apple-aspen-config"));
    }
}

/// tidy finds neither errors nor warnings in any page mailconf serves for people.
#[test]
fn html_has_no_errors() {
    let (_s, addr, dir) = serve("setup-tidy");
    let tidy = tool("tidy", "tidy");
    for (i, (host, path, lang, status)) in [
        ("autoconfig.example.com", "/", "en", 200),
        ("autoconfig.example.com", "/setup?lang=de", "de", 200),
        (
            "autodiscover.legacy.example",
            "/setup?email=ann%40legacy.example",
            "en",
            200,
        ),
        ("autoconfig.dav.example", "/setup?email=ann%40dav.example", "de", 200),
        ("autoconfig.nobody.example", "/", "de", 404),
        ("autoconfig.example.com", "/setup?email=nobody", "en", 400),
    ]
    .into_iter()
    .enumerate()
    {
        let p = get(addr, host, path, &[("Accept-Language", lang)]);
        assert_eq!(p.status, status, "{host}{path}");
        assert_eq!(p.header("content-type"), Some("text/html; charset=utf-8"));
        let f = dir.join(format!("page{i}.html"));
        std::fs::write(&f, &p.body).unwrap();
        let out = Command::new(&tidy)
            .args(["-errors", "-quiet"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            out.status.code() == Some(0),
            "tidy on {host}{path} ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn language_negotiation() {
    let (_s, addr, _) = serve("setup-lang");
    for (query, accept, want) in [
        ("", None, "en"),
        ("", Some("de-AT, en;q=0.8"), "de"),
        ("", Some("en;q=0.4, de;q=0.5"), "de"),
        ("", Some("fr, en-GB;q=0.3, de;q=0.2"), "en"),
        ("", Some("de;q=0, *;q=0.1"), "en"),
        ("", Some("fr"), "en"),
        ("?lang=de", Some("en"), "de"),
        ("?lang=EN", Some("de"), "en"),
        ("?lang=xx", Some("de"), "de"),
    ] {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("Accept-Language", *a)).collect();
        let p = get(addr, "autoconfig.example.com", &format!("/setup{query}"), &headers);
        assert_eq!(p.status, 200);
        assert_eq!(p.header("content-language"), Some(want), "{query} {accept:?}");
        assert!(
            p.body.contains(&format!("<html lang=\"{want}\">")),
            "{query} {accept:?}"
        );
        assert_eq!(p.header("vary"), Some("accept-language"));
    }
    // The same page at `/` and `/setup`, on both web hosts and on the mail domain itself.
    let want = get(addr, "autoconfig.example.com", "/setup", &[]).body;
    for (host, path) in [
        ("autoconfig.example.com", "/"),
        ("autodiscover.example.com", "/setup"),
        ("example.com:8080", "/"),
        ("AUTOCONFIG.Example.COM.", "/SETUP"),
    ] {
        assert_eq!(get(addr, host, path, &[]).body, want, "{host}{path}");
    }
    // An alias has its own page.
    let alias = get(addr, "autoconfig.example.org", "/", &[]).body;
    assert!(alias.contains("E-mail settings for example.org"), "{alias}");
    // HEAD, and nothing else.
    let r = http_request(addr, None, "HEAD", "/", "autoconfig.example.com", None, b"").unwrap();
    assert_eq!((r.status, r.body.len()), (200, 0));
    let r = http_request(addr, None, "POST", "/setup", "autoconfig.example.com", None, b"x").unwrap();
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
}

/// The hostile `email` list of tests/http.rs, and hostile `lang` and headers: refused or
/// escaped, never echoed as markup.
#[test]
fn hostile_input_comes_back_harmless() {
    let (s, addr, _) = serve("setup-hostile");
    for a in [
        "%3Cscript%3E%40example.com",
        "%22q%22%40example.com",
        "a%0D%0AX-Injected:%201%40example.com",
        "a%00b%40example.com",
        "%40example.com",
        "fred",
        "fred%40exa%20mple.com",
        "%3Cimg%20src=x%20onerror=alert(1)%3E",
    ] {
        let p = get(addr, "autoconfig.example.com", &format!("/setup?email={a}"), &[]);
        assert_eq!(p.status, 400, "{a}: {}", p.body);
        assert!(p.header("x-injected").is_none());
        for bad in ["<script", "<img", "\"q\"", "exa mple", "alert"] {
            assert!(!p.body.contains(bad), "{a}: {}", p.body);
        }
        assert!(p.body.contains("<form"), "the form again");
    }
    // Legal but unusual local parts come back escaped.
    let p = get(
        addr,
        "autoconfig.example.com",
        "/setup?email=o'neil%2Btag%26%40example.com",
        &[],
    );
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("value=\"o'neil+tag&amp;@example.com\""), "{}", p.body);
    assert!(
        p.body.contains("<code>o'neil+tag&amp;@example.com</code>"),
        "{}",
        p.body
    );
    assert!(!p.body.contains("tag&@"));
    // `lang` and Accept-Language only ever choose among known languages; never echoed.
    for (query, accept) in [
        ("?lang=%3Cscript%3Ealert(1)%3C/script%3E", "de"),
        ("?lang=de%22%3E%3Cscript%3E", "en"),
        ("?lang=%E2%80%AE", "<script>alert(1)</script>;q=1"),
        ("", "\"><script>alert(1)</script>, de;q=0.5"),
    ] {
        let p = get(
            addr,
            "autoconfig.example.com",
            &format!("/setup{query}"),
            &[("Accept-Language", accept)],
        );
        assert_eq!(p.status, 200, "{query}");
        assert!(
            !p.body.contains("<script") && !p.body.contains("alert"),
            "{query}: {}",
            p.body
        );
    }
    // The log names the domain, never the address.
    let _ = get(
        addr,
        "autoconfig.example.com",
        "/setup?email=secret.person%40example.com",
        &[],
    );
    s.wait_log(|l| l.contains("endpoint=\"setup\""), 3, "request log");
    assert!(!s.log_text().contains("secret.person"));
}

/// An unknown domain gets a 404 page that names no configured domain, host or provider.
#[test]
fn unknown_domains_learn_nothing() {
    let (_s, addr, _) = serve("setup-unknown");
    for (host, path) in [
        ("autoconfig.unknown.example", "/"),
        ("unknown.example", "/setup?lang=de"),
        ("autoconfig.example.com", "/setup?email=a%40unknown.example"),
        ("mta-sts.example.com", "/"),
        ("127.0.0.1", "/"),
    ] {
        let p = get(addr, host, path, &[]);
        assert_eq!(p.status, 404, "{host}{path}");
        assert!(p.header("content-type").unwrap().starts_with("text/html"));
        for secret in [
            "example.com",
            "example.org",
            "legacy",
            "imap.",
            "smtp.",
            "Example Mail",
            "help.example.net",
        ] {
            assert!(!p.body.contains(secret), "{host}{path} names {secret}: {}", p.body);
        }
    }
}

/// A reload shows new settings at once: the cached page is dropped with the old settings.
#[test]
fn reload_replaces_cached_pages() {
    let (s, addr, dir) = serve("setup-reload");
    let before = get(addr, "autoconfig.example.com", "/", &[]);
    assert!(before.body.contains("Example Mail"));
    assert_eq!(
        get(addr, "autoconfig.example.com", "/", &[]).body,
        before.body,
        "cached"
    );
    std::fs::write(
        dir.join("mailconf.toml"),
        CONFIG.replace("\"Example Mail\"", "\"Renamed Mail\""),
    )
    .unwrap();
    s.signal("HUP");
    s.wait_log(|l| l.contains("reload done"), 1, "reload");
    let after = get(addr, "autoconfig.example.com", "/", &[]);
    assert!(
        after.body.contains("Renamed Mail") && !after.body.contains("Example Mail"),
        "{}",
        after.body
    );
}

/// The page kept for a name is made from no address, even when the first request for it has
/// one: the address-less page that follows names nobody.
#[test]
fn an_address_first_leaves_no_trace() {
    let (_s, addr, _) = serve("setup-address-first");
    let dir = crate::common::root().join("tests/golden/setup");
    for (domain, golden) in [
        ("legacy.example", "en-legacy.example"),
        ("dav.example", "en-dav.example"),
    ] {
        let first = get(addr, "x", &format!("/setup?email=secret.person%40{domain}"), &[]);
        assert_eq!(first.status, 200);
        assert!(first.body.contains("secret.person"));
        let plain = get(addr, &format!("autoconfig.{domain}"), "/setup", &[]);
        assert!(!plain.body.contains("secret"), "{}", plain.body);
        let want = std::fs::read_to_string(dir.join(format!("{golden}.html"))).unwrap();
        assert!(plain.body == want, "{domain}: differs from {golden}.html");
    }
}

/// Thunderbird's `<documentation url>` and Outlook's `<ServiceHome>`: the provider's own page when
/// it has one, else this one (PACC's `info.help.documentation`: `tests/dav.rs`).
#[test]
fn documents_point_to_the_page() {
    let (_s, addr, _) = serve("setup-thunderbird");
    for (domain, url) in [
        ("example.com", "https://help.example.net/mail"),
        ("legacy.example", "https://autoconfig.legacy.example/setup"),
    ] {
        let host = format!("autoconfig.{domain}");
        let p = get(addr, &host, "/mail/config-v1.1.xml", &[]);
        assert_eq!(p.status, 200);
        assert!(p.body.contains(&format!("<documentation url=\"{url}\">")), "{}", p.body);
        let pox = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">\
             <Request><EMailAddress>fred@{domain}</EMailAddress><AcceptableResponseSchema>\
             http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"
        );
        let host = format!("autodiscover.{domain}");
        let r = http_request(
            addr,
            None,
            "POST",
            "/autodiscover/autodiscover.xml",
            &host,
            Some("text/xml"),
            pox.as_bytes(),
        )
        .unwrap();
        let body = String::from_utf8_lossy(&r.body);
        assert_eq!(r.status, 200, "{body}");
        assert!(
            body.contains(&format!(
                "<Action>settings</Action>\n      <ServiceHome>{url}</ServiceHome>\n      <Protocol>"
            )),
            "{body}"
        );
    }
}

/// The page, byte for byte, for the address-less variants (rendered once per reload) and the
/// `?email=` variants (rendered per request from cached parts): golden files written by the
/// renderer that rendered every `?email=` page whole, so a faster path cannot change a byte.
/// `UPDATE_GOLDEN=1` rewrites them.
#[test]
fn pages_match_golden_files() {
    let (_s, addr, _) = serve("setup-golden");
    let dir = crate::common::root().join("tests/golden/setup");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("autoconfig.example.com", "/setup", "en-example.com"),
        ("autodiscover.example.org", "/?lang=de", "de-example.org"),
        ("legacy.example", "/setup", "en-legacy.example"),
        ("x", "/setup?email=fred%40example.com", "en-fred@example.com"),
        (
            "x",
            "/setup?email=Fred.O%27Neil%2Bx%40Example.ORG&lang=de",
            "de-quote-plus@example.org",
        ),
        (
            "x",
            "/setup?email=a%26b%3Dc%25d%40example.com",
            "en-amp-equals-percent@example.com",
        ),
        (
            "x",
            "/setup?email=ann%40legacy.example&lang=de",
            "de-ann@legacy.example",
        ),
        (
            "x",
            &format!("/setup?email={}%40example.com", "l".repeat(64)),
            "en-long@example.com",
        ),
        ("autoconfig.dav.example", "/setup", "en-dav.example"),
        ("x", "/setup?email=fred%40dav.example&lang=de", "de-fred@dav.example"),
    ];
    for (host, path, name) in cases {
        // Twice: the second answer may come from a cache.
        let first = get(addr, host, path, &[]);
        let second = get(addr, host, path, &[]);
        assert_eq!(first.status, 200, "{path}: {}", first.body);
        assert!(first.body == second.body, "{path}: the second answer differs");
        let file = dir.join(format!("{name}.html"));
        if update {
            std::fs::write(&file, &first.body).unwrap();
        }
        let want = std::fs::read_to_string(&file).unwrap_or_else(|_| panic!("{name} missing: UPDATE_GOLDEN=1"));
        assert!(
            first.body == want,
            "{path} differs from {} (review, then UPDATE_GOLDEN=1):\n{}",
            file.display(),
            first.body
        );
    }
}
