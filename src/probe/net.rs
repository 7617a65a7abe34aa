//! The probe's client side: a small DNS stub (UDP, TCP on truncation) against the given
//! resolver, TCP connections with timeouts, and TLS (rustls, ring) with the web PKI roots plus
//! an optional extra CA file.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};

/// A DNS answer: rcode, the AA bit and the answer section.
#[derive(Debug, Clone)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub records: Vec<Record>,
}

/// Asks one resolver (or authoritative server) directly.
pub struct Resolver {
    pub addr: SocketAddr,
    pub timeout: Duration,
    /// The RD bit: a resolver is asked to recurse, an authoritative server is not.
    pub recursion: bool,
}

impl Resolver {
    pub fn query(&self, name: &str, rtype: RecordType) -> Result<Answer, String> {
        let qname = Name::from_ascii(if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        })
        .map_err(|e| format!("bad name {name}: {e}"))?;
        let id = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
            & 0xffff) as u16;
        let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = self.recursion;
        msg.add_query(Query::query(qname, rtype));
        let mut e = Edns::new();
        e.set_max_payload(1232);
        msg.set_edns(e);
        let bytes = msg.to_vec().map_err(|e| e.to_string())?;
        let resp = self.udp(&bytes, id)?;
        let resp = if resp.metadata.truncation {
            self.tcp(&bytes)?
        } else {
            resp
        };
        Ok(Answer {
            rcode: resp.metadata.response_code,
            authoritative: resp.metadata.authoritative,
            records: resp.answers,
        })
    }

    fn udp(&self, bytes: &[u8], id: u16) -> Result<Message, String> {
        let bind = if self.addr.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
        let sock = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(self.timeout)).map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4096];
        for _ in 0..2 {
            sock.send_to(bytes, self.addr)
                .map_err(|e| format!("DNS to {}: {e}", self.addr))?;
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                if from == self.addr
                    && let Ok(m) = Message::from_vec(&buf[..n])
                    && m.metadata.id == id
                {
                    return Ok(m);
                }
            }
        }
        Err(format!("no answer from {} within {:?}", self.addr, self.timeout))
    }

    fn tcp(&self, bytes: &[u8]) -> Result<Message, String> {
        let tcp = |e: io::Error| format!("DNS over TCP to {}: {e}", self.addr);
        let mut s = TcpStream::connect_timeout(&self.addr, self.timeout).map_err(tcp)?;
        s.set_read_timeout(Some(self.timeout)).map_err(tcp)?;
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(bytes);
        s.write_all(&framed).map_err(tcp)?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).map_err(tcp)?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).map_err(tcp)?;
        Message::from_vec(&buf).map_err(|e| format!("DNS over TCP from {}: bad message: {e}", self.addr))
    }

    /// A and AAAA of a host, through the resolver.
    pub fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        let mut out = Vec::new();
        for t in [RecordType::A, RecordType::AAAA] {
            for r in self.query(host, t)?.records {
                match r.data {
                    RData::A(a) => out.push(IpAddr::V4(a.0)),
                    RData::AAAA(a) => out.push(IpAddr::V6(a.0)),
                    _ => {}
                }
            }
        }
        if out.is_empty() {
            Err(format!("{host} has no A or AAAA record"))
        } else {
            Ok(out)
        }
    }
}

/// TLS client settings: web PKI roots plus the certificates of `--ca-file`.
pub fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("bad PEM in {}: {e}", path.display()))?;
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("bad CA certificate in {}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// A connection that may be upgraded to TLS in place (STARTTLS).
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// Connect with a timeout; reads and writes time out too.
pub fn connect(ip: IpAddr, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let addr = SocketAddr::new(ip, port);
    let s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    Ok(s)
}

/// TLS handshake over `tcp`, verifying the chain and that it covers `host`.
pub fn tls(tcp: TcpStream, host: &str, cfg: &Arc<rustls::ClientConfig>) -> Result<Conn, String> {
    let name = ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))?;
    let conn = rustls::ClientConnection::new(cfg.clone(), name).map_err(|e| e.to_string())?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).map_err(describe_tls_error)?;
    }
    Ok(Conn::Tls(Box::new(stream)))
}

/// A failed handshake in the words a mail admin needs, chosen by the `rustls::Error` variant
/// (never by its display text, which changes between releases).
pub(super) fn describe_tls_error(e: io::Error) -> String {
    use rustls::{CertificateError as C, Error as E};
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<E>()) else {
        return format!("TLS handshake failed: {e}");
    };
    let what = match tls {
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => "certificate expired",
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => "certificate not valid yet",
        E::InvalidCertificate(C::UnknownIssuer) => "certificate not issued by a trusted CA, e.g. self-signed",
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "certificate does not cover the host name"
        }
        E::InvalidCertificate(_) | E::NoCertificatesPresented => "certificate rejected",
        // Bytes that are no TLS record: a plaintext greeting (`220 …`, `* OK`, `+OK`).
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::PeerSentOversizedRecord => {
            "the server does not speak TLS here"
        }
        E::AlertReceived(_) => "the server refused the handshake",
        E::PeerIncompatible(_) => "no TLS version or cipher in common",
        _ => "TLS handshake failed",
    };
    format!("{what} ({tls})")
}

/// Line-oriented reading with a cap, for SMTP/IMAP/POP3 dialogues.
pub struct Lines {
    inner: BufReader<Conn>,
}

const MAX_LINE: usize = 8 * 1024;

impl Lines {
    pub fn new(conn: Conn) -> Lines {
        Lines {
            inner: BufReader::new(conn),
        }
    }

    /// One line without CRLF.
    pub fn line(&mut self) -> Result<String, String> {
        let mut buf = Vec::new();
        let n = (&mut self.inner)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("read failed: {e}"))?;
        if n == 0 {
            return Err("connection closed".into());
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    pub fn send(&mut self, line: &str) -> Result<(), String> {
        let c = self.inner.get_mut();
        c.write_all(format!("{line}\r\n").as_bytes())
            .and_then(|()| c.flush())
            .map_err(|e| format!("write failed: {e}"))
    }

    /// Give the connection back (for a STARTTLS upgrade); `Err` if the server already sent more
    /// than we read (a STARTTLS injection risk).
    pub fn into_conn(self) -> Result<Conn, String> {
        if !self.inner.buffer().is_empty() {
            return Err("server sent data after the STARTTLS reply (possible injection)".into());
        }
        Ok(self.inner.into_inner())
    }

    pub fn into_tcp(self) -> Result<TcpStream, String> {
        match self.into_conn()? {
            Conn::Plain(s) => Ok(s),
            Conn::Tls(_) => Err("already TLS".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::describe_tls_error;
    use rustls::{CertificateError as C, Error as E, InvalidMessage};
    use std::io;

    fn describe(e: E) -> String {
        describe_tls_error(io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Classified by variant: the same words whatever rustls's display text says.
    #[test]
    fn tls_errors_by_variant() {
        assert!(describe(E::InvalidCertificate(C::Expired)).starts_with("certificate expired ("));
        assert!(
            describe(E::InvalidCertificate(C::UnknownIssuer)).starts_with("certificate not issued by a trusted CA")
        );
        assert!(describe(E::InvalidCertificate(C::NotValidForName)).starts_with("certificate does not cover"));
        assert!(describe(E::InvalidCertificate(C::BadSignature)).starts_with("certificate rejected ("));
        assert!(
            describe(E::InvalidMessage(InvalidMessage::InvalidContentType))
                .starts_with("the server does not speak TLS here (")
        );
        // Display text that merely mentions a keyword is not a classification.
        assert!(describe(E::General("Expired UnknownIssuer".into())).starts_with("TLS handshake failed ("));
        assert_eq!(
            describe_tls_error(io::Error::new(io::ErrorKind::ConnectionReset, "reset")),
            "TLS handshake failed: reset"
        );
    }
}
