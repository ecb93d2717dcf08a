#!/usr/bin/env bash
# Issue 6, acceptance 3 (h2c and gRPC), end to end: HTTP/2 with prior
# knowledge inside HBONE tunnels through waypointd's h2 proxy
# (dp/l7/h2proxy.c wired in dp/tunnel/l7_h2_glue.c).
#   - manifests written here: a namespace enrolled to its waypoint (not
#     ambient: upstreams are plaintext h2c), Services h2web (port name
#     http2, two nghttpd --no-tls pods), grpc (port name grpc, one grpcio
#     server pod, tests/integration/l7_h2_grpc.py), grpc-mesh (the same on
#     an ambient pod, reached by HBONE originate through tests/hbone/dest.py),
#     grpc-none (grpc port, no endpoints) and h2sniff (port name "web": protocol unknown, sniffed
#     by the HTTP/2 preface);
#   - clients reach the waypoint through a local HBONE forwarder
#     (tests/integration/hbone_fwd.py), as ztunnel would carry them:
#     (a) h2load -n 5000 -c 4 -m 10 (h2c prior knowledge): every request
#         2xx, the proxy's counters moved, upstream streams multiplexed;
#     (b) gRPC bidi and server-streaming calls: messages in order, trailing
#         metadata and a non-OK status with its details intact; also to the
#         ambient pod (the h2c upstream inside an originated HBONE tunnel);
#     (c) a gRPC call to a service without endpoints: UNAVAILABLE from the
#         waypoint (trailers-only answer);
#     (d) the sniffed port: h2load again, l7_sniff_h2 counted.
. "$(dirname "$0")/lib.sh"
T=$(mktemp -d /tmp/wp-l7h2.XXXXXX)
PKI=$T/pki
MAN=$T/manifests
PY=/usr/bin/python3
GRPC="$PY $ROOT/tests/integration/l7_h2_grpc.py"
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	tb_cleanup
	rm -rf "$T"
}
trap cleanup EXIT

"$ROOT/tests/pki/mkpki.sh" "$PKI" >/dev/null 2>&1 || fail "mkpki.sh failed"
mkdir -p "$MAN" "$T/htdocs"
head -c 1024 /dev/urandom >"$T/htdocs/index.html"
cat >"$MAN/00-h2.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels:
    istio.io/use-waypoint: waypoint
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: istio-waypoint
spec:
  controllerName: istio.io/mesh-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: default
spec:
  gatewayClassName: istio-waypoint
  listeners:
  - name: mesh
    port: 15008
    protocol: HBONE
---
apiVersion: v1
kind: Service
metadata:
  name: h2web
  namespace: default
spec:
  clusterIP: 198.19.0.40
  selector:
    app: h2web
  ports:
  - name: http2-web
    port: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: h2sniff
  namespace: default
spec:
  clusterIP: 198.19.0.43
  selector:
    app: h2web
  ports:
  - name: web
    port: 8080
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
YAML
cat >>"$MAN/00-h2.yaml" <<'YAML'
---
apiVersion: v1
kind: Service
metadata:
  name: grpc-mesh
  namespace: default
spec:
  clusterIP: 198.19.0.44
  selector:
    app: grpc-mesh
  ports:
  - name: grpc
    port: 50051
---
apiVersion: v1
kind: Pod
metadata:
  name: grpc-mesh-1
  namespace: default
  labels:
    app: grpc-mesh
    istio.io/dataplane-mode: ambient
spec:
  nodeName: node-1
  serviceAccountName: dest
status:
  phase: Running
  podIP: 198.18.1.44
  podIPs:
  - ip: 198.18.1.44
  conditions:
  - type: Ready
    status: "True"
YAML
for pod in h2web-1:h2web:198.18.1.40 h2web-2:h2web:198.18.1.43 grpc-1:grpc:198.18.1.41; do
	IFS=: read -r name app ip <<<"$pod"
	cat >>"$MAN/00-h2.yaml" <<YAML
---
apiVersion: v1
kind: Pod
metadata:
  name: $name
  namespace: default
  labels:
    app: $app
spec:
  nodeName: node-1
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

tb_up "$(tb_name)" --manifests "$MAN" --certs "$PKI" --set cluster.gateway_class=istio-waypoint

# backends on their pod IPs (ip netns exec directly: $! is the backend)
for ip in 198.18.1.40 198.18.1.43; do
	ip netns exec "$WP_NETNS" nghttpd --no-tls -a "$ip" -d "$T/htdocs" 8080 >"$T/nghttpd-$ip.log" 2>&1 &
	PIDS+=($!)
	disown $!
done
ip netns exec "$WP_NETNS" $GRPC server --bind 198.18.1.41:50051 >"$T/grpc.log" 2>&1 &
PIDS+=($!)
disown $!
# the ambient pod: reached by HBONE originate; dest.py (its "ztunnel")
# forwards each tunnel to the gRPC server beside it
ip netns exec "$WP_NETNS" $GRPC server --bind 198.18.1.44:50051 >"$T/grpc-mesh.log" 2>&1 &
PIDS+=($!)
disown $!
ip netns exec "$WP_NETNS" $PY "$ROOT/tests/hbone/dest.py" --listen 198.18.1.44:15008 --certs "$PKI" \
	--identity dest --forward 198.18.1.44:50051 >"$T/dest.log" 2>&1 &
PIDS+=($!)
disown $!
# local HBONE forwarders: one per destination
fwd() { # port authority
	ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/hbone_fwd.py" --listen "127.0.0.1:$1" \
		--addr "$WP_IP:15008" --certs "$PKI" --authority "$2" >"$T/fwd-$1.log" 2>&1 &
	PIDS+=($!)
	disown $!
}
fwd 15001 198.19.0.40:8080
fwd 15002 198.19.0.41:50051
fwd 15003 198.19.0.42:50051
fwd 15004 198.19.0.43:8080
fwd 15005 198.19.0.44:50051
for f in grpc grpc-mesh dest fwd-15001 fwd-15002 fwd-15003 fwd-15004 fwd-15005; do
	for _ in $(seq 100); do grep -q listening "$T/$f.log" 2>/dev/null && break; sleep 0.1; done
	grep -q listening "$T/$f.log" || fail "$f did not start: $(cat "$T/$f.log")"
done
for ip in 198.18.1.40 198.18.1.43; do
	for _ in $(seq 50); do
		in_ns $PY -c "import socket; socket.create_connection(('$ip', 8080), 1).close()" 2>/dev/null && break
		sleep 0.1
	done
done

h2_stats() { "$WPCTL" stats --prefix "$WP_PREFIX" 2>/dev/null | grep -E '^(l7_h2p|l7_sniff|tunnel_)' | awk '$2 != 0 {printf "%s=%s ", $1, $2}'; }

# wait for the snapshot: one request through the h2 proxy
for _ in $(seq 50); do
	in_ns timeout 10 h2load -n 1 -c 1 http://127.0.0.1:15001/index.html 2>/dev/null |
		grep -q '1 succeeded' && break
	sleep 0.2
done

# (a) h2load, h2c prior knowledge, 4 connections x 10 streams
out=$(in_ns timeout 120 h2load -n 5000 -c 4 -m 10 http://127.0.0.1:15001/index.html 2>&1) ||
	fail "h2load: $out; $(h2_stats)"
grep -q 'requests: 5000 total, 5000 started, 5000 done, 5000 succeeded, 0 failed' <<<"$out" ||
	fail "h2load: not all requests succeeded: $out; $(h2_stats)"
grep -q 'status codes: 5000 2xx' <<<"$out" || fail "h2load: not all 2xx: $out"
grep -q 'Application protocol: h2c' <<<"$out" || fail "h2load did not speak h2c: $out"
req=$(stat l7_h2p_request)
[ "$req" -ge 5000 ] || fail "l7_h2p_request $req; $(h2_stats)"
[ "$(stat l7_h2p_session)" -ge 4 ] || fail "l7_h2p_session $(stat l7_h2p_session)"
[ "$(stat l7_h2p_up_shared)" -ge 4000 ] || fail "upstream streams not multiplexed: $(h2_stats)"
[ "$(stat l7_h2p_up_new)" -le 20 ] || fail "too many upstream connections: $(h2_stats)"
in_ns $PY -c "import socket; socket.create_connection(('198.18.1.43', 8080), 1).close()" ||
	fail "second nghttpd gone"
pass "h2load -n 5000 -c 4 -m 10 (h2c) through HBONE: 5000/5000 2xx; l7_h2p_request $req, upstream connections $(stat l7_h2p_up_new), streams multiplexed on them $(stat l7_h2p_up_shared)"

# (b) gRPC streaming with trailers
out=$(in_ns timeout 60 $GRPC bidi --target 127.0.0.1:15002 --n 200 --size 100) ||
	fail "gRPC bidi: $out; $(h2_stats)"
pass "gRPC bidi stream (200 messages): in order, FAILED_PRECONDITION + details + trailing metadata intact: $out"
out=$(in_ns timeout 60 $GRPC bidi --target 127.0.0.1:15002 --n 40 --size 100000) ||
	fail "gRPC bidi (100 kB messages): $out; $(h2_stats)"
pass "gRPC bidi stream of 40 x 100 kB messages (flow control both ways): $out"
out=$(in_ns timeout 60 $GRPC count --target 127.0.0.1:15002 --k 1000) ||
	fail "gRPC server streaming: $out; $(h2_stats)"
pass "gRPC server streaming (1000 messages): in order, OK, trailing metadata: $out"

# (b') the same to the ambient pod: the upstream h2c connection is an
# originated HBONE tunnel
out=$(in_ns timeout 60 $GRPC bidi --target 127.0.0.1:15005 --n 100 --size 1000) ||
	fail "gRPC bidi over HBONE originate: $out; $(h2_stats)"
[ "$(stat tunnel_hbone)" -ge 1 ] || fail "ambient pod not reached by HBONE: $(h2_stats)"
pass "gRPC bidi stream to an ambient pod (h2c upstream inside an originated HBONE tunnel): $out"

# (c) no endpoints: UNAVAILABLE from the waypoint itself
out=$(in_ns timeout 60 $GRPC unavailable --target 127.0.0.1:15003) ||
	fail "gRPC to a service without endpoints: $out; $(h2_stats)"
grep -q '"details": "no healthy upstream"' <<<"$out" || fail "not the waypoint's answer: $out"
[ "$(stat l7_h2p_local_grpc)" -ge 1 ] || fail "l7_h2p_local_grpc not counted: $(h2_stats)"
pass "gRPC to a service without endpoints: UNAVAILABLE (trailers-only, from the waypoint): $out"

# (d) a port of unknown protocol: the HTTP/2 preface makes it h2c
out=$(in_ns timeout 60 h2load -n 500 -c 2 -m 5 http://127.0.0.1:15004/index.html 2>&1) ||
	fail "h2load (sniffed): $out"
grep -q 'requests: 500 total, 500 started, 500 done, 500 succeeded' <<<"$out" ||
	fail "h2load (sniffed): $out; $(h2_stats)"
[ "$(stat l7_sniff_h2)" -ge 2 ] || fail "l7_sniff_h2 $(stat l7_sniff_h2); $(h2_stats)"
pass "port of unknown protocol, HTTP/2 preface: sniffed ($(stat l7_sniff_h2) tunnels) and proxied, 500/500 succeeded"

# the upstream pool drains to idle, nothing left in flight: every client
# has finished, so the only tunnels still open are the pooled upstream
# connections (an upstream connection holds a tunnel object while it is
# pooled, idle), no byte waits in a tunnel's queue, no TCP buffer holds
# unacknowledged or unread data, and no upstream connection was lost with
# streams in flight.
idle=
for _ in $(seq 50); do
	g=$(tel /wp/tunnels)
	ups=$(($(stat l7_h2p_up_new) + $(stat l7_h2p_up_h1_conn)))
	idle=$($PY -c '
import json, sys
g = json.loads(sys.argv[1])
print("yes" if g["tunnels"] <= int(sys.argv[2]) and g["queued_bytes"] == 0 else "no")' "$g" "$ups") ||
		fail "unreadable /wp/tunnels: $g"
	[ "$idle" = yes ] && [ "$(stat tcp_snd_bufs)" = 0 ] && [ "$(stat tcp_rcv_bufs)" = 0 ] && break
	sleep 0.1
done
[ "$idle" = yes ] || fail "more tunnels than pooled upstreams ($ups), or bytes held, 5 s after the last client: $g; $(h2_stats)"
[ "$(stat tcp_snd_bufs)" = 0 ] && [ "$(stat tcp_rcv_bufs)" = 0 ] ||
	fail "TCP buffers still held: snd $(stat tcp_snd_bufs) rcv $(stat tcp_rcv_bufs); $(h2_stats)"
[ "$(stat l7_h2p_up_lost)" = 0 ] || fail "upstream connections lost with streams in flight: $(h2_stats)"
pass "drained to idle: only the $ups pooled upstreams hold tunnels, no queued byte, no TCP buffer held ($g); counters: $(h2_stats)"
