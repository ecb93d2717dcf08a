#!/usr/bin/env bash
# Issue 14, acceptance 2 (the Telemetry part, manifest mode): the access
# log turned on and off by a telemetry.istio.io Telemetry resource that
# targets the waypoint Gateway, on a waypoint whose configuration leaves it
# off (no access_log.file):
#   - before any Telemetry, HTTP requests write no access-log line;
#   - a Telemetry in the watched manifest directory with targetRefs to the
#     Gateway and the envoy provider: /config_dump shows the gateway's
#     telemetry (accessLog on, the Telemetry applied as targetRefs), and
#     each request writes one line in Istio's text format to waypointd's
#     stdout (what Istio's built-in envoy provider does);
#   - a second, namespace-wide Telemetry with metrics overrides: reported
#     as not applied with its file and line, counted in
#     CP_TELEMETRY_NOT_APPLIED;
#   - the manifest edited to `disabled: true`: accessLog off, no more lines.
. "$(dirname "$0")/lib.sh"
l7_setup tel
tb_up "$(tb_name)" --manifests "$MAN" --certs "$PKI" --set cluster.gateway_class=istio-waypoint
ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/l7_backend.py" --bind 198.18.1.11:9080 \
	--name details --version v1 >"$T/details.log" 2>&1 &
PIDS+=($!)
disown $!
for _ in $(seq 100); do grep -q listening "$T/details.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$T/details.log" || fail "details did not start: $(cat "$T/details.log")"
for _ in $(seq 100); do
	in_ns $CLIENT --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.11:9080 \
		--expect-status 200 --timeout 5 >/dev/null 2>&1 && break
	sleep 0.2
done

get() { in_ns $L7 get --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.11:9080 \
	--host details:9080 --path "$1" --n "$2" >"$T/get.json" || fail "GET $1: $(cat "$T/get.json")"; }
# lines PATH: access-log lines for GET PATH in waypointd's stdout
lines() { grep -c "\"GET $1 HTTP/1.1\" 200 " "$WP_LOG" || true; }
# tel_dump EXPR: EXPR on the waypoint gateway's telemetry object (t) and the dump (d)
tel_dump() {
	in_ns $PY -c 'import json, sys, urllib.request
d = json.load(urllib.request.urlopen("http://127.0.0.1:15000/config_dump", timeout=5))
(g,) = [g for g in d["snapshot"]["gateways"] if g["name"] == "waypoint" and g["namespace"] == "default"]
t = g["telemetry"]
print(eval(sys.argv[1]))' "$1"
}
wait_tel() {
	for _ in $(seq 100); do [ "$(tel_dump "$1")" = "$2" ] && return 0; sleep 0.1; done
	fail "$1 is $(tel_dump "$1"), expected $2"
}
# put FILE: the manifest from stdin, renamed into place (one inotify event)
put() { cat >"$T/put.tmp" && mv "$T/put.tmp" "$MAN/$1"; }

get /before 2
sleep 0.3
[ "$(lines /before)" = 0 ] || fail "lines without access_log.file nor Telemetry: $(grep before "$WP_LOG")"
[ "$(tel_dump 't["accessLog"]')" = config ] || fail "accessLog $(tel_dump 't["accessLog"]')"
pass "no access_log.file, no Telemetry: no access-log line (accessLog: config)"

put 40-telemetry.yaml <<'YAML'
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: waypoint-logs
  namespace: default
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: Gateway
    name: waypoint
  accessLogging:
  - providers:
    - name: envoy
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: namespace-metrics
  namespace: default
spec:
  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT}
      disabled: true
YAML
wait_tel 't["accessLog"]' on
[ "$(tel_dump '[(a["name"], a["level"]) for a in t["applied"]]')" = \
	"[('namespace-metrics', 'namespace'), ('waypoint-logs', 'targetRefs')]" ] ||
	fail "applied: $(tel_dump 't["applied"]')"
get /on 3
for _ in $(seq 50); do [ "$(lines /on)" -ge 3 ] && break; sleep 0.1; done
sleep 0.3
[ "$(lines /on)" = 3 ] || fail "$(lines /on) lines for 3 requests: $(grep '/on' "$WP_LOG")"
grep "\"GET /on HTTP/1.1\" 200 " "$WP_LOG" | head -1 | $PY -c '
import re, sys
ln = sys.stdin.read().strip()
m = re.match(r"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] \"GET /on HTTP/1.1\" 200 - \S+ \S+ \"[^\"]*\" "
             r"\d+ \d+ \d+ \S+ \"[^\"]*\" \"l7_http\" \"[^\"]+\" \"details:9080\" \"198.18.1.11:9080\" "
             r"outbound\|9080\|\|details.default.svc.cluster.local \S+ 198.19.0.11:9080 \S+ \S+ \S+$", ln)
sys.exit(0 if m else "not the text format: " + ln)' || fail "line format"
pass "Telemetry with targetRefs to the waypoint and provider envoy: one line per request on stdout, Istio's text format"

tel_dump '"\n".join(t["notApplied"])' | grep -q "40-telemetry.yaml:22: Telemetry default/namespace-metrics: spec.metrics: not applied" ||
	fail "metrics not reported: $(tel_dump 't["notApplied"]')"
[ "$(tel_dump 'd["counters"]["CP_TELEMETRY_NOT_APPLIED"]')" -ge 1 ] || fail "CP_TELEMETRY_NOT_APPLIED not counted"
pass "metrics overrides reported with file:line and counted (CP_TELEMETRY_NOT_APPLIED $(tel_dump 'd["counters"]["CP_TELEMETRY_NOT_APPLIED"]'))"

put 40-telemetry.yaml <<'YAML'
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: waypoint-logs
  namespace: default
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: Gateway
    name: waypoint
  accessLogging:
  - providers:
    - name: envoy
    disabled: true
YAML
wait_tel 't["accessLog"]' off
get /off 2
sleep 0.5
[ "$(lines /off)" = 0 ] || fail "lines after disabled: true: $(grep /off "$WP_LOG")"
[ "$(lines /on)" = 3 ] || fail "/on lines changed"
pass "manifest edited to disabled: true: accessLog off, no more lines"
[ "$(stat access_log_dropped)" = 0 ] || fail "lines dropped: $(stat access_log_dropped)"
