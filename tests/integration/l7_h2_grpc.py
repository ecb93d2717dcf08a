#!/usr/bin/python3
"""gRPC peers for tests/integration/test_l7_h2.sh (python3-grpcio, generic
method handlers on raw bytes: no protoc).

    l7_h2_grpc.py server --bind IP:PORT
        /test.Echo/Bidi   bidi: answers each message m (n-th) with
                          b"echo:<n>:" + m, then ends with trailing metadata
                          x-trailer: t-<n> and status FAILED_PRECONDITION,
                          details "done after <n>"
        /test.Echo/Count  server streaming: request b"<k>" -> k messages
                          b"m<i>" (i = 0..k-1), then OK with x-count: <k>
        prints "listening" once ready.

    l7_h2_grpc.py bidi --target HOST:PORT [--n N] [--size BYTES]
    l7_h2_grpc.py count --target HOST:PORT [--k K]
        run one call, print a JSON summary (messages in order?, code,
        details, trailing metadata); exit 1 if the call did not go as the
        server defines it.
    l7_h2_grpc.py unavailable --target HOST:PORT
        expects the call to fail with UNAVAILABLE (exit 1 otherwise).
"""
import argparse
import json
import sys
from concurrent import futures

import grpc


def bidi(req_iter, context):
    n = 0
    for m in req_iter:
        n += 1
        yield b"echo:%d:" % n + m
    context.set_trailing_metadata((("x-trailer", "t-%d" % n),))
    context.set_code(grpc.StatusCode.FAILED_PRECONDITION)
    context.set_details("done after %d" % n)


def count(req, context):
    k = int(req.decode())
    for i in range(k):
        yield b"m%d" % i
    context.set_trailing_metadata((("x-count", str(k)),))


class Handler(grpc.GenericRpcHandler):
    def service(self, hcd):
        if hcd.method == "/test.Echo/Bidi":
            return grpc.stream_stream_rpc_method_handler(bidi)
        if hcd.method == "/test.Echo/Count":
            return grpc.unary_stream_rpc_method_handler(count)
        return None


def serve(a):
    s = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    s.add_generic_rpc_handlers((Handler(),))
    if s.add_insecure_port(a.bind) == 0:
        sys.exit("cannot bind " + a.bind)
    s.start()
    print("listening", flush=True)
    s.wait_for_termination()


def summary(call, got, err):
    return {
        "messages": len(got),
        "code": call.code().name if call.code() else None,
        "details": call.details(),
        "trailing": dict(call.trailing_metadata() or ()),
        "error": err,
    }


def run_bidi(a):
    msgs = [(b"%06d" % i) + b"x" * a.size for i in range(a.n)]
    ch = grpc.insecure_channel(a.target)
    call = ch.stream_stream("/test.Echo/Bidi")(iter(msgs), timeout=a.timeout)
    got, err = [], None
    try:
        for r in call:
            got.append(r)
    except grpc.RpcError as e:
        err = str(e.code())
    out = summary(call, got, err)
    out["in_order"] = got == [b"echo:%d:" % (i + 1) + m for i, m in enumerate(msgs)]
    print(json.dumps(out))
    ok = (out["in_order"] and out["code"] == "FAILED_PRECONDITION" and
          out["details"] == "done after %d" % a.n and
          out["trailing"].get("x-trailer") == "t-%d" % a.n)
    sys.exit(0 if ok else 1)


def run_count(a):
    ch = grpc.insecure_channel(a.target)
    call = ch.unary_stream("/test.Echo/Count")(b"%d" % a.k, timeout=a.timeout)
    got, err = [], None
    try:
        for r in call:
            got.append(r)
    except grpc.RpcError as e:
        err = str(e.code())
    out = summary(call, got, err)
    out["in_order"] = got == [b"m%d" % i for i in range(a.k)]
    print(json.dumps(out))
    ok = out["in_order"] and out["code"] == "OK" and out["trailing"].get("x-count") == str(a.k)
    sys.exit(0 if ok else 1)


def run_unavailable(a):
    ch = grpc.insecure_channel(a.target)
    call = ch.unary_stream("/test.Echo/Count")(b"3", timeout=a.timeout)
    got, err = [], None
    try:
        for r in call:
            got.append(r)
    except grpc.RpcError as e:
        err = str(e.code())
    out = summary(call, got, err)
    print(json.dumps(out))
    sys.exit(0 if out["code"] == "UNAVAILABLE" and not got else 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["server", "bidi", "count", "unavailable"])
    ap.add_argument("--bind")
    ap.add_argument("--target")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    {"server": serve, "bidi": run_bidi, "count": run_count,
     "unavailable": run_unavailable}[a.mode](a)


if __name__ == "__main__":
    main()
