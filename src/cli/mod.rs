//! Command line: subcommands and wiring only. No TOML, record or format logic lives here.
//!
//! One submodule per subcommand (its arguments and its function); here the command line itself,
//! `serve`, logging, and loading the settings, which every subcommand shares.

mod acme;
mod check;
mod dnssec;
mod probe;
mod render;
mod zone;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

pub use self::acme::{AcmeCommand, AcmeStatusArgs};
pub use self::check::CheckArgs;
pub use self::dnssec::{DnssecArgs, DnssecCommand, RetireArgs};
pub use self::probe::ProbeArgs;
pub use self::render::{RenderArgs, RenderFormat};
pub use self::zone::ZoneArgs;
use crate::exit;
use crate::settings::{Diagnostics, LoadError, Settings};
pub use crate::zonefiles::ZoneFormat;

/// Mail client autoconfiguration from one settings file.
#[derive(Debug, Parser)]
#[command(name = "mailconf", version, about)]
pub struct Cli {
    /// Log format for `serve`.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the settings file; print every problem with file, line, column and field.
    Check(CheckArgs),
    /// Write the DNS records as RFC 1035 zone files (or snippets to paste into your own zone).
    /// `[[source]]` domains are read as `serve` starts: each query, else the result `state_dir` kept.
    Zone(ZoneArgs),
    /// Serve DNS and HTTP for the configured domains; SIGHUP reloads, SIGTERM stops.
    Serve(ServeArgs),
    /// Print one client document for an address, exactly as `serve` would answer it.
    Render(RenderArgs),
    /// Check what a domain publishes the way a mail client would: DNS, HTTP, every server.
    Probe(ProbeArgs),
    /// ACME certificates: what the cache holds.
    #[command(subcommand)]
    Acme(AcmeCommand),
    /// DNSSEC KSK rollovers of the zones whose DS the registrar holds (ZSKs roll by themselves).
    #[command(subcommand)]
    Dnssec(DnssecCommand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// DNS listen address (UDP and TCP), repeatable; overrides `[server] dns_listen`.
    #[arg(long = "dns-listen", value_name = "ADDR:PORT")]
    pub dns_listen: Vec<std::net::SocketAddr>,
    /// HTTP listen address, repeatable; overrides `[server] http_listen`.
    #[arg(long = "http-listen", value_name = "ADDR:PORT")]
    pub http_listen: Vec<std::net::SocketAddr>,
    /// HTTPS listen address, repeatable; overrides `[server] https_listen` (needs [server.tls]).
    #[arg(long = "https-listen", value_name = "ADDR:PORT")]
    pub https_listen: Vec<std::net::SocketAddr>,
    /// Prometheus `/metrics` listen address; overrides `[server] metrics_listen`.
    #[arg(long = "metrics-listen", value_name = "ADDR:PORT")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Also reload when the settings file changes on disk (SIGHUP always reloads).
    #[arg(long)]
    pub watch: bool,
}

#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// Settings file.
    #[arg(short, long, env = "MAILCONF_CONFIG", default_value = "/etc/mailconf/mailconf.toml")]
    pub config: PathBuf,
}

/// Run one command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let _flush_logs_at_exit = init_logging(cli.log_format);
    match cli.command {
        Command::Check(args) => check::check(&args.config.config, args.sources),
        Command::Zone(args) => zone::zone(&args),
        Command::Render(args) => render::render(&args),
        Command::Probe(args) => probe::probe(&args),
        Command::Acme(AcmeCommand::Status(args)) => acme::acme_status(&args),
        Command::Dnssec(DnssecCommand::Roll(args)) => dnssec::dnssec(&args, |settings, name| {
            crate::dns::roll(settings, name).map(crate::dns::Outcome::Done)
        }),
        Command::Dnssec(DnssecCommand::Retire(args)) => dnssec::retire(&args),
        Command::Serve(args) => crate::app::serve(&crate::app::ServeOptions {
            config: args.config.config,
            dns_listen: args.dns_listen,
            http_listen: args.http_listen,
            https_listen: args.https_listen,
            metrics_listen: args.metrics_listen,
            watch: args.watch,
        }),
    }
}

/// Logs go to stderr; `RUST_LOG` filters (default: info, hickory's per-query lines off).
///
/// Lines are formatted where they happen and handed to [`crate::logwriter`], which writes them
/// batched, in order, at most 20 ms late; nothing is dropped. The access log skips tracing's
/// formatting ([`crate::accesslog`]) unless colours are on. The returned guard writes out what
/// is left when dropped; hold it until the command ends.
fn init_logging(format: LogFormat) -> crate::logwriter::Guard<std::io::Stderr> {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,hickory_server=warn"));
    let (batched, guard) = crate::logwriter::batched(std::io::stderr());
    let ansi = std::io::stderr().is_terminal();
    if !ansi {
        let access = match format {
            LogFormat::Text => crate::accesslog::Format::Text,
            LogFormat::Json => crate::accesslog::Format::Json,
        };
        crate::accesslog::install(access, batched.clone());
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || batched.clone())
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    guard
}

/// Load settings; on problems print them all and return the exit code to stop with. Reads no
/// certificate: `check` adds that step ([`Settings::read_files`]).
pub fn load(path: &Path) -> anyhow::Result<Result<Settings, ExitCode>> {
    match Settings::load(path) {
        Ok(s) => Ok(Ok(s)),
        Err(LoadError::Invalid(diags)) => Ok(Err(invalid(path, &diags))),
        Err(e) => Err(e.into()),
    }
}

fn invalid(path: &Path, diags: &Diagnostics) -> ExitCode {
    eprintln!("{diags}");
    eprintln!("mailconf: {} problem(s) in {}", diags.0.len(), path.display());
    exit::invalid()
}

/// The settings with their `[[source]]`s' domains, as `serve` would start with them: each
/// query, or when the database does not answer, the result `state_dir` kept (said on stderr).
/// For the commands that show what is served (`zone`, `probe --config`, `render`). A source with
/// neither is an error: its domains would otherwise be missing without a word.
fn with_sources(settings: Settings) -> anyhow::Result<Settings> {
    if settings.sources.is_empty() {
        return Ok(settings);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the tokio runtime")?;
    let mut rows = Vec::with_capacity(settings.sources.len());
    for (src, (got, error)) in settings
        .sources
        .iter()
        .zip(runtime.block_on(crate::sources::read_once(&settings)))
    {
        match (&got, error) {
            (None, Some(e)) => bail!(
                "source `{}` ({}): {e}, and state_dir keeps no earlier result",
                src.name,
                src.kind.word()
            ),
            (Some(kept), Some(e)) => eprintln!(
                "mailconf: source `{}` ({}): {e}: using the {} rows state_dir kept from its last good query",
                src.name,
                src.kind.word(),
                kept.len()
            ),
            _ => {}
        }
        rows.push(got.map(std::sync::Arc::new));
    }
    let (merged, report) = settings.with_sources(&rows, None);
    for src in &settings.sources {
        let bad = report.bad.iter().filter(|b| b.source == src.name).count();
        if bad > 0 {
            eprintln!(
                "mailconf: source `{}`: {bad} bad rows skipped (`mailconf check --sources` lists them)",
                src.name
            );
        }
    }
    Ok(merged)
}
