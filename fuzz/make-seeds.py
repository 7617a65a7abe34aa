#!/usr/bin/env python3
"""Writes the committed seed corpora (fuzz/seeds/TARGET/) from hand-built DNS messages, the
HTTP requests the tests send, the golden documents and the test settings files. Rerun after a
golden file or fixture changes: `python3 fuzz/make-seeds.py`. Standard library only."""

import hashlib
import pathlib
import struct

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
SEEDS = FUZZ / "seeds"


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def name(text):
    out = b""
    for label in text.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33,
         "DS": 43, "RRSIG": 46, "DNSKEY": 48, "IXFR": 251, "AXFR": 252, "ANY": 255}


def query(qname, qtype, *, qid=0x1234, flags=0x0100, qclass=1, edns=None, do=False,
          version=0, options=b"", extra=b"", compressed=False):
    """A DNS query; edns = the UDP payload size for an OPT record."""
    qd = (name(qname) if not compressed else b"\xc0\x0c") + struct.pack(">HH", TYPES.get(qtype, qtype), qclass)
    ar = 0
    tail = b""
    if edns is not None:
        ar = 1
        tail = b"\0" + struct.pack(">HHBBHH", 41, edns, 0, version, 0x8000 if do else 0, len(options)) + options
    return struct.pack(">HHHHHH", qid, flags, 1, 0, 0, ar) + qd + tail + extra


def dns_seeds():
    q = []
    for qname, qtype in [
        ("_imaps._tcp.alpha.test", "SRV"), ("_submissions._tcp.alpha.test", "SRV"),
        ("_pop3s._tcp.beta.test", "SRV"), ("_imap._tcp.sub.alpha.test", "SRV"),
        ("alpha.test", "MX"), ("alpha.test", "TXT"), ("alpha.test", "SOA"), ("alpha.test", "NS"),
        ("alpha.test", "ANY"), ("_dmarc.alpha.test", "TXT"), ("_smtp._tls.alpha.test", "TXT"),
        ("mta-sts.alpha.test", "A"), ("_mta-sts.alpha.test", "TXT"),
        ("autoconfig.alpha.test", "A"), ("autodiscover.alpha.test", "AAAA"),
        ("autoconfig.beta.test", "CNAME"), ("beta.test", "MX"), ("_tcp.beta.test", "SOA"),
        ("big.alpha.test", "AAAA"), ("mx.alpha.test", "A"), ("ns1.alpha.test", "A"),
        ("nothere.alpha.test", "A"), ("alias-alpha.test", "MX"), ("_imaps._tcp.alias-alpha.test", "SRV"),
        ("nodns.test", "A"), ("example.com", "A"), (".", "NS"), ("ALPHA.Test", "Mx"),
    ]:
        qtype = TYPES[qtype.upper()]
        q.append(query(qname, qtype))
        q.append(query(qname, qtype, edns=1232, do=True))
    q += [
        query("big.alpha.test", "AAAA", edns=512),
        query("big.alpha.test", "AAAA", edns=4096),
        query("alpha.test", "AXFR"), query("alpha.test", "IXFR"), query("_tcp.beta.test", "AXFR"),
        query("alpha.test", "SOA", flags=0x2000 | 0x0400),  # NOTIFY, AA
        query("alpha.test", "SOA", flags=0x1000),  # STATUS
        query("alpha.test", "SOA", flags=0x8100),  # a response
        query("alpha.test", "A", qclass=3),  # CH
        query("alpha.test", "A", qclass=255),  # ANY class
        query("alpha.test", "A", edns=1232, version=1),  # BADVERS
        query("alpha.test", "A", edns=1232, options=struct.pack(">HH", 10, 8) + b"cookie!!"),
        query("alpha.test", "A", edns=1232, options=struct.pack(">HH", 8, 7) + b"\0\1\x18\0\xc0\0\2"),
        query("alpha.test", "A", compressed=True),
        query("alpha.test", "A", flags=0x0110),  # CD
        query("alpha.test", "A", flags=0x0300),  # TC in a query
        b"\x12\x34\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00" + name("alpha.test") + b"\0\1\0\1" + name("beta.test") + b"\0\1\0\1",
        b"\x12\x34\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00",  # no question
        b"\x12\x34\x01",
    ]
    for m in q:
        put("dns", m)  # both dns_udp and dns_tcp


def soa(zone, serial):
    """An SOA record for an IXFR request's authority section."""
    rdata = name("ns." + zone) + name("hostmaster." + zone) + struct.pack(">IIIII", serial, 3600, 600, 86400, 60)
    return name(zone) + struct.pack(">HHIH", 6, 1, 0, len(rdata)) + rdata


def ixfr(zone, serial):
    m = bytearray(query(zone, "IXFR", extra=soa(zone, serial)))
    m[9] = 1  # NSCOUNT
    return bytes(m)


def xfr_seeds():
    """dns_xfr: FLAGS (peer, journaled server) then a message; tsig: MODE POS POS then a message."""
    msgs = []
    for zone in ["alpha.test", "beta.test", "_tcp.beta.test", "sub.alpha.test", "catalog.fuzz.invalid",
                 "nodns.test", "alias-alpha.test", "www.alpha.test"]:
        msgs += [query(zone, "AXFR"), query(zone, "SOA"), ixfr(zone, 1)]
    msgs += [
        ixfr("catalog.fuzz.invalid", 0), ixfr("catalog.fuzz.invalid", 0xFFFFFFFF),
        query("zones.catalog.fuzz.invalid", 12),  # PTR
        query("version.catalog.fuzz.invalid", "TXT"),
        query("alpha.test", "SOA", flags=0x2400),  # NOTIFY
        query("catalog.fuzz.invalid", "SOA", flags=0x2400),
        query("alpha.test", "AXFR", edns=1232),
    ]
    for i, m in enumerate(msgs):
        for flags in {i % 8, 3, 7}:  # and always the signing secondary, fresh and journaled
            put("xfr", bytes([flags]) + m)
        put("tsig", bytes([[0, 1, 2, 3, 4, 5, 6, 7, 0x80][i % 9], 0, i]) + m)


def sources_seeds():
    rows = [
        "new.example\tgamma\n" "alias.example\t\x00\tnew.example\n" "beta.test\talpha\n",
        "a.example\nb.example\tbeta\nA.EXAMPLE\n",
        "bücher.example\nxn--bcher-kva.example\n",
        "\x00\nok.example\tnosuch\n..\n" + "x" * 300 + ".example\n",
        "alias-alpha.test\nw.example\t\x00\tw.example\nv.example\t\x00\talpha.test\n",
        "c.example\tgamma\tnot a name\n\xff\xfe.example\n",
    ]
    for r in rows:
        put("sources", r.encode("utf-8", "surrogateescape") if "\xff" not in r else r.encode("latin-1"))


def http_seeds():
    reqs = [
        (0, "GET", "/mail/config-v1.1.xml?emailaddress=fred%40alpha.test", "autoconfig.alpha.test", ""),
        (1, "GET", "/.well-known/autoconfig/mail/config-v1.1.xml", "autoconfig.beta.test:443", ""),
        (2, "GET", "/mail/config-v1.1.xml?emailaddress=ann@alias-alpha.test", "alpha.test", ""),
        (3, "HEAD", "/mail/config-v1.1.xml", "autoconfig.sub.alpha.test.", ""),
        (1, "GET", "/autodiscover/autodiscover.xml", "autodiscover.alpha.test", ""),
        (2, "GET", "/Autodiscover/Autodiscover.xml", "autodiscover.beta.test", ""),
        (1, "GET", "/autodiscover/autodiscover.json?Email=fred%40beta.test&Protocol=AutodiscoverV1", "x", ""),
        (1, "GET", "/autodiscover/autodiscover.json/v1.0/fred@alpha.test?Protocol=AutodiscoverV1", "x", ""),
        (1, "GET", "/autodiscover/autodiscover.json?Protocol=ActiveSync", "autodiscover.alpha.test", ""),
        (1, "GET", "/email.mobileconfig?emailaddress=fred%40alpha.test", "autoconfig.alpha.test", ""),
        (1, "GET", "/.well-known/mta-sts.txt", "mta-sts.alpha.test", ""),
        (2, "GET", "/.well-known/mta-sts.txt", "mta-sts.beta.test", ""),
        (0, "GET", "/healthz", "", ""),
        (0, "DELETE", "/mail/config-v1.1.xml", "alpha.test", ""),
        (0, "GET", "/nothing", "alpha.test", ""),
        (0, "GET", "/mail/config-v1.1.xml?emailaddress=%3Cscript%3E%40alpha.test", "[::1]:8080", ""),
        (0, "GET", "/mail/config-v1.1.xml?emailaddress=fred%40xn--bcher-kva.example", "autoconfig.xn--bcher-kva.example", ""),
        (3, "POST", "/autodiscover/autodiscover.xml", "autodiscover.alpha.test", pox_body("fred@alpha.test")),
        # PACC and CalDAV/CardDAV (RFC 6764 §5).
        (1, "GET", "/.well-known/user-agent-configuration.json", "ua-auto-config.alpha.test", ""),
        (0, "HEAD", "/.well-known/user-agent-configuration.json", "ua-auto-config.beta.test", ""),
        (1, "GET", "/.well-known/caldav", "alpha.test", ""),
        (0, "PROPFIND", "/.well-known/carddav", "autoconfig.alpha.test", ""),
        (2, "GET", "/.well-known/caldav?x=%3C", "beta.test", ""),
        (1, "PROPFIND", "/.well-known/carddav/", "alias-alpha.test", "<propfind xmlns=\"DAV:\"/>"),
    ]
    for flags, method, target, host, body in reqs:
        put("http", bytes([flags]) + f"{method}\n{target}\n{host}\n{body}".encode())


OUTLOOK = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
MOBILESYNC = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"


def pox_body(email, schema=OUTLOOK, ns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"):
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<Autodiscover xmlns="{ns}">\n  <Request>\n'
            f"    <EMailAddress>{email}</EMailAddress>\n"
            f"    <AcceptableResponseSchema>{schema}</AcceptableResponseSchema>\n  </Request>\n</Autodiscover>\n")


def pox_seeds():
    for b in [
        pox_body("fred@alpha.test"), pox_body("ann@alias-alpha.test"), pox_body("bob@beta.test"),
        pox_body("x@sub.alpha.test"), pox_body("x@nodns.test"), pox_body("x@unknown.test"),
        pox_body("fred&#64;alpha.test"), pox_body("f&amp;red@alpha.test"), pox_body("FRED@ALPHA.TEST."),
        pox_body("fred@alpha.test", schema=MOBILESYNC,
                 ns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"),
        pox_body("fred@alpha.test", schema="urn:unknown"),
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY y "fred@alpha.test">]><Autodiscover><Request>'
        "<EMailAddress>&y;</EMailAddress></Request></Autodiscover>",
        "<Autodiscover><Request><EMailAddress><![CDATA[fred@beta.test]]></EMailAddress></Request></Autodiscover>",
        "<a:Autodiscover xmlns:a='x'><a:Request><a:EMailAddress>fred@alpha.test</a:EMailAddress></a:Request></a:Autodiscover>",
        "", "<", "<Autodiscover>",
    ]:
        put("pox", b)


def settings_seeds():
    files = sorted((ROOT / "tests" / "fixtures").glob("**/*.toml")) + [ROOT / "deploy" / "mailconf.example.toml"]
    for f in files:
        text = f.read_bytes()
        for mode in (0, 1, 2):
            put("settings", bytes([mode]) + text)
    put("settings", b"\x01[provider.p]\ndisplay_name = \"P\"\n")
    put("settings", b"\x02[[domain]]\nname = \"x.example\"\nprovider = \"nope\"\n[domain.dns]\nnameservers = []\n")


def probe_seeds():
    for t in [
        "220 mx.example ESMTP ready\r\n",
        "250-mx.example Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n",
        "250-mx.example\r\n250-AUTH=LOGIN\r\n250 STARTTLS\r\n",
        "554 5.7.1 no\r\n", "250-a\r\n251 b\r\n",
        "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n",
        "* CAPABILITY IMAP4rev2 AUTH=PLAIN ID\r\na1 OK done\r\n",
        "+OK POP3 ready\r\nUSER\r\nSTLS\r\nSASL PLAIN\r\n.\r\n",
    ]:
        put("probe", t)
    for f in sorted((ROOT / "tests" / "golden" / "render").glob("*.xml")):
        put("probe", f.read_bytes())
    # A DNS answer as a resolver sends it.
    put("probe", b"\x12\x34\x85\x00\x00\x01\x00\x01\x00\x00\x00\x00" + name("_imaps._tcp.alpha.test")
        + b"\0\x21\0\1\xc0\x0c\0\x21\0\1\0\0\x0e\x10\0\x1c\0\0\0\0\x03\xe1" + name("imap.alpha-mail.test"))


def acme_seeds():
    """The CA's answers the ACME client reads (target `acme`, first byte = reader): RFC 9773's
    renewalInfo example and broken ones, Retry-After values, RFC 3339 times, and the RFC's
    example certificate (DER, taken from the unit test in src/acme/ari.rs)."""
    import base64
    import re
    for body in [
        '{"suggestedWindow": {"start": "2025-01-02T04:00:00Z", "end": "2025-01-03T04:00:00Z"},'
        ' "explanationURL": "https://acme.example.com/docs/ari"}',
        '{"suggestedWindow": {"start": "2025-01-03T04:00:00Z", "end": "2025-01-02T04:00:00Z"}}',
        '{"suggestedWindow": {"start": "2025-01-02T05:30:00.123+01:30", "end": "9999-12-31T23:59:60Z"}}',
        '{"suggestedWindow": {}}', "{}",
    ]:
        put("acme", b"\0" + body.encode())
    for value in ["120", "0", "-5", "Sun, 06 Nov 1994 08:49:37 GMT", "Wed, 02 Dec 2026 14:00:00 GMT", "soon"]:
        put("acme", b"\1" + value.encode())
    for t in ["2025-01-02T04:00:00Z", "2025-01-02t04:00:00.5-12:00", "0000-02-29 23:59:60z", "2025-13-02T04:00:00Z"]:
        put("acme", b"\2" + t.encode())
    src = (ROOT / "src" / "acme" / "ari.rs").read_text()
    pem = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", src, re.S).group(1)
    put("acme", b"\3" + base64.b64decode("".join(pem.split())))


if __name__ == "__main__":
    dns_seeds()
    xfr_seeds()
    sources_seeds()
    http_seeds()
    pox_seeds()
    settings_seeds()
    probe_seeds()
    acme_seeds()
    for d in sorted(SEEDS.iterdir()):
        print(d.name, len(list(d.iterdir())))
