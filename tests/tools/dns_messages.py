#!/usr/bin/env python3
"""Send one DNS query and describe every message of the answer, one line each, with dnspython
(an implementation independent of mailconf's): used by tests/dns.rs to check that each message
of an answer carries OPT when the query did, and that TSIG verifies over it.

usage: dns_messages.py HOST PORT udp|tcp NAME TYPE [serial=N] [edns] [do] [key=NAME:BASE64] [opcode=N]

Prints per message: `rcode=NAME opt=PAYLOAD|none do=0|1 ede=CODES answers=N tsig=ok|none`.
A transfer is read until its closing SOA (or 3 s of silence); a TSIG that does not verify
raises, and the script exits non-zero.
"""
import socket
import struct
import sys

import dns.edns
import dns.flags
import dns.name
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsigkeyring


def describe(m):
    ede = [o.code for o in (m.options or []) if o.otype == dns.edns.EDE]
    return "rcode={} opt={} do={} ede={} answers={} tsig={}".format(
        dns.rcode.to_text(m.rcode()),
        m.payload if m.edns >= 0 else "none",
        1 if m.ednsflags & dns.flags.DO else 0,
        ",".join(str(int(c)) for c in ede) or "-",
        sum(len(r) for r in m.answer),
        "ok" if m.had_tsig else "none",
    )


def main():
    host, port, transport, name, rdtype = sys.argv[1:6]
    opts = sys.argv[6:]
    flag = lambda f: f in opts
    value = lambda k: next((o.split("=", 1)[1] for o in opts if o.startswith(k + "=")), None)
    if flag("edns"):
        q = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=flag("do"), payload=1232)
    else:
        q = dns.message.make_query(name, rdtype, use_edns=False)
    if value("opcode"):
        q.set_opcode(int(value("opcode")))
    serial = value("serial")
    if serial is not None:
        soa = dns.rrset.from_text(dns.name.from_text(name), 0, "IN", "SOA", ". . %s 0 0 0 0" % serial)
        q.authority.append(soa)
    keyring = None
    if value("key"):
        kname, secret = value("key").split(":", 1)
        keyring = dns.tsigkeyring.from_text({kname: secret})
        q.use_tsig(keyring, keyname=kname)
    wire = q.to_wire()
    xfr = dns.rdatatype.from_text(rdtype) in (dns.rdatatype.AXFR, dns.rdatatype.IXFR)
    if transport == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.sendto(wire, (host, int(port)))
        data, _ = s.recvfrom(65535)
        m = dns.message.from_wire(data, keyring=keyring, request_mac=q.mac)
        print(describe(m))
        return
    s = socket.create_connection((host, int(port)), timeout=3)
    s.sendall(struct.pack("!H", len(wire)) + wire)

    def read(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    request_mac, ctx, soas, first = q.mac, None, 0, True
    while True:
        try:
            (length,) = struct.unpack("!H", read(2))
            data = read(length)
        except (EOFError, socket.timeout):
            return
        m = dns.message.from_wire(
            data,
            keyring=keyring,
            request_mac=request_mac,
            xfr=xfr,
            origin=dns.name.from_text(name),
            tsig_ctx=ctx,
            multi=xfr,
            one_rr_per_rrset=True,
        )
        ctx, request_mac = m.tsig_ctx, m.mac
        print(describe(m))
        if not xfr or m.rcode() != dns.rcode.NOERROR:
            return
        soas += sum(1 for r in m.answer if r.rdtype == dns.rdatatype.SOA)
        records = sum(len(r) for r in m.answer)
        # AXFR ends with its second SOA; a lone SOA (IXFR, up to date) is the whole answer.
        if (first and records == 1) or (rdtype == "AXFR" and soas >= 2):
            return
        first = False


if __name__ == "__main__":
    main()
