#!/usr/bin/env python3
"""Write a mailconf settings file with N domains (default 10,000) to stdout.

Shape of a hosting provider: three providers, every domain with DNS, one in ten with an alias,
one in five with MTA-STS, one in twenty serving only delegated sub-zones.
"""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
out = sys.stdout
out.write('[server]\ntransfer_to = ["192.0.2.53"]\n\n')
for p in range(3):
    out.write(f'[provider.p{p}]\ndisplay_name = "Provider {p}"\n')
    for proto, port, sec in [("imap", 993, "tls"), ("pop3", 995, "tls"), ("smtp", 465, "tls"), ("smtp", 587, "starttls")]:
        out.write(f'[[provider.p{p}.server]]\nprotocol = "{proto}"\nhost = "mail{p}.hoster.example"\n'
                  f'port = {port}\nsecurity = "{sec}"\n')
    out.write("\n")
for i in range(n):
    name = f"customer{i}.example"
    out.write(f'[[domain]]\nname = "{name}"\nprovider = "p{i % 3}"\n')
    if i % 10 == 0:
        out.write(f'aliases = ["customer{i}.example.org"]\n')
    out.write('[domain.dns]\nnameservers = ["ns1.hoster.example.", "ns2.hoster.example."]\n'
              'autoconfig_addresses = ["192.0.2.10", "2001:db8::10"]\n'
              'mx = [{ host = "mx1.hoster.example.", preference = 10 }]\n'
              'spf = "v=spf1 include:_spf.hoster.example -all"\n'
              f'dmarc = "v=DMARC1; p=quarantine; rua=mailto:dmarc@{name}"\n')
    if i % 20 == 0:
        out.write('zones = ["_tcp", "autoconfig", "autodiscover"]\n')
    if i % 5 == 0:
        out.write('[domain.mta_sts]\nmode = "enforce"\n')
    out.write("\n")
