//! Parsers for what mail servers say: SMTP replies (RFC 5321 §4.2), IMAP CAPABILITY (RFC 9051
//! §7.2.2), POP3 CAPA (RFC 2449). Pure functions over text, so the tricky cases — multi-line
//! replies, the continuation `-` versus the final space, STARTTLS on the last line — are tested
//! on the replies quoted in the source articles.

/// One complete SMTP reply: the code and the text of every line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpReply {
    pub code: u16,
    pub lines: Vec<String>,
}

/// Feed SMTP reply lines (without CRLF) until the final line (`NNN ` or bare `NNN`). Returns
/// `Ok(None)` while more lines are needed, `Err` for a line that is not a reply line or a code
/// that changes mid-reply.
pub fn smtp_line(acc: &mut Vec<(u16, String)>, line: &str) -> Result<Option<SmtpReply>, String> {
    let bytes = line.as_bytes();
    if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
        return Err(format!("not an SMTP reply line: {:?}", truncate(line)));
    }
    let code: u16 = line[..3].parse().map_err(|_| "bad code".to_string())?;
    if let Some((first, _)) = acc.first()
        && *first != code
    {
        return Err(format!("reply code changed from {first} to {code} inside one reply"));
    }
    // Byte 3 is the separator; only an ASCII one makes byte 4 a character boundary.
    let (sep, text) = match bytes.get(3) {
        None => (b' ', ""),
        Some(&s) if s == b' ' || s == b'-' => (s, &line[4..]),
        Some(_) => return Err(format!("bad separator after reply code: {:?}", truncate(line))),
    };
    acc.push((code, text.to_string()));
    match sep {
        b' ' => Ok(Some(SmtpReply {
            code,
            lines: acc.drain(..).map(|(_, t)| t).collect(),
        })),
        b'-' => Ok(None),
        _ => Err(format!("bad separator after reply code: {:?}", truncate(line))),
    }
}

/// Parse a whole multi-line SMTP reply from text (for tests and fixtures).
pub fn smtp_reply(text: &str) -> Result<SmtpReply, String> {
    let mut acc = Vec::new();
    for line in text.split("\r\n").flat_map(|l| l.split('\n')).filter(|l| !l.is_empty()) {
        if let Some(r) = smtp_line(&mut acc, line)? {
            return Ok(r);
        }
    }
    Err("reply ended without a final line".into())
}

/// EHLO keywords (upper-case) with their parameters; the first line is the greeting name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ehlo {
    pub name: String,
    pub keywords: Vec<(String, Vec<String>)>,
}

impl Ehlo {
    pub fn parse(reply: &SmtpReply) -> Ehlo {
        let name = reply
            .lines
            .first()
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_default()
            .to_string();
        let keywords = reply
            .lines
            .iter()
            .skip(1)
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let kw = words.next()?.to_ascii_uppercase();
                Some((kw, words.map(str::to_string).collect()))
            })
            .collect();
        Ehlo { name, keywords }
    }

    pub fn has(&self, kw: &str) -> bool {
        self.keywords.iter().any(|(k, _)| k == kw)
    }

    /// STARTTLS is only the final line (`250 STARTTLS`): clients that look for `250-STARTTLS`
    /// miss it (Android's stock mail client 2009–2011, seed article 004).
    pub fn starttls_only_on_last_line(&self) -> bool {
        self.keywords.len()
            == 1 + self
                .keywords
                .iter()
                .position(|(k, _)| k == "STARTTLS")
                .unwrap_or(usize::MAX - 1)
            && self.keywords.last().is_some_and(|(k, _)| k == "STARTTLS")
    }

    pub fn auth_mechanisms(&self) -> Vec<String> {
        self.keywords
            .iter()
            .filter(|(k, _)| k == "AUTH")
            .flat_map(|(_, p)| p.iter().map(|m| m.to_ascii_uppercase()))
            .collect()
    }
}

/// IMAP capabilities from untagged `* CAPABILITY …` or a greeting's `[CAPABILITY …]` code.
pub fn imap_capabilities(line: &str) -> Option<Vec<String>> {
    let upper = line.to_ascii_uppercase();
    let start = upper.find("CAPABILITY ")? + "CAPABILITY ".len();
    let rest = &upper[start..];
    let end = rest.find(']').unwrap_or(rest.len());
    Some(rest[..end].split_whitespace().map(str::to_string).collect())
}

/// POP3 CAPA response lines (after `+OK`, up to the terminating `.`), upper-cased keywords.
pub fn pop3_capabilities(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_ascii_uppercase)
        .collect()
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AOL banner quoted in seed article 004: eight `220-` lines, one final `220 `.
    const AOL: &str = "220-mtain-me06.r1000.mx.aol.com ESMTP Internet Inbound\r\n220-AOL and its affiliated companies do not\r\n220-authorize the use of its proprietary computers and computer\r\n220-networks to accept, transmit, or distribute unsolicited bulk\r\n220-e-mail sent from the internet.\r\n220-Effective immediately:\r\n220-AOL may no longer accept connections from IP addresses\r\n220 which no do not have reverse-DNS (PTR records) assigned.\r\n";

    #[test]
    fn aol_multiline_banner() {
        let r = smtp_reply(AOL).unwrap();
        assert_eq!(r.code, 220);
        assert_eq!(r.lines.len(), 8);
        assert_eq!(Ehlo::parse(&r).name, "mtain-me06.r1000.mx.aol.com");
    }

    #[test]
    fn starttls_on_the_last_line() {
        // Uberspace's reply from the article: STARTTLS last, AUTH offered before TLS.
        let r = smtp_reply(
            "250-crux.uberspace.de\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-AUTH LOGIN PLAIN\r\n250 STARTTLS\r\n",
        )
        .unwrap();
        let e = Ehlo::parse(&r);
        assert_eq!(e.name, "crux.uberspace.de");
        assert!(e.has("STARTTLS") && e.starttls_only_on_last_line());
        assert_eq!(e.auth_mechanisms(), ["LOGIN", "PLAIN"]);
        // The workaround from the article: a dummy last line.
        let r = smtp_reply("250-crux.uberspace.de\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-AUTH LOGIN PLAIN\r\n250-STARTTLS\r\n250 X-NOTHING\r\n").unwrap();
        let e = Ehlo::parse(&r);
        assert!(e.has("STARTTLS") && !e.starttls_only_on_last_line());
        let single = Ehlo::parse(&smtp_reply("250 crux.uberspace.de\r\n").unwrap());
        assert!(!single.has("STARTTLS") && !single.starttls_only_on_last_line());
    }

    #[test]
    fn bad_replies() {
        assert!(smtp_reply("hello\r\n").is_err());
        assert!(smtp_reply("250-a\r\n251 b\r\n").is_err());
        assert!(smtp_reply("250-a\r\n").is_err());
        assert!(smtp_reply("250xa\r\n").is_err());
        assert_eq!(
            smtp_reply("250\r\n").unwrap(),
            SmtpReply {
                code: 250,
                lines: vec![String::new()]
            }
        );
    }

    #[test]
    fn imap_and_pop3() {
        assert_eq!(
            imap_capabilities("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready").unwrap(),
            ["IMAP4REV1", "STARTTLS", "LOGINDISABLED"]
        );
        assert_eq!(
            imap_capabilities("* CAPABILITY IMAP4rev1 AUTH=PLAIN").unwrap(),
            ["IMAP4REV1", "AUTH=PLAIN"]
        );
        assert!(imap_capabilities("* OK ready").is_none());
        assert_eq!(
            pop3_capabilities(&["USER".into(), "stls".into(), "SASL PLAIN".into()]),
            ["USER", "STLS", "SASL"]
        );
    }

    /// Randomised input never panics and never yields a reply from a non-reply line.
    #[test]
    fn fuzz_smtp_lines() {
        let mut seed = 0x9e37_79b9u32;
        let alphabet = b"0123456789- \r\nSTARTLS\xc3\xa4";
        for _ in 0..20_000 {
            let mut acc = Vec::new();
            let mut text = Vec::new();
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            for j in 0..(seed % 40) {
                text.push(alphabet[((seed >> (j % 24)) as usize + j as usize) % alphabet.len()]);
            }
            let s = String::from_utf8_lossy(&text);
            for line in s.split("\r\n") {
                if let Ok(Some(r)) = smtp_line(&mut acc, line) {
                    assert!(line.len() >= 3 && r.code >= 100 || line.len() == 3);
                }
            }
            let _ = smtp_reply(&s);
        }
    }
}
