//! The authoritative DNS front, end to end: the real binary on loopback, asked with `dig`.

use crate::common;

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Server, dig, flags, http_get, python_with_dnspython, root, section, status, temp_dir, tool};

fn serve(name: &str) -> (Server, SocketAddr, PathBuf) {
    let dir = temp_dir(name);
    let config = dir.join("mailconf.toml");
    std::fs::copy(root().join("tests/fixtures/dns.toml"), &config).unwrap();
    let server = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
    let addr = server.addrs("DNS")[0];
    (server, addr, config)
}

/// Ask secondary `who` at `addr` for `name`'s SOA until the RCODE is `want` (20 s at most);
/// dig's output then.
fn wait_for_soa(who: &str, addr: SocketAddr, name: &str, want: &str) -> String {
    for _ in 0..200 {
        let out = dig(addr, &[name, "SOA"]);
        if status(&out) == want {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{who} never answered {want} for {name}");
}

#[test]
fn srv_answers_are_authoritative_over_udp_and_tcp_with_target_addresses() {
    let (_s, addr, _) = serve("dns-srv");
    for transport in ["+notcp", "+tcp"] {
        let out = dig(addr, &[transport, "_imaps._tcp.mail.test", "SRV"]);
        assert_eq!(status(&out), "NOERROR", "{out}");
        assert!(flags(&out).contains(&"aa") && !flags(&out).contains(&"ra"), "{out}");
        assert_eq!(
            section(&out, "ANSWER"),
            ["_imaps._tcp.mail.test. 3600 IN SRV 0 1 993 imap.mail.test."],
            "{out}"
        );
        let additional = section(&out, "ADDITIONAL");
        assert!(
            additional.contains(&"imap.mail.test. 3600 IN A 192.0.2.143".to_string()),
            "{out}"
        );
        assert!(
            additional.contains(&"imap.mail.test. 3600 IN AAAA 2001:db8::143".to_string()),
            "{out}"
        );
    }
    let out = dig(addr, &["_pop3._tcp.mail.test", "SRV"]);
    assert_eq!(
        section(&out, "ANSWER"),
        ["_pop3._tcp.mail.test. 3600 IN SRV 0 0 0 ."],
        "{out}"
    );
    let out = dig(addr, &["mail.test", "MX"]);
    assert!(
        section(&out, "ADDITIONAL").contains(&"mx.mail.test. 3600 IN A 192.0.2.26".to_string()),
        "{out}"
    );
    // The alias is its own zone with the same services.
    let out = dig(addr, &["_submissions._tcp.alias.test", "SRV"]);
    assert_eq!(
        section(&out, "ANSWER"),
        ["_submissions._tcp.alias.test. 3600 IN SRV 0 1 465 smtp.mail.test."],
        "{out}"
    );
}

#[test]
fn negative_answers_carry_the_soa_with_the_negative_ttl() {
    let (_s, addr, _) = serve("dns-neg");
    let out = dig(addr, &["nothing.mail.test", "A"]);
    assert_eq!(status(&out), "NXDOMAIN", "{out}");
    assert!(flags(&out).contains(&"aa"), "{out}");
    let auth = section(&out, "AUTHORITY");
    assert_eq!(auth.len(), 1, "{out}");
    assert!(
        auth[0].starts_with("mail.test. 120 IN SOA ns1.example.net. hostmaster.mail.test."),
        "min(3600, 120): {out}"
    );
    // NODATA: the name exists, the type does not.
    let out = dig(addr, &["_imaps._tcp.mail.test", "TXT"]);
    assert_eq!((status(&out), section(&out, "ANSWER").len()), ("NOERROR", 0), "{out}");
    assert!(section(&out, "AUTHORITY")[0].contains(" 120 IN SOA "), "{out}");
    // An empty non-terminal is NODATA, not NXDOMAIN.
    let out = dig(addr, &["_tcp.mail.test", "A"]);
    assert_eq!((status(&out), section(&out, "ANSWER").len()), ("NOERROR", 0), "{out}");
}

#[test]
fn query_case_is_echoed() {
    let (_s, addr, _) = serve("dns-case");
    for transport in ["+notcp", "+tcp"] {
        let out = dig(addr, &[transport, "_IMAPS._Tcp.Mail.TEST", "SRV"]);
        assert!(out.contains(";_IMAPS._Tcp.Mail.TEST.\t\tIN\tSRV"), "question: {out}");
        assert_eq!(
            section(&out, "ANSWER"),
            ["_IMAPS._Tcp.Mail.TEST. 3600 IN SRV 0 1 993 imap.mail.test."],
            "{out}"
        );
        let out = dig(addr, &[transport, "NoSuch.Mail.Test", "A"]);
        assert!(
            section(&out, "AUTHORITY")[0].starts_with("Mail.Test. 120 IN SOA"),
            "{out}"
        );
    }
}

/// A DNS listener on a port the kernel picked (`--dns-listen 127.0.0.1:0`, as every test asks)
/// shares that port with no other socket. dig binds its client sockets to port 0 with
/// SO_REUSEPORT and connects them to the server; were the server's sockets SO_REUSEPORT too,
/// the kernel could hand dig the server's own port (same user), and dig, connected to itself,
/// would receive its own query ("Warning: query response not set", seen in `scale_reload`).
#[test]
fn a_kernel_picked_port_is_shared_with_no_client_socket() {
    use socket2::{Domain, Socket, Type};
    let (_s, addr, _) = serve("dns-picked-port");
    for ip in [[127, 0, 0, 1], [0, 0, 0, 0]] {
        let client = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        client.set_reuse_port(true).unwrap();
        let at = std::net::SocketAddr::from((ip, addr.port()));
        assert!(
            client.bind(&at.into()).is_err(),
            "a SO_REUSEPORT client socket could bind {at}, the server's UDP port"
        );
    }
    let out = dig(addr, &["_imaps._tcp.mail.test", "SRV"]);
    assert_eq!(status(&out), "NOERROR", "{out}");
}

#[test]
fn not_an_open_resolver() {
    let (_s, addr, _) = serve("dns-refused");
    let out = Command::new(tool("dig", "dnsutils"))
        .args([
            format!("@{}", addr.ip()),
            "-p".into(),
            addr.port().to_string(),
            "+rec".into(),
            "example.org".into(),
            "A".into(),
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(status(&out), "REFUSED", "{out}");
    assert!(!flags(&out).contains(&"ra") && !flags(&out).contains(&"aa"), "{out}");
    assert!(out.contains("EDE: 20 (Not Authoritative)"), "{out}");
}

#[test]
fn any_is_answered_minimally() {
    let (_s, addr, _) = serve("dns-any");
    let out = dig(addr, &["mail.test", "ANY"]);
    let answer = section(&out, "ANSWER");
    assert!(!answer.is_empty(), "{out}");
    let types: std::collections::BTreeSet<&str> = answer.iter().map(|l| l.split(' ').nth(3).unwrap()).collect();
    assert_eq!(types.len(), 1, "one RRset (RFC 8482): {out}");
}

#[test]
fn large_answers_truncate_over_udp_and_come_whole_over_tcp() {
    let (_s, addr, _) = serve("dns-tc");
    let out = dig(addr, &["+noedns", "+ignore", "big.mail.test", "AAAA"]);
    assert!(flags(&out).contains(&"tc"), "{out}");
    let out = dig(addr, &["+bufsize=600", "+ignore", "big.mail.test", "AAAA"]);
    assert!(flags(&out).contains(&"tc"), "EDNS buffer 600 < answer: {out}");
    let out = dig(addr, &["+bufsize=1232", "+ignore", "big.mail.test", "AAAA"]);
    assert!(
        !flags(&out).contains(&"tc") && section(&out, "ANSWER").len() == 30,
        "{out}"
    );
    let out = dig(addr, &["+tcp", "+noedns", "big.mail.test", "AAAA"]);
    assert_eq!(section(&out, "ANSWER").len(), 30, "{out}");
}

#[test]
fn edns_is_honoured() {
    let (_s, addr, _) = serve("dns-edns");
    let out = dig(addr, &["+dnssec", "_imaps._tcp.mail.test", "SRV"]);
    assert!(
        out.contains("; EDNS: version: 0, flags: do; udp: 1232"),
        "DO echoed: {out}"
    );
    let out = dig(addr, &["+edns=1", "+noednsneg", "_imaps._tcp.mail.test", "SRV"]);
    assert_eq!(status(&out), "BADVERS", "{out}");
    let out = dig(addr, &["+noedns", "_imaps._tcp.mail.test", "SRV"]);
    assert!(!out.contains("OPT PSEUDOSECTION") && status(&out) == "NOERROR", "{out}");
}

#[test]
fn axfr_only_to_listed_secondaries() {
    let (_s, addr, _) = serve("dns-axfr");
    let out = dig(addr, &["mail.test", "AXFR"]);
    let records: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .collect();
    assert!(
        records.first().is_some_and(|l| l.contains("\tSOA\t")) && records.last().is_some_and(|l| l.contains("\tSOA\t")),
        "{out}"
    );
    assert!(records.iter().any(|l| l.starts_with("_imaps._tcp.mail.test.")), "{out}");
    assert!(records.len() > 20, "{out}");
    // 127.0.0.2 is not in transfer_to.
    let out = Command::new(tool("dig", "dnsutils"))
        .args([
            "-b",
            "127.0.0.2",
            &format!("@{}", addr.ip()),
            "-p",
            &addr.port().to_string(),
            "mail.test",
            "AXFR",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.contains("Transfer failed") || out.contains("REFUSED"), "{out}");
    assert!(!out.contains("_imaps._tcp"), "{out}");
    // Not over UDP either (dig always uses TCP for AXFR, so ask by hand).
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut q = vec![
        0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, b'm', b'a', b'i', b'l', 4, b't', b'e', b's', b't', 0,
    ];
    q.extend_from_slice(&[0, 252, 0, 1]);
    sock.send_to(&q, addr).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(
        (buf[3] & 0x0f, &buf[6..8]),
        (5, &[0u8, 0][..]),
        "REFUSED, no answers: {:?}",
        &buf[..n]
    );
}

#[test]
fn malformed_packets_never_stop_good_answers() {
    let (s, addr, _) = serve("dns-garbage");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    // A header with a question count and no question: FORMERR with the same ID.
    let mut pkt = vec![0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
    pkt.extend_from_slice(&[0x3f, b'x']); // label longer than the packet
    sock.send_to(&pkt, addr).unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = sock.recv_from(&mut buf).expect("FORMERR answer");
    assert_eq!(
        (&buf[..2], buf[2] & 0x80, buf[3] & 0x0f, n),
        (&[0xab, 0xcd][..], 0x80, 1, 12)
    );
    // A flood of junk: short packets, responses, compression loops, random bytes.
    let mut seed = 0x1234_5678u32;
    for i in 0..20_000u32 {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let len = (seed % 600) as usize;
        let mut junk: Vec<u8> = (0..len).map(|j| (seed.rotate_left(j as u32) ^ i) as u8).collect();
        if i % 3 == 0 && junk.len() > 14 {
            junk[4..6].copy_from_slice(&[0, 1]);
            junk[12] = 0xc0; // a compression pointer to itself
            junk[13] = 12;
        }
        let _ = sock.send_to(&junk, addr);
    }
    let out = dig(addr, &["_imaps._tcp.mail.test", "SRV"]);
    assert_eq!(status(&out), "NOERROR", "{out}");
    // And over TCP: a frame that lies about its length, then a good query on a new connection.
    use std::io::Write;
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.write_all(&[0xff, 0xff, 1, 2, 3]).unwrap();
    drop(tcp);
    let out = dig(addr, &["+tcp", "_imaps._tcp.mail.test", "SRV"]);
    assert_eq!(status(&out), "NOERROR", "{out}");
    assert!(
        s.log_text().lines().all(|l| !l.contains("panicked")),
        "{}",
        s.log_text()
    );
}

#[test]
fn sighup_reloads_and_a_broken_file_keeps_the_old_zones() {
    let (s, addr, config) = serve("dns-reload");
    let serial = |out: &str| -> u32 { section(out, "ANSWER")[0].split(' ').nth(6).unwrap().parse().unwrap() };
    let before = serial(&dig(addr, &["mail.test", "SOA"]));
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("port = 993", "port = 994")).unwrap();
    s.signal("HUP");
    s.wait_log(|l| l.contains("DNS zones reloaded"), 1, "reload");
    let out = dig(addr, &["_imaps._tcp.mail.test", "SRV"]);
    assert_eq!(
        section(&out, "ANSWER"),
        ["_imaps._tcp.mail.test. 3600 IN SRV 0 1 994 imap.mail.test."],
        "{out}"
    );
    let after = serial(&dig(addr, &["mail.test", "SOA"]));
    assert!(
        after != before && after.wrapping_sub(before) < 0x8000_0000,
        "serial must grow: {before} → {after}"
    );

    std::fs::write(&config, text.replace("provider = \"p\"", "provider = \"nope\"")).unwrap();
    s.signal("HUP");
    s.wait_log(|l| l.contains("reload failed"), 1, "failed reload");
    assert!(s.log_text().contains("unknown provider \"nope\""), "{}", s.log_text());
    let out = dig(addr, &["_imaps._tcp.mail.test", "SRV"]);
    assert_eq!(
        section(&out, "ANSWER"),
        ["_imaps._tcp.mail.test. 3600 IN SRV 0 1 994 imap.mail.test."],
        "old data kept: {out}"
    );
}

/// A real secondary (Knot) transfers the zone from mailconf, answers the same SRV query
/// identically, and picks up a change after mailconf's NOTIFY.
#[test]
fn knot_secondary_transfers_and_follows_notify() {
    let dir = temp_dir("dns-knot");
    let config = dir.join("mailconf.toml");
    let (s, mut knot, knot_addr) = start_with_knot(&dir, &config, None, false);
    let primary = s.addrs("DNS")[0];
    let result = std::panic::catch_unwind(|| {
        let same = |want_port: &str| knot_serves_port(knot_addr, want_port);
        let from_knot = same(" 993 ");
        let from_mailconf = dig(primary, &["_imaps._tcp.mail.test", "SRV"]);
        assert_eq!(section(&from_knot, "ANSWER"), section(&from_mailconf, "ANSWER"));
        // Change, reload, NOTIFY: Knot refreshes on its own.
        std::fs::write(
            &config,
            std::fs::read_to_string(&config)
                .unwrap()
                .replace("port = 993", "port = 995"),
        )
        .unwrap();
        s.signal("HUP");
        let from_knot = same(" 995 ");
        assert_eq!(
            section(&from_knot, "ANSWER"),
            ["_imaps._tcp.mail.test. 3600 IN SRV 0 1 995 imap.mail.test."]
        );
        s.wait_log(|l| l.contains("NOTIFY acknowledged"), 1, "NOTIFY ack");
    });
    let _ = knot.child.kill();
    let _ = knot.child.wait();
    if let Err(e) = result {
        eprintln!("knotd log:\n{}\nmailconf log:\n{}", knot.log_text(), s.log_text());
        std::panic::resume_unwind(e);
    }
}

/// The same with TSIG: Knot signs its SOA queries and AXFR with the shared key and checks
/// mailconf's signed answers; mailconf's NOTIFY is signed (Knot's ACL requires the key). An
/// unsigned or wrongly signed transfer from Knot's address is refused.
#[test]
fn knot_secondary_with_tsig() {
    let dir = temp_dir("dns-knot-tsig");
    let config = dir.join("mailconf.toml");
    let (s, mut knot, knot_addr) = start_with_knot(&dir, &config, Some(TSIG_SECRET), false);
    let primary = s.addrs("DNS")[0];
    let result = std::panic::catch_unwind(|| {
        let same = |want_port: &str| knot_serves_port(knot_addr, want_port);
        let from_knot = same(" 993 ");
        let from_mailconf = dig(primary, &["_imaps._tcp.mail.test", "SRV"]);
        assert_eq!(section(&from_knot, "ANSWER"), section(&from_mailconf, "ANSWER"));
        std::fs::write(
            &config,
            std::fs::read_to_string(&config)
                .unwrap()
                .replace("port = 993", "port = 995"),
        )
        .unwrap();
        s.signal("HUP");
        same(" 995 ");
        s.wait_log(|l| l.contains("NOTIFY acknowledged"), 1, "signed NOTIFY acknowledged");
        let log = knot.log_text();
        assert!(!log.contains("BADSIG") && !log.contains("BADKEY"), "{log}");
        // Knot signs its reply to the signed NOTIFY, and mailconf verifies it: acknowledged
        // above only after that, and never distrusted. (Its unsigned NOTAUTH for alias.test, a
        // zone this Knot does not serve, is distrusted, as any unsigned reply is.)
        assert!(
            !s.log_text()
                .lines()
                .any(|l| l.contains("NOTIFY reply not trusted") && l.contains("zone=mail.test.")),
            "{}",
            s.log_text()
        );
    });
    let _ = knot.child.kill();
    let _ = knot.child.wait();
    if let Err(e) = result {
        eprintln!("knotd log:\n{}\nmailconf log:\n{}", knot.log_text(), s.log_text());
        std::panic::resume_unwind(e);
    }
    // The secret never reaches the log.
    assert!(!s.log_text().contains(TSIG_SECRET), "{}", s.log_text());
}

/// A Knot secondary configured with nothing but the catalog zone and a TSIG key: it picks up
/// every zone mailconf serves, a domain added by SIGHUP, and drops a removed one; the catalog
/// moves by IXFR (Knot's log says so, and mailconf answers `IXFR=old` with the difference).
#[test]
fn knot_follows_the_catalog_zone() {
    let dir = temp_dir("dns-knot-catalog");
    let config = dir.join("mailconf.toml");
    let (s, mut knot, knot_addr) = start_with_knot(&dir, &config, Some(TSIG_SECRET), true);
    let primary = s.addrs("DNS")[0];
    let result = std::panic::catch_unwind(|| {
        let wait_for = |name: &str, want: &str| wait_for_soa("knot", knot_addr, name, want);
        for zone in ["mail.test", "alias.test"] {
            wait_for(zone, "NOERROR");
        }
        let from_knot = dig(knot_addr, &["_imaps._tcp.alias.test", "SRV"]);
        let from_mailconf = dig(primary, &["_imaps._tcp.alias.test", "SRV"]);
        assert_eq!(section(&from_knot, "ANSWER"), section(&from_mailconf, "ANSWER"));
        assert!(!section(&from_knot, "ANSWER").is_empty(), "{from_knot}");
        let key = format!("hmac-sha256:xfr.test.:{TSIG_SECRET}");
        let catalog_serial = || -> u32 {
            let out = dig(primary, &["-y", &key, "catalog.mailconf.invalid", "SOA"]);
            section(&out, "ANSWER")[0].split(' ').nth(6).unwrap().parse().unwrap()
        };
        let before = catalog_serial();
        // Add a domain.
        let text = std::fs::read_to_string(&config).unwrap();
        let added = format!(
            "{text}\n[[domain]]\nname = \"new.test\"\nprovider = \"p\"\n[domain.dns]\nnameservers = [\"ns1.example.net.\"]\n"
        );
        std::fs::write(&config, &added).unwrap();
        s.signal("HUP");
        wait_for("new.test", "NOERROR");
        let after = catalog_serial();
        assert_ne!(before, after);
        // mailconf's own IXFR answer: the one added member, between the two SOAs.
        let out = dig(
            primary,
            &["-y", &key, "catalog.mailconf.invalid", &format!("IXFR={before}")],
        );
        let records: Vec<String> = out
            .lines()
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty() && !l.contains("\tTSIG\t"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(records.len(), 5, "{out}");
        assert!(records[3].ends_with("IN PTR new.test."), "{out}");
        assert!(records[1].contains(&format!(" {before} ")), "{out}");
        // Knot took the catalog change by IXFR.
        let log = knot.log_text();
        assert!(
            log.lines()
                .any(|l| l.contains("[catalog.mailconf.invalid.] IXFR, incoming") && l.contains("finished")),
            "{log}"
        );
        // Remove a domain: Knot stops serving it.
        std::fs::write(&config, text.replace("aliases = [\"alias.test\"]", "")).unwrap();
        s.signal("HUP");
        wait_for("alias.test", "REFUSED");
        wait_for("new.test", "REFUSED");
        wait_for("mail.test", "NOERROR");
        // Unknown serial: the whole catalog (AXFR form), not an error.
        let out = dig(primary, &["-y", &key, "catalog.mailconf.invalid", "IXFR=12345"]);
        let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains(" IN PTR mail.test.") && !flat.contains("alias.test") && flat.contains("version.catalog"),
            "{out}"
        );
    });
    let _ = knot.child.kill();
    let _ = knot.child.wait();
    if let Err(e) = result {
        eprintln!("knotd log:\n{}\nmailconf log:\n{}", knot.log_text(), s.log_text());
        std::panic::resume_unwind(e);
    }
}

/// BIND 9.18 configured with nothing but the catalog zone (`catalog-zones`) and a TSIG key, as
/// `deploy/named.conf` shows: it transfers every member zone with the key, answers the same SRV
/// as mailconf, adds a domain added by SIGHUP and drops a removed one. Its signed reply to the
/// catalog's NOTIFY is verified.
#[test]
fn bind_follows_the_catalog_zone() {
    let named = tool("named", "bind9");
    let dir = temp_dir("dns-bind-catalog");
    let config = dir.join("mailconf.toml");
    let text = std::fs::read_to_string(root().join("tests/fixtures/dns.toml")).unwrap();
    for _attempt in 0..5 {
        let port = common::free_port();
        std::fs::write(
            &config,
            format!(
                "[server]\ncatalog = \"catalog.mailconf.invalid.\"\ntransfer_to = [\"127.0.0.1:{port} key xfr.test.\"]\n\n[server.tsig.\"xfr.test.\"]\nsecret = \"{TSIG_SECRET}\"\n\n{}",
                text.replace("transfer_to = [\"127.0.0.1\"]", "")
            ),
        )
        .unwrap();
        let s = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
        let primary = s.addrs("DNS")[0];
        let (d, p) = (dir.display(), primary.port());
        let conf = dir.join("named.conf");
        std::fs::write(
            &conf,
            format!(
                "key \"xfr.test.\" {{ algorithm hmac-sha256; secret \"{TSIG_SECRET}\"; }};\n\
                 server 127.0.0.1 {{ keys {{ \"xfr.test.\"; }}; }};\n\
                 controls {{ }};\n\
                 options {{\n  directory \"{d}\";\n  pid-file \"{d}/named.pid\";\n  session-keyfile \"{d}/session.key\";\n\
                   managed-keys-directory \"{d}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n\
                   recursion no;\n  notify no;\n\
                   catalog-zones {{\n    zone \"catalog.mailconf.invalid.\" default-primaries {{ 127.0.0.1 port {p} key \"xfr.test.\"; }} in-memory yes;\n  }};\n}};\n\
                 zone \"catalog.mailconf.invalid.\" {{\n  type secondary;\n  primaries {{ 127.0.0.1 port {p} key \"xfr.test.\"; }};\n\
                   allow-notify {{ key \"xfr.test.\"; }};\n  file \"catalog.db\";\n}};\n"
            ),
        )
        .unwrap();
        let check = Command::new(tool("named-checkconf", "bind9-utils"))
            .arg(&conf)
            .output()
            .unwrap();
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
        let mut child = Command::new(&named)
            .args(["-g", "-c", conf.to_str().unwrap()])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let log = common::collect_lines(child.stderr.take().unwrap());
        let mut child = Stopped(child);
        let log_text = || log.lock().unwrap().join("\n");
        let bind_addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !log_text().contains("running") {
            assert!(!child_exited(&mut child.0), "named stopped:\n{}", log_text());
            assert!(
                std::time::Instant::now() < deadline,
                "named did not start:\n{}",
                log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        if log_text().contains("address in use") {
            eprintln!("named could not bind port {port}: trying another");
            continue;
        }
        let result = std::panic::catch_unwind(|| {
            let wait_for = |name: &str, want: &str| wait_for_soa("named", bind_addr, name, want);
            for zone in ["mail.test", "alias.test"] {
                wait_for(zone, "NOERROR");
            }
            for name in ["_imaps._tcp.mail.test", "_imaps._tcp.alias.test"] {
                let from_bind = dig(bind_addr, &[name, "SRV"]);
                let from_mailconf = dig(primary, &[name, "SRV"]);
                assert!(!section(&from_bind, "ANSWER").is_empty(), "{from_bind}");
                assert_eq!(section(&from_bind, "ANSWER"), section(&from_mailconf, "ANSWER"));
            }
            // Add a domain: the catalog's NOTIFY, BIND's signed reply, the new zone served.
            let now = std::fs::read_to_string(&config).unwrap();
            std::fs::write(
                &config,
                format!("{now}\n[[domain]]\nname = \"new.test\"\nprovider = \"p\"\n[domain.dns]\nnameservers = [\"ns1.example.net.\"]\n"),
            )
            .unwrap();
            s.signal("HUP");
            wait_for("new.test", "NOERROR");
            s.wait_log(
                |l| l.contains("NOTIFY acknowledged") && l.contains("zone=catalog.mailconf.invalid."),
                1,
                "BIND's signed reply to the catalog's NOTIFY",
            );
            assert!(
                !s.log_text()
                    .lines()
                    .any(|l| l.contains("not trusted") && l.contains("zone=catalog.mailconf.invalid.")),
                "{}",
                s.log_text()
            );
            let log = log_text();
            assert!(
                log.contains("catz: adding zone 'new.test' from catalog 'catalog.mailconf.invalid'"),
                "{log}"
            );
            // Remove the alias: BIND drops its zone.
            std::fs::write(&config, now.replace("aliases = [\"alias.test\"]", "")).unwrap();
            s.signal("HUP");
            wait_for("alias.test", "REFUSED");
            wait_for("new.test", "REFUSED");
            wait_for("mail.test", "NOERROR");
            assert!(
                !log_text().contains("BADSIG") && !log_text().contains("BADKEY"),
                "{}",
                log_text()
            );
        });
        if let Err(e) = result {
            eprintln!("named log:\n{}\nmailconf log:\n{}", log_text(), s.log_text());
            std::panic::resume_unwind(e);
        }
        assert!(!s.log_text().contains(TSIG_SECRET));
        return;
    }
    panic!("named found no free port in 5 attempts");
}

/// NSD 4.6 (no catalog support) as a TSIG secondary of an explicitly listed zone: it transfers
/// with the key (checking mailconf's signatures), accepts mailconf's signed NOTIFY and follows.
#[test]
fn nsd_secondary_with_tsig() {
    let nsd_bin = tool("nsd", "nsd");
    let dir = temp_dir("dns-nsd-tsig");
    let config = dir.join("mailconf.toml");
    let text = std::fs::read_to_string(root().join("tests/fixtures/dns.toml")).unwrap();
    for _attempt in 0..5 {
        let nsd_port = common::free_port();
        std::fs::write(
            &config,
            format!(
                "[server]\ntransfer_to = [\"127.0.0.1:{nsd_port} key xfr.test.\"]\n\n[server.tsig.\"xfr.test.\"]\nsecret_file = \"{}\"\n\n{text}",
                dir.join("xfr.key").display()
            ),
        )
        .unwrap();
        // The key file as tsig-keygen prints it.
        std::fs::write(
            dir.join("xfr.key"),
            format!("key \"xfr.test\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{TSIG_SECRET}\";\n}};\n"),
        )
        .unwrap();
        let s = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
        let primary = s.addrs("DNS")[0];
        let d = dir.display();
        let conf = dir.join("nsd.conf");
        std::fs::write(
            &conf,
            format!(
                "server:\n  ip-address: 127.0.0.1@{nsd_port}\n  username: \"\"\n  zonesdir: \"{d}\"\n  database: \"\"\n  pidfile: \"{d}/nsd.pid\"\n  xfrdfile: \"{d}/xfrd.state\"\n  zonelistfile: \"{d}/zone.list\"\n  xfrdir: \"{d}\"\n  verbosity: 2\n  rrl-ratelimit: 0\n\nremote-control:\n  control-enable: no\n\nkey:\n  name: xfr.test.\n  algorithm: hmac-sha256\n  secret: \"{TSIG_SECRET}\"\n\nzone:\n  name: mail.test\n  zonefile: mail.test.zone\n  allow-notify: 127.0.0.1 xfr.test.\n  request-xfr: AXFR 127.0.0.1@{} xfr.test.\n",
                primary.port()
            ),
        )
        .unwrap();
        let mut child = Command::new(&nsd_bin)
            .args(["-d", "-c", conf.to_str().unwrap()])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let log = common::collect_lines(child.stderr.take().unwrap());
        let mut child = Stopped(child);
        let child = &mut child.0;
        let nsd_addr = SocketAddr::from(([127, 0, 0, 1], nsd_port));
        let log_text = || log.lock().unwrap().join("\n");
        let mut serves = |port: &str| {
            for _ in 0..150 {
                if child_exited(child) {
                    return Err(log_text());
                }
                let out = dig(nsd_addr, &["_imaps._tcp.mail.test", "SRV"]);
                if status(&out) == "NOERROR" && section(&out, "ANSWER").first().is_some_and(|l| l.contains(port)) {
                    return Ok(out);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            panic!(
                "nsd never served port {port}:\n{}\nmailconf:\n{}",
                log_text(),
                s.log_text()
            );
        };
        let first = match serves(" 993 ") {
            Ok(out) => out,
            Err(l) if l.contains("can't bind") || l.contains("Address already in use") => {
                eprintln!("nsd could not bind port {nsd_port}: trying another");
                continue;
            }
            Err(l) => panic!("nsd stopped:\n{l}"),
        };
        let from_mailconf = dig(primary, &["_imaps._tcp.mail.test", "SRV"]);
        assert_eq!(section(&first, "ANSWER"), section(&from_mailconf, "ANSWER"));
        std::fs::write(
            &config,
            std::fs::read_to_string(&config)
                .unwrap()
                .replace("port = 993", "port = 995"),
        )
        .unwrap();
        s.signal("HUP");
        serves(" 995 ").unwrap_or_else(|l| panic!("nsd stopped:\n{l}"));
        s.wait_log(
            |l| l.contains("NOTIFY acknowledged"),
            1,
            "signed NOTIFY acknowledged by NSD",
        );
        assert!(!s.log_text().contains(TSIG_SECRET));
        return;
    }
    panic!("nsd found no free port in 5 attempts");
}

/// A daemon stopped (SIGTERM, so it stops its own children, then SIGKILL) however the test ends.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        for _ in 0..50 {
            if child_exited(&mut self.0) {
                return;
            }
            std::thread::sleep(Duration::from_millis(40));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn child_exited(child: &mut std::process::Child) -> bool {
    child.try_wait().ok().flatten().is_some()
}

/// A 32-octet hmac-sha256 secret, base64 as `tsig-keygen` prints it.
const TSIG_SECRET: &str = "bWFpbGNvbmYgdGVzdCBrZXksIDMyIG9jdGV0cyBvayE=";

/// mailconf with `[server] transfer_to = ["127.0.0.1 key xfr.test."]` and a catalog zone.
fn serve_tsig(name: &str) -> (Server, SocketAddr) {
    let dir = temp_dir(name);
    let config = dir.join("mailconf.toml");
    let text = std::fs::read_to_string(root().join("tests/fixtures/dns.toml")).unwrap();
    // Enough host records (the fixture ends in [domain.dns.hosts]) for a transfer of many
    // messages, each signed on the previous one's MAC.
    let hosts: String = (0..1000)
        .map(|i| format!("\nh{i} = [\"192.0.2.{}\"]", i % 250))
        .collect();
    std::fs::write(
        &config,
        format!(
            "[server]\ncatalog = \"catalog.mailconf.invalid\"\ntransfer_to = [\"127.0.0.1 key xfr.test.\"]\n\n[server.tsig.\"xfr.test.\"]\nsecret = \"{TSIG_SECRET}\"\n\n{text}{hosts}"
        ),
    )
    .unwrap();
    let server = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
    let addr = server.addrs("DNS")[0];
    (server, addr)
}

/// Signed transfers with dig (which checks our signature on every message), and the hostile
/// cases: unsigned, wrong secret, unknown key, other algorithm, replayed and cut signatures.
#[test]
fn tsig_guards_transfers_and_soa() {
    let (s, addr) = serve_tsig("dns-tsig");
    let key = format!("hmac-sha256:xfr.test.:{TSIG_SECRET}");
    // Signed AXFR: the whole zone, every message verified by dig.
    let out = dig(addr, &["-y", &key, "mail.test", "AXFR"]);
    assert!(
        out.contains("_imaps._tcp.mail.test.") && !out.contains("failed"),
        "{out}"
    );
    assert!(out.contains("\tTSIG\t") && !out.contains("verify"), "{out}");
    let messages: u32 = out
        .split(";; XFR size: ")
        .nth(1)
        .and_then(|s| s.split("messages ").nth(1))
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        messages > 2 && out.contains("h999.mail.test."),
        "{messages} messages: {out}"
    );
    // Signed SOA over UDP and TCP: answered and signed (dig says when it cannot verify).
    for tcp in ["+notcp", "+tcp"] {
        let out = dig(addr, &[tcp, "-y", &key, "mail.test", "SOA"]);
        assert_eq!(status(&out), "NOERROR", "{out}");
        assert!(
            out.contains(";; TSIG PSEUDOSECTION:") && !out.contains("verify"),
            "{out}"
        );
    }
    // Unsigned AXFR and SOA from the secondary's address: refused.
    let out = dig(addr, &["mail.test", "AXFR"]);
    assert!(out.contains("Transfer failed") || out.contains("REFUSED"), "{out}");
    assert!(!out.contains("_imaps._tcp"), "{out}");
    for tcp in ["+notcp", "+tcp"] {
        let out = dig(addr, &[tcp, "mail.test", "SOA"]);
        assert_eq!(status(&out), "REFUSED", "{out}");
    }
    // Other names are still answered without a key, on the fast path.
    let out = dig(addr, &["_imaps._tcp.mail.test", "SRV"]);
    assert_eq!(status(&out), "NOERROR", "{out}");
    // Wrong secret: NOTAUTH/BADSIG; unknown key: NOTAUTH/BADKEY; no transfer either way.
    let wrong = "hmac-sha256:xfr.test.:d3Jvbmcgc2VjcmV0LCB3cm9uZyBzZWNyZXQsIHdyb25nIQ==";
    let out = dig(addr, &["-y", wrong, "mail.test", "SOA"]);
    assert!(out.contains("NOTAUTH") && out.contains("BADSIG"), "{out}");
    let out = dig(addr, &["-y", wrong, "mail.test", "AXFR"]);
    assert!(!out.contains("_imaps._tcp"), "{out}");
    let unknown = format!("hmac-sha256:other.test.:{TSIG_SECRET}");
    let out = dig(addr, &["-y", &unknown, "mail.test", "SOA"]);
    assert!(out.contains("NOTAUTH") && out.contains("BADKEY"), "{out}");
    let sha512 = format!("hmac-sha512:xfr.test.:{TSIG_SECRET}");
    let out = dig(addr, &["-y", &sha512, "mail.test", "SOA"]);
    assert!(out.contains("NOTAUTH") && out.contains("BADKEY"), "{out}");
    // Replay a signed query from outside the fudge window (built by hand, signed 10 minutes
    // ago): BADTIME. And every cut of a signed query: an answer, never a crash.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let signed = signed_soa_query(TSIG_SECRET, -600);
    sock.send_to(&signed, addr).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(buf[3] & 0x0f, 9, "NOTAUTH: {:?}", &buf[..n]);
    // TSIG RDATA ends: error (2), other length (2) = 6, other data = our time (6).
    assert_eq!(
        &buf[n - 10..n - 6],
        &[0, 18, 0, 6],
        "BADTIME, our time: {:?}",
        &buf[..n]
    );
    let fresh = signed_soa_query(TSIG_SECRET, 0);
    sock.send_to(&fresh, addr).unwrap();
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(
        (buf[3] & 0x0f, buf[6..8].to_vec()),
        (0, vec![0, 1]),
        "fresh: {:?}",
        &buf[..n]
    );
    for cut in 12..fresh.len() {
        let mut pkt = fresh[..cut].to_vec();
        pkt[0..2].copy_from_slice(&(cut as u16).to_be_bytes());
        sock.send_to(&pkt, addr).unwrap();
        let n = loop {
            let (n, _) = sock
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("cut at {cut}: no answer ({e})"));
            if buf[..2] == pkt[..2] {
                break n;
            }
        };
        // FORMERR or NOTAUTH, never an answer.
        assert!(matches!(buf[3] & 0x0f, 1 | 9), "cut at {cut}: {:?}", &buf[..n]);
    }
    // The catalog: IXFR over UDP gets the lone current SOA (RFC 1995 §2: ask again over TCP),
    // an unknown serial the whole catalog, an unsigned or foreign request nothing.
    let soa = dig(addr, &["-y", &key, "catalog.mailconf.invalid", "SOA"]);
    let current = &section(&soa, "ANSWER")[0];
    let out = dig(addr, &["+notcp", "-y", &key, "catalog.mailconf.invalid", "IXFR=1"]);
    let records: Vec<String> = out
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty() && !l.contains("\tTSIG\t"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(out.contains("(UDP)") && records == [current.clone()], "{out}");
    let out = dig(addr, &["-y", &key, "catalog.mailconf.invalid", "IXFR=1"]);
    assert!(
        out.contains("PTR") && out.contains("alias.test.") && !out.contains("verify"),
        "{out}"
    );
    let out = dig(addr, &["catalog.mailconf.invalid", "IXFR=1"]);
    assert!(!out.contains("PTR"), "{out}");
    let out = dig(addr, &["catalog.mailconf.invalid", "AXFR"]);
    assert!(!out.contains("PTR"), "{out}");
    let out = dig(
        addr,
        &["-b", "127.0.0.2", "-y", &key, "catalog.mailconf.invalid", "IXFR=1"],
    );
    assert!(!out.contains("PTR"), "{out}");
    let out = dig(addr, &["_imaps._tcp.mail.test", "SRV"]);
    assert_eq!(status(&out), "NOERROR", "{out}");
    assert!(!s.log_text().contains(TSIG_SECRET), "{}", s.log_text());
    assert!(
        s.log_text().lines().all(|l| !l.contains("panicked")),
        "{}",
        s.log_text()
    );
}

/// An SOA query for mail.test signed with `xfr.test.` (hmac-sha256), its time `skew` seconds
/// from now. Built here by hand (HMAC from `ring`, as mailconf; the wire from RFC 8945) so the
/// test can sign with a time no tool offers.
fn signed_soa_query(secret_b64: &str, skew: i64) -> Vec<u8> {
    let mut q = vec![0x42, 0x42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(b"\x04mail\x04test\x00\x00\x06\x00\x01");
    append_tsig(&mut q, secret_b64, skew, &[]);
    q
}

/// Sign `msg` with `xfr.test.` (hmac-sha256) at now + `skew` seconds, over `prior_mac` first
/// when it answers a signed request (RFC 8945 §5.3): append the TSIG record, count it.
fn append_tsig(msg: &mut Vec<u8>, secret_b64: &str, skew: i64, prior_mac: &[u8]) {
    use base64::Engine;
    let secret = base64::engine::general_purpose::STANDARD.decode(secret_b64).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .saturating_add_signed(skew);
    let name = b"\x03xfr\x04test\x00";
    let alg = b"\x0bhmac-sha256\x00";
    let time = &now.to_be_bytes()[2..];
    let mut data = Vec::new();
    if !prior_mac.is_empty() {
        data.extend_from_slice(&(prior_mac.len() as u16).to_be_bytes());
        data.extend_from_slice(prior_mac);
    }
    data.extend_from_slice(msg);
    data.extend_from_slice(name);
    data.extend_from_slice(&[0, 255, 0, 0, 0, 0]);
    data.extend_from_slice(alg);
    data.extend_from_slice(time);
    data.extend_from_slice(&[1, 44, 0, 0, 0, 0]); // fudge 300, error 0, other len 0
    let mac = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret), &data);
    let mut rdata = Vec::new();
    rdata.extend_from_slice(alg);
    rdata.extend_from_slice(time);
    rdata.extend_from_slice(&[1, 44, 0, 32]);
    rdata.extend_from_slice(mac.as_ref());
    rdata.extend_from_slice(&msg[0..2]); // original ID
    rdata.extend_from_slice(&[0, 0, 0, 0]);
    msg.extend_from_slice(name);
    msg.extend_from_slice(&[0, 250, 0, 255, 0, 0, 0, 0]);
    msg.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    msg.extend_from_slice(&rdata);
    let ar = u16::from_be_bytes([msg[10], msg[11]]) + 1;
    msg[10..12].copy_from_slice(&ar.to_be_bytes());
}

/// A secondary with a key whose NOTIFY replies are forged: mailconf's NOTIFY to it is signed,
/// and a reply counts only when signed with the key over that NOTIFY. An unsigned reply and
/// one signed with another secret (both from the secondary's address, as anyone on the path
/// could send) are logged, counted in `/metrics` and ignored; the properly signed reply that
/// follows is the acknowledgement.
#[test]
fn notify_replies_must_carry_the_secondarys_signature() {
    let dir = temp_dir("dns-notify-tsig");
    let config = dir.join("mailconf.toml");
    // The fake secondary holds its port from the start: no race for it.
    let fake = UdpSocket::bind("127.0.0.1:0").unwrap();
    fake.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let port = fake.local_addr().unwrap().port();
    let text = std::fs::read_to_string(root().join("tests/fixtures/dns.toml")).unwrap();
    std::fs::write(
        &config,
        format!(
            "[server]\ntransfer_to = [\"127.0.0.1:{port} key xfr.test.\"]\n\n[server.tsig.\"xfr.test.\"]\nsecret = \"{TSIG_SECRET}\"\n\n{}",
            text.replace("transfer_to = [\"127.0.0.1\"]", "")
        ),
    )
    .unwrap();
    let s = Server::start(
        &config,
        &["--dns-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"],
        2,
    );
    let metrics = s.addrs("metrics")[0];
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("port = 993", "port = 995"),
    )
    .unwrap();
    s.signal("HUP");
    let mut buf = [0u8; 1500];
    let (n, from) = fake.recv_from(&mut buf).expect("a NOTIFY after the reload");
    let notify = buf[..n].to_vec();
    assert_eq!(notify[2] & 0x78, 0x20, "opcode NOTIFY: {notify:?}");
    // Its TSIG record follows the question: name (10), type, class, TTL, length (10),
    // algorithm (13), time (6), fudge (2), MAC size (2), MAC.
    let question_end = 12 + notify[12..].iter().position(|&b| b == 0).unwrap() + 1 + 4;
    let tsig = &notify[question_end..];
    assert_eq!(&tsig[..10], b"\x03xfr\x04test\x00", "signed with xfr.test.: {notify:?}");
    let mac_at = 10 + 10 + 13 + 6 + 2;
    let mac_len = u16::from_be_bytes([tsig[mac_at], tsig[mac_at + 1]]) as usize;
    let request_mac = tsig[mac_at + 2..mac_at + 2 + mac_len].to_vec();
    assert_eq!(mac_len, 32);
    let mut reply = notify[..question_end].to_vec();
    reply[2] |= 0x80;
    reply[10..12].copy_from_slice(&[0, 0]);
    // Unsigned; then signed with another secret; then right.
    fake.send_to(&reply, from).unwrap();
    let mut forged = reply.clone();
    append_tsig(
        &mut forged,
        "d3Jvbmcgc2VjcmV0LCB3cm9uZyBzZWNyZXQsIHdyb25nIQ==",
        0,
        &request_mac,
    );
    fake.send_to(&forged, from).unwrap();
    let mut wrong_request = reply.clone();
    append_tsig(&mut wrong_request, TSIG_SECRET, 0, &[7; 32]);
    fake.send_to(&wrong_request, from).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut good = reply.clone();
    append_tsig(&mut good, TSIG_SECRET, 0, &request_mac);
    fake.send_to(&good, from).unwrap();
    s.wait_log(|l| l.contains("NOTIFY acknowledged"), 1, "the signed reply accepted");
    let log = s.log_text();
    let distrusted: Vec<&str> = log.lines().filter(|l| l.contains("NOTIFY reply not trusted")).collect();
    assert_eq!(distrusted.len(), 1, "logged once per NOTIFY:\n{log}");
    assert!(
        distrusted[0].contains("unsigned") && distrusted[0].contains("xfr.test."),
        "{log}"
    );
    let text = http_get(metrics, "/metrics", "x").text();
    assert!(
        text.lines().any(|l| l == "mailconf_notify_replies_untrusted_total 3"),
        "{text}"
    );
    assert!(!log.contains(TSIG_SECRET), "{log}");
}

/// Every answer carries OPT when its query did (RFC 6891 §7) and none when it did not: the
/// catalog zone's names, AXFR and IXFR in each of their messages (with TSIG after the OPT,
/// verified), and the refusals and errors off the fast path, with an Extended DNS Error that
/// says why. Read by dnspython, message by message.
#[test]
fn every_answer_path_carries_opt_when_the_query_did() {
    let (s, addr) = serve_tsig("dns-edns");
    let py = python_with_dnspython();
    let key = format!("key=xfr.test.:{TSIG_SECRET}");
    let messages = |args: &[&str]| -> Vec<String> {
        let out = Command::new(&py)
            .arg(root().join("tests/tools/dns_messages.py"))
            .args([addr.ip().to_string(), addr.port().to_string()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert!(!lines.is_empty(), "{args:?}: no answer");
        lines
    };
    let cat = "catalog.mailconf.invalid";
    // Transfers: every message has our OPT and a TSIG that verifies over it.
    for (zone, qtype, extra) in [("mail.test", "AXFR", ""), (cat, "AXFR", ""), (cat, "IXFR", "serial=1")] {
        let args: Vec<&str> = ["tcp", zone, qtype, "edns", &key, extra]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let all = messages(&args);
        assert!(
            all.iter()
                .all(|m| m.starts_with("rcode=NOERROR opt=1232 do=0 ede=-") && m.ends_with("tsig=ok")),
            "{zone} {qtype}: {all:#?}"
        );
        if zone == "mail.test" {
            assert!(all.len() > 2, "a transfer of several messages: {all:#?}");
        }
    }
    // Without OPT in the query, none in any message.
    let all = messages(&["tcp", "mail.test", "AXFR", &key]);
    assert!(all.iter().all(|m| m.contains(" opt=none ")), "{all:#?}");
    let one = |args: &[&str]| messages(args).remove(0);
    assert_eq!(
        one(&["tcp", cat, "SOA", &key]),
        "rcode=NOERROR opt=none do=0 ede=- answers=1 tsig=ok"
    );
    // The catalog's own names, DO echoed; the lone SOA of an IXFR over UDP.
    assert_eq!(
        one(&["udp", cat, "SOA", "edns", "do", &key]),
        "rcode=NOERROR opt=1232 do=1 ede=- answers=1 tsig=ok"
    );
    assert_eq!(
        one(&["udp", &format!("version.{cat}"), "TXT", "edns"]),
        "rcode=NOERROR opt=1232 do=0 ede=- answers=1 tsig=none"
    );
    assert_eq!(
        one(&["udp", &format!("0000000000000000.zones.{cat}"), "PTR", "edns"]),
        "rcode=NXDOMAIN opt=1232 do=0 ede=- answers=0 tsig=none"
    );
    assert_eq!(
        one(&["udp", cat, "IXFR", "serial=1", "edns", &key]),
        "rcode=NOERROR opt=1232 do=0 ede=- answers=1 tsig=ok"
    );
    // Refusals: a transfer or SOA the client may not have unsigned (EDE 18 Prohibited), a
    // transfer of a zone that is not ours (EDE 20 Not Authoritative); an unknown opcode.
    for args in [
        &["tcp", cat, "IXFR", "serial=1", "edns"][..],
        &["tcp", "mail.test", "AXFR", "edns"],
        &["udp", "mail.test", "SOA", "edns"],
        &["tcp", "mail.test", "SOA", "edns"],
    ] {
        assert_eq!(
            one(args),
            "rcode=REFUSED opt=1232 do=0 ede=18 answers=0 tsig=none",
            "{args:?}"
        );
    }
    assert_eq!(
        one(&["tcp", "elsewhere.test", "AXFR", "edns", &key]),
        "rcode=REFUSED opt=1232 do=0 ede=20 answers=0 tsig=ok"
    );
    assert_eq!(
        one(&["udp", "mail.test", "TXT", "edns", "opcode=2"]),
        "rcode=NOTIMP opt=1232 do=0 ede=- answers=0 tsig=none"
    );
    // A TSIG error answer (wrong secret): OPT before the TSIG record too.
    let wrong = "hmac-sha256:xfr.test.:d3Jvbmcgc2VjcmV0LCB3cm9uZyBzZWNyZXQsIHdyb25nIQ==";
    let out = dig(addr, &["-y", wrong, "mail.test", "SOA"]);
    assert!(out.contains("BADSIG") && out.contains(";; OPT PSEUDOSECTION:"), "{out}");
    assert!(
        s.log_text().lines().all(|l| !l.contains("panicked")),
        "{}",
        s.log_text()
    );
}

/// `knotd` with its stderr collected.
struct Knot {
    child: std::process::Child,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Knot {
    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// Knot's answer to `_imaps._tcp.mail.test SRV` once it carries `want_port` (10 s at most).
fn knot_serves_port(knot_addr: SocketAddr, want_port: &str) -> String {
    for _ in 0..100 {
        let out = dig(knot_addr, &["_imaps._tcp.mail.test", "SRV"]);
        if status(&out) == "NOERROR" && section(&out, "ANSWER").first().is_some_and(|l| l.contains(want_port)) {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("knot never served port {want_port}");
}

/// Start mailconf (NOTIFY to Knot's port) and a Knot secondary of `mail.test` transferring from
/// it. Knot needs a fixed port, known before it starts: a port found free can be taken by
/// another test before Knot binds it, so when Knot cannot bind, both start again on a new port.
///
/// With `tsig` (a base64 secret), both sides share the hmac-sha256 key `xfr.test.`: mailconf
/// requires it of Knot's address (`[server] transfer_to = ["IP:PORT key xfr.test."]`), Knot
/// signs its SOA queries and transfers and requires it on NOTIFY.
///
/// With `catalog` (and `tsig`), mailconf serves the catalog zone `catalog.mailconf.invalid.` and
/// Knot is configured with that zone alone (`catalog-role: interpret`): every member zone
/// comes from the catalog.
fn start_with_knot(
    dir: &std::path::Path,
    config: &std::path::Path,
    tsig: Option<&str>,
    catalog: bool,
) -> (Server, Knot, SocketAddr) {
    let knotd = tool("knotd", "knot");
    let text = std::fs::read_to_string(root().join("tests/fixtures/dns.toml")).unwrap();
    for _attempt in 0..5 {
        let knot_port = common::free_port();
        let mut mailconf_text = text.replace(
            "transfer_to = [\"127.0.0.1\"]",
            &format!("transfer_to = [\"127.0.0.1:{knot_port}\"]"),
        );
        let (mut knot_key, mut remote_key) = (String::new(), String::new());
        if let Some(secret) = tsig {
            let catalog_line = if catalog {
                "catalog = \"catalog.mailconf.invalid.\"\n"
            } else {
                ""
            };
            mailconf_text = format!(
                "[server]\n{catalog_line}transfer_to = [\"127.0.0.1:{knot_port} key xfr.test.\"]\n\n[server.tsig.\"xfr.test.\"]\nalgorithm = \"hmac-sha256\"\nsecret = \"{secret}\"\n\n{mailconf_text}"
            );
            knot_key = format!("key:\n  - id: xfr.test.\n    algorithm: hmac-sha256\n    secret: {secret}\n\n");
            remote_key = "    key: xfr.test.\n".into();
        }
        std::fs::write(config, mailconf_text).unwrap();
        let s = Server::start(config, &["--dns-listen", "127.0.0.1:0"], 1);
        let primary = s.addrs("DNS")[0];
        let knot_conf = dir.join("knot.conf");
        std::fs::write(
            &knot_conf,
            format!(
                "server:\n  rundir: {d}\n  listen: 127.0.0.1@{knot_port}\n\ndatabase:\n  storage: {d}\n\nlog:\n  - target: stderr\n    any: info\n\n{knot_key}remote:\n  - id: mailconf\n    address: 127.0.0.1@{p}\n{remote_key}\nacl:\n  - id: notify_from_mailconf\n    address: 127.0.0.1\n{remote_key}    action: notify\n\n{zones}",
                d = dir.display(),
                p = primary.port(),
                zones = if catalog {
                    format!(
                        "template:\n  - id: default\n    storage: {d}\n    master: mailconf\n    acl: notify_from_mailconf\n    zonefile-sync: -1\n    journal-content: none\n\nzone:\n  - domain: catalog.mailconf.invalid.\n    catalog-role: interpret\n    catalog-template: default\n",
                        d = dir.display()
                    )
                } else {
                    format!(
                        "zone:\n  - domain: mail.test\n    storage: {d}\n    file: mail.test.zone\n    master: mailconf\n    acl: notify_from_mailconf\n    zonefile-sync: -1\n    journal-content: none\n",
                        d = dir.display()
                    )
                }
            ),
        )
        .unwrap();
        let mut child = Command::new(&knotd)
            .args(["-c", knot_conf.to_str().unwrap()])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let log = common::collect_lines(child.stderr.take().unwrap());
        let mut knot = Knot { child, log };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if knot.log.lock().unwrap().iter().any(|l| l.contains("server started")) {
                return (s, knot, SocketAddr::from(([127, 0, 0, 1], knot_port)));
            }
            if knot.child.try_wait().unwrap().is_some() {
                let log = knot.log_text();
                assert!(
                    log.contains("cannot bind address"),
                    "knotd stopped for another reason than its port:\n{log}"
                );
                eprintln!("knotd could not bind port {knot_port}: trying another");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "knotd did not start:\n{}",
                knot.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("knotd found no free port in 5 attempts");
}

/// With `state_dir`, a restart never serves an older serial than the run before it.
#[test]
fn serials_keep_growing_across_restarts_with_a_state_dir() {
    let dir = temp_dir("dns-state");
    let state = dir.join("state");
    let config = dir.join("mailconf.toml");
    let text = std::fs::read_to_string(root().join("tests/fixtures/dns.toml")).unwrap();
    std::fs::write(
        &config,
        format!("[server]\nstate_dir = \"{}\"\n\n{text}", state.display()),
    )
    .unwrap();
    let serial = |addr: SocketAddr| -> u32 {
        section(&dig(addr, &["mail.test", "SOA"]), "ANSWER")[0]
            .split(' ')
            .nth(6)
            .unwrap()
            .parse()
            .unwrap()
    };
    let file = state.join("serials");
    // The serial served, once the run has also saved it: the state file is written by the
    // background warm-up, which a loaded machine may not have reached when the answer came.
    let run = || {
        let s = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
        let served = serial(s.addrs("DNS")[0]);
        let want = format!("mail.test. {served} ");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !std::fs::read_to_string(&file).is_ok_and(|t| t.lines().any(|l| l.starts_with(&want))) {
            assert!(
                std::time::Instant::now() < deadline,
                "serial {served} never saved in {}",
                file.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        served
    };
    let first = run();
    let saved = std::fs::read_to_string(&file).unwrap();
    let line = saved
        .lines()
        .find(|l| l.starts_with("mail.test. "))
        .unwrap_or_else(|| panic!("{saved}"));
    assert_eq!(line.split(' ').nth(1), Some(first.to_string().as_str()));
    // As if an earlier run had served a higher serial for other content: the next start must go
    // above it, not back to the content serial.
    let ahead = first.wrapping_add(5);
    std::fs::write(
        &file,
        saved.replace(line, &format!("mail.test. {ahead} {}", "0".repeat(64))),
    )
    .unwrap();
    assert_eq!(run(), ahead.wrapping_add(1));
    // Same content as recorded now: the serial stays.
    assert_eq!(run(), ahead.wrapping_add(1));
}
