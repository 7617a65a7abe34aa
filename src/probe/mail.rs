//! Step 3: talk to each advertised server the way a client would.

use std::sync::Arc;
use std::time::Duration;

use super::net::{self, Conn, Lines, Resolver};
use super::reply::{Ehlo, SmtpReply, imap_capabilities, pop3_capabilities, smtp_line};
use super::{Advertised, Level, Report};
use crate::settings::{Protocol, Security};

/// What one dialogue found; turned into findings by `check`.
#[derive(Default)]
struct Outcome {
    fails: Vec<(String, Option<&'static str>)>,
    warns: Vec<(String, Option<&'static str>)>,
    notes: Vec<String>,
}

impl Outcome {
    fn fail(&mut self, m: impl Into<String>, fix: Option<&'static str>) {
        self.fails.push((m.into(), fix));
    }
    fn warn(&mut self, m: impl Into<String>, fix: Option<&'static str>) {
        self.warns.push((m.into(), fix));
    }
}

pub(super) fn check(
    s: &Advertised,
    resolver: &Resolver,
    tls: &Arc<rustls::ClientConfig>,
    timeout: Duration,
    report: &mut Report,
) {
    let subject = s.to_string();
    let ip = match resolver.addresses(&s.host) {
        Ok(ips) => ips[0],
        Err(e) => {
            return report.add(
                "mail",
                subject,
                Level::Fail,
                e,
                Some("publish A/AAAA for the server name"),
            );
        }
    };
    let tcp = match net::connect(ip, s.port, timeout) {
        Ok(t) => t,
        Err(e) => {
            return report.add(
                "mail",
                subject,
                Level::Fail,
                e,
                Some("check the port in the published settings and the firewall"),
            );
        }
    };
    let mut o = Outcome::default();
    let result = match s.protocol {
        Protocol::Smtp => smtp(s, tcp, tls, &mut o),
        Protocol::Imap => imap(s, tcp, tls, &mut o),
        Protocol::Pop3 => pop3(s, tcp, tls, &mut o),
    };
    if let Err(e) = result {
        o.fail(e, None);
    }
    for (m, fix) in o.fails {
        report.add("mail", &subject, Level::Fail, m, fix);
    }
    for (m, fix) in o.warns {
        report.add("mail", &subject, Level::Warn, m, fix);
    }
    if !report
        .findings
        .iter()
        .any(|f| f.subject == subject && f.level != Level::Pass)
    {
        report.add("mail", subject, Level::Pass, o.notes.join("; "), None);
    }
}

/// Implicit TLS first when advertised; a handshake failure on 465/993/995 is the classic
/// "the port does not speak TLS".
fn open(
    s: &Advertised,
    tcp: std::net::TcpStream,
    tls: &Arc<rustls::ClientConfig>,
    o: &mut Outcome,
) -> Result<Lines, String> {
    if s.security == Security::Tls {
        let conn = net::tls(tcp, &s.host, tls).map_err(|e| format!("implicit TLS on port {}: {e}", s.port))?;
        o.notes.push("implicit TLS, certificate valid for the host".into());
        Ok(Lines::new(conn))
    } else {
        Ok(Lines::new(Conn::Plain(tcp)))
    }
}

fn upgrade(lines: Lines, s: &Advertised, tls: &Arc<rustls::ClientConfig>, o: &mut Outcome) -> Result<Lines, String> {
    let tcp = lines.into_tcp()?;
    let conn = net::tls(tcp, &s.host, tls).map_err(|e| format!("STARTTLS handshake: {e}"))?;
    o.notes.push("STARTTLS, certificate valid for the host".into());
    Ok(Lines::new(conn))
}

fn smtp_read(lines: &mut Lines) -> Result<SmtpReply, String> {
    let mut acc = Vec::new();
    for _ in 0..512 {
        if let Some(r) = smtp_line(&mut acc, &lines.line()?)? {
            return Ok(r);
        }
    }
    Err("reply longer than 512 lines".into())
}

fn smtp(
    s: &Advertised,
    tcp: std::net::TcpStream,
    tls: &Arc<rustls::ClientConfig>,
    o: &mut Outcome,
) -> Result<(), String> {
    let mut lines = open(s, tcp, tls, o)?;
    let greeting = smtp_read(&mut lines)?;
    if greeting.code != 220 {
        return Err(format!("greeting {} instead of 220", greeting.code));
    }
    let greeted = Ehlo::parse(&greeting).name.to_ascii_lowercase();
    if greeted != s.host {
        o.warn(
            format!("greets as `{greeted}` but is published as `{}`", s.host),
            Some("make the server announce its published name, or publish the name it uses"),
        );
    }
    lines.send("EHLO probe.mailconf.invalid")?;
    let ehlo = Ehlo::parse(&expect(smtp_read(&mut lines)?, 250, "EHLO")?);
    let ehlo = if s.security == Security::Starttls {
        if !ehlo.has("STARTTLS") {
            o.fail(
                "STARTTLS is not offered",
                Some("enable STARTTLS, or publish implicit TLS (465) instead"),
            );
            return Ok(());
        }
        if ehlo.starttls_only_on_last_line() {
            o.warn(
                "STARTTLS is only on the last EHLO line (`250 STARTTLS`): some clients look for `250-STARTTLS` and miss it",
                Some("let another capability follow STARTTLS, or publish implicit TLS (465) first"),
            );
        }
        if !ehlo.auth_mechanisms().is_empty() {
            o.fail(
                format!(
                    "AUTH {} is offered before TLS on a plaintext connection",
                    ehlo.auth_mechanisms().join(" ")
                ),
                Some("offer AUTH only after STARTTLS (Postfix: smtpd_tls_auth_only = yes)"),
            );
        }
        lines.send("STARTTLS")?;
        expect(smtp_read(&mut lines)?, 220, "STARTTLS")?;
        lines = upgrade(lines, s, tls, o)?;
        lines.send("EHLO probe.mailconf.invalid")?;
        Ehlo::parse(&expect(smtp_read(&mut lines)?, 250, "EHLO after STARTTLS")?)
    } else {
        ehlo
    };
    let mechs = ehlo.auth_mechanisms();
    if mechs.is_empty() {
        o.fail(
            "no AUTH offered: a submission server must authenticate senders (RFC 6409 §4.3)",
            Some("enable SASL AUTH on the submission port"),
        );
    } else {
        o.notes.push(format!("AUTH {}", mechs.join(" ")));
    }
    if s.security == Security::None {
        o.warn(
            "cleartext submission: passwords cross the network unencrypted",
            Some("offer TLS (RFC 8314)"),
        );
    }
    let _ = lines.send("QUIT");
    Ok(())
}

fn expect(r: SmtpReply, code: u16, what: &str) -> Result<SmtpReply, String> {
    if r.code == code {
        Ok(r)
    } else {
        Err(format!("{what} answered {} {}", r.code, r.lines.join(" ")))
    }
}

/// Read IMAP lines until the tagged completion; return the capabilities seen and whether OK.
fn imap_command(lines: &mut Lines, tag: &str, cmd: &str) -> Result<(Vec<String>, bool), String> {
    lines.send(&format!("{tag} {cmd}"))?;
    let mut caps = Vec::new();
    for _ in 0..512 {
        let l = lines.line()?;
        if let Some(c) = imap_capabilities(&l) {
            caps = c;
        }
        if let Some(rest) = l.strip_prefix(&format!("{tag} ")) {
            return Ok((caps, rest.to_ascii_uppercase().starts_with("OK")));
        }
    }
    Err(format!("no completion for {cmd}"))
}

fn imap(
    s: &Advertised,
    tcp: std::net::TcpStream,
    tls: &Arc<rustls::ClientConfig>,
    o: &mut Outcome,
) -> Result<(), String> {
    let mut lines = open(s, tcp, tls, o)?;
    let greeting = lines.line()?;
    if !greeting.to_ascii_uppercase().starts_with("* OK") && !greeting.to_ascii_uppercase().starts_with("* PREAUTH") {
        return Err(format!(
            "greeting is not `* OK`: {}",
            greeting.chars().take(80).collect::<String>()
        ));
    }
    let (mut caps, _) = imap_command(&mut lines, "a1", "CAPABILITY")?;
    if s.security == Security::Starttls {
        if !caps.iter().any(|c| c == "STARTTLS") {
            o.fail(
                "STARTTLS is not offered",
                Some("enable STARTTLS, or publish implicit TLS (993) instead"),
            );
            return Ok(());
        }
        let auth: Vec<&String> = caps.iter().filter(|c| c.starts_with("AUTH=")).collect();
        if !caps.iter().any(|c| c == "LOGINDISABLED") {
            let what = if auth.is_empty() {
                "LOGIN".to_string()
            } else {
                auth.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
            };
            o.fail(
                format!("login ({what}) is allowed before TLS on a plaintext connection"),
                Some("advertise LOGINDISABLED until STARTTLS (Dovecot: disable_plaintext_auth = yes)"),
            );
        }
        let (_, ok) = imap_command(&mut lines, "a2", "STARTTLS")?;
        if !ok {
            return Err("STARTTLS refused".into());
        }
        lines = upgrade(lines, s, tls, o)?;
        caps = imap_command(&mut lines, "a3", "CAPABILITY")?.0;
    }
    if caps.iter().any(|c| c == "LOGINDISABLED") {
        o.fail("LOGINDISABLED even over TLS: clients cannot log in", None);
    } else {
        let auth: Vec<&str> = caps.iter().filter_map(|c| c.strip_prefix("AUTH=")).collect();
        o.notes.push(if auth.is_empty() {
            "LOGIN".into()
        } else {
            format!("AUTH {}", auth.join(" "))
        });
    }
    let _ = lines.send("a9 LOGOUT");
    Ok(())
}

fn pop3_capa(lines: &mut Lines) -> Result<Vec<String>, String> {
    lines.send("CAPA")?;
    if !lines.line()?.starts_with("+OK") {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for _ in 0..512 {
        let l = lines.line()?;
        if l == "." {
            return Ok(pop3_capabilities(&out));
        }
        out.push(l);
    }
    Err("CAPA never ended".into())
}

fn pop3(
    s: &Advertised,
    tcp: std::net::TcpStream,
    tls: &Arc<rustls::ClientConfig>,
    o: &mut Outcome,
) -> Result<(), String> {
    let mut lines = open(s, tcp, tls, o)?;
    if !lines.line()?.starts_with("+OK") {
        return Err("greeting is not +OK".into());
    }
    let mut caps = pop3_capa(&mut lines)?;
    if s.security == Security::Starttls {
        if !caps.iter().any(|c| c == "STLS") {
            o.fail(
                "STLS is not offered",
                Some("enable STLS, or publish implicit TLS (995) instead"),
            );
            return Ok(());
        }
        if caps.iter().any(|c| c == "USER" || c == "SASL") {
            o.fail(
                "login (USER/SASL) is offered before TLS on a plaintext connection",
                Some("offer logins only after STLS"),
            );
        }
        lines.send("STLS")?;
        if !lines.line()?.starts_with("+OK") {
            return Err("STLS refused".into());
        }
        lines = upgrade(lines, s, tls, o)?;
        caps = pop3_capa(&mut lines)?;
    }
    o.notes.push(format!("CAPA {}", caps.join(" ")));
    let _ = lines.send("QUIT");
    Ok(())
}
