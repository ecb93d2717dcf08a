#!/usr/bin/env bash
# TCP acceptance 2 (waypointd as the server, Linux as the client), through a
# testbed with 2 workers: 1,000 concurrent connections each echo 64 KiB with
# every byte verified; 256 MiB each way through one connection with matching
# SHA-256; 100,000 short connections; afterwards no control block is left.
. "$(dirname "$0")/lib.sh"

tb_up "$(tb_name)" --workers 2

in_ns $TCPCHECK echo-many "$WP_IP" 7 1000 65536 || fail "1000 x 64 KiB echo"
pass "1000 concurrent connections x 64 KiB echoed and verified"

in_ns $TCPCHECK bulk "$WP_IP" 7 $((256 << 20)) || fail "256 MiB echo"
pass "256 MiB each way, SHA-256 equal"

# The Linux client closes first, so its ports sit in TIME_WAIT: let it reuse
# them (timestamps prove freshness, RFC 7323) or it runs out after ~28k.
in_ns sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="10000 60999"
in_ns $TCPCHECK short "$WP_IP" 7 100000 || fail "100000 short connections"
pass "100000 short connections"

wait_gauge tcp_conns 0 10
[ "$(stat tcp_rcv_bufs)" = 0 ] && [ "$(stat tcp_snd_bufs)" = 0 ] || fail "buffers still in use"
pass "no control block or buffer left behind (tcp_conns 0); passive opens: $(stat tcp_passive_open)"
