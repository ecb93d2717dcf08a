#!/usr/bin/env bash
# Consistent hashing end to end (README: "consistent hashing on the source
# address from Forwarded: for="): the embedded bookinfo-like cluster
# (conf/cluster, not ambient: plaintext upstreams) in a testbed, a backend
# on each of the three reviews pods (tests/integration/l7_backend.py), and
# HTTP/1.1 inside HBONE tunnels (l7_http.py) as ztunnel would send them:
#   - reviews (198.19.0.13) with a DestinationRule consistentHash
#     useSourceIp: the source is the CONNECT's Forwarded for= address. Every
#     request from one source reaches one pod, on one tunnel and again from
#     a new connection, whatever the source port; 12 sources spread over
#     more than one pod (a blind pick would not keep a source on one pod);
#   - reviews-hdr (198.19.0.24, the same pods) with consistentHash
#     httpHeaderName x-user: one user, one pod; 12 users spread. All
#     clients come from one HBONE peer address: the spread shows the hash
#     took the Forwarded for= address, not the connection's.
. "$(dirname "$0")/lib.sh"
l7_setup l7hash
cat >"$MAN/30-hash.yaml" <<'YAML'
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews-by-source
  namespace: default
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash:
        useSourceIp: true
---
apiVersion: v1
kind: Service
metadata:
  name: reviews-hdr
  namespace: default
spec:
  clusterIP: 198.19.0.24
  selector:
    app: reviews
  ports:
  - name: http
    port: 9080
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews-by-user
  namespace: default
spec:
  host: reviews-hdr
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpHeaderName: x-user
YAML

tb_up "$(tb_name)" --manifests "$MAN" --certs "$PKI" --set cluster.gateway_class=istio-waypoint

while read -r name ver ip; do
	# (ip netns exec directly, not in_ns: $! must be the backend itself)
	ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/l7_backend.py" --bind "$ip:9080" \
		--name "$name" --version "$ver" >"$T/$name.log" 2>"$T/$name.err" &
	PIDS+=($!)
	disown $!
done <<'EOF'
reviews-v1 v1 198.18.1.13
reviews-v2 v2 198.18.1.14
reviews-v3 v3 198.18.1.15
EOF
for f in reviews-v1 reviews-v2 reviews-v3; do
	for _ in $(seq 50); do grep -q listening "$T/$f.log" 2>/dev/null && break; sleep 0.1; done
	grep -q listening "$T/$f.log" || fail "backend $f did not start: $(cat "$T/$f.err")"
done
for _ in $(seq 100); do
	in_ns $CLIENT --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.24:9080 \
		--expect-status 200 --timeout 5 >/dev/null 2>&1 && break
	sleep 0.2
done

# one_pod ARGS...: 4 requests on one tunnel; prints the one pod that answered
# them all, fails if they were not all 200 from one pod.
one_pod() {
	local out
	out=$(in_ns $L7 get --addr "$WP_IP:15008" --certs "$PKI" --path /h --n 4 "$@") ||
		fail "client ($*): $out"
	echo "$out" | $PY -c '
import json, sys
d = json.load(sys.stdin)
if d["statuses"] != {"200": 4} or len(d["backends"]) != 1:
    sys.exit("not one pod for 4 requests: %s" % d)
print(next(iter(d["backends"])))' || fail "client ($*): $out"
}

# check KIND ARGS-FOR-SOURCE: 12 sources, each to one pod (twice, on two
# connections), and more than one pod over all.
declare -A first
check() {
	local kind=$1 key pod pods
	first=()
	for k in $(seq 1 12); do
		key=$(key_of "$k" 1000)
		pod=$(one_pod $(args_of "$key")) || exit 1
		first[$k]=$pod
	done
	for k in $(seq 1 12); do
		pod=$(one_pod $(args_of "$(key_of "$k" 2000)")) || exit 1
		[ "$pod" = "${first[$k]}" ] ||
			fail "$kind: source $k went to ${first[$k]}, then to $pod on a new connection"
	done
	pods=$(printf '%s\n' "${first[@]}" | sort | uniq -c | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $1}')
	[ "$(printf '%s\n' "${first[@]}" | sort -u | wc -l)" -ge 2 ] ||
		fail "$kind: 12 sources all on one pod: $pods"
	pass "$kind: each of 12 sources kept on one pod over 2 connections x 4 requests; spread: $pods"
}

# useSourceIp: the address of Forwarded for=; the port changes between the
# two connections (the same client, a new source port)
key_of() { echo "10.244.$((($1 * 37) % 250)).$((($1 * 91) % 250 + 1)):$(($2 + $1))"; }
args_of() { echo "--authority 198.19.0.13:9080 --host reviews:9080 --forwarded-for $1"; }
check "useSourceIp (Forwarded for=)"
[ "$(stat l7_lb_hash_key_missing)" = 0 ] || fail "hash key missing on $(stat l7_lb_hash_key_missing) requests"

# httpHeaderName x-user; the Forwarded source is the same for all users
key_of() { echo "user-$1"; }
args_of() { echo "--authority 198.19.0.24:9080 --host reviews-hdr:9080 --header x-user:$1"; }
check "httpHeaderName x-user"
[ "$(stat l7_lb_hash_key_missing)" = 0 ] || fail "hash key missing on $(stat l7_lb_hash_key_missing) requests"
