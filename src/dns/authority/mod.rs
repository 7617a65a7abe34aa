//! The served state of one settings snapshot: which mail domain names exist, and their zones,
//! built when first needed and then kept.
//!
//! Start and reload cost the settings and an index of names, not the zones: a zone is built on
//! its first query, or by the background warm-up (see `DnsServer`), whichever comes first. A
//! reload keeps the built zones of every domain whose settings did not change and builds the
//! changed and new ones at once, so that their serials move and NOTIFY goes out.
//!
//! This file holds the snapshot's types and its accessors; `index` finds a name's zones and
//! builds them on demand, `reload` makes the next snapshot (reloads, ACME challenges, the
//! catalog), `views` answers from signed views (DNSSEC), `respond` is the entry point of a
//! request.

mod index;
mod reload;
mod respond;
mod views;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;

use super::catalog::{Catalog, Journal};
use super::dnssec::Epochs;
use super::rolls;
use super::signed;
use super::wire;
use super::zone::{Interner, Zone};
use crate::records;
use crate::settings::{Domain, Settings};

pub(crate) use respond::refused;
pub(crate) use views::build_view;

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
    /// Key rollovers (`rolls::Rolls`), read with the settings.
    rolls: rolls::Rolls,
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
            rolls: rolls::Rolls::load(settings.server.state_dir.as_deref()),
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

    /// The signing epochs of this snapshot's settings.
    pub(crate) fn epochs(&self) -> Epochs {
        Epochs::new(
            self.settings.server.dnssec_signature_lifetime,
            self.settings.server.dnssec_zsk_lifetime,
        )
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
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
}
