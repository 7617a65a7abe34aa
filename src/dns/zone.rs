//! Zone building: one mail domain name's zones (from `records`) → compact, pre-encoded answers.
//!
//! Every answer is encoded once, as the resource records that follow the question, with names
//! under the mail domain written as compression pointers into the question. Those bytes are
//! then the same for every domain that publishes the same data (the SRV answers of one provider,
//! the web host addresses, the SOA of one hoster with its serial patched in…), so they are
//! interned: a domain costs its names, a few indexes and what is really its own (a DMARC
//! address, say), not a copy of every answer. See `answer` for how they are sent.
//!
//! Over 400 lines because the blob layout, the shape, the zone and the builder that makes them
//! are one design: each is read with the others (the encoder itself is in `encode`).

use std::collections::HashSet;
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_server::proto::rr::{Name, RData, Record, RecordType};

use super::encode::Encoder;
use super::wire;
use crate::records;

/// Resource records that follow the question of a response, encoded once. One allocation:
/// a header (ANCOUNT, NSCOUNT, ARCOUNT, the number of domain pointers and of serials), the
/// offsets of the compression pointers to the mail domain's name in the question, the offsets
/// of SOA serials (the zone's served serial goes there), then the records.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Blob {
    data: Box<[u8]>,
}

const BLOB_HEADER: usize = 8;

impl Blob {
    pub(super) fn new(bytes: &[u8], counts: [u16; 3], domain_ptrs: &[u16], serials: &[u16]) -> Blob {
        let mut data = Vec::with_capacity(BLOB_HEADER + 2 * (domain_ptrs.len() + serials.len()) + bytes.len());
        for c in counts {
            data.extend_from_slice(&c.to_be_bytes());
        }
        data.push(domain_ptrs.len() as u8);
        data.push(serials.len() as u8);
        for p in domain_ptrs.iter().chain(serials) {
            data.extend_from_slice(&p.to_be_bytes());
        }
        data.extend_from_slice(bytes);
        Blob {
            data: data.into_boxed_slice(),
        }
    }

    fn u16_at(&self, i: usize) -> u16 {
        u16::from_be_bytes([self.data[i], self.data[i + 1]])
    }

    /// ANCOUNT, NSCOUNT, ARCOUNT.
    pub fn counts(&self) -> [u16; 3] {
        [self.u16_at(0), self.u16_at(2), self.u16_at(4)]
    }

    fn offsets(&self) -> (usize, usize, usize) {
        let (ptrs, sers) = (self.data[6] as usize, self.data[7] as usize);
        (ptrs, sers, BLOB_HEADER + 2 * (ptrs + sers))
    }

    /// The encoded records.
    pub fn bytes(&self) -> &[u8] {
        &self.data[self.offsets().2..]
    }

    /// Append the records to `out`; `domain_at` is the offset of the mail domain's name in the
    /// message (inside the question).
    pub fn write(&self, out: &mut Vec<u8>, domain_at: usize, serial: u32) {
        let (ptrs, sers, start) = self.offsets();
        let base = out.len();
        out.extend_from_slice(&self.data[start..]);
        let ptr = (0xC000 | domain_at as u16).to_be_bytes();
        for k in 0..ptrs {
            let p = base + self.u16_at(BLOB_HEADER + 2 * k) as usize;
            out[p..p + 2].copy_from_slice(&ptr);
        }
        for k in 0..sers {
            let p = base + self.u16_at(BLOB_HEADER + 2 * (ptrs + k)) as usize;
            out[p..p + 4].copy_from_slice(&serial.to_be_bytes());
        }
    }
}

/// The names of a zone and which blob answers which type there; shared by every zone with the
/// same layout (which is most zones of one provider).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Shape {
    /// Owner names relative to the mail domain (lower-case wire labels, no root), each with
    /// (type, blob index) in zone order; empty for an empty non-terminal. A blob index below
    /// [`OWN`] is into `shared`, else into the zone's own blobs.
    names: Box<[NameEntry]>,
    /// Index of the negative-answer blob (the SOA in the authority section).
    pub negative: u16,
    /// Blobs that hold nothing of the mail domain's name: the same for every zone of this shape.
    shared: Box<[Arc<Blob>]>,
}

/// Blob indexes from here on are into [`Zone::own`].
const OWN: u16 = 0x8000;

/// An owner name relative to the mail domain and its (type, blob index) pairs.
type NameEntry = (Box<[u8]>, Box<[(u16, u16)]>);

/// What a name holds, for the answering code.
pub(crate) enum Found<'z> {
    /// The name has records of this type (or a CNAME); the blob answers the query.
    Answer(&'z Blob),
    /// The name exists (perhaps as an empty non-terminal) but not with this type.
    NoData,
    NxDomain,
}

/// One zone, compact.
#[derive(Debug)]
pub(crate) struct Zone {
    /// Lower-case wire origin.
    pub origin: Box<[u8]>,
    /// Wire length of the mail domain's name (a suffix of `origin`).
    pub domain_len: u8,
    /// The serial served; see [`Zone::follow`].
    pub serial: u32,
    /// Fingerprint of everything but the SOA serial (`records::Zone::content`).
    pub content: [u8; 32],
    shape: Arc<Shape>,
    /// Blobs that spell out the mail domain's name (a DMARC address, an SRV target).
    own: Box<[Arc<Blob>]>,
    pub transfer_to: Arc<[SocketAddr]>,
    /// Signed with this algorithm (DO queries get `signed` answers); set by `Authority`.
    pub dnssec: Option<crate::settings::DnssecAlgorithm>,
    /// A signed zone's signing epoch, low 16 bits (`dnssec::Epochs`); set by `Authority`. In
    /// the struct's padding: a zone is 96 bytes with or without it.
    pub epoch: u16,
}

// 130,000 zones at 100k domains: keep a zone at 96 bytes.
const _: () = assert!(std::mem::size_of::<Zone>() <= 96);

impl Zone {
    /// Look a query up: `rel` is the query name relative to the mail domain (lower-case wire
    /// labels without the domain's), `qtype` its type.
    pub fn find(&self, rel: &[u8], qtype: u16) -> Found<'_> {
        let Some((_, types)) = self.shape.names.iter().find(|(n, _)| **n == *rel) else {
            return Found::NxDomain;
        };
        let pick = match qtype {
            // RFC 8482 §4.2: answer ANY with one RRset rather than everything.
            ANY => types.first(),
            t => types
                .iter()
                .find(|(ty, _)| *ty == t)
                .or_else(|| types.iter().find(|(ty, _)| *ty == CNAME)),
        };
        match pick {
            Some((_, i)) => Found::Answer(self.blob(*i)),
            None => Found::NoData,
        }
    }

    /// The negative-answer blob (SOA with the negative TTL in the authority section).
    pub fn negative(&self) -> &Blob {
        self.blob(self.shape.negative)
    }

    fn blob(&self, i: u16) -> &Blob {
        if i >= OWN {
            &self.own[(i - OWN) as usize]
        } else {
            &self.shape.shared[i as usize]
        }
    }

    /// Keep serials moving forward across reloads and restarts (RFC 1982 arithmetic):
    /// unchanged content keeps the served serial; changed content takes the new serial if it
    /// is greater, else old + 1.
    pub fn follow(&mut self, prev_serial: u32, prev_content: &[u8; 32]) {
        self.serial = follow(self.serial, &self.content, prev_serial, prev_content);
    }

    /// Origin as a name (for logs, NOTIFY and transfers).
    pub fn origin_name(&self) -> Name {
        wire::name_from_wire(&self.origin)
    }
}

/// [`Zone::follow`] for any zone: the serial to serve for content `content` whose own serial
/// is `serial`, after `prev_serial` was served for `prev_content`.
pub(crate) fn follow(serial: u32, content: &[u8; 32], prev_serial: u32, prev_content: &[u8; 32]) -> u32 {
    if prev_content == content {
        prev_serial
    } else if serial_greater(serial, prev_serial) {
        serial
    } else {
        prev_serial.wrapping_add(1)
    }
}

const ANY: u16 = 255;
const CNAME: u16 = 5;

/// RFC 1982 §3.2: is `a` greater than `b` in serial number arithmetic?
pub(crate) fn serial_greater(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// Shared blobs and shapes, across all zones and reloads.
#[derive(Default)]
pub(crate) struct Interner {
    blobs: Mutex<HashSet<Arc<Blob>>>,
    shapes: Mutex<HashSet<Arc<Shape>>>,
    /// Secondaries lists: usually one for all zones.
    secondaries: Mutex<HashSet<Arc<[SocketAddr]>>>,
}

impl Interner {
    fn blob(&self, b: Blob) -> Arc<Blob> {
        intern(&self.blobs, b)
    }

    fn shape(&self, s: Shape) -> Arc<Shape> {
        intern(&self.shapes, s)
    }

    fn secondaries(&self, list: &[SocketAddr]) -> Arc<[SocketAddr]> {
        let mut set = self.secondaries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = set.get(list) {
            return found.clone();
        }
        let arc: Arc<[SocketAddr]> = list.into();
        set.insert(arc.clone());
        arc
    }

    /// Forget what no zone uses any more (after a reload dropped the old zones).
    pub fn purge(&self) {
        for_each_locked(&self.blobs, |set| set.retain(|b| Arc::strong_count(b) > 1));
        for_each_locked(&self.shapes, |set| set.retain(|s| Arc::strong_count(s) > 1));
        for_each_locked(&self.secondaries, |set| set.retain(|s| Arc::strong_count(s) > 1));
    }

    /// Distinct blobs and their bytes (for logs and the sizing figures).
    pub fn stats(&self) -> (usize, usize) {
        let set = self.blobs.lock().unwrap_or_else(|e| e.into_inner());
        (set.len(), set.iter().map(|b| b.bytes().len()).sum())
    }
}

fn intern<T: Hash + Eq>(set: &Mutex<HashSet<Arc<T>>>, value: T) -> Arc<T> {
    let mut set = set.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = set.get(&value) {
        return found.clone();
    }
    let arc = Arc::new(value);
    set.insert(arc.clone());
    arc
}

fn for_each_locked<T: ?Sized>(set: &Mutex<HashSet<Arc<T>>>, f: impl FnOnce(&mut HashSet<Arc<T>>)) {
    f(&mut set.lock().unwrap_or_else(|e| e.into_inner()));
}

/// Build the compact zones of one mail domain name.
pub(crate) fn build(dr: &records::DomainRecords, interner: &Interner) -> Vec<Zone> {
    let domain = wire::lower_wire(&dr.domain);
    let transfer_to = interner.secondaries(&dr.transfer_to);
    // Address records of every zone of this name, for the additional section.
    let addresses: Vec<(Box<[u8]>, &Record)> = dr
        .zones
        .iter()
        .flat_map(|z| z.records())
        .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA))
        .map(|r| (wire::name_wire(&r.name), r))
        .collect();
    dr.zones
        .iter()
        .map(|z| {
            ZoneBuilder {
                zone: z,
                domain: &domain,
                addresses: &addresses,
                interner,
                shared: Vec::new(),
                own: Vec::new(),
            }
            .finish(transfer_to.clone())
        })
        .collect()
}

struct ZoneBuilder<'a> {
    zone: &'a records::Zone,
    domain: &'a [u8],
    addresses: &'a [(Box<[u8]>, &'a Record)],
    interner: &'a Interner,
    shared: Vec<Arc<Blob>>,
    own: Vec<Arc<Blob>>,
}

impl ZoneBuilder<'_> {
    fn finish(mut self, transfer_to: Arc<[SocketAddr]>) -> Zone {
        let z = self.zone;
        let origin = wire::name_wire(&z.origin);
        // Owners in zone order, each with its records in order.
        let mut owners: Vec<(Box<[u8]>, Vec<&Record>)> = Vec::new();
        for r in z.records() {
            let w = wire::name_wire(&r.name);
            match owners.iter_mut().find(|(n, _)| *n == w) {
                Some((_, v)) => v.push(r),
                None => owners.push((w, vec![r])),
            }
        }
        let mut names: Vec<NameEntry> = Vec::new();
        for (owner, recs) in &owners {
            let mut types: Vec<(u16, u16)> = Vec::new();
            for r in recs {
                let t = u16::from(r.record_type());
                if types.iter().any(|(ty, _)| *ty == t) {
                    continue;
                }
                let rrset: Vec<&Record> = recs
                    .iter()
                    .copied()
                    .filter(|x| u16::from(x.record_type()) == t)
                    .collect();
                let i = self.positive(&rrset);
                types.push((t, i));
                // A CNAME also answers the types its in-zone target has (one step of chasing).
                if t == CNAME
                    && let RData::CNAME(c) = &r.data
                {
                    let target = wire::name_wire(&c.0);
                    if let Some((_, trecs)) = owners.iter().find(|(n, _)| *n == target) {
                        let mut seen = Vec::new();
                        for tr in trecs {
                            let tt = u16::from(tr.record_type());
                            if seen.contains(&tt) || tt == CNAME {
                                continue;
                            }
                            seen.push(tt);
                            let chased: Vec<&Record> = trecs
                                .iter()
                                .copied()
                                .filter(|x| u16::from(x.record_type()) == tt)
                                .collect();
                            let i = self.cname_chase(r, &target, &chased);
                            types.push((tt, i));
                        }
                    }
                }
            }
            names.push((self.relative(owner), types.into_boxed_slice()));
        }
        // Empty non-terminals between owners and the apex exist too (NODATA, not NXDOMAIN).
        for (owner, _) in &owners {
            let mut n: &[u8] = owner;
            while n.len() > origin.len() {
                n = &n[1 + n[0] as usize..];
                let rel = self.relative(n);
                if !names.iter().any(|(x, _)| *x == rel) {
                    names.push((rel, Box::new([])));
                }
            }
        }
        let negative = self.negative(&origin);
        let shape = self.interner.shape(Shape {
            names: names.into_boxed_slice(),
            negative,
            shared: self.shared.into_boxed_slice(),
        });
        Zone {
            domain_len: self.domain.len() as u8,
            origin,
            serial: z.serial,
            content: z.content,
            shape,
            own: self.own.into_boxed_slice(),
            transfer_to,
            dnssec: None,
            epoch: 0,
        }
    }

    /// Owner relative to the mail domain: the labels before it.
    fn relative(&self, owner: &[u8]) -> Box<[u8]> {
        owner[..owner.len() - self.domain.len()].into()
    }

    /// Intern a blob; it goes to the shape when it holds nothing of the domain's name (its
    /// first label does not occur in it), else to the zone itself. Either way the answer is the
    /// same: this only decides what zones can share.
    fn push(&mut self, e: Encoder) -> u16 {
        let blob = self.interner.blob(e.finish());
        let label = &self.domain[1..1 + self.domain[0] as usize];
        let own = !label.is_empty() && blob.bytes().windows(label.len()).any(|w| w.eq_ignore_ascii_case(label));
        if own {
            self.own.push(blob);
            OWN + (self.own.len() - 1) as u16
        } else {
            self.shared.push(blob);
            (self.shared.len() - 1) as u16
        }
    }

    /// An RRset at the question name, with the addresses of in-domain SRV/MX targets.
    fn positive(&mut self, rrset: &[&Record]) -> u16 {
        let mut e = Encoder::new(self.domain);
        for r in rrset {
            e.record(None, r, r.ttl);
        }
        e.counts[0] = rrset.len() as u16;
        for r in rrset {
            let target = match &r.data {
                RData::SRV(srv) => &srv.target,
                RData::MX(mx) => &mx.exchange,
                _ => continue,
            };
            let t = wire::name_wire(target);
            for (n, a) in self.addresses {
                if *n == t {
                    e.record(Some(n), a, a.ttl);
                    e.counts[2] += 1;
                }
            }
        }
        self.push(e)
    }

    fn cname_chase(&mut self, cname: &Record, target: &[u8], chased: &[&Record]) -> u16 {
        let mut e = Encoder::new(self.domain);
        e.record(None, cname, cname.ttl);
        for r in chased {
            e.record(Some(target), r, r.ttl);
        }
        e.counts[0] = 1 + chased.len() as u16;
        self.push(e)
    }

    /// RFC 2308 §3: the SOA in the authority section with TTL min(SOA TTL, SOA MINIMUM).
    fn negative(&mut self, origin: &[u8]) -> u16 {
        let soa = self.zone.soa();
        let mut e = Encoder::new(self.domain);
        e.record(Some(origin), soa, soa.ttl.min(self.zone.negative_ttl));
        e.counts[1] = 1;
        self.push(e)
    }
}
