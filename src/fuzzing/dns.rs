//! The DNS targets: one message over UDP and TCP (the fast-path recogniser against hickory's
//! parser, answers within the client's limit, only names the server holds), zone transfers,
//! catalog queries and NOTIFY with the transfer ACL, and TSIG-signed exchanges (checked with a
//! TSIG reader of their own, independent of `dns::tsig`).

use std::net::IpAddr;

use hickory_server::proto::op::{Message, ResponseCode};
use hickory_server::proto::rr::{Name, Record, RecordType};

use crate::dns::Core;

use super::{Fixture, KEYED, OUTSIDER, SECONDARY, TSIG};

impl Fixture {
    /// One DNS message from the network, both paths (for the corpus replay).
    pub fn dns(&self, req: &[u8]) {
        self.dns_udp(req);
        self.dns_tcp(req);
    }

    /// A UDP query: the fast-path recogniser against hickory's parser, the UDP answer (fast path
    /// or general), the rate limiter's slip answer.
    pub fn dns_udp(&self, req: &[u8]) {
        let parsed = Message::from_vec(req).ok();
        let plain = Core::plain(req);
        if let (Some((lower, qtype, payload)), Some(m)) = (&plain, &parsed) {
            // Whatever the fast path takes, a full parser reads the same way (when it reads it).
            assert_eq!(m.queries.len(), 1, "fast path took a message without one question");
            let q = &m.queries[0];
            assert_eq!(&lower_wire(q.name()), lower, "fast path read another name");
            assert_eq!(u16::from(q.query_type()), *qtype, "fast path read another type");
            // RFC 6891 §6.2.5: a payload below 512 counts as 512. hickory reads it so; the fast
            // path keeps the number and `udp_limit` raises it (checked below).
            assert_eq!(
                m.edns.as_ref().map(|e| e.max_payload()),
                payload.map(|p| p.max(512)),
                "fast path read another EDNS size"
            );
        }
        // The client's UDP limit: its EDNS buffer (never below 512), else 512.
        let payload = plain
            .and_then(|(_, _, p)| p)
            .or_else(|| parsed.as_ref().and_then(|m| m.edns.as_ref()).map(|e| e.max_payload()));
        let udp_limit = payload.map_or(512, |p| usize::from(p).max(512));
        // A response is never answered: two servers would bounce it between them forever.
        let is_response = is_response(req);
        for peer in [OUTSIDER, SECONDARY] {
            if let Some(resp) = self.dns.udp(req, peer) {
                assert!(!is_response, "UDP answered a response");
                self.check_dns_response(req, &resp, udp_limit, "UDP");
            }
        }
        if let Some(tc) = Core::udp_slip(req) {
            assert!(!is_response, "the rate limiter's slip answered a response");
            let m = self.check_dns_response(req, &tc, udp_limit, "slip");
            assert!(m.metadata.truncation, "a slip answer without TC");
            assert!(
                tc.len() <= req.len(),
                "a slip answer larger than the query (amplification)"
            );
        }
    }

    /// A TCP message: the general path (`Authority::respond`), transfers for an allowed
    /// secondary and refusals for anyone else.
    pub fn dns_tcp(&self, req: &[u8]) {
        for peer in [OUTSIDER, SECONDARY] {
            let frames = self.dns.tcp(req, peer);
            if frames.len() > 1 {
                assert_eq!(peer, SECONDARY, "a zone transfer to a client outside the ACL");
            }
            assert!(frames.is_empty() || !is_response(req), "TCP answered a response");
            for f in &frames {
                self.check_dns_response(req, f, usize::from(u16::MAX), "TCP");
            }
        }
    }

    fn check_dns_response(&self, req: &[u8], resp: &[u8], limit: usize, how: &str) -> Message {
        assert!(resp.len() >= 12, "{how}: answer shorter than a header");
        assert_eq!(resp[..2], req[..2], "{how}: ID not echoed");
        assert!(resp[2] & 0x80 != 0, "{how}: QR not set");
        assert!(
            resp.len() <= limit,
            "{how}: {} octets for a client limit of {limit}",
            resp.len()
        );
        let m = Message::from_vec(resp).unwrap_or_else(|e| panic!("{how}: answer does not parse back: {e}"));
        let records = m.answers.iter().chain(&m.authorities).chain(&m.additionals);
        for r in records.filter(|r| !matches!(r.record_type(), RecordType::OPT | RecordType::TSIG)) {
            assert!(
                self.dns_names.iter().any(|n| n.zone_of(&r.name)),
                "{how}: a record for {} outside our zones",
                r.name
            );
        }
        if m.metadata.authoritative || m.metadata.response_code == ResponseCode::NoError && !m.answers.is_empty() {
            match m.queries.first() {
                Some(q) => assert!(
                    self.dns_names.iter().any(|n| n.zone_of(q.name())),
                    "{how}: authoritative for {} outside our zones",
                    q.name()
                ),
                // Later messages of a zone transfer may leave the question out (RFC 5936 §2.2).
                None => assert_eq!(how, "TCP", "{how}: an authoritative answer without question"),
            }
        }
        m
    }

    /// A zone transfer, catalog query or NOTIFY over TCP: `FLAGS` then a DNS message. FLAGS
    /// picks the peer (an outsider, the secondary the ACL allows, the one that must sign: once
    /// unsigned, once signed with its key) and the server (fresh, or after a reload that
    /// journaled a catalog change). A transfer goes only to an allowed peer (signed when it must
    /// sign), starts and ends with the same SOA, and holds only names of the zone asked for.
    pub fn dns_xfr(&self, input: &[u8]) {
        let Some((&flags, msg)) = input.split_first() else {
            return;
        };
        if msg.len() < 12 {
            return;
        }
        let core = if flags & 4 != 0 { &self.journaled } else { &self.dns };
        let (peer, signed) = match flags & 3 {
            0 => (OUTSIDER, false),
            1 => (SECONDARY, false),
            2 => (KEYED, false),
            _ => (KEYED, true),
        };
        let mut req = msg.to_vec();
        let key = &self.settings.server.tsig[0];
        if signed {
            Core::sign_request(key, &mut req, Core::now());
        }
        let frames = core.tcp(&req, peer);
        assert!(frames.is_empty() || !is_response(&req), "TCP answered a response");
        let request_mac = signed.then(|| tsig_of(&req).map(|t| t.mac)).flatten();
        let mut prior = request_mac.clone();
        let mut parsed = Vec::new();
        for f in &frames {
            parsed.push(self.check_dns_response(&req, f, usize::from(u16::MAX), "TCP"));
            if let Some(t) = tsig_of(f).filter(|t| !t.mac.is_empty()) {
                let mac = prior.as_deref().expect("a signed answer to an unsigned request");
                verify_tsig(key, mac, f, &t, parsed.len() > 1);
                prior = Some(t.mac);
            }
        }
        self.check_transfer(&parsed, peer, signed);
    }

    /// What a transfer answer must be: to whom, its framing, its names.
    fn check_transfer(&self, frames: &[Message], peer: IpAddr, signed: bool) {
        let answers: Vec<&Record> = frames.iter().flat_map(|m| &m.answers).collect();
        let Some(q) = frames.first().and_then(|m| m.queries.first()) else {
            return;
        };
        if !matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR) || answers.is_empty() {
            return;
        }
        assert!(
            peer == SECONDARY || peer == KEYED && signed,
            "a transfer of {} to {peer} (signed: {signed})",
            q.name()
        );
        let first = answers[0];
        assert_eq!(
            first.record_type(),
            RecordType::SOA,
            "a transfer that does not start with SOA"
        );
        assert_eq!(&first.name, q.name(), "a transfer of another zone than asked");
        if answers.len() > 1 || frames.len() > 1 {
            let last = answers[answers.len() - 1];
            assert_eq!(last, first, "a transfer that does not end with its first SOA");
        }
        for r in &answers {
            assert!(q.name().zone_of(&r.name), "{} in the transfer of {}", r.name, q.name());
        }
    }

    /// A TSIG-signed request: `MODE POS_HI POS_LO` then a DNS message, which the target signs
    /// with the fixture's key as the secondary would (hickory's reading of it when it has one,
    /// else the bytes as they are), then spoils as MODE says: a MAC byte flipped, cut at POS,
    /// the MAC shortened to POS octets, any byte flipped, signed with another secret, a second
    /// TSIG record, or unsigned; bit 7 signs an hour ago. Sent by the secondary that must sign,
    /// the one the ACL allows, and an outsider, over TCP and UDP. Checked: an answer is signed
    /// exactly when the request verifies, and its MAC verifies (each message of a transfer
    /// chained to the one before); a request that does not verify never gets a transfer or a
    /// signed answer; an old one gets BADTIME.
    pub fn tsig(&self, input: &[u8]) {
        let [mode, hi, lo, msg @ ..] = input else {
            return;
        };
        if msg.len() < 12 {
            return;
        }
        let pos = usize::from(u16::from_be_bytes([*hi, *lo]));
        let canonical = Message::from_vec(msg)
            .ok()
            .filter(|m| m.queries.len() == 1 && m.additionals.iter().all(|r| r.record_type() != RecordType::TSIG))
            .and_then(|m| m.to_vec().ok())
            .filter(|b| b.len() >= 12 && b[2] & 0x80 == 0);
        let plain = canonical.clone().unwrap_or_else(|| msg.to_vec());
        let key = &self.settings.server.tsig[0];
        let old = mode & 0x80 != 0;
        let time = if old { Core::now() - 3600 } else { Core::now() };
        let mut signed = plain.clone();
        Core::sign_request(key, &mut signed, time);
        let rr = plain.len(); // where the TSIG record starts
        let mut sent = signed.clone();
        let mac_at = sent.len() - 6 - 32;
        match mode & 7 {
            0 => {}
            1 => sent[mac_at + pos % 32] ^= 1 << (pos % 8),
            2 => sent.truncate(12 + pos % (sent.len() - 12)),
            3 => {
                // A MAC cut to `pos % 33` octets, lengths adjusted.
                let keep = pos % 33;
                sent.drain(mac_at + keep..mac_at + 32);
                sent[mac_at - 2..mac_at].copy_from_slice(&(keep as u16).to_be_bytes());
                let rdlen_at = rr + wire_len(&key.name) + 8;
                let rdlen = u16::from_be_bytes([sent[rdlen_at], sent[rdlen_at + 1]]) - (32 - keep) as u16;
                sent[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
            }
            4 => {
                let at = 2 + pos % (sent.len() - 2);
                sent[at] ^= 1 << (pos % 8);
            }
            5 => {
                let mut other = key.clone();
                other.secret = b"another secret of enough length".to_vec();
                sent = plain.clone();
                Core::sign_request(&other, &mut sent, time);
            }
            6 => {
                let again = signed[rr..].to_vec();
                sent.extend_from_slice(&again);
                let ar = u16::from_be_bytes([sent[10], sent[11]]).wrapping_add(1);
                sent[10..12].copy_from_slice(&ar.to_be_bytes());
            }
            _ => sent = plain.clone(),
        }
        // Signed with our key over these very bytes (the ID is not covered: RFC 8945 §5.3).
        // The key and algorithm names enter the MAC in canonical (lower-case) form (§4.3.3),
        // so a change of their letters' case keeps the signature good: the first release
        // campaign's finding, `xfr.fUzz.`.
        let names = tsig_of(&signed).map(|t| {
            let alg_at = t.start + t.name.len() + 10;
            [t.start..t.start + t.name.len(), alg_at..alg_at + t.algorithm.len()]
        });
        let genuine = mode & 7 != 7
            && sent.len() == signed.len()
            && (2..sent.len()).all(|i| {
                sent[i] == signed[i]
                    || (names.iter().flatten().any(|r| r.contains(&i)) && sent[i].eq_ignore_ascii_case(&signed[i]))
            });
        let request_mac = tsig_of(&sent).map(|t| t.mac);
        for peer in [KEYED, SECONDARY, OUTSIDER] {
            let frames = self.dns.tcp(&sent, peer);
            let mut udp = self.dns.udp(&sent, peer).into_iter().collect::<Vec<_>>();
            if let Some(u) = udp.first() {
                self.check_dns_response(&sent, u, udp_limit_of(&sent), "UDP");
            }
            for (how, frames) in [("TCP", &frames), ("UDP", &mut udp)] {
                let mut prior = request_mac.clone();
                let mut parsed = Vec::new();
                for (i, f) in frames.iter().enumerate() {
                    let m = self.check_dns_response(&sent, f, usize::from(u16::MAX), how);
                    match tsig_of(f) {
                        Some(t) if t.error == 0 || t.error == 18 => {
                            assert!(genuine, "{how}: a signed answer to a request that does not verify");
                            let mac = prior.as_deref().expect("the request's MAC");
                            verify_tsig(key, mac, f, &t, i > 0);
                            if t.error == 18 {
                                assert!(old, "{how}: BADTIME for a request signed now");
                            }
                            prior = Some(t.mac);
                        }
                        Some(t) => {
                            assert!(t.mac.is_empty(), "{how}: a MAC on a TSIG error {}", t.error);
                            // Signed bytes after a message that does not parse may be read
                            // as another record (another key name): only a well-formed
                            // request signed now must verify.
                            assert!(
                                !(genuine && canonical.is_some()) || old,
                                "{how}: TSIG error {} for a good request",
                                t.error
                            );
                        }
                        None => assert!(
                            !(genuine && canonical.is_some()),
                            "{how}: an unsigned answer to a well-signed request"
                        ),
                    }
                    if genuine && old && canonical.is_some() {
                        assert_eq!(
                            m.metadata.response_code,
                            ResponseCode::NotAuth,
                            "{how}: an old request answered"
                        );
                    }
                    parsed.push(m);
                }
                if how == "TCP" {
                    self.check_transfer(&parsed, peer, genuine && !old);
                }
            }
        }
    }
}

fn is_response(req: &[u8]) -> bool {
    req.get(2).is_some_and(|b| b & 0x80 != 0)
}

fn lower_wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

/// A TSIG record at the end of a message (RFC 8945 §4.2), read independently of `dns::tsig`.
struct TsigRr {
    /// Where the record starts.
    start: usize,
    /// Time signed and fudge, as on the wire.
    timers: [u8; 8],
    mac: Vec<u8>,
    original_id: [u8; 2],
    error: u16,
    other: Vec<u8>,
    /// Key name and algorithm, as on the wire.
    name: Vec<u8>,
    algorithm: Vec<u8>,
}

/// The TSIG record that ends `msg`, if its last record is one (names uncompressed).
fn tsig_of(msg: &[u8]) -> Option<TsigRr> {
    // Walk the records by hand: hickory keeps TSIG apart on some versions.
    let mut i = 12;
    let qd = u16::from_be_bytes([*msg.get(4)?, *msg.get(5)?]);
    for _ in 0..qd {
        i = name_end(msg, i)? + 4;
    }
    let records: usize = (0..3)
        .map(|k| usize::from(u16::from_be_bytes([msg[6 + 2 * k], msg[7 + 2 * k]])))
        .sum();
    let mut last = None;
    for _ in 0..records {
        let start = i;
        let e = name_end(msg, i)?;
        let fixed = msg.get(e..e + 10)?;
        let end = e + 10 + usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        last = Some((start, e, u16::from_be_bytes([fixed[0], fixed[1]]), end));
        i = end;
    }
    let (start, e, rtype, end) = last?;
    if rtype != TSIG || end != msg.len() {
        return None;
    }
    let rd = &msg[e + 10..end];
    let alg_end = name_end(rd, 0)?;
    let f = rd.get(alg_end..alg_end + 10)?;
    let mac_len = usize::from(u16::from_be_bytes([f[8], f[9]]));
    let mac = rd.get(alg_end + 10..alg_end + 10 + mac_len)?.to_vec();
    let t = rd.get(alg_end + 10 + mac_len..alg_end + 16 + mac_len)?;
    let other = rd.get(alg_end + 16 + mac_len..)?.to_vec();
    Some(TsigRr {
        start,
        timers: f[..8].try_into().ok()?,
        mac,
        original_id: [t[0], t[1]],
        error: u16::from_be_bytes([t[2], t[3]]),
        other,
        name: msg[start..e].to_vec(),
        algorithm: rd[..alg_end].to_vec(),
    })
}

/// The end of the name at `i` (a compression pointer ends it).
fn name_end(msg: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = usize::from(*msg.get(i)?);
        match len {
            0 => return Some(i + 1),
            0xc0.. => return (i + 2 <= msg.len()).then_some(i + 2),
            64.. => return None,
            _ => i += 1 + len,
        }
    }
}

/// The MAC of a signed answer verifies with `key`, chained to `prior` (RFC 8945 §4.3: the
/// request's MAC for the first message; for a later message of a transfer the one before, and
/// only the timers as variables, §5.3.1).
fn verify_tsig(key: &crate::settings::TsigKey, prior: &[u8], msg: &[u8], t: &TsigRr, later: bool) {
    use ring::hmac;
    let alg = match key.algorithm {
        crate::settings::TsigAlgorithm::HmacSha256 => hmac::HMAC_SHA256,
        crate::settings::TsigAlgorithm::HmacSha512 => hmac::HMAC_SHA512,
    };
    let mut data = (prior.len() as u16).to_be_bytes().to_vec();
    data.extend_from_slice(prior);
    let mut unsigned = msg[..t.start].to_vec();
    unsigned[0..2].copy_from_slice(&t.original_id);
    let ar = u16::from_be_bytes([unsigned[10], unsigned[11]]) - 1;
    unsigned[10..12].copy_from_slice(&ar.to_be_bytes());
    data.extend_from_slice(&unsigned);
    if !later {
        data.extend_from_slice(&t.name.to_ascii_lowercase());
        data.extend_from_slice(&[0, 255, 0, 0, 0, 0]);
        data.extend_from_slice(&t.algorithm.to_ascii_lowercase());
    }
    data.extend_from_slice(&t.timers);
    if !later {
        data.extend_from_slice(&t.error.to_be_bytes());
        data.extend_from_slice(&(t.other.len() as u16).to_be_bytes());
        data.extend_from_slice(&t.other);
    }
    assert!(
        hmac::verify(&hmac::Key::new(alg, &key.secret), &data, &t.mac).is_ok(),
        "a TSIG MAC that does not verify"
    );
}

/// Octets of a name in wire form.
fn wire_len(name: &str) -> usize {
    let name = name.trim_end_matches('.');
    if name.is_empty() { 1 } else { name.len() + 2 }
}

/// The UDP limit a client states (its EDNS buffer, never below 512), else 512.
fn udp_limit_of(req: &[u8]) -> usize {
    Message::from_vec(req)
        .ok()
        .and_then(|m| m.edns.map(|e| usize::from(e.max_payload())))
        .map_or(512, |p| p.max(512))
}
