//! Step 3: calendars, contacts and PACC — what a DAV client and a PACC client find.
//!
//! RFC 6764: `_caldavs._tcp` / `_carddavs._tcp` SRV, the TXT `path=` beside it, and the
//! `/.well-known/caldav|carddav` redirect, asked with PROPFIND (Depth 0) as Thunderbird's
//! CardDAVUtils does; the redirect must agree with SRV + TXT. PACC: the document at
//! `https://ua-auto-config.<domain>/.well-known/user-agent-configuration.json` must hash to one
//! of the `_ua-auto-config` TXT digests (draft-ietf-mailmaint-pacc-03), or clients reject it.
//! A domain that publishes none of this (and whose `--config` declares none) gets no finding.

use std::sync::Arc;

use hickory_server::proto::rr::{RData, RecordType};
use hyper::Method;

use super::http::{fetch, request};
use super::net::Resolver;
use super::{Level, Options, Report};
use crate::vocab::{self, DAV, PACC_PATH, PACC_TXT_LABEL, UA_AUTO_CONFIG};

pub(super) fn check(opts: &Options, resolver: &Resolver, tls: &Arc<rustls::ClientConfig>, report: &mut Report) {
    let d = &opts.domain;
    // What `--config` says this domain publishes: its own declaration, else its provider's.
    let domain = opts.settings.as_ref().and_then(|s| s.domain(d));
    for w in &DAV {
        let configured = domain.and_then(|dom| dom.services().dav(w.service).cloned());
        let name = format!("{}._tcp.{d}", w.srv_tls);
        let subject = format!("{name} SRV");
        let srv: Vec<(String, u16)> = match resolver.query(&name, RecordType::SRV) {
            Ok(a) => a
                .records
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(s) if !s.target.is_root() => {
                        Some((s.target.to_ascii().trim_end_matches('.').to_ascii_lowercase(), s.port))
                    }
                    _ => None,
                })
                .collect(),
            Err(e) => {
                report.add("dav", subject, Level::Fail, e, None);
                continue;
            }
        };
        let path: Option<String> = resolver.query(&name, RecordType::TXT).ok().and_then(|a| {
            a.records.iter().find_map(|r| match &r.data {
                RData::TXT(t) => {
                    let v: String = t.txt_data.iter().map(|s| String::from_utf8_lossy(s)).collect();
                    v.strip_prefix(vocab::DAV_TXT_PATH_PREFIX).map(str::to_string)
                }
                _ => None,
            })
        });
        if srv.is_empty() && configured.is_none() {
            continue; // not offered, not expected
        }
        let Some((host, port)) = srv.first().cloned() else {
            report.add(
                "dav",
                subject,
                Level::Fail,
                "the config offers this service but DNS says it is not offered",
                Some("publish the output of `mailconf zone` (or serve it)"),
            );
            continue;
        };
        let mut expected_url = format!(
            "https://{host}{}",
            if port == 443 { String::new() } else { format!(":{port}") }
        );
        match &path {
            Some(p) => {
                expected_url.push_str(p);
                report.add("dav", subject, Level::Pass, format!("{host}:{port}, path={p}"), None);
            }
            None => report.add(
                "dav",
                subject,
                Level::Warn,
                format!("{host}:{port} without a TXT `path=` (RFC 6764 §4): clients must guess the context path"),
                Some("publish TXT \"path=/context/path\" at the same name"),
            ),
        }
        if let Some(c) = &configured
            && (c.host != host || c.port != port || path.as_deref().is_some_and(|p| p != c.path))
        {
            report.add(
                "dav",
                format!("{name} config"),
                Level::Fail,
                format!("DNS says {expected_url}, the config says {}", c.url),
                Some("publish the output of `mailconf zone` (or serve it)"),
            );
        }
        // Thunderbird: PROPFIND Depth 0 on the domain's well-known URI, following the redirect.
        let url = format!("https://{d}{}", w.well_known);
        let mut req = request(
            Method::from_bytes(b"PROPFIND").expect("a token"),
            d,
            w.well_known,
            Some("application/xml; charset=utf-8"),
            PROPFIND,
        );
        req.headers_mut()
            .insert("depth", hyper::header::HeaderValue::from_static("0"));
        match fetch(opts, resolver, tls, true, d, req) {
            Ok(f) if matches!(f.status, 301 | 302 | 303 | 307 | 308) => {
                let loc = f.location.unwrap_or_default();
                if path.is_some() && loc.trim_end_matches('/') != expected_url.trim_end_matches('/') {
                    report.add(
                        "dav",
                        format!("PROPFIND {url}"),
                        Level::Fail,
                        format!("redirects to {loc}, but SRV + TXT say {expected_url}"),
                        Some("point both at the same context path"),
                    );
                } else {
                    report.add(
                        "dav",
                        format!("PROPFIND {url}"),
                        Level::Pass,
                        format!("{} to {loc}", f.status),
                        None,
                    );
                }
            }
            Ok(f) if f.status == 207 => report.add(
                "dav",
                format!("PROPFIND {url}"),
                Level::Warn,
                "answers 207 itself: RFC 6764 §5 says redirect, never serve the DAV endpoint here",
                None,
            ),
            Ok(f) => report.add(
                "dav",
                format!("PROPFIND {url}"),
                Level::Warn,
                format!("HTTP {}: clients that skip SRV find nothing", f.status),
                Some("redirect (307) to the context path, for PROPFIND as well as GET"),
            ),
            Err(e) => report.add("dav", format!("PROPFIND {url}"), Level::Warn, e, None),
        }
    }
    pacc(opts, resolver, tls, domain, report);
}

/// What Thunderbird's CardDAVUtils asks for.
const PROPFIND: &str =
    r#"<?xml version="1.0" encoding="utf-8"?><propfind xmlns="DAV:"><prop><current-user-principal/></prop></propfind>"#;

fn pacc(
    opts: &Options,
    resolver: &Resolver,
    tls: &Arc<rustls::ClientConfig>,
    domain: Option<&crate::settings::Domain>,
    report: &mut Report,
) {
    let d = &opts.domain;
    let name = format!("{PACC_TXT_LABEL}.{d}");
    let subject = format!("{name} TXT");
    let expected = domain.and_then(crate::pacc::body);
    let digests: Vec<String> = match resolver.query(&name, RecordType::TXT) {
        Ok(a) => a
            .records
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(t) => {
                    let v: String = t.txt_data.iter().map(|s| String::from_utf8_lossy(s)).collect();
                    vocab::pacc_txt_digest(&v).map(str::to_string)
                }
                _ => None,
            })
            .collect(),
        Err(e) => {
            report.add("pacc", subject, Level::Fail, e, None);
            return;
        }
    };
    if digests.is_empty() {
        if expected.is_some() {
            report.add(
                "pacc",
                subject,
                Level::Fail,
                "no `v=UAAC1; a=sha256; d=…` record: PACC clients reject the document",
                Some("publish the output of `mailconf zone` (or serve it)"),
            );
        }
        return;
    }
    report.add(
        "pacc",
        subject,
        Level::Pass,
        format!("{} digest record(s)", digests.len()),
        None,
    );
    let host = vocab::web_host(UA_AUTO_CONFIG, d);
    let url = format!("https://{host}{PACC_PATH}");
    let body = match fetch(
        opts,
        resolver,
        tls,
        true,
        &host,
        request(Method::GET, &host, PACC_PATH, None, ""),
    ) {
        Ok(f) if f.status == 200 => f.body,
        Ok(f) => {
            report.add(
                "pacc",
                url,
                Level::Fail,
                format!("HTTP {} (needs 200, no redirect)", f.status),
                None,
            );
            return;
        }
        Err(e) => {
            report.add("pacc", url, Level::Fail, e, None);
            return;
        }
    };
    let mine = crate::pacc::digest(&body);
    if !digests.contains(&mine) {
        report.add(
            "pacc",
            url,
            Level::Fail,
            format!("SHA-256 of the body ({mine}) matches none of the published digests: clients reject it"),
            Some("publish the digest of exactly the bytes served (mailconf serves both from one source)"),
        );
        return;
    }
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(doc) if doc["protocols"].is_object() && doc["info"]["provider"]["name"].is_string() => {
            let protocols: Vec<&str> = doc["protocols"]
                .as_object()
                .map_or_else(Vec::new, |m| m.keys().map(String::as_str).collect());
            report.add(
                "pacc",
                &url,
                Level::Pass,
                format!("matches its digest; protocols: {}", protocols.join(", ")),
                None,
            );
        }
        _ => {
            report.add(
                "pacc",
                &url,
                Level::Fail,
                "not a PACC document (protocols, info.provider.name)",
                None,
            );
            return;
        }
    }
    if let Some(want) = expected
        && want != body
    {
        report.add(
            "pacc",
            url,
            Level::Warn,
            "differs from what the config would serve",
            Some("reload mailconf with this config"),
        );
    }
}
