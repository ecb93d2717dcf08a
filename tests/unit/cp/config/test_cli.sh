#!/usr/bin/env bash
# waypointd's command line without starting the data plane: --version,
# --help, --check-config on the shipped file, and a bad file and a bad --set
# refused with FILE:LINE / key and exit status exactly 1 (the README's
# promise for configuration errors; 2 for an unknown flag).
set -euo pipefail
WP=$1
ROOT=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$WP" --version | grep -q '^waypointd '
"$WP" --help | grep -q -- '--check-config'
"$WP" -c "$ROOT/conf/waypoint.conf" --check-config | grep -q 'configuration ok'
"$WP" -c "$ROOT/conf/waypoint.conf" --set workers=2 --check-config | grep -q '2 workers'

# expect_exit STATUS CMD...: runs CMD, requires exactly STATUS (the README
# promises 1 for a configuration error), keeps its output in $out
expect_exit() {
	local want=$1 rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	[ "$rc" = "$want" ] || { echo "$*: exit $rc, expected $want: $out"; exit 1; }
}

printf 'ports = ( { device = "net_tap0"; ip = "198.18.0.2"; } );\npolling = { mode = "fast"; };\n' >"$tmp/bad.conf"
expect_exit 1 "$WP" -c "$tmp/bad.conf" --check-config
grep -q "bad.conf:2: key 'polling.mode'" <<<"$out" || { echo "unexpected: $out"; exit 1; }

expect_exit 1 "$WP" -c "$ROOT/conf/waypoint.conf" --set fault.rx_drop=2 --check-config
grep -q "fault.rx_drop" <<<"$out" || { echo "unexpected: $out"; exit 1; }

expect_exit 1 "$WP" -c "$tmp/missing.conf" --check-config
grep -q "missing.conf: cannot read" <<<"$out" || { echo "unexpected: $out"; exit 1; }
expect_exit 2 "$WP" --no-such-flag
echo "waypointd command line: ok"
