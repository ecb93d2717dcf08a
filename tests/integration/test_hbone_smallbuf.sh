#!/usr/bin/env bash
# TLS records sealed straight into TCP's send ring (dp/tunnel/README.md,
# "Records into TCP's ring") with the smallest send ring the configuration
# allows: tcp.snd_buf = 4096, less than one 16 KiB record. A record is then
# cut to what the ring frees (a quarter of it at least), so tunnels never
# wait for room the ring cannot have: 16 MiB through one full tunnel
# (build/bench/l7_load bulk) and 20 concurrent tunnels of 1 MiB, every byte
# back and SHA-256 equal, no upstream reset, no buffer shortage.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hbone_common.sh"
LOAD="/usr/bin/python3 $ROOT/tests/integration/hbone_load.py"

hb_up "$(tb_name)" --set tcp.snd_buf=4096
hb_echo_server
hb_wait_captured 198.19.0.10:7000

out=$(hb_bulk 16777216 120) || exit 1
pass "16 MiB through one full tunnel with a 4 KiB TCP send ring, SHA-256 matches: $out"

out=$(in_ns $LOAD echo --addr "$WP_IP:15008" --certs "$HB_PKI" --authority 198.19.0.10:7000 \
	--tunnels 20 --bytes 1048576 --timeout 120) || fail "20 x 1 MiB: $out"
pass "20 tunnels x 1 MiB over one HBONE connection with a 4 KiB TCP send ring: $out"
[ "$(ctr tunnel_upstream_reset)" = 0 ] || fail "upstream resets: $(ctr tunnel_upstream_reset)"
[ "$(ctr tunnel_buf_nomem)" = 0 ] || fail "tunnel_buf_nomem: $(ctr tunnel_buf_nomem)"
