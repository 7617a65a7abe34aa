//! Rules of `[[source]]` tables, of the rows a database source gives and of the services a
//! source declares for its domains.

use super::*;

#[cfg(feature = "sources")] // settings refuse [[source]] without it
const SOURCE: &str = r#"
[[source]]
name = "pfa"
kind = "sqlite"
url = "sqlite:///var/lib/postfix.db"
query = "SELECT domain, alias_of FROM d"
provider = "examplemail"
[source.domain.dns]
nameservers = ["ns1.example.net."]
autoconfig_addresses = ["192.0.2.10"]
mx = [{ host = "mx.example.net.", preference = 10 }]
[source.domain.mta_sts]
mode = "testing"
"#;

#[cfg(feature = "sources")]
fn row(domain: Option<&str>, provider: Option<&str>, alias_of: Option<&str>) -> Row {
    Row {
        domain: domain.map(Into::into),
        provider: provider.map(Into::into),
        alias_of: alias_of.map(Into::into),
        problem: None,
    }
}

#[cfg(feature = "sources")]
#[test]
fn source_settings_are_checked() {
    let text = format!(
        "{PROVIDER}\n[[source]]\nkind = \"oracle\"\nurl = \"x\"\nquery = \"\"\n\
         [[source]]\nkind = \"sqlite\"\nurl = \"postgres://h/db\"\nurl_file = \"/f\"\nquery = \"q\"\nlisten = \"ch\"\nprovider = \"nope\"\nrefresh = 0\n\
         [[source]]\nname = \"a b\"\nkind = \"mysql\"\nquery = \"q\"\n"
    );
    let e = errors(&text);
    let want = [
        "source[0].kind: `oracle` is not one of postgres, mysql, sqlite",
        "source[0].query: must not be empty",
        "source[1].url: give either url or url_file, not both",
        "source[1].provider: unknown provider \"nope\"",
        "source[1].refresh: must be 1 to 86400 seconds",
        "source[1].listen: LISTEN is PostgreSQL only",
        "source[2].name: must be 1 to 64 letters, digits, `-` or `_` (it names the file kept in state_dir)",
        "source[2]: needs a connection: url, or url_file",
    ];
    for w in want {
        assert!(e.iter().any(|l| l.contains(w)), "missing `{w}` in {e:#?}");
    }
    assert!(!format!("{e:?}").contains("postgres://h/db"), "a URL is never echoed");
    let s = ok(&format!("{PROVIDER}{SOURCE}"));
    assert_eq!(s.sources[0].refresh, std::time::Duration::from_secs(60));
    assert!(!format!("{:?}", s.sources[0]).contains("postfix.db"));
}

#[cfg(feature = "sources")]
#[test]
fn source_rows_join_the_file_domains() {
    let base = ok(&format!("{PROVIDER}{DOMAIN}{SOURCE}"));
    let long = "a".repeat(300);
    let mut too_long = Row::default();
    too_long.domain = too_long.value("domain", Ok::<_, String>(Some(long)));
    let rows = vec![
        row(Some("one.example"), None, None),
        row(Some("Two.Example."), None, None),
        row(Some("alias.example"), None, Some("one.example")),
        row(Some("example.com"), None, None),
        row(None, None, None),
        row(Some("bad_name"), None, None),
        row(Some("three.example"), Some("nope"), None),
        row(Some("orphan.example"), None, Some("missing.example")),
        row(Some("one.example"), None, None),
        too_long,
    ];
    let (s, report) = base.with_sources(&[Some(std::sync::Arc::new(rows.clone()))], None);
    let bad: Vec<String> = report.bad.iter().map(ToString::to_string).collect();
    assert_eq!(
        bad,
        [
            "source `pfa` row 5 (domain `NULL`): domain is NULL",
            "source `pfa` row 6 (domain `bad_name`): `bad_name` is not a valid host name (labels of letters, digits and `-`, at most 63 octets each, 253 in all, at least two labels)",
            "source `pfa` row 7 (domain `three.example`): unknown provider \"nope\"",
            &format!(
                "source `pfa` row 10 (domain `{}…`): `domain` is longer than 253 bytes",
                "a".repeat(64)
            ),
            "source `pfa` row 8 (domain `orphan.example`): alias of `missing.example`, which this source does not return",
        ]
    );
    assert_eq!(
        report.duplicates.iter().map(|d| d.1.as_str()).collect::<Vec<_>>(),
        [
            "domain `example.com` is defined in the settings file (domain[0]) and by source `pfa` row 4: the file's definition wins",
            "domain `one.example` is defined by source `pfa` row 1 and by source `pfa` row 9: the first wins",
        ]
    );
    assert_eq!(report.counts, [(10, 3)]);
    assert_eq!(s.domains.len(), 3);
    let one = s.domain("alias.example").unwrap();
    assert_eq!(one.name, "one.example");
    let two = s.domain("two.example").unwrap();
    // One copy of [source.domain] for every domain of the source.
    assert!(std::sync::Arc::ptr_eq(
        one.dns.as_ref().unwrap(),
        two.dns.as_ref().unwrap()
    ));
    assert!(std::sync::Arc::ptr_eq(
        one.mta_sts.as_ref().unwrap(),
        two.mta_sts.as_ref().unwrap()
    ));
    assert_eq!(*two.mta_sts.as_ref().unwrap().mx, ["mx.example.net"]);
    assert!(s.domain("example.com").unwrap().dns.as_ref().unwrap().mx.is_empty());

    // A new result: what did not change is shared with the previous settings.
    let mut changed = rows;
    changed[1] = row(Some("two.example"), Some("examplemail"), None);
    changed.push(row(Some("four.example"), None, None));
    changed.remove(0);
    changed.remove(1);
    let (after, _) = base.with_sources(&[Some(std::sync::Arc::new(changed))], Some(&s));
    assert!(after.domain("one.example").is_some(), "row 9 is one.example too");
    let shared = |n: &str| {
        let a: *const Domain = s.domain(n).unwrap();
        let b: *const Domain = after.domain(n).unwrap();
        a == b
    };
    assert!(shared("two.example") && shared("example.com"));
    assert!(!shared("one.example"), "lost its alias");
    assert!(after.domain("alias.example").is_none());
}

/// A build without the `sources` feature refuses `[[source]]` rather than ignore it.
#[cfg(not(feature = "sources"))]
#[test]
fn sources_need_the_feature() {
    let text = format!(
        "{PROVIDER}\n[[source]]\nkind = \"sqlite\"\nurl = \"sqlite:///x.db\"\nquery = \"SELECT domain FROM d\"\nprovider = \"examplemail\"\n"
    );
    let e = errors(&text);
    assert!(
        e.iter()
            .any(|l| l
                .ends_with("source[0]: this mailconf was built without database sources (cargo feature `sources`)")),
        "{e:?}"
    );
}

/// `[source.domain]` services: shared by every row; an issuer needs the source's provider.
#[cfg(feature = "sources")]
#[test]
fn a_source_declares_services_for_its_domains() {
    let provider = provider_with(
        "pacc = true\nusername = \"%EMAILLOCALPART%\"\ncaldav = { url = \"https://dav.example.net/cal/\" }\n\
         carddav = { url = \"https://dav.example.net/card/\" }",
    );
    let src = format!("{provider}{SOURCE}[source.domain.caldav]\nurl = \"https://cal.example.org/dav/\"\n");
    let s = ok(&src);
    let (merged, _) = s.with_sources(
        &[Some(std::sync::Arc::new(vec![
            row(Some("one.example"), None, None),
            row(Some("two.example"), None, None),
        ]))],
        None,
    );
    let (one, two) = (
        merged.domain("one.example").unwrap(),
        merged.domain("two.example").unwrap(),
    );
    assert_eq!(
        one.services().dav(Dav::CalDav).unwrap().url,
        "https://cal.example.org/dav/"
    );
    assert!(std::sync::Arc::ptr_eq(
        one.own.as_ref().unwrap(),
        two.own.as_ref().unwrap()
    ));
    let errs = errors(&src.replace("provider = \"examplemail\"\n[source", "[source").replace(
        "[source.domain.caldav]\nurl = \"https://cal.example.org/dav/\"\n",
        "[source.domain.oauth2]\nissuer = \"https://login.example.org\"\n",
    ));
    assert!(
        errs.iter()
            .any(|e| e.contains("source[0].domain.oauth2: needs the source's `provider`")),
        "{errs:?}"
    );
}
