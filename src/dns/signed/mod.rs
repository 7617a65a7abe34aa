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
//! - **Positive answers need no view once signed.** The RRSIGs a view made for the RRset of a
//!   positive answer are also kept in a second bounded cache ([`Sigs`]), keyed by a 128-bit
//!   hash of the zone's origin, serial and content fingerprint and the RRset's name and type,
//!   with the signatures' refresh time. A DO query whose RRSIGs are there is answered from the
//!   zone's unsigned blob (the same records the view signed: same zone content) plus those
//!   RRSIGs. That entry is the signatures alone (~100 bytes) where a view is ~12 KiB, so the
//!   RRsets clients ask for stay signed for every zone at 100,000 domains; a changed record is
//!   a new fingerprint, so a new key, and old signatures are never found for new data.

mod build;
mod cache;
mod canonical;
mod present;
#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};

use super::dnssec::{self, Validity, ZoneKey};
use super::wire;
use canonical::canonical_cmp;

pub(crate) use build::{Keys, max_ttl};
pub(crate) use cache::{Cache, auto_size};

/// The RRSIGs of one positive answer's RRset, in few bytes: their refresh time (unix seconds,
/// 4 octets), then per key the RRSIG RDATA without its signer name (the zone's origin, put back
/// when answering): the 18 fixed octets and the 64-octet signature (P-256 and Ed25519 alike).
pub(crate) struct Signed(Box<[u8]>);

const SIG_FIXED: usize = 18;
const SIG_LEN: usize = 64;

impl Signed {
    /// From `RRset::sig`'s form (each RRSIG RDATA after its 2-octet length) of a zone `origin`;
    /// `None` if a signature is not 64 octets or not by `origin` (never cached then).
    fn compact(refresh_at: u64, origin: &[u8], sigs: RrsigIter) -> Option<Signed> {
        let mut b = u32::try_from(refresh_at).ok()?.to_be_bytes().to_vec();
        for rd in sigs {
            if rd.len() != SIG_FIXED + origin.len() + SIG_LEN || rd[SIG_FIXED..SIG_FIXED + origin.len()] != *origin {
                return None;
            }
            b.extend_from_slice(&rd[..SIG_FIXED]);
            b.extend_from_slice(&rd[SIG_FIXED + origin.len()..]);
        }
        (b.len() > 4).then(|| Signed(b.into()))
    }
}

/// RRSIGs of positive answers by [`sig_key`] (see the module's comment), bounded: at most `cap`
/// entries; when full, a quarter of them (chosen by their key's low bits, a different quarter
/// each time) makes room. So a working set up to `cap` is never evicted, and memory never
/// exceeds `cap` entries.
#[derive(Default)]
pub(crate) struct Sigs {
    cap: std::sync::atomic::AtomicUsize,
    map: std::sync::Mutex<(rustc_hash::FxHashMap<u128, Signed>, u8)>,
}

/// Memory of one [`Sigs`] entry: 4 + 82 octets in an allocation of 96, and the table's slot
/// (32 octets) at its load factor.
pub(crate) const SIG_BYTES: usize = 144;

/// Memory the RRSIG cache takes at most.
pub(crate) const AUTO_SIG_BYTES: usize = 128 << 20;

/// The RRSIG cache's size for `signed_zones` signed zones: room for 16 RRsets a zone (twice the
/// ~8 a mail client asks for), at most [`AUTO_SIG_BYTES`] (932,067 entries); at least 4.
pub(crate) fn auto_sig_size(signed_zones: usize) -> usize {
    (16 * signed_zones).clamp(4, AUTO_SIG_BYTES / SIG_BYTES)
}

impl Sigs {
    pub fn set_capacity(&self, cap: usize) {
        self.cap.store(cap.max(4), std::sync::atomic::Ordering::Relaxed);
    }

    pub fn insert(&self, key: u128, value: Signed) {
        let mut g = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (map, round) = &mut *g;
        if map.len() >= self.cap.load(std::sync::atomic::Ordering::Relaxed) && !map.contains_key(&key) {
            let drop = *round & 3;
            *round = round.wrapping_add(1);
            map.retain(|k, _| (*k as u8) & 3 != drop);
        }
        map.insert(key, value);
    }

    /// If the RRSIGs of the positive answer `key` in zone `origin` are here and not past their
    /// refresh at `now`, append each as an RR after the answer's records in `out`: owner the
    /// question's name (a pointer to offset 12), TTL the RRset's (the RRSIG's original TTL).
    /// Returns how many.
    pub fn put(&self, key: u128, now: u64, origin: &[u8], out: &mut Vec<u8>) -> Option<u16> {
        let g = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let e = g.0.get(&key)?;
        let (refresh, sigs) = e.0.split_first_chunk::<4>()?;
        if now >= u64::from(u32::from_be_bytes(*refresh)) {
            return None;
        }
        let mut n = 0;
        for one in sigs.chunks_exact(SIG_FIXED + SIG_LEN) {
            let (fixed, sig) = one.split_at(SIG_FIXED);
            out.extend_from_slice(&[0xC0, 12]);
            out.extend_from_slice(&RRSIG.to_be_bytes());
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&fixed[4..8]);
            out.extend_from_slice(&((SIG_FIXED + origin.len() + SIG_LEN) as u16).to_be_bytes());
            out.extend_from_slice(fixed);
            out.extend_from_slice(origin);
            out.extend_from_slice(sig);
            n += 1;
        }
        Some(n)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.lock().unwrap().0.len()
    }
}

/// The key of the RRSIGs of (`lower`, `qtype`) in the zone `origin` served as `serial` with
/// `content`: 128 bits of XXH3 over all of them (wire names end in their root label, so the
/// concatenation is unambiguous).
pub(crate) fn sig_key(origin: &[u8], serial: u32, content: &[u8; 32], lower: &[u8], qtype: u16) -> u128 {
    let mut buf = [0u8; 2 * 255 + 38];
    let mut n = 0;
    for part in [origin, &serial.to_be_bytes(), content, lower, &qtype.to_be_bytes()] {
        let part = &part[..part.len().min(buf.len() - n)];
        buf[n..n + part.len()].copy_from_slice(part);
        n += part.len();
    }
    xxhash_rust::xxh3::xxh3_128(&buf[..n])
}

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
    /// RRSIG RDATA, one per signing key (`View::signers`), each after its length (two octets,
    /// big-endian): one allocation either way. Never made for NS at a delegation (not
    /// authoritative, RFC 4035 §2.2).
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
    /// The KSKs: one, or the old and the new one during a KSK rollover (`rolls::Roll`). They
    /// sign the apex DNSKEY, CDS and CDNSKEY RRsets.
    ksks: Box<[Arc<ZoneKey>]>,
    /// The keys that sign every other RRset: the ZSK (`dnssec::Zsks`); the KSKs and the ZSK in
    /// the first epochs after an upgrade; the KSKs if the ZSK could not be derived.
    others: Box<[Arc<ZoneKey>]>,
    validity: Validity,
    negative_ttl: u32,
    soa_ttl: u32,
    /// Canonical order; the apex first.
    owners: Vec<Owner>,
}

impl View {
    /// May this view answer for a zone served with `serial` and `content` at `now`?
    pub fn current(&self, serial: u32, content: &[u8; 32], now: u64) -> bool {
        self.serial == serial && self.content == *content && now < self.validity.refresh_at
    }

    /// Heap bytes this view holds now (signatures made so far included), without the
    /// allocator's own overhead: for the cache's memory figure (`cache::VIEW_BYTES`).
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        let mut n = self.origin.len() + self.owners.capacity() * std::mem::size_of::<Owner>();
        for o in &self.owners {
            n += o.name.len() + o.rrsets.capacity() * std::mem::size_of::<RRset>();
            for s in &o.rrsets {
                n += s.rdatas.capacity() * std::mem::size_of::<Box<[u8]>>();
                n += s.rdatas.iter().map(|r| r.len()).sum::<usize>();
                n += s.sig.get().map_or(0, |g| g.len());
            }
        }
        n
    }

    /// The bytes a compact view could not do without: names, RDATA and signatures, plus a
    /// 4-byte offset per owner, RRset and RDATA into one buffer; and this view's number of heap
    /// allocations. What a one-buffer layout would save (issue 12's "more compact view").
    #[cfg(test)]
    pub fn compact_bytes(&self) -> (usize, usize) {
        let (mut bytes, mut allocations) = (self.origin.len(), 2);
        for o in &self.owners {
            bytes += o.name.len() + 4;
            allocations += 2;
            for s in &o.rrsets {
                bytes += 4 + s.rdatas.iter().map(|r| r.len() + 4).sum::<usize>();
                bytes += s.sig.get().map_or(0, |g| g.len());
                allocations += 1 + s.rdatas.len() + usize::from(s.sig.get().is_some());
            }
        }
        (bytes, allocations)
    }

    /// The keys, for people: `KSK 123, ZSK 456 signs, ZSK 789` (DNSKEY order; "signs": the
    /// RRsets other than the apex's key sets, which the KSKs sign).
    pub fn key_summary(&self) -> String {
        let mut parts = Vec::new();
        for s in self
            .owners
            .iter()
            .take(1)
            .flat_map(|o| &o.rrsets)
            .filter(|s| s.rtype == DNSKEY)
        {
            for rd in &s.rdatas {
                let role = if rd.starts_with(&dnssec::ZSK_FLAGS.to_be_bytes()) {
                    "ZSK"
                } else {
                    "KSK"
                };
                let signs = self.others.iter().any(|k| *k.dnskey == **rd);
                parts.push(format!(
                    "{role} {}{}",
                    dnssec::key_tag(rd),
                    if signs { " signs" } else { "" }
                ));
            }
        }
        parts.join(", ")
    }

    fn find(&self, name: &[u8]) -> Result<usize, usize> {
        self.owners.binary_search_by(|o| canonical_cmp(&o.name, name))
    }

    /// The keys that sign RRset `rtype` at `owner`: the KSKs for the apex's key sets (what
    /// the parent's DS vouches for), the ZSK for the rest.
    fn signers(&self, owner: &[u8], rtype: u16) -> &[Arc<ZoneKey>] {
        if matches!(rtype, DNSKEY | CDS | CDNSKEY) && *owner == *self.origin {
            &self.ksks
        } else {
            &self.others
        }
    }

    /// The RRSIGs of `s` (at `o`), one per signing key, made the first time they are needed.
    fn sigs<'s>(&self, o: &Owner, s: &'s RRset) -> RrsigIter<'s> {
        if o.delegation && s.rtype == NS {
            return RrsigIter(&[]);
        }
        RrsigIter(s.sig.get_or_init(|| {
            let mut all = Vec::new();
            for key in self.signers(&o.name, s.rtype) {
                let one = dnssec::rrsig(key, &self.origin, &o.name, s.rtype, s.ttl, &s.rdatas, self.validity);
                all.extend_from_slice(&(one.len() as u16).to_be_bytes());
                all.extend_from_slice(&one);
            }
            all.into()
        }))
    }

    /// The RRSIGs (made now if not yet) of the RRset of `qtype` at `lower`, for the RRSIG cache
    /// ([`Sigs`]): only where a DO query for it is a plain positive answer, that RRset at that
    /// name, with its RRSIGs and nothing else; not for DNSSEC's own types (DS belongs to the
    /// parent), ANY, CNAMEs or delegations.
    pub fn positive_sigs(&self, lower: &[u8], qtype: u16) -> Option<Signed> {
        if dnssec_type(qtype) || matches!(qtype, ANY | CNAME) {
            return None;
        }
        let o = &self.owners[self.find(lower).ok()?];
        if o.delegation {
            return None;
        }
        let s = o.rrsets.iter().find(|s| s.rtype == qtype)?;
        Signed::compact(self.validity.refresh_at, &self.origin, self.sigs(o, s))
    }

    /// Write an RRset and its RRSIG (TTL `ttl`, for negative answers) into `out`.
    fn put(&self, out: &mut Vec<u8>, count: &mut u16, o: &Owner, s: &RRset, ttl: u32, dok: bool) {
        for rd in &s.rdatas {
            put_rr(out, &o.name, s.rtype, ttl, rd);
            *count += 1;
        }
        if dok {
            for sig in self.sigs(o, s) {
                put_rr(out, &o.name, RRSIG, ttl, sig);
                *count += 1;
            }
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
                for sig in self.sigs(o, s) {
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

/// The RRSIG RDATAs of one RRset as `RRset::sig` keeps them.
struct RrsigIter<'a>(&'a [u8]);

impl<'a> Iterator for RrsigIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.0.split_first_chunk::<2>()?;
        let (one, rest) = rest.split_at(usize::from(u16::from_be_bytes(*len)).min(rest.len()));
        self.0 = rest;
        Some(one)
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
