//! Signed views: signatures that verify, never stale, proofs of denial.

use super::*;
use crate::records;
use crate::settings::{DnssecAlgorithm, Settings};

const TEXT: &str = "[provider.p]\ndisplay_name = \"P\"\n[[provider.p.server]]\nprotocol = \"imap\"\n\
    host = \"mail.example.net\"\nport = 993\nsecurity = \"tls\"\n\
    [[provider.p.server]]\nprotocol = \"smtp\"\nhost = \"mail.example.net\"\nport = 465\nsecurity = \"tls\"\n[[domain]]\nname = \"example.com\"\n\
    provider = \"p\"\n[domain.dns]\nnameservers = [\"ns1.example.net.\"]\nspf = \"v=spf1 mx -all\"\n";

fn zone(text: &str) -> records::Zone {
    let s = Settings::from_toml(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let dr = records::for_name(&s, &s.domains[0], "example.com").unwrap();
    dr.zones[0].clone()
}

fn key() -> Arc<ZoneKey> {
    ksk(DnssecAlgorithm::EcdsaP256Sha256)
}

fn ksk(alg: DnssecAlgorithm) -> Arc<ZoneKey> {
    let dir = std::env::temp_dir().join(format!("mailconf-signed-view-{}", std::process::id()));
    Arc::new(crate::dns::keystore::zone_key(&dir, "example.com", alg, 0).unwrap())
}

/// A KSK alone, signing everything (as in the first epoch after an upgrade).
fn alone(k: Arc<ZoneKey>) -> Keys {
    Keys {
        ksks: vec![k],
        zsks: Vec::new(),
        signing: None,
        ksks_too: false,
    }
}

/// Does RRSIG RDATA `sig` over the RRset (`owner`, `rtype`, `rdatas`) verify with DNSKEY RDATA
/// `dnskey`? The RFC 4034 §3.1.8.1 signed data, made here independently of `dnssec::rrsig`.
fn verifies(sig: &[u8], owner: &[u8], rtype: u16, rdatas: &[&[u8]], dnskey: &[u8]) -> bool {
    let signer_len = {
        let mut i = 18;
        while sig[i] != 0 {
            i += 1 + sig[i] as usize;
        }
        i + 1 - 18
    };
    let mut data = sig[..18 + signer_len].to_vec();
    let mut sorted = rdatas.to_vec();
    sorted.sort();
    for rd in sorted {
        data.extend_from_slice(owner);
        data.extend_from_slice(&rtype.to_be_bytes());
        data.extend_from_slice(&[0, 1]);
        data.extend_from_slice(&sig[4..8]);
        data.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        data.extend_from_slice(rd);
    }
    let (alg, public): (&dyn ring::signature::VerificationAlgorithm, Vec<u8>) = match dnskey[3] {
        13 => (
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            [&[4u8][..], &dnskey[4..]].concat(),
        ),
        15 => (&ring::signature::ED25519, dnskey[4..].to_vec()),
        a => panic!("algorithm {a}"),
    };
    u16::from_be_bytes([sig[16], sig[17]]) == dnssec::key_tag(dnskey)
        && ring::signature::UnparsedPublicKey::new(alg, &public)
            .verify(&data, &sig[18 + signer_len..])
            .is_ok()
}

/// The RRs of `out` (after `View::answer`): (type, RDATA).
fn rrs(out: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut i = 0;
    let mut all = Vec::new();
    while i < out.len() {
        let name_end = i + out[i..].iter().position(|&b| b == 0).unwrap() + 1;
        let rtype = u16::from_be_bytes([out[name_end], out[name_end + 1]]);
        let len = u16::from_be_bytes([out[name_end + 8], out[name_end + 9]]) as usize;
        all.push((rtype, out[name_end + 10..name_end + 10 + len].to_vec()));
        i = name_end + 10 + len;
    }
    all
}

/// With a KSK and derived ZSKs (both algorithms): the DNSKEY set holds the KSK and every
/// published ZSK, CDS and CDNSKEY the KSK alone; the DNSKEY set is signed by the KSK only, every
/// other RRset by the signing ZSK only, and each signature verifies with its DNSKEY.
#[test]
fn the_ksk_signs_the_key_sets_and_the_zsk_the_rest_for_both_algorithms() {
    let z = zone(TEXT);
    let origin = wire::lower_wire("example.com");
    let v = Validity::at(1_800_000_000, max_ttl(&z), crate::dns::epochs::LIFETIME);
    for alg in [DnssecAlgorithm::EcdsaP256Sha256, DnssecAlgorithm::Ed25519] {
        let ksk = ksk(alg);
        let secret = b"the bytes of the first KSK file";
        let zsks: Vec<Arc<ZoneKey>> = [41, 42]
            .iter()
            .map(|&g| Arc::new(ZoneKey::zsk(alg, secret, &origin, g).unwrap()))
            .collect();
        let keys = Keys {
            ksks: vec![ksk.clone()],
            zsks: zsks.clone(),
            signing: Some(0),
            ksks_too: false,
        };
        let view = View::build(&z, (1, z.content), keys, |_| Vec::new(), v);
        assert_eq!(
            view.key_summary(),
            format!("KSK {}, ZSK {} signs, ZSK {}", ksk.tag, zsks[0].tag, zsks[1].tag)
        );
        let ask = |qtype: u16| {
            let (mut out, mut counts) = (Vec::new(), [0u16; 3]);
            view.answer(&origin, qtype, true, &mut out, &mut counts);
            rrs(&out)
        };
        let dnskey = ask(DNSKEY);
        let set: Vec<&[u8]> = dnskey.iter().filter(|r| r.0 == DNSKEY).map(|r| &r.1[..]).collect();
        assert_eq!(set, [&*ksk.dnskey, &*zsks[0].dnskey, &*zsks[1].dnskey], "{alg:?}");
        assert_eq!(&set[1][..2], &[1, 0], "ZSK flags 256");
        let sigs: Vec<&[u8]> = dnskey.iter().filter(|r| r.0 == RRSIG).map(|r| &r.1[..]).collect();
        assert_eq!(sigs.len(), 1, "DNSKEY signed by the KSK alone");
        assert!(verifies(sigs[0], &origin, DNSKEY, &set, &ksk.dnskey), "{alg:?}");
        for t in [CDS, CDNSKEY] {
            let got = ask(t);
            assert_eq!(got.iter().filter(|r| r.0 == t).count(), 1, "{t}: the KSK only");
            let sig = &got.iter().find(|r| r.0 == RRSIG).unwrap().1;
            let set: Vec<&[u8]> = got.iter().filter(|r| r.0 == t).map(|r| &r.1[..]).collect();
            assert!(verifies(sig, &origin, t, &set, &ksk.dnskey), "{t} {alg:?}");
        }
        for t in [16, SOA, NS] {
            let got = ask(t);
            let sigs: Vec<&[u8]> = got.iter().filter(|r| r.0 == RRSIG).map(|r| &r.1[..]).collect();
            let set: Vec<&[u8]> = got.iter().filter(|r| r.0 == t).map(|r| &r.1[..]).collect();
            assert_eq!(sigs.len(), 1, "{t}: one signature");
            assert!(
                verifies(sigs[0], &origin, t, &set, &zsks[0].dnskey),
                "{t} by the ZSK, {alg:?}"
            );
            assert!(!verifies(sigs[0], &origin, t, &set, &ksk.dnskey));
            assert!(
                !verifies(sigs[0], &origin, t, &set, &zsks[1].dnskey),
                "not by the next ZSK"
            );
        }
        // The first epochs after an upgrade: the KSK signs everything too, beside the ZSK.
        let keys = Keys {
            ksks: vec![ksk.clone()],
            zsks: zsks[..1].to_vec(),
            signing: Some(0),
            ksks_too: true,
        };
        let view = View::build(&z, (1, z.content), keys, |_| Vec::new(), v);
        let (mut out, mut counts) = (Vec::new(), [0u16; 3]);
        view.answer(&origin, 16, true, &mut out, &mut counts);
        let got = rrs(&out);
        let set: Vec<&[u8]> = got.iter().filter(|r| r.0 == 16).map(|r| &r.1[..]).collect();
        let sigs: Vec<&[u8]> = got.iter().filter(|r| r.0 == RRSIG).map(|r| &r.1[..]).collect();
        assert_eq!(sigs.len(), 2);
        assert!(verifies(sigs[0], &origin, 16, &set, &ksk.dnskey), "{alg:?}");
        assert!(verifies(sigs[1], &origin, 16, &set, &zsks[0].dnskey), "{alg:?}");
        assert_eq!(
            view.key_summary(),
            format!("KSK {} signs, ZSK {} signs", ksk.tag, zsks[0].tag)
        );
        let (mut out, mut counts) = (Vec::new(), [0u16; 3]);
        view.answer(&origin, DNSKEY, true, &mut out, &mut counts);
        assert_eq!(
            rrs(&out).iter().filter(|r| r.0 == RRSIG).count(),
            1,
            "DNSKEY: the KSK's alone"
        );
    }
}

/// The RRSIG RDATA after the ANSWER records of `out` written by `View::answer`.
fn rrsigs(out: &[u8]) -> Vec<Vec<u8>> {
    let mut i = 0;
    let mut sigs = Vec::new();
    while i < out.len() {
        let name_end = i + out[i..].iter().position(|&b| b == 0).unwrap() + 1;
        let rtype = u16::from_be_bytes([out[name_end], out[name_end + 1]]);
        let len = u16::from_be_bytes([out[name_end + 8], out[name_end + 9]]) as usize;
        if rtype == RRSIG {
            sigs.push(out[name_end + 10..name_end + 10 + len].to_vec());
        }
        i = name_end + 10 + len;
    }
    sigs
}

#[test]
fn signatures_verify_and_a_view_is_never_served_stale_or_for_other_data() {
    let z = zone(TEXT);
    let key = key();
    let t0 = 1_800_000_000u64;
    let v = Validity::at(t0, max_ttl(&z), crate::dns::epochs::LIFETIME);
    let view = View::build(&z, (7, z.content), alone(key.clone()), |_| Vec::new(), v);
    let (mut out, mut counts) = (Vec::new(), [0u16; 3]);
    let rcode = view.answer(&wire::lower_wire("example.com"), 16, true, &mut out, &mut counts);
    assert_eq!((rcode, counts), (0, [2, 0, 0]), "TXT and its RRSIG");
    let sig = &rrsigs(&out)[0];
    // Inception 90 min back, expiration 14 days ahead, our key tag.
    assert_eq!(
        u32::from_be_bytes(sig[8..12].try_into().unwrap()) as u64,
        t0 + 14 * 86_400
    );
    assert_eq!(u32::from_be_bytes(sig[12..16].try_into().unwrap()) as u64, t0 - 5400);
    assert_eq!(u16::from_be_bytes([sig[16], sig[17]]), key.tag);
    // The signature verifies with the DNSKEY's public key over RFC 4034's signed data.
    let signer_end = 18 + wire::lower_wire("example.com").len();
    let mut data = sig[..signer_end].to_vec();
    let owner = wire::lower_wire("example.com");
    let txt = b"\x0ev=spf1 mx -all";
    data.extend_from_slice(&owner);
    data.extend_from_slice(&[0, 16, 0, 1]);
    data.extend_from_slice(&sig[4..8]);
    data.extend_from_slice(&(txt.len() as u16).to_be_bytes());
    data.extend_from_slice(txt);
    let mut public = vec![4u8];
    public.extend_from_slice(&key.dnskey[4..]);
    let verify = |d: &[u8]| {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &public)
            .verify(d, &sig[signer_end..])
            .is_ok()
    };
    assert!(verify(&data), "signature over the TXT RRset verifies");
    let last = data.len() - 1;
    data[last] ^= 1;
    assert!(!verify(&data), "and not over other data");
    // Fake clock: current until Knot's refresh point, then rebuilt (never served stale).
    assert!(view.current(7, &z.content, t0));
    let refresh = t0 + 14 * 86_400 - (14 * 8_640 + 3600 + z.ttl as u64);
    assert!(view.current(7, &z.content, refresh - 1));
    assert!(!view.current(7, &z.content, refresh));
    // Other data (a changed record) or another serial: never this view's signatures.
    let changed = zone(&TEXT.replace("mx -all", "mx ~all"));
    assert_ne!(changed.content, z.content);
    assert!(!view.current(7, &changed.content, t0));
    assert!(!view.current(8, &z.content, t0));
}

#[test]
fn nxdomain_proves_the_name_and_the_wildcard_absent_and_nodata_shows_the_types() {
    let z = zone(TEXT);
    let v = Validity::at(1_800_000_000, 3600, crate::dns::epochs::LIFETIME);
    let view = View::build(&z, (1, z.content), alone(key()), |_| Vec::new(), v);
    let (mut out, mut counts) = (Vec::new(), [0u16; 3]);
    let rcode = view.answer(&wire::lower_wire("zz.example.com"), 1, true, &mut out, &mut counts);
    // SOA + RRSIG, NSEC covering zz + RRSIG, NSEC covering *.example.com + RRSIG.
    assert_eq!((rcode, counts), (3, [0, 6, 0]));
    let (mut out, mut counts) = (Vec::new(), [0u16; 3]);
    assert_eq!(
        view.answer(&wire::lower_wire("zz.example.com"), 1, false, &mut out, &mut counts),
        3
    );
    assert_eq!(counts, [0, 1, 0], "without DO: the SOA alone, as unsigned answers");
    let (mut out, mut counts) = (Vec::new(), [0u16; 3]);
    assert_eq!(
        view.answer(&wire::lower_wire("example.com"), 99, true, &mut out, &mut counts),
        0
    );
    assert_eq!(counts, [0, 4, 0], "NODATA: SOA, NSEC and their RRSIGs");
}

/// What one cached view of a hosting provider's typical zone costs (`benches/gen-config.py`'s
/// domain: SRV for six services and Autodiscover, MX, SPF, DMARC, MTA-STS, web hosts), fully
/// signed: the figure the cache size is chosen with (`Cache::auto_size`).
#[test]
fn a_typical_signed_view_costs_a_few_kilobytes() {
    let text = "[provider.p]\ndisplay_name = \"P\"\n\
        [[provider.p.server]]\nprotocol = \"imap\"\nhost = \"mail0.hoster.example\"\nport = 993\nsecurity = \"tls\"\n\
        [[provider.p.server]]\nprotocol = \"pop3\"\nhost = \"mail0.hoster.example\"\nport = 995\nsecurity = \"tls\"\n\
        [[provider.p.server]]\nprotocol = \"smtp\"\nhost = \"mail0.hoster.example\"\nport = 465\nsecurity = \"tls\"\n\
        [[provider.p.server]]\nprotocol = \"smtp\"\nhost = \"mail0.hoster.example\"\nport = 587\nsecurity = \"starttls\"\n\
        [[domain]]\nname = \"example.com\"\nprovider = \"p\"\n\
        [domain.dns]\nnameservers = [\"ns1.hoster.example.\", \"ns2.hoster.example.\"]\n\
        autoconfig_addresses = [\"192.0.2.10\", \"2001:db8::10\"]\n\
        mx = [{ host = \"mx1.hoster.example.\", preference = 10 }]\n\
        spf = \"v=spf1 include:_spf.hoster.example -all\"\n\
        dmarc = \"v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com\"\n\
        [domain.mta_sts]\nmode = \"enforce\"\n";
    let z = zone(text);
    let v = Validity::at(1_800_000_000, 3600, crate::dns::epochs::LIFETIME);
    // A KSK and two ZSKs (one pre-published or retiring, as in one epoch of every k).
    let origin = wire::lower_wire("example.com");
    let zsk = |g| Arc::new(ZoneKey::zsk(DnssecAlgorithm::EcdsaP256Sha256, b"ksk", &origin, g).unwrap());
    let keys = Keys {
        ksks: vec![key()],
        zsks: vec![zsk(1), zsk(2)],
        signing: Some(0),
        ksks_too: false,
    };
    let view = View::build(&z, (1, z.content), keys, |_| Vec::new(), v);
    let unsigned = view.heap_bytes();
    let records = view.transfer_records().len(); // signs every RRset
    let signed = view.heap_bytes();
    eprintln!(
        "typical view: {} owners, {records} DNSSEC records and RRSIGs, {unsigned} bytes before signing, {signed} signed",
        view.owners.len()
    );
    let (compact, allocations) = view.compact_bytes();
    eprintln!("the same in one buffer: {compact} bytes instead of {signed} in {allocations} allocations");
    assert!(compact < signed);
    assert!(signed > unsigned);
    assert!(
        signed <= super::cache::VIEW_BYTES,
        "{signed} bytes: the cache's sizing figure (VIEW_BYTES) is out of date"
    );
}

/// The RRSIG cache gives back exactly the RRSIG RDATA the view made (signer name put back),
/// as an RR owned by the question's name with the RRset's TTL; never past the refresh time;
/// only for plain positive answers; and holds at most its capacity.
#[test]
fn cached_rrsigs_are_the_views_own_bounded_and_never_stale() {
    let z = zone(TEXT);
    let t0 = 1_800_000_000u64;
    let v = Validity::at(t0, max_ttl(&z), crate::dns::epochs::LIFETIME);
    let view = View::build(&z, (7, z.content), alone(key()), |_| Vec::new(), v);
    let apex = wire::lower_wire("example.com");
    let (mut out, mut counts) = (Vec::new(), [0u16; 3]);
    view.answer(&apex, 16, true, &mut out, &mut counts);
    let want = rrsigs(&out);
    assert_eq!(want.len(), 1);

    let sigs = Sigs::default();
    sigs.set_capacity(8);
    let key = sig_key(&apex, 7, &z.content, &apex, 16);
    sigs.insert(
        key,
        view.positive_sigs(&apex, 16).expect("TXT at the apex is cacheable"),
    );
    let mut got = Vec::new();
    assert_eq!(sigs.put(key, t0, &apex, &mut got), Some(1));
    assert_eq!(&got[..6], &[0xC0, 12, 0, 46, 0, 1], "owner: the question; RRSIG, IN");
    assert_eq!(&got[6..10], &want[0][4..8], "TTL: the RRset's (the original TTL)");
    assert_eq!(usize::from(u16::from_be_bytes([got[10], got[11]])), want[0].len());
    assert_eq!(got[12..], want[0][..], "the view's RRSIG RDATA, byte for byte");

    // Never at or past the refresh time (the view would not be served then either).
    assert!(view.current(7, &z.content, v.refresh_at - 1));
    assert_eq!(sigs.put(key, v.refresh_at, &apex, &mut Vec::new()), None);
    // Another serial, content, name or type is another key: no signatures for other data.
    let changed = zone(&TEXT.replace("mx -all", "mx ~all"));
    for other in [
        sig_key(&apex, 8, &z.content, &apex, 16),
        sig_key(&apex, 7, &changed.content, &apex, 16),
        sig_key(&apex, 7, &z.content, &wire::lower_wire("www.example.com"), 16),
        sig_key(&apex, 7, &z.content, &apex, 15),
    ] {
        assert_ne!(other, key);
        assert_eq!(sigs.put(other, t0, &apex, &mut Vec::new()), None);
    }
    // Only plain positive answers: not DNSSEC's own types, ANY, absent types or names.
    for qtype in [48, 43, 47, 255, 99] {
        assert!(view.positive_sigs(&apex, qtype).is_none(), "type {qtype}");
    }
    assert!(view.positive_sigs(&wire::lower_wire("zz.example.com"), 1).is_none());
    // Bounded: never more than its capacity, and what was just put in is there.
    for i in 0..100u128 {
        sigs.insert(i, view.positive_sigs(&apex, 16).unwrap());
        assert!(sigs.len() <= 8, "{} entries", sigs.len());
        assert!(sigs.put(i, t0, &apex, &mut Vec::new()).is_some());
    }
}
