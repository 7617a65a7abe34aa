//! The key rollover state of every zone that ever rolled its key (`state_dir/dnssec/rolls`):
//! which KSK generations sign, when the parent was seen serving the new DS, and since when
//! zones are signed with ZSKs. Written by `mailconf dnssec roll`/`retire`, read with the
//! settings; the key files themselves are `keystore`'s.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::dnssec::Epochs;
use super::keystore::key_dir;
use crate::settings::DnssecAlgorithm;

/// A zone's key rollover state (`Rolls`): which key generations sign it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Roll {
    /// The generation in force (0: the first key).
    pub generation: u32,
    /// A rollover is under way: generation + 1 is published and signs too.
    pub rolling: bool,
}

impl Roll {
    /// The key generations that sign the zone, the newest last.
    pub fn generations(self) -> impl Iterator<Item = u32> {
        std::iter::once(self.generation).chain(self.rolling.then_some(self.generation + 1))
    }
}

/// When `mailconf dnssec retire` first saw the parent serve the DS of key `generation` (the
/// new key of a rollover), and the TTL of the parent's DS set then: the old DS set may be held
/// by resolvers until `since + ttl`, and the old key retires only after that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DsSeen {
    pub generation: u32,
    /// Seconds since the Unix epoch.
    pub since: u64,
    pub ttl: u32,
}

impl DsSeen {
    /// From when the old key may retire.
    pub fn until(self) -> u64 {
        self.since + u64::from(self.ttl)
    }
}

/// The rollover state of every zone that ever rolled its key, from `state_dir/dnssec/rolls`
/// (written by `mailconf dnssec roll`/`retire`). A zone that never rolled is not in it: its key
/// is generation 0, and nothing about it changes. A few lines however many zones there are.
///
/// The file has a line per zone, `ZONE ALG GENERATION rolling|done`, and during a rollover whose
/// new DS the parent was seen to serve, a second line `ZONE ALG ds-seen GENERATION SINCE TTL`
/// (`DsSeen`). The sighting has a line of its own so that a `serve` older than it, which
/// reads only four-field lines, skips it with a warning and keeps the zone's rollover state.
///
/// One more line, `zsk-since TIME PERIOD K`, says since when zones are signed with ZSKs on the
/// schedule of signing epochs of PERIOD seconds and K epochs per ZSK ([`Rolls::record_zsk_since`]):
/// before that a zone's one key signed everything (or another schedule numbered the ZSKs), so
/// the KSK signs beside the ZSK for an epoch after it (`dnssec::Epochs::zsks`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Rolls {
    rolls: rustc_hash::FxHashMap<(Box<[u8]>, u8), Roll>,
    seen: rustc_hash::FxHashMap<(Box<[u8]>, u8), DsSeen>,
    zsk_since: Option<ZskSince>,
}

/// The `zsk-since` line of [`Rolls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ZskSince {
    time: u64,
    period: u64,
    k: u64,
}

/// The file name, in the key directory.
const ROLLS: &str = "rolls";

/// The second field of a `DsSeen` line.
const DS_SEEN: &str = "ds-seen";

impl Rolls {
    /// Read the state (empty without `state_dir` or file). Lines that do not parse are
    /// skipped with a warning.
    pub fn load(state_dir: Option<&Path>) -> Rolls {
        let Some(text) = state_dir.and_then(|d| std::fs::read_to_string(d.join("dnssec").join(ROLLS)).ok()) else {
            return Rolls::default();
        };
        Rolls::parse(&text)
    }

    fn parse(text: &str) -> Rolls {
        let mut out = Rolls::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let key = |origin: &str, alg: u8| (super::wire::lower_wire(origin), alg);
            let parsed = match f.as_slice() {
                ["zsk-since", time, period, k] => (|| {
                    out.zsk_since = Some(ZskSince {
                        time: time.parse().ok()?,
                        period: period.parse().ok()?,
                        k: k.parse().ok()?,
                    });
                    Some(())
                })(),
                [origin, alg, generation, phase] => (|| {
                    let rolling = match *phase {
                        "rolling" => true,
                        "done" => false,
                        _ => return None,
                    };
                    let generation = generation.parse().ok()?;
                    out.rolls
                        .insert(key(origin, alg.parse().ok()?), Roll { generation, rolling });
                    Some(())
                })(),
                [origin, alg, DS_SEEN, generation, since, ttl] => (|| {
                    let seen = DsSeen {
                        generation: generation.parse().ok()?,
                        since: since.parse().ok()?,
                        ttl: ttl.parse().ok()?,
                    };
                    out.seen.insert(key(origin, alg.parse().ok()?), seen);
                    Some(())
                })(),
                _ => None,
            };
            if parsed.is_none() {
                tracing::warn!(line, "a line of the DNSSEC rollover state does not parse; skipped");
            }
        }
        out
    }

    /// Since when ZSKs are served on the schedule of `epochs` (`None`: never yet, or on another
    /// schedule, whose generations are not these).
    pub fn zsk_since(&self, epochs: Epochs) -> Option<u64> {
        self.zsk_since
            .filter(|s| s.period == epochs.period() && s.k == epochs.zsk_epochs())
            .map(|s| s.time)
    }

    /// Record `now` as the time ZSKs were first served on the schedule of `epochs`, unless that
    /// schedule is recorded already: `serve` at its start and reloads, and `mailconf zone`
    /// (signed zone files) call this. A changed `dnssec_signature_lifetime` or
    /// `dnssec_zsk_lifetime` numbers the ZSKs anew, without a pre-publish step: recorded anew,
    /// the KSK then signs beside the new ZSK for an epoch, as after an upgrade.
    pub fn record_zsk_since(state_dir: &Path, now: u64, epochs: Epochs) -> anyhow::Result<()> {
        let mut rolls = Rolls::load(Some(state_dir));
        if rolls.zsk_since(epochs).is_none() {
            rolls.zsk_since = Some(ZskSince {
                time: now,
                period: epochs.period(),
                k: epochs.zsk_epochs(),
            });
            rolls.save(state_dir)?;
        }
        Ok(())
    }

    /// Where the state file is (its change time tells `serve` to look again).
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("dnssec").join(ROLLS)
    }

    /// The state of zone `origin` (lower-case wire name) signed with `algorithm`.
    pub fn get(&self, origin: &[u8], algorithm: DnssecAlgorithm) -> Option<Roll> {
        if self.rolls.is_empty() {
            return None;
        }
        self.rolls.get(&(Box::from(origin), algorithm.number())).copied()
    }

    /// The state of `origin`, generation 0 and not rolling if it never rolled.
    pub fn of(&self, origin: &[u8], algorithm: DnssecAlgorithm) -> Roll {
        self.get(origin, algorithm).unwrap_or(Roll {
            generation: 0,
            rolling: false,
        })
    }

    pub fn set(&mut self, origin: &[u8], algorithm: DnssecAlgorithm, roll: Roll) {
        self.rolls.insert((Box::from(origin), algorithm.number()), roll);
    }

    /// When the parent was first seen serving the DS of the key that rolls in (see `DsSeen`).
    pub fn ds_seen(&self, origin: &[u8], algorithm: DnssecAlgorithm) -> Option<DsSeen> {
        self.seen.get(&(Box::from(origin), algorithm.number())).copied()
    }

    /// Record (`Some`) or forget (`None`) a sighting of the new DS.
    pub fn set_ds_seen(&mut self, origin: &[u8], algorithm: DnssecAlgorithm, seen: Option<DsSeen>) {
        let key = (Box::from(origin), algorithm.number());
        match seen {
            Some(s) => self.seen.insert(key, s),
            None => self.seen.remove(&key),
        };
    }

    /// The zones (lower-case wire names) whose state differs between `self` and `other`. Only
    /// the keys in use count: a sighting of the parent's DS changes nothing that is served.
    pub fn changed<'a>(&'a self, other: &'a Rolls) -> impl Iterator<Item = &'a [u8]> + 'a {
        let one = self
            .rolls
            .iter()
            .filter(|(k, v)| other.rolls.get(*k) != Some(*v))
            .map(|(k, _)| &*k.0);
        let two = other
            .rolls
            .keys()
            .filter(|k| !self.rolls.contains_key(*k))
            .map(|k| &*k.0);
        one.chain(two)
    }

    /// The file's text: one line per zone and sighting, sorted.
    fn text(&self) -> String {
        let name = |origin: &[u8]| {
            super::wire::name_from_wire(origin)
                .to_ascii()
                .trim_end_matches('.')
                .to_ascii_lowercase()
        };
        let mut lines: Vec<String> = self
            .rolls
            .iter()
            .map(|((origin, alg), r)| {
                format!(
                    "{} {alg} {} {}",
                    name(origin),
                    r.generation,
                    if r.rolling { "rolling" } else { "done" }
                )
            })
            .chain(self.seen.iter().map(|((origin, alg), s)| {
                format!(
                    "{} {alg} {DS_SEEN} {} {} {}",
                    name(origin),
                    s.generation,
                    s.since,
                    s.ttl
                )
            }))
            .collect();
        lines.sort();
        lines.extend(
            self.zsk_since
                .map(|s| format!("zsk-since {} {} {}", s.time, s.period, s.k)),
        );
        lines.join("\n") + "\n"
    }

    /// Write the state: a temporary file, synced, renamed over the old one, the directory synced.
    pub fn save(&self, state_dir: &Path) -> anyhow::Result<()> {
        let dir = key_dir(state_dir)?;
        let tmp = dir.join(format!(".{ROLLS}.tmp-{}", std::process::id()));
        let path = dir.join(ROLLS);
        let written = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(self.text().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.with_context(|| format!("cannot write `{}`", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state file written before sightings of the parent's DS existed loads as it did; one
    /// with a sighting keeps it across save and load, and its zone lines stay the four fields
    /// an older `serve` reads (the sighting line has six, so such a `serve` skips it).
    #[test]
    fn rolls_files_without_sightings_still_load_and_sightings_round_trip() {
        let alg = DnssecAlgorithm::EcdsaP256Sha256;
        let a = crate::dns::wire::lower_wire("a.example");
        let b = crate::dns::wire::lower_wire("b.example");
        // Exactly what the previous version wrote.
        let old = Rolls::parse("a.example 13 0 rolling\nb.example 13 3 done\n");
        assert_eq!(
            old.get(&a, alg),
            Some(Roll {
                generation: 0,
                rolling: true
            })
        );
        assert_eq!(
            old.get(&b, alg),
            Some(Roll {
                generation: 3,
                rolling: false
            })
        );
        assert_eq!(old.ds_seen(&a, alg), None);
        assert_eq!(
            old.text(),
            "a.example 13 0 rolling\nb.example 13 3 done\n",
            "written back the same"
        );

        let mut new = old.clone();
        let seen = DsSeen {
            generation: 1,
            since: 1_767_225_600,
            ttl: 86_400,
        };
        new.set_ds_seen(&a, alg, Some(seen));
        assert_eq!(seen.until(), 1_767_312_000);
        assert_eq!(new.changed(&old).count(), 0, "a sighting changes no key in use");
        let text = new.text();
        assert_eq!(
            text,
            "a.example 13 0 rolling\na.example 13 ds-seen 1 1767225600 86400\nb.example 13 3 done\n"
        );
        assert!(
            text.lines()
                .all(|l| (l.split_whitespace().count() == 4) != l.contains(" ds-seen ")),
            "{text}"
        );
        let back = Rolls::parse(&text);
        assert_eq!(back, new);
        assert_eq!(back.ds_seen(&a, alg), Some(seen));
        assert_eq!(back.ds_seen(&a, DnssecAlgorithm::Ed25519), None, "per algorithm");
        assert_eq!(back.ds_seen(&b, alg), None);
        let mut forgot = back.clone();
        forgot.set_ds_seen(&a, alg, None);
        assert_eq!(forgot, old);
        // Lines that do not parse are skipped, the others kept.
        let bad = Rolls::parse(
            "a.example 13 0 rolling\na.example 13 ds-seen 1 soon 60\nb.example 13 x done\nb.example 13 ds-seen 1 5\n",
        );
        assert_eq!(bad.get(&a, alg), old.get(&a, alg));
        assert_eq!(bad.get(&b, alg), None);
        assert_eq!(bad.ds_seen(&a, alg), None);
    }
}
