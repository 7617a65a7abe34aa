//! Certificates from an ACME CA (RFC 8555) with the TLS-ALPN-01 challenge (rustls-acme).
//!
//! One certificate per mail domain (its `autoconfig.`, `autodiscover.` and, with MTA-STS,
//! `mta-sts.` names): a hosting provider's thousands of domains never share one certificate (CAs
//! cap names per certificate at 100, and one failing domain must not block the others). Every
//! certificate is ordered in the background as soon as the domain is configured — clients give up
//! after about 5 s, far too soon for issuance on the first request — renewed on its own at 2/3 of
//! its lifetime, cached in `cache_dir` across restarts, and chosen per connection by SNI.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_acme::caches::DirCache;
use rustls_acme::{AcmeConfig, ResolvesServerCertAcme};
use tracing::{info, warn};

use crate::settings::{AcmeSettings, Settings};
use crate::vocab;

/// The names of one certificate: the web hosts of one mail domain.
pub fn names_for(settings: &Settings) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = settings
        .domains
        .iter()
        .flat_map(|d| {
            d.names().map(move |n| {
                vocab::web_labels(d.mta_sts.is_some())
                    .map(|l| vocab::web_host(l, n))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    if let Some(a) = &settings.server.acme {
        out.extend(a.extra_names.iter().map(|n| vec![n.clone()]));
    }
    out
}

/// Picks the certificate of the requested name; answers TLS-ALPN-01 challenges for it.
#[derive(Default)]
pub struct Acme {
    by_name: Mutex<HashMap<String, Arc<ResolvesServerCertAcme>>>,
}

impl fmt::Debug for Acme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acme").finish_non_exhaustive()
    }
}

impl Acme {
    /// Start ordering (or loading from the cache) a certificate for every group of names not
    /// already handled. Called at start and after each reload.
    pub fn ensure(&self, cfg: &AcmeSettings, groups: Vec<Vec<String>>) {
        if let Err(e) = std::fs::create_dir_all(&cfg.cache_dir) {
            warn!(dir = %cfg.cache_dir.display(), error = %e, "cannot create the ACME cache directory");
        }
        let client = match client_config(cfg) {
            Ok(c) => c,
            Err(e) => return warn!(error = %e, "ACME client configuration"),
        };
        for names in groups {
            let mut map = self.by_name.lock().unwrap_or_else(|e| e.into_inner());
            if names.iter().all(|n| map.contains_key(n)) {
                continue;
            }
            let mut state = AcmeConfig::new_with_client_config(&names, client.clone())
                .directory(&cfg.directory)
                .contact(&cfg.contact)
                .cache(DirCache::new(cfg.cache_dir.clone()))
                .state();
            let resolver = state.resolver();
            for n in &names {
                map.insert(n.clone(), resolver.clone());
            }
            let label = names[0].clone();
            let cache_dir = cfg.cache_dir.clone();
            tokio::spawn(async move {
                while let Some(event) = state.next().await {
                    match event {
                        Ok(ok) => {
                            info!(certificate = %label, event = ?ok, "ACME");
                            if let Some(t) = soonest_expiry(&cache_dir) {
                                crate::metrics::METRICS.set_cert_not_after(t);
                            }
                        }
                        Err(e) => warn!(certificate = %label, error = %e, "ACME (will retry)"),
                    }
                }
            });
        }
    }
}

impl ResolvesServerCert for Acme {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?.to_ascii_lowercase();
        let resolver = self
            .by_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
            .cloned()?;
        resolver.resolve(hello)
    }
}

/// TLS client settings for talking to the ACME server: web PKI roots plus `ca_roots`.
fn client_config(cfg: &AcmeSettings) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for c in &cfg.ca_roots {
        roots.add(c.clone())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// The server configuration for HTTPS listeners: ALPN offers the challenge protocol too, and a
/// connection that negotiated it is a validation, not a client (the caller closes it).
pub fn server_config(acme: Arc<Acme>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(acme);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec(), rustls_acme::acme::ACME_TLS_ALPN_NAME.to_vec()];
    Arc::new(cfg)
}

/// Certificates rustls-acme's `DirCache` holds: files `cached_cert_*`, each a PKCS #8 key and the
/// chain in PEM.
fn cached(cache_dir: &Path) -> impl Iterator<Item = (PathBuf, Vec<u8>)> {
    std::fs::read_dir(cache_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("cached_cert_"))
        .filter_map(|e| Some((e.path(), std::fs::read(e.path()).ok()?)))
}

/// The cached ACME certificate (and key) that covers `name`, to sign Apple profiles with.
pub fn cached_material(cache_dir: &Path, name: &str) -> Option<crate::settings::TlsFiles> {
    use x509_parser::extensions::GeneralName;
    cached(cache_dir).find_map(|(path, pem)| {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect();
        let (_, x) = x509_parser::parse_x509_certificate(chain.first()?.as_ref()).ok()?;
        let san = x.subject_alternative_name().ok().flatten()?;
        let covers = san
            .value
            .general_names
            .iter()
            .any(|g| matches!(g, GeneralName::DNSName(d) if d.eq_ignore_ascii_case(name)));
        let key = PrivateKeyDer::from_pem_slice(&pem).ok()?;
        let path = path.display().to_string();
        covers.then(|| crate::settings::TlsFiles {
            cert_path: path.clone(),
            key_path: path,
            chain: chain.clone(),
            key,
        })
    })
}

/// The earliest expiry (unix time) among cached certificates, for the metrics.
fn soonest_expiry(cache_dir: &Path) -> Option<i64> {
    cached(cache_dir)
        .filter_map(|(_, pem)| {
            let c = CertificateDer::pem_slice_iter(&pem).next()?.ok()?;
            let (_, x) = x509_parser::parse_x509_certificate(c.as_ref()).ok()?;
            Some(x.validity().not_after.timestamp())
        })
        .min()
}
