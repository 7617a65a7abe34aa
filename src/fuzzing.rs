//! Entry points for the fuzz targets in `fuzz/` and for their corpus replay in the normal suite
//! (`tests/fuzz_corpus.rs`). Each takes raw outside input, runs it through the same functions the
//! servers call and asserts what a peer relies on; a broken invariant panics, exactly like a
//! crash, so libFuzzer reports it and the replay test fails. Not an API: only the fuzz targets
//! and the replay test use it.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use hickory_server::proto::op::{Message, ResponseCode};
use hickory_server::proto::rr::{Name, Record, RecordType};
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
/// The secondary that must sign with the fixture's TSIG key (`[server] transfer_to`).
const KEYED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// TSIG resource record type.
const TSIG: u16 = 250;

/// Built once per fuzzing process: the fixture's settings and DNS zones.
pub struct Fixture {
    settings: Arc<Settings>,
    pages: crate::http::pages::PageCache,
    /// The same settings with every provider's server names changed (`-mail.test` →
    /// `-mail.invalid`): a server name that an answer holds as often under these settings came
    /// from the request, not from the settings.
    renamed: (Settings, crate::http::pages::PageCache),
    dns: Core,
    /// The same zones after a reload that added `sub.alpha.test`: the catalog has a journal
    /// (IXFR from the serial before).
    journaled: Core,
    /// Every mail domain name with DNS, and the catalog: no answer may hold a name outside.
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
            .chain(
                settings
                    .server
                    .catalog
                    .iter()
                    .map(|c| Name::from_ascii(c).expect("the catalog name")),
            )
            .collect();
        // The fixture without one domain, then reloaded to the whole: one catalog change.
        let start = FIXTURE
            .find("[[domain]]\nname = \"sub.alpha.test\"")
            .expect("the fixture has sub.alpha.test");
        let end = start + FIXTURE[start + 1..].find("[[domain]]").expect("a domain follows") + 1;
        let fewer = format!("{}{}", &FIXTURE[..start], &FIXTURE[end..]);
        let fewer = Settings::from_toml(&fewer, "fuzz.toml").expect("the fixture without a domain is valid");
        let journaled = Core::new(Arc::new(fewer)).reload(settings.clone());
        let renamed = Settings::from_toml(&FIXTURE.replace("-mail.test", "-mail.invalid"), "fuzz.toml")
            .expect("the renamed fixture is valid");
        Fixture {
            pages: crate::http::pages::PageCache::new(&settings),
            renamed: {
                let pages = crate::http::pages::PageCache::new(&renamed);
                (renamed, pages)
            },
            dns: Core::new(settings.clone()),
            journaled,
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
        for r in records.filter(|r| !matches!(r.record_type(), RecordType::OPT | RecordType::TSIG)) {
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

    /// A zone transfer, catalog query or NOTIFY over TCP: `FLAGS` then a DNS message. FLAGS
    /// picks the peer (an outsider, the secondary the ACL allows, the one that must sign: once
    /// unsigned, once signed with its key) and the server (fresh, or after a reload that
    /// journaled a catalog change). A transfer goes only to an allowed peer (signed when it must
    /// sign), starts and ends with the same SOA, and holds only names of the zone asked for.
    pub fn dns_xfr(&self, input: &[u8]) {
        let Some((&flags, msg)) = input.split_first() else {
            return;
        };
        if msg.len() < 12 {
            return;
        }
        let core = if flags & 4 != 0 { &self.journaled } else { &self.dns };
        let (peer, signed) = match flags & 3 {
            0 => (OUTSIDER, false),
            1 => (SECONDARY, false),
            2 => (KEYED, false),
            _ => (KEYED, true),
        };
        let mut req = msg.to_vec();
        let key = &self.settings.server.tsig[0];
        if signed {
            Core::sign_request(key, &mut req, Core::now());
        }
        let frames = core.tcp(&req, peer);
        assert!(frames.is_empty() || !is_response(&req), "TCP answered a response");
        let request_mac = signed.then(|| tsig_of(&req).map(|t| t.mac)).flatten();
        let mut prior = request_mac.clone();
        let mut parsed = Vec::new();
        for f in &frames {
            parsed.push(self.check_dns_response(&req, f, usize::from(u16::MAX), "TCP"));
            if let Some(t) = tsig_of(f).filter(|t| !t.mac.is_empty()) {
                let mac = prior.as_deref().expect("a signed answer to an unsigned request");
                verify_tsig(key, mac, f, &t, parsed.len() > 1);
                prior = Some(t.mac);
            }
        }
        self.check_transfer(&parsed, peer, signed);
    }

    /// What a transfer answer must be: to whom, its framing, its names.
    fn check_transfer(&self, frames: &[Message], peer: IpAddr, signed: bool) {
        let answers: Vec<&Record> = frames.iter().flat_map(|m| &m.answers).collect();
        let Some(q) = frames.first().and_then(|m| m.queries.first()) else {
            return;
        };
        if !matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR) || answers.is_empty() {
            return;
        }
        assert!(
            peer == SECONDARY || peer == KEYED && signed,
            "a transfer of {} to {peer} (signed: {signed})",
            q.name()
        );
        let first = answers[0];
        assert_eq!(
            first.record_type(),
            RecordType::SOA,
            "a transfer that does not start with SOA"
        );
        assert_eq!(&first.name, q.name(), "a transfer of another zone than asked");
        if answers.len() > 1 || frames.len() > 1 {
            let last = answers[answers.len() - 1];
            assert_eq!(last, first, "a transfer that does not end with its first SOA");
        }
        for r in &answers {
            assert!(q.name().zone_of(&r.name), "{} in the transfer of {}", r.name, q.name());
        }
    }

    /// A TSIG-signed request: `MODE POS_HI POS_LO` then a DNS message, which the target signs
    /// with the fixture's key as the secondary would (hickory's reading of it when it has one,
    /// else the bytes as they are), then spoils as MODE says: a MAC byte flipped, cut at POS,
    /// the MAC shortened to POS octets, any byte flipped, signed with another secret, a second
    /// TSIG record, or unsigned; bit 7 signs an hour ago. Sent by the secondary that must sign,
    /// the one the ACL allows, and an outsider, over TCP and UDP. Checked: an answer is signed
    /// exactly when the request verifies, and its MAC verifies (each message of a transfer
    /// chained to the one before); a request that does not verify never gets a transfer or a
    /// signed answer; an old one gets BADTIME.
    pub fn tsig(&self, input: &[u8]) {
        let [mode, hi, lo, msg @ ..] = input else {
            return;
        };
        if msg.len() < 12 {
            return;
        }
        let pos = usize::from(u16::from_be_bytes([*hi, *lo]));
        let canonical = Message::from_vec(msg)
            .ok()
            .filter(|m| m.queries.len() == 1 && m.additionals.iter().all(|r| r.record_type() != RecordType::TSIG))
            .and_then(|m| m.to_vec().ok())
            .filter(|b| b.len() >= 12 && b[2] & 0x80 == 0);
        let plain = canonical.clone().unwrap_or_else(|| msg.to_vec());
        let key = &self.settings.server.tsig[0];
        let old = mode & 0x80 != 0;
        let time = if old { Core::now() - 3600 } else { Core::now() };
        let mut signed = plain.clone();
        Core::sign_request(key, &mut signed, time);
        let rr = plain.len(); // where the TSIG record starts
        let mut sent = signed.clone();
        let mac_at = sent.len() - 6 - 32;
        match mode & 7 {
            0 => {}
            1 => sent[mac_at + pos % 32] ^= 1 << (pos % 8),
            2 => sent.truncate(12 + pos % (sent.len() - 12)),
            3 => {
                // A MAC cut to `pos % 33` octets, lengths adjusted.
                let keep = pos % 33;
                sent.drain(mac_at + keep..mac_at + 32);
                sent[mac_at - 2..mac_at].copy_from_slice(&(keep as u16).to_be_bytes());
                let rdlen_at = rr + wire_len(&key.name) + 8;
                let rdlen = u16::from_be_bytes([sent[rdlen_at], sent[rdlen_at + 1]]) - (32 - keep) as u16;
                sent[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
            }
            4 => {
                let at = 2 + pos % (sent.len() - 2);
                sent[at] ^= 1 << (pos % 8);
            }
            5 => {
                let mut other = key.clone();
                other.secret = b"another secret of enough length".to_vec();
                sent = plain.clone();
                Core::sign_request(&other, &mut sent, time);
            }
            6 => {
                let again = signed[rr..].to_vec();
                sent.extend_from_slice(&again);
                let ar = u16::from_be_bytes([sent[10], sent[11]]).wrapping_add(1);
                sent[10..12].copy_from_slice(&ar.to_be_bytes());
            }
            _ => sent = plain.clone(),
        }
        // Signed with our key over these very bytes (the ID is not covered: RFC 8945 §5.3).
        // The key and algorithm names enter the MAC in canonical (lower-case) form (§4.3.3),
        // so a change of their letters' case keeps the signature good: the first release
        // campaign's finding, `xfr.fUzz.`.
        let names = tsig_of(&signed).map(|t| {
            let alg_at = t.start + t.name.len() + 10;
            [t.start..t.start + t.name.len(), alg_at..alg_at + t.algorithm.len()]
        });
        let genuine = mode & 7 != 7
            && sent.len() == signed.len()
            && (2..sent.len()).all(|i| {
                sent[i] == signed[i]
                    || (names.iter().flatten().any(|r| r.contains(&i)) && sent[i].eq_ignore_ascii_case(&signed[i]))
            });
        let request_mac = tsig_of(&sent).map(|t| t.mac);
        for peer in [KEYED, SECONDARY, OUTSIDER] {
            let frames = self.dns.tcp(&sent, peer);
            let mut udp = self.dns.udp(&sent, peer).into_iter().collect::<Vec<_>>();
            if let Some(u) = udp.first() {
                self.check_dns_response(&sent, u, udp_limit_of(&sent), "UDP");
            }
            for (how, frames) in [("TCP", &frames), ("UDP", &mut udp)] {
                let mut prior = request_mac.clone();
                let mut parsed = Vec::new();
                for (i, f) in frames.iter().enumerate() {
                    let m = self.check_dns_response(&sent, f, usize::from(u16::MAX), how);
                    match tsig_of(f) {
                        Some(t) if t.error == 0 || t.error == 18 => {
                            assert!(genuine, "{how}: a signed answer to a request that does not verify");
                            let mac = prior.as_deref().expect("the request's MAC");
                            verify_tsig(key, mac, f, &t, i > 0);
                            if t.error == 18 {
                                assert!(old, "{how}: BADTIME for a request signed now");
                            }
                            prior = Some(t.mac);
                        }
                        Some(t) => {
                            assert!(t.mac.is_empty(), "{how}: a MAC on a TSIG error {}", t.error);
                            // Signed bytes after a message that does not parse may be read
                            // as another record (another key name): only a well-formed
                            // request signed now must verify.
                            assert!(
                                !(genuine && canonical.is_some()) || old,
                                "{how}: TSIG error {} for a good request",
                                t.error
                            );
                        }
                        None => assert!(
                            !(genuine && canonical.is_some()),
                            "{how}: an unsigned answer to a well-signed request"
                        ),
                    }
                    if genuine && old && canonical.is_some() {
                        assert_eq!(
                            m.metadata.response_code,
                            ResponseCode::NotAuth,
                            "{how}: an old request answered"
                        );
                    }
                    parsed.push(m);
                }
                if how == "TCP" {
                    self.check_transfer(&parsed, peer, genuine && !old);
                }
            }
        }
    }

    /// Rows from a database source (`[[source]]`), merged with the file's domains: one row a
    /// line, columns `domain`, `provider`, `alias_of` split by tabs; a lone NUL is NULL, a value
    /// that is not UTF-8 is one the database could not give as text. Checked: every row is
    /// taken, skipped with a reason or reported as a duplicate; the file's domains win; every
    /// name taken is a valid lower-case domain that finds its domain; what is taken can be
    /// served; merging the same rows again shares every domain (a refresh that changed nothing
    /// changes nothing).
    pub fn sources(&self, input: &[u8]) {
        let rows: Vec<crate::settings::Row> = input
            .split(|b| *b == b'\n')
            .take(256)
            .map(|line| {
                let mut row = crate::settings::Row::default();
                let mut cols = line.split(|b| *b == b'\t');
                let mut value = |row: &mut crate::settings::Row, name: &str| match cols.next() {
                    None | Some(b"\0") => None,
                    Some(v) => row.value(name, std::str::from_utf8(v).map(|s| Some(s.to_string()))),
                };
                row.domain = value(&mut row, "domain");
                row.provider = value(&mut row, "provider");
                row.alias_of = value(&mut row, "alias_of");
                row
            })
            .collect();
        let given = Some(Arc::new(rows.clone()));
        let (merged, report) = self.settings.with_sources(std::slice::from_ref(&given), None);
        let file = self.settings.domains.len();
        let (read, taken) = report.counts[0];
        assert_eq!(read, rows.len(), "rows read");
        assert_eq!(
            taken + report.bad.len() + report.duplicates.len(),
            rows.len(),
            "a row neither taken, skipped nor a duplicate"
        );
        for b in &report.bad {
            assert!(b.row >= 1 && b.row <= rows.len(), "{b}");
            assert!(!b.reason.trim().is_empty(), "a skipped row without a reason: {b}");
        }
        for d in &self.settings.domains {
            assert!(
                std::ptr::eq(merged.domain(&d.name).expect("a file domain"), &**d),
                "a row replaced {}",
                d.name
            );
        }
        let new = &merged.domains[file..];
        let names: usize = new.iter().map(|d| 1 + d.aliases.len()).sum();
        assert_eq!(names, taken, "names taken");
        for d in new {
            for n in d.names() {
                assert_eq!(
                    crate::settings::to_ascii_domain(n).ok().as_deref(),
                    Some(n),
                    "{n:?} is not a checked name"
                );
                assert_eq!(
                    merged.domain(n).map(|x| &x.name),
                    Some(&d.name),
                    "{n} finds another domain"
                );
            }
        }
        for d in new.iter().take(3) {
            for name in d.names() {
                let _ = crate::records::for_name(&merged, d, name);
            }
            if let Some(cfg) = ClientConfig::for_domain(&merged, &d.name, None) {
                check_xml(&crate::render::thunderbird::render(&cfg)).expect("thunderbird XML");
                check_xml(&crate::render::autodiscover::response(&cfg)).expect("POX XML");
            }
        }
        let (again, _) = self.settings.with_sources(std::slice::from_ref(&given), Some(&merged));
        for (a, b) in again.domains.iter().zip(&merged.domains) {
            assert!(Arc::ptr_eq(a, b), "merging the same rows again rebuilt {}", a.name);
        }
    }

    /// Settings text: never a panic, every rejection located inside the text. The first byte
    /// chooses where the input goes: alone, or before or after 4 generated domains; the
    /// per-domain splitter runs from 2 domains on, and the split and the whole-file parse must
    /// agree.
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
        // Split from two domains on: the split path at a fraction of the cost of 64 domains
        // (the production threshold), so the campaign reaches its ten million.
        let got = crate::settings::parse_split_from(&text, "fuzz.toml", 2);
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
            assert!(
                (200..600).contains(&r.code) && r.code / 10 % 10 <= 5,
                "SMTP code {} outside RFC 5321's grammar",
                r.code
            );
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

impl Fixture {
    /// What the ACME client reads from the CA outside rustls-acme (RFC 9773 ARI): the first
    /// byte picks the reader — a `renewalInfo` body, a `Retry-After` value, an RFC 3339 time or
    /// a certificate whose ARI ID is made. Readers never panic; a window starts before it ends,
    /// the renewal time picked in it lies inside it (or is now), a wait is never negative and
    /// the recheck stays within its bounds.
    pub fn acme(&self, input: &[u8]) {
        use crate::acme::ari;
        let Some((&which, rest)) = input.split_first() else {
            return;
        };
        let text = String::from_utf8_lossy(rest);
        let now = 1_800_000_000;
        match which % 4 {
            0 => {
                if let Some(w) = ari::parse_window(rest) {
                    assert!(w.start < w.end, "window {w:?}");
                    for random in [0.0, 0.5, 0.999_999] {
                        let at = ari::pick(w, now, random);
                        assert!(at == now || (w.start..w.end).contains(&at), "{at} outside {w:?}");
                    }
                }
            }
            1 => {
                let wait = ari::retry_after_header(&text, now);
                assert!(wait.is_none_or(|s| s >= 0), "negative wait {wait:?}");
                let again = ari::recheck_after(wait);
                assert!((60..=86_400).contains(&again) || again == ari::RECHECK_DEFAULT);
            }
            2 => {
                let _ = ari::rfc3339(&text);
            }
            _ => {
                if let Some(id) = ari::cert_id(rest) {
                    assert!(id.split('.').count() == 2, "ARI ID {id}");
                }
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
        (0..4)
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

/// A TSIG record at the end of a message (RFC 8945 §4.2), read independently of `dns::tsig`.
struct TsigRr {
    /// Where the record starts.
    start: usize,
    /// Time signed and fudge, as on the wire.
    timers: [u8; 8],
    mac: Vec<u8>,
    original_id: [u8; 2],
    error: u16,
    other: Vec<u8>,
    /// Key name and algorithm, as on the wire.
    name: Vec<u8>,
    algorithm: Vec<u8>,
}

/// The TSIG record that ends `msg`, if its last record is one (names uncompressed).
fn tsig_of(msg: &[u8]) -> Option<TsigRr> {
    // Walk the records by hand: hickory keeps TSIG apart on some versions.
    let mut i = 12;
    let qd = u16::from_be_bytes([*msg.get(4)?, *msg.get(5)?]);
    for _ in 0..qd {
        i = name_end(msg, i)? + 4;
    }
    let records: usize = (0..3)
        .map(|k| usize::from(u16::from_be_bytes([msg[6 + 2 * k], msg[7 + 2 * k]])))
        .sum();
    let mut last = None;
    for _ in 0..records {
        let start = i;
        let e = name_end(msg, i)?;
        let fixed = msg.get(e..e + 10)?;
        let end = e + 10 + usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        last = Some((start, e, u16::from_be_bytes([fixed[0], fixed[1]]), end));
        i = end;
    }
    let (start, e, rtype, end) = last?;
    if rtype != TSIG || end != msg.len() {
        return None;
    }
    let rd = &msg[e + 10..end];
    let alg_end = name_end(rd, 0)?;
    let f = rd.get(alg_end..alg_end + 10)?;
    let mac_len = usize::from(u16::from_be_bytes([f[8], f[9]]));
    let mac = rd.get(alg_end + 10..alg_end + 10 + mac_len)?.to_vec();
    let t = rd.get(alg_end + 10 + mac_len..alg_end + 16 + mac_len)?;
    let other = rd.get(alg_end + 16 + mac_len..)?.to_vec();
    Some(TsigRr {
        start,
        timers: f[..8].try_into().ok()?,
        mac,
        original_id: [t[0], t[1]],
        error: u16::from_be_bytes([t[2], t[3]]),
        other,
        name: msg[start..e].to_vec(),
        algorithm: rd[..alg_end].to_vec(),
    })
}

/// The end of the name at `i` (a compression pointer ends it).
fn name_end(msg: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = usize::from(*msg.get(i)?);
        match len {
            0 => return Some(i + 1),
            0xc0.. => return (i + 2 <= msg.len()).then_some(i + 2),
            64.. => return None,
            _ => i += 1 + len,
        }
    }
}

/// The MAC of a signed answer verifies with `key`, chained to `prior` (RFC 8945 §4.3: the
/// request's MAC for the first message; for a later message of a transfer the one before, and
/// only the timers as variables, §5.3.1).
fn verify_tsig(key: &crate::settings::TsigKey, prior: &[u8], msg: &[u8], t: &TsigRr, later: bool) {
    use ring::hmac;
    let alg = match key.algorithm {
        crate::settings::TsigAlgorithm::HmacSha256 => hmac::HMAC_SHA256,
        crate::settings::TsigAlgorithm::HmacSha512 => hmac::HMAC_SHA512,
    };
    let mut data = (prior.len() as u16).to_be_bytes().to_vec();
    data.extend_from_slice(prior);
    let mut unsigned = msg[..t.start].to_vec();
    unsigned[0..2].copy_from_slice(&t.original_id);
    let ar = u16::from_be_bytes([unsigned[10], unsigned[11]]) - 1;
    unsigned[10..12].copy_from_slice(&ar.to_be_bytes());
    data.extend_from_slice(&unsigned);
    if !later {
        data.extend_from_slice(&t.name.to_ascii_lowercase());
        data.extend_from_slice(&[0, 255, 0, 0, 0, 0]);
        data.extend_from_slice(&t.algorithm.to_ascii_lowercase());
    }
    data.extend_from_slice(&t.timers);
    if !later {
        data.extend_from_slice(&t.error.to_be_bytes());
        data.extend_from_slice(&(t.other.len() as u16).to_be_bytes());
        data.extend_from_slice(&t.other);
    }
    assert!(
        hmac::verify(&hmac::Key::new(alg, &key.secret), &data, &t.mac).is_ok(),
        "a TSIG MAC that does not verify"
    );
}

/// Octets of a name in wire form.
fn wire_len(name: &str) -> usize {
    let name = name.trim_end_matches('.');
    if name.is_empty() { 1 } else { name.len() + 2 }
}

/// The UDP limit a client states (its EDNS buffer, never below 512), else 512.
fn udp_limit_of(req: &[u8]) -> usize {
    Message::from_vec(req)
        .ok()
        .and_then(|m| m.edns.map(|e| usize::from(e.max_payload())))
        .map_or(512, |p| p.max(512))
}
