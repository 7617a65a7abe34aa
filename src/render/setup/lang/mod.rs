//! Every word of the setup page, one table per language, and the choice of language.
//!
//! To add a language: copy `en.rs`, translate it, add a variant to [`Lang`] and a row to
//! [`LANGS`]. Nothing else names a language.

mod de;
mod en;

use crate::vocab::{Auth, Dav};

/// A language the setup page speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    De,
}

/// (language, BCP 47 primary tag, its words). The first row is the fallback.
const LANGS: [(Lang, &str, &Text); 2] = [(Lang::En, "en", &en::TEXT), (Lang::De, "de", &de::TEXT)];

impl Lang {
    /// Every language, fallback first.
    pub fn all() -> impl Iterator<Item = Lang> {
        LANGS.iter().map(|r| r.0)
    }

    /// The `lang` attribute and `?lang=` value.
    pub fn tag(self) -> &'static str {
        Self::row(self).1
    }

    /// The page's words in this language.
    pub fn text(self) -> &'static Text {
        Self::row(self).2
    }

    fn row(self) -> &'static (Lang, &'static str, &'static Text) {
        LANGS.iter().find(|r| r.0 == self).expect("every language has a row")
    }

    /// A language tag (`de`, `de-AT`, `DE_ch`) to a language, by its primary subtag.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?;
        LANGS.iter().find(|r| r.1.eq_ignore_ascii_case(primary)).map(|r| r.0)
    }

    /// `?lang=` wins when it names a language the page speaks; then the best `Accept-Language`
    /// entry (RFC 9110 §12.5.4: highest q first, earlier first on ties, q=0 means "not this");
    /// English otherwise.
    pub fn negotiate(query: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(l) = query.and_then(Lang::from_tag) {
            return l;
        }
        let mut best: Option<(u16, Lang)> = None;
        for item in accept_language.unwrap_or_default().split(',').take(32) {
            let mut parts = item.split(';');
            let Some(l) = parts.next().and_then(Lang::from_tag) else {
                continue;
            };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .map_or(Some(1000), qvalue);
            if let Some(q) = q
                && q > 0
                && best.is_none_or(|(b, _)| q > b)
            {
                best = Some((q, l));
            }
        }
        best.map_or(LANGS[0].0, |(_, l)| l)
    }
}

/// RFC 9110 §12.4.2 qvalue as thousandths; `None` when malformed.
fn qvalue(v: &str) -> Option<u16> {
    let v = v.trim();
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: u16 = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(frac),
        "1" if frac == 0 => Some(1000),
        _ => None,
    }
}

/// The words of one language. A phrase that goes with a value comes before it ("… for
/// example.com"), so the template, not the table, inserts (and escapes) the value.
#[derive(Debug)]
pub struct Text {
    /// Name of the language in itself, for the language switch.
    pub name: &'static str,
    /// Label of the links to the other languages.
    pub languages: &'static str,
    /// "E-mail settings for" (the domain follows).
    pub title: &'static str,
    pub intro: &'static str,
    pub provider: &'static str,
    /// "More help from" (the provider's name follows).
    pub documentation: &'static str,
    pub address_label: &'static str,
    pub address_hint: &'static str,
    pub address_button: &'static str,
    pub incoming: &'static str,
    pub outgoing: &'static str,
    pub preferred: &'static str,
    pub alternative: &'static str,
    pub server: &'static str,
    pub port: &'static str,
    pub security: &'static str,
    pub username: &'static str,
    pub auth: &'static str,
    /// What "no encryption" is called (the other modes are named by [`crate::vocab`]).
    pub no_encryption: &'static str,
    /// The user name placeholders: `%EMAILADDRESS%`, `%EMAILLOCALPART%`, `%EMAILDOMAIN%`.
    pub placeholders: [&'static str; 3],
    /// Heading and lead of the calendars and contacts section (CalDAV, CardDAV).
    pub dav_heading: &'static str,
    pub dav_text: &'static str,
    /// The row with a DAV service's URL.
    pub url: &'static str,
    pub apple_heading: &'static str,
    pub apple_text: &'static str,
    pub apple_button: &'static str,
    pub qr_text: &'static str,
    pub qr_label: &'static str,
    pub dns_heading: &'static str,
    pub dns_text: &'static str,
    pub not_found_title: &'static str,
    pub not_found_text: &'static str,
    pub bad_address_title: &'static str,
    pub bad_address_text: &'static str,
    /// Authentication methods as mail apps name them.
    pub auth_names: fn(Auth) -> &'static str,
    /// What a DAV service holds, after its protocol's name ("CalDAV · calendars").
    pub dav_names: fn(Dav) -> &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        let n = Lang::negotiate;
        assert_eq!(n(None, None), Lang::En);
        assert_eq!(n(None, Some("de-DE,de;q=0.9,en;q=0.8")), Lang::De);
        assert_eq!(n(None, Some("en;q=0.5, de;q=0.6")), Lang::De);
        assert_eq!(n(None, Some("fr, de;q=0.1, en;q=0.05")), Lang::De);
        assert_eq!(n(None, Some("de;q=0, en;q=0.2")), Lang::En);
        assert_eq!(n(None, Some("de;q=0")), Lang::En, "q=0: not German");
        assert_eq!(n(None, Some("de;q=2, en")), Lang::En, "malformed q: ignored");
        assert_eq!(n(None, Some("*")), Lang::En);
        assert_eq!(n(None, Some("DE-at;Q=0.7")), Lang::De);
        assert_eq!(n(None, Some("en, de")), Lang::En, "ties: the first");
        assert_eq!(n(Some("de"), Some("en")), Lang::De, "?lang= wins");
        assert_eq!(n(Some("<script>"), Some("de")), Lang::De, "unknown ?lang=: header");
        assert_eq!(n(Some("xx"), None), Lang::En);
        assert_eq!(qvalue("0.125"), Some(125));
        assert_eq!(qvalue("1.000"), Some(1000));
        assert_eq!(qvalue("1.5"), None);
        assert_eq!(qvalue("0.1234"), None);
    }

    /// Every language has every word (an empty entry would be a hole in the page).
    #[test]
    fn tables_are_complete() {
        for l in Lang::all() {
            let t = format!("{:?}", l.text());
            assert!(!t.contains("\"\""), "{l:?} has an empty entry: {t}");
            for a in [
                Auth::PasswordCleartext,
                Auth::PasswordEncrypted,
                Auth::Oauth2,
                Auth::Ntlm,
                Auth::Gssapi,
                Auth::ClientIpAddress,
                Auth::TlsClientCert,
                Auth::None,
            ] {
                assert!(!(l.text().auth_names)(a).is_empty());
            }
            for d in crate::vocab::DAV {
                assert!(!(l.text().dav_names)(d.service).is_empty());
            }
        }
    }
}
