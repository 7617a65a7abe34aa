//! Command line: subcommands and wiring only. No TOML, record or format logic lives here.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::records::{self, DomainRecords};
use crate::render::zonefile;
use crate::settings::{Diagnostics, LoadError, Settings};
pub use crate::zonefiles::ZoneFormat;
use crate::{exit, zonefiles};

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

#[derive(Debug, Subcommand)]
pub enum DnssecCommand {
    /// Start a key rollover: a new key is published beside the old one and both sign; prints the
    /// new DS for the registrar. A running `serve` picks it up within seconds (new serial, NOTIFY).
    Roll(DnssecArgs),
    /// End the rollover once the parent serves the new DS and the old DS's TTL has passed: the
    /// old key is no longer published nor used. Prints the DS in force. Asks a resolver for the
    /// parent's DS first; refused (exit 3) until the parent has served the new DS for the old DS
    /// set's TTL (the first sighting is kept in `state_dir`: run it again after the time it says).
    Retire(RetireArgs),
}

#[derive(Debug, clap::Args)]
pub struct RetireArgs {
    #[command(flatten)]
    pub dnssec: DnssecArgs,
    /// The resolver to ask for the parent's DS (recursion desired). Default: the first
    /// `nameserver` of /etc/resolv.conf. Use one you trust: its answer is not validated.
    #[arg(long, value_name = "ADDR[:PORT]", value_parser = crate::dns::server_addr)]
    pub resolver: Option<std::net::SocketAddr>,
    /// Ask this name server of the parent zone directly (no recursion) instead of a resolver.
    #[arg(long, value_name = "ADDR[:PORT]", value_parser = crate::dns::server_addr, conflicts_with = "resolver")]
    pub parent_server: Option<std::net::SocketAddr>,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub timeout: u64,
    /// Retire without checking the parent's DS (the operator checked it).
    #[arg(long, conflicts_with_all = ["resolver", "parent_server"])]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct DnssecArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The mail domain (a primary domain or an alias).
    #[arg(short, long)]
    pub domain: String,
}

#[derive(Debug, Subcommand)]
pub enum AcmeCommand {
    /// Each certificate in `cache_dir`: valid until when, when it renews, or none yet; and when
    /// the order budget allows the next order. Exit 1 if any has no valid certificate.
    Status(AcmeStatusArgs),
}

#[derive(Debug, clap::Args)]
pub struct AcmeStatusArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only the certificates of this mail domain.
    #[arg(short, long)]
    pub domain: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Also connect to every `[[source]]`, run its query and check every row.
    #[arg(long)]
    pub sources: bool,
}

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// The mail domain to check.
    pub domain: String,
    /// Also compare DNS with what this settings file would publish (with its `[[source]]`
    /// domains, read as `serve` starts: each query, else the result `state_dir` kept).
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// DNS server to ask (a resolver, or an authoritative server for its zones).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:53")]
    pub resolver: std::net::SocketAddr,
    /// Extra trusted CA certificates (PEM), besides the web PKI roots.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Print JSON (for monitoring) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for each connection or answer.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
    /// Port for the HTTPS fetches (testing).
    #[arg(long, default_value_t = 443, hide = true)]
    pub https_port: u16,
    /// Port for the plain-HTTP fallbacks (testing).
    #[arg(long, default_value_t = 80, hide = true)]
    pub http_port: u16,
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Which document.
    #[arg(value_enum)]
    pub format: RenderFormat,
    /// The mail address (its domain must be configured).
    #[arg(short, long)]
    pub address: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderFormat {
    /// Thunderbird autoconfig (clientConfig 1.1).
    Thunderbird,
    /// Outlook Autodiscover POX response.
    Autodiscover,
    /// Autodiscover v2 JSON.
    AutodiscoverJson,
    /// Apple configuration profile (unsigned).
    Mobileconfig,
    /// MTA-STS policy file.
    MtaSts,
    /// PACC document (`ua-auto-config.<domain>/.well-known/user-agent-configuration.json`).
    Pacc,
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

#[derive(Debug, clap::Args)]
pub struct ZoneArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only this mail domain (a primary domain or an alias).
    #[arg(short, long)]
    pub domain: Option<String>,
    /// Write one file per zone into this directory instead of standard output.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// What to write.
    #[arg(short, long, value_enum, default_value_t = ZoneFormat::Zone)]
    pub format: ZoneFormat,
    /// Zone files without DNSSEC records and signatures, also for signed domains (for a zone
    /// signed elsewhere). By default a signed domain's zone files are signed.
    #[arg(long)]
    pub unsigned: bool,
}

/// Run one command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let _flush_logs_at_exit = init_logging(cli.log_format);
    match cli.command {
        Command::Check(args) => check(&args.config.config, args.sources),
        Command::Zone(args) => zone(&args),
        Command::Render(args) => render(&args),
        Command::Probe(args) => probe(&args),
        Command::Acme(AcmeCommand::Status(args)) => acme_status(&args),
        Command::Dnssec(DnssecCommand::Roll(args)) => dnssec(&args, |settings, name| {
            crate::dns::roll(settings, name).map(crate::dns::Outcome::Done)
        }),
        Command::Dnssec(DnssecCommand::Retire(args)) => retire(&args),
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

/// `dnssec retire`: the parent's DS is asked of `--parent-server` (no recursion), else of
/// `--resolver` or resolv.conf's first name server, unless `--force`.
fn retire(args: &RetireArgs) -> anyhow::Result<ExitCode> {
    use crate::dns::ParentCheck;
    let check = if args.force {
        ParentCheck::Skip
    } else {
        ParentCheck::Ask {
            server: args.parent_server.or(args.resolver),
            recursion: args.parent_server.is_none(),
            timeout: std::time::Duration::from_secs(args.timeout),
        }
    };
    dnssec(&args.dnssec, |settings, name| {
        crate::dns::retire(settings, name, &check)
    })
}

/// `dnssec roll` and `retire`: the text to standard output; exit 3 when a retirement must wait.
fn dnssec(
    args: &DnssecArgs,
    step: impl FnOnce(&Settings, &str) -> anyhow::Result<crate::dns::Outcome>,
) -> anyhow::Result<ExitCode> {
    let settings = match load(&args.config.config)? {
        Ok(s) => with_sources(s)?,
        Err(code) => return Ok(code),
    };
    let name = crate::settings::to_ascii_domain(&args.domain).map_err(anyhow::Error::msg)?;
    if settings.domain(&name).is_none() {
        bail!("domain `{}` is not in {}", args.domain, args.config.config.display());
    }
    match step(&settings, &name)? {
        crate::dns::Outcome::Done(text) => {
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        crate::dns::Outcome::NotYet(text) => {
            print!("{text}");
            eprintln!("mailconf: not retired yet (see above)");
            Ok(exit::not_yet())
        }
    }
}

fn acme_status(args: &AcmeStatusArgs) -> anyhow::Result<ExitCode> {
    let settings = match load(&args.config.config)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let Some(cfg) = &settings.server.acme else {
        bail!("{}: no [server.tls.acme] table", args.config.config.display());
    };
    let (text, missing) =
        crate::acme::status::report(&settings, cfg, args.domain.as_deref(), crate::acme::clock::now());
    print!("{text}");
    Ok(if missing > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
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

fn check(path: &Path, sources: bool) -> anyhow::Result<ExitCode> {
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

fn probe(args: &ProbeArgs) -> anyhow::Result<ExitCode> {
    let settings = match &args.config {
        Some(path) => match load(path)? {
            Ok(s) => Some(with_sources(s)?),
            Err(code) => return Ok(code),
        },
        None => None,
    };
    let domain = crate::settings::to_ascii_domain(&args.domain).map_err(anyhow::Error::msg)?;
    let report = crate::probe::run(&crate::probe::Options {
        domain,
        settings,
        resolver: args.resolver,
        ca_file: args.ca_file.clone(),
        timeout: std::time::Duration::from_secs(args.timeout.max(1)),
        https_port: args.https_port,
        http_port: args.http_port,
    })
    .map_err(anyhow::Error::msg)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(if report.worst() == crate::probe::Level::Fail {
        exit::invalid()
    } else {
        ExitCode::SUCCESS
    })
}

fn render(args: &RenderArgs) -> anyhow::Result<ExitCode> {
    use crate::model::{ClientConfig, EmailAddress};
    use crate::render::{autodiscover, autodiscover_json, mobileconfig, thunderbird};
    let settings = match load(&args.config.config)? {
        Ok(s) => with_sources(s)?,
        Err(code) => return Ok(code),
    };
    let addr = EmailAddress::parse(&args.address).map_err(|e| anyhow::anyhow!("`{}`: {e}", args.address))?;
    let Some(cfg) = ClientConfig::for_domain(&settings, &addr.domain, Some(&addr)) else {
        bail!("domain `{}` is not in {}", addr.domain, args.config.config.display());
    };
    let bytes = match args.format {
        RenderFormat::Thunderbird => thunderbird::render(&cfg),
        RenderFormat::Autodiscover => autodiscover::response(&cfg),
        RenderFormat::AutodiscoverJson => autodiscover_json::v1(&cfg),
        RenderFormat::Mobileconfig => {
            mobileconfig::render(&cfg).context("no server of this domain can be described in an Apple profile")?
        }
        RenderFormat::MtaSts => crate::mta_sts::policy(
            cfg.domain
                .mta_sts
                .as_ref()
                .context("this domain has no [domain.mta_sts]")?,
        )
        .into_bytes(),
        RenderFormat::Pacc => crate::pacc::body(cfg.domain).context("this domain's provider does not publish PACC")?,
    };
    use std::io::Write;
    std::io::stdout().write_all(&bytes)?;
    Ok(ExitCode::SUCCESS)
}

fn zone(args: &ZoneArgs) -> anyhow::Result<ExitCode> {
    let settings = match load(&args.config.config)? {
        Ok(s) => with_sources(s)?,
        Err(code) => return Ok(code),
    };
    let only = match &args.domain {
        Some(want) => {
            let name = crate::settings::to_ascii_domain(want).map_err(anyhow::Error::msg)?;
            let Some(domain) = settings.domain(&name) else {
                bail!("domain `{want}` is not in {}", args.config.config.display());
            };
            if domain.dns.is_none() {
                bail!("domain `{want}` has no [domain.dns] table, so it has no records");
            }
            Some(name)
        }
        None => None,
    };
    if args.format == ZoneFormat::Ds {
        if args.out.is_some() {
            bail!("--format ds prints to standard output (redirect it to a file)");
        }
        if settings.server.state_dir.is_none() {
            bail!("no [server] state_dir: DNSSEC keys are kept there, so no zone is signed");
        }
        print!("{}", crate::dns::ds_records(&settings, only.as_deref())?);
        return Ok(ExitCode::SUCCESS);
    }
    match &args.out {
        Some(dir) => {
            let signer = (!args.unsigned).then(|| crate::dns::ZoneSigner::new(&settings));
            if signer.is_some() {
                crate::dns::make_keys_for(&settings, only.as_deref())?;
            }
            let n = zonefiles::write_dir(dir, &settings, only.as_deref(), args.format, signer.as_ref())?;
            eprintln!("mailconf: wrote {n} files to {}", dir.display());
        }
        None if args.format == ZoneFormat::Zone => {
            let mut all = records::all(&settings);
            all.retain(|d| only.as_ref().is_none_or(|o| d.domain == *o));
            let text = stdout_text(&all, args.format)?;
            // One zone (stdout_text checked): signed when its domain is.
            let dr = all.iter().find(|d| !d.zones.is_empty());
            let signed = match (args.unsigned, dr, dr.and_then(|dr| settings.domain(&dr.domain))) {
                (false, Some(dr), Some(domain)) => {
                    crate::dns::ZoneSigner::new(&settings).zone_file(&settings, domain, dr, 0)?
                }
                _ => None,
            };
            print!("{}", signed.unwrap_or(text))
        }
        None => {
            // Snippets and parent notes of every domain: one domain at a time, so printing
            // 100,000 domains does not hold all their records at once.
            use std::io::Write;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut first = true;
            for d in &settings.domains {
                for name in d.names().filter(|n| only.as_ref().is_none_or(|o| o == n)) {
                    let Some(dr) = records::for_name(&settings, d, name) else {
                        continue;
                    };
                    let text = stdout_text(std::slice::from_ref(&dr), args.format)?;
                    if text.is_empty() {
                        continue;
                    }
                    if !first {
                        out.write_all(b"\n")?;
                    }
                    first = false;
                    out.write_all(text.as_bytes())?;
                }
            }
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn stdout_text(all: &[DomainRecords], format: ZoneFormat) -> anyhow::Result<String> {
    Ok(match format {
        ZoneFormat::Snippet => all.iter().map(zonefile::snippet).collect::<Vec<_>>().join("\n"),
        ZoneFormat::Ds => String::new(),
        ZoneFormat::Parent => all
            .iter()
            .map(zonefile::parent)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        ZoneFormat::Zone => {
            let zones: Vec<_> = all.iter().flat_map(|d| d.zones.iter()).collect();
            let [zone] = zones.as_slice() else {
                bail!(
                    "{} zones selected; a master file holds one: use --out DIR, --domain, or --format snippet",
                    zones.len()
                );
            };
            if let Some(d) = all.iter().find(|d| !d.parent.is_empty()) {
                eprintln!(
                    "mailconf: {} also needs records in its parent zone: see `mailconf zone --format parent --domain {}`",
                    d.domain, d.domain
                );
            }
            zonefile::zone_file(zone)
        }
    })
}
