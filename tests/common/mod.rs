//! Helpers shared by the integration tests: run the real binary, find external tools.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run the real `mailconf` binary with `args`, from the repository root.
pub fn mailconf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailconf"))
        .args(args)
        .current_dir(root())
        .env_remove("MAILCONF_CONFIG")
        .output()
        .expect("run mailconf")
}

/// Path of an external tool; fails the test with an install hint when it is missing.
pub fn tool(name: &str, package: &str) -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
    {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` not found: install the Debian package `{package}` (bash tests/install-deps.sh)");
}

/// A fresh temporary directory under the target dir, removed and recreated.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
