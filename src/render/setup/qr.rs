//! A QR code as SVG path data: the `qrcode` crate encodes, this draws.

use qrcode::{Color, EcLevel, QrCode};

/// Light modules around the code (ISO/IEC 18004 §5.3.8: four).
const QUIET: usize = 4;

/// The side of the drawing in modules (quiet zone included) and the path of its dark modules,
/// one `M x y h n v 1 h -n z` per horizontal run. `None` if `data` is too long for a QR code.
pub fn path(data: &str) -> Option<(usize, String)> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    let mut d = String::new();
    for (y, row) in colors.chunks(width).enumerate() {
        let mut x = 0;
        while x < width {
            if row[x] == Color::Dark {
                let run = row[x..].iter().take_while(|c| **c == Color::Dark).count();
                d.push_str(&format!("M{} {}h{run}v1h-{run}z", x + QUIET, y + QUIET));
                x += run;
            } else {
                x += 1;
            }
        }
    }
    Some((width + 2 * QUIET, d))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
