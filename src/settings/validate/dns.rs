//! `[domain.dns]`: the records a domain publishes and the zones that hold them.

use std::net::IpAddr;
use std::ops::Range;

use super::{Ctx, FieldPath};
use crate::names::{relative_to, zone_of};
use crate::settings::names::to_ascii_domain;
use crate::settings::raw::{self, S};
use crate::settings::{DnsSettings, MxHost, Provider, WebHost};
use crate::vocab::{UA_AUTO_CONFIG, WEB_LABELS};

const DEFAULT_TTL: u32 = 3600;
const DEFAULT_NEGATIVE_TTL: u32 = 300;

/// Parse a name written relative to the domain (`_tcp`, `@`, `autoconfig`) or absolute under it.
fn relative_name(cx: &mut Ctx, v: &str, span: &Range<usize>, path: impl FieldPath, domain: &str) -> Option<String> {
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

pub(super) fn dns_settings(
    cx: &mut Ctx,
    path: impl FieldPath,
    domain: &str,
    dns: &S<raw::Dns>,
    provider: Option<&Provider>,
) -> Option<DnsSettings> {
    let dns_span = dns.span();
    let dns = dns.get_ref();
    let errors_before = cx.diags.len();
    let mut nameservers = Vec::new();
    for (i, ns) in dns.nameservers.get_ref().iter().enumerate() {
        if let Some(h) = cx.host(ns, format_args!("{path}.nameservers[{i}]")) {
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
        if let Some(rel) = relative_name(cx, z.get_ref(), &z.span(), format_args!("{path}.zones[{i}]"), domain) {
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
    let addrs = cx.ips(&dns.autoconfig_addresses, format_args!("{path}.autoconfig_addresses"));
    let autoconfig = match (&dns.autoconfig_cname, addrs.is_empty()) {
        (Some(c), true) => cx
            .host(c, format_args!("{path}.autoconfig_cname"))
            .map(|h| WebHost::Cname(cx.intern.strs.get(&format!("{h}.")))),
        (Some(c), false) => {
            cx.err(
                &c.span(),
                format!("{path}.autoconfig_cname"),
                "give either autoconfig_addresses or autoconfig_cname, not both",
            );
            None
        }
        (None, false) => Some(WebHost::Addresses(cx.intern.ips.get(&addrs))),
        (None, true) => None,
    };
    // The web labels this domain publishes as CNAMEs with `autoconfig_cname` (`ua-auto-config`
    // only when its provider publishes PACC).
    let pacc = provider.is_some_and(|p| p.pacc);
    let web_labels: Vec<&str> = WEB_LABELS.into_iter().chain(pacc.then_some(UA_AUTO_CONFIG)).collect();
    if let (Some(WebHost::Cname(_)), Some(z)) = (&autoconfig, zones.iter().find(|z| web_labels.contains(&z.as_str()))) {
        cx.err(
            &dns_span,
            format!("{path}.zones"),
            format!("`{z}.{domain}` cannot be both a zone apex and a CNAME; use autoconfig_addresses"),
        );
    }
    let cnames: Vec<String> = match &autoconfig {
        Some(WebHost::Cname(_)) => web_labels.iter().map(|l| format!("{l}.{domain}")).collect(),
        _ => Vec::new(),
    };
    let mut hosts: Vec<(String, Vec<IpAddr>)> = Vec::new();
    for (key, list) in &dns.hosts {
        let hpath = format_args!("{path}.hosts.{key}");
        if let Some(rel) = relative_name(cx, key, &list.span(), hpath, domain) {
            let fq = if rel.is_empty() {
                domain.to_string()
            } else {
                format!("{rel}.{domain}")
            };
            if cnames.contains(&fq) {
                cx.err(
                    &list.span(),
                    hpath,
                    format!("`{fq}` is a CNAME (autoconfig_cname) and cannot have addresses"),
                );
            }
            let ips = cx.ips(list.get_ref(), hpath);
            hosts.push((rel, ips));
        }
    }
    let has_address = |host: &str| relative_to(host, domain).is_some_and(|rel| hosts.iter().any(|(h, _)| *h == rel));
    let in_our_zones = |host: &str| relative_to(host, domain).is_some_and(|rel| zone_of(&rel, &zones).is_some());
    let mut mx = Vec::new();
    for (i, m) in dns.mx.iter().enumerate() {
        let mpath = format_args!("{path}.mx[{i}].host");
        let m = m.get_ref();
        if m.host.get_ref() == "." {
            if dns.mx.len() > 1 || m.preference != 0 {
                cx.err(
                    &m.host.span(),
                    mpath,
                    "the null MX `.` (RFC 7505) must be the only MX, with preference 0",
                );
            }
            mx.push(MxHost {
                host: ".".into(),
                preference: 0,
            });
            continue;
        }
        let Some(h) = cx.host(&m.host, mpath) else {
            continue;
        };
        if cnames.contains(&h) {
            cx.err(
                &m.host.span(),
                mpath,
                format!("`{h}` is a CNAME this config creates; an MX target must not be an alias (RFC 2181 §10.3)"),
            );
        } else if in_our_zones(&h) && !has_address(&h) {
            cx.err(
                &m.host.span(),
                mpath,
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
            let spath = format_args!("provider.{}.server[{i}].host", p.id);
            if cnames.contains(&s.host) {
                cx.err(
                    &dns_span,
                    spath,
                    format!(
                        "`{}` is a CNAME that {path} creates; an SRV target must not be an alias (RFC 2782)",
                        s.host
                    ),
                );
            } else if in_our_zones(&s.host) && !has_address(&s.host) {
                cx.err(
                    &dns_span,
                    spath,
                    format!(
                        "`{}` is inside the zone of `{domain}` but has no address; add it under {path}.hosts",
                        s.host
                    ),
                );
            }
        }
    }
    let spf = txt_field(cx, dns.spf.as_ref(), format_args!("{path}.spf"), |v| {
        (v == "v=spf1" || v.starts_with("v=spf1 "))
            .then_some(())
            .ok_or("must start with `v=spf1` (RFC 7208 §4.5)".into())
    });
    let dmarc = txt_field(cx, dns.dmarc.as_ref(), format_args!("{path}.dmarc"), check_dmarc);
    let tls_rpt = txt_field(cx, dns.tls_rpt.as_ref(), format_args!("{path}.tls_rpt"), |v| {
        let ok = v.split(',').all(|u| {
            let u = u.trim();
            u.starts_with("mailto:") && u.len() > 7 || u.starts_with("https://") && u.len() > 8
        });
        ok.then_some(())
            .ok_or("must be `mailto:` or `https://` report URIs, comma separated (RFC 8460 §3)".into())
    });
    let transfer_to = cx.secondaries(&dns.transfer_to, format_args!("{path}.transfer_to"));
    let serial = dns.serial.as_ref().map(|s| *s.get_ref());
    let i = cx.intern;
    let text = |v: Option<String>| v.map(|v| i.strs.get(&v));
    (cx.diags.len() == errors_before).then(|| DnsSettings {
        nameservers: i.names.get(&nameservers),
        hostmaster: dns.hostmaster.as_ref().map(|h| i.strs.get(h.get_ref())),
        ttl,
        negative_ttl,
        serial,
        zones: i.names.get(&zones),
        autoconfig,
        mx: i.mx.get(&mx),
        spf: text(spf),
        dmarc: text(dmarc),
        tls_rpt: text(tls_rpt),
        hosts: i.hosts.get(&hosts),
        transfer_to: i.addrs.get(&transfer_to),
        dnssec: dns.dnssec.as_ref().map(|d| *d.get_ref()),
    })
}

fn txt_field(
    cx: &mut Ctx,
    v: Option<&S<String>>,
    path: impl FieldPath,
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
