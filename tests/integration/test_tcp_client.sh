#!/usr/bin/env bash
# TCP acceptance 3: waypointd as the client. A Linux echo server in the
# namespace; waypointd's diagnostic client (/wp/tcp_client over DPDK
# telemetry) opens the connections: 1,000 concurrent x 64 KiB, one of
# 256 MiB whose SHA-256 on the server matches the pattern sent, and 100,000
# short connections; no control block left.
. "$(dirname "$0")/lib.sh"

tb_up "$(tb_name)" --workers 2

# run_job CONNS BYTES SECONDS: starts a client job and waits for it.
run_job() {
	local st
	tel "/wp/tcp_client,$WP_PEER_IP:5007,$1,$2" >/dev/null || fail "tcp_client refused"
	for _ in $(seq $(($3 * 10))); do
		st=$(tel /wp/tcp_client_status)
		grep -q '"running": 0' <<<"$st" && break
		sleep 0.1
	done
	echo "$st"
	/usr/bin/python3 -c '
import json, sys
s = json.loads(sys.argv[1]); n = int(sys.argv[2]); b = int(sys.argv[3])
assert s["running"] == 0, "still running"
assert s["ok"] == n and s["failed"] == 0 and s["mismatch"] == 0, s
assert s["bytes_verified"] == n * b, s' "$st" "$1" "$2" || fail "client job $1 x $2: $st"
}

# start_server: a Linux echo server on the kernel side, port 5007.
start_server() {
	: >"$WP_LOG.server"
	ip netns exec "$WP_NETNS" $TCPCHECK server 5007 >"$WP_LOG.server" &
	server=$!
	for _ in $(seq 50); do grep -q ready "$WP_LOG.server" && break; sleep 0.1; done
}

# stop_server: stops it; its last line is then
# "<connections> <bytes> <sha256 when there was one connection>".
stop_server() {
	kill -TERM "$server"
	wait "$server" || true
}

start_server
run_job 1000 65536 120
pass "waypointd opened 1000 connections x 64 KiB, every echoed byte verified"
run_job 100000 1 300
pass "waypointd opened 100000 short connections"
stop_server
read -r conns bytes _ < <(tail -1 "$WP_LOG.server")
[ "$conns" = 101000 ] && [ "$bytes" = $((1000 * 65536 + 100000)) ] ||
	fail "server saw $conns connections and $bytes bytes"
pass "the server saw the same: $conns connections, $bytes bytes"

start_server
run_job 1 $((256 << 20)) 300
stop_server
read -r conns bytes sha < <(tail -1 "$WP_LOG.server")
expect=$($TCPCHECK pattern-sha 0 $((256 << 20)))
[ "$conns" = 1 ] && [ "$sha" = "$expect" ] || fail "256 MiB: server sha $sha, pattern sha $expect"
pass "256 MiB from waypointd: the server's SHA-256 matches the pattern sent"

wait_gauge tcp_conns 0 10
pass "no control block left behind"
