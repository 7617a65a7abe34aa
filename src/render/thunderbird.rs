//! Thunderbird autoconfig, clientConfig version 1.1 (`/mail/config-v1.1.xml`), with the
//! version 1.2 elements of draft-ietf-mailmaint-autoconfig-06 where configured.
//!
//! 1.2 adds, as siblings of `emailProvider`, `<oAuth2>` and `<addressbook type="carddav">` /
//! `<calendar type="caldav">` (URL, HTTP Basic, username). Readers ignore elements they do not
//! know (Thunderbird's `readFromXML` reads only `emailProvider`), so 1.1 readers keep working;
//! the version says 1.2 only when a DAV element is present. `<documentation url>` and
//! `<oAuth2>` already appear in 1.1 ISPDB files.
//!
//! Shape per the autoconfig draft (benbucksch/autoconfig-spec) and what Thunderbird's
//! `readFromXML` and K-9/Thunderbird for Android's `RealAutoconfigParser` accept: emailProvider
//! id and every `domain` are host names; servers in preference order; `socketType`
//! SSL/STARTTLS/plain; `username` always present; never a password. `documentation` points
//! people at the provider's help page, or at mailconf's setup page.

use quick_xml::events::BytesText;

use super::setup::Lang;
use super::xml::{W, document, text};
use crate::model::{ClientConfig, DavView, ServerView};
use crate::vocab::DAV_AUTOCONFIG_AUTH;

/// The clientConfig document for one domain (and address, when known).
pub fn render(cfg: &ClientConfig) -> Vec<u8> {
    document(|w| {
        w.create_element("clientConfig")
            .with_attribute(("version", if cfg.dav.is_empty() { "1.1" } else { "1.2" }))
            .write_inner_content(|w| {
                w.create_element("emailProvider")
                    .with_attribute(("id", cfg.domain.name.as_str()))
                    .write_inner_content(|w| {
                        // Only this customer's own names: never another domain served by the same provider.
                        for name in cfg.domain.names() {
                            text(w, "domain", name)?;
                        }
                        text(w, "displayName", cfg.display_name)?;
                        text(w, "displayShortName", cfg.short_name)?;
                        for s in cfg.incoming() {
                            server(w, "incomingServer", s)?;
                        }
                        for s in cfg.outgoing() {
                            server(w, "outgoingServer", s)?;
                        }
                        documentation(w, cfg)
                    })?;
                if let Some(o) = cfg.domain.services().oauth2 {
                    w.create_element("oAuth2").write_inner_content(|w| {
                        text(w, "issuer", &o.issuer)?;
                        for (name, v) in [
                            ("scope", &o.scope),
                            ("authURL", &o.auth_url),
                            ("tokenURL", &o.token_url),
                            ("clientID", &o.client_id),
                        ] {
                            if let Some(v) = v {
                                text(w, name, v)?;
                            }
                        }
                        Ok(())
                    })?;
                }
                for d in &cfg.dav {
                    dav(w, d)?;
                }
                Ok(())
            })?;
        Ok(())
    })
}

/// Where people read more: the domain's (or its provider's) own help page, else mailconf's setup page for the
/// name asked for; described in every language the setup page speaks.
fn documentation(w: &mut W, cfg: &ClientConfig) -> std::io::Result<()> {
    let url = cfg.documentation();
    w.create_element("documentation")
        .with_attribute(("url", &*url))
        .write_inner_content(|w| {
            for lang in Lang::all() {
                w.create_element("descr")
                    .with_attribute(("lang", lang.tag()))
                    .write_text_content(BytesText::new(&format!("{} {}", lang.text().title, cfg.requested)))?;
            }
            Ok(())
        })?;
    Ok(())
}

fn server(w: &mut W, element: &str, s: &ServerView) -> std::io::Result<()> {
    w.create_element(element)
        .with_attribute(("type", s.protocol.thunderbird()))
        .write_inner_content(|w| {
            text(w, "hostname", &s.host)?;
            text(w, "port", &s.port.to_string())?;
            text(w, "socketType", s.security.thunderbird())?;
            for a in &s.auth {
                text(w, "authentication", a.thunderbird())?;
            }
            text(w, "username", &s.username)?;
            Ok(())
        })?;
    Ok(())
}

/// `<calendar type="caldav">` / `<addressbook type="carddav">`.
fn dav(w: &mut W, d: &DavView) -> std::io::Result<()> {
    let words = d.kind.words();
    w.create_element(words.autoconfig_element)
        .with_attribute(("type", words.key))
        .write_inner_content(|w| {
            text(w, "url", &d.url)?;
            w.create_element("authentication")
                .with_attribute(("system", DAV_AUTOCONFIG_AUTH.0))
                .write_text_content(BytesText::new(DAV_AUTOCONFIG_AUTH.1))?;
            text(w, "username", &d.username)?;
            Ok(())
        })?;
    Ok(())
}
