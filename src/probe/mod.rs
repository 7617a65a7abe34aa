//! `mailconf probe DOMAIN`: do what a careful mail client does with what a domain publishes, and
//! report each step as pass / warn / fail with a one-line reason and what to change.
//!
//! 1. DNS: the RFC 6186/8314 SRV names, `_autodiscover._tcp`, MX, SPF, DMARC, MTA-STS, TLS-RPT,
//!    through the given resolver; with `--config`, a diff against what mailconf would publish.
//! 2. HTTP: Thunderbird autoconfig (both URLs) and the Outlook POX request, https first, then the
//!    plain-http fallbacks clients use; disagreement with the SRV view is a finding. Both are
//!    read back through [`crate::vocab`], the tables mailconf itself publishes from.
//! 3. Calendars, contacts and PACC ([`dav`]): RFC 6764 SRV/TXT and the `.well-known` redirect
//!    (PROPFIND), the PACC document against its DNS digest; silent when none is published.
//! 4. Every advertised server: connect, implicit TLS or STARTTLS as advertised, verify the
//!    certificate, read greeting and capabilities, flag the classic mistakes.

mod dav;
mod dns;
mod http;
mod mail;
pub mod net;
pub mod reply;
mod web;
pub(crate) use web::{parse_pox, parse_thunderbird};

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::settings::{Protocol, Security, Settings};
use crate::vocab;

/// Severity of one finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Pass,
    Warn,
    Fail,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Pass => "PASS",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        })
    }
}

/// One checked fact.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub step: &'static str,
    pub subject: String,
    pub level: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// What to probe and how.
#[derive(Debug, Clone)]
pub struct Options {
    pub domain: String,
    pub settings: Option<Settings>,
    pub resolver: SocketAddr,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    /// Ports for the web step (443 and 80 unless testing against unprivileged ports).
    pub https_port: u16,
    pub http_port: u16,
}

/// A mail server as some source advertises it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Advertised {
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
    /// From an SRV record this is the first mode its label stands for (STARTTLS for a plain
    /// label, which also covers cleartext: [`vocab::srv_meaning`]) until a document refines it.
    pub security: Security,
}

impl Advertised {
    /// What SRV can say about this server: compared in these terms, a cleartext server in a
    /// document agrees with its `_imap` record.
    fn srv_key(&self) -> (&'static str, &str, u16) {
        (vocab::srv_label(self.protocol, self.security), &self.host, self.port)
    }

    fn sort_key(&self) -> (Protocol, &str, u16, u8) {
        (self.protocol, &self.host, self.port, self.security as u8)
    }
}

impl Ord for Advertised {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl PartialOrd for Advertised {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Advertised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = match self.security {
            Security::Tls => "tls",
            Security::Starttls => "starttls",
            Security::None => "plain",
        };
        write!(f, "{} {}:{} ({t})", self.protocol.thunderbird(), self.host, self.port)
    }
}

/// The SRV view, each server's TLS mode taken from a document that publishes the same server
/// under the same SRV label (a plain label does not tell STARTTLS from cleartext).
fn refine(srv: Vec<Advertised>, docs: &[Advertised]) -> Vec<Advertised> {
    srv.into_iter()
        .map(|s| docs.iter().find(|d| d.srv_key() == s.srv_key()).cloned().unwrap_or(s))
        .collect()
}

/// Collected findings.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub domain: String,
    pub findings: Vec<Finding>,
}

impl Report {
    fn add(
        &mut self,
        step: &'static str,
        subject: impl Into<String>,
        level: Level,
        message: impl Into<String>,
        fix: Option<&str>,
    ) {
        self.findings.push(Finding {
            step,
            subject: subject.into(),
            level,
            message: message.into(),
            fix: fix.map(str::to_string),
        });
    }

    pub fn worst(&self) -> Level {
        self.findings.iter().map(|f| f.level).max().unwrap_or(Level::Pass)
    }

    /// Human-readable lines: `LEVEL step subject: message (fix: …)`.
    pub fn text(&self) -> String {
        let mut out = format!("mailconf probe {}\n", self.domain);
        for f in &self.findings {
            out.push_str(&format!("{} {:<5} {}: {}", f.level, f.step, f.subject, f.message));
            if let Some(fix) = &f.fix {
                out.push_str(&format!("\n      fix: {fix}"));
            }
            out.push('\n');
        }
        let count = |l| self.findings.iter().filter(|f| f.level == l).count();
        out.push_str(&format!(
            "{} passed, {} warnings, {} failed\n",
            count(Level::Pass),
            count(Level::Warn),
            count(Level::Fail)
        ));
        out
    }
}

/// Run every step.
pub fn run(opts: &Options) -> Result<Report, String> {
    let resolver = net::Resolver {
        addr: opts.resolver,
        timeout: opts.timeout,
        recursion: true,
    };
    let tls = net::tls_config(opts.ca_file.as_deref())?;
    let mut report = Report {
        domain: opts.domain.clone(),
        findings: Vec::new(),
    };
    let srv = dns::check(opts, &resolver, &mut report);
    let web = web::check(opts, &resolver, &tls, &srv, &mut report);
    dav::check(opts, &resolver, &tls, &mut report);
    // Servers: the SRV view (with the documents' exact TLS modes), else what autoconfig advertised.
    let mut servers = if srv.is_empty() { web } else { refine(srv, &web) };
    servers.sort();
    servers.dedup();
    for s in &servers {
        mail::check(s, &resolver, &tls, opts.timeout, &mut report);
    }
    Ok(report)
}
