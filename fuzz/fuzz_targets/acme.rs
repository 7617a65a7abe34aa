#![no_main]
//! See `mailconf::fuzzing::Fixture::acme` for the input format and the invariants.

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mailconf::fuzzing::Fixture;

static FIXTURE: LazyLock<Fixture> = LazyLock::new(Fixture::new);

fuzz_target!(|data: &[u8]| FIXTURE.acme(data));
