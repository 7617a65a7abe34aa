//! Parse and validate the settings file into typed, immutable structs.
//!
//! Owns: the TOML shape (`raw`), every validation rule (`validate`, one file per table), and the
//! error report (`Diagnostic`, always file:line:column plus the field's path). Parsing reads no
//! file but the settings text; the certificate files the settings name are read by a separate
//! step, [`Settings::read_files`] (`files`). Knows nothing of DNS wire formats, HTTP or XML:
//! `records` and `render` derive everything else from [`Settings`].
//!
//! Over 400 lines: this file is the typed model itself, every struct and enum the rest of the
//! program reads, kept together so that it reads top to bottom; parsing and the rules are in
//! `validate`, the raw TOML shape in `raw`.

mod diagnostic;
mod files;
mod intern;
mod names;
mod raw;
mod source;
mod split;
mod validate;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use files::{FileRef, TlsSource};
pub use names::{is_hostname, to_ascii_domain};
pub use source::{BadRow, MAX_VALUE_LEN, MergeReport, Row, SourceKind, SourceSettings, SourceUrl};
pub use validate::PLACEHOLDERS;

/// The enums of the settings are the protocol vocabulary's words; defined there so that
/// `vocab` needs nothing from `settings`.
pub use crate::vocab::{Auth, Dav, Protocol, Security};

/// The validated settings: what every other module reads.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub providers: Vec<Arc<Provider>>,
    /// Shared with the previous snapshot where a domain did not change (see [`Settings::load_reusing`]).
    pub domains: Vec<Arc<Domain>>,
    /// Every mail domain name (primary and alias, ASCII lowercase) → index into `domains`.
    by_name: rustc_hash::FxHashMap<String, usize>,
    /// Fingerprint of each domain's `[[domain]]` text, parallel to `domains`, when the file was
    /// parsed in pieces (`split`); empty otherwise. A reload reuses the domain of a piece whose
    /// text did not change without parsing it again.
    pieces: Vec<u128>,
    /// `[[source]]`: more domains from databases, merged in by [`Settings::with_sources`].
    pub sources: Vec<Arc<SourceSettings>>,
}

/// `[server]`: listen addresses for `serve` and transfer ACLs.
#[derive(Debug, Clone, Default)]
pub struct ServerSettings {
    pub dns_listen: Vec<SocketAddr>,
    pub http_listen: Vec<SocketAddr>,
    /// Secondaries allowed to transfer every zone; NOTIFY goes to these addresses.
    pub transfer_to: Vec<SocketAddr>,
    /// Serve a catalog zone (RFC 9432 v2) of this name (ASCII, no trailing dot) listing every
    /// zone, for the `transfer_to` secondaries.
    pub catalog: Option<String>,
    /// `[server.tsig.NAME]` keys, in name order.
    pub tsig: Vec<TsigKey>,
    /// Secondaries that must sign transfers and SOA queries (a `transfer_to` entry with
    /// `key NAME`): address → index into `tsig`. NOTIFY to them is signed with that key.
    pub transfer_keys: HashMap<IpAddr, usize>,
    pub https_listen: Vec<SocketAddr>,
    pub metrics_listen: Option<SocketAddr>,
    /// UDP answers per second per client network; 0 = unlimited.
    pub dns_rate_limit: u32,
    /// Directory for state kept across restarts (served zone serials, DNSSEC keys).
    pub state_dir: Option<std::path::PathBuf>,
    /// `[server] dnssec`: sign the zones of domains that do not say otherwise.
    pub dnssec: bool,
    /// The algorithm of new DNSSEC keys.
    pub dnssec_algorithm: DnssecAlgorithm,
    /// `dnssec_signature_lifetime` in seconds; 0 (not written): 14 days, Knot's default.
    pub dnssec_signature_lifetime: u64,
    /// `dnssec_zsk_lifetime` in seconds; 0 (not written): 30 days, Knot's `zsk-lifetime`.
    pub dnssec_zsk_lifetime: u64,
    /// `dnssec_cache_zones`; 0 (not written): sized from the number of signed zones.
    pub dnssec_cache_zones: u32,
    /// Certificate and key for `https_listen` and for signing Apple profiles, read from
    /// `tls_source` by [`Settings::read_files`] (`None` until then).
    pub tls: Option<Arc<TlsFiles>>,
    /// `[server.tls]` `cert` and `key` as written.
    pub tls_source: Option<TlsSource>,
    /// Or certificates from an ACME CA, one per mail domain.
    pub acme: Option<Arc<AcmeSettings>>,
}

/// A TSIG key (RFC 8945) shared with secondaries. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    /// The key name as on the wire: ASCII lower case, with the trailing dot.
    pub name: String,
    pub algorithm: TsigAlgorithm,
    /// The decoded secret: from `secret`, or from `secret_file` by [`Settings::read_files`]
    /// (empty until then).
    pub secret: Vec<u8>,
    pub secret_file: Option<FileRef>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"(hidden)")
            .field("secret_file", &self.secret_file.as_ref().map(|f| &f.path))
            .finish()
    }
}

/// The TSIG algorithms mailconf signs and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsigAlgorithm {
    HmacSha256,
    HmacSha512,
}

impl TsigAlgorithm {
    /// (name in settings, as Knot and BIND write it; algorithm) for every algorithm.
    pub const ALL: [(&'static str, TsigAlgorithm); 2] = [
        ("hmac-sha256", TsigAlgorithm::HmacSha256),
        ("hmac-sha512", TsigAlgorithm::HmacSha512),
    ];

    /// The name as in settings (and, with a trailing dot, on the wire).
    pub fn name(self) -> &'static str {
        TsigAlgorithm::ALL
            .iter()
            .find(|(_, a)| *a == self)
            .map_or("", |(n, _)| n)
    }
}

/// DNSSEC signing algorithms (RFC 8624 / RFC 9904: 13 MUST, 15 RECOMMENDED).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DnssecAlgorithm {
    /// 13, ECDSA P-256 with SHA-256.
    #[default]
    EcdsaP256Sha256,
    /// 15, Ed25519.
    Ed25519,
}

impl DnssecAlgorithm {
    /// (name in settings, as Knot writes it; algorithm) for every algorithm.
    pub const ALL: [(&'static str, DnssecAlgorithm); 2] = [
        ("ecdsap256sha256", DnssecAlgorithm::EcdsaP256Sha256),
        ("ed25519", DnssecAlgorithm::Ed25519),
    ];

    /// The IANA algorithm number.
    pub fn number(self) -> u8 {
        match self {
            DnssecAlgorithm::EcdsaP256Sha256 => 13,
            DnssecAlgorithm::Ed25519 => 15,
        }
    }
}

/// `[server.tls.acme]`.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    pub directory: String,
    pub contact: Vec<String>,
    pub cache_dir: std::path::PathBuf,
    /// Extra roots to trust for the ACME server itself (a private CA, pebble in tests), read
    /// from `ca_roots_file` by [`Settings::read_files`] (empty until then).
    pub ca_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    pub ca_roots_file: Option<FileRef>,
    /// Names to certify besides every domain's autoconfig./autodiscover./mta-sts. hosts.
    pub extra_names: Vec<String>,
    /// New orders per 3 hours (token bucket capacity; refills at this rate).
    pub orders_per_3h: u32,
    /// First wait after a failed order; doubles per failure up to a day.
    pub retry_after: std::time::Duration,
    /// Parsed certificates kept in memory at most.
    pub cert_cache: usize,
    /// New certificates per registered domain per 7 days (token bucket; renewals exempt).
    pub certs_per_registered_domain_7d: u32,
    /// How the CA validates the names.
    pub challenge: AcmeChallenge,
    /// Mail domains (each with its web names) per certificate, 1 to 100.
    pub names_per_certificate: u32,
}

/// `[server.tls.acme] challenge`: how the CA checks that mailconf holds the names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcmeChallenge {
    /// TLS-ALPN-01 (RFC 8737): the CA connects to port 443 of the name.
    #[default]
    TlsAlpn01,
    /// DNS-01 (RFC 8555 §8.4): a TXT record at `_acme-challenge.<name>`, served from
    /// mailconf's own zones while the order waits for it. Names outside them use TLS-ALPN-01.
    Dns01,
}

impl AcmeChallenge {
    /// The setting's values.
    pub const ALL: [(&'static str, AcmeChallenge); 2] = [
        ("tls-alpn-01", AcmeChallenge::TlsAlpn01),
        ("dns-01", AcmeChallenge::Dns01),
    ];
}

/// `[server.tls]`: a PEM certificate chain and its private key, read and checked by
/// [`Settings::read_files`] (at `check`, at the start of `serve` and at every reload).
#[derive(Debug)]
pub struct TlsFiles {
    pub cert_path: String,
    pub key_path: String,
    pub chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    pub key: rustls::pki_types::PrivateKeyDer<'static>,
}

/// `[provider.NAME]`: a set of servers shared by many domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub id: String,
    pub display_name: String,
    pub short_name: String,
    pub servers: Vec<MailServer>,
    /// Setup instructions for users: an `http`/`https` URL.
    pub documentation: Option<String>,
    /// CalDAV then CardDAV, each at most once (RFC 6764 services).
    pub dav: Vec<DavService>,
    pub oauth2: Option<OAuth2>,
    /// Publish the PACC document (`ua-auto-config.<domain>`) and its digest.
    pub pacc: bool,
}

impl Provider {
    /// The DAV service of this kind, when offered.
    pub fn dav(&self, kind: Dav) -> Option<&DavService> {
        self.dav.iter().find(|d| d.kind == kind)
    }

    /// The provider's own declaration, for its domains that declare none (see
    /// [`Domain::services`], which everything outside `settings` and `pacc` reads).
    pub fn services(&self) -> Services<'_> {
        Services {
            dav: crate::vocab::DAV.map(|w| self.dav(w.service)),
            oauth2: self.oauth2.as_ref(),
            documentation: self.documentation.as_deref(),
        }
    }
}

/// `[provider.NAME.caldav]` / `[provider.NAME.carddav]`: an `https` URL with a context path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DavService {
    pub kind: Dav,
    /// As configured (`https://dav.example.net/dav/`).
    pub url: String,
    /// ASCII host, port (443 unless given) and context path (starts with `/`, never just `/`).
    pub host: String,
    pub port: u16,
    pub path: String,
    /// Username template, like a mail server's.
    pub username: String,
}

/// `[provider.NAME.oauth2]`: the OAuth 2 issuer (RFC 8414) and, for clients without
/// discovery, its endpoints. Every URL is `https`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2 {
    pub issuer: String,
    pub auth_url: Option<String>,
    pub token_url: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
}

/// One `[[provider.NAME.server]]` entry. Order in the file is preference order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailServer {
    pub protocol: Protocol,
    /// ASCII (IDNA) host name without trailing dot.
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Non-empty, preference order.
    pub auth: Vec<Auth>,
    /// Username template: may hold `%EMAILADDRESS%`, `%EMAILLOCALPART%`, `%EMAILDOMAIN%`.
    pub username: String,
}

impl MailServer {
    /// Incoming (IMAP/POP3) as opposed to outgoing (SMTP submission).
    pub fn is_incoming(&self) -> bool {
        self.protocol != Protocol::Smtp
    }
}

/// One `[[domain]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// ASCII lowercase, no trailing dot.
    pub name: String,
    pub aliases: Vec<String>,
    pub provider: Arc<Provider>,
    /// Shared by every domain of a `[[source]]` (its `[source.domain]`).
    pub dns: Option<Arc<DnsSettings>>,
    pub mta_sts: Option<Arc<MtaSts>>,
    /// What the domain declares instead of its provider (`caldav`, `carddav`, `oauth2`,
    /// `documentation` on `[[domain]]`); `None`, one pointer, for nearly every domain. Read it
    /// through [`Domain::services`] only.
    pub own: Option<Arc<OwnServices>>,
}

impl Domain {
    /// The primary name followed by the aliases.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    /// The calendars, contacts, OAuth 2 issuer and documentation this domain publishes: each
    /// one the domain declares, else its provider's. The one place that decides; records,
    /// documents, HTTP routes, PACC and the probe all ask here.
    pub fn services(&self) -> Services<'_> {
        let p = self.provider.services();
        let Some(own) = self.own.as_deref() else {
            return p;
        };
        Services {
            dav: crate::vocab::DAV.map(|w| own.dav(w.service).or_else(|| p.dav(w.service))),
            oauth2: own.oauth2.as_ref().or(p.oauth2),
            documentation: own.documentation.as_deref().or(p.documentation),
        }
    }
}

/// `caldav`, `carddav`, `oauth2` and `documentation` declared on a `[[domain]]` (or a
/// `[source.domain]`), with the provider's rules; each replaces the provider's of that name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnServices {
    pub documentation: Option<String>,
    /// CalDAV then CardDAV, each at most once.
    pub dav: Vec<DavService>,
    pub oauth2: Option<OAuth2>,
}

impl OwnServices {
    fn dav(&self, kind: Dav) -> Option<&DavService> {
        self.dav.iter().find(|d| d.kind == kind)
    }
}

/// What [`Domain::services`] resolved: borrowed from the domain or its provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Services<'a> {
    /// In the order of [`crate::vocab::DAV`] (CalDAV, CardDAV).
    dav: [Option<&'a DavService>; 2],
    pub oauth2: Option<&'a OAuth2>,
    pub documentation: Option<&'a str>,
}

impl<'a> Services<'a> {
    /// The DAV service of this kind, when offered.
    pub fn dav(&self, kind: Dav) -> Option<&'a DavService> {
        self.dav.iter().flatten().copied().find(|d| d.kind == kind)
    }

    /// The DAV services offered, CalDAV then CardDAV.
    pub fn dav_all(&self) -> impl Iterator<Item = &'a DavService> + use<'a> {
        self.dav.into_iter().flatten()
    }
}

/// `[domain.dns]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    /// Absolute names (trailing dot).
    pub nameservers: Arc<[String]>,
    /// `hostmaster@example.com` as written; `records` turns it into an SOA RNAME.
    pub hostmaster: Option<Arc<str>>,
    pub ttl: u32,
    pub negative_ttl: u32,
    pub serial: Option<u32>,
    /// Zone apexes relative to the domain: `""` is the domain itself, `"_tcp"` is `_tcp.<domain>`.
    pub zones: Arc<[String]>,
    pub autoconfig: Option<WebHost>,
    pub mx: Arc<[MxHost]>,
    pub spf: Option<Arc<str>>,
    pub dmarc: Option<Arc<str>>,
    /// `rua` value of the TLS-RPT record (`mailto:` / `https:` URIs, comma separated).
    pub tls_rpt: Option<Arc<str>>,
    /// Extra address records: host name relative to the domain (`""` = apex) → addresses.
    pub hosts: Arc<[(String, Vec<IpAddr>)]>,
    /// Secondaries allowed to transfer this domain's zones (`IP` means port 53 for NOTIFY).
    pub transfer_to: Arc<[SocketAddr]>,
    /// `dnssec` as written (`None`: the `[server] dnssec` default); see [`Settings::signed`].
    pub dnssec: Option<bool>,
}

/// How `autoconfig.`, `autodiscover.` and `mta-sts.` names reach mailconf's web server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebHost {
    Addresses(Arc<[IpAddr]>),
    /// Absolute target name (trailing dot).
    Cname(Arc<str>),
}

/// An MX host; `host == "."` with preference 0 is the RFC 7505 null MX.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MxHost {
    pub host: String,
    pub preference: u16,
}

/// `[domain.mta_sts]` (RFC 8461).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtaSts {
    /// `enforce`, `testing` or `none`.
    pub mode: &'static str,
    pub max_age: u32,
    /// `mx:` patterns of the policy; default: the domain's MX hosts.
    pub mx: Arc<[String]>,
}

/// A failure to load settings: unreadable file, or a list of problems in it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("failed to read `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
}

impl Settings {
    /// The algorithm `domain`'s zones are signed with, if they are signed (its `dnssec`, else
    /// `[server] dnssec`). Never without a `state_dir` to keep the keys in.
    pub fn signed(&self, domain: &Domain) -> Option<DnssecAlgorithm> {
        let on = domain.dns.as_ref()?.dnssec.unwrap_or(self.server.dnssec);
        (on && self.server.state_dir.is_some()).then_some(self.server.dnssec_algorithm)
    }

    /// Read and validate a settings file.
    pub fn load(path: &Path) -> Result<Settings, LoadError> {
        Settings::load_reusing(path, None)
    }

    /// Read and validate a settings file; every domain equal to one of `previous` is that
    /// domain, shared, so a reload holds one copy of what did not change.
    pub fn load_reusing(path: &Path, previous: Option<&Settings>) -> Result<Settings, LoadError> {
        if let Some(done) = previous.and_then(|p| validate::parse_file_reusing(path, &path.display().to_string(), p)) {
            return Ok(done);
        }
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.display().to_string(),
            source,
        })?;
        validate::parse(&text, &path.display().to_string(), previous).map_err(LoadError::Invalid)
    }

    /// Parse and validate TOML text; `file` is only used in messages. Reads no file: see
    /// [`Settings::read_files`].
    pub fn from_toml(text: &str, file: &str) -> Result<Settings, Diagnostics> {
        validate::parse(text, file, None)
    }

    /// Read the certificate and key files the settings name (`[server.tls]`, ACME `ca_roots`)
    /// and check them; a problem is located at the setting that names the file.
    pub fn read_files(&mut self) -> Result<(), Diagnostics> {
        files::read(&mut self.server)
    }

    /// The domain configured under `name` (primary or alias; any case, trailing dot allowed).
    pub fn domain(&self, name: &str) -> Option<&Domain> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        self.by_name.get(&key).map(|&i| &*self.domains[i])
    }

    /// The shared domain configured under this exact (ASCII, lower-case) name.
    fn domain_shared(&self, name: &str) -> Option<&Arc<Domain>> {
        self.by_name.get(name).map(|&i| &self.domains[i])
    }
}

/// The whole-file parser alone, without the split (`crate::fuzzing` checks they agree).
pub(crate) fn parse_whole(text: &str, file: &str) -> Result<Settings, Diagnostics> {
    validate::parse_whole(text, file, None)
}

/// The split parser for files from `min_domains` domains on, not only large ones
/// (`crate::fuzzing`: small inputs reach the split path cheaply).
pub(crate) fn parse_split_from(text: &str, file: &str, min_domains: usize) -> Result<Settings, Diagnostics> {
    validate::parse_split_from(text, file, None, min_domains)
}

#[cfg(test)]
mod tests;
