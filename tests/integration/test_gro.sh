#!/usr/bin/env bash
# Receive coalescing (ports.[0].gro, on by default): the segments of one
# connection that arrive in one receive burst are read once and ACKed
# once. The same loads run with it on and off, each in its own testbed:
# 128 MiB into the discard service (the service's FIN must come after the
# last byte) and 64 MiB each way through the echo service (SHA-256 equal).
# With it on, segments are coalesced (tcp_rx_coalesced) and waypointd
# sends fewer pure ACKs per packet received than with it off; off, none
# is coalesced. The start-up line says which.
. "$(dirname "$0")/lib.sh"

# run on|off: sets acks_<on|off>, rx_<on|off>, co_<on|off> (pure ACKs sent,
# packets received and segments coalesced during the sink)
run() {
	local want=$1 gro=false
	[ "$want" = on ] && gro=true
	tb_up "$(tb_name)-$want" --workers 1 --set "ports.[0].gro=$gro"
	grep -q "receive coalescing: $want" "$WP_LOG" ||
		fail "start-up line does not say 'receive coalescing: $want': $(grep port "$WP_LOG")"
	local a0 r0 c0
	a0=$(stat tcp_ack_only) r0=$(stat rx_packets) c0=$(stat tcp_rx_coalesced)
	in_ns $TCPCHECK sink "$WP_IP" 9 $((128 << 20)) || fail "128 MiB into discard, gro $want"
	printf -v "acks_$want" %d $(($(stat tcp_ack_only) - a0))
	printf -v "rx_$want" %d $(($(stat rx_packets) - r0))
	printf -v "co_$want" %d $(($(stat tcp_rx_coalesced) - c0))
	in_ns $TCPCHECK bulk "$WP_IP" 7 $((64 << 20)) || fail "64 MiB echo, gro $want"
	"$TESTBED" down "$WP_NETNS"
}

run on
run off
[ "$co_on" -gt 0 ] || fail "gro on: no segment coalesced (rx $rx_on packets)"
[ "$co_off" -eq 0 ] || fail "gro off: $co_off segments coalesced"
# fewer pure ACKs per received packet: acks_on/rx_on < acks_off/rx_off
[ $((acks_on * rx_off)) -lt $((acks_off * rx_on)) ] ||
	fail "gro on: $acks_on ACKs for $rx_on packets, not fewer per packet than off ($acks_off for $rx_off)"
pass "128 MiB into discard and 64 MiB echoed each way, gro on and off: on, $co_on segments coalesced and $acks_on pure ACKs for $rx_on packets received; off, $acks_off for $rx_off"
