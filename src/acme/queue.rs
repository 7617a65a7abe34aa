//! Which certificate to order next: the scheduler's per-certificate state, pure (the caller
//! passes the time). Order of service: certificates a TLS handshake asked for (on demand), then
//! renewals that are due, then new certificates in settings order. A failed order waits
//! `retry_after` × 2^(failures − 1), at most a day, while the others go ahead. 24 bytes per
//! certificate plus the queues' 4-byte entries.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not yet looked up in the cache.
    Unknown,
    Certified,
    Queued,
    Ordering,
    /// The last order failed; `due` is the next attempt.
    Failing,
    /// Held back by the CA's limit for its registered domain until `due` (no failure).
    Held,
    /// No longer configured.
    Removed,
}

#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub phase: Phase,
    pub failures: u8,
    /// A handshake asked for it while it had no certificate.
    pub wanted: bool,
    /// notAfter of the current certificate (0: none).
    pub not_after: i64,
    /// Certified: when to renew (or, with `ari`, to ask the CA); Failing: when to try again.
    pub due: i64,
    /// Certified: `due` is when to ask the CA's renewal information (ARI), not to renew.
    pub ari: bool,
}

/// Why an order starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    OnDemand,
    Renewal,
    New,
    Retry,
}

#[derive(Default)]
pub struct Queue {
    pub slots: Vec<Slot>,
    on_demand: VecDeque<u32>,
    renewals: VecDeque<u32>,
    fresh: VecDeque<u32>,
    /// (due, certificate): renewals and retries; entries whose slot changed since are skipped.
    timers: BinaryHeap<Reverse<(i64, u32)>>,
    /// Certified ones whose renewal information (ARI) is to be asked now.
    ari_due: VecDeque<u32>,
}

/// How many certificates are in each state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub certified: u64,
    pub queued: u64,
    pub failing: u64,
    pub ordering: u64,
    pub unknown: u64,
    /// The soonest notAfter of a certificate held (0: none).
    pub soonest_expiry: i64,
}

impl Queue {
    /// A new certificate to look up in the cache; returns its number.
    pub fn add(&mut self) -> u32 {
        self.slots.push(Slot {
            phase: Phase::Unknown,
            failures: 0,
            wanted: false,
            not_after: 0,
            due: 0,
            ari: false,
        });
        (self.slots.len() - 1) as u32
    }

    /// The cache holds a certificate valid from `not_before` to `not_after`.
    pub fn cached(&mut self, id: u32, not_before: i64, not_after: i64, now: i64) {
        self.certified(id, not_before, not_after, now);
    }

    /// The cache holds nothing usable: order one.
    pub fn missing(&mut self, id: u32) {
        let s = &mut self.slots[id as usize];
        s.phase = Phase::Queued;
        if s.wanted {
            self.on_demand.push_back(id);
        } else {
            self.fresh.push_back(id);
        }
    }

    fn certified(&mut self, id: u32, not_before: i64, not_after: i64, now: i64) {
        let due = super::cache::renew_at(not_before, not_after);
        let s = &mut self.slots[id as usize];
        *s = Slot {
            phase: Phase::Certified,
            failures: 0,
            wanted: false,
            not_after,
            due,
            ari: false,
        };
        if due <= now {
            s.phase = Phase::Queued;
            self.renewals.push_back(id);
        } else {
            self.timers.push(Reverse((due, id)));
        }
    }

    /// A handshake asked for this certificate. True when that moved it to the front.
    pub fn on_demand(&mut self, id: u32) -> bool {
        let Some(s) = self.slots.get_mut(id as usize) else {
            return false;
        };
        if s.wanted {
            return false;
        }
        match s.phase {
            Phase::Queued => {
                s.wanted = true;
                self.on_demand.push_back(id);
                true
            }
            // Looked up later, then put first; a failing one keeps its backoff (the CA counts
            // failed validations too).
            Phase::Unknown | Phase::Failing => {
                s.wanted = true;
                false
            }
            // Held: it waits for its domain's limit; asked for, it goes first once it may.
            Phase::Held => {
                s.wanted = true;
                false
            }
            Phase::Certified | Phase::Ordering | Phase::Removed => false,
        }
    }

    /// Its cached certificate turned out unusable when a handshake loaded it: it no longer
    /// counts as certified and is ordered next, like one a handshake asked for. True when that
    /// changed anything (a certificate already queued, ordering or failing keeps its place).
    pub fn unusable(&mut self, id: u32) -> bool {
        let Some(s) = self.slots.get_mut(id as usize) else {
            return false;
        };
        if s.phase != Phase::Certified {
            return self.on_demand(id);
        }
        s.phase = Phase::Queued;
        s.not_after = 0;
        s.wanted = true;
        self.on_demand.push_back(id);
        true
    }

    /// Move due renewals and retries to their queues.
    fn wake(&mut self, now: i64) {
        while let Some(Reverse((due, id))) = self.timers.peek().copied() {
            if due > now {
                break;
            }
            self.timers.pop();
            let s = &mut self.slots[id as usize];
            if s.due != due {
                continue;
            }
            match s.phase {
                Phase::Certified if s.ari => self.ari_due.push_back(id),
                Phase::Certified => {
                    s.phase = Phase::Queued;
                    self.renewals.push_back(id);
                }
                Phase::Failing => {
                    s.phase = Phase::Queued;
                    if s.wanted {
                        self.on_demand.push_back(id);
                    } else {
                        self.fresh.push_front(id);
                    }
                }
                Phase::Held => {
                    s.phase = Phase::Queued;
                    if s.wanted {
                        self.on_demand.push_back(id);
                    } else {
                        self.fresh.push_back(id);
                    }
                }
                _ => {}
            }
        }
    }

    /// The next certificate to order, if any is due (not taken off the queue).
    pub fn peek(&mut self, now: i64) -> Option<(u32, Reason)> {
        self.wake(now);
        for q in [&mut self.on_demand, &mut self.renewals, &mut self.fresh] {
            while let Some(&id) = q.front() {
                if self.slots[id as usize].phase == Phase::Queued {
                    break;
                }
                q.pop_front();
            }
        }
        let s = &self.slots;
        let reason = |id: u32, r| {
            let slot = &s[id as usize];
            if slot.failures > 0 {
                (id, Reason::Retry)
            } else {
                (id, r)
            }
        };
        if let Some(&id) = self.on_demand.front() {
            return Some((id, Reason::OnDemand));
        }
        if let Some(&id) = self.renewals.front() {
            return Some(reason(id, Reason::Renewal));
        }
        self.fresh.front().map(|&id| reason(id, Reason::New))
    }

    /// Start ordering what [`Queue::peek`] returned.
    pub fn start(&mut self, id: u32) {
        for q in [&mut self.on_demand, &mut self.renewals, &mut self.fresh] {
            if q.front() == Some(&id) {
                q.pop_front();
            }
        }
        self.slots[id as usize].phase = Phase::Ordering;
    }

    /// The order succeeded.
    pub fn issued(&mut self, id: u32, not_before: i64, not_after: i64, now: i64) {
        self.certified(id, not_before, not_after, now);
    }

    /// The order failed: try again later; returns when.
    pub fn failed(&mut self, id: u32, now: i64, retry_after: i64) -> i64 {
        let s = &mut self.slots[id as usize];
        s.failures = s.failures.saturating_add(1);
        let wait = retry_after.saturating_mul(1 << (s.failures - 1).min(20)).min(86_400);
        s.phase = Phase::Failing;
        s.due = now + wait;
        self.timers.push(Reverse((s.due, id)));
        s.due
    }

    /// Failed orders saved before a restart (after [`Queue::cached`] or [`Queue::missing`]):
    /// the count goes on, and a certificate to order waits until `due`. A certificate that is
    /// valid and not yet due for renewal ignores them (they are from before it was issued).
    pub fn restore_failures(&mut self, id: u32, failures: u8, due: i64, now: i64) {
        let s = &mut self.slots[id as usize];
        if s.phase != Phase::Queued || failures == 0 {
            return;
        }
        s.failures = failures;
        if due > now {
            s.phase = Phase::Failing;
            s.due = due;
            self.timers.push(Reverse((due, id)));
        }
    }

    /// What [`Queue::peek`] returned may not be ordered before `until` (its registered
    /// domain's limit): it waits without counting a failure, and the others go ahead.
    pub fn hold(&mut self, id: u32, until: i64) {
        for q in [&mut self.on_demand, &mut self.renewals, &mut self.fresh] {
            if q.front() == Some(&id) {
                q.pop_front();
            }
        }
        let s = &mut self.slots[id as usize];
        s.phase = Phase::Held;
        s.due = until;
        self.timers.push(Reverse((until, id)));
    }

    /// Ask the CA's renewal information (ARI) for certified `id` at `at`, if that is before
    /// anything already planned for it.
    pub fn ari_check_at(&mut self, id: u32, at: i64) {
        let Some(s) = self.slots.get_mut(id as usize) else {
            return;
        };
        if s.phase == Phase::Certified && at < s.due {
            s.due = at;
            s.ari = true;
            self.timers.push(Reverse((at, id)));
        }
    }

    /// Certificates whose renewal information is to be asked now (at most `n`; the rest wait
    /// for the next call). Only after [`Queue::peek`] (which wakes due timers).
    pub fn take_ari_due(&mut self, n: usize) -> Vec<u32> {
        let mut out = Vec::new();
        while out.len() < n
            && let Some(id) = self.ari_due.pop_front()
        {
            if self.slots[id as usize].phase == Phase::Certified && self.slots[id as usize].ari {
                out.push(id);
            }
        }
        out
    }

    /// The CA's renewal information for certified `id` was read: renew at `renew` (at once if
    /// that has come), unless `recheck` (asking again) comes first.
    pub fn ari_answered(&mut self, id: u32, renew: i64, recheck: i64, now: i64) {
        let Some(s) = self.slots.get_mut(id as usize) else {
            return;
        };
        if s.phase != Phase::Certified {
            return;
        }
        if renew <= now {
            s.phase = Phase::Queued;
            s.ari = false;
            self.renewals.push_back(id);
            return;
        }
        (s.due, s.ari) = if renew <= recheck {
            (renew, false)
        } else {
            (recheck, true)
        };
        self.timers.push(Reverse((s.due, id)));
    }

    /// Whether ordering `id` renews a certificate it has (the same names again).
    pub fn is_renewal(&self, id: u32) -> bool {
        self.slots.get(id as usize).is_some_and(|s| s.not_after > 0)
    }

    /// The order never reached the CA (unreachable, or it refused all orders for now): back to
    /// the front of its queue (a renewal to the renewals'), no failure counted.
    pub fn put_back(&mut self, id: u32) {
        let s = &mut self.slots[id as usize];
        s.phase = Phase::Queued;
        if s.wanted {
            self.on_demand.push_front(id);
        } else if s.not_after > 0 {
            self.renewals.push_front(id);
        } else {
            self.fresh.push_front(id);
        }
    }

    /// No longer configured: never ordered again (a running order's result is dropped). True if
    /// it was known.
    pub fn remove(&mut self, id: u32) -> bool {
        match self.slots.get_mut(id as usize) {
            Some(s) => {
                s.phase = Phase::Removed;
                s.not_after = 0;
                true
            }
            None => false,
        }
    }

    pub fn removed(&self, id: u32) -> bool {
        self.slots.get(id as usize).is_some_and(|s| s.phase == Phase::Removed)
    }

    /// The next time something becomes due by itself (a renewal or retry), if any.
    pub fn next_timer(&self) -> Option<i64> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// O(certificates): after each state change of the scheduler, never per request.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for s in &self.slots {
            match s.phase {
                Phase::Certified => c.certified += 1,
                Phase::Queued | Phase::Held => c.queued += 1,
                Phase::Ordering => c.ordering += 1,
                Phase::Failing => c.failing += 1,
                Phase::Unknown => c.unknown += 1,
                Phase::Removed => continue,
            }
            if s.not_after > 0 && (c.soonest_expiry == 0 || s.not_after < c.soonest_expiry) {
                c.soonest_expiry = s.not_after;
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(n: u32) -> Queue {
        let mut q = Queue::default();
        for i in 0..n {
            assert_eq!(q.add(), i);
            q.missing(i);
        }
        q
    }

    fn take(q: &mut Queue, now: i64) -> Option<(u32, Reason)> {
        let next = q.peek(now)?;
        q.start(next.0);
        Some(next)
    }

    #[test]
    fn settings_order_then_on_demand_first() {
        let mut q = queue(5);
        assert_eq!(take(&mut q, 0), Some((0, Reason::New)));
        assert!(q.on_demand(4));
        assert!(!q.on_demand(4), "asked twice: once in front");
        assert!(!q.on_demand(0), "being ordered already");
        assert_eq!(take(&mut q, 0), Some((4, Reason::OnDemand)));
        assert_eq!(take(&mut q, 0), Some((1, Reason::New)));
        assert_eq!(take(&mut q, 0), Some((2, Reason::New)));
    }

    #[test]
    fn a_failure_waits_with_backoff_while_others_go_ahead() {
        let mut q = queue(3);
        assert_eq!(take(&mut q, 0), Some((0, Reason::New)));
        assert_eq!(q.failed(0, 100, 60), 160);
        assert_eq!(take(&mut q, 100), Some((1, Reason::New)));
        assert_eq!(take(&mut q, 159), Some((2, Reason::New)));
        assert_eq!(take(&mut q, 159), None);
        assert_eq!(q.next_timer(), Some(160));
        assert_eq!(take(&mut q, 160), Some((0, Reason::Retry)));
        assert_eq!(q.failed(0, 200, 60), 320, "doubled");
        for _ in 0..30 {
            take(&mut q, 1 << 40);
            q.failed(0, 0, 60);
        }
        assert_eq!(q.slots[0].due, 86_400, "at most a day");
        assert_eq!(q.counts().failing, 1);
    }

    #[test]
    fn renewal_is_due_at_two_thirds_and_goes_before_new_orders() {
        let mut q = Queue::default();
        let a = q.add();
        let b = q.add();
        q.cached(a, 0, 90, 10);
        q.missing(b);
        assert_eq!(q.counts().certified, 1);
        assert_eq!(take(&mut q, 10), Some((b, Reason::New)));
        assert_eq!(take(&mut q, 59), None);
        assert_eq!(take(&mut q, 60), Some((a, Reason::Renewal)));
        q.issued(a, 60, 150, 70);
        assert_eq!(q.next_timer(), Some(120));
        // Expired or due at start: renewed before anything new.
        let c = q.add();
        let d = q.add();
        q.missing(c);
        q.cached(d, 0, 90, 1000);
        assert_eq!(take(&mut q, 1000), Some((d, Reason::Renewal)));
    }

    #[test]
    fn asked_for_before_the_cache_lookup_it_goes_first_once_missing() {
        let mut q = Queue::default();
        let a = q.add();
        let b = q.add();
        assert!(!q.on_demand(b));
        q.missing(a);
        q.missing(b);
        assert_eq!(take(&mut q, 0), Some((b, Reason::OnDemand)));
    }

    #[test]
    fn a_removed_certificate_is_never_ordered_or_renewed() {
        let mut q = Queue::default();
        let a = q.add();
        let b = q.add();
        let c = q.add();
        q.cached(a, 0, 90, 10);
        q.missing(b);
        q.missing(c);
        assert!(q.remove(a) && q.remove(b));
        assert!(!q.on_demand(b));
        assert_eq!(take(&mut q, 1000), Some((c, Reason::New)));
        assert_eq!(take(&mut q, 1000), None, "a's renewal is gone too");
        assert_eq!(q.counts().certified + q.counts().queued, 0);
        assert!(q.removed(a) && !q.removed(c));
    }

    #[test]
    fn an_unusable_cached_certificate_is_ordered_next_and_no_longer_counted() {
        let mut q = Queue::default();
        let a = q.add();
        let b = q.add();
        q.missing(a);
        q.cached(b, 0, 90, 10);
        assert_eq!(q.counts().certified, 1);
        assert!(q.unusable(b));
        assert!(!q.unusable(b), "once");
        assert_eq!(q.counts().certified, 0);
        assert_eq!(q.counts().soonest_expiry, 0);
        assert_eq!(take(&mut q, 10), Some((b, Reason::OnDemand)));
        assert_eq!(take(&mut q, 10), Some((a, Reason::New)));
        // Its old renewal timer fires for nothing.
        q.issued(b, 20, 110, 20);
        assert_eq!(take(&mut q, 60), None);
        assert_eq!(q.counts().certified, 1);
    }

    #[test]
    fn failures_saved_before_a_restart_keep_their_backoff() {
        let mut q = Queue::default();
        let (a, b, c, d) = (q.add(), q.add(), q.add(), q.add());
        q.missing(a);
        q.missing(b);
        q.missing(c);
        q.cached(d, 0, 900, 10);
        q.restore_failures(a, 3, 500, 10);
        q.restore_failures(b, 2, 5, 10);
        q.restore_failures(d, 4, 500, 10);
        assert_eq!(q.counts().failing, 1);
        assert_eq!(q.slots[d as usize].failures, 0, "certified, not due: a stale record");
        // b's wait is over: ordered now, as a retry; a waits until 500.
        assert_eq!(take(&mut q, 10), Some((b, Reason::Retry)));
        assert_eq!(take(&mut q, 10), Some((c, Reason::New)));
        assert_eq!(take(&mut q, 499), None);
        assert_eq!(take(&mut q, 500), Some((a, Reason::Retry)));
        // The count went on: the next wait is retry_after × 2^3.
        assert_eq!(q.failed(a, 500, 10), 580);
    }

    #[test]
    fn held_by_its_domain_limit_it_waits_without_a_failure() {
        let mut q = queue(3);
        assert_eq!(q.peek(0), Some((0, Reason::New)));
        q.hold(0, 100);
        assert_eq!(q.counts().queued, 3, "held counts as queued");
        assert_eq!(take(&mut q, 0), Some((1, Reason::New)));
        assert_eq!(take(&mut q, 99), Some((2, Reason::New)));
        assert_eq!(take(&mut q, 99), None);
        assert_eq!(take(&mut q, 100), Some((0, Reason::New)), "no failure counted");
        assert!(!q.is_renewal(0));
    }

    #[test]
    fn ari_checks_then_renewal_inside_the_window() {
        let mut q = Queue::default();
        let a = q.add();
        q.cached(a, 0, 900, 10);
        assert_eq!(q.slots[a as usize].due, 600, "two thirds without ARI");
        q.ari_check_at(a, 100);
        q.ari_check_at(a, 700);
        assert_eq!(q.next_timer(), Some(100), "the earlier plan wins");
        assert_eq!(take(&mut q, 99), None);
        assert!(q.take_ari_due(8).is_empty());
        assert_eq!(take(&mut q, 100), None, "an ARI check is no renewal");
        assert_eq!(q.take_ari_due(8), [a]);
        assert!(q.take_ari_due(8).is_empty(), "once");
        // The CA's window is far: ask again first.
        q.ari_answered(a, 800, 400, 100);
        assert_eq!(take(&mut q, 400), None);
        assert_eq!(q.take_ari_due(8), [a]);
        // Now inside the window: renew at the chosen time, before the next check.
        q.ari_answered(a, 450, 1000, 400);
        assert_eq!(take(&mut q, 449), None);
        assert!(q.take_ari_due(8).is_empty());
        assert_eq!(take(&mut q, 450), Some((a, Reason::Renewal)));
        // A window already passed (a revoked certificate): renewed at once.
        let b = q.add();
        q.cached(b, 0, 900, 10);
        q.ari_check_at(b, 20);
        assert_eq!(take(&mut q, 20), None);
        assert_eq!(q.take_ari_due(8), [b]);
        q.ari_answered(b, 20, 1000, 20);
        assert_eq!(take(&mut q, 20), Some((b, Reason::Renewal)));
    }

    #[test]
    fn put_back_keeps_its_place_and_counts_no_failure() {
        let mut q = queue(2);
        assert_eq!(take(&mut q, 0), Some((0, Reason::New)));
        q.put_back(0);
        assert_eq!(take(&mut q, 0), Some((0, Reason::New)));
        assert_eq!(q.slots[0].failures, 0);
        // A renewal put back is still a renewal, before anything new.
        let r = q.add();
        q.cached(r, 0, 90, 100);
        assert_eq!(take(&mut q, 100), Some((r, Reason::Renewal)));
        q.put_back(r);
        assert_eq!(take(&mut q, 100), Some((r, Reason::Renewal)));
    }
}
