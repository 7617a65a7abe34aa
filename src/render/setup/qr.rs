//! A QR code as SVG path data: the `qrcode` crate encodes, this draws.
//!
//! The crate's own mask choice (`QrCode::with_error_correction_level` → `apply_best_mask`)
//! allocates a boxed closure per module and orientation to score finder-like patterns: about
//! 23,000 allocations for the setup page's profile URL, most of the page's cost when it is
//! rendered per request (`?email=`). [`path`] runs the crate's own steps (bit encoding, error
//! correction, function patterns, data placement, masking) and scores the eight masks itself
//! with the same penalty rules on a flat grid, taking the first lowest score as the crate does;
//! a test checks the result is the crate's, module for module, for many inputs.

use std::fmt::Write;

use qrcode::canvas::{Canvas, MaskPattern};
use qrcode::{Color, EcLevel};

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
    let (width, dark) = modules(data)?;
    let mut d = String::with_capacity(width * width * 2);
    for (y, row) in dark.chunks(width).enumerate() {
        let mut x = 0;
        while x < width {
            if row[x] {
                let run = row[x..].iter().take_while(|c| **c).count();
                let _ = write!(d, "M{} {}h{run}v1h-{run}z", x + QUIET, y + QUIET);
                x += run;
            } else {
                x += 1;
            }
        }
    }
    Some((width + 2 * QUIET, d))
}

/// The code's width and its modules, row by row, `true` for dark: what
/// `QrCode::with_error_correction_level(data, EcLevel::M)` gives.
fn modules(data: &str) -> Option<(usize, Vec<bool>)> {
    let bits = qrcode::bits::encode_auto(data.as_bytes(), EC).ok()?;
    let version = bits.version();
    let (encoded, ec) = qrcode::ec::construct_codewords(&bits.into_bytes(), version, EC).ok()?;
    let mut canvas = Canvas::new(version, EC);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&encoded, &ec);
    let mut best: Option<(u32, Vec<bool>)> = None;
    for mask in MASKS {
        let mut c = canvas.clone();
        c.apply_mask(mask);
        let dark: Vec<bool> = c.into_colors().into_iter().map(|m| m == Color::Dark).collect();
        let width = dark.len().isqrt();
        let score = penalty(&dark, width);
        if best.as_ref().is_none_or(|(s, _)| score < *s) {
            best = Some((score, dark));
        }
    }
    let (_, dark) = best?;
    Some((dark.len().isqrt(), dark))
}

/// The crate's penalty score of a masked normal QR code (`compute_total_penalty_scores`): runs
/// of five or more, 2×2 blocks, finder-like patterns (less the 360 of the three real finders),
/// dark/light balance.
fn penalty(dark: &[bool], w: usize) -> u32 {
    let at = |x: usize, y: usize| dark[y * w + x];
    let mut score = 0u32;
    for horizontal in [true, false] {
        let line = |i: usize, k: usize| if horizontal { at(k, i) } else { at(i, k) };
        for i in 0..w {
            // Runs of one color: 5 + n in a row cost 3 + n.
            let mut run = 1u32;
            for k in 1..=w {
                if k < w && line(i, k) == line(i, k - 1) {
                    run += 1;
                } else {
                    if run >= 5 {
                        score += run - 2;
                    }
                    run = 1;
                }
            }
            // `#.###.#` with no dark module in the four before it, or none in the four after.
            for j in 0..w - 6 {
                let pattern = [true, false, true, true, true, false, true];
                if (0..7).any(|k| line(i, j + k) != pattern[k]) {
                    continue;
                }
                let before = (j.saturating_sub(4)..j).any(|k| line(i, k));
                let after = (j + 7..(j + 11).min(w)).any(|k| line(i, k));
                if !before || !after {
                    score += 40;
                }
            }
        }
    }
    score -= 2 * 360; // the crate subtracts the three real finders in each orientation
    for y in 0..w - 1 {
        for x in 0..w - 1 {
            let c = at(x, y);
            if at(x + 1, y) == c && at(x, y + 1) == c && at(x + 1, y + 1) == c {
                score += 3;
            }
        }
    }
    let ratio = (dark.iter().filter(|d| **d).count() * 200 / dark.len()) as u32;
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
        let mut masks_seen = std::collections::HashSet::new();
        for data in &inputs {
            let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).unwrap();
            let want: Vec<bool> = code.to_colors().iter().map(|c| *c == Color::Dark).collect();
            let (width, got) = modules(data).unwrap();
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
