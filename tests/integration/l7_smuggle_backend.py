#!/usr/bin/python3
"""A deliberately naive HTTP/1.1 backend for test_l7_smuggle.sh (issue 19).

Listens on --bind ip:port. On each connection it parses requests one after
the other, the way a lenient server would: a head ends at the first empty
line (CRLF or bare LF), a body is read by Content-Length. It declines every
upgrade: Upgrade and CONNECT requests get a plain answer (200, or 405 for
CONNECT) on a kept-alive connection, so any bytes a proxy forwarded behind
such a request are parsed as the next request. It logs one JSON line per
request parsed (method, target, version, headers) and one per connection
end: {"end": "eof"} when the peer closed with a FIN, {"end": "reset"} on
ECONNRESET, so the test can tell what reached it and how it was closed.
"""
import argparse
import json
import socket
import sys
import threading

LOCK = threading.Lock()


def log(obj):
    with LOCK:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def serve(conn, peer):
    buf = b""
    end = "other"  # neither a FIN nor a reset (an error of ours)
    try:
        while True:
            while b"\r\n\r\n" not in buf and b"\n\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    raise EOFError
                buf += data
            cut = [i for i in (buf.find(b"\r\n\r\n"), buf.find(b"\n\n")) if i >= 0]
            i = min(cut)
            head, buf = buf[:i], buf[i + (4 if buf[i:i + 4] == b"\r\n\r\n" else 2):]
            lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
            parts = lines[0].split(" ")
            hdrs = {}
            for ln in lines[1:]:
                if ":" in ln:
                    k, v = ln.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
            n = int(hdrs.get("content-length", "0") or 0)
            while len(buf) < n:
                data = conn.recv(65536)
                if not data:
                    raise EOFError
                buf += data
            buf = buf[n:]
            log({"method": parts[0], "target": parts[1] if len(parts) > 1 else "",
                 "version": parts[2] if len(parts) > 2 else "", "headers": hdrs,
                 "peer": peer})
            if parts[0] == "CONNECT":
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    except EOFError:
        end = "eof"
    except ConnectionResetError:
        end = "reset"
    finally:
        conn.close()
    log({"end": end, "peer": peer})


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bind", required=True, help="ip:port")
    a = ap.parse_args()
    host, port = a.bind.rsplit(":", 1)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(64)
    log({"listening": a.bind})
    while True:
        conn, addr = srv.accept()
        threading.Thread(target=serve, args=(conn, "%s:%d" % addr), daemon=True).start()


if __name__ == "__main__":
    main()
