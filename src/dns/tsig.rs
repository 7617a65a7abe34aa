//! TSIG (RFC 8945) with hmac-sha256 and hmac-sha512: verify a signed request, sign its
//! response (every message of a transfer), sign outbound NOTIFY. Wire-level, on the bytes the
//! servers send, so nothing here touches the plain answer path: signed queries are never
//! "plain" (`wire::plain` takes at most an OPT record) and come through `Authority::respond`.
//!
//! HMAC is ring's (already in the tree for rustls). Errors name the key, never the secret.

use ring::hmac;

use super::wire::{self, skip_name};
use crate::settings::{ServerSettings, TsigAlgorithm, TsigKey};

const TYPE_TSIG: u16 = 250;
const CLASS_ANY: u16 = 255;
const RCODE_FORMERR: u8 = 1;
const RCODE_NOTAUTH: u8 = 9;
/// TSIG error codes (RFC 8945 §3, IANA "DNS RCODEs").
pub(crate) const BADSIG: u16 = 16;
pub(crate) const BADKEY: u16 = 17;
pub(crate) const BADTIME: u16 = 18;
pub(crate) const BADTRUNC: u16 = 22;
/// Seconds of clock difference we accept and ask for (RFC 8945 §10 recommends 300).
pub(crate) const FUDGE: u16 = 300;

/// Seconds since the epoch, as TSIG counts time.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a request's TSIG says.
pub(crate) enum Check {
    /// No TSIG record.
    Unsigned,
    /// Valid: the signer for the response, and the request without its TSIG record.
    Signed(Box<Signer>, Vec<u8>),
    /// Answer this instead (FORMERR, or NOTAUTH with BADKEY/BADSIG/BADTIME/BADTRUNC).
    Reject(Vec<u8>),
}

/// Signs the response(s) to one verified request.
pub(crate) struct Signer {
    /// Index of the key in `[server] tsig`.
    pub key: usize,
    hmac: hmac::Key,
    name: Box<[u8]>,
    algorithm: Box<[u8]>,
    /// The MAC the next message's digest starts with: the request's, then each message's.
    prior_mac: Vec<u8>,
    first: bool,
    time: u64,
}

impl Signer {
    fn new(index: usize, key: &TsigKey, prior_mac: Vec<u8>, time: u64) -> Signer {
        Signer {
            key: index,
            hmac: hmac_key(key),
            name: wire::lower_wire(&key.name),
            algorithm: algorithm_wire(key.algorithm),
            prior_mac,
            first: true,
            time,
        }
    }

    /// Append a TSIG record to `msg` (a whole response message). The first message of an
    /// answer covers the request's MAC and all TSIG variables; each following one (a transfer's
    /// later frames, RFC 8945 §5.3.1) the prior MAC and the timers only.
    pub fn sign(&mut self, msg: &mut Vec<u8>) {
        if msg.len() < 12 {
            return;
        }
        let mut ctx = hmac::Context::with_key(&self.hmac);
        ctx.update(&(self.prior_mac.len() as u16).to_be_bytes());
        ctx.update(&self.prior_mac);
        ctx.update(msg);
        let mut vars = Vec::with_capacity(64);
        if self.first {
            variables(&mut vars, &self.name, &self.algorithm, self.time, FUDGE, 0, &[]);
        } else {
            vars.extend_from_slice(&self.time.to_be_bytes()[2..]);
            vars.extend_from_slice(&FUDGE.to_be_bytes());
        }
        ctx.update(&vars);
        let mac = ctx.sign();
        let id = u16::from_be_bytes([msg[0], msg[1]]);
        append_rr(msg, &self.name, &self.algorithm, self.time, mac.as_ref(), id, 0, &[]);
        self.prior_mac = mac.as_ref().to_vec();
        self.first = false;
    }
}

/// Sign an outbound request (NOTIFY) with `key`: the message and all TSIG variables.
/// Returns the MAC, which the reply's signature covers (see [`verify_reply`]).
pub(crate) fn sign_request(key: &TsigKey, msg: &mut Vec<u8>, time: u64) -> Vec<u8> {
    if msg.len() < 12 {
        return Vec::new();
    }
    let name = wire::lower_wire(&key.name);
    let algorithm = algorithm_wire(key.algorithm);
    let mut data = msg.clone();
    variables(&mut data, &name, &algorithm, time, FUDGE, 0, &[]);
    let mac = hmac::sign(&hmac_key(key), &data);
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    append_rr(msg, &name, &algorithm, time, mac.as_ref(), id, 0, &[]);
    mac.as_ref().to_vec()
}

/// Check the reply to a request we signed with `key` (whose MAC was `request_mac`): it must
/// be signed with the same key over the request's MAC, the reply and the TSIG variables
/// (RFC 8945 §5.3.1), with a full-length MAC and a time within its fudge of `now`. `Err`
/// says why not, in words for the log (never the secret).
pub(crate) fn verify_reply(key: &TsigKey, request_mac: &[u8], reply: &[u8], now: u64) -> Result<(), String> {
    if reply.len() < 12 {
        return Err("shorter than a header".into());
    }
    let start = match locate(reply) {
        Ok(Some(start)) => start,
        Ok(None) => return Err("unsigned".into()),
        Err(()) => return Err("malformed".into()),
    };
    let t = parse(reply, start).ok_or("malformed TSIG record")?;
    if *t.name != *wire::lower_wire(&key.name) || *t.algorithm != *algorithm_wire(key.algorithm) {
        return Err("signed with another key or algorithm".into());
    }
    let mac = &reply[t.mac.clone()];
    if t.error != 0 && mac.is_empty() {
        // An unsigned TSIG error: the secondary does not know our key or our signature failed.
        let name = match t.error {
            BADSIG => "BADSIG".to_string(),
            BADKEY => "BADKEY".to_string(),
            BADTIME => "BADTIME".to_string(),
            other => format!("TSIG error {other}"),
        };
        return Err(format!("the secondary answers {name}, unsigned"));
    }
    let hkey = hmac_key(key);
    if mac.len() != hkey.algorithm().digest_algorithm().output_len() {
        return Err("truncated MAC".into());
    }
    let mut data = Vec::with_capacity(reply.len() + request_mac.len() + 2);
    data.extend_from_slice(&(request_mac.len() as u16).to_be_bytes());
    data.extend_from_slice(request_mac);
    append_unsigned(&mut data, reply, start, t.original_id);
    variables(
        &mut data,
        &t.name,
        &t.algorithm,
        t.time,
        t.fudge,
        t.error,
        &reply[t.other.clone()],
    );
    if hmac::verify(&hkey, &data, mac).is_err() {
        return Err("bad MAC".into());
    }
    if now.abs_diff(t.time) > u64::from(t.fudge) {
        return Err("signed outside its time window (BADTIME)".into());
    }
    Ok(())
}

/// Check the TSIG record of a request, if it has one, against the keys of `server` at time
/// `now`. Cheap for unsigned messages (no additional record: one comparison).
pub(crate) fn check(req: &[u8], server: &ServerSettings, now: u64) -> Check {
    if req.len() < 12 || req[10..12] == [0, 0] {
        return Check::Unsigned;
    }
    let start = match locate(req) {
        Ok(None) => return Check::Unsigned,
        Ok(Some(start)) => start,
        Err(()) => return Check::Reject(error_reply(req, RCODE_FORMERR)),
    };
    let Some(t) = parse(req, start) else {
        return Check::Reject(error_reply(req, RCODE_FORMERR));
    };
    let found = server
        .tsig
        .iter()
        .enumerate()
        .find(|(_, k)| *wire::lower_wire(&k.name) == *t.name && *algorithm_wire(k.algorithm) == *t.algorithm);
    let unsigned_error = |error: u16| {
        let mut out = error_reply(req, RCODE_NOTAUTH);
        append_rr(&mut out, &t.name, &t.algorithm, t.time, &[], t.original_id, error, &[]);
        Check::Reject(out)
    };
    let Some((index, key)) = found else {
        return unsigned_error(BADKEY);
    };
    let hkey = hmac_key(key);
    let full = hkey.algorithm().digest_algorithm().output_len();
    let mac = &req[t.mac.clone()];
    if mac.len() > full || mac.len() < (full / 2).max(10) {
        return Check::Reject(error_reply(req, RCODE_FORMERR));
    }
    if mac.len() < full {
        return unsigned_error(BADTRUNC); // we sign and accept full-length MACs only
    }
    // The digest: the request as it was before signing, then the TSIG variables.
    let mut stripped = Vec::with_capacity(start);
    append_unsigned(&mut stripped, req, start, t.original_id);
    let mut data = stripped.clone();
    variables(
        &mut data,
        &t.name,
        &t.algorithm,
        t.time,
        t.fudge,
        t.error,
        &req[t.other.clone()],
    );
    if hmac::verify(&hkey, &data, mac).is_err() {
        return unsigned_error(BADSIG);
    }
    if now.abs_diff(t.time) > u64::from(t.fudge) {
        // RFC 8945 §5.2.3: signed, with the request's time and ours in Other Data.
        let mut out = error_reply(req, RCODE_NOTAUTH);
        let name = wire::lower_wire(&key.name);
        let algorithm = algorithm_wire(key.algorithm);
        let other = now.to_be_bytes()[2..].to_vec();
        let mut ctx = hmac::Context::with_key(&hkey);
        ctx.update(&(mac.len() as u16).to_be_bytes());
        ctx.update(mac);
        ctx.update(&out);
        let mut vars = Vec::new();
        variables(&mut vars, &name, &algorithm, t.time, FUDGE, BADTIME, &other);
        ctx.update(&vars);
        let sig = ctx.sign();
        append_rr(
            &mut out,
            &name,
            &algorithm,
            t.time,
            sig.as_ref(),
            t.original_id,
            BADTIME,
            &other,
        );
        return Check::Reject(out);
    }
    // The ID stays the one the client sent (the response must echo it).
    stripped[0..2].copy_from_slice(&req[0..2]);
    Check::Signed(Box::new(Signer::new(index, key, mac.to_vec(), now)), stripped)
}

/// Append `msg` up to its TSIG record (at `start`) as it was before signing (RFC 8945 §4.3.1):
/// with the original ID, and ARCOUNT without the TSIG record. Requests and replies alike.
fn append_unsigned(out: &mut Vec<u8>, msg: &[u8], start: usize, original_id: u16) {
    let at = out.len();
    out.extend_from_slice(&msg[..start]);
    out[at..at + 2].copy_from_slice(&original_id.to_be_bytes());
    let arcount = u16::from_be_bytes([msg[10], msg[11]]) - 1;
    out[at + 10..at + 12].copy_from_slice(&arcount.to_be_bytes());
}

fn hmac_key(key: &TsigKey) -> hmac::Key {
    let alg = match key.algorithm {
        TsigAlgorithm::HmacSha256 => hmac::HMAC_SHA256,
        TsigAlgorithm::HmacSha512 => hmac::HMAC_SHA512,
    };
    hmac::Key::new(alg, &key.secret)
}

fn algorithm_wire(a: TsigAlgorithm) -> Box<[u8]> {
    wire::lower_wire(a.name())
}

/// The TSIG variables of RFC 8945 §4.3.3 (key name, class, TTL, algorithm, time, fudge,
/// error, other data), appended to `out`. `fudge`: the one in the record signed or checked
/// (ours is `FUDGE`; a peer may send another).
fn variables(out: &mut Vec<u8>, name: &[u8], algorithm: &[u8], time: u64, fudge: u16, error: u16, other: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(&CLASS_ANY.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(algorithm);
    out.extend_from_slice(&time.to_be_bytes()[2..]);
    out.extend_from_slice(&fudge.to_be_bytes());
    out.extend_from_slice(&error.to_be_bytes());
    out.extend_from_slice(&(other.len() as u16).to_be_bytes());
    out.extend_from_slice(other);
}

/// Append a TSIG record to a message and count it in ARCOUNT.
#[allow(clippy::too_many_arguments)]
fn append_rr(
    msg: &mut Vec<u8>,
    name: &[u8],
    algorithm: &[u8],
    time: u64,
    mac: &[u8],
    original_id: u16,
    error: u16,
    other: &[u8],
) {
    msg.extend_from_slice(name);
    msg.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    msg.extend_from_slice(&CLASS_ANY.to_be_bytes());
    msg.extend_from_slice(&[0, 0, 0, 0]);
    let rdlen = algorithm.len() + 6 + 2 + 2 + mac.len() + 2 + 2 + 2 + other.len();
    msg.extend_from_slice(&(rdlen as u16).to_be_bytes());
    msg.extend_from_slice(algorithm);
    msg.extend_from_slice(&time.to_be_bytes()[2..]);
    msg.extend_from_slice(&FUDGE.to_be_bytes());
    msg.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    msg.extend_from_slice(mac);
    msg.extend_from_slice(&original_id.to_be_bytes());
    msg.extend_from_slice(&error.to_be_bytes());
    msg.extend_from_slice(&(other.len() as u16).to_be_bytes());
    msg.extend_from_slice(other);
    let ar = u16::from_be_bytes([msg[10], msg[11]]).saturating_add(1);
    msg[10..12].copy_from_slice(&ar.to_be_bytes());
}

/// Header and question of the request with QR and `rcode`, no records but our OPT.
fn error_reply(req: &[u8], rcode: u8) -> Vec<u8> {
    // Echo the question only when it is one whole, uncompressed name with type and class: a
    // pointer copied out of its message would point nowhere (found by the fuzz smoke run).
    let question_end = (req[4..6] == [0, 1])
        .then(|| super::wire::question_name_end(req).map(|e| e + 4))
        .flatten()
        .filter(|&e| e <= req.len());
    let end = question_end.unwrap_or(12);
    let mut out = req[..end].to_vec();
    out[2] = 0x80 | (req[2] & 0x79);
    out[3] = rcode;
    out[4..12].copy_from_slice(&[0, u8::from(end > 12), 0, 0, 0, 0, 0, 0]);
    // OPT when the request had one (RFC 6891 §7), before the TSIG record appended after.
    super::answer::append_opt(&mut out, wire::find_opt(req), None);
    out
}

/// A parsed TSIG record.
struct Tsig {
    /// Key and algorithm names, lower-case wire form.
    name: Vec<u8>,
    algorithm: Vec<u8>,
    time: u64,
    fudge: u16,
    mac: std::ops::Range<usize>,
    original_id: u16,
    error: u16,
    other: std::ops::Range<usize>,
}

/// Where the TSIG record starts: `Ok(None)` without one, `Err` for a malformed message or a
/// TSIG record that is not the last record (RFC 8945 §5.1: FORMERR).
fn locate(pkt: &[u8]) -> Result<Option<usize>, ()> {
    let count = |i: usize| u16::from_be_bytes([pkt[4 + 2 * i], pkt[5 + 2 * i]]) as usize;
    let (qd, records, ar) = (count(0), count(1) + count(2) + count(3), count(3));
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(pkt, i).ok_or(())? + 4;
    }
    let mut found = None;
    for n in 0..records {
        let start = i;
        i = skip_name(pkt, i).ok_or(())?;
        let fixed = pkt.get(i..i + 10).ok_or(())?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        i += 10 + u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        if i > pkt.len() {
            return Err(());
        }
        if rtype == TYPE_TSIG {
            if n + 1 != records || ar == 0 {
                return Err(());
            }
            found = Some(start);
        }
    }
    if found.is_some() && i != pkt.len() {
        return Err(());
    }
    Ok(found)
}

fn parse(pkt: &[u8], start: usize) -> Option<Tsig> {
    let (name, mut i) = read_name(pkt, start)?;
    let fixed = pkt.get(i..i + 10)?;
    // Class ANY and TTL 0 (RFC 8945 §4.2). The digest covers the TTL as 0, so any other TTL
    // would be bytes the MAC does not vouch for: malformed (found by the `tsig` fuzz target).
    if u16::from_be_bytes([fixed[2], fixed[3]]) != CLASS_ANY || fixed[4..8] != [0, 0, 0, 0] {
        return None;
    }
    let end = i + 10 + u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
    i += 10;
    let rdata = pkt.get(..end)?;
    let (algorithm, j) = read_name(rdata, i)?;
    i = j;
    let fixed = rdata.get(i..i + 10)?;
    let time = u64::from_be_bytes([0, 0, fixed[0], fixed[1], fixed[2], fixed[3], fixed[4], fixed[5]]);
    let fudge = u16::from_be_bytes([fixed[6], fixed[7]]);
    let mac_len = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
    i += 10;
    let mac = i..i + mac_len;
    i += mac_len;
    let tail = rdata.get(i..i + 6)?;
    let original_id = u16::from_be_bytes([tail[0], tail[1]]);
    let error = u16::from_be_bytes([tail[2], tail[3]]);
    let other_len = u16::from_be_bytes([tail[4], tail[5]]) as usize;
    i += 6;
    let other = i..i + other_len;
    if other.end != end {
        return None;
    }
    Some(Tsig {
        name,
        algorithm,
        time,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

/// A (possibly compressed) name in lower-case wire form, and the offset past it.
fn read_name(pkt: &[u8], start: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut i = start;
    let mut end = None;
    for _ in 0..128 {
        let b = *pkt.get(i)?;
        match b & 0xc0 {
            0xc0 => {
                end.get_or_insert(i + 2);
                i = (usize::from(b & 0x3f) << 8) | usize::from(*pkt.get(i + 1)?);
            }
            0 if b == 0 => {
                out.push(0);
                return (out.len() <= 255).then(|| (out, end.unwrap_or(i + 1)));
            }
            0 => {
                let label = pkt.get(i + 1..i + 1 + b as usize)?;
                out.push(b);
                out.extend(label.iter().map(u8::to_ascii_lowercase));
                i += 1 + b as usize;
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(secret: &[u8]) -> ServerSettings {
        ServerSettings {
            tsig: vec![TsigKey {
                name: "xfr.test.".into(),
                algorithm: TsigAlgorithm::HmacSha256,
                secret: secret.to_vec(),
                secret_file: None,
            }],
            ..ServerSettings::default()
        }
    }

    /// An SOA query for `mail.test.` signed at `time` with `secret`.
    fn query(secret: &[u8], time: u64) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x04mail\x04test\x00\x00\x06\x00\x01");
        sign_request(&settings(secret).tsig[0], &mut q, time);
        q
    }

    fn rcode_and_error(reply: &[u8]) -> (u8, u16) {
        let start = locate(reply).unwrap().unwrap();
        let t = parse(reply, start).unwrap();
        (reply[3] & 0x0f, t.error)
    }

    #[test]
    fn a_signed_request_verifies_and_its_response_is_signed() {
        let s = settings(b"0123456789abcdef0123456789abcdef");
        let now = 1_800_000_000;
        let q = query(b"0123456789abcdef0123456789abcdef", now - 10);
        let Check::Signed(mut signer, stripped) = check(&q, &s, now) else {
            panic!("not accepted")
        };
        assert_eq!(stripped[10..12], [0, 0]);
        assert_eq!(stripped[..2], [0x12, 0x34]);
        let mut resp = stripped.clone();
        resp[2] |= 0x80;
        signer.sign(&mut resp);
        assert_eq!(resp[10..12], [0, 1]);
        assert!(locate(&resp).unwrap().is_some());
    }

    /// A NOTIFY we sign, and the secondary's reply signed over its MAC (as `Signer` does for
    /// our own answers): verified; changed, unsigned, foreign, cut or late: not.
    #[test]
    fn a_reply_verifies_only_when_signed_over_our_request() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let s = settings(secret);
        let key = &s.tsig[0];
        let now = 1_800_000_000;
        let mut notify = vec![0x77, 0x01, 0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        notify.extend_from_slice(b"\x04mail\x04test\x00\x00\x06\x00\x01");
        let mac = sign_request(key, &mut notify, now);
        assert_eq!(mac.len(), 32);
        // The secondary's side: it verifies our request and signs its reply.
        let Check::Signed(mut signer, stripped) = check(&notify, &s, now) else {
            panic!("our NOTIFY does not verify")
        };
        let mut reply = stripped.clone();
        reply[2] |= 0x80;
        let unsigned = reply.clone();
        signer.sign(&mut reply);
        assert_eq!(verify_reply(key, &mac, &reply, now + 5), Ok(()));
        assert_eq!(verify_reply(key, &mac, &unsigned, now).unwrap_err(), "unsigned");
        let mut changed = reply.clone();
        changed[3] = 5; // REFUSED instead of NOERROR under the same MAC
        assert_eq!(verify_reply(key, &mac, &changed, now).unwrap_err(), "bad MAC");
        assert_eq!(
            verify_reply(key, &[0; 32], &reply, now).unwrap_err(),
            "bad MAC",
            "another request's MAC"
        );
        let mut other = settings(secret);
        other.tsig[0].name = "other.test.".into();
        assert!(
            verify_reply(&other.tsig[0], &mac, &reply, now)
                .unwrap_err()
                .contains("another key")
        );
        assert!(
            verify_reply(key, &mac, &reply, now + 301)
                .unwrap_err()
                .contains("BADTIME")
        );
        for cut in 12..reply.len() {
            assert!(verify_reply(key, &mac, &reply[..cut], now).is_err(), "cut at {cut}");
        }
        // An unsigned TSIG error (the secondary does not know the key).
        let Check::Reject(badkey) = check(&notify, &other, now) else {
            panic!("unknown key accepted")
        };
        let mut other_side = badkey.clone();
        other_side[2] |= 0x80;
        assert!(
            verify_reply(key, &mac, &other_side, now)
                .unwrap_err()
                .contains("BADKEY")
        );
    }

    /// A request signed with another fudge than ours (300) verifies: the digest covers the
    /// fudge the request carries.
    #[test]
    fn a_request_with_another_fudge_verifies() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let s = settings(secret);
        let now = 1_800_000_000;
        let mut q = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x04mail\x04test\x00\x00\x06\x00\x01");
        let name = wire::lower_wire("xfr.test.");
        let alg = algorithm_wire(TsigAlgorithm::HmacSha256);
        let mut data = q.clone();
        variables(&mut data, &name, &alg, now, 60, 0, &[]);
        let mac = hmac::sign(&hmac_key(&s.tsig[0]), &data);
        append_rr(&mut q, &name, &alg, now, mac.as_ref(), 0x1234, 0, &[]);
        // append_rr writes our fudge (300): put the request's 60 in its place.
        let fudge_at = q.len() - (2 + 32 + 6) - 2;
        q[fudge_at..fudge_at + 2].copy_from_slice(&60u16.to_be_bytes());
        assert!(matches!(check(&q, &s, now + 50), Check::Signed(..)));
        assert!(
            matches!(check(&q, &s, now + 61), Check::Reject(_)),
            "outside its own fudge"
        );
    }

    /// The MAC covers the TSIG record's TTL as 0: a record with another TTL is malformed, not
    /// verified (the `tsig` fuzz target found one accepted, fuzz/regressions/tsig/).
    #[test]
    fn a_tsig_record_with_a_ttl_is_refused() {
        let s = settings(b"0123456789abcdef0123456789abcdef");
        let now = 1_800_000_000;
        let q = query(b"0123456789abcdef0123456789abcdef", now);
        assert!(matches!(check(&q, &s, now), Check::Signed(..)));
        // The TTL follows the key name, type and class of the TSIG record.
        let name = wire::lower_wire("xfr.test.");
        let start = q
            .windows(name.len())
            .rposition(|w| *w == *name)
            .expect("the TSIG record");
        let ttl_at = start + name.len() + 4;
        for bit in [0x01, 0x80] {
            let mut t = q.clone();
            t[ttl_at] ^= bit;
            let Check::Reject(r) = check(&t, &s, now) else {
                panic!("a TSIG record with a TTL verified")
            };
            assert_eq!(r[3] & 0x0f, RCODE_FORMERR);
        }
    }

    #[test]
    fn wrong_key_forged_mac_old_time_and_truncation_are_refused() {
        let s = settings(b"0123456789abcdef0123456789abcdef");
        let now = 1_800_000_000;
        let Check::Reject(r) = check(&query(b"another secret, another secret!!", now), &s, now) else {
            panic!("forged MAC accepted")
        };
        assert_eq!(rcode_and_error(&r), (RCODE_NOTAUTH, BADSIG));
        let Check::Reject(r) = check(&query(b"0123456789abcdef0123456789abcdef", now - 301), &s, now) else {
            panic!("old signature accepted")
        };
        assert_eq!(rcode_and_error(&r), (RCODE_NOTAUTH, BADTIME));
        let mut other = settings(b"0123456789abcdef0123456789abcdef");
        other.tsig[0].name = "other.test.".into();
        let Check::Reject(r) = check(&query(b"0123456789abcdef0123456789abcdef", now), &other, now) else {
            panic!("unknown key accepted")
        };
        assert_eq!(rcode_and_error(&r), (RCODE_NOTAUTH, BADKEY));
        // Every cut of the TSIG record: FORMERR or unsigned, never a panic or an accept.
        let q = query(b"0123456789abcdef0123456789abcdef", now);
        for cut in 12..q.len() {
            assert!(!matches!(check(&q[..cut], &s, now), Check::Signed(..)), "cut at {cut}");
        }
    }
}
