# Shared set-up for the HBONE integration tests (test_hbone_*.sh); source it
# after lib.sh. It makes a test PKI (tests/pki/mkpki.sh) and a manifest
# directory at test time, and starts a testbed that serves them:
#
#   namespace plain  (not ambient)  -> upstream in plaintext to podIP:port
#     echo    198.19.0.10:7000 -> pod 198.18.1.10:7000 (a test echo server)
#     refuse  198.19.0.11:7001 -> pod 198.18.1.11:7001 (nothing listens: RST)
#     empty   198.19.0.12:7002 -> no endpoints
#   namespace default (istio.io/dataplane-mode=ambient) -> HBONE originate
#     hdest   198.19.0.20:7000 -> pod 198.18.1.20:7000, service account
#             "dest": tests/hbone/dest.py on 198.18.1.20:15008 echoes
#   uncaptured: 198.19.9.9:80 (in no manifest)
#
# Both namespaces use the waypoint Gateway of their namespace; the testbed
# serves every istio-waypoint Gateway.
HB_TMP=$(mktemp -d /tmp/wp-hbone.XXXXXX)
HB_PKI=$HB_TMP/pki
HB_MAN=$HB_TMP/manifests
HB_CLIENT="/usr/bin/python3 $ROOT/tests/hbone/client.py"
HB_DEST="/usr/bin/python3 $ROOT/tests/hbone/dest.py"
HB_PIDS=()

hb_cleanup() {
	for p in "${HB_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	tb_cleanup
	rm -rf "$HB_TMP"
}
trap hb_cleanup EXIT

"$ROOT/tests/pki/mkpki.sh" "$HB_PKI" >/dev/null 2>&1 || fail "mkpki.sh failed"
mkdir -p "$HB_MAN"

hb_pod() { # ns name ip sa app
	cat <<YAML
---
apiVersion: v1
kind: Pod
metadata:
  name: $2
  namespace: $1
  labels:
    app: $5
spec:
  serviceAccountName: $4
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

hb_svc() { # ns name vip port target app
	cat <<YAML
---
apiVersion: v1
kind: Service
metadata:
  name: $2
  namespace: $1
spec:
  clusterIP: $3
  selector:
    app: $6
  ports:
  - name: tcp
    port: $4
    targetPort: $5
YAML
}

hb_gw() { # ns
	cat <<YAML
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: $1
  labels:
    istio.io/waypoint-for: all
spec:
  gatewayClassName: istio-waypoint
  listeners:
  - name: mesh
    port: 15008
    protocol: HBONE
YAML
}

{
	cat <<YAML
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: istio-waypoint
spec:
  controllerName: istio.io/mesh-controller
---
apiVersion: v1
kind: Namespace
metadata:
  name: plain
  labels:
    istio.io/use-waypoint: waypoint
---
apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels:
    istio.io/dataplane-mode: ambient
    istio.io/use-waypoint: waypoint
YAML
} >"$HB_MAN/00-base.yaml"
hb_gw plain >"$HB_MAN/10-gw-plain.yaml"
hb_gw default >"$HB_MAN/10-gw-default.yaml"
{
	hb_svc plain echo 198.19.0.10 7000 7000 echo
	hb_pod plain echo-1 198.18.1.10 echo echo
	hb_svc plain refuse 198.19.0.11 7001 7001 refuse
	hb_pod plain refuse-1 198.18.1.11 refuse refuse
	hb_svc plain empty 198.19.0.12 7002 7002 nothing
	hb_svc default hdest 198.19.0.20 7000 7000 hdest
	hb_pod default hdest-1 198.18.1.20 dest hdest
} >"$HB_MAN/20-apps.yaml"

# hb_up NAME [testbed options]: a testbed serving the manifests above.
hb_up() {
	local name=$1
	shift
	tb_up "$name" --manifests "$HB_MAN" --certs "$HB_PKI" \
		--set cluster.gateway_class=istio-waypoint "$@"
}

# hb_wait_snapshot AUTHORITY: waits until the appliance captures it (the
# control plane loaded the manifests): CONNECT stops answering 400/503-no-snapshot.
hb_wait_captured() {
	for _ in $(seq 50); do
		out=$(in_ns $HB_CLIENT --addr "$WP_IP:15008" --certs "$HB_PKI" --authority "$1" \
			--expect-status 200 --timeout 5 2>/dev/null) && return 0
		sleep 0.2
	done
	fail "authority $1 never captured: $out"
}

# hb_echo_server: a TCP echo server on 0.0.0.0:7000 in the namespace.
hb_echo_server() {
	in_ns $TCPCHECK server 7000 >"$HB_TMP/echo.out" 2>&1 &
	HB_PIDS+=($!)
	sleep 0.3
}

# hb_bulk BYTES SECONDS: BYTES each way through one full tunnel to the echo
# Service 198.19.0.10:7000 (build/bench/l7_load bulk, at most SECONDS);
# prints the client's JSON line, and fails the test unless every byte came
# back with the SHA-256 it was sent with.
hb_bulk() {
	local out
	out=$(in_ns "$BUILD/bench/l7_load" bulk "$WP_IP" 15008 "$1" "$HB_PKI/productpage.pem" \
		"$HB_PKI/productpage-key.pem" "$HB_PKI/ca.pem" 198.19.0.10:7000 "$2") || fail "bulk $1 bytes: $out"
	case $out in *'"sha256_ok": 1, "ok": 1'*) ;; *) fail "bulk $1 bytes: $out" ;; esac
	echo "$out"
}

# hb_dest: the HBONE destination (dest.py, identity "dest") on 198.18.1.20:15008.
hb_dest() {
	in_ns $HB_DEST --listen 198.18.1.20:15008 --certs "$HB_PKI" --echo >"$HB_TMP/dest.out" 2>&1 &
	HB_PIDS+=($!)
	for _ in $(seq 50); do grep -q listening "$HB_TMP/dest.out" 2>/dev/null && return 0; sleep 0.1; done
	fail "dest.py did not start: $(cat "$HB_TMP/dest.out")"
}

# ctr NAME: a counter or gauge total from wpctl stats --json. An unknown
# name is an error, as with lib.sh's stat: a renamed counter must not read
# as 0 and pass an "equals 0" check (the caller's comparison then fails, or
# set -e ends the test on an assignment).
ctr() {
	"$WPCTL" stats --json --prefix "$WP_PREFIX" | /usr/bin/python3 -c '
import json, sys
t = json.load(sys.stdin)["total"]
if sys.argv[1] not in t:
    sys.exit("FAIL: no counter %r in wpctl stats" % sys.argv[1])
print(t[sys.argv[1]])' "$1"
}
