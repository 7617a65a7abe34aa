#!/usr/bin/env bash
# How long `mailconf check` and `mailconf zone --out` take, and how much memory they use, on a
# generated hosting-provider config (default 10,000 domains). Medians of RUNS runs.
# Usage: benches/scale.sh [DOMAINS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
runs=${2:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --locked -q
bin=target/release/mailconf
python3 benches/gen-config.py "$n" > "$work/big.toml"
echo "config: $n domains, $(wc -c < "$work/big.toml") bytes"

measure() { # label, command...
  local label=$1; shift
  local times=() rss=()
  for _ in $(seq "$runs"); do
    rm -rf "$work/out"
    /usr/bin/time -f '%e %M' -o "$work/t" "$@" > /dev/null 2>&1
    read -r t m < "$work/t"
    times+=("$t"); rss+=("$m")
  done
  local mt mr
  mt=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
  mr=$(printf '%s\n' "${rss[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
  printf '%-28s median %6.2f s   peak RSS %6d KiB   (runs: %s)\n' "$label" "$mt" "$mr" "${times[*]}"
}
measure "check" "$bin" check --config "$work/big.toml"
measure "zone --format snippet" "$bin" zone --config "$work/big.toml" --format snippet
measure "zone --out (all zones)" "$bin" zone --config "$work/big.toml" --out "$work/out"
# Again into the same directory: nothing changed, so nothing is written.
"$bin" zone --config "$work/big.toml" --out "$work/out2" 2>/dev/null
/usr/bin/time -f '%e %M' -o "$work/t" "$bin" zone --config "$work/big.toml" --out "$work/out2" > /dev/null 2>&1
read -r t m < "$work/t"
printf '%-28s        %6.2f s   peak RSS %6d KiB\n' "zone --out (files unchanged)" "$t" "$m"
"$bin" zone --config "$work/big.toml" --out "$work/out" 2>/dev/null
echo "zone files written: $(ls "$work/out" | grep -c '\.zone$'), parent snippets: $(ls "$work/out" | grep -c '\.parent$')"
