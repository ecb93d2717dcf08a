#!/usr/bin/env bash
# Issue 15, acceptance 4 (VirtualService, the routing part), end to end:
# HTTP/1.1 inside HBONE tunnels through waypointd to the embedded
# bookinfo-like cluster (conf/cluster, namespace not ambient: plaintext
# upstreams), with a backend on each reviews pod (l7_backend.py answers
# with its pod's name).
#   - a DestinationRule gives reviews two subsets by pod label (v1, v2) and
#     a VirtualService on reviews sends `end-user: jason` to v2 and the rest
#     80/20 to v1/v2: the split lands within +-3 points over N requests
#     (default 10000, over 4 keep-alive streams), jason's requests all reach
#     v2, and /config_dump shows the VirtualService's rules on the port;
#   - the VirtualService's file is rewritten (everything to v2) under an
#     open keep-alive stream: the same stream's next requests follow it,
#     none is lost and the stream is not closed;
#   - an HTTPRoute on the same Service port wins: requests follow it, the
#     conflict is in /config_dump (on the port and in CP_VS_CONFLICT); a
#     rule's fault injection is in /config_dump, and a tcp route is
#     reported and counted (CP_VS_NOT_APPLIED).
. "$(dirname "$0")/lib.sh"
N=${L7_VS_N:-10000}
l7_setup l7vs
cat >"$MAN/30-dr.yaml" <<'YAML'
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: default
spec:
  host: reviews.default.svc.cluster.local
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
YAML
# vs_file W1 W2: the VirtualService with weights W1/W2 for v1/v2
vs_file() {
	cat >"$T/vs.tmp" <<YAML
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts: [reviews]
  http:
  - match:
    - headers:
        end-user: {exact: jason}
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
      weight: $1
    - destination: {host: reviews, subset: v2}
      weight: $2
YAML
	mv "$T/vs.tmp" "$MAN/40-vs.yaml" # one inotify event, a whole file
}
vs_file 80 20

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
	in_ns $CLIENT --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.13:9080 \
		--expect-status 200 --timeout 5 >/dev/null 2>&1 && break
	sleep 0.2
done

ROUTES='port("default", "reviews", 9080)["routes"]'

# 1. the VirtualService's rules on the port, in order
wait_cfg_dump "$ROUTES[\"source\"]" VirtualService
out=$(cfg_dump "[(r[\"kind\"], r[\"name\"], r[\"index\"], [b[\"cluster\"] for b in r[\"backends\"]]) for r in $ROUTES[\"rules\"]]")
[ "$out" = "[('VirtualService', 'reviews', 0, ['outbound|9080|v2|reviews.default.svc.cluster.local']), ('VirtualService', 'reviews', 1, ['outbound|9080|v1|reviews.default.svc.cluster.local', 'outbound|9080|v2|reviews.default.svc.cluster.local'])]" ] ||
	fail "config dump rules: $out"
pass "config dump: reviews:9080 routed by VirtualService default/reviews, rules in order with subset clusters"

# 2. header match: end-user jason -> v2 only
out=$(l7 get --authority 198.19.0.13:9080 --host reviews:9080 --path /jason --n 50 \
	--header "end-user: jason") || fail "jason: $out"
grep -q '"backends": {"reviews-v2": 50}' <<<"$out" || fail "end-user jason not all on v2: $out"
pass "header match end-user: jason -> subset v2 (50/50 requests)"

# 3. 80/20 over N requests on 4 keep-alive streams, subsets by pod label
v1=0
v2=0
other=0
per=$((N / 4))
for s in 1 2 3 4; do
	out=$(l7 get --authority 198.19.0.13:9080 --host reviews:9080 --path /split --n $per \
		--timeout 120) || fail "split: $out"
	counts=$(echo "$out" | $PY -c '
import json, sys
d = json.load(sys.stdin)
assert d["statuses"] == {"200": sum(d["backends"].values())}, d
b = d["backends"]
print(b.get("reviews-v1", 0), b.get("reviews-v2", 0),
      sum(v for k, v in b.items() if k not in ("reviews-v1", "reviews-v2")))') ||
		fail "split: unreadable or non-200 answers: $out"
	read -r a b c <<<"$counts"
	v1=$((v1 + a))
	v2=$((v2 + b))
	other=$((other + c))
done
total=$((v1 + v2 + other))
[ "$other" = 0 ] || fail "split: $other requests went outside the subsets (v1 $v1, v2 $v2)"
[ "$total" = $((per * 4)) ] || fail "split: $total responses for $((per * 4)) requests"
pct=$((v1 * 1000 / total))
[ $pct -ge 770 ] && [ $pct -le 830 ] || fail "80/20 subset split off: v1 $v1 v2 $v2 (${pct} per mille)"
pass "VirtualService 80/20 over subsets v1/v2: v1 $v1 / v2 $v2 of $total (v1 ${pct} per mille)"

# 4. the VirtualService rewritten under an open keep-alive stream
l7 get --authority 198.19.0.13:9080 --host reviews:9080 --path /live --n 100 --pause-after 50 \
	--pause-file "$T/go" >"$T/live.out" 2>&1 &
LIVE=$!
for _ in $(seq 100); do [ -e "$T/go.paused" ] && break; sleep 0.1; done
[ -e "$T/go.paused" ] || fail "live client did not pause: $(cat "$T/live.out")"
vs_file 0 100
wait_cfg_dump "[b[\"weight\"] for b in $ROUTES[\"rules\"][1][\"backends\"]]" "[0, 100]"
touch "$T/go"
wait $LIVE || fail "live client: $(cat "$T/live.out")"
out=$(cat "$T/live.out")
grep -q '"after": {"reviews-v2": 50}' <<<"$out" || fail "edit not followed on the open stream: $out"
grep -q '"reviews-v1"' <<<"$out" || fail "no v1 before the edit: $out"
grep -q '"statuses": {"200": 100}' <<<"$out" || fail "requests lost across the edit: $out"
grep -q '"closed": true' <<<"$out" || fail "stream not ended cleanly: $out"
pass "VirtualService edited under an open keep-alive stream: 100/100 answered, the next 50 follow it ($out)"

# 5. an HTTPRoute on the same port wins; the conflict and a tcp route are
# reported and counted, a fault is compiled into its rule
cat >"$T/hr.tmp" <<'YAML'
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews
  namespace: default
spec:
  parentRefs:
  - {group: "", kind: Service, name: reviews, port: 9080}
  rules:
  - backendRefs:
    - {name: reviews, port: 9080}
YAML
mv "$T/hr.tmp" "$MAN/50-hr.yaml"
cat >"$T/vs2.tmp" <<'YAML'
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings-fault
  namespace: default
spec:
  hosts: [ratings.default.svc.cluster.local]
  http:
  - fault:
      abort: {httpStatus: 503, percentage: {value: 30}}
    route:
    - destination: {host: ratings}
  tcp:
  - route: [{destination: {host: ratings}}]
YAML
mv "$T/vs2.tmp" "$MAN/41-vs-fault.yaml"
wait_cfg_dump "$ROUTES[\"source\"]" HTTPRoute
[ "$(cfg_dump "$ROUTES[\"virtualServiceConflicts\"]")" = 1 ] || fail "conflict not on the port: $(cfg_dump "$ROUTES")"
cfg_dump "$ROUTES[\"errors\"]" | grep -q "40-vs.yaml:1: VirtualService default/reviews: spec.hosts: not applied to Service default/reviews port 9080: HTTPRoute default/reviews binds it and wins" ||
	fail "conflict not reported: $(cfg_dump "$ROUTES")"
[ "$(cfg_dump 'd["counters"]["CP_VS_CONFLICT"]')" -ge 1 ] || fail "conflict not counted"
wait_cfg_dump 'port("default", "ratings", 9080)["routes"]["virtualServiceNotApplied"]' 1
cfg_dump 'port("default", "ratings", 9080)["routes"]["errors"]' | grep -q "41-vs-fault.yaml:14: VirtualService default/ratings-fault: spec: tcp and tls routes are not supported (not applied)" ||
	fail "tcp route not reported: $(cfg_dump 'port("default", "ratings", 9080)["routes"]')"
[ "$(cfg_dump 'd["counters"]["CP_VS_NOT_APPLIED"]')" -ge 1 ] || fail "tcp route not counted"
[ "$(cfg_dump 'port("default", "ratings", 9080)["routes"]["rules"][0]["fault"]')" = "{'abortHttpStatus': 503, 'abortPercent': 30.0}" ] ||
	fail "fault not in the dump: $(cfg_dump 'port("default", "ratings", 9080)["routes"]')"
out=$(l7 get --authority 198.19.0.13:9080 --host reviews:9080 --path /hr --n 60 \
	--header "end-user: jason") || fail "HTTPRoute: $out"
grep -q '"statuses": {"200": 60}' <<<"$out" || fail "HTTPRoute: $out"
grep -q '"reviews-v3"' <<<"$out" || fail "HTTPRoute (all reviews pods) not followed: $out"
pass "HTTPRoute on the same port wins (reviews-v3 reached: $out); conflict and tcp route reported with file:line and counted, fault in the dump (CP_VS_CONFLICT $(cfg_dump 'd["counters"]["CP_VS_CONFLICT"]'), CP_VS_NOT_APPLIED $(cfg_dump 'd["counters"]["CP_VS_NOT_APPLIED"]'))"
