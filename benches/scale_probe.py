#!/usr/bin/env python3
"""Probes for benches/scale.sh: DNS and HTTP on loopback only, standard library only.

The domains are those of benches/gen-config.py: customerK.example, provider p(K % 3), whose mail
servers are mailP.hoster.example. Subcommands:

  queries N LINES            a dnsperf query file drawn at random from all N domains (five SRV labels)
  ready DNS_PORT HTTP_PORT N T0
                             wait until the last domain answers its _imaps._tcp SRV (NOERROR, right
                             target) and, unless HTTP_PORT is 0, the Thunderbird GET answers 200;
                             print the seconds since T0 (unix time) for each
  sample DNS_PORT N COUNT    ask COUNT random domains (five labels); print how many answers were wrong
  change CONFIG NEW N        write CONFIG with the last domain moved to the next provider to NEW;
                             print the new target host
  reload PID DNS_PORT N CONFIG NEW QPS
                             while QPS queries/s (0: unpaced) for random domains run: replace CONFIG with NEW, SIGHUP
                             PID, wait until the last domain's SRV shows the new target; sample
                             VmRSS every 50 ms; print key=value lines
  wrk-lua spread N | one K   a wrk script for Thunderbird GETs spread over N domains, or always domain K
  signed DNS_PORT N COUNT T0 wait until the last domain and COUNT random ones answer their _imaps._tcp
                             SRV with an RRSIG when asked with DO; print the seconds since T0
"""
import http.client
import os
import random
import signal
import socket
import struct
import sys
import threading
import time

LABELS = [("_submissions", 465), ("_submission", 587), ("_imaps", 993), ("_pop3s", 995), ("_autodiscover", 443)]


def target(k, label, provider=None):
    """The SRV (port, target) a generated domain must answer for LABEL."""
    port = dict(LABELS)[label]
    if label == "_autodiscover":
        return port, f"autodiscover.customer{k}.example"
    return port, f"mail{k % 3 if provider is None else provider}.hoster.example"


def encode(qid, name, qtype=33, do=False):
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 1 if do else 0)  # RD off: authoritative servers
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    if do:  # OPT: 1232-byte UDP payload, DO bit set
        q += b"\0" + struct.pack(">HHIH", 41, 1232, 0x8000, 0)
    return q


def read_name(buf, off):
    """A (possibly compressed) name at OFF; returns (name, offset after it)."""
    labels, end, jumps = [], None, 0
    while True:
        n = buf[off]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | buf[off + 1]
            jumps += 1
            if jumps > 64:
                raise ValueError("compression loop")
            continue
        if n == 0:
            return ".".join(labels), (off + 1 if end is None else end)
        labels.append(buf[off + 1:off + 1 + n].decode("ascii", "replace").lower())
        off += 1 + n


def answers(buf, qid):
    """(flags, [(type, offset of RDATA, RDLENGTH)]) of the answer section of a response to
    question QID; raises on a malformed or foreign message."""
    rid, flags, qd, an = struct.unpack(">HHHH", buf[:8])
    if rid != qid or not flags & 0x8000:
        raise ValueError("not our response")
    off = 12
    for _ in range(qd):
        _, off = read_name(buf, off)
        off += 4
    out = []
    for _ in range(an):
        _, off = read_name(buf, off)
        rtype, _, _, rdlen = struct.unpack(">HHIH", buf[off:off + 10])
        out.append((rtype, off + 10, rdlen))
        off += 10 + rdlen
    return flags, out


def srv_answers(buf, qid):
    """(rcode, [(port, target)]) of an SRV response; raises on a malformed or foreign message."""
    flags, rrs = answers(buf, qid)
    out = []
    for rtype, off, _ in rrs:
        if rtype == 33:
            _, _, port = struct.unpack(">HHH", buf[off:off + 6])
            out.append((port, read_name(buf, off + 6)[0]))
    return flags & 0xF, out


def answer_types(buf, qid):
    """The types of the answer section's records (raises on a foreign or malformed message)."""
    return [rtype for rtype, _, _ in answers(buf, qid)[1]]


class Asker:
    """One UDP socket, one question at a time."""

    def __init__(self, port, timeout=2.0):
        self.addr = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        self.timeout = timeout

    def srv(self, name):
        """(rcode, answers), or None on timeout."""
        return self.ask(name, srv_answers)

    def ask(self, name, parse, do=False):
        """PARSE(response, qid) of the response to NAME's SRV question (with DO if DO), or None
        on timeout."""
        qid = random.getrandbits(16)
        self.sock.sendto(encode(qid, name, do=do), self.addr)
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                buf, _ = self.sock.recvfrom(4096)
            except socket.timeout:
                return None
            try:
                return parse(buf, qid)
            except (ValueError, IndexError, struct.error):
                continue  # a late answer to an earlier question: keep waiting for ours


def signed(asker, name):
    """True when NAME's SRV answer, asked with DO, carries an RRSIG."""
    try:
        return 46 in (asker.ask(name, answer_types, do=True) or [])
    except OSError:
        return False  # not listening yet


def cmd_signed(dns_port, n, count, t0, limit=3600):
    asker = Asker(dns_port, timeout=1.0)
    ks = [n - 1] + random.sample(range(n), min(count, n))
    while ks and time.time() - t0 < limit:
        ks = [k for k in ks if not signed(asker, f"_imaps._tcp.customer{k}.example")]
        if ks:
            time.sleep(1)
    print(f"{time.time() - t0:.2f}" if not ks else "never")


def http_ok(port, k):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", f"/mail/config-v1.1.xml?emailaddress=u%40customer{k}.example",
                  headers={"Host": f"autoconfig.customer{k}.example"})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status == 200 and f"customer{k}.example".encode() in body
    except OSError:
        return False


def cmd_queries(n, lines):
    rnd = random.Random(1)
    out = sys.stdout
    for _ in range(lines):
        out.write(f"{rnd.choice(LABELS)[0]}._tcp.customer{rnd.randrange(n)}.example SRV\n")


def cmd_ready(dns_port, http_port, n, t0, limit=900):
    last = n - 1
    a = Asker(dns_port, timeout=0.1)  # no ICMP error on an unconnected socket: keep waits short
    want = [target(last, "_imaps")]
    dns_at = http_at = None
    while time.time() - t0 < limit:
        if dns_at is None:
            try:
                r = a.srv(f"_imaps._tcp.customer{last}.example")
            except OSError:
                r = None  # port not bound yet
            if r is not None and r[0] == 0 and r[1] == want:
                dns_at = time.time() - t0
        if http_at is None and http_port:
            if http_ok(http_port, last):
                http_at = time.time() - t0
        if dns_at is not None and (http_at is not None or not http_port):
            break
        time.sleep(0.02)
    print(f"{dns_at if dns_at is not None else 'never'} {http_at if http_at is not None else '-'}")


def check(ans, k, label, providers):
    if ans is None:
        return "timeout"
    rcode, rrs = ans
    if rcode != 0:
        return f"rcode {rcode}"
    if rrs not in ([target(k, label, p)] for p in providers(k)):
        return f"wrong answer {rrs}"
    return None


def cmd_sample(dns_port, n, count):
    a = Asker(dns_port)
    rnd = random.Random()
    bad = 0
    for _ in range(count):
        k = rnd.randrange(n)
        label = rnd.choice(LABELS)[0]
        err = check(a.srv(f"{label}._tcp.customer{k}.example"), k, label, lambda k: [k % 3])
        if err:
            bad += 1
            if bad <= 3:
                print(f"customer{k}.example {label}: {err}", file=sys.stderr)
    print(bad)


def new_provider(n):
    return n % 3  # the last domain, n-1, has provider (n-1) % 3


def cmd_change(config, new, n):
    text = open(config).read()
    last = n - 1
    old = f'name = "customer{last}.example"\nprovider = "p{last % 3}"\n'
    assert text.count(old) == 1, "generated config has an unexpected shape"
    with open(new, "w") as f:
        f.write(text.replace(old, f'name = "customer{last}.example"\nprovider = "p{new_provider(n)}"\n'))
    print(f"mail{new_provider(n)}.hoster.example")


def vmrss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cmd_reload(pid, dns_port, n, config, new, qps, want_provider, limit=900):
    last = n - 1
    stop = threading.Event()
    rss = []  # (time, KiB)
    stats = {"sent": 0, "failed": 0, "timeouts": 0}
    errors = []
    lock = threading.Lock()
    # The last domain may answer with either provider during the reload; the others with theirs.
    providers = lambda k: [k % 3, new_provider(n)] if k == last else [k % 3]

    def sampler():
        while not stop.is_set():
            try:
                rss.append((time.time(), vmrss(pid)))
            except OSError:
                break
            time.sleep(0.05)

    def loader(seed):
        a = Asker(dns_port)
        rnd = random.Random(seed)
        gap = 2 / qps if qps else 0  # two loops share the rate
        due = time.monotonic()
        while not stop.is_set():
            if gap:
                due += gap
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            k = last if rnd.random() < 0.05 else rnd.randrange(n)
            label = rnd.choice(LABELS)[0]
            err = check(a.srv(f"{label}._tcp.customer{k}.example"), k, label, providers)
            with lock:
                stats["sent"] += 1
                if err:
                    stats["failed"] += 1
                    stats["timeouts"] += err == "timeout"
                    if len(errors) < 5:
                        errors.append(f"customer{k}.example {label}: {err}")

    threads = [threading.Thread(target=sampler)] + [threading.Thread(target=loader, args=(s,)) for s in range(2)]
    for t in threads:
        t.start()
    time.sleep(2)  # steady state under the same load
    steady = max(r for _, r in rss[-10:])
    os.replace(new, config)
    t0 = time.time()
    os.kill(pid, signal.SIGHUP)
    probe = Asker(dns_port, timeout=1)
    want = [target(last, "_imaps", want_provider)]
    visible = None
    while time.time() - t0 < limit:
        r = probe.srv(f"_imaps._tcp.customer{last}.example")
        if r is not None and r[0] == 0 and r[1] == want:
            visible = time.time() - t0
            break
        time.sleep(0.02)
    time.sleep(1)  # queries and samples just after the swap count too
    stop.set()
    for t in threads:
        t.join()
    during = [r for t, r in rss if t >= t0]
    print(f"visible_s={visible if visible is not None else 'never'}")
    print(f"rss_before_kib={steady}")
    print(f"rss_peak_kib={max(during) if during else 0}")
    print(f"rss_after_kib={rss[-1][1] if rss else 0}")
    print(f"queries={stats['sent']}")
    print(f"failed={stats['failed']}")
    print(f"timeouts={stats['timeouts']}")
    for e in errors:
        print(f"error: {e}", file=sys.stderr)


def cmd_wrk_lua(how, k):
    pick = f"math.random(0, {k - 1})" if how == "spread" else str(k)
    print(f"""math.randomseed(os.time() + math.floor(os.clock() * 1000000))
request = function()
  local k = {pick}
  return wrk.format("GET", "/mail/config-v1.1.xml?emailaddress=u%40customer" .. k .. ".example")
end""")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "queries":
        cmd_queries(int(args[0]), int(args[1]))
    elif cmd == "ready":
        cmd_ready(int(args[0]), int(args[1]), int(args[2]), float(args[3]))
    elif cmd == "sample":
        cmd_sample(int(args[0]), int(args[1]), int(args[2]))
    elif cmd == "change":
        cmd_change(args[0], args[1], int(args[2]))
    elif cmd == "reload":
        cmd_reload(int(args[0]), int(args[1]), int(args[2]), args[3], args[4], int(args[5]), int(args[6]))
    elif cmd == "signed":
        cmd_signed(int(args[0]), int(args[1]), int(args[2]), float(args[3]))
    elif cmd == "wrk-lua":
        cmd_wrk_lua(args[0], int(args[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
