//! `mailconf zone --out DIR`: one file per zone (or snippet, or parent-zone note) in a
//! directory, each written atomically and only when its bytes change. The text itself comes
//! from [`crate::render::zonefile`]; this module only names and writes the files.

use std::path::Path;

use anyhow::Context;

use crate::records::DomainRecords;
use crate::render::zonefile;

/// What `mailconf zone` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ZoneFormat {
    /// Complete master files (`ZONE.zone`), with SOA and NS.
    Zone,
    /// Only the mail records, to paste into a zone you already run (`DOMAIN.snippet`).
    Snippet,
    /// What the parent zone needs when mailconf serves delegated sub-zones (`DOMAIN.parent`).
    Parent,
}

/// File name → contents for `all` in `format`, in a stable order.
pub fn files(all: &[DomainRecords], format: ZoneFormat) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for d in all {
        match format {
            ZoneFormat::Zone => {
                for z in &d.zones {
                    let name = z.origin.to_ascii();
                    files.push((format!("{}.zone", name.trim_end_matches('.')), zonefile::zone_file(z)));
                }
                let parent = zonefile::parent(d);
                if !parent.is_empty() {
                    files.push((format!("{}.parent", d.domain), parent));
                }
            }
            ZoneFormat::Snippet => files.push((format!("{}.snippet", d.domain), zonefile::snippet(d))),
            ZoneFormat::Parent => {
                let parent = zonefile::parent(d);
                if !parent.is_empty() {
                    files.push((format!("{}.parent", d.domain), parent));
                }
            }
        }
    }
    files
}

/// Write [`files`] into `dir` (created if missing); returns how many files there are.
pub fn write_dir(dir: &Path, all: &[DomainRecords], format: ZoneFormat) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
    let files = files(all, format);
    for (name, text) in &files {
        let path = dir.join(name);
        write_if_changed(&path, text).with_context(|| format!("failed to write `{}`", path.display()))?;
    }
    Ok(files.len())
}

/// Write atomically (temporary file + rename), and not at all when the bytes are unchanged, so
/// that file watchers and `make` see only real changes.
fn write_if_changed(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
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
