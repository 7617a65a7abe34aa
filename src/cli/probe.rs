//! `probe`: check what a domain publishes the way a mail client would.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{load, with_sources};
use crate::exit;

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

pub(super) fn probe(args: &ProbeArgs) -> anyhow::Result<ExitCode> {
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
