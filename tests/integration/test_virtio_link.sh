#!/usr/bin/env bash
# waypointd on the NIC of a virtual machine (tests/testbed --link virtio):
# a virtio_user port whose vhost-user host side dpdk-testpmd joins to the
# kernel's TAP. The port needs the EAL's --single-file-segments (the host
# maps waypointd's memory in at most 8 regions), which waypointd adds for
# it. ARP and ping resolve through it, 64 MiB pass each way through the TCP
# echo service, then 64 MiB each way through one HBONE tunnel (mTLS +
# HTTP/2 CONNECT) to an echo pod, every byte back with the SHA-256 it was
# sent with, and the worker's own counters show the traffic crossed its
# virtio port.
# Then a host that offers what a KVM host does (--link virtio-offload:
# checksums, joining and cutting segments). With checksum offload alone
# (ports.[0].checksum_offload = "on"; lro and tso "auto", which is off on a
# virtual device) every TCP segment arrives marked as needing its checksum
# (the field holds only the pseudo-header's sum, the data is intact, and
# the driver says so with RX_L4_CKSUM_NONE) and none is dropped for it;
# the guest offers the host no large segments either way (no GUEST_TSO4,
# no HOST_TSO4 feature). 16 MiB each way through the echo service and a
# tunnel. Last, with lro and tso "on": both features agreed, frames of
# several segments arrive as mbuf chains that TCP reads in place, the
# device cuts waypointd's large segments: 64 MiB each way through the echo
# service and through a tunnel, SHA-256 equal, the mean received frame
# above 3,000 bytes (no frame at MTU 1500 is), none dropped. And lro = "on"
# on a device without LRO (net_null) stops the start, naming the key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hbone_common.sh"

hb_up "$(tb_name)" --workers 1 --link virtio
grep -q "port virtio_user0" "$WP_LOG" || fail "waypointd is not on the virtio port: $(head -5 "$WP_LOG")"
ping_all 20 "through the virtio wire"
pass "ping -c 20 through dpdk-testpmd's vhost-user host and virtio_user: 20 replies"

rx0=$(stat rx_packets)
in_ns $TCPCHECK bulk "$WP_IP" 7 $((64 << 20)) || fail "64 MiB echo"
pass "64 MiB each way through the echo service, SHA-256 equal"

hb_echo_server
hb_wait_captured 198.19.0.10:7000
out=$(hb_bulk $((64 << 20)) 120) || exit 1
pass "64 MiB each way through one HBONE tunnel, SHA-256 equal: $out"
rx1=$(stat rx_packets)
[ $((rx1 - rx0)) -gt 80000 ] || fail "the worker counted only $((rx1 - rx0)) packets received"
pass "the worker received $((rx1 - rx0)) packets on its virtio port"
"$TESTBED" down "$WP_NETNS"

# wire_feature BIT: 1 when the guest and the host agreed on virtio feature
# BIT (7 GUEST_TSO4: the host may pass large segments; 11 HOST_TSO4: the
# guest may), from the wire's log.
wire_feature() {
	local f
	f=$(grep -o 'negotiated Virtio features: 0x[0-9a-f]*' "$(dirname "$WP_LOG")/wire.log" |
		tail -1 | awk '{print $4}')
	[ -n "$f" ] || fail "no virtio features in the wire's log"
	echo $((f >> $1 & 1))
}

hb_up "$(tb_name)-csum" --workers 1 --link virtio-offload --set 'ports.[0].checksum_offload=on'
grep -q "TCP checksums: device" "$WP_LOG" || fail "checksum offload is not on: $(grep port "$WP_LOG")"
[ "$(wire_feature 7)$(wire_feature 11)" = 00 ] || fail "TSO4 agreed with lro and tso \"auto\" on a vdev"
hb_echo_server
hb_wait_captured 198.19.0.10:7000
in_ns $TCPCHECK bulk "$WP_IP" 7 $((16 << 20)) || fail "16 MiB echo, partial checksums"
out=$(hb_bulk $((16 << 20)) 120) || exit 1
[ "$(stat tcp_bad_checksum)" = 0 ] || fail "tcp_bad_checksum $(stat tcp_bad_checksum)"
pass "partial checksums from the host (RX_L4_CKSUM_NONE): 16 MiB echoed and 16 MiB through a tunnel, no bad checksum: $out"
"$TESTBED" down "$WP_NETNS"

hb_up "$(tb_name)-lro" --workers 1 --link virtio-offload --set 'ports.[0].checksum_offload=on' \
	--set 'ports.[0].lro=on' --set 'ports.[0].tso=on'
grep -q "TCP segmentation: device (TSO).*LRO: device" "$WP_LOG" ||
	fail "TSO and LRO are not on: $(grep port "$WP_LOG")"
[ "$(wire_feature 7)$(wire_feature 11)" = 11 ] || fail "GUEST_TSO4 and HOST_TSO4 not both agreed"
hb_echo_server
hb_wait_captured 198.19.0.10:7000
in_ns $TCPCHECK bulk "$WP_IP" 7 $((64 << 20)) || fail "64 MiB echo, LRO and TSO"
out=$(hb_bulk $((64 << 20)) 120) || exit 1
pk=$(stat rx_packets)
by=$(stat rx_bytes)
[ "$(stat eth_nonlinear)" = 0 ] || fail "eth_nonlinear $(stat eth_nonlinear)"
[ "$(stat tcp_bad_checksum)" = 0 ] || fail "tcp_bad_checksum $(stat tcp_bad_checksum)"
[ $((by / pk)) -gt 3000 ] || fail "mean received frame $((by / pk)) bytes: nothing was joined"
[ "$(stat tcp_tso_sent)" -gt 100 ] || fail "tcp_tso_sent $(stat tcp_tso_sent)"
pass "LRO and TSO: 64 MiB echoed and 64 MiB through a tunnel in $pk frames of $((by / pk)) bytes on average, $(stat tcp_tso_sent) segments cut by the device: $out"
"$TESTBED" down "$WP_NETNS"

refused_on_null lro 'ports.[0].lro is "on" but net_null0 offers no large receive offload'
pass "a device without LRO: ports.[0].lro = \"on\" refused by name"
