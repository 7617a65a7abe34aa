//! The entry point of a request: TSIG checked, transfers and catalog queries handed to
//! `transfer`, the fast path or the parsed question answered, error answers.

use std::net::IpAddr;

use hickory_server::proto::op::{Edns as HEdns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::{DNSClass, RData, RecordType};

use super::{Authority, Reply, Transport};
use crate::dns::answer::{EDE_PROHIBITED, EDNS_PAYLOAD, Question, append_opt, udp_limit};
use crate::dns::tsig;
use crate::dns::wire::{self, Edns};

impl Authority {
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
