#!/usr/bin/env bash
# Issue 13, acceptance 2: Istio AuthorizationPolicy enforced by waypointd's
# data path (dp/l7/pipeline.c, called by the HTTP/1.1 and h2c proxies and at
# CONNECT for opaque tunnels), end to end, with HBONE clients presenting
# different workload identities (tests/pki/mkpki.sh: productpage and reviews
# in namespace default, bar in foo, sleep in other).
#   - manifests: the embedded cluster (l7_setup) plus Services az-* in
#     namespace default, most on the details pod (tests/integration/
#     l7_backend.py), a gRPC one (l7_h2_grpc.py), an opaque TCP one
#     (appProtocol tcp) and two of unknown protocol on a TCP echo server,
#     and AuthorizationPolicies bound by targetRefs to those Services, to
#     the waypoint Gateway, to the reviews-v2 pod's workload waypoint (its
#     pod address) and to the GatewayClass (root namespace istio-system),
#     plus ones that must not apply here (selector,
#     namespace-wide, dry-run, GatewayClass outside the root namespace),
#     a CUSTOM one (no external authorizer: fails closed) and unreadable
#     ones (fail closed);
#   - tests/integration/authz_client.py runs the cases below: each checks
#     the status and body (403 "RBAC: access denied", text/plain, the
#     connection kept; gRPC: trailers-only grpc-status 7; TCP: CONNECT 401
#     or a reset) or that the backend answered, and afterwards that every
#     allowed request reached a backend once and no denied one did. With
#     no enforcement every denied case would get its backend's 200;
#   - `wpctl authz check --dir` (offline, on the same manifests) answers
#     each case with the decision observed (issue 13 acceptance 4), and
#     with the AUDIT mark where the case names one;
#   - AUDIT with ALLOW and DENY: the decision counters move exactly as the
#     decisions say, authz_audited included;
#   - a policy written into the watched manifest directory while keep-alive
#     connections (HTTP/1.1, h2c) are open decides each one's next request
#     once the snapshot version moved, and the connections stay open.
. "$(dirname "$0")/lib.sh"
l7_setup authz
AUTHZ="$PY $ROOT/tests/integration/authz_client.py"
PEER=198.18.0.1 # the testbed's kernel side: the HBONE peer every client has

svc() { # name vip port-name port [app] [extra port yaml] [extra metadata yaml]
	cat <<YAML
---
apiVersion: v1
kind: Service
metadata:
  name: $1
  namespace: default
${7:-}
spec:
  clusterIP: $2
  selector:
    app: ${5:-details}
  ports:
  - name: $3
    port: $4
${6:-}
YAML
}
pod() { # name app ip
	cat <<YAML
---
apiVersion: v1
kind: Pod
metadata:
  name: $1
  namespace: default
  labels:
    app: $2
spec:
  nodeName: node-1
status:
  phase: Running
  podIP: $3
  podIPs:
  - ip: $3
  conditions:
  - type: Ready
    status: "True"
YAML
}
{
	svc az-principals 198.19.0.50 http 9080
	svc az-ns 198.19.0.51 http 9080
	svc az-sa 198.19.0.52 http 9080
	svc az-paths 198.19.0.53 http 9080
	svc az-headers 198.19.0.54 http 9080
	svc az-hosts 198.19.0.55 http 9080
	svc az-ports 198.19.0.56 http 9080 details '  - name: http-alt
    port: 9081
    targetPort: 9080'
	svc az-ip 198.19.0.57 http 9080
	svc az-ip2 198.19.0.58 http 9080
	svc az-mixed 198.19.0.59 http 9080
	svc az-a 198.19.0.60 http 9080
	svc az-b 198.19.0.61 http 9080
	svc az-live 198.19.0.62 http 9080
	svc az-otherwp 198.19.0.63 http 9080 details '' '  labels:
    istio.io/use-waypoint: reviews-svc-waypoint'
	svc az-sniff-http 198.19.0.64 web 9080
	svc az-sniff-tcp 198.19.0.65 raw 7000 echo
	svc az-tcp 198.19.0.66 data 7000 echo '    appProtocol: tcp'
	svc az-grpc 198.19.0.67 grpc 50051 grpc
	svc az-custom 198.19.0.68 http 9080
	svc az-invalid 198.19.0.69 http 9080
	svc az-invalid-allow 198.19.0.70 http 9080
	pod echo-1 echo 198.18.1.30
	pod grpc-1 grpc 198.18.1.41
} >"$MAN/30-authz-services.yaml"

# pol NAME [NS]: an AuthorizationPolicy head; the spec follows on stdin
pol() {
	printf -- '---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n' \
		"$1" "${2:-default}"
	sed 's/^/  /'
}
target() { printf 'targetRefs:\n- kind: Service\n  group: ""\n  name: %s\n' "$1"; }
{
	{ target az-principals; cat <<'YAML'; } | pol az-principals
action: ALLOW
rules:
- from:
  - source:
      principals: ["cluster.local/ns/default/sa/productpage", "cluster.local/ns/foo/*"]
YAML
	{ target az-ns; cat <<'YAML'; } | pol az-ns
action: ALLOW
rules:
- from:
  - source:
      namespaces: ["default"]
YAML
	{ target az-ns; cat <<'YAML'; } | pol az-ns-deny
action: DENY
rules:
- from:
  - source:
      notNamespaces: ["default", "foo"]
YAML
	{ target az-sa; cat <<'YAML'; } | pol az-sa
action: ALLOW
rules:
- from:
  - source:
      serviceAccounts: ["other/sleep"]
- when:
  - key: source.namespace
    values: ["foo"]
- when:
  - key: source.principal
    values: ["cluster.local/ns/default/sa/reviews"]
YAML
	{ target az-paths; cat <<'YAML'; } | pol az-paths-deny
action: DENY
rules:
- to:
  - operation:
      paths: ["/admin*"]
- to:
  - operation:
      methods: ["DELETE"]
      notPaths: ["/tmp/*"]
YAML
	{ target az-paths; cat <<'YAML'; } | pol az-paths-allow
action: ALLOW
rules:
- to:
  - operation:
      methods: ["GET", "POST", "DELETE"]
YAML
	{ target az-headers; cat <<'YAML'; } | pol az-headers-allow
action: ALLOW
rules:
- when:
  - key: request.headers[x-user]
    values: ["alice", "bob*"]
- from:
  - source:
      principals: ["cluster.local/ns/other/sa/sleep"]
  when:
  - key: request.headers[X-User]
    notValues: ["mallory"]
YAML
	{ target az-headers; cat <<'YAML'; } | pol az-headers-deny
action: DENY
rules:
- when:
  - key: request.headers[x-user]
    values: ["bob-banned"]
YAML
	{ target az-hosts; cat <<'YAML'; } | pol az-hosts
action: ALLOW
rules:
- to:
  - operation:
      hosts: ["az-hosts.example", "*.wild.example", "port.example:8080"]
YAML
	{ target az-ports; cat <<'YAML'; } | pol az-ports
action: ALLOW
rules:
- to:
  - operation:
      ports: ["9080"]
- when:
  - key: destination.ip
    values: ["198.19.0.56"]
  - key: destination.port
    values: ["9081"]
  - key: request.headers[x-dst]
    values: ["1"]
YAML
	{ target az-ip; cat <<YAML; } | pol az-ip
action: ALLOW
rules:
- when:
  - key: remote.ip
    values: ["10.244.1.0/24"]
  - key: source.ip
    values: ["$PEER"]
YAML
	{ target az-ip; cat <<'YAML'; } | pol az-ip-deny
action: DENY
rules:
- from:
  - source:
      remoteIpBlocks: ["10.244.1.66"]
YAML
	{ target az-ip2; cat <<'YAML'; } | pol az-ip2
action: ALLOW
rules:
- when:
  - key: source.ip
    values: ["192.0.2.0/24"]
- from:
  - source:
      ipBlocks: ["198.18.0.0/24"]
  when:
  - key: request.headers[x-ip-rule]
    values: ["2"]
YAML
	{ target az-ip2; cat <<'YAML'; } | pol az-ip2-deny
action: DENY
rules:
- from:
  - source:
      remoteIpBlocks: ["2001:db8:66::/48"]
YAML
	{ target az-mixed; cat <<'YAML'; } | pol az-mixed-audit
action: AUDIT
rules:
- to:
  - operation:
      paths: ["/audited*"]
YAML
	{ target az-mixed; cat <<'YAML'; } | pol az-mixed-allow
action: ALLOW
rules:
- from:
  - source:
      principals: ["cluster.local/ns/default/sa/productpage"]
YAML
	{ target az-mixed; cat <<'YAML'; } | pol az-mixed-deny
action: DENY
rules:
- to:
  - operation:
      paths: ["/audited/deny*"]
YAML
	# ALLOW with no rules: allow nothing (Service az-a only)
	target az-a | pol az-a-nothing
	# CUSTOM with no external authorizer configured: fails closed
	{ target az-custom; cat <<'YAML'; } | pol az-custom
action: CUSTOM
provider:
  name: ext-authz
rules:
- to:
  - operation:
      paths: ["/ext*"]
YAML
	# unreadable policies fail closed: a DENY denies everything it targets,
	# an ALLOW rule matches nothing (the other rules still do)
	{ target az-invalid; cat <<'YAML'; } | pol az-invalid
action: DENY
rules:
- from:
  - source:
      ipBlocks: ["not-an-address"]
YAML
	{ target az-invalid-allow; cat <<'YAML'; } | pol az-invalid-allow
action: ALLOW
rules:
- from:
  - source:
      principals: ["cluster.local/ns/default/sa/productpage"]
- to:
  - operation:
      paths: ["/a*b"]
YAML
	# dry-run: never enforced
	cat <<'YAML'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: az-b-dry-run
  namespace: default
  annotations:
    istio.io/dry-run: "true"
spec:
  targetRefs:
  - kind: Service
    group: ""
    name: az-b
  action: DENY
  rules:
  - {}
YAML
	# none of these applies to a waypoint: a selector (ztunnel / sidecar),
	# no target (namespace-wide, ztunnel), a GatewayClass outside the root
	# namespace, a Service of the same name in another namespace (and the
	# dry-run one above)
	pol az-b-selector <<'YAML'
selector:
  matchLabels:
    app: details
action: DENY
rules:
- {}
YAML
	pol az-ns-wide <<'YAML'
action: DENY
rules:
- to:
  - operation:
      paths: ["/ns-wide*"]
YAML
	pol class-local <<'YAML'
targetRefs:
- kind: GatewayClass
  group: gateway.networking.k8s.io
  name: istio-waypoint
action: DENY
rules:
- {}
YAML
	{ target az-b; cat <<'YAML'; } | pol az-b-elsewhere other
action: DENY
rules:
- {}
YAML
	# the waypoint Gateway (every Service it serves) and the GatewayClass
	# (every waypoint of the class), each for requests with its header (the
	# port and the principal keep them off the opaque tunnels: on TCP a
	# DENY drops its HTTP-only conditions and applies with the rest)
	pol gw-deny <<'YAML'
targetRefs:
- kind: Gateway
  group: gateway.networking.k8s.io
  name: waypoint
action: DENY
rules:
- to:
  - operation:
      ports: ["9080"]
  when:
  - key: request.headers[x-gw-deny]
    values: ["1"]
YAML
	pol class-deny istio-system <<'YAML'
targetRefs:
- kind: GatewayClass
  group: gateway.networking.k8s.io
  name: istio-waypoint
action: DENY
rules:
- from:
  - source:
      principals: ["cluster.local/ns/default/sa/reviews"]
  to:
  - operation:
      ports: ["9080"]
  when:
  - key: request.headers[x-class-deny]
    values: ["1"]
YAML
	# the --for workload waypoint of the reviews-v2 pod: a CONNECT to the
	# pod's address is decided by its waypoint's policies
	pol wl-allow <<'YAML'
targetRefs:
- kind: Gateway
  group: gateway.networking.k8s.io
  name: reviews-v2-pod-waypoint
action: ALLOW
rules:
- from:
  - source:
      principals: ["cluster.local/ns/default/sa/productpage"]
YAML
	{ target az-grpc; cat <<'YAML'; } | pol az-grpc
action: ALLOW
rules:
- from:
  - source:
      principals: ["cluster.local/ns/default/sa/productpage"]
YAML
	{ target az-grpc; cat <<'YAML'; } | pol az-grpc-deny
action: DENY
rules:
- to:
  - operation:
      paths: ["/test.Echo/Bidi"]
YAML
	# opaque TCP: an ALLOW rule needing an HTTP field matches nothing; a
	# DENY rule drops its HTTP fields and applies with the rest
	{ target az-tcp; cat <<'YAML'; } | pol az-tcp
action: ALLOW
rules:
- from:
  - source:
      principals: ["cluster.local/ns/default/sa/productpage", "cluster.local/ns/foo/sa/bar"]
- from:
  - source:
      principals: ["cluster.local/ns/other/sa/sleep"]
  to:
  - operation:
      paths: ["/x"]
YAML
	{ target az-tcp; cat <<'YAML'; } | pol az-tcp-deny
action: DENY
rules:
- from:
  - source:
      principals: ["cluster.local/ns/foo/sa/bar"]
  to:
  - operation:
      methods: ["GET"]
YAML
	for s in az-sniff-http az-sniff-tcp; do
		{ target $s; cat <<'YAML'; } | pol $s
action: ALLOW
rules:
- from:
  - source:
      principals: ["cluster.local/ns/default/sa/productpage"]
YAML
	done
} >"$MAN/40-authz-policies.yaml"

tb_up "$(tb_name)" --manifests "$MAN" --certs "$PKI" --set cluster.gateway_class=istio-waypoint
[ "$WP_PEER_IP" = "$PEER" ] || fail "the testbed's kernel side is $WP_PEER_IP, the policies say $PEER"

for b in details:198.18.1.11 reviews-v2:198.18.1.14; do
	ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/l7_backend.py" --bind "${b#*:}:9080" \
		--name "${b%%:*}" >"$T/${b%%:*}.log" 2>"$T/${b%%:*}.err" &
	PIDS+=($!)
	disown $!
done
ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/l7_h2_grpc.py" server \
	--bind 198.18.1.41:50051 >"$T/grpc.log" 2>&1 &
PIDS+=($!)
disown $!
ip netns exec "$WP_NETNS" $TCPCHECK server 7000 >"$T/echo.log" 2>&1 &
ECHO_PID=$!
PIDS+=($!)
disown $!
for f in details reviews-v2 grpc; do
	for _ in $(seq 100); do grep -q listening "$T/$f.log" 2>/dev/null && break; sleep 0.1; done
	grep -q listening "$T/$f.log" || fail "backend $f did not start: $(cat "$T/$f.log")"
done
for _ in $(seq 100); do
	in_ns $PY -c "import socket; socket.create_connection(('198.18.1.30', 7000), 1).close()" \
		2>/dev/null && break
	sleep 0.1
done
# the snapshot is in: a CONNECT to az-b is answered 200
for _ in $(seq 100); do
	in_ns $CLIENT --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.61:9080 \
		--expect-status 200 --timeout 5 >/dev/null 2>&1 && break
	sleep 0.2
done

authz() { # CASES-FILE [options]: the cases, with the checks against the backend log
	local f=$1
	shift
	in_ns $AUTHZ --addr "$WP_IP:15008" --certs "$PKI" --backend-log "$T/details.log" \
		--backend-log "$T/reviews-v2.log" "$@" "$f"
}
authz_stats() { "$WPCTL" stats --prefix "$WP_PREFIX" 2>/dev/null | awk '/^authz_/ && $2 != 0 {printf "%s=%s ", $1, $2}'; }

# 1. every field, one Service per concern (the comment after each case is
# why Istio decides so)
cat >"$T/cases" <<CASES
# principals: exact and prefix
200 productpage 198.19.0.50:9080 GET /p
200 foo-bar     198.19.0.50:9080 GET /p          # cluster.local/ns/foo/*
403 sleep       198.19.0.50:9080 GET /p
403 reviews     198.19.0.50:9080 GET /p
# namespaces (from the identity), notNamespaces in a DENY
200 productpage 198.19.0.51:9080 GET /n
200 reviews     198.19.0.51:9080 GET /n
403 foo-bar     198.19.0.51:9080 GET /n          # no ALLOW matches
403 sleep       198.19.0.51:9080 GET /n          # the DENY: not in default, foo
# serviceAccounts NAMESPACE/NAME; when source.namespace, source.principal
200 sleep       198.19.0.52:9080 GET /s
403 productpage 198.19.0.52:9080 GET /s
200 foo-bar     198.19.0.52:9080 GET /s
200 reviews     198.19.0.52:9080 GET /s
# methods and paths: DENY /admin* whatever the spelling after normalization
200 productpage 198.19.0.53:9080 GET /api/items sees=/api/items
403 productpage 198.19.0.53:9080 GET /admin
403 productpage 198.19.0.53:9080 GET /admin/users
403 productpage 198.19.0.53:9080 GET /x/%2e%2e/admin
403 productpage 198.19.0.53:9080 GET /x/%2E%2E/admin
403 productpage 198.19.0.53:9080 GET /./admin
403 productpage 198.19.0.53:9080 GET /admin/../admin
403 productpage 198.19.0.53:9080 GET /%61dmin    # unreserved escapes are decoded
403 productpage 198.19.0.53:9080 GET /admin?debug=1
403 productpage 198.19.0.53:9080 GET '/x\..\admin'    # a backslash is a slash
403 productpage 198.19.0.53:9080 GET /admin#frag       # the fragment is dropped
403 productpage 198.19.0.53:9080 GET /x/%2e%2e/admin proto=h2c
# absolute-form: the path is the URI's (as Envoy's codec takes it)
403 productpage 198.19.0.53:9080 GET http://198.19.0.53:9080/admin
403 productpage 198.19.0.53:9080 GET http://az-paths/x/../admin host=az-paths
200 productpage 198.19.0.53:9080 GET http://az-paths/api/abs host=az-paths sees=/api/abs
200 productpage 198.19.0.53:9080 GET //admin sees=//admin   # BASE keeps //: not /admin*
200 productpage 198.19.0.53:9080 GET /ADMIN sees=/ADMIN     # paths are case-sensitive
200 productpage 198.19.0.53:9080 GET /x/%2e%2e/api/y sees=/api/y   # normalized upstream
200 productpage 198.19.0.53:9080 GET /api?next=/admin sees=/api?next=/admin   # the query is not matched
403 productpage 198.19.0.53:9080 PUT /api/items  # methods of the ALLOW
403 productpage 198.19.0.53:9080 DELETE /api/items   # DENY methods + notPaths
200 productpage 198.19.0.53:9080 DELETE /tmp/x
403 productpage 198.19.0.53:9080 GET /admin proto=h2c
200 productpage 198.19.0.53:9080 GET /x/../api/h2 proto=h2c sees=/api/h2
# a 403 keeps the HTTP/1.1 connection, its body dropped: the next request is served
403 productpage 198.19.0.53:9080 POST /admin body=5000 conn=ka
200 productpage 198.19.0.53:9080 GET /api/after conn=ka sees=/api/after
403 productpage 198.19.0.53:9080 GET /admin conn=ka
200 productpage 198.19.0.53:9080 POST /api/post body=300 conn=ka
403 productpage 198.19.0.53:9080 POST /admin body=3000 chunked=1 conn=ka
200 productpage 198.19.0.53:9080 GET /api/after-chunked conn=ka sees=/api/after-chunked
403 productpage 198.19.0.53:9080 GET /admin conn=ka pipe=/api/pipelined
403 productpage 198.19.0.53:9080 POST /admin body=100 conn=ka pipe=/api/pipelined-2
403 productpage 198.19.0.53:9080 POST /admin body=100 chunked=1 conn=ka pipe=/api/pipelined-3
# bodies far past the stream and connection windows: discarded, the
# connection goes on (HTTP/1.1 by content-length and chunked; on h2c the
# dropped bodies must not use up the connection's flow-control window)
403 productpage 198.19.0.53:9080 POST /admin body=1000000 conn=big
200 productpage 198.19.0.53:9080 GET /api/after-big conn=big sees=/api/after-big
403 productpage 198.19.0.53:9080 POST /admin body=1000000 chunked=1 conn=big
200 productpage 198.19.0.53:9080 GET /api/after-big2 conn=big sees=/api/after-big2
403 productpage 198.19.0.53:9080 POST /admin body=1000000 proto=h2c conn=bigh2
403 productpage 198.19.0.53:9080 POST /admin body=1000000 proto=h2c conn=bigh2
200 productpage 198.19.0.53:9080 POST /api/after-bigh2 body=200000 proto=h2c conn=bigh2
# h2c: a denied stream ends, the connection serves the next one
403 productpage 198.19.0.53:9080 POST /admin body=2000 proto=h2c conn=kh2
200 productpage 198.19.0.53:9080 GET /api/h2-after proto=h2c conn=kh2 sees=/api/h2-after
# request headers: values (exact, prefix), notValues (absent holds)
200 productpage 198.19.0.54:9080 GET /h h=x-user:alice
200 productpage 198.19.0.54:9080 GET /h h=X-User:bob-smith   # header names are case-insensitive
403 productpage 198.19.0.54:9080 GET /h h=x-user:bob-banned  # the DENY
403 productpage 198.19.0.54:9080 GET /h h=x-user:eve
403 productpage 198.19.0.54:9080 GET /h h=x-user:ALICE       # values are not
403 productpage 198.19.0.54:9080 GET /h
200 sleep       198.19.0.54:9080 GET /h                      # notValues: absent is not mallory
200 sleep       198.19.0.54:9080 GET /h h=x-user:eve
403 sleep       198.19.0.54:9080 GET /h h=x-user:mallory
403 productpage 198.19.0.54:9080 GET /h h=x-user:alice h=x-user:alice   # fields joined: "alice,alice"
200 productpage 198.19.0.54:9080 GET /h h=x-user:bob-1 h=x-user:eve     # "bob-1,eve": bob*
200 productpage 198.19.0.54:9080 GET /h h=x-user:alice proto=h2c
403 productpage 198.19.0.54:9080 GET /h h=x-user:eve proto=h2c
# hosts: case-insensitive, exact or suffix, with or without the client's
# port (as issue 13 specifies); a value with a port wants that port
200 productpage 198.19.0.55:9080 GET /o host=az-hosts.example
200 productpage 198.19.0.55:9080 GET /o host=AZ-Hosts.Example:9080
200 productpage 198.19.0.55:9080 GET /o host=API.WILD.EXAMPLE
200 productpage 198.19.0.55:9080 GET /o host=api.wild.example:9080
200 productpage 198.19.0.55:9080 GET /o host=Port.Example:8080
403 productpage 198.19.0.55:9080 GET /o host=port.example:9080
403 productpage 198.19.0.55:9080 GET /o host=port.example
403 productpage 198.19.0.55:9080 GET /o host=az-hosts.example.evil
403 productpage 198.19.0.55:9080 GET /o host=az-hosts.example:9080.evil
403 productpage 198.19.0.55:9080 GET /o host=wild.example
403 productpage 198.19.0.55:9080 GET /o          # Host: 198.19.0.55:9080
200 productpage 198.19.0.55:9080 GET /o host=AZ-Hosts.Example:9080 proto=h2c  # :authority
403 productpage 198.19.0.55:9080 GET /o host=evil.example proto=h2c
# absolute-form: the URI's authority, not the Host header (RFC 9112 3.2.2)
200 productpage 198.19.0.55:9080 GET http://az-hosts.example/o host=evil.example
403 productpage 198.19.0.55:9080 GET http://evil.example/o host=az-hosts.example
# ports, destination.port: the service port of the CONNECT; destination.ip its VIP
200 productpage 198.19.0.56:9080 GET /port
403 productpage 198.19.0.56:9081 GET /port
200 productpage 198.19.0.56:9081 GET /port h=x-dst:1
403 productpage 198.19.0.56:9081 GET /port h=x-dst:2
# when remote.ip (Forwarded for=) and source.ip (the HBONE peer)
200 productpage 198.19.0.57:9080 GET /ip for=10.244.1.7
403 productpage 198.19.0.57:9080 GET /ip for=10.244.1.66     # remoteIpBlocks DENY
403 productpage 198.19.0.57:9080 GET /ip for=10.244.2.7
403 productpage 198.19.0.57:9080 GET /ip                     # for=10.244.0.9
403 productpage 198.19.0.58:9080 GET /ip for=192.0.2.5       # source.ip is the peer, not for=
200 productpage 198.19.0.58:9080 GET /ip h=x-ip-rule:2       # ipBlocks: the peer
403 productpage 198.19.0.58:9080 GET /ip h=x-ip-rule:2 for=[2001:db8:66::1]   # remoteIpBlocks DENY, IPv6
200 productpage 198.19.0.58:9080 GET /ip h=x-ip-rule:2 for=[2001:db8:67::1]
# a Service's policy does not touch another Service; ignored policies
403 productpage 198.19.0.60:9080 GET /a          # ALLOW with no rules: nothing allowed
403 sleep       198.19.0.60:9080 GET /a
200 productpage 198.19.0.61:9080 GET /b
200 sleep       198.19.0.61:9080 GET /b
200 sleep       198.19.0.61:9080 GET /ns-wide    # namespace-wide policy: ztunnel's
# CUSTOM without an external authorizer denies what it matches
403 productpage 198.19.0.68:9080 GET /ext/x
200 productpage 198.19.0.68:9080 GET /other
# fail closed: an unreadable DENY denies all, an unreadable ALLOW rule nothing
403 productpage 198.19.0.69:9080 GET /i
403 sleep       198.19.0.69:9080 GET /i
200 productpage 198.19.0.70:9080 GET /a-b
403 sleep       198.19.0.70:9080 GET /a-b
# the waypoint Gateway and the GatewayClass (root namespace)
403 productpage 198.19.0.61:9080 GET /b h=x-gw-deny:1
200 productpage 198.19.0.63:9080 GET /b h=x-gw-deny:1        # another waypoint
403 reviews     198.19.0.61:9080 GET /b h=x-class-deny:1
403 reviews     198.19.0.63:9080 GET /b h=x-class-deny:1     # every waypoint of the class
200 reviews     198.19.0.61:9080 GET /b
# a workload address behind its own waypoint (L4): that waypoint's policies
200 productpage 198.18.1.14:9080 GET /wl
401 sleep       198.18.1.14:9080 TCP -
# gRPC: trailers-only PERMISSION_DENIED
grpc-0 productpage 198.19.0.67:50051 POST /test.Echo/Count proto=grpc
grpc-7 sleep       198.19.0.67:50051 POST /test.Echo/Count proto=grpc
grpc-7 productpage 198.19.0.67:50051 POST /test.Echo/Bidi proto=grpc
# opaque TCP (appProtocol tcp): decided at CONNECT
tcp-ok productpage 198.19.0.66:7000 TCP -
401    sleep       198.19.0.66:7000 TCP -    # its ALLOW rule needs an HTTP field
401    foo-bar     198.19.0.66:7000 TCP -    # the DENY applies without its methods
# unknown protocol: HTTP decided per request, anything else reset
200 productpage 198.19.0.64:9080 GET /sniffed
403 sleep       198.19.0.64:9080 GET /sniffed
403 sleep       198.19.0.64:9080 GET /sniffed-h2 proto=h2c   # (h2c upstream: no 200 case, the backend is HTTP/1.1)
tcp-ok productpage 198.19.0.65:7000 TCP -
reset  sleep       198.19.0.65:7000 TCP -
CASES
out=$(authz "$T/cases" --wpctl "$WPCTL" --dir "$MAN") ||
	fail "authorization cases: $(grep -v '"ok": true' <<<"$out"); $(authz_stats)"
summary=$(tail -1 <<<"$out")
n=$(grep -c '"ok": true' <<<"$out")
for c in authz_allowed_match authz_denied_match authz_denied_no_allow authz_denied_custom \
	authz_denied_invalid authz_tcp_reset; do
	[ "$(stat $c)" -ge 1 ] || fail "$c not counted: $(authz_stats)"
done
pass "$n authorization cases decided as Istio would (hosts: as issue 13 says), wpctl authz check agreeing on every one (principals, namespaces, serviceAccounts, methods, normalized paths, headers, hosts, ports, source/remote ip, Gateway/GatewayClass/Service targets, a workload address by its waypoint, ignored selector / namespace-wide / dry-run policies, CUSTOM and unreadable policies failing closed, gRPC, opaque TCP, sniffed ports): $summary; $(authz_stats)"

# TCP: what reached the echo upstream is exactly what allowed tunnels sent
kill -TERM "$ECHO_PID"
# (tcpcheck.py prints "ready", then "<connections> <bytes> <sha256>" on SIGTERM)
for _ in $(seq 50); do [ "$(wc -l <"$T/echo.log")" -ge 2 ] && break; sleep 0.1; done
bytes=$(awk 'END {print $2}' "$T/echo.log")
want=$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["tcp_bytes_echoed"])' "$summary")
[ "$bytes" = "$want" ] || fail "the echo upstream received $bytes bytes, allowed tunnels sent $want: $(cat "$T/echo.log")"
pass "opaque TCP: the echo upstream received only the allowed tunnels' $want bytes"

# 2. ALLOW + DENY + AUDIT on one Service: AUDIT never changes a decision,
# each decision counted once by reason, every audited one counted
declare -A before
for c in authz_allowed_match authz_denied_match authz_denied_no_allow authz_audited; do
	before[$c]=$(stat $c)
done
cat >"$T/mixed" <<'CASES'
200 productpage 198.19.0.59:9080 GET /audited/a audited=1
403 productpage 198.19.0.59:9080 GET /audited/deny audited=1
403 sleep       198.19.0.59:9080 GET /audited/a audited=1
200 productpage 198.19.0.59:9080 GET /plain audited=0
403 sleep       198.19.0.59:9080 GET /plain audited=0
CASES
out=$(authz "$T/mixed" --wpctl "$WPCTL" --dir "$MAN") || fail "ALLOW+DENY+AUDIT: $out"
delta() { echo $(($(stat "$1") - ${before[$1]})); }
got="allowed_match +$(delta authz_allowed_match) denied_match +$(delta authz_denied_match) denied_no_allow +$(delta authz_denied_no_allow) audited +$(delta authz_audited)"
[ "$got" = "allowed_match +2 denied_match +1 denied_no_allow +2 audited +3" ] ||
	fail "ALLOW+DENY+AUDIT counters: $got; $(authz_stats)"
pass "ALLOW + DENY + AUDIT: /audited/a allowed for productpage and denied for sleep, both audited; /audited/deny denied by the DENY; counters $got; wpctl authz check agrees, AUDIT marks included"

# 3. a policy added while keep-alive connections are open (HTTP/1.1, h2c)
# decides each connection's next request (no policy on az-live before)
cat >"$T/live" <<CASES
200 productpage 198.19.0.62:9080 GET /live/1 conn=live
200 productpage 198.19.0.62:9080 GET /live/1 conn=live-h2 proto=h2c
pause $T/go
403 productpage 198.19.0.62:9080 GET /live/2 conn=live
200 productpage 198.19.0.62:9080 GET /other conn=live
403 productpage 198.19.0.62:9080 GET /live/2 conn=live-h2 proto=h2c
200 productpage 198.19.0.62:9080 GET /other conn=live-h2 proto=h2c
CASES
authz "$T/live" >"$T/live.out" 2>&1 &
LIVE=$!
for _ in $(seq 100); do [ -e "$T/go.paused" ] && break; sleep 0.1; done
[ -e "$T/go.paused" ] || fail "live client did not pause: $(cat "$T/live.out")"
version() {
	in_ns $PY -c 'import json, urllib.request
print(json.load(urllib.request.urlopen("http://127.0.0.1:15000/config_dump", timeout=5))["snapshot_version"])'
}
v0=$(version)
{ target az-live; cat <<'YAML'; } | pol az-live >"$T/50-live.yaml"
action: DENY
rules:
- to:
  - operation:
      paths: ["/live*"]
YAML
mv "$T/50-live.yaml" "$MAN/50-live.yaml"
v1=$v0
for _ in $(seq 100); do
	v1=$(version)
	[ "$v1" -gt "$v0" ] && break
	sleep 0.05
done
[ "$v1" -gt "$v0" ] || fail "snapshot version still $v0 5 s after the policy was written"
touch "$T/go"
wait $LIVE || fail "policy added under an open connection: $(cat "$T/live.out")"
pass "DENY added while keep-alive connections were open (snapshot $v0 -> $v1): on the HTTP/1.1 one and on the h2c one the next request 403, the one after 200 on the same connection"
