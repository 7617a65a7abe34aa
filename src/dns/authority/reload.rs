//! The next snapshot: a reload of the settings (unchanged domains keep their built zones,
//! changed and new ones are built at once), the same snapshot with other ACME DNS-01
//! challenges, and the catalog zone that follows the previous one; with the zones whose serial
//! moved, for NOTIFY.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;

use super::{Authority, Changed, Served, Slot};
use crate::dns::catalog::{Catalog, Delta};
use crate::dns::tsig;
use crate::dns::wire;
use crate::settings::Settings;

impl Authority {
    /// The catalog that follows `old`'s (`old` is the previous snapshot): its serial keeps
    /// growing, and a change of members is journaled for IXFR and reported for NOTIFY.
    fn follow_catalog(&mut self, old: &Authority, changed: &mut Vec<Changed>) {
        let (Some(new), Some(prev)) = (self.catalog.take(), old.catalog.as_ref()) else {
            if let Some(c) = &self.catalog
                && old.catalog.is_none()
            {
                self.shared.journal.clear();
                changed.push(self.catalog_changed(c));
            }
            return;
        };
        if new.name != prev.name {
            self.shared.journal.clear();
            changed.push(self.catalog_changed(&new));
            self.catalog = Some(new);
            return;
        }
        let members = new.members.to_vec();
        let new = Catalog::new(&new.name, members, Some((prev.serial, prev.content)));
        if new.serial != prev.serial {
            // Merge the two sorted label lists.
            let (mut removed, mut added) = (Vec::new(), Vec::new());
            let (mut i, mut j) = (0, 0);
            while i < prev.members.len() || j < new.members.len() {
                let a = prev.members.get(i).map(|m| m.0);
                let b = new.members.get(j).map(|m| m.0);
                match (a, b) {
                    (Some(x), Some(y)) if x == y => {
                        i += 1;
                        j += 1;
                    }
                    (Some(x), y) if y.is_none_or(|y| x < y) => {
                        removed.extend(old.member_origin(prev, i).map(|o| (x, o)));
                        i += 1;
                    }
                    (_, Some(y)) => {
                        added.extend(self.member_origin(&new, j).map(|o| (y, o)));
                        j += 1;
                    }
                    _ => break,
                }
            }
            self.shared.journal.push(Delta {
                from: prev.serial,
                to: new.serial,
                removed,
                added,
            });
            changed.push(self.catalog_changed(&new));
        }
        self.catalog = Some(new);
    }

    fn catalog_changed(&self, c: &Catalog) -> Changed {
        Changed {
            origin: c.origin.clone(),
            serial: c.serial,
            transfer_to: self.settings.server.transfer_to.clone().into(),
        }
    }

    /// The next snapshot: unchanged domains keep their built zones; changed and new ones are
    /// built now. Returns the zones whose serial moved (or that are new), for NOTIFY.
    /// A signed zone whose signing epoch ended counts as changed (see `dnssec::Epochs`): the
    /// re-signing timer reloads the same settings for that.
    pub fn reload(&self, settings: Arc<Settings>) -> (Authority, Vec<Changed>) {
        let now = tsig::now();
        let mut new = Authority::new(settings, self.shared.clone(), &self.pacc);
        new.acme = self.acme.clone();
        let mut changed = Vec::new();
        new.follow_catalog(self, &mut changed);
        // Slots with a zone whose key rollover moved on (`mailconf dnssec roll`/`retire`).
        let rolled: rustc_hash::FxHashSet<u32> = new
            .rolls
            .changed(&self.rolls)
            .filter_map(|o| new.slot_index(o))
            .collect();
        for (key, &i) in new.index.iter() {
            let slot = &new.slots[i as usize];
            let old = self.index.get(key).map(|&j| &self.slots[j as usize]);
            let same = !rolled.contains(&i)
                && old.is_some_and(|o| self.inputs_equal(o, &new, slot) && !self.epoch_ended(o, now));
            if same {
                if let Some(z) = old.and_then(|o| o.zones.get()) {
                    let _ = slot.zones.set(z.clone());
                }
                continue;
            }
            // Changed or new: build now, following what was served before.
            self.rebuild(&new, old, slot, now, &mut changed);
        }
        (new, changed)
    }

    /// The next snapshot with the ACME DNS-01 challenges `entries` (host, TXT value) instead of
    /// the current ones: the zones of the mail domain names whose challenges changed are built
    /// again now (their serials move, for NOTIFY), every other zone is shared as it is. Also
    /// returns the hosts whose challenge is in a zone served here, with that zone's
    /// secondaries; a host outside every zone is left out (it cannot be validated by DNS-01).
    /// Costs O(names) pointer copies, not the zones.
    pub fn with_acme(
        &self,
        entries: &[(String, String)],
    ) -> (Authority, Vec<Changed>, HashMap<String, Arc<[SocketAddr]>>) {
        let now = tsig::now();
        let challenge = |host: &str| wire::lower_wire(&format!("{}.{host}", crate::vocab::ACME_CHALLENGE));
        let mut acme: FxHashMap<String, Vec<(String, String)>> = FxHashMap::default();
        let mut taken: Vec<&str> = Vec::new();
        for (host, value) in entries {
            if let Some(slot) = self.slot_of(&challenge(host)) {
                let domain = &self.settings.domains[slot.domain as usize];
                // A fixed `serial` cannot move, so secondaries would never transfer the record:
                // such a domain's names are validated with TLS-ALPN-01 (not placed).
                if domain.dns.as_ref().is_some_and(|d| d.serial.is_some()) {
                    continue;
                }
                taken.push(host);
                let name = domain.names().nth(slot.name as usize).unwrap_or(&domain.name);
                acme.entry(name.to_ascii_lowercase())
                    .or_default()
                    .push((host.clone(), value.clone()));
            }
        }
        let mut affected: Vec<&String> = acme
            .keys()
            .chain(self.acme.keys())
            .filter(|k| acme.get(*k) != self.acme.get(*k))
            .collect();
        affected.sort();
        affected.dedup();
        let affected: Vec<u32> = affected
            .iter()
            .filter_map(|name| self.index.get(&wire::lower_wire(name)).copied())
            .collect();
        let slots = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| Slot {
                domain: s.domain,
                name: s.name,
                zones: match s.zones.get() {
                    Some(z) if !affected.contains(&(i as u32)) => OnceLock::from(z.clone()),
                    _ => OnceLock::new(),
                },
            })
            .collect();
        let new = Authority {
            settings: self.settings.clone(),
            index: self.index.clone(),
            slots,
            shared: self.shared.clone(),
            pacc: self.pacc.clone(),
            rate_limit: self.rate_limit,
            catalog: self.catalog.clone(),
            rolls: self.rolls.clone(),
            acme: Arc::new(acme),
        };
        let mut changed = Vec::new();
        for i in affected {
            let (old, slot) = (&self.slots[i as usize], &new.slots[i as usize]);
            self.rebuild(&new, Some(old), slot, now, &mut changed);
        }
        let placed = taken
            .into_iter()
            .filter_map(|host| Some((host.to_string(), new.find_zone(&challenge(host))?.transfer_to.clone())))
            .collect();
        (new, changed, placed)
    }

    /// Did the settings a slot's records come from stay the same?
    fn inputs_equal(&self, old: &Slot, new_auth: &Authority, new: &Slot) -> bool {
        let a = &self.settings.domains[old.domain as usize];
        let b = &new_auth.settings.domains[new.domain as usize];
        // Settings share an unchanged domain with the previous snapshot: usually one pointer.
        old.name == new.name
            && (Arc::ptr_eq(a, b) || a == b)
            && self.settings.server.transfer_to == new_auth.settings.server.transfer_to
            && self.settings.signed(a) == new_auth.settings.signed(b)
            // Other signature or ZSK lifetimes number the epochs and ZSKs anew: rebuilt at once.
            && (self.settings.signed(a).is_none() || self.epochs() == new_auth.epochs())
    }

    /// Has the signing epoch of a signed zone of `slot` (built) ended by `now`?
    fn epoch_ended(&self, slot: &Slot, now: u64) -> bool {
        let epochs = self.epochs();
        slot.zones.get().is_some_and(|zs| {
            zs.iter()
                .any(|z| z.dnssec.is_some() && z.epoch != epochs.at(&z.origin, now) as u16)
        })
    }

    /// Must the re-signing timer reload (a built signed zone's epoch ended)? O(zones), without
    /// crypto: run once a tick (`Epochs::tick`), never per query.
    pub fn epochs_ended(&self, now: u64) -> bool {
        self.slots.iter().any(|s| self.epoch_ended(s, now))
    }

    /// Build `slot` of `new` now, following the serials `old` (this snapshot's slot) served;
    /// every zone whose serial moves goes into `changed` (for NOTIFY).
    fn rebuild(&self, new: &Authority, old: Option<&Slot>, slot: &Slot, now: u64, changed: &mut Vec<Changed>) {
        let before: Served = old
            .and_then(|o| o.zones.get())
            .map(|zs| zs.iter().map(|z| (z.origin.clone(), (z.serial, z.content))).collect())
            .unwrap_or_default();
        let zones = new.build_slot(slot, &before, now);
        for z in zones.iter() {
            let prev = before.get(&z.origin).or_else(|| self.shared.previous.get(&z.origin));
            if prev.is_none_or(|(serial, _)| *serial != z.serial) {
                changed.push(Changed {
                    origin: z.origin.clone(),
                    serial: z.serial,
                    transfer_to: z.transfer_to.clone(),
                });
            }
        }
        let _ = slot.zones.set(zones);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::authority::{Reply, Transport};
    use hickory_server::proto::op::{Message, Query};
    use hickory_server::proto::rr::RecordType;

    /// A challenge is placed in the zone of its name, and only there; a domain with a fixed
    /// serial gets none (its secondaries could not see it), nor does a name outside our zones.
    #[test]
    fn acme_challenges_go_where_the_serial_can_move() {
        let text = r#"
[provider.p]
display_name = "P"
[[provider.p.server]]
protocol = "imap"
host = "imap.p.example"
port = 993
security = "tls"
[[provider.p.server]]
protocol = "smtp"
host = "smtp.p.example"
port = 465
security = "tls"

[[domain]]
name = "moving.example"
provider = "p"
[domain.dns]
nameservers = ["ns1.p.example"]

[[domain]]
name = "fixed.example"
provider = "p"
[domain.dns]
nameservers = ["ns1.p.example"]
serial = 7
"#;
        let settings = Arc::new(Settings::from_toml(text, "t.toml").expect("settings"));
        let auth = Authority::new(settings, Arc::default(), &crate::pacc::Rollover::default());
        let entries = vec![
            ("autoconfig.moving.example".to_string(), "a".repeat(43)),
            ("autoconfig.fixed.example".to_string(), "b".repeat(43)),
            ("autoconfig.elsewhere.example".to_string(), "c".repeat(43)),
        ];
        let (up, changed, placed) = auth.with_acme(&entries);
        assert_eq!(placed.keys().collect::<Vec<_>>(), ["autoconfig.moving.example"]);
        assert_eq!(changed.len(), 1, "only the moving domain's zone changes");
        // The TXT answers for the challenge name of `host`, asked over TCP.
        let txt = |a: &Authority, host: &str| {
            let name: hickory_server::proto::rr::Name = format!("_acme-challenge.{host}.").parse().unwrap();
            let mut m = Message::query();
            m.add_query(Query::query(name, RecordType::TXT));
            let Reply::Message(bytes) = a.respond(&m.to_vec().unwrap(), Transport::Tcp, [127, 0, 0, 1].into()) else {
                panic!("no answer");
            };
            Message::from_vec(&bytes).unwrap().answers.len()
        };
        assert_eq!(txt(&auth, "autoconfig.moving.example"), 0);
        assert_eq!(txt(&up, "autoconfig.moving.example"), 1);
        assert_eq!(txt(&up, "autoconfig.fixed.example"), 0);
        let (down, changed_back, _) = up.with_acme(&[]);
        assert_eq!(changed_back.len(), 1);
        assert_eq!(txt(&down, "autoconfig.moving.example"), 0);
    }

    /// Not a test: what publishing and taking down two ACME DNS-01 challenges costs with the
    /// settings file `MAILCONF_SCALE_CONFIG` (e.g. `benches/gen-config.py 100000`), every zone
    /// built. `MAILCONF_SCALE_CONFIG=… cargo test --lib -- --ignored with_acme_cost --nocapture`.
    #[test]
    #[ignore]
    fn with_acme_cost() {
        let path = std::env::var("MAILCONF_SCALE_CONFIG").expect("MAILCONF_SCALE_CONFIG not set");
        let settings = Arc::new(Settings::load(std::path::Path::new(&path)).expect("settings"));
        let auth = Authority::new(settings, Arc::default(), &crate::pacc::Rollover::default());
        let t = std::time::Instant::now();
        auth.build_all(|| false);
        eprintln!(
            "{} names, zones built in {:.1} s",
            auth.slots.len(),
            t.elapsed().as_secs_f64()
        );
        let domain = &auth.settings.domains[auth.settings.domains.len() / 2].name;
        let entries = vec![
            (format!("autoconfig.{domain}"), "a".repeat(43)),
            (format!("autodiscover.{domain}"), "b".repeat(43)),
        ];
        let t = std::time::Instant::now();
        let (up, changed, placed) = auth.with_acme(&entries);
        let posted = t.elapsed();
        let t = std::time::Instant::now();
        let (down, changed_back, _) = up.with_acme(&[]);
        let taken = t.elapsed();
        eprintln!(
            "post: {posted:?} ({} zones changed, {} placed); take down: {taken:?} ({} zones changed)",
            changed.len(),
            placed.len(),
            changed_back.len()
        );
        assert_eq!(placed.len(), 2);
        assert_eq!(down.counts(), auth.counts());
    }
}
