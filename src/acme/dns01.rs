//! DNS-01 (RFC 8555 §8.4) from mailconf's own zones (`[server.tls.acme] challenge = "dns-01"`).
//!
//! An order posts the TXT value of each of its names on the [`Board`]; the DNS server
//! (`dns::DnsServer`) rebuilds just the zones that hold `_acme-challenge.<name>` with those
//! records, so their serials move and their secondaries get a NOTIFY and transfer them like any
//! other change, and reports back which names it placed (a name outside the zones mailconf
//! serves, or of a domain with a fixed `serial`, is validated with TLS-ALPN-01 instead). The order
//! then waits until every secondary of the zone (`transfer_to`, the addresses NOTIFY goes to)
//! answers the TXT, and only then asks the CA to validate. When the authorization is over the
//! records are taken down again (one more serial). Nothing is kept per domain: the board holds
//! only the names of orders running (at most a few hundred bytes each), and the zones hold the
//! records only while they wait. `mailconf zone` never sees them (only `serve` has a board).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use base64::Engine;
use hickory_server::proto::op::{Message, MessageType, OpCode, Query};
use hickory_server::proto::rr::{Name, RData, RecordType};
use tokio::sync::watch;

/// The TXT value for a challenge `token` of the account whose key is `key`:
/// base64url(SHA-256(key authorization)), the key authorization being `token.thumbprint` with
/// the account key's JWK thumbprint (RFC 7638: SHA-256 of `{"crv","kty","x","y"}` in that order,
/// no spaces), RFC 8555 §8.1.
pub fn txt_value(key: &ring::signature::EcdsaKeyPair, token: &str) -> String {
    use ring::signature::KeyPair;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let point = key.public_key().as_ref();
    // Uncompressed P-256 point: 0x04, x (32 bytes), y (32 bytes).
    let (x, y) = point[1..].split_at(32);
    let jwk = format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, b64(x), b64(y));
    let thumbprint = b64(ring::digest::digest(&ring::digest::SHA256, jwk.as_bytes()).as_ref());
    let authorization = format!("{token}.{thumbprint}");
    b64(ring::digest::digest(&ring::digest::SHA256, authorization.as_bytes()).as_ref())
}

/// What the DNS server serves of the board: the generation it built, and for each name whose
/// challenge it placed in a zone, that zone's secondaries.
#[derive(Debug, Clone, Default)]
pub struct Served {
    pub generation: u64,
    pub placed: Arc<HashMap<String, Arc<[SocketAddr]>>>,
}

/// The challenges of the orders running, shared by the ACME scheduler and the DNS server.
pub struct Board {
    /// (generation, host → TXT values). Hosts lower case, without the `_acme-challenge.` label.
    posted: Mutex<(u64, BTreeMap<String, Vec<String>>)>,
    changed: watch::Sender<u64>,
    served: watch::Sender<Served>,
    /// A DNS server takes the board's records (`serve` with DNS listeners).
    attached: AtomicBool,
}

/// The one board of the process.
pub static BOARD: LazyLock<Board> = LazyLock::new(|| Board {
    posted: Mutex::new((0, BTreeMap::new())),
    changed: watch::Sender::new(0),
    served: watch::Sender::new(Served::default()),
    attached: AtomicBool::new(false),
});

impl Board {
    fn change(&self, f: impl FnOnce(&mut BTreeMap<String, Vec<String>>)) -> u64 {
        let mut p = self.posted.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut p.1);
        p.0 += 1;
        let generation = p.0;
        drop(p);
        self.changed.send_replace(generation);
        generation
    }

    /// Publish `(host, value)` challenges; returns the generation to wait for
    /// ([`Board::wait_served`]). Taken down by [`Posted`]'s drop.
    pub fn post(&'static self, entries: Vec<(String, String)>) -> (u64, Posted) {
        let entries: Vec<(String, String)> = entries
            .into_iter()
            .map(|(h, v)| (h.trim_end_matches('.').to_ascii_lowercase(), v))
            .collect();
        let generation = self.change(|m| {
            for (h, v) in &entries {
                m.entry(h.clone()).or_default().push(v.clone());
            }
        });
        (generation, Posted(self, entries))
    }

    fn take_down(&self, entries: &[(String, String)]) {
        self.change(|m| {
            for (h, v) in entries {
                if let Some(values) = m.get_mut(h) {
                    if let Some(i) = values.iter().position(|x| x == v) {
                        values.remove(i);
                    }
                    if values.is_empty() {
                        m.remove(h);
                    }
                }
            }
        });
    }

    /// The current challenges and their generation.
    pub fn snapshot(&self) -> (u64, Vec<(String, String)>) {
        let p = self.posted.lock().unwrap_or_else(|e| e.into_inner());
        let all =
            p.1.iter()
                .flat_map(|(h, vs)| vs.iter().map(move |v| (h.clone(), v.clone())))
                .collect();
        (p.0, all)
    }

    /// For the DNS server: follow the board's changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.attached.store(true, Ordering::Relaxed);
        self.changed.subscribe()
    }

    /// Whether a DNS server serves the board (else every name uses TLS-ALPN-01).
    pub fn attached(&self) -> bool {
        self.attached.load(Ordering::Relaxed)
    }

    /// For the DNS server: generation `served` is being answered.
    pub fn mark_served(&self, served: Served) {
        self.served.send_replace(served);
    }

    /// Wait until the DNS server answers generation `generation` (or a later one); `None` after
    /// `timeout`.
    pub async fn wait_served(&self, generation: u64, timeout: Duration) -> Option<Served> {
        let mut rx = self.served.subscribe();
        let got = tokio::time::timeout(timeout, rx.wait_for(|s| s.generation >= generation)).await;
        Some(got.ok()?.ok()?.clone())
    }
}

/// Challenges on the board; taken down when dropped (the authorization is over, however).
pub struct Posted(&'static Board, Vec<(String, String)>);

impl Drop for Posted {
    fn drop(&mut self) {
        self.0.take_down(&self.1);
    }
}

/// Does the authoritative server at `addr` answer `value` among the TXT records of
/// `_acme-challenge.<host>`? One UDP query, 2 s; `false` on any failure.
pub async fn serves(addr: SocketAddr, host: &str, value: &str) -> bool {
    let Ok(name) = Name::from_ascii(format!("{}.{host}.", crate::vocab::ACME_CHALLENGE)) else {
        return false;
    };
    let id = rand_id();
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(name, RecordType::TXT));
    let Ok(bytes) = msg.to_vec() else { return false };
    let bind = if addr.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
    let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else {
        return false;
    };
    if sock.send_to(&bytes, addr).await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Ok((n, from))) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
        if from != addr {
            continue;
        }
        let Ok(reply) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if reply.metadata.id != id {
            continue;
        }
        return reply.answers.iter().any(|r| match &r.data {
            RData::TXT(t) => t.txt_data.iter().flat_map(|c| c.iter()).copied().eq(value.bytes()),
            _ => false,
        });
    }
    false
}

fn rand_id() -> u16 {
    let mut b = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u16::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_acme::acme::{Challenge, ChallengeType};

    #[test]
    fn the_txt_value_is_the_digest_of_rustls_acmes_key_authorization() {
        // rustls-acme computes key authorizations only for HTTP-01 (our own code does it for
        // DNS-01); its value is independent of the challenge type (RFC 8555 §8.1).
        let pkcs8 = rustls_acme::acme::Account::generate_key_pair();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8,
            &ring::rand::SystemRandom::new(),
        )
        .unwrap();
        let account = rustls_acme::acme::Account {
            key_pair: key,
            directory: serde_json::from_str(r#"{"newNonce":"n","newAccount":"a","newOrder":"o"}"#).unwrap(),
            kid: String::new(),
        };
        let token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
        let challenges = [Challenge {
            typ: ChallengeType::Http01,
            url: String::new(),
            token: token.to_string(),
            error: None,
        }];
        let (_, authorization) = account.http_01(&challenges).unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA256, authorization.as_bytes());
        let want = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
        assert_eq!(txt_value(&account.key_pair, token), want);
        assert_eq!(want.len(), 43, "32 bytes, base64url without padding");
    }

    #[tokio::test]
    async fn posted_challenges_are_taken_down_when_dropped() {
        static B: LazyLock<Board> = LazyLock::new(|| Board {
            posted: Mutex::new((0, BTreeMap::new())),
            changed: watch::Sender::new(0),
            served: watch::Sender::new(Served::default()),
            attached: AtomicBool::new(false),
        });
        let (g1, a) = B.post(vec![("Autoconfig.A.test.".into(), "v1".into())]);
        let (g2, b) = B.post(vec![
            ("autoconfig.a.test".into(), "v2".into()),
            ("x.test".into(), "v3".into()),
        ]);
        assert!(g2 > g1);
        assert_eq!(B.snapshot().1.len(), 3);
        drop(a);
        assert_eq!(
            B.snapshot().1,
            vec![
                ("autoconfig.a.test".to_string(), "v2".to_string()),
                ("x.test".to_string(), "v3".to_string())
            ]
        );
        drop(b);
        assert!(B.snapshot().1.is_empty());
        assert!(B.wait_served(g2, Duration::from_millis(10)).await.is_none());
        B.mark_served(Served {
            generation: g2 + 2,
            placed: Arc::default(),
        });
        assert!(B.wait_served(g2, Duration::from_millis(10)).await.is_some());
    }
}
