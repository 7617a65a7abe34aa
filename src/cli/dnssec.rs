//! `dnssec roll` and `dnssec retire`: KSK rollovers.

use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;

use super::{ConfigArg, load, with_sources};
use crate::exit;
use crate::settings::Settings;

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

/// `dnssec retire`: the parent's DS is asked of `--parent-server` (no recursion), else of
/// `--resolver` or resolv.conf's first name server, unless `--force`.
pub(super) fn retire(args: &RetireArgs) -> anyhow::Result<ExitCode> {
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
pub(super) fn dnssec(
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
