//! Several domains per certificate (`names_per_certificate = N`): fewer orders, at a price —
//! everyone who reads one of the certificates learns every name on it.
//!
//! A certificate's names are the names of up to N mail domains (each domain's web hosts,
//! [`super::names_for`]), at most [`MAX_NAMES`] names in all. Which domains share a certificate
//! is kept in `cache_dir` ([`FILE`], one line per certificate: its domains' first names), so a
//! reload or restart that adds or removes a domain does not reshuffle the others (each
//! reshuffled certificate would be a new order): kept certificates keep their domains (less any
//! removed), new domains fill new certificates in settings order. Pure: the caller reads and
//! writes the file. About 30 bytes per domain in the file; nothing more in memory than the
//! names themselves.

use std::collections::{HashMap, HashSet};

/// The file in `cache_dir` that keeps which domains share a certificate.
pub const FILE: &str = "bundles";

/// Let's Encrypt's limit of names per certificate.
pub const MAX_NAMES: usize = 100;

/// The certificates for `groups` (one per mail domain name, its names first name first), up to
/// `per_certificate` groups and [`MAX_NAMES`] names each, keeping the sharing `saved` recorded;
/// and the text to save. With `per_certificate` 1, every group alone (and nothing to save).
pub fn bundle(groups: Vec<Vec<String>>, per_certificate: usize, saved: &str) -> (Vec<Vec<String>>, String) {
    if per_certificate <= 1 {
        return (groups, String::new());
    }
    let key = |g: &[String]| g.first().map(|n| n.to_ascii_lowercase()).unwrap_or_default();
    let by_key: HashMap<String, usize> = groups.iter().enumerate().map(|(i, g)| (key(g), i)).collect();
    let mut used = vec![false; groups.len()];
    let mut bundles: Vec<Vec<usize>> = Vec::new();
    let fits = |b: &[usize], next: usize| {
        b.len() < per_certificate && b.iter().map(|&i| groups[i].len()).sum::<usize>() + groups[next].len() <= MAX_NAMES
    };
    let push = |bundles: &mut Vec<Vec<usize>>, start_new: bool, i: usize| match bundles.last_mut() {
        Some(b) if !start_new && fits(b, i) => b.push(i),
        _ => bundles.push(vec![i]),
    };
    for line in saved.lines() {
        let mut first = true;
        let mut seen = HashSet::new();
        for k in line.split_whitespace() {
            let Some(&i) = by_key.get(k) else { continue };
            if used[i] || !seen.insert(i) {
                continue;
            }
            used[i] = true;
            push(&mut bundles, first, i);
            first = false;
        }
    }
    let mut first = true;
    for (i, _) in used.iter().enumerate().filter(|(_, u)| !**u) {
        push(&mut bundles, first, i);
        first = false;
    }
    let text: String = bundles
        .iter()
        .map(|b| {
            let keys: Vec<String> = b.iter().map(|&i| key(&groups[i])).collect();
            format!("{}\n", keys.join(" "))
        })
        .collect();
    let mut groups: Vec<Option<Vec<String>>> = groups.into_iter().map(Some).collect();
    let out = bundles
        .iter()
        .map(|b| b.iter().flat_map(|&i| groups[i].take().unwrap_or_default()).collect())
        .collect();
    (out, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(d: &str) -> Vec<String> {
        vec![format!("autoconfig.{d}"), format!("autodiscover.{d}")]
    }

    fn domains(n: usize) -> Vec<Vec<String>> {
        (0..n).map(|i| group(&format!("d{i}.test"))).collect()
    }

    #[test]
    fn one_per_certificate_is_every_domain_alone() {
        let (b, text) = bundle(domains(3), 1, "garbage");
        assert_eq!(b, domains(3));
        assert!(text.is_empty());
    }

    #[test]
    fn three_per_certificate_then_a_reload_keeps_the_sharing() {
        let (b, text) = bundle(domains(5), 3, "");
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].len(), 6);
        assert_eq!(b[1], [group("d3.test"), group("d4.test")].concat());
        assert_eq!(text.lines().count(), 2);
        // d1 removed, d5 and d6 added before the others in settings order: the kept
        // certificates keep their domains (d0 d2, d3 d4), the new ones get their own.
        let mut now = vec![group("d5.test"), group("d6.test"), group("d0.test")];
        now.extend([group("d2.test"), group("d3.test"), group("d4.test")]);
        let (b2, text2) = bundle(now, 3, &text);
        assert_eq!(
            b2,
            vec![
                [group("d0.test"), group("d2.test")].concat(),
                [group("d3.test"), group("d4.test")].concat(),
                [group("d5.test"), group("d6.test")].concat(),
            ]
        );
        // Read back: the same.
        let again = bundle(domains(7), 3, &text2).0;
        assert_eq!(again[0], [group("d0.test"), group("d2.test")].concat());
        assert_eq!(again[3], group("d1.test"), "d1 is back: a certificate of its own");
    }

    #[test]
    fn never_more_than_the_setting_or_a_hundred_names() {
        let (b, text) = bundle(domains(10), 3, "");
        assert_eq!(b.len(), 4);
        // Fewer per certificate now: kept certificates are split.
        let (b, _) = bundle(domains(10), 2, &text);
        assert!(b.iter().all(|c| c.len() <= 4), "{b:?}");
        assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 20);
        // 60 domains of 2 names, 100 per certificate: 50 domains (100 names), then 10.
        let (b, _) = bundle(domains(60), 100, "");
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [100, 20]);
    }
}
