#!/usr/bin/env bash
# Issue 14, acceptance 2 (the configuration part): the access log, as
# access_log.file / access_log.encoding turn it on (meshConfig.accessLogFile
# / accessLogEncoding for Istio's proxies). Twice, TEXT then JSON, on a
# fresh waypoint each:
#   - HTTP/1.1 to details (2 keep-alive requests, no x-request-id: the
#     waypoint's own), 404 from an HTTPRoute without a matching rule, and a
#     gRPC call over h2c (tests/integration/hbone_fwd.py): exactly one line
#     per request, in Istio's default text format (parsed with its regex) or
#     its JSON keys, with the method, path, protocol, status, response flags,
#     bytes received and sent (the client's own counts), duration, user
#     agent, request id (the one the backend received), authority, upstream
#     host and cluster, downstream local (the CONNECT target) and remote
#     (Forwarded for=) addresses;
#   - an opaque TCP connection (a port named tcp-echo, 3000 bytes echoed):
#     one line, "- - -" as Envoy logs TCP, the bytes both ways, the
#     endpoint and cluster;
#   - TEXT: the file moved away and SIGUSR1: the next line goes to a new file
#     at the configured path (logrotate).
. "$(dirname "$0")/lib.sh"
l7_setup alog
GRPC="$PY $ROOT/tests/integration/l7_h2_grpc.py"
cat >"$MAN/30-alog.yaml" <<'YAML'
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
  name: echo
  namespace: default
spec:
  clusterIP: 198.19.0.31
  selector:
    app: echo
  ports:
  - name: tcp-echo
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
YAML


# run ENCODING: a waypoint logging in ENCODING, the mix, the lines checked
run() {
	local enc=$1 log=$T/access-$1.log name
	name="$(tb_name | cut -c1-24)-$enc"
	tb_up "$name" --manifests "$MAN" --certs "$PKI" --set cluster.gateway_class=istio-waypoint \
		--set "access_log.file=$log" --set "access_log.encoding=$enc"
	ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/l7_backend.py" --bind 198.18.1.11:9080 \
		--name details --version v1 >"$T/details-$enc.log" 2>&1 &
	PIDS+=($!)
	disown $!
	ip netns exec "$WP_NETNS" $GRPC server --bind 198.18.1.41:50051 >"$T/grpc-$enc.log" 2>&1 &
	PIDS+=($!)
	disown $!
	ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/hbone_fwd.py" --listen 127.0.0.1:15102 \
		--addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.41:50051 >"$T/fwd-$enc.log" 2>&1 &
	PIDS+=($!)
	disown $!
	ip netns exec "$WP_NETNS" $PY -c '
import socket, threading
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
' >"$T/echo-$enc.log" 2>&1 &
	PIDS+=($!)
	disown $!
	for f in details-$enc grpc-$enc fwd-$enc echo-$enc; do
		for _ in $(seq 100); do grep -q listening "$T/$f.log" 2>/dev/null && break; sleep 0.1; done
		grep -q listening "$T/$f.log" || fail "$f did not start: $(cat "$T/$f.log")"
	done
	for _ in $(seq 100); do
		in_ns $CLIENT --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.11:9080 \
			--expect-status 200 --timeout 5 >/dev/null 2>&1 && break
		sleep 0.2
	done
	[ ! -s "$log" ] || fail "$enc: lines before any request: $(cat "$log")"
	l7 get --authority 198.19.0.11:9080 --host details:9080 --path /details/x --n 2 >"$T/ok.json" ||
		fail "details: $(cat "$T/ok.json")"
	l7 get --authority 198.19.0.32:9080 --host shop:9080 --path /nope --n 1 >"$T/404.json" ||
		fail "shop: $(cat "$T/404.json")"
	out=$(in_ns timeout 60 $GRPC count --target 127.0.0.1:15102 --k 3) || fail "gRPC: $out"
	in_ns $PY - "$ROOT" "$WP_IP" "$PKI" <<'PY' || fail "TCP echo through the waypoint"
import os, sys
sys.path.insert(0, os.path.join(sys.argv[1], "tests", "hbone"))
from client import HboneClient
pki = sys.argv[3]
c = HboneClient(sys.argv[2], 15008, pki + "/productpage.pem", pki + "/productpage-key.pem",
                pki + "/ca.pem")
sid = c.open("198.19.0.31:7000")
st = c.streams[sid]
assert c.run_until(lambda: st.status is not None) and st.status == 200, st.status
c.send(sid, b"x" * 3000)
assert c.run_until(lambda: len(st.rx) >= 3000), len(st.rx)
c.send(sid, b"", end=True)
c.run_until(lambda: st.ended or st.reset is not None, timeout=5)
c.close()
PY
	for _ in $(seq 50); do [ "$(wc -l <"$log")" -ge 5 ] && break; sleep 0.1; done
	sleep 0.3 # (no fifth line may come)
	$PY - "$enc" "$log" "$T/ok.json" "$T/404.json" "$T/details-$enc.log" <<'PY' || fail "$enc lines: $(cat "$log")"
import json, re, sys
enc, log, ok, nf, backend = sys.argv[1:6]
lines = open(log).read().splitlines()
if len(lines) != 5:
    sys.exit(f"{len(lines)} lines, expected 5")
TEXT = re.compile(
    r'^\[(?P<start_time>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) (?P<protocol>[^"]+)" '
    r'(?P<response_code>\d+) (?P<response_flags>\S+) (?P<details>\S+) (?P<term>\S+) '
    r'"(?P<failure>[^"]*)" (?P<bytes_received>\d+) (?P<bytes_sent>\d+) (?P<duration>\d+) '
    r'(?P<upstream_service_time>\S+) "(?P<x_forwarded_for>[^"]*)" "(?P<user_agent>[^"]*)" '
    r'"(?P<request_id>[^"]*)" "(?P<authority>[^"]*)" "(?P<upstream_host>[^"]*)" '
    r'(?P<upstream_cluster>\S+) (?P<upstream_local_address>\S+) (?P<downstream_local_address>\S+) '
    r'(?P<downstream_remote_address>\S+) (?P<requested_server_name>\S+) (?P<route_name>\S+)$')
recs = []
for ln in lines:
    if enc == "JSON":
        d = json.loads(ln)
        d = {k: ("-" if v is None else str(v)) for k, v in d.items()}
    else:
        m = TEXT.match(ln)
        if not m:
            sys.exit(f"not Istio's text format: {ln}")
        d = m.groupdict()
    if not re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$', d["start_time"]):
        sys.exit(f"start_time {d['start_time']}")
    recs.append(d)
ok, nf = json.load(open(ok)), json.load(open(nf))
seen_ids = [json.loads(l)["headers"].get("x-request-id") for l in open(backend) if l.startswith('{"method"')]
det = [r for r in recs if r["authority"] == "details:9080"]
if len(det) != 2:
    sys.exit(f"details lines: {det}")
for r in det:
    want = dict(method="GET", path="/details/x", protocol="HTTP/1.1", response_code="200",
                response_flags="-", user_agent="l7_http", upstream_host="198.18.1.11:9080",
                upstream_cluster="outbound|9080||details.default.svc.cluster.local",
                downstream_local_address="198.19.0.11:9080", downstream_remote_address="10.244.0.9")
    for k, v in want.items():
        if r[k] != v:
            sys.exit(f"{k}: {r[k]!r}, expected {v!r}: {r}")
    if r["request_id"] not in seen_ids:
        sys.exit(f"request id {r['request_id']} not the backend's {seen_ids}")
    if not 0 <= int(r["duration"]) < 5000:
        sys.exit(f"duration {r['duration']}")
if sum(int(r["bytes_received"]) for r in det) != ok["bytes_sent"] or \
        sum(int(r["bytes_sent"]) for r in det) != ok["bytes_received"]:
    sys.exit(f"bytes: {det} against the client's {ok}")
(r,) = [r for r in recs if r["path"] == "/nope"]
for k, v in dict(method="GET", response_code="404", response_flags="NR", upstream_host="-",
                 upstream_cluster="-", authority="shop:9080").items():
    if r[k] != v:
        sys.exit(f"404 {k}: {r[k]!r}, expected {v!r}: {r}")
if int(r["bytes_received"]) != nf["bytes_sent"] or int(r["bytes_sent"]) != nf["bytes_received"]:
    sys.exit(f"404 bytes: {r} against {nf}")
(r,) = [r for r in recs if r["protocol"] == "HTTP/2"]
for k, v in dict(method="POST", path="/test.Echo/Count", response_code="200", response_flags="-",
                 upstream_host="198.18.1.41:50051",
                 upstream_cluster="outbound|50051||grpc.default.svc.cluster.local",
                 downstream_local_address="198.19.0.41:50051").items():
    if r[k] != v:
        sys.exit(f"gRPC {k}: {r[k]!r}, expected {v!r}: {r}")
if not re.match(r'^[0-9a-f-]{36}$', r["request_id"]):
    sys.exit(f"gRPC request id {r['request_id']}")
(r,) = [r for r in recs if r["method"] == "-"]
for k, v in dict(path="-", protocol="-", response_code="0", response_flags="-", bytes_received="3000",
                 bytes_sent="3000", upstream_host="198.18.1.30:7000",
                 upstream_cluster="outbound|7000||echo.default.svc.cluster.local",
                 downstream_local_address="198.19.0.31:7000", authority="-").items():
    if r[k] != v:
        sys.exit(f"TCP {k}: {r[k]!r}, expected {v!r}: {r}")
print(f"{enc}: 5 lines, fields as sent")
PY
	pass "access log $enc: one line per request (HTTP/1.1 200 x2, 404 NR, gRPC over h2c) and per opaque TCP connection, every field as the clients and the backend saw it"
	if [ "$enc" = TEXT ]; then
		mv "$log" "$log.1"
		kill -USR1 "$WP_PID"
		sleep 0.2
		l7 get --authority 198.19.0.11:9080 --host details:9080 --path /after --n 1 >"$T/after.json" ||
			fail "after rotation: $(cat "$T/after.json")"
		for _ in $(seq 50); do [ -s "$log" ] && break; sleep 0.1; done
		[ "$(wc -l <"$log")" = 1 ] && grep -q '"GET /after HTTP/1.1" 200 ' "$log" ||
			fail "after SIGUSR1: new file $(cat "$log" 2>&1)"
		[ "$(wc -l <"$log.1")" = 5 ] || fail "rotated file: $(cat "$log.1")"
		pass "SIGUSR1 reopens access_log.file: the rotated file keeps its 5 lines, the next line starts a new file"
	fi
	[ "$(stat access_log_dropped)" = 0 ] || fail "lines dropped: $(stat access_log_dropped)"
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	PIDS=()
	"$TESTBED" down "$name" || true
}

run TEXT
run JSON
