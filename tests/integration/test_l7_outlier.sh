#!/usr/bin/env bash
# DestinationRule outlier detection end to end (issue 15, acceptance 2 and
# 5): the embedded bookinfo-like cluster (conf/cluster, plaintext
# upstreams) in a testbed, a backend on each of the three reviews pods
# (l7_backend.py, each answering the status its file holds), HTTP/1.1
# inside HBONE tunnels (l7_http.py). reviews has a DestinationRule with
# consecutive5xxErrors 3, interval 1s, baseEjectionTime 5s,
# maxEjectionPercent 34:
#   1. v3 always answers 503: once it is ejected (a few requests) and one
#      interval has passed, at least 99% of 2,000 requests succeed;
#      `wpctl outliers` names it (5xx) and `wpctl stats` counts it;
#   2. it comes back after its ejection time, still fails, and is ejected
#      again for twice as long (ejections in a row 2, seconds left > 5);
#   3. all three answer 503: never more than one endpoint ejected (34% of
#      3), the refusals counted (l7_od_eject_overflow);
#   4. the same over h2c (the h2 proxy with HTTP/1.1 upstreams; h2load
#      through a local HBONE forwarder) on reviews-h2, a Service over the
#      same pods with the same DestinationRule settings (its own cluster,
#      so its own ejections): v3 failing again is ejected by h2 traffic
#      alone, then at least 99% of 2,000 requests succeed;
#   5. local-origin failures: v3's backend stopped (connections refused,
#      each retried on another pod: the client sees 200s), on reviews-lo
#      (the same pods, splitExternalLocalOriginErrors with
#      consecutiveLocalOriginFailures 2): v3 ejected for "local-origin".
. "$(dirname "$0")/lib.sh"
l7_setup l7outlier
cat >"$MAN/30-outlier.yaml" <<'YAML'
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews-outliers
  namespace: default
spec:
  host: reviews
  trafficPolicy:
    outlierDetection:
      consecutive5xxErrors: 3
      interval: 1s
      baseEjectionTime: 5s
      maxEjectionPercent: 34
---
apiVersion: v1
kind: Service
metadata:
  name: reviews-h2
  namespace: default
spec:
  clusterIP: 198.19.0.24
  selector:
    app: reviews
  ports:
  - name: http
    port: 9080
---
apiVersion: v1
kind: Service
metadata:
  name: reviews-lo
  namespace: default
spec:
  clusterIP: 198.19.0.25
  selector:
    app: reviews
  ports:
  - name: http
    port: 9080
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews-lo-outliers
  namespace: default
spec:
  host: reviews-lo
  trafficPolicy:
    outlierDetection:
      splitExternalLocalOriginErrors: true
      consecutiveLocalOriginFailures: 2
      interval: 1s
      baseEjectionTime: 30s
      maxEjectionPercent: 34
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews-h2-outliers
  namespace: default
spec:
  host: reviews-h2
  trafficPolicy:
    outlierDetection:
      consecutive5xxErrors: 3
      interval: 1s
      baseEjectionTime: 5s
      maxEjectionPercent: 34
YAML

tb_up "$(tb_name)" --manifests "$MAN" --certs "$PKI" --set cluster.gateway_class=istio-waypoint

while read -r name ver ip; do
	echo 200 >"$T/$name.status"
	# (ip netns exec directly, not in_ns: $! must be the backend itself)
	ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/l7_backend.py" --bind "$ip:9080" \
		--name "$name" --version "$ver" --status-file "$T/$name.status" \
		>"$T/$name.log" 2>"$T/$name.err" &
	PIDS+=($!)
	disown $!
done <<'PODS'
reviews-v1 v1 198.18.1.13
reviews-v2 v2 198.18.1.14
reviews-v3 v3 198.18.1.15
PODS
for f in reviews-v1 reviews-v2 reviews-v3; do
	for _ in $(seq 50); do grep -q listening "$T/$f.log" 2>/dev/null && break; sleep 0.1; done
	grep -q listening "$T/$f.log" || fail "backend $f did not start: $(cat "$T/$f.err")"
done
for _ in $(seq 100); do
	in_ns $CLIENT --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.13:9080 \
		--expect-status 200 --timeout 5 >/dev/null 2>&1 && break
	sleep 0.2
done

# get N: N keep-alive requests on one tunnel; prints "OK TOTAL BACKENDS"
get() {
	local o
	o=$(in_ns $L7 get --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.13:9080 \
		--host reviews:9080 --path /o --n "$1") || fail "client: $o"
	echo "$o" | $PY -c '
import json, sys
d = json.load(sys.stdin)
print(d["statuses"].get("200", 0), sum(d["statuses"].values()), len(d["backends"]))'
}

# v3's row of `wpctl outliers --json`: "REASON INROW TOTAL SECONDS_LEFT",
# or "none 0 0 0"
v3_row() {
	"$WPCTL" outliers --json --prefix "$WP_PREFIX" | $PY -c '
import json, sys
d = json.load(sys.stdin)
for i, e in enumerate(d["endpoint"]):
    if e.startswith("198.18.1.15:"):
        print(d["reason"][i], d["ejections"][i], d["total"][i], d["seconds_left"][i])
        break
else:
    print("none 0 0 0")'
}
active() {
	"$WPCTL" outliers --json --prefix "$WP_PREFIX" |
		$PY -c 'import json, sys; print(json.load(sys.stdin)["ejected_active"])'
}

# all three answer before anything fails
read -r ok n nb <<<"$(get 30)"
[ "$ok" = 30 ] && [ "$nb" = 3 ] || fail "warm-up: $ok of $n 200, $nb backends"

# 1. v3 fails: ejected after a few requests (3 in a row on a core)
echo 503 >"$T/reviews-v3.status"
for _ in $(seq 20); do
	get 10 >/dev/null
	[ "$(stat l7_od_eject_5xx)" -ge 1 ] && break
done
[ "$(stat l7_od_eject_5xx)" -ge 1 ] || fail "v3 never ejected"
read -r reason inrow total left <<<"$(v3_row)"
[ "$reason" = 5xx ] && [ "$left" -ge 1 ] || fail "wpctl outliers: v3 row '$reason $inrow $total $left'"
tbl=$("$WPCTL" outliers --prefix "$WP_PREFIX")
echo "$tbl" | grep -q '^198\.18\.1\.15:9080 *ejected *5xx .*outbound|9080||reviews\.default\.svc\.cluster\.local' ||
	fail "wpctl outliers table: $tbl"
pass "v3 ejected (5xx, $(stat l7_od_eject_5xx) ejection(s)); wpctl outliers shows it"
sleep 1 # the first interval
t0=$(date +%s%N)
read -r ok n nb <<<"$(get 2000)"
t1=$(date +%s%N)
[ "$n" = 2000 ] || fail "2000 requests: $n answers"
[ "$ok" -ge 1980 ] || fail "only $ok of 2000 requests succeeded"
pass "$ok of 2000 requests 200 after the first interval ($(((t1 - t0) / 1000000)) ms; l7_od_skipped $(stat l7_od_skipped))"

# 2. back after its ejection time, still failing: ejected again, longer.
# Traffic keeps flowing (a background client) so that it fails again as
# soon as it is back: each interval it spends in service brings the
# multiplier down by one, as Envoy's does.
# Start from an ejection in force: on a slow machine the 2000 requests can
# outlast it, and v3 may be back in service right now (then a few more
# requests fail on it and eject it again).
for _ in $(seq 30); do
	read -r reason inrow0 total0 left0 <<<"$(v3_row)"
	[ "$left0" -ge 2 ] && break
	get 10 >/dev/null
	sleep 0.2
done
[ "$left0" -ge 2 ] || fail "v3 not ejected after the 2000 requests: $reason $inrow0 $total0 $left0"
# (ip netns exec directly: $! is the client itself; it ends by itself
# after 30,000 requests at the latest)
ip netns exec "$WP_NETNS" $L7 get --addr "$WP_IP:15008" --certs "$PKI" \
	--authority 198.19.0.13:9080 --host reviews:9080 --path /bg --n 30000 >/dev/null 2>&1 &
BG=$!
PIDS+=($BG)
for _ in $(seq 150); do
	read -r reason inrow total left <<<"$(v3_row)"
	[ "$total" -gt "$total0" ] && break
	sleep 0.2
done
kill "$BG" 2>/dev/null || true
wait "$BG" || true
[ "$total" = $((total0 + 1)) ] || fail "v3 not ejected again (once) within 30 s: total $total0 -> $total"
[ "$inrow" = $((inrow0 + 1)) ] || fail "ejections in a row $inrow0 -> $inrow"
# baseEjectionTime x ejections in a row (seconds left, rounded up)
[ "$left" -gt $((5 * inrow - 2)) ] && [ "$left" -le $((5 * inrow)) ] ||
	fail "ejected again for ${left}s, want about $((5 * inrow))s"
pass "v3 returned after ${left0}s, failed, ejected again: $inrow in a row, ${left}s left (base 5s x $inrow)"

# 3. all three fail: at most 34% (one of three) ejected at any time
echo 503 >"$T/reviews-v1.status"
echo 503 >"$T/reviews-v2.status"
max=0
for _ in $(seq 15); do
	get 20 >/dev/null
	a=$(active)
	[ "$a" -gt "$max" ] && max=$a
done
[ "$max" = 1 ] || fail "maxEjectionPercent 34: $max endpoints ejected at once"
[ "$(stat l7_od_eject_overflow)" -ge 1 ] || fail "no ejection refused (l7_od_eject_overflow)"
pass "all failing: at most 1 of 3 ejected; $(stat l7_od_eject_overflow) ejections refused by maxEjectionPercent"

# 4. h2c: v1 and v2 healthy again, v3 failing; reviews-h2 is its own cluster
echo 200 >"$T/reviews-v1.status"
echo 200 >"$T/reviews-v2.status"
ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/hbone_fwd.py" --listen 127.0.0.1:15001 \
	--addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.24:9080 >"$T/fwd.log" 2>&1 &
PIDS+=($!)
disown $!
for _ in $(seq 100); do grep -q listening "$T/fwd.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$T/fwd.log" || fail "hbone_fwd.py did not start: $(cat "$T/fwd.log")"
h2_row() {
	"$WPCTL" outliers --json --prefix "$WP_PREFIX" | $PY -c '
import json, sys
d = json.load(sys.stdin)
print(sum(1 for i, e in enumerate(d["endpoint"]) if e.startswith("198.18.1.15:")
          and d["cluster"][i] == "outbound|9080||reviews-h2.default.svc.cluster.local"
          and d["seconds_left"][i] > 0))'
}
req0=$(stat l7_h2p_request)
for _ in $(seq 20); do
	in_ns timeout 30 h2load -n 20 -c 1 http://127.0.0.1:15001/h2 >/dev/null 2>&1 || true
	[ "$(h2_row)" = 1 ] && break
done
[ "$(h2_row)" = 1 ] || fail "h2c: v3 not ejected from reviews-h2 ($(stat l7_h2p_request) h2 requests)"
[ "$(stat l7_h2p_request)" -gt "$req0" ] || fail "h2c: the h2 proxy served nothing"
sleep 1 # the first interval
out=$(in_ns timeout 120 h2load -n 2000 -c 2 -m 4 http://127.0.0.1:15001/h2 2>&1) || fail "h2load: $out"
grep -q 'Application protocol: h2c' <<<"$out" || fail "h2load did not speak h2c: $out"
ok=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' <<<"$out")
[ -n "$ok" ] && [ "$ok" -ge 1980 ] || fail "h2c: ${ok:-?} of 2000 requests 2xx: $out"
pass "h2c: v3 ejected by h2 traffic alone, then $ok of 2000 requests 2xx"

# 5. local-origin: v3's backend gone, its connections refused
kill "${PIDS[2]}" 2>/dev/null || true
wait "${PIDS[2]}" 2>/dev/null || true
lo_row() {
	"$WPCTL" outliers --json --prefix "$WP_PREFIX" | $PY -c '
import json, sys
d = json.load(sys.stdin)
for i, e in enumerate(d["endpoint"]):
    if e.startswith("198.18.1.15:") and d["seconds_left"][i] > 0 \
            and d["cluster"][i] == "outbound|9080||reviews-lo.default.svc.cluster.local":
        print(d["reason"][i])
        break
else:
    print("none")'
}
for _ in $(seq 20); do
	o=$(in_ns $L7 get --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.25:9080 \
		--host reviews-lo:9080 --path /lo --n 10) || fail "client: $o"
	[ "$(lo_row)" != none ] && break
done
[ "$(lo_row)" = local-origin ] || fail "reviews-lo: v3 not ejected for local-origin failures: $(lo_row); $("$WPCTL" outliers --prefix "$WP_PREFIX")"
[ "$(stat l7_od_eject_local)" -ge 1 ] || fail "l7_od_eject_local not counted"
pass "connections refused: v3 ejected from reviews-lo for local-origin failures ($(stat l7_h1p_retry) connect retries)"
