//! Canonical forms of RFC 4034 §6: name order, RDATA, and the NSEC type bitmap (§4.1.2).

use std::cmp::Ordering;

use hickory_server::proto::rr::{RData, Record};

use super::super::wire;

/// The canonical DNS name order (RFC 4034 §6.1) of two lower-case wire names: labels
/// compared from the root down, as unsigned octet strings. No allocation (answers call it).
pub(crate) fn canonical_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut oa, mut ob) = ([0u8; 128], [0u8; 128]);
    let (na, nb) = (label_starts(a, &mut oa), label_starts(b, &mut ob));
    for k in 1..=na.min(nb) {
        let (x, y) = (label(a, oa[na - k]), label(b, ob[nb - k]));
        let order = x.cmp(y);
        if order != Ordering::Equal {
            return order;
        }
    }
    na.cmp(&nb)
}

/// Where each label of a wire name starts (a name has at most 127 labels in 255 octets).
fn label_starts(name: &[u8], starts: &mut [u8; 128]) -> usize {
    let (mut i, mut n) = (0usize, 0usize);
    while i < name.len() && name[i] != 0 && n < starts.len() {
        starts[n] = i as u8;
        n += 1;
        i += 1 + name[i] as usize;
    }
    n
}

fn label(name: &[u8], at: u8) -> &[u8] {
    let at = at as usize;
    &name[at + 1..(at + 1 + name[at] as usize).min(name.len())]
}

/// The canonical RDATA of a record (RFC 4034 §6.2: names uncompressed, lower case); an SOA
/// gets the served `serial`.
pub(super) fn canonical_rdata(r: &Record, serial: u32) -> Vec<u8> {
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
pub(super) fn type_bitmap(types: &[u16]) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
