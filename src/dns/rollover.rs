//! DNSSEC key work for the command line: the keys made ahead of `mailconf zone`, the DS records
//! the parent zones need (`mailconf zone --format ds`), and key rollovers (`mailconf dnssec roll`
//! and `retire`); with the record of when zones were first signed with ZSKs, which `serve` keeps
//! too.

use std::net::SocketAddr;

use tracing::warn;

use super::{dnssec, keystore, parent, rolls, tsig, wire};
use crate::settings::Settings;

/// Record, once per ZSK schedule, when zones were first signed with ZSKs on it
/// (`rolls::Rolls::record_zsk_since`): for settings with signed domains and a `state_dir`.
/// If it cannot be written, the KSKs go on signing everything beside the ZSKs (still valid),
/// and the log says why.
pub(super) fn record_zsk_since(settings: &Settings) {
    let Some(dir) = settings.server.state_dir.as_deref() else {
        return;
    };
    if !settings.domains.iter().any(|d| settings.signed(d).is_some()) {
        return;
    }
    let epochs = dnssec::Epochs::new(
        settings.server.dnssec_signature_lifetime,
        settings.server.dnssec_zsk_lifetime,
    );
    if let Err(e) = rolls::Rolls::record_zsk_since(dir, tsig::now(), epochs) {
        warn!(error = %format!("{e:#}"), "cannot record the start of ZSK signing: the KSKs keep signing every RRset too");
    }
}

/// Make the keys of the signed zones of `settings` (or of mail domain name `only`) that have
/// none, in batches (`keystore`): for `mailconf zone`, before it reads them one by one.
pub fn make_keys_for(settings: &Settings, only: Option<&str>) -> anyhow::Result<()> {
    let Some(dir) = settings.server.state_dir.as_deref() else {
        return Ok(());
    };
    let origins = settings.domains.iter().flat_map(|d| {
        let alg = settings.signed(d);
        d.names()
            .filter(move |n| only.is_none_or(|o| o == *n))
            .flat_map(move |name| {
                alg.into_iter()
                    .flat_map(move |alg| crate::records::catalog::zone_origins(d, name).map(move |o| (o, alg)))
            })
    });
    keystore::make_keys(dir, origins, || false)?;
    Ok(())
}

/// The signed zones of `settings` (or of the mail domain name `only`) whose parent is not one
/// of our zones: the zones whose DS the registrar holds. Origin (ASCII), wire name, TTL and
/// algorithm of each.
fn registrar_zones(
    settings: &Settings,
    only: Option<&str>,
) -> Vec<(String, Box<[u8]>, u32, crate::settings::DnssecAlgorithm)> {
    let mut out = Vec::new();
    for d in &settings.domains {
        let Some(alg) = settings.signed(d) else { continue };
        for name in d.names().filter(|n| only.is_none_or(|o| o == *n)) {
            let Some(dr) = crate::records::for_name(settings, d, name) else {
                continue;
            };
            let origins: Vec<Box<[u8]>> = dr.zones.iter().map(|z| wire::name_wire(&z.origin)).collect();
            for (z, origin) in dr.zones.iter().zip(&origins) {
                let delegated_by_us = origins
                    .iter()
                    .any(|o| o.len() < origin.len() && wire::suffix_at(origin, o).is_some());
                if !delegated_by_us {
                    out.push((z.origin.to_ascii(), origin.clone(), z.ttl, alg));
                }
            }
        }
    }
    out
}

/// One DS line (digest type 2) for `key` of zone `origin`.
fn ds_line(origin: &str, wire_origin: &[u8], ttl: u32, key: &dnssec::ZoneKey) -> String {
    let ds = key.ds(wire_origin);
    let hex: String = ds[4..].iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "{} {ttl} IN DS {} {} {} {hex}\n",
        origin.to_ascii_lowercase(),
        key.tag,
        ds[2],
        ds[3]
    )
}

/// `mailconf zone --format ds`: the DS records (digest type 2) the parent zones need for the
/// signed zones of `settings` (or of the mail domain name `only`), one line each, in zone-file
/// syntax; during a key rollover, one for each key. Zones delegated from another zone of ours
/// get their DS there and are not listed. Makes the keys that do not exist yet, as `serve`
/// would.
pub fn ds_records(settings: &Settings, only: Option<&str>) -> anyhow::Result<String> {
    let Some(dir) = settings.server.state_dir.as_deref() else {
        return Ok(String::new());
    };
    make_keys_for(settings, only)?;
    let rolls = rolls::Rolls::load(Some(dir));
    let mut text = String::new();
    for (origin, wire_origin, ttl, alg) in registrar_zones(settings, only) {
        for generation in rolls.of(&wire_origin, alg).generations() {
            let key = keystore::zone_key(dir, &origin, alg, generation)?;
            text.push_str(&ds_line(&origin, &wire_origin, ttl, &key));
        }
    }
    Ok(text)
}

/// `mailconf dnssec roll --domain NAME`: start a rollover of the key of each zone of `name`
/// whose DS the registrar holds. Makes the new key and records the rollover in `state_dir`;
/// `serve` then (within seconds, see `watch_rolls`) publishes both keys, signs with both, moves
/// the serial and NOTIFYs. Returns what the operator needs: the new DS records.
pub fn roll(settings: &Settings, name: &str) -> anyhow::Result<String> {
    let (dir, zones, mut rolls) = rollover_zones(settings, name)?;
    let mut text = String::new();
    for (origin, wire_origin, ttl, alg) in &zones {
        let now = rolls.of(wire_origin, *alg);
        if now.rolling {
            anyhow::bail!(
                "a rollover of {origin} is under way already: finish it with `mailconf dnssec retire --domain {name}`"
            );
        }
        let old = keystore::zone_key(dir, origin, *alg, now.generation)?;
        let new = keystore::zone_key(dir, origin, *alg, now.generation + 1)?;
        // Both generations published.
        rolls.set(
            wire_origin,
            *alg,
            rolls::Roll {
                generation: now.generation,
                rolling: true,
            },
        );
        rolls.set_ds_seen(wire_origin, *alg, None);
        text.push_str(&format!(
            "; {origin}: new key {} published beside key {}, both sign. New DS:\n",
            new.tag, old.tag
        ));
        text.push_str(&ds_line(origin, wire_origin, *ttl, &new));
    }
    rolls.save(dir)?;
    Ok(text)
}

/// How `retire` makes sure the parent serves the new DS.
pub enum ParentCheck {
    /// `--force`: it does not.
    Skip,
    /// Ask for each zone's DS (see `parent`): `server`, or the first name server of
    /// /etc/resolv.conf; with `recursion` (RD) for a resolver, without for a parent server.
    Ask {
        server: Option<SocketAddr>,
        recursion: bool,
        timeout: std::time::Duration,
    },
}

/// What `roll` or `retire` did.
#[derive(Debug)]
pub enum Outcome {
    /// Done; the text says what, with the DS records (in force, or new).
    Done(String),
    /// Nothing retired: the parent does not serve the new DS (the text gives it, and what the
    /// parent serves), or not for long enough yet (the text says until when). Running the same
    /// command later retires.
    NotYet(String),
}

/// `mailconf dnssec retire --domain NAME`: end the rollovers `roll` started for `name`: the
/// old keys are no longer published nor used (their files stay in `state_dir`).
///
/// Unless `check` is `Skip`, only once the parent serves the DS of every new key and has for
/// the TTL of its DS set (see `parent::judge`): a first sighting is recorded in the rollover
/// state and the retirement refused (`NotYet`) until then; a DS that is no longer served
/// forgets its sighting. Nothing else changes while refused.
pub fn retire(settings: &Settings, name: &str, check: &ParentCheck) -> anyhow::Result<Outcome> {
    let (dir, zones, mut rolls) = rollover_zones(settings, name)?;
    let mut keys = Vec::new();
    for (origin, wire_origin, _, alg) in &zones {
        let now = rolls.of(wire_origin, *alg);
        if !now.rolling {
            anyhow::bail!(
                "no rollover of {origin} is under way: start one with `mailconf dnssec roll --domain {name}`"
            );
        }
        let old = keystore::zone_key(dir, origin, *alg, now.generation)?;
        let new = keystore::zone_key(dir, origin, *alg, now.generation + 1)?;
        keys.push((now.generation, old, new));
    }
    let mut text = String::new();
    match check {
        ParentCheck::Skip => text.push_str("; --force: the parent's DS was not checked\n"),
        ParentCheck::Ask {
            server,
            recursion,
            timeout,
        } => {
            let resolver = crate::probe::net::Resolver {
                addr: match server {
                    Some(a) => *a,
                    None => parent::system_resolver()?,
                },
                timeout: *timeout,
                recursion: *recursion,
            };
            let resolver = &resolver;
            let before = rolls.clone();
            let mut ready = true;
            for ((origin, wire_origin, ttl, alg), (generation, _, new)) in zones.iter().zip(&keys) {
                let served = parent::ask(resolver, origin)?;
                let now = tsig::now();
                let seen = rolls.ds_seen(wire_origin, *alg);
                let verdict = parent::judge(wire_origin, &new.dnskey, generation + 1, &served, seen, now);
                let iso = |t: u64| crate::acme::clock::iso(t as i64);
                match verdict {
                    parent::Verdict::Missing => {
                        ready = false;
                        rolls.set_ds_seen(wire_origin, *alg, None);
                        text.push_str(&format!(
                            "; the parent does not serve the DS of the new key {} of {origin} (asked {}): give the registrar\n",
                            new.tag, resolver.addr
                        ));
                        text.push_str(&ds_line(origin, wire_origin, *ttl, new));
                        text.push_str(&served.describe(origin));
                    }
                    parent::Verdict::Waiting(seen) => {
                        ready = false;
                        rolls.set_ds_seen(wire_origin, *alg, Some(seen));
                        text.push_str(&format!(
                            "; the parent serves the new DS of {origin} since {}; resolvers may hold the old DS set until {} \
                             (TTL {} s): run `mailconf dnssec retire --domain {name}` again after {}\n",
                            iso(seen.since),
                            iso(seen.until()),
                            seen.ttl,
                            iso(seen.until())
                        ));
                    }
                    parent::Verdict::Ready(seen) => text.push_str(&format!(
                        "; the parent serves the new DS of {origin} since {}, longer than the old DS set's TTL ({} s)\n",
                        iso(seen.since),
                        seen.ttl
                    )),
                }
            }
            if !ready {
                if rolls != before {
                    rolls.save(dir)?;
                }
                return Ok(Outcome::NotYet(text));
            }
        }
    }
    for ((origin, wire_origin, ttl, alg), (generation, old, new)) in zones.iter().zip(&keys) {
        // The new key alone.
        rolls.set(
            wire_origin,
            *alg,
            rolls::Roll {
                generation: generation + 1,
                rolling: false,
            },
        );
        rolls.set_ds_seen(wire_origin, *alg, None);
        text.push_str(&format!(
            "; {origin}: key {} retired, key {} signs alone. DS in force:\n",
            old.tag, new.tag
        ));
        text.push_str(&ds_line(origin, wire_origin, *ttl, new));
    }
    rolls.save(dir)?;
    Ok(Outcome::Done(text))
}

/// The registrar zones of `name` for `roll`/`retire`, with `state_dir` and the rollover
/// state. An error when there is none.
#[allow(clippy::type_complexity)]
fn rollover_zones<'s>(
    settings: &'s Settings,
    name: &str,
) -> anyhow::Result<(
    &'s std::path::Path,
    Vec<(String, Box<[u8]>, u32, crate::settings::DnssecAlgorithm)>,
    rolls::Rolls,
)> {
    let dir =
        settings.server.state_dir.as_deref().ok_or_else(|| {
            anyhow::anyhow!("no [server] state_dir: DNSSEC keys are kept there, so no zone is signed")
        })?;
    let zones = registrar_zones(settings, Some(name));
    if zones.is_empty() {
        anyhow::bail!("`{name}` has no signed zone (dnssec is off for it, or it has no [domain.dns])");
    }
    Ok((dir, zones, rolls::Rolls::load(Some(dir))))
}
