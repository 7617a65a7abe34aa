//! `[provider.NAME]` and its `[[provider.NAME.server]]` entries.

use super::Ctx;
use crate::settings::names::to_ascii_domain;
use crate::settings::raw::{self, S};
use crate::settings::{Auth, Dav, DavService, MailServer, OAuth2, OwnServices, Protocol, Provider, Security};

/// Placeholders a username template may use (Thunderbird autoconfig, §2.4 of the spec sheet).
pub const PLACEHOLDERS: [&str; 3] = ["%EMAILADDRESS%", "%EMAILLOCALPART%", "%EMAILDOMAIN%"];

pub(super) fn provider(cx: &mut Ctx, id: &str, p: &S<raw::Provider>) -> Option<Provider> {
    let span = p.span();
    let p = p.get_ref();
    let path = format!("provider.{id}");
    let errors_before = cx.diags.len();
    let display_name = p.display_name.get_ref().trim().to_string();
    if display_name.is_empty() || display_name.chars().count() > 60 {
        cx.err(
            &p.display_name.span(),
            format!("{path}.display_name"),
            "must be 1 to 60 characters (Thunderbird's limit)",
        );
    }
    let short_name = match &p.short_name {
        Some(s) => {
            if s.get_ref().trim().is_empty() || s.get_ref().chars().count() > 20 {
                cx.err(
                    &s.span(),
                    format!("{path}.short_name"),
                    "must be 1 to 20 characters (Thunderbird's limit)",
                );
            }
            s.get_ref().trim().to_string()
        }
        None => id.chars().take(20).collect(),
    };
    let default_user = default_username(p);
    if let Some(u) = &p.username {
        cx.template(u, &format!("{path}.username"));
    }
    let mut servers: Vec<MailServer> = Vec::new();
    for (i, s) in p.server.iter().enumerate() {
        let spath = format!("{path}.server[{i}]");
        if let Some(ms) = mail_server(cx, s.get_ref(), &spath, &default_user) {
            if servers
                .iter()
                .any(|o| o.protocol == ms.protocol && o.host == ms.host && o.port == ms.port)
            {
                cx.err(
                    &s.span(),
                    &spath,
                    format!("{:?} server {}:{} is listed twice", ms.protocol, ms.host, ms.port).to_lowercase(),
                );
            }
            servers.push(ms);
        }
    }
    // Judged on what the file lists, so a typo elsewhere does not hide this.
    let protocols: Vec<Protocol> = p.server.iter().map(|s| *s.get_ref().protocol.get_ref()).collect();
    if !protocols.iter().any(|p| *p != Protocol::Smtp) {
        cx.err(
            &span,
            format!("{path}.server"),
            "offers no way to receive mail: add an `imap` or `pop3` server",
        );
    }
    if !protocols.contains(&Protocol::Smtp) {
        cx.err(
            &span,
            format!("{path}.server"),
            "offers no way to send mail: add an `smtp` server",
        );
    }
    let raw_services = RawServices {
        documentation: &p.documentation,
        caldav: &p.caldav,
        carddav: &p.carddav,
        oauth2: &p.oauth2,
    };
    let has_oauth2_server = p.server.iter().any(|s| {
        s.get_ref()
            .auth
            .as_ref()
            .is_some_and(|a| a.get_ref().contains(&Auth::Oauth2))
    });
    let OwnServices {
        documentation,
        dav,
        oauth2,
    } = services(cx, &raw_services, &path, &default_user, Some(has_oauth2_server));
    if p.pacc {
        pacc_expressible(cx, &span, &path, &servers);
    }
    (cx.diags.len() == errors_before).then(|| Provider {
        id: id.to_string(),
        display_name,
        short_name,
        servers,
        documentation,
        dav,
        oauth2,
        pacc: p.pacc,
    })
}

/// The keys a provider and a domain share: `documentation`, `caldav`, `carddav`, `oauth2`.
pub(super) struct RawServices<'a> {
    pub documentation: &'a Option<S<String>>,
    pub caldav: &'a Option<S<raw::DavService>>,
    pub carddav: &'a Option<S<raw::DavService>>,
    pub oauth2: &'a Option<S<raw::OAuth2>>,
}

/// Check the shared keys at `path` (`provider.NAME`, `domain[I]`, `source[I].domain`).
/// `has_oauth2_server`: whether the servers these services go with list `auth = ["oauth2"]`
/// (`None`: not known here; the caller judges).
pub(super) fn services(
    cx: &mut Ctx,
    r: &RawServices,
    path: &str,
    default_user: &str,
    has_oauth2_server: Option<bool>,
) -> OwnServices {
    let documentation = r.documentation.as_ref().and_then(|d| {
        web_url(cx, d, &format!("{path}.documentation"), &["http", "https"]).map(|_| d.get_ref().trim().to_string())
    });
    let mut dav = Vec::new();
    for (kind, raw) in [(Dav::CalDav, r.caldav), (Dav::CardDav, r.carddav)] {
        if let Some(d) = raw {
            dav.extend(dav_service(cx, kind, d.get_ref(), path, default_user));
        }
    }
    let oauth2 = r.oauth2.as_ref().and_then(|o| oauth2(cx, o, path));
    if let Some(o) = r.oauth2
        && has_oauth2_server == Some(false)
    {
        cx.err(
            &o.span(),
            format!("{path}.oauth2"),
            "no server lists auth = [\"oauth2\"]: the issuer would describe nothing",
        );
    }
    OwnServices {
        documentation,
        dav,
        oauth2,
    }
}

/// The username a provider's entries use when they name none: its `username`, else the address.
pub(super) fn default_username(p: &raw::Provider) -> String {
    p.username
        .as_ref()
        .map_or_else(|| PLACEHOLDERS[0].to_string(), |u| u.get_ref().clone())
}

/// Does one of the provider's servers list `auth = ["oauth2"]`?
pub(super) fn lists_oauth2(p: &Provider) -> bool {
    p.servers.iter().any(|s| s.auth.contains(&Auth::Oauth2))
}

/// `[provider.NAME.caldav]` / `carddav`: `https`, a context path (RFC 6764 §4 publishes it as
/// `path=`), no query.
fn dav_service(cx: &mut Ctx, kind: Dav, d: &raw::DavService, path: &str, default_user: &str) -> Option<DavService> {
    let upath = format!("{path}.{}.url", kind.words().key);
    let url = web_url(cx, &d.url, &upath, &["https"])?;
    if url.path == "/" || url.path.contains('?') || !url.path.is_ascii() {
        cx.err(
            &d.url.span(),
            upath,
            "needs an ASCII context path and no query, e.g. `https://dav.example.net/dav/` (RFC 6764 §4)",
        );
        return None;
    }
    if let Some(u) = &d.username {
        cx.template(u, &format!("{path}.{}.username", kind.words().key));
    }
    Some(DavService {
        kind,
        url: format!("https://{}{}{}", url.host, port_suffix(url.port), url.path),
        host: url.host,
        port: url.port,
        path: url.path,
        username: d
            .username
            .as_ref()
            .map_or_else(|| default_user.to_string(), |u| u.get_ref().clone()),
    })
}

fn port_suffix(port: u16) -> String {
    if port == 443 { String::new() } else { format!(":{port}") }
}

/// `[provider.NAME.oauth2]`: every URL `https`.
fn oauth2(cx: &mut Ctx, o: &S<raw::OAuth2>, path: &str) -> Option<OAuth2> {
    let o = o.get_ref();
    let errors_before = cx.diags.len();
    let mut https = |v: &Option<S<String>>, key: &str| {
        v.as_ref().and_then(|v| {
            web_url(cx, v, &format!("{path}.oauth2.{key}"), &["https"]).map(|_| v.get_ref().trim().to_string())
        })
    };
    let issuer = https(&Some(o.issuer.clone()), "issuer");
    let auth_url = https(&o.auth_url, "auth_url");
    let token_url = https(&o.token_url, "token_url");
    let text = |v: &Option<S<String>>| v.as_ref().map(|v| v.get_ref().trim().to_string());
    let out = OAuth2 {
        issuer: issuer?,
        auth_url,
        token_url,
        scope: text(&o.scope),
        client_id: text(&o.client_id),
    };
    (cx.diags.len() == errors_before).then_some(out)
}

/// PACC-03 fixes the mail ports (993, 995, 465, implicit TLS): a provider publishing PACC needs
/// a receiving and a sending server it can describe, with a way to log in PACC can name.
fn pacc_expressible(cx: &mut Ctx, span: &std::ops::Range<usize>, path: &str, servers: &[MailServer]) {
    let fits = |s: &&MailServer| s.security == Security::Tls && s.port == s.protocol.pacc().1;
    if !servers.iter().filter(fits).any(MailServer::is_incoming)
        || !servers.iter().filter(fits).any(|s| !s.is_incoming())
    {
        cx.err(
            span,
            format!("{path}.pacc"),
            "PACC can only describe imap on 993, pop3 on 995 and smtp on 465, all with `security = \"tls\"`: list a receiving and a sending server like that",
        );
    }
}

/// A URL a client is sent to, split into its parts (host as ASCII, port made explicit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WebUrl {
    pub host: String,
    pub port: u16,
    /// Starts with `/`; may carry a query.
    pub path: String,
}

/// Check `scheme://host[:port][/path]`: one of `schemes`, a host name (IP literals and user
/// info refused), no fragment, no whitespace or control characters.
pub(super) fn web_url(cx: &mut Ctx, v: &S<String>, path: &str, schemes: &[&'static str]) -> Option<WebUrl> {
    let text = v.get_ref().trim();
    let parsed = parse_web_url(text, schemes);
    if let Err(e) = &parsed {
        cx.err(&v.span(), path, format!("`{text}` {e}"));
    }
    parsed.ok()
}

fn parse_web_url(text: &str, schemes: &[&'static str]) -> Result<WebUrl, String> {
    let want = || format!("must be an {} URL", schemes.join(" or "));
    let (scheme, rest) = text.split_once("://").ok_or_else(want)?;
    let scheme = schemes
        .iter()
        .find(|s| s.eq_ignore_ascii_case(scheme))
        .copied()
        .ok_or_else(want)?;
    if text
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || "<>\"\\`{}|^".contains(c))
    {
        return Err("has characters a URL cannot have".into());
    }
    if text.contains('#') {
        return Err("must not have a fragment".into());
    }
    let (authority, path) = rest.find(['/', '?']).map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    if authority.contains('@') || authority.starts_with('[') {
        return Err("must name a host (no user info, no IP literal)".into());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().ok().filter(|p| *p != 0).ok_or("has a bad port")?),
        None => (authority, if scheme == "https" { 443 } else { 80 }),
    };
    let host = to_ascii_domain(host).map_err(|e| format!("has a bad host: {e}"))?;
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Ok(WebUrl { host, port, path })
}

fn mail_server(cx: &mut Ctx, s: &raw::MailServer, path: &str, default_user: &str) -> Option<MailServer> {
    let host = cx.host(&s.host, &format!("{path}.host"));
    let port = *s.port.get_ref();
    if port == 0 {
        cx.err(&s.port.span(), format!("{path}.port"), "port 0 is not a port");
    }
    let auth = s
        .auth
        .as_ref()
        .map_or_else(|| vec![Auth::PasswordCleartext], |a| a.get_ref().clone());
    if let Some(a) = &s.auth
        && a.get_ref().is_empty()
    {
        cx.err(&a.span(), format!("{path}.auth"), "must name at least one method");
    }
    let security = *s.security.get_ref();
    if security == Security::None && auth.iter().any(|a| a.sends_cleartext_password()) && !s.allow_cleartext {
        cx.err(
            &s.security.span(),
            format!("{path}.security"),
            "`none` with password-cleartext auth sends passwords unencrypted; use `tls` or `starttls`, or set `allow_cleartext = true` to publish it anyway",
        );
    }
    if let Some(u) = &s.username {
        cx.template(u, &format!("{path}.username"));
    }
    Some(MailServer {
        protocol: *s.protocol.get_ref(),
        host: host?,
        port,
        security,
        auth,
        username: s
            .username
            .as_ref()
            .map_or_else(|| default_user.to_string(), |u| u.get_ref().clone()),
    })
}

/// Check that every `%…%` in a username template is a known placeholder.
pub(super) fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(start) = rest.find('%') {
        let after = &rest[start + 1..];
        let Some(len) = after.find('%') else {
            return Err(format!("unmatched `%` in `{t}`"));
        };
        let ph = &rest[start..start + len + 2];
        if !PLACEHOLDERS.contains(&ph) {
            return Err(format!(
                "unknown placeholder `{ph}` (known: {})",
                PLACEHOLDERS.join(", ")
            ));
        }
        rest = &after[len + 1..];
    }
    Ok(())
}
