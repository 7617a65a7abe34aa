//! The scheduler and the CA's renewal information (ARI, [`ari`]): whether the CA offers it,
//! asking it for each certificate held, and when each renews inside the CA's window.

use std::sync::Arc;

use tracing::{debug, info};

use super::Scheduler;
use crate::acme::{ari, cache, clock, queue};

/// What is known of the CA's renewal information (ARI, [`ari`]).
pub(super) enum Ari {
    /// Not asked yet, or asking failed: ask again at this time (unix).
    Unknown(i64),
    Asking,
    /// The CA offers none: renewals at two thirds of the lifetime.
    Without,
    With(Arc<str>),
}

pub(super) enum AriDone {
    Directory(Result<Option<String>, String>),
    /// A certificate's renewal information: the fallback renewal time (two thirds of the
    /// lifetime, from its file) and the CA's answer (window, when to ask again).
    Check(u32, Option<i64>, Result<(Option<ari::Window>, i64), String>),
}

/// Renewal-information requests at once.
const ARI_PARALLEL: usize = 8;

impl Scheduler {
    /// With a CA that offers renewal information, certificate `id` asks it within `spread`
    /// seconds (at a random time in it, so that 100,000 certificates do not ask at once).
    pub(super) fn plan_ari(&mut self, id: u32, now: i64, spread: i64) {
        if matches!(self.ari, Ari::With(_)) {
            self.queue
                .ari_check_at(id, now + (ari::random() * spread as f64) as i64);
        }
    }

    /// Learn whether the CA offers renewal information (once the cache is scanned), and ask it
    /// for the certificates due (at most [`ARI_PARALLEL`] at once). One unauthenticated GET
    /// each, with our own HTTPS client: rustls-acme has none to offer.
    pub(super) fn start_ari(&mut self, client: &Arc<rustls::ClientConfig>) {
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

    pub(super) fn ari_done(&mut self, done: AriDone) {
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
}
