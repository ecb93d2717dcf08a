# Shared helpers for the integration tests (bash). Source it, then call
# tb_up [testbed options...]; the testbed is torn down on exit however the
# test ends. Every check that fails prints what it saw and exits 1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${WP_BUILD_DIR:-$ROOT/build}
export WP_BIN=${WP_BIN:-$BUILD/dp/waypointd}
WPCTL=$BUILD/cp/wpctl/wpctl
TESTBED=$ROOT/tests/testbed
TB_NAMES=()

tb_cleanup() {
	for n in "${TB_NAMES[@]}"; do "$TESTBED" down "$n" || true; done
}
trap tb_cleanup EXIT

# tb_up NAME [options]: starts a testbed and exports its WP_* variables.
tb_up() {
	local name=$1 out
	shift
	TB_NAMES+=("$name")
	out=$("$TESTBED" up --name "$name" "$@") || fail "testbed up failed"
	eval "$out"
	export WP_NETNS WP_IP WP_PEER_IP WP_PID WP_PREFIX WP_LOG WP_RC_FILE
}

in_ns() { ip netns exec "$WP_NETNS" "$@"; }

fail() {
	echo "FAIL: $*" >&2
	[ -n "${WP_LOG:-}" ] && [ -f "$WP_LOG" ] && { echo "--- waypointd log:" >&2; tail -20 "$WP_LOG" >&2; }
	exit 1
}

pass() { echo "PASS: $*"; }

# unique name for this test's namespace
tb_name() { echo "wpt-$(basename "$0" .sh | tr '_' '-' | cut -c1-20)-$$"; }
