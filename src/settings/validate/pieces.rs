//! Large files one `[[domain]]` at a time: each piece parsed on its own on all cores, and on a
//! reload the pieces whose text did not change taken from the previous settings without being
//! parsed (or, reading the file line by line, without holding it whole). Whatever this path
//! answers, [`super::parse_whole`] would have answered the same; where it could differ it
//! returns `None` and the caller parses the whole file.

use super::*;
use crate::settings::split;
use crate::settings::{ServerSettings, SourceSettings};

/// Every `[[domain]]` on its own (see `split`), on all cores. `None` when a piece does not
/// parse or does not hold exactly one domain: the caller then parses the whole file, so
/// syntax errors read exactly as they always did.
///
/// With `previous` (a reload), a piece whose text is byte-for-byte the text of one of the
/// previous domains, under unchanged providers, is that domain again without being parsed:
/// validation depends on nothing else (the duplicate check across domains runs on every name
/// regardless). Any problem in the file makes a second pass that parses every piece, so that
/// messages never depend on what was reused.
pub(super) fn parse_split(
    text: &str,
    file: &str,
    split: &split::Split,
    previous: Option<&Settings>,
) -> Option<Result<Settings, Diagnostics>> {
    let intern = Interner::default();
    let Head {
        raw,
        cx,
        server,
        providers,
        sources,
        reuse,
    } = Head::parse(&split.rest, text, file, previous, &intern)?;
    let known: FxHashMap<u128, usize> = reuse.map(known_pieces).unwrap_or_default();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let per = split.domains.len().div_ceil(threads);
    let parts: Vec<Option<Vec<Checked>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = split
            .domains
            .chunks(per)
            .enumerate()
            .map(|(t, ranges)| {
                let (raw_providers, providers, known, intern) = (&raw.provider, &providers, &known, &intern);
                scope.spawn(move || {
                    ranges
                        .iter()
                        .enumerate()
                        .map(|(k, r)| {
                            let piece = &text[r.clone()];
                            let hash = xxh3_128(piece.as_bytes());
                            if let Some(same) = reuse.and_then(|p| Some(&p.domains[*known.get(&hash)?])) {
                                let loc = Locator { file, text, base: 0 };
                                return Some(Checked::reused(same, loc, r.start, t * per + k, hash));
                            }
                            let loc = Locator {
                                file,
                                text,
                                base: r.start,
                            };
                            check_piece(
                                piece,
                                hash,
                                loc,
                                t * per + k,
                                raw_providers,
                                providers,
                                previous,
                                intern,
                            )
                        })
                        .collect::<Option<Vec<Checked>>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().ok().flatten()).collect()
    });
    let mut checked = Vec::with_capacity(split.domains.len());
    for part in parts {
        checked.extend(part?);
    }
    let reused = checked.iter().any(|c| c.reused);
    match assemble(cx, server, providers, sources, checked, true) {
        Err(_) if reused => parse_split(text, file, split, None),
        done => Some(done),
    }
}

/// Everything of a split file but its domains: the tables before the first `[[domain]]` (or
/// the whole text with the domains blanked out), parsed and checked.
struct Head<'a> {
    raw: raw::File,
    cx: Ctx<'a>,
    server: ServerSettings,
    providers: Vec<Arc<Provider>>,
    sources: Vec<Arc<SourceSettings>>,
    /// `previous`, when its domains may be taken for unchanged pieces: it was split too, and
    /// the providers are the same.
    reuse: Option<&'a Settings>,
}

impl<'a> Head<'a> {
    /// `rest` keeps the offsets of the file (see `split::Split::rest`); problems found later
    /// (names repeated across domains) are located in `text`, the whole file. `None` if `rest`
    /// holds a `[[domain]]` or does not parse.
    fn parse(
        rest: &str,
        text: &'a str,
        file: &'a str,
        previous: Option<&'a Settings>,
        intern: &'a Interner,
    ) -> Option<Head<'a>> {
        let raw: raw::File = toml::from_str(rest).ok()?;
        if !raw.domain.is_empty() {
            return None;
        }
        let mut cx = Ctx {
            loc: Locator { file, text, base: 0 },
            diags: Vec::new(),
            intern,
        };
        let server = server::server(&mut cx, &raw.server);
        let mut providers = providers(&mut cx, &raw);
        let reuse = previous.filter(|p| !p.pieces.is_empty() && p.providers == providers);
        if let Some(p) = reuse {
            providers = p.providers.clone();
        }
        let sources = source::sources(&mut cx, &raw.source, &raw.provider, &providers);
        Some(Head {
            raw,
            cx,
            server,
            providers,
            sources,
            reuse,
        })
    }
}

/// Fingerprint of a previous domain's text → its index.
fn known_pieces(previous: &Settings) -> FxHashMap<u128, usize> {
    previous.pieces.iter().enumerate().map(|(i, h)| (*h, i)).collect()
}

/// A reload of a large file that changed little, read line by line: a domain whose text is
/// unchanged is taken from `previous` as in [`parse_split`], but the file is never held whole
/// (at 100,000 domains it is 38 MB, a third of what serving them takes), only the tables
/// before the first domain and the pieces that changed.
///
/// `None` whenever the answer could differ from [`parse`]'s or a message is due: a layout
/// that does not split the simple way (tables after the domains), changed providers, more than
/// a few changed pieces, or any problem at all. The caller then reads the file whole and
/// parses it as always, so messages and results never depend on this path.
pub(in crate::settings) fn parse_file_reusing(
    path: &std::path::Path,
    file: &str,
    previous: &Settings,
) -> Option<Settings> {
    use std::io::BufRead;

    /// 16 bytes a domain: what changed is boxed (rare), what did not is an index.
    enum Piece {
        Same { start: usize, previous: usize },
        Changed(Box<(usize, u128, String)>),
    }
    if previous.pieces.len() < split::MIN_DOMAINS {
        return None;
    }
    let known = known_pieces(previous);
    let mut reader = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(path).ok()?);
    let mut splitter = split::Splitter::default();
    let (mut rest, mut section) = (String::new(), String::new());
    let mut pieces = Vec::with_capacity(previous.pieces.len() + 16);
    let mut changed = 0;
    let mut close = |(kind, range): (split::Section, Range<usize>), text: &str| {
        match kind {
            split::Section::Rest if pieces.is_empty() => rest = text.to_string(),
            // Tables after the domains: the whole-text split blanks the domains out instead.
            split::Section::Rest => return None,
            split::Section::Domain => {
                let hash = xxh3_128(text.as_bytes());
                pieces.push(match known.get(&hash) {
                    Some(&i) => Piece::Same {
                        start: range.start,
                        previous: i,
                    },
                    None => {
                        changed += 1;
                        Piece::Changed(Box::new((range.start, hash, text.to_string())))
                    }
                });
            }
        }
        Some(())
    };
    // Lines are read onto the end of the current section; one that opens the next section
    // closes the text before it.
    let mut at = 0;
    loop {
        let before = section.len();
        let n = reader.read_line(&mut section).ok()?;
        if n == 0 {
            break;
        }
        if let Some(closed) = splitter.line(at, &section[before..]).ok()? {
            close(closed, &section[..before])?;
            section.drain(..before);
        }
        at += n;
    }
    close(splitter.finish(at).ok()?, &section)?;
    // Beyond a few changes the parallel whole-text parse is faster.
    if pieces.len() < split::MIN_DOMAINS || changed > 1000.max(pieces.len() / 16) {
        return None;
    }
    let intern = Interner::default();
    let head = Head::parse(&rest, &rest, file, Some(previous), &intern)?;
    let reuse = head.reuse?;
    let checked = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            Piece::Same { start, previous } => Some(Checked::reused(
                &reuse.domains[*previous],
                // The whole text is not kept here; a problem sends the caller to `parse`.
                Locator {
                    file,
                    text: "",
                    base: 0,
                },
                *start,
                i,
                reuse.pieces[*previous],
            )),
            Piece::Changed(changed) => {
                let (start, hash, text) = &**changed;
                // Spans at their place in the file; a message would be located within the piece
                // only, but any problem sends the caller to `parse`.
                let loc = Locator {
                    file,
                    text,
                    base: *start,
                };
                let (raw_providers, providers) = (&head.raw.provider, &head.providers);
                check_piece(text, *hash, loc, i, raw_providers, providers, Some(reuse), &intern)
            }
        })
        .collect::<Option<Vec<_>>>()?;
    assemble(head.cx, head.server, head.providers, head.sources, checked, true).ok()
}
