//! The one XML writer every XML format uses: UTF-8, declaration first, two-space indent, and
//! text always escaped by quick-xml (user input never reaches markup unescaped).

use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

pub(crate) type W = Writer<Vec<u8>>;

/// A complete document: `<?xml version="1.0" encoding="utf-8"?>` then whatever `body` writes.
pub(crate) fn document(body: impl FnOnce(&mut W) -> io::Result<()>) -> Vec<u8> {
    // Room for a whole Thunderbird or Outlook answer (1–3 KB), so it is not grown step by step.
    let mut w = Writer::new_with_indent(Vec::with_capacity(4096), b' ', 2);
    // Writing to a Vec cannot fail.
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
        .expect("write to Vec");
    body(&mut w).expect("write to Vec");
    let mut out = w.into_inner();
    out.push(b'\n');
    out
}

/// `<name>text</name>`, escaped.
pub(crate) fn text(w: &mut W, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name).write_text_content(BytesText::new(value))?;
    Ok(())
}
