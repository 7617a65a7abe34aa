//! Pure renderers: records → zone-file text; (settings, address) → client documents.
//!
//! No I/O, clock, randomness, hyper or hickory server types here: the same input always gives
//! the same bytes, which is what the golden-file tests rely on.

pub mod zonefile;
