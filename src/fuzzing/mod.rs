//! Entry points for the fuzz targets in `fuzz/` and for their corpus replay in the normal suite
//! (`tests/fuzz_corpus.rs`). Each takes raw outside input, runs it through the same functions the
//! servers call and asserts what a peer relies on; a broken invariant panics, exactly like a
//! crash, so libFuzzer reports it and the replay test fails. Not an API: only the fuzz targets
//! and the replay test use it.

mod dns;
mod http;
mod inputs;

pub use http::{check_xml, leaked_host, same_json_structure, unescaped_echo};

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use hickory_server::proto::rr::Name;

use crate::dns::Core;
use crate::settings::Settings;

/// The settings every target serves (`tests/fixtures/fuzz.toml`).
pub const FIXTURE: &str = include_str!("../../tests/fixtures/fuzz.toml");

/// A client the transfer ACL of the fixture refuses, and one it allows.
const OUTSIDER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99));
const SECONDARY: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The secondary that must sign with the fixture's TSIG key (`[server] transfer_to`).
const KEYED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// TSIG resource record type.
const TSIG: u16 = 250;

/// Built once per fuzzing process: the fixture's settings and DNS zones.
pub struct Fixture {
    settings: Arc<Settings>,
    pages: crate::http::pages::PageCache,
    /// The same settings with every provider's server names changed (`-mail.test` →
    /// `-mail.invalid`): a server name that an answer holds as often under these settings came
    /// from the request, not from the settings.
    renamed: (Settings, crate::http::pages::PageCache),
    dns: Core,
    /// The same zones after a reload that added `sub.alpha.test`: the catalog has a journal
    /// (IXFR from the serial before).
    journaled: Core,
    /// Every mail domain name with DNS, and the catalog: no answer may hold a name outside.
    dns_names: Vec<Name>,
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        let settings = Arc::new(Settings::from_toml(FIXTURE, "fuzz.toml").expect("the fuzz fixture is valid"));
        let dns_names = settings
            .domains
            .iter()
            .filter(|d| d.dns.is_some())
            .flat_map(|d| {
                d.names()
                    .map(|n| Name::from_ascii(format!("{n}.")).expect("a configured name"))
            })
            .chain(
                settings
                    .server
                    .catalog
                    .iter()
                    .map(|c| Name::from_ascii(c).expect("the catalog name")),
            )
            .collect();
        // The fixture without one domain, then reloaded to the whole: one catalog change.
        let start = FIXTURE
            .find("[[domain]]\nname = \"sub.alpha.test\"")
            .expect("the fixture has sub.alpha.test");
        let end = start + FIXTURE[start + 1..].find("[[domain]]").expect("a domain follows") + 1;
        let fewer = format!("{}{}", &FIXTURE[..start], &FIXTURE[end..]);
        let fewer = Settings::from_toml(&fewer, "fuzz.toml").expect("the fixture without a domain is valid");
        let journaled = Core::new(Arc::new(fewer)).reload(settings.clone());
        let renamed = Settings::from_toml(&FIXTURE.replace("-mail.test", "-mail.invalid"), "fuzz.toml")
            .expect("the renamed fixture is valid");
        Fixture {
            pages: crate::http::pages::PageCache::new(&settings),
            renamed: {
                let pages = crate::http::pages::PageCache::new(&renamed);
                (renamed, pages)
            },
            dns: Core::new(settings.clone()),
            journaled,
            settings,
            dns_names,
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
