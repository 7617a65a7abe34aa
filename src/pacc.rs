//! PACC (draft-ietf-mailmaint-pacc-03): the JSON document at
//! `https://ua-auto-config.<domain>/.well-known/user-agent-configuration.json` and the digest
//! published beside it as `_ua-auto-config.<domain> TXT "v=UAAC1; a=sha256; d=…"`.
//!
//! One text, two readers, like `mta_sts`: the HTTP server answers with [`body`] and `records`
//! puts [`digest`] of the same bytes into the TXT record. The body depends on the provider only
//! (servers, DAV URLs, issuer, names), so every domain of a provider shares one body and one
//! digest. [`Rollover`] keeps a replaced digest published beside the new one for at least the
//! record's TTL, so a client holding the old TXT in its cache accepts the new body.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::settings::{Auth, Provider, Security, Settings};
use crate::vocab::{self, DAV};

/// The document, compact JSON with keys sorted (byte-stable: the digest is over these bytes).
/// `None` when the provider does not publish PACC.
pub fn body(p: &Provider) -> Option<Vec<u8>> {
    if !p.pacc {
        return None;
    }
    // serde_json's Map is a BTreeMap here (no `preserve_order`): keys come out sorted.
    let mut protocols = Map::new();
    for s in &p.servers {
        let (key, port) = s.protocol.pacc();
        if s.security == Security::Tls && s.port == port && !protocols.contains_key(key) {
            protocols.insert(key.into(), obj([("host", Value::String(s.host.clone()))]));
        }
    }
    for w in &DAV {
        if let Some(d) = p.dav(w.service) {
            protocols.insert(w.key.into(), obj([("url", Value::String(d.url.clone()))]));
        }
    }
    let mut authentication = Map::new();
    let password = p.servers.iter().any(|s| {
        s.auth
            .iter()
            .any(|a| matches!(a, Auth::PasswordCleartext | Auth::PasswordEncrypted))
    });
    authentication.insert("password".into(), Value::Bool(password));
    if let Some(o) = &p.oauth2 {
        authentication.insert(
            "oauth-public".into(),
            obj([("issuer", Value::String(o.issuer.clone()))]),
        );
    }
    let mut info = Map::new();
    info.insert(
        "provider".into(),
        obj([
            ("name", Value::String(p.display_name.clone())),
            ("shortName", Value::String(p.short_name.clone())),
        ]),
    );
    if let Some(doc) = &p.documentation {
        info.insert("help".into(), obj([("documentation", Value::String(doc.clone()))]));
    }
    let doc = obj([
        ("authentication", Value::Object(authentication)),
        ("info", Value::Object(info)),
        ("protocols", Value::Object(protocols)),
    ]);
    serde_json::to_vec(&doc).ok()
}

fn obj<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// Base64 of the SHA-256 of `body`: the TXT record's `d=`.
pub fn digest(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body))
}

/// The provider's current digest (`None` without PACC).
pub fn current(p: &Provider) -> Option<String> {
    body(p).map(|b| digest(&b))
}

/// Digests replaced by a reload (or while mailconf was stopped) and still published, per
/// provider: a few dozen bytes per provider, nothing per domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollover {
    /// Provider id → (digest being served now, retired digests with their unix end time).
    providers: HashMap<String, (String, Vec<(String, u64)>)>,
}

const FILE: &str = "pacc-digests";

impl Rollover {
    /// The retired digests of `provider` still to publish beside its current one.
    pub fn retired(&self, provider: &str) -> Vec<String> {
        self.providers
            .get(provider)
            .map(|(_, r)| r.iter().map(|(d, _)| d.clone()).collect())
            .unwrap_or_default()
    }

    /// Every digest `provider` publishes: the current one, then the retired ones (empty without
    /// PACC). Computed when the snapshot was made, so a zone build hashes nothing.
    pub fn published(&self, provider: &str) -> Vec<String> {
        self.providers
            .get(provider)
            .map(|(cur, r)| {
                std::iter::once(cur.clone())
                    .chain(r.iter().map(|(d, _)| d.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The next state for `settings` at unix time `now`: a provider whose digest differs from
    /// the one served before retires that one until `now + keep`, where `keep` is the largest
    /// DNS TTL of the snapshot (so at least the TXT record's TTL). Ends that passed are dropped.
    pub fn next(&self, settings: &Settings, now: u64) -> Rollover {
        let keep = settings
            .domains
            .iter()
            .filter_map(|d| d.dns.as_ref().map(|dns| u64::from(dns.ttl)))
            .max()
            .unwrap_or(0);
        let mut providers = HashMap::new();
        for p in &settings.providers {
            let Some(cur) = current(p) else { continue };
            let mut retired: Vec<(String, u64)> = Vec::new();
            if let Some((before, old)) = self.providers.get(&p.id) {
                retired.extend(old.iter().filter(|(d, end)| *end > now && *d != cur).cloned());
                if *before != cur {
                    retired.retain(|(d, _)| d != before);
                    retired.push((before.clone(), now + keep));
                }
            }
            providers.insert(p.id.clone(), (cur, retired));
        }
        Rollover { providers }
    }

    /// What an earlier run saved in `state_dir` (empty without one).
    pub fn load(dir: Option<&Path>) -> Rollover {
        let Some(text) = dir.and_then(|d| std::fs::read_to_string(d.join(FILE)).ok()) else {
            return Rollover::default();
        };
        let mut providers: HashMap<String, (String, Vec<(String, u64)>)> = HashMap::new();
        // `current PROVIDER DIGEST` and `retired PROVIDER DIGEST UNTIL` lines.
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["current", p, d] => providers.entry(p.to_string()).or_default().0 = d.to_string(),
                ["retired", p, d, until] => {
                    if let Ok(until) = until.parse() {
                        providers
                            .entry(p.to_string())
                            .or_default()
                            .1
                            .push((d.to_string(), until));
                    }
                }
                _ => {}
            }
        }
        Rollover { providers }
    }

    /// Save for the next run. Failure is logged, not fatal.
    pub fn save(&self, dir: Option<&Path>) {
        let Some(dir) = dir else { return };
        let mut lines = Vec::new();
        for (p, (cur, retired)) in &self.providers {
            lines.push(format!("current {p} {cur}"));
            lines.extend(retired.iter().map(|(d, until)| format!("retired {p} {d} {until}")));
        }
        lines.sort();
        let tmp = dir.join(format!("{FILE}.tmp"));
        let result = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, lines.join("\n") + "\n"))
            .and_then(|()| std::fs::rename(&tmp, dir.join(FILE)));
        if let Err(e) = result {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot save PACC digests: a restart may drop a retired one early");
        }
    }
}

/// The TXT value for one digest.
pub fn txt(digest: &str) -> String {
    vocab::pacc_txt(digest)
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[provider.p]
display_name = "Example Mail"
short_name = "Example"
pacc = true
documentation = "https://help.example.net/"
caldav = { url = "https://dav.example.net/cal/" }
[[provider.p.server]]
protocol = "imap"
host = "imap.example.net"
port = 993
security = "tls"
[[provider.p.server]]
protocol = "imap"
host = "imap2.example.net"
port = 993
security = "tls"
[[provider.p.server]]
protocol = "smtp"
host = "smtp.example.net"
port = 587
security = "starttls"
[[provider.p.server]]
protocol = "smtp"
host = "smtp.example.net"
port = 465
security = "tls"
[[domain]]
name = "example.com"
provider = "p"
[domain.dns]
nameservers = ["ns1.example.net."]
ttl = 600
"#;

    #[test]
    fn body_is_compact_sorted_and_describes_only_fixed_ports() {
        let s = Settings::from_toml(CONFIG, "t.toml").unwrap();
        let b = String::from_utf8(body(&s.providers[0]).unwrap()).unwrap();
        assert_eq!(
            b,
            r#"{"authentication":{"password":true},"info":{"help":{"documentation":"https://help.example.net/"},"provider":{"name":"Example Mail","shortName":"Example"}},"protocols":{"caldav":{"url":"https://dav.example.net/cal/"},"imap":{"host":"imap.example.net"},"submit":{"host":"smtp.example.net"}}}"#
        );
        // SHA-256 of those bytes, computed independently (`printf %s BODY | sha256sum`).
        assert_eq!(digest(b"abc"), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
        let off = Settings::from_toml(&CONFIG.replace("pacc = true\n", ""), "t.toml").unwrap();
        assert_eq!(body(&off.providers[0]), None);
    }

    #[test]
    fn a_changed_body_keeps_the_old_digest_for_the_ttl() {
        let a = Settings::from_toml(CONFIG, "t.toml").unwrap();
        let b = Settings::from_toml(&CONFIG.replace("Example Mail", "Example Mail 2"), "t.toml").unwrap();
        let (da, db) = (current(&a.providers[0]).unwrap(), current(&b.providers[0]).unwrap());
        assert_ne!(da, db);
        let r0 = Rollover::default().next(&a, 1000);
        assert!(r0.retired("p").is_empty());
        assert_eq!(r0.next(&a, 1100), r0, "nothing changed, nothing retired");
        let r1 = r0.next(&b, 2000);
        assert_eq!(r1.retired("p"), vec![da.clone()]);
        assert_eq!(
            r1.next(&b, 2599).retired("p"),
            vec![da.clone()],
            "kept for the TTL (600 s)"
        );
        assert!(r1.next(&b, 2600).retired("p").is_empty());
        // Changing back publishes the old digest again as current, never twice.
        let back = r1.next(&a, 2100);
        assert_eq!(back.retired("p"), vec![db]);
        // Across a restart: saved, loaded, same.
        let dir = std::env::temp_dir().join(format!("mailconf-pacc-{}", std::process::id()));
        r1.save(Some(&dir));
        assert_eq!(Rollover::load(Some(&dir)), r1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
