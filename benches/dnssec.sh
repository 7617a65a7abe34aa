#!/usr/bin/env bash
# Signed answers at scale: DO queries per second and memory, every domain signed.
# Usage: benches/dnssec.sh [DOMAINS] [SECONDS] [CACHE_ZONES...]   (defaults: 100000 10, auto)
# For each cache size (a `[server] dnssec_cache_zones` value, or `auto` for the default sizing),
# serves the generated hosting-provider config (benches/gen-config.py) with `dnssec = true`, and
# runs dnsperf with the DO bit (-D) over the SRV names of
#   - warm:   1,000 domains, asked once before (their signed views are cached);
#   - first pass: once through all of the spread's queries (each RRset signed when first asked);
#   - spread: every domain, in random order (after the first pass: the steady state);
#   - plain:  the same spread queries without DO (the unsigned fast path, for comparison).
# Prints queries/s and VmRSS after each. Keys are made once, before, by `mailconf zone --format
# ds` (one file per zone in the state directory, kept between cache sizes; STATE=DIR keeps them
# between runs of this script too).
# With PEERS=1, Knot serves the same zones (`mailconf zone --unsigned`) signed by itself
# (`dnssec-signing: on`, its default policy: ECDSA P-256, KSK + ZSK, NSEC), started first; the
# script prints how long Knot took until the last domain and 200 random ones answer with an
# RRSIG, its memory, and after each mailconf figure the same queries against Knot.
# Needs: dnsperf, python3 (and knotd with PEERS=1). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/knot-conf.sh
n=${1:-100000}; secs=${2:-10}; shift 2 || true
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(auto)
work=$(mktemp -d)
pid=
kpid=
cleanup() { for p in $pid $kpid; do kill "$p" 2>/dev/null; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
command -v dnsperf >/dev/null || { echo "install dnsperf (tests/install-deps.sh)" >&2; exit 1; }
# BIN=path/to/mailconf measures that binary instead of a release build of this checkout.
[ -n "${BIN:-}" ] || cargo build --release --locked -q
bin=${BIN:-$PWD/target/release/mailconf}
python3 benches/gen-config.py "$n" | grep -v '^transfer_to' > "$work/base.toml"
t0=$(date +%s.%N)
state=${STATE:-$work/state}
sed "s|^\[server\]|[server]\nstate_dir = \"$state\"\ndnssec = true|" "$work/base.toml" > "$work/mailconf.toml"
"$bin" zone --config "$work/mailconf.toml" --format ds > "$work/ds.txt"
printf 'keys: %d zones with a DS at the parent, made in %.1f s\n' "$(wc -l < "$work/ds.txt")" "$(echo "$(date +%s.%N) - $t0" | bc -l)"
# The steady state of a deployment that has served ZSKs for a while (ZSK_DAYS, default 30): in
# the first epochs after ZSKs come, the KSK signs beside the ZSK (README "DNSSEC"), which doubles
# the signatures. Recorded as the default schedule's (7-day epochs, 5 epochs a ZSK); ZSK_DAYS=0
# leaves the state as `serve` finds it.
if [ "${ZSK_DAYS:-30}" != 0 ]; then
  rolls="$state/dnssec/rolls"
  { grep -v '^zsk-since ' "$rolls" 2>/dev/null || true
    echo "zsk-since $(( $(date +%s) - ${ZSK_DAYS:-30} * 86400 )) 604800 5"; } > "$rolls.new"
  mv "$rolls.new" "$rolls"
fi

python3 - "$n" "$work" <<'PY'
import random, sys
n, work = int(sys.argv[1]), sys.argv[2]
labels = ["_submissions", "_submission", "_imaps", "_imap", "_pop3s", "_pop3", "_autodiscover"]
with open(f"{work}/warm", "w") as f:
    for i in range(min(n, 1000)):
        for l in labels:
            f.write(f"{l}._tcp.customer{i}.example SRV\n")
rows = [f"{l}._tcp.customer{i}.example SRV\n" for i in range(n) for l in labels]
random.seed(1)
random.shuffle(rows)
with open(f"{work}/spread", "w") as f:
    f.writelines(rows)
PY

port() { python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
qps() { dnsperf -s 127.0.0.1 -p "$port" -d "$work/$1" -l "$secs" -c 8 -T 1 -q 200 $2 2>&1 | awk '/Queries per second/ {print $4}'; }
rss() { awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' "/proc/${1:-$pid}/status"; }

if [ "${PEERS:-0}" = 1 ]; then
  command -v knotd >/dev/null || { echo "install knot (tests/install-deps.sh)" >&2; exit 1; }
  "$bin" zone --config "$work/mailconf.toml" --unsigned --out "$work/zones" 2>/dev/null
  kport=$(port)
  knot_conf "$work" "$kport" "customer$((n - 1)).example" signed
  t0=$(date +%s.%N)
  knotd -c "$work/knot.conf" 2>"$work/knot.log" &
  kpid=$!
  k_ready=$(python3 benches/scale_probe.py signed "$kport" "$n" 200 "$t0")
  [ "$k_ready" != never ] || { echo "Knot never signed" >&2; tail "$work/knot.log" >&2; exit 1; }
  sleep 3
  printf 'knot: signed and answering (last domain and 200 random) after %s s, %s\n' "$k_ready" "$(rss "$kpid")"
  kq() { local save=${port:-}; port=$kport; qps "$@"; port=$save; }
  printf '  knot warm   (1,000 domains, DO):  %8.0f q/s\n' "$(kq warm -D)"
  printf '  knot spread (%d domains, DO): %8.0f q/s  %s\n' "$n" "$(kq spread -D)" "$(rss "$kpid")"
  printf '  knot spread without DO:           %8.0f q/s\n' "$(kq spread '')"
fi

for size in "${sizes[@]}"; do
  conf="$work/serve-$size.toml"
  if [ "$size" = auto ]; then cp "$work/mailconf.toml" "$conf"
  else sed "s|^dnssec = true|dnssec = true\ndnssec_cache_zones = $size|" "$work/mailconf.toml" > "$conf"; fi
  port=$(port)
  t0=$(date +%s.%N)
  RUST_LOG=info "$bin" serve --config "$conf" --dns-listen "127.0.0.1:$port" 2>"$work/serve.log" &
  pid=$!
  printf 'mailconf: last domain and 200 random answer with an RRSIG after %s s\n' \
    "$(python3 benches/scale_probe.py signed "$port" "$n" 200 "$t0")"
  for _ in $(seq 600); do grep -q "DNS zones built" "$work/serve.log" && break; sleep 0.5; done
  cap=$(grep -o "dnssec_cache_zones=[0-9]*" "$work/serve.log" | head -1 | cut -d= -f2 || true)
  echo "cache $size ($cap views): built, $(rss)"
  qps warm -D >/dev/null   # sign them once
  printf '  warm   (1,000 domains, DO):  %8.0f q/s  %s\n' "$(qps warm -D)" "$(rss)"
  # Once through every query of the spread (7 SRV names of every domain, random order): the
  # first DO query for each RRset signs it (builds the zone's view unless cached).
  t1=$(date +%s.%N)
  first=$(dnsperf -s 127.0.0.1 -p "$port" -d "$work/spread" -n 1 -c 8 -T 1 -q 200 -D 2>&1 | awk '/Queries per second/ {print $4}')
  printf '  first pass over all %d queries (DO): %8.0f q/s in %.0f s  %s\n' "$(wc -l < "$work/spread")" "$first" "$(echo "$(date +%s.%N) - $t1" | bc -l)" "$(rss)"
  printf '  spread (%d domains, DO): %8.0f q/s  %s\n' "$n" "$(qps spread -D)" "$(rss)"
  printf '  spread again (DO):           %8.0f q/s  %s\n' "$(qps spread -D)" "$(rss)"
  printf '  spread without DO:           %8.0f q/s  %s\n' "$(qps spread '')" "$(rss)"
  if [ -n "$kpid" ]; then
    printf '  knot spread (DO), right after:  %8.0f q/s\n' "$(kq spread -D)"
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
