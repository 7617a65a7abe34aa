//! One copy of each value that many domains write alike.
//!
//! A hosting provider's domains mostly repeat each other: the same name servers, MX hosts,
//! SPF record, web addresses and secondaries. Validation hands each domain the shared copy,
//! so at 100,000 domains a domain costs its own name and what is really its own (a DMARC
//! report address), not a dozen small allocations. One interner lives for one parse; the
//! values live as long as a domain uses them.

use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashSet;

use super::MxHost;

/// Shared values of one kind. FxHash: the values come from the operator's own file, and
/// SipHash was a visible part of `check` at 100k domains.
pub(super) struct Pool<T: ?Sized>(Mutex<FxHashSet<Arc<T>>>);

impl<T: ?Sized> Default for Pool<T> {
    fn default() -> Self {
        Pool(Mutex::new(FxHashSet::default()))
    }
}

impl<T: ?Sized + Hash + Eq> Pool<T> {
    /// The shared copy of `value`, made on first sight.
    pub(super) fn get(&self, value: &T) -> Arc<T>
    where
        for<'a> Arc<T>: From<&'a T>,
    {
        let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = set.get(value) {
            return v.clone();
        }
        let v: Arc<T> = Arc::from(value);
        set.insert(v.clone());
        v
    }
}

/// The pools of one parse, shared by the threads that check domains.
#[derive(Default)]
pub(super) struct Interner {
    pub strs: Pool<str>,
    pub names: Pool<[String]>,
    pub ips: Pool<[IpAddr]>,
    pub mx: Pool<[MxHost]>,
    pub addrs: Pool<[SocketAddr]>,
    pub hosts: Pool<[(String, Vec<IpAddr>)]>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_copy() {
        let i = Interner::default();
        let a = i.names.get(&["ns1.example.".to_string(), "ns2.example.".to_string()]);
        let b = i.names.get(&["ns1.example.".to_string(), "ns2.example.".to_string()]);
        let c = i.names.get(&["ns1.example.".to_string()]);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert!(Arc::ptr_eq(&i.strs.get("v=spf1 -all"), &i.strs.get("v=spf1 -all")));
    }
}
