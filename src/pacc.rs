//! PACC (draft-ietf-mailmaint-pacc-03): the JSON document at
//! `https://ua-auto-config.<domain>/.well-known/user-agent-configuration.json` and the digest
//! published beside it as `_ua-auto-config.<domain> TXT "v=UAAC1; a=sha256; d=…"`.
//!
//! One text, two readers, like `mta_sts`: the HTTP server answers with [`body`] and `records`
//! puts [`digest`] of the same bytes into the TXT record. The body depends on the provider
//! (servers, names), on what [`Domain::services`] resolves (DAV URLs, issuer, documentation)
//! and, where no `documentation` is set, on the domain's name: `info.help.documentation` is then
//! its setup page (`https://autoconfig.<domain>/setup`). Every domain of a provider that declares
//! none of those services itself shares one [`Body`], kept once per provider: its digest, or the
//! bytes around the name, from which a domain's digest is computed when its zone is built (so
//! nothing is kept per domain but the name it has anyway). A domain that declares its own has its
//! own digest, kept per domain. [`Rollover`] keeps a replaced body published beside the new one
//! for at least the record's TTL, so a client holding the old TXT in its cache accepts the new
//! body.

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
    body_of(&d.provider, d.services(), &d.name)
}

/// The document of `p`'s servers and names with `services`, for the domain `name`.
fn body_of(p: &Provider, services: Services, name: &str) -> Option<Vec<u8>> {
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
    let documentation = crate::model::documentation_url(&services, name).into_owned();
    info.insert("help".into(), obj([("documentation", Value::String(documentation))]));
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
    B64.encode(Sha256::digest(body))
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A body for every domain that shares a provider and services, as a function of the domain's
/// name: a few hundred bytes per provider, nothing per domain.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Body {
    /// The digest of a body that does not name the domain (it has a `documentation` URL).
    Fixed(String),
    /// The bytes before and after the domain's name (in the setup page's URL).
    Named(Box<[u8]>, Box<[u8]>),
}

impl Body {
    /// `None` when `p` does not publish PACC.
    fn of(p: &Provider, services: Services) -> Option<Body> {
        // Two names that differ in their first and last byte: what the bodies share before and
        // after them is what every name's body has there.
        let (a, b) = (body_of(p, services, "a")?, body_of(p, services, "bb")?);
        if a == b {
            return Some(Body::Fixed(digest(&a)));
        }
        let before = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let after = a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count();
        debug_assert_eq!(
            (before + 1 + after, before + 2 + after),
            (a.len(), b.len()),
            "the name occurs once"
        );
        Some(Body::Named(a[..before].into(), a[a.len() - after..].into()))
    }

    /// The digest of this body for the domain `name`: what `digest(&body(domain))` gives.
    fn digest(&self, name: &str) -> String {
        match self {
            Body::Fixed(d) => d.clone(),
            Body::Named(before, after) => {
                let mut h = Sha256::new();
                h.update(before);
                h.update(name.as_bytes());
                h.update(after);
                B64.encode(h.finalize())
            }
        }
    }
}

/// The domain's current digest (`None` without PACC).
pub fn current(d: &Domain) -> Option<String> {
    body(d).map(|b| digest(&b))
}

/// (served now, retired with their unix end time): bodies of a provider, digests of a domain.
type Published<T> = (T, Vec<(T, u64)>);
type Digests = Published<String>;

/// Digests replaced by a reload (or while mailconf was stopped) and still published: a few
/// hundred bytes per provider, and per domain only for domains that declare their own services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollover {
    /// Provider id → its bodies: every domain of it that declares no services of its own.
    providers: HashMap<String, Published<Body>>,
    /// Primary domain name → its own digests: it declares its own services, or did until a
    /// retired digest expires. Empty when no domain declares any.
    domains: HashMap<String, Digests>,
}

const FILE: &str = "pacc-digests";

impl Rollover {
    /// The retired digests of `provider` for its domain `name`, still to publish beside the
    /// current one.
    #[cfg(test)]
    fn retired(&self, provider: &str, name: &str) -> Vec<String> {
        self.providers
            .get(provider)
            .map(|(_, r)| r.iter().map(|(b, _)| b.digest(name)).collect())
            .unwrap_or_default()
    }

    /// Every digest `domain` publishes: the current one, then the retired ones (empty without
    /// PACC). A domain's own are kept; a provider's are its bodies' digests for this name,
    /// hashed here, when the zone is built (one SHA-256 of a few hundred bytes each).
    pub fn published(&self, domain: &Domain) -> Vec<String> {
        let list = |(cur, r): &Digests| {
            std::iter::once(cur.clone())
                .chain(r.iter().map(|(d, _)| d.clone()))
                .collect()
        };
        if let Some(own) = self.domains.get(&domain.name) {
            return list(own);
        }
        self.providers
            .get(&domain.provider.id)
            .map(|p| list(&for_name(p, &domain.name)))
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
        let mut providers = HashMap::new();
        for p in &settings.providers {
            if !p.pacc {
                continue;
            }
            let Some(cur) = Body::of(p, p.services()) else {
                continue;
            };
            let next = advance(self.providers.get(&p.id), cur, now, keep);
            providers.insert(p.id.clone(), next);
        }
        let mut domains = HashMap::new();
        // Domains sharing one declaration (a `[source.domain]`) share one body.
        let mut bodies: HashMap<(*const crate::settings::Provider, *const crate::settings::OwnServices), Body> =
            HashMap::new();
        for d in &settings.domains {
            let Some(own) = d.own.as_ref().filter(|_| d.provider.pacc) else {
                continue;
            };
            let body = match bodies.entry((std::sync::Arc::as_ptr(&d.provider), std::sync::Arc::as_ptr(own))) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let Some(b) = Body::of(&d.provider, d.services()) else {
                        continue;
                    };
                    v.insert(b)
                }
            };
            let cur = body.digest(&d.name);
            let before = self
                .domains
                .get(&d.name)
                .cloned()
                .or_else(|| self.providers.get(&d.provider.id).map(|p| for_name(p, &d.name)));
            domains.insert(d.name.clone(), advance(before.as_ref(), cur, now, keep));
        }
        // Domains that stopped declaring: their provider's digest now, their own retired.
        for (name, before) in &self.domains {
            let Some(d) = settings.domain(name).filter(|d| d.own.is_none()) else {
                continue;
            };
            let Some((cur, _)) = providers.get(&d.provider.id) else {
                continue;
            };
            let (cur, retired) = advance(Some(before), cur.digest(name), now, keep);
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
        // `current PROVIDER DIGEST` and `retired PROVIDER DIGEST UNTIL` for a body that does not
        // name the domain; `current-named PROVIDER BEFORE AFTER` and `retired-named PROVIDER
        // BEFORE AFTER UNTIL` (base64) for one that does; `domain-current DOMAIN DIGEST` and
        // `domain-retired DOMAIN DIGEST UNTIL` for a domain's own. Lines of other kinds are skipped.
        let named = |before: &str, after: &str| -> Option<Body> {
            Some(Body::Named(
                B64.decode(before).ok()?.into(),
                B64.decode(after).ok()?.into(),
            ))
        };
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [kind, owner, rest @ ..] = f.as_slice() else {
                continue;
            };
            let owner = owner.to_string();
            let p = &mut rollover.providers;
            let d = &mut rollover.domains;
            match (*kind, rest) {
                ("current", [digest]) => p.entry(owner).or_insert_with(empty).0 = Body::Fixed(digest.to_string()),
                ("current-named", [before, after]) => {
                    if let Some(b) = named(before, after) {
                        p.entry(owner).or_insert_with(empty).0 = b;
                    }
                }
                ("retired", [digest, until]) => {
                    if let Ok(until) = until.parse() {
                        let b = Body::Fixed(digest.to_string());
                        p.entry(owner).or_insert_with(empty).1.push((b, until));
                    }
                }
                ("retired-named", [before, after, until]) => {
                    if let (Some(b), Ok(until)) = (named(before, after), until.parse()) {
                        p.entry(owner).or_insert_with(empty).1.push((b, until));
                    }
                }
                ("domain-current", [digest]) => d.entry(owner).or_default().0 = digest.to_string(),
                ("domain-retired", [digest, until]) => {
                    if let Ok(until) = until.parse() {
                        d.entry(owner).or_default().1.push((digest.to_string(), until));
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
        let body = |kind: &str, o: &str, b: &Body| match b {
            Body::Fixed(d) => format!("{kind} {o} {d}"),
            Body::Named(before, after) => format!("{kind}-named {o} {} {}", B64.encode(before), B64.encode(after)),
        };
        for (o, (cur, retired)) in &self.providers {
            lines.push(body("current", o, cur));
            lines.extend(
                retired
                    .iter()
                    .map(|(b, until)| format!("{} {until}", body("retired", o, b))),
            );
        }
        for (o, (cur, retired)) in &self.domains {
            lines.push(format!("domain-current {o} {cur}"));
            lines.extend(
                retired
                    .iter()
                    .map(|(d, until)| format!("domain-retired {o} {d} {until}")),
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

/// A provider's bodies as this domain's digests.
fn for_name(p: &Published<Body>, name: &str) -> Digests {
    let (cur, retired) = p;
    (
        cur.digest(name),
        retired.iter().map(|(b, until)| (b.digest(name), *until)).collect(),
    )
}

fn empty() -> Published<Body> {
    (Body::Fixed(String::new()), Vec::new())
}

/// The next state of one owner's published bodies (or digests) at `now`: one that differs from
/// the one served before retires that one until `now + keep`; ends that passed are dropped.
fn advance<T: PartialEq + Clone>(before: Option<&Published<T>>, cur: T, now: u64, keep: u64) -> Published<T> {
    let mut retired: Vec<(T, u64)> = Vec::new();
    if let Some((before, old)) = before {
        retired.extend(old.iter().filter(|(d, end)| *end > now && *d != cur).cloned());
        if *before != cur {
            retired.retain(|(d, _)| d != before);
            retired.push((before.clone(), now + keep));
        }
    }
    (cur, retired)
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
        assert!(r0.retired("p", "example.com").is_empty());
        assert_eq!(r0.next(&a, 1100), r0, "nothing changed, nothing retired");
        let r1 = r0.next(&b, 2000);
        assert_eq!(r1.retired("p", "example.com"), vec![da.clone()]);
        assert_eq!(
            r1.next(&b, 2599).retired("p", "example.com"),
            vec![da.clone()],
            "kept for the TTL (600 s)"
        );
        assert!(r1.next(&b, 2600).retired("p", "example.com").is_empty());
        // Changing back publishes the old digest again as current, never twice.
        let back = r1.next(&a, 2100);
        assert_eq!(back.retired("p", "example.com"), vec![db]);
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

    /// Without `documentation`, the body names the domain's setup page: one body per provider,
    /// kept as the bytes around the name, and each domain's digest is that of its own body.
    #[test]
    fn without_documentation_the_body_points_to_the_setup_page() {
        let two = CONFIG.replace("documentation = \"https://help.example.net/\"\n", "")
            + "[[domain]]\nname = \"other.example\"\nprovider = \"p\"\n[domain.dns]\nnameservers = [\"ns1.example.net.\"]\nttl = 600\n";
        let a = Settings::from_toml(&two, "t.toml").unwrap();
        let (com, other) = (a.domain("example.com").unwrap(), a.domain("other.example").unwrap());
        let b = String::from_utf8(body(com).unwrap()).unwrap();
        assert!(
            b.contains(r#""info":{"help":{"documentation":"https://autoconfig.example.com/setup"},"#),
            "{b}"
        );
        assert_ne!(current(com), current(other));
        let r0 = Rollover::default().next(&a, 1000);
        assert_eq!((r0.providers.len(), r0.domains.len()), (1, 0), "nothing per domain");
        assert!(matches!(r0.providers["p"].0, Body::Named(..)));
        for d in [com, other] {
            assert_eq!(r0.published(d), vec![current(d).unwrap()], "{}", d.name);
        }
        // A changed provider retires its old body: every domain keeps its old digest a TTL.
        let renamed = Settings::from_toml(&two.replace("Example Mail", "Example Mail 2"), "t.toml").unwrap();
        let r1 = r0.next(&renamed, 2000);
        for (old, new) in [
            (com, renamed.domain("example.com").unwrap()),
            (other, renamed.domain("other.example").unwrap()),
        ] {
            assert_eq!(r1.published(new), vec![current(new).unwrap(), current(old).unwrap()]);
        }
        assert_eq!(r1.next(&renamed, 2600).published(com).len(), 1, "gone after the TTL");
        // Setting `documentation` again: one body for all, the named one retired.
        let fixed = Settings::from_toml(CONFIG, "t.toml").unwrap();
        let r2 = r1.next(&fixed, 2100);
        assert!(matches!(r2.providers["p"].0, Body::Fixed(_)));
        let new = fixed.domain("example.com").unwrap();
        assert_eq!(
            r2.published(new),
            vec![
                current(new).unwrap(),
                current(com).unwrap(),
                current(renamed.domain("example.com").unwrap()).unwrap()
            ]
        );
        // Across a restart; and a file of the earlier format (digests only) still loads.
        let dir = std::env::temp_dir().join(format!("mailconf-pacc-named-{}", std::process::id()));
        r1.save(Some(&dir));
        assert!(
            std::fs::read_to_string(dir.join(FILE))
                .unwrap()
                .contains("retired-named p ")
        );
        assert_eq!(Rollover::load(Some(&dir)), r1);
        std::fs::write(dir.join(FILE), "current p abc=\nretired p def= 5000\nbogus\n").unwrap();
        let old = Rollover::load(Some(&dir));
        assert_eq!(old.published(new), vec!["abc=".to_string(), "def=".to_string()]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
