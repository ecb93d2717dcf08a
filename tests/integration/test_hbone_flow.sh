#!/usr/bin/env bash
# Issue 5, "a slow reader slows the writer; nothing buffers without bound",
# both directions, with hbone.stream_window = 1 MiB:
#   - upload to a backend that does not read (16 KiB socket buffers): the
#     client's HTTP/2 send window runs dry and stays dry, waypointd's
#     queued_bytes gauge stays <= the 1 MiB window it granted, the bytes in
#     flight stay under window + 768 KiB; once the backend reads, all 32 MiB
#     arrive (SHA-256) and the tunnel ends cleanly;
#   - download to a client that reads frames but returns no window: the
#     backend's writes block, at most 768 KiB sit between it and the client,
#     the gauges stay small; once the client opens its window all 32 MiB
#     arrive (SHA-256).
# The backend is the check's own, on the "refuse" pod (198.19.0.11:7001),
# where nothing else listens. Afterwards no tunnel, queued byte or held HTTP/2 buffer is left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hbone_common.sh"
CHECK="/usr/bin/python3 $ROOT/tests/integration/hbone_tunnel_checks.py"
WINDOW=1048576

hb_up "$(tb_name)" --set hbone.stream_window=$WINDOW
hb_echo_server
hb_wait_captured 198.19.0.10:7000
base_done=$(ctr tunnel_done)
base_reset=$(($(ctr tunnel_downstream_reset) + $(ctr tunnel_upstream_reset) + $(ctr tunnel_buf_nomem)))

out=$(in_ns $CHECK flow-up --addr "$WP_IP:15008" --certs "$HB_PKI" --authority 198.19.0.11:7001 \
	--port 7001 --prefix "$WP_PREFIX" --window $WINDOW) || fail "slow upstream reader: $out"
pass "slow upstream reader: client blocked by the HTTP/2 window, bounded, then intact: $out"

out=$(in_ns $CHECK flow-down --addr "$WP_IP:15008" --certs "$HB_PKI" --authority 198.19.0.11:7001 \
	--port 7001 --prefix "$WP_PREFIX") || fail "slow HBONE client reader: $out"
pass "slow HBONE client reader: backend blocked, bounded, then intact: $out"

# Upload again, upstream by HBONE originate (dest.py forwards to the same
# backend on its loopback and blocks while the backend does not read): the
# destination's HTTP/2 window closes, waypointd stops returning the client's
# window, queued_bytes stays <= 1 MiB. In flight may now also hold the
# destination's 4 MiB stream window and dest.py's own socket buffers (its
# loopback socket to the backend is autotuned to a few MiB): bounded by
# 1 + 12 MiB, still well under the 32 MiB pushed.
in_ns $HB_DEST --listen 198.18.1.20:15008 --certs "$HB_PKI" --forward 127.0.0.1:7001 >"$HB_TMP/dest.out" 2>&1 &
HB_PIDS+=($!)
for _ in $(seq 50); do grep -q listening "$HB_TMP/dest.out" 2>/dev/null && break; sleep 0.1; done
hbone=$(ctr tunnel_hbone)
out=$(in_ns $CHECK flow-up --addr "$WP_IP:15008" --certs "$HB_PKI" --authority 198.19.0.20:7000 \
	--port 7001 --prefix "$WP_PREFIX" --window $WINDOW --slack $((12 << 20))) || fail "slow reader behind HBONE originate: $out"
[ $(($(ctr tunnel_hbone) - hbone)) -eq 1 ] || fail "the tunnel did not go by HBONE originate"
pass "slow reader behind HBONE originate: client blocked, bounded, then intact: $out"

[ $(($(ctr tunnel_done) - base_done)) -eq 3 ] || fail "tunnel_done counted $base_done -> $(ctr tunnel_done), not 3 more"
now_reset=$(($(ctr tunnel_downstream_reset) + $(ctr tunnel_upstream_reset) + $(ctr tunnel_buf_nomem)))
[ "$now_reset" = "$base_reset" ] || fail "a tunnel was reset or ran out of buffer ($base_reset -> $now_reset)"
# (an idle pooled originate connection may stay: its HTTP/2 state is small)
idle() { /usr/bin/python3 -c 'import json,sys; g=json.loads(sys.argv[1]); sys.exit(0 if g["tunnels"] == 0 and g["queued_bytes"] == 0 and g["h2_held_bytes"] < 262144 else 1)' "$1"; }
for _ in $(seq 30); do
	g=$(tel /wp/tunnels)
	idle "$g" && break
	sleep 0.1
done
idle "$g" || fail "tunnels, queued bytes or HTTP/2 buffers left: $g"
pass "nothing left behind: $g"
