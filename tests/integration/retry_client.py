#!/usr/bin/python3
"""Requests through the waypoint for the retry test (test_l7_retry.sh).

One HBONE connection; each request on a CONNECT stream of its own (a
failure the waypoint answers may close its client connection):
  retry_client.py --authority VIP:PORT --host H --req ID:METHOD:PATH:BODYLEN ...
sends each request with header x-req: ID and a body of BODYLEN bytes
(a deterministic pattern, content-length) and prints one JSON line per
request: id, status, body (text), sha (of the body sent), grpc_status.
With --grpc HOST:PORT (a local forwarder into the tunnel, hbone_fwd.py)
each request is a unary gRPC call /test.Retry/Flaky instead, its PATH
"/K/CODE": metadata x-fail K, x-code CODE (retry_backend.py); status is
then the gRPC status code's name.
Run with /usr/bin/python3.
"""
import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hbone"))
from client import HboneClient  # noqa: E402
from l7_http import parse_response  # noqa: E402


def body_of(rid, n):
    seed = hashlib.sha256(rid.encode()).digest()
    return (seed * (n // len(seed) + 1))[:n]


def h1_request(c, a, rid, method, path, body):
    sid = c.open(a.authority)
    st = c.streams[sid]
    if not c.run_until(lambda: st.status is not None) or st.status != 200:
        sys.exit("CONNECT: %s" % st.status)
    c.send(sid, ("%s %s HTTP/1.1\r\nHost: %s\r\nx-req: %s\r\ncontent-length: %d\r\n\r\n" %
                 (method, path, a.host, rid, len(body))).encode() + body)
    got = {}

    def done():
        r = parse_response(st.rx)
        if r is not None:
            got["r"] = r
        return r is not None or st.ended or st.reset is not None
    c.run_until(done, timeout=a.timeout)
    if "r" not in got:
        return {"status": None, "body": bytes(st.rx[:200]).decode("latin-1"), "grpc_status": None}
    status, hdrs, rbody, _ = got["r"]
    c.send(sid, b"", end=True)
    return {"status": status, "body": rbody.decode("latin-1"),
            "grpc_status": hdrs.get("grpc-status")}


def grpc_request(a, rid, path, body):
    import grpc

    _, k, code = path.split("/")
    with grpc.insecure_channel(a.grpc) as ch:
        call = ch.unary_unary("/test.Retry/Flaky")
        try:
            out = call(body, timeout=a.timeout,
                       metadata=(("x-req", rid), ("x-fail", k), ("x-code", code)))
            return {"status": "OK", "body": out.decode("latin-1"), "grpc_status": "0"}
        except grpc.RpcError as e:
            return {"status": e.code().name, "body": e.details() or "", "grpc_status": None}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--certs", required=True)
    ap.add_argument("--authority", required=True)
    ap.add_argument("--host", required=True)
    ap.add_argument("--req", action="append", required=True, help="ID:METHOD:PATH:BODYLEN")
    ap.add_argument("--grpc", default="", help="HOST:PORT: gRPC calls through a forwarder")
    ap.add_argument("--timeout", type=float, default=20.0)
    a = ap.parse_args()
    if a.grpc:
        for r in a.req:
            rid, _, path, n = r.split(":")
            body = body_of(rid, int(n))
            out = grpc_request(a, rid, path, body)
            out.update({"id": rid, "sha": hashlib.sha256(body).hexdigest()})
            print(json.dumps(out))
            sys.stdout.flush()
        return
    host, port = a.addr.rsplit(":", 1)
    c = HboneClient(host, int(port), os.path.join(a.certs, "productpage.pem"),
                    os.path.join(a.certs, "productpage-key.pem"),
                    os.path.join(a.certs, "ca.pem"), timeout=a.timeout)
    for r in a.req:
        rid, method, path, n = r.split(":")
        body = body_of(rid, int(n))
        out = h1_request(c, a, rid, method, path, body)
        out.update({"id": rid, "sha": hashlib.sha256(body).hexdigest()})
        print(json.dumps(out))
        sys.stdout.flush()
    c.close()


if __name__ == "__main__":
    main()
