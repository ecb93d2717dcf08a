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

# refused_on_null KEY MESSAGE: waypointd on a net_null port (which offers no
# offload) with KEY = "on" must not start, and must say MESSAGE.
refused_on_null() {
	local out
	out=$(cd "$ROOT" && "$WP_BIN" -c conf/waypoint.conf --set 'ports.[0].device=net_null0' \
		--set "ports.[0].$1=on" --set eal.file_prefix="wp-null-$1-$$" --set eal.memory_mb=64 2>&1) &&
		fail "waypointd started with $1 = on on net_null"
	grep -qF "$2" <<<"$out" || fail "no clear refusal of $1 = on: $out"
}

# ping_all COUNT WHAT: COUNT pings of the appliance 10 ms apart; fails the
# test (naming WHAT) unless every one is answered.
ping_all() {
	local out got
	out=$(in_ns ping -c "$1" -i 0.01 -W 1 "$WP_IP") || true
	got=$(echo "$out" | sed -n 's/.* \([0-9]*\) received.*/\1/p')
	[ "$got" = "$1" ] || fail "ping $2: expected $1 replies, got '$got': $out"
}

fail() {
	echo "FAIL: $*" >&2
	[ -n "${WP_LOG:-}" ] && [ -f "$WP_LOG" ] && { echo "--- waypointd log:" >&2; tail -20 "$WP_LOG" >&2; }
	if [ -n "${WP_PREFIX:-}" ]; then
		# the failure-shaped ones first, on a short line of their own (a CI
		# excerpt may cut the long dump)
		echo "--- waypointd timeouts, resets, aborts, drops (non-zero totals):" >&2
		"$WPCTL" stats --prefix "$WP_PREFIX" 2>/dev/null |
			awk '$NF != 0 && $1 ~ /timeout|reset|abort|nomem|drop|zero_window|refused|fail/ { printf "%s=%s ", $1, $NF }' >&2
		echo >&2
		echo "--- waypointd counters (non-zero):" >&2
		"$WPCTL" stats --prefix "$WP_PREFIX" 2>/dev/null | awk '$NF != 0' | tr '\n' ' ' >&2
		echo >&2
	fi
	exit 1
}

pass() { echo "PASS: $*"; }

# unique name for this test's namespace
tb_name() { echo "wpt-$(basename "$0" .sh | tr '_' '-' | cut -c1-20)-$$"; }

# tel CMD: one DPDK telemetry command to the testbed's waypointd; prints the
# JSON value of the reply (what the command returned).
tel() {
	echo "$1" | dpdk-telemetry.py -f "$WP_PREFIX" 2>/dev/null |
		/usr/bin/python3 -c '
import json, sys
cmd = sys.argv[1].split(",")[0]
for line in sys.stdin:
    line = line.strip()
    if line.startswith("{"):
        o = json.loads(line)
        if cmd in o:
            print(json.dumps(o[cmd]))
            sys.exit(0)
sys.exit("no reply to " + cmd)' "$1"
}

# stat KEY: a total from wpctl stats --json.
stat() {
	"$WPCTL" stats --json --prefix "$WP_PREFIX" |
		/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["total"][sys.argv[1]])' "$1"
}

TCPCHECK="/usr/bin/python3 $ROOT/tests/integration/tcpcheck.py"

# wait_gauge KEY VALUE SECONDS: waits until the total KEY equals VALUE.
wait_gauge() {
	local v
	for _ in $(seq $(($3 * 10))); do
		v=$(stat "$1")
		[ "$v" = "$2" ] && return 0
		sleep 0.1
	done
	fail "$1 is $v, expected $2 after $3 s"
}

# l7_setup TAG: the L7 tests' common start: a scratch directory $T (removed
# at exit with the processes in PIDS and the testbed), a test PKI in $PKI,
# and the embedded cluster copied to $MAN with every namespace out of the
# ambient data plane (pods reached in plaintext unless a test opts in).
l7_setup() {
	T=$(mktemp -d "/tmp/wp-$1.XXXXXX")
	PKI=$T/pki
	MAN=$T/manifests
	PY=/usr/bin/python3
	CLIENT="$PY $ROOT/tests/hbone/client.py"
	L7="$PY $ROOT/tests/integration/l7_http.py"
	PIDS=()
	trap l7_cleanup EXIT
	"$ROOT/tests/pki/mkpki.sh" "$PKI" >/dev/null 2>&1 || fail "mkpki.sh failed"
	mkdir -p "$MAN"
	cp "$ROOT"/conf/cluster/*.yaml "$MAN/"
	sed -i '/istio.io\/dataplane-mode/d' "$MAN/00-namespace.yaml"
}
l7_cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	tb_cleanup
	rm -rf "$T"
}
# l7 MODE ARGS...: tests/integration/l7_http.py from the testbed's namespace
# to the waypoint (after l7_setup and tb_up).
l7() { in_ns $L7 "$@" --addr "$WP_IP:15008" --certs "$PKI"; }

# cfg_dump EXPR: a Python expression over d, the admin /config_dump object;
# port(ns, name, port) is that Service port's object.
cfg_dump() {
	in_ns $PY -c '
import json, sys, urllib.request
d = json.load(urllib.request.urlopen("http://127.0.0.1:15000/config_dump", timeout=5))
def port(ns, name, p):
    for s in d["snapshot"]["services"]:
        if s["namespace"] == ns and s["name"] == name:
            return next(x for x in s["ports"] if x["port"] == p)
print(eval(sys.argv[1]))' "$1"
}

# wait_cfg_dump EXPR WANT: up to 5 s for the published snapshot to show it.
wait_cfg_dump() {
	local v
	for _ in $(seq 50); do
		v=$(cfg_dump "$1" 2>/dev/null) && [ "$v" = "$2" ] && return 0
		sleep 0.1
	done
	fail "config dump: $1 is $v, expected $2"
}
