//! Counters for Prometheus (`/metrics` on `[server] metrics_listen`).
//!
//! A fixed set of lock-free counters rather than a metrics facade: the UDP answer path runs at
//! 150k queries/s per core and must not hash label sets per packet. The text exposition format
//! (version 0.0.4) is a few lines per family.

use std::fmt::Write;
use std::sync::LazyLock;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

const QTYPES: [(u16, &str); 11] = [
    (1, "A"),
    (28, "AAAA"),
    (33, "SRV"),
    (15, "MX"),
    (16, "TXT"),
    (2, "NS"),
    (6, "SOA"),
    (5, "CNAME"),
    (255, "ANY"),
    (252, "AXFR"),
    (251, "IXFR"),
];
const RCODES: [&str; 6] = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];

/// Every counter mailconf exports.
pub struct Metrics {
    /// [qtype bucket (last = other)][rcode (last = other)]
    dns: [[AtomicU64; RCODES.len() + 1]; QTYPES.len() + 1],
    dns_rate_limited: AtomicU64,
    /// Replies to a TSIG-signed NOTIFY that were unsigned or did not verify.
    notify_replies_untrusted: AtomicU64,
    http: Mutex<Vec<(&'static str, u16, u64)>>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    /// Failed writes of `state_dir` (zone serials), and whether the last one failed.
    state_write_failures: AtomicU64,
    state_write_failing: AtomicBool,
    /// Unix time the serving certificate expires; 0 = none.
    cert_not_after: AtomicI64,
    /// One entry per `[[source]]` name (a handful: a lock per query result is nothing).
    sources: Mutex<Vec<SourceMetric>>,
    /// ACME progress, once the scheduler runs (set per scheduler step, never per request).
    acme: Mutex<Option<AcmeGauges>>,
}

/// What `/metrics` shows of the ACME scheduler.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcmeGauges {
    pub certified: u64,
    /// Waiting for an order (or being ordered, or not yet looked up in the cache).
    pub queued: u64,
    /// The last order failed; waiting to retry.
    pub failing: u64,
    /// Unix time the budget (and any pause the CA asked for) allows the next order.
    pub next_order_at: i64,
}

/// What `/metrics` shows of one `[[source]]`.
#[derive(Clone, Default)]
struct SourceMetric {
    name: String,
    up: bool,
    rows: usize,
    bad_rows: usize,
    last_success: i64,
    errors: u64,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    dns: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
    dns_rate_limited: AtomicU64::new(0),
    notify_replies_untrusted: AtomicU64::new(0),
    http: Mutex::new(Vec::new()),
    reloads_ok: AtomicU64::new(0),
    reloads_failed: AtomicU64::new(0),
    state_write_failures: AtomicU64::new(0),
    state_write_failing: AtomicBool::new(false),
    cert_not_after: AtomicI64::new(0),
    sources: Mutex::new(Vec::new()),
    acme: Mutex::new(None),
});

impl Metrics {
    /// Count one DNS answer: qtype from the question, rcode from the answer header.
    pub fn dns(&self, qtype: u16, rcode: u8) {
        let q = QTYPES.iter().position(|(t, _)| *t == qtype).unwrap_or(QTYPES.len());
        let r = usize::from(rcode).min(RCODES.len());
        self.dns[q][r].fetch_add(1, Ordering::Relaxed);
    }

    pub fn dns_rate_limited(&self) {
        self.dns_rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub fn notify_reply_untrusted(&self) {
        self.notify_replies_untrusted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn http(&self, endpoint: &'static str, status: u16) {
        let mut v = self.http.lock().unwrap_or_else(|e| e.into_inner());
        match v.iter_mut().find(|(e, s, _)| *e == endpoint && *s == status) {
            Some(entry) => entry.2 += 1,
            None => v.push((endpoint, status, 1)),
        }
    }

    pub fn reload(&self, ok: bool) {
        if ok { &self.reloads_ok } else { &self.reloads_failed }.fetch_add(1, Ordering::Relaxed);
    }

    /// Record one write of the state directory; true when this changes failing ↔ working
    /// (so that the caller logs a lasting problem once, and its end once).
    pub fn state_write(&self, ok: bool) -> bool {
        if !ok {
            self.state_write_failures.fetch_add(1, Ordering::Relaxed);
        }
        self.state_write_failing.swap(!ok, Ordering::Relaxed) == ok
    }

    pub fn set_acme(&self, g: AcmeGauges) {
        *self.acme.lock().unwrap_or_else(|e| e.into_inner()) = Some(g);
    }

    pub fn set_cert_not_after(&self, unix: i64) {
        self.cert_not_after.store(unix, Ordering::Relaxed);
    }

    fn source(&self, name: &str, f: impl FnOnce(&mut SourceMetric)) {
        let mut v = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let i = v.iter().position(|s| s.name == name).unwrap_or_else(|| {
            v.push(SourceMetric {
                name: name.to_string(),
                ..SourceMetric::default()
            });
            v.len() - 1
        });
        f(&mut v[i]);
    }

    /// Forget the sources a reload removed: only `keep`'s names stay in `/metrics`.
    pub fn retain_sources(&self, keep: &[&str]) {
        let mut v = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        v.retain(|s| keep.contains(&s.name.as_str()));
    }

    /// A source's query worked and returned `rows` rows.
    pub fn source_ok(&self, name: &str, rows: usize) {
        self.source(name, |s| {
            s.up = true;
            s.rows = rows;
            s.last_success = now_unix();
        });
    }

    /// A source's query failed (its last good rows still serve).
    pub fn source_failed(&self, name: &str) {
        self.source(name, |s| {
            s.up = false;
            s.errors += 1;
        });
    }

    /// Rows of a source's current result that were skipped.
    pub fn source_bad_rows(&self, name: &str, bad: usize) {
        self.source(name, |s| s.bad_rows = bad);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP mailconf_dns_responses_total DNS answers sent, by query type and response code."
        );
        let _ = writeln!(o, "# TYPE mailconf_dns_responses_total counter");
        for (qi, row) in self.dns.iter().enumerate() {
            let qtype = QTYPES.get(qi).map_or("other", |(_, n)| n);
            for (ri, c) in row.iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n > 0 {
                    let rcode = RCODES.get(ri).copied().unwrap_or("other");
                    let _ = writeln!(
                        o,
                        "mailconf_dns_responses_total{{qtype=\"{qtype}\",rcode=\"{rcode}\"}} {n}"
                    );
                }
            }
        }
        let _ = writeln!(
            o,
            "# HELP mailconf_dns_rate_limited_total UDP answers dropped or truncated by response rate limiting."
        );
        let _ = writeln!(o, "# TYPE mailconf_dns_rate_limited_total counter");
        let _ = writeln!(
            o,
            "mailconf_dns_rate_limited_total {}",
            self.dns_rate_limited.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP mailconf_notify_replies_untrusted_total Replies to a TSIG-signed NOTIFY that were unsigned or did not verify (ignored)."
        );
        let _ = writeln!(o, "# TYPE mailconf_notify_replies_untrusted_total counter");
        let _ = writeln!(
            o,
            "mailconf_notify_replies_untrusted_total {}",
            self.notify_replies_untrusted.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP mailconf_http_requests_total HTTP requests, by endpoint and status."
        );
        let _ = writeln!(o, "# TYPE mailconf_http_requests_total counter");
        let mut http = self.http.lock().unwrap_or_else(|e| e.into_inner()).clone();
        http.sort();
        for (e, s, n) in http {
            let _ = writeln!(o, "mailconf_http_requests_total{{endpoint=\"{e}\",status=\"{s}\"}} {n}");
        }
        let _ = writeln!(o, "# HELP mailconf_reloads_total Settings reloads, by result.");
        let _ = writeln!(o, "# TYPE mailconf_reloads_total counter");
        let _ = writeln!(
            o,
            "mailconf_reloads_total{{result=\"ok\"}} {}",
            self.reloads_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "mailconf_reloads_total{{result=\"failed\"}} {}",
            self.reloads_failed.load(Ordering::Relaxed)
        );
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if !sources.is_empty() {
            type Field = fn(&SourceMetric) -> i64;
            let families: [(&str, &str, &str, Field); 5] = [
                (
                    "up",
                    "gauge",
                    "1 if the source's last query worked, 0 if it failed.",
                    |s| i64::from(s.up),
                ),
                ("rows", "gauge", "Rows of the source's last good result.", |s| {
                    s.rows as i64
                }),
                (
                    "bad_rows",
                    "gauge",
                    "Rows of the last good result skipped as invalid.",
                    |s| s.bad_rows as i64,
                ),
                (
                    "last_success_timestamp_seconds",
                    "gauge",
                    "Unix time of the last query that worked (0: none since start).",
                    |s| s.last_success,
                ),
                (
                    "errors_total",
                    "counter",
                    "Queries that failed (connection, timeout, permission, query error).",
                    |s| s.errors as i64,
                ),
            ];
            for (name, kind, help, field) in families {
                let _ = writeln!(o, "# HELP mailconf_source_{name} {help}");
                let _ = writeln!(o, "# TYPE mailconf_source_{name} {kind}");
                for s in &sources {
                    let _ = writeln!(o, "mailconf_source_{name}{{source=\"{}\"}} {}", s.name, field(s));
                }
            }
        }
        let _ = writeln!(
            o,
            "# HELP mailconf_state_write_failures_total Failed writes of state_dir (zone serials)."
        );
        let _ = writeln!(o, "# TYPE mailconf_state_write_failures_total counter");
        let _ = writeln!(
            o,
            "mailconf_state_write_failures_total {}",
            self.state_write_failures.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP mailconf_state_write_failing 1 while the last write of state_dir failed."
        );
        let _ = writeln!(o, "# TYPE mailconf_state_write_failing gauge");
        let _ = writeln!(
            o,
            "mailconf_state_write_failing {}",
            u8::from(self.state_write_failing.load(Ordering::Relaxed))
        );
        let exp = self.cert_not_after.load(Ordering::Relaxed);
        if exp > 0 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let _ = writeln!(
                o,
                "# HELP mailconf_certificate_expiry_seconds Seconds until the serving certificate expires."
            );
            let _ = writeln!(o, "# TYPE mailconf_certificate_expiry_seconds gauge");
            let _ = writeln!(o, "mailconf_certificate_expiry_seconds {}", exp - now);
        }
        if let Some(g) = *self.acme.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = writeln!(o, "# HELP mailconf_acme_certificates ACME certificates by state.");
            let _ = writeln!(o, "# TYPE mailconf_acme_certificates gauge");
            for (state, n) in [("certified", g.certified), ("queued", g.queued), ("failing", g.failing)] {
                let _ = writeln!(o, "mailconf_acme_certificates{{state=\"{state}\"}} {n}");
            }
            let _ = writeln!(
                o,
                "# HELP mailconf_acme_next_order_timestamp_seconds When the order budget allows the next new order (unix time)."
            );
            let _ = writeln!(o, "# TYPE mailconf_acme_next_order_timestamp_seconds gauge");
            let _ = writeln!(o, "mailconf_acme_next_order_timestamp_seconds {}", g.next_order_at);
        }
        o
    }
}

/// Question type of a request whose name ends at `name_end` (0 when unreadable).
pub fn qtype_of(req: &[u8], name_end: Option<usize>) -> u16 {
    name_end
        .and_then(|e| req.get(e..e + 2))
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
}
