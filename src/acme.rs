//! Certificates from an ACME CA (RFC 8555) with the TLS-ALPN-01 challenge (rustls-acme).
//!
//! One certificate per mail domain (its `autoconfig.`, `autodiscover.` and, with MTA-STS,
//! `mta-sts.` names): a hosting provider's thousands of domains never share one certificate (CAs
//! cap names per certificate at 100, and one failing domain must not block the others). Every
//! certificate is ordered in the background as soon as the domain is configured — clients give up
//! after about 5 s, far too soon for issuance on the first request — renewed on its own at 2/3 of
//! its lifetime, cached in `cache_dir` across restarts, and chosen per connection by SNI. The certificate and key
//! of each name are also kept in memory as rustls-acme loads or obtains them (through its cache
//! hooks), to sign Apple profiles with.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_acme::caches::DirCache;
use rustls_acme::{AcmeConfig, CertCache, ResolvesServerCertAcme};
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
                vocab::web_labels(d.mta_sts.is_some(), d.provider.pacc)
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
    /// The current certificate of every name, to sign Apple profiles with.
    issued: Arc<Issued>,
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
            let certs = Remembering {
                disk: DirCache::new(cfg.cache_dir.clone()),
                issued: self.issued.clone(),
            };
            let mut state = AcmeConfig::new_with_client_config(&names, client.clone())
                .directory(&cfg.directory)
                .contact(&cfg.contact)
                .cache_compose(certs, DirCache::new(cfg.cache_dir.clone()))
                .state();
            let resolver = state.resolver();
            for n in &names {
                map.insert(n.clone(), resolver.clone());
            }
            let label = names[0].clone();
            tokio::spawn(async move {
                while let Some(event) = state.next().await {
                    match event {
                        Ok(ok) => info!(certificate = %label, event = ?ok, "ACME"),
                        Err(e) => warn!(certificate = %label, error = %e, "ACME (will retry)"),
                    }
                }
            });
        }
    }

    /// The current certificate (chain and key) that covers `name`, to sign Apple profiles with.
    pub fn signing_cert(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let map = self.issued.0.read().unwrap_or_else(|e| e.into_inner());
        map.get(&name.to_ascii_lowercase()).map(|(c, _)| c.clone())
    }
}

/// Certificates rustls-acme deployed, by name, with their expiry (unix time).
#[derive(Default)]
struct Issued(RwLock<HashMap<String, (Arc<CertifiedKey>, i64)>>);

impl Issued {
    /// Remember the certificate rustls-acme loaded or obtained for `names` (PEM: PKCS #8 key and
    /// chain), and publish the soonest expiry.
    fn deploy(&self, names: &[String], pem: &[u8]) {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem).filter_map(Result::ok).collect();
        let key = PrivateKeyDer::from_pem_slice(pem).ok();
        let key = key.and_then(|k| rustls::crypto::ring::sign::any_supported_type(&k).ok());
        let (Some(key), Some(not_after)) = (key, chain.first().and_then(|c| crate::http::not_after(c))) else {
            return warn!(certificate = %names.join(","), "ACME certificate unreadable: profiles stay unsigned");
        };
        let cert = Arc::new(CertifiedKey::new(chain, key));
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        for n in names {
            map.insert(n.to_ascii_lowercase(), (cert.clone(), not_after));
        }
        if let Some(soonest) = map.values().map(|(_, t)| *t).min() {
            crate::metrics::METRICS.set_cert_not_after(soonest);
        }
    }
}

/// rustls-acme's certificate cache: the directory, and every certificate read from it or written
/// to it kept in memory as well.
struct Remembering {
    disk: DirCache<PathBuf>,
    issued: Arc<Issued>,
}

#[async_trait::async_trait]
impl CertCache for Remembering {
    type EC = std::io::Error;

    async fn load_cert(&self, domains: &[String], directory_url: &str) -> Result<Option<Vec<u8>>, Self::EC> {
        let pem = self.disk.load_cert(domains, directory_url).await?;
        if let Some(pem) = &pem {
            self.issued.deploy(domains, pem);
        }
        Ok(pem)
    }

    async fn store_cert(&self, domains: &[String], directory_url: &str, cert: &[u8]) -> Result<(), Self::EC> {
        // rustls-acme serves the new certificate already; sign with it even if the disk fails.
        self.issued.deploy(domains, cert);
        self.disk.store_cert(domains, directory_url, cert).await
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
    cfg.alpn_protocols = crate::http::ALPN.iter().map(|p| p.to_vec()).collect();
    cfg.alpn_protocols.push(rustls_acme::acme::ACME_TLS_ALPN_NAME.to_vec());
    Arc::new(cfg)
}
