//! Setup pages already rendered for the settings being served, as [`Template`]s: a page costs one
//! render per (name, language) per reload, not one per request; a page for an address costs the
//! rendering of its address-dependent spots (user names, links, the QR code) around the kept text.
//!
//! Bounded: at [`CAPACITY`] templates the cache starts over, so 100k domains never means 100k
//! pages in memory (a template is the size of its address-less page, 8–14 KB: the full cache
//! stays under 60 MB). Nothing of an address is kept. The DNS records as text (1–3 KB, part of
//! every page of a name) are kept per name, bounded the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::render::setup::{Lang, Template};
use crate::settings::Settings;

/// Most templates kept at once.
pub const CAPACITY: usize = 4096;

/// Rendered setup page templates of one settings generation.
#[derive(Default)]
pub struct PageCache(Mutex<Inner>);

#[derive(Default)]
struct Inner {
    /// The settings the pages were rendered from (their address: unique while they are served).
    settings: usize,
    /// `None`: this page has no template (see [`crate::render::setup::template`]).
    pages: HashMap<(String, Lang), Option<Arc<Template>>>,
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

    /// The template for `name` in `lang` rendered from `settings`: from the cache, or rendered
    /// now (outside the lock) and kept when `settings` are still the ones served.
    pub fn get_or_render(
        &self,
        settings: &Settings,
        name: &str,
        lang: Lang,
        render: impl FnOnce() -> Option<Template>,
    ) -> Option<Arc<Template>> {
        let key = (name.to_string(), lang);
        {
            let inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if inner.settings == id(settings)
                && let Some(p) = inner.pages.get(&key)
            {
                return p.clone();
            }
        }
        let page = render().map(Arc::new);
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if inner.settings == id(settings) {
            if inner.pages.len() >= CAPACITY {
                inner.pages = HashMap::new();
            }
            inner.pages.insert(key, page.clone());
        }
        page
    }

    /// Templates held now.
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
        let render = |b: &str| {
            renders.set(renders.get() + 1);
            Some(Template::text(Lang::En, b))
        };
        let get = |s: &Settings, name: &str, lang: Lang, r: &dyn Fn() -> Option<Template>| {
            cache.get_or_render(s, name, lang, r).map(|t| t.text_of())
        };
        assert_eq!(get(&old, "a.example", Lang::En, &|| render("1")).as_deref(), Some("1"));
        assert_eq!(get(&old, "a.example", Lang::En, &|| render("9")).as_deref(), Some("1"));
        assert_eq!(get(&old, "a.example", Lang::De, &|| render("2")).as_deref(), Some("2"));
        assert_eq!(get(&old, "b.example", Lang::En, &|| None), None);
        assert_eq!(
            get(&old, "b.example", Lang::En, &|| render("x")),
            None,
            "kept: no template"
        );
        assert_eq!(renders.get(), 2);
        cache.reset(&new);
        assert!(cache.is_empty());
        // A request still holding the old settings gets its own page, and does not cache it.
        assert_eq!(get(&old, "a.example", Lang::En, &|| render("3")).as_deref(), Some("3"));
        assert!(cache.is_empty());
        assert_eq!(get(&new, "a.example", Lang::En, &|| render("4")).as_deref(), Some("4"));
        for i in 0..CAPACITY + 10 {
            cache.get_or_render(&new, &format!("d{i}.example"), Lang::En, || None);
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
