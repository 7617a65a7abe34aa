//! Thunderbird autoconfig, clientConfig version 1.1 (`/mail/config-v1.1.xml`).
//!
//! Shape per the autoconfig draft (benbucksch/autoconfig-spec) and what Thunderbird's
//! `readFromXML` and K-9/Thunderbird for Android's `RealAutoconfigParser` accept: emailProvider
//! id and every `domain` are host names; servers in preference order; `socketType`
//! SSL/STARTTLS/plain; `username` always present; never a password.

use super::xml::{W, document, text};
use crate::model::{ClientConfig, ServerView};

/// The clientConfig document for one domain (and address, when known).
pub fn render(cfg: &ClientConfig) -> Vec<u8> {
    document(|w| {
        w.create_element("clientConfig")
            .with_attribute(("version", "1.1"))
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
                        Ok(())
                    })?;
                Ok(())
            })?;
        Ok(())
    })
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
