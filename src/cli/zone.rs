//! `zone`: the DNS records as zone files, snippets, parent notes or DS records.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use super::{ConfigArg, load, with_sources};
use crate::records::{self, DomainRecords};
use crate::render::zonefile;
use crate::zonefiles::{self, ZoneFormat};

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

pub(super) fn zone(args: &ZoneArgs) -> anyhow::Result<ExitCode> {
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
