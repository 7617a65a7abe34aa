//! Certificates from an ACME CA (RFC 8555) with the TLS-ALPN-01 challenge, or DNS-01 from our
//! own zones ([`dns01`]), for a hosting provider's many domains.
//!
//! One certificate per mail domain (its `autoconfig.`, `autodiscover.` and, with MTA-STS,
//! `mta-sts.` names): one failing domain never blocks the others, and CAs cap names per
//! certificate; `names_per_certificate` puts several domains on one ([`bundle`]). Renewals
//! follow the CA's renewal windows where it offers them ([`ari`]), else two thirds of the
//! lifetime. One scheduler task orders them all through rustls-acme's low-level client,
//! within the CA's new-order budget ([`budget`], `orders_per_3h`), a few at a time, in the order
//! [`queue`] keeps: names a TLS handshake asked for first (on demand), then due renewals, then
//! new domains in settings order. Failed orders wait with backoff; a CA that rate-limits or is
//! unreachable pauses every order. Certificates live in `cache_dir` ([`cache`]): at start each
//! one's validity is read (not its key), and a handshake loads the key into a bounded
//! in-memory cache, so memory does not grow with the number of certificates on disk. A file cut
//! or holding another key is never served: reported (by the scan, or by the handshake that loads
//! it) and ordered next. Every exchange with the CA gives up after 30 s ([`order::ca`]); the
//! account is made in a task of its own, so a CA that does not answer holds up nothing else.
//!
//! A handshake for a configured name without a certificate fails at once (no certificate is
//! offered) and moves that name to the front of the queue: an order takes seconds to minutes,
//! longer than clients wait, and may be held back by the budget; Thunderbird falls back to
//! plain HTTP, which mailconf answers. Names that are not configured order nothing.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_acme::acme::{Account, Directory};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::settings::{AcmeSettings, Settings};
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

pub mod ari;
pub mod budget;
pub mod bundle;
pub mod cache;
pub mod clock;
pub mod dns01;
pub mod domains;
mod order;
mod queue;
pub mod status;

/// Orders run at once (each waits seconds for the CA's validation).
const PARALLEL: usize = 4;
/// Log a progress summary this often while anything is queued or failing.
const SUMMARY_EVERY: Duration = Duration::from_secs(600);
/// Cache files read at once for handshakes whose certificate is not in memory.
const LOADS: usize = 16;
/// Certificates looked up in the cache per step of the start-up scan.
const SCAN_CHUNK: usize = 2000;
/// Unusable cache files logged one by one; beyond, only counted in the scan's summary.
const UNUSABLE_LOGGED: u64 = 20;

// What a handshake knows of a certificate (one byte each).
const UNKNOWN: u8 = 0;
const NONE: u8 = 1;
const WANTED: u8 = 2;
const CERTIFIED: u8 = 3;
/// No longer configured: never ordered again.
const REMOVED: u8 = 4;

/// Every configured certificate: its names and what the handshake path knows of it.
#[derive(Default)]
struct Index {
    by_name: HashMap<String, u32>,
    groups: Vec<Arc<[String]>>,
    status: Vec<AtomicU8>,
    /// A certificate whose names a reload made fewer (a domain left a certificate shared with
    /// others, `names_per_certificate`) → the certificate of before, which still covers them:
    /// served until the new one is issued. Only while that lasts.
    previous: HashMap<u32, u32>,
}

impl Index {
    /// Make the index hold exactly `groups`: new groups get new numbers, groups no longer
    /// configured are dropped (their names answer nothing). Returns (added, removed).
    fn update(&mut self, groups: Vec<Vec<String>>) -> (Vec<u32>, Vec<u32>) {
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

enum Msg {
    /// New certificates (at start, after a reload) and the settings now in force.
    Add(Vec<u32>, Arc<AcmeSettings>),
    /// A handshake asked for this certificate, which is missing.
    Wanted(u32),
    /// No longer configured.
    Remove(Vec<u32>),
    /// Its cache file turned out unusable when a handshake loaded it.
    Unusable(u32, cache::Unusable),
}

/// Picks the certificate of the requested name; answers TLS-ALPN-01 challenges; orders.
pub struct Acme {
    index: RwLock<Index>,
    certs: Mutex<cache::Lru>,
    challenges: order::Challenges,
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
    fn deployed(&self, id: u32, key: Arc<CertifiedKey>, not_after: i64) {
        lock(&self.certs).insert(id, key, not_after);
        self.set_status(id, CERTIFIED);
        self.index
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .previous
            .remove(&id);
    }

    fn names(&self, id: u32) -> Arc<[String]> {
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

/// The one task that orders every certificate.
struct Scheduler {
    acme: Arc<Acme>,
    cfg: Arc<AcmeSettings>,
    queue: queue::Queue,
    budget: budget::Budget,
    /// Certificates per registered domain (`certs_per_registered_domain_7d`).
    domains: domains::DomainBudgets,
    account: Option<Arc<Account>>,
    /// The account key once read from the cache (or made): a damaged file is set aside and
    /// reported once, not at every attempt to make the account.
    account_key: Option<Vec<u8>>,
    /// No order starts before this (unix): the CA rate-limited the account or is unreachable.
    paused_until: i64,
    pauses: u32,
    to_scan: std::collections::VecDeque<u32>,
    scanned_any: bool,
    /// Unusable cache files found by scans, and how many of them were logged one by one.
    unusable: (u64, u64),
    budget_logged: bool,
    last_summary: std::time::Instant,
    /// The CA's renewal information (ARI): its `renewalInfo` URL once the directory said.
    ari: Ari,
    /// Directory lookups and renewal-information requests in flight.
    ari_tasks: tokio::task::JoinSet<AriDone>,
    /// Renewals running that carry `replaces` (took nothing from the budget).
    exempt: std::collections::HashSet<u32>,
    /// Failed reads of the directory for ARI in a row (back-off: 2 min doubling to an hour).
    ari_failures: u32,
}

/// What is known of the CA's renewal information (ARI, [`ari`]).
enum Ari {
    /// Not asked yet, or asking failed: ask again at this time (unix).
    Unknown(i64),
    Asking,
    /// The CA offers none: renewals at two thirds of the lifetime.
    Without,
    With(Arc<str>),
}

enum AriDone {
    Directory(Result<Option<String>, String>),
    /// A certificate's renewal information: the fallback renewal time (two thirds of the
    /// lifetime, from its file) and the CA's answer (window, when to ask again).
    Check(u32, Option<i64>, Result<(Option<ari::Window>, i64), String>),
}

/// Renewal-information requests at once.
const ARI_PARALLEL: usize = 8;

type Running = tokio::task::JoinSet<(u32, Result<Vec<u8>, order::Failure>)>;
/// Making the account (at most one at a time), apart from the scheduler's loop: a CA that does
/// not answer holds only this task, not the cache scan, reloads, handshakes' requests, finished
/// orders or `/metrics`.
type Making = tokio::task::JoinSet<(Vec<u8>, Result<Arc<Account>, order::Failure>)>;

impl Scheduler {
    fn new(acme: Arc<Acme>, cfg: Arc<AcmeSettings>) -> Scheduler {
        let saved = std::fs::read_to_string(cfg.cache_dir.join(budget::FILE)).unwrap_or_default();
        let per_domain = std::fs::read_to_string(cfg.cache_dir.join(domains::FILE)).unwrap_or_default();
        Scheduler {
            budget: budget::Budget::from_text(cfg.orders_per_3h, &saved),
            domains: domains::DomainBudgets::from_text(cfg.certs_per_registered_domain_7d, &per_domain),
            acme,
            cfg,
            queue: queue::Queue::default(),
            account: None,
            account_key: None,
            paused_until: 0,
            pauses: 0,
            to_scan: Default::default(),
            scanned_any: false,
            unusable: (0, 0),
            budget_logged: false,
            last_summary: std::time::Instant::now(),
            ari: Ari::Unknown(0),
            ari_tasks: tokio::task::JoinSet::new(),
            exempt: Default::default(),
            ari_failures: 0,
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let client = match client_config(&self.cfg) {
            Ok(c) => c,
            Err(e) => return warn!(error = %e, "ACME client configuration: no certificates will be ordered"),
        };
        let mut running = Running::new();
        let mut making = Making::new();
        loop {
            self.scan().await;
            self.start_orders(&client, &mut running, &mut making);
            self.start_ari(&client);
            self.publish();
            let now = clock::now();
            // With every slot taken, the next order waits for one to end, whatever is due: a
            // renewal or retry timer already due would otherwise wake this loop at once, again
            // and again, until an order ends. `peek` first: it takes due timers off.
            let mut wake = i64::MAX;
            if running.len() < PARALLEL {
                let ready = self.queue.peek(now).is_some();
                wake = self.queue.next_timer().unwrap_or(i64::MAX);
                // While the account is being made, its end wakes the loop.
                if ready && making.is_empty() {
                    let allowed = (self.budget.next_at(now as f64).ceil() as i64).max(self.paused_until);
                    wake = wake.min(allowed);
                }
            }
            let sleep = if self.to_scan.is_empty() {
                Duration::from_secs(wake.saturating_sub(now).clamp(0, 600) as u64)
            } else {
                Duration::ZERO
            };
            tokio::select! {
                m = rx.recv() => match m {
                    None => return,
                    Some(Msg::Add(ids, cfg)) => {
                        if (&cfg.directory, &cfg.contact) != (&self.cfg.directory, &self.cfg.contact) {
                            self.account = None;
                            self.account_key = None;
                            making.abort_all();
                        }
                        self.budget.set_capacity(cfg.orders_per_3h);
                        self.domains.set_capacity(cfg.certs_per_registered_domain_7d);
                        self.cfg = cfg;
                        self.to_scan.extend(ids);
                    }
                    Some(Msg::Remove(ids)) => {
                        for id in ids {
                            if let Some(names) = self.queue.remove(id).then(|| self.acme.names(id)) {
                                info!(certificate = %names[0], "ACME certificate no longer configured: not renewed");
                            }
                        }
                    }
                    Some(Msg::Wanted(id)) => {
                        if self.queue.on_demand(id) {
                            info!(certificate = %self.acme.names(id)[0], "ACME on demand: a handshake asked for it, ordered next");
                        }
                    }
                    Some(Msg::Unusable(id, why)) => {
                        // Not yet scanned: the scan orders it (it finds the handshake's mark).
                        let scanned = (id as usize) < self.queue.slots.len();
                        if self.queue.unusable(id) || !scanned {
                            warn!(certificate = %self.acme.names(id)[0], error = %why, "ACME cached certificate unusable: not served, ordered again");
                        }
                    }
                },
                Some(done) = running.join_next(), if !running.is_empty() => {
                    if let Ok((id, result)) = done {
                        self.finished(id, result).await;
                    }
                }
                // Aborted (the CA or contact changed): dropped.
                Some(Ok((key, made))) = making.join_next(), if !making.is_empty() => {
                    self.account_key = Some(key);
                    match made {
                        Ok(a) => self.account = Some(a),
                        Err(e) => self.pause(clock::now(), None, &e.to_string()),
                    }
                }
                Some(done) = self.ari_tasks.join_next(), if !self.ari_tasks.is_empty() => {
                    if let Ok(done) = done {
                        self.ari_done(done);
                    }
                }
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// Look up the next chunk of new certificates in the cache (validity only, not the key).
    async fn scan(&mut self) {
        if self.to_scan.is_empty() {
            return;
        }
        let n = self.to_scan.len().min(SCAN_CHUNK);
        let ids: Vec<u32> = self.to_scan.drain(..n).collect();
        let files: Vec<_> = ids
            .iter()
            .map(|&id| {
                let names = self.acme.names(id);
                (
                    cache::cert_file(&self.cfg.cache_dir, &names, &self.cfg.directory),
                    cache::failed_file(&self.cfg.cache_dir, &names, &self.cfg.directory),
                )
            })
            .collect();
        let now = clock::now();
        // The certificate's validity; and, when one is to be ordered, its failed orders.
        let found = tokio::task::spawn_blocking(move || {
            files
                .iter()
                .map(|(cert, failed)| {
                    let found = match cache::read(cert) {
                        Ok(None) => Ok(None),
                        Ok(Some(pem)) => cache::check(&pem).map(Some),
                        Err(_) => Err(cache::Unusable::Unreadable),
                    };
                    let to_order = match found {
                        Ok(Some((nb, na))) => cache::renew_at(nb, na) <= now,
                        _ => true,
                    };
                    (found, to_order.then(|| cache::Failed::load(failed)).flatten())
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let mut restored = 0;
        for (i, &id) in ids.iter().enumerate() {
            while self.queue.slots.len() <= id as usize {
                self.queue.add();
            }
            let status =
                self.acme.index.read().unwrap_or_else(|e| e.into_inner()).status[id as usize].load(Ordering::Relaxed);
            if status == REMOVED {
                self.queue.remove(id);
                continue;
            }
            let (found, failed) = found.get(i).cloned().unwrap_or((Ok(None), None));
            if let Err(why) = found {
                self.unusable.0 += 1;
                if self.unusable.1 < UNUSABLE_LOGGED {
                    self.unusable.1 += 1;
                    warn!(certificate = %self.acme.names(id)[0], error = %why, "ACME cached certificate unusable: not served, ordered again");
                }
            }
            match found.ok().flatten() {
                Some((nb, na)) if na > now => {
                    self.queue.cached(id, nb, na, now);
                    self.plan_ari(id, now, ari::RECHECK_DEFAULT);
                    let marked = self.acme.index.read().unwrap_or_else(|e| e.into_inner()).status[id as usize]
                        .compare_exchange(UNKNOWN, CERTIFIED, Ordering::Relaxed, Ordering::Relaxed);
                    // A handshake before this scan found the file whole but unusable (its key).
                    if marked == Err(WANTED) {
                        self.queue.unusable(id);
                    }
                }
                _ => {
                    let wanted = {
                        let ix = self.acme.index.read().unwrap_or_else(|e| e.into_inner());
                        ix.status[id as usize].compare_exchange(UNKNOWN, NONE, Ordering::Relaxed, Ordering::Relaxed)
                            == Err(WANTED)
                    };
                    if wanted {
                        self.queue.on_demand(id);
                        info!(certificate = %self.acme.names(id)[0], "ACME on demand: a handshake asked for it, ordered next");
                    }
                    self.queue.missing(id);
                }
            }
            if let Some(f) = failed {
                self.queue.restore_failures(id, f.failures, f.due, now);
                restored += 1;
            }
        }
        if restored > 0 {
            info!(
                certificates = restored,
                "ACME failed orders from before the restart: their back-off goes on"
            );
        }
        if self.to_scan.is_empty() {
            let c = self.queue.counts();
            let unusable = std::mem::take(&mut self.unusable.0);
            info!(
                certified = c.certified,
                to_order = c.queued + c.ordering,
                failing = c.failing,
                unusable,
                "ACME cache: {} certified, {} to order, {} waiting after failed orders",
                c.certified,
                c.queued + c.ordering,
                c.failing
            );
            self.scanned_any = true;
        }
    }

    /// Start what is due, as far as the slots, the budgets and a pause allow; without an
    /// account, start making it ([`Making`]) and order once it is there.
    fn start_orders(&mut self, client: &Arc<rustls::ClientConfig>, running: &mut Running, making: &mut Making) {
        while running.len() < PARALLEL {
            let now = clock::now();
            if now < self.paused_until {
                return;
            }
            let Some((id, reason)) = self.queue.peek(now) else {
                return;
            };
            let registered = self.registered(id);
            let until = self.domains.next_at(&registered, now);
            if until > now {
                self.queue.hold(id, until);
                for d in &registered {
                    if self.domains.available(d, now) < 1.0 && self.domains.first_hold(d) {
                        info!(registered_domain = %d, next_order_at = %clock::iso(until), "ACME certificates for this registered domain used up (certs_per_registered_domain_7d = {}): its new certificates wait", self.cfg.certs_per_registered_domain_7d);
                    }
                }
                continue;
            }
            let Some(account) = self.account.clone() else {
                if making.is_empty() {
                    let (cfg, client, key) = (self.cfg.clone(), client.clone(), self.account_key.clone());
                    making.spawn(account(cfg, client, key));
                }
                return;
            };
            // A renewal at a CA with ARI carries `replaces` (RFC 9773 §5): Let's Encrypt exempts
            // it from the new-order limit, so it takes nothing from the budget.
            let exempt = reason == queue::Reason::Renewal && matches!(self.ari, Ari::With(_));
            if !exempt && !self.budget.take(now as f64) {
                if !self.budget_logged {
                    self.budget_logged = true;
                    let at = self.budget.next_at(now as f64) as i64;
                    info!(next_order_at = %clock::iso(at), "ACME order budget used up (orders_per_3h = {}): waiting", self.cfg.orders_per_3h);
                }
                return;
            }
            if !exempt {
                self.budget_logged = false;
                self.save_budget();
            }
            self.queue.start(id);
            self.domains.take(&registered, now);
            self.save_domains(now);
            let names = self.acme.names(id);
            info!(certificate = %names[0], reason = ?reason, "ACME order started");
            let (acme, client) = (self.acme.clone(), client.clone());
            let dns01 = self.cfg.challenge == crate::settings::AcmeChallenge::Dns01;
            let replaced = exempt.then(|| cache::cert_file(&self.cfg.cache_dir, &names, &self.cfg.directory));
            if exempt {
                self.exempt.insert(id);
            }
            running.spawn(async move {
                // The certificate renewed, by its ID.
                let replaces = match replaced {
                    Some(file) => tokio::task::spawn_blocking(move || {
                        let pem = cache::read(&file).ok()??;
                        let leaf =
                            <rustls::pki_types::CertificateDer as rustls::pki_types::pem::PemObject>::pem_slice_iter(
                                &pem,
                            )
                            .next()?
                            .ok()?;
                        ari::cert_id(&leaf)
                    })
                    .await
                    .ok()
                    .flatten(),
                    None => None,
                };
                let result =
                    order::order(&account, &client, &names, &acme.challenges, dns01, replaces.as_deref()).await;
                (id, result)
            });
        }
    }

    /// With a CA that offers renewal information, certificate `id` asks it within `spread`
    /// seconds (at a random time in it, so that 100,000 certificates do not ask at once).
    fn plan_ari(&mut self, id: u32, now: i64, spread: i64) {
        if matches!(self.ari, Ari::With(_)) {
            self.queue
                .ari_check_at(id, now + (ari::random() * spread as f64) as i64);
        }
    }

    /// Learn whether the CA offers renewal information (once the cache is scanned), and ask it
    /// for the certificates due (at most [`ARI_PARALLEL`] at once). One unauthenticated GET
    /// each, with our own HTTPS client: rustls-acme has none to offer.
    fn start_ari(&mut self, client: &Arc<rustls::ClientConfig>) {
        let now = clock::now();
        // The directory is asked once the account exists (the CA answered), or at once when
        // nothing is to be ordered (no account will be made); never while orders are paused
        // (the CA is down or asked for quiet).
        let may_ask =
            self.scanned_any && self.pauses == 0 && (self.account.is_some() || self.queue.peek(now).is_none());
        match &self.ari {
            Ari::Unknown(at) if may_ask && *at <= now => {
                self.ari = Ari::Asking;
                let (client, directory) = (client.clone(), self.cfg.directory.clone());
                self.ari_tasks
                    .spawn(async move { AriDone::Directory(ari::renewal_info_url(&client, &directory).await) });
            }
            Ari::With(base) => {
                let base = base.clone();
                // `peek` wakes the due timers (ARI checks among them).
                let _ = self.queue.peek(now);
                let room = (ARI_PARALLEL + 1).saturating_sub(self.ari_tasks.len());
                for id in self.queue.take_ari_due(room) {
                    let file = cache::cert_file(&self.cfg.cache_dir, &self.acme.names(id), &self.cfg.directory);
                    let (client, base) = (client.clone(), base.clone());
                    self.ari_tasks.spawn(async move {
                        let read = tokio::task::spawn_blocking(move || {
                            let pem = cache::read(&file).ok()??;
                            let leaf = <rustls::pki_types::CertificateDer as rustls::pki_types::pem::PemObject>::pem_slice_iter(&pem).next()?.ok()?;
                            let (nb, na) = cache::validity(&pem)?;
                            Some((ari::cert_id(&leaf), cache::renew_at(nb, na)))
                        })
                        .await
                        .ok()
                        .flatten();
                        let Some((Some(cert_id), fallback)) = read else {
                            let fallback = read.map(|r| r.1);
                            return AriDone::Check(id, fallback, Err("no certificate ID (no Authority Key Identifier)".into()));
                        };
                        let answer = ari::fetch(&client, &base, &cert_id, clock::now()).await;
                        AriDone::Check(id, Some(fallback), answer)
                    });
                }
            }
            _ => {}
        }
    }

    fn ari_done(&mut self, done: AriDone) {
        let now = clock::now();
        match done {
            AriDone::Directory(Ok(Some(url))) => {
                self.ari_failures = 0;
                info!(renewal_info = %url, "ACME: the CA offers renewal information (ARI): renewals follow its windows");
                self.ari = Ari::With(url.into());
                // Every certificate held asks once, spread over 0.2 s per certificate (about 5
                // requests a second: 100,000 certificates take 5.6 hours), at most six hours.
                let certified: Vec<u32> = (0..self.queue.slots.len() as u32)
                    .filter(|&id| self.queue.slots[id as usize].phase == queue::Phase::Certified)
                    .collect();
                let spread = ((certified.len() as f64 * 0.2) as i64).clamp(1, ari::RECHECK_DEFAULT);
                for id in certified {
                    self.plan_ari(id, now, spread);
                }
            }
            AriDone::Directory(Ok(None)) => {
                self.ari_failures = 0;
                info!("ACME: the CA offers no renewal information (ARI): renewals at two thirds of the lifetime");
                self.ari = Ari::Without;
            }
            AriDone::Directory(Err(e)) => {
                self.ari_failures = self.ari_failures.saturating_add(1);
                let wait = (60i64 << self.ari_failures.min(6)).min(3600);
                debug!(error = %e, retry_in_s = wait, "ACME directory not read for renewal information: asking again later");
                self.ari = Ari::Unknown(now + wait);
            }
            AriDone::Check(id, fallback, answer) => {
                let (renew, recheck) = match answer {
                    Ok((Some(w), recheck)) => {
                        let at = self.renewal_time(id, w, now);
                        if at <= now + recheck {
                            info!(certificate = %self.acme.names(id)[0], renew_at = %clock::iso(at), window_start = %clock::iso(w.start), window_end = %clock::iso(w.end), "ACME renewal inside the CA's window (ARI)");
                        }
                        (at, recheck)
                    }
                    Ok((None, recheck)) => (fallback.unwrap_or(now + recheck), recheck),
                    Err(e) => {
                        debug!(certificate = %self.acme.names(id)[0], error = %e, "ACME renewal information not read: two thirds of the lifetime meanwhile");
                        (fallback.unwrap_or(now + ari::RECHECK_DEFAULT), ari::RECHECK_DEFAULT)
                    }
                };
                self.queue.ari_answered(id, renew, now + recheck, now);
            }
        }
    }

    /// Every order waits: until `until`, else with backoff (1 s doubling, at most an hour).
    /// Logged as a warning once per outage; the retries that fail again only at debug level.
    fn pause(&mut self, now: i64, until: Option<i64>, why: &str) {
        let backoff = (1i64 << self.pauses.min(12)).min(3600);
        self.pauses += 1;
        self.paused_until = until.unwrap_or(now + backoff).max(now + 1);
        if self.pauses == 1 {
            warn!(until = %clock::iso(self.paused_until), error = %why, "ACME orders paused (will retry with back-off)");
        } else {
            debug!(attempts = self.pauses, until = %clock::iso(self.paused_until), error = %why, "ACME orders still paused");
        }
    }

    /// A certificate was issued: the CA works again, if it did not.
    fn resumed(&mut self) {
        if self.pauses > 0 {
            info!(attempts = self.pauses, "ACME orders resume: the CA answers again");
            self.pauses = 0;
        }
    }

    async fn finished(&mut self, id: u32, result: Result<Vec<u8>, order::Failure>) {
        use order::Failure;
        let now = clock::now();
        let names = self.acme.names(id);
        let label = &names[0];
        let retry = self.cfg.retry_after.as_secs() as i64;
        let exempt = self.exempt.remove(&id);
        if self.queue.removed(id) {
            return info!(certificate = %label, "ACME order ended for a certificate no longer configured");
        }
        if result.is_err() {
            // No certificate: it does not count against its registered domain.
            let registered = self.registered(id);
            self.domains.refund(&registered, now);
            self.save_domains(now);
        }
        match result {
            Ok(pem) => match (cache::validity(&pem), cache::parse(&pem)) {
                (Some((nb, na)), Some((key, _))) => {
                    let file = cache::cert_file(&self.cfg.cache_dir, &names, &self.cfg.directory);
                    if let Err(e) = tokio::task::spawn_blocking(move || cache::write(&file, &pem))
                        .await
                        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
                    {
                        warn!(certificate = %label, error = %e, "ACME certificate not saved: it is served, but will be ordered again after a restart");
                    }
                    if self.queue.slots[id as usize].failures > 0 {
                        let file = cache::failed_file(&self.cfg.cache_dir, &names, &self.cfg.directory);
                        let _ = std::fs::remove_file(file);
                    }
                    self.acme.deployed(id, key, na);
                    self.queue.issued(id, nb, na, now);
                    self.plan_ari(id, now, ari::RECHECK_DEFAULT);
                    self.resumed();
                    info!(certificate = %label, not_after = %clock::iso(na), renew_at = %clock::iso(cache::renew_at(nb, na)), "ACME certificate issued");
                }
                _ => {
                    let at = self.failed(id, now, retry, "the CA's certificate is unreadable");
                    warn!(certificate = %label, retry_at = %clock::iso(at), "ACME certificate unreadable (will retry)");
                }
            },
            Err(Failure::Ca(why)) => {
                self.refund(exempt, now);
                self.queue.put_back(id);
                self.account = None;
                self.pause(now, None, &format!("{label}: {why}"));
            }
            Err(Failure::RateLimited {
                until,
                account: true,
                detail,
            }) => {
                self.refund(exempt, now);
                self.queue.put_back(id);
                self.pause(now, until, &format!("rate limited by the CA: {detail}"));
            }
            Err(Failure::RateLimited {
                until,
                account: false,
                detail,
            }) => {
                self.refund(exempt, now);
                let wait = until.map_or(retry, |u| (u - now).max(retry));
                let at = self.failed(id, now, wait, &detail);
                warn!(certificate = %label, retry_at = %clock::iso(at), error = %detail, "ACME rate limited for this name (will retry)");
            }
            Err(Failure::Order { created, detail }) => {
                if !created {
                    self.refund(exempt, now);
                }
                let at = self.failed(id, now, retry, &detail);
                warn!(certificate = %label, retry_at = %clock::iso(at), error = %detail, "ACME order failed (will retry)");
            }
        }
    }

    /// When certificate `id` renews inside the CA's window `w`: drawn once per window (RFC 9773
    /// §4.2) and kept in `cache_dir`, so that asking again every few hours, or a restart, does
    /// not draw again (each new draw would pull renewals towards the window's start). The file
    /// also tells `mailconf acme status`; a failure to write costs only that and the redraw.
    fn renewal_time(&self, id: u32, w: ari::Window, now: i64) -> i64 {
        let not_after = self.queue.slots[id as usize].not_after;
        let file = cache::renewal_file(&self.cfg.cache_dir, &self.acme.names(id), &self.cfg.directory);
        if let Some(kept) = cache::Renewal::load(&file)
            && (kept.not_after, kept.start, kept.end) == (not_after, w.start, w.end)
        {
            return kept.at.max(now);
        }
        let at = ari::pick(w, now, ari::random());
        let record = cache::Renewal {
            not_after,
            at,
            start: w.start,
            end: w.end,
        };
        if let Err(e) = cache::write(&file, record.to_text().as_bytes()) {
            debug!(file = %file.display(), error = %e, "ACME renewal time not saved: drawn again at the next answer");
        }
        at
    }

    /// Certificate `id`'s order failed: it waits (with backoff from `wait`), saved in
    /// `cache_dir` so that a restart waits too. Returns when it is tried again.
    fn failed(&mut self, id: u32, now: i64, wait: i64, error: &str) -> i64 {
        let due = self.queue.failed(id, now, wait);
        let record = cache::Failed {
            failures: self.queue.slots[id as usize].failures,
            due,
            error: error.to_string(),
        };
        let file = cache::failed_file(&self.cfg.cache_dir, &self.acme.names(id), &self.cfg.directory);
        if let Err(e) = cache::write(&file, record.to_text().as_bytes()) {
            warn!(file = %file.display(), error = %e, "cannot save the ACME failure: a restart will retry at once");
        }
        due
    }

    /// The registered domains whose limit an order for `id` counts against: none for a
    /// renewal (the same names again: Let's Encrypt exempts those).
    fn registered(&self, id: u32) -> Vec<String> {
        if self.queue.is_renewal(id) {
            Vec::new()
        } else {
            domains::of_names(&self.acme.names(id))
        }
    }

    fn save_domains(&mut self, now: i64) {
        let path = self.cfg.cache_dir.join(domains::FILE);
        if let Err(e) = cache::write(&path, self.domains.to_text(now).as_bytes()) {
            warn!(file = %path.display(), error = %e, "cannot save the ACME budgets per registered domain");
        }
    }

    /// Give back the order an order took from the budget (none for an exempt renewal).
    fn refund(&mut self, exempt: bool, now: i64) {
        if !exempt {
            self.budget.refund(now as f64);
            self.save_budget();
        }
    }

    fn save_budget(&self) {
        let path = self.cfg.cache_dir.join(budget::FILE);
        if let Err(e) = cache::write(&path, self.budget.to_text().as_bytes()) {
            warn!(file = %path.display(), error = %e, "cannot save the ACME order budget");
        }
    }

    /// `/metrics` gauges, and now and then a summary with an estimate of when all are done.
    fn publish(&mut self) {
        let now = clock::now();
        let c = self.queue.counts();
        let next = (self.budget.next_at(now as f64).ceil() as i64).max(self.paused_until);
        crate::metrics::METRICS.set_acme(crate::metrics::AcmeGauges {
            certified: c.certified,
            queued: c.queued + c.ordering + c.unknown + self.to_scan.len() as u64,
            failing: c.failing,
            next_order_at: next,
        });
        if c.soonest_expiry > 0 {
            crate::metrics::METRICS.set_cert_not_after(c.soonest_expiry);
        }
        let waiting = c.queued + c.failing + c.ordering;
        if self.scanned_any && waiting > 0 && self.last_summary.elapsed() >= SUMMARY_EVERY {
            self.last_summary = std::time::Instant::now();
            let beyond = (waiting as f64 - self.budget.available(now as f64)).max(0.0);
            let eta = next.max(now) + (beyond * budget::WINDOW / f64::from(self.cfg.orders_per_3h)) as i64;
            info!(certified = c.certified, queued = c.queued + c.ordering, failing = c.failing, eta = %clock::iso(eta), "ACME progress");
        }
    }
}

/// The ACME account, registered (or found again) at the CA with `key`, else with the key
/// from the cache ([`account_key`]). Returns the key used, and the account or why not.
async fn account(
    cfg: Arc<AcmeSettings>,
    client: Arc<rustls::ClientConfig>,
    key: Option<Vec<u8>>,
) -> (Vec<u8>, Result<Arc<Account>, order::Failure>) {
    let key = match key {
        Some(k) => k,
        None => {
            let cfg = cfg.clone();
            tokio::task::spawn_blocking(move || account_key(&cfg))
                .await
                .unwrap_or_else(|_| Account::generate_key_pair())
        }
    };
    let made = async {
        let directory = order::ca(Directory::discover(&client, &cfg.directory))
            .await
            .map_err(|e| order::classify(&e, false))?;
        let account = order::ca(Account::create_with_keypair(&client, directory, &cfg.contact, &key))
            .await
            .map_err(|e| order::classify(&e, false))?;
        Ok(Arc::new(account))
    }
    .await;
    (key, made)
}

/// The account key from the cache; made and saved the first time. A file that holds no usable
/// key (cut, garbage, another key type) would stop every order for good: it is reported with
/// its path and why, kept aside as `NAME.damaged-UNIXTIME` for the postmaster, and a new key
/// (a new account at the CA) takes its place.
fn account_key(cfg: &AcmeSettings) -> Vec<u8> {
    let path = cache::account_file(&cfg.cache_dir, &cfg.contact, &cfg.directory);
    match cache::read(&path) {
        Ok(Some(k)) => match cache::account_key_problem(&k) {
            None => return k,
            Some(why) => {
                let aside = cache::damaged_file(&path, clock::now());
                match std::fs::rename(&path, &aside) {
                    Ok(()) => {
                        warn!(file = %path.display(), kept_as = %aside.display(), error = %why, "ACME account key damaged: kept aside, a new account is made")
                    }
                    Err(e) => {
                        warn!(file = %path.display(), error = %why, rename_error = %e, "ACME account key damaged (cannot be kept aside): a new account is made")
                    }
                }
            }
        },
        Ok(None) => {}
        Err(e) => warn!(file = %path.display(), error = %e, "cannot read the ACME account key: a new account is made"),
    }
    let k = Account::generate_key_pair();
    if let Err(e) = cache::write(&path, &k) {
        warn!(file = %path.display(), error = %e, "cannot save the ACME account key");
    }
    k
}

/// TLS client settings for talking to the ACME server: web PKI roots plus `ca_roots`.
fn client_config(cfg: &AcmeSettings) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for c in &cfg.ca_roots {
        roots.add(c.clone())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
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
    use super::*;

    fn group(d: &str) -> Vec<String> {
        vec![format!("autoconfig.{d}"), format!("autodiscover.{d}")]
    }

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
