//! Talking to the CA before any order: the TLS client settings, and the ACME account with its
//! key from the cache (made the first time).

use std::sync::Arc;

use rustls_acme::acme::{Account, Directory};
use tracing::warn;

use crate::acme::{cache, clock, order};
use crate::settings::AcmeSettings;

/// The ACME account, registered (or found again) at the CA with `key`, else with the key
/// from the cache ([`account_key`]). Returns the key used, and the account or why not.
pub(super) async fn account(
    cfg: Arc<AcmeSettings>,
    client: Arc<rustls::ClientConfig>,
    key: Option<Vec<u8>>,
) -> (Vec<u8>, Result<Arc<Account>, order::Failure>) {
    let key = match key {
        Some(k) => k,
        None => {
            let cfg = cfg.clone();
            tokio::task::spawn_blocking(move || account_key(&cfg))
                .await
                .unwrap_or_else(|_| Account::generate_key_pair())
        }
    };
    let made = async {
        let directory = order::ca(Directory::discover(&client, &cfg.directory))
            .await
            .map_err(|e| order::classify(&e, false))?;
        let account = order::ca(Account::create_with_keypair(&client, directory, &cfg.contact, &key))
            .await
            .map_err(|e| order::classify(&e, false))?;
        Ok(Arc::new(account))
    }
    .await;
    (key, made)
}

/// The account key from the cache; made and saved the first time. A file that holds no usable
/// key (cut, garbage, another key type) would stop every order for good: it is reported with
/// its path and why, kept aside as `NAME.damaged-UNIXTIME` for the postmaster, and a new key
/// (a new account at the CA) takes its place.
fn account_key(cfg: &AcmeSettings) -> Vec<u8> {
    let path = cache::account_file(&cfg.cache_dir, &cfg.contact, &cfg.directory);
    match cache::read(&path) {
        Ok(Some(k)) => match cache::account_key_problem(&k) {
            None => return k,
            Some(why) => {
                let aside = cache::damaged_file(&path, clock::now());
                match std::fs::rename(&path, &aside) {
                    Ok(()) => {
                        warn!(file = %path.display(), kept_as = %aside.display(), error = %why, "ACME account key damaged: kept aside, a new account is made")
                    }
                    Err(e) => {
                        warn!(file = %path.display(), error = %why, rename_error = %e, "ACME account key damaged (cannot be kept aside): a new account is made")
                    }
                }
            }
        },
        Ok(None) => {}
        Err(e) => warn!(file = %path.display(), error = %e, "cannot read the ACME account key: a new account is made"),
    }
    let k = Account::generate_key_pair();
    if let Err(e) = cache::write(&path, &k) {
        warn!(file = %path.display(), error = %e, "cannot save the ACME account key");
    }
    k
}

/// TLS client settings for talking to the ACME server: web PKI roots plus `ca_roots`.
pub(super) fn client_config(cfg: &AcmeSettings) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
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
