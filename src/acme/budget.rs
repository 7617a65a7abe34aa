//! The CA's new-order limit as a token bucket: Let's Encrypt allows 300 new orders per account
//! per 3 hours, refilled continuously (one every 36 s). Kept as the orders not yet refilled
//! ("debt") and when that was, written to `cache_dir` after every order, so a restart (or a
//! crash loop) does not start with a full bucket. Pure: the caller passes the time.

/// The bucket refills its whole capacity over this many seconds.
pub const WINDOW: f64 = 3.0 * 3600.0;

/// The file in `cache_dir` that keeps the bucket across restarts.
pub const FILE: &str = "order-budget";

#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    capacity: f64,
    /// Seconds to refill the whole capacity.
    window: f64,
    /// Orders taken and not yet refilled, as of `at` (unix seconds).
    debt: f64,
    at: f64,
}

impl Budget {
    /// A full bucket of `per_3h` orders.
    pub fn new(per_3h: u32) -> Budget {
        Budget::with_window(per_3h, WINDOW)
    }

    /// A full bucket of `capacity`, refilled over `window` seconds.
    pub fn with_window(capacity: u32, window: f64) -> Budget {
        Budget {
            capacity: f64::from(capacity.max(1)),
            window,
            debt: 0.0,
            at: 0.0,
        }
    }

    /// The bucket as saved by [`Budget::to_text`], with today's capacity: a raised limit gives
    /// the difference at once, a lowered one waits until the debt is below it.
    pub fn from_text(per_3h: u32, text: &str) -> Budget {
        Budget::new(per_3h).restored(text)
    }

    /// This bucket with the debt saved in `text` (unchanged if unreadable).
    pub fn restored(mut self, text: &str) -> Budget {
        let mut it = text.split_ascii_whitespace().map(str::parse::<f64>);
        if let (Some(Ok(debt)), Some(Ok(at))) = (it.next(), it.next())
            && debt.is_finite()
            && at.is_finite()
        {
            self.debt = debt.max(0.0);
            self.at = at;
        }
        self
    }

    pub fn to_text(&self) -> String {
        format!("{:.3} {:.0}\n", self.debt, self.at)
    }

    /// Nothing taken that is not refilled by `now`: the same as a new bucket.
    pub fn is_full(&self, now: f64) -> bool {
        let mut b = self.clone();
        b.settle(now);
        b.debt <= 1e-9
    }

    pub fn set_capacity(&mut self, per_3h: u32) {
        self.capacity = f64::from(per_3h.max(1));
    }

    fn rate(&self) -> f64 {
        self.capacity / self.window
    }

    fn settle(&mut self, now: f64) {
        if now > self.at {
            self.debt = (self.debt - (now - self.at) * self.rate()).max(0.0);
            self.at = now;
        }
    }

    /// Take one order if the bucket holds one now.
    pub fn take(&mut self, now: f64) -> bool {
        self.settle(now);
        if self.debt + 1.0 <= self.capacity + 1e-9 {
            self.debt += 1.0;
            true
        } else {
            false
        }
    }

    /// Give back an order that never reached the CA (it could not be reached, or refused).
    pub fn refund(&mut self, now: f64) {
        self.settle(now);
        self.debt = (self.debt - 1.0).max(0.0);
    }

    /// When the next order is allowed: `now` if it is.
    pub fn next_at(&self, now: f64) -> f64 {
        let mut b = self.clone();
        b.settle(now);
        let over = b.debt + 1.0 - b.capacity;
        if over <= 1e-9 { now } else { now + over / b.rate() }
    }

    /// Orders still allowed now.
    pub fn available(&self, now: f64) -> f64 {
        let mut b = self.clone();
        b.settle(now);
        b.capacity - b.debt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_allows_its_capacity_then_one_per_refill_interval() {
        let mut b = Budget::new(300);
        let t0 = 1_000_000.0;
        assert_eq!((0..1000).filter(|_| b.take(t0)).count(), 300);
        assert!(!b.take(t0 + 35.0), "one order refills in 36 s");
        assert!((b.next_at(t0 + 35.0) - (t0 + 36.0)).abs() < 1e-6);
        assert!(b.take(t0 + 36.0));
        assert!(!b.take(t0 + 36.0));
    }

    #[test]
    fn over_any_span_orders_never_exceed_capacity_plus_refill() {
        // Try to order every 5 s for 10 hours; count orders in every 3-hour window.
        let mut b = Budget::new(12);
        let times: Vec<f64> = (0..7200).map(|i| f64::from(i) * 5.0).filter(|t| b.take(*t)).collect();
        for (i, t) in times.iter().enumerate() {
            let within = times[i..].iter().take_while(|u| **u < t + WINDOW).count();
            assert!(within <= 24, "{within} orders in 3 h from {t}");
        }
        // The long-run rate is the capacity per window.
        assert!(
            (times.len() as f64 - (12.0 + 36_000.0 / WINDOW * 12.0)).abs() <= 1.0,
            "{}",
            times.len()
        );
    }

    #[test]
    fn the_saved_bucket_survives_a_restart_and_a_changed_limit() {
        let mut b = Budget::new(10);
        for _ in 0..10 {
            assert!(b.take(5000.0));
        }
        let text = b.to_text();
        assert!(!Budget::from_text(10, &text).take(5000.0), "a restart does not refill");
        let mut raised = Budget::from_text(15, &text);
        assert_eq!((0..10).filter(|_| raised.take(5000.0)).count(), 5);
        assert!(Budget::from_text(10, "garbage").take(0.0), "unreadable: a full bucket");
    }

    #[test]
    fn a_refund_gives_the_order_back() {
        let mut b = Budget::new(1);
        assert!(b.take(100.0));
        assert!(!b.take(100.0));
        b.refund(100.0);
        assert!(b.take(100.0));
    }
}
