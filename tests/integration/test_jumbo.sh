#!/usr/bin/env bash
# Jumbo frames end to end (ports.[N].mtu = 9000) on three kinds of port.
# Everywhere, the appliance's mean received frame must be above 1,514
# bytes, which no frame at MTU 1500 can be: the segments really are ~9 KB,
# each in one mbuf (the pools are sized by the largest MTU).
#
# net_pcap over a veth pair whose kernel end, at MTU 9000, is the Linux
# peer (offloads off on both ends, so every frame on the wire is a real,
# checksummed frame of at most 9,014 bytes): 64 MiB each way through the
# echo service with SHA-256 equal, 100 connections echoing 256 KiB each,
# then one HBONE tunnel (mTLS + HTTP/2 CONNECT, bench/l7_load bulk, 16 KiB
# TLS records) carrying 64 MiB each way to an echo pod behind the veth,
# SHA-256 equal, in jumbo frames both ways.
#
# memif, the NIC stand-in of the benchmarks (tests/testbed --mtu 9000: the
# wire reads a veth with net_pcap, as DPDK 22.11's TAP driver drops frames
# over 1,522 bytes). DPDK's memif driver reports 1,518 bytes as its largest
# frame; waypointd takes 9000 on it as the client when a frame fits one
# memif buffer (dp/port/README.md). In copy mode (bsize 9216): ping at
# 8,972 bytes of payload without fragmenting, and the 64 MiB echo. In
# zero-copy mode: the echo with 1% of frames lost and 1% reordered each
# way, then the HBONE tunnel as above.
#
# A virtual machine's NIC (--link virtio, the same veth wire behind its
# vhost-user host): the 64 MiB echo.
#
# And a TAP port, a memif server and a memif client in copy mode whose
# buffers are too small, asked for 9000, refuse to start, naming the key
# and the limit.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hbone_common.sh"

NS=$(tb_name)
WP_PREFIX=wp-$NS
WP_LOG=/run/wp-testbed/$NS.log
PID=

cleanup() {
	if [ -n "$PID" ]; then
		kill -TERM "$PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$PID" 2>/dev/null || true
	fi
	ip netns pids "$NS" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	rm -f "$WP_LOG"
}
trap 'cleanup; hb_cleanup' EXIT

ip netns add "$NS"
ip -n "$NS" link set lo up
mkdir -p /run/wp-testbed

# ---- ports that cannot carry 9000: a clear error, no start -----------------
# refuses_9000 DEVICE MESSAGE: waypointd on DEVICE with mtu 9000 must not
# start, and must say MESSAGE.
refuses_9000() {
	local rc=0 out
	out=$(cd "$ROOT" && timeout 60 ip netns exec "$NS" "$WP_BIN" -c conf/waypoint.conf \
		--set eal.file_prefix="$WP_PREFIX-t" --set "ports.[0].device=$1" \
		--set 'ports.[0].mtu=9000' 2>&1) || rc=$?
	[ "$rc" -ne 0 ] || fail "waypointd started $1 with mtu 9000"
	grep -qF "$2" <<<"$out" || fail "$1: no error saying '$2': $(tail -3 <<<"$out")"
	pass "$1 refuses mtu 9000: $2 (exit $rc)"
}
refuses_9000 net_tap0 "ports.[0].mtu 9000: net_tap0 takes at most 1504"
refuses_9000 "net_memif0,socket=@$NS-none,bsize=16384" \
	"ports.[0].mtu 9000: net_memif0 takes frames over 1514 bytes only whole in one memif buffer: role=client with zero-copy=yes, or with bsize=9014 or more"
refuses_9000 "net_memif0,role=client,socket=@$NS-none,bsize=9000" "bsize=9014 or more"

# jumbo_echo WHERE: 64 MiB each way through the echo service (SHA-256
# equal), in received frames above 1,514 bytes on average.
jumbo_echo() {
	local rx_p rx_b
	rx_p=$(stat rx_packets) rx_b=$(stat rx_bytes)
	timeout 120 ip netns exec "$WP_NETNS" $TCPCHECK bulk "$WP_IP" 7 $((64 << 20)) ||
		fail "$1: 64 MiB echo at MTU 9000"
	rx_p=$(($(stat rx_packets) - rx_p)) rx_b=$(($(stat rx_bytes) - rx_b))
	[ "$rx_p" -gt 0 ] && [ $((rx_b / rx_p)) -gt 1514 ] ||
		fail "$1: mean frame received $rx_b / $rx_p bytes: no jumbo frames"
	pass "$1: 64 MiB echoed each way at MTU 9000, SHA-256 equal; $rx_p frames received, mean $((rx_b / rx_p)) bytes"
}

# ---- waypointd on a veth at MTU 9000, Linux on the other end --------------
ip -n "$NS" link add wpj0 mtu 9000 type veth peer name wpj1 mtu 9000
for l in wpj0 wpj1; do
	ip netns exec "$NS" ethtool -K "$l" tx off tso off gso off gro off >/dev/null
	ip -n "$NS" link set "$l" up
done
ip -n "$NS" addr add 198.18.0.1/24 dev wpj1
(cd "$ROOT" && exec ip netns exec "$NS" "$WP_BIN" -c conf/waypoint.conf \
	--set workers=1 --set eal.file_prefix="$WP_PREFIX" --set mbufs_per_worker=4095 \
	--set 'ports.[0].device=net_pcap0,iface=wpj0' \
	--set 'ports.[0].ip=198.18.0.2' --set 'ports.[0].prefix=24' \
	--set 'ports.[0].gateway=198.18.0.1' --set 'ports.[0].mtu=9000' \
	--set 'ports.[0].diag=true' --set hbone.enabled=true \
	--set "tls.cert=$HB_PKI/cert.pem" --set "tls.key=$HB_PKI/key.pem" \
	--set "tls.ca=$HB_PKI/ca.pem" --set "cluster.manifest_dir=$HB_MAN" \
	--set cluster.gateway_class=istio-waypoint </dev/null >"$WP_LOG" 2>&1) &
PID=$!
for _ in $(seq 100); do
	ip netns exec "$NS" ping -c 1 -W 0.2 198.18.0.2 >/dev/null 2>&1 && break
	kill -0 "$PID" 2>/dev/null || fail "waypointd exited"
	sleep 0.1
done
ip netns exec "$NS" ping -c 1 -W 1 198.18.0.2 >/dev/null || fail "waypointd does not answer ping"
grep -q "port net_pcap0" "$WP_LOG" || fail "waypointd is not on net_pcap0"

WP_NETNS=$NS WP_IP=198.18.0.2
jumbo_echo net_pcap
timeout 120 ip netns exec "$NS" $TCPCHECK echo-many 198.18.0.2 7 100 262144 || fail "100 x 256 KiB echo"
pass "net_pcap: 100 concurrent connections x 256 KiB echoed and verified at MTU 9000"

# jumbo_tunnel WHERE: 64 MiB each way through one HBONE tunnel to the echo
# pod (hb_bulk: SHA-256 equal), in frames above 1,514 bytes on average both
# ways; the echo pod's server must be running.
jumbo_tunnel() {
	local out rx_p rx_b tx_p tx_b
	rx_p=$(stat rx_packets) rx_b=$(stat rx_bytes) tx_p=$(stat tx_packets) tx_b=$(stat tx_bytes)
	out=$(hb_bulk $((64 << 20)) 120)
	rx_p=$(($(stat rx_packets) - rx_p)) rx_b=$(($(stat rx_bytes) - rx_b))
	tx_p=$(($(stat tx_packets) - tx_p)) tx_b=$(($(stat tx_bytes) - tx_b))
	[ $((rx_b / rx_p)) -gt 1514 ] && [ $((tx_b / tx_p)) -gt 1514 ] ||
		fail "$1: HBONE tunnel: mean frame received $((rx_b / rx_p)), sent $((tx_b / tx_p)) bytes: no jumbo frames"
	pass "$1: one HBONE tunnel, 64 MiB each way at MTU 9000, SHA-256 equal ($out); frames received $rx_p mean $((rx_b / rx_p)) bytes, sent $tx_p mean $((tx_b / tx_p)) bytes"
}

# ---- one HBONE tunnel over the jumbo link ----------------------------------
# The echo pod 198.18.1.10 is Linux behind the veth (waypointd's gateway).
ip -n "$NS" addr add 198.18.1.10/32 dev lo
hb_echo_server
hb_wait_captured 198.19.0.10:7000
jumbo_tunnel net_pcap
cleanup
PID=
trap hb_cleanup EXIT

# ---- memif at MTU 9000: copy mode, then zero-copy --------------------------
hb_up "$NS-m" --link memif --mtu 9000
grep -q "port net_memif0 .* MTU 9000," "$WP_LOG" || fail "no memif port at MTU 9000: $(grep port "$WP_LOG")"
out=$(in_ns ping -M do -c 3 -i 0.2 -W 1 -s 8972 "$WP_IP") || fail "ping at 9,000 bytes over memif: $out"
pass "memif (copy mode): ping at 9,000-byte packets, unfragmented"
jumbo_echo "memif (copy mode)"
"$TESTBED" down "$NS-m"
hb_up "$NS-l" --link memif-zc --mtu 9000 --loss 0.01 --reorder 0.01
jumbo_echo "memif zero-copy, 1% of frames lost and 1% reordered each way"
[ "$(stat tcp_retransmit)" -gt 0 ] && [ "$(stat fault_rx_reorder)" -gt 0 ] ||
	fail "no retransmission or reordering counted under injected faults"
pass "memif zero-copy under faults: $(stat tcp_retransmit) retransmissions, $(stat fault_rx_reorder) frames reordered on receipt"
"$TESTBED" down "$NS-l"
hb_up "$NS-v" --link virtio --mtu 9000
grep -q "port virtio_user0 .* MTU 9000," "$WP_LOG" || fail "no virtio port at MTU 9000: $(grep port "$WP_LOG")"
jumbo_echo virtio
"$TESTBED" down "$NS-v"
hb_up "$NS-z" --link memif-zc --mtu 9000
hb_echo_server
hb_wait_captured 198.19.0.10:7000
jumbo_tunnel "memif zero-copy"
