//! `mailconf acme status`: what the cache holds for each configured certificate, read from
//! `cache_dir` alone (no running server needed), and when the next order is allowed. Each file
//! is checked as a handshake would load it (O(certificates), key parsing included).

use std::fmt::Write;

use super::{budget, cache, clock, domains};
use crate::settings::{AcmeSettings, Settings};

/// One line per certificate (only those with a name in `domain`, when given), then the budget.
/// The second value: how many have no valid certificate.
pub fn report(settings: &Settings, cfg: &AcmeSettings, domain: Option<&str>, now: i64) -> (String, usize) {
    let domain = domain.map(|d| d.trim_end_matches('.').to_ascii_lowercase());
    let mut out = String::new();
    let mut missing = 0;
    let saved = std::fs::read_to_string(cfg.cache_dir.join(super::bundle::FILE)).unwrap_or_default();
    let (groups, _) = super::bundle::bundle(super::names_for(settings), cfg.names_per_certificate as usize, &saved);
    for names in groups {
        let names: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        if let Some(d) = &domain
            && !names
                .iter()
                .any(|n| n == d || n.split_once('.').is_some_and(|(_, parent)| parent == d))
        {
            continue;
        }
        let file = cache::cert_file(&cfg.cache_dir, &names, &cfg.directory);
        // The whole check a handshake makes (the key too): what would not be served says so.
        let validity = match cache::read(&file) {
            Ok(Some(pem)) => cache::check(&pem).and_then(|v| cache::load(&pem).map(|_| Some(v))),
            Ok(None) => Ok(None),
            Err(_) => Err(cache::Unusable::Unreadable),
        };
        // The CA's window, where the server has read one (ARI) for this certificate; else two
        // thirds of its lifetime, as the server does without ARI.
        let ari = match validity {
            Ok(Some((_, na))) => cache::Renewal::load(&cache::renewal_file(&cfg.cache_dir, &names, &cfg.directory))
                .filter(|r| r.not_after == na),
            _ => None,
        };
        let renew_at = |nb: i64, na: i64| ari.map_or_else(|| cache::renew_at(nb, na), |r| r.at);
        let to_order = !matches!(validity, Ok(Some((nb, na))) if renew_at(nb, na) > now);
        let state = match validity {
            Err(why) => {
                missing += 1;
                format!("unusable ({why}), ordered again by the server")
            }
            Ok(Some((nb, na))) if na > now => {
                let renew = renew_at(nb, na);
                let mut when = if renew <= now {
                    "renewal due".to_string()
                } else {
                    format!("renews {}", clock::iso(renew))
                };
                match ari {
                    Some(r) => {
                        let _ = write!(
                            when,
                            " (the CA's window {} to {})",
                            clock::iso(r.start),
                            clock::iso(r.end)
                        );
                    }
                    None => when.push_str(" (two thirds of its lifetime)"),
                }
                format!("valid until {}, {when}", clock::iso(na))
            }
            Ok(Some((_, na))) => {
                missing += 1;
                format!("expired {}", clock::iso(na))
            }
            Ok(None) => {
                missing += 1;
                "none yet".to_string()
            }
        };
        let failed = if to_order {
            cache::Failed::load(&cache::failed_file(&cfg.cache_dir, &names, &cfg.directory))
        } else {
            None
        };
        let failed = failed.map_or_else(String::new, |f| {
            let next = if f.due <= now {
                "next try now".to_string()
            } else {
                format!("next try {}", clock::iso(f.due))
            };
            format!("; {} failed order(s), {next}: {}", f.failures, f.error)
        });
        let _ = writeln!(out, "{}: {state}{failed}", names.join(" "));
    }
    let saved = std::fs::read_to_string(cfg.cache_dir.join(budget::FILE)).unwrap_or_default();
    let b = budget::Budget::from_text(cfg.orders_per_3h, &saved);
    let next = b.next_at(now as f64).ceil() as i64;
    let _ = writeln!(
        out,
        "order budget: {:.0} of {} per 3 h left, next order allowed {}",
        b.available(now as f64).floor(),
        cfg.orders_per_3h,
        if next <= now {
            "now".to_string()
        } else {
            clock::iso(next)
        }
    );
    if let Some(d) = &domain {
        let saved = std::fs::read_to_string(cfg.cache_dir.join(domains::FILE)).unwrap_or_default();
        let b = domains::DomainBudgets::from_text(cfg.certs_per_registered_domain_7d, &saved);
        let registered = domains::registered(d);
        let next = b.next_at(std::slice::from_ref(&registered), now);
        let _ = writeln!(
            out,
            "registered domain {registered}: {:.0} of {} new certificates per 7 days left, next allowed {}",
            b.available(&registered, now).floor(),
            cfg.certs_per_registered_domain_7d,
            if next <= now {
                "now".to_string()
            } else {
                clock::iso(next)
            }
        );
    }
    (out, missing)
}
