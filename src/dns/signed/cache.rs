//! The bounded cache of signed views (see `signed`).

use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;

use super::View;

/// Signed views by zone origin, bounded: two generations of at most `cap / 2` views each.
pub(crate) struct Cache<V = View> {
    cap: usize,
    gens: Mutex<[Generation<V>; 2]>,
}

type Generation<V> = FxHashMap<Box<[u8]>, Arc<V>>;

/// Views kept at most. A view of a typical zone is a few kilobytes once signed.
pub(crate) const CACHE_VIEWS: usize = 8192;

impl<V> Default for Cache<V> {
    fn default() -> Cache<V> {
        Cache::new(CACHE_VIEWS)
    }
}

impl<V> Cache<V> {
    pub fn new(cap: usize) -> Cache<V> {
        Cache {
            cap: cap.max(2),
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

    pub fn insert(&self, origin: &[u8], view: Arc<V>) {
        let mut g = self.gens.lock().unwrap_or_else(|e| e.into_inner());
        self.insert_locked(&mut g, origin, view);
    }

    fn insert_locked(&self, g: &mut [Generation<V>; 2], origin: &[u8], view: Arc<V>) {
        if g[0].len() >= self.cap / 2 && !g[0].contains_key(origin) {
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
}
