#!/usr/bin/env bash
# scripts/demo, the README's first command, as a user runs it but with
# --once: it must exit 0 having shown what the README says it shows (the
# appliance answering ping; HTTP/1.1 through mTLS HBONE tunnels answered by
# productpage and details, and reviews load-balanced over its v1/v2/v3 pods;
# a CONNECT to an uncaptured address refused with 400; the per-core stats
# table), and leave nothing behind: its namespace, the testbed's state, its
# temporary directory, its processes. It runs in its own namespace
# (WP_DEMO_NAME), so a demo a user has open is not touched.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NAME=wpt-demo-$$
OUT=$(mktemp /tmp/wpt-demo-out.XXXXXX)
trap 'rm -f "$OUT"; "$ROOT/tests/testbed" down "$NAME" 2>/dev/null || true' EXIT
fail() {
	echo "FAIL: $*" >&2
	echo "--- scripts/demo --once output:" >&2
	cat "$OUT" >&2
	exit 1
}

before=$(ls -d /tmp/wpdemo.* 2>/dev/null | sort || true)
rc=0
WP_DEMO_NAME=$NAME timeout 300 "$ROOT/scripts/demo" --once </dev/null >"$OUT" 2>&1 || rc=$?
[ $rc = 0 ] || fail "scripts/demo --once exited $rc"

grep -q "5 packets transmitted, 5 received" "$OUT" || fail "ping of the appliance"
grep -qF "productpage -> {'productpage': 5} statuses {'200': 5}" "$OUT" || fail "productpage"
grep -qF "details -> {'details': 5} statuses {'200': 5}" "$OUT" || fail "details"
line=$(grep -F "reviews -> " "$OUT") || fail "no reviews line"
grep -qF "statuses {'200': 30}" <<<"$line" || fail "reviews: not 30 x 200"
n=$(echo "$line" | grep -oE "'reviews-v[123]': [0-9]+" | wc -l)
[ "$n" -ge 2 ] || fail "reviews not load-balanced over its pods: $line"
grep -qvE "'(productpage|details|ratings)'" <<<"$line" || fail "reviews answered by another service: $line"
grep -qF '"status": 400' <<<"$(sed -n '/does not capture is refused/,/per-core statistics/p' "$OUT")" ||
	fail "no 400 for the uncaptured CONNECT"
grep -qE '^COUNTER +worker0 +worker1 +cp +TOTAL' "$OUT" || fail "no per-core stats table for 2 workers (and the control plane's column)"
grep -qE '^tunnel_' "$OUT" || fail "no tunnel counters in the stats table"
pass_line="productpage, details, reviews over $n pods, 400 for the uncaptured CONNECT, stats table"

# nothing left behind
ip netns list | grep -qw "^$NAME" && fail "namespace $NAME left behind"
[ -e "/run/wp-testbed/$NAME" ] && fail "testbed state /run/wp-testbed/$NAME left behind"
after=$(ls -d /tmp/wpdemo.* 2>/dev/null | sort || true)
[ "$(comm -13 <(echo "$before") <(echo "$after"))" = "" ] ||
	fail "temporary directory left behind: $(comm -13 <(echo "$before") <(echo "$after"))"
pgrep -f "eal.file_prefix=wp-$NAME" >/dev/null && fail "a waypointd of $NAME still runs"
echo "PASS: scripts/demo --once: exit 0; $pass_line; namespace, state, temporary files and processes removed"
