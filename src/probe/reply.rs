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
    // Reply-code = %x32-35 %x30-35 %x30-39 (RFC 5321 §4.2): `045` or `260` is no reply.
    if bytes.len() < 3
        || !(b'2'..=b'5').contains(&bytes[0])
        || !(b'0'..=b'5').contains(&bytes[1])
        || !bytes[2].is_ascii_digit()
    {
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
        // Codes outside RFC 5321's grammar (first digit 2–5, second 0–5), found by fuzzing:
        // `045` once parsed as code 45.
        for bad in ["045 x", "199 x", "600 x", "260 x", "0\r\n"] {
            assert!(smtp_reply(bad).is_err(), "{bad:?}");
        }
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

    /// xorshift64: a fixed seed keeps failures reproducible without a crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    /// Reply text: anything but CR and LF, including separators, digits and non-ASCII.
    fn random_text(rng: &mut Rng) -> String {
        let len = rng.below(12);
        (0..len)
            .map(|_| rng.pick(&["a", "Z", " ", "-", "7", "STARTTLS", "ä", "€", "\t", ".", "250"]))
            .collect()
    }

    /// A valid reply: random reply code (RFC 5321 §4.2's grammar), 1–8 lines, `-` on all but the last, the last
    /// either `NNN text` or a bare `NNN`. Returns the lines and the reply they must parse to.
    fn random_reply(rng: &mut Rng) -> (Vec<String>, SmtpReply) {
        let code = ((2 + rng.below(4)) * 100 + rng.below(6) * 10 + rng.below(10)) as u16;
        let n = 1 + rng.below(8);
        let mut texts: Vec<String> = (0..n).map(|_| random_text(rng)).collect();
        let bare_last = rng.below(4) == 0;
        if bare_last {
            texts[n - 1].clear();
        }
        let lines = texts
            .iter()
            .enumerate()
            .map(|(i, t)| match (i + 1 == n, bare_last) {
                (false, _) => format!("{code:03}-{t}"),
                (true, false) => format!("{code:03} {t}"),
                (true, true) => format!("{code:03}"),
            })
            .collect();
        (lines, SmtpReply { code, lines: texts })
    }

    /// Valid replies parse to exactly the generated code and lines, line by line and whole.
    #[test]
    fn random_valid_replies_parse_exactly() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let (lines, want) = random_reply(&mut rng);
            let mut acc = Vec::new();
            for (i, line) in lines.iter().enumerate() {
                let got = smtp_line(&mut acc, line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
                if i + 1 < lines.len() {
                    assert_eq!(got, None, "{lines:?} ended early at {line:?}");
                } else {
                    assert_eq!(got.as_ref(), Some(&want), "{lines:?}");
                }
            }
            assert!(acc.is_empty(), "a complete reply leaves nothing behind");
            assert_eq!(smtp_reply(&(lines.join("\r\n") + "\r\n")), Ok(want));
        }
    }

    /// Each kind of damage to a valid reply is rejected at the damaged line (or, for a missing
    /// final line, never completes); nothing panics, even with a multi-byte character where the
    /// separator belongs.
    #[test]
    fn random_invalid_replies_are_rejected() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut seen = [0usize; 5];
        for _ in 0..20_000 {
            let (mut lines, want) = random_reply(&mut rng);
            let at = rng.below(lines.len());
            let kind = match rng.below(5) {
                3 if lines.len() == 1 => 4, // no later line to change the code on
                k => k,
            };
            seen[kind] += 1;
            let line = &mut lines[at];
            match kind {
                // A digit of the code becomes something else.
                0 => {
                    let i = rng.below(3);
                    line.replace_range(i..=i, rng.pick(&["x", " ", "-", "ä", ""]));
                }
                // Shorter than a code (but not empty: `smtp_reply` skips blank lines).
                1 => line.truncate(1 + rng.below(2)),
                // A separator that is neither space nor `-`.
                2 => {
                    let bad = rng.pick(&["x", "_", "\t", "ä", "€", "0"]);
                    if line.len() == 3 {
                        line.push_str(bad);
                    } else {
                        line.replace_range(3..4, bad);
                    }
                }
                // A different code on a later line.
                3 => {
                    let at = 1 + rng.below(lines.len() - 1);
                    let other = (want.code + 1 + rng.below(998) as u16) % 1000;
                    lines[at].replace_range(0..3, &format!("{other:03}"));
                    feed_until_error(&lines, at);
                    continue;
                }
                // The final line is missing: never complete, and not a reply as a whole.
                _ => {
                    lines.pop();
                    let mut acc = Vec::new();
                    for l in &lines {
                        assert_eq!(smtp_line(&mut acc, l), Ok(None), "{lines:?}");
                    }
                    assert!(smtp_reply(&lines.join("\r\n")).is_err(), "{lines:?}");
                    continue;
                }
            }
            feed_until_error(&lines, at);
        }
        assert!(
            seen.iter().all(|&n| n > 3000),
            "every kind of damage is exercised: {seen:?}"
        );
    }

    /// Lines before `bad` are accepted as continuations; line `bad` is an error.
    fn feed_until_error(lines: &[String], bad: usize) {
        let mut acc = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let got = smtp_line(&mut acc, l);
            if i < bad {
                assert_eq!(got, Ok(None), "{lines:?}");
            } else {
                assert!(got.is_err(), "{lines:?}: line {bad} should be rejected, got {got:?}");
                break;
            }
        }
        assert!(smtp_reply(&(lines.join("\r\n") + "\r\n")).is_err(), "{lines:?}");
    }

    /// Arbitrary bytes never panic, and a completed reply always comes from a line that starts
    /// with its code followed by a space or nothing.
    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for _ in 0..20_000 {
            let len = rng.below(40);
            let bytes: Vec<u8> = (0..len)
                .map(|_| b"0123456789- \r\nSTARTLS\xc3\xa4"[rng.below(21)])
                .collect();
            let text = String::from_utf8_lossy(&bytes);
            let mut acc = Vec::new();
            for line in text.split("\r\n") {
                if let Ok(Some(r)) = smtp_line(&mut acc, line) {
                    assert_eq!(line.get(..3).and_then(|c| c.parse().ok()), Some(r.code), "{line:?}");
                    assert!(matches!(line.as_bytes().get(3), None | Some(b' ')), "{line:?}");
                }
            }
            let _ = smtp_reply(&text);
        }
    }
}
