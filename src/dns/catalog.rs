//! Serving the catalog zone (`[server] catalog`, RFC 9432 v2; records from
//! `records::catalog`): members as (label, slot, zone) numbers — no copy of the names, which
//! the settings hold — its serial, and a bounded journal of membership changes for IXFR
//! (RFC 1995).
//!
//! Per member: 16 bytes (130,000 zones: 2 MB). The journal lives in memory only: after a
//! restart the serial continues (from `state_dir`) but a secondary's first IXFR falls back to a
//! full transfer of the catalog.

use std::collections::VecDeque;
use std::sync::Mutex;

use hickory_server::proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::{Record, RecordType};

use super::wire;
use super::zone::serial_greater;
use crate::records::catalog as rc;

/// The journal keeps at most this many changes…
const JOURNAL_DELTAS: usize = 100;
/// …and at most this many changed members in all (a change beyond it empties the journal, and
/// the next IXFR is answered with the whole catalog).
const JOURNAL_MEMBERS: usize = 100_000;

/// The catalog of one settings snapshot.
#[derive(Clone)]
pub(crate) struct Catalog {
    /// ASCII, lower case, no trailing dot.
    pub name: String,
    /// Lower-case wire form.
    pub origin: Box<[u8]>,
    /// (label, slot, zone of the slot), sorted by label, labels unique.
    pub members: Box<[(u64, u32, u32)]>,
    pub serial: u32,
    pub content: [u8; 32],
}

impl Catalog {
    /// The catalog of `members` (unsorted; a label collision keeps the first and is logged),
    /// following `previous` (serial, content) so the serial only grows.
    pub fn new(name: &str, mut members: Vec<(u64, u32, u32)>, previous: Option<(u32, [u8; 32])>) -> Catalog {
        members.sort_unstable();
        let before = members.len();
        members.dedup_by_key(|m| m.0);
        if members.len() != before {
            tracing::warn!(
                dropped = before - members.len(),
                "catalog: member labels collide (64-bit hash); those zones are not listed"
            );
        }
        let (mut serial, content) = rc::fingerprint(members.iter().map(|m| m.0));
        if let Some((prev_serial, prev_content)) = previous {
            serial = if prev_content == content {
                prev_serial
            } else if serial_greater(serial, prev_serial) {
                serial
            } else {
                prev_serial.wrapping_add(1)
            };
        }
        Catalog {
            origin: wire::lower_wire(name),
            name: name.to_string(),
            members: members.into_boxed_slice(),
            serial,
            content,
        }
    }

    pub fn soa(&self) -> Record {
        rc::soa(&self.name, self.serial)
    }

    /// Position of a member label.
    pub fn find(&self, label: u64) -> Option<usize> {
        self.members.binary_search_by_key(&label, |m| m.0).ok()
    }
}

/// One change of the catalog: the members removed and added from serial `from` to `to`.
pub(crate) struct Delta {
    pub from: u32,
    pub to: u32,
    pub removed: Vec<(u64, String)>,
    pub added: Vec<(u64, String)>,
}

/// Recent changes, oldest first; bounded (see `JOURNAL_DELTAS`, `JOURNAL_MEMBERS`).
#[derive(Default)]
pub(crate) struct Journal {
    deltas: Mutex<VecDeque<Delta>>,
}

impl Journal {
    pub fn push(&self, delta: Delta) {
        let mut d = self.deltas.lock().unwrap_or_else(|e| e.into_inner());
        if d.back().is_some_and(|last| last.to != delta.from) {
            d.clear(); // a gap (a catalog renamed, switched off and on): start again
        }
        d.push_back(delta);
        let size = |d: &VecDeque<Delta>| d.iter().map(|x| x.removed.len() + x.added.len()).sum::<usize>();
        while d.len() > JOURNAL_DELTAS || (!d.is_empty() && size(&d) > JOURNAL_MEMBERS) {
            d.pop_front();
        }
    }

    /// Forget every change (the catalog was renamed or switched on: other serials).
    pub fn clear(&self) {
        self.deltas.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The IXFR body from `serial` to `current`: per change, SOA(from), removed, SOA(to),
    /// added (RFC 1995 §4). `None` when the journal does not reach back to `serial`.
    pub fn since(&self, catalog: &str, serial: u32, current: u32) -> Option<Vec<Record>> {
        let d = self.deltas.lock().unwrap_or_else(|e| e.into_inner());
        let start = d.iter().position(|x| x.from == serial)?;
        let chain = d.range(start..);
        if d.back().map(|x| x.to) != Some(current) {
            return None;
        }
        let mut out = Vec::new();
        for x in chain {
            out.push(rc::soa(catalog, x.from));
            out.extend(x.removed.iter().map(|(l, o)| rc::member(catalog, *l, o)));
            out.push(rc::soa(catalog, x.to));
            out.extend(x.added.iter().map(|(l, o)| rc::member(catalog, *l, o)));
        }
        Some(out)
    }
}

/// The answer to a (non-transfer) query for a name in the catalog zone.
pub(crate) fn answer(
    catalog: &Catalog,
    id: u16,
    query: &Query,
    lower: &[u8],
    member_origin: impl Fn(usize) -> Option<String>,
) -> Vec<u8> {
    let mut m = Message::response(id, OpCode::Query);
    m.metadata.authoritative = true;
    m.add_query(query.clone());
    let qtype = query.query_type();
    let rel = &lower[..lower.len() - catalog.origin.len()];
    let mut labels: Vec<Vec<u8>> = Vec::new();
    // `rel` is a prefix of a name: its labels end where the catalog's origin begins.
    let mut i = 0;
    while let Some(&len) = rel.get(i) {
        labels.push(rel.get(i + 1..i + 1 + len as usize).unwrap_or_default().to_vec());
        i += 1 + len as usize;
    }
    let labels: Vec<&[u8]> = labels.iter().map(Vec::as_slice).collect();
    let wants = |t: RecordType| qtype == t || qtype == RecordType::ANY;
    let mut answers: Vec<Record> = Vec::new();
    let mut exists = true;
    match labels.as_slice() {
        [] => {
            if wants(RecordType::SOA) {
                answers.push(catalog.soa());
            } else if wants(RecordType::NS) {
                answers.extend(
                    rc::apex(&catalog.name)
                        .into_iter()
                        .filter(|r| r.record_type() == RecordType::NS),
                );
            }
        }
        [b"version"] => {
            if wants(RecordType::TXT) {
                answers.extend(
                    rc::apex(&catalog.name)
                        .into_iter()
                        .filter(|r| r.record_type() == RecordType::TXT),
                );
            }
        }
        [b"zones"] => {}
        [label, b"zones"] => {
            let found = std::str::from_utf8(label)
                .ok()
                .filter(|t| t.len() == 16)
                .and_then(|t| u64::from_str_radix(t, 16).ok())
                .and_then(|l| Some((l, catalog.find(l)?)));
            match found {
                Some((l, i)) => {
                    if wants(RecordType::PTR)
                        && let Some(origin) = member_origin(i)
                    {
                        answers.push(rc::member(&catalog.name, l, &origin));
                    }
                }
                None => exists = false,
            }
        }
        _ => exists = false,
    }
    if answers.is_empty() {
        m.add_authority(catalog.soa());
        if !exists {
            m.metadata.response_code = ResponseCode::NXDomain;
        }
    } else {
        m.add_answers(answers);
    }
    m.to_vec().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(from: u32, to: u32, added: &[&str]) -> Delta {
        Delta {
            from,
            to,
            removed: Vec::new(),
            added: added.iter().map(|o| (rc::label(o), o.to_string())).collect(),
        }
    }

    #[test]
    fn the_journal_answers_from_any_serial_it_reaches_and_stays_bounded() {
        let j = Journal::default();
        j.push(delta(1, 2, &["a.test"]));
        j.push(delta(2, 3, &["b.test"]));
        let body = j.since("cat.invalid", 1, 3).expect("reaches 1");
        // SOA 1, SOA 2, a; SOA 2, SOA 3, b.
        assert_eq!(body.len(), 6);
        assert_eq!(j.since("cat.invalid", 2, 3).map(|b| b.len()), Some(3));
        assert!(j.since("cat.invalid", 7, 3).is_none(), "unknown serial");
        assert!(j.since("cat.invalid", 1, 4).is_none(), "not up to the current serial");
        // A gap (serial 3 → 10 never journaled) starts the journal again.
        j.push(delta(10, 11, &["c.test"]));
        assert!(j.since("cat.invalid", 1, 11).is_none());
        assert!(j.since("cat.invalid", 10, 11).is_some());
        // Bounded in changes.
        for s in 11..11 + JOURNAL_DELTAS as u32 + 5 {
            j.push(delta(s, s + 1, &[]));
        }
        assert!(j.since("cat.invalid", 11, 11 + JOURNAL_DELTAS as u32 + 5).is_none());
        assert_eq!(j.deltas.lock().unwrap().len(), JOURNAL_DELTAS);
    }

    #[test]
    fn serials_only_grow_and_labels_stay_unique() {
        let members = vec![(5, 0, 0), (3, 1, 0), (5, 2, 0)];
        let c = Catalog::new("cat.invalid", members, None);
        assert_eq!(c.members.iter().map(|m| m.0).collect::<Vec<_>>(), [3, 5]);
        let same = Catalog::new("cat.invalid", vec![(3, 0, 0), (5, 1, 0)], Some((c.serial, c.content)));
        assert_eq!(same.serial, c.serial, "same members, same serial");
        let high = c.serial.wrapping_add(0x7000_0000);
        let other = Catalog::new("cat.invalid", vec![(3, 0, 0)], Some((high, c.content)));
        assert!(serial_greater(other.serial, high), "{} after {high}", other.serial);
    }
}
