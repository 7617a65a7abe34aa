//! PACC (draft-ietf-mailmaint-pacc-03): the JSON document at
//! `https://ua-auto-config.<domain>/.well-known/user-agent-configuration.json` and the digest
//! published beside it as `_ua-auto-config.<domain> TXT "v=UAAC1; a=sha256; d=…"`.
//!
//! One text, two readers, like `mta_sts`: the HTTP server answers with [`body`] and `records`
//! puts [`digest`] of the same bytes into the TXT record. The body depends on the provider
//! (servers, names) and on what [`Domain::services`] resolves (DAV URLs, issuer,
//! documentation): every domain of a provider that declares none of those itself shares one body
//! and one digest, kept once per provider; a domain that declares its own has its own, kept per
//! domain. [`Rollover`] keeps a replaced digest published beside the new one for at least the
//! record's TTL, so a client holding the old TXT in its cache accepts the new body.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::settings::{Auth, Domain, Provider, Security, Services, Settings};
use crate::vocab;

/// The document, compact JSON with keys sorted (byte-stable: the digest is over these bytes).
/// `None` when the domain's provider does not publish PACC.
pub fn body(d: &Domain) -> Option<Vec<u8>> {
    body_of(&d.provider, d.services())
}

/// The document of `p`'s servers and names with `services`.
fn body_of(p: &Provider, services: Services) -> Option<Vec<u8>> {
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
    for dav in services.dav_all() {
        protocols.insert(
            dav.kind.words().key.into(),
            obj([("url", Value::String(dav.url.clone()))]),
        );
    }
    let mut authentication = Map::new();
    let password = p.servers.iter().any(|s| {
        s.auth
            .iter()
            .any(|a| matches!(a, Auth::PasswordCleartext | Auth::PasswordEncrypted))
    });
    authentication.insert("password".into(), Value::Bool(password));
    if let Some(o) = services.oauth2 {
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
    if let Some(doc) = services.documentation {
        info.insert("help".into(), obj([("documentation", Value::String(doc.to_string()))]));
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

/// The domain's current digest (`None` without PACC).
pub fn current(d: &Domain) -> Option<String> {
    body(d).map(|b| digest(&b))
}

/// (digest being served now, retired digests with their unix end time).
type Digests = (String, Vec<(String, u64)>);

/// Digests replaced by a reload (or while mailconf was stopped) and still published: a few
/// dozen bytes per provider, and per domain only for domains that declare their own services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollover {
    /// Provider id → its digests: every domain of it that declares no services of its own.
    providers: HashMap<String, Digests>,
    /// Primary domain name → its own digests: it declares its own services, or did until a
    /// retired digest expires. Empty when no domain declares any.
    domains: HashMap<String, Digests>,
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

    /// Every digest `domain` publishes: the current one, then the retired ones (empty without
    /// PACC). Computed when the snapshot was made, so a zone build hashes nothing.
    pub fn published(&self, domain: &Domain) -> Vec<String> {
        self.domains
            .get(&domain.name)
            .or_else(|| self.providers.get(&domain.provider.id))
            .map(|(cur, r)| {
                std::iter::once(cur.clone())
                    .chain(r.iter().map(|(d, _)| d.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The next state for `settings` at unix time `now`: an owner whose digest differs from the
    /// one served before retires that one until `now + keep`, where `keep` is the largest DNS
    /// TTL of the snapshot (so at least the TXT record's TTL). Ends that passed are dropped. A
    /// domain that starts declaring its own services retires what its provider served for it;
    /// one that stops keeps its own entry until its last own digest expires.
    pub fn next(&self, settings: &Settings, now: u64) -> Rollover {
        let keep = settings
            .domains
            .iter()
            .filter_map(|d| d.dns.as_ref().map(|dns| u64::from(dns.ttl)))
            .max()
            .unwrap_or(0);
        let advance = |before: Option<&Digests>, cur: String| -> Digests {
            let mut retired: Vec<(String, u64)> = Vec::new();
            if let Some((before, old)) = before {
                retired.extend(old.iter().filter(|(d, end)| *end > now && *d != cur).cloned());
                if *before != cur {
                    retired.retain(|(d, _)| d != before);
                    retired.push((before.clone(), now + keep));
                }
            }
            (cur, retired)
        };
        let mut providers = HashMap::new();
        for p in &settings.providers {
            if !p.pacc {
                continue;
            }
            let Some(cur) = body_of(p, p.services()).map(|b| digest(&b)) else {
                continue;
            };
            let next = advance(self.providers.get(&p.id), cur);
            providers.insert(p.id.clone(), next);
        }
        let mut domains = HashMap::new();
        // Domains sharing one declaration (a `[source.domain]`) share one hash.
        let mut hashed: HashMap<(*const crate::settings::Provider, *const crate::settings::OwnServices), String> =
            HashMap::new();
        for d in &settings.domains {
            let Some(own) = d.own.as_ref().filter(|_| d.provider.pacc) else {
                continue;
            };
            let cur = match hashed.entry((std::sync::Arc::as_ptr(&d.provider), std::sync::Arc::as_ptr(own))) {
                std::collections::hash_map::Entry::Occupied(e) => e.get().clone(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let Some(cur) = current(d) else { continue };
                    v.insert(cur).clone()
                }
            };
            let before = self.domains.get(&d.name).or_else(|| self.providers.get(&d.provider.id));
            domains.insert(d.name.clone(), advance(before, cur));
        }
        // Domains that stopped declaring: their provider's digest now, their own retired.
        for (name, before) in &self.domains {
            let Some(d) = settings.domain(name).filter(|d| d.own.is_none()) else {
                continue;
            };
            let Some((cur, _)) = providers.get(&d.provider.id) else {
                continue;
            };
            let (cur, retired) = advance(Some(before), cur.clone());
            if !retired.is_empty() {
                domains.insert(name.clone(), (cur, retired));
            }
        }
        Rollover { providers, domains }
    }

    /// What an earlier run saved in `state_dir` (empty without one).
    pub fn load(dir: Option<&Path>) -> Rollover {
        let Some(text) = dir.and_then(|d| std::fs::read_to_string(d.join(FILE)).ok()) else {
            return Rollover::default();
        };
        let mut rollover = Rollover::default();
        // `current PROVIDER DIGEST` and `retired PROVIDER DIGEST UNTIL` lines; the same with
        // `domain-` in front for a domain's own.
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [kind, owner, rest @ ..] = f.as_slice() else {
                continue;
            };
            let (map, kind) = match kind.strip_prefix("domain-") {
                Some(k) => (&mut rollover.domains, k),
                None => (&mut rollover.providers, *kind),
            };
            match (kind, rest) {
                ("current", [d]) => map.entry(owner.to_string()).or_default().0 = d.to_string(),
                ("retired", [d, until]) => {
                    if let Ok(until) = until.parse() {
                        map.entry(owner.to_string()).or_default().1.push((d.to_string(), until));
                    }
                }
                _ => {}
            }
        }
        rollover
    }

    /// Save for the next run. Failure is logged, not fatal.
    pub fn save(&self, dir: Option<&Path>) {
        let Some(dir) = dir else { return };
        let mut lines = Vec::new();
        let all = (self.providers.iter().map(|e| ("", e))).chain(self.domains.iter().map(|e| ("domain-", e)));
        for (prefix, (o, (cur, retired))) in all {
            lines.push(format!("{prefix}current {o} {cur}"));
            lines.extend(
                retired
                    .iter()
                    .map(|(d, until)| format!("{prefix}retired {o} {d} {until}")),
            );
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
        let b = String::from_utf8(body(&s.domains[0]).unwrap()).unwrap();
        assert_eq!(
            b,
            r#"{"authentication":{"password":true},"info":{"help":{"documentation":"https://help.example.net/"},"provider":{"name":"Example Mail","shortName":"Example"}},"protocols":{"caldav":{"url":"https://dav.example.net/cal/"},"imap":{"host":"imap.example.net"},"submit":{"host":"smtp.example.net"}}}"#
        );
        // SHA-256 of those bytes, computed independently (`printf %s BODY | sha256sum`).
        assert_eq!(digest(b"abc"), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
        let off = Settings::from_toml(&CONFIG.replace("pacc = true\n", ""), "t.toml").unwrap();
        assert_eq!(body(&off.domains[0]), None);
    }

    #[test]
    fn a_changed_body_keeps_the_old_digest_for_the_ttl() {
        let a = Settings::from_toml(CONFIG, "t.toml").unwrap();
        let b = Settings::from_toml(&CONFIG.replace("Example Mail", "Example Mail 2"), "t.toml").unwrap();
        let (da, db) = (current(&a.domains[0]).unwrap(), current(&b.domains[0]).unwrap());
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

    #[test]
    fn a_domain_with_its_own_services_has_its_own_digest_and_rollover() {
        let sibling = "[[domain]]\nname = \"sibling.example\"\nprovider = \"p\"\n";
        let own = "caldav = { url = \"https://cal.example.com/dav/\" }\n";
        let plain = format!("{CONFIG}{sibling}");
        let declared = plain.replace(
            "name = \"example.com\"\nprovider = \"p\"\n",
            &format!("name = \"example.com\"\nprovider = \"p\"\n{own}"),
        );
        let (a, b) = (
            Settings::from_toml(&plain, "t.toml").unwrap(),
            Settings::from_toml(&declared, "t.toml").unwrap(),
        );
        let body_b = String::from_utf8(body(b.domain("example.com").unwrap()).unwrap()).unwrap();
        assert!(
            body_b.contains(r#""caldav":{"url":"https://cal.example.com/dav/"}"#),
            "{body_b}"
        );
        let provider = current(a.domain("example.com").unwrap()).unwrap();
        let mine = current(b.domain("example.com").unwrap()).unwrap();
        assert_ne!(provider, mine);
        assert_eq!(current(b.domain("sibling.example").unwrap()), Some(provider.clone()));

        let r0 = Rollover::default().next(&a, 1000);
        assert_eq!(
            (r0.providers.len(), r0.domains.len()),
            (1, 0),
            "one entry per provider, none per domain"
        );
        // Starting to declare: the provider's digest stays published for this domain a TTL.
        let r1 = r0.next(&b, 2000);
        let (dom, sib) = (b.domain("example.com").unwrap(), b.domain("sibling.example").unwrap());
        assert_eq!(r1.published(dom), vec![mine.clone(), provider.clone()]);
        assert_eq!(r1.published(sib), vec![provider.clone()]);
        assert_eq!(r1.next(&b, 2600).published(dom), vec![mine.clone()]);
        // Across a restart.
        let dir = std::env::temp_dir().join(format!("mailconf-pacc-own-{}", std::process::id()));
        r1.save(Some(&dir));
        assert_eq!(Rollover::load(Some(&dir)), r1);
        let _ = std::fs::remove_dir_all(&dir);
        // Stopping: the provider's digest again, the domain's own kept for the TTL, then gone.
        let r2 = r1.next(&b, 2700).next(&a, 3000);
        let dom = a.domain("example.com").unwrap();
        assert_eq!(r2.published(dom), vec![provider.clone(), mine]);
        let r3 = r2.next(&a, 3600);
        assert_eq!(r3.published(dom), vec![provider]);
        assert!(r3.domains.is_empty());
    }
}
