//! `[[domain]]` and its `[domain.mta_sts]`.

use std::sync::Arc;

use super::{Ctx, FieldPath, dns, provider};
use crate::settings::names::to_ascii_domain;
use crate::settings::raw::{self, S};
use crate::settings::{DnsSettings, Domain, MtaSts, OwnServices, PLACEHOLDERS, Provider};

const DEFAULT_MTA_STS_MAX_AGE: u32 = 604_800;

pub(super) fn domain(
    cx: &mut Ctx,
    i: usize,
    d: &S<raw::Domain>,
    raw_providers: &std::collections::BTreeMap<String, S<raw::Provider>>,
    providers: &[Arc<Provider>],
) -> Option<Domain> {
    let d = d.get_ref();
    let path = format_args!("domain[{i}]");
    let errors_before = cx.diags.len();
    let name = cx.host(&d.name, format_args!("{path}.name"));
    let aliases: Vec<String> = d
        .aliases
        .iter()
        .enumerate()
        .filter_map(|(j, a)| cx.host(a, format_args!("{path}.aliases[{j}]")))
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
        .and_then(|dns| dns::dns_settings(cx, format_args!("{path}.dns"), &name, dns, provider.as_deref()));
    let mta_sts = d
        .mta_sts
        .as_ref()
        .and_then(|m| mta_sts(cx, format_args!("{path}.mta_sts"), m, dns.as_ref()));
    let own = own_services(
        cx,
        &provider::RawServices {
            documentation: &d.documentation,
            caldav: &d.caldav,
            carddav: &d.carddav,
            oauth2: &d.oauth2,
        },
        path,
        raw_providers.get(pname).map(|p| p.get_ref()),
        provider.as_deref(),
    );
    if cx.diags.len() != errors_before {
        return None;
    }
    Some(Domain {
        name,
        aliases,
        provider: provider?,
        dns: dns.map(Arc::new),
        mta_sts: mta_sts.map(Arc::new),
        own,
    })
}

/// `caldav`, `carddav`, `oauth2`, `documentation` on a domain (`path`): the provider's rules,
/// an `oauth2` issuer judged against `provider`'s servers. `None` when none is declared, so a
/// domain without them costs one empty pointer.
pub(super) fn own_services(
    cx: &mut Ctx,
    r: &provider::RawServices,
    path: impl FieldPath,
    raw_provider: Option<&raw::Provider>,
    provider: Option<&Provider>,
) -> Option<Arc<OwnServices>> {
    if r.documentation.is_none() && r.caldav.is_none() && r.carddav.is_none() && r.oauth2.is_none() {
        return None;
    }
    let default_user = raw_provider.map_or_else(|| PLACEHOLDERS[0].to_string(), provider::default_username);
    let own = provider::services(
        cx,
        r,
        &path.to_string(),
        &default_user,
        provider.map(provider::lists_oauth2),
    );
    Some(Arc::new(own))
}

fn strsim_best<'a>(needle: &str, candidates: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    candidates
        .map(|c| (strsim::jaro_winkler(needle, c), c))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

pub(super) fn mta_sts(
    cx: &mut Ctx,
    path: impl FieldPath,
    m: &S<raw::MtaSts>,
    dns: Option<&DnsSettings>,
) -> Option<MtaSts> {
    let span = m.span();
    let m = m.get_ref();
    let errors_before = cx.diags.len();
    let written = m.mode.get_ref();
    let mode = ["enforce", "testing", "none"].into_iter().find(|m| m == written);
    if mode.is_none() {
        let mode = written;
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
    let mx = cx.intern.names.get(&mx);
    (cx.diags.len() == errors_before)
        .then_some(())
        .and(mode)
        .map(|mode| MtaSts { mode, max_age, mx })
}
