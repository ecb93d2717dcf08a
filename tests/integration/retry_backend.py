#!/usr/bin/python3
"""A backend that fails the first tries of each request, for the retry test
(tests/integration/test_l7_retry.sh).

Listens on every --bind ip:port (one process: the count of tries per
request is shared by all its addresses). A request is known by its
x-req header; its path says how its first K tries fail:
  /f/503/K, /f/500/K   answer that status (content-length, keep-alive)
  /f/reset/K           close the connection with a TCP reset, no answer
  /f/sleep/K/MS        answer 200 only after MS milliseconds
  /f/grpc14/K          answer 200 with grpc-status: 14 (trailers-only
                       style head, no body)
Later tries (and K = 0) answer 200 with the body
"<name> <try> <x-envoy-attempt-count> <body length> <body sha256>\\n".
With --grpc-bind ip:port it also serves gRPC (python3-grpcio, raw bytes):
the unary /test.Retry/Flaky fails the first x-fail (metadata) tries of
each x-req with the status x-code (a trailers-only answer; x-code SLOW:
the answer only after 1.5 s), then answers the same text as above.
Every try is logged to stdout as one JSON line: id, try (1, 2, ... per
id), attempt (the x-envoy-attempt-count it carried, "" when none), path,
body_len, sha, bind. Run with /usr/bin/python3.
"""
import argparse
import hashlib
import http.server
import json
import socket
import socketserver
import struct
import sys
import threading
import time


def serve_grpc(a, tries, lock):
    from concurrent import futures

    import grpc

    def flaky(req, context):
        md = dict(context.invocation_metadata())
        rid = md.get("x-req", "")
        with lock:
            tries[rid] = k = tries.get(rid, 0) + 1
        att = md.get("x-envoy-attempt-count", "")
        sha = hashlib.sha256(req).hexdigest()
        sys.stdout.write(json.dumps({"id": rid, "try": k, "attempt": att, "path": "grpc",
                                     "body_len": len(req), "sha": sha,
                                     "bind": a.grpc_bind}) + "\n")
        sys.stdout.flush()
        if k <= int(md.get("x-fail", "0")) and md.get("x-code") == "SLOW":
            time.sleep(1.5)
        elif k <= int(md.get("x-fail", "0")):
            context.abort(getattr(grpc.StatusCode, md.get("x-code", "UNAVAILABLE")), "try again")
        return ("%s %d %s %d %s\n" % (a.name, k, att, len(req), sha)).encode()

    class Handler(grpc.GenericRpcHandler):
        def service(self, hcd):
            if hcd.method == "/test.Retry/Flaky":
                return grpc.unary_unary_rpc_method_handler(flaky)
            return None

    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    srv.add_generic_rpc_handlers((Handler(),))
    if srv.add_insecure_port(a.grpc_bind) == 0:
        sys.exit("cannot bind " + a.grpc_bind)
    srv.start()
    return srv


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bind", action="append", required=True, help="ip:port (repeatable)")
    ap.add_argument("--name", default="retry")
    ap.add_argument("--grpc-bind", default="", help="ip:port of a gRPC server")
    a = ap.parse_args()
    tries = {}
    lock = threading.Lock()

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def handle_any(self):
            n = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(n) if n else b""
            rid = self.headers.get("x-req") or ""
            with lock:
                tries[rid] = k = tries.get(rid, 0) + 1
            sha = hashlib.sha256(body).hexdigest()
            att = self.headers.get("x-envoy-attempt-count") or ""
            sys.stdout.write(json.dumps({
                "id": rid, "try": k, "attempt": att, "path": self.path, "body_len": len(body),
                "sha": sha, "bind": "%s:%d" % self.connection.getsockname()[:2]}) + "\n")
            sys.stdout.flush()
            parts = self.path.split("/")
            mode = parts[2] if len(parts) > 3 and parts[1] == "f" else "ok"
            fail_n = int(parts[3]) if mode != "ok" else 0
            status, extra = 200, []
            if k <= fail_n:
                if mode == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if mode == "sleep":
                    time.sleep(int(parts[4]) / 1000.0)
                elif mode == "grpc14":
                    extra = [("content-type", "application/grpc"), ("grpc-status", "14"),
                             ("grpc-message", "try again")]
                else:
                    status = int(mode)
            out = b"" if extra else ("%s %d %s %d %s\n" % (a.name, k, att, len(body), sha)).encode()
            try:
                self.send_response(status)
                for h, v in extra:
                    self.send_header(h, v)
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
            except OSError:
                self.close_connection = True  # a try the waypoint gave up on

        do_GET = do_POST = do_PUT = handle_any

    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    for b in a.bind:
        host, port = b.rsplit(":", 1)
        srv = S((host, int(port)), H)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    # (the server stops when freed: main's local keeps it)
    grpc_srv = serve_grpc(a, tries, lock) if a.grpc_bind else None  # noqa: F841
    sys.stdout.write(json.dumps({"listening": a.bind}) + "\n")
    sys.stdout.flush()
    threading.Event().wait()


if __name__ == "__main__":
    main()
