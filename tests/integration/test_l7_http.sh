#!/usr/bin/env bash
# Issue 6, acceptance 1, 2 (split, mirror, timeouts) and 4, end to end: HTTP/1.1 inside HBONE
# tunnels through waypointd's L7 proxy (dp/l7/h1proxy.c wired in
# dp/tunnel/l7_glue.c).
#   - manifests: conf/cluster (bookinfo-like: productpage, details, ratings,
#     reviews v1/v2/v3; the namespace waypoint, reviews-svc-waypoint on
#     reviews, the workload waypoint on reviews-v2), with the namespace not
#     ambient (backends are plain HTTP servers, so upstreams are plaintext),
#     plus services reviews-v1/reviews-v2 and an HTTPRoute sending reviews
#     80/20 to them;
#   - each pod's backend (tests/integration/l7_backend.py) answers with its
#     own name and logs every request it receives;
#   - requests to each service VIP reach that service's backend; the 80/20
#     split lands within +-3 % over N requests (default 10000, as the issue asks); a destination
#     not enrolled gets 400 from the HBONE layer; malformed and smuggling
#     requests get 400/431 and an ended stream, and nothing reaches the
#     backend;
#   - h2c with prior knowledge on productpage's `http` port (Envoy's codec
#     auto-detection): h2load and curl --http2-prior-knowledge get their
#     answers, the backend sees HTTP/1.1 (content-length or chunked), and
#     HTTP/1.1 clients of the same port are served as before.
. "$(dirname "$0")/lib.sh"
N=${L7_SPLIT_N:-10000}
l7_setup l7
# ratings-v1 alone is in the mesh (pod label), with the identity of the test
# HBONE destination: the waypoint reaches it by HBONE originate, dest.py
# forwards to its plain backend
$PY - "$MAN/20-bookinfo.yaml" <<'PY'
import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
for d in docs:
    if d and d["kind"] == "Pod" and d["metadata"]["name"] == "ratings-v1":
        d["metadata"]["labels"]["istio.io/dataplane-mode"] = "ambient"
        d["spec"]["serviceAccountName"] = "dest"
yaml.safe_dump_all(docs, open(sys.argv[1], "w"))
PY
cat >"$MAN/30-reviews-split.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: reviews-v1
  namespace: default
spec:
  clusterIP: 198.19.0.21
  selector:
    app: reviews
    version: v1
  ports:
  - name: http
    port: 9080
---
apiVersion: v1
kind: Service
metadata:
  name: reviews-v2
  namespace: default
spec:
  clusterIP: 198.19.0.22
  selector:
    app: reviews
    version: v2
  ports:
  - name: http
    port: 9080
---
apiVersion: v1
kind: Service
metadata:
  name: reviews-all
  namespace: default
spec:
  clusterIP: 198.19.0.23
  selector:
    app: reviews
  ports:
  - name: http
    port: 9080
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  clusterIP: 198.19.0.30
  selector:
    app: details
  ports:
  - name: web
    port: 9080
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
  - name: raw
    port: 7000
---
apiVersion: v1
kind: Pod
metadata:
  name: echo-1
  namespace: default
  labels:
    app: echo
spec:
  nodeName: node-1
status:
  phase: Running
  podIP: 198.18.1.30
  podIPs:
  - ip: 198.18.1.30
  conditions:
  - type: Ready
    status: "True"
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews
  namespace: default
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: reviews
    port: 9080
  rules:
  - backendRefs:
    - name: reviews-v1
      port: 9080
      weight: 80
    - name: reviews-v2
      port: 9080
      weight: 20
---
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
    - path: {type: PathPrefix, value: /mirror}
    filters:
    - type: RequestMirror
      requestMirror:
        backendRef: {name: reviews-v1, port: 9080}
    backendRefs:
    - name: shop
      port: 9080
  - matches:
    - path: {type: PathPrefix, value: /sleep}
    timeouts: {request: 400ms}
    backendRefs:
    - name: shop
      port: 9080
  - backendRefs:
    - name: shop
      port: 9080
YAML

tb_up "$(tb_name)" --manifests "$MAN" --certs "$PKI" --set cluster.gateway_class=istio-waypoint

# backends: name version pod-ip
while read -r name ver ip; do
	# (ip netns exec directly, not in_ns: $! must be the backend itself)
	ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/l7_backend.py" --bind "$ip:9080" --name "$name" \
		--version "$ver" >"$T/$name.log" 2>"$T/$name.err" &
	PIDS+=($!)
	[ "$name" = reviews-v3 ] && V3_PID=$!
	disown $! # no "Killed" notice when the testbed goes down
done <<'EOF2'
productpage v1 198.18.1.10
details v1 198.18.1.11
ratings v1 198.18.1.12
reviews-v1 v1 198.18.1.13
reviews-v2 v2 198.18.1.14
reviews-v3 v3 198.18.1.15
EOF2
in_ns $PY "$ROOT/tests/hbone/dest.py" --listen 198.18.1.12:15008 --certs "$PKI" --identity dest \
	--forward 198.18.1.12:9080 >"$T/dest.log" 2>&1 &
PIDS+=($!)
for f in productpage details ratings reviews-v1 reviews-v2 reviews-v3 dest; do
	for _ in $(seq 50); do grep -q listening "$T/$f.log" 2>/dev/null && break; sleep 0.1; done
	grep -q listening "$T/$f.log" || fail "backend $f did not start: $(cat "$T/$f.log")"
done

for _ in $(seq 100); do
	in_ns $CLIENT --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.11:9080 \
		--expect-status 200 --timeout 5 >/dev/null 2>&1 && break
	sleep 0.2
done

# the proxy's non-zero counters, for failure messages
l7_stats() { "$WPCTL" stats --prefix "$WP_PREFIX" 2>/dev/null | grep -E '^(l7_|tunnel_|http1_)' | awk '$2 != 0 {printf "%s=%s ", $1, $2}'; }

# 1. every service VIP reaches its own backend (3 keep-alive requests each)
for pair in productpage:198.19.0.10 details:198.19.0.11 ratings:198.19.0.12; do
	svc=${pair%%:*}
	vip=${pair#*:}
	out=$(l7 get --authority "$vip:9080" --host "$svc:9080" --path "/$svc" --n 3) ||
		fail "$svc: $out"
	grep -q "\"backends\": {\"$svc\": 3}" <<<"$out" || fail "$svc: $out"
	grep -q '"statuses": {"200": 3}' <<<"$out" || fail "$svc statuses: $out"
done
# (dest.py logs a tunnel when it ends; the waypoint keeps it as an idle
# keep-alive upstream, so count on the waypoint's side)
[ "$(stat tunnel_hbone)" -ge 1 ] && [ "$(stat tunnel_originate_conn)" -ge 1 ] ||
	fail "ratings (ambient pod) not reached by HBONE originate: tunnel_hbone $(stat tunnel_hbone)"
pass "productpage, details (plaintext upstream), ratings (HBONE originate to the ambient pod): HTTP/1.1 through the HBONE tunnel reaches each service's own backend"
grep -q '"x-request-id"' "$T/details.log" || grep -qi 'x-request-id' "$T/details.log" ||
	fail "no x-request-id added: $(tail -1 "$T/details.log")"

# 2. reviews: the HTTPRoute's 80/20 split over N requests (over 4 streams)
v1=0
v2=0
other=0
per=$((N / 4))
for s in 1 2 3 4; do
	out=$(l7 get --authority 198.19.0.13:9080 --host reviews:9080 --path /reviews --n $per \
		--timeout 120) || fail "reviews split: $out"
	# the parser's status is checked: no stale a, b, c from the last stream
	counts=$(echo "$out" | $PY -c '
import json, sys
d = json.load(sys.stdin)["backends"]
print(d.get("reviews-v1", 0), d.get("reviews-v2", 0),
      sum(v for k, v in d.items() if k not in ("reviews-v1", "reviews-v2")))') ||
		fail "reviews split: unreadable client output: $out"
	read -r a b c <<<"$counts"
	v1=$((v1 + a))
	v2=$((v2 + b))
	other=$((other + c))
done
total=$((v1 + v2 + other))
[ "$other" = 0 ] || fail "reviews: $other requests went elsewhere (v1 $v1, v2 $v2)"
[ "$total" = $((per * 4)) ] || fail "reviews: $total responses for $((per * 4)) requests"
# within +-3 percentage points of 80 %
pct=$((v1 * 1000 / total))
[ $pct -ge 770 ] && [ $pct -le 830 ] || fail "80/20 split off: v1 $v1 v2 $v2 (${pct} per mille)"
pass "reviews HTTPRoute 80/20: v1 $v1 / v2 $v2 of $total (v1 ${pct} per mille)"

# 2a. the route changes under an open keep-alive connection: the HTTPRoute
# now sends everything to v2; the same stream's next requests follow it
l7 get --authority 198.19.0.13:9080 --host reviews:9080 --path /live --n 100 --pause-after 50 \
	--pause-file "$T/go" >"$T/live.out" 2>&1 &
LIVE=$!
for _ in $(seq 100); do [ -e "$T/go.paused" ] && break; sleep 0.1; done
[ -e "$T/go.paused" ] || fail "live client did not pause: $(cat "$T/live.out")"
sed -i 's/weight: 80/weight: 0/' "$MAN/30-reviews-split.yaml"
sleep 1.5 # inotify -> resolve -> publish
touch "$T/go"
wait $LIVE || fail "live client: $(cat "$T/live.out")"
out=$(cat "$T/live.out")
grep -q '"after": {"reviews-v2": 50}' <<<"$out" || fail "route change not followed on the open stream: $out"
grep -q '"reviews-v1"' <<<"$out" || fail "no v1 before the change: $out"
sed -i 's/weight: 0/weight: 80/' "$MAN/30-reviews-split.yaml"
sleep 1.5
pass "HTTPRoute changed under an open keep-alive stream: the next requests follow it ($out)"

# 2b. the reviews-v2 pod, enrolled to its --for workload waypoint, addressed
# by pod IP: a workload destination (L4 splice) reaches that pod
out=$(l7 get --authority 198.18.1.14:9080 --host reviews:9080 --path /pod --n 3) ||
	fail "reviews-v2 pod: $out"
grep -q '"backends": {"reviews-v2": 3}' <<<"$out" || fail "reviews-v2 pod: $out"
pass "reviews-v2 pod (workload waypoint) by pod IP: reaches reviews-v2"

# 2c. connect failures are retried on another endpoint (Istio's default
# policy): reviews-all has the three reviews pods; reviews-v3's backend is
# stopped, so its picks are refused and retried
kill "$V3_PID"
sleep 0.3
out=$(l7 get --authority 198.19.0.23:9080 --host reviews-all:9080 --path /all --n 60) ||
	fail "reviews-all: $out; $(l7_stats)"
grep -q '"statuses": {"200": 60}' <<<"$out" || fail "reviews-all with one endpoint down: $out"
grep -q 'reviews-v3' <<<"$out" && fail "reviews-v3 answered after being stopped: $out"
[ "$(stat l7_h1p_retry)" -ge 1 ] || fail "no retry counted"
pass "one endpoint refusing: 60/60 requests answered 200 by the others ($(stat l7_h1p_retry) connect-failure retries): $out"

# 2d. ports whose protocol is unknown (names "web", "raw"): the first bytes
# decide. HTTP/1.x is proxied at L7; anything else stays an L4 splice.
in_ns $TCPCHECK server 7000 >"$T/echo.log" 2>&1 &
PIDS+=($!)
sleep 0.3
out=$(l7 get --authority 198.19.0.30:9080 --host web:9080 --path /sniffed --n 5) || fail "web: $out"
grep -q '"backends": {"details": 5}' <<<"$out" || fail "web (sniffed): $out"
[ "$(stat l7_sniff_http)" -ge 1 ] || fail "web not sniffed as HTTP: $(l7_stats)"
in_ns $CLIENT --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.31:7000 --tunnels 4 \
	--bytes 262144 --timeout 30 >"$T/echo.out" 2>&1 || fail "opaque echo: $(cat "$T/echo.out")"
[ "$(stat l7_sniff_opaque)" -ge 4 ] || fail "echo not kept at L4: $(l7_stats)"
pass "unknown protocol: HTTP/1.x sniffed and routed at L7 ($(stat l7_sniff_http)), opaque bytes kept at L4 ($(stat l7_sniff_opaque) tunnels echoed)"

# 2e. RequestMirror and timeouts (HTTPRoute "shop" on the details pod):
# /mirror/* is copied to reviews-v1 with the shadow host and the same
# x-request-id, the client sees only details' answers; /sleep/* has
# timeouts.request 400ms: a backend taking 2 s gets 504, one taking 50 ms
# is answered
out=$(l7 get --authority 198.19.0.32:9080 --host shop:9080 --path /mirror/m --n 20) ||
	fail "shop mirror: $out"
grep -q '"backends": {"details": 20}' <<<"$out" || fail "mirrored requests answered by: $out"
for _ in $(seq 50); do
	[ "$(grep -c '"/mirror/m' "$T/reviews-v1.log")" -ge 20 ] && break
	sleep 0.1
done
$PY - "$T/reviews-v1.log" "$T/details.log" <<'PY' || fail "mirror copies: $(l7_stats)"
import json, sys
mir = [json.loads(l) for l in open(sys.argv[1]) if '"/mirror/m' in l]
orig = [json.loads(l) for l in open(sys.argv[2]) if '"/mirror/m' in l]
assert len(mir) == 20 and len(orig) == 20, (len(mir), len(orig))
hosts = {m["headers"].get("host") or m["headers"].get("Host") for m in mir}
assert hosts == {"shop-shadow:9080"}, hosts
rid = lambda r: {k.lower(): v for k, v in r["headers"].items()}["x-request-id"]
assert {rid(m) for m in mir} == {rid(o) for o in orig}, "request ids differ"
PY
[ "$(stat l7_h1p_mirror)" -ge 20 ] || fail "l7_h1p_mirror $(stat l7_h1p_mirror)"
pass "RequestMirror: 20/20 requests answered by details, copied to reviews-v1 as shop-shadow:9080 with the same x-request-id"
out=$(l7 get --authority 198.19.0.32:9080 --host shop:9080 --path /sleep/2000/x --n 1) ||
	fail "shop timeout: $out"
grep -q '"statuses": {"504": 1}' <<<"$out" || fail "slow backend not answered 504: $out"
[ "$(stat l7_h1p_timeout)" = 1 ] || fail "l7_h1p_timeout $(stat l7_h1p_timeout)"
out=$(l7 get --authority 198.19.0.32:9080 --host shop:9080 --path /sleep/50/x --n 3) ||
	fail "shop fast: $out"
grep -q '"statuses": {"200": 3}' <<<"$out" || fail "fast backend within the timeout: $out"
pass "HTTPRoute timeouts.request 400ms: a 2 s backend answered 504, 50 ms ones 200"

# 3. a destination not enrolled here: 400 from the HBONE layer
in_ns $CLIENT --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.9.9:80 \
	--expect-status 400 --timeout 10 >/dev/null || fail "uncaptured destination not refused with 400"
pass "destination not enrolled: CONNECT answered 400"

# 4. malformed and smuggling requests: 400/431, stream ended, backend untouched
before=$(grep -c '"method"' "$T/details.log")
bad() { # expected-status data
	local out
	out=$(l7 raw --authority 198.19.0.11:9080 --data "$2") || fail "raw: $out"
	grep -q "\"rx\": \"HTTP/1.1 $1 " <<<"$out" || fail "expected $1 for $2: $out"
	grep -q '"ended": true' <<<"$out" || fail "stream not ended after $1: $out"
}
bad 400 'POST / HTTP/1.1\r\nHost: details\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
bad 400 'POST / HTTP/1.1\r\nHost: details\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef'
bad 400 'POST / HTTP/1.1\r\nHost: details\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'
bad 400 'GET / HTTP/1.1\r\nHost: details\r\nX: a\r\n  folded\r\n\r\n'
bad 400 'GET / HTTP/1.1\r\n\r\n'
bad 400 'GARBAGE\r\n\r\n'
bad 431 "GET /$(head -c 9000 /dev/zero | tr '\0' a) HTTP/1.1\r\nHost: details\r\n\r\n"
sleep 0.5
after=$(grep -c '"method"' "$T/details.log")
[ "$before" = "$after" ] || fail "malformed requests reached the backend: $(tail -n +$((before + 1)) "$T/details.log")"
pass "malformed/smuggling requests: 400/431, stream ended, nothing reached the backend"

# 5. curl through a local HBONE forwarder (what ztunnel does for a client pod)
in_ns $PY "$ROOT/tests/integration/hbone_fwd.py" --listen 127.0.0.1:15001 --addr "$WP_IP:15008" \
	--certs "$PKI" --authority 198.19.0.10:9080 >"$T/fwd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do grep -q listening "$T/fwd.log" 2>/dev/null && break; sleep 0.1; done
URL=http://127.0.0.1:15001
CURL="curl -sS --max-time 30 -H Host:productpage:9080"
out=$(in_ns $CURL "$URL/a" "$URL/b") || fail "curl: $out $(cat "$T/fwd.log")"
[ "$(echo "$out" | grep -c '^productpage v1 GET /[ab] 0 ')" = 2 ] || fail "curl keep-alive: $out"
head -c 1048576 /dev/urandom >"$T/body"
sum=$(sha256sum "$T/body" | cut -d' ' -f1)
out=$(in_ns $CURL -H 'Transfer-Encoding: chunked' --data-binary @"$T/body" "$URL/up") ||
	fail "curl chunked POST: $out"
[ "$out" = "productpage v1 POST /up 1048576 $sum" ] || fail "chunked 1 MiB POST: $out"
out=$(in_ns $CURL -H 'Expect: 100-continue' --data-binary @"$T/body" "$URL/put") ||
	fail "curl 100-continue: $out"
[ "$out" = "productpage v1 POST /put 1048576 $sum" ] || fail "100-continue POST: $out"
out=$(in_ns $CURL -0 "$URL/old") || fail "curl HTTP/1.0: $out"
grep -q '^productpage v1 GET /old 0 ' <<<"$out" || fail "HTTP/1.0: $out"
want=$($PY -c 'import hashlib; print(hashlib.sha256((b"0123456789abcdef" * 1000000)[:8000000]).hexdigest())')
got=$(in_ns $CURL "$URL/big/8000000" | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "8 MB response: sha256 $got, expected $want"
pass "curl through a local HBONE forwarder: keep-alive GETs, 1 MiB chunked POST and 100-continue POST, 8 MB response (SHA-256 verified), HTTP/1.0"

# 5b. h2c with prior knowledge on the same `http` port (Envoy's codec
# auto-detection): the waypoint proxies it with its h2c proxy and speaks
# HTTP/1.1 (the port's protocol) to the backend
AUTH="-H :authority:productpage:9080"
out=$(in_ns timeout 120 h2load -n 2000 -c 4 -m 10 $AUTH "$URL/h2load" 2>&1) ||
	fail "h2load on an http port: $out; $(l7_stats)"
grep -q 'requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed' <<<"$out" ||
	fail "h2load on an http port: not all succeeded: $out; $(l7_stats)"
grep -q 'status codes: 2000 2xx' <<<"$out" || fail "h2load on an http port: not all 2xx: $out"
grep -q 'Application protocol: h2c' <<<"$out" || fail "h2load did not speak h2c: $out"
[ "$(stat l7_tunnel_h2_on_http)" -ge 4 ] || fail "l7_tunnel_h2_on_http: $(l7_stats)"
[ "$(stat l7_h2p_up_h1_reuse)" -ge 1000 ] || fail "HTTP/1.1 upstreams not kept alive: $(l7_stats)"
[ "$(grep -c '"path": "/h2load", "version": "HTTP/1.1"' "$T/productpage.log")" -ge 2000 ] ||
	fail "productpage did not see 2000 HTTP/1.1 requests: $(grep -c /h2load "$T/productpage.log")"
H2CURL="curl -sS --max-time 30 --http2-prior-knowledge -H Host:productpage:9080"
out=$(in_ns $H2CURL -w ' %{http_version}' --data-binary @"$T/body" "$URL/h2post") ||
	fail "curl --http2-prior-knowledge POST: $out; $(l7_stats)"
[ "$out" = "productpage v1 POST /h2post 1048576 $sum
 2" ] || fail "h2c POST (content-length): $out"
line=$(grep '"path": "/h2post"' "$T/productpage.log")
grep -q '"version": "HTTP/1.1"' <<<"$line" || fail "h2c POST did not reach the backend as HTTP/1.1: $line"
grep -q '"body_len": 1048576' <<<"$line" || fail "h2c POST body: $line"
grep -qi '"content-length": "1048576"' <<<"$line" || fail "h2c POST content-length: $line"
# no content-length (a body of unknown size from stdin): chunked upstream
out=$(in_ns bash -c "cat '$T/body' | $H2CURL -T - '$URL/h2chunked'") ||
	fail "curl --http2-prior-knowledge upload from stdin: $out; $(l7_stats)"
[ "$out" = "productpage v1 PUT /h2chunked 1048576 $sum" ] || fail "h2c PUT (no length): $out"
line=$(grep '"path": "/h2chunked"' "$T/productpage.log")
grep -qi '"transfer-encoding": "chunked"' <<<"$line" || fail "h2c PUT without length not chunked: $line"
grep -q '"version": "HTTP/1.1"' <<<"$line" || fail "h2c chunked PUT: $line"
got=$(in_ns $H2CURL "$URL/big/8000000" | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "h2c 8 MB response: sha256 $got, expected $want"
# HTTP/1.1 clients on the same port: unchanged
out=$(in_ns $CURL "$URL/again") || fail "curl HTTP/1.1 after h2c: $out"
grep -q '^productpage v1 GET /again 0 ' <<<"$out" || fail "HTTP/1.1 after h2c: $out"
pass "h2c (prior knowledge) on an http port, HTTP/1.1 to the backend: h2load -n 2000 -c 4 -m 10 2000/2000 2xx ($(stat l7_tunnel_h2_on_http) tunnels, $(stat l7_h2p_up_h1_conn) upstream connections, $(stat l7_h2p_up_h1_reuse) reuses); 1 MiB POST (content-length) and PUT (no length: chunked upstream) and an 8 MB response SHA-256 verified; HTTP/1.1 curl on the same port still served"

# 6. the proxy's counters
[ "$(stat l7_tunnel_http)" -ge 10 ] || fail "l7_tunnel_http: $(stat l7_tunnel_http)"
[ "$(stat l7_h1p_request)" -ge $((9 + per * 4)) ] || fail "l7_h1p_request: $(stat l7_h1p_request)"
[ "$(stat l7_h1p_up_reused)" -ge 1 ] || fail "no upstream connection reused"
pass "counters: l7_tunnel_http $(stat l7_tunnel_http), l7_h1p_request $(stat l7_h1p_request), up_new $(stat l7_h1p_up_new), up_reused $(stat l7_h1p_up_reused)"

# 6b. SIGTERM with idle pooled upstreams and keep-alive client tunnels: the
# drain closes the pool and ends idle sessions at once, and waypointd exits 0.
# "At once": no wait for any timeout. The main thread notices the signal
# within one 20 ms poll, then polls the workers every 20 ms until nothing is
# open; the workers close the idle pool and sessions at once and end each
# HBONE connection with a GOAWAY: an exchange of a few packets with local
# peers. Measured 85-440 ms from SIGTERM to the "drained (0" line on a
# 2-core machine at load average 14. The bound, 1.5 s, leaves room for such
# a machine and an ASan build, and is far from hbone.drain_timeout_ms
# (10 s), which a drain that waited on a tunnel would reach. Tearing down
# (worker joins, EAL clean-up) is not the drain: it only has to end. The
# client holds its tunnel idle after one answered request (--n 2
# --pause-after 1, and the go file never comes; with --n 1 it never paused).
sleep 0.3
in_ns $L7 get --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.11:9080 --host details:9080 \
	--path /held --n 2 --pause-after 1 --pause-file "$T/never" >/dev/null 2>&1 &
for _ in $(seq 100); do [ -e "$T/never.paused" ] && break; sleep 0.1; done
[ -e "$T/never.paused" ] || fail "the keep-alive client did not pause"
grep -q "drained" "$WP_LOG" && fail "drained before SIGTERM: $(grep drained "$WP_LOG")"
start=$(date +%s%N)
kill -TERM "$WP_PID"
for _ in $(seq 500); do grep -q "drained" "$WP_LOG" && break; sleep 0.01; done
drain_ms=$((($(date +%s%N) - start) / 1000000))
grep -q "drained (0 " "$WP_LOG" || fail "drain left tunnels after $drain_ms ms: $(grep drained "$WP_LOG")"
[ "$drain_ms" -le 1500 ] || fail "drain took $drain_ms ms, not at once (bound 1500 ms)"
for _ in $(seq 200); do kill -0 "$WP_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$WP_PID" 2>/dev/null && fail "waypointd still running 10 s after SIGTERM: $(tail -3 "$WP_LOG")"
ms=$((($(date +%s%N) - start) / 1000000))
for _ in $(seq 20); do [ -s "$WP_RC_FILE" ] && break; sleep 0.05; done
[ "$(cat "$WP_RC_FILE" 2>/dev/null)" = 0 ] || fail "exit status '$(cat "$WP_RC_FILE" 2>/dev/null)'"
pass "SIGTERM with pooled upstreams and an idle keep-alive tunnel: drained in $drain_ms ms, exit 0 after $ms ms"

# 7. more HTTP tunnels than proxy sessions (l7.max_sessions=2): the two
# beyond are refused 503, never served at L4 (where the port's routes and
# HTTP policies would not apply); once the others end, a new one is served
"$TESTBED" down "$(tb_name)"
tb_up "$(tb_name)b" --manifests "$MAN" --certs "$PKI" --set cluster.gateway_class=istio-waypoint \
	--set l7.max_sessions=2
ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/l7_backend.py" --bind 198.18.1.11:9080 \
	--name details >"$T/details2.log" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 50); do grep -q listening "$T/details2.log" 2>/dev/null && break; sleep 0.1; done
JP=()
# each client pauses half way (its tunnel held) until all are decided
for k in 1 2 3 4; do
	l7 get --authority 198.19.0.11:9080 --host details:9080 --path /x --n 300 \
		--pause-after 150 --pause-file "$T/hold$k" >"$T/par$k.out" 2>&1 &
	JP+=($!)
done
np=0 nr=0
for _ in $(seq 600); do
	np=$(find "$T" -maxdepth 1 -name 'hold*.paused' | wc -l)
	nr=$({ grep -l "CONNECT status 503" "$T"/par*.out 2>/dev/null || true; } | wc -l)
	[ "$np" = 2 ] && [ "$nr" = 2 ] && break
	sleep 0.1
done
# while both sessions are held: a tunnel to the sniffed port "web" whose
# first bytes are HTTP is reset, not spliced at L4
sniff=$(l7 get --authority 198.19.0.30:9080 --host web:9080 --path /sniffed --n 1 2>&1) &&
	fail "sniffed HTTP with no session free was served: $sniff"
touch "$T/hold1" "$T/hold2" "$T/hold3" "$T/hold4"
for p in "${JP[@]}"; do wait "$p" || true; done
[ "$np" = 2 ] && [ "$nr" = 2 ] || fail "4 tunnels, 2 sessions: $np held, $nr refused: $(cat "$T"/par*.out)"
grep -q "reset" <<<"$sniff" || fail "sniffed HTTP with no session free: $sniff"
[ "$({ grep -l '"statuses": {"200": 300}' "$T"/par*.out || true; } | wc -l)" = 2 ] ||
	fail "the two served tunnels: $(cat "$T"/par*.out)"
[ "$(stat l7_tunnel_no_session)" = 3 ] && [ "$(stat l7_tunnel_http)" = 2 ] &&
	[ "$(stat l7_sniff_http)" = 0 ] ||
	fail "counters: $(l7_stats)"
out=$(l7 get --authority 198.19.0.11:9080 --host details:9080 --path /x --n 5) ||
	fail "a tunnel after the others ended: $out"
echo "$out" | grep -q '"statuses": {"200": 5}' || fail "a tunnel after the others ended: $out"
pass "4 HTTP tunnels at once with l7.max_sessions=2: 2 proxied (600/600 answered), 2 refused 503, a sniffed HTTP tunnel reset (l7_tunnel_no_session 3), none at L4; the next one served"
