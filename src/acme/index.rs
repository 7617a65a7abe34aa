//! Which certificates there are: the names of each, from the settings ([`names_for`]), and the
//! [`Index`] the handshake path looks names up in, with what it knows of each certificate.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::settings::Settings;
use crate::vocab;

/// The names of one certificate: the web hosts of one mail domain.
pub fn names_for(settings: &Settings) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = settings
        .domains
        .iter()
        .flat_map(|d| {
            d.names().map(move |n| {
                vocab::web_labels(d.mta_sts.is_some(), d.provider.pacc)
                    .map(|l| vocab::web_host(l, n))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    if let Some(a) = &settings.server.acme {
        out.extend(a.extra_names.iter().map(|n| vec![n.clone()]));
    }
    out
}

// What a handshake knows of a certificate (one byte each).
pub(super) const UNKNOWN: u8 = 0;
pub(super) const NONE: u8 = 1;
pub(super) const WANTED: u8 = 2;
pub(super) const CERTIFIED: u8 = 3;
/// No longer configured: never ordered again.
pub(super) const REMOVED: u8 = 4;

/// Every configured certificate: its names and what the handshake path knows of it.
#[derive(Default)]
pub(super) struct Index {
    pub(super) by_name: HashMap<String, u32>,
    pub(super) groups: Vec<Arc<[String]>>,
    pub(super) status: Vec<AtomicU8>,
    /// A certificate whose names a reload made fewer (a domain left a certificate shared with
    /// others, `names_per_certificate`) → the certificate of before, which still covers them:
    /// served until the new one is issued. Only while that lasts.
    pub(super) previous: HashMap<u32, u32>,
}

impl Index {
    /// Make the index hold exactly `groups`: new groups get new numbers, groups no longer
    /// configured are dropped (their names answer nothing). Returns (added, removed).
    pub(super) fn update(&mut self, groups: Vec<Vec<String>>) -> (Vec<u32>, Vec<u32>) {
        let mut live = vec![false; self.groups.len()];
        let mut added = Vec::new();
        for names in groups {
            let names: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
            let known = names
                .first()
                .and_then(|n| self.by_name.get(n))
                .filter(|&&id| *self.groups[id as usize] == *names);
            if let Some(&id) = known {
                live[id as usize] = true;
                continue;
            }
            let id = self.groups.len() as u32;
            let superset = names
                .iter()
                .find_map(|n| self.by_name.get(n).copied())
                .filter(|&old| names.iter().all(|n| self.groups[old as usize].contains(n)));
            if let Some(old) = superset {
                self.previous
                    .insert(id, self.previous.get(&old).copied().unwrap_or(old));
            }
            for n in &names {
                self.by_name.insert(n.clone(), id);
            }
            self.groups.push(names.into());
            self.status.push(AtomicU8::new(UNKNOWN));
            added.push(id);
        }
        let mut removed = Vec::new();
        for (id, live) in live.into_iter().enumerate() {
            if live || self.status[id].load(Ordering::Relaxed) == REMOVED {
                continue;
            }
            self.status[id].store(REMOVED, Ordering::Relaxed);
            for n in self.groups[id].iter() {
                if self.by_name.get(n) == Some(&(id as u32)) {
                    self.by_name.remove(n);
                }
            }
            removed.push(id as u32);
        }
        (added, removed)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The names of one mail domain's certificate (without MTA-STS).
    pub(in crate::acme) fn group(d: &str) -> Vec<String> {
        vec![format!("autoconfig.{d}"), format!("autodiscover.{d}")]
    }

    #[test]
    fn the_index_follows_reloads_and_forgets_removed_domains() {
        let mut ix = Index::default();
        assert_eq!(ix.update(vec![group("a.test"), group("B.test")]), (vec![0, 1], vec![]));
        assert_eq!(ix.by_name.get("autodiscover.b.test"), Some(&1), "lower case");
        // Unchanged: nothing added or removed.
        assert_eq!(ix.update(vec![group("a.test"), group("b.test")]), (vec![], vec![]));
        // b.test gone, c.test new, a.test gains a name (MTA-STS): a new certificate for it.
        let mut a = group("a.test");
        a.push("mta-sts.a.test".into());
        assert_eq!(ix.update(vec![a, group("c.test")]), (vec![2, 3], vec![0, 1]));
        assert_eq!(ix.by_name.get("autoconfig.b.test"), None);
        assert_eq!(ix.by_name.get("autoconfig.a.test"), Some(&2));
        assert_eq!(ix.status[1].load(Ordering::Relaxed), REMOVED);
        assert!(
            ix.previous.is_empty(),
            "a.test's new certificate has more names: nothing to keep"
        );
        // Removed once; b.test back: a new number, looked up in the cache again.
        assert_eq!(ix.update(vec![group("b.test")]), (vec![4], vec![2, 3]));
        assert_eq!(ix.by_name.len(), 2);
        // A certificate shared by d1–d3 loses d2: the certificate for d1 and d3 keeps the one
        // of before (it still covers their names) until issued.
        let mut ix = Index::default();
        let shared = [group("d1.test"), group("d2.test"), group("d3.test")].concat();
        assert_eq!(ix.update(vec![shared]), (vec![0], vec![]));
        let fewer = [group("d1.test"), group("d3.test")].concat();
        assert_eq!(ix.update(vec![fewer]), (vec![1], vec![0]));
        assert_eq!(ix.previous.get(&1), Some(&0));
        assert_eq!(ix.by_name.get("autoconfig.d2.test"), None);
        // Fewer again before it was issued: still the first one.
        assert_eq!(ix.update(vec![group("d1.test")]), (vec![2], vec![1]));
        assert_eq!(ix.previous.get(&2), Some(&0));
    }
}
