//! The HTTP front end to end: the real binary on loopback, raw HTTP/1.1 requests, and
//! independent readers (xmllint, Python's ElementTree and plistlib) for what it answers.

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use common::{
    Server, example_without_listeners, http_get, http_post, http_request, raw_request_status, root, temp_dir, tool,
};

fn serve(name: &str) -> (Server, SocketAddr, std::path::PathBuf) {
    let dir = temp_dir(name);
    let config = example_without_listeners(&dir);
    let s = Server::start(&config, &["--http-listen", "127.0.0.1:0"], 1);
    let addr = s.addrs("HTTP")[0];
    (s, addr, dir)
}

fn pox_request(email: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>{email}</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"#
    )
}

/// xmllint says well-formed.
fn assert_well_formed(dir: &Path, name: &str, body: &[u8]) {
    let f = dir.join(name);
    std::fs::write(&f, body).unwrap();
    let out = Command::new(tool("xmllint", "libxml2-utils"))
        .args(["--noout", "--nonet"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(body)
    );
}

/// The independent reader's view of some documents (tests/tools/clientdocs.py).
fn read_docs(dir: &Path, docs: &[(&str, &[u8])]) -> serde_json::Value {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("tests/tools/clientdocs.py"));
    for (kind, bytes) in docs {
        let f = dir.join(format!("doc-{kind}"));
        std::fs::write(&f, bytes).unwrap();
        cmd.arg(format!("{kind}={}", f.display()));
    }
    let out = cmd.output().expect("python3");
    assert!(
        out.status.success(),
        "clientdocs.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn thunderbird_answers_every_address_form_on_both_urls() {
    let (_s, addr, dir) = serve("http-tb");
    for path in ["/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"] {
        for (query, host, user) in [
            (
                "?emailaddress=fred%40example.com",
                "autoconfig.example.com",
                "fred@example.com",
            ),
            ("?emailaddress=fred@example.com", "example.com", "fred@example.com"),
            (
                "?emailaddress=Fred%40EXAMPLE.org",
                "autoconfig.example.org",
                "Fred@example.org",
            ),
            (
                "?emailaddress=EVOLUTIONUSER%40example.com&emailmd5=0123",
                "autoconfig.example.com",
                "EVOLUTIONUSER@example.com",
            ),
            ("", "autoconfig.example.com", "%EMAILADDRESS%"),
            ("", "AUTOCONFIG.Example.COM:443", "%EMAILADDRESS%"),
        ] {
            let r = http_get(addr, &format!("{path}{query}"), host);
            assert_eq!(r.status, 200, "{path}{query} {host}: {}", r.text());
            assert!(
                r.header("content-type").unwrap().starts_with("application/xml"),
                "{:?}",
                r.headers
            );
            assert!(r.body.starts_with(b"<?xml version=\"1.0\" encoding=\"utf-8\"?>"));
            assert_well_formed(&dir, "tb.xml", &r.body);
            let docs = read_docs(&dir, &[("thunderbird", &r.body)]);
            assert_eq!(docs["logins"]["thunderbird"][0], user, "{query}");
            // Only this customer's names, never another domain on the same provider.
            assert_eq!(docs["checks"][0]["emailProvider"], "example.com");
            assert_eq!(
                docs["checks"][0]["domains"],
                serde_json::json!(["example.com", "example.org"])
            );
        }
    }
}

#[test]
fn outlook_pox_on_every_casing_and_content_type() {
    let (_s, addr, dir) = serve("http-pox");
    for path in [
        "/autodiscover/autodiscover.xml",
        "/Autodiscover/Autodiscover.xml",
        "/AutoDiscover/AutoDiscover.xml",
        "/AUTODISCOVER/AUTODISCOVER.XML",
    ] {
        for ct in [Some("text/xml; charset=utf-8"), Some("application/xml"), None] {
            let r = http_post(
                addr,
                path,
                "autodiscover.example.com",
                ct,
                pox_request("fred@example.com").as_bytes(),
            );
            assert_eq!(r.status, 200, "{path}");
            assert!(r.header("content-type").unwrap().starts_with("text/xml"));
            assert!(r.body.starts_with(b"<?xml version=\"1.0\" encoding=\"utf-8\"?>"));
            assert_well_formed(&dir, "pox.xml", &r.body);
            let docs = read_docs(&dir, &[("pox", &r.body)]);
            assert_eq!(docs["logins"]["pox"][0], "fred@example.com");
            assert_eq!(
                docs["servers"]["pox"][3],
                serde_json::json!(["smtp", "mail.example.net", 587, "starttls"])
            );
        }
    }
    // GET (Delta Chat, probes): the Host's settings, no LoginName.
    let r = http_get(addr, "/autodiscover/autodiscover.xml", "autodiscover.example.com");
    assert_eq!(r.status, 200);
    assert!(
        !r.text().contains("LoginName") && r.text().contains("<Server>mail.example.net</Server>"),
        "{}",
        r.text()
    );
}

#[test]
fn pox_errors_follow_the_spec() {
    let (_s, addr, dir) = serve("http-pox-err");
    let mobilesync = r#"<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"><Request><EMailAddress>fred@example.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006</AcceptableResponseSchema></Request></Autodiscover>"#;
    let r = http_post(
        addr,
        "/autodiscover/autodiscover.xml",
        "example.com",
        None,
        mobilesync.as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_well_formed(&dir, "601.xml", &r.body);
    let t = r.text();
    assert!(
        t.contains(
            r#"<Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006">"#
        ),
        "{t}"
    );
    assert!(
        t.contains("<ErrorCode>601</ErrorCode>") && !t.contains("<Protocol>"),
        "{t}"
    );

    let xxe = r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd"><!ENTITY y "fred@example.com">]><Autodiscover><Request><EMailAddress>&y;</EMailAddress></Request></Autodiscover>"#;
    let lol = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"{}\">]><Autodiscover>&a;</Autodiscover>",
        "x".repeat(100)
    );
    for bad in [
        xxe.as_bytes(),
        lol.as_bytes(),
        b"<Autodiscover><Request>".as_slice(),
        b"\xff\xfe\x00garbage".as_slice(),
        b"".as_slice(),
        pox_request("not an address").as_bytes(),
    ] {
        let r = http_post(
            addr,
            "/autodiscover/autodiscover.xml",
            "example.com",
            Some("text/xml"),
            bad,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("<ErrorCode>600</ErrorCode>"), "{}", r.text());
        assert!(
            !r.text().contains("root:") && !r.text().contains("fred@example.com"),
            "nothing expanded: {}",
            r.text()
        );
        assert_well_formed(&dir, "600.xml", &r.body);
    }
    // Too large: 413 before any parsing.
    let big = vec![b'a'; 200 * 1024];
    let r = http_post(
        addr,
        "/autodiscover/autodiscover.xml",
        "example.com",
        Some("text/xml"),
        &big,
    );
    assert_eq!(r.status, 413);
    // A configured address is required; another domain's data is never given.
    let r = http_post(
        addr,
        "/autodiscover/autodiscover.xml",
        "example.com",
        None,
        pox_request("fred@unknown.example").as_bytes(),
    );
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("mail.example.net"));
}

#[test]
fn autodiscover_json_v2() {
    let (_s, addr, _) = serve("http-json");
    for q in [
        "?Email=fred@example.com&Protocol=AutodiscoverV1",
        "?Email=fred%40example.com&Protocol=Autodiscoverv1&RedirectCount=1",
        "?email=fred@example.com&protocol=autodiscoverv1",
    ] {
        let r = http_get(
            addr,
            &format!("/autodiscover/autodiscover.json{q}"),
            "autodiscover.example.com",
        );
        assert_eq!(r.status, 200, "{q}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"Protocol": "AutodiscoverV1", "Url": "https://autodiscover.example.com/autodiscover/autodiscover.xml"})
        );
    }
    let r = http_get(
        addr,
        "/autodiscover/autodiscover.json/v1.0/fred@example.org?Protocol=AutodiscoverV1",
        "x",
    );
    assert_eq!(r.status, 200);
    assert!(r.text().contains("https://autodiscover.example.org/"), "{}", r.text());
    let r = http_get(
        addr,
        "/autodiscover/autodiscover.json?Email=fred@example.com&Protocol=ActiveSync",
        "x",
    );
    assert_eq!(r.status, 400);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["ErrorCode"], "InvalidProtocol");
    assert_eq!(
        v["ErrorMessage"],
        "The given protocol value 'ActiveSync' is invalid. Supported values are 'AutodiscoverV1'"
    );
    assert_eq!(
        http_get(
            addr,
            "/autodiscover/autodiscover.json?Email=a@unknown.example&Protocol=AutodiscoverV1",
            "x"
        )
        .status,
        404
    );
}

#[test]
fn apple_profile_parses_and_keeps_identifiers_per_address() {
    let (_s, addr, dir) = serve("http-apple");
    let get = |a: &str| {
        http_get(
            addr,
            &format!("/apple/profile.mobileconfig?emailaddress={a}"),
            "autoconfig.example.com",
        )
    };
    let r = get("fred@example.com");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-apple-aspen-config"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"example.com.mobileconfig\"")
    );
    let a = read_docs(&dir, &[("mobileconfig", &r.body)]);
    let again = read_docs(&dir, &[("mobileconfig", &get("fred%40example.com").body)]);
    let other = read_docs(&dir, &[("mobileconfig", &get("wilma@example.com").body)]);
    assert_eq!(a["checks"], again["checks"], "stable for one address");
    assert_ne!(
        a["checks"][0]["PayloadUUID"], other["checks"][0]["PayloadUUID"],
        "distinct across addresses"
    );
    assert_ne!(
        a["checks"][0]["PayloadIdentifier"],
        other["checks"][0]["PayloadIdentifier"]
    );
    assert_eq!(
        a["servers"]["mobileconfig"],
        serde_json::json!([
            ["imap", "mail.example.net", 993, "tls"],
            ["smtp", "mail.example.net", 465, "tls"]
        ])
    );
}

#[test]
fn mta_sts_policy_only_on_its_host() {
    let (_s, addr, _) = serve("http-sts");
    let r = http_get(addr, "/.well-known/mta-sts.txt", "mta-sts.example.com");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert_eq!(
        r.text(),
        "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.net\r\nmx: mx2.example.net\r\nmax_age: 604800\r\n"
    );
    assert_eq!(http_get(addr, "/.well-known/mta-sts.txt", "example.com").status, 404);
    assert_eq!(
        http_get(addr, "/.well-known/mta-sts.txt", "mta-sts.example.info").status,
        404,
        "no policy configured"
    );
}

#[test]
fn unknown_domains_paths_and_methods() {
    let (s, addr, _) = serve("http-errors");
    for path in [
        "/mail/config-v1.1.xml",
        "/.well-known/autoconfig/mail/config-v1.1.xml",
        "/autodiscover/autodiscover.xml",
        "/apple/profile.mobileconfig",
    ] {
        let r = http_get(addr, path, "autoconfig.unknown.example");
        assert_eq!(r.status, 404, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with("text/plain") && !r.text().contains("mail.example.net"),
            "{path}"
        );
        let r = http_get(
            addr,
            &format!("{path}?emailaddress=a@unknown.example"),
            "autoconfig.example.com",
        );
        assert_eq!(r.status, 404, "the address's domain decides, not the Host: {path}");
    }
    assert_eq!(http_get(addr, "/nothing-here", "example.com").status, 404);
    let r = http_request(addr, None, "DELETE", "/mail/config-v1.1.xml", "example.com", None, b"").unwrap();
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    let r = http_request(
        addr,
        None,
        "PUT",
        "/autodiscover/autodiscover.xml",
        "example.com",
        None,
        b"",
    )
    .unwrap();
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD, POST")));
    assert_eq!(http_get(addr, "/healthz", "x").status, 200);
    // The request log names the domain, never the address.
    let _ = http_get(
        addr,
        "/mail/config-v1.1.xml?emailaddress=secret.person%40example.com",
        "x",
    );
    s.wait_log(
        |l| l.contains("endpoint=\"thunderbird\"") && l.contains("status=200"),
        1,
        "request log",
    );
    assert!(!s.log_text().contains("secret.person"), "{}", s.log_text());
}

#[test]
fn hostile_addresses_are_refused_or_escaped() {
    let (s, addr, dir) = serve("http-hostile");
    for a in [
        "%3Cscript%3E%40example.com",
        "%22q%22%40example.com",
        "a%0D%0AX-Injected:%201%40example.com",
        "a%00b%40example.com",
        "%40example.com",
        "fred",
        "fred%40exa%20mple.com",
    ] {
        let r = http_get(addr, &format!("/mail/config-v1.1.xml?emailaddress={a}"), "example.com");
        assert_eq!(r.status, 400, "{a}: {}", r.text());
        assert!(r.header("x-injected").is_none());
        assert!(!r.text().contains('<'), "{a}");
    }
    // Legal but unusual local parts come back escaped and well-formed.
    let r = http_get(
        addr,
        "/mail/config-v1.1.xml?emailaddress=o'neil%2Btag%26%40example.com",
        "example.com",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_well_formed(&dir, "odd.xml", &r.body);
    assert!(
        r.text()
            .contains("<username>o&apos;neil+tag&amp;@example.com</username>"),
        "{}",
        r.text()
    );
    // Unicode domain: the ASCII form is looked up and written.
    let r = http_get(
        addr,
        "/mail/config-v1.1.xml?emailaddress=fred%40b%C3%BCcher.example",
        "example.com",
    );
    assert_eq!(r.status, 404, "not configured, but parsed: {}", r.text());
    // 1 MB parameter, huge header: refused without harm.
    let huge = "a".repeat(1024 * 1024);
    let status = raw_request_status(
        addr,
        format!("GET /mail/config-v1.1.xml?emailaddress={huge}%40example.com HTTP/1.1\r\nHost: example.com\r\n\r\n")
            .as_bytes(),
    );
    assert!(matches!(status, Some(431 | 414 | 400)), "{status:?}");
    let r = http_get(addr, "/healthz", "example.com");
    assert_eq!(r.status, 200, "still serving");
    assert!(!s.log_text().contains("panicked"));
}

#[test]
fn slow_clients_time_out() {
    use std::io::{Read, Write};
    let (_s, addr, _) = serve("http-slow");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap(); // never finishes the head
    c.set_read_timeout(Some(std::time::Duration::from_secs(25))).unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    let waited = started.elapsed();
    assert!(waited < std::time::Duration::from_secs(20), "closed after {waited:?}");
    assert!(
        buf.is_empty() || String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
}

/// One address: the SRV set (over DNS), the Thunderbird XML, the POX answer, the v2 JSON and
/// the profile describe the same servers, ports and TLS modes — all read back by a different
/// implementation than the one that wrote them.
#[test]
fn every_source_describes_the_same_servers() {
    let dir = temp_dir("http-consistency");
    let config = example_without_listeners(&dir);
    let s = Server::start(
        &config,
        &["--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0"],
        2,
    );
    let (http, dns) = (s.addrs("HTTP")[0], s.addrs("DNS")[0]);
    let tb = http_get(
        http,
        "/mail/config-v1.1.xml?emailaddress=fred%40example.com",
        "autoconfig.example.com",
    );
    let pox = http_post(
        http,
        "/autodiscover/autodiscover.xml",
        "autodiscover.example.com",
        None,
        pox_request("fred@example.com").as_bytes(),
    );
    let json = http_get(
        http,
        "/autodiscover/autodiscover.json?Email=fred@example.com&Protocol=AutodiscoverV1",
        "x",
    );
    let apple = http_get(http, "/apple/profile.mobileconfig?emailaddress=fred%40example.com", "x");
    let mut srv = String::new();
    for label in ["_submissions", "_submission", "_imaps", "_imap", "_pop3s", "_pop3"] {
        let out = Command::new(tool("dig", "dnsutils"))
            .args([
                format!("@{}", dns.ip()),
                "-p".into(),
                dns.port().to_string(),
                "+noall".into(),
                "+answer".into(),
                format!("{label}._tcp.example.com"),
                "SRV".into(),
            ])
            .output()
            .unwrap();
        srv.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    let docs = read_docs(
        &dir,
        &[
            ("thunderbird", &tb.body),
            ("pox", &pox.body),
            ("mobileconfig", &apple.body),
            ("json", &json.body),
            ("srv", srv.as_bytes()),
        ],
    );
    let servers = &docs["servers"];
    let want = serde_json::json!([
        ["imap", "mail.example.net", 993, "tls"],
        ["pop3", "mail.example.net", 995, "tls"],
        ["smtp", "mail.example.net", 465, "tls"],
        ["smtp", "mail.example.net", 587, "starttls"]
    ]);
    assert_eq!(servers["thunderbird"], want);
    assert_eq!(servers["pox"], want);
    assert_eq!(servers["srv"], want, "SRV priorities give the same order:\n{srv}");
    // The profile holds one server per direction: the first implicit-TLS one.
    assert_eq!(servers["mobileconfig"], serde_json::json!([want[0], want[2]]));
    assert_eq!(docs["logins"]["thunderbird"], docs["logins"]["pox"]);
    assert!(
        docs["checks"]
            .to_string()
            .contains("https://autodiscover.example.com/autodiscover/autodiscover.xml")
    );
}

/// HTTPS from PEM files (a test CA's certificate for the example's web names): the server, its
/// HTTPS address, the CA file.
fn serve_https(name: &str) -> (Server, SocketAddr, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = temp_dir(name);
    let config = example_without_listeners(&dir);
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Not the leaf's default name, or OpenSSL takes the leaf for self-signed.
    ca.distinguished_name.push(rcgen::DnType::CommonName, "test CA h2");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let names = [
        "autoconfig.example.com".to_string(),
        "autodiscover.example.com".to_string(),
    ];
    let leaf = CertificateParams::new(names).unwrap().signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    let tls = format!(
        "\n[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    );
    std::fs::write(&config, text + &tls).unwrap();
    let s = Server::start(&config, &["--https-listen", "127.0.0.1:0"], 1);
    let addr = s.addrs("HTTPS")[0];
    (s, addr, dir.join("ca.pem"))
}

type H2 = hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>;
/// A request body sent piece by piece.
type Chunks = http_body_util::StreamBody<
    futures::channel::mpsc::UnboundedReceiver<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>>,
>;

/// An HTTP/2 connection from a client that offers only `h2` in ALPN (rustls and hyper's client);
/// also returns the task driving the connection, which ends when the server closes it.
async fn h2_connect<B>(
    addr: SocketAddr,
    ca: &Path,
    sni: &str,
) -> (hyper::client::conn::http2::SendRequest<B>, tokio::task::JoinHandle<()>)
where
    B: hyper::body::Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(ServerName::try_from(sni.to_string()).unwrap(), tcp)
        .await
        .expect("TLS handshake offering only h2");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    (send, driver)
}

/// One HTTP/2 exchange: (status, HTTP version, body).
async fn h2_send(
    send: &mut H2,
    method: &str,
    uri: &str,
    body: &[u8],
) -> Result<(u16, hyper::Version, Vec<u8>), hyper::Error> {
    use http_body_util::BodyExt;
    let req = hyper::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "text/xml")
        .body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(body)))
        .unwrap();
    let resp = send.send_request(req).await?;
    let (status, version) = (resp.status().as_u16(), resp.version());
    let body = resp.into_body().collect().await?.to_bytes().to_vec();
    Ok((status, version, body))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// HTTPS speaks HTTP/2 to a client that offers only `h2`, many requests at once on one
/// connection, with the same answers and limits as HTTP/1.1; curl picks HTTP/2 or HTTP/1.1 as
/// told; a client without ALPN keeps HTTP/1.1.
#[test]
fn https_offers_http2_beside_http1() {
    let (s, addr, ca) = serve_https("http-h2");
    let tb = "/mail/config-v1.1.xml?emailaddress=";
    runtime().block_on(async {
        let (mut h2, _driver): (H2, _) = h2_connect(addr, &ca, "autoconfig.example.com").await;
        let (status, version, body) = h2_send(
            &mut h2,
            "GET",
            &format!("https://autoconfig.example.com{tb}fred%40example.com"),
            b"",
        )
        .await
        .unwrap();
        assert_eq!((status, version), (200, hyper::Version::HTTP_2));
        assert!(String::from_utf8_lossy(&body).contains("<username>fred@example.com</username>"));
        // 40 streams at once on the one connection, each with its own answer.
        let answers = futures::future::join_all((0..40).map(|i| {
            let mut h2 = h2.clone();
            async move {
                let uri = format!("https://autoconfig.example.com{tb}user{i}%40example.com");
                (i, h2_send(&mut h2, "GET", &uri, b"").await.unwrap())
            }
        }))
        .await;
        for (i, (status, _, body)) in answers {
            assert_eq!(status, 200);
            assert!(String::from_utf8_lossy(&body).contains(&format!("<username>user{i}@example.com</username>")));
        }
        // The POX POST reads its body; an oversized body gets 413 as over HTTP/1.1.
        let pox = pox_request("fred@example.com");
        let uri = "https://autodiscover.example.com/autodiscover/autodiscover.xml";
        let (status, _, body) = h2_send(&mut h2, "POST", uri, pox.as_bytes()).await.unwrap();
        assert_eq!(status, 200);
        assert!(String::from_utf8_lossy(&body).contains("<LoginName>fred@example.com</LoginName>"));
        let (status, _, _) = h2_send(&mut h2, "POST", uri, &vec![b'x'; 100 * 1024]).await.unwrap();
        assert_eq!(status, 413);
        // The connection still serves after that.
        let (status, _, _) = h2_send(&mut h2, "GET", "https://autoconfig.example.com/healthz", b"")
            .await
            .unwrap();
        assert_eq!(status, 200);
    });
    // curl (libcurl with nghttp2, OpenSSL): HTTP/2 when asked, HTTP/1.1 when asked, same bytes.
    let curl = |version: &str| {
        let out = Command::new(tool("curl", "curl"))
            .args(["-sS", version, "--cacert"])
            .arg(&ca)
            .arg("--resolve")
            .arg(format!("autoconfig.example.com:{}:127.0.0.1", addr.port()))
            .args(["-w", "\n%{http_version} %{http_code}"])
            .arg(format!(
                "https://autoconfig.example.com:{}{tb}fred%40example.com",
                addr.port()
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, tail) = text.rsplit_once('\n').unwrap();
        (body.to_string(), tail.to_string())
    };
    let (b2, v2) = curl("--http2");
    let (b1, v1) = curl("--http1.1");
    assert_eq!((v2.as_str(), v1.as_str()), ("2 200", "1.1 200"));
    assert_eq!(b2, b1);
    // No ALPN at all: HTTP/1.1 as before.
    let r = common::https_get(addr, &ca, "autoconfig.example.com", "/healthz").unwrap();
    assert_eq!(r.status, 200);
    s.wait_log(
        |l| l.contains("request") && l.contains("tls=true") && l.contains("status=413"),
        1,
        "413 logged",
    );
}

/// The server's order of cipher suites wins: a client that lists AES-256-GCM-SHA384 first (as
/// OpenSSL does) gets AES-128-GCM-SHA256, whose SHA-256 runs on the CPU's SHA instructions; a
/// client that offers only ChaCha20 still connects. Over TLS 1.3 and 1.2, read by openssl.
#[test]
fn https_prefers_aes_128_gcm_over_the_clients_order() {
    let (_s, addr, ca) = serve_https("http-suites");
    let suite = |args: &[&str]| {
        let mut child = Command::new(tool("openssl", "openssl"))
            .args([
                "s_client",
                "-connect",
                &addr.to_string(),
                "-servername",
                "autoconfig.example.com",
            ])
            .arg("-CAfile")
            .arg(&ca)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text
            .lines()
            .find(|l| l.contains("Cipher is"))
            .unwrap_or_else(|| panic!("no cipher in s_client's output: {text}"));
        assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
        line.rsplit(' ').next().unwrap().to_string()
    };
    let tls13 = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
    assert_eq!(suite(&["-tls1_3", "-ciphersuites", tls13]), "TLS_AES_128_GCM_SHA256");
    assert_eq!(
        suite(&["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"]),
        "TLS_CHACHA20_POLY1305_SHA256"
    );
    let tls12 = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256";
    assert_eq!(suite(&["-tls1_2", "-cipher", tls12]), "ECDHE-ECDSA-AES128-GCM-SHA256");
}

/// HTTP/2 keeps the slow-client protections: an idle connection (hyper gives HTTP/2 no header
/// read timeout) is closed after the read timeout; on SIGTERM a request in flight still gets
/// its answer, and an idle connection does not hold up the exit.
#[test]
fn http2_idle_timeout_and_graceful_shutdown() {
    use http_body_util::{BodyExt, StreamBody};
    let (mut s, addr, ca) = serve_https("http-h2-idle");
    let rt = runtime();
    rt.block_on(async {
        let (mut h2, driver): (H2, _) = h2_connect(addr, &ca, "autoconfig.example.com").await;
        let (status, _, _) = h2_send(&mut h2, "GET", "https://autoconfig.example.com/healthz", b"")
            .await
            .unwrap();
        assert_eq!(status, 200);
        let started = std::time::Instant::now();
        tokio::time::timeout(std::time::Duration::from_secs(25), driver)
            .await
            .expect("idle HTTP/2 connection still open after 25 s")
            .unwrap();
        let waited = started.elapsed();
        assert!(
            waited > std::time::Duration::from_secs(5) && waited < std::time::Duration::from_secs(20),
            "closed after {waited:?}"
        );
    });
    // A POST whose body is half sent when SIGTERM arrives is answered; an idle connection
    // beside it does not delay the exit.
    let (status, elapsed) = rt.block_on(async {
        let (_idle, _) = h2_connect::<http_body_util::Full<bytes::Bytes>>(addr, &ca, "autoconfig.example.com").await;
        let (mut stream_h2, conn) = h2_connect::<Chunks>(addr, &ca, "autodiscover.example.com").await;
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let req = hyper::Request::post("https://autodiscover.example.com/autodiscover/autodiscover.xml")
            .header("content-type", "text/xml")
            .body(StreamBody::new(rx))
            .unwrap();
        let pox = pox_request("fred@example.com").into_bytes();
        let (first, rest) = pox.split_at(pox.len() / 2);
        tx.unbounded_send(Ok(hyper::body::Frame::data(bytes::Bytes::copy_from_slice(first))))
            .unwrap();
        let answer = tokio::spawn(async move { stream_h2.send_request(req).await });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        s.signal("TERM");
        let started = std::time::Instant::now();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        tx.unbounded_send(Ok(hyper::body::Frame::data(bytes::Bytes::copy_from_slice(rest))))
            .unwrap();
        drop(tx);
        let resp = answer.await.unwrap().expect("answered during shutdown");
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("<LoginName>fred@example.com</LoginName>"));
        let _ = conn.await;
        (status, started)
    });
    assert_eq!(status, 200);
    let exit = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            elapsed.elapsed() < std::time::Duration::from_secs(5),
            "idle HTTP/2 connection held up the exit\n{}",
            s.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
}
