//! Zone transfers: AXFR (and IXFR, answered with the full zone as RFC 1995 §4 allows) over TCP,
//! only to the zone's secondaries. The records come from `records` again (a transfer is rare;
//! the served state keeps no copy of them), with the served serial in the SOA.

use std::net::IpAddr;

use hickory_server::proto::op::{Message, OpCode, Query};
use hickory_server::proto::rr::{RData, Record};

use super::authority::{Authority, Reply, Transport, refused};
use super::wire::{self, Plain};

/// Largest message a TCP AXFR chunk holds before we start the next one.
const AXFR_CHUNK: usize = 16 * 1024;

impl Authority {
    /// `key`: the TSIG key the request was signed with (index into `[server] tsig`). A
    /// secondary given a key in `transfer_to` must sign with exactly that key.
    pub(crate) fn transfer(
        &self,
        req: &[u8],
        p: &Plain,
        transport: Transport,
        peer: IpAddr,
        key: Option<usize>,
    ) -> Reply {
        let found = self.zone_at(p.lower());
        let keyed = self
            .settings()
            .server
            .transfer_keys
            .get(&peer)
            .is_none_or(|k| Some(*k) == key);
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
        let id = u16::from_be_bytes([req[0], req[1]]);
        let q = Query::query(wire::name_from_wire(&req[12..p.question_end - 4]), p.qtype.into());
        let mut frames = Vec::new();
        let records = std::iter::once(&soa)
            .chain(rz.records().filter(|r| !matches!(r.data, RData::SOA(_))))
            .chain(std::iter::once(&soa));
        let mut msg = axfr_message(id, &q);
        let mut size = 0;
        for r in records {
            if size > AXFR_CHUNK {
                frames.push(msg.to_vec().unwrap_or_default());
                msg = axfr_message(id, &q);
                size = 0;
            }
            size += 64 + rdata_size(r);
            msg.add_answer(r.clone());
        }
        frames.push(msg.to_vec().unwrap_or_default());
        Reply::Transfer(frames)
    }
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
