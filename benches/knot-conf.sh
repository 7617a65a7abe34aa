# Sourced by benches/scale.sh and benches/dnssec.sh: the Knot peer's configuration.
# knot_conf WORK PORT LAST [signed]: Knot (two UDP workers, errors only) listening on
# 127.0.0.1@PORT, serving every WORK/zones/*.zone with LAST (the domain a start time waits for)
# listed last, zone files never written back, no journal; with `signed`, Knot signs every zone
# itself (ECDSA P-256, its default policy otherwise: KSK + ZSK, NSEC). Writes WORK/zone-list and
# WORK/knot.conf; Knot's state goes to WORK/knot.
knot_conf() {
  local work=$1 port=$2 last=$3 signed=${4:-}
  ls "$work/zones" | sed -n 's/\.zone$//p' | grep -vxF "$last" > "$work/zone-list" || true
  echo "$last" >> "$work/zone-list"
  mkdir -p "$work/knot"
  {
    printf 'server:\n  rundir: %s/knot\n  listen: 127.0.0.1@%s\n  udp-workers: 2\n' "$work" "$port"
    printf 'database:\n  storage: %s/knot\nlog:\n  - target: stderr\n    any: error\n' "$work"
    [ -z "$signed" ] || printf 'policy:\n  - id: signed\n    algorithm: ecdsap256sha256\n'
    printf 'template:\n  - id: default\n    storage: %s/zones\n    zonefile-sync: -1\n    journal-content: none\n' "$work"
    [ -z "$signed" ] || printf '    dnssec-signing: on\n    dnssec-policy: signed\n'
    printf 'zone:\n'
    sed 's/.*/  - domain: &\n    file: &.zone/' "$work/zone-list"
  } > "$work/knot.conf"
}
