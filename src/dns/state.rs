//! The serials served, kept in `[server] state_dir` so that they keep growing across restarts
//! too (secondaries ignore a zone whose serial went backwards, RFC 1982).
//!
//! File `serials`: one line per zone, `ORIGIN SERIAL CONTENT-DIGEST-HEX`, written atomically
//! (temporary file, fsync, rename, fsync of the directory), so a crash at any moment leaves the
//! old file or the new one, never half of one.

use std::path::Path;

use std::io::Write;

use tracing::{info, warn};

use crate::metrics::METRICS;

use super::authority::Served;

const FILE: &str = "serials";

/// What an earlier run served; empty without a state directory or file.
pub(crate) fn load(dir: Option<&Path>) -> Served {
    let Some(dir) = dir else { return Served::default() };
    let Ok(text) = std::fs::read_to_string(dir.join(FILE)) else {
        return Served::default();
    };
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (origin, serial, digest) = (f.next()?, f.next()?.parse().ok()?, f.next()?);
            let mut content = [0u8; 32];
            for (i, b) in content.iter_mut().enumerate() {
                *b = u8::from_str_radix(digest.get(2 * i..2 * i + 2)?, 16).ok()?;
            }
            Some((super::wire::lower_wire(origin), (serial, content)))
        })
        .collect()
}

/// Record what is served now. Failure is logged, not fatal: serving goes on.
pub(crate) fn save(dir: Option<&Path>, served: impl FnOnce() -> Served) {
    // Without a state directory, not even the map: at 130k zones it is 15 MB for nothing.
    let Some(dir) = dir else { return };
    let mut lines: Vec<String> = served()
        .iter()
        .map(|(origin, (serial, content))| {
            format!(
                "{} {serial} {}",
                super::wire::name_from_wire(origin).to_ascii().to_ascii_lowercase(),
                content.iter().map(|b| format!("{b:02x}")).collect::<String>()
            )
        })
        .collect();
    lines.sort();
    let result = write_atomically(dir, (lines.join("\n") + "\n").as_bytes());
    // A lasting problem (a read-only or full disk) is logged when it starts and when it ends,
    // not at every reload; /metrics counts every failed write.
    let changed = METRICS.state_write(result.is_ok());
    match result {
        Err(e) if changed => {
            warn!(dir = %dir.display(), error = %e, "cannot save zone serials: they may go backwards after a restart; serving goes on")
        }
        Ok(()) if changed => info!(dir = %dir.display(), "zone serials saved again"),
        _ => {}
    }
}

fn write_atomically(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(FILE))?;
    std::fs::File::open(dir)?.sync_all()
}
