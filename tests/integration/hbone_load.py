#!/usr/bin/python3
"""Bounded HBONE loads for the integration tests, on tests/hbone/client.py
(python3-h2, behaves like ztunnel). Run inside the test's namespace with
/usr/bin/python3. Exit status 0 when every check passed; one JSON report
line on stdout.

  hbone_load.py echo --addr IP:PORT --certs DIR --authority A
                [--tunnels N] [--bytes B] [--rate BYTES_PER_S] [--timeout S]
      N concurrent tunnels over ONE HBONE connection; each streams B bytes
      (a per-tunnel pseudo-random sequence, never held whole in memory) to
      an echo upstream and checks that the SHA-256 of what came back equals
      what was sent, followed by END_STREAM. --rate paces the sender (the
      drain test keeps tunnels open while waypointd shuts down). Reports
      whether a GOAWAY arrived (--expect-goaway makes it a check) and
      when it was first seen (goaway_wall_ns, wall clock, ~10 ms).
  hbone_load.py handshake --addr IP:PORT --certs DIR --identity NAME|none
      expects the TLS handshake (or the first read after it, TLS 1.3) to
      fail: NAME's certificate, or none at all.
"""

import argparse
import hashlib
import json
import os
import ssl
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hbone"))
from client import HboneClient, tls_context  # noqa: E402

BLOCK = 1 << 20
CHUNK = 65536
PENDING_MAX = 256 * 1024


class Source:
    """Bytes 0..n of tunnel k: a 1 MiB block derived from k, rotated per MiB."""

    def __init__(self, k, n):
        seed = hashlib.sha256(b"wp-hbone-%d" % k).digest()
        out = bytearray()
        h = seed
        while len(out) < BLOCK:
            h = hashlib.sha256(h).digest()
            out += h
        self.block = bytes(out[:BLOCK])
        self.n = n
        self.off = 0
        self.sha = hashlib.sha256()

    def next(self, size):
        size = min(size, self.n - self.off)
        if size <= 0:
            return b""
        mib = self.off // BLOCK
        pos = self.off % BLOCK
        size = min(size, BLOCK - pos)
        rot = (mib * 7919) % BLOCK
        b = self.block[rot:] + self.block[:rot] if rot else self.block
        data = b[pos:pos + size]
        self.off += size
        self.sha.update(data)
        return data


def paths(certs, identity):
    if identity == "none":
        return None, None
    return os.path.join(certs, identity + ".pem"), os.path.join(certs, identity + "-key.pem")


def connect(a, identity="productpage"):
    host, port = a.addr.rsplit(":", 1)
    cert, key = paths(a.certs, identity)
    return HboneClient(host, int(port), cert, key, os.path.join(a.certs, "ca.pem"),
                       timeout=a.timeout)


def cmd_echo(a):
    c = connect(a)
    start = time.monotonic()
    sids = [c.open(a.authority) for _ in range(a.tunnels)]
    if not c.run_until(lambda: all(c.streams[s].status is not None or c.streams[s].reset
                                   is not None for s in sids), a.timeout):
        print(json.dumps({"error": "no answer on some tunnels"}))
        return 1
    bad = {s: c.streams[s].status for s in sids if c.streams[s].status != 200}
    if bad:
        print(json.dumps({"error": "non-200", "status": bad}))
        return 1
    src = {}
    for i, s in enumerate(sids):
        c.streams[s].keep_rx = False
        src[s] = Source(i, a.bytes)
    deadline = start + a.timeout
    t0 = time.monotonic()
    goaway_ns = None
    while True:
        now = time.monotonic()
        allowed = None
        if a.rate:
            allowed = int((now - t0) * a.rate)
        for s in sids:
            st = c.streams[s]
            if st.end_sent or st.reset is not None:
                continue
            q = src[s]
            while len(st.pending) < PENDING_MAX and q.off < q.n:
                if allowed is not None and q.off >= allowed:
                    break
                st.pending += q.next(CHUNK)
            if q.off >= q.n:
                st.end_after = True
        c.poll(0.01 if a.rate else 0.05)
        if goaway_ns is None and c.goaway is not None:
            goaway_ns = time.time_ns()
        done = all(c.streams[s].ended or c.streams[s].reset is not None for s in sids)
        if done or c.closed or now > deadline:
            break
    elapsed = time.monotonic() - start
    mism = []
    for s in sids:
        st = c.streams[s]
        if not st.ended or st.rx_len != a.bytes or st.rx_hash.hexdigest() != src[s].sha.hexdigest():
            mism.append({"sid": s, "sent": src[s].off, "got": st.rx_len, "ended": st.ended,
                         "reset": st.reset})
    total = 2 * a.bytes * a.tunnels
    rep = {"tunnels": a.tunnels, "bytes_each": a.bytes, "ok": len(sids) - len(mism),
           "mismatch": mism[:10], "seconds": round(elapsed, 2),
           "mbit_s_both_ways": round(total * 8 / elapsed / 1e6, 1) if elapsed else 0,
           "goaway": c.goaway is not None,
           "goaway_wall_ns": goaway_ns,
           "sha256_first": src[sids[0]].sha.hexdigest()}
    print(json.dumps(rep))
    c.close()
    if a.expect_goaway and c.goaway is None:
        return 1
    return 0 if not mism else 1


def cmd_handshake(a):
    try:
        c = connect(a, a.identity)
        c.ping()
        c.run_until(lambda: c.pings_acked > 0, 5.0)
        if c.closed or c.pings_acked == 0:
            raise ssl.SSLError("connection closed after the handshake")
    except (ssl.SSLError, ConnectionError, OSError) as e:
        print(json.dumps({"identity": a.identity, "handshake": "failed", "error": str(e)}))
        return 0
    print(json.dumps({"identity": a.identity, "handshake": "succeeded unexpectedly"}))
    return 1


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("echo", "handshake"):
        p = sub.add_parser(name)
        p.add_argument("--addr", required=True)
        p.add_argument("--certs", required=True)
        p.add_argument("--timeout", type=float, default=120.0)
        if name == "echo":
            p.add_argument("--authority", required=True)
            p.add_argument("--tunnels", type=int, default=1)
            p.add_argument("--bytes", type=int, default=1 << 20)
            p.add_argument("--rate", type=int, default=0)
            p.add_argument("--expect-goaway", action="store_true")
        else:
            p.add_argument("--identity", required=True)
    a = ap.parse_args()
    return {"echo": cmd_echo, "handshake": cmd_handshake}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
