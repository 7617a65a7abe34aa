//! Calendars, contacts and PACC (issue 15) end to end: the real binary on loopback with DNS, HTTP
//! and HTTPS, read by independent clients — `dig`, `curl -X PROPFIND`, `xmllint`, Python's
//! plistlib and ElementTree, and a PACC reader written from the draft (tests/tools/pacc_reader.py:
//! dnspython, ssl, hashlib).

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    Server, http_get, http_request, https_get, mailconf, python_with_dnspython, raw_request_status, root, stderr,
    temp_dir, tool,
};

const DAV: &str = "tests/fixtures/dav.toml";

/// The DAV fixture served from loopback: web hosts at 127.0.0.1, a state directory, and a test
/// CA's certificate for the web names of example.org.
struct Dav {
    server: Server,
    dir: PathBuf,
    config: PathBuf,
    dns: SocketAddr,
    http: SocketAddr,
    https: SocketAddr,
}

fn config_text(dir: &Path, display_name: &str) -> String {
    let text = std::fs::read_to_string(root().join(DAV))
        .unwrap()
        .replace("\"192.0.2.10\", \"2001:db8::10\"", "\"127.0.0.1\"")
        .replace(
            "display_name = \"Dav Mail & <Co>\"",
            &format!("display_name = \"{display_name}\""),
        )
        .replace(
            "preference = 10 }]\n",
            "preference = 10 }]\n[domain.dns.hosts]\n\"@\" = [\"127.0.0.1\"]\n",
        );
    format!(
        "[server]\nstate_dir = \"{}\"\n{text}\n[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        dir.join("state").display(),
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    )
}

fn start(name: &str) -> Dav {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = temp_dir(name);
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "test CA dav");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = ["example.org", "example.biz", "owndav.example"]
        .iter()
        .flat_map(|d| ["ua-auto-config.", "autoconfig.", ""].map(|l| format!("{l}{d}")))
        .collect();
    let leaf = CertificateParams::new(names).unwrap().signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let config = dir.join("mailconf.toml");
    std::fs::write(&config, config_text(&dir, "Dav Mail & <Co>")).unwrap();
    run(dir, config)
}

fn run(dir: PathBuf, config: PathBuf) -> Dav {
    let server = Server::start(
        &config,
        &[
            "--dns-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--https-listen",
            "127.0.0.1:0",
        ],
        3,
    );
    let (dns, http, https) = (
        server.addrs("DNS")[0],
        server.addrs("HTTP listening")[0],
        server.addrs("HTTPS")[0],
    );
    Dav {
        server,
        dir,
        config,
        dns,
        http,
        https,
    }
}

/// `dig @addr -p port +short NAME TYPE`, one answer per line.
fn dig(addr: SocketAddr, name: &str, rtype: &str) -> Vec<String> {
    let out = Command::new(tool("dig", "dnsutils"))
        .arg(format!("@{}", addr.ip()))
        .args([
            "-p",
            &addr.port().to_string(),
            "+norec",
            "+time=2",
            "+tries=2",
            "+short",
            name,
            rtype,
        ])
        .output()
        .unwrap();
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// What Thunderbird's CardDAVUtils asks for at the well-known URL.
const PROPFIND: &str =
    "<?xml version=\"1.0\"?><propfind xmlns=\"DAV:\"><prop><current-user-principal/></prop></propfind>";

/// `curl -X METHOD` through loopback with a Host header: (status, Location).
fn curl(addr: SocketAddr, method: &str, host: &str, path: &str) -> (u16, String) {
    let mut cmd = Command::new(tool("curl", "curl"));
    cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}"])
        .args(["-H", &format!("Host: {host}")]);
    match method {
        "HEAD" => cmd.arg("-I"),
        "PROPFIND" => cmd
            .args(["-X", method, "-H", "Depth: 0", "-H", "Content-Type: application/xml"])
            .args(["--data", PROPFIND]),
        _ => cmd.args(["-X", method]),
    };
    let out = cmd.arg(format!("http://{addr}{path}")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (code, loc) = text.split_once(' ').unwrap_or((&text, ""));
    (code.parse().unwrap_or(0), loc.to_string())
}

/// Run the independent PACC reader for `address`: (exit code, stdout, stderr).
fn pacc_reader(d: &Dav, address: &str, tamper: bool) -> (i32, String, String) {
    let mut cmd = Command::new(python_with_dnspython());
    cmd.arg(root().join("tests/tools/pacc_reader.py"))
        .arg(address)
        .args(["--dns", &d.dns.to_string(), "--https-port", &d.https.port().to_string()])
        .arg("--cafile")
        .arg(d.dir.join("ca.pem"));
    if tamper {
        cmd.arg("--tamper");
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Thunderbird's CardDAV discovery (`CardDAVUtils.detectAddressBooks`): SRV `_carddavs._tcp`,
/// then TXT `path=` at the same name, then PROPFIND (Depth 0) on `/.well-known/carddav`, which
/// must redirect to the context path; and the same for CalDAV.
#[test]
fn rfc6764_discovery_in_thunderbirds_order() {
    let d = start("dav-rfc6764");
    assert_eq!(
        dig(d.dns, "_carddavs._tcp.example.org", "SRV"),
        ["0 1 8443 dav.example.net."]
    );
    assert_eq!(dig(d.dns, "_carddavs._tcp.example.org", "TXT"), ["\"path=/carddav/\""]);
    assert_eq!(
        dig(d.dns, "_caldavs._tcp.example.org", "SRV"),
        ["0 1 443 dav.example.net."]
    );
    assert_eq!(dig(d.dns, "_caldavs._tcp.example.org", "TXT"), ["\"path=/caldav/\""]);
    assert_eq!(dig(d.dns, "_carddav._tcp.example.org", "SRV"), ["0 0 0 ."]);
    assert_eq!(dig(d.dns, "_caldav._tcp.example.org", "SRV"), ["0 0 0 ."]);
    // The alias has its own records; a provider with contacts only says "no calendars".
    assert_eq!(dig(d.dns, "_carddavs._tcp.example.biz", "TXT"), ["\"path=/carddav/\""]);
    assert_eq!(dig(d.dns, "_caldavs._tcp.example.edu", "SRV"), ["0 0 0 ."]);
    assert_eq!(
        dig(d.dns, "_carddavs._tcp.example.edu", "SRV"),
        ["0 1 443 contacts.example.net."]
    );

    // Plain HTTP with HTTPS available: still the 307 straight to the https DAV URL, for every
    // method a DAV client starts with, on the mail domain and its web hosts.
    for method in ["PROPFIND", "GET", "HEAD"] {
        for host in ["example.org", "autoconfig.example.org", "EXAMPLE.biz:80"] {
            let want_card = (307, "https://dav.example.net:8443/carddav/".to_string());
            assert_eq!(
                curl(d.http, method, host, "/.well-known/carddav"),
                want_card,
                "{method} {host}"
            );
            let want_cal = (307, "https://dav.example.net/caldav/".to_string());
            assert_eq!(
                curl(d.http, method, host, "/.well-known/caldav"),
                want_cal,
                "{method} {host}"
            );
        }
    }
    assert_eq!(
        curl(d.http, "PROPFIND", "example.edu", "/.well-known/carddav"),
        (307, "https://contacts.example.net/dav".to_string())
    );
    assert_eq!(curl(d.http, "PROPFIND", "example.edu", "/.well-known/caldav").0, 404);
    assert_eq!(
        curl(d.http, "PROPFIND", "unknown.example", "/.well-known/caldav").0,
        404
    );
    // Never the DAV service itself (RFC 6764 §5): other methods are refused.
    let r = http_request(d.http, None, "PUT", "/.well-known/caldav", "example.org", None, b"x").unwrap();
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD, PROPFIND")));
    assert_eq!(curl(d.http, "PROPFIND", "example.org", "/.well-known/caldav/x").0, 404);
}

/// The PACC reader accepts the served body, rejects a body the digest does not cover; after a
/// change the old digest stays beside the new one, also across a restart (state_dir).
#[test]
fn pacc_reader_verifies_the_digest_and_survives_a_rollover() {
    let d = start("dav-pacc");
    let (code, out, err) = pacc_reader(&d, "fred@example.org", false);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["records"], 1);
    let doc = &v["document"];
    assert_eq!(doc["protocols"]["imap"]["host"], "imap.example.net");
    assert_eq!(doc["protocols"]["submit"]["host"], "smtp.example.net");
    assert_eq!(
        doc["protocols"]["carddav"]["url"],
        "https://dav.example.net:8443/carddav/"
    );
    assert_eq!(
        doc["authentication"]["oauth-public"]["issuer"],
        "https://login.example.net"
    );
    assert_eq!(doc["authentication"]["password"], true);
    assert_eq!(doc["info"]["provider"]["name"], "Dav Mail & <Co>");
    let (code, _, err) = pacc_reader(&d, "fred@example.org", true);
    assert_eq!(code, 2, "a tampered body must be rejected: {err}");
    assert!(err.contains("rejected"), "{err}");
    // The alias serves the same bytes under its own host and record.
    assert_eq!(pacc_reader(&d, "ann@example.biz", false).0, 0);
    // A provider without PACC: no document, no record.
    let host = "ua-auto-config.example.edu";
    let out = Command::new(tool("curl", "curl"))
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", "--resolve"])
        .arg(format!("{host}:{}:127.0.0.1", d.https.port()))
        .arg(format!(
            "https://{host}:{}/.well-known/user-agent-configuration.json",
            d.https.port()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
    assert!(dig(d.dns, "_ua-auto-config.example.edu", "TXT").is_empty());

    let before = dig(d.dns, "_ua-auto-config.example.org", "TXT");
    assert_eq!(before.len(), 1, "{before:?}");
    std::fs::write(&d.config, config_text(&d.dir, "Dav Mail renamed")).unwrap();
    d.server.signal("HUP");
    d.server.wait_log(|l| l.contains("reload done"), 1, "reload");
    let after = dig(d.dns, "_ua-auto-config.example.org", "TXT");
    assert_eq!(after.len(), 2, "old and new digest: {after:?}");
    assert!(after.contains(&before[0]), "{after:?}");
    let (code, out, err) = pacc_reader(&d, "fred@example.org", false);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Dav Mail renamed"), "{out}");
    assert!(out.contains("\"records\": 2"), "{out}");

    // Restart: the state directory keeps the retired digest published.
    let Dav {
        server, dir, config, ..
    } = d;
    drop(server);
    let d = run(dir, config);
    assert_eq!(dig(d.dns, "_ua-auto-config.example.org", "TXT"), after);
    assert_eq!(pacc_reader(&d, "fred@example.org", false).0, 0);
}

/// A provider without `documentation`: every domain's PACC body points to its setup page, so
/// each domain has its own digest; the independent reader accepts them, and a changed provider
/// keeps every domain's old digests published through a reload and a restart.
#[test]
fn pacc_without_documentation_points_to_the_setup_page() {
    let d = start("dav-pacc-setup");
    let no_doc = |display_name: &str| {
        config_text(&d.dir, display_name)
            .replace("documentation = \"https://help.example.net/setup?lang=en&x=1\"\n", "")
    };
    let reload = |text: String, n: usize| {
        std::fs::write(&d.config, text).unwrap();
        d.server.signal("HUP");
        d.server.wait_log(|l| l.contains("reload done"), n, "reload");
    };
    let with_doc = dig(d.dns, "_ua-auto-config.example.org", "TXT");
    reload(no_doc("Dav Mail & <Co>"), 1);
    for (address, page) in [
        ("fred@example.org", "https://autoconfig.example.org/setup"),
        // The alias serves its primary name's body (and page) under its own host and record.
        ("ann@example.biz", "https://autoconfig.example.org/setup"),
    ] {
        let (code, out, err) = pacc_reader(&d, address, false);
        assert_eq!(code, 0, "{address}: {out}{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["document"]["info"]["help"]["documentation"], page, "{out}");
        assert_eq!(
            v["records"], 2,
            "the digest with documentation is still published: {out}"
        );
    }
    assert_eq!(pacc_reader(&d, "fred@example.org", true).0, 2, "tampered");
    // A domain with its own documentation keeps it.
    let (code, out, _) = pacc_reader(&d, "fred@owndav.example", false);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("https://help.owndav.example/"), "{out}");
    let named = dig(d.dns, "_ua-auto-config.example.org", "TXT");
    assert!(named.contains(&with_doc[0]), "{named:?}");
    assert_eq!(
        named,
        dig(d.dns, "_ua-auto-config.example.biz", "TXT"),
        "the alias: its primary's"
    );
    // The provider changes: the old named body stays published for every domain.
    reload(no_doc("Dav Mail renamed"), 2);
    let renamed = dig(d.dns, "_ua-auto-config.example.org", "TXT");
    assert_eq!(renamed.len(), 3, "{renamed:?}");
    assert!(named.iter().all(|t| renamed.contains(t)), "{renamed:?}");
    let (code, out, err) = pacc_reader(&d, "fred@example.org", false);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Dav Mail renamed"), "{out}");
    // Restart: the state directory keeps the bodies, so the same records.
    let biz = dig(d.dns, "_ua-auto-config.example.biz", "TXT");
    let Dav {
        server, dir, config, ..
    } = d;
    drop(server);
    let d = run(dir, config);
    assert_eq!(dig(d.dns, "_ua-auto-config.example.org", "TXT"), renamed);
    assert_eq!(dig(d.dns, "_ua-auto-config.example.biz", "TXT"), biz);
    assert_eq!(pacc_reader(&d, "ann@example.biz", false).0, 0);
}

/// Autoconfig 1.2 over HTTP (xmllint; ElementTree sees the lower-case `addressbook`), and the
/// Apple DAV payloads read back with plistlib.
#[test]
fn autoconfig_and_apple_documents_read_back() {
    let d = start("dav-docs");
    let r = http_get(
        d.http,
        "/mail/config-v1.1.xml?emailaddress=fred%40example.org",
        "autoconfig.example.org",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let xml = d.dir.join("tb.xml");
    std::fs::write(&xml, &r.body).unwrap();
    let lint = Command::new(tool("xmllint", "libxml2-utils"))
        .args(["--noout", "--nonet"])
        .arg(&xml)
        .output()
        .unwrap();
    assert!(lint.status.success(), "{}", stderr(&lint));
    let script = r#"
import sys, json, plistlib, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
out = {"version": root.get("version"),
       "children": [c.tag for c in root],
       "card": [root.find("addressbook").get("type"), root.findtext("addressbook/url"),
                root.find("addressbook/authentication").get("system"), root.findtext("addressbook/authentication"),
                root.findtext("addressbook/username")],
       "cal": [root.find("calendar").get("type"), root.findtext("calendar/url"), root.findtext("calendar/username")],
       "issuer": root.findtext("oAuth2/issuer"),
       "doc": root.find("emailProvider/documentation").get("url")}
with open(sys.argv[2], "rb") as f:
    top = plistlib.load(f)
out["payloads"] = [{k: v for k, v in p.items() if not k.startswith("Payload") or k == "PayloadType"}
                   for p in top["PayloadContent"][1:]]
print(json.dumps(out))
"#;
    let profile = mailconf(&[
        "render",
        "mobileconfig",
        "--config",
        DAV,
        "--address",
        "fred@example.org",
    ]);
    assert!(profile.status.success(), "{}", stderr(&profile));
    let plist = d.dir.join("profile.mobileconfig");
    std::fs::write(&plist, &profile.stdout).unwrap();
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&xml)
        .arg(&plist)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], "1.2");
    assert_eq!(
        v["children"],
        serde_json::json!(["emailProvider", "oAuth2", "calendar", "addressbook"])
    );
    assert_eq!(
        v["card"],
        serde_json::json!([
            "carddav",
            "https://dav.example.net:8443/carddav/",
            "http",
            "Basic",
            "fred"
        ])
    );
    assert_eq!(
        v["cal"],
        serde_json::json!(["caldav", "https://dav.example.net/caldav/", "fred@example.org"])
    );
    assert_eq!(v["issuer"], "https://login.example.net");
    assert_eq!(v["doc"], "https://help.example.net/setup?lang=en&x=1");
    assert_eq!(
        v["payloads"],
        serde_json::json!([
            {"CalDAVAccountDescription": "Dav Mail & <Co> calendars", "CalDAVHostName": "dav.example.net",
             "CalDAVPort": 443, "CalDAVPrincipalURL": "https://dav.example.net/caldav/", "CalDAVUseSSL": true,
             "CalDAVUsername": "fred@example.org", "PayloadType": "com.apple.caldav.account"},
            {"CardDAVAccountDescription": "Dav Mail & <Co> contacts", "CardDAVHostName": "dav.example.net",
             "CardDAVPort": 8443, "CardDAVUseSSL": true, "CardDAVUsername": "fred",
             "PayloadType": "com.apple.carddav.account"}
        ])
    );
}

/// The hostile-address list of the other endpoints, as the address parameter and in the Host
/// header of the new ones: refused or ignored, never echoed, and the server keeps serving.
#[test]
fn hostile_input_on_the_new_endpoints() {
    let d = start("dav-hostile");
    let hostile = [
        "%3Cscript%3E%40example.com",
        "%22q%22%40example.com",
        "a%0D%0AX-Injected:%201%40example.com",
        "a%00b%40example.com",
        "%40example.com",
        "fred",
        "fred%40exa%20mple.com",
    ];
    for a in hostile {
        for (path, host) in [
            ("/.well-known/caldav", "example.org"),
            ("/.well-known/carddav", "autoconfig.example.org"),
            (
                "/.well-known/user-agent-configuration.json",
                "ua-auto-config.example.org",
            ),
        ] {
            let r = http_get(d.http, &format!("{path}?emailaddress={a}"), host);
            assert!(r.header("x-injected").is_none());
            assert!(
                !r.text().contains('<') && !r.text().contains("script"),
                "{a}: {}",
                r.text()
            );
            assert!(matches!(r.status, 301 | 307), "{path} {a}: {}", r.status);
        }
    }
    for host in [
        "<script>.example.org",
        "example.org\u{0}",
        "..example.org",
        "ua-auto-config.",
        "ua-auto-config.ua-auto-config.example.org",
        "xn--.example.org",
    ] {
        for path in ["/.well-known/caldav", "/.well-known/user-agent-configuration.json"] {
            if let Ok(r) = http_request(d.http, None, "PROPFIND", path, host, None, b"") {
                assert!(matches!(r.status, 400 | 404 | 405), "{path} {host:?}: {}", r.status);
                assert!(!r.text().contains("script"), "{}", r.text());
            }
        }
    }
    let huge = "a".repeat(70 * 1024);
    let status = raw_request_status(
        d.http,
        format!("PROPFIND /.well-known/carddav HTTP/1.1\r\nHost: {huge}.example.org\r\n\r\n").as_bytes(),
    );
    assert!(matches!(status, Some(400 | 404 | 431)), "{status:?}");
    assert_eq!(curl(d.http, "PROPFIND", "example.org", "/.well-known/caldav").0, 307);
    assert!(!d.server.log_text().contains("panicked"));
}

/// `mailconf probe` with `--config`: findings of the DAV and PACC steps for what `dns_from`
/// publishes in DNS and `https_from` serves over HTTPS.
fn probe(dns_from: &Dav, https_from: &Dav, domain: &str) -> Vec<(String, String, String)> {
    let out = mailconf(&[
        "probe",
        domain,
        "--json",
        "--resolver",
        &dns_from.dns.to_string(),
        "--ca-file",
        dns_from.dir.join("ca.pem").to_str().unwrap(),
        "--timeout",
        "3",
        "--http-port",
        &https_from.http.port().to_string(),
        "--https-port",
        &https_from.https.port().to_string(),
        "--config",
        dns_from.config.to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", String::from_utf8_lossy(&out.stdout), stderr(&out)));
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["step"] == "dav" || f["step"] == "pacc")
        .map(|f| {
            (
                f["level"].as_str().unwrap().to_string(),
                f["subject"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The probe walks SRV → TXT → PROPFIND for both services and checks the PACC body against its
/// digest; a body whose digest DNS does not publish fails.
#[test]
fn probe_checks_dav_and_pacc() {
    let a = start("dav-probe-a");
    let f = probe(&a, &a, "example.org");
    let subjects: Vec<&str> = f.iter().map(|(_, s, _)| s.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "_caldavs._tcp.example.org SRV",
            "PROPFIND https://example.org/.well-known/caldav",
            "_carddavs._tcp.example.org SRV",
            "PROPFIND https://example.org/.well-known/carddav",
            "_ua-auto-config.example.org TXT",
            "https://ua-auto-config.example.org/.well-known/user-agent-configuration.json",
        ],
        "{f:#?}"
    );
    assert!(f.iter().all(|(l, _, _)| l == "pass"), "{f:#?}");
    assert_eq!(f[3].2, "307 to https://dav.example.net:8443/carddav/");
    assert!(f[5].2.contains("protocols: caldav, carddav, imap, submit"), "{f:#?}");
    // example.edu: contacts only, no PACC: no calendar or PACC finding at all.
    let edu = probe(&a, &a, "example.edu");
    assert_eq!(edu.len(), 2, "{edu:#?}");

    // DNS from one server, HTTPS from another whose provider name differs: digest mismatch.
    let b = start("dav-probe-b");
    std::fs::write(&b.config, config_text(&b.dir, "Someone Else")).unwrap();
    b.server.signal("HUP");
    b.server.wait_log(|l| l.contains("reload done"), 1, "reload");
    // b's certificate comes from b's CA: trust both.
    let both = a.dir.join("both.pem");
    let pems = [a.dir.join("ca.pem"), b.dir.join("ca.pem")].map(|p| std::fs::read_to_string(p).unwrap());
    std::fs::write(&both, pems.concat()).unwrap();
    std::fs::copy(&both, a.dir.join("ca.pem")).unwrap();
    let f = probe(&a, &b, "example.org");
    let last = f.last().unwrap();
    assert_eq!(last.0, "fail", "{f:#?}");
    assert!(last.2.contains("matches none of the published digests"), "{f:#?}");
}

/// A domain that declares its own calendars (and help page) over its provider's: its own SRV and
/// TXT, its own redirect, Thunderbird `<calendar>`, Apple payload, PACC body and digest, while
/// example.org, of the same provider, keeps the provider's. After a reload that drops the
/// declaration the domain's old digest stays published beside the provider's.
#[test]
fn a_domain_declaring_its_own_calendars_overrides_its_provider() {
    let d = start("dav-own");
    // DNS: own CalDAV, the provider's CardDAV; the sibling keeps the provider's CalDAV.
    assert_eq!(
        dig(d.dns, "_caldavs._tcp.owndav.example", "SRV"),
        ["0 1 443 cal.owndav.example."]
    );
    assert_eq!(dig(d.dns, "_caldavs._tcp.owndav.example", "TXT"), ["\"path=/dav/\""]);
    assert_eq!(
        dig(d.dns, "_carddavs._tcp.owndav.example", "SRV"),
        ["0 1 8443 dav.example.net."]
    );
    assert_eq!(
        dig(d.dns, "_caldavs._tcp.example.org", "SRV"),
        ["0 1 443 dav.example.net."]
    );
    assert_eq!(dig(d.dns, "_caldavs._tcp.example.org", "TXT"), ["\"path=/caldav/\""]);

    // The `.well-known` redirects, PROPFIND as Thunderbird sends it.
    for host in ["owndav.example", "autoconfig.owndav.example"] {
        assert_eq!(
            curl(d.http, "PROPFIND", host, "/.well-known/caldav"),
            (307, "https://cal.owndav.example/dav/".to_string()),
            "{host}"
        );
        assert_eq!(
            curl(d.http, "PROPFIND", host, "/.well-known/carddav"),
            (307, "https://dav.example.net:8443/carddav/".to_string()),
            "{host}"
        );
    }
    assert_eq!(
        curl(d.http, "PROPFIND", "example.org", "/.well-known/caldav"),
        (307, "https://dav.example.net/caldav/".to_string())
    );

    // Thunderbird autoconfig 1.2, read with ElementTree; the Apple profile over HTTPS, its
    // signature checked by openssl and its payloads read with plistlib.
    let script = r#"
import sys, json, plistlib, xml.etree.ElementTree as ET
out = {}
for name, path in (("own", sys.argv[1]), ("sibling", sys.argv[2])):
    root = ET.parse(path).getroot()
    out[name] = [root.findtext("calendar/url"), root.findtext("addressbook/url"),
                 root.find("emailProvider/documentation").get("url"), root.findtext("oAuth2/issuer")]
with open(sys.argv[3], "rb") as f:
    top = plistlib.load(f)
cal = [p for p in top["PayloadContent"] if p["PayloadType"] == "com.apple.caldav.account"][0]
out["apple"] = [cal["CalDAVHostName"], cal["CalDAVPort"], cal["CalDAVPrincipalURL"], cal["CalDAVUsername"]]
print(json.dumps(out))
"#;
    for (host, file) in [("owndav.example", "own.xml"), ("example.org", "sibling.xml")] {
        let r = http_get(
            d.http,
            &format!("/mail/config-v1.1.xml?emailaddress=fred%40{host}"),
            &format!("autoconfig.{host}"),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        std::fs::write(d.dir.join(file), &r.body).unwrap();
        let lint = Command::new(tool("xmllint", "libxml2-utils"))
            .args(["--noout", "--nonet"])
            .arg(d.dir.join(file))
            .output()
            .unwrap();
        assert!(lint.status.success(), "{}", stderr(&lint));
    }
    let r = https_get(
        d.https,
        &d.dir.join("ca.pem"),
        "autoconfig.owndav.example",
        "/apple/profile.mobileconfig?emailaddress=fred%40owndav.example",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    std::fs::write(d.dir.join("own.der"), &r.body).unwrap();
    let verify = Command::new(tool("openssl", "openssl"))
        .args(["cms", "-verify", "-inform", "DER", "-purpose", "any", "-CAfile"])
        .arg(d.dir.join("ca.pem"))
        .arg("-in")
        .arg(d.dir.join("own.der"))
        .arg("-out")
        .arg(d.dir.join("own.mobileconfig"))
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", stderr(&verify));
    let out = Command::new("python3")
        .args(["-c", script])
        .args(["own.xml", "sibling.xml", "own.mobileconfig"].map(|f| d.dir.join(f)))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["own"],
        serde_json::json!([
            "https://cal.owndav.example/dav/",
            "https://dav.example.net:8443/carddav/",
            "https://help.owndav.example/",
            "https://login.example.net"
        ])
    );
    assert_eq!(
        v["sibling"],
        serde_json::json!([
            "https://dav.example.net/caldav/",
            "https://dav.example.net:8443/carddav/",
            "https://help.example.net/setup?lang=en&x=1",
            "https://login.example.net"
        ])
    );
    assert_eq!(
        v["apple"],
        serde_json::json!([
            "cal.owndav.example",
            443,
            "https://cal.owndav.example/dav/",
            "fred@owndav.example"
        ])
    );

    // PACC: the independent reader accepts each domain's body against its own digest; the
    // digests differ, and each domain publishes exactly one.
    let (code, out, err) = pacc_reader(&d, "fred@owndav.example", false);
    assert_eq!(code, 0, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["records"], 1);
    assert_eq!(
        doc["document"]["protocols"]["caldav"]["url"],
        "https://cal.owndav.example/dav/"
    );
    assert_eq!(
        doc["document"]["info"]["help"]["documentation"],
        "https://help.owndav.example/"
    );
    assert_eq!(pacc_reader(&d, "fred@owndav.example", true).0, 2, "tampered");
    let (code, out, err) = pacc_reader(&d, "fred@example.org", false);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("https://dav.example.net/caldav/"), "{out}");
    let own = dig(d.dns, "_ua-auto-config.owndav.example", "TXT");
    let sibling = dig(d.dns, "_ua-auto-config.example.org", "TXT");
    assert_eq!((own.len(), sibling.len()), (1, 1), "{own:?} {sibling:?}");
    assert_ne!(own, sibling);

    // The probe, with the settings: SRV → TXT → PROPFIND and PACC all pass for the own URL.
    let f = probe(&d, &d, "owndav.example");
    assert!(f.iter().all(|(l, _, _)| l == "pass"), "{f:#?}");
    assert!(
        f.iter().any(|(_, _, m)| m == "307 to https://cal.owndav.example/dav/"),
        "{f:#?}"
    );

    // The domain drops its declaration: the provider's digest now, its own kept for the TTL.
    let text =
        config_text(&d.dir, "Dav Mail & <Co>").replace("caldav = { url = \"https://cal.owndav.example/dav/\" }\n", "");
    std::fs::write(&d.config, text).unwrap();
    d.server.signal("HUP");
    d.server.wait_log(|l| l.contains("reload done"), 1, "reload");
    let after = dig(d.dns, "_ua-auto-config.owndav.example", "TXT");
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.contains(&own[0]), "{after:?}");
    assert_eq!(dig(d.dns, "_ua-auto-config.example.org", "TXT"), sibling);
    let (code, out, err) = pacc_reader(&d, "fred@owndav.example", false);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("https://dav.example.net/caldav/"), "{out}");
    assert_eq!(
        curl(d.http, "PROPFIND", "owndav.example", "/.well-known/caldav"),
        (307, "https://dav.example.net/caldav/".to_string())
    );
}
