#!/usr/bin/env bash
# Installs the independent tools the test suite runs against mailconf (Debian packages).
# Used by .ci/run; run it once on a new machine before the README's test command.
set -euo pipefail
pkgs=(
  bind9-utils      # named-checkzone
  dnsutils         # dig
  bind9-dnsutils   # delv: an independent DNSSEC validator in tests/dnssec.rs
  unbound          # a validating resolver nobody here wrote, in tests/dnssec.rs
  knot-dnssecutils # kzonecheck: checks signed zones in tests/dnssec.rs
  knot             # knotd: a real secondary in tests/dns.rs (catalog zone, TSIG)
  bind9            # named: a BIND 9.18 catalog-zone secondary in tests/dns.rs (never started as a service)
  nsd              # nsd: a TSIG secondary without catalog support in tests/dns.rs
  dnsperf          # benches/dns.sh
  libxml2-utils    # xmllint
  openssl          # openssl cms -verify of signed profiles
  curl             # an HTTP/2 client (nghttp2) in tests/http.rs
  pebble           # ACME test CA for tests/acme.rs
  python3-dnspython # the independent PACC reader (tests/tools/pacc_reader.py)
  chromium         # headless browser: the setup page's DOM and screenshots (tests/setup.rs)
  zbar-tools       # zbarimg: decodes the setup page's QR code
  tidy             # HTML checker for the setup page
  fonts-dejavu-core # a font for chromium's screenshots
  postgresql       # initdb/pg_ctl + psql: a real PostgreSQL for tests/sources.rs (run as nobody)
  mariadb-server   # mariadb-install-db/mariadbd + mariadb client for tests/sources.rs
  sqlite3          # writes the SQLite source file in tests/sources.rs
  g++              # libFuzzer's C++ part, for the fuzz smoke run in .ci/run
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # Daemons from these packages must not start on the machine's real ports.
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# cargo-fuzz for fuzz/run-all.sh (stable toolchain, --sanitizer none); ~2.5 min to build once.
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
