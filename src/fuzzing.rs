//! Entry points for the fuzz targets in `fuzz/` and for their corpus replay in the normal suite
//! (`tests/fuzz_corpus.rs`). Each takes raw outside input, runs it through the same functions the
//! servers call and asserts what a peer relies on; a broken invariant panics, exactly like a
//! crash, so libFuzzer reports it and the replay test fails. Not an API: only the fuzz targets
//! and the replay test use it.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use hickory_server::proto::op::{Message, ResponseCode};
use hickory_server::proto::rr::{Name, RecordType};
use quick_xml::events::Event;

use crate::dns::Core;
use crate::http::routes;
use crate::model::{ClientConfig, EmailAddress};
use crate::settings::{Diagnostics, Settings};

/// The settings every target serves (`tests/fixtures/fuzz.toml`).
pub const FIXTURE: &str = include_str!("../tests/fixtures/fuzz.toml");

/// A client the transfer ACL of the fixture refuses, and one it allows.
const OUTSIDER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99));
const SECONDARY: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Built once per fuzzing process: the fixture's settings and DNS zones.
pub struct Fixture {
    settings: Arc<Settings>,
    pages: crate::http::pages::PageCache,
    dns: Core,
    /// Every mail domain name with DNS: no answer may hold a name outside these.
    dns_names: Vec<Name>,
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        let settings = Arc::new(Settings::from_toml(FIXTURE, "fuzz.toml").expect("the fuzz fixture is valid"));
        let dns_names = settings
            .domains
            .iter()
            .filter(|d| d.dns.is_some())
            .flat_map(|d| {
                d.names()
                    .map(|n| Name::from_ascii(format!("{n}.")).expect("a configured name"))
            })
            .collect();
        Fixture {
            pages: crate::http::pages::PageCache::new(&settings),
            dns: Core::new(settings.clone()),
            settings,
            dns_names,
        }
    }

    /// One DNS message from the network, both paths (for the corpus replay).
    pub fn dns(&self, req: &[u8]) {
        self.dns_udp(req);
        self.dns_tcp(req);
    }

    /// A UDP query: the fast-path recogniser against hickory's parser, the UDP answer (fast path
    /// or general), the rate limiter's slip answer.
    pub fn dns_udp(&self, req: &[u8]) {
        let parsed = Message::from_vec(req).ok();
        let plain = Core::plain(req);
        if let (Some((lower, qtype, payload)), Some(m)) = (&plain, &parsed) {
            // Whatever the fast path takes, a full parser reads the same way (when it reads it).
            assert_eq!(m.queries.len(), 1, "fast path took a message without one question");
            let q = &m.queries[0];
            assert_eq!(&lower_wire(q.name()), lower, "fast path read another name");
            assert_eq!(u16::from(q.query_type()), *qtype, "fast path read another type");
            // RFC 6891 §6.2.5: a payload below 512 counts as 512. hickory reads it so; the fast
            // path keeps the number and `udp_limit` raises it (checked below).
            assert_eq!(
                m.edns.as_ref().map(|e| e.max_payload()),
                payload.map(|p| p.max(512)),
                "fast path read another EDNS size"
            );
        }
        // The client's UDP limit: its EDNS buffer (never below 512), else 512.
        let payload = plain
            .and_then(|(_, _, p)| p)
            .or_else(|| parsed.as_ref().and_then(|m| m.edns.as_ref()).map(|e| e.max_payload()));
        let udp_limit = payload.map_or(512, |p| usize::from(p).max(512));
        // A response is never answered: two servers would bounce it between them forever.
        let is_response = is_response(req);
        for peer in [OUTSIDER, SECONDARY] {
            if let Some(resp) = self.dns.udp(req, peer) {
                assert!(!is_response, "UDP answered a response");
                self.check_dns_response(req, &resp, udp_limit, "UDP");
            }
        }
        if let Some(tc) = Core::udp_slip(req) {
            assert!(!is_response, "the rate limiter's slip answered a response");
            let m = self.check_dns_response(req, &tc, udp_limit, "slip");
            assert!(m.metadata.truncation, "a slip answer without TC");
            assert!(
                tc.len() <= req.len(),
                "a slip answer larger than the query (amplification)"
            );
        }
    }

    /// A TCP message: the general path (`Authority::respond`), transfers for an allowed
    /// secondary and refusals for anyone else.
    pub fn dns_tcp(&self, req: &[u8]) {
        for peer in [OUTSIDER, SECONDARY] {
            let frames = self.dns.tcp(req, peer);
            if frames.len() > 1 {
                assert_eq!(peer, SECONDARY, "a zone transfer to a client outside the ACL");
            }
            assert!(frames.is_empty() || !is_response(req), "TCP answered a response");
            for f in &frames {
                self.check_dns_response(req, f, usize::from(u16::MAX), "TCP");
            }
        }
    }

    fn check_dns_response(&self, req: &[u8], resp: &[u8], limit: usize, how: &str) -> Message {
        assert!(resp.len() >= 12, "{how}: answer shorter than a header");
        assert_eq!(resp[..2], req[..2], "{how}: ID not echoed");
        assert!(resp[2] & 0x80 != 0, "{how}: QR not set");
        assert!(
            resp.len() <= limit,
            "{how}: {} octets for a client limit of {limit}",
            resp.len()
        );
        let m = Message::from_vec(resp).unwrap_or_else(|e| panic!("{how}: answer does not parse back: {e}"));
        let records = m.answers.iter().chain(&m.authorities).chain(&m.additionals);
        for r in records.filter(|r| r.record_type() != RecordType::OPT) {
            assert!(
                self.dns_names.iter().any(|n| n.zone_of(&r.name)),
                "{how}: a record for {} outside our zones",
                r.name
            );
        }
        if m.metadata.authoritative || m.metadata.response_code == ResponseCode::NoError && !m.answers.is_empty() {
            match m.queries.first() {
                Some(q) => assert!(
                    self.dns_names.iter().any(|n| n.zone_of(q.name())),
                    "{how}: authoritative for {} outside our zones",
                    q.name()
                ),
                // Later messages of a zone transfer may leave the question out (RFC 5936 §2.2).
                None => assert_eq!(how, "TCP", "{how}: an authoritative answer without question"),
            }
        }
        m
    }

    /// One HTTP request: `FLAGS METHOD\nTARGET\nHOST\nBODY`, read the way hyper would deliver it
    /// (invalid methods, targets and Host headers never reach the routes).
    pub fn http(&self, input: &[u8]) {
        let Some((&flags, rest)) = input.split_first() else {
            return;
        };
        let mut parts = rest.splitn(4, |b| *b == b'\n');
        let (method, target, host, body) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let Ok(method) = hyper::Method::from_bytes(method) else {
            return;
        };
        let Ok(uri) = hyper::Uri::try_from(target) else { return };
        let host = hyper::header::HeaderValue::from_bytes(host).ok();
        let host = host.as_ref().and_then(|h| h.to_str().ok()).filter(|h| !h.is_empty());
        self.route(method.as_str(), uri.path(), uri.query(), host, body, flags);
    }

    /// One Autodiscover POX request body, POSTed over HTTPS: answered for the domain of the
    /// address it asks about when that domain is configured and the schema is Outlook's, else
    /// with no domain's settings.
    pub fn pox(&self, body: &[u8]) {
        let wanted = crate::render::autodiscover::parse_request(body)
            .ok()
            .filter(|p| !p.wants_mobilesync() && !p.wants_unknown_schema())
            .and_then(|p| p.email)
            .and_then(|e| EmailAddress::parse(&e).ok())
            .filter(|a| self.settings.domain(&a.domain).is_some())
            .map(|a| a.domain);
        self.pox_expecting(body, wanted.as_deref());
    }

    /// [`Fixture::pox`] with the domain whose settings the answer must hold given.
    pub fn pox_expecting(&self, body: &[u8], wanted: Option<&str>) {
        let reply = self.route("POST", crate::vocab::POX_PATH, None, None, body, 1);
        assert!(matches!(reply.status, 200 | 404), "POX POST answered {}", reply.status);
        assert_eq!(
            reply.domain.as_deref(),
            wanted,
            "POX settings for another domain than the request's"
        );
    }

    fn route(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        host: Option<&str>,
        body: &[u8],
        flags: u8,
    ) -> routes::Reply {
        let input = Input {
            method,
            path,
            query,
            host,
            body,
            flags,
        };
        let reply = self.answer(&input);
        self.check_reply(&input, reply)
    }

    /// What the routes answer, unchecked.
    fn answer(&self, i: &Input) -> routes::Reply {
        let req = routes::Request {
            method: i.method,
            path: i.path,
            query: i.query,
            host: i.host,
            body: i.body,
            time: "12:34:56",
            secure: i.flags & 1 != 0,
            https_available: i.flags & 2 != 0,
            acme: None,
            accept_language: None,
            pages: &self.pages,
        };
        routes::handle(&self.settings, &req)
    }

    fn check_reply(&self, i: &Input, reply: routes::Reply) -> routes::Reply {
        let (path, query, host) = (i.path, i.query, i.host);
        assert!(
            [200, 301, 302, 307, 400, 404, 405].contains(&reply.status),
            "status {} is not one the routes answer",
            reply.status
        );
        for (name, value) in &reply.headers {
            assert!(
                hyper::header::HeaderValue::from_str(value).is_ok(),
                "header {name} cannot be sent: {value:?}"
            );
            if *name == "location" {
                assert!(value.starts_with("https://"), "redirect off HTTPS: {value}");
            }
        }
        let ct = reply.content_type;
        if ct.contains("xml") {
            check_xml(&reply.body).unwrap_or_else(|e| panic!("{ct} body is not well-formed XML: {e}"));
        } else if ct.starts_with("application/json") {
            serde_json::from_slice::<serde_json::Value>(&reply.body).expect("JSON body parses");
        } else if ct.starts_with("text/plain") {
            assert!(!reply.body.contains(&b'<'), "markup in a text body");
        } else if ct.starts_with("text/html") {
            // The setup page and its error pages: one whole document (maud escapes; the check
            // below looks for input that comes back unescaped).
            let text = std::str::from_utf8(&reply.body).expect("HTML is UTF-8");
            assert!(
                text.starts_with("<!DOCTYPE html>") && text.trim_end().ends_with("</html>"),
                "not one whole HTML document"
            );
        } else if ct == "application/x-apple-aspen-config" {
            plist::from_bytes::<plist::Value>(&reply.body).expect("the profile parses as a plist");
        } else {
            panic!("unexpected content type {ct}");
        }
        // No piece of input with markup characters comes back verbatim. Document text that
        // happens to equal a piece (`</Response>` holds `nse>`) is no echo: the answer to the
        // same request without markup characters holds it too.
        let decoded: Vec<String> = query
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(_, v)| v.into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let pieces: Vec<&str> = [path, query.unwrap_or(""), host.unwrap_or("")]
            .into_iter()
            .chain(decoded.iter().map(String::as_str))
            .filter(|p| p.len() >= 3 && p.contains(MARKUP))
            .collect();
        if pieces.iter().any(|p| contains(&reply.body, p.as_bytes())) {
            let (path, query, host) = (defang(path), query.map(defang_query), host.map(defang));
            let benign = self.answer(&Input {
                path: &path,
                query: query.as_deref(),
                host: host.as_deref(),
                ..*i
            });
            if let Some(piece) = unescaped_echo(&pieces, &reply.body, &benign.body) {
                panic!("input {piece:?} comes back unescaped");
            }
        }
        // A document for one domain never names the servers of another provider.
        if let Some(domain) = &reply.domain {
            let own = &self
                .settings
                .domain(domain)
                .unwrap_or_else(|| panic!("a document for {domain}, which is not configured"))
                .provider;
            for p in self.settings.providers.iter().filter(|p| p.id != own.id) {
                for s in &p.servers {
                    assert!(
                        !contains(&reply.body, s.host.as_bytes()),
                        "the document for {domain} names {} of provider {}",
                        s.host,
                        p.id
                    );
                }
            }
        }
        reply
    }

    /// Settings text: never a panic, every rejection located inside the text. The first byte
    /// chooses where the input goes: alone, or before or after 64 generated domains (so that the
    /// per-domain splitter runs); the split and the whole-file parse must agree.
    pub fn settings(&self, input: &[u8]) {
        let Some((&mode, rest)) = input.split_first() else {
            return;
        };
        let Ok(text) = std::str::from_utf8(rest) else { return };
        let text = match mode % 3 {
            0 => text.to_string(),
            1 => format!("{text}\n{}", many_domains()),
            _ => format!("{}\n{text}", many_domains()),
        };
        let got = Settings::from_toml(&text, "fuzz.toml");
        let whole = crate::settings::parse_whole(&text, "fuzz.toml");
        match (&got, &whole) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.providers, b.providers, "split and whole parse disagree on providers");
                assert_eq!(a.domains, b.domains, "split and whole parse disagree on domains");
                assert_eq!(
                    format!("{:?}", a.server),
                    format!("{:?}", b.server),
                    "server settings differ"
                );
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "split and whole parse report differently"),
            _ => panic!(
                "split and whole parse disagree: {:?} / {:?}",
                got.is_ok(),
                whole.is_ok()
            ),
        }
        match got {
            Err(diags) => check_located(&diags, &text),
            Ok(s) => {
                // Whatever validates can be served: records and every document.
                for d in s.domains.iter().take(4) {
                    for name in d.names() {
                        let _ = crate::records::for_name(&s, d, name);
                    }
                    if let Some(cfg) = ClientConfig::for_domain(&s, &d.name, None) {
                        check_xml(&crate::render::thunderbird::render(&cfg)).expect("thunderbird XML");
                        check_xml(&crate::render::autodiscover::response(&cfg)).expect("POX XML");
                        serde_json::from_slice::<serde_json::Value>(&crate::render::autodiscover_json::v1(&cfg))
                            .expect("JSON");
                        let _ = crate::render::mobileconfig::render(&cfg);
                    }
                }
            }
        }
    }

    /// What the probe reads from servers: SMTP replies and EHLO, IMAP and POP3 capabilities,
    /// autoconfig and POX documents, DNS answers.
    pub fn probe(&self, input: &[u8]) {
        use crate::probe::reply;
        let text = String::from_utf8_lossy(input);
        if let Ok(r) = reply::smtp_reply(&text) {
            assert!((100..1000).contains(&r.code), "SMTP code {}", r.code);
            let ehlo = reply::Ehlo::parse(&r);
            let _ = (
                ehlo.has("STARTTLS"),
                ehlo.starttls_only_on_last_line(),
                ehlo.auth_mechanisms(),
            );
        }
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        for l in &lines {
            let _ = reply::imap_capabilities(l);
        }
        let _ = reply::pop3_capabilities(&lines);
        for servers in [crate::probe::parse_thunderbird(input), crate::probe::parse_pox(input)]
            .into_iter()
            .flatten()
        {
            for s in servers {
                assert_eq!(s.host, s.host.to_ascii_lowercase(), "host not lower-cased");
            }
        }
        if let Ok(m) = Message::from_vec(input) {
            for r in &m.answers {
                let _ = r.data.to_string();
            }
        }
    }
}

/// Every rejection points at a place in the text and says something.
fn check_located(diags: &Diagnostics, text: &str) {
    assert!(!diags.0.is_empty(), "a rejection without a diagnostic");
    let lines = text.split('\n').count();
    for d in &diags.0 {
        assert_eq!(d.file, "fuzz.toml");
        assert!(d.line >= 1 && d.line <= lines, "line {} of {lines}: {d}", d.line);
        let width = text.split('\n').nth(d.line - 1).map_or(0, |l| l.chars().count());
        assert!(
            d.column >= 1 && d.column <= width + 1,
            "column {} of {width}: {d}",
            d.column
        );
        assert!(!d.message.trim().is_empty(), "a diagnostic without a message at {d}");
    }
}

/// 64 valid domains, enough for the settings splitter.
fn many_domains() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        (0..64)
            .map(|i| format!("[[domain]]\nname = \"d{i}.example\"\nprovider = \"p\"\n\n"))
            .collect::<String>()
            + "[provider.p]\ndisplay_name = \"P\"\n\n[[provider.p.server]]\nprotocol = \"imap\"\nhost = \"imap.p.example\"\nport = 993\nsecurity = \"tls\"\n"
    })
}

/// One HTTP request as the routes see it (`flags`: bit 0 HTTPS, bit 1 an HTTPS listener exists).
#[derive(Clone, Copy)]
struct Input<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    host: Option<&'a str>,
    body: &'a [u8],
    flags: u8,
}

/// The characters a document must escape when it repeats input.
const MARKUP: [char; 4] = ['<', '>', '&', '"'];

/// `text` with every markup character replaced by `_` (same length in characters).
fn defang(text: &str) -> String {
    text.replace(MARKUP, "_")
}

/// A raw query string with the markup characters of its values replaced, raw or percent-encoded
/// (`&` between pairs stays: it separates them, and no value holds it raw).
fn defang_query(query: &str) -> String {
    let mut out = query.replace(['<', '>', '"'], "_");
    for enc in ["%3C", "%3E", "%26", "%22", "%3c", "%3e"] {
        out = out.replace(enc, "_");
    }
    out
}

/// The first of `pieces` (request parts holding markup characters) that `body` repeats
/// unescaped, given `benign`, the answer to the same request with every markup character of
/// the input replaced by `_`. A piece is echoed when the body holds it more often than the
/// benign answer does (text every such document holds, like `nse>` of `</Response>`, is in
/// both) and the benign answer holds its harmless twin: the input does come back there.
pub fn unescaped_echo<'p>(pieces: &[&'p str], body: &[u8], benign: &[u8]) -> Option<&'p str> {
    pieces.iter().copied().find(|piece| {
        let (p, twin) = (piece.as_bytes(), defang(piece));
        count(body, p) > count(benign, p) && count(benign, twin.as_bytes()) > 0
    })
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() {
        return 0;
    }
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

fn is_response(req: &[u8]) -> bool {
    req.get(2).is_some_and(|b| b & 0x80 != 0)
}

fn lower_wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Well-formed XML: one root, balanced tags, attribute values and references that resolve,
/// no DTD.
pub fn check_xml(body: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|_| "not UTF-8")?;
    let mut r = quick_xml::Reader::from_str(text);
    let (mut depth, mut roots) = (0usize, 0usize);
    loop {
        match r.read_event().map_err(|e| format!("at {}: {e}", r.buffer_position()))? {
            Event::Start(e) | Event::Empty(e) if depth == 0 && roots > 0 => {
                return Err(format!("second root element {:?}", e.name()));
            }
            Event::Start(e) => {
                roots += usize::from(depth == 0);
                depth += 1;
                attributes(&e)?;
            }
            Event::Empty(e) => {
                roots += usize::from(depth == 0);
                attributes(&e)?;
            }
            Event::End(_) => depth = depth.checked_sub(1).ok_or("unmatched end tag")?,
            Event::Text(t) if depth == 0 && !t.xml10_content().trim().is_empty() => {
                return Err("text outside the root element".into());
            }
            Event::GeneralRef(g) => {
                let known = matches!(&*g, "lt" | "gt" | "amp" | "apos" | "quot");
                if !known && !matches!(g.resolve_char_ref(), Ok(Some(_))) {
                    return Err(format!("unknown reference {g:?}"));
                }
            }
            Event::DocType(_) => return Err("a DTD".into()),
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 || roots != 1 {
        return Err(format!("{roots} root elements, {depth} left open"));
    }
    Ok(())
}

fn attributes(e: &quick_xml::events::BytesStart) -> Result<(), String> {
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
