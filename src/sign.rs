//! Signing Apple configuration profiles with the serving certificate: CMS/PKCS #7 SignedData
//! (RFC 5652), DER, content attached, SHA-256, the certificate chain included, signed attributes
//! (content type, message digest, signing time). iOS then shows the profile as verified when the
//! chain is trusted. Equivalent to `openssl cms -sign -nodetach -binary -outform DER`.
//!
//! Uses the system OpenSSL through the `openssl` crate: it signs with RSA and ECDSA keys alike,
//! and it is the implementation `openssl cms -verify` (and Apple's tooling) is checked against.

use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::PKey;
use openssl::stack::Stack;
use openssl::x509::X509;

use crate::settings::TlsFiles;

/// Sign `content` with the leaf certificate and key of `files`, including the rest of the chain.
pub fn sign(content: &[u8], files: &TlsFiles) -> Result<Vec<u8>, String> {
    let leaf =
        X509::from_der(files.chain[0].as_ref()).map_err(|e| format!("certificate `{}`: {e}", files.cert_path))?;
    let key = PKey::private_key_from_der(files.key.secret_der())
        .or_else(|_| PKey::private_key_from_pkcs8(files.key.secret_der()))
        .map_err(|e| format!("key `{}`: {e}", files.key_path))?;
    let mut chain = Stack::new().map_err(|e| e.to_string())?;
    for c in &files.chain[1..] {
        chain
            .push(X509::from_der(c.as_ref()).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let signed =
        Pkcs7::sign(&leaf, &key, &chain, content, Pkcs7Flags::BINARY).map_err(|e| format!("signing failed: {e}"))?;
    signed.to_der().map_err(|e| e.to_string())
}
