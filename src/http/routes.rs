//! Request → response for every endpoint, without sockets: method, path, query, Host and body in,
//! status, headers and bytes out. All document text comes from `render`.

use std::borrow::Cow;

use crate::model::{ClientConfig, EmailAddress};
use crate::render::setup::{self, Lang};
use crate::render::{autodiscover, autodiscover_json, mobileconfig, thunderbird};
use crate::settings::Settings;
use crate::vocab::{self, AUTOCONFIG, AUTODISCOVER, Dav, MTA_STS, UA_AUTO_CONFIG};

/// What the transport needs to answer and to log.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// For the request log: which endpoint answered, and for which domain (never the address).
    pub endpoint: &'static str,
    pub domain: Option<String>,
}

/// The parts of a request the routes read.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub host: Option<&'a str>,
    pub body: &'a [u8],
    /// `hh:mm:ss` now, for Autodiscover error documents (the renderers own no clock); asked only
    /// when one is written.
    pub time: fn() -> String,
    /// Arrived over HTTPS.
    pub secure: bool,
    /// An HTTPS listener exists, so plain HTTP may redirect there.
    pub https_available: bool,
    /// The ACME certificates, when they are in use (they sign Apple profiles).
    pub acme: Option<&'a crate::acme::Acme>,
    /// The `Accept-Language` header (the setup page's language).
    pub accept_language: Option<&'a str>,
    /// Setup pages rendered for these settings.
    pub pages: &'a super::pages::PageCache,
}

const XML: &str = "application/xml; charset=utf-8";
/// POX answers: the Content-Type Exchange sends; Thunderbird accepts text/xml and application/xml.
const POX: &str = "text/xml; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const APPLE: &str = "application/x-apple-aspen-config";
const HTML: &str = "text/html; charset=utf-8";
/// The setup page runs no script and loads nothing: its one stylesheet is inline, its QR code
/// an inline SVG, its form goes back to the same host.
const SETUP_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/// Server id in Autodiscover error documents.
const ERROR_ID: u32 = 0x6d63_6f6e;

fn reply(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>, endpoint: &'static str) -> Reply {
    Reply {
        status,
        content_type,
        headers: Vec::new(),
        body: body.into(),
        endpoint,
        domain: None,
    }
}

fn text(status: u16, msg: &str, endpoint: &'static str) -> Reply {
    reply(status, TEXT, format!("{msg}\n"), endpoint)
}

/// The answer for one request.
pub fn handle(settings: &Settings, req: &Request) -> Reply {
    let path = req.path.to_ascii_lowercase();
    let (endpoint, allow): (&'static str, &'static str) = match path.as_str() {
        "/healthz" => ("healthz", "GET, HEAD"),
        "/" | vocab::SETUP_PATH => ("setup", "GET, HEAD"),
        vocab::THUNDERBIRD_PATH | vocab::THUNDERBIRD_WELL_KNOWN_PATH => ("thunderbird", "GET, HEAD"),
        vocab::POX_PATH => ("autodiscover", "GET, HEAD, POST"),
        vocab::AUTODISCOVER_JSON_PATH => ("autodiscover-json", "GET, HEAD"),
        p if p.starts_with(vocab::AUTODISCOVER_JSON_ADDRESS_PREFIX) => ("autodiscover-json", "GET, HEAD"),
        vocab::APPLE_PROFILE_PATH => ("mobileconfig", "GET, HEAD"),
        vocab::MTA_STS_POLICY_PATH => ("mta-sts", "GET, HEAD"),
        vocab::PACC_PATH => ("pacc", "GET, HEAD"),
        // Thunderbird's CardDAVUtils sends PROPFIND (Depth 0) here and follows the redirect.
        p if Dav::from_well_known(p).is_some() => ("dav-well-known", "GET, HEAD, PROPFIND"),
        _ => return text(404, "not found", "unknown"),
    };
    let method = if req.method == "HEAD" { "GET" } else { req.method };
    if !allow.split(", ").any(|m| m == method) {
        let mut r = text(405, "method not allowed", endpoint);
        r.headers.push(("allow", allow.to_string()));
        return r;
    }
    if !req.secure
        && req.https_available
        && let Some(r) = to_https(settings, req, endpoint, method)
    {
        return r;
    }
    let mut r = match (endpoint, method) {
        ("healthz", _) => text(200, "ok", endpoint),
        ("thunderbird", _) => thunderbird_get(settings, req),
        ("autodiscover", "POST") => pox_post(settings, req),
        ("autodiscover", _) => pox_get(settings, req),
        ("autodiscover-json", _) => json_get(settings, req, &path),
        ("mobileconfig", _) => apple_get(settings, req),
        ("pacc", _) => pacc_get(settings, req),
        ("dav-well-known", _) => dav_redirect(settings, req, &path),
        ("setup", _) => setup_get(settings, req),
        _ => mta_sts_get(settings, req),
    };
    r.endpoint = endpoint;
    r
}

/// With HTTPS available, plain HTTP keeps only what clients need there: Thunderbird's autoconfig
/// (its http fallback), the POX POST (a redirected POST loses its body) and health checks. The
/// Autodiscover GET gets Outlook's 302 to `https://autodiscover.<domain>/…` (MS-OXDISCO §3.1.5.4);
/// everything else is moved to the same URL over HTTPS.
fn to_https(settings: &Settings, req: &Request, endpoint: &'static str, method: &str) -> Option<Reply> {
    match (endpoint, method) {
        // The DAV redirect already points at https; a 301 first could turn PROPFIND into GET.
        ("thunderbird" | "healthz" | "dav-well-known", _) | ("autodiscover", "POST") => None,
        ("autodiscover", _) => {
            let Some(cfg) = config(settings, host_domain(req.host, AUTODISCOVER).as_deref(), None) else {
                return Some(unknown_domain(endpoint));
            };
            let mut r = text(302, "moved to https", endpoint);
            r.headers.push(("location", vocab::pox_url(&cfg.requested)));
            Some(with_domain(r, &cfg))
        }
        _ => {
            let host = req.host?;
            let mut r = text(301, "moved to https", endpoint);
            let query = req.query.map(|q| format!("?{q}")).unwrap_or_default();
            r.headers.push((
                "location",
                format!("https://{}{}{query}", host.split(':').next().unwrap_or(host), req.path),
            ));
            Some(r)
        }
    }
}

/// Query parameter by case-insensitive name, percent-decoded (`%40` and raw `@` alike).
fn param<'q>(query: Option<&'q str>, name: &str) -> Option<Cow<'q, str>> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The mail domain a Host header names: port and trailing dot removed, the web host `label`
/// (`autoconfig`, `autodiscover`) stripped when present.
fn host_domain(host: Option<&str>, label: &str) -> Option<String> {
    let host = host?.trim();
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host.rsplit_once(':').map_or(
            host,
            |(h, p)| if p.bytes().all(|b| b.is_ascii_digit()) { h } else { host },
        )
    };
    let host = crate::settings::to_ascii_domain(host).ok()?;
    Some(vocab::strip_web_label(&host, label).map_or_else(|| host.clone(), str::to_string))
}

/// Address from the query (if any) and the domain it selects: the address's domain, else Host.
fn address_and_domain(req: &Request, key: &str, label: &str) -> Result<(Option<EmailAddress>, Option<String>), Reply> {
    match param(req.query, key) {
        Some(raw) if !raw.trim().is_empty() => match EmailAddress::parse(&raw) {
            Ok(a) => {
                let d = a.domain.clone();
                Ok((Some(a), Some(d)))
            }
            Err(e) => Err(text(400, &format!("bad request: invalid parameter {key}: {e}"), "")),
        },
        _ => Ok((None, host_domain(req.host, label))),
    }
}

fn unknown_domain(endpoint: &'static str) -> Reply {
    text(404, "no mail settings for this domain", endpoint)
}

fn config<'s>(
    settings: &'s Settings,
    domain: Option<&str>,
    address: Option<&EmailAddress>,
) -> Option<ClientConfig<'s>> {
    ClientConfig::for_domain(settings, domain?, address)
}

fn with_domain(mut r: Reply, cfg: &ClientConfig) -> Reply {
    r.domain = Some(cfg.requested.clone());
    r
}

fn thunderbird_get(settings: &Settings, req: &Request) -> Reply {
    let (addr, domain) = match address_and_domain(req, vocab::EMAIL_ADDRESS_PARAM, AUTOCONFIG) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match config(settings, domain.as_deref(), addr.as_ref()) {
        Some(cfg) => with_domain(reply(200, XML, thunderbird::render(&cfg), ""), &cfg),
        None => unknown_domain(""),
    }
}

fn pox_error(namespace: &str, code: u16, message: &str, req: &Request) -> Reply {
    reply(
        200,
        POX,
        autodiscover::error(namespace, code, message, &(req.time)(), ERROR_ID),
        "",
    )
}

fn pox_post(settings: &Settings, req: &Request) -> Reply {
    let parsed = match autodiscover::parse_request(req.body) {
        Ok(p) => p,
        Err(_) => return pox_error(autodiscover::NS_OUTLOOK, 600, "Invalid Request", req),
    };
    if parsed.wants_mobilesync() {
        return pox_error(autodiscover::NS_MOBILESYNC, 601, "Provider is not available", req);
    }
    if parsed.wants_unknown_schema() {
        return pox_error(autodiscover::NS_OUTLOOK, 601, "Provider is not available", req);
    }
    let Some(addr) = parsed.email.as_deref().and_then(|e| EmailAddress::parse(e).ok()) else {
        return pox_error(autodiscover::NS_OUTLOOK, 600, "Invalid Request", req);
    };
    match config(settings, Some(&addr.domain), Some(&addr)) {
        Some(cfg) => with_domain(reply(200, POX, autodiscover::response(&cfg), ""), &cfg),
        None => unknown_domain(""),
    }
}

/// GET on the POX path (Delta Chat, probes): the Host's settings without a LoginName.
fn pox_get(settings: &Settings, req: &Request) -> Reply {
    match config(settings, host_domain(req.host, AUTODISCOVER).as_deref(), None) {
        Some(cfg) => with_domain(reply(200, POX, autodiscover::response(&cfg), ""), &cfg),
        None => unknown_domain(""),
    }
}

fn json_get(settings: &Settings, req: &Request, lower_path: &str) -> Reply {
    let protocol = param(req.query, "Protocol").unwrap_or_default();
    if !protocol.eq_ignore_ascii_case(autodiscover_json::PROTOCOL_V1) {
        return reply(400, JSON, autodiscover_json::invalid_protocol(&protocol), "");
    }
    // `/autodiscover/autodiscover.json/v1.0/<address>` carries the address in the path.
    let in_path = lower_path
        .strip_prefix(vocab::AUTODISCOVER_JSON_ADDRESS_PREFIX)
        .map(|_| {
            let raw = &req.path[vocab::AUTODISCOVER_JSON_ADDRESS_PREFIX.len()..];
            form_urlencoded::parse(format!("a={raw}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        });
    let raw = in_path.or_else(|| param(req.query, "Email").map(Cow::into_owned));
    let domain = match raw {
        Some(r) => match EmailAddress::parse(&r) {
            Ok(a) => Some(a.domain),
            Err(e) => return text(400, &format!("bad request: invalid Email: {e}"), ""),
        },
        None => host_domain(req.host, AUTODISCOVER),
    };
    match config(settings, domain.as_deref(), None) {
        Some(cfg) => with_domain(reply(200, JSON, autodiscover_json::v1(&cfg), ""), &cfg),
        None => unknown_domain(""),
    }
}

fn apple_get(settings: &Settings, req: &Request) -> Reply {
    let (addr, domain) = match address_and_domain(req, vocab::EMAIL_ADDRESS_PARAM, AUTOCONFIG) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(cfg) = config(settings, domain.as_deref(), addr.as_ref()) else {
        return unknown_domain("");
    };
    match mobileconfig::render(&cfg) {
        Some(unsigned) => {
            // Signed with the serving certificate when there is one (iOS: "Verified").
            let signed = match (settings.server.tls.as_deref(), req.acme) {
                (Some(files), _) => Some(crate::sign::sign_with_key(&unsigned, &files.chain, &files.key)),
                (None, Some(acme)) => acme
                    .signing_cert(&vocab::web_host(AUTOCONFIG, &cfg.requested))
                    .map(|c| crate::sign::sign(&unsigned, &c.cert, c.key.as_ref())),
                (None, None) => None,
            };
            let body = match signed {
                Some(Ok(signed)) => signed,
                Some(Err(e)) => {
                    tracing::error!(error = %e, "cannot sign the profile: sending it unsigned");
                    unsigned
                }
                None => unsigned,
            };
            let mut r = reply(200, APPLE, body, "");
            r.headers.push((
                "content-disposition",
                format!("attachment; filename=\"{}\"", mobileconfig::file_name(&cfg)),
            ));
            with_domain(r, &cfg)
        }
        None => text(404, "no server of this domain can be described in an Apple profile", ""),
    }
}

fn mta_sts_get(settings: &Settings, req: &Request) -> Reply {
    // Only on `mta-sts.<domain>` (RFC 8461 §3.3); senders must not follow redirects.
    let host = host_domain(req.host, "");
    let Some(domain) = host.as_deref().and_then(|h| vocab::strip_web_label(h, MTA_STS)) else {
        return unknown_domain("");
    };
    match settings.domain(domain).and_then(|d| d.mta_sts.as_ref()) {
        Some(sts) => {
            let mut r = reply(200, TEXT, crate::mta_sts::policy(sts), "");
            r.domain = Some(domain.to_string());
            r
        }
        None => unknown_domain(""),
    }
}

/// RFC 6764 §5: `/.well-known/caldav` and `/.well-known/carddav` on the mail domain (or one of
/// its web hosts) redirect to the configured context URL, for GET and PROPFIND alike; the DAV
/// service itself is never served here.
fn dav_redirect(settings: &Settings, req: &Request, lower_path: &str) -> Reply {
    let Some(kind) = Dav::from_well_known(lower_path) else {
        return unknown_domain("");
    };
    let host = host_domain(req.host, "");
    let domain = host.as_deref().and_then(|h| {
        settings.domain(h).or_else(|| {
            vocab::web_labels(true, true)
                .find_map(|l| vocab::strip_web_label(h, l))
                .and_then(|d| settings.domain(d))
        })
    });
    let Some(domain) = domain else {
        return unknown_domain("");
    };
    match domain.services().dav(kind) {
        Some(d) => {
            let mut r = text(307, "moved temporarily", "");
            r.headers.push(("location", d.url.clone()));
            r.domain = Some(domain.name.clone());
            r
        }
        None => text(404, &format!("no {} service for this domain", kind.words().key), ""),
    }
}

/// The PACC document, only on `ua-auto-config.<domain>` (the draft's fixed host).
fn pacc_get(settings: &Settings, req: &Request) -> Reply {
    let host = host_domain(req.host, "");
    let Some(name) = host.as_deref().and_then(|h| vocab::strip_web_label(h, UA_AUTO_CONFIG)) else {
        return unknown_domain("");
    };
    match settings.domain(name).and_then(crate::pacc::body) {
        Some(body) => {
            let mut r = reply(200, JSON, body, "");
            r.domain = Some(name.to_string());
            r
        }
        None => unknown_domain(""),
    }
}

/// The setup page for people: the domain of `?email=` or of the Host (`autoconfig.`,
/// `autodiscover.` or the mail domain itself behind a proxy), in the negotiated language.
/// Rendered once per name and language per reload as a template; with an address, its spots
/// per request.
fn setup_get(settings: &Settings, req: &Request) -> Reply {
    let lang = Lang::negotiate(
        param(req.query, vocab::SETUP_LANG_PARAM).as_deref(),
        req.accept_language,
    );
    let html = |status: u16, body: Vec<u8>| {
        let mut r = reply(status, HTML, body, "");
        r.headers.extend([
            ("content-language", lang.tag().to_string()),
            ("vary", "accept-language".to_string()),
            ("content-security-policy", SETUP_CSP.to_string()),
            ("x-content-type-options", "nosniff".to_string()),
        ]);
        r
    };
    let (addr, domain) = match param(req.query, vocab::SETUP_EMAIL_PARAM) {
        Some(raw) if !raw.trim().is_empty() => match EmailAddress::parse(&raw) {
            Ok(a) => {
                let d = a.domain.clone();
                (Some(a), Some(d))
            }
            Err(_) => return html(400, setup::bad_address(lang).into_bytes()),
        },
        _ => (
            None,
            host_domain(req.host, AUTOCONFIG)
                .map(|d| vocab::strip_web_label(&d, AUTODISCOVER).map_or(d.clone(), str::to_string)),
        ),
    };
    let Some(cfg) = config(settings, domain.as_deref(), addr.as_ref()) else {
        return html(404, setup::not_found(lang).into_bytes());
    };
    // What does not depend on the address is built once per name and language per reload; a
    // page for an address renders only the spots that hold it.
    let records = || {
        req.pages.records_text(settings, &cfg.requested, || {
            crate::records::for_name(settings, cfg.domain, &cfg.requested).map(|r| setup::records_text(&r))
        })
    };
    let template = req.pages.get_or_render(settings, &cfg.requested, lang, || {
        // From the address-less view, whichever request comes first.
        let plain = config(settings, Some(&cfg.requested), None)?;
        setup::template(&plain, lang, records().as_deref())
    });
    let body = match template {
        Some(t) => t.fill(&cfg),
        None => setup::page(&cfg, lang, records().as_deref()),
    };
    with_domain(html(200, body.into_bytes()), &cfg)
}
