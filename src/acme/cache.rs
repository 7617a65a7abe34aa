//! The certificate cache on disk and in memory.
//!
//! On disk: one PEM file per certificate in `cache_dir` (PKCS #8 key, then the chain), named as
//! rustls-acme's `DirCache` names it (`cached_cert_` + SHA-256 of the names and the directory
//! URL), so caches written by earlier versions are read as they are; the account key likewise.
//! In memory: at most `cert_cache` parsed certificates, the most recently used ([`Lru`]); the
//! rest are read from disk when a handshake asks for them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

fn hashed(prefix: &str, parts: &[String], directory: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p.as_bytes());
        ctx.update(&[0]);
    }
    ctx.update(directory.as_bytes());
    let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ctx.finish());
    format!("{prefix}{hash}")
}

/// The file of the certificate for `names` from the CA at `directory`.
pub fn cert_file(dir: &Path, names: &[String], directory: &str) -> PathBuf {
    dir.join(hashed("cached_cert_", names, directory))
}

/// The file of the account key (PKCS #8) for `contact` at `directory`.
pub fn account_file(dir: &Path, contact: &[String], directory: &str) -> PathBuf {
    dir.join(hashed("cached_account_", contact, directory))
}

/// Why the account key file's bytes cannot sign for the account, if they cannot: rustls-acme
/// signs with a P-256 ECDSA key in PKCS #8 (DER), as it generates and saves them.
pub fn account_key_problem(der: &[u8]) -> Option<String> {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    if der.is_empty() {
        return Some("the file is empty".to_string());
    }
    let rejected = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &ring::rand::SystemRandom::new())
        .err()?
        .to_string();
    Some(match rejected.as_str() {
        "WrongAlgorithm" => "not a P-256 ECDSA key (another key type)".to_string(),
        why => format!("not a whole PKCS #8 P-256 key (cut or damaged: {why})"),
    })
}

/// Where a damaged file is kept aside: `NAME.damaged-UNIXTIME` beside it.
pub fn damaged_file(path: &Path, now: i64) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".damaged-{now}"));
    path.with_file_name(name)
}

/// The file that keeps the failed orders of the certificate for `names` (see [`Failed`]).
pub fn failed_file(dir: &Path, names: &[String], directory: &str) -> PathBuf {
    dir.join(hashed("failed_", names, directory))
}

/// The failed orders of one certificate, kept in `cache_dir` until it is issued, so that a
/// restart goes on with its back-off instead of asking the CA again at once: the number of
/// failures in a row, when to try again (unix) and the last error. About 100 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub failures: u8,
    pub due: i64,
    pub error: String,
}

impl Failed {
    /// The error is kept to one line of at most 300 characters.
    pub fn to_text(&self) -> String {
        let error: String = self
            .error
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(300)
            .collect();
        format!("{} {}\n{error}\n", self.failures, self.due)
    }

    pub fn from_text(text: &str) -> Option<Failed> {
        let (head, rest) = text.split_once('\n').unwrap_or((text, ""));
        let (failures, due) = head.split_once(' ')?;
        Some(Failed {
            failures: failures.parse().ok()?,
            due: due.trim().parse().ok()?,
            error: rest.lines().next().unwrap_or("").to_string(),
        })
    }

    /// Read from `path`; `None` when there is none (or it is unreadable).
    pub fn load(path: &Path) -> Option<Failed> {
        let bytes = read(path).ok().flatten()?;
        Failed::from_text(std::str::from_utf8(&bytes).ok()?)
    }
}

/// The file that keeps the CA's renewal window for the certificate for `names` (see
/// [`Renewal`]).
pub fn renewal_file(dir: &Path, names: &[String], directory: &str) -> PathBuf {
    dir.join(hashed("renewal_", names, directory))
}

/// When the certificate that expires at `not_after` renews inside the CA's ARI window
/// (`start`..`end`, RFC 9773), as the server last picked it: written by `serve` for
/// `mailconf acme status`, which ignores it once the certificate is another one. One line,
/// about 45 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    pub not_after: i64,
    pub at: i64,
    pub start: i64,
    pub end: i64,
}

impl Renewal {
    pub fn to_text(&self) -> String {
        format!("{} {} {} {}\n", self.not_after, self.at, self.start, self.end)
    }

    pub fn from_text(text: &str) -> Option<Renewal> {
        let mut n = text.split_ascii_whitespace().map(|v| v.parse::<i64>().ok());
        let r = Renewal {
            not_after: n.next()??,
            at: n.next()??,
            start: n.next()??,
            end: n.next()??,
        };
        (n.next().is_none() && r.start < r.end).then_some(r)
    }

    /// Read from `path`; `None` when there is none (or it is unreadable).
    pub fn load(path: &Path) -> Option<Renewal> {
        let bytes = read(path).ok().flatten()?;
        Renewal::from_text(std::str::from_utf8(&bytes).ok()?)
    }
}

/// The file's bytes; `None` if there is no such file.
pub fn read(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Write through a temporary file and a rename: a crash never leaves half a certificate.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// notBefore and notAfter (unix) of the first certificate in a PEM file, without the key.
pub fn validity(pem: &[u8]) -> Option<(i64, i64)> {
    let leaf = CertificateDer::pem_slice_iter(pem).next()?.ok()?;
    let (_, c) = x509_parser::parse_x509_certificate(&leaf).ok()?;
    Some((c.validity().not_before.timestamp(), c.validity().not_after.timestamp()))
}

/// Why a cache file cannot be served (someone cut it, edited it, or put another key in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// The file is not there (it was when the cache was scanned).
    Gone,
    Unreadable,
    Damaged,
    NoKey,
    NoCertificate,
    BadCertificate,
    Chain,
    KeyType,
    KeyMismatch,
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unusable::Gone => "the file is gone",
            Unusable::Unreadable => "the file cannot be read",
            Unusable::Damaged => "a PEM section is cut or damaged",
            Unusable::NoKey => "no private key",
            Unusable::NoCertificate => "no certificate",
            Unusable::BadCertificate => "a certificate does not parse",
            Unusable::Chain => "a certificate of the chain was not issued by the next one",
            Unusable::KeyType => "the private key is not of a type rustls signs with",
            Unusable::KeyMismatch => "the private key is not the certificate's",
        })
    }
}

/// A cache file taken apart: the key (DER), the chain, the leaf's notBefore and notAfter.
type Sections = (PrivateKeyDer<'static>, Vec<CertificateDer<'static>>, (i64, i64));

/// The parts of a cache file whose every PEM section is whole, each certificate issued by the
/// next. No cryptography: cheap enough for the start-up scan of every file.
fn sections(pem: &[u8]) -> Result<Sections, Unusable> {
    use rustls::pki_types::pem::SectionKind;
    let mut key = None;
    let mut chain = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
        match section.map_err(|_| Unusable::Damaged)? {
            (SectionKind::Certificate, der) => chain.push(CertificateDer::from(der)),
            (kind, der) if key.is_none() => {
                key = PrivateKeyDer::from_pem(kind, der);
            }
            _ => {}
        }
    }
    let key = key.ok_or(Unusable::NoKey)?;
    let parsed = chain
        .iter()
        .map(|c| x509_parser::parse_x509_certificate(c).map(|(_, c)| c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Unusable::BadCertificate)?;
    let leaf = parsed.first().ok_or(Unusable::NoCertificate)?;
    if parsed.windows(2).any(|w| w[0].issuer() != w[1].subject()) {
        return Err(Unusable::Chain);
    }
    let validity = (
        leaf.validity().not_before.timestamp(),
        leaf.validity().not_after.timestamp(),
    );
    Ok((key, chain, validity))
}

/// notBefore and notAfter of a cache file that is whole (see [`sections`]); whether its key is
/// the certificate's is checked when it is loaded ([`load`]).
pub fn check(pem: &[u8]) -> Result<(i64, i64), Unusable> {
    sections(pem).map(|(_, _, validity)| validity)
}

/// The key and chain of a cache file, ready for rustls, and its notAfter; an error for a file
/// that must not be served.
pub fn load(pem: &[u8]) -> Result<(Arc<CertifiedKey>, i64), Unusable> {
    let (key, chain, (_, not_after)) = sections(pem)?;
    let key = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|_| Unusable::KeyType)?;
    let certified = CertifiedKey::new(chain, key);
    certified.keys_match().map_err(|_| Unusable::KeyMismatch)?;
    Ok((Arc::new(certified), not_after))
}

/// [`load`], for callers that need not say why.
pub fn parse(pem: &[u8]) -> Option<(Arc<CertifiedKey>, i64)> {
    load(pem).ok()
}

/// When to renew without ARI: at two thirds of the lifetime, whatever the lifetime is.
pub fn renew_at(not_before: i64, not_after: i64) -> i64 {
    not_before + (not_after - not_before) * 2 / 3
}

/// A bounded map from certificate number to parsed certificate that keeps the recently used
/// ones: two generations, each at most half the capacity; a hit in the old generation moves
/// the entry to the new one, and a full new generation replaces the old. O(1) per operation,
/// never more than `capacity` entries (at least 2). A certificate past its notAfter is never
/// returned (it is dropped when asked for): an expired certificate is not served.
pub struct Lru {
    half: usize,
    new: HashMap<u32, (Arc<CertifiedKey>, i64)>,
    old: HashMap<u32, (Arc<CertifiedKey>, i64)>,
}

impl Lru {
    pub fn new(capacity: usize) -> Lru {
        Lru {
            half: (capacity / 2).max(1),
            new: HashMap::new(),
            old: HashMap::new(),
        }
    }

    /// Certificate `id` if it is held and still valid at `now` (unix).
    pub fn get(&mut self, id: u32, now: i64) -> Option<Arc<CertifiedKey>> {
        if let Some((c, not_after)) = self.new.get(&id) {
            if *not_after > now {
                return Some(c.clone());
            }
            self.new.remove(&id);
            return None;
        }
        let (c, not_after) = self.old.remove(&id)?;
        if not_after <= now {
            return None;
        }
        self.insert(id, c.clone(), not_after);
        Some(c)
    }

    /// Hold `cert`, valid until `not_after` (unix).
    pub fn insert(&mut self, id: u32, cert: Arc<CertifiedKey>, not_after: i64) {
        self.old.remove(&id);
        self.new.insert(id, (cert, not_after));
        if self.new.len() >= self.half {
            self.old = std::mem::take(&mut self.new);
        }
    }

    pub fn len(&self) -> usize {
        self.new.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> Arc<CertifiedKey> {
        let key = rcgen13::KeyPair::generate_for(&rcgen13::PKCS_ECDSA_P256_SHA256).unwrap();
        let c = rcgen13::CertificateParams::new(vec!["a.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = format!("{}\n{}", key.serialize_pem(), c.pem());
        parse(pem.as_bytes()).unwrap().0
    }

    #[test]
    fn file_names_are_rustls_acmes() {
        // Known value: rustls-acme 0.15's DirCache names the file of these names this way.
        let names = ["autoconfig.acme.test".to_string(), "autodiscover.acme.test".to_string()];
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"autoconfig.acme.test\0autodiscover.acme.test\0https://ca/dir");
        let want = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ctx.finish());
        assert_eq!(
            cert_file(Path::new("/c"), &names, "https://ca/dir"),
            Path::new("/c").join(format!("cached_cert_{want}"))
        );
        assert_ne!(
            account_file(Path::new("/c"), &names, "https://ca/dir"),
            cert_file(Path::new("/c"), &names, "https://ca/dir")
        );
    }

    #[tokio::test]
    async fn dircache_reads_what_we_write() {
        use rustls_acme::CertCache;
        let dir = std::env::temp_dir().join(format!("mailconf-acme-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let names = vec!["x.test".to_string()];
        write(&cert_file(&dir, &names, "https://d"), b"PEM").unwrap();
        let got = rustls_acme::caches::DirCache::new(dir.clone())
            .load_cert(&names, "https://d")
            .await;
        assert_eq!(got.unwrap().as_deref(), Some(&b"PEM"[..]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lru_stays_bounded_and_keeps_what_is_used() {
        let c = cert();
        let mut lru = Lru::new(100);
        for i in 0..10_000 {
            lru.insert(i, c.clone(), 1000);
            assert!(lru.len() <= 100);
            // Certificate 7 is asked for all the time: it is never dropped.
            if i >= 7 {
                assert!(lru.get(7, 0).is_some(), "7 dropped at {i}");
            }
        }
        assert!(lru.get(9_999, 0).is_some());
        assert!(lru.get(100, 0).is_none());
        // Expired: never returned, and dropped.
        assert!(lru.get(7, 999).is_some());
        assert!(lru.get(7, 1000).is_none());
        assert!(lru.get(7, 0).is_none(), "dropped");
    }

    #[test]
    fn renewal_windows_round_trip_on_one_line() {
        let r = Renewal {
            not_after: 1_800_000_000,
            at: 1_799_000_000,
            start: 1_798_900_000,
            end: 1_799_100_000,
        };
        assert_eq!(Renewal::from_text(&r.to_text()), Some(r));
        assert_eq!(r.to_text().lines().count(), 1);
        assert_eq!(Renewal::from_text("1 2 3"), None, "cut");
        assert_eq!(Renewal::from_text("1 2 5 4"), None, "end before start");
        assert_eq!(Renewal::from_text("1 2 3 4 5"), None);
        assert_eq!(Renewal::from_text("x 2 3 4"), None);
    }

    #[test]
    fn failed_orders_round_trip_on_one_line() {
        let f = Failed {
            failures: 3,
            due: 1_796_188_860,
            error: "autoconfig.x.test: authorization Invalid:\nconnection refused".to_string(),
        };
        let text = f.to_text();
        assert_eq!(text.lines().count(), 2, "{text}");
        let back = Failed::from_text(&text).unwrap();
        assert_eq!((back.failures, back.due), (3, 1_796_188_860));
        assert_eq!(
            back.error,
            "autoconfig.x.test: authorization Invalid: connection refused"
        );
        assert!(Failed::from_text("garbage").is_none());
        assert!(Failed::from_text("").is_none());
        let long = Failed {
            error: "x".repeat(5000),
            ..f
        };
        assert!(long.to_text().len() < 400);
    }

    #[test]
    fn a_damaged_account_key_says_why() {
        let good = rustls_acme::acme::Account::generate_key_pair();
        assert_eq!(account_key_problem(&good), None);
        assert_eq!(account_key_problem(b"").as_deref(), Some("the file is empty"));
        let cut = account_key_problem(&good[..good.len() / 2]).unwrap();
        assert!(cut.starts_with("not a whole PKCS #8 P-256 key"), "{cut}");
        assert!(account_key_problem(b"garbage\n").unwrap().starts_with("not a whole"));
        let p384 = rcgen13::KeyPair::generate_for(&rcgen13::PKCS_ECDSA_P384_SHA384).unwrap();
        assert_eq!(
            account_key_problem(&p384.serialize_der()).as_deref(),
            Some("not a P-256 ECDSA key (another key type)")
        );
        assert_eq!(
            damaged_file(Path::new("/c/cached_account_x"), 1_796_188_860),
            Path::new("/c/cached_account_x.damaged-1796188860")
        );
    }

    #[test]
    fn renewal_at_two_thirds_of_any_lifetime() {
        assert_eq!(renew_at(0, 90 * 86_400), 60 * 86_400);
        assert_eq!(renew_at(1000, 1000 + 6 * 86_400), 1000 + 4 * 86_400);
    }

    #[test]
    fn a_cache_file_parses_with_its_expiry() {
        let key = rcgen13::KeyPair::generate_for(&rcgen13::PKCS_ECDSA_P256_SHA256).unwrap();
        let c = rcgen13::CertificateParams::new(vec!["a.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = format!("{}\n{}\n", key.serialize_pem(), c.pem());
        let (nb, na) = validity(pem.as_bytes()).unwrap();
        assert!(nb < na);
        assert_eq!(parse(pem.as_bytes()).unwrap().1, na);
        assert!(parse(b"not pem").is_none());
    }

    /// A key and a certificate for it, issued by a CA (PEM: key, leaf, CA).
    fn issued_pem(name: &str) -> (String, String, String) {
        let ca_key = rcgen13::KeyPair::generate_for(&rcgen13::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca = rcgen13::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen13::IsCa::Ca(rcgen13::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen13::DnType::CommonName, "Test CA");
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = rcgen13::KeyPair::generate_for(&rcgen13::PKCS_ECDSA_P256_SHA256).unwrap();
        let leaf = rcgen13::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        (key.serialize_pem(), leaf.pem(), ca.pem())
    }

    #[test]
    fn a_cache_file_that_must_not_be_served_says_why() {
        let (key, leaf, ca) = issued_pem("a.test");
        let whole = format!("{key}\n{leaf}\n{ca}");
        assert!(check(whole.as_bytes()).is_ok());
        assert!(load(whole.as_bytes()).is_ok());
        // Cut anywhere inside a section: never loaded. (Cut exactly between two sections, the
        // rest is whole: an intermediate left out is not detectable here.)
        for at in (1..whole.len()).step_by(7) {
            let cut = &whole.as_bytes()[..at];
            let r = load(cut);
            if let Ok((c, _)) = &r {
                let ca_at = whole.rfind(&ca).unwrap();
                let gap = &whole[at.min(ca_at)..ca_at];
                assert!(gap.trim().is_empty() && at < ca_at + 30, "cut at {at}");
                assert_eq!(c.cert.len(), 1, "cut at {at}");
            }
        }
        let inside_ca = whole.rfind("-----END").unwrap() - 10;
        assert_eq!(load(&whole.as_bytes()[..inside_ca]).err(), Some(Unusable::Damaged));
        assert_eq!(check(&whole.as_bytes()[..inside_ca]).err(), Some(Unusable::Damaged));
        // Another key: whole, so the scan takes it; the load refuses it.
        let (other_key, _, _) = issued_pem("b.test");
        let wrong = format!("{other_key}\n{leaf}\n{ca}");
        assert!(check(wrong.as_bytes()).is_ok());
        assert_eq!(load(wrong.as_bytes()).err(), Some(Unusable::KeyMismatch));
        assert_eq!(load(format!("{leaf}\n{ca}").as_bytes()).err(), Some(Unusable::NoKey));
        assert_eq!(load(key.as_bytes()).err(), Some(Unusable::NoCertificate));
        assert_eq!(
            load(format!("{key}\n{ca}\n{leaf}").as_bytes()).err(),
            Some(Unusable::Chain)
        );
        let garbled = whole.replacen("MII", "M!I", 1);
        assert!(load(garbled.as_bytes()).is_err());
    }
}
