//! `mailconf zone --out DIR`: one file per zone (or snippet, or parent-zone note) in a
//! directory, each written atomically and only when its bytes change. The text itself comes
//! from [`crate::render::zonefile`]; this module only names and writes the files.

use std::path::Path;

use anyhow::Context;

use crate::dns::{SIGNED_MARK, ZoneSigner};
use crate::records::{self, DomainRecords};
use crate::render::zonefile;
use crate::settings::{Domain, Settings};

/// What `mailconf zone` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ZoneFormat {
    /// Complete master files (`ZONE.zone`), with SOA and NS.
    Zone,
    /// Only the mail records, to paste into a zone you already run (`DOMAIN.snippet`).
    Snippet,
    /// What the parent zone needs when mailconf serves delegated sub-zones (`DOMAIN.parent`).
    Parent,
    /// DS records (SHA-256) of the signed zones, for the registrar or parent zone (standard
    /// output only; makes missing keys in `state_dir`).
    Ds,
}

/// The files of one mail domain name; `signed(i)` is zone `i`'s signed file, if it is signed.
fn files_of(
    d: &DomainRecords,
    format: ZoneFormat,
    signed: impl Fn(usize) -> anyhow::Result<Option<String>>,
) -> anyhow::Result<Vec<(String, String)>> {
    let parent = || {
        let text = zonefile::parent(d);
        (!text.is_empty()).then(|| (format!("{}.parent", d.domain), text))
    };
    Ok(match format {
        ZoneFormat::Zone => {
            let mut files = Vec::new();
            for (i, z) in d.zones.iter().enumerate() {
                let name = z.origin.to_ascii();
                let text = match signed(i)? {
                    Some(text) => text,
                    None => zonefile::zone_file(z),
                };
                files.push((format!("{}.zone", name.trim_end_matches('.')), text));
            }
            files.extend(parent());
            files
        }
        ZoneFormat::Snippet => vec![(format!("{}.snippet", d.domain), zonefile::snippet(d))],
        ZoneFormat::Parent => parent().into_iter().collect(),
        ZoneFormat::Ds => Vec::new(),
    })
}

/// Write the files of every name of `settings` (or only of `only`, an ASCII domain name) into
/// `dir` (created if missing); returns how many files there are. One domain at a time on every
/// core: records are built, written and dropped, so memory does not grow with the domains.
/// With `signer`, the zone files of signed domains are signed.
pub fn write_dir(
    dir: &Path,
    settings: &Settings,
    only: Option<&str>,
    format: ZoneFormat,
    signer: Option<&ZoneSigner>,
) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
    let names: Vec<(&Domain, &str)> = settings
        .domains
        .iter()
        .flat_map(|d| d.names().map(move |n| (&**d, n)))
        .filter(|(_, n)| only.is_none_or(|o| o == *n))
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let per = names.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = names
            .chunks(per)
            .map(|part| {
                scope.spawn(move || -> anyhow::Result<usize> {
                    let mut n = 0;
                    for (domain, name) in part {
                        let Some(d) = records::for_name(settings, domain, name) else {
                            continue;
                        };
                        let signed = |i| signer.map_or(Ok(None), |s| s.zone_file(settings, domain, &d, i));
                        for (file, text) in files_of(&d, format, signed)? {
                            let path = dir.join(&file);
                            write_if_changed(&path, &text)
                                .with_context(|| format!("failed to write `{}`", path.display()))?;
                            n += 1;
                        }
                    }
                    Ok(n)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a zone writer panicked")))
            })
            .sum()
    })
}

/// Write atomically (temporary file + rename), and not at all when the bytes are unchanged, so
/// that file watchers and `make` see only real changes. A signed zone file counts as unchanged
/// when all up to its DNSSEC mark is (the rest follows from that, but for the random bytes of
/// ECDSA signatures): it is rewritten when the records, the serial or the signing epoch change.
fn write_if_changed(path: &Path, text: &str) -> std::io::Result<()> {
    let decided = text
        .find(SIGNED_MARK)
        .and_then(|at| text[at..].find('\n').map(|nl| at + nl + 1));
    let same = |old: &[u8]| match decided {
        Some(d) => old.get(..d) == Some(&text.as_bytes()[..d]),
        None => old == text.as_bytes(),
    };
    if std::fs::read(path).is_ok_and(|old| same(&old)) {
        return Ok(());
    }
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_files_are_not_rewritten() {
        let dir = std::env::temp_dir().join(format!("mailconf-zonefiles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.zone");
        write_if_changed(&path, "one\n").unwrap();
        let first = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_if_changed(&path, "one\n").unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            first,
            "untouched"
        );
        write_if_changed(&path, "two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert!(
            !path.with_extension("tmp~").exists(),
            "the temporary file is renamed away"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
