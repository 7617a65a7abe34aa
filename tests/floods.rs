//! Resource floods within the test's own loopback budget (issue 17): 10,000 idle TCP
//! connections to the DNS listener and 10,000 to the HTTP listener (the caps hold, and a good
//! client on a fresh connection is still answered within 1 s), and a UDP query flood from
//! many source ports (the amplification factor, response bytes per query byte, for the largest
//! answer an outsider can ask for, with rate limiting on).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::common::{Server, example_without_listeners, http_get, temp_dir};

/// Idle connections each flood opens.
const IDLE: usize = 10_000;
/// The connection caps of `src/dns/tcp.rs` and `src/http/mod.rs`.
const DNS_CAP: usize = 512;
const HTTP_CAP: usize = 4096;

/// Let this process (and the server it starts, which inherits it) hold `n` descriptors, or as
/// many as its hard limit allows.
fn raise_nofile(n: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let hard: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4)?.parse().ok())
        .unwrap_or(n);
    let n = n.min(hard);
    let pid = std::process::id().to_string();
    let out = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={n}:")])
        .output()
        .expect("prlimit (util-linux) runs");
    assert!(
        out.status.success(),
        "prlimit --nofile={n}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Descriptors the server holds open now.
fn open_fds(s: &Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", s.child.id())).map_or(0, |d| d.count())
}

/// Open `n` connections to `addr` and send nothing; the ones the kernel completed (within
/// 60 s for all) are kept open and returned.
fn idle_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut held = Vec::with_capacity(n);
    while held.len() < n && Instant::now() < deadline {
        if let Ok(c) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            held.push(c);
        }
    }
    held
}

/// One IMAPS SRV query over a fresh TCP connection; the time until its answer.
fn tcp_query(dns: SocketAddr) -> Result<Duration, String> {
    let started = Instant::now();
    let mut c = TcpStream::connect_timeout(&dns, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let q = srv_query(0x4242, None);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    c.write_all(&framed).map_err(|e| e.to_string())?;
    let mut len = [0u8; 2];
    c.read_exact(&mut len).map_err(|e| format!("no answer: {e}"))?;
    let mut answer = vec![0u8; u16::from_be_bytes(len).into()];
    c.read_exact(&mut answer).map_err(|e| e.to_string())?;
    assert_eq!(answer[..2], [0x42, 0x42], "the answer echoes the ID");
    assert!(answer[7] > 0, "the SRV query is answered");
    Ok(started.elapsed())
}

/// `_imaps._tcp.example.com SRV`, with an EDNS OPT of `payload` when given.
fn srv_query(id: u16, payload: Option<u16>) -> Vec<u8> {
    query(id, b"\x06_imaps\x04_tcp\x07example\x03com\x00", 33, payload)
}

fn query(id: u16, name: &[u8], qtype: u16, payload: Option<u16>) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(payload.is_some())]);
    q.extend_from_slice(name);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    if let Some(p) = payload {
        q.extend_from_slice(&[0, 0, 41]);
        q.extend_from_slice(&p.to_be_bytes());
        q.extend_from_slice(&[0, 0, 0x80, 0, 0, 0]); // DO set: the largest answer
    }
    q
}

/// 10,000 idle TCP connections to the DNS listener, then 10,000 to the HTTP listener: the
/// server never holds more than its caps (counted in /proc), and a new client is answered
/// within 1 s while the idle ones are still open on the client side.
#[test]
fn idle_connection_floods_leave_room_for_a_good_client() {
    raise_nofile(32_768);
    let dir = temp_dir("floods-tcp");
    let config = example_without_listeners(&dir);
    let s = Server::start(
        &config,
        &["--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0"],
        2,
    );
    let (http, dns) = (s.addrs("HTTP")[0], s.addrs("DNS")[0]);
    let base = open_fds(&s);
    tcp_query(dns).expect("DNS over TCP before the flood");

    let held = idle_connections(dns, IDLE);
    assert!(held.len() >= IDLE * 9 / 10, "only {} of {IDLE} connected", held.len());
    let took = tcp_query(dns).expect("DNS over TCP during the flood");
    let fds = open_fds(&s);
    eprintln!(
        "DNS: {} idle connections open, good client answered in {took:?}, server holds {fds} descriptors (base {base})",
        held.len()
    );
    assert!(took < Duration::from_secs(1), "a good client waited {took:?}");
    assert!(
        fds <= base + DNS_CAP + 8,
        "the DNS cap: {fds} descriptors (base {base})"
    );
    drop(held);

    let held = idle_connections(http, IDLE);
    assert!(held.len() >= IDLE * 9 / 10, "only {} of {IDLE} connected", held.len());
    let started = Instant::now();
    let r = http_get(http, "/mail/config-v1.1.xml?emailaddress=fred%40example.com", "x");
    let took = started.elapsed();
    let fds = open_fds(&s);
    eprintln!(
        "HTTP: {} idle connections open, good client answered in {took:?}, server holds {fds} descriptors (base {base})",
        held.len()
    );
    assert_eq!(r.status, 200);
    assert!(took < Duration::from_secs(1), "a good client waited {took:?}");
    assert!(
        fds <= base + HTTP_CAP + 8,
        "the HTTP cap: {fds} descriptors (base {base})"
    );
    // DNS still answers (it has its own cap) while the HTTP flood is open.
    tcp_query(dns).expect("DNS over TCP during the HTTP flood");
    drop(held);
}

/// A UDP flood of the largest answer an outsider can ask for, from 256 source ports of one
/// network, with `dns_rate_limit = 100`: response bytes per query byte stay ≤ 10 (without the
/// limit a single such answer is measured too, for the README).
#[test]
fn udp_flood_amplification_is_bounded_by_the_rate_limit() {
    let dir = temp_dir("floods-udp");
    let config = example_without_listeners(&dir);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replacen("[server]\n", "[server]\ndns_rate_limit = 100\n", 1),
    )
    .unwrap();
    let s = Server::start(&config, &["--dns-listen", "127.0.0.1:0"], 1);
    let dns = s.addrs("DNS")[0];

    // The largest answer an outsider can get: every name and type the example serves, asked
    // with the largest EDNS buffer and DO.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let names: [&[u8]; 6] = [
        b"\x07example\x03com\x00",
        b"\x06_imaps\x04_tcp\x07example\x03com\x00",
        b"\x0aautoconfig\x07example\x03com\x00",
        b"\x07_mta-sts\x07example\x03com\x00",
        b"\x06_dmarc\x07example\x03com\x00",
        b"\x03www\x07example\x03com\x00",
    ];
    let mut largest = (Vec::new(), 0usize);
    let mut buf = [0u8; 65535];
    for name in names {
        for qtype in [1u16, 2, 6, 15, 16, 28, 33, 255] {
            let q = query(7, name, qtype, Some(4096));
            probe.send_to(&q, dns).unwrap();
            if let Ok((n, _)) = probe.recv_from(&mut buf)
                && n * largest.0.len().max(1) > largest.1 * q.len()
            {
                largest = (q, n);
            }
            // Within the budget of one network: 100/s.
            std::thread::sleep(Duration::from_millis(15));
        }
    }
    let (q, single) = largest;
    let single_factor = single as f64 / q.len() as f64;
    std::thread::sleep(Duration::from_millis(1500)); // the bucket refills

    let socks: Vec<UdpSocket> = (0..256).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
    for s in &socks {
        s.set_nonblocking(true).unwrap();
    }
    let (mut sent, mut received, mut answers) = (0usize, 0usize, 0usize);
    let drain = |received: &mut usize, answers: &mut usize, buf: &mut [u8]| {
        for s in &socks {
            while let Ok((n, _)) = s.recv_from(buf) {
                *received += n;
                *answers += 1;
            }
        }
    };
    let started = Instant::now();
    for round in 0..40 {
        for (i, s) in socks.iter().enumerate() {
            let mut q = q.clone();
            q[..2].copy_from_slice(&((round * 256 + i) as u16).to_be_bytes());
            if s.send_to(&q, dns).is_ok() {
                sent += q.len();
            }
        }
        std::thread::sleep(Duration::from_millis(25));
        drain(&mut received, &mut answers, &mut buf);
    }
    let flood_time = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    drain(&mut received, &mut answers, &mut buf);
    let factor = received as f64 / sent as f64;
    eprintln!(
        "UDP amplification: largest answer {single} bytes for a {}-byte query ({single_factor:.1}x unlimited); \
         flood of {} queries in {flood_time:?} from 256 ports with dns_rate_limit = 100: {answers} answers, \
         {received} bytes for {sent} bytes sent = {factor:.2}x",
        q.len(),
        40 * 256
    );
    assert!(single_factor > 1.0, "the probe found no answer larger than its query");
    assert!(answers > 0, "the flood got no answer at all");
    assert!(factor <= 10.0, "amplification {factor:.2} with rate limiting on");
}
