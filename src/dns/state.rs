//! The serials served, kept in `[server] state_dir` so that they keep growing across restarts
//! too (secondaries ignore a zone whose serial went backwards, RFC 1982).
//!
//! File `serials`: one line per zone, `ORIGIN SERIAL CONTENT-DIGEST-HEX`, written atomically.

use std::path::Path;

use tracing::warn;

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
pub(crate) fn save(dir: Option<&Path>, served: &Served) {
    let Some(dir) = dir else { return };
    let mut lines: Vec<String> = served
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
    let tmp = dir.join(format!("{FILE}.tmp"));
    let result = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, lines.join("\n") + "\n"))
        .and_then(|()| std::fs::rename(&tmp, dir.join(FILE)));
    if let Err(e) = result {
        warn!(dir = %dir.display(), error = %e, "cannot save zone serials: they may go backwards after a restart");
    }
}
