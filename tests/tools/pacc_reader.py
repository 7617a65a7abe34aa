#!/usr/bin/env python3
"""An independent PACC client, written from draft-ietf-mailmaint-pacc (-02/-03 wire format), not
from mailconf's code: its own DNS (dnspython), TLS (Python's ssl), HTTP (http.client), JSON and
SHA-256 (hashlib).

For ADDRESS it does what the draft tells a user agent to do:
  1. fetch https://ua-auto-config.<domain>/.well-known/user-agent-configuration.json
     (host resolved with an A query to the given DNS server; certificate checked against --cafile
     for that host name; no redirects followed; 200 required);
  2. look up TXT at _ua-auto-config.<domain>; for every record, join its character-strings,
     split at ';' into tag=value pairs (tag names case-insensitive, whitespace and unknown tags
     ignored) and keep those with v=UAAC1 and a=sha256;
  3. accept the body only if base64(d) of one of them equals SHA-256 of the exact body bytes
     (several records are allowed, e.g. during a rollover); otherwise reject it.

Prints {"records": N, "document": {...}} and exits 0 when accepted; exits 2 when the body is
rejected (no digest matches); 1 on any other failure.

Usage: pacc_reader.py ADDRESS --dns IP:PORT --https-port N --cafile CA.pem [--tamper]
--tamper changes the body after the download (one trailing space: still valid JSON), to show the
reader rejects what the digest does not cover.
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import json
import socket
import ssl
import sys

import dns.flags
import dns.message
import dns.query
import dns.rdatatype

PATH = "/.well-known/user-agent-configuration.json"


def ask(server, port, name, rdtype):
    q = dns.message.make_query(name, rdtype)
    r = dns.query.udp(q, server, port=port, timeout=5)
    if r.flags & dns.flags.TC:
        r = dns.query.tcp(q, server, port=port, timeout=5)
    want = dns.rdatatype.from_text(rdtype)
    return [rr for rrset in r.answer if rrset.rdtype == want for rr in rrset]


def digests(records):
    out = []
    for rr in records:
        value = b"".join(rr.strings).decode("utf-8", "replace")
        tags = {}
        for part in value.split(";"):
            if "=" not in part:
                continue
            name, val = part.split("=", 1)
            tags.setdefault(name.strip().lower(), val.strip())
        if tags.get("v") != "UAAC1" or tags.get("a", "").lower() != "sha256" or "d" not in tags:
            continue
        try:
            out.append(base64.b64decode(tags["d"], validate=True))
        except ValueError:
            continue
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("address")
    ap.add_argument("--dns", required=True)
    ap.add_argument("--https-port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--tamper", action="store_true")
    a = ap.parse_args()
    server, port = a.dns.rsplit(":", 1)
    port = int(port)
    domain = a.address.rsplit("@", 1)[1].encode("idna").decode("ascii").lower().rstrip(".")
    host = "ua-auto-config." + domain

    ips = [rr.address for rr in ask(server, port, host, "A")]
    if not ips:
        sys.exit(f"no address for {host}")
    ctx = ssl.create_default_context(cafile=a.cafile)
    sock = ctx.wrap_socket(socket.create_connection((ips[0], a.https_port), timeout=10), server_hostname=host)
    conn = http.client.HTTPConnection(host, timeout=10)
    conn.sock = sock
    conn.request("GET", PATH, headers={"Accept": "application/json"})
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        sys.exit(f"GET https://{host}{PATH}: HTTP {resp.status}")
    if a.tamper:
        body += b" "

    records = ask(server, port, "_ua-auto-config." + domain, "TXT")
    found = digests(records)
    mine = hashlib.sha256(body).digest()
    if not any(hmac.compare_digest(mine, d) for d in found):
        print(f"rejected: SHA-256 of the body matches none of {len(found)} UAAC1 record(s)", file=sys.stderr)
        sys.exit(2)

    doc = json.loads(body)
    assert isinstance(doc.get("protocols"), dict), doc
    assert isinstance(doc.get("authentication"), dict), doc
    name = doc["info"]["provider"]["name"]
    assert 1 <= len(name) <= 60, name
    assert len(doc["info"]["provider"].get("shortName", "")) <= 20, doc
    print(json.dumps({"records": len(records), "document": doc}, sort_keys=True))


if __name__ == "__main__":
    main()
