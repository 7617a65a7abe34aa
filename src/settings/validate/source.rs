//! `[[source]]` and its `[source.domain]` defaults.

use std::sync::Arc;
use std::time::Duration;

use super::{Ctx, dns, domain, provider};
use crate::settings::Provider;
use crate::settings::raw::{self, S};
use crate::settings::source::{SOURCE_DEFAULTS_DOMAIN, SourceKind, SourceSettings, SourceUrl};

const DEFAULT_REFRESH: u64 = 60;
const DEFAULT_TIMEOUT: u64 = 10;

pub(super) fn sources(
    cx: &mut Ctx,
    list: &[S<raw::Source>],
    raw_providers: &RawProviders,
    providers: &[Arc<Provider>],
) -> Vec<Arc<SourceSettings>> {
    let mut out: Vec<Arc<SourceSettings>> = Vec::new();
    for (i, s) in list.iter().enumerate() {
        if let Some(src) = source(cx, i, s, raw_providers, providers) {
            if let Some(prev) = out.iter().find(|p| p.name == src.name) {
                let span = s.get_ref().name.as_ref().map_or(s.span(), |n| n.span());
                cx.err(
                    &span,
                    format!("source[{i}].name"),
                    format!("source name `{}` is used twice", prev.name),
                );
                continue;
            }
            out.push(Arc::new(src));
        }
    }
    out
}

type RawProviders = std::collections::BTreeMap<String, S<raw::Provider>>;

fn source(
    cx: &mut Ctx,
    i: usize,
    s: &S<raw::Source>,
    raw_providers: &RawProviders,
    providers: &[Arc<Provider>],
) -> Option<SourceSettings> {
    let span = s.span();
    let s = s.get_ref();
    let path = format!("source[{i}]");
    let errors_before = cx.diags.len();
    if !cfg!(feature = "sources") {
        cx.err(
            &span,
            path.clone(),
            "this mailconf was built without database sources (cargo feature `sources`)",
        );
    }
    let name = match &s.name {
        Some(n) => {
            let v = n.get_ref();
            let ok = !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                cx.err(
                    &n.span(),
                    format!("{path}.name"),
                    "must be 1 to 64 letters, digits, `-` or `_` (it names the file kept in state_dir)",
                );
            }
            v.clone()
        }
        None => format!("source{i}"),
    };
    let kind = match s.kind.get_ref().as_str() {
        "postgres" | "postgresql" => Some(SourceKind::Postgres),
        "mysql" | "mariadb" => Some(SourceKind::Mysql),
        "sqlite" => Some(SourceKind::Sqlite),
        other => {
            cx.err(
                &s.kind.span(),
                format!("{path}.kind"),
                format!("`{other}` is not one of postgres, mysql, sqlite"),
            );
            None
        }
    };
    let url = match (&s.url, &s.url_file) {
        (Some(u), None) => {
            if let Some(k) = kind
                && !k.schemes().iter().any(|p| u.get_ref().starts_with(p))
            {
                // The URL itself is never echoed: it may hold a password.
                cx.err(
                    &u.span(),
                    format!("{path}.url"),
                    format!("a {} URL starts with {}", k.word(), k.schemes().join(" or ")),
                );
            }
            Some(SourceUrl::Inline(u.get_ref().clone()))
        }
        (None, Some(f)) => Some(SourceUrl::File(f.get_ref().into())),
        (Some(u), Some(_)) => {
            cx.err(
                &u.span(),
                format!("{path}.url"),
                "give either url or url_file, not both",
            );
            None
        }
        (None, None) => {
            cx.err(
                &span,
                path.clone(),
                "needs a connection: url, or url_file (a file holding the URL, to keep a password out of this file)",
            );
            None
        }
    };
    if s.query.get_ref().trim().is_empty() {
        cx.err(&s.query.span(), format!("{path}.query"), "must not be empty");
    }
    let provider = s.provider.as_ref().and_then(|p| {
        let found = providers.iter().find(|x| &x.id == p.get_ref()).cloned();
        if found.is_none() {
            cx.err(
                &p.span(),
                format!("{path}.provider"),
                format!("unknown provider \"{}\"", p.get_ref()),
            );
        }
        found
    });
    let secs = |cx: &mut Ctx, v: &Option<S<u64>>, field: &str, default: u64| match v {
        Some(v) if *v.get_ref() == 0 || *v.get_ref() > 86_400 => {
            cx.err(&v.span(), format!("{path}.{field}"), "must be 1 to 86400 seconds");
            default
        }
        Some(v) => *v.get_ref(),
        None => default,
    };
    let refresh = secs(cx, &s.refresh, "refresh", DEFAULT_REFRESH);
    let timeout = secs(cx, &s.timeout, "timeout", DEFAULT_TIMEOUT);
    if let Some(l) = &s.listen {
        let v = l.get_ref();
        let ident = !v.is_empty()
            && v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !v.as_bytes()[0].is_ascii_digit();
        if kind != Some(SourceKind::Postgres) {
            cx.err(&l.span(), format!("{path}.listen"), "LISTEN is PostgreSQL only");
        } else if !ident {
            cx.err(
                &l.span(),
                format!("{path}.listen"),
                "a channel name of lower-case letters, digits and `_` (at most 63)",
            );
        }
    }
    let own = s.domain.as_ref().and_then(|d| {
        let d = d.get_ref();
        let dpath = format!("{path}.domain");
        let r = provider::RawServices {
            documentation: &d.documentation,
            caldav: &d.caldav,
            carddav: &d.carddav,
            oauth2: &d.oauth2,
        };
        if let (Some(o), None) = (&d.oauth2, &s.provider) {
            // Rows may name any provider: whether theirs list oauth2 is not known here.
            cx.err(
                &o.span(),
                format!("{dpath}.oauth2"),
                "needs the source's `provider`, whose servers must list auth = [\"oauth2\"]",
            );
        }
        let raw_provider = s
            .provider
            .as_ref()
            .and_then(|p| raw_providers.get(p.get_ref()))
            .map(|p| p.get_ref());
        domain::own_services(cx, &r, &dpath, raw_provider, provider.as_deref())
    });
    let (dns, mta_sts) = match &s.domain {
        Some(d) => {
            let dpath = format!("{path}.domain");
            let d = d.get_ref();
            let dns = d.dns.as_ref().and_then(|dns| {
                dns::dns_settings(
                    cx,
                    &format!("{dpath}.dns"),
                    SOURCE_DEFAULTS_DOMAIN,
                    dns,
                    provider.as_deref(),
                )
            });
            let mta_sts = d
                .mta_sts
                .as_ref()
                .and_then(|m| domain::mta_sts(cx, &format!("{dpath}.mta_sts"), m, dns.as_ref()));
            (dns.map(Arc::new), mta_sts.map(Arc::new))
        }
        None => (None, None),
    };
    if cx.diags.len() != errors_before {
        return None;
    }
    Some(SourceSettings {
        name,
        kind: kind?,
        url: url?,
        query: s.query.get_ref().clone(),
        provider,
        refresh: Duration::from_secs(refresh),
        timeout: Duration::from_secs(timeout),
        listen: s.listen.as_ref().map(|l| l.get_ref().clone()),
        dns,
        mta_sts,
        own,
    })
}
