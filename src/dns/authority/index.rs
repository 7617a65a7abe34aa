//! The name index of a snapshot: which slot (mail domain name) and zone hold a query name, and
//! the zones of a slot, built on first need (or by the background warm-up) and then kept.

use std::sync::Arc;

use super::{Authority, Served, Slot};
use crate::dns::dnssec::served_content;
use crate::dns::tsig;
use crate::dns::wire;
use crate::dns::zone::{self, Zone};
use crate::records;
use crate::settings::Domain;

impl Authority {
    pub(super) fn build_slot(&self, slot: &Slot, previous: &Served, now: u64) -> Arc<[Zone]> {
        let domain = &self.settings.domains[slot.domain as usize];
        let name = domain.names().nth(slot.name as usize).unwrap_or(&domain.name);
        let Some(dr) = self.records(domain, name) else {
            return Arc::new([]);
        };
        let mut zones = zone::build(&dr, &self.shared.interner);
        let dnssec = self.settings.signed(domain);
        let epochs = self.epochs();
        for z in &mut zones {
            z.dnssec = dnssec;
            if let Some(alg) = dnssec {
                let epoch = epochs.at(&z.origin, now);
                z.epoch = epoch as u16;
                z.content = served_content(
                    &z.content,
                    alg.number(),
                    epoch,
                    self.rolls.get(&z.origin, alg),
                    epochs.zsks(&z.origin, epoch, self.rolls.zsk_since(epochs)),
                );
            }
            if let Some((serial, content)) = previous.get(&z.origin).or_else(|| self.shared.previous.get(&z.origin)) {
                z.follow(*serial, content);
            }
        }
        zones.into()
    }

    pub(super) fn zones_of<'a>(&'a self, slot: &'a Slot) -> &'a Arc<[Zone]> {
        slot.zones
            .get_or_init(|| self.build_slot(slot, &Served::default(), tsig::now()))
    }

    /// Build every zone not built yet (the background warm-up). Stops early when `stop` says so.
    pub fn build_all(&self, stop: impl Fn() -> bool) -> bool {
        for (i, slot) in self.slots.iter().enumerate() {
            if i % 256 == 0 && stop() {
                return false;
            }
            self.zones_of(slot);
        }
        true
    }

    /// Every signed zone's origin (ASCII) and algorithm, from the settings alone (no zone is
    /// built): what the key maker makes keys for.
    pub fn signed_origins(&self) -> impl Iterator<Item = (String, crate::settings::DnssecAlgorithm)> + '_ {
        self.slots.iter().flat_map(move |slot| {
            let domain = &self.settings.domains[slot.domain as usize];
            let name = domain.names().nth(slot.name as usize).unwrap_or(&domain.name);
            self.settings
                .signed(domain)
                .into_iter()
                .flat_map(move |alg| records::catalog::zone_origins(domain, name).map(move |o| (o, alg)))
        })
    }

    /// Number of mail domain names and of zones built so far.
    pub fn counts(&self) -> (usize, usize) {
        let built = self.slots.iter().filter_map(|s| s.zones.get()).map(|z| z.len()).sum();
        (self.slots.len(), built)
    }

    /// The serial and fingerprint of every zone: built ones, and for the others what the
    /// state file said. To carry across restarts.
    pub fn served(&self) -> Served {
        let mut out = self.shared.previous.clone();
        for zones in self.slots.iter().filter_map(|s| s.zones.get()) {
            for z in zones.iter() {
                out.insert(z.origin.clone(), (z.serial, z.content));
            }
        }
        if let Some(c) = &self.catalog {
            out.insert(c.origin.clone(), (c.serial, c.content));
        }
        out
    }

    /// The zone that holds `lower` (a lower-case wire name): the longest origin that is a
    /// suffix of it, among the zones of the longest configured mail domain name that has one.
    pub(crate) fn find_zone(&self, lower: &[u8]) -> Option<&Zone> {
        wire::suffixes(lower).find_map(|(_, suffix)| {
            let slot = &self.slots[*self.index.get(suffix)? as usize];
            self.zones_of(slot)
                .iter()
                .filter(|z| wire::suffix_at(lower, &z.origin).is_some())
                .max_by_key(|z| z.origin.len())
        })
    }

    /// The slot whose zones hold `lower` (a lower-case wire name), as `find_zone` picks it.
    pub(super) fn slot_of(&self, lower: &[u8]) -> Option<&Slot> {
        Some(&self.slots[self.slot_index(lower)? as usize])
    }

    pub(super) fn slot_index(&self, lower: &[u8]) -> Option<u32> {
        wire::suffixes(lower).find_map(|(_, suffix)| self.index.get(suffix).copied())
    }

    /// The zone whose origin is exactly `lower`.
    pub(crate) fn zone_at(&self, lower: &[u8]) -> Option<(&Zone, &Domain, &str)> {
        wire::suffixes(lower).find_map(|(_, suffix)| {
            let slot = &self.slots[*self.index.get(suffix)? as usize];
            let zone = self.zones_of(slot).iter().find(|z| *z.origin == *lower)?;
            let domain: &Domain = &self.settings.domains[slot.domain as usize];
            let name = domain.names().nth(slot.name as usize)?;
            Some((zone, domain, name))
        })
    }
}
