//! Raw TOML → [`Settings`], collecting every problem instead of stopping at the first.
//!
//! One file per table: [`server`] (`[server]`, TLS, ACME), [`provider`], [`domain`] (with
//! `mta_sts`), [`dns`] (`[domain.dns]`). This file holds the walk over the document and the
//! checks every table shares ([`Ctx`]).

mod dns;
mod domain;
mod provider;
mod server;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;

use super::diagnostic::{Diagnostic, Diagnostics, Locator};
use super::names::to_ascii_domain;
use super::raw::{self, S};
use super::{FileRef, Provider, Settings};

pub use dns::WEB_LABELS;
pub use provider::PLACEHOLDERS;
use provider::check_template;

/// The source being validated and the problems found so far.
pub(super) struct Ctx<'a> {
    loc: Locator<'a>,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    pub(super) fn err(&mut self, span: &Range<usize>, path: impl Into<String>, message: impl Into<String>) {
        let d = self.loc.at(span, path, message);
        self.diags.push(d);
    }

    pub(super) fn host(&mut self, v: &S<String>, path: &str) -> Option<String> {
        match to_ascii_domain(v.get_ref()) {
            Ok(h) => Some(h),
            Err(e) => {
                self.err(&v.span(), path, e);
                None
            }
        }
    }

    pub(super) fn ip(&mut self, v: &S<String>, path: &str) -> Option<IpAddr> {
        match v.get_ref().parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.err(&v.span(), path, format!("`{}` is not an IP address", v.get_ref()));
                None
            }
        }
    }

    pub(super) fn ips(&mut self, list: &[S<String>], path: &str) -> Vec<IpAddr> {
        list.iter()
            .enumerate()
            .filter_map(|(i, v)| self.ip(v, &format!("{path}[{i}]")))
            .collect()
    }

    /// Secondaries: `IP` (port 53) or `IP:PORT` (`[v6]:PORT`); the port is where NOTIFY goes.
    pub(super) fn secondaries(&mut self, list: &[S<String>], path: &str) -> Vec<SocketAddr> {
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

    pub(super) fn socket_addrs(&mut self, list: &[S<String>], path: &str) -> Vec<SocketAddr> {
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
    pub(super) fn file(&self, v: &S<String>, path: &str) -> FileRef {
        FileRef::new(v.get_ref().clone(), self.loc.at(&v.span(), path, ""))
    }

    pub(super) fn template(&mut self, v: &S<String>, path: &str) {
        if let Err(e) = check_template(v.get_ref()) {
            self.err(&v.span(), path, e);
        }
    }
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
    let server = server::server(&mut cx, &raw.server);
    let providers: Vec<Arc<Provider>> = raw
        .provider
        .iter()
        .filter_map(|(id, p)| provider::provider(&mut cx, id, p))
        .map(Arc::new)
        .collect();
    let mut domains = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut first_seen: HashMap<String, String> = HashMap::new();
    for (i, d) in raw.domain.iter().enumerate() {
        let dom = domain::domain(&mut cx, i, d, &raw.provider, &providers);
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
