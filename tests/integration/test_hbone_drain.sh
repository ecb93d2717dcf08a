#!/usr/bin/env bash
# Issue 5, acceptance 4: SIGTERM drains. Tunnels that are open when SIGTERM
# arrives get a GOAWAY and still finish their transfer (verified); then
# waypointd exits 0. Also: removing a Gateway from the manifests sends
# GOAWAY on the connections that carried its tunnels.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hbone_common.sh"
LOAD="/usr/bin/python3 $ROOT/tests/integration/hbone_load.py"

hb_up "$(tb_name)"
hb_echo_server
hb_wait_captured 198.19.0.10:7000

# Gateway removal: a connection that carried plain/* tunnels gets GOAWAY.
in_ns /usr/bin/python3 - "$ROOT" "$WP_IP" "$HB_PKI" "$HB_MAN/10-gw-plain.yaml" <<'PY' || fail "no GOAWAY after the Gateway was removed"
import os, sys, time
sys.path.insert(0, os.path.join(sys.argv[1], "tests", "hbone"))
from client import HboneClient, echo_tunnels
ip, pki, gw = sys.argv[2:5]
c = HboneClient(ip, 15008, pki + "/productpage.pem", pki + "/productpage-key.pem", pki + "/ca.pem")
ok, rep = echo_tunnels(c, "198.19.0.10:7000", 2, 4096)
assert ok, rep
os.unlink(gw)
c.run_until(lambda: c.goaway is not None, 10)
print("goaway after Gateway removal:", c.goaway is not None)
sys.exit(0 if c.goaway is not None else 1)
PY
[ "$(ctr tunnel_drain_gateway_gone)" -ge 1 ] || fail "tunnel_drain_gateway_gone not counted"
pass "Gateway plain/waypoint removed: GOAWAY on the connection that served it"
hb_gw plain >"$HB_MAN/10-gw-plain.yaml"
hb_wait_captured 198.19.0.10:7000

# SIGTERM while 8 tunnels stream 3 MiB each at 1 MiB/s.
in_ns $LOAD echo --addr "$WP_IP:15008" --certs "$HB_PKI" --authority 198.19.0.10:7000 \
	--tunnels 8 --bytes 3145728 --rate 1048576 --expect-goaway --timeout 60 >"$HB_TMP/drain.out" 2>&1 &
load=$!
sleep 1
kill -TERM "$WP_PID"
wait "$load" || fail "tunnels did not finish across the drain: $(cat "$HB_TMP/drain.out")"
for _ in $(seq 100); do kill -0 "$WP_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$WP_PID" 2>/dev/null && fail "waypointd still running 10 s after the drain"
for _ in $(seq 20); do [ -s "$WP_RC_FILE" ] && break; sleep 0.05; done
[ "$(cat "$WP_RC_FILE")" = 0 ] || fail "exit status $(cat "$WP_RC_FILE")"
grep -q "waypointd: drained (0 " "$WP_LOG" || fail "no clean drain in the log: $(tail -3 "$WP_LOG")"
pass "SIGTERM: GOAWAY received, 8 open tunnels finished verified, exit 0: $(cat "$HB_TMP/drain.out")"
