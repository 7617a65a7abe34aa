//! The setup page for people: one domain's servers as a mail app's settings screen asks for
//! them, in the reader's language, with the Apple profile as a download and a QR code.
//!
//! Pure: (client view, DNS records as zone-file text, language) → HTML. Every value goes through `maud`, which escapes
//! by default; the only unescaped text is the constant stylesheet. No JavaScript. Words live in
//! [`lang`], protocol and encryption names in [`crate::vocab`].

pub mod lang;
mod qr;

use std::cell::RefCell;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::model::{ClientConfig, DavView, ServerView};
use crate::records::DomainRecords;
use crate::render::{mobileconfig, zonefile};

/// The DNS records shown on a domain's page, as zone-file text: the same for every address and
/// language, so the HTTP server keeps it per name (`http::pages`) instead of building the
/// records for every `?email=` page.
pub fn records_text(records: &DomainRecords) -> String {
    zonefile::snippet(records)
}
use crate::settings::PLACEHOLDERS;
use crate::vocab::{self, SETUP_EMAIL_PARAM, SETUP_LANG_PARAM};
pub use lang::Lang;

/// The one stylesheet, inline: readable from 360 px phones to desktops, contrast ≥ 7:1.
const CSS: &str = "\
body{font:1rem/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1a1a1a;background:#fff;\
max-width:52rem;margin:0 auto;padding:1rem}\
h1{font-size:1.5rem;line-height:1.25;margin:.5rem 0}h2{font-size:1.2rem;margin:1.75rem 0 .25rem}\
a{color:#0a4bb8}nav{text-align:right}nav a{margin-left:.75rem}\
table{border-collapse:collapse;width:100%;margin:.75rem 0 1.25rem}\
.servers{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(20rem,100%),1fr));column-gap:2rem}\
caption{text-align:left;font-weight:600;padding:.25rem 0}\
th,td{text-align:left;vertical-align:top;padding:.4rem .5rem;border-top:1px solid #bbb}\
th{font-weight:normal;color:#3d3d3d;width:36%}td{overflow-wrap:anywhere}\
code{font:1rem ui-monospace,Menlo,Consolas,monospace}em{color:#3d3d3d}\
form{background:#f1f3f6;padding:.75rem 1rem;border-radius:.5rem;margin:1rem 0}\
label{display:block;font-weight:600}form p{margin:.25rem 0;font-size:.9rem;color:#3d3d3d}\
input{font:inherit;width:100%;box-sizing:border-box;padding:.45rem;margin:.25rem 0;border:1px solid #767676;border-radius:.3rem}\
button,.button{display:inline-block;font:inherit;font-weight:600;background:#0a4bb8;color:#fff;border:0;\
border-radius:.4rem;padding:.55rem 1.1rem;text-decoration:none;cursor:pointer}\
figure{margin:1rem 0}figure svg{width:12rem;height:12rem;display:block;shape-rendering:crispEdges}figcaption{font-size:.9rem}\
pre{overflow-x:auto;background:#f1f3f6;padding:.75rem;font-size:.8rem}summary{cursor:pointer;font-weight:600}\
@media (min-width:44rem){body{padding:2rem}h1{font-size:1.9rem}}";

/// The page for one domain; with `cfg.address` set, user names are filled in. `records`: the
/// domain's [`records_text`], if it has DNS records.
pub fn page(cfg: &ClientConfig, lang: Lang, records: Option<&str>) -> String {
    body(cfg, lang, records, &Mode::Whole)
}

/// A spot of the page that depends on the address: everything else is the same for every
/// address of a name in one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spot {
    /// The links to the other languages (they keep the address).
    Languages,
    /// The address form (its value).
    Form,
    /// The user name of `cfg.servers[i]`.
    ServerUser(usize),
    /// The user name of `cfg.dav[i]`.
    DavUser(usize),
    /// The Apple profile's link and QR code.
    Apple,
}

/// Stands for a spot in a page rendered as a [`Template`]. Escaped text never holds it unless a
/// configured value does, and then [`template`] notices and gives up.
const MARK: &str = "\u{0}";

enum Mode {
    /// Every spot filled in for `cfg.address`.
    Whole,
    /// Every spot a [`MARK`], noted in page order.
    Mark(RefCell<Vec<Spot>>),
}

/// The page of one name in one language with its address-dependent spots left open: built once
/// per name, language and reload, then [`Template::fill`]ed per request, so an `?email=` page
/// renders only its spots. Holds the address-less page's spots too, so that page costs one copy.
#[derive(Debug)]
pub struct Template {
    lang: Lang,
    /// One more than `spots`: the text before each spot, then the text after the last.
    text: Vec<Box<str>>,
    spots: Vec<Spot>,
    /// Each spot for the address-less page.
    plain: Vec<Box<str>>,
    /// `text` and `plain` together: the address-less page's length.
    len: usize,
}

/// The [`Template`] of `plain`'s name in `lang`: `plain` has no address (its user names are
/// the templates, as the address-less page shows them). `None` if a configured value holds
/// [`MARK`] (then render whole [`page`]s).
pub fn template(plain: &ClientConfig, lang: Lang, records: Option<&str>) -> Option<Template> {
    if plain.address.is_some() {
        return None;
    }
    let mode = Mode::Mark(RefCell::new(Vec::new()));
    let marked = body(plain, lang, records, &mode);
    let Mode::Mark(spots) = mode else { unreachable!() };
    let spots = spots.into_inner();
    let text: Vec<Box<str>> = marked.split(MARK).map(Into::into).collect();
    if text.len() != spots.len() + 1 {
        return None;
    }
    let plain: Vec<Box<str>> = spots
        .iter()
        .map(|s| spot(plain, lang, *s).into_string().into())
        .collect();
    let len = text.iter().chain(&plain).map(|t| t.len()).sum();
    Some(Template {
        lang,
        text,
        spots,
        plain,
        len,
    })
}

impl Template {
    /// The page for `cfg`, which must be of the name and settings the template was built from:
    /// byte for byte what [`page`] renders.
    pub fn fill(&self, cfg: &ClientConfig) -> String {
        let mut out = String::with_capacity(self.len + 4096);
        for (i, s) in self.spots.iter().enumerate() {
            out.push_str(&self.text[i]);
            if cfg.address.is_some() {
                out.push_str(&spot(cfg, self.lang, *s).into_string());
            } else {
                out.push_str(&self.plain[i]);
            }
        }
        out.push_str(self.text.last().map_or("", |t| t));
        out
    }

    /// A template without spots (tests of the cache).
    #[cfg(test)]
    pub fn text(lang: Lang, text: &str) -> Template {
        Template {
            lang,
            text: vec![text.into()],
            spots: Vec::new(),
            plain: Vec::new(),
            len: text.len(),
        }
    }

    /// All its text, spots left out (tests of the cache).
    #[cfg(test)]
    pub fn text_of(&self) -> String {
        self.text.concat()
    }
}

fn body(cfg: &ClientConfig, lang: Lang, records: Option<&str>, mode: &Mode) -> String {
    let t = lang.text();
    let documentation = cfg.domain.services().documentation;
    let at = |s: Spot| match mode {
        Mode::Whole => spot(cfg, lang, s),
        Mode::Mark(spots) => {
            spots.borrow_mut().push(s);
            PreEscaped(MARK.to_string())
        }
    };
    let title = format!("{} {}", t.title, cfg.requested);
    let servers = |incoming: bool| {
        html! {
            @for (n, (i, s)) in cfg.servers.iter().enumerate().filter(|(_, s)| s.is_incoming() == incoming).enumerate() {
                (server(t, s, n == 0, at(Spot::ServerUser(i))))
            }
        }
    };
    let body = html! {
        header {
            (at(Spot::Languages))
            h1 { (title) }
            p { (t.intro) }
            p { (t.provider) ": " strong { (cfg.display_name) } }
        }
        main {
            (at(Spot::Form))
            section aria-labelledby="incoming" {
                h2 #incoming { (t.incoming) }
                div.servers { (servers(true)) }
            }
            section aria-labelledby="outgoing" {
                h2 #outgoing { (t.outgoing) }
                div.servers { (servers(false)) }
            }
            @if !cfg.dav.is_empty() {
                section aria-labelledby="dav" {
                    h2 #dav { (t.dav_heading) }
                    p { (t.dav_text) }
                    div.servers {
                        @for (i, d) in cfg.dav.iter().enumerate() { (dav(t, d, at(Spot::DavUser(i)))) }
                    }
                }
            }
            (at(Spot::Apple))
            @if let Some(doc) = documentation {
                p { a href=(doc) { (t.documentation) " " (cfg.display_name) } }
            }
            @if let Some(text) = records {
                details {
                    summary { (t.dns_heading) }
                    p { (t.dns_text) }
                    pre { (text) }
                }
            }
        }
    };
    layout(lang, &title, body)
}

/// One address-dependent spot, for `cfg.address` (or none).
fn spot(cfg: &ClientConfig, lang: Lang, s: Spot) -> Markup {
    let t = lang.text();
    let address = || cfg.address.as_ref().map(ToString::to_string);
    match s {
        Spot::Languages => languages(lang, address().as_deref()),
        Spot::Form => address_form(lang, address().as_deref()),
        Spot::ServerUser(i) => username(t, &cfg.servers[i].username),
        Spot::DavUser(i) => username(t, &cfg.dav[i].username),
        Spot::Apple => apple(cfg, t, address().as_deref()),
    }
}

/// The Apple profile's download and QR code, when a profile can express the servers.
fn apple(cfg: &ClientConfig, t: &lang::Text, address: Option<&str>) -> Markup {
    let profile = mobileconfig::expressible(cfg)
        .then(|| vocab::apple_profile_url(&cfg.requested, address))
        .and_then(|url| qr::path(&url).map(|qr| (url, qr)));
    html! {
        @if let Some((url, (side, path))) = &profile {
            section aria-labelledby="apple" {
                h2 #apple { (t.apple_heading) }
                p { (t.apple_text) }
                p { a.button href=(url) download { (t.apple_button) } }
                figure {
                    svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (side) " " (side) }
                        role="img" aria-label=(t.qr_label) {
                        rect width=(side) height=(side) fill="#fff" {}
                        path d=(path) fill="#000" {}
                    }
                    figcaption { (t.qr_text) }
                }
            }
        }
    }
}

/// 404: this host names no configured domain. Says nothing about any domain.
pub fn not_found(lang: Lang) -> String {
    let t = lang.text();
    layout(
        lang,
        t.not_found_title,
        html! { main { h1 { (t.not_found_title) } p { (t.not_found_text) } } },
    )
}

/// 400: `?email=` is no address. Does not repeat it.
pub fn bad_address(lang: Lang) -> String {
    let t = lang.text();
    layout(
        lang,
        t.bad_address_title,
        html! { main { h1 { (t.bad_address_title) } p { (t.bad_address_text) } (address_form(lang, None)) } },
    )
}

fn layout(lang: Lang, title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body { (body) }
        }
    }
    .into_string()
}

/// Links to the page in every other language (keeping the address).
fn languages(current: Lang, address: Option<&str>) -> Markup {
    let href = |l: Lang| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(a) = address {
            q.append_pair(SETUP_EMAIL_PARAM, a);
        }
        format!(
            "{}?{}",
            vocab::SETUP_PATH,
            q.append_pair(SETUP_LANG_PARAM, l.tag()).finish()
        )
    };
    html! {
        nav aria-label=(current.text().languages) {
            @for l in Lang::all().filter(|l| *l != current) {
                a href=(href(l)) hreflang=(l.tag()) lang=(l.tag()) { (l.text().name) }
            }
        }
    }
}

fn address_form(lang: Lang, address: Option<&str>) -> Markup {
    let t = lang.text();
    html! {
        form method="get" action=(vocab::SETUP_PATH) {
            label for="email" { (t.address_label) }
            input #email type="email" name=(SETUP_EMAIL_PARAM) autocomplete="email" required
                aria-describedby="email-hint" value=[address];
            p #email-hint { (t.address_hint) }
            input type="hidden" name=(SETUP_LANG_PARAM) value=(lang.tag());
            button type="submit" { (t.address_button) }
        }
    }
}

/// One server as a two-column table: what a settings screen asks for, in its order.
fn server(t: &lang::Text, s: &ServerView, preferred: bool, user: Markup) -> Markup {
    let auth: Vec<&str> = s.auth.iter().map(|a| (t.auth_names)(*a)).collect();
    html! {
        table {
            caption { (s.protocol.people()) " · " (if preferred { t.preferred } else { t.alternative }) }
            tbody {
                tr { th scope="row" { (t.server) } td { code { (s.host) } } }
                tr { th scope="row" { (t.port) } td { code { (s.port) } } }
                tr { th scope="row" { (t.security) } td { (s.security.people().unwrap_or(t.no_encryption)) } }
                tr { th scope="row" { (t.username) } td { (user) } }
                tr { th scope="row" { (t.auth) } td { (auth.join(" / ")) } }
            }
        }
    }
}

/// One calendar or contacts service as a table like a server's: what a CalDAV or CardDAV
/// account screen asks for.
fn dav(t: &lang::Text, d: &DavView, user: Markup) -> Markup {
    html! {
        table {
            caption { (d.kind.words().people) " · " ((t.dav_names)(d.kind)) }
            tbody {
                tr { th scope="row" { (t.url) } td { code { (d.url) } } }
                tr { th scope="row" { (t.server) } td { code { (d.host) } } }
                tr { th scope="row" { (t.port) } td { code { (d.port) } } }
                tr { th scope="row" { (t.username) } td { (user) } }
            }
        }
    }
}

/// A user name, with any placeholder left (no address given) in words.
fn username(t: &lang::Text, template: &str) -> Markup {
    let mut parts = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        let next = PLACEHOLDERS
            .iter()
            .enumerate()
            .filter_map(|(i, p)| rest.find(p).map(|at| (at, i, p.len())))
            .min();
        match next {
            Some((at, i, len)) => {
                if at > 0 {
                    parts.push((None, &rest[..at]));
                }
                parts.push((Some(i), ""));
                rest = &rest[at + len..];
            }
            None => {
                parts.push((None, rest));
                rest = "";
            }
        }
    }
    html! {
        @for (placeholder, literal) in parts {
            @match placeholder {
                Some(i) => em { "‹" (t.placeholders[i]) "›" },
                None => code { (literal) },
            }
        }
    }
}

#[cfg(test)]
mod tests;
