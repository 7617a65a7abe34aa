//! Raw TOML → [`Settings`], collecting every problem instead of stopping at the first.
//!
//! One file per table: [`server`] (`[server]`, TLS, ACME), [`provider`], [`domain`] (with
//! `mta_sts`), [`dns`] (`[domain.dns]`). This file holds the walk over the document and the
//! checks every table shares ([`Ctx`]); [`pieces`] reads a large file one domain at a time.

mod dns;
mod domain;
mod pieces;
mod provider;
mod server;
mod source;

use std::collections::hash_map::Entry;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::xxh3_128;

use super::diagnostic::{Diagnostic, Diagnostics, Locator};
use super::intern::Interner;
use super::names::to_ascii_domain;
use super::raw::{self, S};
use super::{FileRef, Provider, Settings};

pub use provider::PLACEHOLDERS;
use provider::check_template;

pub(super) use pieces::parse_file_reusing;
use pieces::parse_split;

/// A `transfer_to` entry with `key NAME`.
pub(super) struct KeyedSecondary {
    pub ip: IpAddr,
    /// As [`tsig_key_name`] writes it.
    pub key: String,
    pub span: Range<usize>,
    pub path: String,
}

/// A TSIG key name in the form kept in settings: ASCII lower case with the trailing dot.
/// Labels of letters, digits, `-` and `_` (tsig-keygen's default is `tsig-key`).
pub(super) fn tsig_key_name(name: &str) -> Result<String, String> {
    let bare = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let ok = !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|l| {
            (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(format!("{bare}."))
    } else {
        Err(format!(
            "`{name}` is not a TSIG key name (labels of letters, digits, `-` and `_`, as `xfr.example.net.`)"
        ))
    }
}

/// Where a value sits in the settings (`domain[3].dns.mx[0].host`), for messages: anything
/// printable, so callers pass `format_args!` and the text is only made when a problem is
/// reported. Making every path up front was a tenth of `check` at 100k domains.
pub(super) trait FieldPath: std::fmt::Display + Copy {}
impl<T: std::fmt::Display + Copy> FieldPath for T {}

/// The source being validated and the problems found so far.
pub(super) struct Ctx<'a> {
    loc: Locator<'a>,
    diags: Vec<Diagnostic>,
    /// Values many domains share (see `intern`).
    pub(super) intern: &'a Interner,
}

impl Ctx<'_> {
    pub(super) fn err(&mut self, span: &Range<usize>, path: impl std::fmt::Display, message: impl Into<String>) {
        let d = self.loc.at(span, path.to_string(), message);
        self.diags.push(d);
    }

    pub(super) fn host(&mut self, v: &S<String>, path: impl FieldPath) -> Option<String> {
        match to_ascii_domain(v.get_ref()) {
            Ok(h) => Some(h),
            Err(e) => {
                self.err(&v.span(), path, e);
                None
            }
        }
    }

    pub(super) fn ip(&mut self, v: &S<String>, path: impl FieldPath) -> Option<IpAddr> {
        match v.get_ref().parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.err(&v.span(), path, format!("`{}` is not an IP address", v.get_ref()));
                None
            }
        }
    }

    pub(super) fn ips(&mut self, list: &[S<String>], path: impl FieldPath) -> Vec<IpAddr> {
        list.iter()
            .enumerate()
            .filter_map(|(i, v)| self.ip(v, format_args!("{path}[{i}]")))
            .collect()
    }

    /// Secondaries: `IP` (port 53) or `IP:PORT` (`[v6]:PORT`); the port is where NOTIFY goes.
    pub(super) fn secondaries(&mut self, list: &[S<String>], path: impl FieldPath) -> Vec<SocketAddr> {
        let (out, keyed) = self.secondaries_keyed(list, path);
        for k in keyed {
            self.err(
                &k.span,
                k.path,
                "a TSIG key can be required in [server] transfer_to only",
            );
        }
        out
    }

    /// Secondaries as in [`Ctx::secondaries`], each optionally followed by `key NAME`: that
    /// secondary must sign with the TSIG key NAME. Returns the addresses and the keyed entries.
    pub(super) fn secondaries_keyed(
        &mut self,
        list: &[S<String>],
        path: impl FieldPath,
    ) -> (Vec<SocketAddr>, Vec<KeyedSecondary>) {
        let mut out: Vec<SocketAddr> = Vec::new();
        let mut keyed = Vec::new();
        for (i, v) in list.iter().enumerate() {
            let mut words = v.get_ref().split_whitespace();
            let text = words.next().unwrap_or("");
            let key = match (words.next(), words.next(), words.next()) {
                (None, _, _) => None,
                (Some("key"), Some(name), None) => Some(name),
                _ => {
                    self.err(
                        &v.span(),
                        format!("{path}[{i}]"),
                        format!("`{}` is not `IP`, `IP:port` or `IP key NAME`", v.get_ref()),
                    );
                    continue;
                }
            };
            let parsed = text
                .parse::<SocketAddr>()
                .ok()
                .or_else(|| text.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)));
            match parsed {
                Some(a) => {
                    if !out.contains(&a) {
                        out.push(a);
                    }
                    if let Some(name) = key {
                        keyed.push(KeyedSecondary {
                            ip: a.ip(),
                            key: tsig_key_name(name).unwrap_or_else(|_| name.to_string()),
                            span: v.span(),
                            path: format!("{path}[{i}]"),
                        });
                    }
                }
                None => self.err(
                    &v.span(),
                    format!("{path}[{i}]"),
                    format!("`{text}` is not an IP address or IP:port"),
                ),
            }
        }
        (out, keyed)
    }

    pub(super) fn socket_addrs(&mut self, list: &[S<String>], path: impl FieldPath) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for (i, v) in list.iter().enumerate() {
            match v.get_ref().parse() {
                Ok(a) => out.push(a),
                Err(_) => self.err(
                    &v.span(),
                    format!("{path}[{i}]"),
                    format!("`{}` is not an address:port (IPv6 as `[::1]:53`)", v.get_ref()),
                ),
            }
        }
        out
    }

    /// A file named by the setting `v` at `path`, to be read by [`super::files`].
    pub(super) fn file(&self, v: &S<String>, path: impl FieldPath) -> FileRef {
        FileRef::new(v.get_ref().clone(), self.loc.at(&v.span(), path.to_string(), ""))
    }

    pub(super) fn template(&mut self, v: &S<String>, path: impl FieldPath) {
        if let Err(e) = check_template(v.get_ref()) {
            self.err(&v.span(), path, e);
        }
    }
}

pub(super) fn parse(text: &str, file: &str, previous: Option<&Settings>) -> Result<Settings, Diagnostics> {
    parse_split_from(text, file, previous, super::split::MIN_DOMAINS)
}

/// [`parse`], splitting files from `min_domains` domains on (the fuzz target splits small ones).
pub(super) fn parse_split_from(
    text: &str,
    file: &str,
    previous: Option<&Settings>,
    min_domains: usize,
) -> Result<Settings, Diagnostics> {
    super::split::split(text, min_domains)
        .and_then(|split| parse_split(text, file, &split, previous))
        .unwrap_or_else(|| parse_whole(text, file, previous))
}

/// The whole file as one document.
pub(super) fn parse_whole(text: &str, file: &str, previous: Option<&Settings>) -> Result<Settings, Diagnostics> {
    let loc = Locator { file, text, base: 0 };
    let raw: raw::File = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let path = super::diagnostic::path_at(text, span.start);
            return Err(Diagnostics(vec![loc.at(&span, path, e.message().trim().to_string())]));
        }
    };
    let intern = Interner::default();
    let mut cx = Ctx {
        loc,
        diags: Vec::new(),
        intern: &intern,
    };
    let server = server::server(&mut cx, &raw.server);
    let providers = providers(&mut cx, &raw);
    let sources = source::sources(&mut cx, &raw.source, &raw.provider, &providers);
    let checked = raw
        .domain
        .iter()
        .enumerate()
        .map(|(i, d)| check_domain(loc, i, d, &raw.provider, &providers, previous, &intern))
        .collect();
    assemble(cx, server, providers, sources, checked, false)
}

fn providers(cx: &mut Ctx, raw: &raw::File) -> Vec<Arc<Provider>> {
    raw.provider
        .iter()
        .filter_map(|(id, p)| provider::provider(cx, id, p))
        .map(Arc::new)
        .collect()
}

/// One `[[domain]]`, checked: the domain if valid, its names (for the duplicate check across
/// domains) and its problems.
struct Checked {
    domain: Option<Arc<super::Domain>>,
    /// ASCII name, span (absolute in the file), field path.
    names: Vec<(String, Range<usize>, NameAt)>,
    diags: Vec<Diagnostic>,
    /// Fingerprint of the domain's text (split parse only).
    piece: u128,
    /// The previous snapshot's domain, taken unparsed because its text did not change.
    reused: bool,
    /// Where the domain says `dnssec = true`: an error unless `[server] state_dir` is set.
    dnssec_at: Option<Diagnostic>,
}

impl Checked {
    /// A previous domain for the piece at `start`: its names located at the piece's header
    /// (only used if another domain repeats one, and then a full pass reports it).
    fn reused(domain: &Arc<super::Domain>, loc: Locator, start: usize, i: usize, piece: u128) -> Checked {
        let names = domain
            .names()
            .enumerate()
            .map(|(j, n)| (n.to_string(), start..start, NameAt::new(i, j)))
            .collect();
        // Located at the piece's header: a reload with this problem parses every piece again
        // (see `parse_split`), and then the message points at the key itself.
        let dnssec_at = (domain.dns.as_ref().and_then(|d| d.dnssec) == Some(true))
            .then(|| loc.at(&(start..start), format!("domain[{i}].dns.dnssec"), DNSSEC_NEEDS_STATE));
        Checked {
            domain: Some(domain.clone()),
            names,
            diags: Vec::new(),
            piece,
            reused: true,
            dnssec_at,
        }
    }
}

const DNSSEC_NEEDS_STATE: &str = "needs `[server] state_dir`: the signing keys are kept there across restarts";

/// One `[[domain]]` piece parsed on its own (see `split`) and checked as domain `i`; `None`
/// unless it parses and holds exactly one domain and nothing else.
#[allow(clippy::too_many_arguments)]
fn check_piece(
    piece: &str,
    hash: u128,
    loc: Locator,
    i: usize,
    raw_providers: &std::collections::BTreeMap<String, S<raw::Provider>>,
    providers: &[Arc<Provider>],
    previous: Option<&Settings>,
    intern: &Interner,
) -> Option<Checked> {
    let parsed: raw::Piece = toml::from_str(piece).ok()?;
    let [d] = <[_; 1]>::try_from(parsed.domain).ok()?;
    let checked = check_domain(loc, i, &d, raw_providers, providers, previous, intern);
    Some(Checked { piece: hash, ..checked })
}

fn check_domain(
    loc: Locator,
    i: usize,
    d: &S<raw::Domain>,
    raw_providers: &std::collections::BTreeMap<String, S<raw::Provider>>,
    providers: &[Arc<Provider>],
    previous: Option<&Settings>,
    intern: &Interner,
) -> Checked {
    let mut cx = Ctx {
        loc,
        diags: Vec::new(),
        intern,
    };
    let domain = domain::domain(&mut cx, i, d, raw_providers, providers).map(|dom| {
        match previous.and_then(|p| p.domain_shared(&dom.name)) {
            Some(same) if **same == dom => same.clone(),
            _ => Arc::new(dom),
        }
    });
    let d = d.get_ref();
    // Duplicates are checked on every name that parses, valid domain or not.
    let names = std::iter::once(&d.name)
        .chain(d.aliases.iter())
        .enumerate()
        .filter_map(|(j, span)| {
            let name = to_ascii_domain(span.get_ref()).ok()?;
            let s = span.span();
            Some((name, loc.base + s.start..loc.base + s.end, NameAt::new(i, j)))
        })
        .collect();
    let dnssec_at = d
        .dns
        .as_ref()
        .and_then(|dns| dns.get_ref().dnssec.as_ref())
        .filter(|v| *v.get_ref())
        .map(|v| loc.at(&v.span(), format!("domain[{i}].dns.dnssec"), DNSSEC_NEEDS_STATE));
    Checked {
        domain,
        names,
        diags: cx.diags,
        piece: 0,
        reused: false,
        dnssec_at,
    }
}

/// Where a domain name is written: `domain[I].name` or `domain[I].aliases[J]`, spelled out
/// only for a message.
#[derive(Clone, Copy)]
struct NameAt {
    domain: u32,
    /// 0: the name, J + 1: alias J.
    name: u32,
}

impl NameAt {
    fn new(domain: usize, name: usize) -> NameAt {
        NameAt {
            domain: domain as u32,
            name: name as u32,
        }
    }
}

impl std::fmt::Display for NameAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name {
            0 => write!(f, "domain[{}].name", self.domain),
            j => write!(f, "domain[{}].aliases[{}]", self.domain, j - 1),
        }
    }
}

fn assemble(
    mut cx: Ctx,
    server: super::ServerSettings,
    providers: Vec<Arc<Provider>>,
    sources: Vec<Arc<super::SourceSettings>>,
    checked: Vec<Checked>,
    split: bool,
) -> Result<Settings, Diagnostics> {
    let mut domains = Vec::with_capacity(checked.len());
    let mut pieces = Vec::with_capacity(if split { checked.len() } else { 0 });
    // Every name that parses, valid domain or not → its entry in `firsts`: (index into
    // `domains`, where it is). Made the final `by_name` in place, not copied into a second map
    // (at 100k domains the copy was ~10 MiB more at the peak of a reload), and sized for the
    // names there are.
    let names: usize = checked.iter().map(|c| c.names.len()).sum();
    let mut seen: FxHashMap<String, usize> = FxHashMap::with_capacity_and_hasher(names, Default::default());
    let mut firsts: Vec<(usize, NameAt)> = Vec::with_capacity(names);
    for c in checked {
        cx.diags.extend(c.diags);
        if server.state_dir.is_none() {
            cx.diags.extend(c.dnssec_at);
        }
        for (name, span, at) in c.names {
            match seen.entry(name) {
                Entry::Occupied(first) => cx.err(
                    &span,
                    at.to_string(),
                    format!(
                        "domain `{}` is configured twice (first at {})",
                        first.key(),
                        firsts[*first.get()].1
                    ),
                ),
                Entry::Vacant(v) => {
                    v.insert(firsts.len());
                    firsts.push((domains.len(), at));
                }
            }
        }
        if let Some(dom) = c.domain {
            domains.push(dom);
            if split {
                pieces.push(c.piece);
            }
        }
    }
    for i in seen.values_mut() {
        *i = firsts[*i].0;
    }
    drop(firsts);
    if cx.diags.is_empty() {
        Ok(Settings {
            server,
            providers,
            domains,
            by_name: seen,
            pieces,
            sources,
        })
    } else {
        cx.diags.sort_by_key(|d| (d.line, d.column));
        Err(Diagnostics(cx.diags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A provider, then `n` domains; `edit` may change domain `i`'s text.
    fn config(n: usize, edit: impl Fn(usize, String) -> String) -> String {
        let mut text = String::from(
            "[server]\ntransfer_to = [\"192.0.2.53\"]\n[provider.p]\ndisplay_name = \"P\"\n\
             [[provider.p.server]]\nprotocol = \"imap\"\nhost = \"mail.example.net\"\nport = 993\nsecurity = \"tls\"\n\
             [[provider.p.server]]\nprotocol = \"smtp\"\nhost = \"mail.example.net\"\nport = 465\nsecurity = \"tls\"\n",
        );
        for i in 0..n {
            let d = format!(
                "\n[[domain]] # number {i}\nname = \"d{i}.example\"\nprovider = \"p\"\naliases = [\"a{i}.example\"]\n\
                 [domain.dns]\nnameservers = [\"ns1.example.net.\"]\nautoconfig_addresses = [\"192.0.2.10\"]\n\
                 spf = \"v=spf1 -all\"\n[domain.mta_sts]\nmode = \"enforce\"\nmx = [\"mail.example.net\"]\n"
            );
            text.push_str(&edit(i, d));
        }
        text
    }

    fn both(text: &str) -> (Result<Settings, Diagnostics>, Option<Result<Settings, Diagnostics>>) {
        let split = super::super::split::split(text, super::super::split::MIN_DOMAINS).expect("large enough to split");
        (
            parse_whole(text, "t.toml", None),
            parse_split(text, "t.toml", &split, None),
        )
    }

    #[test]
    fn split_parse_equals_whole_parse() {
        let text = config(100, |_, d| d);
        let (whole, split) = both(&text);
        let (whole, split) = (whole.expect("valid"), split.expect("split parse").expect("valid"));
        assert_eq!(whole.domains, split.domains);
        assert_eq!(whole.by_name, split.by_name);
        assert_eq!(split.domains.len(), 100);
        assert_eq!(
            split.domain("A57.example.").map(|d| d.name.as_str()),
            Some("d57.example")
        );
    }

    /// The `settings` fuzz target's find: a comment with `"""` hid the provider table after it,
    /// which went into a domain's piece and was lost there.
    #[test]
    fn triple_quotes_in_comments_hide_no_table() {
        let text = config(100, |i, d| match i {
            50 => format!(
                "{d}# a comment that quotes \"\"\"\n[provider.q]\ndisplay_name = \"Q\"\n\
                 [[provider.q.server]]\nprotocol = \"imap\"\nhost = \"imap.example.org\"\nport = 993\nsecurity = \"tls\"\n\
                 [[provider.q.server]]\nprotocol = \"smtp\"\nhost = \"smtp.example.org\"\nport = 465\nsecurity = \"tls\"\n"
            ),
            70 => d.replace("provider = \"p\"", "provider = \"q\""),
            _ => d,
        });
        let (whole, split) = both(&text);
        let (whole, split) = (whole.expect("valid"), split.expect("split parse").expect("valid"));
        assert_eq!(whole.domains, split.domains);
        assert_eq!(split.providers.len(), 2);
        assert_eq!(split.domain("d70.example").map(|d| d.provider.id.as_str()), Some("q"));
    }

    #[test]
    fn split_parse_reports_what_whole_parse_reports() {
        let text = config(100, |i, d| match i {
            10 => d.replace("provider = \"p\"", "provider = \"q\""),
            20 => d.replace("192.0.2.10", "192.0.2.300"),
            30 => d.replace("name = \"d30.example\"", "name = \"d5.example\""),
            99 => d.replace("a99.example", "d0.example"),
            _ => d,
        });
        let (whole, split) = both(&text);
        let (whole, split) = (whole.unwrap_err(), split.expect("split parse").unwrap_err());
        assert_eq!(whole, split);
        assert_eq!(split.0.len(), 4, "{split}");
        assert!(split.0[0].to_string().starts_with("t.toml:"), "{split}");
        assert!(
            split
                .to_string()
                .contains("domain[30].name: domain `d5.example` is configured twice (first at domain[5].name)")
        );
    }

    #[test]
    fn syntax_errors_come_from_the_whole_file_parser() {
        let text = config(100, |i, d| {
            if i == 50 {
                d.replace("mode = \"enforce\"", "mode = 7")
            } else {
                d
            }
        });
        let (whole, split) = both(&text);
        assert!(split.is_none(), "a piece that does not parse gives up");
        assert_eq!(parse(&text, "t.toml", None).unwrap_err(), whole.unwrap_err());
    }

    #[test]
    fn a_reload_shares_the_domains_that_did_not_change() {
        let before = parse(&config(100, |_, d| d), "t.toml", None).expect("valid");
        let text = config(100, |i, d| if i == 7 { d.replace("-all", "~all") } else { d });
        let after = parse(&text, "t.toml", Some(&before)).expect("valid");
        for (i, (a, b)) in before.domains.iter().zip(&after.domains).enumerate() {
            assert_eq!(Arc::ptr_eq(a, b), i != 7, "domain {i}");
        }
        assert_eq!(
            after.domains[7].dns.as_ref().and_then(|d| d.spf.as_deref()),
            Some("v=spf1 ~all")
        );
    }

    #[test]
    fn a_reload_takes_unchanged_pieces_without_parsing_them() {
        let before = parse(&config(100, |_, d| d), "t.toml", None).expect("valid");
        assert_eq!(before.pieces.len(), 100);
        // Domain 7 changes; domain 8 moves to the end (same text, other place).
        let mut text = config(100, |i, d| match i {
            7 => d.replace("-all", "~all"),
            8 => String::new(),
            _ => d,
        });
        let moved = config(9, |i, d| if i == 8 { d } else { String::new() });
        text.push_str(&moved[moved.find("\n[[domain]]").expect("domain 8")..]);
        let after = parse(&text, "t.toml", Some(&before)).expect("valid");
        assert_eq!(after.domains.len(), 100);
        assert!(
            Arc::ptr_eq(&after.domains[99], &before.domains[8]),
            "the moved domain is the same one"
        );
        assert!(!Arc::ptr_eq(&after.domains[7], &before.domains[7]));
        assert!(Arc::ptr_eq(&after.providers[0], &before.providers[0]));
        // The same text parsed without a previous snapshot gives equal settings.
        let fresh = parse(&text, "t.toml", None).expect("valid");
        assert_eq!(fresh.domains, after.domains);
        assert_eq!(fresh.by_name, after.by_name);
        assert_eq!(fresh.pieces, after.pieces);
    }

    #[test]
    fn a_provider_change_reparses_every_piece() {
        let before = parse(&config(100, |_, d| d), "t.toml", None).expect("valid");
        let text = config(100, |_, d| d).replace("port = 465", "port = 2465");
        let after = parse(&text, "t.toml", Some(&before)).expect("valid");
        assert!(
            after
                .domains
                .iter()
                .zip(&before.domains)
                .all(|(a, b)| !Arc::ptr_eq(a, b))
        );
        assert_eq!(after.domains[0].provider.servers[1].port, 2465);
    }

    #[test]
    fn problems_after_a_reuse_read_as_without_one() {
        let before = parse(&config(100, |_, d| d), "t.toml", None).expect("valid");
        // Domain 30 takes domain 5's name: domain 5's piece is unchanged (reused).
        let text = config(100, |i, d| {
            if i == 30 {
                d.replace("name = \"d30.example\"", "name = \"d5.example\"")
            } else {
                d
            }
        });
        let reloaded = parse(&text, "t.toml", Some(&before)).unwrap_err();
        assert_eq!(reloaded, parse(&text, "t.toml", None).unwrap_err());
        assert!(reloaded.to_string().contains("(first at domain[5].name)"), "{reloaded}");
    }

    /// `text` written to a temporary file, read by the line-by-line reload path.
    fn streamed(text: &str, previous: &Settings) -> Option<Settings> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("mailconf-stream-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write");
        let done = parse_file_reusing(&path, "t.toml", previous);
        let _ = std::fs::remove_file(&path);
        done
    }

    #[test]
    fn a_streamed_reload_equals_the_whole_text_reload() {
        let before = parse(&config(100, |_, d| d), "t.toml", None).expect("valid");
        // Domain 7 changes; domain 8 moves to the end (same text, other place).
        let mut text = config(100, |i, d| match i {
            7 => d.replace("-all", "~all"),
            8 => String::new(),
            _ => d,
        });
        let moved = config(9, |i, d| if i == 8 { d } else { String::new() });
        text.push_str(&moved[moved.find("\n[[domain]]").expect("domain 8")..]);
        let streamed = streamed(&text, &before).expect("streamed");
        let whole = parse(&text, "t.toml", Some(&before)).expect("valid");
        assert_eq!(streamed.domains, whole.domains);
        assert_eq!(streamed.by_name, whole.by_name);
        assert_eq!(streamed.pieces, whole.pieces);
        assert_eq!(streamed.server.transfer_to, whole.server.transfer_to);
        assert!(
            Arc::ptr_eq(&streamed.domains[99], &before.domains[8]),
            "taken, not parsed"
        );
        assert!(!Arc::ptr_eq(&streamed.domains[7], &before.domains[7]));
        assert_eq!(
            streamed.domains[7].dns.as_ref().and_then(|d| d.spf.as_deref()),
            Some("v=spf1 ~all")
        );
    }

    #[test]
    fn a_streamed_reload_leaves_problems_and_odd_layouts_to_the_whole_text_parse() {
        let before = parse(&config(100, |_, d| d), "t.toml", None).expect("valid");
        let bad = [
            // A problem in a changed piece, one across pieces, a syntax error.
            config(100, |i, d| {
                if i == 20 {
                    d.replace("192.0.2.10", "192.0.2.300")
                } else {
                    d
                }
            }),
            config(100, |i, d| {
                if i == 30 {
                    d.replace("name = \"d30.example\"", "name = \"d5.example\"")
                } else {
                    d
                }
            }),
            config(100, |i, d| {
                if i == 50 {
                    d.replace("mode = \"enforce\"", "mode = 7")
                } else {
                    d
                }
            }),
        ];
        for text in &bad {
            assert!(streamed(text, &before).is_none());
            assert!(parse(text, "t.toml", Some(&before)).is_err());
        }
        // Tables after the domains, changed providers: valid, but not this path's to parse.
        let head = config(0, |_, d| d);
        let q = head[head.find("[provider.p]").expect("provider")..].replace("provider.p", "provider.q");
        let after = format!("{}\n{q}", config(100, |_, d| d));
        assert!(streamed(&after, &before).is_none());
        if let Err(e) = parse(&after, "t.toml", Some(&before)) {
            panic!("{e}");
        }
        let providers = config(100, |_, d| d).replace("port = 465", "port = 2465");
        assert!(streamed(&providers, &before).is_none());
        // Unchanged: every domain is the previous one.
        let same = streamed(&config(100, |_, d| d), &before).expect("streamed");
        assert!(same.domains.iter().zip(&before.domains).all(|(a, b)| Arc::ptr_eq(a, b)));
    }
}
