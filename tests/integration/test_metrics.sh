#!/usr/bin/env bash
# Issue 14, "Istio telemetry from the cores" (the foundation): with 2 workers,
#   - GET /stats/prometheus answers 200 in the exposition format on the
#     metrics port (15020), Envoy's port (15090) and the admin port, and
#     promtool check metrics finds nothing to say about it;
#   - every waypointd_* per-core series equals the worker's counter in
#     wpctl stats --json (read before and after the scrape: the scrape's
#     value lies between), the control plane's counters likewise;
#   - 20 scrapes while ping traffic runs each answer within 1 s and the
#     traffic loses nothing to them;
#   - wpctl top --once -o json: each rate is its counter delta over the
#     measured interval, and the deltas lie within what wpctl stats saw
#     around it, with traffic counted;
#   - wpctl stats --watch 2 prints every 2 s (4 documents in 7 s, not 7),
#     and, piped, writes no escape sequence.
. "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null || fail "promtool missing (Debian package prometheus, scripts/setup)"
tb_up "$(tb_name)" --workers 2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"; tb_cleanup' EXIT

scrape() { # scrape PORT FILE: the body into FILE, prints status and seconds
	in_ns curl -s -o "$2" -w '%{http_code} %{time_total} %{content_type}\n' --max-time 5 \
		"http://127.0.0.1:$1/stats/prometheus"
}

# 1. three ports, the format, promtool
for port in 15020 15090 15000; do
	out=$(scrape $port "$TMP/m.$port") || fail "scrape of port $port failed"
	case $out in
	"200 "*"text/plain; version=0.0.4; charset=utf-8") ;;
	*) fail "port $port answered: $out" ;;
	esac
	grep -q '^waypointd_rx_packets_total{core="1"} ' "$TMP/m.$port" || fail "port $port: no per-core series"
	lint=$(promtool check metrics <"$TMP/m.$port" 2>&1 | grep -v 'istio_request_duration_milliseconds.*base unit' || true)
	[ -z "$lint" ] || fail "promtool on port $port: $lint"
done
pass "/stats/prometheus on 15020, 15090 and admin 15000; promtool check metrics: clean"

# 2. waypointd_* against wpctl stats --json, bracketed
in_ns ping -c 50 -i 0.01 -W 1 "$WP_IP" >/dev/null || fail "ping"
"$WPCTL" stats --json --prefix "$WP_PREFIX" >"$TMP/before.json" || fail "wpctl stats"
scrape 15020 "$TMP/m" >/dev/null || fail "scrape"
sleep 0.5 # the control plane republishes its counters every loop turn
"$WPCTL" stats --json --prefix "$WP_PREFIX" >"$TMP/after.json" || fail "wpctl stats"
/usr/bin/python3 - "$TMP/m" "$TMP/before.json" "$TMP/after.json" <<'PY' || fail "waypointd_* disagree with wpctl stats"
import json, re, sys
series = {}
for line in open(sys.argv[1]):
    m = re.match(r'^waypointd_(\w+?)(_total)?(\{core="(\d+)"\})? (\d+)$', line)
    if m:
        series[(m.group(1), m.group(4))] = int(m.group(5))
b, a = (json.load(open(f)) for f in sys.argv[2:4])
checked = 0
for (name, core), v in series.items():
    if name in ("workers", "tsc_hz"):
        continue
    if core is None:  # a control-plane counter
        lo, hi = b["control_plane"][name], a["control_plane"][name]
    else:
        lo, hi = b["workers"][int(core)][name], a["workers"][int(core)][name]
    if not min(lo, hi) <= v <= max(lo, hi):
        sys.exit(f"{name} core {core}: scrape {v}, stats {lo}..{hi}")
    checked += 1
per_core = sum(1 for k in series if k[1] is not None)
assert per_core >= 2 * 200, f"only {per_core} per-core series"
rx = series[("rx_packets", "0")] + series[("rx_packets", "1")]
assert rx >= 50, f"rx_packets {rx} after 50 pings"
print(f"{checked} series agree ({per_core} per core)")
PY
pass "waypointd_* per-core and control-plane series agree with wpctl stats --json"

# 3. scrapes while traffic runs: bounded, and the traffic is untouched
in_ns ping -c 300 -i 0.01 -W 1 "$WP_IP" >"$TMP/ping" 2>&1 &
ping_pid=$!
worst=0
for i in $(seq 20); do
	out=$(scrape 15020 "$TMP/m.load") || fail "scrape $i under traffic failed"
	read -r code secs _ <<<"$out"
	[ "$code" = 200 ] || fail "scrape $i under traffic: $out"
	worst=$(/usr/bin/python3 -c "print(max($worst, $secs))")
done
wait $ping_pid || fail "ping under scrapes: $(tail -2 "$TMP/ping")"
loss=$(grep -o '[0-9.]*% packet loss' "$TMP/ping" | cut -d% -f1)
/usr/bin/python3 -c "import sys; sys.exit(not ($worst < 1.0 and $loss == 0))" ||
	fail "slowest scrape $worst s, ping loss $loss%"
pass "20 scrapes during 300 pings: slowest $worst s, no ping lost"

# 4. wpctl top --once -o json against the counters
in_ns ping -c 400 -i 0.01 -W 1 "$WP_IP" >/dev/null 2>&1 &
ping_pid=$!
sleep 0.5
"$WPCTL" stats --json --prefix "$WP_PREFIX" >"$TMP/before.json"
"$WPCTL" top --once -o json --interval 2 --prefix "$WP_PREFIX" >"$TMP/top.json" || fail "wpctl top"
"$WPCTL" stats --json --prefix "$WP_PREFIX" >"$TMP/after.json"
wait $ping_pid || true
/usr/bin/python3 - "$TMP/top.json" "$TMP/before.json" "$TMP/after.json" <<'PY' || fail "wpctl top disagrees: $(cat "$TMP/top.json")"
import json, sys
top, b, a = (json.load(open(f)) for f in sys.argv[1:4])
dt = top["interval_s"]
assert 1.9 <= dt <= 3.0, f"interval {dt}"
rates = {"rx_pps": "rx_packets", "tx_pps": "tx_packets", "drops_per_s": "drops",
         "requests_per_s": "requests", "tunnels_opened_per_s": "tunnels_opened"}
busy_total = 0
for c in top["cores"]:
    d = c["delta"]
    for r, k in rates.items():
        assert abs(c[r] - d[k] / dt) <= 1e-6 * max(1, c[r]), (c["core"], r, c[r], d[k], dt)
    assert abs(c["rx_gbps"] - d["rx_bytes"] * 8 / dt / 1e9) < 1e-9, c
    w0, w1 = b["workers"][c["core"]], a["workers"][c["core"]]
    for k in ("rx_packets", "tx_packets", "rx_bytes", "busy_cycles", "drops"):
        assert 0 <= d[k] <= w1[k] - w0[k], (c["core"], k, d[k], w0[k], w1[k])
    # the iterations that did work are some of all
    busy, loops = w1["busy_loops"] - w0["busy_loops"], w1["loops"] - w0["loops"]
    assert 0 <= busy <= loops, (c["core"], busy, loops)
    busy_total += busy
    assert 0 <= c["busy_pct"] <= 100, c
assert busy_total > 0, "no iteration did work under the pings"
t = top["total"]
assert t["delta"]["rx_packets"] == sum(c["delta"]["rx_packets"] for c in top["cores"])
# ping sends 100 requests/s; under load, at least half of them
assert t["delta"]["rx_packets"] >= 0.5 * 100 * dt, t
assert t["rx_pps"] > 0 and t["tx_pps"] > 0, t
print(f"top over {dt:.2f} s: rx {t['rx_pps']:.0f} pkt/s, tx {t['tx_pps']:.0f} pkt/s")
PY
pass "wpctl top --once -o json: rates = counter deltas / interval, within wpctl stats"

# 5. stats --watch 2: the interval honoured, no escapes when piped
timeout 7 "$WPCTL" stats --json --watch 2 --prefix "$WP_PREFIX" >"$TMP/watch" || true
docs=$(grep -c '^{' "$TMP/watch" || true)
[ "$docs" = 4 ] || fail "stats --watch 2 printed $docs documents in 7 s (expected 4)"
timeout 3 "$WPCTL" stats --watch 2 --prefix "$WP_PREFIX" >>"$TMP/watch" || true
grep -q 'COUNTER' "$TMP/watch" || fail "stats --watch table missing"
! grep -q $'\033' "$TMP/watch" || fail "stats --watch wrote escape sequences into a pipe"
timeout 3 "$WPCTL" top --interval 1 --prefix "$WP_PREFIX" >"$TMP/topw" || true
grep -q '^total' "$TMP/topw" || fail "wpctl top printed no table"
! grep -q $'\033' "$TMP/topw" || fail "wpctl top wrote escape sequences into a pipe"
pass "stats --watch 2 every 2 s; stats and top write no escapes into a pipe"
