//! `[provider.NAME]` and its `[[provider.NAME.server]]` entries.

use super::Ctx;
use crate::settings::names::to_ascii_domain;
use crate::settings::raw::{self, S};
use crate::settings::{Auth, MailServer, Protocol, Provider, Security};

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
    let default_user = p
        .username
        .as_ref()
        .map_or_else(|| PLACEHOLDERS[0].to_string(), |u| u.get_ref().clone());
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
    let documentation = p.documentation.as_ref().and_then(|d| {
        web_url(cx, d, &format!("{path}.documentation"), &["http", "https"]).map(|_| d.get_ref().trim().to_string())
    });
    (cx.diags.len() == errors_before).then(|| Provider {
        id: id.to_string(),
        display_name,
        short_name,
        servers,
        documentation,
    })
}

/// A URL a client is sent to, split into its parts (host as ASCII, port made explicit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WebUrl {
    pub scheme: &'static str,
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
    Ok(WebUrl {
        scheme,
        host,
        port,
        path,
    })
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
