//! What the end of an order does: a certificate issued is saved and served; a failure waits
//! with back-off (kept in the cache across restarts), or pauses every order when the CA is
//! down or rate-limits the account.

use tracing::{debug, info, warn};

use super::Scheduler;
use crate::acme::{ari, cache, clock, order};

impl Scheduler {
    /// Every order waits: until `until`, else with backoff (1 s doubling, at most an hour).
    /// Logged as a warning once per outage; the retries that fail again only at debug level.
    pub(super) fn pause(&mut self, now: i64, until: Option<i64>, why: &str) {
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

    pub(super) async fn finished(&mut self, id: u32, result: Result<Vec<u8>, order::Failure>) {
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
}
