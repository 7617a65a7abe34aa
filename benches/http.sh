#!/usr/bin/env bash
# mailconf vs nginx (static bytes: the load tool's ceiling) vs automx2 (gunicorn -w 2), on
# loopback, with wrk, for the Thunderbird GET and the Outlook POST. Same response bytes for
# mailconf and nginx. Prints requests/s and p99 per run, medians and ratios.
# Usage: benches/http.sh [SECONDS] [RUNS]   (defaults 10 3). Needs wrk, nginx (nginx-light),
# python3 with automx2 + gunicorn (pip install automx2 gunicorn), openssl.
#
# Logging is on as deployed: mailconf runs with its default (one info line per request, to a
# file through its buffered log writer), nginx with a buffered access log (buffer=64k
# flush=1s). "mailconf-warn" is the same binary with RUST_LOG=warn: the ratio mailconf /
# mailconf-warn in the same run is what request logging costs.
# On a shared machine req/s swings with the neighbours' load; CPU time per request does not
# much: each run also prints the server's CPU µs per request (user+system of the process and
# its children from /proc/PID/stat over the run, divided by wrk's request count), and the
# logging cost and the ratios to nginx are also given from the medians of those.
# HTTPS (GET, PEM certificate, wrk speaks HTTP/1.1): mailconf vs nginx with keep-alive, and with
# a new connection (TLS handshake) per request. Both servers speak TLS 1.2 and 1.3 and the
# script checks that each negotiates TLS 1.3 with OpenSSL (wrk's library): nginx before 1.23.4
# (Debian 12 has 1.22) leaves TLS 1.3 off by default, and its new connections were then TLS 1.2
# resumptions from a session ticket, with no key exchange at all, against mailconf's TLS 1.3
# (X25519 on every connection, resumed or not). Both servers resume wrk's sessions (wrk keeps
# the last session across reconnects); nginx from its ticket, mailconf from its session cache.
# The setup page (issue 16), mailconf alone on the RUST_LOG=warn instance (plain HTTP, so no
# redirect to HTTPS): the Thunderbird GET, the cached page (`/setup` with Host autoconfig.…), the
# `?email=` page for one address, and for a new address every request (a Lua counter), with
# ratios to the Thunderbird GET of the same run.
# MAILCONF_BIN=path runs that binary instead of building target/release/mailconf (to compare
# two builds with the same script). SECTIONS="get post https setup" (the default) picks parts.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; runs=${2:-3}
sections=" ${SECTIONS:-get post https setup} "
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for t in wrk nginx gunicorn openssl; do command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }; done
if [ -n "${MAILCONF_BIN:-}" ]; then bin=$MAILCONF_BIN; else cargo build --release --locked -q; bin=$PWD/target/release/mailconf; fi
# A self-signed certificate for HTTPS (P-256, as ACME issues), the same file for both servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=autoconfig.example.com \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
{ grep -v -E '^(dns_listen|http_listen)' deploy/mailconf.example.toml
  printf '\n[server.tls]\ncert = "%s"\nkey = "%s"\n' "$work/cert.pem" "$work/key.pem"; } > "$work/mailconf.toml"
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
mport=$(port); wport=$(port); nport=$(port); aport=$(port); msport=$(port); nsport=$(port)

# Default logging (no RUST_LOG): the access log is on.
env -u RUST_LOG "$bin" serve --config "$work/mailconf.toml" --http-listen "127.0.0.1:$mport" \
  --https-listen "127.0.0.1:$msport" 2>"$work/mailconf.log" &
pids+=($!); mpid=$!
RUST_LOG=warn "$bin" serve --config "$work/mailconf.toml" --http-listen "127.0.0.1:$wport" 2>"$work/mailconf-warn.log" &
pids+=($!); wpid=$!

# The same bytes mailconf answers, served by nginx.
mkdir -p "$work/www/mail"
"$bin" render thunderbird --config "$work/mailconf.toml" --address fred@example.com > "$work/www/mail/config-v1.1.xml"
mkdir -p "$work/www/autodiscover"
"$bin" render autodiscover --config "$work/mailconf.toml" --address fred@example.com > "$work/www/autodiscover/autodiscover.xml"
cat > "$work/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log $work/nginx-access.log combined buffer=64k flush=1s;
  client_body_temp_path $work/body;
  server {
    listen 127.0.0.1:$nport;
    listen 127.0.0.1:$nsport ssl;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    root $work/www;
    location = /mail/config-v1.1.xml { default_type "application/xml; charset=utf-8"; }
    # The static module refuses POST with 405; turning that into the file is the usual trick.
    location = /autodiscover/autodiscover.xml { default_type "text/xml; charset=utf-8"; error_page 405 =200 \$uri; }
  }
}
NGINX
chmod -R a+rX "$work"   # nginx workers run unprivileged
nginx -c "$work/nginx.conf" -p "$work" -g 'daemon off;' 2>>"$work/nginx-error.log" &
pids+=($!); npid=$!

# automx2 with the same servers, seeded once through its /initdb/ endpoint.
printf '[automx2]\nloglevel = WARNING\ndb_uri = sqlite:///%s/automx2.db\nproxy_count = 0\n' "$work" > "$work/automx2.conf"
(cd "$work" && AUTOMX2_CONF="$work/automx2.conf" exec gunicorn -w 2 -b "127.0.0.1:$aport" --log-level warning automx2.server:app 2>"$work/automx2.log") &
pids+=($!); apid=$!

up() { for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return; sleep 0.2; done; echo "port $1 did not come up" >&2; exit 1; }
up "$mport"; up "$wport"; up "$nport"; up "$aport"
curl -s -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$aport/initdb/" -d '{"version": 2, "provider": "Example Mail", "domains": [{"name": "example.com"}],
  "servers": [{"type": "imap", "port": 993, "name": "mail.example.net"}, {"type": "pop", "port": 995, "name": "mail.example.net"},
              {"type": "smtp", "port": 465, "name": "mail.example.net"}, {"type": "smtp", "port": 587, "name": "mail.example.net"}]}' > /dev/null

cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/xml; charset=utf-8"
wrk.body = [[<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>fred@example.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>]]
LUA
tb="/mail/config-v1.1.xml?emailaddress=fred%40example.com"
# Sanity: every server answers both requests with 200 before we measure.
for p in "$mport" "$wport" "$nport" "$aport"; do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p$tb")" = 200 ] || { echo "GET failed on $p" >&2; exit 1; }
done

cpu() { # user+system clock ticks of a server: the process and its children (nginx, gunicorn workers)
  local t=0 p; for p in "$1" $(pgrep -P "$1"); do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
tck=$(getconf CLK_TCK)
run() { # port path [script] [scheme] [header] [server pid] -> "rps p99ms non2xx cpu_us_per_req"
  local s=() c0=0
  [ -n "${3:-}" ] && s=(-s "$3")
  [ -n "${5:-}" ] && s+=(-H "$5")
  [ -n "${6:-}" ] && c0=$(cpu "$6")
  wrk -t2 -c32 -d"${secs}s" --latency "${s[@]}" "${4:-http}://127.0.0.1:$1$2" > "$work/wrk.out" 2>&1
  local c1=0; [ -n "${6:-}" ] && c1=$(cpu "$6")
  awk -v ticks=$((c1 - c0)) -v tck="$tck" '
    /Requests\/sec/ {rps=$2}
    / requests in / {n=$1}
    /^ +99%/ {v=$2; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v*=1000}; p99=v}
    /Non-2xx/ {bad=$NF}
    END {printf "%s %s %s %.1f\n", rps, p99, (bad==""?0:bad), (n>0 ? ticks*1e6/tck/n : 0)}' "$work/wrk.out"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

ratio() { echo "$1/$2" | bc -l; }
for req in get post; do
  [[ $sections == *" $req "* ]] || continue
  declare -A r=()
  names=(mailconf mailconf-warn nginx automx2)
  for name in "${names[@]}"; do r[$name]=""; done
  for i in $(seq "$runs"); do
    for name in "${names[@]}"; do
      case $name in mailconf) p=$mport; pid=$mpid;; mailconf-warn) p=$wport; pid=$wpid;; nginx) p=$nport; pid=$npid;; automx2) p=$aport; pid=$apid;; esac
      if [ "$req" = get ]; then out=$(run "$p" "$tb" "" "" "" "$pid"); else out=$(run "$p" /autodiscover/autodiscover.xml "$work/post.lua" "" "" "$pid"); fi
      read -r rps p99 bad us <<<"$out"
      printf '%-4s run %d %-13s %10.0f req/s  p99 %7.2f ms  non-2xx %s  cpu %7.1f us/req\n' "$req" "$i" "$name" "$rps" "$p99" "$bad" "$us"
      r[$name]+="$rps $p99 $us"$'\n'
    done
  done
  med() { printf '%s' "${r[$1]}" | awk -v c="$2" '{print $c}' | median; }
  m=$(med mailconf 1); w=$(med mailconf-warn 1); n=$(med nginx 1); a=$(med automx2 1); mp=$(med mailconf 2)
  mc=$(med mailconf 3); wc=$(med mailconf-warn 3); nc=$(med nginx 3)
  printf '%s median: mailconf %.0f req/s (p99 %.2f ms), mailconf-warn %.0f, nginx %.0f, automx2 %.0f; mailconf/nginx %.2f, mailconf/automx2 %.1f, logging costs %.1f %%\n' \
    "$req" "$m" "$mp" "$w" "$n" "$a" "$(ratio "$m" "$n")" "$(ratio "$m" "$a")" "$(echo "(1-$m/$w)*100" | bc -l)"
  printf '%s median cpu: mailconf %.1f us/req, mailconf-warn %.1f, nginx %.1f; logging costs %.1f %% cpu; nginx/mailconf cpu %.2f\n' \
    "$req" "$mc" "$wc" "$nc" "$(echo "($mc/$wc-1)*100" | bc -l)" "$(ratio "$nc" "$mc")"
done

# HTTPS GET, keep-alive and one connection per request.
[[ $sections == *" https "* ]] && for p in "$msport" "$nsport"; do
  [ "$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$p$tb")" = 200 ] || { echo "HTTPS GET failed on $p" >&2; exit 1; }
  proto=$(openssl s_client -connect "127.0.0.1:$p" </dev/null 2>/dev/null | awk '/^(New|Reused),/ {sub(",", "", $2); print $2; exit}')
  [ "$proto" = TLSv1.3 ] || { echo "HTTPS on $p negotiated ${proto:-nothing}, not TLSv1.3: the comparison would not be fair" >&2; exit 1; }
done
[[ $sections == *" https "* ]] && for mode in keepalive newconn; do
  hdr=""; [ "$mode" = newconn ] && hdr="Connection: close"
  declare -A r=()
  for name in mailconf nginx; do r[$name]=""; done
  for i in $(seq "$runs"); do
    for name in mailconf nginx; do
      case $name in mailconf) p=$msport; pid=$mpid;; nginx) p=$nsport; pid=$npid;; esac
      read -r rps p99 bad us <<<"$(run "$p" "$tb" "" https "$hdr" "$pid")"
      printf 'https %-9s run %d %-8s %10.0f req/s  p99 %7.2f ms  non-2xx %s  cpu %7.1f us/req\n' "$mode" "$i" "$name" "$rps" "$p99" "$bad" "$us"
      r[$name]+="$rps $p99 $us"$'\n'
    done
  done
  med() { printf '%s' "${r[$1]}" | awk -v c="$2" '{print $c}' | median; }
  m=$(med mailconf 1); n=$(med nginx 1)
  printf 'https %s median: mailconf %.0f req/s (p99 %.2f ms), nginx %.0f; mailconf/nginx %.2f; cpu mailconf %.1f us/req, nginx %.1f, nginx/mailconf %.2f\n' \
    "$mode" "$m" "$(med mailconf 2)" "$n" "$(ratio "$m" "$n")" "$(med mailconf 3)" "$(med nginx 3)" "$(ratio "$(med nginx 3)" "$(med mailconf 3)")"
done

# The setup page against the Thunderbird GET, same instance, same run.
if [[ $sections == *" setup "* ]]; then
  cat > "$work/distinct.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/setup?email=user" .. n .. "%40example.com")
end
LUA
  se="/setup?email=fred%40example.com"
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: autoconfig.example.com' "http://127.0.0.1:$wport/setup")" = 200 ] || { echo "setup failed" >&2; exit 1; }
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$wport$se")" = 200 ] || { echo "setup?email= failed" >&2; exit 1; }
  declare -A r=()
  names=(thunderbird setup setup-email setup-email-new)
  for name in "${names[@]}"; do r[$name]=""; done
  for i in $(seq "$runs"); do
    for name in "${names[@]}"; do
      case $name in
        thunderbird) out=$(run "$wport" "$tb" "" "" "" "$wpid");;
        setup) out=$(run "$wport" /setup "" "" "Host: autoconfig.example.com" "$wpid");;
        setup-email) out=$(run "$wport" "$se" "" "" "" "$wpid");;
        setup-email-new) out=$(run "$wport" /setup "$work/distinct.lua" "" "" "$wpid");;
      esac
      read -r rps p99 bad us <<<"$out"
      printf 'setup run %d %-16s %10.0f req/s  p99 %7.2f ms  non-2xx %s  cpu %7.1f us/req\n' "$i" "$name" "$rps" "$p99" "$bad" "$us"
      r[$name]+="$rps $p99 $us"$'\n'
    done
  done
  med() { printf '%s' "${r[$1]}" | awk -v c="$2" '{print $c}' | median; }
  t=$(med thunderbird 1); tc=$(med thunderbird 3)
  for name in "${names[@]}"; do
    printf 'setup median: %-16s %8.0f req/s (p99 %.2f ms, cpu %.1f us/req); Thunderbird GET req/s over this: %.2f, this cpu over Thunderbird GET cpu: %.2f\n' \
      "$name" "$(med "$name" 1)" "$(med "$name" 2)" "$(med "$name" 3)" "$(ratio "$t" "$(med "$name" 1)")" "$(ratio "$(med "$name" 3)" "$tc")"
  done
fi
