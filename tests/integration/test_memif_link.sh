#!/usr/bin/env bash
# The testbed's NIC stand-in (tests/testbed --link memif, used by
# bench/l7_bench.py): waypointd on a memif port that dpdk-testpmd joins to
# the kernel's TAP. ARP and ping resolve through it, 200 TCP connections
# echo 64 KiB each and 64 MiB pass each way with every byte verified, and
# the worker's own packet counters show the traffic went through its port.
# Then the same wire with waypointd's end in zero-copy mode (--link
# memif-zc; waypointd adds the EAL's --single-file-segments it needs).
. "$(dirname "$0")/lib.sh"

tb_up "$(tb_name)" --workers 1 --link memif

grep -q "port net_memif0" "$WP_LOG" || fail "waypointd is not on the memif port: $(head -5 "$WP_LOG")"
ping_all 50 "through the memif wire"
pass "ping -c 50 through dpdk-testpmd and memif: 50 replies"

rx0=$(stat rx_packets)
in_ns $TCPCHECK echo-many "$WP_IP" 7 200 65536 || fail "200 x 64 KiB echo"
pass "200 concurrent connections x 64 KiB echoed and verified"
in_ns $TCPCHECK bulk "$WP_IP" 7 $((64 << 20)) || fail "64 MiB echo"
pass "64 MiB each way, SHA-256 equal"
rx1=$(stat rx_packets)
[ $((rx1 - rx0)) -gt 40000 ] || fail "the worker counted only $((rx1 - rx0)) packets received"
pass "the worker received $((rx1 - rx0)) packets on its memif port"
"$TESTBED" down "$WP_NETNS"

tb_up "$(tb_name)-zc" --workers 1 --link memif-zc
grep -q "port net_memif0" "$WP_LOG" || fail "waypointd is not on the memif port: $(head -5 "$WP_LOG")"
rx0=$(stat rx_packets)
in_ns $TCPCHECK echo-many "$WP_IP" 7 200 65536 || fail "200 x 64 KiB echo, zero-copy"
in_ns $TCPCHECK bulk "$WP_IP" 7 $((64 << 20)) || fail "64 MiB echo, zero-copy"
rx1=$(stat rx_packets)
[ $((rx1 - rx0)) -gt 40000 ] || fail "the worker counted only $((rx1 - rx0)) packets received"
pass "zero-copy memif: 200 x 64 KiB echoed and 64 MiB each way verified ($((rx1 - rx0)) packets received)"
