#!/usr/bin/python3
"""A tiny local HBONE forwarder (what ztunnel does for a client pod), for
driving waypointd with ordinary HTTP clients (curl) in the L7 tests.

    hbone_fwd.py --listen 127.0.0.1:15001 --addr WAYPOINT:15008 --certs DIR \
                 --authority VIP:PORT

Every TCP connection accepted on --listen becomes one HTTP/2 CONNECT stream
(on its own HBONE connection, tests/hbone/client.py) to --authority; bytes
are copied both ways and half-closes are passed on. Prints "listening"
once ready. Run with /usr/bin/python3.
"""
import argparse
import os
import select
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hbone"))
from client import HboneClient  # noqa: E402


def serve(conn, a):
    host, port = a.addr.rsplit(":", 1)
    try:
        c = HboneClient(host, int(port), os.path.join(a.certs, a.identity + ".pem"),
                        os.path.join(a.certs, a.identity + "-key.pem"),
                        os.path.join(a.certs, "ca.pem"), timeout=30)
        sid = c.open(a.authority, **({"baggage": a.baggage} if a.baggage is not None else {}))
        st = c.streams[sid]
        c.run_until(lambda: st.status is not None)
        if st.status != 200:
            sys.stderr.write("CONNECT %s: %s\n" % (a.authority, st.status))
            conn.close()
            return
        conn.setblocking(False)
        up_eof = False
        while True:
            r, _, _ = select.select([c.sock] + ([] if up_eof else [conn]), [], [], 0.05)
            if conn in r:
                try:
                    data = conn.recv(65536)
                except BlockingIOError:
                    data = None
                if data == b"":
                    up_eof = True
                    c.send(sid, b"", end=True)
                elif data:
                    c.send(sid, data)
            c.poll(0)
            if st.rx:
                conn.setblocking(True)
                conn.sendall(bytes(st.rx))
                conn.setblocking(False)
                st.rx.clear()
            if st.reset is not None or c.closed:
                break
            if st.ended:
                conn.shutdown(socket.SHUT_WR)
                if up_eof:
                    break
        c.close()
    except Exception as e:  # noqa: BLE001 - one connection's failure is logged
        sys.stderr.write("forwarder: %r\n" % (e,))
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--listen", required=True)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--certs", required=True)
    ap.add_argument("--identity", default="productpage")
    ap.add_argument("--authority", required=True)
    ap.add_argument("--baggage", default=None, help="the CONNECT's baggage header")
    a = ap.parse_args()
    lh, lp = a.listen.rsplit(":", 1)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((lh, int(lp)))
    ls.listen(64)
    print("listening", flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(conn, a), daemon=True).start()


if __name__ == "__main__":
    main()
