#!/usr/bin/python3
"""N concurrent HTTP/1.1 requests through the waypoint, for the circuit
breaking test (tests/integration/test_l7_cbreak.sh).

Opens ONE HBONE connection (so every tunnel lands on one worker core),
N CONNECT tunnels to --authority, waits until all are up, then sends one
GET --path on each at the same moment and reads each response. Prints JSON:
{"results": [{"status": S, "overloaded": bool, "elapsed": seconds,
"body": first 100 bytes}, ...]} in tunnel order. Run with /usr/bin/python3.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hbone"))
from client import HboneClient  # noqa: E402


def parse(rx):
    """(status, headers dict, body) of a complete HTTP/1.1 response, or None."""
    head, sep, body = bytes(rx).partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if len(body) < int(hdrs.get("content-length", "0")):
        return None
    return int(lines[0].split(" ")[1]), hdrs, body


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--certs", required=True)
    ap.add_argument("--authority", required=True)
    ap.add_argument("--host", default="slow")
    ap.add_argument("--path", default="/")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=20.0)
    a = ap.parse_args()
    host, port = a.addr.rsplit(":", 1)
    c = HboneClient(host, int(port), os.path.join(a.certs, "productpage.pem"),
                    os.path.join(a.certs, "productpage-key.pem"),
                    os.path.join(a.certs, "ca.pem"), timeout=a.timeout)
    sids = [c.open(a.authority) for _ in range(a.n)]
    if not c.run_until(lambda: all(c.streams[s].status is not None for s in sids)):
        sys.exit("tunnels not answered: %s" % [c.streams[s].status for s in sids])
    bad = [c.streams[s].status for s in sids if c.streams[s].status != 200]
    if bad:
        sys.exit("CONNECT refused: %s" % bad)
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (a.path, a.host)).encode()
    t0 = time.monotonic()
    for s in sids:
        c.send(s, req)
    done = {}

    def check():
        for s in sids:
            if s not in done:
                r = parse(c.streams[s].rx)
                if r is not None:
                    done[s] = (r, time.monotonic() - t0)
        return len(done) == len(sids)

    c.run_until(check)
    out = []
    for s in sids:
        if s not in done:
            out.append({"status": None, "overloaded": False, "elapsed": None, "body": ""})
            continue
        (st, hdrs, body), el = done[s]
        out.append({"status": st, "overloaded": hdrs.get("x-envoy-overloaded") == "true",
                    "elapsed": round(el, 3), "body": body[:100].decode("latin-1")})
    c.close()
    print(json.dumps({"results": out}))


if __name__ == "__main__":
    main()
