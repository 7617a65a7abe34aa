//! DNSSEC keys and signatures: the crypto half of online signing (`signed` is the zone half).
//!
//! Design (issue 12):
//! - **A KSK and ZSKs per zone.** The KSK (DNSKEY flags 257; two during a KSK rollover,
//!   `rolls::Roll`) is the key whose DS the parent holds: it signs only the apex DNSKEY, CDS
//!   and CDNSKEY RRsets. A ZSK (flags 256, same algorithm) signs every other RRset, and is
//!   rolled by itself (pre-publish, RFC 7583 §3.2) on a schedule that is a pure function of
//!   the signing epoch ([`Epochs::zsks`]): no timer and no state of its own.
//! - Algorithm 13 (ECDSA P-256/SHA-256, RFC 9904's MUST) or 15 (Ed25519), computed with
//!   `ring`, which the build already has for rustls: no OpenSSL. The RFC 4034 §3.1.8.1 signed
//!   data is written here by hand (a few lines) and checked against dnspython, Unbound and delv.
//! - **KSKs live in `state_dir/dnssec/`** (`keystore`), made in batches in the background
//!   and reused across restarts and reloads. **ZSKs are derived, not stored** ([`ZoneKey::zsk`]):
//!   ZSK generation g of a zone is HKDF-SHA256 of the zone's first KSK file, with the zone's
//!   name, the algorithm and g as info. So there is no ZSK file to make, lose or back up, and
//!   no answer waits for one.
//! - Keys are not kept in memory beyond the signed views that use them (`signed::Cache`,
//!   bounded), so 100,000 signed domains cost disk files, not RAM.

use ring::hkdf;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use sha2::{Digest, Sha256};

use crate::settings::DnssecAlgorithm;

pub(crate) use super::epochs::{Epochs, Validity, Zsks};

/// DNSKEY flags of a KSK: Zone Key (bit 7) + Secure Entry Point (bit 15).
pub(crate) const KSK_FLAGS: u16 = 257;
/// DNSKEY flags of a ZSK: Zone Key alone.
pub(crate) const ZSK_FLAGS: u16 = 256;
/// DS digest type 2: SHA-256 (RFC 4509).
const DIGEST_SHA256: u8 = 2;

/// A zone's signing key.
pub(crate) struct ZoneKey {
    pub algorithm: u8,
    /// RFC 4034 Appendix B key tag.
    pub tag: u16,
    /// DNSKEY RDATA: flags, protocol 3, algorithm, public key.
    pub dnskey: Box<[u8]>,
    pair: Pair,
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl ZoneKey {
    /// A KSK from its PKCS#8 file.
    pub(super) fn from_pkcs8(algorithm: DnssecAlgorithm, der: &[u8]) -> anyhow::Result<ZoneKey> {
        let (pair, public) = match algorithm {
            DnssecAlgorithm::EcdsaP256Sha256 => {
                let p = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
                    .map_err(|e| anyhow::anyhow!("not an ECDSA P-256 PKCS#8 key: {e}"))?;
                // DNSSEC writes the point without SEC1's 0x04 prefix (RFC 6605 §4).
                let public = p.public_key().as_ref()[1..].to_vec();
                (Pair::Ecdsa(p), public)
            }
            DnssecAlgorithm::Ed25519 => {
                let p =
                    Ed25519KeyPair::from_pkcs8(der).map_err(|e| anyhow::anyhow!("not an Ed25519 PKCS#8 key: {e}"))?;
                let public = p.public_key().as_ref().to_vec();
                (Pair::Ed25519(p), public)
            }
        };
        Ok(ZoneKey::with(algorithm, KSK_FLAGS, &public, pair))
    }

    fn with(algorithm: DnssecAlgorithm, flags: u16, public: &[u8], pair: Pair) -> ZoneKey {
        let mut dnskey = Vec::with_capacity(4 + public.len());
        dnskey.extend_from_slice(&flags.to_be_bytes());
        dnskey.push(3);
        dnskey.push(algorithm.number());
        dnskey.extend_from_slice(public);
        ZoneKey {
            algorithm: algorithm.number(),
            tag: key_tag(&dnskey),
            dnskey: dnskey.into_boxed_slice(),
            pair,
        }
    }

    /// ZSK `generation` of zone `origin` (lower-case wire name), derived from `secret` (the
    /// bytes of the zone's first KSK file, which never changes): HKDF-SHA256 (RFC 5869) with
    /// info = origin ‖ algorithm ‖ generation (8 octets, big-endian) ‖ attempt. The same on every
    /// run and machine that has the KSK file; another zone, algorithm or generation gives an
    /// unrelated key, and a ZSK tells nothing about the KSK (HKDF is one-way).
    ///
    /// Ed25519: the 32 octets are the seed (RFC 8032). P-256: the 32 octets are the private
    /// scalar if it is in [1, n − 1], else the next attempt (a chance of 2⁻³² each, so no
    /// bias); `ring` cannot compute a public key from a scalar, so the pure-Rust `p256` crate
    /// does, and `ring` signs.
    pub(crate) fn zsk(
        algorithm: DnssecAlgorithm,
        secret: &[u8],
        origin: &[u8],
        generation: u64,
    ) -> anyhow::Result<ZoneKey> {
        struct Len;
        impl hkdf::KeyType for Len {
            fn len(&self) -> usize {
                32
            }
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"mailconf-dnssec-zsk").extract(secret);
        let failed = || anyhow::anyhow!("HKDF failed");
        for attempt in 0u8..=255 {
            let mut okm = [0u8; 32];
            let alg = [algorithm.number()];
            let gen_be = generation.to_be_bytes();
            let tries = [attempt];
            let info: [&[u8]; 4] = [origin, &alg, &gen_be, &tries];
            prk.expand(&info, Len)
                .map_err(|_| failed())?
                .fill(&mut okm)
                .map_err(|_| failed())?;
            match algorithm {
                DnssecAlgorithm::Ed25519 => {
                    let p = Ed25519KeyPair::from_seed_unchecked(&okm)
                        .map_err(|e| anyhow::anyhow!("cannot make an Ed25519 ZSK: {e}"))?;
                    let public = p.public_key().as_ref().to_vec();
                    return Ok(ZoneKey::with(algorithm, ZSK_FLAGS, &public, Pair::Ed25519(p)));
                }
                DnssecAlgorithm::EcdsaP256Sha256 => {
                    let point = match p256_public(&okm) {
                        Some(point) => point,
                        // Zero or not below the group order: the next attempt.
                        None => continue,
                    };
                    let p = EcdsaKeyPair::from_private_key_and_public_key(
                        &ECDSA_P256_SHA256_FIXED_SIGNING,
                        &okm,
                        &point,
                        &SystemRandom::new(),
                    )
                    .map_err(|e| anyhow::anyhow!("cannot make an ECDSA P-256 ZSK: {e}"))?;
                    let public = p.public_key().as_ref()[1..].to_vec();
                    return Ok(ZoneKey::with(algorithm, ZSK_FLAGS, &public, Pair::Ecdsa(p)));
                }
            }
        }
        anyhow::bail!("no P-256 ZSK in 256 attempts")
    }

    pub(super) fn generate(algorithm: DnssecAlgorithm) -> anyhow::Result<Vec<u8>> {
        let rng = SystemRandom::new();
        let doc = match algorithm {
            DnssecAlgorithm::EcdsaP256Sha256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng),
            DnssecAlgorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng),
        }
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
        Ok(doc.as_ref().to_vec())
    }

    /// The signature field of an RRSIG over `data` (r‖s for ECDSA, RFC 6605 §4; 64 octets
    /// for Ed25519, RFC 8080 §3). Empty only if the system random generator fails, which
    /// makes the answer fail validation rather than be trusted unsigned.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        match &self.pair {
            Pair::Ecdsa(p) => p
                .sign(&SystemRandom::new(), data)
                .map(|s| s.as_ref().to_vec())
                .unwrap_or_default(),
            Pair::Ed25519(p) => p.sign(data).as_ref().to_vec(),
        }
    }

    /// DS RDATA for this key at `owner` (lower-case wire name), digest type 2.
    pub fn ds(&self, owner: &[u8]) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(owner);
        h.update(&self.dnskey);
        let mut out = Vec::with_capacity(36);
        out.extend_from_slice(&self.tag.to_be_bytes());
        out.push(self.algorithm);
        out.push(DIGEST_SHA256);
        out.extend_from_slice(&h.finalize());
        out
    }
}

/// The digest of a DS record of type `digest_type` for DNSKEY RDATA `dnskey` at `owner`
/// (lower-case wire name; RFC 4034 §5.1.4): SHA-1 (1), SHA-256 (2, what mailconf hands out) and
/// SHA-384 (4). `None` for the types this cannot compute (GOST, SM3, …).
pub(crate) fn ds_digest(owner: &[u8], dnskey: &[u8], digest_type: u8) -> Option<Vec<u8>> {
    let algorithm = match digest_type {
        1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        DIGEST_SHA256 => &ring::digest::SHA256,
        4 => &ring::digest::SHA384,
        _ => return None,
    };
    let mut h = ring::digest::Context::new(algorithm);
    h.update(owner);
    h.update(dnskey);
    Some(h.finish().as_ref().to_vec())
}

/// Whether DS RDATA `ds` (key tag, algorithm, digest type, digest) at `owner` (lower-case wire
/// name) is the DS of DNSKEY RDATA `dnskey`: same tag, algorithm and digest, for a digest type
/// [`ds_digest`] computes. A DS of another digest type never matches (it cannot be checked).
pub(crate) fn ds_matches(owner: &[u8], dnskey: &[u8], ds: &[u8]) -> bool {
    let [t0, t1, algorithm, digest_type, digest @ ..] = ds else {
        return false;
    };
    u16::from_be_bytes([*t0, *t1]) == key_tag(dnskey)
        && dnskey.get(3) == Some(algorithm)
        && ds_digest(owner, dnskey, *digest_type).is_some_and(|d| d == digest)
}

/// DS RDATA in presentation form: `TAG ALG TYPE HEX` (`\# …` if too short to be a DS).
pub(crate) fn ds_text(ds: &[u8]) -> String {
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02X}")).collect::<String>();
    match ds {
        [t0, t1, algorithm, digest_type, digest @ ..] => format!(
            "{} {algorithm} {digest_type} {}",
            u16::from_be_bytes([*t0, *t1]),
            hex(digest)
        ),
        _ => format!("\\# {} {}", ds.len(), hex(ds)),
    }
}

/// Derived P-256 public keys already computed, by a hash of their private scalar: `p256`'s
/// scalar multiplication (no precomputed tables) cost ~200 µs a ZSK in a release build, more than
/// the rest of building a signed view, and views are built again and again while DO queries
/// first reach every zone; ring then checks the pair with its own fast code (~20 µs). At most
/// [`PUBLICS`] entries (~200 bytes each with the table); when full it starts again empty.
static P256_PUBLICS: std::sync::Mutex<Option<rustc_hash::FxHashMap<u128, [u8; 65]>>> = std::sync::Mutex::new(None);
const PUBLICS: usize = 1 << 16;

/// The uncompressed public point of P-256 private scalar `d` (big-endian), or `None` if `d` is
/// zero or not below the group order.
fn p256_public(d: &[u8; 32]) -> Option<[u8; 65]> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let id = xxhash_rust::xxh3::xxh3_128(d);
    let mut memo = P256_PUBLICS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(point) = memo.as_ref().and_then(|m| m.get(&id)) {
        return Some(*point);
    }
    drop(memo);
    let secret = p256::SecretKey::from_bytes(&(*d).into()).ok()?;
    let point: [u8; 65] = secret.public_key().to_encoded_point(false).as_bytes().try_into().ok()?;
    memo = P256_PUBLICS.lock().unwrap_or_else(|e| e.into_inner());
    let m = memo.get_or_insert_with(Default::default);
    if m.len() >= PUBLICS {
        m.clear();
    }
    m.insert(id, point);
    Some(point)
}

/// RFC 4034 Appendix B.
pub(crate) fn key_tag(rdata: &[u8]) -> u16 {
    let mut ac: u32 = 0;
    for (i, b) in rdata.iter().enumerate() {
        ac += if i & 1 == 1 { u32::from(*b) } else { u32::from(*b) << 8 };
    }
    ac += (ac >> 16) & 0xFFFF;
    (ac & 0xFFFF) as u16
}

/// The content fingerprint a signed zone is served with: the records, algorithm and epoch
/// ([`signed_content`]), its KSK rollover state ([`with_roll`]) and its ZSKs: whatever changes
/// what is published or what signs moves the serial.
pub(crate) fn served_content(
    content: &[u8; 32],
    algorithm: u8,
    epoch: u64,
    roll: Option<super::rolls::Roll>,
    zsks: Zsks,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mailconf-dnssec-zsk");
    h.update(with_roll(signed_content(content, algorithm, epoch), roll));
    h.update(zsks.first.to_be_bytes());
    h.update(zsks.last.to_be_bytes());
    h.update(zsks.signing.to_be_bytes());
    h.update([u8::from(zsks.ksk_too)]);
    h.finalize().into()
}

/// The content fingerprint a signed zone is served with: the records' fingerprint, the
/// algorithm and the signing epoch. Turning signing on or off, changing the algorithm and a
/// new epoch all change it, so each moves the serial.
pub(crate) fn signed_content(content: &[u8; 32], algorithm: u8, epoch: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mailconf-dnssec");
    h.update(content);
    h.update([algorithm]);
    h.update(epoch.to_be_bytes());
    h.finalize().into()
}

/// A signed zone's content fingerprint with its key rollover state folded in: each step of a
/// rollover publishes other keys, so it moves the serial (and NOTIFYs secondaries) like any
/// change. Unchanged for a zone that never rolled.
pub(crate) fn with_roll(content: [u8; 32], roll: Option<super::rolls::Roll>) -> [u8; 32] {
    let Some(r) = roll else { return content };
    let mut h = Sha256::new();
    h.update(b"mailconf-dnssec-roll");
    h.update(content);
    h.update(r.generation.to_be_bytes());
    h.update([u8::from(r.rolling)]);
    h.finalize().into()
}

/// An RRSIG's RDATA over `rdatas` (canonical RDATA, any order) of type `rtype` at `owner`
/// (lower-case wire), original TTL `ttl`, signed by `key` for zone `signer` (RFC 4034 §3).
pub(crate) fn rrsig(
    key: &ZoneKey,
    signer: &[u8],
    owner: &[u8],
    rtype: u16,
    ttl: u32,
    rdatas: &[Box<[u8]>],
    v: Validity,
) -> Vec<u8> {
    let mut rdata = Vec::with_capacity(18 + signer.len() + 64);
    rdata.extend_from_slice(&rtype.to_be_bytes());
    rdata.push(key.algorithm);
    rdata.push(labels(owner));
    rdata.extend_from_slice(&ttl.to_be_bytes());
    rdata.extend_from_slice(&v.expiration.to_be_bytes());
    rdata.extend_from_slice(&v.inception.to_be_bytes());
    rdata.extend_from_slice(&key.tag.to_be_bytes());
    rdata.extend_from_slice(signer);
    // RFC 4034 §3.1.8.1: RRSIG RDATA without the signature, then each RR in canonical form
    // and canonical order (RDATA as unsigned octet strings), duplicates removed.
    let mut sorted: Vec<&[u8]> = rdatas.iter().map(|r| &**r).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut data = rdata.clone();
    for rd in sorted {
        data.extend_from_slice(owner);
        data.extend_from_slice(&rtype.to_be_bytes());
        data.extend_from_slice(&1u16.to_be_bytes());
        data.extend_from_slice(&ttl.to_be_bytes());
        data.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        data.extend_from_slice(rd);
    }
    rdata.extend_from_slice(&key.sign(&data));
    rdata
}

/// RRSIG Labels field: labels of the owner, without the root and a leading `*` (§3.1.3).
fn labels(owner: &[u8]) -> u8 {
    let mut n = 0u8;
    let mut i = 0;
    while i < owner.len() && owner[i] != 0 {
        if !(i == 0 && &owner[..2] == b"\x01*") {
            n += 1;
        }
        i += 1 + owner[i] as usize;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::epochs::LIFETIME;
    use crate::settings::DnssecAlgorithm;

    /// RFC 4034 §5.4 (SHA-1) and RFC 4509 §2.3 (SHA-256): the DS of `dskey.example.com.`; the
    /// SHA-384 digest is BIND's (`dnssec-dsfromkey -a SHA-384`).
    #[test]
    fn ds_of_rfc_4509_example_and_matching() {
        let public = "AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMm\
                      mAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==";
        let mut dnskey = vec![1, 0, 3, 5];
        dnskey.extend(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, public).unwrap());
        let owner = crate::dns::wire::lower_wire("dskey.example.com");
        let unhex = |h: &str| -> Vec<u8> {
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect()
        };
        let ds = |digest_type: u8, hex: &str| {
            let mut ds = vec![0xEC, 0x45, 5, digest_type]; // tag 60485
            ds.extend(unhex(hex));
            ds
        };
        let sha1 = ds(1, "2BB183AF5F22588179A53B0A98631FAD1A292118");
        let sha256 = ds(2, "D4B7D520E7BB5F0F67674A0CCEB1E3E0614B93C4F9E99B8383F6A1E4469DA50A");
        let sha384 = ds(
            4,
            "AB64DBEBE13C0B6BAE558B78CCAB93B836F8ADA4CBED2D4484A8715A819DE7B9E846315E70EA5D884B377394BDAF16A3",
        );
        assert_eq!(key_tag(&dnskey), 60485);
        for good in [&sha1, &sha256, &sha384] {
            assert!(ds_matches(&owner, &dnskey, good), "{}", ds_text(good));
        }
        assert_eq!(
            ds_text(&sha256),
            "60485 5 2 D4B7D520E7BB5F0F67674A0CCEB1E3E0614B93C4F9E99B8383F6A1E4469DA50A"
        );
        // Another owner, tag, algorithm or digest; a digest type not computed; a short RDATA.
        assert!(!ds_matches(
            &crate::dns::wire::lower_wire("example.com"),
            &dnskey,
            &sha256
        ));
        let mut other = sha256.clone();
        other[1] ^= 1;
        assert!(!ds_matches(&owner, &dnskey, &other), "tag");
        let mut other = sha256.clone();
        other[2] = 8;
        assert!(!ds_matches(&owner, &dnskey, &other), "algorithm");
        let mut other = sha256.clone();
        *other.last_mut().unwrap() ^= 1;
        assert!(!ds_matches(&owner, &dnskey, &other), "digest");
        let mut other = sha256.clone();
        other[3] = 3; // GOST: not computed, never matches
        assert!(!ds_matches(&owner, &dnskey, &other), "GOST");
        assert!(!ds_matches(&owner, &dnskey, &sha256[..3]));
        assert_eq!(ds_text(&sha256[..3]), "\\# 3 EC4505");
        // Our own keys: the DS we hand out matches, as do the other computed types.
        for alg in [DnssecAlgorithm::EcdsaP256Sha256, DnssecAlgorithm::Ed25519] {
            let key = ZoneKey::from_pkcs8(alg, &ZoneKey::generate(alg).unwrap()).unwrap();
            let other = ZoneKey::from_pkcs8(alg, &ZoneKey::generate(alg).unwrap()).unwrap();
            let ours = key.ds(&owner);
            assert!(ds_matches(&owner, &key.dnskey, &ours));
            assert!(!ds_matches(&owner, &other.dnskey, &ours), "another key's DS");
            for t in [1, 4] {
                let mut ds = ours[..3].to_vec();
                ds.push(t);
                ds.extend(ds_digest(&owner, &key.dnskey, t).unwrap());
                assert!(ds_matches(&owner, &key.dnskey, &ds), "digest type {t}");
            }
        }
    }

    #[test]
    fn key_tag_of_rfc_4034_example() {
        // RFC 4034 §5.4 / Appendix: the DNSKEY of example.com. with tag 60485 is RSA; use a
        // known ECDSA key instead: RFC 6605 §6.1's example, key tag 55648.
        let public = "GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==";
        let mut rdata = vec![1, 1, 3, 13];
        rdata.extend(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, public).unwrap());
        assert_eq!(key_tag(&rdata), 55648);
    }
    /// ZSKs derived from a KSK file: the same every time, another for another zone, algorithm
    /// or generation, flags 256; each signs what its DNSKEY verifies.
    #[test]
    fn zsks_are_derived_deterministically_per_zone_and_generation() {
        let a = b"\x07example\x03com\x00";
        let b = b"\x07example\x03net\x00";
        for alg in [DnssecAlgorithm::EcdsaP256Sha256, DnssecAlgorithm::Ed25519] {
            let secret = ZoneKey::generate(alg).unwrap();
            let k = |secret: &[u8], origin: &[u8], g| ZoneKey::zsk(alg, secret, origin, g).unwrap();
            let one = k(&secret, a, 7);
            assert_eq!(one.dnskey, k(&secret, a, 7).dnskey, "deterministic");
            assert_eq!(&one.dnskey[..4], &[1, 0, 3, alg.number()], "flags 256, protocol 3");
            assert_eq!(one.tag, key_tag(&one.dnskey));
            assert_ne!(one.dnskey, k(&secret, a, 8).dnskey, "per generation");
            assert_ne!(one.dnskey, k(&secret, b, 7).dnskey, "per zone");
            assert_ne!(one.dnskey, k(b"another KSK", a, 7).dnskey, "per KSK");
            let ksk = ZoneKey::from_pkcs8(alg, &secret).unwrap();
            assert_ne!(ksk.dnskey[4..], one.dnskey[4..]);
            assert_eq!(&ksk.dnskey[..2], &[1, 1]);
            // An RRSIG by the derived key verifies with its DNSKEY's public key.
            let rd: Box<[u8]> = Box::from(&b"\x04text"[..]);
            let v = Validity::at(1_800_000_000, 60, LIFETIME);
            let sig = rrsig(&one, a, a, 16, 60, std::slice::from_ref(&rd), v);
            let signer_end = 18 + a.len();
            let mut data = sig[..signer_end].to_vec();
            data.extend_from_slice(a);
            data.extend_from_slice(&[0, 16, 0, 1, 0, 0, 0, 60, 0, rd.len() as u8]);
            data.extend_from_slice(&rd);
            let (valg, public): (&dyn ring::signature::VerificationAlgorithm, Vec<u8>) = match alg {
                DnssecAlgorithm::EcdsaP256Sha256 => (
                    &ring::signature::ECDSA_P256_SHA256_FIXED,
                    [&[4u8][..], &one.dnskey[4..]].concat(),
                ),
                DnssecAlgorithm::Ed25519 => (&ring::signature::ED25519, one.dnskey[4..].to_vec()),
            };
            let key = ring::signature::UnparsedPublicKey::new(valg, &public);
            assert!(key.verify(&data, &sig[signer_end..]).is_ok(), "{alg:?}");
            data[signer_end] ^= 1;
            assert!(key.verify(&data, &sig[signer_end..]).is_err());
        }
        // Fixed key tags keep the derivation from changing by accident: a change would replace
        // every zone's ZSK at once, without a rollover.
        let fixed = ZoneKey::zsk(DnssecAlgorithm::Ed25519, b"secret", a, 0).unwrap();
        let p256 = ZoneKey::zsk(DnssecAlgorithm::EcdsaP256Sha256, b"secret", a, 0).unwrap();
        assert_eq!((fixed.tag, p256.tag), (28811, 39124));
    }

    #[test]
    fn labels_field() {
        assert_eq!(labels(b"\x07example\x03com\x00"), 2);
        assert_eq!(labels(b"\x01*\x07example\x03com\x00"), 2);
        assert_eq!(labels(b"\x00"), 0);
    }
}
