#!/usr/bin/env bash
# DNSSEC key making: keys per second of `mailconf zone --format ds` on the generated
# hosting-provider config (benches/gen-config.py) with every domain signed:
#   keys / (time with no key yet - time with every key there)
# (the second run does the same work but reads the keys instead of making them).
# Usage: benches/dnssec-keys.sh [DOMAINS] [BIN...]   (defaults: 2000, target/debug/mailconf)
# Several BINs (e.g. an older build) are measured one after the other on the same config.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}; shift || true
bins=("$@"); [ ${#bins[@]} -gt 0 ] || bins=("$PWD/target/debug/mailconf")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 benches/gen-config.py "$n" | grep -v '^transfer_to' |
  sed "s|^\[server\]|[server]\nstate_dir = \"$work/state\"\ndnssec = true|" > "$work/mailconf.toml"
run() { local t; t=$(date +%s.%N); "$1" zone --config "$work/mailconf.toml" --format ds >/dev/null 2>&1; echo "$(date +%s.%N) - $t" | bc -l; }
for bin in "${bins[@]}"; do
  rm -rf "$work/state"
  fresh=$(run "$bin"); keys=$(ls "$work/state/dnssec" | wc -l); again=$(run "$bin")
  printf '%s: %d keys; no keys %.1f s, all there %.1f s -> %.0f keys/s\n' \
    "$bin" "$keys" "$fresh" "$again" "$(echo "$keys / ($fresh - $again)" | bc -l)"
done
