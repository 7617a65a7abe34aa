//! A signed view's DNSSEC records in zone-file syntax (RFC 4034 §§2.2, 3.2, 4.2, 5.3;
//! RFC 7344 for CDS/CDNSKEY), for `mailconf zone`: what a transfer adds to the unsigned
//! records, as text that `named-checkzone`, `dnssec-verify` and `kzonecheck` read.

use std::fmt::Write;

use base64::Engine;
use hickory_server::proto::rr::RecordType;

use super::{CDNSKEY, CDS, DNSKEY, DS, NSEC, RRSIG, View, dnssec_type};
use crate::dns::wire;

impl View {
    /// One line per DNSSEC record and RRSIG, owners in canonical order.
    pub fn present(&self) -> String {
        let mut out = String::new();
        for o in &self.owners {
            let owner = name(&o.name);
            for s in &o.rrsets {
                if dnssec_type(s.rtype) {
                    for rd in &s.rdatas {
                        line(&mut out, &owner, s.ttl, s.rtype, rd);
                    }
                }
                for sig in self.sigs(o, s) {
                    line(&mut out, &owner, s.ttl, RRSIG, sig);
                }
            }
        }
        out
    }
}

fn line(out: &mut String, owner: &str, ttl: u32, rtype: u16, rd: &[u8]) {
    let _ = writeln!(out, "{owner} {ttl} IN {} {}", mnemonic(rtype), rdata(rtype, rd));
}

fn name(wire_name: &[u8]) -> String {
    wire::name_from_wire(wire_name).to_ascii()
}

fn mnemonic(rtype: u16) -> String {
    match RecordType::from(rtype) {
        RecordType::Unknown(n) => format!("TYPE{n}"),
        t => t.to_string(),
    }
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn u16_at(rd: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([rd[i], rd[i + 1]])
}

fn u32_at(rd: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([rd[i], rd[i + 1], rd[i + 2], rd[i + 3]])
}

/// `YYYYMMDDHHmmSS` (RFC 4034 §3.2).
fn time(t: u32) -> String {
    let t = i64::from(t);
    let (y, m, d) = crate::dates::civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!("{y:04}{m:02}{d:02}{:02}{:02}{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// End of the wire name starting at `at` in `rd`.
fn name_end(rd: &[u8], mut at: usize) -> usize {
    while at < rd.len() && rd[at] != 0 {
        at += 1 + rd[at] as usize;
    }
    (at + 1).min(rd.len())
}

/// Presentation of RDATA we made ourselves (so well formed); RFC 3597 generic form otherwise.
fn rdata(rtype: u16, rd: &[u8]) -> String {
    match rtype {
        DNSKEY | CDNSKEY if rd.len() > 4 => {
            format!("{} {} {} {}", u16_at(rd, 0), rd[2], rd[3], b64(&rd[4..]))
        }
        DS | CDS if rd.len() > 4 => {
            let hex: String = rd[4..].iter().map(|b| format!("{b:02X}")).collect();
            format!("{} {} {} {hex}", u16_at(rd, 0), rd[2], rd[3])
        }
        NSEC => {
            let end = name_end(rd, 0);
            let mut text = name(&rd[..end]);
            let mut i = end;
            while i + 2 <= rd.len() {
                let (window, len) = (u16::from(rd[i]), rd[i + 1] as usize);
                for (k, byte) in rd[i + 2..(i + 2 + len).min(rd.len())].iter().enumerate() {
                    for bit in 0..8 {
                        if byte & (0x80 >> bit) != 0 {
                            let t = window * 256 + (k * 8 + bit) as u16;
                            text.push(' ');
                            text.push_str(&mnemonic(t));
                        }
                    }
                }
                i += 2 + len;
            }
            text
        }
        RRSIG if rd.len() > 18 => {
            let end = name_end(rd, 18);
            format!(
                "{} {} {} {} {} {} {} {} {}",
                mnemonic(u16_at(rd, 0)),
                rd[2],
                rd[3],
                u32_at(rd, 4),
                time(u32_at(rd, 8)),
                time(u32_at(rd, 12)),
                u16_at(rd, 16),
                name(&rd[18..end]),
                b64(&rd[end..])
            )
        }
        _ => {
            let hex: String = rd.iter().map(|b| format!("{b:02X}")).collect();
            format!("\\# {} {hex}", rd.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdata_in_zone_file_syntax() {
        assert_eq!(time(0), "19700101000000");
        assert_eq!(time(1_800_000_000), "20270115080000");
        let mut nsec = b"\x03www\x07example\x00".to_vec();
        nsec.extend_from_slice(&[0, 6, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 1, 1, 0x40]);
        // RFC 4034 §4.3's example bitmap (A MX RRSIG NSEC) plus CAA (257) in window 1.
        assert_eq!(rdata(NSEC, &nsec), "www.example. A MX RRSIG NSEC CAA");
        assert_eq!(rdata(DS, &[0xEC, 0x45, 13, 2, 0xAB]), "60485 13 2 AB");
        assert_eq!(rdata(DNSKEY, &[1, 1, 3, 13, 0, 1]), "257 3 13 AAE=");
        assert_eq!(rdata(99, &[1, 2]), "\\# 2 0102");
    }
}
