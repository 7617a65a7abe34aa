//! The record encoder of `zone`: records → the bytes of a blob, with names under the mail
//! domain as compression pointers into the question (patched when sent) and SOA serials left
//! for the zone's served serial.

use hickory_server::proto::rr::{RData, Record};
use hickory_server::proto::serialize::binary::BinEncodable;

use super::wire;
use super::zone::Blob;

/// Writes records for a blob.
pub(super) struct Encoder<'d> {
    out: Vec<u8>,
    pub(super) counts: [u16; 3],
    domain_ptrs: Vec<u16>,
    serials: Vec<u16>,
    domain: &'d [u8],
}

impl<'d> Encoder<'d> {
    pub(super) fn new(domain: &'d [u8]) -> Self {
        Encoder {
            out: Vec::with_capacity(128),
            counts: [0; 3],
            domain_ptrs: Vec::new(),
            serials: Vec::new(),
            domain,
        }
    }

    pub(super) fn finish(self) -> Blob {
        Blob::new(&self.out, self.counts, &self.domain_ptrs, &self.serials)
    }

    /// A name: under the mail domain, its own labels and a pointer to the domain in the
    /// question; else in full. `compress = false` for SRV targets (RFC 2782).
    fn name(&mut self, wire_name: &[u8], compress: bool) {
        if compress && let Some(i) = wire::suffix_at(wire_name, self.domain) {
            self.out.extend_from_slice(&wire_name[..i]);
            self.domain_ptrs.push(self.out.len() as u16);
            self.out.extend_from_slice(&[0xC0, 0]);
        } else {
            self.out.extend_from_slice(wire_name);
        }
    }

    /// One record; `owner = None` means "the question name" (pointer to offset 12).
    pub(super) fn record(&mut self, owner: Option<&[u8]>, r: &Record, ttl: u32) {
        match owner {
            None => self.out.extend_from_slice(&[0xC0, 12]),
            Some(o) => self.name(o, true),
        }
        self.out.extend_from_slice(&u16::from(r.record_type()).to_be_bytes());
        self.out.extend_from_slice(&1u16.to_be_bytes()); // class IN
        self.out.extend_from_slice(&ttl.to_be_bytes());
        let len_at = self.out.len();
        self.out.extend_from_slice(&[0, 0]);
        match &r.data {
            RData::A(a) => self.out.extend_from_slice(&a.0.octets()),
            RData::AAAA(a) => self.out.extend_from_slice(&a.0.octets()),
            RData::CNAME(c) => self.name(&wire::name_wire(&c.0), true),
            RData::NS(ns) => self.name(&wire::name_wire(&ns.0), true),
            RData::MX(mx) => {
                self.out.extend_from_slice(&mx.preference.to_be_bytes());
                self.name(&wire::name_wire(&mx.exchange), true);
            }
            RData::SRV(srv) => {
                for v in [srv.priority, srv.weight, srv.port] {
                    self.out.extend_from_slice(&v.to_be_bytes());
                }
                self.name(&wire::name_wire(&srv.target), false);
            }
            RData::SOA(soa) => {
                self.name(&wire::name_wire(&soa.mname), true);
                self.name(&wire::name_wire(&soa.rname), true);
                // The zone's served serial is written in when the blob is sent, so one SOA blob
                // serves every zone with the same SOA fields.
                self.serials.push(self.out.len() as u16);
                self.out.extend_from_slice(&[0; 4]);
                for v in [soa.refresh, soa.retry, soa.expire] {
                    self.out.extend_from_slice(&v.to_be_bytes());
                }
                self.out.extend_from_slice(&soa.minimum.to_be_bytes());
            }
            RData::TXT(txt) => {
                for s in txt.txt_data.iter() {
                    self.out.push(s.len() as u8);
                    self.out.extend_from_slice(s);
                }
            }
            other => {
                // `records` makes none of these; encode them plainly all the same.
                if let Ok(bytes) = other.to_bytes() {
                    self.out.extend_from_slice(&bytes);
                }
            }
        }
        let len = (self.out.len() - len_at - 2) as u16;
        self.out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
    }
}
