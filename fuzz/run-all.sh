#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) and prints one table: target, executions, crashes,
# seconds. Stable toolchain, libFuzzer without sanitizer (cargo-fuzz `--sanitizer none`).
#
#   fuzz/run-all.sh                  10,000,000 executions per target (the issue-17 campaign)
#   RUNS=100000 fuzz/run-all.sh dns_udp http
#   SMOKE=2000 fuzz/run-all.sh       a smoke run (.ci/run): 2,000 executions per target from the
#                                    committed seeds only, in a fresh corpus, with libFuzzer's
#                                    random seed fixed: the same code makes the same mutations on
#                                    any machine (only the targets' hash seeds and clock vary)
#   FUZZ_SECONDS=60 fuzz/run-all.sh  a minute per target (exploring; not reproducible)
#   FUZZ_DEV=1 …                     unoptimised build: compiles in about half the time, runs slower
#                                    (.ci/run's smoke run; not for the campaign)
#   TRACE_COMPARES=0 …               build without libFuzzer's comparison hooks (cargo-fuzz
#                                    --no-trace-compares): about twice the executions a second
#                                    where third-party parsers dominate (settings: toml; sources:
#                                    idna), at the cost of guidance towards magic values, which
#                                    the dictionaries give; the campaign ran those two this way
#
# Inputs grow in fuzz/corpus/TARGET (not committed), seeded from fuzz/seeds/; a crash lands in
# fuzz/artifacts/TARGET/ and makes the script exit 1. Copy it to fuzz/regressions/TARGET/ so
# that tests/fuzz_corpus.rs replays it in the normal suite, then fix the code (or the check).
set -uo pipefail
cd "$(dirname "$0")"
runs=${RUNS:-10000000}
seconds=${FUZZ_SECONDS:-}
all=(dns_udp dns_tcp dns_xfr tsig http pox settings probe sources acme)
targets=("${@:-${all[@]}}")
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 2
fi
profile=()
[ -n "${FUZZ_DEV:-}" ] && profile=(--dev)
# A separate target directory, so that switching does not rebuild the other variant.
[ "${TRACE_COMPARES:-1}" = 0 ] && profile+=(--no-trace-compares --target-dir target/no-trace-compares)
cargo fuzz build "${profile[@]}" --sanitizer none || exit 2
seeds_of() { case $1 in dns_xfr) echo xfr ;; dns_*) echo dns ;; *) echo "$1" ;; esac; }
dict_of() { case $1 in dns_* | tsig) echo dns ;; pox | probe) echo xml ;; *) echo "$1" ;; esac; }
limit=(-runs="$runs")
[ -n "$seconds" ] && limit=(-runs=1000000000 -max_total_time="$seconds")
smoke=${SMOKE:-}
[ -n "$smoke" ] && limit=(-runs="$smoke" -seed=1)
failed=0
rows=()
for t in "${targets[@]}"; do
  corpus=corpus/$t
  [ -n "$smoke" ] && corpus=$(mktemp -d)
  mkdir -p "$corpus" "artifacts/$t"
  before=$(find "artifacts/$t" -type f | wc -l)
  log=$(mktemp)
  start=$(date +%s%N)
  cargo fuzz run "${profile[@]}" --sanitizer none "$t" "$corpus" "seeds/$(seeds_of "$t")" -- \
    "${limit[@]}" -dict="dict/$(dict_of "$t").dict" -timeout=10 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  took=$((($(date +%s%N) - start) / 1000000))
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
  crashes=$(($(find "artifacts/$t" -type f | wc -l) - before))
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed=1
    echo "== $t failed (exit $rc); last lines of its log:" >&2
    tail -40 "$log" >&2
  fi
  rm -f "$log"
  [ -n "$smoke" ] && rm -rf "$corpus"
  rows+=("$(printf '%-10s %14s %8s %9d.%d' "$t" "${execs:-?}" "$crashes" $((took / 1000)) $((took % 1000 / 100)))")
done
printf '%-10s %14s %8s %9s\n' target executions crashes seconds
printf '%s\n' "${rows[@]}"
exit "$failed"
