//! A QR code as SVG path data: the `qrcode` crate encodes, this draws.
//!
//! The crate's own mask choice (`QrCode::with_error_correction_level` → `apply_best_mask`)
//! allocates a boxed closure per module and orientation to score finder-like patterns: about
//! 23,000 allocations for the setup page's profile URL, most of the page's cost when it is
//! rendered per request (`?email=`). [`path`] runs the crate's own steps (bit encoding, error
//! correction, function patterns, data placement, masking) and scores the eight masks itself
//! with the same penalty rules on bit sets (rows and columns as `u128`), taking the first
//! lowest score as the crate does; a test checks the result is the crate's, module for module,
//! and debug builds check the bit-set scorer against a plain one on every mask.
//!
//! What does not depend on the data is made once per QR version and process ([`VersionTables`],
//! at most 40, ~2 KB each for the versions a page uses): the canvas with its function patterns,
//! and each mask applied to it as bit rows, so masking a code is one XOR per row. The path is
//! written from the rows' bits, run by run.

use std::sync::OnceLock;

use qrcode::canvas::{Canvas, MaskPattern, Module};
use qrcode::{Color, EcLevel, Version};

/// Light modules around the code (ISO/IEC 18004 §5.3.8: four).
const QUIET: usize = 4;

const EC: EcLevel = EcLevel::M;

/// The crate's order of trying masks (its `ALL_PATTERNS_QR`): the first lowest score wins.
const MASKS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

/// The side of the drawing in modules (quiet zone included) and the path of its dark modules,
/// one `M x y h n v 1 h -n z` per horizontal run. `None` if `data` is too long for a QR code.
pub fn path(data: &str) -> Option<(usize, String)> {
    let code = modules(data)?;
    let width = code.width();
    let mut d = String::with_capacity(width * width);
    code.runs(|x, y, run| {
        d.push('M');
        number(&mut d, x + QUIET);
        d.push(' ');
        number(&mut d, y + QUIET);
        d.push('h');
        number(&mut d, run);
        d.push_str("v1h-");
        number(&mut d, run);
        d.push('z');
    });
    Some((width + 2 * QUIET, d))
}

/// A code's dark modules: as bit rows (bit `x` of row `y`) up to [`MAX_BITS`] wide, else
/// row by row as `true` for dark.
#[derive(Debug, PartialEq, Eq)]
enum Code {
    Rows(usize, Vec<u128>),
    Wide(usize, Vec<bool>),
}

impl Code {
    fn width(&self) -> usize {
        match self {
            Code::Rows(w, _) | Code::Wide(w, _) => *w,
        }
    }

    /// Every row's runs of dark modules, left to right, as (x, y, length).
    fn runs(&self, mut f: impl FnMut(usize, usize, usize)) {
        match self {
            Code::Rows(_, rows) => {
                for (y, row) in rows.iter().enumerate() {
                    // A run starts at the lowest set bit and ends before the next clear one.
                    let mut rest = *row;
                    let mut x = 0;
                    while rest != 0 {
                        let skip = rest.trailing_zeros() as usize;
                        x += skip;
                        rest >>= skip;
                        let run = (!rest).trailing_zeros() as usize;
                        f(x, y, run);
                        x += run;
                        rest = rest.checked_shr(run as u32).unwrap_or(0);
                    }
                }
            }
            Code::Wide(width, dark) => {
                for (y, row) in dark.chunks(*width).enumerate() {
                    let mut x = 0;
                    while x < *width {
                        if row[x] {
                            let run = row[x..].iter().take_while(|c| **c).count();
                            f(x, y, run);
                            x += run;
                        } else {
                            x += 1;
                        }
                    }
                }
            }
        }
    }

    /// Row by row, `true` for dark.
    #[cfg(test)]
    fn bools(&self) -> Vec<bool> {
        match self {
            Code::Rows(w, rows) => bools(rows, *w),
            Code::Wide(_, dark) => dark.clone(),
        }
    }
}

/// `n` in decimal (what `write!` gives, without the formatting machinery: a page has ~1000).
fn number(out: &mut String, n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|b| char::from(*b)));
}

/// Widest code drawn from bit rows (version 27); wider ones take [`modules_wide`].
const MAX_BITS: usize = 128;

/// What every code of one version shares, made once per version and process: the canvas with
/// the function patterns drawn, and for each mask (in [`MASKS`] order) the rows that masking
/// that canvas gives. Masking a code is then one XOR per row: a data module's masked color is
/// its own color XOR the mask's, which is the masked empty canvas's color there; function
/// modules (format information included) are the masked empty canvas's.
struct VersionTables {
    canvas: Canvas,
    masked: [Vec<u128>; 8],
}

/// Normal QR versions 1 to 40.
static TABLES: [OnceLock<VersionTables>; 40] = [const { OnceLock::new() }; 40];

fn tables(version: Version) -> Option<&'static VersionTables> {
    let Version::Normal(n) = version else { return None };
    let cell = TABLES.get(usize::try_from(n).ok()?.checked_sub(1)?)?;
    Some(cell.get_or_init(|| {
        let mut canvas = Canvas::new(version, EC);
        canvas.draw_all_functional_patterns();
        let masked = MASKS.map(|mask| {
            let mut c = canvas.clone();
            c.apply_mask(mask);
            rows(&c, version.width(), |m| m == Module::Masked(Color::Dark))
        });
        VersionTables { canvas, masked }
    }))
}

/// The modules of `canvas` as bit rows: bit `x` of row `y` set where `pick` holds.
fn rows(canvas: &Canvas, width: i16, pick: impl Fn(Module) -> bool) -> Vec<u128> {
    (0..width)
        .map(|y| {
            (0..width)
                .filter(|x| pick(canvas.get(*x, y)))
                .fold(0u128, |row, x| row | 1 << x)
        })
        .collect()
}

/// The code's modules: what `QrCode::with_error_correction_level(data, EcLevel::M)` gives.
fn modules(data: &str) -> Option<Code> {
    let bits = qrcode::bits::encode_auto(data.as_bytes(), EC).ok()?;
    let version = bits.version();
    let (encoded, ec) = qrcode::ec::construct_codewords(&bits.into_bytes(), version, EC).ok()?;
    let width = version.width() as usize;
    let Some(t) = (width <= MAX_BITS).then(|| tables(version)).flatten() else {
        return modules_wide(version, &encoded, &ec);
    };
    let mut canvas = t.canvas.clone();
    canvas.draw_data(&encoded, &ec);
    let data_dark = rows(&canvas, version.width(), |m| m == Module::Unmasked(Color::Dark));
    let mut best: Option<(u32, Vec<u128>)> = None;
    for masked in &t.masked {
        let code: Vec<u128> = masked.iter().zip(&data_dark).map(|(m, d)| m ^ d).collect();
        let score = penalty_bits(&code, width);
        if cfg!(debug_assertions) {
            assert_eq!(score, penalty(&bools(&code, width), width), "the two scorers agree");
        }
        if best.as_ref().is_none_or(|(s, _)| score < *s) {
            best = Some((score, code));
        }
    }
    best.map(|(_, code)| Code::Rows(width, code))
}

/// [`modules`] for codes wider than [`MAX_BITS`] (longer data than a page ever encodes): the
/// crate masks, the plain scorer scores.
fn modules_wide(version: Version, encoded: &[u8], ec: &[u8]) -> Option<Code> {
    let mut canvas = Canvas::new(version, EC);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(encoded, ec);
    let mut best: Option<(u32, Vec<bool>)> = None;
    for mask in MASKS {
        let mut c = canvas.clone();
        c.apply_mask(mask);
        let dark: Vec<bool> = c.into_colors().into_iter().map(|m| m == Color::Dark).collect();
        let score = penalty(&dark, version.width() as usize);
        if best.as_ref().is_none_or(|(s, _)| score < *s) {
            best = Some((score, dark));
        }
    }
    best.map(|(_, dark)| Code::Wide(version.width() as usize, dark))
}

/// Bit rows as modules, row by row, `true` for dark.
fn bools(rows: &[u128], width: usize) -> Vec<bool> {
    rows.iter()
        .flat_map(|r| (0..width).map(move |x| r >> x & 1 == 1))
        .collect()
}

/// The crate's penalty score of a masked normal QR code (`compute_total_penalty_scores`): runs
/// of five or more, 2×2 blocks, finder-like patterns (less the 360 per orientation the three
/// real finders give), dark/light balance. Rows and columns are both read as rows (the columns
/// from a transposed copy).
fn penalty(dark: &[bool], w: usize) -> u32 {
    let columns: Vec<bool> = (0..w * w).map(|t| dark[(t % w) * w + t / w]).collect();
    let mut score = 0u32;
    for grid in [dark, &columns] {
        for line in grid.chunks_exact(w) {
            // Runs of one color: 5 + n in a row cost 3 + n.
            let mut run = 1u32;
            for k in 1..w {
                if line[k] == line[k - 1] {
                    run += 1;
                } else {
                    score += if run >= 5 { run - 2 } else { 0 };
                    run = 1;
                }
            }
            score += if run >= 5 { run - 2 } else { 0 };
            // `#.###.#` with no dark module in the four before it, or none in the four after.
            for j in 0..w - 6 {
                let l = &line[j..j + 7];
                if l[0] && !l[1] && l[2] && l[3] && l[4] && !l[5] && l[6] {
                    let dark_before = line[j.saturating_sub(4)..j].iter().any(|d| *d);
                    let dark_after = line[j + 7..(j + 11).min(w)].iter().any(|d| *d);
                    if !dark_before || !dark_after {
                        score += 40;
                    }
                }
            }
        }
    }
    score -= 2 * 360;
    for y in 0..w - 1 {
        let (a, b) = (&dark[y * w..(y + 1) * w], &dark[(y + 1) * w..(y + 2) * w]);
        for x in 0..w - 1 {
            let c = a[x];
            if a[x + 1] == c && b[x] == c && b[x + 1] == c {
                score += 3;
            }
        }
    }
    let ratio = (dark.iter().filter(|d| **d).count() * 200 / dark.len()) as u32;
    score + ratio.abs_diff(100)
}

/// [`penalty`] on rows and columns as bit sets (bit `x` of row `y` is module `(x, y)`; the
/// columns transposed from the rows), for codes up to 128 modules wide (version 27): the same
/// score from word operations.
fn penalty_bits(rows: &[u128], w: usize) -> u32 {
    let mut columns = vec![0u128; w];
    for (y, row) in rows.iter().enumerate() {
        let mut rest = *row;
        while rest != 0 {
            columns[rest.trailing_zeros() as usize] |= 1 << y;
            rest &= rest - 1;
        }
    }
    let ones = |n: usize| if n >= 128 { u128::MAX } else { (1u128 << n) - 1 };
    let mut score = 0u32;
    for line in rows.iter().chain(&columns).copied() {
        // Runs: a bit of `changes` marks the last module of a run (the line's end too).
        let mut changes = ((line ^ (line >> 1)) & ones(w - 1)) | (1 << (w - 1));
        let mut start = 0;
        while changes != 0 {
            let end = changes.trailing_zeros() as usize;
            let run = (end + 1 - start) as u32;
            if run >= 5 {
                score += run - 2;
            }
            start = end + 1;
            changes &= changes - 1;
        }
        // `#.###.#` starting at j (symmetric, so bit order does not matter).
        let mut finders = line & !(line >> 1) & (line >> 2) & (line >> 3) & (line >> 4) & !(line >> 5) & (line >> 6);
        finders &= ones(w - 6);
        while finders != 0 {
            let j = finders.trailing_zeros() as usize;
            let from = j.saturating_sub(4);
            let dark_before = (line >> from) & ones(j - from) != 0;
            let to = (j + 11).min(w);
            let dark_after = (line >> (j + 7)) & ones(to - (j + 7)) != 0;
            if !dark_before || !dark_after {
                score += 40;
            }
            finders &= finders - 1;
        }
    }
    score -= 2 * 360;
    for pair in rows.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let same = !(a ^ (a >> 1)) & !(a ^ b) & !(a ^ (b >> 1)) & ones(w - 1);
        score += 3 * same.count_ones();
    }
    let dark_count: u32 = rows.iter().map(|r| r.count_ones()).sum();
    let ratio = (dark_count as usize * 200 / (w * w)) as u32;
    score + ratio.abs_diff(100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use qrcode::QrCode;

    #[test]
    fn draws_every_dark_module_once() {
        let (side, d) = path("https://autoconfig.example.com/apple/profile.mobileconfig").unwrap();
        let code = QrCode::with_error_correction_level(
            b"https://autoconfig.example.com/apple/profile.mobileconfig",
            EcLevel::M,
        )
        .unwrap();
        assert_eq!(side, code.width() + 8);
        let dark = code.to_colors().iter().filter(|c| **c == Color::Dark).count();
        let drawn: usize = d
            .split('z')
            .filter(|r| !r.is_empty())
            .map(|r| {
                r.split('h')
                    .nth(1)
                    .unwrap()
                    .split('v')
                    .next()
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
            })
            .sum();
        assert_eq!(drawn, dark);
        assert!(path(&"x".repeat(4000)).is_none());
    }

    /// The mask chosen here is the crate's, for profile URLs of every length a page can ask
    /// for and for other text: the same modules as `QrCode::with_error_correction_level`.
    #[test]
    fn same_modules_as_the_crate() {
        // Every 5th length of local part (the version grows with it) and some other text; the
        // crate's own scoring is slow unoptimised, so not more.
        let mut inputs: Vec<String> = (0..13)
            .map(|i| {
                let local = "abcdefghij.+_'%".repeat(5);
                let local = &local[..1 + i * 5];
                crate::vocab::apple_profile_url(&format!("d{i}.example"), Some(&format!("{local}@d{i}.example")))
            })
            .collect();
        inputs.extend((0..24).map(|i| "Zz0 9/".repeat(2 * i + 1)));
        inputs.push(crate::vocab::apple_profile_url("example.com", None));
        inputs.push("w".repeat(1200)); // wider than 128 modules: the other scorer
        let mut masks_seen = std::collections::HashSet::new();
        for data in &inputs {
            let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).unwrap();
            let want: Vec<bool> = code.to_colors().iter().map(|c| *c == Color::Dark).collect();
            let got = modules(data).unwrap();
            let width = got.width();
            assert_eq!(matches!(got, Code::Rows(..)), width <= MAX_BITS, "{data}");
            if width <= MAX_BITS {
                let rows: Vec<u128> = want
                    .chunks(width)
                    .map(|r| r.iter().rev().fold(0u128, |row, d| row << 1 | u128::from(*d)))
                    .collect();
                assert_eq!(bools(&rows, width), want);
                assert_eq!(penalty_bits(&rows, width), penalty(&want, width), "{data}");
            }
            let got = got.bools();
            assert_eq!(width, code.width(), "{data}");
            assert!(got == want, "different modules for {data}");
            // Which mask won: the format bits next to the top-left finder differ per mask.
            masks_seen.insert(got[8 * width..8 * width + 9].to_vec());
        }
        assert!(
            masks_seen.len() >= 6,
            "the inputs exercise most masks: {}",
            masks_seen.len()
        );
    }
}
