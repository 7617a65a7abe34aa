//! Unix time, written and read as UTC dates (logs, `acme status`, the CA's "retry after" text).

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `2026-12-02T05:21:00Z`.
pub fn iso(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (y, m, d) = crate::dates::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The time in a rate-limit problem's detail: Let's Encrypt writes "…, retry after 2026-12-02
/// 05:21:00 UTC: see https://…" (RFC 3339 with a `T` is accepted too). The `Retry-After` header
/// would be better, but rustls-acme 0.15 drops the headers of an error response.
pub fn retry_after_in(detail: &str) -> Option<i64> {
    let lower = detail.to_ascii_lowercase();
    let at = lower.find("retry after ")? + "retry after ".len();
    let s = detail.get(at..at + 19)?.as_bytes();
    let num = |r: std::ops::Range<usize>| std::str::from_utf8(&s[r]).ok()?.parse::<i64>().ok();
    if s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b' ' | b'T') || s[13] != b':' || s[16] != b':' {
        return None;
    }
    let days = crate::dates::days_from_civil(num(0..4)?, num(5..7)?, num(8..10)?);
    Some(days * 86_400 + num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso(1_796_188_860), "2026-12-02T05:21:00Z");
        for t in [0, 951_782_400, 1_796_188_860, 4_102_444_799] {
            let text = iso(t).replace('T', " ").replace('Z', " UTC");
            assert_eq!(retry_after_in(&format!("too many, retry after {text}: see x")), Some(t));
        }
    }

    #[test]
    fn lets_encrypt_rate_limit_details() {
        let d = "too many new orders (300) from this account in the last 3h0m0s, retry after 2026-12-02 05:21:00 UTC: see https://letsencrypt.org/docs/rate-limits/";
        assert_eq!(retry_after_in(d), Some(1_796_188_860));
        assert_eq!(retry_after_in("Retry after 2026-12-02T05:21:00Z"), Some(1_796_188_860));
        assert_eq!(retry_after_in("rate limited"), None);
        assert_eq!(retry_after_in("retry after soon"), None);
    }
}
