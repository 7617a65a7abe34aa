//! The CA's limit per registered domain: Let's Encrypt issues at most 50 new certificates per
//! registered domain (the name under a public suffix: `example.co.uk` for
//! `autoconfig.example.co.uk`) per 7 days, a token bucket refilled continuously (one every
//! 202 minutes); renewals of the same names are exempt. One [`Budget`] per registered domain
//! that has spent some of it; a bucket that has refilled is dropped, so the map holds only
//! domains with certificates in the last 7 days. Saved to `cache_dir` after every change, one
//! line per domain (`example.net 2.000 1796188860`). Pure: the caller passes the time.

use std::collections::{HashMap, HashSet};

use super::budget::Budget;

/// The bucket refills its whole capacity over this many seconds.
pub const WINDOW: f64 = 7.0 * 86_400.0;

/// The file in `cache_dir` that keeps the buckets across restarts.
pub const FILE: &str = "domain-budget";

/// The registered domain of `name` by the public suffix list (the compiled-in list of the
/// `psl` crate; a name under an unlisted top-level domain counts that TLD as the suffix).
/// A name that is itself a public suffix counts as its own registered domain.
pub fn registered(name: &str) -> String {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    psl::domain_str(&name).unwrap_or(&name).to_string()
}

/// The registered domains of a certificate's names, each once.
pub fn of_names(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = names.iter().map(|n| registered(n)).collect();
    out.sort();
    out.dedup();
    out
}

pub struct DomainBudgets {
    capacity: u32,
    buckets: HashMap<String, Budget>,
    /// Domains whose used-up budget was logged (once until they order again).
    logged: HashSet<String>,
}

impl DomainBudgets {
    pub fn new(capacity: u32) -> DomainBudgets {
        DomainBudgets {
            capacity,
            buckets: HashMap::new(),
            logged: HashSet::new(),
        }
    }

    /// The buckets as saved by [`DomainBudgets::to_text`]; unreadable lines are skipped.
    pub fn from_text(capacity: u32, text: &str) -> DomainBudgets {
        let mut b = DomainBudgets::new(capacity);
        for line in text.lines() {
            if let Some((domain, rest)) = line.split_once(' ')
                && !domain.is_empty()
            {
                b.buckets.insert(domain.to_string(), b.empty().restored(rest));
            }
        }
        b
    }

    /// The buckets not yet refilled at `now`, one line each (refilled ones are dropped).
    pub fn to_text(&mut self, now: i64) -> String {
        self.buckets.retain(|_, b| !b.is_full(now as f64));
        let mut lines: Vec<String> = self
            .buckets
            .iter()
            .map(|(d, b)| format!("{d} {}", b.to_text()))
            .collect();
        lines.sort();
        lines.concat()
    }

    pub fn set_capacity(&mut self, capacity: u32) {
        self.capacity = capacity;
        for b in self.buckets.values_mut() {
            b.set_capacity(capacity);
        }
    }

    fn empty(&self) -> Budget {
        Budget::with_window(self.capacity, WINDOW)
    }

    /// When every one of `domains` allows a new certificate: `now` if they do.
    pub fn next_at(&self, domains: &[String], now: i64) -> i64 {
        domains
            .iter()
            .filter_map(|d| self.buckets.get(d))
            .map(|b| b.next_at(now as f64).ceil() as i64)
            .fold(now, i64::max)
    }

    /// Take one certificate from each of `domains` if all allow one now.
    pub fn take(&mut self, domains: &[String], now: i64) -> bool {
        if self.next_at(domains, now) > now {
            return false;
        }
        for d in domains {
            let empty = self.empty();
            let taken = self.buckets.entry(d.clone()).or_insert(empty).take(now as f64);
            debug_assert!(taken);
            self.logged.remove(d);
        }
        true
    }

    /// Give back what [`DomainBudgets::take`] took: the order gave no certificate.
    pub fn refund(&mut self, domains: &[String], now: i64) {
        for d in domains {
            if let Some(b) = self.buckets.get_mut(d) {
                b.refund(now as f64);
            }
        }
    }

    /// Certificates `domain` may still have now.
    pub fn available(&self, domain: &str, now: i64) -> f64 {
        self.buckets
            .get(domain)
            .map_or(f64::from(self.capacity), |b| b.available(now as f64))
    }

    /// True the first time `domain` is held back since it last ordered (to log it once).
    pub fn first_hold(&mut self, domain: &str) -> bool {
        self.logged.insert(domain.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_domains_by_the_public_suffix_list() {
        assert_eq!(registered("autoconfig.Example.co.uk."), "example.co.uk");
        assert_eq!(registered("mta-sts.a.b.example.com"), "example.com");
        // Not in the list: the last label is taken as the suffix.
        assert_eq!(registered("autoconfig.d01.scale.test"), "scale.test");
        // A name on a hosting suffix is its own registered domain.
        assert_eq!(registered("autoconfig.alice.github.io"), "alice.github.io");
        assert_eq!(registered("co.uk"), "co.uk");
        let names = [
            "autoconfig.x.example.com".to_string(),
            "autodiscover.x.example.com".to_string(),
        ];
        assert_eq!(of_names(&names), ["example.com"]);
    }

    #[test]
    fn fifty_per_domain_per_week_then_one_per_202_minutes() {
        let mut b = DomainBudgets::new(50);
        let a = vec!["a.test".to_string()];
        let other = vec!["b.test".to_string()];
        let t0 = 1_000_000;
        assert_eq!((0..100).filter(|_| b.take(&a, t0)).count(), 50);
        assert!(b.take(&other, t0), "another registered domain has its own budget");
        assert!(b.next_at(&a, t0) > t0 + 201 * 60 && b.next_at(&a, t0) <= t0 + 202 * 60);
        assert!(!b.take(&a, t0 + 200 * 60));
        assert!(b.take(&a, t0 + 202 * 60));
        // Both domains at once: neither is taken when one is used up.
        let both = vec!["a.test".to_string(), "b.test".to_string()];
        assert!(!b.take(&both, t0 + 202 * 60));
        assert!(
            (b.available("b.test", t0 + 202 * 60) - 50.0).abs() < 1e-6,
            "b.test's one certificate refilled"
        );
        b.refund(&a, t0 + 202 * 60);
        assert!(b.take(&a, t0 + 202 * 60), "a refund gives it back");
    }

    #[test]
    fn saved_across_restarts_and_refilled_domains_are_dropped() {
        let mut b = DomainBudgets::new(3);
        let a = vec!["a.test".to_string()];
        let c = vec!["c.test".to_string()];
        for _ in 0..3 {
            assert!(b.take(&a, 5000));
        }
        assert!(b.take(&c, 5000));
        let text = b.to_text(5000);
        assert_eq!(text.lines().count(), 2, "{text}");
        let mut back = DomainBudgets::from_text(3, &text);
        assert!(!back.take(&a, 5000), "a restart does not refill");
        assert!(back.take(&c, 5000));
        // A week later every bucket is full again and nothing is kept.
        assert_eq!(back.to_text(5000 + 7 * 86_400), "");
        assert!(DomainBudgets::from_text(3, "garbage\n\n x").take(&a, 0));
    }
}
