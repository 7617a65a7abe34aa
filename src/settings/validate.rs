//! Raw TOML → [`Settings`], collecting every problem instead of stopping at the first.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;

use super::diagnostic::{Diagnostic, Diagnostics, Locator};
use super::names::to_ascii_domain;
use super::raw::{self, S};
use super::{
    Auth, DnsSettings, Domain, FileRef, MailServer, MtaSts, MxHost, Protocol, Provider, Security, ServerSettings,
    Settings, TlsSource, WebHost,
};
use crate::records::{relative_to, zone_of};

/// Placeholders a username template may use (Thunderbird autoconfig, §2.4 of the spec sheet).
pub const PLACEHOLDERS: [&str; 3] = ["%EMAILADDRESS%", "%EMAILLOCALPART%", "%EMAILDOMAIN%"];

const DEFAULT_TTL: u32 = 3600;
const DEFAULT_NEGATIVE_TTL: u32 = 300;
const DEFAULT_MTA_STS_MAX_AGE: u32 = 604_800;

struct Ctx<'a> {
    loc: Locator<'a>,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn err(&mut self, span: &Range<usize>, path: impl Into<String>, message: impl Into<String>) {
        let d = self.loc.at(span, path, message);
        self.diags.push(d);
    }

    fn host(&mut self, v: &S<String>, path: &str) -> Option<String> {
        match to_ascii_domain(v.get_ref()) {
            Ok(h) => Some(h),
            Err(e) => {
                self.err(&v.span(), path, e);
                None
            }
        }
    }

    fn ip(&mut self, v: &S<String>, path: &str) -> Option<IpAddr> {
        match v.get_ref().parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.err(&v.span(), path, format!("`{}` is not an IP address", v.get_ref()));
                None
            }
        }
    }

    fn ips(&mut self, list: &[S<String>], path: &str) -> Vec<IpAddr> {
        list.iter()
            .enumerate()
            .filter_map(|(i, v)| self.ip(v, &format!("{path}[{i}]")))
            .collect()
    }

    /// Secondaries: `IP` (port 53) or `IP:PORT` (`[v6]:PORT`); the port is where NOTIFY goes.
    fn secondaries(&mut self, list: &[S<String>], path: &str) -> Vec<SocketAddr> {
        let mut out: Vec<SocketAddr> = Vec::new();
        for (i, v) in list.iter().enumerate() {
            let text = v.get_ref();
            let parsed = text
                .parse::<SocketAddr>()
                .ok()
                .or_else(|| text.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)));
            match parsed {
                Some(a) if !out.contains(&a) => out.push(a),
                Some(_) => {}
                None => self.err(
                    &v.span(),
                    format!("{path}[{i}]"),
                    format!("`{text}` is not an IP address or IP:port"),
                ),
            }
        }
        out
    }

    fn socket_addrs(&mut self, list: &[S<String>], path: &str) -> Vec<SocketAddr> {
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
    fn file(&self, v: &S<String>, path: &str) -> FileRef {
        FileRef::new(v.get_ref().clone(), self.loc.at(&v.span(), path, ""))
    }

    fn template(&mut self, v: &S<String>, path: &str) {
        if let Err(e) = check_template(v.get_ref()) {
            self.err(&v.span(), path, e);
        }
    }
}

/// Check that every `%…%` in a username template is a known placeholder.
pub(crate) fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(start) = rest.find('%') {
        let after = &rest[start + 1..];
        let Some(len) = after.find('%') else {
            return Err(format!("unmatched `%` in `{t}`"));
        };
        let ph = &rest[start..start + len + 2];
        if !PLACEHOLDERS.contains(&ph) {
            return Err(format!(
                "unknown placeholder `{ph}` (known: {})",
                PLACEHOLDERS.join(", ")
            ));
        }
        rest = &after[len + 1..];
    }
    Ok(())
}

pub(super) fn parse(text: &str, file: &str) -> Result<Settings, Diagnostics> {
    let loc = Locator { file, text };
    let raw: raw::File = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let path = super::diagnostic::path_at(text, span.start);
            return Err(Diagnostics(vec![loc.at(&span, path, e.message().trim().to_string())]));
        }
    };
    let mut cx = Ctx { loc, diags: Vec::new() };
    let server = server(&mut cx, &raw.server);
    let providers: Vec<Arc<Provider>> = raw
        .provider
        .iter()
        .filter_map(|(id, p)| provider(&mut cx, id, p))
        .map(Arc::new)
        .collect();
    let mut domains = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut first_seen: HashMap<String, String> = HashMap::new();
    for (i, d) in raw.domain.iter().enumerate() {
        let dom = domain(&mut cx, i, d, &raw.provider, &providers);
        let d = d.get_ref();
        // Duplicates are checked on every name that parses, valid domain or not.
        let spans = std::iter::once(&d.name).chain(d.aliases.iter());
        let paths = std::iter::once(format!("domain[{i}].name"))
            .chain((0..d.aliases.len()).map(|j| format!("domain[{i}].aliases[{j}]")));
        for (span, path) in spans.zip(paths) {
            let Ok(name) = to_ascii_domain(span.get_ref()) else {
                continue;
            };
            if let Some(prev) = first_seen.get(&name) {
                cx.err(
                    &span.span(),
                    path,
                    format!("domain `{name}` is configured twice (first at {prev})"),
                );
            } else {
                first_seen.insert(name.clone(), path);
                by_name.insert(name, domains.len());
            }
        }
        if let Some(dom) = dom {
            domains.push(dom);
        }
    }
    if cx.diags.is_empty() {
        Ok(Settings {
            server,
            providers,
            domains,
            by_name,
        })
    } else {
        cx.diags.sort_by_key(|d| (d.line, d.column));
        Err(Diagnostics(cx.diags))
    }
}

fn server(cx: &mut Ctx, s: &raw::Server) -> ServerSettings {
    let https_listen = cx.socket_addrs(&s.https_listen, "server.https_listen");
    let metrics_listen = s
        .metrics_listen
        .as_ref()
        .and_then(|m| cx.socket_addrs(std::slice::from_ref(m), "server.metrics_listen").pop());
    let acme = s
        .tls
        .as_ref()
        .and_then(|t| t.get_ref().acme.as_ref())
        .and_then(|a| acme(cx, a));
    if let Some(t) = &s.tls
        && t.get_ref().acme.is_some()
        && (t.get_ref().cert.is_some() || t.get_ref().key.is_some())
    {
        cx.err(
            &t.span(),
            "server.tls",
            "give either cert and key files or [server.tls.acme], not both",
        );
    }
    let tls_source = s
        .tls
        .as_ref()
        .filter(|t| t.get_ref().acme.is_none())
        .and_then(|t| tls_source(cx, t));
    if !https_listen.is_empty() && s.tls.is_none() {
        cx.err(
            &s.https_listen[0].span(),
            "server.https_listen",
            "needs a certificate: add [server.tls] cert and key",
        );
    }
    ServerSettings {
        dns_listen: cx.socket_addrs(&s.dns_listen, "server.dns_listen"),
        http_listen: cx.socket_addrs(&s.http_listen, "server.http_listen"),
        transfer_to: cx.secondaries(&s.transfer_to, "server.transfer_to"),
        https_listen,
        metrics_listen,
        dns_rate_limit: s.dns_rate_limit.as_ref().map_or(0, |r| *r.get_ref()),
        state_dir: s.state_dir.as_ref().map(|d| d.get_ref().into()),
        tls: None,
        tls_source,
        acme,
    }
}

fn acme(cx: &mut Ctx, a: &S<raw::Acme>) -> Option<std::sync::Arc<super::AcmeSettings>> {
    let a = a.get_ref();
    let errors_before = cx.diags.len();
    if !a.directory.get_ref().starts_with("https://") {
        cx.err(
            &a.directory.span(),
            "server.tls.acme.directory",
            "must be an https:// ACME directory URL",
        );
    }
    for (i, c) in a.contact.iter().enumerate() {
        if !c.get_ref().starts_with("mailto:") {
            cx.err(
                &c.span(),
                format!("server.tls.acme.contact[{i}]"),
                "must be a mailto: URI",
            );
        }
    }
    if a.cache_dir.get_ref().trim().is_empty() {
        cx.err(
            &a.cache_dir.span(),
            "server.tls.acme.cache_dir",
            "must name a directory (certificates must survive restarts)",
        );
    }
    let ca_roots_file = a.ca_roots.as_ref().map(|f| cx.file(f, "server.tls.acme.ca_roots"));
    let extra_names: Vec<String> = a
        .extra_names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| cx.host(n, &format!("server.tls.acme.extra_names[{i}]")))
        .collect();
    (cx.diags.len() == errors_before).then(|| {
        std::sync::Arc::new(super::AcmeSettings {
            directory: a.directory.get_ref().clone(),
            contact: a.contact.iter().map(|c| c.get_ref().clone()).collect(),
            cache_dir: a.cache_dir.get_ref().into(),
            ca_roots: Vec::new(),
            ca_roots_file,
            extra_names,
        })
    })
}

/// `[server.tls]` cert and key: only where they are; [`super::files`] reads them.
fn tls_source(cx: &mut Ctx, t: &S<raw::Tls>) -> Option<TlsSource> {
    let span = t.span();
    let t = t.get_ref();
    let (Some(cert), Some(key)) = (&t.cert, &t.key) else {
        cx.err(
            &span,
            "server.tls",
            "needs both `cert` (PEM chain) and `key` (PEM private key)",
        );
        return None;
    };
    Some(TlsSource {
        cert: cx.file(cert, "server.tls.cert"),
        key: cx.file(key, "server.tls.key"),
    })
}

fn provider(cx: &mut Ctx, id: &str, p: &S<raw::Provider>) -> Option<Provider> {
    let span = p.span();
    let p = p.get_ref();
    let path = format!("provider.{id}");
    let errors_before = cx.diags.len();
    let display_name = p.display_name.get_ref().trim().to_string();
    if display_name.is_empty() || display_name.chars().count() > 60 {
        cx.err(
            &p.display_name.span(),
            format!("{path}.display_name"),
            "must be 1 to 60 characters (Thunderbird's limit)",
        );
    }
    let short_name = match &p.short_name {
        Some(s) => {
            if s.get_ref().trim().is_empty() || s.get_ref().chars().count() > 20 {
                cx.err(
                    &s.span(),
                    format!("{path}.short_name"),
                    "must be 1 to 20 characters (Thunderbird's limit)",
                );
            }
            s.get_ref().trim().to_string()
        }
        None => id.chars().take(20).collect(),
    };
    let default_user = p
        .username
        .as_ref()
        .map_or_else(|| PLACEHOLDERS[0].to_string(), |u| u.get_ref().clone());
    if let Some(u) = &p.username {
        cx.template(u, &format!("{path}.username"));
    }
    let mut servers: Vec<MailServer> = Vec::new();
    for (i, s) in p.server.iter().enumerate() {
        let spath = format!("{path}.server[{i}]");
        if let Some(ms) = mail_server(cx, s.get_ref(), &spath, &default_user) {
            if servers
                .iter()
                .any(|o| o.protocol == ms.protocol && o.host == ms.host && o.port == ms.port)
            {
                cx.err(
                    &s.span(),
                    &spath,
                    format!("{:?} server {}:{} is listed twice", ms.protocol, ms.host, ms.port).to_lowercase(),
                );
            }
            servers.push(ms);
        }
    }
    // Judged on what the file lists, so a typo elsewhere does not hide this.
    let protocols: Vec<Protocol> = p.server.iter().map(|s| *s.get_ref().protocol.get_ref()).collect();
    if !protocols.iter().any(|p| *p != Protocol::Smtp) {
        cx.err(
            &span,
            format!("{path}.server"),
            "offers no way to receive mail: add an `imap` or `pop3` server",
        );
    }
    if !protocols.contains(&Protocol::Smtp) {
        cx.err(
            &span,
            format!("{path}.server"),
            "offers no way to send mail: add an `smtp` server",
        );
    }
    (cx.diags.len() == errors_before).then(|| Provider {
        id: id.to_string(),
        display_name,
        short_name,
        servers,
    })
}

fn mail_server(cx: &mut Ctx, s: &raw::MailServer, path: &str, default_user: &str) -> Option<MailServer> {
    let host = cx.host(&s.host, &format!("{path}.host"));
    let port = *s.port.get_ref();
    if port == 0 {
        cx.err(&s.port.span(), format!("{path}.port"), "port 0 is not a port");
    }
    let auth = s
        .auth
        .as_ref()
        .map_or_else(|| vec![Auth::PasswordCleartext], |a| a.get_ref().clone());
    if let Some(a) = &s.auth
        && a.get_ref().is_empty()
    {
        cx.err(&a.span(), format!("{path}.auth"), "must name at least one method");
    }
    let security = *s.security.get_ref();
    if security == Security::None && auth.iter().any(|a| a.sends_cleartext_password()) && !s.allow_cleartext {
        cx.err(
            &s.security.span(),
            format!("{path}.security"),
            "`none` with password-cleartext auth sends passwords unencrypted; use `tls` or `starttls`, or set `allow_cleartext = true` to publish it anyway",
        );
    }
    if let Some(u) = &s.username {
        cx.template(u, &format!("{path}.username"));
    }
    Some(MailServer {
        protocol: *s.protocol.get_ref(),
        host: host?,
        port,
        security,
        auth,
        username: s
            .username
            .as_ref()
            .map_or_else(|| default_user.to_string(), |u| u.get_ref().clone()),
    })
}

fn domain(
    cx: &mut Ctx,
    i: usize,
    d: &S<raw::Domain>,
    raw_providers: &std::collections::BTreeMap<String, S<raw::Provider>>,
    providers: &[Arc<Provider>],
) -> Option<Domain> {
    let d = d.get_ref();
    let path = format!("domain[{i}]");
    let errors_before = cx.diags.len();
    let name = cx.host(&d.name, &format!("{path}.name"));
    let aliases: Vec<String> = d
        .aliases
        .iter()
        .enumerate()
        .filter_map(|(j, a)| cx.host(a, &format!("{path}.aliases[{j}]")))
        .collect();
    let pname = d.provider.get_ref();
    let provider = providers.iter().find(|p| &p.id == pname).cloned();
    if provider.is_none() {
        if raw_providers.contains_key(pname) {
            // The provider exists but is invalid; its own diagnostics say why.
        } else {
            let hint = strsim_best(pname, raw_providers.keys())
                .map(|b| format!("; did you mean \"{b}\"?"))
                .unwrap_or_default();
            cx.err(
                &d.provider.span(),
                format!("{path}.provider"),
                format!("unknown provider \"{pname}\"{hint}"),
            );
        }
    }
    let name = name?;
    let dns = d
        .dns
        .as_ref()
        .and_then(|dns| dns_settings(cx, &format!("{path}.dns"), &name, dns, provider.as_deref()));
    let mta_sts = d
        .mta_sts
        .as_ref()
        .and_then(|m| mta_sts(cx, &format!("{path}.mta_sts"), m, dns.as_ref()));
    if cx.diags.len() != errors_before {
        return None;
    }
    Some(Domain {
        name,
        aliases,
        provider: provider?,
        dns,
        mta_sts,
    })
}

fn strsim_best<'a>(needle: &str, candidates: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    candidates
        .map(|c| (strsim::jaro_winkler(needle, c), c))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Parse a name written relative to the domain (`_tcp`, `@`, `autoconfig`) or absolute under it.
fn relative_name(cx: &mut Ctx, v: &str, span: &Range<usize>, path: &str, domain: &str) -> Option<String> {
    let t = v.trim().to_ascii_lowercase();
    if t == "@" || t.trim_end_matches('.') == domain {
        return Some(String::new());
    }
    let abs = t.trim_end_matches('.');
    if let Some(rel) = relative_to(abs, domain) {
        return Some(rel);
    }
    // `mail.example.org` is far more likely a foreign absolute name than a two-label relative
    // one, so multi-label relative names are only accepted as service labels (`_smtp._tls`).
    if t.ends_with('.') || (abs.contains('.') && !abs.split('.').all(|l| l.starts_with('_'))) {
        cx.err(
            span,
            path,
            format!("`{v}` is not inside `{domain}` (write names relative to the domain, or in full)"),
        );
        return None;
    }
    let ok = !abs.is_empty()
        && abs.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Some(abs.to_string())
    } else {
        cx.err(
            span,
            path,
            format!("`{v}` is not a name relative to `{domain}` (write `@` for the domain itself)"),
        );
        None
    }
}

fn dns_settings(
    cx: &mut Ctx,
    path: &str,
    domain: &str,
    dns: &S<raw::Dns>,
    provider: Option<&Provider>,
) -> Option<DnsSettings> {
    let dns_span = dns.span();
    let dns = dns.get_ref();
    let errors_before = cx.diags.len();
    let mut nameservers = Vec::new();
    for (i, ns) in dns.nameservers.get_ref().iter().enumerate() {
        if let Some(h) = cx.host(ns, &format!("{path}.nameservers[{i}]")) {
            nameservers.push(format!("{h}."));
        }
    }
    if dns.nameservers.get_ref().is_empty() {
        cx.err(
            &dns.nameservers.span(),
            format!("{path}.nameservers"),
            "needs at least one name server (the SOA MNAME and the NS records)",
        );
    }
    if let Some(h) = &dns.hostmaster {
        let ok = h
            .get_ref()
            .rsplit_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !l.contains(char::is_whitespace) && to_ascii_domain(d).is_ok());
        if !ok {
            cx.err(
                &h.span(),
                format!("{path}.hostmaster"),
                format!("`{}` is not a mail address", h.get_ref()),
            );
        }
    }
    let ttl = dns.ttl.as_ref().map_or(DEFAULT_TTL, |t| *t.get_ref());
    if let Some(t) = &dns.ttl
        && (*t.get_ref() == 0 || *t.get_ref() > 2_147_483_647)
    {
        cx.err(
            &t.span(),
            format!("{path}.ttl"),
            "must be 1 to 2147483647 seconds (RFC 2181 §8)",
        );
    }
    let negative_ttl = dns
        .negative_ttl
        .as_ref()
        .map_or(DEFAULT_NEGATIVE_TTL.min(ttl), |t| *t.get_ref());
    if let Some(t) = &dns.negative_ttl
        && *t.get_ref() > 86_400
    {
        cx.err(
            &t.span(),
            format!("{path}.negative_ttl"),
            "must be at most 86400 seconds (RFC 2308 §5 recommends 1–3 hours)",
        );
    }
    let mut zones: Vec<String> = Vec::new();
    for (i, z) in dns.zones.iter().enumerate() {
        if let Some(rel) = relative_name(cx, z.get_ref(), &z.span(), &format!("{path}.zones[{i}]"), domain) {
            if zones.contains(&rel) {
                cx.err(
                    &z.span(),
                    format!("{path}.zones[{i}]"),
                    format!("zone `{}` is listed twice", z.get_ref()),
                );
            }
            zones.push(rel);
        }
    }
    if zones.is_empty() {
        zones.push(String::new());
    }
    let addrs = cx.ips(&dns.autoconfig_addresses, &format!("{path}.autoconfig_addresses"));
    let autoconfig = match (&dns.autoconfig_cname, addrs.is_empty()) {
        (Some(c), true) => cx
            .host(c, &format!("{path}.autoconfig_cname"))
            .map(|h| WebHost::Cname(format!("{h}."))),
        (Some(c), false) => {
            cx.err(
                &c.span(),
                format!("{path}.autoconfig_cname"),
                "give either autoconfig_addresses or autoconfig_cname, not both",
            );
            None
        }
        (None, false) => Some(WebHost::Addresses(addrs)),
        (None, true) => None,
    };
    if let (Some(WebHost::Cname(_)), Some(z)) = (&autoconfig, zones.iter().find(|z| WEB_LABELS.contains(&z.as_str()))) {
        cx.err(
            &dns_span,
            format!("{path}.zones"),
            format!("`{z}.{domain}` cannot be both a zone apex and a CNAME; use autoconfig_addresses"),
        );
    }
    let cnames: Vec<String> = match &autoconfig {
        Some(WebHost::Cname(_)) => WEB_LABELS.iter().map(|l| format!("{l}.{domain}")).collect(),
        _ => Vec::new(),
    };
    let mut hosts: Vec<(String, Vec<IpAddr>)> = Vec::new();
    for (key, list) in &dns.hosts {
        let hpath = format!("{path}.hosts.{key}");
        if let Some(rel) = relative_name(cx, key, &list.span(), &hpath, domain) {
            let fq = if rel.is_empty() {
                domain.to_string()
            } else {
                format!("{rel}.{domain}")
            };
            if cnames.contains(&fq) {
                cx.err(
                    &list.span(),
                    &hpath,
                    format!("`{fq}` is a CNAME (autoconfig_cname) and cannot have addresses"),
                );
            }
            let ips = cx.ips(list.get_ref(), &hpath);
            hosts.push((rel, ips));
        }
    }
    let has_address = |host: &str| relative_to(host, domain).is_some_and(|rel| hosts.iter().any(|(h, _)| *h == rel));
    let in_our_zones = |host: &str| relative_to(host, domain).is_some_and(|rel| zone_of(&rel, &zones).is_some());
    let mut mx = Vec::new();
    for (i, m) in dns.mx.iter().enumerate() {
        let mpath = format!("{path}.mx[{i}].host");
        let m = m.get_ref();
        if m.host.get_ref() == "." {
            if dns.mx.len() > 1 || m.preference != 0 {
                cx.err(
                    &m.host.span(),
                    &mpath,
                    "the null MX `.` (RFC 7505) must be the only MX, with preference 0",
                );
            }
            mx.push(MxHost {
                host: ".".into(),
                preference: 0,
            });
            continue;
        }
        let Some(h) = cx.host(&m.host, &mpath) else {
            continue;
        };
        if cnames.contains(&h) {
            cx.err(
                &m.host.span(),
                &mpath,
                format!("`{h}` is a CNAME this config creates; an MX target must not be an alias (RFC 2181 §10.3)"),
            );
        } else if in_our_zones(&h) && !has_address(&h) {
            cx.err(
                &m.host.span(),
                &mpath,
                format!("`{h}` is inside the zone but has no address; add it under `hosts`"),
            );
        }
        mx.push(MxHost {
            host: format!("{h}."),
            preference: m.preference,
        });
    }
    if let Some(p) = provider {
        for (i, s) in p.servers.iter().enumerate() {
            let spath = format!("provider.{}.server[{i}].host", p.id);
            if cnames.contains(&s.host) {
                cx.err(
                    &dns_span,
                    &spath,
                    format!(
                        "`{}` is a CNAME that {path} creates; an SRV target must not be an alias (RFC 2782)",
                        s.host
                    ),
                );
            } else if in_our_zones(&s.host) && !has_address(&s.host) {
                cx.err(
                    &dns_span,
                    &spath,
                    format!(
                        "`{}` is inside the zone of `{domain}` but has no address; add it under {path}.hosts",
                        s.host
                    ),
                );
            }
        }
    }
    let spf = txt_field(cx, dns.spf.as_ref(), &format!("{path}.spf"), |v| {
        (v == "v=spf1" || v.starts_with("v=spf1 "))
            .then_some(())
            .ok_or("must start with `v=spf1` (RFC 7208 §4.5)".into())
    });
    let dmarc = txt_field(cx, dns.dmarc.as_ref(), &format!("{path}.dmarc"), check_dmarc);
    let tls_rpt = txt_field(cx, dns.tls_rpt.as_ref(), &format!("{path}.tls_rpt"), |v| {
        let ok = v.split(',').all(|u| {
            let u = u.trim();
            u.starts_with("mailto:") && u.len() > 7 || u.starts_with("https://") && u.len() > 8
        });
        ok.then_some(())
            .ok_or("must be `mailto:` or `https://` report URIs, comma separated (RFC 8460 §3)".into())
    });
    let transfer_to = cx.secondaries(&dns.transfer_to, &format!("{path}.transfer_to"));
    let serial = dns.serial.as_ref().map(|s| *s.get_ref());
    (cx.diags.len() == errors_before).then(|| DnsSettings {
        nameservers,
        hostmaster: dns.hostmaster.as_ref().map(|h| h.get_ref().clone()),
        ttl,
        negative_ttl,
        serial,
        zones,
        autoconfig,
        mx,
        spf,
        dmarc,
        tls_rpt,
        hosts,
        transfer_to,
    })
}

/// Host labels that point at mailconf's web server (autoconfig, Autodiscover, MTA-STS policy).
pub const WEB_LABELS: [&str; 3] = ["autoconfig", "autodiscover", "mta-sts"];

fn txt_field(
    cx: &mut Ctx,
    v: Option<&S<String>>,
    path: &str,
    check: impl Fn(&str) -> Result<(), String>,
) -> Option<String> {
    let v = v?;
    let s = v.get_ref().trim();
    if let Err(e) = check(s) {
        cx.err(&v.span(), path, e);
    }
    if s.chars().any(char::is_control) {
        cx.err(&v.span(), path, "must not contain control characters");
    } else if !s.is_ascii() {
        // SPF, DMARC and TLS-RPT are ASCII protocols: domains in them are A-labels (xn--…).
        cx.err(
            &v.span(),
            path,
            "must be ASCII: write international domain names in their xn-- form",
        );
    }
    Some(s.to_string())
}

fn check_dmarc(v: &str) -> Result<(), String> {
    let mut tags = v.split(';').map(str::trim).filter(|t| !t.is_empty());
    if tags.next().map(|t| t.replace(' ', "")) != Some("v=DMARC1".into()) {
        return Err("must start with `v=DMARC1` (RFC 7489 §6.4)".into());
    }
    match tags.next() {
        Some(t) if t.starts_with("p=") && ["none", "quarantine", "reject"].contains(&t[2..].trim()) => Ok(()),
        _ => Err("`p=none|quarantine|reject` must follow `v=DMARC1` (RFC 7489 §6.4)".into()),
    }
}

fn mta_sts(cx: &mut Ctx, path: &str, m: &S<raw::MtaSts>, dns: Option<&DnsSettings>) -> Option<MtaSts> {
    let span = m.span();
    let m = m.get_ref();
    let errors_before = cx.diags.len();
    let mode = m.mode.get_ref().clone();
    if !["enforce", "testing", "none"].contains(&mode.as_str()) {
        cx.err(
            &m.mode.span(),
            format!("{path}.mode"),
            format!("`{mode}` is not one of enforce, testing, none (RFC 8461 §3.2)"),
        );
    }
    let max_age = m.max_age.as_ref().map_or(DEFAULT_MTA_STS_MAX_AGE, |a| *a.get_ref());
    if let Some(a) = &m.max_age
        && *a.get_ref() > 31_557_600
    {
        cx.err(
            &a.span(),
            format!("{path}.max_age"),
            "must be at most 31557600 seconds (RFC 8461 §3.2)",
        );
    }
    let mx: Vec<String> = match &m.mx {
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let v = p.get_ref();
                let (wild, rest) = v.strip_prefix("*.").map_or((false, v.as_str()), |r| (true, r));
                match to_ascii_domain(rest) {
                    Ok(h) => Some(if wild { format!("*.{h}") } else { h }),
                    Err(e) => {
                        cx.err(&p.span(), format!("{path}.mx[{i}]"), e);
                        None
                    }
                }
            })
            .collect(),
        None => dns
            .map(|d| {
                d.mx.iter()
                    .filter(|m| m.host != ".")
                    .map(|m| m.host.trim_end_matches('.').to_string())
                    .collect()
            })
            .unwrap_or_default(),
    };
    if mx.is_empty() && cx.diags.len() == errors_before {
        cx.err(
            &span,
            format!("{path}.mx"),
            "no MX hosts: list them here or under dns.mx",
        );
    }
    (cx.diags.len() == errors_before).then_some(MtaSts { mode, max_age, mx })
}
