//! The serde mirror of the TOML file. Private to `settings`: nothing outside reads these types.
//!
//! Every table denies unknown keys; values that `validate` checks further keep their span so a
//! problem can be reported with line and column.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{Auth, Protocol, Security};

pub(super) type S<T> = Spanned<T>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    #[serde(default)]
    pub server: Server,
    #[serde(default)]
    pub provider: BTreeMap<String, S<Provider>>,
    #[serde(default)]
    pub domain: Vec<S<Domain>>,
    #[serde(default)]
    pub source: Vec<S<Source>>,
}

/// One `[[domain]]` piece of a split file (`settings::split`): anything else in it means the
/// split went wrong, so it fails to parse and the file is parsed whole.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Piece {
    pub domain: Vec<S<Domain>>,
}

/// `[[source]]`: domains read from a database.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Source {
    pub name: Option<S<String>>,
    pub kind: S<String>,
    pub url: Option<S<String>>,
    pub url_file: Option<S<String>>,
    pub query: S<String>,
    pub provider: Option<S<String>>,
    /// Seconds between queries.
    pub refresh: Option<S<u64>>,
    /// Seconds a connection plus query may take.
    pub timeout: Option<S<u64>>,
    /// PostgreSQL `LISTEN` channel.
    pub listen: Option<S<String>>,
    pub domain: Option<S<SourceDomain>>,
}

/// `[source.domain]`: a `[[domain]]` without `name`, `provider` and `aliases`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SourceDomain {
    pub dns: Option<S<Dns>>,
    pub mta_sts: Option<S<MtaSts>>,
    /// Instead of the provider's (`[provider.NAME]` keys of the same names).
    pub documentation: Option<S<String>>,
    pub caldav: Option<S<DavService>>,
    pub carddav: Option<S<DavService>>,
    pub oauth2: Option<S<OAuth2>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Server {
    #[serde(default)]
    pub dns_listen: Vec<S<String>>,
    #[serde(default)]
    pub http_listen: Vec<S<String>>,
    /// Secondaries allowed to transfer every zone (per-domain lists add to this).
    #[serde(default)]
    pub transfer_to: Vec<S<String>>,
    #[serde(default)]
    pub https_listen: Vec<S<String>>,
    pub metrics_listen: Option<S<String>>,
    /// UDP answers per second per client network (/24, /56); 0 or absent = no limit.
    pub dns_rate_limit: Option<S<u32>>,
    /// Where `serve` keeps state across restarts (the zone serials it served).
    pub state_dir: Option<S<String>>,
    pub tls: Option<S<Tls>>,
    /// Name of the catalog zone (RFC 9432) listing every zone served.
    pub catalog: Option<S<String>>,
    /// TSIG keys (RFC 8945) by key name.
    #[serde(default)]
    pub tsig: BTreeMap<String, S<Tsig>>,
    /// Sign every domain's zones (DNSSEC) unless its `[domain.dns]` says `dnssec = false`.
    pub dnssec: Option<S<bool>>,
    /// `ecdsap256sha256` (13, the default) or `ed25519` (15).
    pub dnssec_algorithm: Option<S<String>>,
    /// Seconds a DNSSEC signature is valid (re-signed every half of it).
    pub dnssec_signature_lifetime: Option<S<u64>>,
    /// Seconds a ZSK signs before the next one takes over (rounded up to whole signing epochs).
    pub dnssec_zsk_lifetime: Option<S<u64>>,
    /// Signed zones kept ready for DO queries (absent: sized from the number of signed zones).
    pub dnssec_cache_zones: Option<S<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Tsig {
    pub algorithm: Option<S<String>>,
    pub secret: Option<S<String>>,
    pub secret_file: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Tls {
    pub cert: Option<S<String>>,
    pub key: Option<S<String>>,
    pub acme: Option<S<Acme>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Acme {
    pub directory: S<String>,
    #[serde(default)]
    pub contact: Vec<S<String>>,
    pub cache_dir: S<String>,
    pub ca_roots: Option<S<String>>,
    #[serde(default)]
    pub extra_names: Vec<S<String>>,
    /// New orders allowed per 3 hours (a token bucket; Let's Encrypt's limit is 300).
    pub orders_per_3h: Option<S<u32>>,
    /// Seconds before a failed order is tried again (doubling per failure, up to a day).
    pub retry_after: Option<S<u64>>,
    /// Parsed certificates kept in memory (the rest stay on disk until asked for).
    pub cert_cache: Option<S<u32>>,
    /// New certificates per registered domain per 7 days (Let's Encrypt's limit is 50).
    pub certs_per_registered_domain_7d: Option<S<u32>>,
    /// `tls-alpn-01` (the default) or `dns-01` (answered from mailconf's own zones).
    pub challenge: Option<S<String>>,
    /// Mail domains per certificate (1 to 100): fewer orders, every name visible to all.
    pub names_per_certificate: Option<S<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Provider {
    pub display_name: S<String>,
    pub short_name: Option<S<String>>,
    pub username: Option<S<String>>,
    /// Where users read how to set up their clients (`<documentation url>`).
    pub documentation: Option<S<String>>,
    pub caldav: Option<S<DavService>>,
    pub carddav: Option<S<DavService>>,
    pub oauth2: Option<S<OAuth2>>,
    /// Publish the PACC document and its `_ua-auto-config` digest.
    #[serde(default)]
    pub pacc: bool,
    #[serde(default)]
    pub server: Vec<S<MailServer>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DavService {
    pub url: S<String>,
    pub username: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OAuth2 {
    pub issuer: S<String>,
    pub auth_url: Option<S<String>>,
    pub token_url: Option<S<String>>,
    pub scope: Option<S<String>>,
    pub client_id: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MailServer {
    pub protocol: S<Protocol>,
    pub host: S<String>,
    pub port: S<u16>,
    pub security: S<Security>,
    pub auth: Option<S<Vec<Auth>>>,
    pub username: Option<S<String>>,
    #[serde(default)]
    pub allow_cleartext: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Domain {
    pub name: S<String>,
    pub provider: S<String>,
    #[serde(default)]
    pub aliases: Vec<S<String>>,
    pub dns: Option<S<Dns>>,
    pub mta_sts: Option<S<MtaSts>>,
    /// Instead of the provider's (`[provider.NAME]` keys of the same names).
    pub documentation: Option<S<String>>,
    pub caldav: Option<S<DavService>>,
    pub carddav: Option<S<DavService>>,
    pub oauth2: Option<S<OAuth2>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Dns {
    pub nameservers: S<Vec<S<String>>>,
    pub hostmaster: Option<S<String>>,
    pub ttl: Option<S<u32>>,
    pub negative_ttl: Option<S<u32>>,
    pub serial: Option<S<u32>>,
    #[serde(default)]
    pub zones: Vec<S<String>>,
    #[serde(default)]
    pub autoconfig_addresses: Vec<S<String>>,
    pub autoconfig_cname: Option<S<String>>,
    #[serde(default)]
    pub mx: Vec<S<Mx>>,
    pub spf: Option<S<String>>,
    pub dmarc: Option<S<String>>,
    pub tls_rpt: Option<S<String>>,
    #[serde(default)]
    pub hosts: BTreeMap<String, S<Vec<S<String>>>>,
    #[serde(default)]
    pub transfer_to: Vec<S<String>>,
    /// Sign this domain's zones (DNSSEC); absent: `[server] dnssec`.
    pub dnssec: Option<S<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Mx {
    pub host: S<String>,
    pub preference: u16,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MtaSts {
    pub mode: S<String>,
    pub max_age: Option<S<u32>>,
    pub mx: Option<Vec<S<String>>>,
}
