//! `acme status`: what the ACME cache holds.

use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;

use super::{ConfigArg, load};

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

pub(super) fn acme_status(args: &AcmeStatusArgs) -> anyhow::Result<ExitCode> {
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
