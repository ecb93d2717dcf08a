#!/usr/bin/env bash
# Issue 18 (packets per request): delayed ACKs on request/response
# connections never stall an exchange, against a backend that writes each
# response in two pieces with Nagle on (tests/integration/l7_backend.py is
# Python's http.server: the head, then the body, no TCP_NODELAY, so the
# kernel holds the body until the head is acknowledged).
#   - 50 keep-alive requests through one HBONE tunnel to details: all 200,
#     each whole body from details (Content-Length framed);
#   - the upstream connection ACKs each response head at once, because the
#     proxy is waiting for that response's body (tcp_quickack counts one per
#     request but the first, which comes before the connection is
#     interactive and is ACKed at once anyway), so the delayed-ACK timer never has to release a
#     stalled body: tcp_delayed_ack moves by at most 2 over the 50 exchanges
#     (the last exchange's ACKs, which nothing follows);
#   - ACKs ride on data otherwise (tcp_ack_held counts them).
. "$(dirname "$0")/lib.sh"
l7_setup delack
tb_up "$(tb_name)" --workers 1 --manifests "$MAN" --certs "$PKI" \
	--set cluster.gateway_class=istio-waypoint
ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/l7_backend.py" --bind 198.18.1.11:9080 \
	--name details --version v1 >"$T/details.log" 2>"$T/details.err" &
PIDS+=($!)
disown $!
for _ in $(seq 100); do grep -q listening "$T/details.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$T/details.log" || fail "details did not start: $(cat "$T/details.err")"
for _ in $(seq 100); do
	in_ns $CLIENT --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.11:9080 \
		--expect-status 200 --timeout 5 >/dev/null 2>&1 && break
	sleep 0.2
done

q0=$(stat tcp_quickack)
d0=$(stat tcp_delayed_ack)
h0=$(stat tcp_ack_held)
t0=$(date +%s.%N)
in_ns $L7 get --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.11:9080 \
	--host details:9080 --path /details/0 --n 50 >"$T/out.json" || fail "requests: $(cat "$T/out.json")"
t1=$(date +%s.%N)
grep -q '"statuses": {"200": 50}' "$T/out.json" || fail "not 50 x 200: $(cat "$T/out.json")"
grep -q '"backends": {"details": 50}' "$T/out.json" || fail "bodies: $(cat "$T/out.json")"
q=$(($(stat tcp_quickack) - q0))
d=$(($(stat tcp_delayed_ack) - d0))
h=$(($(stat tcp_ack_held) - h0))
[ "$q" -ge 49 ] || fail "tcp_quickack moved by $q over 50 two-piece responses (expected >= 49)"
[ "$d" -le 2 ] || fail "the delayed-ACK timer fired $d times over 50 exchanges: a held ACK stalled them"
[ "$h" -ge 49 ] || fail "tcp_ack_held moved by $h: no ACK was left to ride on data"
pass "50 keep-alive requests to a backend writing head and body apart with Nagle on: all 200 in $(/usr/bin/python3 -c "print(round($t1 - $t0, 2))") s; $q quick ACKs (one per head at least), $h ACKs held for data, delayed-ACK timer $d times"
