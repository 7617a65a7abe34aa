//! Answering: a question → a response message, from the compact zones of `zone`.
//!
//! A response is the query's header and question (so the question keeps the client's spelling,
//! RFC 1034 §3.1, as Knot and NSD do), then the pre-encoded records of one blob with the
//! compression pointers to the mail domain patched to where it stands in this question, then
//! our OPT record when the query had one.

use super::authority::Authority;
use super::wire::{Edns, Plain};
use super::zone::{Found, Zone};

/// UDP payload size we advertise and use at most (the DNS Flag Day 2020 value).
pub(crate) const EDNS_PAYLOAD: u16 = 1232;
/// EDE "Not Authoritative" (RFC 8914 §4.21), as Knot and NSD send with REFUSED.
pub(crate) const EDE_NOT_AUTHORITATIVE: u16 = 20;
/// EDE "Prohibited" (RFC 8914 §4.19): a transfer this client may not have.
pub(crate) const EDE_PROHIBITED: u16 = 18;
const EDNS_OPTION_EDE: u16 = 15;

const RCODE_NXDOMAIN: u8 = 3;
const RCODE_REFUSED: u8 = 5;

/// One question to answer.
pub(crate) struct Question<'a> {
    /// The query's header (ID, RD and CD are echoed).
    pub header: &'a [u8; 12],
    /// The question as sent: uncompressed name, type, class.
    pub question: &'a [u8],
    /// Lower-case wire form of the question name.
    pub lower: &'a [u8],
    pub qtype: u16,
    pub class_in: bool,
    pub edns: Option<Edns>,
}

impl<'a> Question<'a> {
    /// The question of a plain query (see `wire::plain`) in `pkt`.
    pub fn plain(pkt: &'a [u8], p: &'a Plain) -> Question<'a> {
        Question {
            header: pkt[..12].try_into().expect("plain() checked the length"),
            question: &pkt[12..p.question_end],
            lower: p.lower(),
            qtype: p.qtype,
            class_in: true,
            edns: p.edns,
        }
    }

    /// AXFR or IXFR: not answered from the zones.
    pub fn is_transfer(qtype: u16) -> bool {
        matches!(qtype, 251 | 252)
    }
}

/// Largest UDP answer for a client: its EDNS buffer (at least 512, at most ours), or 512.
pub(crate) fn udp_limit(edns: Option<Edns>) -> usize {
    match edns {
        Some(e) => e.payload.clamp(512, EDNS_PAYLOAD) as usize,
        None => 512,
    }
}

impl Authority {
    /// Write the response to `q` into `out`, truncated (TC, no records) above `limit` octets.
    pub(crate) fn answer(&self, q: &Question, limit: usize, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&q.header[..2]);
        out.push(0x80 | (q.header[2] & 0x01)); // QR, opcode QUERY, RD copied
        out.push(q.header[3] & 0x10); // CD copied, RCODE 0
        out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(q.question);
        let found = if q.class_in { self.find_zone(q.lower) } else { None };
        let mut counts = [0u16; 3];
        let mut refused = false;
        match found {
            None => {
                refused = true;
                out[3] |= RCODE_REFUSED;
            }
            Some(zone) => {
                out[2] |= 0x04; // AA
                let domain_len = zone.domain_len as usize;
                let rel = &q.lower[..q.lower.len() - domain_len];
                let domain_at = 12 + rel.len();
                let dnssec_ok = q.edns.is_some_and(|e| e.do_bit);
                let signed = if zone.dnssec.is_some() && (dnssec_ok || super::signed::dnssec_type(q.qtype)) {
                    self.cached_signed(q, zone, domain_at, out, &mut counts)
                        .or_else(|| self.signed_answer(q.lower, q.qtype, dnssec_ok, zone, out, &mut counts))
                } else {
                    None
                };
                if let Some(rcode) = signed {
                    out[3] |= rcode;
                } else {
                    let blob = match zone.find(rel, q.qtype) {
                        Found::Answer(b) => b,
                        Found::NoData => zone.negative(),
                        Found::NxDomain => {
                            out[3] |= RCODE_NXDOMAIN;
                            zone.negative()
                        }
                    };
                    blob.write(out, domain_at, zone.serial);
                    counts = blob.counts();
                }
            }
        }
        if out.len() + if q.edns.is_some() { 11 } else { 0 } > limit {
            out.truncate(12 + q.question.len());
            out[2] |= 0x02; // TC
            counts = [0; 3];
        }
        if let Some(e) = q.edns {
            counts[2] += 1;
            write_opt(out, e.do_bit, refused.then_some(EDE_NOT_AUTHORITATIVE));
        }
        for (i, c) in counts.iter().enumerate() {
            out[6 + 2 * i..8 + 2 * i].copy_from_slice(&c.to_be_bytes());
        }
    }
}

impl Authority {
    /// A DO query's positive answer from the zone's unsigned blob and the RRSIGs cached for it
    /// (see `signed`): RCODE 0, or `None` with `out` as it was when they are not cached. Like
    /// the signed views' answers, it holds the answer section alone: the blob's additional
    /// records (addresses of in-zone SRV targets) are left out rather than sent unsigned.
    fn cached_signed(
        &self,
        q: &Question,
        zone: &Zone,
        domain_at: usize,
        out: &mut Vec<u8>,
        counts: &mut [u16; 3],
    ) -> Option<u8> {
        if !q.edns.is_some_and(|e| e.do_bit) || super::signed::dnssec_type(q.qtype) {
            return None;
        }
        let rel = &q.lower[..q.lower.len() - zone.domain_len as usize];
        let Found::Answer(blob) = zone.find(rel, q.qtype) else {
            return None;
        };
        let [an, 0, _] = blob.counts() else { return None };
        let start = out.len();
        blob.write(out, domain_at, zone.serial);
        // The end of the answer section: past `an` records (name, 10 octets, RDATA).
        let mut end = Some(start);
        for _ in 0..an {
            end = end.and_then(|i| super::wire::skip_name(out, i)).and_then(|i| {
                let len = u16::from_be_bytes([*out.get(i + 8)?, *out.get(i + 9)?]);
                Some(i + 10 + usize::from(len))
            });
        }
        match end.filter(|&e| e <= out.len()) {
            Some(e) => out.truncate(e),
            None => {
                out.truncate(start);
                return None;
            }
        }
        match self.cached_rrsigs(q.lower, q.qtype, zone, out) {
            Some(n) => {
                *counts = [an + n, 0, 0];
                Some(0)
            }
            None => {
                out.truncate(start);
                None
            }
        }
    }
}

/// Our OPT record: payload size, DO echoed (RFC 3225 §3), and an Extended DNS Error if any
/// (EDE 20 with REFUSED for a name we are not authoritative for).
fn write_opt(out: &mut Vec<u8>, do_bit: bool, ede: Option<u16>) {
    out.push(0); // root owner
    out.extend_from_slice(&41u16.to_be_bytes());
    out.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
    out.extend_from_slice(&[0, 0, if do_bit { 0x80 } else { 0 }, 0]);
    if let Some(code) = ede {
        out.extend_from_slice(&6u16.to_be_bytes());
        out.extend_from_slice(&EDNS_OPTION_EDE.to_be_bytes());
        out.extend_from_slice(&2u16.to_be_bytes());
        out.extend_from_slice(&code.to_be_bytes());
    } else {
        out.extend_from_slice(&[0, 0]);
    }
}

/// Append our OPT record to a finished message (and count it in ARCOUNT) when the query had
/// one: RFC 6891 §7 asks it of every response, so the paths that build their answers with
/// hickory (catalog, transfers, errors) end here as the fast path ends in `write_opt`. Must
/// come before a TSIG record (signing appends that afterwards).
pub(crate) fn append_opt(out: &mut Vec<u8>, edns: Option<Edns>, ede: Option<u16>) {
    let Some(e) = edns else { return };
    if out.len() < 12 {
        return;
    }
    write_opt(out, e.do_bit, ede);
    let ar = u16::from_be_bytes([out[10], out[11]]).saturating_add(1);
    out[10..12].copy_from_slice(&ar.to_be_bytes());
}
