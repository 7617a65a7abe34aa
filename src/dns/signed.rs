//! Signed answers: DO queries to zones with `dnssec` on (keys and signatures: `dnssec`).
//!
//! Answers without DO never come here and stay the shared pre-encoded blobs of `zone`. A DO
//! query to a signed zone takes this slower path:
//! - The zone's **signed view** is its RRsets in canonical form with owner names in canonical
//!   order (RFC 4034 §6), the DNSKEY/CDNSKEY/CDS sets at the apex, DS at delegations to our own
//!   sub-zones, and the **NSEC chain** (RFC 4034 §4). Building it costs no crypto: each RRset
//!   is signed the first time an answer needs it (`OnceLock`). These zones have a few dozen
//!   public names, so NSEC gives away nothing (NSEC3 would hash names anyone can guess from
//!   the SRV labels), and unlike compact denial (RFC 9824) NXDOMAIN stays NXDOMAIN and an
//!   AXFR'd copy is an ordinary signed zone.
//! - Views live in a bounded [`Cache`] of two generations (a full generation becomes the old
//!   one, the old one is dropped; a hit in the old one moves it back), so memory is bounded
//!   whatever the number of domains, and zones nobody asks with DO cost nothing.
//! - A view is used only while its serial and content fingerprint are the served zone's and
//!   its signatures are before their refresh time (`dnssec::Validity`): a changed record means
//!   a new fingerprint, so a new view and new signatures; a stale signature is never served.

use std::cmp::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

use hickory_server::proto::rr::{RData, Record};
use rustc_hash::FxHashMap;

use super::dnssec::{self, Validity, ZoneKey};
use super::wire;
use crate::records;

const NS: u16 = 2;
const SOA: u16 = 6;
const CNAME: u16 = 5;
const DS: u16 = 43;
const RRSIG: u16 = 46;
const NSEC: u16 = 47;
const DNSKEY: u16 = 48;
const CDS: u16 = 59;
const CDNSKEY: u16 = 60;
const ANY: u16 = 255;

/// Types only a signed view holds: a query for one of them goes to the view even without DO
/// (a signed zone has these RRsets; the unsigned blobs do not).
pub(crate) fn dnssec_type(qtype: u16) -> bool {
    matches!(qtype, DS | NSEC | DNSKEY | CDS | CDNSKEY)
}

/// One RRset in canonical form, and its signature once made.
struct RRset {
    rtype: u16,
    ttl: u32,
    rdatas: Vec<Box<[u8]>>,
    /// RRSIG RDATA; never made for NS at a delegation (not authoritative, RFC 4035 §2.2).
    sig: OnceLock<Box<[u8]>>,
}

struct Owner {
    /// Lower-case wire name.
    name: Box<[u8]>,
    rrsets: Vec<RRset>,
    /// NS here but not at the apex: a delegation to one of our sub-zones.
    delegation: bool,
}

/// A zone ready to answer DO queries.
pub(crate) struct View {
    origin: Box<[u8]>,
    serial: u32,
    content: [u8; 32],
    key: Arc<ZoneKey>,
    validity: Validity,
    negative_ttl: u32,
    soa_ttl: u32,
    /// Canonical order; the apex first.
    owners: Vec<Owner>,
}

/// The canonical DNS name order (RFC 4034 §6.1) of two lower-case wire names.
pub(crate) fn canonical_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let (la, lb) = (label_list(a), label_list(b));
    la.iter().rev().cmp(lb.iter().rev())
}

fn label_list(name: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(6);
    let mut i = 0;
    while i < name.len() && name[i] != 0 {
        let len = name[i] as usize;
        out.push(&name[i + 1..(i + 1 + len).min(name.len())]);
        i += 1 + len;
    }
    out
}

/// The canonical RDATA of a record (RFC 4034 §6.2: names uncompressed, lower case); an SOA
/// gets the served `serial`.
fn canonical_rdata(r: &Record, serial: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    match &r.data {
        RData::A(a) => out.extend_from_slice(&a.0.octets()),
        RData::AAAA(a) => out.extend_from_slice(&a.0.octets()),
        RData::CNAME(c) => out.extend_from_slice(&wire::name_wire(&c.0)),
        RData::NS(ns) => out.extend_from_slice(&wire::name_wire(&ns.0)),
        RData::MX(mx) => {
            out.extend_from_slice(&mx.preference.to_be_bytes());
            out.extend_from_slice(&wire::name_wire(&mx.exchange));
        }
        RData::SRV(srv) => {
            for v in [srv.priority, srv.weight, srv.port] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            out.extend_from_slice(&wire::name_wire(&srv.target));
        }
        RData::SOA(soa) => {
            out.extend_from_slice(&wire::name_wire(&soa.mname));
            out.extend_from_slice(&wire::name_wire(&soa.rname));
            out.extend_from_slice(&serial.to_be_bytes());
            for v in [soa.refresh, soa.retry, soa.expire] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            out.extend_from_slice(&soa.minimum.to_be_bytes());
        }
        RData::TXT(txt) => {
            for s in txt.txt_data.iter() {
                out.push(s.len() as u8);
                out.extend_from_slice(s);
            }
        }
        other => {
            // `records` makes none of these.
            use hickory_server::proto::serialize::binary::BinEncodable;
            out = other.to_bytes().unwrap_or_default();
        }
    }
    out
}

/// NSEC type bitmap (RFC 4034 §4.1.2) of sorted, distinct types.
fn type_bitmap(types: &[u16]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < types.len() {
        let window = (types[i] >> 8) as u8;
        let mut bits = [0u8; 32];
        let mut len = 0;
        while i < types.len() && (types[i] >> 8) as u8 == window {
            let low = (types[i] & 0xff) as usize;
            bits[low / 8] |= 0x80 >> (low % 8);
            len = low / 8 + 1;
            i += 1;
        }
        out.push(window);
        out.push(len as u8);
        out.extend_from_slice(&bits[..len]);
    }
    out
}

impl View {
    /// The view of `zone`, served with `serial`, signed by `key`; `child_key` gives the keys of
    /// our own sub-zones delegated from it (for their DS).
    pub fn build(
        zone: &records::Zone,
        serial: u32,
        key: Arc<ZoneKey>,
        child_key: impl Fn(&[u8]) -> Option<Arc<ZoneKey>>,
        now: u64,
    ) -> View {
        let origin = wire::name_wire(&zone.origin);
        let mut owners: Vec<Owner> = Vec::new();
        let mut max_ttl = 0;
        for r in zone.records() {
            let name = wire::name_wire(&r.name);
            let rtype = u16::from(r.record_type());
            max_ttl = max_ttl.max(r.ttl);
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
                Some(s) => {
                    if !s.rdatas.contains(&rd) {
                        s.rdatas.push(rd);
                    }
                }
                None => o.rrsets.push(RRset {
                    rtype,
                    ttl: r.ttl,
                    rdatas: vec![rd],
                    sig: OnceLock::new(),
                }),
            }
        }
        let set = |rtype, ttl, rdatas| RRset {
            rtype,
            ttl,
            rdatas,
            sig: OnceLock::new(),
        };
        for o in &mut owners {
            if *o.name == *origin {
                let ds = key.ds(&origin).into_boxed_slice();
                o.rrsets.push(set(DNSKEY, zone.ttl, vec![key.dnskey.clone()]));
                // RFC 7344 / RFC 8078: the parent may take these to keep its DS in step.
                o.rrsets.push(set(CDNSKEY, zone.ttl, vec![key.dnskey.clone()]));
                o.rrsets.push(set(CDS, zone.ttl, vec![ds]));
            } else if o.rrsets.iter().any(|s| s.rtype == NS) {
                o.delegation = true;
                if let Some(k) = child_key(&o.name) {
                    o.rrsets.push(set(DS, zone.ttl, vec![k.ds(&o.name).into_boxed_slice()]));
                }
            }
        }
        owners.sort_by(|a, b| canonical_cmp(&a.name, &b.name));
        let negative_ttl = zone.soa().ttl.min(zone.negative_ttl);
        let n = owners.len();
        for i in 0..n {
            let next = owners[(i + 1) % n].name.clone();
            let o = &mut owners[i];
            let mut types: Vec<u16> = o.rrsets.iter().map(|s| s.rtype).chain([RRSIG, NSEC]).collect();
            types.sort_unstable();
            types.dedup();
            let mut rd = next.to_vec();
            rd.extend(type_bitmap(&types));
            o.rrsets.push(set(NSEC, negative_ttl, vec![rd.into_boxed_slice()]));
        }
        View {
            origin,
            serial,
            content: zone.content,
            key,
            validity: Validity::at(now, max_ttl.max(zone.ttl)),
            negative_ttl,
            soa_ttl: zone.soa().ttl,
            owners,
        }
    }

    /// May this view answer for a zone served with `serial` and `content` at `now`?
    pub fn current(&self, serial: u32, content: &[u8; 32], now: u64) -> bool {
        self.serial == serial && self.content == *content && now < self.validity.refresh_at
    }

    fn find(&self, name: &[u8]) -> Result<usize, usize> {
        self.owners.binary_search_by(|o| canonical_cmp(&o.name, name))
    }

    fn sig<'s>(&self, o: &Owner, s: &'s RRset) -> Option<&'s [u8]> {
        if o.delegation && s.rtype == NS {
            return None;
        }
        Some(s.sig.get_or_init(|| {
            dnssec::rrsig(
                &self.key,
                &self.origin,
                &o.name,
                s.rtype,
                s.ttl,
                &s.rdatas,
                self.validity,
            )
            .into()
        }))
    }

    /// Write an RRset and its RRSIG (TTL `ttl`, for negative answers) into `out`.
    fn put(&self, out: &mut Vec<u8>, count: &mut u16, o: &Owner, s: &RRset, ttl: u32, dok: bool) {
        for rd in &s.rdatas {
            put_rr(out, &o.name, s.rtype, ttl, rd);
            *count += 1;
        }
        if let Some(sig) = self.sig(o, s).filter(|_| dok) {
            put_rr(out, &o.name, RRSIG, ttl, sig);
            *count += 1;
        }
    }

    fn put_type(&self, out: &mut Vec<u8>, count: &mut u16, at: usize, rtype: u16, ttl: Option<u32>, dok: bool) -> bool {
        let o = &self.owners[at];
        match o.rrsets.iter().find(|s| s.rtype == rtype) {
            Some(s) => {
                self.put(out, count, o, s, ttl.unwrap_or(s.ttl), dok);
                true
            }
            None => false,
        }
    }

    /// Does any owner lie strictly below `name` (an empty non-terminal then)?
    fn has_descendant(&self, name: &[u8]) -> bool {
        let i = match self.find(name) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        self.owners
            .get(i)
            .is_some_and(|o| o.name.len() > name.len() && wire::suffix_at(&o.name, name).is_some())
    }

    /// The NSEC that covers `name` (which is not an owner): the previous owner's.
    fn covering(&self, name: &[u8]) -> usize {
        match self.find(name) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    /// Append the records answering (`lower`, `qtype`), `lower` inside this zone, to `out`
    /// (after the question); counts go to `counts`. Returns the RCODE. Without `dok` (the
    /// query's DO bit) the same records without RRSIGs and NSEC proofs (RFC 4035 §3.2.1).
    pub fn answer(&self, lower: &[u8], qtype: u16, dok: bool, out: &mut Vec<u8>, counts: &mut [u16; 3]) -> u8 {
        match self.find(lower) {
            Ok(at) => {
                let o = &self.owners[at];
                let pick = match qtype {
                    // RFC 8482 §4.2: one RRset for ANY.
                    ANY => o.rrsets.first(),
                    t => o
                        .rrsets
                        .iter()
                        .find(|s| s.rtype == t)
                        .or_else(|| o.rrsets.iter().find(|s| s.rtype == CNAME)),
                };
                match pick {
                    Some(s) => {
                        self.put(out, &mut counts[0], o, s, s.ttl, dok);
                        if s.rtype == CNAME && qtype != CNAME {
                            self.chase(s, qtype, dok, out, counts);
                        }
                        0
                    }
                    None => {
                        self.nodata(at, dok, out, counts);
                        0
                    }
                }
            }
            Err(_) if self.has_descendant(lower) => {
                self.nodata(self.covering(lower), dok, out, counts);
                0
            }
            Err(_) => {
                self.soa(dok, out, counts);
                if !dok {
                    return 3;
                }
                let cover = self.covering(lower);
                self.put_type(out, &mut counts[1], cover, NSEC, None, dok);
                // The closest encloser's wildcard does not exist either (RFC 4035 §3.1.3.2).
                let mut ce: &[u8] = lower;
                while ce.len() > self.origin.len() {
                    ce = &ce[1 + ce[0] as usize..];
                    if self.find(ce).is_ok() || self.has_descendant(ce) {
                        break;
                    }
                }
                let mut wildcard = b"\x01*".to_vec();
                wildcard.extend_from_slice(ce);
                let wc = self.covering(&wildcard);
                if wc != cover {
                    self.put_type(out, &mut counts[1], wc, NSEC, None, dok);
                }
                3
            }
        }
    }

    /// What a transfer adds to the unsigned records: the DNSKEY, CDS, CDNSKEY, DS and NSEC
    /// RRsets and an RRSIG for every authoritative RRset, each as one wire RR.
    pub fn transfer_records(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for o in &self.owners {
            for s in &o.rrsets {
                if dnssec_type(s.rtype) {
                    for rd in &s.rdatas {
                        let mut rr = Vec::new();
                        put_rr(&mut rr, &o.name, s.rtype, s.ttl, rd);
                        out.push(rr);
                    }
                }
                if let Some(sig) = self.sig(o, s) {
                    let mut rr = Vec::new();
                    put_rr(&mut rr, &o.name, RRSIG, s.ttl, sig);
                    out.push(rr);
                }
            }
        }
        out
    }

    /// One step of CNAME chasing inside the zone, as the unsigned answers do.
    fn chase(&self, cname: &RRset, qtype: u16, dok: bool, out: &mut Vec<u8>, counts: &mut [u16; 3]) {
        let Some(target) = cname.rdatas.first() else { return };
        if let Ok(t) = self.find(target) {
            self.put_type(out, &mut counts[0], t, qtype, None, dok);
        }
    }

    fn soa(&self, dok: bool, out: &mut Vec<u8>, counts: &mut [u16; 3]) {
        let ttl = self.negative_ttl.min(self.soa_ttl);
        self.put_type(out, &mut counts[1], 0, SOA, Some(ttl), dok);
    }

    /// NODATA: the SOA and the NSEC at (or, for an empty non-terminal, covering) the name.
    fn nodata(&self, nsec_at: usize, dok: bool, out: &mut Vec<u8>, counts: &mut [u16; 3]) {
        self.soa(dok, out, counts);
        if dok {
            self.put_type(out, &mut counts[1], nsec_at, NSEC, None, dok);
        }
    }
}

fn put_rr(out: &mut Vec<u8>, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) {
    out.extend_from_slice(owner);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
}

/// Signed views by zone origin, bounded: two generations of at most `cap / 2` views each.
pub(crate) struct Cache<V = View> {
    cap: usize,
    gens: Mutex<[Generation<V>; 2]>,
}

type Generation<V> = FxHashMap<Box<[u8]>, Arc<V>>;

/// Views kept at most. A view of a typical zone is a few kilobytes once signed.
pub(crate) const CACHE_VIEWS: usize = 8192;

impl<V> Default for Cache<V> {
    fn default() -> Cache<V> {
        Cache::new(CACHE_VIEWS)
    }
}

impl<V> Cache<V> {
    pub fn new(cap: usize) -> Cache<V> {
        Cache {
            cap: cap.max(2),
            gens: Mutex::new([FxHashMap::default(), FxHashMap::default()]),
        }
    }

    /// The view of `origin` if `ok` accepts it.
    pub fn get(&self, origin: &[u8], ok: impl Fn(&V) -> bool) -> Option<Arc<V>> {
        let mut g = self.gens.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = g[0].get(origin).filter(|v| ok(v)) {
            return Some(v.clone());
        }
        let v = g[1].remove(origin).filter(|v| ok(v))?;
        self.insert_locked(&mut g, origin, v.clone());
        Some(v)
    }

    pub fn insert(&self, origin: &[u8], view: Arc<V>) {
        let mut g = self.gens.lock().unwrap_or_else(|e| e.into_inner());
        self.insert_locked(&mut g, origin, view);
    }

    fn insert_locked(&self, g: &mut [Generation<V>; 2], origin: &[u8], view: Arc<V>) {
        if g[0].len() >= self.cap / 2 && !g[0].contains_key(origin) {
            g[1] = std::mem::take(&mut g[0]);
        }
        g[0].insert(origin.into(), view);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{DnssecAlgorithm, Settings};

    const TEXT: &str = "[provider.p]\ndisplay_name = \"P\"\n[[provider.p.server]]\nprotocol = \"imap\"\n\
        host = \"mail.example.net\"\nport = 993\nsecurity = \"tls\"\n\
        [[provider.p.server]]\nprotocol = \"smtp\"\nhost = \"mail.example.net\"\nport = 465\nsecurity = \"tls\"\n[[domain]]\nname = \"example.com\"\n\
        provider = \"p\"\n[domain.dns]\nnameservers = [\"ns1.example.net.\"]\nspf = \"v=spf1 mx -all\"\n";

    fn zone(text: &str) -> records::Zone {
        let s = Settings::from_toml(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let dr = records::for_name(&s, &s.domains[0], "example.com").unwrap();
        dr.zones[0].clone()
    }

    fn key() -> Arc<ZoneKey> {
        let dir = std::env::temp_dir().join(format!("mailconf-signed-view-{}", std::process::id()));
        Arc::new(dnssec::zone_key(&dir, "example.com", DnssecAlgorithm::EcdsaP256Sha256).unwrap())
    }

    /// The RRSIG RDATA after the ANSWER records of `out` written by `View::answer`.
    fn rrsigs(out: &[u8]) -> Vec<Vec<u8>> {
        let mut i = 0;
        let mut sigs = Vec::new();
        while i < out.len() {
            let name_end = i + out[i..].iter().position(|&b| b == 0).unwrap() + 1;
            let rtype = u16::from_be_bytes([out[name_end], out[name_end + 1]]);
            let len = u16::from_be_bytes([out[name_end + 8], out[name_end + 9]]) as usize;
            if rtype == RRSIG {
                sigs.push(out[name_end + 10..name_end + 10 + len].to_vec());
            }
            i = name_end + 10 + len;
        }
        sigs
    }

    #[test]
    fn signatures_verify_and_a_view_is_never_served_stale_or_for_other_data() {
        let z = zone(TEXT);
        let key = key();
        let t0 = 1_800_000_000u64;
        let view = View::build(&z, 7, key.clone(), |_| None, t0);
        let (mut out, mut counts) = (Vec::new(), [0u16; 3]);
        let rcode = view.answer(&wire::lower_wire("example.com"), 16, true, &mut out, &mut counts);
        assert_eq!((rcode, counts), (0, [2, 0, 0]), "TXT and its RRSIG");
        let sig = &rrsigs(&out)[0];
        // Inception 90 min back, expiration 14 days ahead, our key tag.
        assert_eq!(
            u32::from_be_bytes(sig[8..12].try_into().unwrap()) as u64,
            t0 + 14 * 86_400
        );
        assert_eq!(u32::from_be_bytes(sig[12..16].try_into().unwrap()) as u64, t0 - 5400);
        assert_eq!(u16::from_be_bytes([sig[16], sig[17]]), key.tag);
        // The signature verifies with the DNSKEY's public key over RFC 4034's signed data.
        let signer_end = 18 + wire::lower_wire("example.com").len();
        let mut data = sig[..signer_end].to_vec();
        let owner = wire::lower_wire("example.com");
        let txt = b"\x0ev=spf1 mx -all";
        data.extend_from_slice(&owner);
        data.extend_from_slice(&[0, 16, 0, 1]);
        data.extend_from_slice(&sig[4..8]);
        data.extend_from_slice(&(txt.len() as u16).to_be_bytes());
        data.extend_from_slice(txt);
        let mut public = vec![4u8];
        public.extend_from_slice(&key.dnskey[4..]);
        let verify = |d: &[u8]| {
            ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &public)
                .verify(d, &sig[signer_end..])
                .is_ok()
        };
        assert!(verify(&data), "signature over the TXT RRset verifies");
        let last = data.len() - 1;
        data[last] ^= 1;
        assert!(!verify(&data), "and not over other data");
        // Fake clock: current until Knot's refresh point, then rebuilt (never served stale).
        assert!(view.current(7, &z.content, t0));
        let refresh = t0 + 14 * 86_400 - (14 * 8_640 + 3600 + z.ttl as u64);
        assert!(view.current(7, &z.content, refresh - 1));
        assert!(!view.current(7, &z.content, refresh));
        // Other data (a changed record) or another serial: never this view's signatures.
        let changed = zone(&TEXT.replace("mx -all", "mx ~all"));
        assert_ne!(changed.content, z.content);
        assert!(!view.current(7, &changed.content, t0));
        assert!(!view.current(8, &z.content, t0));
    }

    #[test]
    fn nxdomain_proves_the_name_and_the_wildcard_absent_and_nodata_shows_the_types() {
        let z = zone(TEXT);
        let view = View::build(&z, 1, key(), |_| None, 1_800_000_000);
        let (mut out, mut counts) = (Vec::new(), [0u16; 3]);
        let rcode = view.answer(&wire::lower_wire("zz.example.com"), 1, true, &mut out, &mut counts);
        // SOA + RRSIG, NSEC covering zz + RRSIG, NSEC covering *.example.com + RRSIG.
        assert_eq!((rcode, counts), (3, [0, 6, 0]));
        let (mut out, mut counts) = (Vec::new(), [0u16; 3]);
        assert_eq!(
            view.answer(&wire::lower_wire("zz.example.com"), 1, false, &mut out, &mut counts),
            3
        );
        assert_eq!(counts, [0, 1, 0], "without DO: the SOA alone, as unsigned answers");
        let (mut out, mut counts) = (Vec::new(), [0u16; 3]);
        assert_eq!(
            view.answer(&wire::lower_wire("example.com"), 99, true, &mut out, &mut counts),
            0
        );
        assert_eq!(counts, [0, 4, 0], "NODATA: SOA, NSEC and their RRSIGs");
    }

    #[test]
    fn canonical_order_of_rfc_4034_section_6_1() {
        let names = [
            "example",
            "a.example",
            "yljkjljk.a.example",
            "z.a.example",
            "zabc.a.example",
            "z.example",
            "*.z.example",
        ];
        let mut wires: Vec<Box<[u8]>> = names.iter().map(|n| wire::lower_wire(n)).collect();
        wires.reverse();
        wires.sort_by(|a, b| canonical_cmp(a, b));
        let back: Vec<String> = wires
            .iter()
            .map(|w| wire::name_from_wire(w).to_ascii().trim_end_matches('.').to_string())
            .collect();
        // RFC 4034 §6.1's list, less the names with escaped octets.
        assert_eq!(
            back,
            [
                "example",
                "a.example",
                "yljkjljk.a.example",
                "z.a.example",
                "zabc.a.example",
                "z.example",
                "*.z.example"
            ]
            .map(String::from)
            .to_vec()
            .into_iter()
            .collect::<Vec<_>>()
        );
    }

    #[test]
    fn type_bitmap_of_rfc_4034_section_4_3() {
        // A MX RRSIG NSEC TYPE1234
        let bits = type_bitmap(&[1, 15, 46, 47, 1234]);
        assert_eq!(
            bits,
            [
                0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x20
            ]
        );
    }

    #[test]
    fn cache_is_bounded_keeps_what_is_used_and_drops_what_is_not_current() {
        let c: Cache<u32> = Cache::new(4);
        for i in 0..100u32 {
            c.insert(&i.to_be_bytes(), Arc::new(i));
            // The zone asked all along stays.
            assert_eq!(c.get(&0u32.to_be_bytes(), |_| true).as_deref(), Some(&0));
        }
        let g = c.gens.lock().unwrap();
        assert!(g[0].len() + g[1].len() <= 4, "bounded");
        drop(g);
        assert!(c.get(&50u32.to_be_bytes(), |_| true).is_none(), "evicted");
        assert_eq!(c.get(&99u32.to_be_bytes(), |_| true).as_deref(), Some(&99));
        // A view that is no longer current (other serial, content, or past refresh) is not served.
        assert!(c.get(&99u32.to_be_bytes(), |v| *v != 99).is_none());
    }
}
