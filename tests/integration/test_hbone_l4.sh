#!/usr/bin/env bash
# Issue 5, acceptance 1 and 2: L4 tunnels through the HBONE server.
#   - 100 concurrent tunnels over ONE HBONE connection, 1 MiB each to a
#     plaintext echo backend and back, SHA-256 verified per tunnel;
#   - 256 MiB through one tunnel, SHA-256 of what came back = what was sent;
#     then 64 MiB by the C client that keeps one tunnel full
#     (build/bench/l7_load bulk: 16 KiB TLS records, 16 MiB windows);
#   - upstream by HBONE originate (ambient namespace -> tests/hbone/dest.py
#     on podIP:15008, server identity checked) and by plaintext (the echo
#     pod in a non-ambient namespace), each verified and counted.
# With --loss P (test_hbone_loss.sh) the port drops P of packets each way,
# and the drops are checked to have happened.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hbone_common.sh"
LOAD="/usr/bin/python3 $ROOT/tests/integration/hbone_load.py"
loss=0
[ "${1:-}" = --loss ] && loss=$2

hb_up "$(tb_name)" --loss "$loss"
hb_echo_server
hb_dest
hb_wait_captured 198.19.0.10:7000
base_plain=$(ctr tunnel_plaintext)
base_hbone=$(ctr tunnel_hbone)

out=$(in_ns $LOAD echo --addr "$WP_IP:15008" --certs "$HB_PKI" --authority 198.19.0.10:7000 \
	--tunnels 100 --bytes 1048576 --timeout 300) || fail "100 x 1 MiB: $out"
pass "100 tunnels x 1 MiB over one HBONE connection, plaintext upstream (loss $loss): $out"
[ $(($(ctr tunnel_plaintext) - base_plain)) -ge 100 ] || fail "tunnel_plaintext did not count 100"

out=$(in_ns $LOAD echo --addr "$WP_IP:15008" --certs "$HB_PKI" --authority 198.19.0.10:7000 \
	--tunnels 1 --bytes 268435456 --timeout 600) || fail "256 MiB: $out"
pass "256 MiB through one tunnel, SHA-256 matches (loss $loss): $out"

out=$(hb_bulk 67108864 300) || exit 1
pass "64 MiB through one full tunnel (l7_load bulk), SHA-256 matches (loss $loss): $out"

out=$(in_ns $LOAD echo --addr "$WP_IP:15008" --certs "$HB_PKI" --authority 198.19.0.20:7000 \
	--tunnels 20 --bytes 1048576 --timeout 300) || fail "HBONE originate: $out"
[ $(($(ctr tunnel_hbone) - base_hbone)) -ge 20 ] || fail "tunnel_hbone did not count 20"
[ "$(ctr tunnel_originate_conn)" -ge 1 ] || fail "no originated HBONE connection counted"
[ "$(ctr tunnel_originate_reuse)" -ge 19 ] || fail "originated connection not pooled: reuse $(ctr tunnel_originate_reuse)"
grep -q '"peer": \["spiffe://cluster.local/ns/default/sa/waypoint"\]' "$HB_TMP/dest.out" ||
	fail "dest.py did not see the waypoint's identity: $(tail -3 "$HB_TMP/dest.out")"
grep -q '"baggage"' "$HB_TMP/dest.out" || fail "baggage not forwarded to the destination"
pass "HBONE originate to podIP:15008 (20 tunnels, $(ctr tunnel_originate_conn) connection(s), identity checked): $out"
[ "$(ctr tunnel_upstream_reset)" = 0 ] || fail "upstream resets: $(ctr tunnel_upstream_reset)"
[ "$(ctr tunnel_buf_nomem)" = 0 ] || fail "tunnel_buf_nomem: $(ctr tunnel_buf_nomem)"
# the loss really happened (or, without --loss, nothing was dropped)
drops=$(($(ctr fault_rx_drop) + $(ctr fault_tx_drop)))
if [ "$loss" = 0 ]; then
	[ "$drops" = 0 ] || fail "$drops packets dropped without --loss"
else
	# ~400 MiB each way is ~300,000 full segments: 1% is ~3,000 per direction
	[ "$drops" -gt 1000 ] || fail "fault injection (loss $loss) dropped only $drops packets"
	pass "fault injection dropped $drops packets (loss $loss); retransmits $(ctr tcp_retransmit)"
fi
