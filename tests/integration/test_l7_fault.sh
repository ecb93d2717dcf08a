#!/usr/bin/env bash
# Issue 15 (resilience policies), VirtualService fault injection end to end:
# HTTP/1.1 and gRPC inside HBONE tunnels through waypointd to the embedded
# cluster's details pod (l7_backend.py, which logs every request it gets)
# and a gRPC pod, with the access log on.
#   - abort 30 % httpStatus 503 over N requests (default 2000) on one
#     keep-alive stream: the aborted count is within 4.5 standard
#     deviations of 0.3 N, each abort has FI in the access log and
#     istio_requests_total{response_code="503",response_flags="FI"} counts
#     them all, the backend saw exactly the others;
#   - delay fixedDelay 300ms at 100 %: every answer takes 300 ms or more and
#     is logged with DI; at 50 %: the slow ones within 4.5 standard
#     deviations of half, the others fast;
#   - gRPC delay 200ms then abort grpcStatus UNAVAILABLE over h2c: the call
#     fails UNAVAILABLE with "fault filter abort" from the waypoint after
#     200 ms or more (DI,FI), no upstream connection;
#   - a VirtualService edit that adds a fault, then one that removes it,
#     each reaches the workers under an open keep-alive stream: its next
#     requests follow the edit, none is lost, the stream is not closed.
. "$(dirname "$0")/lib.sh"
N=${L7_FAULT_N:-2000}
l7_setup l7fault
GRPC="$PY $ROOT/tests/integration/l7_h2_grpc.py"
ALOG=$T/access.log
cat >"$MAN/30-grpc.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: grpc
  namespace: default
spec:
  clusterIP: 198.19.0.41
  selector:
    app: grpc
  ports:
  - name: grpc
    port: 50051
---
apiVersion: v1
kind: Pod
metadata:
  name: grpc-1
  namespace: default
  labels:
    app: grpc
spec:
  nodeName: node-1
status:
  phase: Running
  podIP: 198.18.1.41
  podIPs:
  - ip: 198.18.1.41
  conditions:
  - type: Ready
    status: "True"
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: grpc
  namespace: default
spec:
  hosts: [grpc]
  http:
  - fault:
      delay: {fixedDelay: 200ms, percentage: {value: 100}}
      abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}
    route: [{destination: {host: grpc}}]
YAML
# vs_file EDIT_FAULT: the details VirtualService, written whole and renamed
# into place; EDIT_FAULT is the fault of its /edit rule ("" for none)
vs_file() {
	cat >"$T/vs.tmp" <<YAML
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: details
  namespace: default
spec:
  hosts: [details]
  http:
  - match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 30}}}
    route: [{destination: {host: details}}]
  - match: [{uri: {prefix: /delay}}]
    fault: {delay: {fixedDelay: 300ms, percentage: {value: 100}}}
    route: [{destination: {host: details}}]
  - match: [{uri: {prefix: /half}}]
    fault: {delay: {fixedDelay: 300ms, percentage: {value: 50}}}
    route: [{destination: {host: details}}]
  - match: [{uri: {prefix: /edit}}]
${1:+    fault: $1}
    route: [{destination: {host: details}}]
  - route: [{destination: {host: details}}]
YAML
	mv "$T/vs.tmp" "$MAN/40-vs.yaml"
}
vs_file ""

tb_up "$(tb_name)" --manifests "$MAN" --certs "$PKI" --set cluster.gateway_class=istio-waypoint \
	--set "access_log.file=$ALOG"
ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/l7_backend.py" --bind 198.18.1.11:9080 \
	--name details --version v1 >"$T/details.log" 2>"$T/details.err" &
PIDS+=($!)
disown $!
ip netns exec "$WP_NETNS" $GRPC server --bind 198.18.1.41:50051 >"$T/grpc.log" 2>&1 &
PIDS+=($!)
disown $!
ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/hbone_fwd.py" --listen 127.0.0.1:15102 \
	--addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.41:50051 >"$T/fwd.log" 2>&1 &
PIDS+=($!)
disown $!
for f in details grpc fwd; do
	for _ in $(seq 100); do grep -q listening "$T/$f.log" 2>/dev/null && break; sleep 0.1; done
	grep -q listening "$T/$f.log" || fail "$f did not start: $(cat "$T/$f.log" "$T/$f.err" 2>/dev/null)"
done
RULES='port("default", "details", 9080)["routes"]["rules"]'
wait_cfg_dump "len($RULES)" 5
[ "$(cfg_dump "$RULES[0][\"fault\"]")" = "{'abortHttpStatus': 503, 'abortPercent': 30.0}" ] ||
	fail "abort fault not in the dump: $(cfg_dump "$RULES")"
for _ in $(seq 100); do
	l7 get --authority 198.19.0.11:9080 --host details:9080 --path /warm --n 1 2>/dev/null |
		grep -q '"200": 1' && break
	sleep 0.2
done
fault_stats() { "$WPCTL" stats --prefix "$WP_PREFIX" 2>/dev/null | grep -E '^(l7_fault|l7_h1p|l7_h2p)' | awk '$2 != 0 {printf "%s=%s ", $1, $2}'; }
# alog_count REGEX WANT: waits up to 5 s for WANT access-log lines matching REGEX
alog_count() {
	local n=0
	for _ in $(seq 50); do
		n=$(grep -cE "$1" "$ALOG" || true)
		[ "$n" = "$2" ] && return 0
		sleep 0.1
	done
	fail "access log: $n lines match $1, expected $2: $(tail -3 "$ALOG")"
}

# 1. abort 30 %: binomial bounds, FI in the access log and the metrics, the
# backend saw the rest
out=$(l7 get --authority 198.19.0.11:9080 --host details:9080 --path /abort/x --n "$N") ||
	fail "abort run: $out; $(fault_stats)"
read -r ok ab lo hi <<<"$($PY -c '
import json, math, sys
d = json.loads(sys.argv[1]); n = int(sys.argv[2])
s = d["statuses"]
assert set(s) <= {"200", "503"} and sum(s.values()) == n, d
sd = math.sqrt(n * 0.3 * 0.7)
print(s.get("200", 0), s.get("503", 0), math.ceil(0.3 * n - 4.5 * sd), math.floor(0.3 * n + 4.5 * sd))' "$out" "$N")" ||
	fail "abort run: $out"
[ "$ab" -ge "$lo" ] && [ "$ab" -le "$hi" ] || fail "aborted $ab of $N, outside [$lo, $hi]"
grep -q '"fault": '"$ab" <<<"$out" || fail "aborts without Envoy's body: $out"
seen=$(grep -c '"path": "/abort/x"' "$T/details.log" || true)
[ "$seen" = "$ok" ] || fail "the backend saw $seen requests, $ok were not aborted"
alog_count '"GET /abort/x HTTP/1.1" 503 FI ' "$ab"
alog_count '"GET /abort/x HTTP/1.1" 200 - ' "$ok"
in_ns curl -s --max-time 5 -o "$T/m" "http://127.0.0.1:15020/stats/prometheus" || fail "scrape"
fi_n=$($PY -c '
import re, sys
t = 0
for ln in open(sys.argv[1]):
    if ln.startswith("istio_requests_total{") and "response_code=\"503\"" in ln and \
            "response_flags=\"FI\"" in ln and "destination_service_name=\"details\"" in ln:
        t += int(float(ln.rsplit(" ", 1)[1]))
print(t)' "$T/m")
[ "$fi_n" = "$ab" ] || fail "istio_requests_total 503 FI is $fi_n, $ab aborted: $(grep FI "$T/m")"
[ "$(stat l7_fault_abort)" = "$ab" ] || fail "l7_fault_abort $(stat l7_fault_abort), $ab aborted"
grep -q '"closed": true' <<<"$out" || fail "abort run: stream not ended cleanly: $out"
pass "abort 30 % httpStatus 503: $ab of $N aborted (bounds [$lo, $hi]), each 503 FI in the access log and istio_requests_total{response_flags=\"FI\"} $fi_n, the backend saw exactly the $ok others, one keep-alive stream"

# 2. delay 300ms at 100 %, then at 50 %
out=$(l7 get --authority 198.19.0.11:9080 --host details:9080 --path /delay/x --n 10 --slow-ms 300) ||
	fail "delay run: $out; $(fault_stats)"
grep -q '"statuses": {"200": 10}' <<<"$out" && grep -q '"slow": 10' <<<"$out" ||
	fail "delay 100 %: not every answer took 300 ms: $out"
alog_count '"GET /delay/x HTTP/1.1" 200 DI ' 10
pass "delay fixedDelay 300ms at 100 %: 10/10 answered 200 in 300 ms or more, flagged DI ($out)"
H=60
out=$(l7 get --authority 198.19.0.11:9080 --host details:9080 --path /half/x --n $H --slow-ms 300) ||
	fail "half delay run: $out; $(fault_stats)"
read -r slow lo hi <<<"$($PY -c '
import json, math, sys
d = json.loads(sys.argv[1]); n = int(sys.argv[2])
assert d["statuses"] == {"200": n}, d
sd = math.sqrt(n * 0.25)
print(d["slow"], math.ceil(n / 2 - 4.5 * sd), math.floor(n / 2 + 4.5 * sd))' "$out" $H)" ||
	fail "half delay run: $out"
[ "$slow" -ge "$lo" ] && [ "$slow" -le "$hi" ] || fail "delay 50 %: $slow of $H slow, outside [$lo, $hi]: $out"
alog_count '"GET /half/x HTTP/1.1" 200 DI ' "$slow"
alog_count '"GET /half/x HTTP/1.1" 200 - ' $((H - slow))
pass "delay fixedDelay 300ms at 50 %: $slow of $H held 300 ms or more (bounds [$lo, $hi]) and flagged DI, $((H - slow)) not ($out)"

# 3. gRPC delay then abort with grpcStatus over h2c: the stream held on the
# h2 proxy's timers, then trailers-only UNAVAILABLE from the waypoint,
# nothing upstream
t0=$(date +%s%N)
out=$(in_ns timeout 60 $GRPC unavailable --target 127.0.0.1:15102) ||
	fail "gRPC abort: $out; $(fault_stats)"
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q '"details": "fault filter abort"' <<<"$out" || fail "gRPC abort not the fault's: $out"
[ "$ms" -ge 200 ] || fail "gRPC call answered in $ms ms, before its 200 ms delay"
[ "$(stat l7_h2p_up_new)" = 0 ] || fail "gRPC abort opened an upstream: $(fault_stats)"
alog_count '"POST /test.Echo/Count HTTP/2" 200 DI,FI ' 1
pass "gRPC delay 200ms + abort grpcStatus UNAVAILABLE over h2c: the call fails UNAVAILABLE \"fault filter abort\" after $ms ms, no upstream connection, 200 DI,FI in the access log ($out)"

# 4. a fault added, then removed, under open keep-alive streams
edit() { # FAULT WANT_DUMP BEFORE AFTER
	local pid
	rm -f "$T/go" "$T/go.paused"
	l7 get --authority 198.19.0.11:9080 --host details:9080 --path /edit/x --n 40 \
		--pause-after 20 --pause-file "$T/go" >"$T/live.out" 2>&1 &
	pid=$!
	for _ in $(seq 100); do [ -e "$T/go.paused" ] && break; sleep 0.1; done
	[ -e "$T/go.paused" ] || fail "live client did not pause: $(cat "$T/live.out")"
	vs_file "$1"
	wait_cfg_dump "$RULES[3].get(\"fault\")" "$2"
	touch "$T/go"
	wait $pid || fail "live client: $(cat "$T/live.out")"
	out=$(cat "$T/live.out")
	grep -q "\"before\": {\"$3\": 20}, \"after\": {\"$4\": 20}" <<<"$out" ||
		fail "edit not followed on the open stream: $out"
	grep -q '"closed": true' <<<"$out" || fail "stream not ended cleanly: $out"
}
edit "{abort: {httpStatus: 418, percentage: {value: 100}}}" \
	"{'abortHttpStatus': 418, 'abortPercent': 100.0}" details fault
grep -q '"statuses": {"200": 20, "418": 20}' <<<"$out" || fail "fault added: $out"
pass "a fault added to the VirtualService under an open keep-alive stream: its next 20 requests get 418 FI, the stream goes on ($out)"
edit "" None fault details
grep -q '"statuses": {"418": 20, "200": 20}' <<<"$out" || fail "fault removed: $out"
pass "the fault removed under an open keep-alive stream: its next 20 requests reach the backend again ($out)"
[ "$(stat access_log_dropped)" = 0 ] || fail "access-log lines dropped: $(stat access_log_dropped)"
