//! Host and domain name syntax shared by every validation rule.

/// Convert a (possibly Unicode) domain name to lowercase ASCII (IDNA/UTS #46), without the
/// trailing dot, and check it is a usable host name.
pub fn to_ascii_domain(input: &str) -> Result<String, String> {
    let trimmed = input.strip_suffix('.').unwrap_or(input);
    if trimmed.is_empty() {
        return Err("empty name".into());
    }
    let ascii = if trimmed.is_ascii() {
        trimmed.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(trimmed).map_err(|_| format!("`{input}` is not a valid international domain name"))?
    };
    if is_hostname(&ascii) {
        Ok(ascii)
    } else {
        Err(format!(
            "`{input}` is not a valid host name (labels of letters, digits and `-`, at most 63 octets each, 253 in all, at least two labels)"
        ))
    }
}

/// LDH host name of at least two labels (RFC 1123 §2.1), ASCII, no trailing dot.
pub fn is_hostname(name: &str) -> bool {
    if name.is_empty() || name.len() > 253 || !name.contains('.') {
        return false;
    }
    name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(is_hostname("mail.example.net"));
        assert!(is_hostname("xn--bcher-kva.example"));
        assert!(!is_hostname("localhost"));
        assert!(!is_hostname("-a.example"));
        assert!(!is_hostname("a..example"));
        assert!(!is_hostname("a_b.example"));
        assert!(!is_hostname(&format!("{}.example", "a".repeat(64))));
    }

    #[test]
    fn idna() {
        assert_eq!(to_ascii_domain("Bücher.Example.").unwrap(), "xn--bcher-kva.example");
        assert_eq!(to_ascii_domain("MAIL.example.net").unwrap(), "mail.example.net");
        assert!(to_ascii_domain("bad name.example").is_err());
        assert!(to_ascii_domain(".").is_err());
    }
}
