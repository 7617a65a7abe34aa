//! Name arithmetic on validated ASCII names (no trailing dot), shared by `settings` (which
//! checks that in-zone targets have addresses) and anything else that needs it. Knows no DNS
//! wire format and no settings.

/// Name relative to `domain`: `""` for the apex, `"_tcp"` for `_tcp.<domain>`; `None` if outside.
pub fn relative_to(name: &str, domain: &str) -> Option<String> {
    if name == domain {
        Some(String::new())
    } else {
        name.strip_suffix(domain)
            .and_then(|p| p.strip_suffix('.'))
            .map(str::to_string)
    }
}

/// The zone (relative apex) a relative name falls in: the longest configured apex that is a suffix.
pub fn zone_of<'z>(rel: &str, zones: &'z [String]) -> Option<&'z String> {
    zones
        .iter()
        .filter(|z| z.is_empty() || rel == z.as_str() || rel.ends_with(&format!(".{z}")))
        .max_by_key(|z| if z.is_empty() { 0 } else { z.split('.').count() })
}
