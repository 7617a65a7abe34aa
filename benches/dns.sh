#!/usr/bin/env bash
# mailconf vs Knot, authoritative UDP on loopback, SRV queries, same zones, same run.
# Usage: benches/dns.sh [DOMAINS] [SECONDS] [RUNS]     (defaults: 1000 10 3)
# Prints queries/s per run and the medians, the ratio mailconf/Knot, and latency percentiles
# measured at a fixed rate (LAT_SHARE, default 50 %, of the slower server's median) so that queueing in the load
# tool does not dominate. Needs: knotd (Debian knot), dnsperf, python3. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}; secs=${2:-10}; runs=${3:-3}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
command -v dnsperf >/dev/null && command -v knotd >/dev/null || { echo "install dnsperf and knot (tests/install-deps.sh)" >&2; exit 1; }
cargo build --release --locked -q
bin=$PWD/target/release/mailconf
python3 benches/gen-config.py "$n" | grep -v '^transfer_to' > "$work/mailconf.toml"
"$bin" zone --config "$work/mailconf.toml" --out "$work/zones" 2>/dev/null

port() { python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
mport=$(port); kport=$(port)

RUST_LOG=warn "$bin" serve --config "$work/mailconf.toml" --dns-listen "127.0.0.1:$mport" 2>"$work/mailconf.log" &
pids+=($!)

{
  printf 'server:\n  rundir: %s\n  listen: 127.0.0.1@%s\n' "$work" "$kport"
  printf 'database:\n  storage: %s\nlog:\n  - target: stderr\n    any: error\n' "$work"
  printf 'template:\n  - id: default\n    storage: %s/zones\n    zonefile-sync: -1\n    journal-content: none\n' "$work"
  printf 'zone:\n'
  for f in "$work"/zones/*.zone; do z=$(basename "$f" .zone); printf '  - domain: %s\n    file: %s.zone\n' "$z" "$z"; done
} > "$work/knot.conf"
knotd -c "$work/knot.conf" 2>"$work/knot.log" &
pids+=($!)

# SRV questions for every domain (the six RFC 6186/8314 labels and _autodiscover).
python3 - "$n" > "$work/queries" <<'PY'
import sys
n = int(sys.argv[1])
for i in range(n):
    for l in ["_submissions", "_submission", "_imaps", "_imap", "_pop3s", "_pop3", "_autodiscover"]:
        print(f"{l}._tcp.customer{i}.example SRV")
PY

wait_up() { for _ in $(seq 100); do dig +short +time=1 +tries=1 @127.0.0.1 -p "$1" _imaps._tcp.customer1.example SRV 2>/dev/null | grep -q 993 && return; sleep 0.2; done; echo "server on $1 did not come up" >&2; exit 1; }
wait_up "$mport"; wait_up "$kport"

qps() { dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries" -l "$secs" -c 8 -T 1 -q 200 2>&1 | awk '/Queries per second/ {print $4}'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

m_all=(); k_all=()
for r in $(seq "$runs"); do
  m=$(qps "$mport"); k=$(qps "$kport")
  m_all+=("$m"); k_all+=("$k")
  printf 'run %d: mailconf %10.0f q/s   knot %10.0f q/s\n' "$r" "$m" "$k"
done
m_med=$(printf '%s\n' "${m_all[@]}" | median); k_med=$(printf '%s\n' "${k_all[@]}" | median)
printf 'median: mailconf %.0f q/s, knot %.0f q/s, ratio mailconf/knot = %.2f\n' "$m_med" "$k_med" "$(echo "$m_med / $k_med" | bc -l)"

rate=$(python3 -c "print(int(${LAT_SHARE:-0.5}*min($m_med,$k_med)))")
lat() { dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries" -l 5 -c 8 -T 1 -q 200 -Q "$rate" -v 2>&1 \
  | awk '/^> NOERROR/ {print $5*1000}' | sort -n \
  | awk '{a[NR]=$1} END {printf "p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  (%d answers)\n", a[int(NR*0.5)], a[int(NR*0.99)], a[int(NR*0.999)], NR}'; }
echo "latency at $rate q/s: mailconf $(lat "$mport")"
echo "latency at $rate q/s: knot     $(lat "$kport")"
