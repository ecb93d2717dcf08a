#!/usr/bin/python3
"""A bookinfo-like test backend for the L7 integration test (issue 6).

Listens on --bind ip:port, answers every HTTP/1.1 request with
"<name> <version> <method> <path> <body length> <body sha256>\n"
(keep-alive, Content-Length; request bodies by length or chunked), or for
GET /big/<n> n bytes of "0123456789abcdef" repeated (GET /sleep/<ms>/...:
the same answer after <ms> milliseconds; with --status-file, the status
that file holds when it exists, so a test can make a backend fail and
recover), and logs
one JSON line per request it received (method, path, target, version, headers) to stdout,
so the test can check what reached the backend and what did not.
"""
import argparse
import hashlib
import http.server
import json
import socketserver
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bind", required=True, help="ip:port")
    ap.add_argument("--name", required=True)
    ap.add_argument("--version", default="v1")
    ap.add_argument("--status-file", default="",
                    help="answer with the HTTP status this file holds (read per request)")
    a = ap.parse_args()
    host, port = a.bind.rsplit(":", 1)

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def handle_any(self):
            if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
                body = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        break
                    body += self.rfile.read(size)
                    self.rfile.readline()
            else:
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
            # target: the request-target as it came (http.server reduces a
            # leading "//" in self.path to "/")
            sys.stdout.write(json.dumps({"method": self.command, "path": self.path,
                                         "version": self.request_version,
                                         "headers": dict(self.headers.items()),
                                         "body_len": len(body),
                                         "target": self.requestline.split(" ")[1]}) + "\n")
            sys.stdout.flush()
            if self.path.startswith("/sleep/"):
                time.sleep(int(self.path.split("/")[2]) / 1000.0)
            if self.path.startswith("/big/"):
                n = int(self.path[5:])
                out = (b"0123456789abcdef" * (n // 16 + 1))[:n]
            else:
                out = ("%s %s %s %s %d %s\n" % (a.name, a.version, self.command, self.path, len(body),
                                                 hashlib.sha256(body).hexdigest())).encode()
            status = 200
            try:
                with open(a.status_file) as f:
                    status = int(f.read().strip() or 200)
            except (OSError, ValueError):
                pass
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(out)))
            self.send_header("x-backend", a.name)
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_DELETE = handle_any

    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = S((host, int(port)), H)
    sys.stdout.write(json.dumps({"listening": a.bind}) + "\n")
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
