//! One order (RFC 8555 §7.4) through rustls-acme's low-level client (`rustls_acme::acme`):
//! new order, a TLS-ALPN-01 challenge per name, finalize with a fresh P-256 key, download. The
//! challenge certificates go into a map shared with the TLS resolver, so several orders can be
//! validated at once (rustls-acme's own state machine holds one challenge at a time).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ClientConfig;
use rustls::sign::CertifiedKey;
use rustls_acme::acme::{Account, AcmeError, AuthStatus, ChallengeType, Identifier, OrderStatus, Problem};
use tracing::{debug, info};

/// TLS-ALPN-01 challenge certificates by name, while their validation runs.
pub type Challenges = Mutex<HashMap<String, Arc<CertifiedKey>>>;

/// The longest one exchange with the CA may take. rustls-acme's HTTP client has no timeout of
/// its own: a CA that accepts connections and never answers would hold an order, or the making
/// of the account, forever.
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
/// `dns01`: validate by DNS-01 from our own zones where they hold the name
/// ([`super::dns01`]), else TLS-ALPN-01.
pub async fn order(
    account: &Account,
    client: &Arc<ClientConfig>,
    names: &[String],
    challenges: &Challenges,
    dns01: bool,
    replaces: Option<&str>,
) -> Result<Vec<u8>, Failure> {
    let (url, mut order) = match replaces {
        Some(id) => new_order_replacing(account, client, names, id).await?,
        None => ca(account.new_order(client, names.to_vec()))
            .await
            .map_err(|e| classify(&e, false))?,
    };
    let fail = |e: AcmeError| classify(&e, true);
    let key = rcgen13::KeyPair::generate_for(&rcgen13::PKCS_ECDSA_P256_SHA256).map_err(|e| Failure::Order {
        created: true,
        detail: e.to_string(),
    })?;
    for round in 0..20u32 {
        match order.status {
            OrderStatus::Pending => {
                if dns01 && super::dns01::BOARD.attached() {
                    authorize_dns01(account, client, &order.authorizations, challenges).await?;
                } else {
                    for a in &order.authorizations {
                        authorize(account, client, a, challenges).await?;
                    }
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

/// A newOrder that says which certificate it renews (`replaces`, RFC 9773 §5: the certID of
/// [`super::ari::cert_id`]). rustls-acme 0.15 sends only `identifiers`, so this one request is
/// signed here — a JWS with ES256 over the account's key, its key ID and a fresh nonce (RFC 8555
/// §6.2), all public in rustls-acme's `Account` — and sent with our own HTTPS client; the order
/// then goes on through rustls-acme. A `Retry-After` on a refusal is honoured (rustls-acme's own
/// requests lose it).
async fn new_order_replacing(
    account: &Account,
    client: &Arc<ClientConfig>,
    names: &[String],
    replaces: &str,
) -> Result<(String, rustls_acme::acme::Order), Failure> {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let nonce = ca(account.directory.nonce(client))
        .await
        .map_err(|e| classify(&e, false))?;
    let url = &account.directory.new_order;
    let protected = serde_json::json!({"alg": "ES256", "kid": account.kid, "nonce": nonce, "url": url});
    let identifiers: Vec<_> = names
        .iter()
        .map(|n| serde_json::json!({"type": "dns", "value": n}))
        .collect();
    let payload = serde_json::json!({"identifiers": identifiers, "replaces": replaces});
    let (protected, payload) = (
        b64(protected.to_string().as_bytes()),
        b64(payload.to_string().as_bytes()),
    );
    let signature = account
        .key_pair
        .sign(
            &ring::rand::SystemRandom::new(),
            format!("{protected}.{payload}").as_bytes(),
        )
        .map_err(|_| Failure::Ca("cannot sign the order".to_string()))?;
    let jws = serde_json::json!({"protected": protected, "payload": payload, "signature": b64(signature.as_ref())});
    let answer = tokio::time::timeout(
        REQUEST_TIMEOUT,
        super::ari::exchange(client, url, Some(jws.to_string())),
    )
    .await
    .unwrap_or_else(|_| Err(format!("no answer from the CA within {} s", REQUEST_TIMEOUT.as_secs())))
    .map_err(Failure::Ca)?;
    if !(200..300).contains(&answer.status) {
        let mut failure = classify_status(answer.status, &String::from_utf8_lossy(&answer.body), false);
        if let Failure::RateLimited { until, .. } = &mut failure
            && until.is_none()
        {
            let now = super::clock::now();
            *until = answer
                .retry_after
                .and_then(|r| super::ari::retry_after_header(&r, now))
                .map(|s| now + s);
        }
        return Err(failure);
    }
    let location = answer.location.ok_or_else(|| Failure::Order {
        created: true,
        detail: "the new order has no Location".to_string(),
    })?;
    let order = serde_json::from_slice(&answer.body).map_err(|e| Failure::Order {
        created: true,
        detail: format!("the new order does not parse: {e}"),
    })?;
    Ok((location, order))
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
    if !awaits_challenge(&auth.status)? {
        return Ok(());
    }
    let Identifier::Dns(name) = auth.identifier.clone();
    let (challenge, cert) = account.tls_alpn_01(&auth.challenges, name.clone()).map_err(fail)?;
    challenges
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.to_ascii_lowercase(), Arc::new(cert));
    let _posted = Posted(challenges, name.to_ascii_lowercase());
    ca(account.challenge(client, &challenge.url)).await.map_err(fail)?;
    validated(account, client, url, &name).await
}

/// Whether an authorization still waits for a challenge (`false`: already valid); any other
/// status fails the order.
fn awaits_challenge(status: &AuthStatus) -> Result<bool, Failure> {
    match status {
        AuthStatus::Valid => Ok(false),
        AuthStatus::Pending => Ok(true),
        other => Err(Failure::Order {
            created: true,
            detail: format!("authorization {other:?}"),
        }),
    }
}

/// The longest DNS-01 waits for every secondary to serve the challenge.
const PROPAGATION: Duration = Duration::from_secs(120);

/// Get every authorization of an order valid with DNS-01: post all their TXT records at once
/// (one zone rebuild, one NOTIFY per zone), wait until mailconf and every secondary of the
/// zone answer them, then have the CA validate. Names outside mailconf's zones, and
/// authorizations without a DNS-01 challenge, use TLS-ALPN-01.
async fn authorize_dns01(
    account: &Account,
    client: &Arc<ClientConfig>,
    urls: &[String],
    challenges: &Challenges,
) -> Result<(), Failure> {
    use super::dns01::{BOARD, serves, txt_value};
    let fail = |e: AcmeError| classify(&e, true);
    // (authorization URL, name, challenge URL, TXT value)
    let mut pending = Vec::new();
    for url in urls {
        let auth = ca(account.auth(client, url)).await.map_err(fail)?;
        if !awaits_challenge(&auth.status)? {
            continue;
        }
        let Identifier::Dns(name) = auth.identifier.clone();
        match auth.challenges.iter().find(|c| c.typ == ChallengeType::Dns01) {
            Some(c) => pending.push((
                url,
                name.to_ascii_lowercase(),
                c.url.clone(),
                txt_value(&account.key_pair, &c.token),
            )),
            None => authorize(account, client, url, challenges).await?,
        }
    }
    if pending.is_empty() {
        return Ok(());
    }
    let (generation, _posted) = BOARD.post(pending.iter().map(|p| (p.1.clone(), p.3.clone())).collect());
    let served = BOARD
        .wait_served(generation, REQUEST_TIMEOUT)
        .await
        .ok_or_else(|| Failure::Order {
            created: true,
            detail: "the DNS server did not publish the DNS-01 challenges".to_string(),
        })?;
    let (placed, outside): (Vec<_>, Vec<_>) = pending.into_iter().partition(|p| served.placed.contains_key(&p.1));
    for (url, name, _, _) in &outside {
        debug!(%name, "not in a zone mailconf serves: TLS-ALPN-01 instead of DNS-01");
        authorize(account, client, url, challenges).await?;
    }
    // Every secondary of the zone (NOTIFYed by the rebuild) must answer the record: the CA may
    // ask any of the zone's nameservers.
    let mut waiting: Vec<(std::net::SocketAddr, &str, &str)> = placed
        .iter()
        .flat_map(|(_, name, _, value)| {
            served.placed[name]
                .iter()
                .map(move |&addr| (addr, name.as_str(), value.as_str()))
        })
        .collect();
    let secondaries = waiting
        .iter()
        .map(|w| w.0)
        .collect::<std::collections::HashSet<_>>()
        .len();
    let started = tokio::time::Instant::now();
    let deadline = started + PROPAGATION;
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for w in waiting {
            if !serves(w.0, w.1, w.2).await {
                still.push(w);
            }
        }
        waiting = still;
        if let Some((addr, name, _)) = waiting.first() {
            if tokio::time::Instant::now() >= deadline {
                return Err(Failure::Order {
                    created: true,
                    detail: format!(
                        "{name}: secondary {addr} does not serve the DNS-01 challenge after {} s",
                        PROPAGATION.as_secs()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    if let Some((_, name, _, _)) = placed.first() {
        info!(
            certificate = %name,
            names = placed.len(),
            secondaries,
            waited_ms = started.elapsed().as_millis() as u64,
            "ACME DNS-01 challenges served by mailconf and every secondary: validation asked"
        );
    }
    for (_, _, challenge, _) in &placed {
        ca(account.challenge(client, challenge)).await.map_err(fail)?;
    }
    for (url, name, _, _) in &placed {
        validated(account, client, url, name).await?;
    }
    Ok(())
}

/// Wait for the CA's verdict on authorization `url` (for `name`) after its challenge was
/// posted.
async fn validated(account: &Account, client: &Arc<ClientConfig>, url: &str, name: &str) -> Result<(), Failure> {
    let fail = |e: AcmeError| classify(&e, true);
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
