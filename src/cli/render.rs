//! `render`: one client document for an address, as `serve` would answer it.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::ValueEnum;

use super::{ConfigArg, load, with_sources};

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

pub(super) fn render(args: &RenderArgs) -> anyhow::Result<ExitCode> {
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
