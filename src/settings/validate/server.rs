//! `[server]`, `[server.tls]` and `[server.tls.acme]`.

use std::sync::Arc;

use super::Ctx;
use crate::settings::raw::{self, S};
use crate::settings::{
    AcmeChallenge, AcmeSettings, DnssecAlgorithm, ServerSettings, TlsSource, TsigAlgorithm, TsigKey,
};

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
    let (transfer_to, keyed) = cx.secondaries_keyed(&s.transfer_to, "server.transfer_to");
    let tsig = tsig_keys(cx, &s.tsig);
    let mut transfer_keys = std::collections::HashMap::new();
    for k in keyed {
        match tsig.iter().position(|t| t.name == k.key) {
            None => cx.err(
                &k.span,
                k.path,
                format!("no key `{}`: define it as [server.tsig.\"{}\"]", k.key, k.key),
            ),
            Some(i) => {
                if transfer_keys.insert(k.ip, i).is_some_and(|j| j != i) {
                    cx.err(
                        &k.span,
                        k.path,
                        format!("secondary {} is given two different keys", k.ip),
                    );
                }
            }
        }
    }
    let dnssec = s.dnssec.as_ref().is_some_and(|d| *d.get_ref());
    if let Some(d) = &s.dnssec
        && dnssec
        && s.state_dir.is_none()
    {
        cx.err(
            &d.span(),
            "server.dnssec",
            "needs `state_dir`: the signing keys are kept there across restarts",
        );
    }
    let dnssec_algorithm = match &s.dnssec_algorithm {
        None => DnssecAlgorithm::default(),
        Some(a) => {
            let found = DnssecAlgorithm::ALL
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(a.get_ref().trim()));
            if found.is_none() {
                cx.err(
                    &a.span(),
                    "server.dnssec_algorithm",
                    format!(
                        "unknown algorithm `{}`: `ecdsap256sha256` (13, the default) or `ed25519` (15)",
                        a.get_ref()
                    ),
                );
            }
            found.map_or(DnssecAlgorithm::default(), |(_, a)| *a)
        }
    };
    let dnssec_signature_lifetime = match at(&s.dnssec_signature_lifetime) {
        Some((span, n)) if !(LIFETIME_MIN..=LIFETIME_MAX).contains(&n) => {
            cx.err(
                &span,
                "server.dnssec_signature_lifetime",
                format!("must be {LIFETIME_MIN} to {LIFETIME_MAX} seconds (90 days)"),
            );
            0
        }
        Some((_, n)) => n,
        None => 0,
    };
    let dnssec_zsk_lifetime = match at(&s.dnssec_zsk_lifetime) {
        Some((span, n)) if !(LIFETIME_MIN..=ZSK_LIFETIME_MAX).contains(&n) => {
            cx.err(
                &span,
                "server.dnssec_zsk_lifetime",
                format!("must be {LIFETIME_MIN} to {ZSK_LIFETIME_MAX} seconds (365 days)"),
            );
            0
        }
        Some((_, n)) => n,
        None => 0,
    };
    let dnssec_cache_zones = match at(&s.dnssec_cache_zones) {
        Some((span, n)) if n == 0 || n > 10_000_000 => {
            cx.err(&span, "server.dnssec_cache_zones", "must be 1 to 10000000");
            0
        }
        Some((_, n)) => n as u32,
        None => 0,
    };
    ServerSettings {
        dnssec,
        dnssec_algorithm,
        dnssec_signature_lifetime,
        dnssec_zsk_lifetime,
        dnssec_cache_zones,
        dns_listen: cx.socket_addrs(&s.dns_listen, "server.dns_listen"),
        http_listen: cx.socket_addrs(&s.http_listen, "server.http_listen"),
        transfer_to,
        catalog: s.catalog.as_ref().and_then(|c| cx.host(c, "server.catalog")),
        tsig,
        transfer_keys,
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
    let mut positive = |v: Option<(std::ops::Range<usize>, u64)>, key: &str, default: u64, max: u64| match v {
        Some((span, n)) if n == 0 || n > max => {
            cx.err(&span, format!("server.tls.acme.{key}"), format!("must be 1 to {max}"));
            default
        }
        Some((_, n)) => n,
        None => default,
    };
    let orders_per_3h = positive(at(&a.orders_per_3h), "orders_per_3h", 300, 1_000_000);
    let retry_after = positive(at(&a.retry_after), "retry_after", 300, 86_400);
    let cert_cache = positive(at(&a.cert_cache), "cert_cache", 4096, 10_000_000);
    let per_domain = positive(
        at(&a.certs_per_registered_domain_7d),
        "certs_per_registered_domain_7d",
        50,
        1_000_000,
    );
    let per_certificate = positive(at(&a.names_per_certificate), "names_per_certificate", 1, 100);
    let challenge = match &a.challenge {
        None => AcmeChallenge::default(),
        Some(c) => {
            let found = AcmeChallenge::ALL.iter().find(|(n, _)| *n == c.get_ref().trim());
            if found.is_none() {
                cx.err(
                    &c.span(),
                    "server.tls.acme.challenge",
                    format!(
                        "unknown challenge `{}`: `tls-alpn-01` (the default) or `dns-01`",
                        c.get_ref()
                    ),
                );
            }
            found.map_or(AcmeChallenge::default(), |(_, c)| *c)
        }
    };
    (cx.diags.len() == errors_before).then(|| {
        Arc::new(AcmeSettings {
            directory: a.directory.get_ref().clone(),
            contact: a.contact.iter().map(|c| c.get_ref().clone()).collect(),
            cache_dir: a.cache_dir.get_ref().into(),
            ca_roots: Vec::new(),
            ca_roots_file,
            extra_names,
            orders_per_3h: orders_per_3h as u32,
            retry_after: std::time::Duration::from_secs(retry_after),
            cert_cache: cert_cache as usize,
            certs_per_registered_domain_7d: per_domain as u32,
            challenge,
            names_per_certificate: per_certificate as u32,
        })
    })
}

/// Bounds of `dnssec_signature_lifetime`: 10 s is for tests (validators may then hold expired
/// signatures); RRSIG times are 32-bit, and 90 days is already far more than anyone uses.
const LIFETIME_MIN: u64 = 10;
const LIFETIME_MAX: u64 = 90 * 86_400;
/// `dnssec_zsk_lifetime` at most: a year. It is rounded up to at least two signing epochs (one
/// signature lifetime), so any value from 10 s works.
const ZSK_LIFETIME_MAX: u64 = 365 * 86_400;

/// A number and where it is written.
fn at<T: Copy + Into<u64>>(v: &Option<S<T>>) -> Option<(std::ops::Range<usize>, u64)> {
    v.as_ref().map(|n| (n.span(), (*n.get_ref()).into()))
}

/// `[server.tls]` cert and key: only where they are; [`crate::settings::files`] reads them.
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

/// `[server.tsig.NAME]`: `algorithm` (default hmac-sha256) and `secret` (base64) or
/// `secret_file`. Messages name the key, never its secret.
fn tsig_keys(cx: &mut Ctx, keys: &std::collections::BTreeMap<String, S<raw::Tsig>>) -> Vec<TsigKey> {
    let mut out: Vec<TsigKey> = Vec::new();
    for (name, t) in keys {
        let path = format!("server.tsig.\"{name}\"");
        let errors_before = cx.diags.len();
        let key_name = super::tsig_key_name(name).unwrap_or_else(|e| {
            cx.err(&t.span(), &path, e);
            String::new()
        });
        if !key_name.is_empty() && out.iter().any(|k| k.name == key_name) {
            cx.err(&t.span(), &path, format!("key `{key_name}` is defined twice"));
        }
        let span = t.span();
        let t = t.get_ref();
        let algorithm = match &t.algorithm {
            None => TsigAlgorithm::HmacSha256,
            Some(a) => {
                let wanted = a.get_ref().trim_end_matches('.').to_ascii_lowercase();
                match TsigAlgorithm::ALL.iter().find(|(n, _)| *n == wanted) {
                    Some((_, alg)) => *alg,
                    None => {
                        cx.err(
                            &a.span(),
                            format!("{path}.algorithm"),
                            format!("`{}` is not hmac-sha256 or hmac-sha512", a.get_ref()),
                        );
                        TsigAlgorithm::HmacSha256
                    }
                }
            }
        };
        let (secret, secret_file) = match (&t.secret, &t.secret_file) {
            (Some(s), None) => match crate::settings::files::decode_secret(s.get_ref()) {
                Ok(b) => (b, None),
                Err(e) => {
                    cx.err(&s.span(), format!("{path}.secret"), e);
                    (Vec::new(), None)
                }
            },
            (None, Some(f)) => (Vec::new(), Some(cx.file(f, &format!("{path}.secret_file")))),
            (Some(s), Some(_)) => {
                cx.err(&s.span(), &path, "give either secret or secret_file, not both");
                (Vec::new(), None)
            }
            (None, None) => {
                cx.err(&span, &path, "needs secret (base64) or secret_file");
                (Vec::new(), None)
            }
        };
        if cx.diags.len() == errors_before {
            out.push(TsigKey {
                name: key_name,
                algorithm,
                secret,
                secret_file,
            });
        }
    }
    out
}
