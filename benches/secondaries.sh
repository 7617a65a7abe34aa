#!/usr/bin/env bash
# Secondaries at scale: a Knot secondary configured with nothing but mailconf's catalog zone and a
# TSIG key, on a generated hosting-provider config (benches/gen-config.py), loopback only.
#   cold    seconds from Knot's start until it holds every zone (its log: the catalog, then one
#           finished AXFR per member zone), Knot's VmRSS then, and the bytes it received
#   change  one domain added + SIGHUP: the bytes Knot received for it (IXFR of the catalog + AXFR of
#           the new domain's zones) and the transfers and NOTIFYs it caused, against the cold full
#           sync's bytes
# Usage: [BIN=path/to/mailconf] benches/secondaries.sh [DOMAINS]     (default 100000)
#   Without BIN, builds and uses the release binary. Needs python3, knotd, dig.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
PATH=$PATH:/usr/sbin
for t in knotd dig python3; do command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }; done
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked -q
  BIN=$PWD/target/release/mailconf
fi
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
secret=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
mport=$(free_port)
kport=$(free_port)
key="hmac-sha256:xfr.bench.:$secret"
python3 benches/gen-config.py "$n" |
  sed "s|^transfer_to = .*|catalog = \"catalog.mailconf.invalid.\"\ntransfer_to = [\"127.0.0.1:$kport key xfr.bench.\"]\n\n[server.tsig.\"xfr.bench.\"]\nsecret = \"$secret\"|" \
  > "$work/mailconf.toml"

"$BIN" serve --config "$work/mailconf.toml" --dns-listen "127.0.0.1:$mport" 2> "$work/mailconf.log" &
pids+=($!)
mpid=$!
for _ in $(seq 3600); do grep -q "DNS zones built" "$work/mailconf.log" && break; sleep 0.5; done
grep -q "DNS zones built" "$work/mailconf.log" || { echo "mailconf did not build its zones" >&2; tail "$work/mailconf.log" >&2; exit 1; }
catalog_axfr=$(dig @127.0.0.1 -p "$mport" -y "$key" catalog.mailconf.invalid AXFR)
members=$(grep -c "IN[[:space:]]*PTR" <<< "$catalog_axfr")
catalog_bytes=$(sed -n 's/.*XFR size: .* bytes \([0-9]*\)).*/\1/p' <<< "$catalog_axfr")
echo "domains $n: catalog of $members zones, AXFR $catalog_bytes bytes ($((catalog_bytes / members)) per zone)"

cat > "$work/knot.conf" <<EOF
server:
  rundir: $work
  listen: 127.0.0.1@$kport
database:
  storage: $work
log:
  - target: stderr
    any: info
key:
  - id: xfr.bench.
    algorithm: hmac-sha256
    secret: $secret
remote:
  - id: mailconf
    address: 127.0.0.1@$mport
    key: xfr.bench.
acl:
  - id: notify-from-mailconf
    address: 127.0.0.1
    key: xfr.bench.
    action: notify
template:
  - id: default
    storage: $work
    master: mailconf
    acl: notify-from-mailconf
    zonefile-sync: -1
    zonefile-load: none
    journal-content: none
zone:
  - domain: catalog.mailconf.invalid.
    catalog-role: interpret
    catalog-template: default
EOF
# Bytes of the finished transfers in Knot's log lines on stdin.
sum_bytes() { sed -n 's/.*finished,.* messages, \([0-9]*\) bytes.*/\1/p' | awk '{s += $1} END {print s + 0}'; }
members_done() { grep "AXFR, incoming" "$work/knot.log" | grep -v "catalog.mailconf.invalid" | grep -c "finished" || true; }

start=$(date +%s.%N)
knotd -c "$work/knot.conf" 2> "$work/knot.log" &
pids+=($!)
kpid=$!
while [ "$(members_done)" -lt "$members" ]; do
  kill -0 "$kpid" 2>/dev/null || { echo "knotd stopped" >&2; tail "$work/knot.log" >&2; exit 1; }
  sleep 0.5
done
cold=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
rss=$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$kpid/status")
full=$(grep "finished" "$work/knot.log" | sum_bytes)
failed=$(grep -c "failed" "$work/knot.log" || true)
echo "cold start: Knot holds all $members zones after ${cold}s, VmRSS ${rss} MiB, received $full bytes in all ($failed 'failed' log lines)"

# One domain added.
mark=$(wc -l < "$work/knot.log")
notifies_before=$(grep -c "NOTIFY acknowledged" "$work/mailconf.log" || true)
printf '\n[[domain]]\nname = "added.example"\nprovider = "p0"\n[domain.dns]\nnameservers = ["ns1.hoster.example."]\n' >> "$work/mailconf.toml"
kill -HUP "$mpid"
for _ in $(seq 600); do
  tail -n +"$((mark + 1))" "$work/knot.log" | grep -q "\[added.example.\] AXFR, incoming.*finished" && break
  sleep 0.1
done
sleep 3 # let any other transfer it caused finish
after=$(tail -n +"$((mark + 1))" "$work/knot.log")
change=$(grep "finished" <<< "$after" | sum_bytes)
transfers=$(grep -c "finished" <<< "$after" || true)
ixfr=$(grep "catalog.mailconf.invalid.\] IXFR, incoming.*finished" <<< "$after" | sum_bytes)
notifies=$(( $(grep -c "NOTIFY acknowledged" "$work/mailconf.log" || true) - notifies_before ))
echo "one domain added: $transfers transfers, $change bytes (catalog IXFR $ixfr bytes), $notifies NOTIFYs acknowledged; full resync $full bytes ($(python3 -c "print(f'{$full / max($change, 1):.0f}')")x more)"
