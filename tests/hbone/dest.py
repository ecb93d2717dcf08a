#!/usr/bin/python3
"""A test HBONE destination on python3-h2: what a destination ztunnel is to
waypointd's HBONE originate.

A TLS 1.3 server (its own certificate, client certificate required, ALPN
h2) that accepts HTTP/2 CONNECT streams and either echoes each tunnel's
bytes back or forwards them to a TCP port on loopback. Non-CONNECT gets
400; a forward target that refuses gets 503.

    dest.py --listen 127.0.0.1:0 --certs DIR [--identity dest] [--echo |
            --forward 127.0.0.1:9000]

Prints "listening HOST:PORT" on stdout once ready, then one JSON line per
tunnel when it ends (authority, peer identity, headers, byte counts).
One thread per connection. Run with /usr/bin/python3.
"""

import argparse
import json
import os
import select
import socket
import ssl
import sys
import threading

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import CONN_WINDOW, STREAM_WINDOW, tls_context, uri_sans  # noqa: E402

print_lock = threading.Lock()


def log(obj):
    with print_lock:
        print(json.dumps(obj), flush=True)


class Tunnel:
    def __init__(self, sid, authority, headers):
        self.sid = sid
        self.authority = authority
        self.headers = headers
        self.up = None  # forward socket
        self.pending = bytearray()  # towards the client
        self.end_after = False
        self.ended_out = False
        self.rx = 0
        self.tx = 0


class Conn(threading.Thread):
    def __init__(self, sock, args):
        super().__init__(daemon=True)
        self.sock = sock
        self.args = args
        self.tunnels = {}

    def run(self):
        try:
            self.sock.do_handshake()
        except (ssl.SSLError, OSError) as e:
            log({"handshake": "failed", "error": str(e)})
            self.sock.close()
            return
        if self.sock.selected_alpn_protocol() != "h2":
            self.sock.close()
            return
        self.peer = uri_sans(self.sock.getpeercert())
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8",
                                        validate_inbound_headers=False)
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
        })
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(CONN_WINDOW - 65535)
        self.sock.setblocking(False)
        self.out = bytearray()
        try:
            self.loop()
        except (ssl.SSLError, OSError, h2.exceptions.ProtocolError) as e:
            log({"connection": "error", "error": str(e)})
        finally:
            for t in self.tunnels.values():
                if t.up is not None:
                    t.up.close()
            self.sock.close()

    def flush(self):
        self.out += self.h2.data_to_send()
        while self.out:
            try:
                n = self.sock.send(self.out)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                return
            del self.out[:n]

    def pump(self):
        for t in list(self.tunnels.values()):
            while t.pending and not t.ended_out:
                try:
                    win = self.h2.local_flow_control_window(t.sid)
                except Exception:
                    t.pending.clear()
                    break
                n = min(len(t.pending), win, self.h2.max_outbound_frame_size)
                if n <= 0:
                    break
                self.h2.send_data(t.sid, bytes(t.pending[:n]))
                t.tx += n
                del t.pending[:n]
            if not t.pending and t.end_after and not t.ended_out:
                self.h2.end_stream(t.sid)
                t.ended_out = True
                self.finish(t)

    def finish(self, t):
        log({"tunnel": t.authority, "peer": self.peer, "headers": t.headers,
             "rx": t.rx, "tx": t.tx})

    def on_request(self, ev):
        hdrs = dict(ev.headers)
        sid = ev.stream_id
        if hdrs.get(":method") != "CONNECT":
            self.h2.send_headers(sid, [(":status", "400")], end_stream=True)
            return
        t = Tunnel(sid, hdrs.get(":authority"), {k: v for k, v in hdrs.items()
                                                 if not k.startswith(":")})
        if self.args.forward:
            host, port = self.args.forward.rsplit(":", 1)
            try:
                t.up = socket.create_connection((host, int(port)), timeout=5)
                t.up.setblocking(False)
            except OSError:
                self.h2.send_headers(sid, [(":status", "503")], end_stream=True)
                return
        self.tunnels[sid] = t
        self.h2.send_headers(sid, [(":status", "200")], end_stream=False)

    def loop(self):
        self.flush()
        while True:
            ups = [t.up for t in self.tunnels.values() if t.up is not None]
            r, _, _ = select.select([self.sock] + ups, [self.sock] if self.out else [], [],
                                    1.0)
            if self.sock in r or self.sock.pending():
                while True:
                    try:
                        data = self.sock.recv(65536)
                    except (ssl.SSLWantReadError, BlockingIOError):
                        break
                    if not data:
                        return
                    for ev in self.h2.receive_data(data):
                        self.handle(ev)
            for t in list(self.tunnels.values()):
                if t.up is not None and t.up in r:
                    try:
                        data = t.up.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if data:
                        t.pending += data
                    else:
                        t.end_after = True
                        t.up.close()
                        t.up = None
            self.pump()
            self.flush()
            if isinstance(getattr(self, "terminated", None), h2.events.ConnectionTerminated) \
                    and not self.tunnels:
                return

    def handle(self, ev):
        if isinstance(ev, h2.events.RequestReceived):
            self.on_request(ev)
        elif isinstance(ev, h2.events.DataReceived):
            t = self.tunnels.get(ev.stream_id)
            if t is not None:
                t.rx += len(ev.data)
                if t.up is not None:
                    t.up.setblocking(True)
                    t.up.sendall(ev.data)
                    t.up.setblocking(False)
                else:
                    t.pending += ev.data
            self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            t = self.tunnels.get(ev.stream_id)
            if t is not None:
                if t.up is not None:
                    t.up.shutdown(socket.SHUT_WR)
                else:
                    t.end_after = True
        elif isinstance(ev, h2.events.StreamReset):
            t = self.tunnels.pop(ev.stream_id, None)
            if t is not None and t.up is not None:
                t.up.close()
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.terminated = ev


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--certs", required=True)
    ap.add_argument("--identity", default="dest")
    ap.add_argument("--forward", help="host:port on loopback to forward tunnels to")
    ap.add_argument("--echo", action="store_true", help="echo tunnels (the default)")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    # Loopback, or a pod IP of the test range (198.18.0.0/15, RFC 2544) that
    # tests/testbed puts on a test namespace's lo.
    if host not in ("127.0.0.1", "::1", "localhost") and not host.startswith(("198.18.", "198.19.")):
        ap.error("test peers listen on loopback or 198.18.0.0/15 only")
    ctx = tls_context(os.path.join(a.certs, a.identity + ".pem"),
                      os.path.join(a.certs, a.identity + "-key.pem"),
                      os.path.join(a.certs, "ca.pem"), server=True)
    ls = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(128)
    print("listening %s:%d" % ls.getsockname()[:2], flush=True)
    while True:
        s, _ = ls.accept()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        Conn(ctx.wrap_socket(s, server_side=True, do_handshake_on_connect=False), a).start()


if __name__ == "__main__":
    sys.exit(main())
