//! The targets for what mailconf reads besides DNS and HTTP requests: database rows of a
//! `[[source]]`, settings text (every rejection located), the probe's readers of other servers'
//! replies, and what the ACME client reads from the CA (RFC 9773 ARI).

use std::sync::Arc;

use hickory_server::proto::op::Message;

use crate::model::ClientConfig;
use crate::settings::Diagnostics;

use super::{Fixture, check_xml};

impl Fixture {
    /// Rows from a database source (`[[source]]`), merged with the file's domains: one row a
    /// line, columns `domain`, `provider`, `alias_of` split by tabs; a lone NUL is NULL, a value
    /// that is not UTF-8 is one the database could not give as text. Checked: every row is
    /// taken, skipped with a reason or reported as a duplicate; the file's domains win; every
    /// name taken is a valid lower-case domain that finds its domain; what is taken can be
    /// served; merging the same rows again shares every domain (a refresh that changed nothing
    /// changes nothing).
    pub fn sources(&self, input: &[u8]) {
        let rows: Vec<crate::settings::Row> = input
            .split(|b| *b == b'\n')
            .take(256)
            .map(|line| {
                let mut row = crate::settings::Row::default();
                let mut cols = line.split(|b| *b == b'\t');
                let mut value = |row: &mut crate::settings::Row, name: &str| match cols.next() {
                    None | Some(b"\0") => None,
                    Some(v) => row.value(name, std::str::from_utf8(v).map(|s| Some(s.to_string()))),
                };
                row.domain = value(&mut row, "domain");
                row.provider = value(&mut row, "provider");
                row.alias_of = value(&mut row, "alias_of");
                row
            })
            .collect();
        let given = Some(Arc::new(rows.clone()));
        let (merged, report) = self.settings.with_sources(std::slice::from_ref(&given), None);
        let file = self.settings.domains.len();
        let (read, taken) = report.counts[0];
        assert_eq!(read, rows.len(), "rows read");
        assert_eq!(
            taken + report.bad.len() + report.duplicates.len(),
            rows.len(),
            "a row neither taken, skipped nor a duplicate"
        );
        for b in &report.bad {
            assert!(b.row >= 1 && b.row <= rows.len(), "{b}");
            assert!(!b.reason.trim().is_empty(), "a skipped row without a reason: {b}");
        }
        for d in &self.settings.domains {
            assert!(
                std::ptr::eq(merged.domain(&d.name).expect("a file domain"), &**d),
                "a row replaced {}",
                d.name
            );
        }
        let new = &merged.domains[file..];
        let names: usize = new.iter().map(|d| 1 + d.aliases.len()).sum();
        assert_eq!(names, taken, "names taken");
        for d in new {
            for n in d.names() {
                assert_eq!(
                    crate::settings::to_ascii_domain(n).ok().as_deref(),
                    Some(n),
                    "{n:?} is not a checked name"
                );
                assert_eq!(
                    merged.domain(n).map(|x| &x.name),
                    Some(&d.name),
                    "{n} finds another domain"
                );
            }
        }
        for d in new.iter().take(3) {
            for name in d.names() {
                let _ = crate::records::for_name(&merged, d, name);
            }
            if let Some(cfg) = ClientConfig::for_domain(&merged, &d.name, None) {
                check_xml(&crate::render::thunderbird::render(&cfg)).expect("thunderbird XML");
                check_xml(&crate::render::autodiscover::response(&cfg)).expect("POX XML");
            }
        }
        let (again, _) = self.settings.with_sources(std::slice::from_ref(&given), Some(&merged));
        for (a, b) in again.domains.iter().zip(&merged.domains) {
            assert!(Arc::ptr_eq(a, b), "merging the same rows again rebuilt {}", a.name);
        }
    }

    /// Settings text: never a panic, every rejection located inside the text. The first byte
    /// chooses where the input goes: alone, or before or after 4 generated domains; the
    /// per-domain splitter runs from 2 domains on, and the split and the whole-file parse must
    /// agree.
    pub fn settings(&self, input: &[u8]) {
        let Some((&mode, rest)) = input.split_first() else {
            return;
        };
        let Ok(text) = std::str::from_utf8(rest) else { return };
        let text = match mode % 3 {
            0 => text.to_string(),
            1 => format!("{text}\n{}", many_domains()),
            _ => format!("{}\n{text}", many_domains()),
        };
        // Split from two domains on: the split path at a fraction of the cost of 64 domains
        // (the production threshold), so the campaign reaches its ten million.
        let got = crate::settings::parse_split_from(&text, "fuzz.toml", 2);
        let whole = crate::settings::parse_whole(&text, "fuzz.toml");
        match (&got, &whole) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.providers, b.providers, "split and whole parse disagree on providers");
                assert_eq!(a.domains, b.domains, "split and whole parse disagree on domains");
                assert_eq!(
                    format!("{:?}", a.server),
                    format!("{:?}", b.server),
                    "server settings differ"
                );
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "split and whole parse report differently"),
            _ => panic!(
                "split and whole parse disagree: {:?} / {:?}",
                got.is_ok(),
                whole.is_ok()
            ),
        }
        match got {
            Err(diags) => check_located(&diags, &text),
            Ok(s) => {
                // Whatever validates can be served: records and every document.
                for d in s.domains.iter().take(4) {
                    for name in d.names() {
                        let _ = crate::records::for_name(&s, d, name);
                    }
                    if let Some(cfg) = ClientConfig::for_domain(&s, &d.name, None) {
                        check_xml(&crate::render::thunderbird::render(&cfg)).expect("thunderbird XML");
                        check_xml(&crate::render::autodiscover::response(&cfg)).expect("POX XML");
                        serde_json::from_slice::<serde_json::Value>(&crate::render::autodiscover_json::v1(&cfg))
                            .expect("JSON");
                        let _ = crate::render::mobileconfig::render(&cfg);
                    }
                }
            }
        }
    }

    /// What the probe reads from servers: SMTP replies and EHLO, IMAP and POP3 capabilities,
    /// autoconfig and POX documents, DNS answers.
    pub fn probe(&self, input: &[u8]) {
        use crate::probe::reply;
        let text = String::from_utf8_lossy(input);
        if let Ok(r) = reply::smtp_reply(&text) {
            assert!(
                (200..600).contains(&r.code) && r.code / 10 % 10 <= 5,
                "SMTP code {} outside RFC 5321's grammar",
                r.code
            );
            let ehlo = reply::Ehlo::parse(&r);
            let _ = (
                ehlo.has("STARTTLS"),
                ehlo.starttls_only_on_last_line(),
                ehlo.auth_mechanisms(),
            );
        }
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        for l in &lines {
            let _ = reply::imap_capabilities(l);
        }
        let _ = reply::pop3_capabilities(&lines);
        for servers in [crate::probe::parse_thunderbird(input), crate::probe::parse_pox(input)]
            .into_iter()
            .flatten()
        {
            for s in servers {
                assert_eq!(s.host, s.host.to_ascii_lowercase(), "host not lower-cased");
            }
        }
        if let Ok(m) = Message::from_vec(input) {
            for r in &m.answers {
                let _ = r.data.to_string();
            }
        }
    }

    /// What the ACME client reads from the CA outside rustls-acme (RFC 9773 ARI): the first
    /// byte picks the reader — a `renewalInfo` body, a `Retry-After` value, an RFC 3339 time or
    /// a certificate whose ARI ID is made. Readers never panic; a window starts before it ends,
    /// the renewal time picked in it lies inside it (or is now), a wait is never negative and
    /// the recheck stays within its bounds.
    pub fn acme(&self, input: &[u8]) {
        use crate::acme::ari;
        let Some((&which, rest)) = input.split_first() else {
            return;
        };
        let text = String::from_utf8_lossy(rest);
        let now = 1_800_000_000;
        match which % 4 {
            0 => {
                if let Some(w) = ari::parse_window(rest) {
                    assert!(w.start < w.end, "window {w:?}");
                    for random in [0.0, 0.5, 0.999_999] {
                        let at = ari::pick(w, now, random);
                        assert!(at == now || (w.start..w.end).contains(&at), "{at} outside {w:?}");
                    }
                }
            }
            1 => {
                let wait = ari::retry_after_header(&text, now);
                assert!(wait.is_none_or(|s| s >= 0), "negative wait {wait:?}");
                let again = ari::recheck_after(wait);
                assert!((60..=86_400).contains(&again) || again == ari::RECHECK_DEFAULT);
            }
            2 => {
                let _ = ari::rfc3339(&text);
            }
            _ => {
                if let Some(id) = ari::cert_id(rest) {
                    assert!(id.split('.').count() == 2, "ARI ID {id}");
                }
            }
        }
    }
}

/// Every rejection points at a place in the text and says something.
fn check_located(diags: &Diagnostics, text: &str) {
    assert!(!diags.0.is_empty(), "a rejection without a diagnostic");
    let lines = text.split('\n').count();
    for d in &diags.0 {
        assert_eq!(d.file, "fuzz.toml");
        assert!(d.line >= 1 && d.line <= lines, "line {} of {lines}: {d}", d.line);
        let width = text.split('\n').nth(d.line - 1).map_or(0, |l| l.chars().count());
        assert!(
            d.column >= 1 && d.column <= width + 1,
            "column {} of {width}: {d}",
            d.column
        );
        assert!(!d.message.trim().is_empty(), "a diagnostic without a message at {d}");
    }
}

/// 64 valid domains, enough for the settings splitter.
fn many_domains() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        (0..4)
            .map(|i| format!("[[domain]]\nname = \"d{i}.example\"\nprovider = \"p\"\n\n"))
            .collect::<String>()
            + "[provider.p]\ndisplay_name = \"P\"\n\n[[provider.p.server]]\nprotocol = \"imap\"\nhost = \"imap.p.example\"\nport = 993\nsecurity = \"tls\"\n"
    })
}
