//! Text forms of names and record data, written into one buffer without allocating: the zone
//! fingerprint's input and the zone files' names. At 130,000 zones these were a third of
//! `mailconf zone --out`'s CPU time through `format!`, `Name::to_ascii` and `{:?}` (profiled
//! with `perf`, see README "Sizing").
//!
//! Each writer produces exactly the bytes of the hickory form it stands for (`Name::to_ascii`,
//! `Name`'s `Display`, `RData`'s `Debug`), so serials and zone files do not change: names made
//! only of plain labels are copied as they are, and anything else (escapes, IDNA labels, record
//! types `records` does not make) is handed to hickory. The unit tests compare both forms.

use std::fmt::Write;

use hickory_server::proto::rr::{Name, RData};

/// Bytes hickory writes as they are anywhere in a label: ASCII letters, digits, `_`, `-`.
const PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        b += 1;
    }
    t
};

/// A label hickory writes byte for byte: [`PLAIN`] bytes, `-` not first, `*` only first.
/// `idna` also excludes `xn--` labels, which `Display` turns into Unicode.
fn plain_label(label: &[u8], idna: bool) -> bool {
    match label.split_first() {
        None => true,
        Some((&first, rest)) => {
            (first == b'*' || (PLAIN[usize::from(first)] && first != b'-'))
                && rest.iter().all(|&b| PLAIN[usize::from(b)])
                && !(idna && label.starts_with(b"xn--"))
        }
    }
}

/// Appends the labels of a plain name, or returns false (and leaves `out` as it was) if one is
/// not plain. One pass: labels are copied as they are checked.
fn plain_name(out: &mut String, name: &Name, idna: bool) -> bool {
    let start = out.len();
    for (i, label) in name.iter().enumerate() {
        // A plain label is ASCII, so valid UTF-8.
        let text = match std::str::from_utf8(label) {
            Ok(t) if plain_label(label, idna) => t,
            _ => {
                out.truncate(start);
                return false;
            }
        };
        if i > 0 {
            out.push('.');
        }
        out.push_str(text);
    }
    if name.is_root() || name.is_fqdn() {
        out.push('.');
    }
    true
}

/// Appends `name.to_ascii()`.
pub fn push_ascii(out: &mut String, name: &Name) {
    if !plain_name(out, name, false) {
        out.push_str(&name.to_ascii());
    }
}

/// Appends `name`'s `Display` form (Unicode for IDNA labels).
pub fn push_display(out: &mut String, name: &Name) {
    if !plain_name(out, name, true) {
        let _ = write!(out, "{name}");
    }
}

/// Length of `name.to_ascii()`, without making it for plain names.
pub fn ascii_len(name: &Name) -> usize {
    if name.iter().all(|l| plain_label(l, false)) {
        let labels: usize = name.iter().map(|l| l.len() + 1).sum();
        // `n` labels take n-1 dots, plus the final one of a fully qualified name.
        labels.saturating_sub(1) + usize::from(name.is_root() || name.is_fqdn())
    } else {
        name.to_ascii().len()
    }
}

fn push_debug_name(out: &mut String, name: &Name) {
    out.push_str("Name(\"");
    push_display(out, name);
    out.push_str("\")");
}

fn push_int(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Appends `format!("{data:?}")`: written here for the types `records` makes, by hickory's
/// derived `Debug` for the rest.
pub fn push_debug(out: &mut String, data: &RData) {
    match data {
        RData::SRV(s) => {
            out.push_str("SRV(SRV { priority: ");
            push_int(out, s.priority);
            out.push_str(", weight: ");
            push_int(out, s.weight);
            out.push_str(", port: ");
            push_int(out, s.port);
            out.push_str(", target: ");
            push_debug_name(out, &s.target);
            out.push_str(" })");
        }
        RData::MX(mx) => {
            out.push_str("MX(MX { preference: ");
            push_int(out, mx.preference);
            out.push_str(", exchange: ");
            push_debug_name(out, &mx.exchange);
            out.push_str(" })");
        }
        RData::TXT(txt) => {
            out.push_str("TXT(TXT { txt_data: [");
            for (i, s) in txt.txt_data.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push('[');
                for (j, &b) in s.iter().enumerate() {
                    if j > 0 {
                        out.push_str(", ");
                    }
                    push_int(out, b);
                }
                out.push(']');
            }
            out.push_str("] })");
        }
        RData::CNAME(c) => {
            out.push_str("CNAME(CNAME(");
            push_debug_name(out, &c.0);
            out.push_str("))");
        }
        RData::NS(ns) => {
            out.push_str("NS(NS(");
            push_debug_name(out, &ns.0);
            out.push_str("))");
        }
        other => {
            let _ = write!(out, "{other:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, MX, NS, SRV, TXT};

    fn names() -> Vec<Name> {
        let parsed = [
            ".",
            "example.com.",
            "example.com",
            "_imaps._tcp.example.com.",
            "*.example.com.",
            "a-b.x_y.EXAMPLE.org.",
            "xn--bcher-kva.example.",
            "XN--bcher-kva.example.",
            "bücher.example.",
        ]
        .iter()
        .map(|s| Name::from_str_relaxed(s).unwrap());
        // Labels only the wire can carry: dots, spaces, quotes, a leading dash, an inner star,
        // bytes outside ASCII.
        let raw: [&[u8]; 6] = [b"a.b", b"a b", b"a\"b", b"-lead", b"mid*", b"\x01\xff"];
        let raw = raw.into_iter().map(|l| {
            let mut n = Name::from_labels(vec![l, &b"example"[..]]).unwrap();
            n.set_fqdn(true);
            n
        });
        parsed.chain(raw).collect()
    }

    #[test]
    fn names_are_written_as_hickory_writes_them() {
        for n in names() {
            let mut s = String::new();
            push_ascii(&mut s, &n);
            assert_eq!(s, n.to_ascii(), "to_ascii of {n:?}");
            assert_eq!(ascii_len(&n), n.to_ascii().len(), "length of {n:?}");
            let mut s = String::new();
            push_display(&mut s, &n);
            assert_eq!(s, n.to_string(), "Display of {n:?}");
        }
    }

    #[test]
    fn record_data_is_written_as_its_debug_form() {
        let mut data = vec![
            RData::A(A::new(192, 0, 2, 1)),
            RData::AAAA(AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            RData::TXT(TXT::from_bytes(vec![])),
            RData::TXT(TXT::from_bytes(vec![b"", b"v=spf1 -all", "ü\"\\\n".as_bytes()])),
        ];
        for n in names() {
            data.push(RData::SRV(SRV::new(0, 1, 65535, n.clone())));
            data.push(RData::MX(MX::new(10, n.clone())));
            data.push(RData::CNAME(CNAME(n.clone())));
            data.push(RData::NS(NS(n)));
        }
        for d in data {
            let mut s = String::new();
            push_debug(&mut s, &d);
            assert_eq!(s, format!("{d:?}"));
        }
    }

    #[test]
    fn every_record_of_the_example_zones_is_written_as_its_debug_form() {
        let settings = crate::settings::Settings::load(std::path::Path::new("deploy/mailconf.example.toml"))
            .expect("the example settings load");
        let all = crate::records::all(&settings);
        assert!(!all.is_empty());
        for r in all.iter().flat_map(|d| d.zones.iter()).flat_map(|z| z.records()) {
            let mut s = String::new();
            push_display(&mut s, &r.name);
            push_debug(&mut s, &r.data);
            assert_eq!(s, format!("{}{:?}", r.name, r.data));
        }
    }
}
