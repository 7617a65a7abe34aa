//! Zone transfers: AXFR (and IXFR, answered with the full zone as RFC 1995 §4 allows) over TCP,
//! only to the zone's secondaries. The records come from `records` again (a transfer is rare;
//! the served state keeps no copy of them), with the served serial in the SOA. The catalog zone
//! answers IXFR with its changes from the journal (see `catalog`).

use std::net::IpAddr;

use hickory_server::proto::op::{Message, OpCode, Query};
use hickory_server::proto::rr::{RData, Record, RecordType};

use super::answer::{EDE_NOT_AUTHORITATIVE, EDE_PROHIBITED, append_opt};
use super::authority::{Authority, Reply, Transport, refused};
use super::catalog::{self, Catalog};
use super::wire::Edns;
use crate::records::catalog as rc;

/// Largest message a TCP AXFR chunk holds before we start the next one.
const AXFR_CHUNK: usize = 16 * 1024;

impl Authority {
    /// A transfer request (AXFR, IXFR with the client's `serial`) for `lower`, or any query in
    /// the catalog zone. `key`: the TSIG key the request was signed with (index into
    /// `[server] tsig`); a secondary given a key in `transfer_to` must sign with exactly that key.
    /// `edns`: the request's OPT record; then every message of the answer carries ours (RFC 6891
    /// §7), a refusal with an Extended DNS Error saying why.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn transfer_or_catalog(
        &self,
        req: &[u8],
        lower: &[u8],
        q: &Query,
        serial: Option<u32>,
        transport: Transport,
        peer: IpAddr,
        key: Option<usize>,
        edns: Option<Edns>,
    ) -> Reply {
        let mut reply = self.transfer_or_catalog_plain(req, lower, q, serial, transport, peer, key);
        if edns.is_some() {
            match &mut reply {
                Reply::Message(m) => {
                    let refused = m.get(3).is_some_and(|b| b & 0x0f == 5);
                    let ours =
                        self.catalog.as_ref().is_some_and(|c| *c.origin == *lower) || self.zone_at(lower).is_some();
                    let ede = refused.then_some(if ours { EDE_PROHIBITED } else { EDE_NOT_AUTHORITATIVE });
                    append_opt(m, edns, ede);
                }
                Reply::Transfer(frames) => frames.iter_mut().for_each(|f| append_opt(f, edns, None)),
                Reply::Drop => {}
            }
        }
        reply
    }

    /// [`Self::transfer_or_catalog`] without the OPT record.
    #[allow(clippy::too_many_arguments)]
    fn transfer_or_catalog_plain(
        &self,
        req: &[u8],
        lower: &[u8],
        q: &Query,
        serial: Option<u32>,
        transport: Transport,
        peer: IpAddr,
        key: Option<usize>,
    ) -> Reply {
        let id = u16::from_be_bytes([req[0], req[1]]);
        let is_transfer = matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR);
        let keyed = self
            .settings()
            .server
            .transfer_keys
            .get(&peer)
            .is_none_or(|k| Some(*k) == key);
        if let Some(c) = self.catalog.as_ref().filter(|c| *c.origin == *lower) {
            let allowed = keyed && self.settings().server.transfer_to.iter().any(|s| s.ip() == peer);
            if !is_transfer {
                return Reply::Message(self.catalog_answer(c, id, q, lower));
            }
            if !allowed || (q.query_type() == RecordType::AXFR && transport == Transport::Udp) {
                return Reply::Message(refused(req));
            }
            return self.catalog_transfer(c, id, q, serial, transport);
        }
        if !is_transfer {
            let c = self.catalog.as_ref().expect("in_catalog checked");
            return Reply::Message(self.catalog_answer(c, id, q, lower));
        }
        let found = self.zone_at(lower);
        let allowed = keyed && found.is_some_and(|(z, _, _)| z.transfer_to.iter().any(|s| s.ip() == peer));
        let Some((zone, domain, name)) = found.filter(|_| allowed && transport == Transport::Tcp) else {
            return Reply::Message(refused(req));
        };
        let Some(dr) = self.records(domain, name) else {
            return Reply::Message(refused(req));
        };
        let origin = zone.origin_name();
        let Some(rz) = dr.zones.iter().find(|z| z.origin == origin) else {
            return Reply::Message(refused(req));
        };
        let mut soa = rz.soa().clone();
        if let RData::SOA(s) = &mut soa.data {
            s.serial = zone.serial;
        }
        // IXFR is answered with the whole zone (RFC 1995 §4): zones are small.
        let records =
            std::iter::once(soa.clone()).chain(rz.records().filter(|r| !matches!(r.data, RData::SOA(_))).cloned());
        let Some(view) = self.signed_view(zone) else {
            return Reply::Transfer(frames(id, q, records.chain(std::iter::once(soa))));
        };
        // A signed zone: its DNSSEC records and signatures, then the closing SOA on its own.
        let mut all = frames(id, q, records);
        let mut msg = Vec::new();
        let mut count = 0u16;
        for rr in view.transfer_records() {
            if msg.len() + rr.len() > AXFR_CHUNK || count == u16::MAX {
                all.push(finish_raw(std::mem::take(&mut msg), count));
                count = 0;
            }
            if msg.is_empty() {
                msg = axfr_message(id, q).to_vec().unwrap_or_default();
            }
            msg.extend_from_slice(&rr);
            count += 1;
        }
        if count > 0 {
            all.push(finish_raw(msg, count));
        }
        all.extend(frames(id, q, std::iter::once(soa)));
        Reply::Transfer(all)
    }

    fn catalog_answer(&self, c: &Catalog, id: u16, q: &Query, lower: &[u8]) -> Vec<u8> {
        catalog::answer(c, id, q, lower, |i| self.member_origin(c, i))
    }

    /// AXFR of the catalog, or IXFR: the changes since the client's serial from the journal,
    /// a lone SOA when the client is current (or over UDP, RFC 1995 §2: "use TCP"), the whole
    /// catalog when the journal does not reach back.
    fn catalog_transfer(&self, c: &Catalog, id: u16, q: &Query, serial: Option<u32>, transport: Transport) -> Reply {
        let soa = c.soa();
        let lone_soa = || {
            let mut m = axfr_message(id, q);
            m.add_answer(soa.clone());
            Reply::Message(m.to_vec().unwrap_or_default())
        };
        if q.query_type() == RecordType::IXFR {
            if transport == Transport::Udp || serial == Some(c.serial) {
                return lone_soa();
            }
            if let Some(body) = serial.and_then(|s| self.shared().journal.since(&c.name, s, c.serial)) {
                let records = std::iter::once(soa.clone()).chain(body).chain(std::iter::once(soa));
                return Reply::Transfer(frames(id, q, records));
            }
        }
        let members = (0..c.members.len()).filter_map(|i| {
            let origin = self.member_origin(c, i)?;
            Some(rc::member(&c.name, c.members[i].0, &origin))
        });
        let records = std::iter::once(soa.clone())
            .chain(rc::apex(&c.name))
            .chain(members)
            .chain(std::iter::once(soa));
        Reply::Transfer(frames(id, q, records))
    }
}

/// The messages of a transfer: `records` in order, about `AXFR_CHUNK` octets per message.
fn frames(id: u16, q: &Query, records: impl Iterator<Item = Record>) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut msg = axfr_message(id, q);
    let mut size = 0;
    for r in records {
        if size > AXFR_CHUNK {
            frames.push(msg.to_vec().unwrap_or_default());
            msg = axfr_message(id, q);
            size = 0;
        }
        size += 64 + rdata_size(&r);
        msg.add_answer(r);
    }
    frames.push(msg.to_vec().unwrap_or_default());
    frames
}

/// A message of `axfr_message` with `count` wire RRs appended: set its ANCOUNT.
fn finish_raw(mut msg: Vec<u8>, count: u16) -> Vec<u8> {
    if msg.len() >= 12 {
        msg[6..8].copy_from_slice(&count.to_be_bytes());
    }
    msg
}

fn rdata_size(r: &Record) -> usize {
    match &r.data {
        RData::TXT(t) => t.txt_data.iter().map(|s| s.len() + 1).sum(),
        _ => 64,
    }
}

fn axfr_message(id: u16, q: &Query) -> Message {
    let mut m = Message::response(id, OpCode::Query);
    m.metadata.authoritative = true;
    m.add_query(q.clone());
    m
}
