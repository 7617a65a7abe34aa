//! `[server]`, `[server.tls]` and `[server.tls.acme]`.

use std::sync::Arc;

use super::Ctx;
use crate::settings::raw::{self, S};
use crate::settings::{AcmeSettings, ServerSettings, TlsSource};

pub(super) fn server(cx: &mut Ctx, s: &raw::Server) -> ServerSettings {
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

fn acme(cx: &mut Ctx, a: &S<raw::Acme>) -> Option<Arc<AcmeSettings>> {
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
        Arc::new(AcmeSettings {
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
