#!/usr/bin/env bash
# Retries end to end (dp/l7/README.md "Retries"; issue 15 acceptance 3, and
# the per-try timeout of 4, counters and flags of 5). One backend process
# (retry_backend.py) on the pod retry-1 fails the first tries of each
# request as its path says and logs every try (the request's x-req id, the
# try's number, the x-envoy-attempt-count it carried, the body's sha256);
# retry_client.py sends each request on its own CONNECT stream. Services
# over that pod:
#   r-def  no route: Istio's default policy (2 retries on connect-failure,
#          refused-stream, unavailable, cancelled and 503);
#   r-hr   an HTTPRoute `retry` {attempts: 3, codes: [500], backoff: 10ms}
#          (istiod's conversion: its codes replace the 503);
#   r-vs   a VirtualService retries {attempts: 2, perTryTimeout: 400ms,
#          retryOn: reset,503}: a plain reset and a per-try timeout are
#          retried only by a policy naming reset (or 5xx / gateway-error),
#          never by the default one;
#   r-ref  two pods, one of them refusing connections (no listener).
# Checked over HTTP/1.1: a first try failing with 503 / 500 / a reset /
# grpc-status 14 / a per-try timeout is invisible to the client, the tries
# seen never exceed 1 + attempts, x-envoy-attempt-count is 1, 2, ..., a
# POST body of a few KiB is replayed byte-identical, a body beyond the
# 64 KiB hold is not retried (answered as the failure, counted), retries
# running out answer the last failure with URX (access log,
# istio_requests_total), the default policy does not retry a reset, a
# per-try timeout is retried and the last one answers 504 UT,URX; refused
# connections are retried on the other pod. Then gRPC over h2c (r-grpc, a
# grpc port, through a local HBONE forwarder): a first try answering
# grpc-status 14 (unavailable, trailers-only) is retried by the default
# policy with its request message replayed; always 14 -> the 3rd try's
# UNAVAILABLE with URX; INTERNAL (13) is not retried by default; and on
# r-gvs (the same pod, a VirtualService retryOn unavailable,reset with
# perTryTimeout 400ms) a slow first try is retried.
. "$(dirname "$0")/lib.sh"
l7_setup l7retry
RC="$PY $ROOT/tests/integration/retry_client.py"
svc() { # NAME IP APP
	cat <<YAML
---
apiVersion: v1
kind: Service
metadata:
  name: $1
  namespace: default
spec:
  clusterIP: $2
  selector:
    app: $3
  ports:
  - name: http
    port: 9080
YAML
}
pod() { # NAME IP APP
	cat <<YAML
---
apiVersion: v1
kind: Pod
metadata:
  name: $1
  namespace: default
  labels:
    app: $3
spec:
  nodeName: node-1
status:
  phase: Running
  podIP: $2
  podIPs:
  - ip: $2
  conditions:
  - type: Ready
    status: "True"
YAML
}
{
	svc r-def 198.19.0.60 retry1
	svc r-hr 198.19.0.61 retry1
	svc r-vs 198.19.0.62 retry1
	svc r-ref 198.19.0.63 retry2
	svc r-grpc 198.19.0.64 retry3 | sed 's/- name: http$/- name: grpc/; s/port: 9080/port: 50051/'
	svc r-gvs 198.19.0.65 retry3 | sed 's/- name: http$/- name: grpc/; s/port: 9080/port: 50051/'
	pod retry-3 198.18.1.64 retry3
	pod retry-1 198.18.1.60 retry1
	pod retry-2a 198.18.1.61 retry2
	pod retry-2b 198.18.1.62 retry2
	cat <<'YAML'
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r-hr
  namespace: default
spec:
  parentRefs:
  - {group: "", kind: Service, name: r-hr, port: 9080}
  rules:
  - retry: {attempts: 3, codes: [500], backoff: 10ms}
    backendRefs:
    - {name: r-hr, port: 9080}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: r-vs
  namespace: default
spec:
  hosts: [r-vs.default.svc.cluster.local]
  http:
  - retries: {attempts: 2, perTryTimeout: 400ms, retryOn: "reset,503"}
    route:
    - destination: {host: r-vs.default.svc.cluster.local}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: r-gvs
  namespace: default
spec:
  hosts: [r-gvs.default.svc.cluster.local]
  http:
  - retries: {attempts: 2, perTryTimeout: 400ms, retryOn: "unavailable,reset"}
    route:
    - destination: {host: r-gvs.default.svc.cluster.local}
YAML
} >"$MAN/30-retry.yaml"

ALOG=$T/access.log
tb_up "$(tb_name)" --manifests "$MAN" --certs "$PKI" \
	--set cluster.gateway_class=istio-waypoint --set "access_log.file=$ALOG"
# (ip netns exec directly, not in_ns: $! must be the backend itself)
ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/retry_backend.py" \
	--bind 198.18.1.60:9080 --bind 198.18.1.61:9080 --grpc-bind 198.18.1.64:50051 \
	>"$T/be.log" 2>"$T/be.err" &
PIDS+=($!)
disown $!
for _ in $(seq 50); do grep -q listening "$T/be.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$T/be.log" || fail "backend did not start: $(cat "$T/be.err")"
for _ in $(seq 100); do
	in_ns $CLIENT --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.60:9080 \
		--expect-status 200 --timeout 5 >/dev/null 2>&1 && break
	sleep 0.2
done

# req VIP HOST ID:METHOD:PATH:LEN ...: the client's JSON lines into $T/res
# (one per request)
req() {
	local vip=$1 host=$2 a=()
	shift 2
	for r in "$@"; do a+=(--req "$r"); done
	in_ns $RC --addr "$WP_IP:15008" --certs "$PKI" --authority "$vip:9080" --host "$host" \
		"${a[@]}" >"$T/res" 2>"$T/res.err" || fail "client: $(cat "$T/res.err")"
}
# check ID STATUS TRIES: the client got STATUS for ID; the backend saw
# TRIES tries of it, carrying x-envoy-attempt-count 1..TRIES, each with the
# body the client sent (sha256), and a 200's body names the last try
check() {
	$PY - "$T/res" "$T/be.log" "$1" "$2" "$3" <<'PY' || fail "request $1: $(cat "$T/res.why")"
import json, sys
res, log, rid, status, tries = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
out = open(res.replace("res", "res.why"), "w")
r = [json.loads(l) for l in open(res) if l.strip()]
r = [x for x in r if x["id"] == rid][0]
r["status"] = str(r["status"])
seen = [json.loads(l) for l in open(log) if l.startswith('{"id"')]
seen = [x for x in seen if x["id"] == rid]
why = None
if r["status"] != status:
    why = "status %s, expected %s (%s)" % (r["status"], status, r)
elif len(seen) != tries:
    why = "%d tries seen, expected %d: %s" % (len(seen), tries, seen)
elif [x["attempt"] for x in seen] != [str(i + 1) for i in range(tries)]:
    why = "x-envoy-attempt-count %s" % [x["attempt"] for x in seen]
elif any(x["sha"] != r["sha"] for x in seen):
    why = "a try carried another body: %s, sent %s" % ([x["sha"] for x in seen], r["sha"])
elif status in ("200", "OK") and r["body"].split()[1:3] != [str(tries), str(tries)]:
    why = "answer %r not from try %d" % (r["body"], tries)
if why:
    out.write(why)
    sys.exit(1)
PY
}
# alog N PATTERN: at least N access-log lines match PATTERN
alog() {
	for _ in $(seq 30); do
		[ "$(grep -c -- "$2" "$ALOG" 2>/dev/null)" -ge "$1" ] && return 0
		sleep 0.1
	done
	fail "access log: fewer than $1 lines matching '$2': $(tail -3 "$ALOG")"
}

# 1. the default policy (r-def)
req 198.19.0.60 r-def a1:GET:/f/503/1:0 a2:POST:/f/503/1:4096 a3:GET:/f/503/9:0 \
	a4:POST:/f/503/1:100000 a5:GET:/f/reset/1:0 a6:GET:/f/grpc14/1:0
check a1 200 2
check a2 200 2
pass "default policy: a 503 first try is invisible (2 tries, x-envoy-attempt-count 1, 2); a 4096-byte POST body replayed byte-identical"
check a3 503 3
alog 1 ' 503 URX '
pass "default policy: always 503 -> the client gets the 3rd try's 503 (1 + 2 retries), access log '503 URX'"
check a4 503 1
[ "$(stat l7_h1p_retry_body_too_big)" -ge 1 ] || fail "l7_h1p_retry_body_too_big not counted"
[ "$(stat l7_h1p_retry_not_held)" -ge 1 ] || fail "l7_h1p_retry_not_held not counted"
pass "a 100000-byte POST (beyond the 64 KiB hold) is not retried: its 503 answered, l7_h1p_retry_not_held=$(stat l7_h1p_retry_not_held)"
check a5 502 1
alog 1 ' 502 UC '
pass "default policy: a reset is not retried (502 UC, 1 try)"
check a6 200 2
pass "default policy: grpc-status 14 (unavailable) retried"

# 2. an HTTPRoute retry (r-hr): codes [500], attempts 3
req 198.19.0.61 r-hr b1:POST:/f/500/3:2048 b2:GET:/f/503/1:0 b3:GET:/f/500/9:0
check b1 200 4
check b2 503 1
check b3 500 4
alog 1 ' 500 URX '
pass "HTTPRoute retry attempts 3 codes [500]: 3 failing tries invisible (body replayed, attempt count 1..4); 503 not retried; always 500 -> 4 tries, '500 URX'"

# 3. a VirtualService retryOn reset,503 with perTryTimeout 400ms (r-vs)
req 198.19.0.62 r-vs c1:POST:/f/reset/1:3000 c2:GET:/f/sleep/1/1500:0 c4:GET:/f/reset/9:0
check c1 200 2
check c2 200 2
check c4 502 3
alog 1 ' 502 UC,URX '
pass "VirtualService retryOn reset: a reset first try invisible (body replayed); always reset -> 502 UC,URX after 3 tries"
t0=$(date +%s%N)
req 198.19.0.62 r-vs c3:GET:/f/sleep/5/1500:0
ms=$((($(date +%s%N) - t0) / 1000000))
check c3 504 3
alog 1 ' 504 UT,URX '
[ "$ms" -ge 1100 ] && [ "$ms" -lt 4000 ] || fail "3 tries of 400 ms answered after $ms ms"
[ "$(stat l7_h1p_retry_timeout)" -ge 3 ] || fail "l7_h1p_retry_timeout is $(stat l7_h1p_retry_timeout)"
pass "perTryTimeout 400ms: a slow first try retried (200); always slow -> 504 UT,URX after 3 tries ($ms ms)"

# 4. connection refused by one of two pods (r-ref): retried on the other
ids=()
for i in $(seq 20); do ids+=("d$i:GET:/f/ok/0:0"); done
r0=$(stat l7_h1p_retry)
req 198.19.0.63 r-ref "${ids[@]}"
n=$($PY -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["status"] == 200))' "$T/res")
[ "$n" = 20 ] || fail "refused connections: $n of 20 answered 200: $(cat "$T/res")"
# (these requests fail in no other way: every retry is a connect failure's)
[ "$(stat l7_h1p_retry)" -gt "$r0" ] || fail "no connection was refused (l7_h1p_retry)"
pass "one pod refusing connections: 20 of 20 answered 200 ($(($(stat l7_h1p_retry) - r0)) connect failures retried)"

# 5. gRPC over h2c (r-grpc), the default policy
for f in 15001:198.19.0.64 15002:198.19.0.65; do
	ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/hbone_fwd.py" --listen "127.0.0.1:${f%%:*}" \
		--addr "$WP_IP:15008" --certs "$PKI" --authority "${f#*:}:50051" >"$T/fwd-${f%%:*}.log" 2>&1 &
	PIDS+=($!)
	disown $!
	for _ in $(seq 100); do grep -q listening "$T/fwd-${f%%:*}.log" 2>/dev/null && break; sleep 0.1; done
	grep -q listening "$T/fwd-${f%%:*}.log" || fail "hbone_fwd.py did not start: $(cat "$T/fwd-${f%%:*}.log")"
done
in_ns $RC --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.64:50051 --host r-grpc \
	--grpc 127.0.0.1:15001 --req g1:GRPC:/1/UNAVAILABLE:3000 --req g2:GRPC:/9/UNAVAILABLE:10 \
	--req g3:GRPC:/1/INTERNAL:10 >"$T/res" 2>"$T/res.err" || fail "grpc client: $(cat "$T/res.err")"
check g1 OK 2
check g2 UNAVAILABLE 3
check g3 INTERNAL 1
[ "$(stat l7_h2p_retry_status)" -ge 3 ] || fail "l7_h2p_retry_status is $(stat l7_h2p_retry_status)"
[ "$(stat l7_h2p_retry_exhausted)" -ge 1 ] || fail "l7_h2p_retry_exhausted not counted"
alog 2 ' URX '
pass "gRPC over h2c: grpc-status 14 on the first try invisible (3000-byte message replayed, attempt count 1, 2); always 14 -> UNAVAILABLE after 3 tries (URX); INTERNAL not retried"
in_ns $RC --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.65:50051 --host r-gvs \
	--grpc 127.0.0.1:15002 --req g4:GRPC:/1/SLOW:500 >"$T/res" 2>"$T/res.err" ||
	fail "grpc client: $(cat "$T/res.err")"
check g4 OK 2
[ "$(stat l7_h2p_retry_timeout)" -ge 1 ] || fail "l7_h2p_retry_timeout not counted"
pass "gRPC over h2c, perTryTimeout 400ms: a slow first try retried, answered by the second"

# tries never beyond 1 + attempts (4 for r-hr, 3 for the others)
$PY - "$T/be.log" <<'PY' || fail "too many tries"
import collections, json, sys
n = collections.Counter(json.loads(l)["id"] for l in open(sys.argv[1]) if l.startswith('{"id"'))
bad = {k: v for k, v in n.items() if v > (4 if k.startswith("b") else 3)}
if bad:
    sys.exit("tries beyond the limit: %s" % bad)
PY
metrics=$(in_ns curl -s --max-time 5 "http://127.0.0.1:15020/stats/prometheus") || fail "scrape"
for f in URX UT,URX UC,URX; do
	grep -q "^istio_requests_total{.*response_flags=\"$f\"" <<<"$metrics" ||
		fail "istio_requests_total has no response_flags=\"$f\" series: $(echo "$metrics" | grep '^istio_requests_total' | head -5)"
done
pass "never more than 1 + attempts tries; istio_requests_total has URX, UT,URX and UC,URX; retries: status $(stat l7_h1p_retry_status), reset $(stat l7_h1p_retry_reset), timeout $(stat l7_h1p_retry_timeout), exhausted $(stat l7_h1p_retry_exhausted)"
