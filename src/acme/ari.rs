//! ACME Renewal Information (ARI, RFC 9773): the CA says when to renew each certificate.
//!
//! The directory's `renewalInfo` URL (rustls-acme 0.15's `Directory` drops it, so the directory
//! is fetched here too) plus a certificate's ID ([`cert_id`]: base64url of its Authority Key
//! Identifier and of its serial number, §4.1) gives a URL that answers, to an unauthenticated
//! GET, a suggested window (§4.2). The client renews at a uniformly random time inside it
//! ([`pick`]), at once when that time has passed, and asks again after the answer's
//! `Retry-After` ([`recheck_after`]). A CA without `renewalInfo` (Pebble 2.4) leaves the
//! renewal at two thirds of the lifetime ([`super::cache::renew_at`]).
//!
//! A renewal then names the certificate it replaces (§5) in its newOrder, signed by mailconf
//! itself (`order::new_order_replacing`): rustls-acme 0.15 sends only `identifiers`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::{HOST, RETRY_AFTER, USER_AGENT};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

/// Default wait before asking again when the answer has no usable `Retry-After` (six hours, as
/// RFC 9773 §4.3 suggests), and the bounds put on the CA's value.
pub const RECHECK_DEFAULT: i64 = 6 * 3600;
const RECHECK_MIN: i64 = 60;
const RECHECK_MAX: i64 = 86_400;

/// The suggested renewal window (unix seconds), start before end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

/// RFC 9773 §4.1: `base64url(keyIdentifier of the Authority Key Identifier) "."
/// base64url(serialNumber's DER content octets)`; `None` for a certificate without an AKI key
/// identifier (or not a certificate).
pub fn cert_id(der: &[u8]) -> Option<String> {
    use x509_parser::extensions::ParsedExtension;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let aki = cert.extensions().iter().find_map(|e| match e.parsed_extension() {
        ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.as_ref().map(|k| k.0),
        _ => None,
    })?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    Some(format!("{}.{}", b64(aki), b64(cert.tbs_certificate.raw_serial())))
}

/// The window of a RenewalInfo object (`{"suggestedWindow": {"start": …, "end": …}}`, RFC 3339
/// times); `None` when it is missing or its end is not after its start (§4.2: then the client
/// ignores it).
pub fn parse_window(body: &[u8]) -> Option<Window> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Info {
        suggested_window: Times,
    }
    #[derive(serde::Deserialize)]
    struct Times {
        start: String,
        end: String,
    }
    let info: Info = serde_json::from_slice(body).ok()?;
    let w = Window {
        start: rfc3339(&info.suggested_window.start)?,
        end: rfc3339(&info.suggested_window.end)?,
    };
    (w.end > w.start).then_some(w)
}

/// An RFC 3339 date-time (`2025-01-02T04:00:00Z`, with optional fraction and offset).
pub fn rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let o = rest.as_bytes();
            if o.len() != 6 || !matches!(o[0], b'+' | b'-') || o[3] != b':' {
                return None;
            }
            let hh: i64 = rest.get(1..3)?.parse().ok()?;
            let mm: i64 = rest.get(4..6)?.parse().ok()?;
            let sign = if o[0] == b'-' { -1 } else { 1 };
            sign * (hh * 3600 + mm * 60)
        }
    };
    Some(crate::dates::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// When to renew inside `window` (§4.2): `start + random × (end − start)`, `random` uniform in
/// [0, 1); `now` when that time has passed (also when the whole window has: renew at once).
pub fn pick(window: Window, now: i64, random: f64) -> i64 {
    let span = (window.end - window.start).max(0) as f64;
    let at = window.start + (span * random.clamp(0.0, 1.0)) as i64;
    at.min(window.end - 1).max(window.start).max(now)
}

/// When to ask again (seconds from now) after an answer with `retry_after` (the header's
/// value: delta-seconds or an HTTP date, already turned into seconds from now): the CA's value
/// within one minute and one day, else six hours.
pub fn recheck_after(retry_after: Option<i64>) -> i64 {
    retry_after.map_or(RECHECK_DEFAULT, |s| s.clamp(RECHECK_MIN, RECHECK_MAX))
}

/// A `Retry-After` header value in seconds from `now`: delta-seconds, or an IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn retry_after_header(value: &str, now: i64) -> Option<i64> {
    let v = value.trim();
    if let Ok(s) = v.parse::<i64>() {
        return Some(s.max(0));
    }
    let parts: Vec<&str> = v.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == parts[2])? as i64 + 1;
    let at = rfc3339(&format!("{}-{month:02}-{:0>2}T{}Z", parts[3], parts[1], parts[4]))?;
    Some((at - now).max(0))
}

/// A uniform random number in [0, 1).
pub fn random() -> f64 {
    let mut b = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    (u64::from_be_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// The longest one ARI exchange may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// One unauthenticated GET over HTTPS (HTTP/1.1, hyper): status, `Retry-After` (raw) and body
/// (at most 64 KiB).
pub async fn get(client: &Arc<rustls::ClientConfig>, url: &str) -> Result<(u16, Option<String>, Bytes), String> {
    let a = exchange(client, url, None).await?;
    Ok((a.status, a.retry_after, a.body))
}

/// An HTTP answer of the CA.
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub location: Option<String>,
    pub body: Bytes,
}

/// One request over HTTPS (HTTP/1.1, hyper, one connection): a GET, or with `jose` a POST of
/// that JWS (`application/jose+json`); the answer's body at most 64 KiB.
pub async fn exchange(client: &Arc<rustls::ClientConfig>, url: &str, jose: Option<String>) -> Result<Answer, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("{url}: not https"));
    }
    let host = uri.host().ok_or_else(|| format!("{url}: no host"))?.to_string();
    let port = uri.port_u16().unwrap_or(443);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let name =
            ServerName::try_from(host.trim_matches(['[', ']']).to_string()).map_err(|e| format!("{url}: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(client.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let driver = tokio::spawn(conn);
        let authority = uri.authority().map_or(host.clone(), |a| a.to_string());
        let builder = Request::builder()
            .method(if jose.is_some() { "POST" } else { "GET" })
            .uri(path)
            .header(HOST, authority)
            .header(USER_AGENT, concat!("mailconf/", env!("CARGO_PKG_VERSION")));
        let request = match &jose {
            Some(body) => builder
                .header(hyper::header::CONTENT_TYPE, "application/jose+json")
                .body(Full::new(Bytes::from(body.clone()))),
            None => builder.body(Full::new(Bytes::new())),
        }
        .map_err(|e| e.to_string())?;
        let result = async {
            let response = sender.send_request(request).await.map_err(|e| format!("{url}: {e}"))?;
            let status = response.status().as_u16();
            let header = |h| {
                response
                    .headers()
                    .get(h)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let (retry_after, location) = (header(RETRY_AFTER), header(hyper::header::LOCATION));
            let body = Limited::new(response.into_body(), 64 * 1024)
                .collect()
                .await
                .map_err(|e| format!("{url}: {e}"))?
                .to_bytes();
            Ok(Answer {
                status,
                retry_after,
                location,
                body,
            })
        }
        .await;
        driver.abort();
        result
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| format!("{url}: no answer within {} s", TIMEOUT.as_secs()))?
}

/// The directory's `renewalInfo` URL, if the CA offers ARI.
pub async fn renewal_info_url(client: &Arc<rustls::ClientConfig>, directory: &str) -> Result<Option<String>, String> {
    let (status, _, body) = get(client, directory).await?;
    if status != 200 {
        return Err(format!("{directory}: HTTP {status}"));
    }
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("{directory}: {e}"))?;
    Ok(v.get("renewalInfo").and_then(|u| u.as_str()).map(str::to_string))
}

/// What the CA suggests for the certificate `id` at `base` (the directory's `renewalInfo`):
/// its window, if it gave a usable one, and when to ask again (seconds from `now`).
pub async fn fetch(
    client: &Arc<rustls::ClientConfig>,
    base: &str,
    id: &str,
    now: i64,
) -> Result<(Option<Window>, i64), String> {
    let url = format!("{}/{id}", base.trim_end_matches('/'));
    let (status, retry, body) = get(client, &url).await?;
    let recheck = recheck_after(retry.and_then(|r| retry_after_header(&r, now)));
    if status != 200 {
        return Err(format!("{url}: HTTP {status}"));
    }
    Ok((parse_window(&body), recheck))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    /// RFC 9773 Appendix A's example certificate.
    const RFC_EXAMPLE: &str = "-----BEGIN CERTIFICATE-----
MIIBQzCB66ADAgECAgUAh2VDITAKBggqhkjOPQQDAjAVMRMwEQYDVQQDEwpFeGFt
cGxlIENBMCIYDzAwMDEwMTAxMDAwMDAwWhgPMDAwMTAxMDEwMDAwMDBaMBYxFDAS
BgNVBAMTC2V4YW1wbGUuY29tMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEeBZu
7cbpAYNXZLbbh8rNIzuOoqOOtmxA1v7cRm//AwyMwWxyHz4zfwmBhcSrf47NUAFf
qzLQ2PPQxdTXREYEnKMjMCEwHwYDVR0jBBgwFoAUaYhba4dGQEHhs3uEe6CuLN4B
yNQwCgYIKoZIzj0EAwIDRwAwRAIge09+S5TZAlw5tgtiVvuERV6cT4mfutXIlwTb
+FYN/8oCIClDsqBklhB9KAelFiYt9+6FDj3z4KGVelYM5MdsO3pK
-----END CERTIFICATE-----
";

    #[test]
    fn the_cert_id_of_the_rfc_example() {
        // RFC 9773 §4.1: AKI keyIdentifier 69:88:5B:…:C8:D4 and serial 0x87654321, whose DER
        // content octets are 00 87 65 43 21 (a leading zero: the high bit is set).
        let der = rustls::pki_types::CertificateDer::from_pem_slice(RFC_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(cert_id(&der).as_deref(), Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"));
        assert_eq!(cert_id(b"not a certificate"), None);
        // A self-signed certificate without an AKI has no ID.
        let key = rcgen13::KeyPair::generate_for(&rcgen13::PKCS_ECDSA_P256_SHA256).unwrap();
        let c = rcgen13::CertificateParams::new(vec!["a.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert_eq!(cert_id(c.der()), None);
    }

    #[test]
    fn the_window_of_the_rfc_example_and_broken_ones() {
        // RFC 9773 §4.2's example response.
        let body = br#"{"suggestedWindow": {"start": "2025-01-02T04:00:00Z", "end": "2025-01-03T04:00:00Z"},
            "explanationURL": "https://acme.example.com/docs/ari"}"#;
        let w = parse_window(body).unwrap();
        assert_eq!(w.start, 1_735_790_400);
        assert_eq!(w.end - w.start, 86_400);
        assert_eq!(rfc3339("2025-01-02T05:30:00.123+01:30"), Some(1_735_790_400));
        assert_eq!(rfc3339("2025-01-02T04:00:00"), None, "no offset");
        assert_eq!(rfc3339("2025-13-02T04:00:00Z"), None);
        let reversed = br#"{"suggestedWindow": {"start": "2025-01-03T04:00:00Z", "end": "2025-01-02T04:00:00Z"}}"#;
        assert_eq!(parse_window(reversed), None, "end before start: ignored");
        assert_eq!(parse_window(b"{}"), None);
        assert_eq!(parse_window(b"garbage"), None);
    }

    #[test]
    fn the_renewal_time_is_uniform_in_the_window_or_now() {
        let w = Window { start: 1000, end: 2000 };
        assert_eq!(pick(w, 0, 0.0), 1000);
        assert_eq!(pick(w, 0, 0.5), 1500);
        assert_eq!(pick(w, 0, 0.999_999_9), 1999, "inside the window");
        assert_eq!(pick(w, 1700, 0.5), 1700, "chosen time passed: now");
        assert_eq!(pick(w, 5000, 0.1), 5000, "the whole window passed: at once");
        // Spread: 10,000 draws fill the window evenly (each tenth gets 10 % ± 2 %).
        let mut tenths = [0u32; 10];
        for _ in 0..10_000 {
            let r = random();
            assert!((0.0..1.0).contains(&r));
            tenths[((pick(w, 0, r) - 1000) / 100) as usize] += 1;
        }
        assert!(tenths.iter().all(|&n| (800..1200).contains(&n)), "{tenths:?}");
    }

    #[test]
    fn ask_again_after_the_cas_retry_after_within_bounds() {
        assert_eq!(recheck_after(None), 6 * 3600);
        assert_eq!(recheck_after(Some(21_600)), 21_600);
        assert_eq!(recheck_after(Some(1)), 60);
        assert_eq!(recheck_after(Some(10 * 86_400)), 86_400);
        assert_eq!(retry_after_header("21600", 0), Some(21_600));
        let now = rfc3339("1994-11-06T08:00:00Z").unwrap();
        assert_eq!(
            retry_after_header("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(49 * 60 + 37)
        );
        assert_eq!(retry_after_header("soon", now), None);
    }
}
