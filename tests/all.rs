//! The integration tests, one module per topic, linked into one test binary (`cargo test --test
//! all`, `cargo test --test all http::` for one topic): one link instead of one per topic.
//!
//! A new topic file `tests/NAME.rs` joins with a `mod NAME;` line below (and `use crate::common;`
//! in place of its own `mod common;`); `every_topic_file_is_linked` fails until it does, since
//! `autotests = false` keeps cargo from building it on its own.

mod common;

mod acme;
mod acme_dns01;
mod acme_faults;
mod dav;
mod dns;
mod dnssec;
mod faults;
mod floods;
mod fuzz_corpus;
mod http;
mod ops;
mod probe;
mod render;
mod scale_reload;
mod setup;
#[cfg(feature = "sources")]
mod sources;
mod zone;

/// Every `tests/*.rs` is a module here: none is silently left out of the run.
#[test]
fn every_topic_file_is_linked() {
    let this = include_str!("all.rs");
    let dir = common::root().join("tests");
    let mut topics = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".rs"))
        else {
            continue;
        };
        if name == "all" {
            continue;
        }
        assert!(
            this.lines().any(|l| l == format!("mod {name};")),
            "tests/{name}.rs is not a module of tests/all.rs: its tests would never run"
        );
        topics += 1;
    }
    assert!(topics >= 8, "only {topics} topic files found in {}", dir.display());
}
