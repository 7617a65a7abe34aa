//! The catalog zone (RFC 9432, version 2) that lists every zone mailconf serves, so that a
//! secondary configured with the catalog alone follows all of them.
//!
//! Member labels are derived from the member zone's name (the first 64 bits of SHA-256 of its
//! lower-case name with the trailing dot, in hex), so they are the same across reloads,
//! restarts and machines without any state, and a zone keeps its label while it exists
//! (RFC 9432 §4.1: a changed label means "remove and re-add"). At 130,000 members the chance
//! of two sharing a label is about 5·10⁻¹⁰; `dns` checks and reports it.

use hickory_server::proto::rr::rdata::{NS, PTR, SOA, TXT};
use hickory_server::proto::rr::{Name, RData, Record};
use sha2::Digest;

use crate::settings::Domain;

/// RFC 9432 §4.2: the schema version this catalog follows.
pub const VERSION: &str = "2";
/// RFC 9432 §4.1 suggests TTL 0 for every record (the catalog is not meant for resolvers).
const TTL: u32 = 0;

/// The origins (ASCII, lower case, no trailing dot) of the zones [`super::for_name`] builds
/// for `name` (a name of `domain`), without building them.
pub fn zone_origins<'a>(domain: &'a Domain, name: &'a str) -> impl Iterator<Item = String> + 'a {
    domain.dns.iter().flat_map(|dns| dns.zones.iter()).map(move |rel| {
        if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}.{name}")
        }
    })
}

/// The stable member label of a zone (see the module comment) as a number.
pub fn label(origin: &str) -> u64 {
    let mut h = sha2::Sha256::new();
    h.update(origin.trim_end_matches('.').to_ascii_lowercase().as_bytes());
    h.update(b".");
    let d = h.finalize();
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// A member label as it appears in the catalog (`<label>.zones.<catalog>`).
pub fn label_text(label: u64) -> String {
    format!("{label:016x}")
}

fn abs(name: &str) -> Name {
    let mut n = Name::from_ascii(name.trim_end_matches('.')).unwrap_or_else(|_| Name::root());
    n.set_fqdn(true);
    n
}

/// The apex SOA: no real server or mailbox (`invalid.`, RFC 9432 §4.1), refresh 1 h as a
/// fallback to NOTIFY, expire at the maximum so members are never dropped for a late primary.
pub fn soa(catalog: &str, serial: u32) -> Record {
    let invalid = abs("invalid");
    Record::from_rdata(
        abs(catalog),
        TTL,
        RData::SOA(SOA::new(invalid.clone(), invalid, serial, 3600, 600, 2_147_483_646, 0)),
    )
}

/// The apex NS (required by zone syntax, never used) and the version TXT.
pub fn apex(catalog: &str) -> Vec<Record> {
    let apex = abs(catalog);
    let version = Name::from_ascii("version")
        .and_then(|v| v.append_domain(&apex))
        .unwrap_or(apex.clone());
    vec![
        Record::from_rdata(apex, TTL, RData::NS(NS(abs("invalid")))),
        Record::from_rdata(version, TTL, RData::TXT(TXT::new(vec![VERSION.to_string()]))),
    ]
}

/// The member record `<label>.zones.<catalog> PTR <origin>.`.
pub fn member(catalog: &str, label: u64, origin: &str) -> Record {
    let owner = Name::from_ascii(format!("{}.zones", label_text(label)))
        .and_then(|n| n.append_domain(&abs(catalog)))
        .unwrap_or_else(|_| abs(catalog));
    Record::from_rdata(owner, TTL, RData::PTR(PTR(abs(origin))))
}

/// Content fingerprint and content serial of a member set given as sorted labels (the labels
/// stand for the names: equal labels, equal names).
pub fn fingerprint(labels: impl Iterator<Item = u64>) -> (u32, [u8; 32]) {
    let mut h = sha2::Sha256::new();
    for l in labels {
        h.update(l.to_be_bytes());
    }
    let d: [u8; 32] = h.finalize().into();
    (u32::from_be_bytes([d[0], d[1], d[2], d[3]]).max(1), d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_stable_and_case_blind() {
        assert_eq!(label("Example.COM."), label("example.com"));
        assert_ne!(label("example.com"), label("example.net"));
        // Pinned: a label must never change between versions (secondaries would drop and
        // re-add every zone).
        assert_eq!(label_text(label("example.com")), "3ebef312509f797c");
        let m = member("catalog.invalid", label("example.com"), "example.com");
        assert_eq!(
            m.to_string(),
            "3ebef312509f797c.zones.catalog.invalid. 0 IN PTR example.com."
        );
    }
}
