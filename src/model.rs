//! The small view every client-format renderer consumes: one domain's servers, in preference
//! order, with usernames resolved for one address (or kept as placeholders without one).
//!
//! Each format's words for protocols, TLS modes and auth methods live in [`crate::vocab`].

use std::borrow::Cow;
use std::fmt;

use crate::settings::{self, Auth, Dav, Domain, PLACEHOLDERS, Protocol, Security, Services, Settings};

/// Longest address accepted (RFC 5321 §4.5.3.1.3: a path is at most 256 octets with brackets).
pub const MAX_ADDRESS: usize = 254;
const MAX_LOCAL_PART: usize = 64;

/// A syntactically plausible mail address: local part as given, domain as lowercase ASCII.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress {
    pub local: String,
    pub domain: String,
}

/// Why an address was refused (the message is safe to show: it never echoes the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadAddress(pub &'static str);

impl fmt::Display for BadAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl EmailAddress {
    /// Parse hostile input: length caps, no controls or markup characters, IDNA domain.
    pub fn parse(input: &str) -> Result<EmailAddress, BadAddress> {
        let input = input.trim();
        if input.len() > MAX_ADDRESS * 4 {
            return Err(BadAddress("address too long"));
        }
        let (local, domain) = input.rsplit_once('@').ok_or(BadAddress("address has no @"))?;
        if local.is_empty() || local.len() > MAX_LOCAL_PART {
            return Err(BadAddress("local part must be 1 to 64 octets"));
        }
        if local
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>()[]\\,;:\"@".contains(c))
        {
            return Err(BadAddress("local part has characters an address cannot have unquoted"));
        }
        let domain = settings::to_ascii_domain(domain).map_err(|_| BadAddress("domain is not a valid host name"))?;
        if local.len() + 1 + domain.len() > MAX_ADDRESS {
            return Err(BadAddress("address too long"));
        }
        Ok(EmailAddress {
            local: local.to_string(),
            domain,
        })
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// One server as a client should see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerView {
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub auth: Vec<Auth>,
    /// Resolved for the address, or the template when the address is unknown.
    pub username: String,
}

impl ServerView {
    /// Incoming (IMAP/POP3) as opposed to outgoing (SMTP submission).
    pub fn is_incoming(&self) -> bool {
        self.protocol != Protocol::Smtp
    }
}

/// One DAV service (calendars or contacts) as a client should see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DavView {
    pub kind: Dav,
    pub url: String,
    pub host: String,
    pub port: u16,
    /// Resolved for the address, or the template when the address is unknown.
    pub username: String,
}

/// Everything a client document says, for one domain and (maybe) one address.
#[derive(Debug, Clone)]
pub struct ClientConfig<'a> {
    pub domain: &'a Domain,
    /// The name the client asked for (the primary name or one alias).
    pub requested: String,
    pub address: Option<EmailAddress>,
    pub display_name: &'a str,
    pub short_name: &'a str,
    /// Preference order, as configured.
    pub servers: Vec<ServerView>,
    /// CalDAV then CardDAV, those configured.
    pub dav: Vec<DavView>,
}

impl<'a> ClientConfig<'a> {
    /// The view for `domain_name` (primary or alias), or `None` when it is not configured.
    pub fn for_domain(
        settings: &'a Settings,
        domain_name: &str,
        address: Option<&EmailAddress>,
    ) -> Option<ClientConfig<'a>> {
        let domain = settings.domain(domain_name)?;
        let requested = domain_name.trim_end_matches('.').to_ascii_lowercase();
        let p = &domain.provider;
        let servers = p
            .servers
            .iter()
            .map(|s| ServerView {
                protocol: s.protocol,
                host: s.host.clone(),
                port: s.port,
                security: s.security,
                auth: s.auth.clone(),
                username: address.map_or_else(|| s.username.clone(), |a| expand(&s.username, a)),
            })
            .collect();
        let dav = domain
            .services()
            .dav_all()
            .map(|d| DavView {
                kind: d.kind,
                url: d.url.clone(),
                host: d.host.clone(),
                port: d.port,
                username: address.map_or_else(|| d.username.clone(), |a| expand(&d.username, a)),
            })
            .collect();
        Some(ClientConfig {
            domain,
            requested,
            address: address.cloned(),
            display_name: &p.display_name,
            short_name: &p.short_name,
            servers,
            dav,
        })
    }

    /// Where people read more (see [`documentation_url`]), for the name asked for.
    pub fn documentation(&self) -> Cow<'a, str> {
        documentation_url(&self.domain.services(), &self.requested)
    }

    pub fn incoming(&self) -> impl Iterator<Item = &ServerView> + Clone {
        self.servers.iter().filter(|s| s.is_incoming())
    }

    pub fn outgoing(&self) -> impl Iterator<Item = &ServerView> + Clone {
        self.servers.iter().filter(|s| !s.is_incoming())
    }
}

/// Where every document sends people to read more: the domain's (or its provider's)
/// `documentation`, else mailconf's setup page for `name`. Thunderbird's `<documentation url>`,
/// Outlook's `ServiceHome` and PACC's `info.help.documentation` all say this.
pub fn documentation_url<'s>(services: &Services<'s>, name: &str) -> Cow<'s, str> {
    services
        .documentation
        .map_or_else(|| Cow::Owned(crate::vocab::setup_url(name)), Cow::Borrowed)
}

/// Substitute `%EMAILADDRESS%`, `%EMAILLOCALPART%` and `%EMAILDOMAIN%`, in one pass over the
/// template: what is put in is never read again (a local part may hold `%`, so
/// `%EMAILDOMAIN%@example.com` stays as typed), and an answer costs one allocation.
pub fn expand(template: &str, a: &EmailAddress) -> String {
    let [addr, local, dom] = PLACEHOLDERS;
    let mut out = String::with_capacity(template.len() + a.local.len() + a.domain.len() + 1);
    let mut rest = template;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix(addr) {
            out.extend([a.local.as_str(), "@", a.domain.as_str()]);
            rest = after;
        } else if let Some(after) = rest.strip_prefix(local) {
            out.push_str(&a.local);
            rest = after;
        } else if let Some(after) = rest.strip_prefix(dom) {
            out.push_str(&a.domain);
            rest = after;
        } else {
            out.push('%');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

impl Auth {
    /// Does the client have to log in at all?
    pub fn requires_login(self) -> bool {
        !matches!(self, Auth::None | Auth::ClientIpAddress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_puts_the_address_in_once() {
        let a = EmailAddress::parse("%EMAILDOMAIN%+100%@Example.COM").unwrap();
        assert_eq!(expand("%EMAILADDRESS%", &a), "%EMAILDOMAIN%+100%@example.com");
        assert_eq!(expand("%EMAILLOCALPART%", &a), "%EMAILDOMAIN%+100%");
        assert_eq!(expand("u-%EMAILDOMAIN%-%EMAILDOMAIN%", &a), "u-example.com-example.com");
        assert_eq!(expand("100% %EMAIL% %%EMAILDOMAIN%%", &a), "100% %EMAIL% %example.com%");
        assert_eq!(expand("fixed", &a), "fixed");
    }

    #[test]
    fn addresses() {
        let a = EmailAddress::parse("Fred.Bloggs@Example.COM").unwrap();
        assert_eq!((a.local.as_str(), a.domain.as_str()), ("Fred.Bloggs", "example.com"));
        assert_eq!(
            EmailAddress::parse("x@Bücher.example").unwrap().domain,
            "xn--bcher-kva.example"
        );
        for bad in [
            "",
            "fred",
            "@example.com",
            "a<b@example.com",
            "a\"b@example.com",
            "a\r\nb@example.com",
            "a\0@example.com",
            "fred@exa mple.com",
            "fred@localhost",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
        assert!(EmailAddress::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
        assert!(EmailAddress::parse(&format!("a@{}.example.com", "b".repeat(1_000_000))).is_err());
    }

    #[test]
    fn placeholders() {
        let a = EmailAddress::parse("fred@example.com").unwrap();
        assert_eq!(
            expand("%EMAILLOCALPART%+%EMAILDOMAIN%/%EMAILADDRESS%", &a),
            "fred+example.com/fred@example.com"
        );
    }
}
