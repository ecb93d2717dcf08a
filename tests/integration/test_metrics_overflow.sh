#!/usr/bin/env bash
# Issue 14, acceptance 4 (the bound): Istio label sets above
# metrics.max_series_per_core land in the overflow series and are counted.
# One worker keeps at most 3 HTTP label sets; 7 client workloads (the
# baggage's k8s.deployment.name w1 .. w7) send 2 requests each to details:
#   - the first 3 workloads have their own series, 2 requests each;
#   - the other 8 requests are in the series whose labels are all
#     "overflow", and waypointd_metrics_series_overflow counts them;
#   - istio_requests_total sums to 14: nothing is lost;
#   - promtool check metrics is clean but for Istio's base-unit note.
. "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || fail "promtool missing (Debian package prometheus, scripts/setup)"
l7_setup metrics-overflow
tb_up "$(tb_name)" --workers 1 --manifests "$MAN" --certs "$PKI" \
	--set cluster.gateway_class=istio-waypoint --set metrics.max_series_per_core=3

ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/l7_backend.py" --bind 198.18.1.11:9080 \
	--name details --version v1 >"$T/details.log" 2>"$T/details.err" &
PIDS+=($!)
disown $!
for _ in $(seq 100); do grep -q listening "$T/details.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$T/details.log" || fail "details did not start: $(cat "$T/details.err")"
for _ in $(seq 100); do
	in_ns $CLIENT --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.11:9080 \
		--expect-status 200 --timeout 5 >/dev/null 2>&1 && break
	sleep 0.2
done

for i in $(seq 7); do
	in_ns $L7 get --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.11:9080 \
		--host details:9080 --path /details --n 2 \
		--baggage "k8s.namespace.name=default,k8s.deployment.name=w$i,service.name=w$i" \
		>"$T/w$i.json" || fail "w$i: $(cat "$T/w$i.json")"
	grep -q '"statuses": {"200": 2}' "$T/w$i.json" || fail "w$i: $(cat "$T/w$i.json")"
done
in_ns curl -s --max-time 5 -o "$T/m" "http://127.0.0.1:15020/stats/prometheus" || fail "scrape"
lint=$(promtool check metrics <"$T/m" 2>&1 | grep -v 'istio_request_duration_milliseconds.*base unit' || true)
[ -z "$lint" ] || fail "promtool: $lint"
$PY - "$T/m" <<'PY' || fail "overflow series: see above"
import re, sys
text = open(sys.argv[1]).read()
req = {}
for line in text.splitlines():
    m = re.match(r'^istio_requests_total\{(.*)\} (\d+)$', line)
    if m:
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1)))
        req[labels.get("source_workload")] = req.get(labels.get("source_workload"), 0) + int(m.group(2))
        if labels.get("source_workload") == "overflow":
            bad = [k for k, v in labels.items() if k != "reporter" and v != "overflow"]
            assert not bad, f"overflow series with other labels: {labels}"
assert sum(req.values()) == 14, req
own = {k: v for k, v in req.items() if k != "overflow"}
assert len(own) == 3 and all(v == 2 for v in own.values()), req
assert req.get("overflow") == 8, req
ctr = re.search(r'^waypointd_metrics_series_overflow_total\{core="0"\} (\d+)$', text, re.M)
assert ctr and int(ctr.group(1)) == 8, ctr and ctr.group(0)
print("series:", req)
PY
pass "max_series_per_core 3, 7 workloads x 2 requests: 3 series of 2, the overflow series holds 8 and waypointd_metrics_series_overflow_total counts 8; 14 in all; promtool clean"
