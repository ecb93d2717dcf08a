#!/usr/bin/env bash
# Issue 14, acceptance 1: Istio's standard metrics recorded from the data
# path. A scripted mix goes through the waypoint inside HBONE tunnels, from
# two client identities (productpage in default, bar in foo) with different
# ztunnel baggage, then one scrape of /stats/prometheus must hold exactly
# the expected series:
#   - HTTP/1.1 (tests/integration/l7_http.py): details 200 x3 from
#     productpage and x2 from bar (two series, source labels from each
#     identity and baggage, the destination's Service, namespace and
#     principal), 404 with NR (an HTTPRoute without a matching rule), 503
#     with UH (a Service without endpoints), 504 with UT (timeouts.request,
#     its duration that timeout); istio_requests_total,
#     _duration_ _count, istio_request_bytes _sum = the request bytes sent,
#     istio_response_bytes _sum = the response bytes received;
#   - plain h2c (curl --http2-prior-knowledge through
#     tests/integration/hbone_fwd.py, a third workload in the baggage) to
#     the HTTP/1.1 details backend: 200 x2, and a 404 NR;
#   - gRPC over h2c (tests/integration/l7_h2_grpc.py through
#     tests/integration/hbone_fwd.py): OK (grpc_response_status 0), a
#     FAILED_PRECONDITION stream (9), UNAVAILABLE from the waypoint for a
#     service without endpoints (response_code 200, 14, UH);
#   - opaque TCP (a port named tcp): 3000 bytes echoed, so
#     istio_tcp_received_bytes_total = istio_tcp_sent_bytes_total = 3000,
#     one connection opened and closed;
#   - no other istio_requests_total sample; promtool check metrics clean
#     but for the base-unit note on istio_request_duration_milliseconds;
#   - 2 workers (the scrape merges their cells); then 10 clients x 40
#     requests at once while 20 scrapes run: each scrape answers within 1 s,
#     the series never goes back, and the last one counts every request.
. "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || fail "promtool missing (Debian package prometheus, scripts/setup)"
l7_setup metrics-istio
GRPC="$PY $ROOT/tests/integration/l7_h2_grpc.py"
BG_PP="k8s.cluster.name=east,k8s.namespace.name=default,k8s.deployment.name=productpage-v1,service.name=productpage,service.version=v1"
BG_H2="k8s.namespace.name=default,k8s.deployment.name=reviews-v2,service.name=reviews,service.version=v2"
BG_BAR="k8s.namespace.name=foo,k8s.deployment.name=bar-v2,service.name=bar,service.version=v2"
cat >"$MAN/30-metrics.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: shop
  namespace: default
spec:
  clusterIP: 198.19.0.32
  selector:
    app: details
  ports:
  - name: http
    port: 9080
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: shop
  namespace: default
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: shop
    port: 9080
  rules:
  - matches:
    - path: {type: PathPrefix, value: /ok}
    backendRefs:
    - name: shop
      port: 9080
  - matches:
    - path: {type: PathPrefix, value: /sleep}
    timeouts: {request: 300ms}
    backendRefs:
    - name: shop
      port: 9080
---
apiVersion: v1
kind: Service
metadata:
  name: empty
  namespace: default
spec:
  clusterIP: 198.19.0.33
  selector:
    app: nobody
  ports:
  - name: http
    port: 9080
---
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
kind: Service
metadata:
  name: grpc-none
  namespace: default
spec:
  clusterIP: 198.19.0.42
  selector:
    app: nobody
  ports:
  - name: grpc
    port: 50051
---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: default
spec:
  clusterIP: 198.19.0.31
  selector:
    app: echo
  ports:
  - name: tcp-echo
    port: 7000
YAML
# Pods as their controllers make them, for the destination workload labels
# (istiod's rules): grpc-v2-6c9f7d8b5-x2k4q belongs to the Deployment
# grpc-v2 through its ReplicaSet, canonical service and revision from app /
# version; echo-28871040-q8f2z to the CronJob echo-sync through a Job named
# with its schedule time, its canonical name from the Istio label and no
# revision label ("latest").
for pod in "grpc-v2-6c9f7d8b5-x2k4q grpc 198.18.1.41 grpc ReplicaSet grpc-v2-6c9f7d8b5" \
	"echo-sync-28871040-q8f2z echo 198.18.1.30 echo Job echo-sync-28871040"; do
	read -r name app ip sa okind oname <<<"$pod"
	cat >>"$MAN/30-metrics.yaml" <<YAML
---
apiVersion: v1
kind: Pod
metadata:
  name: $name
  generateName: ${oname}-
  namespace: default
  ownerReferences:
  - apiVersion: apps/v1
    kind: $okind
    name: $oname
    controller: true
  labels:
    app: $app
$(if [ "$app" = grpc ]; then printf '    version: v2\n    pod-template-hash: 6c9f7d8b5\n'; else printf '    service.istio.io/canonical-name: echo-svc\n'; fi)
spec:
  nodeName: node-1
  serviceAccountName: $sa
status:
  phase: Running
  podIP: $ip
  podIPs:
  - ip: $ip
  conditions:
  - type: Ready
    status: "True"
YAML
done

tb_up "$(tb_name)" --workers 2 --manifests "$MAN" --certs "$PKI" --set cluster.gateway_class=istio-waypoint

# backends (ip netns exec directly: $! is the process itself)
ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/l7_backend.py" --bind 198.18.1.11:9080 \
	--name details --version v1 >"$T/details.log" 2>"$T/details.err" &
PIDS+=($!)
disown $!
ip netns exec "$WP_NETNS" $GRPC server --bind 198.18.1.41:50051 >"$T/grpc.log" 2>&1 &
PIDS+=($!)
disown $!
ip netns exec "$WP_NETNS" $PY -c '
import socket, sys, threading
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("198.18.1.30", 7000))
ls.listen(8)
print("listening", flush=True)
def echo(c):
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
' >"$T/echo.log" 2>&1 &
PIDS+=($!)
disown $!
fwd() { # port authority baggage identity
	ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/hbone_fwd.py" --listen "127.0.0.1:$1" \
		--addr "$WP_IP:15008" --certs "$PKI" --authority "$2" --baggage "$3" \
		--identity "$4" >"$T/fwd-$1.log" 2>&1 &
	PIDS+=($!)
	disown $!
}
fwd 15102 198.19.0.41:50051 "$BG_PP" productpage
fwd 15103 198.19.0.42:50051 "$BG_BAR" foo-bar
fwd 15104 198.19.0.11:9080 "$BG_H2" productpage
fwd 15105 198.19.0.32:9080 "$BG_H2" productpage
for f in details grpc echo fwd-15102 fwd-15103 fwd-15104 fwd-15105; do
	for _ in $(seq 100); do grep -q listening "$T/$f.log" 2>/dev/null && break; sleep 0.1; done
	grep -q listening "$T/$f.log" || fail "$f did not start: $(cat "$T/$f.log" "$T/$f.err" 2>/dev/null)"
done
# the snapshot is there once a CONNECT to details is answered (no request in it)
for _ in $(seq 100); do
	in_ns $CLIENT --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.11:9080 \
		--expect-status 200 --timeout 5 >/dev/null 2>&1 && break
	sleep 0.2
done

l7_stats() { "$WPCTL" stats --prefix "$WP_PREFIX" 2>/dev/null | grep -E '^(l7_|tunnel_|metrics_)' | awk '$2 != 0 {printf "%s=%s ", $1, $2}'; }
# the series before the mix (a CONNECT without requests records none)
in_ns curl -s --max-time 5 -o "$T/m0" "http://127.0.0.1:15020/stats/prometheus" || fail "scrape"
! grep -q '^istio_requests_total' "$T/m0" || fail "requests recorded before the mix: $(grep '^istio_requests_total' "$T/m0")"

# 1. HTTP/1.1: two identities, 200s; 404 NR; 503 UH; 504 UT (timeouts.request 300ms)
l7 get --authority 198.19.0.11:9080 --host details:9080 --path /details --n 3 \
	--baggage "$BG_PP" >"$T/pp.json" || fail "details from productpage: $(cat "$T/pp.json") $(l7_stats)"
grep -q '"statuses": {"200": 3}' "$T/pp.json" || fail "details from productpage: $(cat "$T/pp.json")"
l7 get --authority 198.19.0.11:9080 --host details:9080 --path /details --n 2 --identity foo-bar \
	--baggage "$BG_BAR" >"$T/bar.json" || fail "details from bar: $(cat "$T/bar.json")"
grep -q '"statuses": {"200": 2}' "$T/bar.json" || fail "details from bar: $(cat "$T/bar.json")"
l7 get --authority 198.19.0.32:9080 --host shop:9080 --path /nope --n 1 \
	--baggage "$BG_PP" >"$T/404.json" || fail "shop /nope: $(cat "$T/404.json")"
grep -q '"statuses": {"404": 1}' "$T/404.json" || fail "shop /nope: $(cat "$T/404.json")"
l7 get --authority 198.19.0.33:9080 --host empty:9080 --path / --n 1 \
	--baggage "$BG_PP" >"$T/503.json" || fail "empty: $(cat "$T/503.json")"
grep -q '"statuses": {"503": 1}' "$T/503.json" || fail "empty: $(cat "$T/503.json")"
l7 get --authority 198.19.0.32:9080 --host shop:9080 --path /sleep/1500 --n 1 \
	--baggage "$BG_PP" >"$T/504.json" || fail "shop /sleep: $(cat "$T/504.json")"
grep -q '"statuses": {"504": 1}' "$T/504.json" || fail "shop /sleep: $(cat "$T/504.json")"

# 1b. plain h2c (prior knowledge) to an HTTP/1.1 backend: 200 x2, 404 NR
for i in 1 2; do
	code=$(in_ns curl -s --http2-prior-knowledge -o /dev/null -w '%{http_code} %{http_version}' \
		--max-time 10 http://127.0.0.1:15104/details) || fail "h2c details: $code"
	[ "$code" = "200 2" ] || fail "h2c details: $code"
done
code=$(in_ns curl -s --http2-prior-knowledge -o /dev/null -w '%{http_code} %{http_version}' \
	--max-time 10 http://127.0.0.1:15105/nope) || fail "h2c shop: $code"
[ "$code" = "404 2" ] || fail "h2c shop /nope: $code"

# 2. gRPC over h2c: OK, FAILED_PRECONDITION, UNAVAILABLE (no endpoints)
out=$(in_ns timeout 60 $GRPC count --target 127.0.0.1:15102 --k 5) || fail "gRPC count: $out $(l7_stats)"
out=$(in_ns timeout 60 $GRPC bidi --target 127.0.0.1:15102 --n 3 --size 10) || fail "gRPC bidi: $out"
out=$(in_ns timeout 60 $GRPC unavailable --target 127.0.0.1:15103) || fail "gRPC unavailable: $out"

# 3. opaque TCP: 3000 bytes echoed in one tunnel from bar
in_ns $PY - "$ROOT" "$WP_IP" "$PKI" "$BG_BAR" <<'PY' || fail "TCP echo through the waypoint $(l7_stats)"
import os, sys
sys.path.insert(0, os.path.join(sys.argv[1], "tests", "hbone"))
from client import HboneClient
pki = sys.argv[3]
c = HboneClient(sys.argv[2], 15008, pki + "/foo-bar.pem", pki + "/foo-bar-key.pem", pki + "/ca.pem")
sid = c.open("198.19.0.31:7000", baggage=sys.argv[4])
st = c.streams[sid]
assert c.run_until(lambda: st.status is not None) and st.status == 200, st.status
data = bytes(range(256)) * 11 + bytes(184)  # 3000 bytes
c.send(sid, data)
assert c.run_until(lambda: len(st.rx) >= 3000), len(st.rx)
assert bytes(st.rx) == data
c.send(sid, b"", end=True)
c.run_until(lambda: st.ended or st.reset is not None, timeout=5)
c.close()
PY
# the tunnel is freed after both ends closed: wait for its close to count
for _ in $(seq 50); do
	in_ns curl -s --max-time 5 -o "$T/m" "http://127.0.0.1:15020/stats/prometheus" || fail "scrape"
	grep -q '^istio_tcp_connections_closed_total{.* 1$' "$T/m" && break
	sleep 0.1
done

# 4. the scrape: exactly the expected series
lint=$(promtool check metrics <"$T/m" 2>&1 | grep -v 'istio_request_duration_milliseconds.*base unit' || true)
[ -z "$lint" ] || fail "promtool: $lint"
$PY - "$T/m" "$T/pp.json" "$T/bar.json" "$T/404.json" "$T/503.json" "$T/504.json" <<'PY' ||
import json, re, sys
text = open(sys.argv[1]).read()
pp, bar, nf, un, to = (json.load(open(f)) for f in sys.argv[2:7])
samples = []
for line in text.splitlines():
    m = re.match(r'^(istio_\w+)\{(.*)\} (\S+)$', line)
    if m:
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        samples.append((m.group(1), labels, float(m.group(3))))

def pick(name, **want):
    return [(l, v) for n, l, v in samples if n == name and all(l.get(k) == w for k, w in want.items())]

def one(name, **want):
    got = pick(name, **want)
    if len(got) != 1:
        sys.exit(f"{name} {want}: {len(got)} samples: {got}")
    return got[0]

def check(labels, **want):
    for k, w in want.items():
        if labels.get(k) != w:
            sys.exit(f"label {k}={labels.get(k)!r}, expected {w!r}: {labels}")

PP = dict(source_workload="productpage-v1", source_workload_namespace="default",
          source_principal="spiffe://cluster.local/ns/default/sa/productpage",
          source_app="productpage", source_version="v1", source_canonical_service="productpage",
          source_canonical_revision="v1", source_cluster="east")
BAR = dict(source_workload="bar-v2", source_workload_namespace="foo",
           source_principal="spiffe://cluster.local/ns/foo/sa/bar", source_app="bar",
           source_version="v2", source_canonical_service="bar", source_canonical_revision="v2",
           source_cluster="unknown")
DETAILS = dict(destination_service="details.default.svc.cluster.local",
               destination_service_name="details", destination_service_namespace="default",
               destination_workload_namespace="default",
               destination_principal="spiffe://cluster.local/ns/default/sa/bookinfo-details",
               destination_workload="details-v1", destination_app="details",
               destination_version="v1", destination_canonical_service="details",
               destination_canonical_revision="v1", destination_cluster="Kubernetes")
COMMON = dict(reporter="waypoint", connection_security_policy="mutual_tls")
reqs = pick("istio_requests_total")
total = sum(v for _, v in reqs)
if total != 3 + 2 + 1 + 1 + 1 + 3 + 3:
    sys.exit(f"istio_requests_total sums to {total}, expected 14: {reqs}")

def http(ident, n, out, **want):
    l, v = one("istio_requests_total", **want, **ident)
    check(l, **COMMON)
    if v != n:
        sys.exit(f"{want}: {v} requests, expected {n}")
    for h in ("istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"):
        _, c = one(h + "_count", **want, **ident)
        if c != n:
            sys.exit(f"{h}_count {c}, expected {n}")
        one(h + "_bucket", le="+Inf", **want, **ident)
    if out is not None:
        _, s = one("istio_request_bytes_sum", **want, **ident)
        _, r = one("istio_response_bytes_sum", **want, **ident)
        if s != out["bytes_sent"] or r != out["bytes_received"]:
            sys.exit(f"{want}: bytes {s}/{r}, client {out['bytes_sent']}/{out['bytes_received']}")
    _, d = one("istio_request_duration_milliseconds_sum", **want, **ident)
    if not 0 <= d < 5000 * n:
        sys.exit(f"duration sum {d}")
    return d

OK = dict(request_protocol="http", response_code="200", grpc_response_status="", response_flags="-")
http(PP, 3, pp, **OK, **DETAILS)
http(BAR, 2, bar, **OK, **DETAILS)
H2 = dict(PP, source_workload="reviews-v2", source_app="reviews", source_version="v2",
          source_canonical_service="reviews", source_canonical_revision="v2", source_cluster="unknown")
http(H2, 2, None, **OK, **DETAILS)
http(H2, 1, None, request_protocol="http", response_code="404", response_flags="NR",
     destination_service_name="shop", destination_principal="unknown")
http(PP, 1, nf, request_protocol="http", response_code="404", response_flags="NR",
     destination_service_name="shop", destination_principal="unknown",
     destination_workload="unknown", destination_canonical_service="unknown")
http(PP, 1, un, request_protocol="http", response_code="503", response_flags="UH",
     destination_service_name="empty", destination_principal="unknown")
d = http(PP, 1, to, request_protocol="http", response_code="504", response_flags="UT",
         destination_service_name="shop",
         destination_principal="spiffe://cluster.local/ns/default/sa/bookinfo-details")
if not 300 <= d < 1500:  # the route's 300 ms (never less), give or take the timer tick; not the backend's 1.5 s
    sys.exit(f"504 took {d} ms")
G = dict(request_protocol="grpc", destination_service_name="grpc",
         destination_principal="spiffe://cluster.local/ns/default/sa/grpc",
         destination_workload="grpc-v2", destination_app="grpc", destination_version="v2",
         destination_canonical_service="grpc", destination_canonical_revision="v2")
http(PP, 1, None, response_code="200", grpc_response_status="0", response_flags="-", **G)
http(PP, 1, None, response_code="200", grpc_response_status="9", response_flags="-", **G)
http(BAR, 1, None, request_protocol="grpc", response_code="200", grpc_response_status="14",
     response_flags="UH", destination_service_name="grpc-none")
# opaque TCP
T = dict(request_protocol="tcp", destination_service_name="echo",
         destination_principal="spiffe://cluster.local/ns/default/sa/echo", response_flags="-",
         destination_workload="echo-sync", destination_app="echo-svc",
         destination_version="latest", destination_canonical_service="echo-svc",
         destination_canonical_revision="latest")
for name, want in (("istio_tcp_connections_opened_total", 1), ("istio_tcp_connections_closed_total", 1),
                   ("istio_tcp_sent_bytes_total", 3000), ("istio_tcp_received_bytes_total", 3000)):
    got = pick(name)
    l, v = one(name, **T, **BAR)
    check(l, **COMMON)
    if v != want or len(got) != 1:
        sys.exit(f"{name}: {got}, expected one sample of {want}")
    if "response_code" in l or "grpc_response_status" in l:
        sys.exit(f"{name} has HTTP labels: {l}")
print(f"{len(samples)} istio_* samples as expected")
PY
	fail "series: see above"
pass "Istio metrics: HTTP/1.1 200 x3/x2 from two identities, h2c 200 x2 / 404 NR (source labels from SPIFFE ID and baggage), destination workload, app, version and canonical labels from each Pod and its controller, 404 NR, 503 UH, 504 UT, gRPC 0 / 9 / 14 UH, opaque TCP 3000 bytes both ways; counts, _count, byte _sums exact; promtool clean but the base-unit note"

# 5. 10 clients at once while scraping: no stall, no count lost
for i in $(seq 10); do
	l7 get --authority 198.19.0.11:9080 --host details:9080 --path /details --n 40 \
		--baggage "$BG_PP" >"$T/load-$i.json" 2>&1 &
	LOAD+=($!)
done
series='istio_requests_total{reporter="waypoint",source_workload="productpage-v1"'
prev=0
worst=0
for i in $(seq 20); do
	out=$(in_ns curl -s -o "$T/ms" -w '%{http_code} %{time_total}' --max-time 5 \
		"http://127.0.0.1:15020/stats/prometheus") || fail "scrape $i under load"
	read -r code secs <<<"$out"
	[ "$code" = 200 ] || fail "scrape $i under load: $out"
	worst=$($PY -c "print(max($worst, $secs))")
	n=$(grep -F "$series" "$T/ms" | grep 'destination_service_name="details"' |
		grep 'response_code="200"' | awk '{s += $NF} END {print s + 0}')
	[ "$n" -ge "$prev" ] || fail "istio_requests_total went back: $prev then $n"
	prev=$n
	sleep 0.1
done
for p in "${LOAD[@]}"; do wait "$p" || fail "a load client failed: $(cat "$T"/load-*.json | head -5)"; done
grep -L '"statuses": {"200": 40}' "$T"/load-*.json | grep -q . && fail "not all 200: $(cat "$T"/load-*.json)"
in_ns curl -s --max-time 5 -o "$T/ms" "http://127.0.0.1:15020/stats/prometheus" || fail "scrape"
n=$(grep -F "$series" "$T/ms" | grep 'destination_service_name="details"' | grep 'response_code="200"' |
	awk '{s += $NF} END {print s + 0}')
c=$(grep -F 'istio_request_duration_milliseconds_count{reporter="waypoint",source_workload="productpage-v1"' "$T/ms" |
	grep 'destination_service_name="details"' | grep 'response_code="200"' | awk '{s += $NF} END {print s + 0}')
[ "$n" = 403 ] && [ "$c" = 403 ] || fail "after 10 x 40 requests: istio_requests_total $n, _count $c (expected 403)"
/usr/bin/python3 -c "import sys; sys.exit(not $worst < 1.0)" || fail "slowest scrape under load $worst s"
pass "10 clients x 40 requests with 20 scrapes meanwhile (2 workers): slowest scrape $worst s, the count never went back and ends at 3 + 400 = 403 (requests and duration _count)"
