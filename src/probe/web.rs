//! Step 2: the documents clients fetch over HTTP(S), parsed and compared with the SRV view.

use std::sync::Arc;

use hyper::Method;
use quick_xml::events::Event;
use quick_xml::reader::Reader;

use super::http::{fetch, request};
use super::net::Resolver;
use super::{Advertised, Level, Options, Report};
use crate::settings::{Protocol, Security};
use crate::vocab::{self, AUTOCONFIG, AUTODISCOVER};

pub(super) fn check(
    opts: &Options,
    resolver: &Resolver,
    tls: &Arc<rustls::ClientConfig>,
    srv: &[Advertised],
    report: &mut Report,
) -> Vec<Advertised> {
    let d = &opts.domain;
    let query = format!("emailaddress=probe%40{d}");
    let tb_urls = [
        (
            true,
            vocab::web_host(AUTOCONFIG, d),
            format!("{}?{query}", vocab::THUNDERBIRD_PATH),
        ),
        (
            true,
            d.clone(),
            format!("{}?{query}", vocab::THUNDERBIRD_WELL_KNOWN_PATH),
        ),
        (
            false,
            vocab::web_host(AUTOCONFIG, d),
            format!("{}?{query}", vocab::THUNDERBIRD_PATH),
        ),
        (
            false,
            d.clone(),
            format!("{}?{query}", vocab::THUNDERBIRD_WELL_KNOWN_PATH),
        ),
    ];
    let mut thunderbird: Option<Vec<Advertised>> = None;
    for (https, host, path) in &tb_urls {
        let url = format!("{}://{host}{path}", if *https { "https" } else { "http" });
        let req = request(Method::GET, host, path, None, "");
        match fetch(opts, resolver, tls, *https, host, req) {
            Ok(f)
                if f.status == 200
                    && (f.content_type.starts_with("application/xml") || f.content_type.starts_with("text/xml")) =>
            {
                match parse_thunderbird(&f.body) {
                    Ok(servers) if !servers.is_empty() => {
                        let level = if *https { Level::Pass } else { Level::Warn };
                        let msg = format!(
                            "{} servers{}",
                            servers.len(),
                            if *https {
                                ""
                            } else {
                                " (plain HTTP only: an attacker on the path can change it)"
                            }
                        );
                        report.add(
                            "http",
                            format!("thunderbird {url}"),
                            level,
                            msg,
                            (!*https).then_some("serve it over HTTPS with a valid certificate"),
                        );
                        thunderbird.get_or_insert(servers);
                    }
                    Ok(_) => report.add(
                        "http",
                        format!("thunderbird {url}"),
                        Level::Fail,
                        "document lists no server",
                        None,
                    ),
                    Err(e) => report.add("http", format!("thunderbird {url}"), Level::Fail, e, None),
                }
            }
            Ok(f) if f.status == 200 => report.add(
                "http",
                format!("thunderbird {url}"),
                Level::Fail,
                format!(
                    "Content-Type `{}`: Thunderbird only parses text/xml or application/xml",
                    f.content_type
                ),
                None,
            ),
            Ok(f) => report.add(
                "http",
                format!("thunderbird {url}"),
                Level::Warn,
                format!("HTTP {}", f.status),
                None,
            ),
            Err(e) => report.add("http", format!("thunderbird {url}"), Level::Warn, e, None),
        }
    }
    if let Some(tb) = &thunderbird {
        compare(report, "thunderbird autoconfig", tb, srv);
    } else {
        report.add(
            "http",
            "thunderbird autoconfig",
            Level::Warn,
            "no URL answered with a usable document",
            Some("serve /mail/config-v1.1.xml on autoconfig.<domain>"),
        );
    }

    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>probe@{d}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"
    );
    let mut outlook = None;
    for (https, host) in [
        (true, d.clone()),
        (true, vocab::web_host(AUTODISCOVER, d)),
        (false, vocab::web_host(AUTODISCOVER, d)),
    ] {
        let url = format!("{}://{host}{}", if https { "https" } else { "http" }, vocab::POX_PATH);
        let req = request(
            Method::POST,
            &host,
            vocab::POX_PATH,
            Some("text/xml; charset=utf-8"),
            &body,
        );
        match fetch(opts, resolver, tls, https, &host, req) {
            Ok(f) if f.status == 200 => match parse_pox(&f.body) {
                Ok(servers) if !servers.is_empty() => {
                    let level = if https { Level::Pass } else { Level::Warn };
                    report.add(
                        "http",
                        format!("outlook {url}"),
                        level,
                        format!("{} servers", servers.len()),
                        None,
                    );
                    outlook = Some(servers);
                    break; // Outlook stops at the first answer.
                }
                Ok(_) => report.add(
                    "http",
                    format!("outlook {url}"),
                    Level::Fail,
                    "answer lists no Protocol",
                    None,
                ),
                Err(e) => report.add("http", format!("outlook {url}"), Level::Fail, e, None),
            },
            Ok(f) => report.add(
                "http",
                format!("outlook {url}"),
                Level::Warn,
                format!("HTTP {}", f.status),
                None,
            ),
            Err(e) => report.add("http", format!("outlook {url}"), Level::Warn, e, None),
        }
    }
    if let Some(ol) = &outlook {
        compare(report, "outlook autodiscover", ol, srv);
    }
    thunderbird.or(outlook).unwrap_or_default()
}

/// Same servers, ports and TLS modes as the SRV records? Compared in SRV's own terms, since a
/// plain SRV label stands for both STARTTLS and cleartext. (Order is not compared: SRV has its own.)
fn compare(report: &mut Report, what: &str, doc: &[Advertised], srv: &[Advertised]) {
    if srv.is_empty() {
        return;
    }
    // Servers of `list` that `other` does not publish under the same SRV name.
    let only = |list: &[Advertised], other: &[Advertised]| -> Vec<String> {
        let mut v: Vec<&Advertised> = list
            .iter()
            .filter(|s| !other.iter().any(|o| o.srv_key() == s.srv_key()))
            .collect();
        v.sort();
        v.dedup();
        v.iter().map(|s| s.to_string()).collect()
    };
    let (only_doc, only_srv) = (only(doc, srv), only(srv, doc));
    if only_doc.is_empty() && only_srv.is_empty() {
        report.add(
            "http",
            what,
            Level::Pass,
            "same servers, ports and TLS modes as the SRV records",
            None,
        );
    } else {
        report.add(
            "http",
            what,
            Level::Fail,
            format!(
                "disagrees with the SRV records: only here: [{}]; only in SRV: [{}]",
                only_doc.join(", "),
                only_srv.join(", ")
            ),
            Some("generate both from one source (mailconf serves both from its settings)"),
        );
    }
}

/// Every occurrence of an element named in `names` (case-insensitive) as a list of
/// (relative path, text) pairs: attributes as `@name`, descendants as `a/b`. Also `errorcode`
/// text anywhere, so Autodiscover error documents are recognised.
type Block = Vec<(String, String)>;

fn xml_blocks(body: &[u8], names: &[&str]) -> Result<(Vec<Block>, Option<String>), String> {
    let text = std::str::from_utf8(body).map_err(|_| "document is not UTF-8")?;
    let mut r = Reader::from_str(text);
    r.config_mut().trim_text(true);
    let mut stack: Vec<String> = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    let mut open: Option<usize> = None; // depth of the block element being read
    let mut error = None;
    loop {
        match r.read_event().map_err(|e| format!("malformed XML: {e}"))? {
            Event::DocType(_) => return Err("document has a DTD".into()),
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_ascii_lowercase();
                stack.push(name.clone());
                if stack.len() > 32 {
                    return Err("nested too deeply".into());
                }
                if open.is_none() && names.contains(&name.as_str()) {
                    open = Some(stack.len());
                    blocks.push(Vec::new());
                }
                if open == Some(stack.len()) {
                    for a in e.attributes().flatten() {
                        let key = format!("@{}", a.key.local_name().as_ref());
                        let value = a
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map(|v| v.into_owned())
                            .unwrap_or_default();
                        blocks.last_mut().expect("opened").push((key, value));
                    }
                }
            }
            Event::End(_) => {
                if open == Some(stack.len()) {
                    open = None;
                }
                stack.pop();
            }
            Event::Text(t) => {
                let value = t.xml10_content().into_owned();
                if stack.last().is_some_and(|n| n == "errorcode") {
                    error = Some(value.clone());
                }
                if let Some(depth) = open {
                    blocks
                        .last_mut()
                        .expect("opened")
                        .push((stack[depth..].join("/"), value));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok((blocks, error))
}

pub(crate) fn parse_thunderbird(body: &[u8]) -> Result<Vec<Advertised>, String> {
    let (blocks, _) = xml_blocks(body, &["incomingserver", "outgoingserver"])?;
    let mut servers = Vec::new();
    for b in blocks {
        let get = |k: &str| b.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        // Other server types (jmap, ews…) are not ours to check.
        let Some(protocol) = get("@type").and_then(Protocol::from_thunderbird) else {
            continue;
        };
        let socket_type = get("sockettype");
        let Some(security) = socket_type.and_then(Security::from_thunderbird) else {
            return Err(format!("socketType {socket_type:?} is not SSL, STARTTLS or plain"));
        };
        let host = get("hostname").ok_or("server without hostname")?.to_ascii_lowercase();
        let port = get("port")
            .and_then(|p| p.parse().ok())
            .ok_or("server without a valid port")?;
        servers.push(Advertised {
            protocol,
            host,
            port,
            security,
        });
    }
    Ok(servers)
}

pub(crate) fn parse_pox(body: &[u8]) -> Result<Vec<Advertised>, String> {
    let (blocks, error) = xml_blocks(body, &["protocol"])?;
    if let Some(code) = error {
        return Err(format!("Autodiscover error {code}"));
    }
    let mut servers = Vec::new();
    for b in blocks {
        let get = |k: &str| b.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        let Some(protocol) = get("type").and_then(Protocol::from_outlook) else {
            continue;
        };
        let security = Security::from_outlook(get("encryption"), get("ssl"));
        let host = get("server").ok_or("Protocol without Server")?.to_ascii_lowercase();
        let port = get("port")
            .and_then(|p| p.parse().ok())
            .ok_or("Protocol without a valid Port")?;
        servers.push(Advertised {
            protocol,
            host,
            port,
            security,
        });
    }
    Ok(servers)
}
