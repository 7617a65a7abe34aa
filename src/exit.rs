//! Process exit codes, in one place for `main`, the subcommands and `serve`.

use std::process::ExitCode;

/// The settings file has problems (`check`, or any command that loads it), or `probe` found a
/// failure.
pub const INVALID: u8 = 1;

/// Any other error (unreadable file, a port that cannot be bound, …); the message goes to stderr.
pub const ERROR: u8 = 2;

/// Refused for now, not failed: `dnssec retire` while the parent does not serve the new DS, or
/// not for long enough yet. The same command succeeds later.
pub const NOT_YET: u8 = 3;

/// [`INVALID`] as an [`ExitCode`].
pub fn invalid() -> ExitCode {
    ExitCode::from(INVALID)
}

/// [`NOT_YET`] as an [`ExitCode`].
pub fn not_yet() -> ExitCode {
    ExitCode::from(NOT_YET)
}
