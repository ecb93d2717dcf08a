#!/usr/bin/env bash
# Circuit breaking end to end (dp/l7/README.md "Circuit breaking"; issue 15
# acceptance 1 and 5): a waypoint with 2 workers, a DestinationRule on the
# Service "slow" with maxConnections 1 and http1MaxPendingRequests 1, a
# backend that answers /sleep/2000/ after 2 s, and 20 requests sent at once
# on 20 HBONE tunnels of one HBONE connection (so on one worker):
#   - the ones beyond the limit get 503 with x-envoy-overloaded: true and
#     Envoy's overflow body, promptly (well before the backend's delay);
#   - the number that succeed is between 2 (the connection and the one
#     waiting place of a core) and 2 x 2 (the documented bound: each of N
#     cores holds ceil(limit / N) of each limit);
#   - l7_upstream_overflow counts the refused ones, the access log has one
#     line with UO for each, the backend saw only the ones that succeeded;
#   - the same 20 on 4 HBONE connections (spread over both workers): still
#     2..4 succeed;
#   - h2c / gRPC (the Service "gslow", a grpc port, the same limits plus
#     maxConcurrentStreams 1): 8 calls at once on one h2 session: 2 succeed
#     one after the other (one stream waited for the connection), the rest
#     UNAVAILABLE with the overflow message at once, counted and logged UO;
# and connectTimeout: the Service "hole", whose one pod drops every packet
# (its address is blackholed in the namespace), with connectTimeout 300ms:
# a request fails with 503 UF,URX after the first try and Istio's 2
# connect-failure retries time out (about 0.9 s, not the TCP stack's SYN
# retries), each timeout counted in l7_cb_connect_timeout. The config dump
# lists both Services' compiled connection pools.
. "$(dirname "$0")/lib.sh"
l7_setup cbreak
CB="$PY $ROOT/tests/integration/cbreak_client.py"
cat >"$MAN/30-cbreak.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: slow
  namespace: default
spec:
  clusterIP: 198.19.0.50
  selector:
    app: slow
  ports:
  - name: http
    port: 9080
---
apiVersion: v1
kind: Pod
metadata:
  name: slow-1
  namespace: default
  labels:
    app: slow
spec:
  nodeName: node-1
status:
  phase: Running
  podIP: 198.18.1.50
  podIPs:
  - ip: 198.18.1.50
  conditions:
  - type: Ready
    status: "True"
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: slow
  namespace: default
spec:
  host: slow
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 1
        tcpKeepalive: {time: 1s, interval: 1s}
      http:
        http1MaxPendingRequests: 1
---
apiVersion: v1
kind: Service
metadata:
  name: hole
  namespace: default
spec:
  clusterIP: 198.19.0.51
  selector:
    app: hole
  ports:
  - name: http
    port: 9080
---
apiVersion: v1
kind: Pod
metadata:
  name: hole-1
  namespace: default
  labels:
    app: hole
spec:
  nodeName: node-1
status:
  phase: Running
  podIP: 198.18.1.51
  podIPs:
  - ip: 198.18.1.51
  conditions:
  - type: Ready
    status: "True"
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: hole
  namespace: default
spec:
  host: hole.default.svc.cluster.local
  trafficPolicy:
    connectionPool:
      tcp:
        connectTimeout: 300ms
---
apiVersion: v1
kind: Service
metadata:
  name: gslow
  namespace: default
spec:
  clusterIP: 198.19.0.52
  selector:
    app: gslow
  ports:
  - name: grpc
    port: 50051
---
apiVersion: v1
kind: Pod
metadata:
  name: gslow-1
  namespace: default
  labels:
    app: gslow
spec:
  nodeName: node-1
status:
  phase: Running
  podIP: 198.18.1.52
  podIPs:
  - ip: 198.18.1.52
  conditions:
  - type: Ready
    status: "True"
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: gslow
  namespace: default
spec:
  host: gslow
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 1
      http:
        http1MaxPendingRequests: 1
        maxConcurrentStreams: 1
YAML

ALOG=$T/access.log
tb_up "$(tb_name)" --workers 2 --manifests "$MAN" --certs "$PKI" \
	--set cluster.gateway_class=istio-waypoint --set "access_log.file=$ALOG"
ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/l7_backend.py" --bind 198.18.1.50:9080 \
	--name slow >"$T/slow.log" 2>"$T/slow.err" &
PIDS+=($!)
disown $!
for _ in $(seq 50); do grep -q listening "$T/slow.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$T/slow.log" || fail "backend did not start: $(cat "$T/slow.err")"
ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/retry_backend.py" --name gslow \
	--bind 198.18.1.52:9080 --grpc-bind 198.18.1.52:50051 >"$T/gslow.log" 2>"$T/gslow.err" &
PIDS+=($!)
disown $!
for _ in $(seq 50); do grep -q listening "$T/gslow.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$T/gslow.log" || fail "gRPC backend did not start: $(cat "$T/gslow.err")"
# the hole: its address no longer local, every packet to it dropped
in_ns ip addr del 198.18.1.51/32 dev lo
in_ns ip route add blackhole 198.18.1.51/32
for _ in $(seq 100); do
	in_ns $CLIENT --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.50:9080 \
		--expect-status 200 --timeout 5 >/dev/null 2>&1 && break
	sleep 0.2
done
# the compiled limits in the config dump (only what differs from Istio's defaults)
pools=$(in_ns $PY -c '
import json, urllib.request
d = json.load(urllib.request.urlopen("http://127.0.0.1:15000/config_dump", timeout=5))
for s in d["snapshot"]["services"]:
    if s["namespace"] == "default" and s["name"] in ("slow", "hole"):
        for p in s["ports"]:
            for c in p["routes"]["connectionPools"]:
                print(json.dumps(c, sort_keys=True))') || fail "config dump unreadable"
want='{"cluster": "outbound|9080||hole.default.svc.cluster.local", "connectTimeoutMs": 300}
{"cluster": "outbound|9080||slow.default.svc.cluster.local", "http1MaxPendingRequests": 1, "maxConnections": 1, "tcpKeepaliveIntervalMs": 1000, "tcpKeepaliveProbes": 9, "tcpKeepaliveTimeMs": 1000}'
[ "$(echo "$pools" | sort)" = "$want" ] || fail "config dump connectionPools: $pools"
pass "config dump lists the compiled connection pools of slow and hole"
before=$(grep -c '"GET' "$T/slow.log" || true)

out=$(in_ns $CB --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.50:9080 \
	--path /sleep/2000/ --n 20 --timeout 30) || fail "client: $out"
echo "$out" | $PY -c '
import json, sys
r = json.load(sys.stdin)["results"]
ok = [x for x in r if x["status"] == 200]
uo = [x for x in r if x["status"] == 503]
body = "upstream connect error or disconnect/reset before headers. reset reason: overflow"
if len(ok) + len(uo) != 20:
    sys.exit("not 200 or 503: %s" % r)
if not 2 <= len(ok) <= 4:
    sys.exit("%d succeeded, expected 2..4 (maxConnections 1 + 1 pending, 2 cores): %s"
             % (len(ok), r))
for x in uo:
    if not x["overloaded"] or x["body"] != body:
        sys.exit("a 503 without x-envoy-overloaded or the overflow body: %s" % x)
    if x["elapsed"] > 1.0:
        sys.exit("an overflow answered after %.2f s (the backend takes 2 s): %s" % (x["elapsed"], r))
slowest = max(x["elapsed"] for x in ok)
if min(x["elapsed"] for x in ok) < 1.9 or slowest < 3.9:
    sys.exit("the successes did not go one at a time on one connection: %s" % ok)
print(len(ok), len(uo), round(max(x["elapsed"] for x in uo), 3), slowest)' >"$T/res" ||
	fail "concurrent requests: $(cat "$T/res" 2>/dev/null)"
read -r n_ok n_uo worst slowest <"$T/res"
pass "20 concurrent requests, maxConnections 1 + http1MaxPendingRequests 1: $n_ok succeeded (one at a time, the last after ${slowest}s), $n_uo got 503 x-envoy-overloaded within ${worst}s"

got=$(stat l7_upstream_overflow)
[ "$got" = "$n_uo" ] || fail "l7_upstream_overflow is $got, expected $n_uo"
[ "$(stat l7_cb_pending)" -ge 1 ] || fail "no request waited for the connection (l7_cb_pending)"
seen=$(($(grep -c '"GET' "$T/slow.log") - before))
[ "$seen" = "$n_ok" ] || fail "the backend saw $seen requests, $n_ok succeeded"
for _ in $(seq 30); do
	[ "$(grep -c ' 503 UO ' "$ALOG" 2>/dev/null)" = "$n_uo" ] && break
	sleep 0.1
done
uo_lines=$(grep -c ' 503 UO ' "$ALOG" || true)
[ "$uo_lines" = "$n_uo" ] || fail "access log: $uo_lines lines with 503 UO, expected $n_uo: $(tail -3 "$ALOG")"
pass "wpctl stats l7_upstream_overflow=$got, access log $uo_lines lines '503 UO', backend saw $seen"
# tcp.tcpKeepalive time 1s on slow's pooled upstream connection: each 2 s
# answer leaves it silent long enough to be probed (the backend's kernel
# answers: nothing is reset)
[ "$(stat tcp_keepalive_probe)" -ge 1 ] && [ "$(stat tcp_keepalive_timeout)" = 0 ] ||
	fail "tcpKeepalive on the L7 upstream: $(stat tcp_keepalive_probe) probes, $(stat tcp_keepalive_timeout) timeouts"
pass "tcp.tcpKeepalive on the HTTP/1.1 proxy's upstream connection: $(stat tcp_keepalive_probe) probes answered"

# the bound across cores: 4 HBONE connections of 5 tunnels each, spread
# over the 2 workers by their flows; each core holds at most 1 connection
# and 1 waiting request: at most 2 x (1 + 1) = 4 succeed, at least 2
before=$(grep -c '"GET' "$T/slow.log" || true)
uo_before=$(stat l7_upstream_overflow)
for k in 1 2 3 4; do
	in_ns $CB --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.50:9080 \
		--path /sleep/2000/ --n 5 --timeout 30 >"$T/multi-$k.json" 2>&1 &
	PIDS+=($!)
	mpids+=($!)
done
for p in "${mpids[@]}"; do wait "$p" || fail "client: $(cat "$T"/multi-*.json)"; done
cat "$T"/multi-*.json | $PY -c '
import json, sys
r = [x for ln in sys.stdin if ln.strip() for x in json.loads(ln)["results"]]
ok = sum(1 for x in r if x["status"] == 200)
uo = [x for x in r if x["status"] == 503 and x["overloaded"]]
if ok + len(uo) != 20 or not 2 <= ok <= 4:
    sys.exit("%d succeeded, %d overflowed of 20, expected 2..4 to succeed: %s" % (ok, len(uo), r))
print(ok, len(uo))' >"$T/res" || fail "4 connections: $(cat "$T/res")"
read -r m_ok m_uo <"$T/res"
seen=$(($(grep -c '"GET' "$T/slow.log") - before))
[ "$seen" = "$m_ok" ] || fail "the backend saw $seen requests, $m_ok succeeded"
[ "$(($(stat l7_upstream_overflow) - uo_before))" = "$m_uo" ] || fail "l7_upstream_overflow did not count $m_uo"
pass "20 requests on 4 HBONE connections over 2 workers: $m_ok succeeded (bound 2..4), $m_uo refused"

# connectTimeout against the blackholed pod: 3 tries of 300 ms
out=$(in_ns $CB --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.51:9080 \
	--host hole --path / --n 1 --timeout 20) || fail "client: $out"
echo "$out" | $PY -c '
import json, sys
x = json.load(sys.stdin)["results"][0]
if x["status"] != 503 or x["overloaded"]:
    sys.exit("expected a 503 connect failure: %s" % x)
if not 0.85 <= x["elapsed"] <= 2.5:
    sys.exit("answered after %s s, expected about 3 x 300 ms" % x["elapsed"])
print(x["elapsed"])' >"$T/res" || fail "connect timeout: $(cat "$T/res")"
[ "$(stat l7_cb_connect_timeout)" = 3 ] || fail "l7_cb_connect_timeout is $(stat l7_cb_connect_timeout), expected 3"
for _ in $(seq 30); do grep -q ' 503 UF,URX ' "$ALOG" && break; sleep 0.1; done
grep -q ' 503 UF,URX ' "$ALOG" || fail "access log: no 503 UF,URX line: $(tail -2 "$ALOG")"
pass "connectTimeout 300ms, blackholed pod: 503 UF,URX after $(cat "$T/res")s (3 tries), l7_cb_connect_timeout=3"

# h2c / gRPC (gslow, a grpc port; maxConnections 1, http1MaxPendingRequests
# 1, maxConcurrentStreams 1: one stream per connection): 8 unary calls at
# once on one gRPC channel, so one HBONE tunnel and one h2 session on one
# worker (a local forwarder into the tunnel, hbone_fwd.py). Each call's
# first try takes 1.5 s at the backend (x-code SLOW). One goes out, one
# waits for the connection's stream and goes out after it, the others get
# UNAVAILABLE with the overflow message at once: 2 succeed (bound 2..4 on 2
# cores), one after the other.
ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/hbone_fwd.py" --listen 127.0.0.1:15003 \
	--addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.52:50051 >"$T/fwd.log" 2>&1 &
PIDS+=($!)
disown $!
for _ in $(seq 100); do grep -q listening "$T/fwd.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$T/fwd.log" || fail "hbone_fwd.py did not start: $(cat "$T/fwd.log")"
uo_before=$(stat l7_upstream_overflow)
pend_before=$(stat l7_cb_pending)
alog_before=$(grep -c ' UO ' "$ALOG" || true)
in_ns $PY - 127.0.0.1:15003 8 >"$T/res" 2>"$T/res.err" <<'PY' || fail "gRPC calls: $(cat "$T/res.err")"
import sys, threading, time
import grpc
target, n = sys.argv[1], int(sys.argv[2])
body = "upstream connect error or disconnect/reset before headers. reset reason: overflow"
with grpc.insecure_channel(target) as ch:
    grpc.channel_ready_future(ch).result(timeout=10)
    call = ch.unary_unary("/test.Retry/Flaky")
    res, lock, t0 = [], threading.Lock(), time.monotonic()
    def done(f):
        el = time.monotonic() - t0
        try:
            f.result()
            r = ("OK", "", el)
        except grpc.RpcError as e:
            r = (e.code().name, e.details() or "", el)
        with lock:
            res.append(r)
    fs = [call.future(b"x", timeout=20,
                      metadata=(("x-req", "g%d" % i), ("x-fail", "1"), ("x-code", "SLOW")))
          for i in range(n)]
    for f in fs:
        f.add_done_callback(done)
    for f in fs:
        try:
            f.result()
        except grpc.RpcError:
            pass
    time.sleep(0.1)
ok = sorted(r[2] for r in res if r[0] == "OK")
uo = [r for r in res if r[0] == "UNAVAILABLE" and r[1] == body]
if len(res) != n or len(ok) + len(uo) != n:
    sys.exit("not OK or UNAVAILABLE with the overflow message: %s" % res)
if not 2 <= len(ok) <= 4:
    sys.exit("%d succeeded, expected 2..4: %s" % (len(ok), res))
if max(r[2] for r in uo) > 1.0:
    sys.exit("an overflow answered late: %s" % res)
if ok[0] < 1.4 or ok[-1] < 2.9:
    sys.exit("the successes did not go one after the other: %s" % res)
print(len(ok), len(uo), round(max(r[2] for r in uo), 3), round(ok[-1], 3))
PY
read -r g_ok g_uo g_worst g_slowest <"$T/res"
got=$(($(stat l7_upstream_overflow) - uo_before))
[ "$got" = "$g_uo" ] || fail "l7_upstream_overflow counted $got, expected $g_uo"
[ "$(($(stat l7_cb_pending) - pend_before))" -ge 1 ] || fail "no stream waited (l7_cb_pending)"
for _ in $(seq 30); do
	[ "$(($(grep -c ' UO ' "$ALOG" || true) - alog_before))" = "$g_uo" ] && break
	sleep 0.1
done
[ "$(($(grep -c ' UO ' "$ALOG" || true) - alog_before))" = "$g_uo" ] ||
	fail "access log: not $g_uo more lines with UO: $(tail -3 "$ALOG")"
seen=$(grep -c '"id": "g' "$T/gslow.log" || true)
[ "$seen" = "$g_ok" ] || fail "the gRPC backend saw $seen calls, $g_ok succeeded"
pass "8 concurrent gRPC calls on one h2c session, maxConnections 1 + http1MaxPendingRequests 1 + maxConcurrentStreams 1: $g_ok succeeded (the waiting one after ${g_slowest}s), $g_uo UNAVAILABLE with the overflow message within ${g_worst}s; l7_upstream_overflow +$got, l7_cb_pending +$(($(stat l7_cb_pending) - pend_before))"
