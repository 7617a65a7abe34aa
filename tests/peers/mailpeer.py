#!/usr/bin/env python3
"""A scriptable SMTP / IMAP / POP3 peer for the probe tests, correct or deliberately broken.

  mailpeer.py PROTO MODE PORT NAME [CERT KEY]

PROTO: smtp | imap | pop3
MODE:  implicit         TLS from the first byte, AUTH offered
       starttls         plaintext, STARTTLS offered (not last), AUTH only after TLS
       starttls-last    like starttls, but STARTTLS is the last EHLO line
       no-starttls      plaintext, no STARTTLS at all
       auth-before-tls  STARTTLS offered, but AUTH (or LOGIN) also before TLS
       no-auth          STARTTLS, but no AUTH even after TLS
       plain            plaintext only (e.g. on a port published as implicit TLS)
Listens on 127.0.0.1:PORT (0: a port the system picks), greets as NAME, prints "ready PORT" with
the port it listens on and serves until killed.
"""
import socket
import ssl
import sys
import threading

proto, mode, port, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ctx = None
if len(sys.argv) > 6:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[5], sys.argv[6])


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                raise EOFError
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def starttls(self):
        self.sock = ctx.wrap_socket(self.sock, server_side=True)


def smtp(c, tls):
    c.send(f"220 {name} ESMTP mailpeer")
    while True:
        cmd = c.line().upper()
        if cmd.startswith("EHLO"):
            caps = ["PIPELINING", "8BITMIME"]
            if tls:
                if mode != "no-auth":
                    caps.insert(0, "AUTH PLAIN LOGIN")
            else:
                if mode in ("starttls", "auth-before-tls", "no-auth"):
                    caps.insert(1, "STARTTLS")
                if mode == "starttls-last":
                    caps.append("STARTTLS")
                if mode in ("auth-before-tls", "no-starttls", "plain"):
                    caps.insert(0, "AUTH PLAIN LOGIN")
            lines = [name] + caps
            for l in lines[:-1]:
                c.send(f"250-{l}")
            c.send(f"250 {lines[-1]}")
        elif cmd == "STARTTLS" and not tls:
            c.send("220 2.0.0 Ready to start TLS")
            c.starttls()
            tls = True
        elif cmd == "QUIT":
            c.send("221 2.0.0 Bye")
            return
        else:
            c.send("502 5.5.2 Error: command not recognized")


def imap(c, tls):
    def caps():
        if tls:
            return "IMAP4rev1 AUTH=PLAIN" if mode != "no-auth" else "IMAP4rev1 LOGINDISABLED"
        if mode == "no-starttls":
            return "IMAP4rev1 AUTH=PLAIN"
        if mode == "auth-before-tls":
            return "IMAP4rev1 STARTTLS AUTH=PLAIN"
        return "IMAP4rev1 STARTTLS LOGINDISABLED"
    c.send(f"* OK [CAPABILITY {caps()}] {name} ready")
    while True:
        tag, _, cmd = c.line().partition(" ")
        cmd = cmd.upper()
        if cmd == "CAPABILITY":
            c.send(f"* CAPABILITY {caps()}")
            c.send(f"{tag} OK done")
        elif cmd == "STARTTLS" and not tls:
            c.send(f"{tag} OK Begin TLS negotiation now")
            c.starttls()
            tls = True
        elif cmd == "LOGOUT":
            c.send("* BYE")
            c.send(f"{tag} OK bye")
            return
        else:
            c.send(f"{tag} BAD unknown")


def pop3(c, tls):
    c.send(f"+OK {name} ready")
    while True:
        cmd = c.line().upper()
        if cmd == "CAPA":
            caps = ["TOP", "UIDL"]
            if tls or mode in ("auth-before-tls", "no-starttls", "plain"):
                caps += ["USER", "SASL PLAIN"]
            if not tls and mode not in ("no-starttls", "plain"):
                caps.append("STLS")
            c.send("+OK")
            for cap in caps:
                c.send(cap)
            c.send(".")
        elif cmd == "STLS" and not tls:
            c.send("+OK Begin TLS")
            c.starttls()
            tls = True
        elif cmd == "QUIT":
            c.send("+OK bye")
            return
        else:
            c.send("-ERR unknown")


def serve(sock):
    try:
        implicit = mode == "implicit"
        if implicit:
            sock = ctx.wrap_socket(sock, server_side=True)
        {"smtp": smtp, "imap": imap, "pop3": pop3}[proto](Conn(sock), implicit)
    except (EOFError, OSError, ssl.SSLError):
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(16)
print("ready", srv.getsockname()[1], flush=True)
while True:
    s, _ = srv.accept()
    s.settimeout(10)
    threading.Thread(target=serve, args=(s,), daemon=True).start()
