//! Wire-format helpers: the one DNS name walker, the plain-query recogniser of the fast path,
//! and conversions between hickory `Name`s and lower-case wire names.

use hickory_server::proto::rr::Name;

/// Walk an uncompressed name starting at `start`: calls `label` with each label (without its
/// length octet) and returns the offset just past the root octet. `None` for a compressed,
/// over-long or cut-off name.
pub(crate) fn walk_name(pkt: &[u8], start: usize, mut label: impl FnMut(&[u8])) -> Option<usize> {
    let mut i = start;
    loop {
        let len = *pkt.get(i)? as usize;
        if len > 63 || i + 1 + len - start > 255 {
            return None;
        }
        if len == 0 {
            return Some(i + 1);
        }
        label(pkt.get(i + 1..i + 1 + len)?);
        i += 1 + len;
    }
}

/// End offset of the (uncompressed) question name of a message.
pub(crate) fn question_name_end(pkt: &[u8]) -> Option<usize> {
    walk_name(pkt, 12, |_| ())
}

/// A plain query: one question, class IN, no answer/authority records, at most an OPT record
/// without options we would have to echo. The fast path answers these without a full parse.
pub(crate) struct Plain {
    /// Lower-case wire qname.
    pub lower: [u8; 255],
    pub lower_len: usize,
    /// Offset just past the question (name, type, class).
    pub question_end: usize,
    pub qtype: u16,
    pub edns: Option<Edns>,
}

/// What a query's OPT record asked for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Edns {
    pub payload: u16,
    pub do_bit: bool,
}

impl Plain {
    pub fn lower(&self) -> &[u8] {
        &self.lower[..self.lower_len]
    }
}

/// Recognise a plain query; `None` means "use the general path".
pub(crate) fn plain(pkt: &[u8]) -> Option<Plain> {
    if pkt.len() < 17 {
        return None;
    }
    // QR=0, opcode QUERY, TC=0; QDCOUNT=1, ANCOUNT=0, NSCOUNT=0, ARCOUNT ≤ 1.
    if pkt[2] & 0xfa != 0 || pkt[4..10] != [0, 1, 0, 0, 0, 0] || pkt[10] != 0 || pkt[11] > 1 {
        return None;
    }
    let mut p = Plain {
        lower: [0; 255],
        lower_len: 0,
        question_end: 0,
        qtype: 0,
        edns: None,
    };
    let name_end = walk_name(pkt, 12, |label| {
        p.lower[p.lower_len] = label.len() as u8;
        for (k, b) in p.lower[p.lower_len + 1..].iter_mut().zip(label) {
            *k = b.to_ascii_lowercase();
        }
        p.lower_len += 1 + label.len();
    })?;
    p.lower_len += 1; // the root label (already 0)
    let q = pkt.get(name_end..name_end + 4)?;
    if q[2..4] != [0, 1] {
        return None; // class IN only
    }
    p.qtype = u16::from_be_bytes([q[0], q[1]]);
    p.question_end = name_end + 4;
    let rest = &pkt[p.question_end..];
    if pkt[11] == 1 {
        // OPT: root owner, type 41, payload, ext-rcode 0, version 0, flags, any RDATA.
        if rest.len() < 11 || rest[0] != 0 || rest[1..3] != [0, 41] || rest[5] != 0 || rest[6] != 0 {
            return None;
        }
        let rdlen = u16::from_be_bytes([rest[9], rest[10]]) as usize;
        if rest.len() != 11 + rdlen {
            return None;
        }
        p.edns = Some(Edns {
            payload: u16::from_be_bytes([rest[3], rest[4]]),
            do_bit: rest[7] & 0x80 != 0,
        });
    } else if !rest.is_empty() {
        return None;
    }
    Some(p)
}

/// Offset past a (possibly compressed) name.
pub(crate) fn skip_name(pkt: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let b = *pkt.get(i)?;
        match b & 0xc0 {
            0xc0 => return pkt.get(i + 1).map(|_| i + 2),
            0 if b == 0 => return Some(i + 1),
            0 => i += 1 + b as usize,
            _ => return None,
        }
    }
}

/// The OPT record of any message (names may be compressed, the OPT anywhere in the
/// additional section), for the answers built off the fast path: an error answer carries OPT
/// too when the query had one (RFC 6891 §7). `None` also for a message that does not parse.
pub(crate) fn find_opt(pkt: &[u8]) -> Option<Edns> {
    let count = |i: usize| {
        pkt.get(4 + 2 * i..6 + 2 * i)
            .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]) as usize)
    };
    let mut i = 12;
    for _ in 0..count(0) {
        i = skip_name(pkt, i)? + 4;
    }
    let before = count(1) + count(2);
    for n in 0..before + count(3) {
        i = skip_name(pkt, i)?;
        let fixed = pkt.get(i..i + 10)?;
        if n >= before && fixed[0..2] == [0, 41] {
            return Some(Edns {
                payload: u16::from_be_bytes([fixed[2], fixed[3]]),
                do_bit: fixed[6] & 0x80 != 0,
            });
        }
        i += 10 + u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
    }
    None
}

/// Lower-case wire form of an ASCII name without trailing dot (`""` = the root).
pub(crate) fn lower_wire(text: &str) -> Box<[u8]> {
    let mut out = Vec::with_capacity(text.len() + 2);
    for label in text.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    out.push(0);
    out.into_boxed_slice()
}

/// Lower-case wire form of a name.
pub(crate) fn name_wire(name: &Name) -> Box<[u8]> {
    let mut out = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out.into_boxed_slice()
}

/// A name from its wire form (as built by this module: uncompressed, valid).
pub(crate) fn name_from_wire(wire: &[u8]) -> Name {
    let mut labels = Vec::new();
    walk_name(wire, 0, |l| labels.push(l.to_vec()));
    let mut n = Name::from_labels(labels).unwrap_or_else(|_| Name::root());
    n.set_fqdn(true);
    n
}

/// Where `suffix` (a wire name) starts inside `name` at a label boundary, if it is a suffix.
pub(crate) fn suffix_at(name: &[u8], suffix: &[u8]) -> Option<usize> {
    if suffix.len() > name.len() {
        return None;
    }
    let mut i = 0;
    while i < name.len() {
        if name.len() - i == suffix.len() {
            return (name[i..] == *suffix).then_some(i);
        }
        if name.len() - i < suffix.len() {
            return None;
        }
        i += 1 + name[i] as usize;
    }
    None
}

/// The suffixes of a wire name at its label boundaries, longest first (the name itself, then
/// its parent, …, the root).
pub(crate) fn suffixes(name: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut i = Some(0usize);
    std::iter::from_fn(move || {
        let at = i?;
        let rest = name.get(at..)?;
        i = match rest.first() {
            Some(&0) | None => None,
            Some(&len) => Some(at + 1 + len as usize),
        };
        Some((at, rest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_suffixes() {
        let w = lower_wire("Mail.Example.COM");
        assert_eq!(&*w, b"\x04mail\x07example\x03com\x00");
        assert_eq!(suffix_at(&w, &lower_wire("example.com")), Some(5));
        assert_eq!(suffix_at(&w, &lower_wire("ample.com")), None);
        assert_eq!(suffix_at(&w, &w), Some(0));
        let all: Vec<usize> = suffixes(&w).map(|(i, _)| i).collect();
        assert_eq!(all, [0, 5, 13, 17]);
        assert_eq!(name_from_wire(&w).to_ascii(), "mail.example.com.");
        assert_eq!(&*name_wire(&name_from_wire(&w)), &*w);
    }

    #[test]
    fn the_opt_record_is_found_behind_other_records() {
        // Query, then in the additional section an A record, then OPT (payload 4096, DO).
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2];
        m.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        m.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01");
        m.extend_from_slice(b"\x00\x00\x29\x10\x00\x00\x00\x80\x00\x00\x00");
        let e = find_opt(&m).expect("OPT");
        assert_eq!((e.payload, e.do_bit), (4096, true));
        m[11] = 1; // the OPT record not counted
        assert!(find_opt(&m).is_none());
        for cut in 0..m.len() {
            let _ = find_opt(&m[..cut]);
        }
    }

    #[test]
    fn walker_rejects_pointers_and_long_names() {
        assert_eq!(walk_name(b"\xc0\x0c", 0, |_| ()), None);
        assert_eq!(walk_name(b"\x03abc", 0, |_| ()), None);
        let long: Vec<u8> = std::iter::repeat_n(
            *b"\x3faaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            5,
        )
        .flatten()
        .chain([0])
        .collect();
        assert_eq!(walk_name(&long, 0, |_| ()), None);
    }
}
