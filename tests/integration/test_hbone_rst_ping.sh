#!/usr/bin/env bash
# Issue 5, tunnel-level RST_STREAM and PING keepalive (hbone.ping_interval_ms
# = 300, ping_timeout_ms = 600):
#   - the client resets a tunnel (RST_STREAM CANCEL) while bytes flow both
#     ways: the backend sees EOF within 2 s (DESIGN: CANCEL reads as EOF)
#     and, since nothing can go back on a reset stream, its further sends
#     are refused within 3 s (no half-open upstream left streaming into the
#     void); the tunnel is freed, tunnel_downstream_reset counts it once,
#     the HBONE connection stays usable, even after 250 RST_STREAMs for
#     the closed stream (what python-h2 answers in-flight DATA with; not a
#     rapid reset: hbone_rapid_reset stays); the same over HBONE originate
#     (the upstream stream is CANCELled, dest.py closes its backend);
#   - the backend resets a tunnel (SO_LINGER 0): the client gets RST_STREAM,
#     tunnel_upstream_reset counts it;
#   - of three connections with a tunnel each, the one that goes silent is
#     closed (hbone_ping_timeout, its backend sees EOF or RST, not before
#     interval + timeout), so is the one that keeps sending DATA but never
#     ACKs a PING; the one that answers stays up and works.
# The backends are the check's own, on the "refuse" pod (198.19.0.11:7001).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hbone_common.sh"
CHECK="/usr/bin/python3 $ROOT/tests/integration/hbone_tunnel_checks.py"

hb_up "$(tb_name)" --set hbone.ping_interval_ms=300 --set hbone.ping_timeout_ms=600
ARGS=(--addr "$WP_IP:15008" --certs "$HB_PKI" --authority 198.19.0.11:7001 --port 7001 --prefix "$WP_PREFIX")
hb_echo_server
hb_wait_captured 198.19.0.10:7000

down=$(ctr tunnel_downstream_reset)
up=$(ctr tunnel_upstream_reset)
rr=$(ctr hbone_rapid_reset)
out=$(in_ns $CHECK rst "${ARGS[@]}") || fail "RST_STREAM: $out"
[ $(($(ctr tunnel_downstream_reset) - down)) -eq 1 ] || fail "tunnel_downstream_reset moved by $(($(ctr tunnel_downstream_reset) - down)), not 1 (the client's CANCEL)"
[ $(($(ctr tunnel_upstream_reset) - up)) -eq 1 ] || fail "tunnel_upstream_reset did not count the backend's RST once"
[ "$(ctr hbone_rapid_reset)" = "$rr" ] || fail "resets of an already closed stream were taken for a rapid reset"
pass "RST_STREAM(CANCEL) closes the upstream, an upstream RST resets the stream, counted: $out"

# The same CANCEL on a tunnel forwarded by HBONE originate: dest.py forwards
# the destination's stream to the backend on its loopback.
in_ns $HB_DEST --listen 198.18.1.20:15008 --certs "$HB_PKI" --forward 127.0.0.1:7001 >"$HB_TMP/dest.out" 2>&1 &
HB_PIDS+=($!)
for _ in $(seq 50); do grep -q listening "$HB_TMP/dest.out" 2>/dev/null && break; sleep 0.1; done
down=$(ctr tunnel_downstream_reset)
hbone=$(ctr tunnel_hbone)
out=$(in_ns $CHECK rst "${ARGS[@]}" --authority 198.19.0.20:7000 --only-cancel) || fail "RST_STREAM over HBONE originate: $out"
[ $(($(ctr tunnel_hbone) - hbone)) -eq 1 ] || fail "the tunnel did not go by HBONE originate"
[ $(($(ctr tunnel_downstream_reset) - down)) -eq 1 ] || fail "tunnel_downstream_reset moved by $(($(ctr tunnel_downstream_reset) - down)), not 1 (originate)"
pass "RST_STREAM(CANCEL) cancels the originated upstream stream too: $out"

timeouts=$(ctr hbone_ping_timeout)
sent=$(ctr hbone_ping_sent)
down=$(ctr tunnel_downstream_reset)
out=$(in_ns $CHECK ping "${ARGS[@]}" --wait 3 --min-close 0.85) || fail "PING timeout: $out"
[ $(($(ctr hbone_ping_timeout) - timeouts)) -eq 2 ] || fail "hbone_ping_timeout moved by $(($(ctr hbone_ping_timeout) - timeouts)), not 2"
[ $(($(ctr hbone_ping_sent) - sent)) -ge 2 ] || fail "hbone_ping_sent did not move on both connections"
[ $(($(ctr tunnel_downstream_reset) - down)) -eq 2 ] || fail "tunnel_downstream_reset moved by $(($(ctr tunnel_downstream_reset) - down)), not 2 (the mute and deaf connections' tunnels)"
pass "a client that answers no PINGs is dropped, one that answers is kept: $out"
