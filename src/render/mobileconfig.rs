//! Apple configuration profile with one `com.apple.mail.managed` payload (iOS/macOS Mail), and
//! `com.apple.caldav.account` / `com.apple.carddav.account` payloads when DAV is configured.
//!
//! Keys per apple/device-management `mdm/profiles/com.apple.mail.managed.yaml`. Identifiers are
//! derived from the address so that installing the profile for a second account does not
//! replace the first (Mailu's fixed UUIDs do), and the same address always gets the same ones.
//! Never a password: those belong only in encrypted profiles.

use plist::{Dictionary, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::model::{ClientConfig, ServerView};
use crate::settings::{Dav, Security};

/// Namespace for mailconf's UUIDv5 identifiers (fixed forever: changing it renames every profile).
const NAMESPACE: Uuid = Uuid::from_u128(0x6d61_696c_636f_6e66_8000_0000_0000_0001);

/// One incoming + one outgoing server a profile can express, preferring implicit TLS.
fn pick<'a>(servers: impl Iterator<Item = &'a ServerView> + Clone) -> Option<(&'a ServerView, &'static str)> {
    let expressible = |s: &'a ServerView| s.auth.iter().find_map(|a| a.apple()).map(|a| (s, a));
    servers
        .clone()
        .filter(|s| s.security == Security::Tls)
        .find_map(expressible)
        .or_else(|| servers.filter_map(expressible).next())
}

/// Whether [`render`] gives a profile: one incoming and one outgoing server a profile can express.
pub fn expressible(cfg: &ClientConfig) -> bool {
    pick(cfg.incoming()).is_some() && pick(cfg.outgoing()).is_some()
}

/// The unsigned profile (XML plist). `None` when the provider has no server a profile can
/// express (e.g. OAuth2 only).
pub fn render(cfg: &ClientConfig) -> Option<Vec<u8>> {
    let (inc, inc_auth) = pick(cfg.incoming())?;
    let (out, out_auth) = pick(cfg.outgoing())?;
    // The identity the identifiers hang on: the address, or the domain for a generic profile.
    let who = cfg
        .address
        .as_ref()
        .map_or_else(|| cfg.requested.clone(), |a| a.to_string().to_lowercase());
    let hash: String = Sha256::digest(who.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let reversed: Vec<&str> = cfg.requested.split('.').rev().collect();
    let identifier = format!("{}.autoconfig.{hash}", reversed.join("."));
    let uuid = |kind: &str| {
        Uuid::new_v5(&NAMESPACE, format!("{kind}\n{who}").as_bytes())
            .to_string()
            .to_uppercase()
    };

    let mut mail = Dictionary::new();
    let put = |d: &mut Dictionary, k: &str, v: Value| {
        d.insert(k.to_string(), v);
    };
    put(
        &mut mail,
        "EmailAccountDescription",
        Value::String(cfg.display_name.to_string()),
    );
    put(
        &mut mail,
        "EmailAccountName",
        Value::String(cfg.address.as_ref().map_or_else(String::new, |a| a.local.clone())),
    );
    put(
        &mut mail,
        "EmailAccountType",
        Value::String(inc.protocol.apple_account_type().into()),
    );
    if let Some(a) = &cfg.address {
        put(&mut mail, "EmailAddress", Value::String(a.to_string()));
    }
    for (prefix, s, auth) in [("Incoming", inc, inc_auth), ("Outgoing", out, out_auth)] {
        put(
            &mut mail,
            &format!("{prefix}MailServerAuthentication"),
            Value::String(auth.into()),
        );
        put(
            &mut mail,
            &format!("{prefix}MailServerHostName"),
            Value::String(s.host.clone()),
        );
        put(
            &mut mail,
            &format!("{prefix}MailServerPortNumber"),
            Value::Integer(s.port.into()),
        );
        put(
            &mut mail,
            &format!("{prefix}MailServerUseSSL"),
            Value::Boolean(s.security.apple_use_ssl()),
        );
        if cfg.address.is_some() {
            put(
                &mut mail,
                &format!("{prefix}MailServerUsername"),
                Value::String(s.username.clone()),
            );
        }
    }
    put(
        &mut mail,
        "OutgoingPasswordSameAsIncomingPassword",
        Value::Boolean(inc.username == out.username),
    );
    put(
        &mut mail,
        "PayloadDisplayName",
        Value::String(format!("{} mail", cfg.requested)),
    );
    put(
        &mut mail,
        "PayloadIdentifier",
        Value::String(format!("{identifier}.mail")),
    );
    put(&mut mail, "PayloadType", Value::String("com.apple.mail.managed".into()));
    put(&mut mail, "PayloadUUID", Value::String(uuid("mail")));
    put(&mut mail, "PayloadVersion", Value::Integer(1.into()));
    mail.sort_keys();
    let mut content = vec![Value::Dictionary(mail)];
    // CalDAV / CardDAV accounts (apple/device-management `com.apple.caldav.account`,
    // `com.apple.carddav.account`). `CardDAVPrincipalURL` is iOS-only, so contacts name the host
    // and port and let the device find the principal (RFC 6764 §6); calendars get the URL.
    for d in &cfg.dav {
        let w = d.kind.words();
        let pre = w.apple_prefix;
        let mut dav = Dictionary::new();
        let what = match d.kind {
            Dav::CalDav => "calendars",
            Dav::CardDav => "contacts",
        };
        put(
            &mut dav,
            &format!("{pre}AccountDescription"),
            Value::String(format!("{} {what}", cfg.display_name)),
        );
        put(&mut dav, &format!("{pre}HostName"), Value::String(d.host.clone()));
        put(&mut dav, &format!("{pre}Port"), Value::Integer(d.port.into()));
        if w.apple_principal_everywhere {
            put(&mut dav, &format!("{pre}PrincipalURL"), Value::String(d.url.clone()));
        }
        put(&mut dav, &format!("{pre}UseSSL"), Value::Boolean(true));
        if cfg.address.is_some() {
            put(&mut dav, &format!("{pre}Username"), Value::String(d.username.clone()));
        }
        put(
            &mut dav,
            "PayloadDisplayName",
            Value::String(format!("{} {what}", cfg.requested)),
        );
        put(
            &mut dav,
            "PayloadIdentifier",
            Value::String(format!("{identifier}.{}", w.key)),
        );
        put(&mut dav, "PayloadType", Value::String(w.apple_payload.into()));
        put(&mut dav, "PayloadUUID", Value::String(uuid(w.key)));
        put(&mut dav, "PayloadVersion", Value::Integer(1.into()));
        dav.sort_keys();
        content.push(Value::Dictionary(dav));
    }

    let mut top = Dictionary::new();
    put(&mut top, "PayloadContent", Value::Array(content));
    put(
        &mut top,
        "PayloadDescription",
        Value::String(format!("Mail settings for {who}")),
    );
    put(
        &mut top,
        "PayloadDisplayName",
        Value::String(format!("{} mail", cfg.requested)),
    );
    put(&mut top, "PayloadIdentifier", Value::String(identifier.clone()));
    put(
        &mut top,
        "PayloadOrganization",
        Value::String(cfg.display_name.to_string()),
    );
    put(&mut top, "PayloadRemovalDisallowed", Value::Boolean(false));
    put(&mut top, "PayloadType", Value::String("Configuration".into()));
    put(&mut top, "PayloadUUID", Value::String(uuid("profile")));
    put(&mut top, "PayloadVersion", Value::Integer(1.into()));
    top.sort_keys();

    let mut out = Vec::new();
    plist::to_writer_xml(&mut out, &Value::Dictionary(top)).ok()?;
    out.push(b'\n');
    Some(out)
}

/// The download name: `<domain>.mobileconfig`.
pub fn file_name(cfg: &ClientConfig) -> String {
    format!("{}.mobileconfig", cfg.requested)
}
