//! Building a signed view from a zone's records: RRsets in canonical form, the apex's DNSSEC
//! sets, DS at our own delegations, and the NSEC chain. No crypto here (signing is lazy).

use std::sync::{Arc, OnceLock};

use super::canonical::{canonical_cmp, canonical_rdata, type_bitmap};
use super::{CDNSKEY, CDS, DNSKEY, DS, NS, NSEC, Owner, RRSIG, RRset, View};
use crate::dns::dnssec::{Validity, ZoneKey};
use crate::dns::wire;
use crate::records;

fn set(rtype: u16, ttl: u32, rdatas: Vec<Box<[u8]>>) -> RRset {
    RRset {
        rtype,
        ttl,
        rdatas,
        sig: OnceLock::new(),
    }
}

/// The keys of a signed view.
pub(crate) struct Keys {
    /// The KSKs (two during a KSK rollover): in DNSKEY, CDS and CDNSKEY; they sign those.
    pub ksks: Vec<Arc<ZoneKey>>,
    /// The ZSKs published in DNSKEY (`dnssec::Zsks::published`).
    pub zsks: Vec<Arc<ZoneKey>>,
    /// The one of `zsks` that signs the other RRsets; `None` (not derived): the KSKs do.
    pub signing: Option<usize>,
    /// The KSKs sign the other RRsets too (`dnssec::Zsks::ksk_too`).
    pub ksks_too: bool,
}

impl View {
    /// The view of `zone`, served with `serial` and content fingerprint `content`, with `keys`
    /// and signatures of `validity`; `child_keys` gives the KSKs of our own sub-zones
    /// delegated from it (for their DS).
    pub fn build(
        zone: &records::Zone,
        (serial, content): (u32, [u8; 32]),
        keys: Keys,
        child_keys: impl Fn(&[u8]) -> Vec<Arc<ZoneKey>>,
        validity: Validity,
    ) -> View {
        let origin = wire::name_wire(&zone.origin);
        let mut owners = owners(zone, serial);
        for o in &mut owners {
            if *o.name == *origin {
                let ksks: Vec<Box<[u8]>> = keys.ksks.iter().map(|k| k.dnskey.clone()).collect();
                let dnskeys = ksks
                    .iter()
                    .cloned()
                    .chain(keys.zsks.iter().map(|k| k.dnskey.clone()))
                    .collect();
                let ds = keys.ksks.iter().map(|k| k.ds(&origin).into_boxed_slice()).collect();
                o.rrsets.push(set(DNSKEY, zone.ttl, dnskeys));
                // RFC 7344 / RFC 8078: the parent may take these to keep its DS in step: the
                // KSKs only. During a KSK rollover both: a parent that takes them any time
                // stays valid.
                o.rrsets.push(set(CDNSKEY, zone.ttl, ksks));
                o.rrsets.push(set(CDS, zone.ttl, ds));
            } else if o.rrsets.iter().any(|s| s.rtype == NS) {
                o.delegation = true;
                let ds: Vec<Box<[u8]>> = child_keys(&o.name)
                    .iter()
                    .map(|k| k.ds(&o.name).into_boxed_slice())
                    .collect();
                if !ds.is_empty() {
                    o.rrsets.push(set(DS, zone.ttl, ds));
                }
            }
        }
        owners.sort_by(|a, b| canonical_cmp(&a.name, &b.name));
        let negative_ttl = zone.soa().ttl.min(zone.negative_ttl);
        link_nsec(&mut owners, negative_ttl);
        View {
            origin,
            serial,
            content,
            others: match keys.signing.and_then(|i| keys.zsks.get(i)) {
                Some(zsk) if keys.ksks_too => keys.ksks.iter().chain([zsk]).cloned().collect(),
                Some(zsk) => Box::new([zsk.clone()]),
                None => keys.ksks.clone().into_boxed_slice(),
            },
            ksks: keys.ksks.into_boxed_slice(),
            validity,
            negative_ttl,
            soa_ttl: zone.soa().ttl,
            owners,
        }
    }
}

/// The largest TTL in `zone` (part of the margin before its signatures are made again).
pub(crate) fn max_ttl(zone: &records::Zone) -> u32 {
    zone.records().map(|r| r.ttl).max().unwrap_or(0).max(zone.ttl)
}

/// The zone's records grouped by owner and type, RDATA canonical (the SOA with `serial`).
fn owners(zone: &records::Zone, serial: u32) -> Vec<Owner> {
    let mut owners: Vec<Owner> = Vec::new();
    for r in zone.records() {
        let name = wire::name_wire(&r.name);
        let rtype = u16::from(r.record_type());
        let at = match owners.iter().position(|o| o.name == name) {
            Some(i) => i,
            None => {
                owners.push(Owner {
                    name,
                    rrsets: Vec::new(),
                    delegation: false,
                });
                owners.len() - 1
            }
        };
        let o = &mut owners[at];
        let rd = canonical_rdata(r, serial).into_boxed_slice();
        match o.rrsets.iter_mut().find(|s| s.rtype == rtype) {
            Some(s) if !s.rdatas.contains(&rd) => s.rdatas.push(rd),
            Some(_) => {}
            None => o.rrsets.push(set(rtype, r.ttl, vec![rd])),
        }
    }
    owners
}

/// Give every owner (in canonical order) its NSEC: the next owner, the last pointing back at
/// the apex, and the types present plus RRSIG and NSEC (RFC 4034 §4.1).
fn link_nsec(owners: &mut [Owner], ttl: u32) {
    let n = owners.len();
    for i in 0..n {
        let next = owners[(i + 1) % n].name.clone();
        let o = &mut owners[i];
        let mut types: Vec<u16> = o.rrsets.iter().map(|s| s.rtype).chain([RRSIG, NSEC]).collect();
        types.sort_unstable();
        types.dedup();
        let mut rd = next.to_vec();
        rd.extend(type_bitmap(&types));
        o.rrsets.push(set(NSEC, ttl, vec![rd.into_boxed_slice()]));
    }
}
