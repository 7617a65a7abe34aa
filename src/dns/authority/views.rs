//! The DNSSEC-signed answering path: answers from a zone's signed view (cached, or built from
//! the zone's records and keys), and the RRSIGs cached for positive answers.

use std::sync::Arc;

use hickory_server::proto::rr::RecordType;

use super::{Authority, Slot};
use crate::dns::dnssec::{Validity, ZoneKey, Zsks, served_content};
use crate::dns::signed;
use crate::dns::tsig;
use crate::dns::wire;
use crate::dns::zone::Zone;
use crate::dns::{keystore, rolls};
use crate::records;

impl Authority {
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
    rolls: &rolls::Rolls,
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
