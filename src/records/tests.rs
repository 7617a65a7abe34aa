//! Records: priorities, not-offered labels, aliases, CNAME web hosts, delegation, serials, TXT.
use super::*;

const BASE: &str = r#"
[provider.p]
display_name = "P"
[[provider.p.server]]
protocol = "imap"
host = "mail.example.net"
port = 993
security = "tls"
[[provider.p.server]]
protocol = "pop3"
host = "pop.example.net"
port = 110
security = "starttls"
[[provider.p.server]]
protocol = "smtp"
host = "mail.example.net"
port = 587
security = "starttls"
[[provider.p.server]]
protocol = "smtp"
host = "mail.example.net"
port = 465
security = "tls"
[[domain]]
name = "example.com"
provider = "p"
aliases = ["example.org"]
[domain.dns]
nameservers = ["ns1.example.net"]
autoconfig_addresses = ["192.0.2.10"]
"#;

fn settings(text: &str) -> Settings {
    Settings::from_toml(text, "t.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// `owner TYPE rdata` lines of every zone and the parent, in order.
fn lines(dr: &DomainRecords) -> Vec<String> {
    dr.zones
        .iter()
        .flat_map(|z| z.records())
        .chain(dr.parent.iter().flat_map(|g| g.records.iter()))
        .map(|r| {
            format!(
                "{} {} {}",
                r.name,
                r.record_type(),
                crate::render::zonefile::rdata_text(&r.data)
            )
        })
        .collect()
}

fn srv(all: &[String], label: &str) -> Vec<String> {
    all.iter()
        .filter(|l| l.starts_with(&format!("{label}._tcp.")))
        .cloned()
        .collect()
}

#[test]
fn srv_priorities_follow_configuration_order() {
    let s = settings(BASE);
    let all = lines(&for_name(&s, &s.domains[0], "example.com").unwrap());
    assert_eq!(
        srv(&all, "_imaps"),
        ["_imaps._tcp.example.com. SRV 0 1 993 mail.example.net."]
    );
    assert_eq!(
        srv(&all, "_pop3"),
        ["_pop3._tcp.example.com. SRV 10 1 110 pop.example.net."]
    );
    assert_eq!(
        srv(&all, "_submission"),
        ["_submission._tcp.example.com. SRV 0 1 587 mail.example.net."]
    );
    assert_eq!(
        srv(&all, "_submissions"),
        ["_submissions._tcp.example.com. SRV 10 1 465 mail.example.net."]
    );
    // Not offered: RFC 6186 §4 "decidedly not available", alone in its RRset.
    assert_eq!(srv(&all, "_imap"), ["_imap._tcp.example.com. SRV 0 0 0 ."]);
    assert_eq!(srv(&all, "_pop3s"), ["_pop3s._tcp.example.com. SRV 0 0 0 ."]);
    assert_eq!(
        srv(&all, "_autodiscover"),
        ["_autodiscover._tcp.example.com. SRV 0 1 443 autodiscover.example.com."]
    );
}

#[test]
fn alias_gets_its_own_zone_with_its_own_names() {
    let s = settings(BASE);
    let all = all(&s);
    assert_eq!(
        all.iter().map(|d| d.domain.as_str()).collect::<Vec<_>>(),
        ["example.com", "example.org"]
    );
    let org = lines(&all[1]);
    assert!(
        org.iter().all(|l| l.contains("example.org.") || l.contains("SRV")),
        "{org:?}"
    );
    assert!(
        org.contains(&"autoconfig.example.org. A 192.0.2.10".to_string()),
        "{org:?}"
    );
    assert_eq!(all[1].zones[0].origin.to_ascii(), "example.org.");
}

#[test]
fn cname_web_host_is_never_an_srv_target() {
    let s = settings(&BASE.replace(
        "autoconfig_addresses = [\"192.0.2.10\"]",
        "autoconfig_cname = \"web.example.net.\"\nmx = [{ host = \"mx.example.net\", preference = 10 }]\n[domain.mta_sts]\nmode = \"enforce\"",
    ));
    let all = lines(&for_name(&s, &s.domains[0], "example.com").unwrap());
    assert!(all.contains(&"_autodiscover._tcp.example.com. SRV 0 1 443 web.example.net.".to_string()));
    for l in ["autoconfig", "autodiscover", "mta-sts"] {
        let owned: Vec<_> = all
            .iter()
            .filter(|x| x.starts_with(&format!("{l}.example.com.")))
            .collect();
        assert_eq!(
            owned,
            [&format!("{l}.example.com. CNAME web.example.net.")],
            "CNAME alone at its owner"
        );
    }
    assert!(
        all.iter()
            .any(|l| l.starts_with("_mta-sts.example.com. TXT \"v=STSv1; id="))
    );
}

#[test]
fn delegated_zones_and_parent_lines() {
    let s = settings(&BASE.replace(
        "nameservers = [\"ns1.example.net\"]",
        "nameservers = [\"ns1.example.net\"]\nzones = [\"_tcp\", \"autoconfig\"]\nspf = \"v=spf1 -all\"",
    ));
    let dr = for_name(&s, &s.domains[0], "example.com").unwrap();
    let origins: Vec<_> = dr.zones.iter().map(|z| z.origin.to_ascii()).collect();
    assert_eq!(origins, ["_tcp.example.com.", "autoconfig.example.com."]);
    assert!(
        dr.zones[0]
            .records()
            .all(|r| r.name.to_ascii().ends_with("_tcp.example.com."))
    );
    let parent: Vec<String> = dr
        .parent
        .iter()
        .flat_map(|g| g.records.iter())
        .map(|r| format!("{} {}", r.name, r.record_type()))
        .collect();
    assert_eq!(
        parent,
        [
            "_tcp.example.com. NS",
            "autoconfig.example.com. NS",
            "example.com. TXT",
            "autodiscover.example.com. A",
        ]
    );
    assert_eq!(dr.parent[0].kind, GroupKind::Delegation);
}

#[test]
fn serial_follows_content_unless_given() {
    let a = settings(BASE);
    let b = settings(&BASE.replace("port = 993", "port = 994"));
    let serial = |s: &Settings| for_name(s, &s.domains[0], "example.com").unwrap().zones[0].serial;
    assert_eq!(serial(&a), serial(&settings(BASE)), "deterministic");
    assert_ne!(serial(&a), serial(&b), "content change → new serial");
    let fixed = settings(&BASE.replace("nameservers", "serial = 2026010101\nnameservers"));
    let dr = for_name(&fixed, &fixed.domains[0], "example.com").unwrap();
    assert_eq!(dr.zones[0].serial, 2026010101);
    assert!(matches!(&dr.zones[0].soa().data, RData::SOA(soa) if soa.serial == 2026010101 && soa.minimum == 300));
}

#[test]
fn no_dns_table_no_records() {
    let s = settings(&BASE[..BASE.find("[domain.dns]").unwrap()]);
    assert!(all(&s).is_empty());
}

#[test]
fn txt_chunking() {
    assert_eq!(txt_chunks(""), [""]);
    let long = "a".repeat(600);
    assert_eq!(
        txt_chunks(&long).iter().map(String::len).collect::<Vec<_>>(),
        [255, 255, 90]
    );
    let multi = format!("{}ü", "a".repeat(254));
    assert_eq!(txt_chunks(&multi).iter().map(String::len).collect::<Vec<_>>(), [254, 2]);
}
