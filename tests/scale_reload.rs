//! A reload of many domains with one of them changed, end to end (issue 10's contract): only that
//! domain's zones move (serial, answers, NOTIFY); every other zone keeps its serial and answers
//! byte for byte; every query sent while the reload runs is answered with the old or the new data.
//! Only the CLI, DNS and `dig` are used, so the test holds whatever the serving state looks like.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, mailconf, stderr, temp_dir, tool};

const DOMAINS: usize = 400;
/// Has an alias and no delegated sub-zones: its change moves exactly two zones.
const CHANGED: usize = 10;
const NEW_PROVIDER: usize = 2;

/// A hosting provider's file in the shape of `benches/gen-config.py`: three providers, an alias
/// for one domain in ten, MTA-STS for one in five, only delegated sub-zones for one in twenty.
fn config(state: &Path, notify_port: u16, changed: bool) -> String {
    let mut s = format!(
        "[server]\nstate_dir = \"{}\"\ntransfer_to = [\"127.0.0.1:{notify_port}\"]\n\n",
        state.display()
    );
    for p in 0..3 {
        s += &format!("[provider.p{p}]\ndisplay_name = \"Provider {p}\"\n");
        for (proto, port, sec) in [
            ("imap", 993, "tls"),
            ("pop3", 995, "tls"),
            ("smtp", 465, "tls"),
            ("smtp", 587, "starttls"),
        ] {
            s += &format!(
                "[[provider.p{p}.server]]\nprotocol = \"{proto}\"\nhost = \"mail{p}.hoster.example\"\nport = {port}\nsecurity = \"{sec}\"\n"
            );
        }
        s += "\n";
    }
    for i in 0..DOMAINS {
        let provider = if changed && i == CHANGED { NEW_PROVIDER } else { i % 3 };
        s += &format!("[[domain]]\nname = \"customer{i}.example\"\nprovider = \"p{provider}\"\n");
        if i.is_multiple_of(10) {
            s += &format!("aliases = [\"customer{i}.example.org\"]\n");
        }
        s += "[domain.dns]\nnameservers = [\"ns1.hoster.example.\", \"ns2.hoster.example.\"]\n\
              autoconfig_addresses = [\"192.0.2.10\", \"2001:db8::10\"]\n\
              mx = [{ host = \"mx1.hoster.example.\", preference = 10 }]\n\
              spf = \"v=spf1 include:_spf.hoster.example -all\"\n";
        s += &format!("dmarc = \"v=DMARC1; p=quarantine; rua=mailto:dmarc@customer{i}.example\"\n");
        if i.is_multiple_of(20) {
            s += "zones = [\"_tcp\", \"autoconfig\", \"autodiscover\"]\n";
        }
        if i.is_multiple_of(5) {
            s += "[domain.mta_sts]\nmode = \"enforce\"\n";
        }
        s += "\n";
    }
    s
}

/// The names of domain `i` (its own and its alias).
fn names(i: usize) -> Vec<String> {
    let mut v = vec![format!("customer{i}.example")];
    if i.is_multiple_of(10) {
        v.push(format!("customer{i}.example.org"));
    }
    v
}

/// The zones domain `i` is authoritative for (absolute names).
fn zones_of(i: usize) -> Vec<String> {
    let mut v = Vec::new();
    for n in names(i) {
        if i.is_multiple_of(20) {
            v.extend(["_tcp", "autoconfig", "autodiscover"].map(|z| format!("{z}.{n}.")));
        } else {
            v.push(format!("{n}."));
        }
    }
    v
}

/// One `dig` run asking every question; the answer lines by owner name (whitespace normalised).
fn dig_all(addr: SocketAddr, questions: &[(String, &str)]) -> BTreeMap<String, Vec<String>> {
    let mut cmd = Command::new(tool("dig", "dnsutils"));
    cmd.arg(format!("@{}", addr.ip())).args([
        "-p",
        &addr.port().to_string(),
        "+norec",
        "+time=2",
        "+tries=1",
        "+noall",
        "+answer",
    ]);
    for (name, rtype) in questions {
        cmd.args([name.as_str(), rtype]);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // With +noall, dig prints `;;` lines only for trouble: a timeout, a malformed or foreign packet.
    let trouble: Vec<&str> = text.lines().filter(|l| l.starts_with(";;")).collect();
    assert!(trouble.is_empty(), "dig saw trouble: {trouble:?}");
    let mut by_owner: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() > 4 && !line.starts_with(';') {
            by_owner
                .entry(fields[0].to_string())
                .or_default()
                .push(fields.join(" "));
        }
    }
    by_owner
}

/// The serial of every zone's SOA, and every name's `_imaps._tcp` SRV answer.
fn snapshot(
    addr: SocketAddr,
    zones: &[String],
    names: &[String],
) -> (BTreeMap<String, u32>, BTreeMap<String, Vec<String>>) {
    let soa_q: Vec<_> = zones.iter().map(|z| (z.clone(), "SOA")).collect();
    let serials = dig_all(addr, &soa_q)
        .into_iter()
        .filter_map(|(owner, lines)| {
            let soa = lines.iter().find(|l| l.split(' ').nth(3) == Some("SOA"))?;
            Some((owner, soa.split(' ').nth(6)?.parse().ok()?))
        })
        .collect();
    let srv_q: Vec<_> = names.iter().map(|n| (format!("_imaps._tcp.{n}"), "SRV")).collect();
    (serials, dig_all(addr, &srv_q))
}

/// A DNS question on the wire (RD off, no EDNS).
fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    q
}

/// Ask over UDP; the response without its ID (so answers compare byte for byte), or why not.
fn ask(sock: &UdpSocket, id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    sock.send(&query(id, name, qtype)).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).map_err(|e| format!("no answer: {e}"))?;
    let r = &buf[..n];
    if n < 12 || r[..2] != id.to_be_bytes() || r[2] & 0x80 == 0 {
        return Err(format!("not the response to our question: {r:?}"));
    }
    match r[3] & 0x0f {
        0 => Ok(r[2..].to_vec()),
        rcode => Err(format!("rcode {rcode}")),
    }
}

fn udp_client(server: SocketAddr) -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(server).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock
}

/// The zone name of a NOTIFY (opcode 4), after answering it as a secondary would.
fn take_notify(sock: &UdpSocket) -> Option<String> {
    let mut buf = [0u8; 4096];
    let (n, from) = sock.recv_from(&mut buf).ok()?;
    let m = &buf[..n];
    if n < 12 || (m[2] >> 3) & 0x0f != 4 || m[4..6] != [0, 1] {
        return Some(format!("<not a NOTIFY: {m:?}>"));
    }
    let (mut name, mut i) = (String::new(), 12);
    while i < n && m[i] != 0 {
        let len = m[i] as usize;
        name += &String::from_utf8_lossy(m.get(i + 1..i + 1 + len)?);
        name.push('.');
        i += 1 + len;
    }
    let question = m.get(12..i + 5)?;
    let mut resp = vec![m[0], m[1], m[2] | 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    resp.extend_from_slice(question);
    let _ = sock.send_to(&resp, from);
    Some(name.to_ascii_lowercase())
}

/// RFC 1982: `b` is greater than `a`.
fn serial_gt(b: u32, a: u32) -> bool {
    b != a && b.wrapping_sub(a) < 0x8000_0000
}

#[test]
fn reload_with_one_domain_changed_moves_only_its_zones_and_answers_every_query() {
    let dir = temp_dir("scale-reload");
    let state = dir.join("state");
    let notify = UdpSocket::bind("127.0.0.1:0").unwrap();
    notify.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let notify_port = notify.local_addr().unwrap().port();
    let path = dir.join("mailconf.toml");
    std::fs::write(&path, config(&state, notify_port, false)).unwrap();

    let zones: Vec<String> = (0..DOMAINS).flat_map(zones_of).collect();
    let all_names: Vec<String> = (0..DOMAINS).flat_map(names).collect();
    let changed_zones: BTreeSet<String> = zones_of(CHANGED).into_iter().collect();
    let changed_names: BTreeSet<String> = names(CHANGED).into_iter().collect();
    assert_eq!(changed_zones.len(), 2, "the changed domain should have two zones");

    // The zones this test expects are the ones `mailconf zone --out` writes.
    let out = mailconf(&[
        "zone",
        "--config",
        path.to_str().unwrap(),
        "--out",
        dir.join("zones").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let written: BTreeSet<String> = std::fs::read_dir(dir.join("zones"))
        .unwrap()
        .filter_map(|e| Some(format!("{}.", e.ok()?.file_name().to_str()?.strip_suffix(".zone")?)))
        .collect();
    assert_eq!(written, zones.iter().cloned().collect::<BTreeSet<_>>());

    // NOTIFYs, with the time they came, for as long as the test runs.
    let notifies: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let stop_notify = Arc::new(AtomicBool::new(false));
    let notify_thread = {
        let (notifies, stop) = (notifies.clone(), stop_notify.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(zone) = take_notify(&notify) {
                    notifies.lock().unwrap().push((Instant::now(), zone));
                }
            }
        })
    };

    let server = Server::start(&path, &["--dns-listen", "127.0.0.1:0"], 1);
    let addr = server.addrs("DNS")[0];

    // Before: every zone has a serial, every name its provider's SRV target.
    let (serials_before, srv_before) = snapshot(addr, &zones, &all_names);
    assert_eq!(
        serials_before.len(),
        zones.len(),
        "a zone did not answer its SOA: {serials_before:?}"
    );
    for i in 0..DOMAINS {
        for n in names(i) {
            let owner = format!("_imaps._tcp.{n}.");
            assert_eq!(
                srv_before.get(&owner).cloned().unwrap_or_default(),
                [format!("{owner} 3600 IN SRV 0 1 993 mail{}.hoster.example.", i % 3)],
            );
        }
    }
    // The questions asked during the reload: every zone's SOA, every name's SRV; their wire answers.
    let questions: Vec<(String, u16)> = zones
        .iter()
        .map(|z| (z.clone(), 6))
        .chain(all_names.iter().map(|n| (format!("_imaps._tcp.{n}."), 33)))
        .collect();
    let client = udp_client(addr);
    let wire = |client: &UdpSocket| -> Vec<Vec<u8>> {
        questions
            .iter()
            .enumerate()
            .map(|(k, (name, qtype))| ask(client, k as u16, name, *qtype).unwrap_or_else(|e| panic!("{name}: {e}")))
            .collect()
    };
    let wire_before = wire(&client);

    // Two loops ask random questions until told to stop; every answer is kept.
    let stop = Arc::new(AtomicBool::new(false));
    type Answer = (Instant, usize, Result<Vec<u8>, String>);
    let loops: Vec<std::thread::JoinHandle<Vec<Answer>>> = (0..2u64)
        .map(|seed| {
            let (stop, questions) = (stop.clone(), questions.clone());
            std::thread::spawn(move || {
                let sock = udp_client(addr);
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (seed + 1);
                let mut answers = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = (x % questions.len() as u64) as usize;
                    let (name, qtype) = &questions[k];
                    answers.push((Instant::now(), k, ask(&sock, x as u16, name, *qtype)));
                    // A steady stream, not a flood: the reload needs the same two cores.
                    std::thread::sleep(Duration::from_micros(500));
                }
                answers
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(&path, config(&state, notify_port, true)).unwrap();
    let hup = Instant::now();
    server.signal("HUP");
    let want = format!("_imaps._tcp.customer{CHANGED}.example. 3600 IN SRV 0 1 993 mail{NEW_PROVIDER}.hoster.example.");
    let q = [(format!("_imaps._tcp.customer{CHANGED}.example"), "SRV")];
    while dig_all(addr, &q).values().next() != Some(&vec![want.clone()]) {
        assert!(
            hup.elapsed() < Duration::from_secs(30),
            "the change never became visible:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let visible = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let answers: Vec<Answer> = loops.into_iter().flat_map(|t| t.join().unwrap()).collect();

    // After: the changed domain's zones have a greater serial and the new target; the rest is as it was.
    let (serials_after, srv_after) = snapshot(addr, &zones, &all_names);
    assert_eq!(
        serials_after.len(),
        zones.len(),
        "a zone stopped answering: {serials_after:?}"
    );
    for zone in &zones {
        let (b, a) = (serials_before[zone], serials_after[zone]);
        if changed_zones.contains(zone) {
            assert!(serial_gt(a, b), "{zone}: serial {b} → {a} must grow");
        } else {
            assert_eq!(a, b, "{zone}: serial moved although the zone did not change");
        }
    }
    for n in &all_names {
        let owner = format!("_imaps._tcp.{n}.");
        if changed_names.contains(n) {
            assert_eq!(
                srv_after[&owner],
                [format!(
                    "{owner} 3600 IN SRV 0 1 993 mail{NEW_PROVIDER}.hoster.example."
                )]
            );
        } else {
            assert_eq!(srv_after[&owner], srv_before[&owner]);
        }
    }
    let wire_after = wire(&client);
    for (k, (name, _)) in questions.iter().enumerate() {
        let zone_changed = changed_zones
            .iter()
            .any(|z| name.ends_with(&format!(".{z}")) || name == z);
        if !zone_changed {
            assert_eq!(wire_after[k], wire_before[k], "{name}: the answer's bytes changed");
        } else {
            assert_ne!(wire_after[k], wire_before[k], "{name}: the answer should have changed");
        }
    }

    // Every query sent during the reload was answered, with the old or the new answer.
    let during = answers.iter().filter(|(t, _, _)| *t >= hup && *t <= visible).count();
    eprintln!(
        "{} queries, {during} of them between SIGHUP and the change answering ({:?})",
        answers.len(),
        visible - hup
    );
    assert!(during > 0, "no query overlapped the reload");
    assert!(answers.iter().any(|(t, _, _)| *t < hup), "no query before the reload");
    for (_, k, r) in &answers {
        let name = &questions[*k].0;
        match r {
            Ok(bytes) => assert!(
                *bytes == wire_before[*k] || *bytes == wire_after[*k],
                "{name}: an answer that is neither the old nor the new one"
            ),
            Err(e) => panic!("{name}: {e}"),
        }
    }

    // NOTIFY went out for the changed domain's zones and no other.
    while hup.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop_notify.store(true, Ordering::Relaxed);
    notify_thread.join().unwrap();
    let notified: BTreeSet<String> = notifies
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| *t >= hup)
        .map(|(_, z)| z.clone())
        .collect();
    assert_eq!(notified, changed_zones, "NOTIFYs after the reload");
}
