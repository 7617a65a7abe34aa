#!/usr/bin/env bash
# Issue 13: N (default 100,000) ACME certificates in cache_dir, one per domain d{i}.bench.test,
# each with its own key, signed by a local CA (made once by the ignored test
# `generate_acme_cache`, with mailconf's own cache file names). No CA is needed: every
# certificate is valid, so nothing is ordered. Reports, for an empty cache and the full one:
# start time (until the "ACME cache: … certified" line) and VmRSS; then, on the full cache,
# TLS handshake latency (median and p90 of SAMPLES) for a hot name (in memory) against names
# never asked for (a cache miss: the file is read and parsed), handshakes/s for 2 clients over
# 10 names against spread over all N, and VmRSS after the spread run (the bounded cache full).
# Usage: [N=100000] [SAMPLES=300] [SECS=10] [WORK=dir to keep the cache] [BIN=target/release/mailconf]
#        benches/acme-100k.sh
# Needs python3 (ssl module). The cache takes ~400 MB of disk at 100,000.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-100000}
samples=${SAMPLES:-300}
secs=${SECS:-10}
bin=${BIN:-target/release/mailconf}
[[ -x $bin ]] || cargo build --release --locked
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"
# Never contacted (every certificate is valid); part of the cache file names.
directory="https://127.0.0.1:9/dir"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n ${WORK:-} ]] || rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [[ ! -f $work/cache/ca.pem || $(find "$work/cache" -name 'cached_cert_*' | wc -l) -ne $n ]]; then
  rm -rf "$work/cache"
  t0=$SECONDS
  MAILCONF_BENCH_CACHE="$work/cache" MAILCONF_BENCH_N=$n MAILCONF_BENCH_DIRECTORY=$directory \
    cargo test --locked --test all -- --ignored --exact acme::generate_acme_cache --nocapture 2>&1 |
    grep -E 'certificates in|test result' >&2
  echo "cache made in $((SECONDS - t0)) s: $(du -sh "$work/cache" | cut -f1) on disk" >&2
fi

config() {
  python3 - "$1" "$n" "$directory" >"$work/mailconf.toml" <<'EOF'
import sys
cache, n, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
print(f'''[server]
[server.tls.acme]
directory = "{directory}"
contact = ["mailto:postmaster@bench.test"]
cache_dir = "{cache}"

[provider.p]
display_name = "ACME bench"
[[provider.p.server]]
protocol = "imap"
host = "mail.bench.test"
port = 993
security = "tls"
[[provider.p.server]]
protocol = "smtp"
host = "mail.bench.test"
port = 465
security = "tls"''')
for i in range(n):
    print(f'''
[[domain]]
name = "d{i}.bench.test"
provider = "p"''')
EOF
}

# Start mailconf on cache dir $1 (log $work/$2.log); sets mc, tls, and took (seconds from exec
# to the end of the cache scan).
serve() {
  config "$1"
  tls=$(port)
  local log=$work/$2.log t0
  : >"$log"
  t0=$(date +%s.%N)
  RUST_LOG=info "$bin" serve --config "$work/mailconf.toml" --https-listen "127.0.0.1:$tls" \
    >/dev/null 2>"$log" &
  mc=$!
  pids+=("$mc")
  until grep -q "ACME cache: " "$log"; do
    kill -0 "$mc" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.05
  done
  took=$(python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):.2f}')" "$(date +%s.%N)" "$t0")
}
rss() { awk '/VmRSS/ {printf "%.1f MiB", $2 / 1024}' "/proc/$mc/status"; }
stop() { kill "$mc"; wait "$mc" 2>/dev/null || true; }

mkdir -p "$work/empty"
echo "== $n domains, mailconf $bin"
serve "$work/empty" empty
sleep 2
echo "empty cache: cache scan done ${took} s after exec; VmRSS $(rss)"
stop
serve "$work/cache" full
sleep 2
echo "full cache:  cache scan done ${took} s after exec; VmRSS $(rss); $(grep -o 'ACME cache: [0-9]* certified' "$work/full.log")"

python3 - "$tls" "$work/cache/ca.pem" "$n" "$samples" "$secs" <<'EOF'
import multiprocessing, random, socket, ssl, statistics, sys, time
port, ca, n, samples, secs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
ctx = ssl.create_default_context(cafile=ca)
name = lambda i: f"autoconfig.d{i}.bench.test"

def handshake(host):
    s = socket.create_connection(("127.0.0.1", port))
    t = time.perf_counter()
    with ctx.wrap_socket(s, server_hostname=host):
        return time.perf_counter() - t

def report(what, times):
    times = sorted(times)
    print(f"{what}: median {statistics.median(times) * 1000:.2f} ms, p90 {times[int(len(times) * 0.9)] * 1000:.2f} ms ({len(times)} handshakes)")

random.seed(1)
picks = random.sample(range(1, n), 2 * samples)
hot = name(0)
handshake(hot)
# Interleaved so that load on the machine falls on both alike.
hot_t, miss_t = [], []
for i in range(samples):
    hot_t.append(handshake(hot))
    miss_t.append(handshake(name(picks[i])))
report("hot name (in memory)", hot_t)
report("cache miss (read from cache_dir)", miss_t)

def run(spread, seed, out):
    rng = random.Random(seed)
    end, count = time.perf_counter() + secs, 0
    while time.perf_counter() < end:
        handshake(name(rng.randrange(n) if spread else rng.randrange(10)))
        count += 1
    out.put(count)

for spread in (False, True):
    q = multiprocessing.Queue()
    ps = [multiprocessing.Process(target=run, args=(spread, s, q)) for s in (2, 3)]
    for p in ps: p.start()
    for p in ps: p.join()
    total = q.get() + q.get()
    print(f"handshakes/s, 2 clients, {'spread over all ' + str(n) if spread else 'over 10 names'}: {total / secs:.0f}")
EOF
echo "after the spread run: VmRSS $(rss)"
stop
