#!/usr/bin/env bash
# A [[source]] of N rows (default 100,000) in a real PostgreSQL started here (temp dir, loopback,
# as `nobody` when run as root), served by a release mailconf. Prints:
#   query         the query alone (psql \timing, median of 3)
#   first answer  seconds from mailconf's start until the last domain's _imaps SRV and Thunderbird
#                 GET answer (benches/scale_probe.py ready), and VmRSS then
#   unchanged     what a refresh that changes nothing costs mailconf (its debug line: query + compare)
#   notify        seconds from INSERT + NOTIFY until the new domain answers over DNS
# The domains and providers are those of benches/gen-config.py (customerK.example, provider pK%3).
# Usage: [BIN=path/to/mailconf] benches/sources-pg.sh [N]     Needs: postgresql, python3, dig (dnsutils).
#   Without BIN, builds and uses the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
work=$(mktemp -d)
chmod 755 "$work"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as=()
if [ "$(id -u)" = 0 ]; then chown nobody:nogroup "$work"; as=(runuser -u nobody --); fi
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pgport=$(port)
mpid=
cleanup() {
  [ -n "$mpid" ] && kill "$mpid" 2>/dev/null || true
  "${as[@]}" "$pgbin/pg_ctl" -w -m immediate -D "$work/pg" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"${as[@]}" "$pgbin/initdb" -A trust -U postgres --no-sync -D "$work/pg" >/dev/null
"${as[@]}" "$pgbin/pg_ctl" -w -D "$work/pg" -l "$work/pg/log" \
  -o "-p $pgport -k $work/pg -c listen_addresses=127.0.0.1" start >/dev/null
sql() { psql -X -q -h 127.0.0.1 -p "$pgport" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
sql -c "CREATE TABLE domains (domain text PRIMARY KEY, provider text NOT NULL, active boolean NOT NULL DEFAULT true)"
sql -c "INSERT INTO domains SELECT 'customer' || k || '.example', 'p' || k % 3 FROM generate_series(0, $n - 1) k"
query="SELECT domain, provider FROM domains WHERE active"
q_ms=$(for _ in 1 2 3; do sql -c '\timing on' -c "$query" -o /dev/null | awk '/^Time:/ {print $2}'; done | sort -g | sed -n 2p)
echo "query ($n rows): $q_ms ms"

if [ -z "${BIN:-}" ]; then
  cargo build --release --locked -q
  BIN=$PWD/target/release/mailconf
fi
bin=$BIN
{
  # gen-config.py writes the [server] table: state_dir joins it (a second [server] is refused).
  python3 benches/gen-config.py 0 | sed "s|^\[server\]\$|[server]\nstate_dir = \"$work/state\"|"
  cat <<TOML
[[source]]
name = "bench"
kind = "postgres"
url = "postgres://postgres@127.0.0.1:$pgport/postgres?sslmode=disable"
query = "$query"
refresh = 5
timeout = 60
listen = "mailconf"
[source.domain.dns]
nameservers = ["ns1.hoster.example.", "ns2.hoster.example."]
autoconfig_addresses = ["192.0.2.10"]
mx = [{ host = "mx1.hoster.example.", preference = 10 }]
spf = "v=spf1 include:_spf.hoster.example -all"
TOML
} > "$work/serve.toml"
dport=$(port); hport=$(port)
t0=$(python3 -c 'import time; print(time.time())')
RUST_LOG=warn,mailconf::app=debug,mailconf::sources=debug "$bin" serve --config "$work/serve.toml" \
  --dns-listen "127.0.0.1:$dport" --http-listen "127.0.0.1:$hport" 2>"$work/mailconf.log" &
mpid=$!
read -r m_dns m_http < <(python3 benches/scale_probe.py ready "$dport" "$hport" "$n" "$t0")
echo "first answer: DNS ${m_dns} s, HTTP ${m_http} s after start; VmRSS $(awk '/^VmRSS:/ {printf "%.0f MiB", $2/1024}' /proc/$mpid/status)"
sleep 12
echo "unchanged refresh (mailconf's own timing, last 2):"
grep 'source unchanged' "$work/mailconf.log" | tail -2 | sed 's/^/  /'
t1=$(date +%s.%N)
sql -c "INSERT INTO domains VALUES ('customer$n.example', 'p0'); NOTIFY mailconf;"
until dig @127.0.0.1 -p "$dport" +short "_imaps._tcp.customer$n.example" SRV | grep -q mail0; do sleep 0.02; done
echo "notify: $(echo "$(date +%s.%N) - $t1" | bc -l | cut -c1-5) s from INSERT+NOTIFY to the DNS answer"
