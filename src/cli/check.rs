//! `check`: validate the settings file, and with `--sources` every `[[source]]`'s rows.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::{ConfigArg, invalid, load};
use crate::exit;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Also connect to every `[[source]]`, run its query and check every row.
    #[arg(long)]
    pub sources: bool,
}

pub(super) fn check(path: &Path, sources: bool) -> anyhow::Result<ExitCode> {
    let mut settings = match load(path)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    if let Err(diags) = settings.read_files() {
        return Ok(invalid(path, &diags));
    }
    // Counted from the settings: building every record only to count zones cost most of the
    // time at 100,000 domains, and records cannot fail for validated settings.
    let zones: usize = settings
        .domains
        .iter()
        .filter_map(|d| d.dns.as_ref().map(|dns| dns.zones.len() * d.names().count()))
        .sum();
    println!(
        "{}: OK ({} providers, {} domains, {} zones)",
        path.display(),
        settings.providers.len(),
        settings.domains.len(),
        zones
    );
    let code = if sources {
        check_sources(&settings)
    } else {
        Ok(ExitCode::SUCCESS)
    };
    // The process ends now: freeing 100,000 domains one by one would only add to the time
    // (~3 % of `check` at that size).
    std::mem::forget(settings);
    code
}

/// `check --sources`: run every query; print the row count and every bad row (exit 1 if any
/// row is bad or a query fails). Domains the file defines too are noted, not failed.
fn check_sources(settings: &Settings) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the tokio runtime")?;
    let mut failed = false;
    let mut rows = Vec::new();
    for src in &settings.sources {
        match runtime.block_on(crate::sources::fetch(src)) {
            Ok(r) => rows.push(Some(std::sync::Arc::new(r))),
            Err(e) => {
                println!("source `{}` ({}): FAILED: {e}", src.name, src.kind.word());
                failed = true;
                rows.push(None);
            }
        }
    }
    let (_, report) = settings.with_sources(&rows, None);
    for ((src, (read, taken)), r) in settings.sources.iter().zip(&report.counts).zip(&rows) {
        if r.is_some() {
            let bad = report.bad.iter().filter(|b| b.source == src.name).count();
            println!(
                "source `{}` ({}): {read} rows, {taken} domains and aliases, {bad} bad rows",
                src.name,
                src.kind.word()
            );
        }
    }
    for b in &report.bad {
        println!("  {b}");
    }
    for (_, d) in &report.duplicates {
        println!("  note: {d}");
    }
    Ok(if failed || !report.bad.is_empty() {
        exit::invalid()
    } else {
        ExitCode::SUCCESS
    })
}
