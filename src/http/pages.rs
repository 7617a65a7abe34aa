//! Setup pages already rendered for the settings being served, so a page costs one render per
//! (name, language) per reload, not one per request.
//!
//! Bounded: at [`CAPACITY`] pages the cache starts over, so 100k domains never means 100k pages
//! in memory (a page is 8–14 KB: the full cache stays under 60 MB). Pages for an address are not
//! cached: they hold the address. What those pages share, the DNS records as text (1–3 KB), is
//! kept per name, bounded the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::render::setup::Lang;
use crate::settings::Settings;

/// Most pages kept at once.
pub const CAPACITY: usize = 4096;

/// Rendered setup pages of one settings generation.
#[derive(Default)]
pub struct PageCache(Mutex<Inner>);

#[derive(Default)]
struct Inner {
    /// The settings the pages were rendered from (their address: unique while they are served).
    settings: usize,
    pages: HashMap<(String, Lang), Arc<[u8]>>,
    /// Name → its DNS records as zone-file text (`None`: the domain has none).
    records: HashMap<String, Option<Arc<str>>>,
}

fn id(settings: &Settings) -> usize {
    std::ptr::from_ref(settings) as usize
}

impl PageCache {
    /// An empty cache for `settings`.
    pub fn new(settings: &Settings) -> PageCache {
        let cache = PageCache::default();
        cache.reset(settings);
        cache
    }

    /// Forget every page: `settings` are served from now on (call on reload, before the swap
    /// is visible to requests, or right after: pages of other settings are never returned).
    pub fn reset(&self, settings: &Settings) {
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        inner.settings = id(settings);
        inner.pages = HashMap::new();
        inner.records = HashMap::new();
    }

    /// The DNS records text of `name` from `settings`: kept, or made now (outside the lock)
    /// and kept when `settings` are still the ones served.
    pub fn records_text(
        &self,
        settings: &Settings,
        name: &str,
        make: impl FnOnce() -> Option<String>,
    ) -> Option<Arc<str>> {
        {
            let inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if inner.settings == id(settings)
                && let Some(r) = inner.records.get(name)
            {
                return r.clone();
            }
        }
        let text: Option<Arc<str>> = make().map(Into::into);
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if inner.settings == id(settings) {
            if inner.records.len() >= CAPACITY {
                inner.records = HashMap::new();
            }
            inner.records.insert(name.to_string(), text.clone());
        }
        text
    }

    /// The page for `name` in `lang` rendered from `settings`: from the cache, or rendered now
    /// (outside the lock) and kept when `settings` are still the ones served.
    pub fn get_or_render(
        &self,
        settings: &Settings,
        name: &str,
        lang: Lang,
        render: impl FnOnce() -> Vec<u8>,
    ) -> Arc<[u8]> {
        let key = (name.to_string(), lang);
        {
            let inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if inner.settings == id(settings)
                && let Some(p) = inner.pages.get(&key)
            {
                return p.clone();
            }
        }
        let page: Arc<[u8]> = render().into();
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if inner.settings == id(settings) {
            if inner.pages.len() >= CAPACITY {
                inner.pages = HashMap::new();
            }
            inner.pages.insert(key, page.clone());
        }
        page
    }

    /// Pages held now.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::from_toml(
            "[provider.p]\ndisplay_name = \"P\"\n[[provider.p.server]]\nprotocol = \"imap\"\nhost = \"m.example.net\"\n\
             port = 993\nsecurity = \"tls\"\n[[provider.p.server]]\nprotocol = \"smtp\"\nhost = \"m.example.net\"\n\
             port = 465\nsecurity = \"tls\"\n",
            "t.toml",
        )
        .unwrap()
    }

    #[test]
    fn one_render_per_reload_and_bounded() {
        let (old, new) = (settings(), settings());
        let cache = PageCache::new(&old);
        let renders = std::cell::Cell::new(0);
        let render = |b: u8| {
            renders.set(renders.get() + 1);
            vec![b]
        };
        assert_eq!(&*cache.get_or_render(&old, "a.example", Lang::En, || render(1)), [1]);
        assert_eq!(&*cache.get_or_render(&old, "a.example", Lang::En, || render(9)), [1]);
        assert_eq!(&*cache.get_or_render(&old, "a.example", Lang::De, || render(2)), [2]);
        assert_eq!(renders.get(), 2);
        cache.reset(&new);
        assert!(cache.is_empty());
        // A request still holding the old settings gets its own page, and does not cache it.
        assert_eq!(&*cache.get_or_render(&old, "a.example", Lang::En, || render(3)), [3]);
        assert!(cache.is_empty());
        assert_eq!(&*cache.get_or_render(&new, "a.example", Lang::En, || render(4)), [4]);
        for i in 0..CAPACITY + 10 {
            cache.get_or_render(&new, &format!("d{i}.example"), Lang::En, Vec::new);
        }
        assert!(cache.len() <= CAPACITY);
    }

    #[test]
    fn records_text_once_per_name_and_reload() {
        let (old, new) = (settings(), settings());
        let cache = PageCache::new(&old);
        let made = std::cell::Cell::new(0);
        let make = |t: &str| {
            made.set(made.get() + 1);
            Some(t.to_string())
        };
        assert_eq!(
            cache.records_text(&old, "a.example", || make("A")).as_deref(),
            Some("A")
        );
        assert_eq!(
            cache.records_text(&old, "a.example", || make("B")).as_deref(),
            Some("A")
        );
        assert_eq!(cache.records_text(&old, "b.example", || None), None);
        assert_eq!(
            cache.records_text(&old, "b.example", || make("C")),
            None,
            "kept: no records"
        );
        assert_eq!(made.get(), 1);
        cache.reset(&new);
        assert_eq!(
            cache.records_text(&old, "a.example", || make("D")).as_deref(),
            Some("D")
        );
        assert_eq!(
            cache.records_text(&new, "a.example", || make("E")).as_deref(),
            Some("E")
        );
        assert_eq!(
            cache.records_text(&new, "a.example", || make("F")).as_deref(),
            Some("E")
        );
    }
}
