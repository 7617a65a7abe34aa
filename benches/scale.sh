#!/usr/bin/env bash
# mailconf at scale, on a generated hosting-provider config (benches/gen-config.py, default 10,000
# domains), loopback only. Parts (PARTS, comma-separated, default all):
#   check   `check`, `zone --format snippet`, `zone --out` on disk and into tmpfs (and a rerun
#           with unchanged files): median time and peak RSS of RUNS runs
#   serve   `mailconf serve` (release, DNS+HTTP on free ports): seconds from process start until the
#           last domain's _imaps._tcp SRV answers NOERROR with the right target and its Thunderbird GET
#           answers 200; VmRSS 3 s later and once the background zone warm-up is over (steady);
#           1000 random answers checked
#   reload  RELOADS times (default 3) the whole file again, with the last domain moved to another
#           provider and back, SIGHUP, while two query loops ask random domains (RELOAD_QPS in all,
#           default 2000; 0: as fast as they can): seconds until the change answers over DNS, peak
#           VmRSS (sampled every 50 ms), queries that failed (no answer in 2 s, an error or a wrong
#           answer), VmRSS once the reload's zone warm-up is over
#   dns     dnsperf -l QSECS -c 8 -T 1 -q 200, questions drawn at random from all domains (five SRV
#           labels), median of QRUNS runs; with PEERS=1 also Knot (two UDP workers) and NSD (RRL off)
#           loaded with the zone files of `mailconf zone --out`: their start time and memory too
#   http    wrk -t2 -c32 Thunderbird GETs spread over all domains vs always the same domain
# Usage: [PARTS=check,serve,reload,dns,http] [PEERS=1] [QSECS=10] [QRUNS=3] [METRICS=0] [RELOAD_QPS=2000]
#        [RELOADS=3]
#        benches/scale.sh [DOMAINS] [RUNS]
# Needs python3; dnsperf (dns), wrk (http), knotd and nsd (PEERS=1):
#   apt-get install dnsperf wrk knot nsd      (stop the packaged daemons: they are not used)
# Memory: ~150 MiB to serve 100k domains, ~200 MiB during their reload (README, "Scale and sizing").
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/knot-conf.sh
n=${1:-10000}
runs=${2:-5}
parts=",${PARTS:-check,serve,reload,dns,http},"
peers=${PEERS:-1}
qsecs=${QSECS:-10}
qruns=${QRUNS:-3}
has() { [[ $parts == *",$1,"* ]]; }
work=$(mktemp -d)
# A directory in memory for the tmpfs row of `zone --out`, if the machine has one.
shm=$work
[ -d /dev/shm ] && [ -w /dev/shm ] && shm=$(mktemp -d /dev/shm/mailconf-scale.XXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work" "$shm"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
need() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || { echo "missing $1: apt-get install $2" >&2; exit 1; }; }
has dns && need dnsperf dnsperf
has http && need wrk wrk
if has dns && [ "$peers" = 1 ]; then need knotd knot; need nsd nsd; fi
PATH=$PATH:/usr/sbin
cargo build --release --locked -q
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/mailconf
probe() { python3 benches/scale_probe.py "$@"; }
python3 benches/gen-config.py "$n" > "$work/big.toml"
# Served from here on: no NOTIFY may leave loopback (the generated secondary is 192.0.2.53).
grep -v '^transfer_to' "$work/big.toml" > "$work/serve.toml"
echo "config: $n domains, $(wc -c < "$work/big.toml") bytes"

rows=()   # what | mailconf | Knot | NSD | mailconf/Knot
row() { rows+=("$1|$2|${3:-}|${4:-}|${5:-}"); }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
spread() { sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%s-%s", lo, hi}'; }
ratio() { python3 -c "import sys; a,b=sys.argv[1:]; print(f'{float(a)/float(b):.2f}' if b not in ('', '0', 'never') and a not in ('', 'never') else '-')" "$1" "$2"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.0f MiB", k/1024}'; }
vmrss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# A process and all its descendants.
tree() { local c; echo "$1"; for c in $(pgrep -P "$1" || true); do tree "$c"; done; }
# PSS (KiB) summed over a process and its descendants: shared pages counted once.
pss_tree() {
  local total=0 p
  for p in $(tree "$1"); do
    total=$((total + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
# A port free for both UDP and TCP on 127.0.0.1.
port() {
  python3 -c '
import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); p = u.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass'
}

if has check; then
  aside=$work   # where `measure` finds the previous run's `out` directory
  measure() { # label, command...
    local label=$1; shift
    local times=() rss=()
    for _ in $(seq "$runs"); do
      # The previous run's files are moved aside, not deleted, and written back to disk before
      # the clock starts. Each run is timed alone: ext4 skips inodes deleted in the last ~30 s
      # when it allocates new ones (`recently_deleted` in perf), so right after removing 140k
      # files, creating 140k others took 3-4x as long.
      [ -d "$aside/out" ] && mv "$aside/out" "$(mktemp -d "$aside/previous.XXXX")"
      sync
      /usr/bin/time -f '%e %M' -o "$work/t" "$@" > /dev/null 2>&1
      read -r t m < "$work/t"
      times+=("$t"); rss+=("$m")
    done
    local mt mr
    mt=$(printf '%s\n' "${times[@]}" | median)
    mr=$(printf '%s\n' "${rss[@]}" | median)
    printf '%-28s median %6.2f s   peak RSS %6d KiB   (runs: %s)\n' "$label" "$mt" "$mr" "${times[*]}"
    row "$label: time, peak RSS (median of $runs)" "$mt s, $(mib "$mr")"
  }
  measure "check" "$bin" check --config "$work/big.toml"
  measure "zone --format snippet" "$bin" zone --config "$work/big.toml" --format snippet
  measure "zone --out (all zones)" "$bin" zone --config "$work/big.toml" --out "$work/out"
  # The same into memory (tmpfs): mailconf's own cost, without the file system's. On ext4
  # mounted without a journal (this benchmark machine's root, see dmesg), creating a file skips
  # every free inode deleted in the last 60-300 s (`recently_deleted` in fs/ext4/ialloc.c, only
  # when `s_journal == NULL`), so the disk figure above depends on what was deleted before.
  if [ "$shm" != "$work" ]; then
    aside=$shm
    measure "zone --out (all zones, tmpfs)" "$bin" zone --config "$work/big.toml" --out "$shm/out"
    aside=$work
  fi
  # Again into the same directory: nothing changed, so nothing is written.
  "$bin" zone --config "$work/big.toml" --out "$work/out2" 2>/dev/null
  /usr/bin/time -f '%e %M' -o "$work/t" "$bin" zone --config "$work/big.toml" --out "$work/out2" > /dev/null 2>&1
  read -r t m < "$work/t"
  printf '%-28s        %6.2f s   peak RSS %6d KiB\n' "zone --out (files unchanged)" "$t" "$m"
  row "zone --out (files unchanged): time, peak RSS" "$t s, $(mib "$m")"
  echo "zone files written: $(ls "$work/out" | grep -c '\.zone$'), parent snippets: $(ls "$work/out" | grep -c '\.parent$')"
  mv "$work/out" "$work/zones"   # what Knot and NSD load
  rm -rf "$work"/previous.* "$shm"/previous.* "$shm/out"
  rm -rf "$work/out2"
fi

# Seconds since $t0 until the log has its Nth "DNS zones built" line (the warm-up after start or
# after the (N-1)th reload), or "never" after 900 s.
warmed() {
  local i
  for i in $(seq 9000); do
    if [ "$(grep -c 'DNS zones built' "$work/mailconf.log")" -ge "$1" ]; then
      python3 -c "import time; print(f'{time.time() - $t0:.1f}')"; return
    fi
    sleep 0.1
  done
  echo never
}

if has serve || has reload || has dns || has http; then
  dport=$(port); hport=$(port)
  extra=()
  [ "${METRICS:-0}" = 1 ] && extra=(--metrics-listen "127.0.0.1:$(port)")
  t0=$(date +%s.%N)
  # Info from the DNS server only: its "DNS zones built" line says when the background warm-up
  # (every zone built, the heap trimmed) is over, which is when memory is steady.
  RUST_LOG=warn,mailconf::dns=info "$bin" serve --config "$work/serve.toml" --dns-listen "127.0.0.1:$dport" \
    --http-listen "127.0.0.1:$hport" "${extra[@]}" 2>"$work/mailconf.log" &
  mpid=$!; pids+=("$mpid")
  read -r m_dns m_http < <(probe ready "$dport" "$hport" "$n" "$t0")
  [ "$m_dns" != never ] && [ "$m_http" != - ] || { echo "mailconf never answered for the last domain" >&2; cat "$work/mailconf.log" >&2; exit 1; }
  sleep 3
  m_rss3=$(vmrss "$mpid")
  m_warm=$(warmed 1)
  sleep 1
  m_rss=$(vmrss "$mpid")
  m_bad=$(probe sample "$dport" "$n" 1000)
  printf 'serve: last domain answers DNS after %.2f s, HTTP after %.2f s; RSS 3 s later %s; all zones built after %s s, steady RSS then %s; wrong answers in 1000 random: %s\n' \
    "$m_dns" "$m_http" "$(mib "$m_rss3")" "$m_warm" "$(mib "$m_rss")" "$m_bad"
  m_ready=$(python3 -c "print(f'{max($m_dns, $m_http):.2f}')")
fi

if has reload; then
  # RELOADS reloads (default 3), alternately moving the last domain to another provider and back,
  # each under queries. RSS is read again after each reload's warm-up, to see what reloads leave.
  nrel=${RELOADS:-3}
  cp "$work/serve.toml" "$work/orig.toml"
  new=$(probe change "$work/serve.toml" "$work/changed.toml" "$n")
  old_p=$(( (n - 1) % 3 )); new_p=$(( n % 3 ))
  r_vis_all=(); r_peak_max=0; r_after=()
  for i in $(seq "$nrel"); do
    if [ $((i % 2)) = 1 ]; then cp "$work/changed.toml" "$work/next.toml"; want=$new_p; else cp "$work/orig.toml" "$work/next.toml"; want=$old_p; fi
    probe reload "$mpid" "$dport" "$n" "$work/serve.toml" "$work/next.toml" "${RELOAD_QPS:-2000}" "$want" > "$work/reload" 2>"$work/reload.err"
    cat "$work/reload.err" >&2
    get() { awk -F= -v k="$1" '$1 == k {print $2}' "$work/reload"; }
    vis=$(get visible_s); peak=$(get rss_peak_kib); before=$(get rss_before_kib)
    q=$(get queries); fail=$(get failed); to=$(get timeouts)
    vis_f=$([ "$vis" = never ] && echo never || printf '%.2f' "$vis")
    t0=$(date +%s.%N); w=$(warmed $((i + 1))); sleep 1; after=$(vmrss "$mpid")
    printf 'reload %s: last domain on provider p%s after %s s; RSS before %s, peak %s (%.2fx of steady); queries %s, failed %s (timeouts %s); zones rebuilt %s s later, RSS then %s\n' \
      "$i" "$want" "$vis_f" "$(mib "$before")" "$(mib "$peak")" "$(echo "$peak / $m_rss" | bc -l)" "$q" "$fail" "$to" "$w" "$(mib "$after")"
    if [ "$i" = 1 ]; then r_vis_f=$vis_f; r_q=$q; r_fail=$fail; r_to=$to; else r_q=$((r_q + q)); r_fail=$((r_fail + fail)); r_to=$((r_to + to)); fi
    r_vis_all+=("$vis_f"); r_after+=("$(mib "$after")")
    [ "$peak" -gt "$r_peak_max" ] && r_peak_max=$peak
  done
fi

k_ready=""; k_rss=""; n_ready=""; n_rss=""
if has dns; then
  lines=$(( n * 5 < 200000 ? 200000 : (n * 5 > 1000000 ? 1000000 : n * 5) ))
  probe queries "$n" "$lines" > "$work/queries"
  if [ "$peers" = 1 ]; then
    [ -d "$work/zones" ] || "$bin" zone --config "$work/big.toml" --out "$work/zones" 2>/dev/null
    chmod -R a+rX "$work"
    kport=$(port)
    # Every zone, the last domain's last (the one the start time waits for).
    knot_conf "$work" "$kport" "customer$((n - 1)).example"
    t0=$(date +%s.%N)
    knotd -c "$work/knot.conf" 2>"$work/knot.log" &
    kpid=$!; pids+=("$kpid")
    read -r k_ready _ < <(probe ready "$kport" 0 "$n" "$t0")
    [ "$k_ready" != never ] || { echo "Knot never answered" >&2; tail "$work/knot.log" >&2; exit 1; }
    sleep 3
    k_rss=$(vmrss "$kpid")
    k_bad=$(probe sample "$kport" "$n" 1000)
    printf 'knot: last domain answers after %.2f s; steady RSS %s; wrong answers in 1000 random: %s\n' "$k_ready" "$(mib "$k_rss")" "$k_bad"

    nport=$(port)
    mkdir -p "$work/nsd"
    {
      printf 'server:\n  ip-address: 127.0.0.1@%s\n  port: %s\n  server-count: 2\n  username: ""\n  chroot: ""\n' "$nport" "$nport"
      printf '  zonesdir: %s/zones\n  database: ""\n  zonelistfile: %s/nsd/zone.list\n  xfrdfile: %s/nsd/xfrd.state\n' "$work" "$work" "$work"
      printf '  pidfile: %s/nsd/nsd.pid\n  logfile: %s/nsd/nsd.log\n  verbosity: 0\n' "$work" "$work"
      printf '  rrl-ratelimit: 0\n  rrl-whitelist-ratelimit: 0\nremote-control:\n  control-enable: no\n'
      sed 's/.*/zone:\n  name: &\n  zonefile: &.zone/' "$work/zone-list"
    } > "$work/nsd.conf"
    t0=$(date +%s.%N)
    nsd -d -c "$work/nsd.conf" 2>"$work/nsd.err" &
    npid=$!; pids+=("$npid")
    read -r n_ready _ < <(probe ready "$nport" 0 "$n" "$t0")
    [ "$n_ready" != never ] || { echo "NSD never answered" >&2; cat "$work/nsd.err" "$work/nsd/nsd.log" >&2; exit 1; }
    sleep 3
    n_rss=$(pss_tree "$npid")
    n_bad=$(probe sample "$nport" "$n" 1000)
    printf 'nsd: last domain answers after %.2f s; steady PSS %s (%d processes); wrong answers in 1000 random: %s\n' \
      "$n_ready" "$(mib "$n_rss")" "$(tree "$npid" | wc -l)" "$n_bad"
  fi

  qps() { dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries" -l "$qsecs" -c 8 -T 1 -q 200 2>&1 | awk '/Queries per second/ {printf "%.0f\n", $4}'; }
  m_q=(); k_q=(); n_q=()
  for r in $(seq "$qruns"); do
    m_q+=("$(qps "$dport")")
    line="run $r: mailconf ${m_q[-1]} q/s"
    if [ "$peers" = 1 ]; then
      k_q+=("$(qps "$kport")"); n_q+=("$(qps "$nport")")
      line+="   knot ${k_q[-1]} q/s   nsd ${n_q[-1]} q/s"
    fi
    echo "$line"
  done
  m_qm=$(printf '%s\n' "${m_q[@]}" | median); m_qs=$(printf '%s\n' "${m_q[@]}" | spread)
  if [ "$peers" = 1 ]; then
    k_qm=$(printf '%s\n' "${k_q[@]}" | median); k_qs=$(printf '%s\n' "${k_q[@]}" | spread)
    n_qm=$(printf '%s\n' "${n_q[@]}" | median); n_qs=$(printf '%s\n' "${n_q[@]}" | spread)
  fi
fi

if has http; then
  probe wrk-lua spread "$n" > "$work/spread.lua"
  probe wrk-lua one 1 > "$work/one.lua"
  wrk_run() { # script -> "rps non2xx"
    wrk -t2 -c32 -d"${qsecs}s" -s "$1" "http://127.0.0.1:$hport/" 2>&1 | awk '
      /Requests\/sec/ {rps=sprintf("%.0f", $2)} /Non-2xx/ {bad=$NF} /Socket errors/ {err=$0}
      END {printf "%s %s\n", rps, (bad==""?0:bad)}'
  }
  s_r=(); o_r=(); h_bad=0
  for r in $(seq "$qruns"); do
    read -r s b1 < <(wrk_run "$work/spread.lua"); read -r o b2 < <(wrk_run "$work/one.lua")
    s_r+=("$s"); o_r+=("$o"); h_bad=$((h_bad + b1 + b2))
    echo "run $r: HTTP GET spread over $n domains $s req/s   one domain $o req/s"
  done
  s_m=$(printf '%s\n' "${s_r[@]}" | median); o_m=$(printf '%s\n' "${o_r[@]}" | median)
fi

# ---- the table ----------------------------------------------------------------------------------
if has serve || has reload || has dns || has http; then
  row "serve: until the last domain answers (DNS, HTTP)" "${m_ready} s ($(printf '%.2f, %.2f' "$m_dns" "$m_http"))" \
    "${k_ready:+$(printf '%.2f s' "$k_ready")}" "${n_ready:+$(printf '%.2f s' "$n_ready")}" "$(ratio "$m_ready" "$k_ready")"
  row "serve: all zones built (background warm-up)" "$m_warm s"
  row "serve: steady memory (VmRSS; NSD: PSS of all processes)" "$(mib "$m_rss")" "${k_rss:+$(mib "$k_rss")}" \
    "${n_rss:+$(mib "$n_rss")}" "$(ratio "$m_rss" "$k_rss")"
fi
if has reload; then
  row "reload (one domain changed): until visible, each of $nrel" "${r_vis_all[*]} s"
  row "reload: peak VmRSS of all (x steady after warm-up)" "$(mib "$r_peak_max") ($(printf '%.2f' "$(echo "$r_peak_max / $m_rss" | bc -l)")x)"
  row "reload: VmRSS after each reload's warm-up" "${r_after[*]}"
  row "reload: queries during them, failed (timeouts)" "$r_q at ${RELOAD_QPS:-2000}/s, $r_fail ($r_to)"
fi
if has dns; then
  row "DNS q/s spread over all domains, median of $qruns (range)" "$m_qm ($m_qs)" "${k_qm:+$k_qm ($k_qs)}" \
    "${n_qm:+$n_qm ($n_qs)}" "$(ratio "$m_qm" "${k_qm:-}")"
fi
if has http; then
  row "HTTP GET req/s spread over all domains, median of $qruns" "$s_m ($(printf '%s\n' "${s_r[@]}" | spread))"
  row "HTTP GET req/s always one domain, median of $qruns" "$o_m ($(printf '%s\n' "${o_r[@]}" | spread))"
  row "HTTP spread / one domain; non-2xx answers" "$(ratio "$s_m" "$o_m"); $h_bad"
fi
echo
echo "== $n domains, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ) =="
printf '%-58s | %-26s | %-18s | %-18s | %s\n' "what" "mailconf" "Knot" "NSD" "mailconf/Knot"
printf '%s\n' "${rows[@]}" | while IFS='|' read -r a b c d e; do
  printf '%-58s | %-26s | %-18s | %-18s | %s\n' "$a" "$b" "$c" "$d" "$e"
done
