//! The scheduler's look-up of new certificates in the cache, a chunk per turn of its loop:
//! each one's validity (not its key) and its failed orders from before a restart.

use std::sync::atomic::Ordering;

use tracing::{info, warn};

use super::Scheduler;
use crate::acme::index::{CERTIFIED, NONE, REMOVED, UNKNOWN, WANTED};
use crate::acme::{ari, cache, clock};

/// Certificates looked up in the cache per step of the start-up scan.
const SCAN_CHUNK: usize = 2000;
/// Unusable cache files logged one by one; beyond, only counted in the scan's summary.
const UNUSABLE_LOGGED: u64 = 20;

impl Scheduler {
    /// Look up the next chunk of new certificates in the cache (validity only, not the key).
    pub(super) async fn scan(&mut self) {
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
}
