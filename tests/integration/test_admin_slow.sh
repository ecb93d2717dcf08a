#!/usr/bin/env bash
# Issue 19, "one slow admin client holds the control plane and shutdown":
# while one client trickles a request into the admin port (a byte every
# 1.5 s) and four connect and send nothing (each coming back when closed),
#   - each of 3 manifest edits shows in /config_dump's snapshot within 1 s
#     of the write, and every /config_dump answers within 1 s;
#   - the slow clients were cut off at the deadline (admin_timeout moved);
#   - SIGTERM, with them still connected, ends waypointd within the drain
#     deadline (hbone.drain_timeout_ms = 3000; no tunnel is open), exit 0,
#     and the DPDK runtime directory (telemetry socket) is gone.
# Before the event-driven server, an edit waited for the slow client and
# waypointd outlived SIGTERM by more than 30 s.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hbone_common.sh"
DRAIN_MS=3000

hb_up "$(tb_name)" --set hbone.drain_timeout_ms=$DRAIN_MS
hb_echo_server
hb_wait_captured 198.19.0.10:7000

hold=$HB_TMP/hold
touch "$hold"
in_ns /usr/bin/python3 "$ROOT/tests/integration/admin_slow.py" --dir "$HB_MAN" --hold "$hold" \
	>"$HB_TMP/slow.out" 2>&1 &
slow=$!
HB_PIDS+=("$slow")
for _ in $(seq 900); do
	[ -s "$HB_TMP/slow.out" ] && break
	kill -0 "$slow" 2>/dev/null || break
	sleep 0.1
done
out=$(head -1 "$HB_TMP/slow.out")
echo "admin_slow.py: $out"
/usr/bin/python3 - "$out" <<'PY' || fail "edits or /config_dump slowed by the slow clients: $out"
import json, sys
o = json.loads(sys.argv[1])
assert "error" not in o, o["error"]
assert len(o["edit_ms"]) == 3, o
assert max(o["edit_ms"]) <= 1000, "an edit took %d ms" % max(o["edit_ms"])
assert max(o["dump_ms"]) <= 1000, "a /config_dump took %d ms" % max(o["dump_ms"])
PY
pass "3 edits visible in $(echo "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["edit_ms"])') ms beside the slow clients"
timeouts=$(in_ns /usr/bin/python3 -c 'import json, urllib.request
print(json.load(urllib.request.urlopen("http://127.0.0.1:15000/config_dump", timeout=5))["counters"]["ADMIN_TIMEOUT"])')
[ "$timeouts" -ge 1 ] || fail "admin_timeout did not move: the slow clients were never cut off"

kill -0 "$slow" 2>/dev/null || fail "the slow clients are gone before SIGTERM; the test proves nothing"
start=$(date +%s%N)
kill -TERM "$WP_PID"
for _ in $(seq $((DRAIN_MS / 50 + 40))); do kill -0 "$WP_PID" 2>/dev/null || break; sleep 0.05; done
ms=$(( ($(date +%s%N) - start) / 1000000 ))
kill -0 "$WP_PID" 2>/dev/null && fail "waypointd still running $ms ms after SIGTERM with slow admin clients"
rm -f "$hold"
[ "$ms" -le "$DRAIN_MS" ] || fail "exit took $ms ms, past the drain deadline ($DRAIN_MS ms)"
for _ in $(seq 20); do [ -s "$WP_RC_FILE" ] && break; sleep 0.05; done
[ "$(cat "$WP_RC_FILE" 2>/dev/null)" = 0 ] || fail "exit status '$(cat "$WP_RC_FILE" 2>/dev/null)', expected 0"
[ -z "$(ls /var/run/dpdk/"$WP_PREFIX" 2>/dev/null)" ] || fail "runtime files left: $(ls /var/run/dpdk/"$WP_PREFIX")"
pass "SIGTERM with slow admin clients connected: exited in $ms ms, no telemetry socket left"
