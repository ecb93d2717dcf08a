#!/usr/bin/env bash
# waypointd's command line without starting the data plane: --version,
# --help, --check-config on the shipped file, and a bad file and a bad --set
# refused with FILE:LINE / key and exit status 1.
set -euo pipefail
WP=$1
ROOT=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$WP" --version | grep -q '^waypointd '
"$WP" --help | grep -q -- '--check-config'
"$WP" -c "$ROOT/conf/waypoint.conf" --check-config | grep -q 'configuration ok'
"$WP" -c "$ROOT/conf/waypoint.conf" --set workers=2 --check-config | grep -q '2 workers'

printf 'ports = ( { device = "net_tap0"; ip = "198.18.0.2"; } );\npolling = { mode = "fast"; };\n' >"$tmp/bad.conf"
if out=$("$WP" -c "$tmp/bad.conf" --check-config 2>&1); then
	echo "bad.conf accepted: $out"; exit 1
fi
echo "$out" | grep -q "bad.conf:2: key 'polling.mode'" || { echo "unexpected: $out"; exit 1; }

if out=$("$WP" -c "$ROOT/conf/waypoint.conf" --set fault.rx_drop=2 --check-config 2>&1); then
	echo "--set fault.rx_drop=2 accepted"; exit 1
fi
echo "$out" | grep -q "fault.rx_drop" || { echo "unexpected: $out"; exit 1; }

if "$WP" -c "$tmp/missing.conf" --check-config 2>"$tmp/err"; then exit 1; fi
grep -q "missing.conf: cannot read" "$tmp/err"
set +e
"$WP" --no-such-flag >/dev/null 2>&1
[ $? = 2 ] || { echo "unknown flag: expected exit 2"; exit 1; }
echo "waypointd command line: ok"
