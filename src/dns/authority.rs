//! The answering logic: settings → zones (from `records`) → DNS responses.
//!
//! Built once per (re)load and then read-only. Positive answers for every name and type that
//! exists are encoded once here; the transports only patch the ID, flags and the question's case.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_server::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::rdata::opt::EdnsOption;
use hickory_server::proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use crate::records;
use crate::settings::Settings;

/// UDP payload size we advertise and use at most (the DNS Flag Day 2020 value).
pub(crate) const EDNS_PAYLOAD: u16 = 1232;
/// Largest message a TCP AXFR chunk holds before we start the next one.
const AXFR_CHUNK: usize = 16 * 1024;
/// EDE "Not Authoritative" (RFC 8914 §4.21), as Knot and NSD send with REFUSED.
const EDE_NOT_AUTHORITATIVE: u16 = 20;
const EDNS_OPTION_EDE: u16 = 15;

/// One zone, indexed for lookups.
pub(crate) struct Zone {
    pub origin: LowerName,
    /// The serial served; see [`Zone::follow`] for how it moves across reloads.
    pub serial: u32,
    /// Digest of everything but the SOA serial: "did the content change?"
    content: [u8; 32],
    soa: Record,
    /// Negative-answer SOA: TTL = min(SOA TTL, SOA MINIMUM) (RFC 2308 §3).
    negative_soa: Record,
    /// Records by owner.
    by_name: HashMap<LowerName, Vec<Record>>,
    /// Every owner and every empty non-terminal between owners and the apex.
    names: HashSet<LowerName>,
    /// AXFR order: SOA first, then the rest as `records` lists them.
    all: Vec<Record>,
    pub transfer_to: Vec<SocketAddr>,
}

/// Every zone of one settings snapshot plus the pre-encoded positive answers.
pub(crate) struct Authority {
    zones: HashMap<LowerName, Arc<Zone>>,
    /// In-zone address records, for the additional section of SRV/MX answers.
    addresses: HashMap<LowerName, Vec<Record>>,
    /// UDP answers per second per client network (0 = unlimited), from the settings.
    pub rate_limit: u32,
    /// Lower-case wire qname followed by the qtype (big endian) → encoded response with ID 0,
    /// EDNS OPT (no options) last.
    cache: HashMap<Box<[u8]>, Box<[u8]>>,
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

impl Authority {
    /// Build every zone of the settings and encode the positive answers. Given what was served
    /// so far (in memory, or from the state file), serials never go backwards (see [`Zone::follow`]).
    pub fn build(settings: &Settings, previous: &Served) -> Authority {
        let mut zones = HashMap::new();
        let mut addresses: HashMap<LowerName, Vec<Record>> = HashMap::new();
        for dr in records::all(settings) {
            for z in &dr.zones {
                let mut zone = Zone::new(z, &dr.transfer_to);
                if let Some((serial, content)) = previous.get(&origin_key(&zone.origin)) {
                    zone.follow(*serial, content);
                }
                for r in &zone.all {
                    if matches!(r.record_type(), RecordType::A | RecordType::AAAA) {
                        addresses.entry(LowerName::new(&r.name)).or_default().push(r.clone());
                    }
                }
                zones.insert(zone.origin.clone(), Arc::new(zone));
            }
        }
        let mut auth = Authority {
            zones,
            addresses,
            rate_limit: settings.server.dns_rate_limit,
            cache: HashMap::new(),
        };
        auth.cache = auth.encode_positive_answers();
        auth
    }

    /// The serial and content digest of every zone, to carry across reloads and restarts.
    pub fn served(&self) -> Served {
        self.zones
            .values()
            .map(|z| (origin_key(&z.origin), (z.serial, z.content)))
            .collect()
    }

    /// Zones by origin (for NOTIFY after a reload).
    pub fn zones(&self) -> impl Iterator<Item = &Arc<Zone>> {
        self.zones.values()
    }

    pub fn zone(&self, origin: &LowerName) -> Option<&Arc<Zone>> {
        self.zones.get(origin)
    }

    fn encode_positive_answers(&self) -> HashMap<Box<[u8]>, Box<[u8]>> {
        let mut cache = HashMap::new();
        for zone in self.zones.values() {
            for (name, recs) in &zone.by_name {
                let types: HashSet<RecordType> = recs.iter().map(Record::record_type).collect();
                for t in types {
                    let q = Query::query(Name::from(name), t);
                    let msg = self.response_for(&q, 0, true, None);
                    if let Ok(bytes) = msg.to_vec() {
                        let mut key = wire_name(name).into_vec();
                        key.extend_from_slice(&u16::from(t).to_be_bytes());
                        cache.insert(key.into_boxed_slice(), bytes.into_boxed_slice());
                    }
                }
            }
        }
        cache
    }

    /// The pre-encoded answer for a key (lower-case wire qname + qtype), if there is one.
    pub fn cached(&self, key: &[u8]) -> Option<&[u8]> {
        self.cache.get(key).map(|b| &b[..])
    }

    fn find_zone(&self, name: &LowerName) -> Option<&Arc<Zone>> {
        let mut n = name.clone();
        loop {
            if let Some(z) = self.zones.get(&n) {
                return Some(z);
            }
            if n.is_root() {
                return None;
            }
            n = n.base_name();
        }
    }

    /// Answer a question as the authoritative server (no transport concerns).
    fn response_for(&self, q: &Query, id: u16, edns: bool, do_bit: Option<bool>) -> Message {
        let mut msg = Message::response(id, OpCode::Query);
        let name = LowerName::new(q.name());
        msg.add_query(Query::query(Name::from(&name), q.query_type()));
        if edns {
            let mut e = Edns::new();
            e.set_max_payload(EDNS_PAYLOAD);
            e.set_dnssec_ok(do_bit.unwrap_or(false));
            msg.set_edns(e);
        }
        let Some(zone) = self.find_zone(&name).filter(|_| q.query_class() == DNSClass::IN) else {
            msg.metadata.response_code = ResponseCode::Refused;
            if let Some(e) = msg.edns.as_mut() {
                e.options_mut().insert(EdnsOption::Unknown(
                    EDNS_OPTION_EDE,
                    EDE_NOT_AUTHORITATIVE.to_be_bytes().to_vec(),
                ));
            }
            return msg;
        };
        msg.metadata.authoritative = true;
        let qtype = q.query_type();
        let Some(recs) = zone.by_name.get(&name) else {
            if !zone.names.contains(&name) {
                msg.metadata.response_code = ResponseCode::NXDomain;
            }
            msg.add_authority(zone.negative_soa.clone());
            return msg;
        };
        let answers: Vec<Record> = match qtype {
            // RFC 8482 §4.2: answer ANY with one RRset rather than everything.
            RecordType::ANY => {
                let first = recs[0].record_type();
                recs.iter().filter(|r| r.record_type() == first).cloned().collect()
            }
            t => {
                let exact: Vec<Record> = recs.iter().filter(|r| r.record_type() == t).cloned().collect();
                if exact.is_empty() {
                    recs.iter()
                        .filter(|r| r.record_type() == RecordType::CNAME)
                        .cloned()
                        .collect()
                } else {
                    exact
                }
            }
        };
        if answers.is_empty() {
            msg.add_authority(zone.negative_soa.clone());
            return msg;
        }
        let mut additional = Vec::new();
        for r in &answers {
            let target = match &r.data {
                RData::SRV(srv) => Some(&srv.target),
                RData::MX(mx) => Some(&mx.exchange),
                RData::CNAME(c) if qtype != RecordType::CNAME => {
                    // One step of in-zone CNAME chasing, as the zone data is ours.
                    let t = LowerName::new(&c.0);
                    if let Some(trecs) = self.find_zone(&t).and_then(|z| z.by_name.get(&t)) {
                        msg.add_answers(trecs.iter().filter(|x| x.record_type() == qtype).cloned());
                    }
                    None
                }
                _ => None,
            };
            if let Some(addrs) = target.and_then(|t| self.addresses.get(&LowerName::new(t))) {
                additional.extend(addrs.iter().cloned());
            }
        }
        let chased = std::mem::take(&mut msg.answers);
        msg.insert_answers([answers, chased].concat());
        msg.add_additionals(additional);
        msg
    }

    /// Answer one request from `peer`. Never panics on any input.
    pub fn respond(&self, req: &[u8], transport: Transport, peer: IpAddr) -> Reply {
        if req.len() < 12 || req[2] & 0x80 != 0 {
            return Reply::Drop; // too short for a header, or a response: never answer those
        }
        let id = u16::from_be_bytes([req[0], req[1]]);
        let query = match Message::from_vec(req) {
            Ok(m) => m,
            Err(_) => return Reply::Message(header_error(req, ResponseCode::FormErr)),
        };
        let edns = query.edns.as_ref();
        let mut reply = if query.metadata.op_code != OpCode::Query {
            Message::error_msg(id, query.metadata.op_code, ResponseCode::NotImp)
        } else if query.queries.len() != 1 || query.metadata.message_type != MessageType::Query {
            Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
        } else if edns.is_some_and(|e| e.version() > 0) {
            // RFC 6891 §6.1.3: unknown EDNS version → BADVERS (extended RCODE 16).
            let mut m = Message::error_msg(id, OpCode::Query, ResponseCode::BADVERS);
            m.add_query(query.queries[0].clone());
            let mut e = Edns::new();
            e.set_max_payload(EDNS_PAYLOAD);
            m.set_edns(e);
            m
        } else {
            let q = &query.queries[0];
            if matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR) {
                return self.transfer(&query, transport, peer);
            }
            let mut m = self.response_for(q, id, edns.is_some(), edns.map(|e| e.flags().dnssec_ok));
            m.metadata.recursion_desired = query.metadata.recursion_desired;
            m.metadata.checking_disabled = query.metadata.checking_disabled;
            m
        };
        reply.metadata.id = id;
        if reply.queries.is_empty() {
            reply.add_queries(query.queries.iter().take(1).cloned());
        }
        let limit = match transport {
            Transport::Tcp => u16::MAX as usize,
            Transport::Udp => udp_limit(edns.map(Edns::max_payload)),
        };
        let Ok(mut bytes) = reply.to_vec() else {
            return Reply::Message(header_error(req, ResponseCode::ServFail));
        };
        if bytes.len() > limit {
            bytes = reply
                .truncate()
                .to_vec()
                .unwrap_or_else(|_| header_error(req, ResponseCode::ServFail));
        }
        copy_question_case(req, &mut bytes);
        Reply::Message(bytes)
    }

    /// AXFR (and IXFR, answered with the full zone as RFC 1995 §4 allows) over TCP, only to the
    /// zone's secondaries.
    fn transfer(&self, query: &Message, transport: Transport, peer: IpAddr) -> Reply {
        let id = query.metadata.id;
        let q = &query.queries[0];
        let name = LowerName::new(q.name());
        let zone = self.zones.get(&name);
        let allowed = zone.is_some_and(|z| z.transfer_to.iter().any(|s| s.ip() == peer));
        let Some(zone) = zone.filter(|_| allowed && transport == Transport::Tcp) else {
            let mut m = Message::error_msg(id, OpCode::Query, ResponseCode::Refused);
            m.add_query(q.clone());
            return Reply::Message(m.to_vec().unwrap_or_default());
        };
        let mut frames = Vec::new();
        let mut records: Vec<&Record> = zone.all.iter().collect();
        records.push(&zone.soa);
        let mut msg = axfr_message(id, q);
        let mut size = 0;
        for r in records {
            if size > AXFR_CHUNK {
                frames.push(msg.to_vec().unwrap_or_default());
                msg = axfr_message(id, q);
                size = 0;
            }
            size += 64 + r.data.to_string().len();
            msg.add_answer(r.clone());
        }
        frames.push(msg.to_vec().unwrap_or_default());
        Reply::Transfer(frames)
    }
}

fn axfr_message(id: u16, q: &Query) -> Message {
    let mut m = Message::response(id, OpCode::Query);
    m.metadata.authoritative = true;
    m.add_query(q.clone());
    m
}

/// Largest UDP answer for a client: its EDNS buffer (at least 512, at most ours), or 512.
pub(crate) fn udp_limit(client_payload: Option<u16>) -> usize {
    match client_payload {
        Some(p) => p.clamp(512, EDNS_PAYLOAD) as usize,
        None => 512,
    }
}

/// A header-only error answer that echoes the request's ID, opcode and RD bit.
fn header_error(req: &[u8], rcode: ResponseCode) -> Vec<u8> {
    let mut out = vec![0u8; 12];
    out[0] = req[0];
    out[1] = req[1];
    out[2] = 0x80 | (req[2] & 0x79); // QR, opcode and RD from the request
    out[3] = u16::from(rcode) as u8 & 0x0f;
    out
}

/// Echo the query's spelling of the question name (RFC 1034 §3.1, as Knot and NSD do). Owner
/// names compressed against the question follow automatically.
pub(crate) fn copy_question_case(req: &[u8], resp: &mut [u8]) {
    let Some(end) = question_name_end(req) else { return };
    if resp.len() >= end && req[12..end].eq_ignore_ascii_case(&resp[12..end]) {
        resp[12..end].copy_from_slice(&req[12..end]);
    }
}

/// End offset of an uncompressed question name starting at offset 12.
pub(crate) fn question_name_end(pkt: &[u8]) -> Option<usize> {
    let mut i = 12;
    loop {
        let len = *pkt.get(i)? as usize;
        if len == 0 {
            return Some(i + 1);
        }
        if len > 63 || i + 1 + len > 12 + 255 {
            return None;
        }
        i += 1 + len;
    }
}

/// Lower-case wire form of a name (length-prefixed labels, root byte last).
pub(crate) fn wire_name(name: &LowerName) -> Box<[u8]> {
    let n = Name::from(name);
    let mut out = Vec::with_capacity(n.len() + 1);
    for label in n.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out.into_boxed_slice()
}

impl Zone {
    fn new(z: &records::Zone, transfer_to: &[SocketAddr]) -> Zone {
        let origin = LowerName::new(&z.origin);
        let soa = z.soa().clone();
        let mut negative_soa = soa.clone();
        negative_soa.ttl = soa.ttl.min(z.negative_ttl);
        let mut by_name: HashMap<LowerName, Vec<Record>> = HashMap::new();
        let mut names = HashSet::new();
        for r in z.records() {
            let mut n = LowerName::new(&r.name);
            by_name.entry(n.clone()).or_default().push(r.clone());
            while names.insert(n.clone()) && n != origin && !n.is_root() {
                n = n.base_name();
            }
        }
        Zone {
            origin,
            serial: z.serial,
            soa,
            negative_soa,
            by_name,
            names,
            all: z.records().cloned().collect(),
            transfer_to: transfer_to.to_vec(),
            content: content_digest(z),
        }
    }

    /// Keep serials moving forward across reloads (RFC 1982 arithmetic): unchanged content keeps
    /// the served serial; changed content takes the new serial if it is greater, else old + 1.
    fn follow(&mut self, prev_serial: u32, prev_content: &[u8; 32]) {
        let serial = if *prev_content == self.content {
            prev_serial
        } else if serial_greater(self.serial, prev_serial) {
            self.serial
        } else {
            prev_serial.wrapping_add(1)
        };
        if serial != self.serial {
            self.serial = serial;
            for r in std::iter::once(&mut self.soa)
                .chain(std::iter::once(&mut self.negative_soa))
                .chain(self.all.iter_mut().take(1))
                .chain(
                    self.by_name
                        .get_mut(&self.origin)
                        .into_iter()
                        .flat_map(|v| v.iter_mut()),
                )
            {
                if let RData::SOA(soa) = &mut r.data {
                    soa.serial = serial;
                }
            }
        }
    }

    /// The SOA record (for NOTIFY).
    pub fn soa(&self) -> &Record {
        &self.soa
    }
}

/// Served serial and content digest per zone origin (ASCII, lower case, trailing dot).
pub(crate) type Served = HashMap<String, (u32, [u8; 32])>;

pub(crate) fn origin_key(origin: &LowerName) -> String {
    Name::from(origin).to_ascii().to_ascii_lowercase()
}

/// RFC 1982 §3.2: is `a` greater than `b` in serial number arithmetic?
pub(crate) fn serial_greater(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

fn content_digest(z: &records::Zone) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for r in z.records() {
        let text = match &r.data {
            RData::SOA(soa) => format!(
                "{} {} {} {} {} {}",
                soa.mname, soa.rname, soa.refresh, soa.retry, soa.expire, soa.minimum
            ),
            other => format!("{other:?}"),
        };
        h.update(format!("{} {} {:?} {text}\n", r.name, r.ttl, r.record_type()).as_bytes());
    }
    h.finalize().into()
}
