//! A large settings file split at its `[[domain]]` headers, so that each domain is parsed and
//! validated on its own, on every core, and never as one document tree.
//!
//! At 100,000 domains the whole-file parse held a tree of the entire file (~0.9 GB for 38 MB
//! of TOML) and ran on one core. Split, a domain's tree lives only while it is checked. The
//! split is deliberately strict: a layout it does not recognise (a `[domain.…]` table outside
//! a `[[domain]]`, a line that looks like a header inside a multi-line value) gives `None` or a
//! piece that does not parse, and the caller then parses the whole file as before, so every
//! error message is the whole-file parser's own.

use std::ops::Range;

/// Files with fewer domains are parsed whole: splitting only pays off for large ones.
pub(super) const MIN_DOMAINS: usize = 64;

/// The pieces of a settings file.
pub(super) struct Split {
    /// Everything but the domains: the text up to the first `[[domain]]`, or, when other tables
    /// follow domains, the whole text with the domains blanked out (offsets stay valid).
    pub rest: String,
    /// Byte range of every `[[domain]]` table with its sub-tables, in file order.
    pub domains: Vec<Range<usize>>,
}

/// What a stretch of the file is.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Section {
    /// Anything but a domain: `[server]`, providers, sources.
    Rest,
    /// One `[[domain]]` with its sub-tables.
    Domain,
}

/// The split as a walk over lines, for text in memory ([`split`]) and for a file read line by
/// line (a reload, see `validate::parse_file_reusing`).
#[derive(Default)]
pub(super) struct Splitter {
    section: Option<Section>,
    section_start: usize,
    in_string: Option<&'static str>,
}

impl Splitter {
    /// The next line, at byte offset `at`: the section it closes, if it opens a new one (the
    /// first section is `Rest`, possibly empty); `Err` for a layout that must be parsed whole.
    pub fn line(&mut self, at: usize, line: &str) -> Result<Option<(Section, Range<usize>)>, ()> {
        let section = *self.section.get_or_insert(Section::Rest);
        if let Some(open) = self.in_string {
            self.in_string = multiline_after(line, Some(open));
            return Ok(None);
        }
        let trimmed = line.trim_start();
        if !trimmed.starts_with('[') {
            // Only a line with a triple quote can open a multi-line string.
            if has_triple_quote(line) {
                self.in_string = multiline_after(line, None);
            }
            return Ok(None);
        }
        if has_triple_quote(line) {
            // A header opens no string, but a line of a multi-line array might: parse whole.
            return Err(());
        }
        let written = trimmed.split('#').next().unwrap_or_default().trim_end();
        // Headers are nearly always written without inner spaces: no copy then.
        let header: std::borrow::Cow<str> = if written.contains(char::is_whitespace) {
            written
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .into()
        } else {
            written.into()
        };
        let next = if header == "[[domain]]" {
            Section::Domain
        } else if header.starts_with("[domain.") || header.starts_with("[[domain.") {
            return if section == Section::Domain { Ok(None) } else { Err(()) };
        } else {
            Section::Rest
        };
        if section == Section::Rest && next == Section::Rest {
            return Ok(None);
        }
        let closed = (section, self.section_start..at);
        self.section = Some(next);
        self.section_start = at;
        Ok(Some(closed))
    }

    /// The last section, given the length of the text; `Err` inside an unterminated string.
    pub fn finish(self, len: usize) -> Result<(Section, Range<usize>), ()> {
        if self.in_string.is_some() {
            return Err(());
        }
        Ok((self.section.unwrap_or(Section::Rest), self.section_start..len))
    }
}

/// Split `text`, or `None` when it should be parsed whole: always when it has fewer than
/// `min_domains` domains ([`MIN_DOMAINS`] when serving; the fuzz target splits small files, so
/// that each input is cheap).
pub(super) fn split(text: &str, min_domains: usize) -> Option<Split> {
    let mut domains: Vec<Range<usize>> = Vec::new();
    let mut rest: Vec<Range<usize>> = Vec::new();
    let mut splitter = Splitter::default();
    let mut offset = 0;
    let mut push = |(section, piece): (Section, Range<usize>)| match section {
        Section::Domain => domains.push(piece),
        Section::Rest => rest.push(piece),
    };
    for line in text.split_inclusive('\n') {
        let at = offset;
        offset += line.len();
        if let Some(closed) = splitter.line(at, line).ok()? {
            push(closed);
        }
    }
    push(splitter.finish(text.len()).ok()?);
    if domains.len() < min_domains {
        return None;
    }
    let first = domains[0].start;
    let rest = if rest.iter().all(|r| r.end <= first) {
        text[..first].to_string()
    } else {
        let mut blanked = text.as_bytes().to_vec();
        for d in &domains {
            for b in &mut blanked[d.clone()] {
                if *b != b'\n' {
                    *b = b' ';
                }
            }
        }
        String::from_utf8(blanked).ok()?
    };
    Some(Split { rest, domains })
}

/// The multi-line string `line` leaves open (as its closing delimiter), starting inside `open`.
/// TOML 1.0's strings: basic `"…"` with backslash escapes, literal `'…'`, their multi-line forms
/// `"""…"""` and `'''…'''` (up to two more quotes before the closing delimiter are content),
/// and comments, from a `#` outside any string to the end of the line, whose quotes are text.
/// A line the parser rejects needs no care here: its piece does not parse either.
fn multiline_after(line: &str, mut open: Option<&'static str>) -> Option<&'static str> {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match open {
            Some(delim) => {
                let q = delim.as_bytes()[0];
                if q == b'"' && b[i] == b'\\' {
                    i += 2;
                } else if b[i..].starts_with(delim.as_bytes()) {
                    i += 3;
                    while i < b.len() && b[i] == q {
                        i += 1;
                    }
                    open = None;
                } else {
                    i += 1;
                }
            }
            None => match b[i] {
                b'#' => return None,
                q @ (b'"' | b'\'') if b[i..].starts_with(&[q, q, q]) => {
                    open = Some(if q == b'"' { "\"\"\"" } else { "'''" });
                    i += 3;
                }
                q @ (b'"' | b'\'') => {
                    // A one-line string, to its closing quote.
                    i += 1;
                    while i < b.len() && b[i] != q {
                        i += if q == b'"' && b[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
                _ => i += 1,
            },
        }
    }
    open
}

/// Whether `line` may open or close a multi-line string: most lines do not, and this is
/// cheaper than counting the delimiters on every line of a 40 MB file.
fn has_triple_quote(line: &str) -> bool {
    line.as_bytes()
        .windows(3)
        .any(|w| (w[0] == b'"' || w[0] == b'\'') && w[0] == w[1] && w[1] == w[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains(n: usize) -> String {
        (0..n)
            .map(|i| format!("[[domain]]\nname = \"d{i}.example\"\nprovider = \"p\"\n[domain.dns]\nttl = 60\n\n"))
            .collect()
    }

    #[test]
    fn splits_at_domain_headers() {
        let text = format!("[server]\n[provider.p]\ndisplay_name = \"P\"\n{}", domains(70));
        let s = split(&text, MIN_DOMAINS).expect("split");
        assert_eq!(s.domains.len(), 70);
        assert!(s.rest.ends_with("display_name = \"P\"\n"));
        assert!(text[s.domains[3].clone()].starts_with("[[domain]]\nname = \"d3.example\""));
        assert!(text[s.domains[3].clone()].contains("[domain.dns]\nttl = 60"));
    }

    #[test]
    fn tables_after_domains_stay_in_place() {
        let text = format!("{}[provider.p]\ndisplay_name = \"P\"\n", domains(70));
        let s = split(&text, MIN_DOMAINS).expect("split");
        assert_eq!(s.rest.len(), text.len());
        assert!(s.rest.trim_start().starts_with("[provider.p]"));
        assert_eq!(s.rest.find("[provider.p]"), text.find("[provider.p]"));
    }

    #[test]
    fn odd_layouts_are_parsed_whole() {
        assert!(split(&domains(10), MIN_DOMAINS).is_none(), "small files");
        let stray = format!("[domain.dns]\n{}", domains(70));
        assert!(
            split(&stray, MIN_DOMAINS).is_none(),
            "a domain sub-table outside a [[domain]]"
        );
        let open = format!("{}x = \"\"\"\n[[domain]]\n", domains(70));
        assert!(split(&open, MIN_DOMAINS).is_none(), "an unterminated multi-line string");
        // A header-like line inside a multi-line string does not split.
        let inside = format!("{}[[domain]]\nname = \"\"\"\n[[domain]]\n\"\"\"\n", domains(70));
        assert_eq!(split(&inside, MIN_DOMAINS).expect("split").domains.len(), 71);
        let array = format!("{}x = [\n[\"\"\"\n[provider.p]\n\"\"\"],\n]\n", domains(70));
        assert!(
            split(&array, MIN_DOMAINS).is_none(),
            "a triple quote on a line that starts with ["
        );
    }

    /// Found by the `settings` fuzz target: a comment holding `"""` opened a "string" that hid
    /// the next `[provider.…]` header, so the provider went into a domain's piece.
    #[test]
    fn quotes_in_comments_and_strings_open_nothing() {
        let ml = Some("\"\"\"");
        for line in [
            r#"# a comment with """ in it"#,
            r##"x = "#" # """"##,
            r#"x = '"""'"#,
            r#"x = "\"\"\"""#,
            r#"x = """one line""""#,
            "x = \"\"\"ends with two quotes\"\"\"\"\"",
            r#"x = '''"""'''"#,
        ] {
            assert_eq!(multiline_after(line, None), None, "{line}");
        }
        assert_eq!(multiline_after(r##"x = """# not a comment"##, None), ml);
        assert_eq!(multiline_after(r"x = '''\", None), Some("'''"));
        assert_eq!(multiline_after(r#"still \""" open"#, ml), ml);
        assert_eq!(multiline_after(r#"closed""" # """"#, ml), None);
        let text = format!(
            "{}# a comment with \"\"\" in it\n[provider.p]\ndisplay_name = \"P\"\n{}",
            domains(35),
            domains(35)
        );
        let s = split(&text, MIN_DOMAINS).expect("split");
        assert_eq!(s.domains.len(), 70);
        assert!(s.rest.contains("[provider.p]"), "the provider is not in the rest");
        assert!(s.domains.iter().all(|d| !text[d.clone()].contains("[provider.p]")));
    }
}
