//! The fuzz targets' inputs replayed in the normal suite, without cargo-fuzz: every committed
//! seed (`fuzz/seeds/`) and every input that once broke an invariant (`fuzz/regressions/`) goes
//! through the same checks as under libFuzzer (`mailconf::fuzzing`), so a parser change that
//! panics on any of them fails `cargo test`.

use std::path::Path;

use mailconf::fuzzing::Fixture;

/// Target name → the seed directory it reads.
const TARGETS: [(&str, &str); 10] = [
    ("dns_udp", "dns"),
    ("dns_tcp", "dns"),
    ("dns_xfr", "xfr"),
    ("tsig", "tsig"),
    ("http", "http"),
    ("pox", "pox"),
    ("settings", "settings"),
    ("probe", "probe"),
    ("sources", "sources"),
    ("acme", "acme"),
];

fn run(fx: &Fixture, target: &str, input: &[u8]) {
    match target {
        "dns_udp" => fx.dns_udp(input),
        "dns_tcp" => fx.dns_tcp(input),
        "dns_xfr" => fx.dns_xfr(input),
        "tsig" => fx.tsig(input),
        "sources" => fx.sources(input),
        "http" => fx.http(input),
        "pox" => fx.pox(input),
        "settings" => fx.settings(input),
        "probe" => fx.probe(input),
        "acme" => fx.acme(input),
        _ => unreachable!(),
    }
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn seeds_and_regressions_replay() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let fx = Fixture::new();
    let mut count = 0;
    let mut broken = Vec::new();
    for (target, seeds) in TARGETS {
        let inputs = files(&root.join("seeds").join(seeds));
        assert!(inputs.len() >= 6, "fuzz/seeds/{seeds} has {} seeds", inputs.len());
        for f in inputs.iter().chain(&files(&root.join("regressions").join(target))) {
            let input = std::fs::read(f).unwrap();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&fx, target, &input)));
            if outcome.is_err() {
                broken.push(format!("{target}: {}", f.display()));
            }
            count += 1;
        }
    }
    // Every input is replayed before failing, so one run names them all.
    assert!(
        broken.is_empty(),
        "inputs that break an invariant (each panic is printed above):\n{}",
        broken.join("\n")
    );
    assert!(count > 150, "only {count} inputs replayed");
}

/// The checks are real: inputs that break each invariant are caught.
#[test]
fn the_checks_catch_what_they_claim() {
    let fx = Fixture::new();
    let caught = |f: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
    // Not well-formed, a second root, an undeclared entity, a DTD.
    for bad in [
        "<a>",
        "<a/><b/>",
        "<a>&x;</a>",
        "<!DOCTYPE a><a/>",
        "<a b='&'/>",
        "<a></b>",
    ] {
        assert!(mailconf::fuzzing::check_xml(bad.as_bytes()).is_err(), "{bad}");
    }
    assert!(mailconf::fuzzing::check_xml(b"<?xml version=\"1.0\"?><a b=\"&amp;\">&#64;&lt;</a>").is_ok());
    // A settings input that is not UTF-8 is skipped, not a crash; a located rejection passes.
    fx.settings(b"\x00\xff");
    fx.settings(b"\x00[[domain]]\nname = 3\n");
    // A POX request is answered for the domain it asks about, never another.
    assert!(!caught(&|| fx.pox(
        b"<Autodiscover><Request><EMailAddress>a@beta.test</EMailAddress></Request></Autodiscover>"
    )));
    assert!(caught(&|| panic_if_other_domain(&fx)));
}

/// The HTTP target's echo check catches a document that repeats input unescaped, and does not
/// mistake the document's own text for an echo.
#[test]
fn the_echo_check_tells_an_echo_from_document_text() {
    use mailconf::fuzzing::unescaped_echo;
    // A renderer that forgets to escape, and one that escapes, around the same fixed text.
    let careless = |v: &str| format!("<?xml version=\"1.0\"?><Response><User>{v}</User></Response>");
    let careful = |v: &str| careless(&v.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"));
    let twin = |v: &str| v.replace(['<', '>', '&', '"'], "_");
    for input in ["a<b>@alpha.test", "<script>", "x\"y&z", "nse>"] {
        let (body, benign) = (careless(input), careless(&twin(input)));
        assert_eq!(
            unescaped_echo(&[input], body.as_bytes(), benign.as_bytes()),
            Some(input),
            "{input}"
        );
        let (body, benign) = (careful(input), careful(&twin(input)));
        assert_eq!(
            unescaped_echo(&[input], body.as_bytes(), benign.as_bytes()),
            None,
            "{input}"
        );
    }
    // Input that is also document text, not echoed: no finding (the fuzzer's `nse>` and
    // `1.0" encoding="utf-8"?>`, both replayed from fuzz/regressions/http).
    let doc = careful("someone");
    for input in ["nse>", "1.0\"?><Response>", "</User>"] {
        assert_eq!(
            unescaped_echo(&[input], doc.as_bytes(), doc.as_bytes()),
            None,
            "{input}"
        );
    }
}

/// The "another provider's servers" check counts what the settings put in, not what the
/// request repeats (the campaign's `fredsubmit.beta-mail.test@alpha.test` findings).
#[test]
fn the_leak_check_tells_a_leak_from_a_repeated_address() {
    use mailconf::fuzzing::leaked_host;
    let hosts = ["submit.beta-mail.test", "pop.beta-mail.test"];
    let doc = |server: &str, user: &str| format!("<Server>{server}</Server><LoginName>{user}</LoginName>");
    let user = "fredsubmit.beta-mail.test@alpha.test";
    // Own servers, the address repeated: the same count under renamed settings.
    let own = doc("imap.alpha-mail.test", user);
    let own_renamed = doc("imap.alpha-mail.invalid", user);
    assert_eq!(leaked_host(&hosts, own.as_bytes(), own_renamed.as_bytes()), None);
    // Another provider's server from the settings: it changes with the settings.
    let leak = doc("submit.beta-mail.test", user);
    let leak_renamed = doc("submit.beta-mail.invalid", user);
    assert_eq!(
        leaked_host(&hosts, leak.as_bytes(), leak_renamed.as_bytes()),
        Some("submit.beta-mail.test")
    );
}

/// JSON quotes `"` as `\"`, so a JSON answer is checked for structure: input that adds a key or
/// ends a string early is caught, a quoted echo is not.
#[test]
fn the_json_check_tells_injection_from_quoting() {
    use mailconf::fuzzing::same_json_structure;
    let careful = |v: &str| serde_json::json!({ "Protocol": "AutodiscoverV1", "Url": v }).to_string();
    let careless = |v: &str| format!(r#"{{"Protocol":"AutodiscoverV1","Url":"{v}"}}"#);
    let input = r#"x","Evil":"y"#;
    let twin = input.replace('"', "_");
    assert!(same_json_structure(
        careful(input).as_bytes(),
        careful(&twin).as_bytes()
    ));
    assert!(!same_json_structure(
        careless(input).as_bytes(),
        careless(&twin).as_bytes()
    ));
    // An unescaped quote that breaks the document: one parses, the other does not.
    assert!(!same_json_structure(
        careless("\"fred").as_bytes(),
        careless("_fred").as_bytes()
    ));
}

/// A hand-made breach of the "another domain's settings" rule, so the check is shown to fire.
fn panic_if_other_domain(fx: &Fixture) {
    fx.pox_expecting(
        b"<Autodiscover><Request><EMailAddress>a@beta.test</EMailAddress></Request></Autodiscover>",
        Some("alpha.test"),
    );
}
