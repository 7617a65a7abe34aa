//! The UDP fast path: recognise a plain query without a full parse and answer it from the
//! pre-encoded responses. Anything unusual returns `None` and takes the general path.

use super::authority::{Authority, udp_limit};

/// A plain query: one question, class IN, no answer/authority records, at most an OPT record
/// without options we would have to echo.
pub(crate) struct Plain {
    /// Lower-case qname + qtype: the cache key.
    key: [u8; 257],
    key_len: usize,
    /// Offset just past the question name.
    name_end: usize,
    edns_payload: Option<u16>,
    do_bit: bool,
}

impl Plain {
    /// The question type (the last two octets of the key).
    pub(crate) fn qtype(&self) -> u16 {
        u16::from_be_bytes([self.key[self.key_len - 2], self.key[self.key_len - 1]])
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
        key: [0; 257],
        key_len: 0,
        name_end: 0,
        edns_payload: None,
        do_bit: false,
    };
    let mut i = 12;
    loop {
        let len = *pkt.get(i)? as usize;
        if len > 63 || p.key_len + 1 + len > 255 {
            return None;
        }
        let label = pkt.get(i..i + 1 + len)?;
        for (k, b) in p.key[p.key_len..p.key_len + 1 + len].iter_mut().zip(label) {
            *k = b.to_ascii_lowercase();
        }
        p.key_len += 1 + len;
        i += 1 + len;
        if len == 0 {
            break;
        }
    }
    p.name_end = i;
    let qtype = pkt.get(i..i + 2)?;
    if pkt.get(i + 2..i + 4)? != [0, 1] {
        return None; // class IN only
    }
    p.key[p.key_len..p.key_len + 2].copy_from_slice(qtype);
    p.key_len += 2;
    let rest = &pkt[i + 4..];
    if pkt[11] == 1 {
        // OPT: root owner, type 41, payload, ext-rcode 0, version 0, flags, empty-or-any RDATA.
        if rest.len() < 11 || rest[0] != 0 || rest[1..3] != [0, 41] || rest[5] != 0 || rest[6] != 0 {
            return None;
        }
        let rdlen = u16::from_be_bytes([rest[9], rest[10]]) as usize;
        if rest.len() != 11 + rdlen {
            return None;
        }
        p.edns_payload = Some(u16::from_be_bytes([rest[3], rest[4]]));
        p.do_bit = rest[7] & 0x80 != 0;
    } else if !rest.is_empty() {
        return None;
    }
    Some(p)
}

/// Write the answer for a plain query into `out`; `false` when there is no pre-encoded answer
/// or it does not fit the client's buffer (the general path then answers or truncates).
pub(crate) fn answer(auth: &Authority, pkt: &[u8], q: &Plain, out: &mut Vec<u8>) -> bool {
    let Some(cached) = auth.cached(&q.key[..q.key_len]) else {
        return false;
    };
    out.clear();
    match q.edns_payload {
        Some(_) => out.extend_from_slice(cached),
        None => {
            // The pre-encoded OPT (11 octets, no options) is last: drop it and count one less.
            out.extend_from_slice(&cached[..cached.len() - 11]);
            let ar = u16::from_be_bytes([out[10], out[11]]) - 1;
            out[10..12].copy_from_slice(&ar.to_be_bytes());
        }
    }
    if out.len() > udp_limit(q.edns_payload) {
        return false;
    }
    out[0] = pkt[0];
    out[1] = pkt[1];
    out[2] = (out[2] & !0x01) | (pkt[2] & 0x01); // RD copied
    out[3] = (out[3] & !0x10) | (pkt[3] & 0x10); // CD copied
    out[12..q.name_end].copy_from_slice(&pkt[12..q.name_end]); // the query's case
    if q.do_bit {
        let n = out.len();
        out[n - 4] |= 0x80; // RFC 3225 §3: DO copied into the OPT flags
    }
    true
}
