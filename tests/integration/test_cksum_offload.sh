#!/usr/bin/env bash
# TCP checksum offload (ports.[0].checksum_offload = "on"), exercised on the
# TAP port, whose driver offers it (and does the work in software): the
# stack leaves the pseudo-header sum and the driver completes every
# checksum, so 200 connections x 64 KiB and 64 MiB each way must come back
# verified; the driver flags received segments, and the 20 SYNs sent here
# with a broken checksum must still be dropped and counted while 20 good
# ones are answered.
. "$(dirname "$0")/lib.sh"

tb_up "$(tb_name)" --workers 1 --set 'ports.[0].checksum_offload=on'

grep -q "TCP checksums: device," "$WP_LOG" || fail "offload not in use: $(grep port "$WP_LOG")"
pass "the TAP driver computes and verifies TCP checksums"

in_ns $TCPCHECK echo-many "$WP_IP" 7 200 65536 || fail "200 x 64 KiB echo"
pass "200 concurrent connections x 64 KiB echoed and verified"
in_ns $TCPCHECK bulk "$WP_IP" 7 $((64 << 20)) || fail "64 MiB echo"
pass "64 MiB each way, SHA-256 equal"

bad0=$(stat tcp_bad_checksum)
rst0=$(stat tcp_conn_reset)
in_ns /usr/bin/python3 - "$WP_PEER_IP" "$WP_IP" <<'PY' || fail "raw SYNs not sent"
import socket, struct, sys
src, dst = (socket.inet_aton(a) for a in sys.argv[1:3])

def csum(b):
    b += b"\0" * (len(b) & 1)
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for i in range(40):
    tcp = struct.pack("!HHIIBBHHH", 30000 + i, 7, 1000 + i, 0, 5 << 4, 0x02, 65535, 0, 0)
    ck = csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    if i < 20:
        ck ^= 0x0101  # broken
    tcp = tcp[:16] + struct.pack("!H", ck) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    s.sendto(ip + tcp, (sys.argv[2], 0))
PY
sleep 0.5
[ $(($(stat tcp_bad_checksum) - bad0)) = 20 ] ||
	fail "tcp_bad_checksum moved by $(($(stat tcp_bad_checksum) - bad0)), not 20"
pass "20 SYNs with a broken checksum dropped and counted"
# each good SYN got a SYN-ACK, which the kernel (it sent no SYN) resets
[ $(($(stat tcp_conn_reset) - rst0)) = 20 ] ||
	fail "good SYNs answered: $(($(stat tcp_conn_reset) - rst0)) of 20"
pass "20 good SYNs answered (SYN-ACK, reset by the kernel that never sent them)"
