//! The MTA-STS policy file (RFC 8461 §3.2) and the policy id published beside it in DNS.
//!
//! One text, two readers: the HTTP server answers with [`policy`] and `records` puts
//! [`policy_id`] of the same text into the `_mta-sts` TXT record, so the id changes exactly when
//! the served policy does.

use crate::settings::MtaSts;

/// The policy file served at `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
pub fn policy(sts: &MtaSts) -> String {
    let mut out = format!("version: STSv1\r\nmode: {}\r\n", sts.mode);
    for mx in sts.mx.iter() {
        out.push_str(&format!("mx: {mx}\r\n"));
    }
    out.push_str(&format!("max_age: {}\r\n", sts.max_age));
    out
}

/// The `id=` of the `_mta-sts` TXT record: changes whenever [`policy`] changes (20 hex digits of
/// its SHA-256; RFC 8461 §3.1 allows 1–32 alphanumerics).
pub fn policy_id(sts: &MtaSts) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(policy(sts).as_bytes());
    digest.iter().take(10).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts(mode: &'static str, mx: &[&str]) -> MtaSts {
        MtaSts {
            mode,
            max_age: 604_800,
            mx: mx.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn policy_text_and_id() {
        let a = sts("testing", &["mx1.example.net"]);
        assert_eq!(
            policy(&a),
            "version: STSv1\r\nmode: testing\r\nmx: mx1.example.net\r\nmax_age: 604800\r\n"
        );
        let id = policy_id(&a);
        assert_eq!(id.len(), 20);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(id, policy_id(&a.clone()), "deterministic");
        assert_ne!(
            id,
            policy_id(&sts("enforce", &["mx1.example.net"])),
            "follows the policy"
        );
    }
}
