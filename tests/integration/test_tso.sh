#!/usr/bin/env bash
# TCP segmentation offload (ports.[0].tso = "on") on the TAP port, whose
# driver offers it and cuts in software: the stack hands it segments of up
# to 64 KiB and the driver cuts them to the MSS and sums every piece. The
# source service's 256 MiB (byte i is i % 251) must arrive whole and in
# order, in more packets than segments were handed over; echoes both ways
# verified; the same under 1% loss and 1% reordering (a segment dropped
# before the driver cuts it loses many pieces at once, which recovery
# repairs piece by piece). A device without TSO refuses "on", naming the
# key.
. "$(dirname "$0")/lib.sh"

tb_up "$(tb_name)" --workers 1 --set 'ports.[0].tso=on'
grep -q "TCP segmentation: device (TSO)" "$WP_LOG" || fail "TSO not in use: $(grep port "$WP_LOG")"
pass "the TAP driver cuts TCP segments"

tso0=$(stat tcp_tso_sent)
tx0=$(stat tx_packets)
in_ns $TCPCHECK source "$WP_IP" 19 $((256 << 20)) || fail "256 MiB from the source service"
tso=$(($(stat tcp_tso_sent) - tso0))
tx=$(($(stat tx_packets) - tx0))
[ "$tso" -gt 1000 ] || fail "only $tso segments handed to the device for 256 MiB"
# the packets the worker hands over are segments; the wire counts pieces
wire=$(ip -n "$WP_NETNS" -s -j link show wp0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])')
[ "$wire" -gt "$tx" ] || fail "the kernel received $wire packets, not more than the $tx handed over"
pass "256 MiB from the source service, every byte checked: $tso segments cut by the driver, $tx handed over, $wire on the wire"

in_ns $TCPCHECK echo-many "$WP_IP" 7 200 65536 || fail "200 x 64 KiB echo"
pass "200 concurrent connections x 64 KiB echoed and verified"
in_ns $TCPCHECK bulk "$WP_IP" 7 $((64 << 20)) || fail "64 MiB echo"
pass "64 MiB each way, SHA-256 equal"
"$TESTBED" down "$WP_NETNS"

tb_up "$(tb_name)-l" --workers 1 --set 'ports.[0].tso=on' --loss 0.01 --reorder 0.01
re0=$(stat tcp_retransmit)
in_ns $TCPCHECK source "$WP_IP" 19 $((64 << 20)) || fail "64 MiB from the source service under loss"
[ "$(stat tcp_tso_sent)" -gt 100 ] || fail "TSO not used under loss"
[ $(($(stat tcp_retransmit) - re0)) -gt 0 ] || fail "no retransmissions under 1% loss"
pass "64 MiB under 1% loss and 1% reordering, every byte checked ($(($(stat tcp_retransmit) - re0)) retransmissions)"
"$TESTBED" down "$WP_NETNS"

refused_on_null tso 'ports.[0].tso is "on" but net_null0 offers no TCP segmentation offload'
pass "a device without TSO: ports.[0].tso = \"on\" refused by name"
