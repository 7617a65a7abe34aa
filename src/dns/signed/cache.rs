//! The bounded cache of signed views (see `signed`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;

use super::View;

/// Signed views by zone origin, bounded: two generations of at most `cap / 2` views each.
pub(crate) struct Cache<V = View> {
    cap: AtomicUsize,
    gens: Mutex<[Generation<V>; 2]>,
}

type Generation<V> = FxHashMap<Box<[u8]>, Arc<V>>;

/// Views kept at most before the settings say how many (`auto_size`, `dnssec_cache_zones`).
pub(crate) const CACHE_VIEWS: usize = 8192;

/// Memory of a typical signed view, fully signed: 9.2 KB of heap (measured by a test in
/// `signed::tests`, which fails when views outgrow this) plus the allocator's overhead on its
/// ~150 small allocations.
pub(crate) const VIEW_BYTES: usize = 12 * 1024;

/// Memory the cache takes at most unless `dnssec_cache_zones` says otherwise.
pub(crate) const AUTO_BYTES: usize = 16 << 20;

/// The cache size for `signed_zones` signed zones: room for every one of them (twice the
/// count: with two generations, a cache of 2 × N views never evicts among N zones), but no
/// more than [`AUTO_BYTES`] of views (1,365 views of [`VIEW_BYTES`]); at least 2. Positive
/// answers need a view only until their RRSIGs are in the RRSIG cache (`Sigs`).
pub(crate) fn auto_size(signed_zones: usize) -> usize {
    (2 * signed_zones).clamp(2, AUTO_BYTES / VIEW_BYTES)
}

impl<V> Default for Cache<V> {
    fn default() -> Cache<V> {
        Cache::new(CACHE_VIEWS)
    }
}

impl<V> Cache<V> {
    pub fn new(cap: usize) -> Cache<V> {
        Cache {
            cap: AtomicUsize::new(cap.max(2)),
            gens: Mutex::new([FxHashMap::default(), FxHashMap::default()]),
        }
    }

    /// The view of `origin` if `ok` accepts it.
    pub fn get(&self, origin: &[u8], ok: impl Fn(&V) -> bool) -> Option<Arc<V>> {
        let mut g = self.gens.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = g[0].get(origin).filter(|v| ok(v)) {
            return Some(v.clone());
        }
        let v = g[1].remove(origin).filter(|v| ok(v))?;
        self.insert_locked(&mut g, origin, v.clone());
        Some(v)
    }

    /// Keep at most `cap` views from now on (a reload may change it).
    pub fn set_capacity(&self, cap: usize) {
        self.cap.store(cap.max(2), Ordering::Relaxed);
    }

    pub fn capacity(&self) -> usize {
        self.cap.load(Ordering::Relaxed)
    }

    pub fn insert(&self, origin: &[u8], view: Arc<V>) {
        let mut g = self.gens.lock().unwrap_or_else(|e| e.into_inner());
        self.insert_locked(&mut g, origin, view);
    }

    fn insert_locked(&self, g: &mut [Generation<V>; 2], origin: &[u8], view: Arc<V>) {
        if g[0].len() >= self.capacity() / 2 && !g[0].contains_key(origin) {
            g[1] = std::mem::take(&mut g[0]);
        }
        g[0].insert(origin.into(), view);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_is_bounded_keeps_what_is_used_and_drops_what_is_not_current() {
        let c: Cache<u32> = Cache::new(4);
        for i in 0..100u32 {
            c.insert(&i.to_be_bytes(), Arc::new(i));
            // The zone asked all along stays.
            assert_eq!(c.get(&0u32.to_be_bytes(), |_| true).as_deref(), Some(&0));
        }
        let g = c.gens.lock().unwrap();
        assert!(g[0].len() + g[1].len() <= 4, "bounded");
        drop(g);
        assert!(c.get(&50u32.to_be_bytes(), |_| true).is_none(), "evicted");
        assert_eq!(c.get(&99u32.to_be_bytes(), |_| true).as_deref(), Some(&99));
        // A view that is no longer current (other serial, content, or past refresh) is not served.
        assert!(c.get(&99u32.to_be_bytes(), |v| *v != 99).is_none());
    }

    #[test]
    fn a_cache_twice_the_zone_count_never_evicts_and_auto_size_is_bounded() {
        let c: Cache<u32> = Cache::new(CACHE_VIEWS);
        c.set_capacity(2 * 1000);
        for round in 0..3 {
            for i in 0..1000u32 {
                if c.get(&i.to_be_bytes(), |_| true).is_none() {
                    assert_eq!(round, 0, "zone {i} evicted");
                    c.insert(&i.to_be_bytes(), Arc::new(i));
                }
            }
        }
        assert_eq!(auto_size(500), 1000);
        assert_eq!(auto_size(0), 2);
        assert_eq!(auto_size(130_000), 1_365, "16 MiB of 12 KiB views");
    }
}
