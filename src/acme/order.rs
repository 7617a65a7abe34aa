//! One order (RFC 8555 §7.4) through rustls-acme's low-level client (`rustls_acme::acme`):
//! new order, a TLS-ALPN-01 challenge per name, finalize with a fresh P-256 key, download. The
//! challenge certificates go into a map shared with the TLS resolver, so several orders can be
//! validated at once (rustls-acme's own state machine holds one challenge at a time).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ClientConfig;
use rustls::sign::CertifiedKey;
use rustls_acme::acme::{Account, AcmeError, AuthStatus, Identifier, OrderStatus, Problem};

/// TLS-ALPN-01 challenge certificates by name, while their validation runs.
pub type Challenges = Mutex<HashMap<String, Arc<CertifiedKey>>>;

/// The longest one exchange with the CA may take. rustls-acme's HTTP client has no timeout of
/// its own: a CA that accepts connections and never answers would hold an order (and, while the
/// account is made, the whole scheduler) forever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One exchange with the CA (a request and its nonce), given up after [`REQUEST_TIMEOUT`] as an
/// I/O error: before the order exists that reads as the CA unavailable, after as this order's
/// failure.
pub async fn ca<T>(exchange: impl Future<Output = Result<T, AcmeError>>) -> Result<T, AcmeError> {
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(AcmeError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer from the CA within {} s", REQUEST_TIMEOUT.as_secs()),
            )))
        })
}

/// Why an order did not give a certificate.
#[derive(Debug)]
pub enum Failure {
    /// The CA could not be reached or failed itself (5xx), before an order existed: nothing
    /// counts against the budget, and every order waits.
    Ca(String),
    /// `urn:ietf:params:acme:error:rateLimited`. `until`: the CA's "retry after", when it says.
    /// `account`: the account-wide limit (every order waits), else this name's (only it waits).
    RateLimited {
        until: Option<i64>,
        account: bool,
        detail: String,
    },
    /// This order failed (validation, a refused name, …): this certificate waits and retries.
    /// `created`: the CA had created the order (it counts against the budget).
    Order { created: bool, detail: String },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Ca(d) => write!(f, "CA unavailable: {d}"),
            Failure::RateLimited { detail, .. } => write!(f, "rate limited: {detail}"),
            Failure::Order { detail, .. } => f.write_str(detail),
        }
    }
}

/// Sort an error of the ACME client; `created`: whether the order exists at the CA yet.
pub fn classify(e: &AcmeError, created: bool) -> Failure {
    match e {
        // rustls-acme does not export its HTTP error type: its text is
        // "non 2xx http status: CODE BODY" with the body `Debug`-quoted.
        AcmeError::HttpRequest(h) => {
            let text = h.to_string();
            match text
                .strip_prefix("non 2xx http status: ")
                .and_then(|r| r.split_once(' '))
            {
                Some((code, body)) => {
                    let body = serde_json::from_str::<String>(body).unwrap_or_else(|_| body.to_string());
                    classify_status(code.parse().unwrap_or(0), &body, created)
                }
                None if !created => Failure::Ca(text),
                None => Failure::Order { created, detail: text },
            }
        }
        AcmeError::Io(e) if !created => Failure::Ca(e.to_string()),
        e => Failure::Order {
            created,
            detail: e.to_string(),
        },
    }
}

/// Sort an error answer of the CA (an RFC 7807 problem document in `body`).
fn classify_status(status: u16, body: &str, created: bool) -> Failure {
    let p: Option<Problem> = serde_json::from_str(body).ok();
    let typ = p.as_ref().and_then(|p| p.typ.clone()).unwrap_or_default();
    let detail = p
        .and_then(|p| p.detail)
        .unwrap_or_else(|| body.chars().take(200).collect());
    if typ.ends_with(":rateLimited") || status == 429 {
        Failure::RateLimited {
            until: super::clock::retry_after_in(&detail),
            account: detail.contains("account"),
            detail,
        }
    } else if status >= 500 && !created {
        Failure::Ca(format!("{status} {detail}"))
    } else {
        Failure::Order {
            created,
            detail: format!("{status} {typ}: {detail}"),
        }
    }
}

/// Removes a challenge certificate when the validation is over, however it ends.
struct Posted<'a>(&'a Challenges, String);

impl Drop for Posted<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.1);
    }
}

fn problem(p: Option<&Problem>) -> String {
    p.map_or_else(
        || "no reason given".to_string(),
        |p| {
            format!(
                "{} {}",
                p.typ.as_deref().unwrap_or(""),
                p.detail.as_deref().unwrap_or("")
            )
        },
    )
}

/// Order a certificate for `names`; the cache file's contents (key, blank line, chain).
pub async fn order(
    account: &Account,
    client: &Arc<ClientConfig>,
    names: &[String],
    challenges: &Challenges,
) -> Result<Vec<u8>, Failure> {
    let (url, mut order) = ca(account.new_order(client, names.to_vec()))
        .await
        .map_err(|e| classify(&e, false))?;
    let fail = |e: AcmeError| classify(&e, true);
    let key = rcgen13::KeyPair::generate_for(&rcgen13::PKCS_ECDSA_P256_SHA256).map_err(|e| Failure::Order {
        created: true,
        detail: e.to_string(),
    })?;
    for round in 0..20u32 {
        match order.status {
            OrderStatus::Pending => {
                for a in &order.authorizations {
                    authorize(account, client, a, challenges).await?;
                }
                order = ca(account.order(client, &url)).await.map_err(fail)?;
            }
            OrderStatus::Ready => {
                let mut params = rcgen13::CertificateParams::new(names.to_vec()).map_err(|e| Failure::Order {
                    created: true,
                    detail: e.to_string(),
                })?;
                params.distinguished_name = rcgen13::DistinguishedName::new();
                let csr = params.serialize_request(&key).map_err(|e| Failure::Order {
                    created: true,
                    detail: e.to_string(),
                })?;
                order = ca(account.finalize(client, &order.finalize, csr.der()))
                    .await
                    .map_err(fail)?;
            }
            OrderStatus::Processing => {
                tokio::time::sleep(Duration::from_millis(500 << round.min(4))).await;
                order = ca(account.order(client, &url)).await.map_err(fail)?;
            }
            OrderStatus::Valid { certificate } => {
                let chain = ca(account.certificate(client, certificate)).await.map_err(fail)?;
                return Ok(format!("{}\n{chain}", key.serialize_pem()).into_bytes());
            }
            OrderStatus::Invalid => {
                return Err(Failure::Order {
                    created: true,
                    detail: format!("order invalid: {}", problem(order.error.as_ref())),
                });
            }
        }
    }
    Err(Failure::Order {
        created: true,
        detail: "the order did not complete".to_string(),
    })
}

/// Get one authorization valid: answer its TLS-ALPN-01 challenge and wait for the CA.
async fn authorize(
    account: &Account,
    client: &Arc<ClientConfig>,
    url: &str,
    challenges: &Challenges,
) -> Result<(), Failure> {
    let fail = |e: AcmeError| classify(&e, true);
    let auth = ca(account.auth(client, url)).await.map_err(fail)?;
    match auth.status {
        AuthStatus::Valid => return Ok(()),
        AuthStatus::Pending => {}
        other => {
            return Err(Failure::Order {
                created: true,
                detail: format!("authorization {other:?}"),
            });
        }
    }
    let Identifier::Dns(name) = auth.identifier.clone();
    let (challenge, cert) = account.tls_alpn_01(&auth.challenges, name.clone()).map_err(fail)?;
    challenges
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.to_ascii_lowercase(), Arc::new(cert));
    let _posted = Posted(challenges, name.to_ascii_lowercase());
    ca(account.challenge(client, &challenge.url)).await.map_err(fail)?;
    for i in 0..12u32 {
        tokio::time::sleep(Duration::from_millis(250 << i.min(4))).await;
        let auth = ca(account.auth(client, url)).await.map_err(fail)?;
        match auth.status {
            AuthStatus::Pending => continue,
            AuthStatus::Valid => return Ok(()),
            other => {
                let why = auth.challenges.iter().find_map(|c| c.error.as_ref());
                return Err(Failure::Order {
                    created: true,
                    detail: format!("{name}: authorization {other:?}: {}", problem(why)),
                });
            }
        }
    }
    Err(Failure::Order {
        created: true,
        detail: format!("{name}: validation still pending after 40 s"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_ca_outages_and_order_failures_are_told_apart() {
        let account = r#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new orders (300) from this account in the last 3h0m0s, retry after 2026-12-02 05:21:00 UTC: see https://letsencrypt.org/docs/rate-limits/"}"#;
        assert!(matches!(
            classify_status(429, account, false),
            Failure::RateLimited {
                until: Some(1_796_188_860),
                account: true,
                ..
            }
        ));
        let name = r#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many certificates (50) already issued for \"example.com\" in the last 168h0m0s"}"#;
        assert!(matches!(
            classify_status(429, name, false),
            Failure::RateLimited {
                until: None,
                account: false,
                ..
            }
        ));
        assert!(matches!(classify_status(503, "busy", false), Failure::Ca(_)));
        assert!(matches!(
            classify_status(503, "busy", true),
            Failure::Order { created: true, .. }
        ));
        let refused = r#"{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"no"}"#;
        assert!(matches!(
            classify_status(400, refused, false),
            Failure::Order { created: false, .. }
        ));
        let io = AcmeError::Io(std::io::Error::other("connection refused"));
        assert!(matches!(classify(&io, false), Failure::Ca(_)));
        assert!(matches!(classify(&io, true), Failure::Order { created: true, .. }));
    }
}
