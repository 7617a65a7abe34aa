//! Pure renderers: records → zone-file text; (settings, address) → client documents and the
//! setup page for people.
//!
//! No I/O, clock, randomness, hyper or hickory server types here: the same input always gives
//! the same bytes, which is what the golden-file tests rely on. Client formats read only the
//! [`crate::model::ClientConfig`] view.

pub mod autodiscover;
pub mod autodiscover_json;
pub mod mobileconfig;
pub mod setup;
pub mod thunderbird;
mod xml;
pub mod zonefile;
