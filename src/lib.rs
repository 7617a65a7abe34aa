//! mailconf: mail client autoconfiguration from one settings file.
//!
//! Data flows one way: file → [`settings`] → [`records`] / [`render`] → servers and CLI.
//!
//! - [`settings`]: parse and validate the TOML; every error names file, line and field.
//! - [`records`]: settings → the DNS record set (pure; the only place that decides records).
//! - [`render`]: records → zone-file text; (settings, address) → client documents (pure).
//! - [`vocab`]: each protocol's and format's words for those facts, both directions.
//! - [`dns`], [`http`]: thin servers: wire request → model lookup → wire response.
//! - [`app`]: `serve` wiring, signals, reload. [`cli`]: subcommands. [`zonefiles`]: `zone --out`.
//!   [`exit`]: exit codes.

pub mod accesslog;
pub mod acme;
pub mod app;
pub mod cli;
mod dates;
pub mod dns;
pub mod exit;
#[doc(hidden)]
pub mod fuzzing;
pub mod heap;
pub mod http;
pub mod listen;
pub mod logwriter;
pub mod metrics;
pub mod model;
pub mod mta_sts;
pub mod names;
pub mod pacc;
pub mod probe;
pub mod records;
pub mod render;
pub mod settings;
pub mod sign;
pub mod sources;
pub mod vocab;
pub mod zonefiles;
