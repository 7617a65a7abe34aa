//! `mailconf serve`: load settings, start the DNS and HTTP fronts, reload on SIGHUP, stop on
//! SIGTERM/SIGINT. The fronts own their derived data; this module only hands them settings.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{debug, error, info, warn};

use crate::settings::{LoadError, Row, Settings};
use crate::sources::Update;

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

async fn run(opts: &ServeOptions, base: Arc<Settings>) -> anyhow::Result<ExitCode> {
    let (tx, mut updates) = tokio::sync::mpsc::channel(16);
    let mut live = Live::start(base, tx).await;
    let settings = live.current.clone();
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
    loop {
        tokio::select! {
            _ = hup.recv() => {
                info!(config = %opts.config.display(), "SIGHUP: reloading settings");
                live.reload(&opts.config, dns.as_ref(), http.as_ref()).await;
            }
            Some(()) = changed.recv() => {
                // Editors write in several steps: let the file settle, then reload once.
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                while changed.try_recv().is_ok() {}
                info!(config = %opts.config.display(), "settings file changed: reloading");
                live.reload(&opts.config, dns.as_ref(), http.as_ref()).await;
            }
            Some(update) = updates.recv() => {
                live.update(update, dns.as_ref(), http.as_ref()).await;
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

/// What serves: the file's settings, each `[[source]]`'s last good rows, and the two merged.
struct Live {
    /// The settings file alone.
    base: Arc<Settings>,
    /// `rows[i]`: the last good result of `base.sources[i]`.
    rows: Vec<Option<Arc<Vec<Row>>>>,
    /// Per source: the error last logged (a failure is logged once per change).
    failing: Vec<Option<String>>,
    /// Bad rows and duplicates of the current results, each logged once.
    logged: HashSet<String>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    tx: tokio::sync::mpsc::Sender<Update>,
    /// `base` with the sources' domains: what DNS and HTTP serve.
    current: Arc<Settings>,
}

impl Live {
    /// Read every source once (or take what `state_dir` kept) and start their refresh loops.
    async fn start(base: Arc<Settings>, tx: tokio::sync::mpsc::Sender<Update>) -> Live {
        let (rows, failing) = crate::sources::initial(&base).await.into_iter().unzip();
        let mut live = Live {
            failing,
            tasks: crate::sources::spawn(&base.sources, tx.clone()),
            current: base.clone(),
            base,
            rows,
            logged: HashSet::new(),
            tx,
        };
        if !live.base.sources.is_empty() {
            live.current = live.merge(None).await;
        }
        live
    }

    /// `base` plus the sources' rows; domains equal to `previous`'s stay shared with it.
    async fn merge(&mut self, previous: Option<Arc<Settings>>) -> Arc<Settings> {
        let (base, rows) = (self.base.clone(), self.rows.clone());
        let Ok((merged, report)) =
            tokio::task::spawn_blocking(move || base.with_sources(&rows, previous.as_deref())).await
        else {
            return self.current.clone();
        };
        // Keyed without row numbers: a row that moves is still the same problem.
        let mut now = HashSet::new();
        for b in &report.bad {
            let key = format!("{}\t{}\t{}", b.source, b.domain, b.reason);
            if !self.logged.contains(&key) {
                warn!(source = %b.source, row = b.row, domain = %b.domain, "row skipped: {}", b.reason);
            }
            now.insert(key);
        }
        for (name, text) in &report.duplicates {
            let key = format!("duplicate\t{name}");
            if !self.logged.contains(&key) {
                warn!("{text}");
            }
            now.insert(key);
        }
        self.logged = now;
        for src in &self.base.sources {
            let bad = report.bad.iter().filter(|b| b.source == src.name).count();
            crate::metrics::METRICS.source_bad_rows(&src.name, bad);
        }
        Arc::new(merged)
    }

    /// Hand the merged settings to the servers.
    async fn apply(
        &mut self,
        new: Arc<Settings>,
        dns: Option<&crate::dns::DnsServer>,
        http: Option<&crate::http::HttpServer>,
    ) {
        self.current = new.clone();
        if let Some(d) = dns {
            d.reload(&new).await;
        }
        if let Some(h) = http {
            h.reload(&new);
        }
        // Give back what the previous snapshot held alone. With DNS, its warm-up thread does
        // this once the new zones are built (`DnsServer::warm_up`); trimming here too would
        // walk the whole heap twice per reload.
        if dns.is_none() {
            let _ = tokio::task::spawn_blocking(crate::heap::release).await;
        }
    }

    /// A source's query came back: on failure keep serving its last good rows; on a new
    /// result, merge and reload like a settings reload (only changed domains change).
    async fn update(&mut self, u: Update, dns: Option<&crate::dns::DnsServer>, http: Option<&crate::http::HttpServer>) {
        let Some(src) = self.base.sources.get(u.index).filter(|s| ***s == *u.source).cloned() else {
            return;
        };
        let rows = match u.rows {
            Ok(rows) => rows,
            Err(e) => {
                crate::metrics::METRICS.source_failed(&src.name);
                if self.failing[u.index].as_deref() != Some(e.as_str()) {
                    warn!(source = %src.name, error = %e, "source refresh failed: still serving its last good result");
                    self.failing[u.index] = Some(e);
                }
                return;
            }
        };
        let t = std::time::Instant::now();
        crate::metrics::METRICS.source_ok(&src.name, rows.len());
        if self.failing[u.index].take().is_some() {
            info!(source = %src.name, rows = rows.len(), "source readable again");
        }
        if self.rows[u.index].as_deref() == Some(&*rows) {
            let compared = u.took + t.elapsed();
            debug!(source = %src.name, rows = rows.len(), query_ms = u.took.as_millis() as u64, total_ms = compared.as_millis() as u64, "source unchanged");
            return;
        }
        let (dir, keep) = (self.base.server.state_dir.clone(), rows.clone());
        let _ = tokio::task::spawn_blocking(move || crate::sources::save(dir.as_deref(), &src, &keep)).await;
        self.rows[u.index] = Some(rows);
        let new = self.merge(Some(self.current.clone())).await;
        info!(domains = new.domains.len(), "source changed: domains reloaded");
        self.apply(new, dns, http).await;
    }

    /// Re-read the settings file; swap it in only when it is valid as a whole. Domains that
    /// did not change stay shared with the current settings, so only what changed is held twice.
    async fn reload(
        &mut self,
        path: &Path,
        dns: Option<&crate::dns::DnsServer>,
        http: Option<&crate::http::HttpServer>,
    ) {
        let started = std::time::Instant::now();
        let (file, previous) = (path.to_path_buf(), self.current.clone());
        let loaded = tokio::task::spawn_blocking(move || load_logged(&file, Some(&previous)))
            .await
            .ok()
            .flatten();
        let Some(new) = loaded else {
            crate::metrics::METRICS.reload(false);
            warn!(config = %path.display(), "reload failed: still serving the previous settings");
            return;
        };
        // An empty or cut file parses as settings without domains; taking it would stop
        // answering for every domain at once. Removing them all takes a restart.
        if new.domains.is_empty() && new.sources.is_empty() && !self.current.domains.is_empty() {
            crate::metrics::METRICS.reload(false);
            warn!(
                config = %path.display(),
                domains = self.current.domains.len(),
                "reload refused: the new settings have no domains (an empty or cut file?); still serving the previous settings"
            );
            return;
        }
        info!(
            domains = new.domains.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "settings loaded"
        );
        let new = Arc::new(new);
        if new.sources != self.base.sources {
            // Sources changed: read them all again now, and restart their loops.
            for t in self.tasks.drain(..) {
                t.abort();
            }
            let names: Vec<&str> = new.sources.iter().map(|s| s.name.as_str()).collect();
            crate::metrics::METRICS.retain_sources(&names);
            (self.rows, self.failing) = crate::sources::initial(&new).await.into_iter().unzip();
            self.tasks = crate::sources::spawn(&new.sources, self.tx.clone());
        }
        self.base = new;
        let merged = if self.base.sources.is_empty() {
            self.base.clone()
        } else {
            self.merge(Some(self.current.clone())).await
        };
        self.apply(merged.clone(), dns, http).await;
        crate::metrics::METRICS.reload(true);
        info!(
            domains = merged.domains.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "reload done"
        );
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
