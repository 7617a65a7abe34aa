//! The HTTP targets: one request through the routes as hyper would deliver it, and Outlook POX
//! bodies; the checks that an answer never repeats markup from the request unescaped, never names
//! another provider's servers, keeps its JSON shape and is well-formed XML.

use quick_xml::events::Event;

use crate::http::routes;
use crate::model::EmailAddress;
use crate::settings::Settings;

use super::{Fixture, contains};

impl Fixture {
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
        self.answer_with(&self.settings, &self.pages, i)
    }

    fn answer_with(&self, settings: &Settings, pages: &crate::http::pages::PageCache, i: &Input) -> routes::Reply {
        let req = routes::Request {
            method: i.method,
            path: i.path,
            query: i.query,
            host: i.host,
            body: i.body,
            time: || "12:34:56".into(),
            secure: i.flags & 1 != 0,
            https_available: i.flags & 2 != 0,
            acme: None,
            accept_language: None,
            pages,
        };
        routes::handle(settings, &req)
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
        // JSON escapes `"` as `\"`, which holds the piece: there the check is that the input
        // does not change the document's structure (an unescaped quote would end a string).
        let json = ct.starts_with("application/json");
        if !pieces.is_empty() && (json || pieces.iter().any(|p| contains(&reply.body, p.as_bytes()))) {
            let (path, query, host) = (defang(path), query.map(defang_query), host.map(defang));
            let benign = self.answer(&Input {
                path: &path,
                query: query.as_deref(),
                host: host.as_deref(),
                ..*i
            });
            if json {
                assert!(
                    same_json_structure(&reply.body, &benign.body),
                    "input with markup characters changes the JSON document's structure"
                );
            } else if let Some(piece) = unescaped_echo(&pieces, &reply.body, &benign.body) {
                panic!("input {piece:?} comes back unescaped");
            }
        }
        // A document for one domain never names the servers of another provider. A name the
        // request itself holds (`submit.beta-mail.test@alpha.test` is a valid address) comes
        // back as often when the settings name other servers: only more is a leak.
        if let Some(domain) = &reply.domain {
            let own = &self
                .settings
                .domain(domain)
                .unwrap_or_else(|| panic!("a document for {domain}, which is not configured"))
                .provider;
            let others: Vec<(&str, &str)> = self
                .settings
                .providers
                .iter()
                .filter(|p| p.id != own.id)
                .flat_map(|p| p.servers.iter().map(|s| (s.host.as_str(), p.id.as_str())))
                .collect();
            let hosts: Vec<&str> = others.iter().map(|(h, _)| *h).collect();
            if hosts.iter().any(|h| contains(&reply.body, h.as_bytes())) {
                let renamed = self.answer_with(&self.renamed.0, &self.renamed.1, i);
                if let Some(host) = leaked_host(&hosts, &reply.body, &renamed.body) {
                    let provider = others.iter().find(|(h, _)| *h == host).map(|(_, p)| *p);
                    panic!("the document for {domain} names {host} of provider {provider:?}");
                }
            }
        }
        reply
    }
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

/// The first of `hosts` (other providers' servers) that `body` names more often than `renamed`,
/// the answer to the same request under settings where every server has another name: the
/// rest of its occurrences are the request's own text repeated.
pub fn leaked_host<'h>(hosts: &[&'h str], body: &[u8], renamed: &[u8]) -> Option<&'h str> {
    hosts
        .iter()
        .copied()
        .find(|h| count(body, h.as_bytes()) > count(renamed, h.as_bytes()))
}

/// Both bodies are JSON of the same structure (keys, nesting, kinds of values), or neither
/// parses.
pub fn same_json_structure(body: &[u8], benign: &[u8]) -> bool {
    let shape = |b: &[u8]| serde_json::from_slice(b).ok().map(|v| json_shape(&v));
    shape(body) == shape(benign)
}

/// A JSON value with every string and number replaced by its kind: what input may not change.
fn json_shape(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), json_shape(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(json_shape).collect()),
        Value::String(_) => Value::String("string".into()),
        Value::Number(_) => Value::String("number".into()),
        other => other.clone(),
    }
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
