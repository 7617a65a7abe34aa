//! The one task that orders every certificate ([`Scheduler`]): its state, its loop, and the
//! start of each order within the slots, the budgets and a pause. What it does besides lives in
//! its submodules: the start-up scan of the cache ([`scan`]), the CA's renewal information
//! ([`renewals`]), what an order's end does ([`outcome`]), and the account ([`account`](mod@account)).

mod account;
mod outcome;
mod renewals;
mod scan;

use std::sync::Arc;
use std::time::Duration;

use rustls_acme::acme::Account;
use tokio::sync::mpsc;
use tracing::{info, warn};

use self::account::{account, client_config};
use self::renewals::{Ari, AriDone};
use super::{Acme, ari, budget, cache, clock, domains, order, queue};
use crate::settings::AcmeSettings;

/// Orders run at once (each waits seconds for the CA's validation).
const PARALLEL: usize = 4;
/// Log a progress summary this often while anything is queued or failing.
const SUMMARY_EVERY: Duration = Duration::from_secs(600);

pub(super) enum Msg {
    /// New certificates (at start, after a reload) and the settings now in force.
    Add(Vec<u32>, Arc<AcmeSettings>),
    /// A handshake asked for this certificate, which is missing.
    Wanted(u32),
    /// No longer configured.
    Remove(Vec<u32>),
    /// Its cache file turned out unusable when a handshake loaded it.
    Unusable(u32, cache::Unusable),
}

/// The one task that orders every certificate.
pub(super) struct Scheduler {
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

type Running = tokio::task::JoinSet<(u32, Result<Vec<u8>, order::Failure>)>;
/// Making the account (at most one at a time), apart from the scheduler's loop: a CA that does
/// not answer holds only this task, not the cache scan, reloads, handshakes' requests, finished
/// orders or `/metrics`.
type Making = tokio::task::JoinSet<(Vec<u8>, Result<Arc<Account>, order::Failure>)>;

impl Scheduler {
    pub(super) fn new(acme: Arc<Acme>, cfg: Arc<AcmeSettings>) -> Scheduler {
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

    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
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
