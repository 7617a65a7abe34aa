//! Signing Apple configuration profiles with the serving certificate: CMS/PKCS #7 SignedData
//! (RFC 5652), DER, content attached, the certificate chain included, signed attributes
//! (content type, message digest, signing time). iOS then shows the profile as verified when the
//! chain is trusted. Equivalent to `openssl cms -sign -nodetach -binary -outform DER -md sha256`.
//!
//! Pure Rust: RustCrypto `cms` builds the structure; the private-key operation is rustls' ring
//! signer — the same code, and so the same key types, that `settings` checked the key with and
//! that serves TLS: RSA (PKCS #1 or PKCS #8 files) signs sha256WithRSAEncryption, ECDSA P-256
//! (SEC1 or PKCS #8, as rcgen and ACME make them) ecdsa-with-SHA256, both with SHA-256 as the
//! digest algorithm; P-384 keys sign with SHA-384, the hash that curve's signer uses. Ed25519
//! keys (RFC 8419 would need SHA-512, and Apple devices do not take them) are refused.

use cms::builder::{SignedDataBuilder, SignerInfoBuilder, create_signing_time_attribute};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5911, rfc5912};
use der::{Any, Decode, Encode, Tag};
use rustls::SignatureScheme;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use spki::{AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, SignatureBitStringEncoding};
use x509_cert::Certificate;

/// Sign `content` with the leaf certificate of `chain` and its private key `key` (DER, as
/// `settings` read it), including the rest of the chain.
pub fn sign_with_key(content: &[u8], chain: &[CertificateDer<'_>], key: &PrivateKeyDer<'_>) -> Result<Vec<u8>, String> {
    let key = rustls::crypto::ring::sign::any_supported_type(key).map_err(|e| format!("private key: {e}"))?;
    sign(content, chain, key.as_ref())
}

/// Sign `content` with the leaf certificate of `chain` and its loaded signing key.
pub fn sign(
    content: &[u8],
    chain: &[CertificateDer<'_>],
    key: &dyn rustls::sign::SigningKey,
) -> Result<Vec<u8>, String> {
    let signer = Signer::new(key)?;
    let certs = chain
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate: {e}"))?;
    let leaf = certs.first().ok_or("no certificate")?;
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: leaf.tbs_certificate.issuer.clone(),
        serial_number: leaf.tbs_certificate.serial_number.clone(),
    });
    let content = EncapsulatedContentInfo {
        econtent_type: rfc5911::ID_DATA,
        // The value of the eContent OCTET STRING is the profile itself (not DER inside DER).
        econtent: Some(Any::new(Tag::OctetString, content).map_err(|e| e.to_string())?),
    };
    let digest = AlgorithmIdentifierOwned {
        oid: signer.digest,
        parameters: None,
    };
    let mut info = SignerInfoBuilder::new(&signer, sid, digest.clone(), &content, None).map_err(|e| e.to_string())?;
    info.add_signed_attribute(create_signing_time_attribute().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let mut data = SignedDataBuilder::new(&content);
    data.add_digest_algorithm(digest).map_err(|e| e.to_string())?;
    for c in certs {
        data.add_certificate(CertificateChoices::Certificate(c))
            .map_err(|e| e.to_string())?;
    }
    data.add_signer_info::<_, Signature>(info)
        .map_err(|e| format!("signing failed: {e}"))?;
    let signed = data.build().map_err(|e| format!("building the signature: {e}"))?;
    signed.to_der().map_err(|e| format!("encoding the signature: {e}"))
}

/// A rustls signer seen through the traits the `cms` builder asks for.
struct Signer {
    inner: Box<dyn rustls::sign::Signer>,
    /// The SignerInfo's digest algorithm (signed attributes' message digest).
    digest: ObjectIdentifier,
    /// The SignerInfo's signature algorithm, and whether it carries NULL parameters (RSA).
    algorithm: ObjectIdentifier,
    null_parameters: bool,
}

impl Signer {
    fn new(key: &dyn rustls::sign::SigningKey) -> Result<Signer, String> {
        use SignatureScheme as S;
        let inner = key
            .choose_scheme(&[S::ECDSA_NISTP256_SHA256, S::ECDSA_NISTP384_SHA384, S::RSA_PKCS1_SHA256])
            .ok_or_else(|| format!("a {:?} key cannot sign profiles (use RSA or ECDSA)", key.algorithm()))?;
        let (digest, algorithm, null_parameters) = match inner.scheme() {
            S::ECDSA_NISTP256_SHA256 => (rfc5912::ID_SHA_256, rfc5912::ECDSA_WITH_SHA_256, false),
            S::ECDSA_NISTP384_SHA384 => (rfc5912::ID_SHA_384, rfc5912::ECDSA_WITH_SHA_384, false),
            S::RSA_PKCS1_SHA256 => (rfc5912::ID_SHA_256, rfc5912::SHA_256_WITH_RSA_ENCRYPTION, true),
            other => return Err(format!("unexpected signature scheme {other:?}")),
        };
        Ok(Signer {
            inner,
            digest,
            algorithm,
            null_parameters,
        })
    }
}

impl signature::Keypair for Signer {
    // The builder never asks for the public key: the certificate carries it.
    type VerifyingKey = ();
    fn verifying_key(&self) {}
}

impl DynSignatureAlgorithmIdentifier for Signer {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(AlgorithmIdentifierOwned {
            oid: self.algorithm,
            parameters: self.null_parameters.then(|| Any::from(der::asn1::Null)),
        })
    }
}

impl signature::Signer<Signature> for Signer {
    fn try_sign(&self, msg: &[u8]) -> Result<Signature, signature::Error> {
        // ring hashes `msg` (the DER of the signed attributes) with the scheme's hash; ECDSA
        // comes back as the DER Ecdsa-Sig-Value CMS wants.
        self.inner.sign(msg).map(Signature).map_err(|_| signature::Error::new())
    }
}

/// A signature value as produced by rustls.
struct Signature(Vec<u8>);

impl SignatureBitStringEncoding for Signature {
    fn to_bitstring(&self) -> der::Result<der::asn1::BitString> {
        der::asn1::BitString::from_bytes(&self.0)
    }
}

#[cfg(test)]
mod tests {
    //! Every key form `settings` accepts signs a profile that `openssl cms -verify` accepts, and
    //! whose content is the profile byte for byte.

    use std::path::{Path, PathBuf};
    use std::process::Command;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mailconf-sign-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A self-signed certificate for the key in `key.pem`, then sign, verify and compare.
    fn round_trip(d: &Path, expect_digest: &str) {
        openssl(
            d,
            &[
                "req",
                "-new",
                "-x509",
                "-key",
                "key.pem",
                "-subj",
                "/CN=autoconfig.example.com",
                "-days",
                "2",
                "-out",
                "cert.pem",
            ],
        );
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(d.join("cert.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(d.join("key.pem")).unwrap();
        let content = b"<?xml version=\"1.0\"?>\n<plist>\x00binary \xff bytes\r\n</plist>\n";
        let signed = super::sign_with_key(content, &chain, &key).unwrap();
        std::fs::write(d.join("signed.der"), &signed).unwrap();
        openssl(
            d,
            &[
                "cms",
                "-verify",
                "-inform",
                "DER",
                "-in",
                "signed.der",
                "-CAfile",
                "cert.pem",
                "-purpose",
                "any",
                "-binary",
                "-out",
                "content",
            ],
        );
        assert_eq!(std::fs::read(d.join("content")).unwrap(), content);
        let out = Command::new("openssl")
            .current_dir(d)
            .args(["cms", "-cmsout", "-print", "-inform", "DER", "-in", "signed.der"])
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(printed.contains(&format!("algorithm: {expect_digest}")), "{printed}");
        assert!(printed.contains("signingTime"), "{printed}");
        // One flipped content byte breaks it.
        let mut bad = signed.clone();
        let at = bad.windows(6).position(|w| w == b"binary").unwrap();
        bad[at] ^= 1;
        std::fs::write(d.join("bad.der"), &bad).unwrap();
        let out = Command::new("openssl")
            .current_dir(d)
            .args([
                "cms",
                "-verify",
                "-inform",
                "DER",
                "-in",
                "bad.der",
                "-CAfile",
                "cert.pem",
                "-purpose",
                "any",
                "-out",
                "/dev/null",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
    }

    #[test]
    fn ecdsa_p256_pkcs8() {
        let d = dir("p256-pkcs8");
        openssl(
            &d,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "key.pem",
            ],
        );
        assert!(
            std::fs::read_to_string(d.join("key.pem"))
                .unwrap()
                .contains("BEGIN PRIVATE KEY")
        );
        round_trip(&d, "sha256");
    }

    #[test]
    fn ecdsa_p256_sec1() {
        let d = dir("p256-sec1");
        openssl(
            &d,
            &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "key.pem"],
        );
        assert!(
            std::fs::read_to_string(d.join("key.pem"))
                .unwrap()
                .contains("BEGIN EC PRIVATE KEY")
        );
        round_trip(&d, "sha256");
    }

    #[test]
    fn ecdsa_p384_signs_with_sha384() {
        let d = dir("p384");
        openssl(
            &d,
            &["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "key.pem"],
        );
        round_trip(&d, "sha384");
    }

    #[test]
    fn rsa_pkcs1() {
        let d = dir("rsa-pkcs1");
        openssl(&d, &["genrsa", "-traditional", "-out", "key.pem", "2048"]);
        assert!(
            std::fs::read_to_string(d.join("key.pem"))
                .unwrap()
                .contains("BEGIN RSA PRIVATE KEY")
        );
        round_trip(&d, "sha256");
    }

    #[test]
    fn rsa_pkcs8() {
        let d = dir("rsa-pkcs8");
        openssl(
            &d,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "key.pem",
            ],
        );
        round_trip(&d, "sha256");
    }

    #[test]
    fn ed25519_is_refused_with_a_reason() {
        let d = dir("ed25519");
        openssl(&d, &["genpkey", "-algorithm", "ED25519", "-out", "key.pem"]);
        openssl(
            &d,
            &[
                "req", "-new", "-x509", "-key", "key.pem", "-subj", "/CN=x", "-days", "2", "-out", "cert.pem",
            ],
        );
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(d.join("cert.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(d.join("key.pem")).unwrap();
        let e = super::sign_with_key(b"x", &chain, &key).unwrap_err();
        assert!(e.contains("cannot sign profiles"), "{e}");
    }
}
