#!/usr/bin/env python3
"""Independent reader for mailconf's client documents (a different XML/plist/JSON stack than the
one that wrote them). Prints one JSON object:

  {"servers": {"<format>": [[proto, host, port, tls], ...]}, "logins": {...}, "checks": [...]}

where tls is "tls" (implicit TLS), "starttls" or "none" as each *client* would read the document.
Usage: clientdocs.py thunderbird=FILE pox=FILE mobileconfig=FILE json=FILE srv=FILE(dig output)
"""
import json
import plistlib
import sys
import xml.etree.ElementTree as ET

out = {"servers": {}, "logins": {}, "checks": []}


def thunderbird(path):
    root = ET.parse(path).getroot()
    assert root.tag == "clientConfig" and root.get("version") == "1.1", root.tag
    prov = root.find("emailProvider")
    servers, logins = [], []
    for el in list(prov):
        if el.tag not in ("incomingServer", "outgoingServer"):
            continue
        sock = el.findtext("socketType")
        tls = {"SSL": "tls", "STARTTLS": "starttls", "plain": "none"}[sock]
        servers.append([el.get("type"), el.findtext("hostname"), int(el.findtext("port")), tls])
        logins.append(el.findtext("username"))
        assert el.findall("authentication"), "authentication missing"
    out["servers"]["thunderbird"] = servers
    out["logins"]["thunderbird"] = logins
    out["checks"].append({"emailProvider": prov.get("id"), "domains": [d.text for d in prov.findall("domain")]})


def pox(path):
    ns = {"r": "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006",
          "o": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
    root = ET.parse(path).getroot()
    acct = root.find("o:Response/o:Account", ns)
    servers, logins = [], []
    for p in acct.findall("o:Protocol", ns):
        ssl, enc = p.findtext("o:SSL", namespaces=ns), p.findtext("o:Encryption", namespaces=ns)
        # Outlook honours Encryption (MS-OXDSCLI 2.2.4.1.1.2.6.22); SSL=off alone means plain.
        tls = {"SSL": "tls", "TLS": "starttls", "None": "none"}[enc]
        assert (ssl == "off") == (tls == "none"), (ssl, enc)
        assert p.findtext("o:SPA", namespaces=ns) in ("on", "off")
        servers.append([p.findtext("o:Type", namespaces=ns).lower(), p.findtext("o:Server", namespaces=ns),
                        int(p.findtext("o:Port", namespaces=ns)), tls])
        logins.append(p.findtext("o:LoginName", namespaces=ns))
    out["servers"]["pox"] = servers
    out["logins"]["pox"] = logins


def mobileconfig(path):
    with open(path, "rb") as f:
        top = plistlib.load(f)
    assert top["PayloadType"] == "Configuration" and top["PayloadVersion"] == 1
    mail = top["PayloadContent"][0]
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert not any("Password" in k and k != "OutgoingPasswordSameAsIncomingPassword" for k in mail), "no passwords"
    kind = {"EmailTypeIMAP": "imap", "EmailTypePOP": "pop3"}[mail["EmailAccountType"]]
    servers = []
    for prefix, proto in (("Incoming", kind), ("Outgoing", "smtp")):
        servers.append([proto, mail[prefix + "MailServerHostName"], mail[prefix + "MailServerPortNumber"],
                        "tls" if mail[prefix + "MailServerUseSSL"] else "starttls-or-none"])
    out["servers"]["mobileconfig"] = servers
    out["checks"].append({"PayloadUUID": top["PayloadUUID"], "PayloadIdentifier": top["PayloadIdentifier"]})


def autodiscover_json(path):
    with open(path) as f:
        doc = json.load(f)
    out["checks"].append({"json": doc})


def srv(path):
    # dig +noall +answer output of the six mail SRV names.
    label = {"_imaps": ("imap", "tls"), "_imap": ("imap", "starttls"), "_pop3s": ("pop3", "tls"),
             "_pop3": ("pop3", "starttls"), "_submissions": ("smtp", "tls"), "_submission": ("smtp", "starttls")}
    rows = []
    for line in open(path):
        f = line.split()
        if len(f) < 8 or f[3] != "SRV" or f[7] == ".":
            continue
        proto, tls = label[f[0].split(".")[0]]
        rows.append((int(f[4]), proto, f[7].rstrip("."), int(f[6]), tls))
    rows.sort(key=lambda r: (r[1] == "smtp", r[0]))
    out["servers"]["srv"] = [[p, h, port, t] for _, p, h, port, t in rows]


handlers = {"thunderbird": thunderbird, "pox": pox, "mobileconfig": mobileconfig, "json": autodiscover_json, "srv": srv}
for arg in sys.argv[1:]:
    kind, path = arg.split("=", 1)
    handlers[kind](path)
print(json.dumps(out, sort_keys=True))
