//! `[[source]]`: mail domains read from a database, and how their rows join the file's domains.
//!
//! Settings only: the query runs elsewhere (`crate::sources`); here a result (one [`Row`] per
//! mail domain) is checked row by row and merged with the file's `[[domain]]`s. A bad row is
//! skipped with its reason; the rest still serve.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::names::to_ascii_domain;
use super::{DnsSettings, Domain, MtaSts, OwnServices, Provider, Settings};

/// The domain `[source.domain]` is validated against: its names must be relative (or foreign).
pub(super) const SOURCE_DEFAULTS_DOMAIN: &str = "source-domain.invalid";

/// Longer column values are cut when read and the row is reported bad.
pub const MAX_VALUE_LEN: usize = 253;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Postgres,
    Mysql,
    Sqlite,
}

impl SourceKind {
    pub fn word(self) -> &'static str {
        match self {
            SourceKind::Postgres => "postgres",
            SourceKind::Mysql => "mysql",
            SourceKind::Sqlite => "sqlite",
        }
    }

    pub(super) fn schemes(self) -> &'static [&'static str] {
        match self {
            SourceKind::Postgres => &["postgres://", "postgresql://"],
            SourceKind::Mysql => &["mysql://", "mariadb://"],
            SourceKind::Sqlite => &["sqlite:"],
        }
    }
}

/// Where the connection URL is. Never printed: it may hold a password.
#[derive(Clone, PartialEq, Eq)]
pub enum SourceUrl {
    Inline(String),
    /// `url_file`: read at every connection, so a rotated password needs no reload.
    File(PathBuf),
}

impl fmt::Debug for SourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceUrl::Inline(_) => f.write_str("Inline(<hidden>)"),
            SourceUrl::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

impl SourceUrl {
    /// The URL (first line of `url_file`).
    pub fn read(&self) -> Result<String, String> {
        match self {
            SourceUrl::Inline(u) => Ok(u.clone()),
            SourceUrl::File(p) => std::fs::read_to_string(p)
                .map(|t| t.lines().next().unwrap_or_default().trim().to_string())
                .map_err(|e| format!("cannot read url_file `{}`: {e}", p.display())),
        }
    }
}

/// One `[[source]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSettings {
    /// `name`, or `source<N>`; names the last good result in `state_dir`.
    pub name: String,
    pub kind: SourceKind,
    pub url: SourceUrl,
    pub query: String,
    /// For rows without a `provider` column (or with NULL in it).
    pub provider: Option<Arc<Provider>>,
    pub refresh: Duration,
    pub timeout: Duration,
    /// PostgreSQL channel to `LISTEN` on: a notification refreshes at once.
    pub listen: Option<String>,
    /// `[source.domain]`, shared by every domain of the source (one copy, not one per row).
    pub dns: Option<Arc<DnsSettings>>,
    pub mta_sts: Option<Arc<MtaSts>>,
    /// `caldav`, `carddav`, `oauth2`, `documentation` of `[source.domain]`, shared likewise.
    pub own: Option<Arc<OwnServices>>,
}

/// One row as a query returned it: the named columns, NULL as `None`. A value that could not
/// be read as text, or is longer than [`MAX_VALUE_LEN`] (then kept cut), makes `problem`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Row {
    /// A column value as read: cut at [`MAX_VALUE_LEN`] bytes (on a character boundary),
    /// noting the column when cut; a value that is not text is noted too.
    pub fn value<E: fmt::Display>(&mut self, column: &str, v: Result<Option<String>, E>) -> Option<String> {
        let mut v = match v {
            Ok(v) => v?,
            Err(e) => {
                self.problem
                    .get_or_insert_with(|| format!("`{column}` is not text: {e}"));
                return None;
            }
        };
        if v.len() > MAX_VALUE_LEN {
            let mut end = 64;
            while !v.is_char_boundary(end) {
                end -= 1;
            }
            v.truncate(end);
            v.push('…');
            self.problem
                .get_or_insert_with(|| format!("`{column}` is longer than {MAX_VALUE_LEN} bytes"));
        }
        Some(v)
    }
}

/// A row skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub source: String,
    /// 1-based, in the order the query returned the rows.
    pub row: usize,
    /// The row's `domain` as given (cut when long), or `NULL`.
    pub domain: String,
    pub reason: String,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "source `{}` row {} (domain `{}`): {}",
            self.source, self.row, self.domain, self.reason
        )
    }
}

/// What a merge found besides the domains.
#[derive(Debug, Default)]
pub struct MergeReport {
    /// Per source (in settings order): rows read, domains and aliases taken.
    pub counts: Vec<(usize, usize)>,
    pub bad: Vec<BadRow>,
    /// A domain defined twice: both places; the first (the file, or the earlier row) wins.
    /// (domain, message).
    pub duplicates: Vec<(String, String)>,
}

impl Settings {
    /// These (file) settings plus each source's last good rows (`rows[i]` for `sources[i]`;
    /// `None` when a source has none yet). A domain equal to one of `previous` is shared with it,
    /// so the DNS and HTTP reload sees only what changed.
    pub fn with_sources(&self, rows: &[Option<Arc<Vec<Row>>>], previous: Option<&Settings>) -> (Settings, MergeReport) {
        let mut report = MergeReport::default();
        let mut domains = self.domains.clone();
        let mut by_name = self.by_name.clone();
        // Names taken by rows: (source, row), for the duplicate report.
        let mut origin: HashMap<String, (usize, usize)> = HashMap::new();
        for (si, src) in self.sources.iter().enumerate() {
            let Some(rows) = rows.get(si).and_then(Option::as_ref) else {
                report.counts.push((0, 0));
                continue;
            };
            let first_domain = domains.len();
            let mut taken = 0;
            let mut new: Vec<Domain> = Vec::new();
            let mut aliases: Vec<(usize, String, String)> = Vec::new();
            let bad = |row: usize, r: &Row, reason: String| BadRow {
                source: src.name.clone(),
                row: row + 1,
                domain: r.domain.clone().unwrap_or_else(|| "NULL".into()),
                reason,
            };
            for (ri, r) in rows.iter().enumerate() {
                let name = match self.row_name(r) {
                    Ok(n) => n,
                    Err(reason) => {
                        report.bad.push(bad(ri, r, reason));
                        continue;
                    }
                };
                if let Some(target) = r.alias_of.as_deref().filter(|t| !t.is_empty()) {
                    match to_ascii_domain(target) {
                        Ok(t) => aliases.push((ri, name, t)),
                        Err(e) => report.bad.push(bad(ri, r, format!("alias_of: {e}"))),
                    }
                    continue;
                }
                let provider = match (&r.provider, &src.provider) {
                    (Some(p), _) => match self.providers.iter().find(|x| &x.id == p) {
                        Some(p) => p.clone(),
                        None => {
                            report.bad.push(bad(ri, r, format!("unknown provider \"{p}\"")));
                            continue;
                        }
                    },
                    (None, Some(p)) => p.clone(),
                    (None, None) => {
                        report.bad.push(bad(
                            ri,
                            r,
                            "no provider: the provider column is NULL and the source sets none".into(),
                        ));
                        continue;
                    }
                };
                if let Some(d) = self.duplicate(&name, &by_name, &origin, si, ri) {
                    report.duplicates.push((name, d));
                    continue;
                }
                origin.insert(name.clone(), (si, ri));
                by_name.insert(name.clone(), first_domain + new.len());
                new.push(Domain {
                    name,
                    aliases: Vec::new(),
                    provider,
                    dns: src.dns.clone(),
                    mta_sts: src.mta_sts.clone(),
                    own: src.own.clone(),
                });
                taken += 1;
            }
            for (ri, name, target) in aliases {
                let r = &rows[ri];
                let at = origin
                    .get(&target)
                    .filter(|(s, _)| *s == si)
                    .and_then(|_| by_name.get(&target).copied());
                let Some(at) = at else {
                    let why = if self.by_name.contains_key(&target) {
                        format!("alias of `{target}`, which the settings file defines: list the alias there")
                    } else {
                        format!("alias of `{target}`, which this source does not return")
                    };
                    report.bad.push(bad(ri, r, why));
                    continue;
                };
                if let Some(d) = self.duplicate(&name, &by_name, &origin, si, ri) {
                    report.duplicates.push((name, d));
                    continue;
                }
                origin.insert(name.clone(), (si, ri));
                by_name.insert(name.clone(), at);
                new[at - first_domain].aliases.push(name);
                taken += 1;
            }
            for d in new {
                let shared = match previous.and_then(|p| p.domain_shared(&d.name)) {
                    Some(same) if **same == d => same.clone(),
                    _ => Arc::new(d),
                };
                domains.push(shared);
            }
            report.counts.push((rows.len(), taken));
        }
        let merged = Settings {
            server: self.server.clone(),
            providers: self.providers.clone(),
            domains,
            by_name,
            sources: self.sources.clone(),
            pieces: self.pieces.clone(),
        };
        (merged, report)
    }

    /// The row's `domain`, checked.
    fn row_name(&self, r: &Row) -> Result<String, String> {
        if let Some(p) = &r.problem {
            return Err(p.clone());
        }
        let Some(d) = r.domain.as_deref() else {
            return Err("domain is NULL".into());
        };
        to_ascii_domain(d)
    }

    /// `name` is already taken: by the file, or by an earlier row. Both places, in words.
    fn duplicate(
        &self,
        name: &str,
        by_name: &rustc_hash::FxHashMap<String, usize>,
        origin: &HashMap<String, (usize, usize)>,
        si: usize,
        ri: usize,
    ) -> Option<String> {
        let here = format!("source `{}` row {}", self.sources[si].name, ri + 1);
        if let Some(i) = self.by_name.get(name) {
            return Some(format!(
                "domain `{name}` is defined in the settings file (domain[{i}]) and by {here}: the file's definition wins"
            ));
        }
        by_name.get(name)?;
        let (s, r) = origin.get(name)?;
        Some(format!(
            "domain `{name}` is defined by source `{}` row {} and by {here}: the first wins",
            self.sources[*s].name,
            r + 1
        ))
    }
}
