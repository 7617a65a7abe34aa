//! The TLS side: [`Acme`] picks each handshake's certificate (from memory, else read from the
//! cache directory before the handshake by [`Acme::preload`], or the one of before that still
//! covers its names), answers TLS-ALPN-01 challenges and tells the scheduler what handshakes
//! ask for; [`server_config`] puts it in the HTTPS listeners' configuration.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::mpsc;
use tracing::warn;

use super::index::{CERTIFIED, Index, NONE, REMOVED, WANTED};
use super::scheduler::{Msg, Scheduler};
use super::{bundle, cache, clock, order};
use crate::settings::AcmeSettings;

/// Cache files read at once for handshakes whose certificate is not in memory.
const LOADS: usize = 16;

/// Picks the certificate of the requested name; answers TLS-ALPN-01 challenges; orders.
pub struct Acme {
    pub(super) index: RwLock<Index>,
    certs: Mutex<cache::Lru>,
    pub(super) challenges: order::Challenges,
    settings: RwLock<Option<Arc<AcmeSettings>>>,
    scheduler: OnceLock<mpsc::UnboundedSender<Msg>>,
    /// Cache files being read for handshakes ([`Acme::preload`]).
    loads: tokio::sync::Semaphore,
}

impl Default for Acme {
    fn default() -> Acme {
        Acme {
            index: RwLock::default(),
            certs: Mutex::new(cache::Lru::new(4096)),
            challenges: order::Challenges::default(),
            settings: RwLock::new(None),
            scheduler: OnceLock::new(),
            loads: tokio::sync::Semaphore::new(LOADS),
        }
    }
}

impl fmt::Debug for Acme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acme").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Acme {
    /// Schedule a certificate for every group of names not already handled (looked up in the
    /// cache first). Called at start and after each reload.
    /// With `names_per_certificate` above 1 the groups are bundled first ([`bundle`]), and the
    /// bundles saved in `cache_dir`.
    pub fn ensure(self: &Arc<Self>, cfg: &Arc<AcmeSettings>, groups: Vec<Vec<String>>) {
        if let Err(e) = std::fs::create_dir_all(&cfg.cache_dir) {
            warn!(dir = %cfg.cache_dir.display(), error = %e, "cannot create the ACME cache directory");
        }
        let groups = if cfg.names_per_certificate > 1 {
            let path = cfg.cache_dir.join(bundle::FILE);
            let saved = std::fs::read_to_string(&path).unwrap_or_default();
            let (groups, text) = bundle::bundle(groups, cfg.names_per_certificate as usize, &saved);
            if text != saved
                && let Err(e) = cache::write(&path, text.as_bytes())
            {
                warn!(file = %path.display(), error = %e, "cannot save which domains share a certificate: a restart may order them again");
            }
            groups
        } else {
            groups
        };
        let first = self
            .settings
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(cfg.clone())
            .is_none();
        if first {
            *lock(&self.certs) = cache::Lru::new(cfg.cert_cache);
        }
        let (added, removed) = self.index.write().unwrap_or_else(|e| e.into_inner()).update(groups);
        let tx = self.scheduler.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(Scheduler::new(self.clone(), cfg.clone()).run(rx));
            tx
        });
        if !removed.is_empty() {
            let _ = tx.send(Msg::Remove(removed));
        }
        let _ = tx.send(Msg::Add(added, cfg.clone()));
    }

    /// The current certificate (chain and key) that covers `name`, to sign Apple profiles with.
    pub fn signing_cert(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let id = *self
            .index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_name
            .get(&name.to_ascii_lowercase())?;
        self.cert(id, false)
    }

    /// Certificate `id` from memory, else from the cache directory, never one past its
    /// notAfter; when it has none, ask the scheduler for it (`want`).
    fn cert(&self, id: u32, want: bool) -> Option<Arc<CertifiedKey>> {
        if let Some(c) = lock(&self.certs).get(id, clock::now()) {
            return Some(c);
        }
        let (names, status) = {
            let ix = self.index.read().unwrap_or_else(|e| e.into_inner());
            (
                ix.groups.get(id as usize)?.clone(),
                ix.status[id as usize].load(Ordering::Relaxed),
            )
        };
        let loaded = match status {
            NONE | WANTED | REMOVED => None,
            _ => {
                let cfg = self.settings.read().unwrap_or_else(|e| e.into_inner()).clone()?;
                let file = cache::cert_file(&cfg.cache_dir, &names, &cfg.directory);
                let read = match cache::read(&file) {
                    Ok(Some(pem)) => cache::load(&pem),
                    Ok(None) => Err(cache::Unusable::Gone),
                    Err(_) => Err(cache::Unusable::Unreadable),
                };
                match read {
                    Ok(loaded) => Some(loaded).filter(|(_, not_after)| *not_after > clock::now()),
                    // Not scanned yet: no certificate so far, asked for below.
                    Err(cache::Unusable::Gone) if status != CERTIFIED => None,
                    // Known (certified, or not yet scanned) and its file will not serve: never
                    // served, reported, and ordered again.
                    Err(why) => {
                        self.unusable(id, why);
                        return None;
                    }
                }
            }
        };
        match loaded {
            Some((key, not_after)) => {
                lock(&self.certs).insert(id, key.clone(), not_after);
                self.set_status(id, CERTIFIED);
                Some(key)
            }
            None => {
                if want {
                    self.want(id);
                }
                self.previous_cert(id)
            }
        }
    }

    /// The certificate of before for `id` (see [`Index::previous`]), from memory or the cache
    /// directory, while it is valid.
    fn previous_cert(&self, id: u32) -> Option<Arc<CertifiedKey>> {
        let (old, names) = {
            let ix = self.index.read().unwrap_or_else(|e| e.into_inner());
            let old = *ix.previous.get(&id)?;
            (old, ix.groups.get(old as usize)?.clone())
        };
        if let Some(c) = lock(&self.certs).get(old, clock::now()) {
            return Some(c);
        }
        let cfg = self.settings.read().unwrap_or_else(|e| e.into_inner()).clone()?;
        let pem = cache::read(&cache::cert_file(&cfg.cache_dir, &names, &cfg.directory)).ok()??;
        let (key, not_after) = cache::load(&pem).ok()?;
        if not_after <= clock::now() {
            return None;
        }
        lock(&self.certs).insert(old, key.clone(), not_after);
        Some(key)
    }

    /// Before a handshake for `name`: make sure its certificate is in memory, reading it from
    /// `cache_dir` on tokio's blocking pool (at most [`LOADS`] at once) when it is not, so that
    /// the handshake's resolver ([`ResolvesServerCert`]) never waits for the disk on a worker
    /// thread. The handshake waits for this read (within the handshake timeout).
    pub async fn preload(self: &Arc<Self>, name: &str) {
        let Some(id) = self
            .index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_name
            .get(&name.to_ascii_lowercase())
            .copied()
        else {
            return;
        };
        if self.cert_in_memory_only(id).is_some() {
            return;
        }
        let Ok(_permit) = self.loads.acquire().await else {
            return;
        };
        let acme = self.clone();
        let _ = tokio::task::spawn_blocking(move || acme.cert(id, true)).await;
    }

    /// The handshake's certificate for `id`, from memory only ([`Acme::preload`] read it): when
    /// there is none and the cache has none either, the scheduler is asked for it.
    fn cert_in_memory(&self, id: u32) -> Option<Arc<CertifiedKey>> {
        if let Some(c) = self.cert_in_memory_only(id) {
            return Some(c);
        }
        let status = {
            let ix = self.index.read().unwrap_or_else(|e| e.into_inner());
            ix.status.get(id as usize)?.load(Ordering::Relaxed)
        };
        if status == NONE {
            self.want(id);
        }
        None
    }

    /// Certificate `id`, or the one of before that still covers its names, if in memory.
    fn cert_in_memory_only(&self, id: u32) -> Option<Arc<CertifiedKey>> {
        let now = clock::now();
        if let Some(c) = lock(&self.certs).get(id, now) {
            return Some(c);
        }
        let old = *self.index.read().unwrap_or_else(|e| e.into_inner()).previous.get(&id)?;
        lock(&self.certs).get(old, now)
    }

    fn set_status(&self, id: u32, s: u8) {
        let ix = self.index.read().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = ix.status.get(id as usize) {
            a.store(s, Ordering::Relaxed);
        }
    }

    /// Tell the scheduler once that a handshake wants certificate `id`.
    fn want(&self, id: u32) {
        let before = {
            let ix = self.index.read().unwrap_or_else(|e| e.into_inner());
            let s = &ix.status[id as usize];
            s.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                (v != REMOVED).then_some(WANTED)
            })
            .unwrap_or(REMOVED)
        };
        if before != WANTED
            && before != REMOVED
            && let Some(tx) = self.scheduler.get()
        {
            let _ = tx.send(Msg::Wanted(id));
        }
    }

    /// Tell the scheduler once that the cache file of certificate `id` cannot be served.
    fn unusable(&self, id: u32, why: cache::Unusable) {
        let before = {
            let ix = self.index.read().unwrap_or_else(|e| e.into_inner());
            ix.status[id as usize]
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    (v != REMOVED && v != WANTED).then_some(WANTED)
                })
                .is_ok()
        };
        if before && let Some(tx) = self.scheduler.get() {
            let _ = tx.send(Msg::Unusable(id, why));
        }
    }

    /// A new certificate for `id`: into memory (and the handshake path knows it has one).
    pub(super) fn deployed(&self, id: u32, key: Arc<CertifiedKey>, not_after: i64) {
        lock(&self.certs).insert(id, key, not_after);
        self.set_status(id, CERTIFIED);
        self.index
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .previous
            .remove(&id);
    }

    pub(super) fn names(&self, id: u32) -> Arc<[String]> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).groups[id as usize].clone()
    }
}

impl ResolvesServerCert for Acme {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?.to_ascii_lowercase();
        if rustls_acme::is_tls_alpn_challenge(&hello) {
            return lock(&self.challenges).get(&name).cloned();
        }
        // Only configured names: anything else gets no certificate and orders nothing.
        let id = *self
            .index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_name
            .get(&name)?;
        self.cert_in_memory(id)
    }
}

/// The server configuration for HTTPS listeners: ALPN offers the challenge protocol too, and a
/// connection that negotiated it is a validation, not a client (the caller closes it).
pub fn server_config(acme: Arc<Acme>) -> Arc<rustls::ServerConfig> {
    let mut cfg = crate::http::finish_tls(crate::http::server_tls().with_no_client_auth().with_cert_resolver(acme));
    cfg.alpn_protocols.push(rustls_acme::acme::ACME_TLS_ALPN_NAME.to_vec());
    Arc::new(cfg)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::acme::index::tests::group;

    #[tokio::test]
    async fn the_resolver_never_reads_the_disk_the_preload_does() {
        let dir = std::env::temp_dir().join(format!("mailconf-acme-preload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = Arc::new(AcmeSettings {
            directory: "https://ca.test/dir".to_string(),
            contact: vec![],
            cache_dir: dir.clone(),
            ca_roots: vec![],
            ca_roots_file: None,
            extra_names: vec![],
            orders_per_3h: 300,
            retry_after: Duration::from_secs(300),
            cert_cache: 16,
            certs_per_registered_domain_7d: 50,
            challenge: Default::default(),
            names_per_certificate: 1,
        });
        let acme = Arc::new(Acme::default());
        *acme.settings.write().unwrap() = Some(cfg.clone());
        acme.index
            .write()
            .unwrap()
            .update(vec![group("a.test"), group("b.test")]);
        let key = rcgen13::KeyPair::generate_for(&rcgen13::PKCS_ECDSA_P256_SHA256).unwrap();
        let c = rcgen13::CertificateParams::new(group("a.test"))
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = format!("{}\n{}\n", key.serialize_pem(), c.pem());
        cache::write(
            &cache::cert_file(&dir, &group("a.test"), &cfg.directory),
            pem.as_bytes(),
        )
        .unwrap();
        // On disk, not in memory: the resolver's lookup does not read it.
        assert!(acme.cert_in_memory(0).is_none());
        acme.preload("AUTOCONFIG.a.test").await;
        assert!(acme.cert_in_memory(0).is_some(), "read by the preload");
        assert_eq!(acme.index.read().unwrap().status[0].load(Ordering::Relaxed), CERTIFIED);
        // b.test has none: the preload finds none, and the handshake wants one.
        acme.preload("autodiscover.b.test").await;
        assert!(acme.cert_in_memory(1).is_none());
        assert_eq!(acme.index.read().unwrap().status[1].load(Ordering::Relaxed), WANTED);
        // Not configured: nothing read, nothing wanted.
        acme.preload("autoconfig.elsewhere.test").await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
