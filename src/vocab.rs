//! The words each protocol and client format uses for mailconf's facts, in both directions.
//!
//! Owns: protocol × security ↔ RFC 6186/8314 SRV label, Thunderbird `type`/`socketType`/
//! `authentication`, Outlook POX `Type`/`SSL`/`Encryption`, Apple `EmailAccountType`/`…UseSSL`/
//! `…Authentication`, the names people see on the setup page ("SSL/TLS", "STARTTLS", "IMAP"),
//! and the web host labels (`autoconfig.`, `autodiscover.`, `mta-sts.`), paths and URLs.
//! Every mapping is one table; the renderers, `records` and the HTTP routes read it forwards,
//! the probe's parsers read the same table backwards, so what mailconf writes and what the probe
//! reads back can never disagree. Knows nothing of I/O, DNS wire types or XML.
//!
//! Over 400 lines on purpose: it is the one vocabulary module, each mapping a short table read in
//! both directions; split by client format, the protocol × security facts would be in several
//! files again.

use serde::Deserialize;

// ---- The facts: protocols, TLS modes, authentication methods -----------------------------------

/// Mail protocol of one server entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Imap,
    Pop3,
    Smtp,
}

/// Transport security of one server entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Implicit TLS from the first byte (993, 995, 465; RFC 8314).
    Tls,
    /// Plaintext greeting, then STARTTLS/STLS (143, 110, 587).
    Starttls,
    /// No TLS at all. Needs `allow_cleartext = true` when passwords are sent.
    None,
}

/// Authentication methods, named as in Thunderbird's clientConfig `authentication` element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Auth {
    PasswordCleartext,
    PasswordEncrypted,
    Oauth2,
    Ntlm,
    Gssapi,
    ClientIpAddress,
    TlsClientCert,
    None,
}

impl Auth {
    /// True when the method sends a password the network could read without TLS.
    pub fn sends_cleartext_password(self) -> bool {
        matches!(self, Auth::PasswordCleartext)
    }
}

// ---- Web host labels -------------------------------------------------------------------------

/// `autoconfig.<domain>`: Thunderbird's first autoconfig URL (and Apple profiles).
pub const AUTOCONFIG: &str = "autoconfig";
/// `autodiscover.<domain>`: Outlook's POX and v2 JSON endpoints.
pub const AUTODISCOVER: &str = "autodiscover";
/// `mta-sts.<domain>`: the RFC 8461 policy host.
pub const MTA_STS: &str = "mta-sts";

/// `_acme-challenge.<name>`: where DNS-01 (RFC 8555 §8.4) wants the TXT record for `<name>`.
pub const ACME_CHALLENGE: &str = "_acme-challenge";

/// Host labels that point at mailconf's web server, in the order zone files list them.
pub const WEB_LABELS: [&str; 3] = [AUTOCONFIG, AUTODISCOVER, MTA_STS];

/// The web labels a domain publishes: `mta-sts` only with an MTA-STS policy, `ua-auto-config`
/// (after the others) only when its provider publishes PACC.
pub fn web_labels(with_mta_sts: bool, with_pacc: bool) -> impl Iterator<Item = &'static str> {
    WEB_LABELS
        .into_iter()
        .filter(move |l| with_mta_sts || *l != MTA_STS)
        .chain(with_pacc.then_some(UA_AUTO_CONFIG))
}

/// `label.domain`, e.g. `autodiscover.example.com`.
pub fn web_host(label: &str, domain: &str) -> String {
    format!("{label}.{domain}")
}

/// The mail domain behind a web host name: `autodiscover.example.com` → `example.com` for
/// `label = AUTODISCOVER`; `None` when the name does not start with that label.
pub fn strip_web_label<'h>(host: &'h str, label: &str) -> Option<&'h str> {
    host.strip_prefix(label)?.strip_prefix('.')
}

// ---- Web paths (lower case: the routes compare lower-cased paths) ----------------------------

/// Thunderbird autoconfig on `autoconfig.<domain>` (plain HTTP is its fallback).
pub const THUNDERBIRD_PATH: &str = "/mail/config-v1.1.xml";
/// Thunderbird autoconfig on the mail domain itself.
pub const THUNDERBIRD_WELL_KNOWN_PATH: &str = "/.well-known/autoconfig/mail/config-v1.1.xml";
/// Outlook's POX Autodiscover (MS-OXDISCO), any case in practice.
pub const POX_PATH: &str = "/autodiscover/autodiscover.xml";
/// Autodiscover v2 (JSON), the address in the query…
pub const AUTODISCOVER_JSON_PATH: &str = "/autodiscover/autodiscover.json";
/// …or after this prefix.
pub const AUTODISCOVER_JSON_ADDRESS_PREFIX: &str = "/autodiscover/autodiscover.json/v1.0/";
/// The Apple configuration profile.
pub const APPLE_PROFILE_PATH: &str = "/apple/profile.mobileconfig";
/// The MTA-STS policy on `mta-sts.<domain>` (RFC 8461 §3.2).
pub const MTA_STS_POLICY_PATH: &str = "/.well-known/mta-sts.txt";
/// The setup page for people, on `autoconfig.` and `autodiscover.<domain>` (also at `/`).
pub const SETUP_PATH: &str = "/setup";
/// The query parameter that fills the user's address into the setup page.
pub const SETUP_EMAIL_PARAM: &str = "email";
/// The query parameter that chooses the setup page's language.
pub const SETUP_LANG_PARAM: &str = "lang";
/// The query parameter that puts the user's address into an autoconfig document or profile.
pub const EMAIL_ADDRESS_PARAM: &str = "emailaddress";

/// `https://autodiscover.<domain>/autodiscover/autodiscover.xml`: where Outlook is sent.
pub fn pox_url(domain: &str) -> String {
    format!("https://{}{POX_PATH}", web_host(AUTODISCOVER, domain))
}

/// `https://autoconfig.<domain>/setup`: the setup page, where documents point people.
pub fn setup_url(domain: &str) -> String {
    format!("https://{}{SETUP_PATH}", web_host(AUTOCONFIG, domain))
}

/// `https://autoconfig.<domain>/apple/profile.mobileconfig`, with `?emailaddress=` when the
/// address is known: what the setup page's QR code opens on a phone.
pub fn apple_profile_url(domain: &str, address: Option<&str>) -> String {
    let query = address.map_or_else(String::new, |a| {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair(EMAIL_ADDRESS_PARAM, a)
            .finish();
        format!("?{q}")
    });
    format!("https://{}{APPLE_PROFILE_PATH}{query}", web_host(AUTOCONFIG, domain))
}

// ---- SRV labels (RFC 6186 §3, RFC 8314 §5.1) -------------------------------------------------

/// (label, protocol, security). Implicit TLS gets the `s` label; STARTTLS and cleartext share the
/// plain one (RFC 6186 §3: "with or without TLS"), STARTTLS first: it is what a client reading
/// the plain label tries (RFC 8314 §5.1).
const SRV: [(&str, Protocol, Security); 9] = [
    ("_submissions", Protocol::Smtp, Security::Tls),
    ("_submission", Protocol::Smtp, Security::Starttls),
    ("_submission", Protocol::Smtp, Security::None),
    ("_imaps", Protocol::Imap, Security::Tls),
    ("_imap", Protocol::Imap, Security::Starttls),
    ("_imap", Protocol::Imap, Security::None),
    ("_pop3s", Protocol::Pop3, Security::Tls),
    ("_pop3", Protocol::Pop3, Security::Starttls),
    ("_pop3", Protocol::Pop3, Security::None),
];

/// All six mail SRV labels in the order zone files list them.
pub const SRV_LABELS: [&str; 6] = ["_submissions", "_submission", "_imaps", "_imap", "_pop3s", "_pop3"];

/// The SRV service label (without `._tcp`) a server is published under.
pub fn srv_label(protocol: Protocol, security: Security) -> &'static str {
    SRV.iter()
        .find(|(_, p, s)| *p == protocol && *s == security)
        .map(|(l, _, _)| *l)
        .expect("the table covers every protocol × security")
}

/// What a mail SRV label says: its protocol and the security modes it stands for (one for the
/// implicit-TLS labels; STARTTLS then cleartext for the plain ones). `None` for other labels.
pub fn srv_meaning(label: &str) -> Option<(Protocol, Vec<Security>)> {
    let rows: Vec<_> = SRV.iter().filter(|(l, _, _)| *l == label).collect();
    let protocol = rows.first()?.1;
    Some((protocol, rows.iter().map(|(_, _, s)| *s).collect()))
}

// ---- Protocol type names ---------------------------------------------------------------------

/// (protocol, Thunderbird `type`, POX `Type`).
const PROTOCOL_NAMES: [(Protocol, &str, &str); 3] = [
    (Protocol::Imap, "imap", "IMAP"),
    (Protocol::Pop3, "pop3", "POP3"),
    (Protocol::Smtp, "smtp", "SMTP"),
];

fn protocol_name(p: Protocol, pick: impl Fn(&(Protocol, &'static str, &'static str)) -> &'static str) -> &'static str {
    PROTOCOL_NAMES
        .iter()
        .find(|row| row.0 == p)
        .map(pick)
        .expect("the table covers every protocol")
}

/// Each client format's words for a protocol.
impl Protocol {
    /// Thunderbird `incomingServer`/`outgoingServer` `type` attribute.
    pub fn thunderbird(self) -> &'static str {
        protocol_name(self, |r| r.1)
    }

    /// Thunderbird `type` back to a protocol (`None` for types mailconf does not publish, e.g.
    /// `jmap`, `exchange`).
    pub fn from_thunderbird(name: &str) -> Option<Protocol> {
        PROTOCOL_NAMES.iter().find(|r| r.1 == name).map(|r| r.0)
    }

    /// Outlook POX `Protocol/Type`.
    pub fn outlook(self) -> &'static str {
        protocol_name(self, |r| r.2)
    }

    /// POX `Type` back to a protocol (`None` for `EXCH`, `EXPR`, `WEB`…).
    pub fn from_outlook(name: &str) -> Option<Protocol> {
        PROTOCOL_NAMES.iter().find(|r| r.2 == name).map(|r| r.0)
    }

    /// The protocol's name for people ("IMAP", "POP3", "SMTP": the POX words are exactly these).
    pub fn people(self) -> &'static str {
        self.outlook()
    }

    /// Apple `EmailAccountType` for the incoming protocol (a profile has no SMTP-only account).
    pub fn apple_account_type(self) -> &'static str {
        if self == Protocol::Pop3 {
            "EmailTypePOP"
        } else {
            "EmailTypeIMAP"
        }
    }
}

// ---- Transport security ----------------------------------------------------------------------

/// (security, Thunderbird `socketType`, POX `SSL`, POX `Encryption`, what mail apps' settings
/// screens call it — Thunderbird, Apple Mail, Outlook, K-9 — for people; `None` for "no
/// encryption", a word of the reader's language).
///
/// STARTTLS is `SSL=on` + `Encryption=TLS`: Outlook honours Encryption, while Thunderbird and
/// Delta Chat read `SSL=off` as "no TLS at all" and guess STARTTLS vs implicit TLS from the port
/// when it is on (spec sheet §3.3; Stalwart#3248 shows `TLS` on 993/465 breaking Outlook, hence
/// `SSL` for implicit TLS).
type SecurityRow = (Security, &'static str, &'static str, &'static str, Option<&'static str>);

const SECURITY_NAMES: [SecurityRow; 3] = [
    (Security::Tls, "SSL", "on", "SSL", Some("SSL/TLS")),
    (Security::Starttls, "STARTTLS", "on", "TLS", Some("STARTTLS")),
    (Security::None, "plain", "off", "None", None),
];

fn security_row(s: Security) -> &'static SecurityRow {
    SECURITY_NAMES
        .iter()
        .find(|r| r.0 == s)
        .expect("the table covers every security mode")
}

/// Each client format's words for a TLS mode: the one mapping every renderer and parser uses.
impl Security {
    /// Thunderbird `socketType`.
    pub fn thunderbird(self) -> &'static str {
        security_row(self).1
    }

    /// Thunderbird `socketType` back to a mode.
    pub fn from_thunderbird(socket_type: &str) -> Option<Security> {
        SECURITY_NAMES.iter().find(|r| r.1 == socket_type).map(|r| r.0)
    }

    /// Outlook POX `(SSL, Encryption)`.
    pub fn outlook(self) -> (&'static str, &'static str) {
        let r = security_row(self);
        (r.2, r.3)
    }

    /// POX `Encryption` and `SSL` back to a mode, as Outlook reads them (MS-OXDSCLI
    /// §2.2.4.1.1.2.2.2): `Encryption` overrides `SSL`; a missing `SSL` means "on", and "on"
    /// without `Encryption` is implicit TLS.
    pub fn from_outlook(encryption: Option<&str>, ssl: Option<&str>) -> Security {
        match encryption.and_then(|e| SECURITY_NAMES.iter().find(|r| r.3 == e)) {
            Some(r) => r.0,
            None if ssl == Some("off") => Security::None,
            None => Security::Tls,
        }
    }

    /// Apple `…UseSSL`: true only for implicit TLS. With false the device starts in plaintext
    /// and upgrades opportunistically; a profile cannot require STARTTLS (mox, Nodemailer).
    pub fn apple_use_ssl(self) -> bool {
        self == Security::Tls
    }

    /// The name people pick in a mail app's settings ("SSL/TLS", "STARTTLS"); `None` for no
    /// encryption, which each language names itself.
    pub fn people(self) -> Option<&'static str> {
        security_row(self).4
    }
}

// ---- Authentication --------------------------------------------------------------------------

impl Auth {
    /// Thunderbird `authentication` value (names and case as the clients compare them).
    pub fn thunderbird(self) -> &'static str {
        match self {
            Auth::PasswordCleartext => "password-cleartext",
            Auth::PasswordEncrypted => "password-encrypted",
            Auth::Oauth2 => "OAuth2",
            Auth::Ntlm => "NTLM",
            Auth::Gssapi => "GSSAPI",
            Auth::ClientIpAddress => "client-IP-address",
            Auth::TlsClientCert => "TLS-client-cert",
            Auth::None => "none",
        }
    }

    /// Apple `…Authentication`; `None` for methods a profile cannot express.
    pub fn apple(self) -> Option<&'static str> {
        match self {
            Auth::PasswordCleartext => Some("EmailAuthPassword"),
            Auth::PasswordEncrypted => Some("EmailAuthCRAMMD5"),
            Auth::Ntlm => Some("EmailAuthNTLM"),
            Auth::None | Auth::ClientIpAddress => Some("EmailAuthNone"),
            Auth::Oauth2 | Auth::Gssapi | Auth::TlsClientCert => None,
        }
    }
}

// ---- Calendars and contacts (RFC 6764) ------------------------------------------------------

/// A DAV service a provider may offer beside mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dav {
    /// CalDAV (RFC 4791).
    CalDav,
    /// CardDAV (RFC 6352).
    CardDav,
}

/// Each format's words for one DAV service.
#[derive(Debug)]
pub struct DavWords {
    pub service: Dav,
    /// The protocol's name for people, as apps' account lists show it ("CalDAV", "CardDAV").
    pub people: &'static str,
    /// Settings key (`[provider.NAME.caldav]`) and PACC `protocols` key.
    pub key: &'static str,
    /// RFC 6764 §3 SRV label over TLS (`_caldavs`) and without (`_caldav`).
    pub srv_tls: &'static str,
    pub srv_plain: &'static str,
    /// RFC 6764 §5 well-known URI (lower case).
    pub well_known: &'static str,
    /// Thunderbird clientConfig 1.2 element and its `type` (draft-ietf-mailmaint-autoconfig-06:
    /// `addressbook`, lower-case b).
    pub autoconfig_element: &'static str,
    /// Apple payload type and key prefix (apple/device-management `com.apple.caldav.account`).
    pub apple_payload: &'static str,
    pub apple_prefix: &'static str,
    /// Apple's `…PrincipalURL` is usable on every platform (CardDAV's is iOS-only).
    pub apple_principal_everywhere: bool,
}

/// One row per DAV service, in the order every output lists them.
pub const DAV: [DavWords; 2] = [
    DavWords {
        service: Dav::CalDav,
        people: "CalDAV",
        key: "caldav",
        srv_tls: "_caldavs",
        srv_plain: "_caldav",
        well_known: "/.well-known/caldav",
        autoconfig_element: "calendar",
        apple_payload: "com.apple.caldav.account",
        apple_prefix: "CalDAV",
        apple_principal_everywhere: true,
    },
    DavWords {
        service: Dav::CardDav,
        people: "CardDAV",
        key: "carddav",
        srv_tls: "_carddavs",
        srv_plain: "_carddav",
        well_known: "/.well-known/carddav",
        autoconfig_element: "addressbook",
        apple_payload: "com.apple.carddav.account",
        apple_prefix: "CardDAV",
        apple_principal_everywhere: false,
    },
];

/// The TXT value RFC 6764 §4 puts beside the SRV record: `path=<context path>`.
pub const DAV_TXT_PATH_PREFIX: &str = "path=";
/// Thunderbird `authentication` for DAV elements (HTTP Basic; autoconfig-06).
pub const DAV_AUTOCONFIG_AUTH: (&str, &str) = ("http", "Basic");

impl Dav {
    pub fn words(self) -> &'static DavWords {
        DAV.iter()
            .find(|w| w.service == self)
            .expect("the table covers every DAV service")
    }

    /// The service whose well-known path this is (lower-cased path).
    pub fn from_well_known(path: &str) -> Option<Dav> {
        DAV.iter().find(|w| w.well_known == path).map(|w| w.service)
    }
}

// ---- PACC (draft-ietf-mailmaint-pacc-03) --------------------------------------------------------

/// `ua-auto-config.<domain>`: the fixed host of the PACC document.
pub const UA_AUTO_CONFIG: &str = "ua-auto-config";
/// The PACC document's path on that host.
pub const PACC_PATH: &str = "/.well-known/user-agent-configuration.json";
/// `_ua-auto-config.<domain>`: the TXT record holding the document's digest.
pub const PACC_TXT_LABEL: &str = "_ua-auto-config";
/// The digest record: `v=UAAC1; a=sha256; d=<base64 SHA-256 of the body>`.
pub const PACC_TXT_VERSION: &str = "UAAC1";
pub const PACC_TXT_ALGORITHM: &str = "sha256";

/// `v=UAAC1; a=sha256; d=<digest>`.
pub fn pacc_txt(digest_b64: &str) -> String {
    format!("v={PACC_TXT_VERSION}; a={PACC_TXT_ALGORITHM}; d={digest_b64}")
}

/// The `d=` of a PACC TXT value, read as the draft tells clients to: tags split at `;`, names
/// case-insensitive, whitespace and unknown tags ignored; `None` unless `v=UAAC1; a=sha256`.
pub fn pacc_txt_digest(value: &str) -> Option<&str> {
    let mut v = None;
    let mut a = None;
    let mut d = None;
    for tag in value.split(';') {
        let Some((k, val)) = tag.split_once('=') else { continue };
        match k.trim().to_ascii_lowercase().as_str() {
            "v" => v = Some(val.trim()),
            "a" => a = Some(val.trim()),
            "d" => d = Some(val.trim()),
            _ => {}
        }
    }
    (v? == PACC_TXT_VERSION && a?.eq_ignore_ascii_case(PACC_TXT_ALGORITHM)).then_some(d?)
}

/// PACC-03 `protocols` keys for the mail protocols, each on a port the draft fixes with
/// implicit TLS (so only such servers can be described).
const PACC_MAIL: [(Protocol, &str, u16); 3] = [
    (Protocol::Imap, "imap", 993),
    (Protocol::Pop3, "pop3", 995),
    (Protocol::Smtp, "submit", 465),
];

impl Protocol {
    /// PACC `protocols` key and the one port it implies (implicit TLS).
    pub fn pacc(self) -> (&'static str, u16) {
        PACC_MAIL
            .iter()
            .find(|r| r.0 == self)
            .map(|r| (r.1, r.2))
            .expect("the table covers every protocol")
    }

    /// PACC `protocols` key back to a protocol.
    pub fn from_pacc(key: &str) -> Option<Protocol> {
        PACC_MAIL.iter().find(|r| r.1 == key).map(|r| r.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROTOCOLS: [Protocol; 3] = [Protocol::Imap, Protocol::Pop3, Protocol::Smtp];
    const SECURITIES: [Security; 3] = [Security::Tls, Security::Starttls, Security::None];

    /// Every forward mapping reads back to where it came from.
    #[test]
    fn round_trips() {
        for p in PROTOCOLS {
            assert_eq!(Protocol::from_thunderbird(p.thunderbird()), Some(p));
            assert_eq!(Protocol::from_outlook(p.outlook()), Some(p));
            for s in SECURITIES {
                let (proto, modes) = srv_meaning(srv_label(p, s)).unwrap();
                assert_eq!(proto, p);
                assert!(modes.contains(&s), "{p:?} {s:?}");
            }
        }
        for s in SECURITIES {
            assert_eq!(Security::from_thunderbird(s.thunderbird()), Some(s));
            let (ssl, enc) = s.outlook();
            assert_eq!(Security::from_outlook(Some(enc), Some(ssl)), s);
        }
    }

    /// The published words, fixed by the clients (golden files check them in context).
    #[test]
    fn words() {
        assert_eq!(srv_label(Protocol::Imap, Security::None), "_imap");
        assert_eq!(srv_label(Protocol::Smtp, Security::Tls), "_submissions");
        assert_eq!(
            srv_meaning("_imap"),
            Some((Protocol::Imap, vec![Security::Starttls, Security::None]))
        );
        assert_eq!(srv_meaning("_pop3s"), Some((Protocol::Pop3, vec![Security::Tls])));
        assert_eq!(srv_meaning("_autodiscover"), None);
        let mut labels: Vec<&str> = SRV.iter().map(|r| r.0).collect();
        labels.dedup();
        assert_eq!(labels, SRV_LABELS);
        // MS-OXDSCLI: Encryption wins over SSL; SSL missing means on.
        assert_eq!(Security::from_outlook(None, None), Security::Tls);
        assert_eq!(Security::from_outlook(None, Some("off")), Security::None);
        assert_eq!(Security::from_outlook(Some("TLS"), Some("off")), Security::Starttls);
        assert_eq!(Protocol::from_thunderbird("jmap"), None);
        assert_eq!(
            web_labels(false, false).collect::<Vec<_>>(),
            ["autoconfig", "autodiscover"]
        );
        assert_eq!(
            web_labels(true, true).collect::<Vec<_>>(),
            ["autoconfig", "autodiscover", "mta-sts", "ua-auto-config"]
        );
        assert_eq!(
            strip_web_label("autodiscover.example.com", AUTODISCOVER),
            Some("example.com")
        );
        assert_eq!(strip_web_label("autodiscoverx.example.com", AUTODISCOVER), None);
        assert_eq!(Dav::from_well_known("/.well-known/carddav"), Some(Dav::CardDav));
        assert_eq!(Dav::CardDav.words().autoconfig_element, "addressbook");
        assert_eq!(Protocol::Smtp.pacc(), ("submit", 465));
        assert_eq!(Protocol::from_pacc("submit"), Some(Protocol::Smtp));
        let txt = pacc_txt("q1w2==");
        assert_eq!(txt, "v=UAAC1; a=sha256; d=q1w2==");
        assert_eq!(pacc_txt_digest(&txt), Some("q1w2=="));
        assert_eq!(pacc_txt_digest(" D=x ;A=SHA256;x=y; v=UAAC1"), Some("x"));
        assert_eq!(pacc_txt_digest("v=UAAC2; a=sha256; d=x"), None);
        assert_eq!(pacc_txt_digest("v=UAAC1; a=sha512; d=x"), None);
        assert_eq!(Security::Tls.people(), Some("SSL/TLS"));
        assert_eq!(Security::None.people(), None);
        assert_eq!(setup_url("example.com"), "https://autoconfig.example.com/setup");
        assert_eq!(
            apple_profile_url("example.com", Some("o'n+1&x@example.com")),
            "https://autoconfig.example.com/apple/profile.mobileconfig?emailaddress=o%27n%2B1%26x%40example.com"
        );
        assert_eq!(
            pox_url("example.com"),
            "https://autodiscover.example.com/autodiscover/autodiscover.xml"
        );
    }
}
