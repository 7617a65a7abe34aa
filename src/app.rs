//! `mailconf serve`: load settings, start the DNS and HTTP fronts, reload on SIGHUP, stop on
//! SIGTERM/SIGINT. The fronts own their derived data; this module only hands them settings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

use crate::settings::{LoadError, Settings};

/// What `serve` needs from the command line.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub config: PathBuf,
    /// Overrides `[server] dns_listen` when non-empty.
    pub dns_listen: Vec<SocketAddr>,
    /// Overrides `[server] http_listen` when non-empty.
    pub http_listen: Vec<SocketAddr>,
}

/// Load settings for serving, logging every problem.
fn load_logged(path: &Path) -> Option<Settings> {
    match Settings::load(path) {
        Ok(s) => Some(s),
        Err(LoadError::Invalid(diags)) => {
            for d in &diags.0 {
                error!(file = %d.file, line = d.line, column = d.column, field = %d.path, "{}", d.message);
            }
            None
        }
        Err(e) => {
            error!(error = %e, "cannot load settings");
            None
        }
    }
}

/// Run the servers until SIGTERM or SIGINT.
pub fn serve(opts: &ServeOptions) -> anyhow::Result<ExitCode> {
    let Some(settings) = load_logged(&opts.config) else {
        return Ok(ExitCode::from(crate::cli::EXIT_INVALID));
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the tokio runtime")?;
    runtime.block_on(run(opts, Arc::new(settings)))
}

async fn run(opts: &ServeOptions, settings: Arc<Settings>) -> anyhow::Result<ExitCode> {
    let pick = |cli: &Vec<SocketAddr>, file: &Vec<SocketAddr>| {
        if cli.is_empty() { file.clone() } else { cli.clone() }
    };
    let dns_addrs = pick(&opts.dns_listen, &settings.server.dns_listen);
    let http_addrs = pick(&opts.http_listen, &settings.server.http_listen);
    if dns_addrs.is_empty() && http_addrs.is_empty() {
        anyhow::bail!("nothing to serve: give --dns-listen or --http-listen, or set them under [server]");
    }
    let dns = if dns_addrs.is_empty() {
        None
    } else {
        Some(crate::dns::DnsServer::start(&dns_addrs, &settings).await?)
    };
    let http = if http_addrs.is_empty() {
        None
    } else {
        Some(crate::http::HttpServer::start(&http_addrs, &settings).await?)
    };
    info!(config = %opts.config.display(), domains = settings.domains.len(), "mailconf serving");

    let mut hup = signal(SignalKind::hangup()).context("failed to install the SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("failed to install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("failed to install the SIGINT handler")?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                info!(config = %opts.config.display(), "SIGHUP: reloading settings");
                match load_logged(&opts.config) {
                    Some(new) => {
                        let new = Arc::new(new);
                        if let Some(d) = &dns { d.reload(&new).await; }
                        if let Some(h) = &http { h.reload(&new); }
                        info!(domains = new.domains.len(), "reload done");
                    }
                    None => warn!("reload failed: still serving the previous settings"),
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    info!("shutting down");
    if let Some(h) = http {
        h.shutdown().await;
    }
    if let Some(d) = dns {
        d.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}
