//! The served state of one settings snapshot: which mail domain names exist, and their zones,
//! built when first needed and then kept.
//!
//! Start and reload cost the settings and an index of names, not the zones: a zone is built on
//! its first query, or by the background warm-up (see `DnsServer`), whichever comes first. A
//! reload keeps the built zones of every domain whose settings did not change and builds the
//! changed and new ones at once, so that their serials move and NOTIFY goes out.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;

use hickory_server::proto::op::{Edns as HEdns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::{DNSClass, RData, RecordType};

use super::answer::{EDE_PROHIBITED, EDNS_PAYLOAD, Question, append_opt, udp_limit};
use super::catalog::{Catalog, Delta, Journal};
use super::dnssec::{Epochs, Validity, ZoneKey, Zsks, served_content};
use super::keystore;
use super::signed;
use super::tsig;
use super::wire::{self, Edns};
use super::zone::{self, Interner, Zone};
use crate::records;
use crate::settings::{Domain, Settings};

/// Served serial and content fingerprint per zone origin (lower-case wire name).
pub(crate) type Served = FxHashMap<Box<[u8]>, (u32, [u8; 32])>;

/// What outlives one snapshot: shared blobs, and what earlier runs served (the state file),
/// for zones not built yet.
#[derive(Default)]
pub(crate) struct Shared {
    pub interner: Interner,
    pub previous: Served,
    /// Recent changes of the catalog zone, for IXFR.
    pub journal: Journal,
    /// Signed views of the zones DO queries asked for, bounded (see `signed`).
    pub views: signed::Cache,
    /// The RRSIGs of positive answers those views made, bounded (see `signed`).
    pub sigs: signed::Sigs,
}

/// One mail domain name (primary or alias) and its zones once built.
struct Slot {
    domain: u32,
    /// 0 = the primary name, i + 1 = alias i.
    name: u32,
    zones: OnceLock<Arc<[Zone]>>,
}

/// Every zone of one settings snapshot.
pub(crate) struct Authority {
    settings: Arc<Settings>,
    /// Lower-case wire mail domain name → index into `slots`. FxHash: a query looks up two or
    /// three suffixes of its name, and SipHash there cost more than the rest of the answer.
    /// Shared with the snapshots made from this one for ACME challenges ([`Authority::with_acme`]).
    index: Arc<FxHashMap<Box<[u8]>, u32>>,
    slots: Box<[Slot]>,
    shared: Arc<Shared>,
    /// PACC digests replaced by this or an earlier snapshot and still published.
    pacc: crate::pacc::Rollover,
    /// UDP answers per second per client network (0 = unlimited), from the settings.
    pub rate_limit: u32,
    /// The catalog zone (`[server] catalog`).
    pub(crate) catalog: Option<Catalog>,
    /// Key rollovers (`keystore::Rolls`), read with the settings.
    rolls: keystore::Rolls,
    /// ACME DNS-01 challenges to publish (`crate::acme::dns01`), by lower-case mail domain
    /// name: (host, TXT value). Empty unless an order waits for them.
    acme: Arc<FxHashMap<String, Vec<(String, String)>>>,
}

/// What a query gets.
pub(crate) enum Reply {
    Message(Vec<u8>),
    /// AXFR: several messages, each sent as its own TCP frame.
    Transfer(Vec<Vec<u8>>),
    /// Not worth an answer (a response, or garbage without a header).
    Drop,
}

/// The transport a query came over, for truncation and transfer rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

/// A zone whose serial changed in a reload, for NOTIFY.
pub(crate) struct Changed {
    pub origin: Box<[u8]>,
    pub serial: u32,
    pub transfer_to: Arc<[SocketAddr]>,
}

impl Authority {
    /// Index the names of `settings`; no zone is built yet. `pacc`: the rollover state the
    /// previous snapshot (or run) left.
    pub fn new(settings: Arc<Settings>, shared: Arc<Shared>, pacc: &crate::pacc::Rollover) -> Authority {
        let pacc = pacc.next(&settings, crate::pacc::now());
        let mut index = FxHashMap::default();
        let mut slots = Vec::new();
        let mut signed_zones = 0;
        for (d, domain) in settings.domains.iter().enumerate() {
            let Some(dns) = &domain.dns else { continue };
            if settings.signed(domain).is_some() {
                signed_zones += domain.names().count() * dns.zones.len().max(1);
            }
            for (n, name) in domain.names().enumerate() {
                index.insert(wire::lower_wire(name), slots.len() as u32);
                slots.push(Slot {
                    domain: d as u32,
                    name: n as u32,
                    zones: OnceLock::new(),
                });
            }
        }
        shared.views.set_capacity(match settings.server.dnssec_cache_zones {
            0 => signed::auto_size(signed_zones),
            n => n as usize,
        });
        shared.sigs.set_capacity(signed::auto_sig_size(signed_zones));
        let catalog = settings.server.catalog.as_deref().map(|name| {
            let members = slots
                .iter()
                .enumerate()
                .flat_map(|(i, slot)| {
                    let domain = &settings.domains[slot.domain as usize];
                    let name = domain.names().nth(slot.name as usize).unwrap_or(&domain.name);
                    records::catalog::zone_origins(domain, name)
                        .enumerate()
                        .map(move |(z, origin)| (records::catalog::label(&origin), i as u32, z as u32))
                })
                .collect();
            Catalog::new(name, members, shared.previous.get(&wire::lower_wire(name)).copied())
        });
        Authority {
            rolls: keystore::Rolls::load(settings.server.state_dir.as_deref()),
            rate_limit: settings.server.dns_rate_limit,
            settings,
            index: Arc::new(index),
            slots: slots.into_boxed_slice(),
            shared,
            pacc,
            catalog,
            acme: Arc::default(),
        }
    }

    /// Is `lower` (a lower-case wire name) in the catalog zone?
    pub(crate) fn in_catalog(&self, lower: &[u8]) -> bool {
        self.catalog
            .as_ref()
            .is_some_and(|c| wire::suffix_at(lower, &c.origin).is_some())
    }

    /// The origin (ASCII) of catalog member `i`.
    pub(crate) fn member_origin(&self, catalog: &Catalog, i: usize) -> Option<String> {
        let &(_, slot, zone) = catalog.members.get(i)?;
        let slot = &self.slots[slot as usize];
        let domain = &self.settings.domains[slot.domain as usize];
        let name = domain.names().nth(slot.name as usize)?;
        records::catalog::zone_origins(domain, name).nth(zone as usize)
    }

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

    pub fn pacc(&self) -> &crate::pacc::Rollover {
        &self.pacc
    }

    /// The records of one name, with the PACC digests this snapshot still publishes.
    pub(crate) fn records(&self, domain: &Domain, name: &str) -> Option<records::DomainRecords> {
        let pacc = self.pacc.published(domain);
        let acme = if self.acme.is_empty() {
            None
        } else {
            self.acme.get(&name.to_ascii_lowercase())
        };
        records::for_name_with(
            &self.settings,
            domain,
            name,
            Some(&pacc),
            acme.map_or(&[], |a| a.as_slice()),
        )
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

    /// The signing epochs of this snapshot's settings.
    pub(crate) fn epochs(&self) -> Epochs {
        Epochs::new(
            self.settings.server.dnssec_signature_lifetime,
            self.settings.server.dnssec_zsk_lifetime,
        )
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

    fn build_slot(&self, slot: &Slot, previous: &Served, now: u64) -> Arc<[Zone]> {
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

    fn zones_of<'a>(&'a self, slot: &'a Slot) -> &'a Arc<[Zone]> {
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

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
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
    fn slot_of(&self, lower: &[u8]) -> Option<&Slot> {
        Some(&self.slots[self.slot_index(lower)? as usize])
    }

    fn slot_index(&self, lower: &[u8]) -> Option<u32> {
        wire::suffixes(lower).find_map(|(_, suffix)| self.index.get(suffix).copied())
    }

    /// The signed answer to a query for `lower` in signed `zone` (DO set, or a DNSSEC type
    /// asked without DO: then without signatures and proofs): records appended to
    /// `out`, counts to `counts`; returns the RCODE. `None` when the zone's key cannot be
    /// had (logged): the caller answers unsigned.
    pub(crate) fn signed_answer(
        &self,
        lower: &[u8],
        qtype: u16,
        dnssec_ok: bool,
        zone: &Zone,
        out: &mut Vec<u8>,
        counts: &mut [u16; 3],
    ) -> Option<u8> {
        let now = tsig::now();
        let slot = self.slot_of(lower)?;
        let zones = self.zones_of(slot);
        // DS at a sub-zone's apex is the parent zone's to answer (RFC 4035 §3.1.4.1).
        let parent = (qtype == u16::from(RecordType::DS) && *lower == *zone.origin)
            .then(|| {
                zones
                    .iter()
                    .filter(|p| p.origin.len() < zone.origin.len() && wire::suffix_at(lower, &p.origin).is_some())
                    .max_by_key(|p| p.origin.len())
            })
            .flatten();
        let zone = parent.unwrap_or(zone);
        let (view, kept) = self.view(slot, zone, now, false)?;
        let rcode = view.answer(lower, qtype, dnssec_ok, out, counts);
        // Only a view checked against the served zone (`kept`) may vouch for the blob's records.
        if kept
            && dnssec_ok
            && parent.is_none()
            && let Some(sigs) = view.positive_sigs(lower, qtype)
        {
            let key = signed::sig_key(&zone.origin, zone.serial, &zone.content, lower, qtype);
            self.shared.sigs.insert(key, sigs);
        }
        Some(rcode)
    }

    /// The cached RRSIGs of the positive answer to a DO query (`lower`, `qtype`) in signed
    /// `zone`, after its records, which the caller has written to `out`: the number of RRSIG
    /// RRs appended, or `None` (nothing appended) when they are not cached.
    pub(crate) fn cached_rrsigs(&self, lower: &[u8], qtype: u16, zone: &Zone, out: &mut Vec<u8>) -> Option<u16> {
        let key = signed::sig_key(&zone.origin, zone.serial, &zone.content, lower, qtype);
        self.shared.sigs.put(key, tsig::now(), &zone.origin, out)
    }

    /// The current signed view of signed `zone` (for transfers): its keys are made now if the
    /// key maker has not made them yet, so that a secondary never holds this serial unsigned.
    pub(crate) fn signed_view(&self, zone: &Zone) -> Option<Arc<signed::View>> {
        zone.dnssec?;
        self.view(self.slot_of(&zone.origin)?, zone, tsig::now(), true)
            .map(|(v, _)| v)
    }

    /// The current signed view of `zone` (of `slot`): from the cache, or built now. `None`
    /// while the zone's key is not made yet, unless `make` (see `keystore`): the query is then
    /// answered unsigned. A validator accepts that: the parent cannot have a DS for a key
    /// that does not exist yet, so the zone is provably insecure to it, not bogus. With it,
    /// whether the view was checked to hold the served zone's records (and so was cached).
    fn view(&self, slot: &Slot, zone: &Zone, now: u64, make: bool) -> Option<(Arc<signed::View>, bool)> {
        let views = &self.shared.views;
        if let Some(v) = views.get(&zone.origin, |v| v.current(zone.serial, &zone.content, now)) {
            return Some((v, true));
        }
        let alg = zone.dnssec?;
        let dir = self.settings.server.state_dir.as_deref()?;
        let domain = &self.settings.domains[slot.domain as usize];
        let name = domain.names().nth(slot.name as usize)?;
        let dr = self.records(domain, name)?;
        let at = dr
            .zones
            .iter()
            .position(|z| wire::name_wire(&z.origin) == zone.origin)?;
        let rz = &dr.zones[at];
        // The signatures of the zone's epoch; past their refresh point (only if the re-signing
        // timer has not replaced the zone in time), signatures of now, never stale ones.
        let epochs = self.epochs();
        let epoch = epochs.widen(&zone.origin, zone.epoch, now);
        let max_ttl = signed::max_ttl(rz);
        let mut validity = epochs.validity(&zone.origin, epoch, max_ttl);
        if now >= validity.refresh_at {
            validity = Validity::at(now, max_ttl, epochs.lifetime());
        }
        let served = (zone.serial, zone.content);
        let zsks = epochs.zsks(&zone.origin, epoch, self.rolls.zsk_since(epochs));
        let (view, complete) = build_view(dir, alg, &self.rolls, &dr, at, served, validity, zsks, make)?;
        let view = Arc::new(view);
        // The records were made again from the same settings as the zone; were they the same?
        // A view without a sub-zone's DS (its key not made yet) is not kept.
        let kept = complete
            && served_content(
                &rz.content,
                alg.number(),
                epoch,
                self.rolls.get(&zone.origin, alg),
                zsks,
            ) == zone.content
            && view.current(zone.serial, &zone.content, now);
        if kept {
            views.insert(&zone.origin, view.clone());
        }
        Some((view, kept))
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

    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn settings_arc(&self) -> Arc<Settings> {
        self.settings.clone()
    }

    /// Must `peer` sign its transfers and SOA queries (a `transfer_to` entry with a key)?
    pub(crate) fn needs_key(&self, peer: IpAddr) -> bool {
        let keys = &self.settings.server.transfer_keys;
        !keys.is_empty() && keys.contains_key(&peer)
    }

    /// Answer one request from `peer`. Never panics on any input. A TSIG-signed request is
    /// verified first and its answer signed with the same key (see `tsig`).
    pub fn respond(&self, req: &[u8], transport: Transport, peer: IpAddr) -> Reply {
        if req.len() < 12 || req[2] & 0x80 != 0 {
            return Reply::Drop; // too short for a header, or a response: never answer those
        }
        match tsig::check(req, &self.settings.server, tsig::now()) {
            tsig::Check::Unsigned => self.respond_keyed(req, transport, peer, None),
            tsig::Check::Reject(reply) => Reply::Message(reply),
            tsig::Check::Signed(mut signer, req) => match self.respond_keyed(&req, transport, peer, Some(signer.key)) {
                Reply::Message(mut m) => {
                    signer.sign(&mut m);
                    Reply::Message(m)
                }
                Reply::Transfer(mut frames) => {
                    frames.iter_mut().for_each(|f| signer.sign(f));
                    Reply::Transfer(frames)
                }
                Reply::Drop => Reply::Drop,
            },
        }
    }

    /// Answer a request that was signed with key `key` (an index into `[server] tsig`), or
    /// not signed. A secondary that must sign gets REFUSED for an SOA query it did not sign.
    fn respond_keyed(&self, req: &[u8], transport: Transport, peer: IpAddr, key: Option<usize>) -> Reply {
        if self.needs_key(peer)
            && self.settings.server.transfer_keys.get(&peer).copied() != key
            && crate::metrics::qtype_of(req, wire::question_name_end(req)) == u16::from(RecordType::SOA)
        {
            let mut out = refused(req);
            append_opt(&mut out, wire::find_opt(req), Some(EDE_PROHIBITED));
            return Reply::Message(out);
        }
        let limit = |edns: Option<Edns>| match transport {
            Transport::Tcp => u16::MAX as usize,
            Transport::Udp => udp_limit(edns),
        };
        let mut out = Vec::with_capacity(512);
        if let Some(p) = wire::plain(req) {
            if Question::is_transfer(p.qtype) || self.in_catalog(p.lower()) {
                let q = Query::query(wire::name_from_wire(&req[12..p.question_end - 4]), p.qtype.into());
                return self.transfer_or_catalog(req, p.lower(), &q, None, transport, peer, key, p.edns);
            }
            self.answer(&Question::plain(req, &p), limit(p.edns), &mut out);
            return Reply::Message(out);
        }
        let id = u16::from_be_bytes([req[0], req[1]]);
        let query = match Message::from_vec(req) {
            Ok(m) => m,
            Err(_) => return Reply::Message(header_error(req, ResponseCode::FormErr)),
        };
        let edns = query.edns.as_ref();
        let opt = edns.map(|e| Edns {
            payload: e.max_payload(),
            do_bit: e.flags().dnssec_ok,
        });
        let reply = if query.metadata.op_code != OpCode::Query {
            Message::error_msg(id, query.metadata.op_code, ResponseCode::NotImp)
        } else if query.queries.len() != 1 || query.metadata.message_type != MessageType::Query {
            Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
        } else if edns.is_some_and(|e| e.version() > 0) {
            // RFC 6891 §6.1.3: unknown EDNS version → BADVERS (extended RCODE 16).
            let mut m = Message::error_msg(id, OpCode::Query, ResponseCode::BADVERS);
            let mut e = HEdns::new();
            e.set_max_payload(EDNS_PAYLOAD);
            m.set_edns(e);
            m
        } else {
            // A query the fast path did not take (other class, extra records, a compressed
            // question…): the same answer, from the parsed question.
            let q = &query.queries[0];
            let lower = wire::name_wire(q.name());
            if matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR) || self.in_catalog(&lower) {
                // IXFR carries the client's SOA in the authority section (RFC 1995 §3).
                let serial = query.authorities.iter().find_map(|r| match &r.data {
                    RData::SOA(s) => Some(s.serial),
                    _ => None,
                });
                return self.transfer_or_catalog(req, &lower, q, serial, transport, peer, key, opt);
            }
            let mut question = Vec::with_capacity(q.name().len() + 5);
            for label in q.name().iter() {
                question.push(label.len() as u8);
                question.extend_from_slice(label);
            }
            question.push(0);
            question.extend_from_slice(&u16::from(q.query_type()).to_be_bytes());
            question.extend_from_slice(&u16::from(q.query_class()).to_be_bytes());
            let edns = opt;
            let header: &[u8; 12] = req[..12].try_into().unwrap_or(&[0; 12]);
            let question = Question {
                header,
                question: &question,
                lower: &lower,
                qtype: q.query_type().into(),
                class_in: q.query_class() == DNSClass::IN,
                edns,
            };
            self.answer(&question, limit(edns), &mut out);
            return Reply::Message(out);
        };
        let mut reply = reply;
        reply.metadata.id = id;
        if reply.queries.is_empty() {
            reply.add_queries(query.queries.iter().take(1).cloned());
        }
        match reply.to_vec() {
            Ok(mut bytes) if bytes.len() <= limit(None).max(512) => {
                if reply.edns.is_none() {
                    append_opt(&mut bytes, opt, None); // BADVERS has its own
                }
                Reply::Message(bytes)
            }
            _ => Reply::Message(header_error(req, ResponseCode::ServFail)),
        }
    }
}

/// The signed view of zone `at` of `dr`, served with `served` (serial, content), signed with
/// the KSKs in `dir` (the generations `rolls` says) and the ZSKs `zsks` (derived from the
/// zone's first KSK file) for `validity`, and whether it is complete (every key of the zone and
/// of its sub-zones was there). `None` when none of the zone's own KSKs is there; without its
/// ZSKs the KSKs sign everything (valid, since they are in the DNSKEY set). `make`: make the
/// keys that are missing now (transfers, the command line); answers never do (`keystore`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_view(
    dir: &std::path::Path,
    alg: crate::settings::DnssecAlgorithm,
    rolls: &keystore::Rolls,
    dr: &records::DomainRecords,
    at: usize,
    served: (u32, [u8; 32]),
    validity: Validity,
    zsks: Zsks,
    make: bool,
) -> Option<(signed::View, bool)> {
    let origins: Vec<Box<[u8]>> = dr.zones.iter().map(|z| wire::name_wire(&z.origin)).collect();
    let complete = std::cell::Cell::new(true);
    // The keys of a zone that are there (a missing one is logged unless it is not made yet).
    let keys = |z: &records::Zone, wire_origin: &[u8]| {
        let origin = z.origin.to_ascii();
        let mut keys = Vec::with_capacity(2);
        for generation in rolls.of(wire_origin, alg).generations() {
            let got = if make {
                keystore::zone_key(dir, &origin, alg, generation).map(Some)
            } else {
                keystore::read_key(dir, &origin, alg, generation)
            };
            // A key missing mid-rollover: the other one still signs (and validates).
            match got {
                Ok(Some(k)) => keys.push(Arc::new(k)),
                // Not made yet: the key maker will (see `keystore`).
                Ok(None) => complete.set(false),
                Err(e) => {
                    key_warning(&origin, &e);
                    complete.set(false);
                }
            }
        }
        keys
    };
    let child = |owner: &[u8]| match origins.iter().position(|o| **o == *owner) {
        Some(i) => keys(&dr.zones[i], owner),
        None => Vec::new(),
    };
    let rz = dr.zones.get(at)?;
    let ksks = keys(rz, &origins[at]);
    if ksks.is_empty() {
        return None;
    }
    let origin = rz.origin.to_ascii();
    let mut own = signed::Keys {
        ksks,
        zsks: Vec::with_capacity(2),
        signing: None,
        ksks_too: zsks.ksk_too,
    };
    // Read after `keys` made the first KSK if `make` (a zone that never rolled).
    match keystore::zsk_secret(dir, &origin, alg) {
        Ok(Some(secret)) => {
            for g in zsks.published() {
                match ZoneKey::zsk(alg, &secret, &origins[at], g) {
                    Ok(k) => {
                        if zsks.signing == g {
                            own.signing = Some(own.zsks.len());
                        }
                        own.zsks.push(Arc::new(k));
                    }
                    Err(e) => {
                        key_warning(&origin, &e);
                        complete.set(false);
                    }
                }
            }
        }
        Ok(None) => complete.set(false),
        Err(e) => {
            key_warning(&origin, &e);
            complete.set(false);
        }
    }
    let view = signed::View::build(rz, served, own, child, validity);
    Some((view, complete.get()))
}

/// A key that cannot be read or made: logged at most once a minute, not once a query.
fn key_warning(zone: &str, e: &anyhow::Error) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = tsig::now();
    let last = LAST.load(Ordering::Relaxed);
    if now >= last + 60
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(zone, error = %format!("{e:#}"), "no DNSSEC key: DO queries to this zone get unsigned answers");
    }
}

/// A header-only error answer that echoes the request's ID, opcode and RD bit.
pub(crate) fn header_error(req: &[u8], rcode: ResponseCode) -> Vec<u8> {
    let mut out = vec![0u8; 12];
    out[0] = req[0];
    out[1] = req[1];
    out[2] = 0x80 | (req[2] & 0x79); // QR, opcode and RD from the request
    out[3] = u16::from(rcode) as u8 & 0x0f;
    out
}

/// REFUSED with the question echoed (transfers we do not allow).
pub(crate) fn refused(req: &[u8]) -> Vec<u8> {
    // A question cut before its type and class is not echoed (half a question does not parse).
    let end = wire::question_name_end(req)
        .map(|e| e + 4)
        .filter(|&e| e <= req.len())
        .unwrap_or(12);
    let mut out = req[..end].to_vec();
    out[2] = 0x80 | (req[2] & 0x79);
    out[3] = 5;
    let qd = u16::from(end > 12);
    out[4..12].copy_from_slice(&[0, qd as u8, 0, 0, 0, 0, 0, 0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
