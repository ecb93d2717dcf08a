#!/usr/bin/env bash
# Issue 19 (hardening), end to end: what an outside probe smuggled through
# the HTTP/1.1 proxy (dp/l7/h1proxy.c, dp/http) no longer gets through.
#   - manifests: conf/cluster with the namespace not ambient (plaintext
#     upstreams) and an HTTPRoute on details whose RegularExpression path
#     ".*" also routes CONNECT's authority-form target;
#   - details' backend is tests/integration/l7_smuggle_backend.py: a naive
#     parser that declines every upgrade on a kept-alive connection and logs
#     every request it parses and how each connection ended (FIN / reset);
#   - requests go in HBONE tunnels (tests/integration/l7_http.py raw);
#   - four Upgrade shapes (Upgrade: foo, h2c, a websocket upgrade with a bad
#     version, HTTP/1.0 + Connection: upgrade) and CONNECT, each followed in
#     the same bytes by a second request: the backend parses the first only,
#     the client gets the answer with connection: close and the stream ends;
#   - a head ended by "\r\n\r" + another byte: 400, nothing reaches the
#     backend;
#   - an absolute-form target: the backend sees origin-form and the
#     target's authority as Host;
#   - SIGTERM with an idle pooled upstream: the backend sees a FIN (EOF),
#     not a reset.
. "$(dirname "$0")/lib.sh"
l7_setup smuggle
BLOG=$T/backend.log
cat >"$MAN/30-details-route.yaml" <<'YAML'
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: details
  namespace: default
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: details
    port: 9080
  rules:
  - matches:
    - path: {type: RegularExpression, value: ".*"}
    backendRefs:
    - name: details
      port: 9080
YAML

tb_up "$(tb_name)" --manifests "$MAN" --certs "$PKI" --set cluster.gateway_class=istio-waypoint
ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/l7_smuggle_backend.py" \
	--bind 198.18.1.11:9080 >"$BLOG" 2>"$T/backend.err" &
PIDS+=($!)
disown $!
for _ in $(seq 50); do grep -q listening "$BLOG" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$BLOG" || fail "backend did not start: $(cat "$T/backend.err")"

for _ in $(seq 100); do
	l7 get --authority 198.19.0.11:9080 --host details:9080 --path /ready --n 1 2>/dev/null |
		grep -q '"200": 1' && break
	sleep 0.2
done
grep -q '"/ready"' "$BLOG" || fail "details not reachable through the waypoint"
parsed() { grep -c '"method"' "$BLOG"; }

# 1. the bytes behind an Upgrade / CONNECT request the backend declines
#    never reach it
n=0
while IFS='|' read -r want head; do
	n=$((n + 1))
	before=$(parsed)
	out=$(l7 raw --authority 198.19.0.11:9080 \
		--data "${head}GET /SMUGGLED-$n HTTP/1.1\\r\\nHost: details\\r\\n\\r\\n" </dev/null) ||
		fail "shape $n: $out"
	grep -q "\"rx\": \"HTTP/1.1 $want " <<<"$out" || fail "shape $n: expected $want: $out"
	grep -qi 'connection: close' <<<"$out" || fail "shape $n: no connection: close: $out"
	grep -q '"ended": true' <<<"$out" || fail "shape $n: stream not ended: $out"
	sleep 0.3
	grep -q SMUGGLED "$BLOG" && fail "shape $n: smuggled request reached the backend: $(grep SMUGGLED "$BLOG")"
	[ "$(parsed)" = $((before + 1)) ] ||
		fail "shape $n: the backend parsed $(($(parsed) - before)) requests: $(tail -3 "$BLOG")"
done <<'EOF'
200|GET /up HTTP/1.1\r\nHost: details\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n
200|GET /h2c HTTP/1.1\r\nHost: details\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n
200|GET /ws HTTP/1.1\r\nHost: details\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 99\r\n\r\n
200|GET /up10 HTTP/1.0\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n
405|CONNECT details:9080 HTTP/1.1\r\nHost: details:9080\r\n\r\n
EOF
[ "$(stat l7_h1p_upgrade_discarded)" -ge 5 ] || fail "l7_h1p_upgrade_discarded $(stat l7_h1p_upgrade_discarded)"
pass "Upgrade: foo / h2c / websocket (bad version) / HTTP/1.0 upgrade / CONNECT declined by the backend: nothing behind them reached it ($(stat l7_h1p_upgrade_held) held, $(stat l7_h1p_upgrade_discarded) discarded), connection: close"

# 2. a head ended by "\r\n\r" + another byte: 400, the backend untouched
before=$(parsed)
out=$(l7 raw --authority 198.19.0.11:9080 \
	--data 'GET /crlf HTTP/1.1\r\nHost: details\r\n\rXGET /SMUGGLED-cr HTTP/1.1\r\nHost: details\r\n\r\n') ||
	fail "bare CR: $out"
grep -q '"rx": "HTTP/1.1 400 ' <<<"$out" || fail "bare CR head end not refused: $out"
grep -q '"ended": true' <<<"$out" || fail "bare CR: stream not ended: $out"
sleep 0.3
[ "$(parsed)" = "$before" ] || fail "bare CR head reached the backend: $(tail -2 "$BLOG")"
[ "$(stat http1_line_ending_invalid)" -ge 1 ] || fail "http1_line_ending_invalid not counted"
pass "head ended by \\r\\n\\rX: 400, nothing reached the backend"

# 3. absolute-form: the target's authority is the Host the backend sees
out=$(l7 raw --authority 198.19.0.11:9080 --data 'GET http://evil/abs HTTP/1.1\r\nHost: p\r\n\r\n') ||
	fail "absolute-form: $out"
grep -q '"rx": "HTTP/1.1 200 ' <<<"$out" || fail "absolute-form: $out"
line=$(grep '"target": "/abs"' "$BLOG") || fail "absolute-form not sent in origin-form: $(tail -2 "$BLOG")"
grep -q '"host": "evil"' <<<"$line" || fail "absolute-form: Host not rewritten: $line"
pass "absolute-form GET http://evil/abs with Host: p reaches the backend as GET /abs, Host: evil"

# 4. SIGTERM with an idle pooled upstream: closed with a FIN
out=$(l7 get --authority 198.19.0.11:9080 --host details:9080 --path /pooled --n 1) ||
	fail "pooled: $out"
peer=$(grep '"/pooled"' "$BLOG" | $PY -c 'import json,sys; print(json.loads(sys.stdin.readline())["peer"])')
[ "$(stat l7_h1p_up_new)" -ge 1 ] || fail "no upstream"
grep -q "\"end\": \"[a-z]*\", \"peer\": \"$peer\"" "$BLOG" && fail "pooled upstream closed before the drain"
kill -TERM "$WP_PID"
for _ in $(seq 200); do kill -0 "$WP_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$WP_PID" 2>/dev/null && fail "waypointd still running 10 s after SIGTERM"
for _ in $(seq 50); do grep '"end"' "$BLOG" | grep -q "\"$peer\"" && break; sleep 0.1; done
end=$(grep "\"end\"" "$BLOG" | grep "\"$peer\"") || fail "the backend saw no end of the pooled connection $peer"
grep -q '"end": "eof"' <<<"$end" || fail "pooled upstream not closed with a FIN at drain: $end"
pass "SIGTERM: the idle pooled upstream ($peer) was closed with a FIN (backend: EOF, not ECONNRESET)"
