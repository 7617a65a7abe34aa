//! One problem in a settings file, located by file, line, column and field path.

use std::fmt;
use std::ops::Range;

/// A problem found while reading settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Dotted field path (`domain[2].provider`); empty for syntax errors.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem of one file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Converts byte offsets of one source text into 1-based line and column.
#[derive(Clone, Copy)]
pub(super) struct Locator<'a> {
    pub file: &'a str,
    pub text: &'a str,
    /// Added to every span: where the piece that was parsed on its own starts in `text`.
    pub base: usize,
}

impl Locator<'_> {
    pub fn at(&self, span: &Range<usize>, path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        let offset = (self.base + span.start).min(self.text.len());
        let before = &self.text[..floor_char_boundary(self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            path: path.into(),
            message: message.into(),
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The dotted path (`domain[1].dns.ttl`) of the deepest key or value whose span holds `offset`.
/// Used to name the field in errors that come from serde, which only knows a span.
pub(super) fn path_at(text: &str, offset: usize) -> String {
    use toml::Spanned;
    use toml::de::{DeTable, DeValue};

    fn walk(v: &Spanned<DeValue<'_>>, offset: usize, path: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::Table(t) => t.iter().find_map(|(k, v)| {
                let p = if path.is_empty() {
                    k.get_ref().to_string()
                } else {
                    format!("{path}.{}", k.get_ref())
                };
                if k.span().contains(&offset) {
                    return Some(p);
                }
                walk(v, offset, &p).or_else(|| v.span().contains(&offset).then_some(p))
            }),
            DeValue::Array(a) => a.iter().enumerate().find_map(|(i, el)| {
                let p = format!("{path}[{i}]");
                walk(el, offset, &p).or_else(|| el.span().contains(&offset).then_some(p))
            }),
            _ => None,
        }
    }
    let Ok(doc) = DeTable::parse(text) else {
        return String::new();
    };
    let span = doc.span();
    let root = Spanned::new(span, DeValue::Table(doc.into_inner()));
    walk(&root, offset, "").unwrap_or_default()
}
