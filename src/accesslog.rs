//! The access log: one line per HTTP request, formatted by hand.
//!
//! Through tracing, a request line cost its field visitors (`Debug` and `Display` through
//! `core::fmt` for every value, an escaping writer, ANSI style wrappers even when colours are
//! off) and a hop through a channel to a logging thread (perf, GET under wrk). The access line has
//! fixed fields, so it is written here instead, byte for byte as the fmt layer writes it (text or
//! JSON; `tests` compare the two), into a per-thread buffer and from there into the batched
//! stderr writer ([`crate::logwriter`]). `RUST_LOG` still decides: the line is written when
//! tracing would log an INFO event of target `mailconf::http`. Without [`install`] (a terminal
//! with colours, or no `serve`), the line goes through tracing as any other.

use std::cell::RefCell;
use std::io::Write;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::logwriter::Batched;

/// The target tracing would give the event (the module that logs it).
const TARGET: &str = "mailconf::http";

/// One request, as it is logged. Never the mail address.
pub struct Entry<'a> {
    pub client: IpAddr,
    pub tls: bool,
    pub host: Option<&'a str>,
    pub method: &'a str,
    pub endpoint: &'a str,
    pub domain: Option<&'a str>,
    pub status: u16,
    pub latency_us: u64,
}

/// Line layouts, as tracing-subscriber's fmt layer writes them.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Format {
    Text,
    Json,
}

struct Sink {
    format: Format,
    out: Batched<std::io::Stderr>,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Write access lines straight to `out` from now on (once; later calls change nothing).
pub fn install(format: Format, out: Batched<std::io::Stderr>) {
    let _ = SINK.set(Sink { format, out });
}

thread_local! {
    /// The line being built, and the second whose `YYYY-MM-DDTHH:MM:SS` prefix is cached.
    static LINE: RefCell<(Vec<u8>, u64, [u8; 19])> = const { RefCell::new((Vec::new(), u64::MAX, [0; 19])) };
}

/// Log one request (if INFO of this target is enabled).
pub fn log(e: &Entry) {
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    let Some(sink) = SINK.get() else {
        tracing::info!(
            target: TARGET,
            client = %e.client,
            tls = e.tls,
            host = e.host.unwrap_or("-"),
            method = %e.method,
            endpoint = e.endpoint,
            domain = e.domain.unwrap_or("-"),
            status = e.status,
            latency_us = e.latency_us,
            "request"
        );
        return;
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    LINE.with_borrow_mut(|(buf, second, prefix)| {
        if *second != now.as_secs() {
            *second = now.as_secs();
            *prefix = date_time(now.as_secs());
        }
        buf.clear();
        format(buf, sink.format, prefix, now.subsec_micros(), e);
        sink.out.write_line(buf);
    });
}

/// The whole line, newline included. `prefix` is the second, `micros` the fraction.
fn format(buf: &mut Vec<u8>, format: Format, prefix: &[u8; 19], micros: u32, e: &Entry) {
    let mut frac = itoa::Buffer::new();
    let mut timestamp = |buf: &mut Vec<u8>| {
        buf.extend_from_slice(prefix);
        buf.push(b'.');
        let digits = frac.format(micros);
        buf.extend_from_slice(&b"000000"[digits.len()..]);
        buf.extend_from_slice(digits.as_bytes());
        buf.push(b'Z');
    };
    let mut n = itoa::Buffer::new();
    match format {
        Format::Text => {
            timestamp(buf);
            buf.extend_from_slice(b"  INFO ");
            buf.extend_from_slice(TARGET.as_bytes());
            buf.extend_from_slice(b": request client=");
            let _ = write!(buf, "{}", e.client);
            buf.extend_from_slice(if e.tls { b" tls=true host=" } else { b" tls=false host=" });
            debug_str(buf, e.host.unwrap_or("-"));
            buf.extend_from_slice(b" method=");
            buf.extend_from_slice(e.method.as_bytes());
            buf.extend_from_slice(b" endpoint=");
            debug_str(buf, e.endpoint);
            buf.extend_from_slice(b" domain=");
            debug_str(buf, e.domain.unwrap_or("-"));
            buf.extend_from_slice(b" status=");
            buf.extend_from_slice(n.format(e.status).as_bytes());
            buf.extend_from_slice(b" latency_us=");
            buf.extend_from_slice(n.format(e.latency_us).as_bytes());
        }
        Format::Json => {
            buf.extend_from_slice(b"{\"timestamp\":\"");
            timestamp(buf);
            buf.extend_from_slice(b"\",\"level\":\"INFO\",\"fields\":{\"message\":\"request\",\"client\":\"");
            let _ = write!(buf, "{}", e.client);
            buf.extend_from_slice(if e.tls {
                b"\",\"tls\":true,\"host\":"
            } else {
                b"\",\"tls\":false,\"host\":"
            });
            json_str(buf, e.host.unwrap_or("-"));
            buf.extend_from_slice(b",\"method\":");
            json_str(buf, e.method);
            buf.extend_from_slice(b",\"endpoint\":");
            json_str(buf, e.endpoint);
            buf.extend_from_slice(b",\"domain\":");
            json_str(buf, e.domain.unwrap_or("-"));
            buf.extend_from_slice(b",\"status\":");
            buf.extend_from_slice(n.format(e.status).as_bytes());
            buf.extend_from_slice(b",\"latency_us\":");
            buf.extend_from_slice(n.format(e.latency_us).as_bytes());
            buf.extend_from_slice(b"},\"target\":\"");
            buf.extend_from_slice(TARGET.as_bytes());
            buf.extend_from_slice(b"\"}");
        }
    }
    buf.push(b'\n');
}

/// Printable ASCII other than the quote and the backslash: written as it is by both escapes.
fn plain(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// `s` as `{:?}` writes it (what the fmt layer does with a `&str` field).
fn debug_str(buf: &mut Vec<u8>, s: &str) {
    if plain(s) {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        let _ = write!(buf, "{s:?}");
    }
}

/// `s` as a JSON string, as serde_json writes it (what the JSON layer uses).
fn json_str(buf: &mut Vec<u8>, s: &str) {
    if plain(s) {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *buf, s);
    }
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) of a Unix time.
fn date_time(secs: u64) -> [u8; 19] {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = crate::dates::civil_from_days(days);
    let mut out = [0u8; 19];
    let mut w = &mut out[..];
    let _ = write!(
        w,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn dates_are_civil_utc() {
        let s = |t| String::from_utf8(date_time(t).to_vec()).unwrap();
        assert_eq!(s(0), "1970-01-01T00:00:00");
        assert_eq!(s(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(s(1_709_251_199), "2024-02-29T23:59:59");
        assert_eq!(s(1_709_251_200), "2024-03-01T00:00:00");
        assert_eq!(s(1_798_761_599), "2026-12-31T23:59:59");
        assert_eq!(s(4_107_542_400), "2100-03-01T00:00:00");
    }

    /// A writer tracing formats into.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What tracing's fmt layer writes for the entry (no sink installed in unit tests).
    fn by_tracing(format: Format, e: &Entry) -> String {
        let out = Captured::default();
        let writer = {
            let out = out.clone();
            move || out.clone()
        };
        let builder = tracing_subscriber::fmt().with_writer(writer).with_ansi(false);
        let _default = match format {
            Format::Text => tracing::subscriber::set_default(builder.finish()),
            Format::Json => tracing::subscriber::set_default(builder.json().finish()),
        };
        log(e);
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn lines_are_the_ones_tracing_writes() {
        let entries = [
            Entry {
                client: "192.0.2.7".parse().unwrap(),
                tls: false,
                host: Some("autoconfig.example.com"),
                method: "GET",
                endpoint: "thunderbird",
                domain: Some("example.com"),
                status: 200,
                latency_us: 88,
            },
            Entry {
                client: "2001:db8::1".parse().unwrap(),
                tls: true,
                host: Some("odd\t\"host\"\\ \u{7f} é\u{200b}"),
                method: "POST",
                endpoint: "unknown",
                domain: None,
                status: 413,
                latency_us: 12_345_678,
            },
            Entry {
                client: "127.0.0.1".parse().unwrap(),
                tls: false,
                host: None,
                method: "PROPFIND",
                endpoint: "autodiscover",
                domain: Some("xn--bcher-kva.example"),
                status: 404,
                latency_us: 0,
            },
        ];
        for format in [Format::Text, Format::Json] {
            for (i, e) in entries.iter().enumerate() {
                let theirs = by_tracing(format, e);
                let micros = [0, 5, 999_999][i];
                let mut ours = Vec::new();
                format_line(&mut ours, format, micros, e);
                let ours = String::from_utf8(ours).unwrap();
                // Same bytes after the timestamp (27 bytes, after `{"timestamp":"` in JSON).
                let skip = if format == Format::Json { 14 } else { 0 };
                assert_eq!(ours[..skip], theirs[..skip], "{format:?}");
                assert_eq!(ours[skip + 27..], theirs[skip + 27..], "{format:?}");
                // Same timestamp shape: the second, a dot, six digits, Z.
                let ts = &ours[skip..skip + 27];
                assert_eq!(ts[..19], *"2026-12-02T02:15:55", "{ts}");
                assert_eq!(ts[19..], format!(".{micros:06}Z"), "{ts}");
                let t = &theirs[skip..skip + 27];
                assert!(
                    t.as_bytes()[19] == b'.' && t.ends_with('Z') && t[20..26].bytes().all(|b| b.is_ascii_digit()),
                    "{t}"
                );
            }
        }
    }

    /// The line for a fixed instant (2026-12-02T02:15:55 and `micros`).
    fn format_line(buf: &mut Vec<u8>, f: Format, micros: u32, e: &Entry) {
        format(buf, f, &date_time(1_796_177_755), micros, e);
    }
}
