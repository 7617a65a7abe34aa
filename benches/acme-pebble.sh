#!/usr/bin/env bash
# ACME at scale against Debian's pebble on loopback (issue 13). N configured domains (default
# 1000) plus fail.test (no DNS records, so its validation fails), and a small order budget
# (BUDGET per 3 h, default 100). A handshake for the last domain is made before pebble is up.
# Reports: pebble's count of new orders (must equal BUDGET), certificates issued, seconds to spend
# the budget, whether the last domain was certified (on demand), fail.test's retries, mailconf's
# VmRSS and its /metrics gauges. Then mailconf restarts with BUDGET2 (default 2 × BUDGET) on the
# same ports: the cache scan, and no certificate that was issued is ordered again.
# Usage: [BUDGET=100] [BUDGET2=200] [BIN=target/debug/mailconf] benches/acme-pebble.sh [N]
# Needs pebble, openssl, curl, python3 (apt-get install pebble openssl curl python3).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
budget=${BUDGET:-100}
budget2=${BUDGET2:-$((2 * budget))}
bin=${BIN:-target/debug/mailconf}
[[ -x $bin ]] || cargo build --locked
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
read -r acme mgmt dns tls met unused < <(echo "$(port) $(port) $(port) $(port) $(port) $(port)")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -addext "basicConstraints=critical,CA:FALSE" -keyout "$work/pebble.key" -out "$work/pebble.pem" 2>/dev/null
config() {
  python3 - "$work" "$acme" "$n" "$1" >"$work/mailconf.toml" <<'EOF'
import sys
work, acme, n, budget = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
print(f'''[server]
[server.tls.acme]
directory = "https://127.0.0.1:{acme}/dir"
contact = ["mailto:postmaster@scale.test"]
cache_dir = "{work}/acme-cache"
ca_roots = "{work}/pebble.pem"
orders_per_3h = {budget}
certs_per_registered_domain_7d = 1000000
retry_after = 1

[provider.p]
display_name = "ACME Scale"
[[provider.p.server]]
protocol = "imap"
host = "mail.scale.test"
port = 993
security = "tls"
[[provider.p.server]]
protocol = "smtp"
host = "mail.scale.test"
port = 465
security = "tls"

[[domain]]
name = "fail.test"
provider = "p"''')
for i in range(n):
    print(f'''
[[domain]]
name = "d{i}.scale.test"
provider = "p"
[domain.dns]
nameservers = ["ns.d{i}.scale.test"]
autoconfig_addresses = ["127.0.0.1"]
hosts = {{ ns = ["127.0.0.1"] }}''')
EOF
}
serve() {
  RUST_LOG=info "$bin" serve --config "$work/mailconf.toml" --dns-listen "127.0.0.1:$dns" \
    --https-listen "127.0.0.1:$tls" --metrics-listen "127.0.0.1:$met" 2>"$work/$1.log" &
  mc=$!
  pids+=("$mc")
  until grep -q "HTTPS listening" "$work/$1.log" && grep -q "metrics listening" "$work/$1.log"; do
    kill -0 "$mc" 2>/dev/null || { cat "$work/$1.log" >&2; exit 1; }
    sleep 0.1
  done
}
count() { grep -c "$1" "$2" || true; }
# Wait until the budget is spent and every started order has ended.
settle() {
  local log=$1 t0=$SECONDS
  until grep -q "ACME order budget used up" "$log"; do
    sleep 0.5
    ((SECONDS - t0 < 1800)) || { echo "budget never used up" >&2; exit 1; }
  done
  while (($(count "ACME order started" "$log") > $(count "ACME certificate issued" "$log") + $(count "ACME order failed" "$log"))); do
    sleep 0.5
  done
  echo $((SECONDS - t0))
}
last="autoconfig.d$((n - 1)).scale.test"
config "$budget"
start=$SECONDS
serve run1
curl -sS --max-time 5 -o /dev/null --resolve "$last:$tls:127.0.0.1" "https://$last:$tls/healthz" 2>/dev/null &&
  echo "unexpected: $last served before any order" >&2
cat >"$work/pebble.json" <<EOF
{"pebble": {"listenAddress": "127.0.0.1:$acme", "managementListenAddress": "127.0.0.1:$mgmt",
 "certificate": "$work/pebble.pem", "privateKey": "$work/pebble.key", "httpPort": $unused, "tlsPort": $tls,
 "ocspResponderURL": "", "externalAccountBindingRequired": false}}
EOF
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 pebble -config "$work/pebble.json" -dnsserver "127.0.0.1:$dns" \
  >"$work/pebble.log" 2>&1 &
pids+=("$!")
secs=$(settle "$work/run1.log")
sleep 2
echo "domains: $n (+ fail.test), budget: $budget per 3 h"
echo "pebble new orders: $(count 'Added order' "$work/pebble.log") (budget $budget)"
echo "certificates issued: $(count 'ACME certificate issued' "$work/run1.log") in ${secs} s after mailconf listened ($((SECONDS - start)) s in all)"
echo "fail.test failures (retried with backoff): $(grep 'ACME order failed' "$work/run1.log" | grep -c 'autoconfig.fail.test' || true)"
if grep 'ACME certificate issued' "$work/run1.log" | grep -q "certificate=$last "; then
  echo "on demand: $last certified (position $(grep 'ACME certificate issued' "$work/run1.log" | grep -n "certificate=$last " | cut -d: -f1))"
else
  echo "on demand: $last NOT certified"
fi
echo "mailconf VmRSS: $(awk '/VmRSS/ {print $2, $3}' "/proc/$mc/status")"
curl -sS "http://127.0.0.1:$met/metrics" | grep '^mailconf_acme'
grep 'ACME certificate issued' "$work/run1.log" | sed 's/.*certificate=\([^ ]*\).*/\1/' | sort >"$work/issued1"
kill "$mc"
wait "$mc" 2>/dev/null || true

config "$budget2"
orders1=$(count 'Added order' "$work/pebble.log")
serve run2
secs=$(settle "$work/run2.log")
grep -o 'ACME cache: [0-9]* certified, [0-9]* to order' "$work/run2.log" | head -1
grep 'ACME order started' "$work/run2.log" | sed 's/.*certificate=\([^ ]*\).*/\1/' | sort >"$work/started2"
echo "after restart with budget $budget2: $(wc -l <"$work/started2") orders started, pebble +$(($(count 'Added order' "$work/pebble.log") - orders1))"
echo "re-ordered although cached: $(comm -12 "$work/issued1" "$work/started2" | wc -l) (must be 0)"
