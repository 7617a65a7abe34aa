#!/usr/bin/env bash
# What the access log costs, on a machine shared with other load: the same mailconf binary with
# its default logging and with RUST_LOG=warn, both loaded at the same time by two wrk (so both
# see the same neighbours), SECONDS per run, RUNS runs. Per run and as medians: requests/s and
# the server's CPU µs per request (user+system from /proc/PID/stat / wrk's request count).
# Usage: benches/logcost.sh [SECONDS] [RUNS]   (defaults 8 5). MAILCONF_BIN=path as in http.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}; runs=${2:-5}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
command -v wrk >/dev/null || { echo "missing wrk" >&2; exit 1; }
if [ -n "${MAILCONF_BIN:-}" ]; then bin=$MAILCONF_BIN; else cargo build --release --locked -q; bin=$PWD/target/release/mailconf; fi
grep -v -E '^(dns_listen|http_listen)' deploy/mailconf.example.toml > "$work/mailconf.toml"
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
dport=$(port); wport=$(port)
env -u RUST_LOG "$bin" serve --config "$work/mailconf.toml" --http-listen "127.0.0.1:$dport" 2>"$work/default.log" &
pids+=($!); dpid=$!
RUST_LOG=warn "$bin" serve --config "$work/mailconf.toml" --http-listen "127.0.0.1:$wport" 2>"$work/warn.log" &
pids+=($!); wpid=$!
tb="/mail/config-v1.1.xml?emailaddress=fred%40example.com"
up() { for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return; sleep 0.2; done; echo "port $1 did not come up" >&2; exit 1; }
up "$dport"; up "$wport"
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
for i in $(seq "$runs"); do
  d0=$(cpu $dpid); w0=$(cpu $wpid)
  wrk -t1 -c16 -d"${secs}s" "http://127.0.0.1:$dport$tb" > "$work/d.out" & a=$!
  wrk -t1 -c16 -d"${secs}s" "http://127.0.0.1:$wport$tb" > "$work/w.out" & b=$!
  wait $a $b
  d1=$(cpu $dpid); w1=$(cpu $wpid)
  nd=$(awk '/ requests in /{print $1}' "$work/d.out"); nw=$(awk '/ requests in /{print $1}' "$work/w.out")
  awk -v i="$i" -v cd=$((d1 - d0)) -v cw=$((w1 - w0)) -v nd="$nd" -v nw="$nw" -v t="$tck" -v s="$secs" 'BEGIN {
    ud = cd * 1e6 / t / nd; uw = cw * 1e6 / t / nw
    printf "run %d default %7.0f req/s %6.1f us/req | warn %7.0f req/s %6.1f us/req | cost: cpu %5.1f %%, req/s %5.1f %%\n",
      i, nd / s, ud, nw / s, uw, (ud / uw - 1) * 100, (1 - nd / nw) * 100 }' | tee -a "$work/runs"
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
printf 'median cost of the access log: cpu %s %%, req/s %s %% (load: %s)\n' \
  "$(awk '{print $(NF-4)}' "$work/runs" | median)" "$(awk '{print $(NF-1)}' "$work/runs" | median)" "$(cut -d" " -f1-3 /proc/loadavg)"
