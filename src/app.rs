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
    /// Overrides `[server] https_listen` when non-empty.
    pub https_listen: Vec<SocketAddr>,
    /// Overrides `[server] metrics_listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// Reload when the settings file changes on disk (besides SIGHUP).
    pub watch: bool,
}

/// Load settings and the certificate files they name ([`Settings::read_files`]) for serving,
/// logging every problem.
fn load_logged(path: &Path, previous: Option<&Settings>) -> Option<Settings> {
    let loaded =
        Settings::load_reusing(path, previous).and_then(|mut s| s.read_files().map(|()| s).map_err(LoadError::Invalid));
    match loaded {
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
    let Some(settings) = load_logged(&opts.config, None) else {
        return Ok(crate::exit::invalid());
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
    let https_addrs = pick(&opts.https_listen, &settings.server.https_listen);
    if dns_addrs.is_empty() && http_addrs.is_empty() && https_addrs.is_empty() {
        anyhow::bail!(
            "nothing to serve: give --dns-listen, --http-listen or --https-listen, or set them under [server]"
        );
    }
    let dns = if dns_addrs.is_empty() {
        None
    } else {
        Some(crate::dns::DnsServer::start(&dns_addrs, &settings).await?)
    };
    let http = if http_addrs.is_empty() && https_addrs.is_empty() {
        None
    } else {
        Some(crate::http::HttpServer::start(&http_addrs, &https_addrs, &settings).await?)
    };
    let (metrics_stop, metrics_rx) = tokio::sync::watch::channel(false);
    if let Some(addr) = opts.metrics_listen.or(settings.server.metrics_listen) {
        crate::http::serve_metrics(addr, metrics_rx).await?;
    }
    info!(config = %opts.config.display(), domains = settings.domains.len(), "mailconf serving");

    let mut hup = signal(SignalKind::hangup()).context("failed to install the SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("failed to install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("failed to install the SIGINT handler")?;
    let (_watcher, mut changed) = if opts.watch {
        watch(&opts.config)?
    } else {
        (None, tokio::sync::mpsc::channel(1).1)
    };
    let mut current = settings;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                info!(config = %opts.config.display(), "SIGHUP: reloading settings");
                reload(&opts.config, &mut current, dns.as_ref(), http.as_ref()).await;
            }
            Some(()) = changed.recv() => {
                // Editors write in several steps: let the file settle, then reload once.
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                while changed.try_recv().is_ok() {}
                info!(config = %opts.config.display(), "settings file changed: reloading");
                reload(&opts.config, &mut current, dns.as_ref(), http.as_ref()).await;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    info!("shutting down");
    let _ = metrics_stop.send(true);
    if let Some(h) = http {
        h.shutdown().await;
    }
    if let Some(d) = dns {
        d.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Re-read the settings; swap them in only when they are valid as a whole. Domains that did
/// not change stay shared with `current`, so only what changed is held twice.
async fn reload(
    path: &Path,
    current: &mut Arc<Settings>,
    dns: Option<&crate::dns::DnsServer>,
    http: Option<&crate::http::HttpServer>,
) {
    let started = std::time::Instant::now();
    let (file, previous) = (path.to_path_buf(), current.clone());
    let loaded = tokio::task::spawn_blocking(move || load_logged(&file, Some(&previous)))
        .await
        .ok()
        .flatten();
    match loaded {
        // An empty or cut file parses as settings without domains; taking it would stop
        // answering for every domain at once. Removing them all takes a restart.
        Some(new) if new.domains.is_empty() && !current.domains.is_empty() => {
            crate::metrics::METRICS.reload(false);
            warn!(
                config = %path.display(),
                domains = current.domains.len(),
                "reload refused: the new settings have no domains (an empty or cut file?); still serving the previous settings"
            );
        }
        Some(new) => {
            info!(
                domains = new.domains.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "settings loaded"
            );
            let new = Arc::new(new);
            *current = new.clone();
            if let Some(d) = dns {
                d.reload(&new).await;
            }
            if let Some(h) = http {
                h.reload(&new);
            }
            crate::metrics::METRICS.reload(true);
            info!(
                domains = new.domains.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "reload done"
            );
            // The previous snapshot's unshared parts are gone by now.
            let _ = tokio::task::spawn_blocking(crate::heap::release).await;
        }
        None => {
            crate::metrics::METRICS.reload(false);
            warn!(config = %path.display(), "reload failed: still serving the previous settings");
        }
    }
}

type Watch = (Option<notify::RecommendedWatcher>, tokio::sync::mpsc::Receiver<()>);

/// Watch the directory of the settings file (editors and config managers replace files by
/// rename, which a watch on the file itself would miss) and signal changes to that file.
fn watch(path: &Path) -> anyhow::Result<Watch> {
    use notify::{RecursiveMode, Watcher};
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let file = path.file_name().map(ToOwned::to_owned);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| match ev {
        Ok(ev) if !ev.kind.is_access() && ev.paths.iter().any(|p| p.file_name() == file.as_deref()) => {
            let _ = tx.try_send(());
        }
        Ok(_) => {}
        Err(e) => warn!(error = %e, "settings file watch error"),
    })
    .context("failed to start watching the settings file")?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("failed to watch `{}`", dir.display()))?;
    info!(dir = %dir.display(), "watching the settings file for changes");
    Ok((Some(watcher), rx))
}
