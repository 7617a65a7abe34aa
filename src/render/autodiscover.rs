//! Outlook Autodiscover "POX": the request parser and the responses
//! (`POST /autodiscover/autodiscover.xml`, MS-OXDSCLI).
//!
//! Namespaces are the `http://` URIs of MS-OXDSCLI §2.2.1 (Microsoft's web reference prints
//! `https://`, which no client sends). Request parsing is tolerant as Stalwart's is: any
//! Content-Type, element names matched case-insensitively, namespaces resolved, but no DTD and no
//! entity other than the five predefined ones and character references.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::xml::{document, text};
use crate::model::{ClientConfig, ServerView};
use crate::settings::{Auth, Protocol};

pub const NS_RESPONSE: &str = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
pub const NS_OUTLOOK: &str = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
pub const NS_MOBILESYNC: &str = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006";
const NS_MOBILESYNC_REQUEST: &str = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006";

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoxRequest {
    /// `EMailAddress` as sent (still to be validated).
    pub email: Option<String>,
    /// `AcceptableResponseSchema`, if any.
    pub schema: Option<String>,
}

impl PoxRequest {
    /// ActiveSync (mobilesync) clients get the "provider not available" error in their namespace.
    pub fn wants_mobilesync(&self) -> bool {
        self.schema
            .as_deref()
            .is_some_and(|s| s.trim().eq_ignore_ascii_case(NS_MOBILESYNC))
    }

    /// A schema we cannot answer (neither outlook 2006a nor mobilesync).
    pub fn wants_unknown_schema(&self) -> bool {
        self.schema
            .as_deref()
            .is_some_and(|s| !s.trim().eq_ignore_ascii_case(NS_OUTLOOK) && !self.wants_mobilesync())
    }
}

/// Parse a request body. `Err` carries a short reason (for logs, never for the client).
pub fn parse_request(body: &[u8]) -> Result<PoxRequest, &'static str> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8")?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut req = PoxRequest {
        email: None,
        schema: None,
    };
    let mut stack: Vec<String> = Vec::new();
    let mut root_ns: Option<String> = None;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|_| "malformed XML")?;
        match event {
            Event::DocType(_) => return Err("DTD not allowed"),
            Event::Start(e) => {
                if stack.is_empty() {
                    root_ns = match ns {
                        ResolveResult::Bound(n) => Some(n.as_ref().to_string()),
                        _ => None,
                    };
                }
                stack.push(e.local_name().as_ref().to_ascii_lowercase());
                if stack.len() > 16 {
                    return Err("nested too deeply");
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(t) => append(&mut req, &stack, &t.xml10_content())?,
            Event::GeneralRef(r) => {
                let raw = format!("&{};", r.xml10_content());
                let resolved = quick_xml::escape::unescape(&raw).map_err(|_| "unknown entity")?;
                append(&mut req, &stack, &resolved)?;
            }
            Event::CData(c) => append(&mut req, &stack, &c.into_inner())?,
            Event::Eof => break,
            _ => {}
        }
    }
    if root_ns.as_deref() == Some(NS_MOBILESYNC_REQUEST) && req.schema.is_none() {
        req.schema = Some(NS_MOBILESYNC.to_string());
    }
    if stack.is_empty() && (req.email.is_some() || req.schema.is_some()) {
        Ok(req)
    } else {
        Err("no EMailAddress or AcceptableResponseSchema")
    }
}

fn append(req: &mut PoxRequest, stack: &[String], value: &str) -> Result<(), &'static str> {
    let slot = match stack.last().map(String::as_str) {
        Some("emailaddress") => &mut req.email,
        Some("acceptableresponseschema") => &mut req.schema,
        _ => return Ok(()),
    };
    let s = slot.get_or_insert_with(String::new);
    if s.len() + value.len() > 4096 {
        return Err("value too long");
    }
    s.push_str(value);
    Ok(())
}

/// The settings document (schema 2006a). `LoginName` only when the address is known (the GET
/// variant answers without it, as Delta Chat expects). `ServiceHome` is where people read more,
/// as Thunderbird's `<documentation>`.
pub fn response(cfg: &ClientConfig) -> Vec<u8> {
    envelope(NS_OUTLOOK, |w| {
        w.create_element("Account").write_inner_content(|w| {
            text(w, "AccountType", "email")?;
            text(w, "Action", "settings")?;
            // "The URL of the home page of the ISP" (MS-OXDSCLI `ServiceHome`, before `Protocol`).
            text(w, "ServiceHome", &cfg.documentation())?;
            let first_login = cfg.incoming().next().map(|s| s.username.as_str());
            for s in cfg.incoming().chain(cfg.outgoing()) {
                protocol(w, cfg, s, first_login)?;
            }
            Ok(())
        })?;
        Ok(())
    })
}

/// `<Autodiscover xmlns=…/responseschema/2006><Response xmlns=namespace>…</Response></Autodiscover>`:
/// the frame every answer (settings or error) shares.
fn envelope(namespace: &str, body: impl FnOnce(&mut super::xml::W) -> std::io::Result<()>) -> Vec<u8> {
    document(|w| {
        w.create_element("Autodiscover")
            .with_attribute(("xmlns", NS_RESPONSE))
            .write_inner_content(|w| {
                w.create_element("Response")
                    .with_attribute(("xmlns", namespace))
                    .write_inner_content(body)?;
                Ok(())
            })?;
        Ok(())
    })
}

fn protocol(
    w: &mut super::xml::W,
    cfg: &ClientConfig,
    s: &ServerView,
    first_login: Option<&str>,
) -> std::io::Result<()> {
    let (ssl, encryption) = s.security.outlook();
    let on = |b: bool| if b { "on" } else { "off" };
    w.create_element("Protocol").write_inner_content(|w| {
        text(w, "Type", s.protocol.outlook())?;
        text(w, "Server", &s.host)?;
        text(w, "Port", &s.port.to_string())?;
        if cfg.address.is_some() {
            text(w, "LoginName", &s.username)?;
        }
        text(w, "DomainRequired", "off")?;
        // A missing SPA means "on" (NTLM only) to Outlook: always say it.
        text(w, "SPA", on(s.auth.first() == Some(&Auth::Ntlm)))?;
        text(w, "SSL", ssl)?;
        text(w, "Encryption", encryption)?;
        text(w, "AuthRequired", on(s.auth.iter().any(|a| a.requires_login())))?;
        if s.protocol == Protocol::Smtp {
            text(w, "UsePOPAuth", on(first_login == Some(s.username.as_str())))?;
            text(w, "SMTPLast", "off")?;
        }
        Ok(())
    })?;
    Ok(())
}

/// An error document (MS-OXDSCLI §2.2.4.1.1.3.2): 600 invalid request, 601 no configuration of the
/// requested type, … `time` is `hh:mm:ss` of the answer, `id` identifies the server.
pub fn error(namespace: &str, code: u16, message: &str, time: &str, id: u32) -> Vec<u8> {
    envelope(namespace, |w| {
        w.create_element("Error")
            .with_attribute(("Time", time))
            .with_attribute(("Id", id.to_string().as_str()))
            .write_inner_content(|w| {
                text(w, "ErrorCode", &code.to_string())?;
                text(w, "Message", message)?;
                w.create_element("DebugData").write_empty()?;
                Ok(())
            })?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const THUNDERBIRD: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>fred&#64;example.com</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"#;

    #[test]
    fn parses_real_requests() {
        let r = parse_request(THUNDERBIRD.as_bytes()).unwrap();
        assert_eq!(r.email.as_deref(), Some("fred@example.com"));
        assert!(!r.wants_mobilesync() && !r.wants_unknown_schema());
        let lower = THUNDERBIRD
            .replace("EMailAddress", "emailaddress")
            .replace("&#64;", "&amp;");
        assert_eq!(
            parse_request(lower.as_bytes()).unwrap().email.as_deref(),
            Some("fred&example.com")
        );
        let mobile = r#"<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"><Request><EMailAddress>a@b.example</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006</AcceptableResponseSchema></Request></Autodiscover>"#;
        assert!(parse_request(mobile.as_bytes()).unwrap().wants_mobilesync());
    }

    #[test]
    fn refuses_dtds_entities_and_garbage() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><Autodiscover><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>"#;
        assert_eq!(parse_request(xxe.as_bytes()), Err("DTD not allowed"));
        let entity = "<Autodiscover><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>";
        assert_eq!(parse_request(entity.as_bytes()), Err("unknown entity"));
        for bad in [
            "",
            "<",
            "<a><b></a>",
            "\u{0}\u{1}",
            "<Autodiscover><Request></Request></Autodiscover>",
        ] {
            assert!(parse_request(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(parse_request(&[0xff, 0xfe]).is_err());
        let deep = "<a>".repeat(10_000);
        assert!(parse_request(deep.as_bytes()).is_err());
    }
}
