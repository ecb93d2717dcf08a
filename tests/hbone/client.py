#!/usr/bin/python3
"""A test HBONE client that behaves like ztunnel, on python3-h2.

TLS 1.3 only, ALPN h2, no SNI, a client certificate (the source workload's
SPIFFE identity), then HTTP/2 CONNECT streams with :authority ip:port and
the headers ztunnel sends (baggage, Forwarded, traceparent). It is an
independent HTTP/2 implementation to check waypointd's HBONE server
against.

As a library:
    c = HboneClient("127.0.0.1", 15008, cert, key, ca)
    sid = c.open("10.0.0.1:8080")
    c.send(sid, b"hello", end=True)
    c.run_until(lambda: c.streams[sid].ended)
As a CLI (exit status 0 when every check passed):
    client.py --addr 127.0.0.1:15008 --certs DIR --identity productpage \\
        --tunnels 100 --bytes 65536 --authority 10.0.0.1:8080
    client.py ... --method GET --expect-status 400
    client.py ... --expect-handshake-failure --identity evil

Run it with /usr/bin/python3 (Debian's python3-h2 lives there).
"""

import argparse
import hashlib
import json
import os
import select
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings

STREAM_WINDOW = 4 * 1024 * 1024  # ztunnel's
CONN_WINDOW = 16 * 1024 * 1024


def tls_context(cert, key, ca, server=False):
    """TLS 1.3 only, ALPN h2, the given identity, verified against ca."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["h2"])
    if cert:
        ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    if not server:
        ctx.check_hostname = False  # SPIFFE: the URI SAN is checked instead
    return ctx


def uri_sans(peercert):
    return [v for (k, v) in peercert.get("subjectAltName", ()) if k == "URI"]


class Stream:
    def __init__(self, sid):
        self.sid = sid
        self.status = None
        self.headers = []
        self.rx = bytearray()
        self.rx_hash = hashlib.sha256()
        self.rx_len = 0
        self.keep_rx = True
        self.ended = False  # peer sent END_STREAM
        self.reset = None  # RST_STREAM error code from the peer
        self.pending = bytearray()  # to send
        self.end_after = False  # END_STREAM once pending is out
        self.end_sent = False


class HboneClient:
    """One TLS+HTTP/2 connection to an HBONE server, driven synchronously."""

    def __init__(self, host, port, cert, key, ca, expect_san=None, timeout=10.0, tls_ctx=None):
        self.timeout = timeout
        ctx = tls_ctx or tls_context(cert, key, ca)
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # server_hostname=None: no SNI, like ztunnel.
        self.sock = ctx.wrap_socket(raw, server_hostname=None)
        if self.sock.selected_alpn_protocol() != "h2":
            raise ssl.SSLError("server did not select h2")
        self.peer_ids = uri_sans(self.sock.getpeercert())
        if expect_san is not None and expect_san not in self.peer_ids:
            raise ssl.SSLError("server identity %r, expected %r" % (self.peer_ids, expect_san))
        self.sock.setblocking(False)
        cfg = h2.config.H2Configuration(
            client_side=True,
            header_encoding="utf-8",
            # h2 4.1 insists on :path for every request; CONNECT has none.
            validate_outbound_headers=False,
        )
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(CONN_WINDOW - 65535)
        self.streams = {}
        self.goaway = None
        self.closed = False
        self.remote_settings_seen = False
        self.pings_acked = 0
        self._out = bytearray()
        self._rx = bytearray()  # the start of a frame not whole yet
        self._flush()

    # ---- requests ----

    def open(self, authority, baggage="k8s.namespace.name=default",
             forwarded='for="10.244.0.9:41234";host=reviews.default.svc.cluster.local',
             traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
             method="CONNECT", extra=()):
        sid = self.h2.get_next_available_stream_id()
        hdrs = [(":method", method), (":authority", authority)]
        if method != "CONNECT":
            hdrs += [(":scheme", "http"), (":path", "/")]
        for name, val in (("baggage", baggage), ("forwarded", forwarded),
                          ("traceparent", traceparent)):
            if val is not None:
                hdrs.append((name, val))
        hdrs.extend(extra)
        self.streams[sid] = Stream(sid)
        self.h2.send_headers(sid, hdrs, end_stream=(method != "CONNECT"))
        if method != "CONNECT":
            self.streams[sid].end_sent = True
        self._flush()
        return sid

    def send(self, sid, data, end=False):
        st = self.streams[sid]
        st.pending += data
        st.end_after = st.end_after or end
        self._pump_sends()
        self._flush()

    def reset(self, sid, code=8):  # CANCEL
        self.h2.reset_stream(sid, error_code=code)
        self._flush()

    def ping(self):
        self.h2.ping(os.urandom(8))
        self._flush()

    def close(self):
        try:
            self.h2.close_connection()
            self._flush()
        except Exception:
            pass
        try:
            self.sock.close()
        except Exception:
            pass
        self.closed = True

    # ---- the loop ----

    def _pump_sends(self):
        for st in self.streams.values():
            if st.end_sent or st.reset is not None:
                continue
            while st.pending:
                try:
                    win = self.h2.local_flow_control_window(st.sid)
                except Exception:
                    break
                n = min(len(st.pending), win, self.h2.max_outbound_frame_size)
                if n <= 0:
                    break
                self.h2.send_data(st.sid, bytes(st.pending[:n]))
                del st.pending[:n]
            if not st.pending and st.end_after and not st.end_sent:
                self.h2.end_stream(st.sid)
                st.end_sent = True

    def _flush(self):
        self._out += self.h2.data_to_send()
        while self._out:
            try:
                n = self.sock.send(self._out)
            except (ssl.SSLWantWriteError, BlockingIOError):
                return False
            except ssl.SSLWantReadError:
                return False
            del self._out[:n]
        return True

    def _handle(self, ev):
        if isinstance(ev, h2.events.ResponseReceived):
            st = self.streams[ev.stream_id]
            st.headers = ev.headers
            for k, v in ev.headers:
                if k == ":status":
                    st.status = int(v)
        elif isinstance(ev, h2.events.DataReceived):
            st = self.streams.get(ev.stream_id)
            if st is not None:
                if st.keep_rx:
                    st.rx += ev.data
                st.rx_hash.update(ev.data)
                st.rx_len += len(ev.data)
            # The test client consumes at once; the server's side is what
            # is under test.
            self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            self.streams[ev.stream_id].ended = True
        elif isinstance(ev, h2.events.StreamReset):
            if ev.stream_id in self.streams:
                self.streams[ev.stream_id].reset = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev
            # python-h2 treats any GOAWAY as the end of the connection, but
            # RFC 9113 6.8 (and ztunnel) let streams up to last_stream_id
            # finish: keep the state machine open, open no new streams.
            if ev.error_code == 0 and not self.closed:
                self.h2.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            self.remote_settings_seen = True
        elif isinstance(ev, h2.events.PingAckReceived):
            self.pings_acked += 1

    def _receive(self, data):
        """Hands python-h2 one whole frame at a time, each one's events
        handled before the next: a GOAWAY reopens the state machine (see
        _handle) before the DATA of the streams it lets finish, which may
        arrive in the same read."""
        self._rx += data
        while len(self._rx) >= 9:
            end = 9 + int.from_bytes(self._rx[:3], "big")
            if len(self._rx) < end:
                break
            frame = bytes(self._rx[:end])
            del self._rx[:end]
            try:
                events = self.h2.receive_data(frame)
            except Exception:
                self.closed = True
                raise
            for ev in events:
                self._handle(ev)

    def poll(self, wait):
        """One round: read what arrived, handle it, send what is ready."""
        want_w = bool(self._out)
        r, w, _ = select.select([self.sock], [self.sock] if want_w else [], [], wait)
        if r or self.sock.pending():
            while True:
                try:
                    data = self.sock.recv(65536)
                except (ssl.SSLWantReadError, BlockingIOError):
                    break
                except (ssl.SSLError, ConnectionError, OSError):
                    self.closed = True
                    break
                if not data:
                    self.closed = True
                    break
                self._receive(data)
        self._pump_sends()
        self._flush()

    def run_until(self, pred, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while not pred():
            if self.closed:
                return pred()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.poll(min(left, 0.2))
        return True


def payload(sid, n):
    """Deterministic bytes for stream sid."""
    seed = hashlib.sha256(b"hbone-%d" % sid).digest()
    out = bytearray()
    block = seed
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


def echo_tunnels(c, authority, tunnels, nbytes, chunk=16384, timeout=60.0):
    """Opens tunnels, sends nbytes on each, half-closes, and checks that the
    same bytes come back followed by END_STREAM. Returns (ok, report)."""
    sids = [c.open(authority) for _ in range(tunnels)]
    if not c.run_until(lambda: all(c.streams[s].status is not None for s in sids), timeout):
        return False, {"error": "no response on some tunnels"}
    bad = {s: c.streams[s].status for s in sids if c.streams[s].status != 200}
    if bad:
        return False, {"error": "non-200", "status": bad}
    want = {}
    for s in sids:
        data = payload(s, nbytes)
        want[s] = hashlib.sha256(data).hexdigest()
        c.streams[s].keep_rx = False
        for off in range(0, len(data), chunk):
            c.send(s, data[off:off + chunk])
        c.send(s, b"", end=True)
    done = c.run_until(lambda: all(c.streams[s].ended or c.streams[s].reset is not None
                                   for s in sids), timeout)
    report = {"tunnels": tunnels, "bytes_each": nbytes, "done": done, "mismatch": []}
    for s in sids:
        st = c.streams[s]
        if not st.ended or st.rx_len != nbytes or st.rx_hash.hexdigest() != want[s]:
            report["mismatch"].append({"sid": s, "got": st.rx_len, "ended": st.ended,
                                       "reset": st.reset})
    return done and not report["mismatch"], report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--addr", required=True, help="host:port of the HBONE server")
    ap.add_argument("--certs", required=True, help="directory made by tests/pki/mkpki.sh")
    ap.add_argument("--identity", default="productpage", help="client cert name in --certs")
    ap.add_argument("--expect-san", help="server URI SAN to require")
    ap.add_argument("--authority", default="10.0.0.1:8080")
    ap.add_argument("--tunnels", type=int, default=1)
    ap.add_argument("--bytes", type=int, default=4096)
    ap.add_argument("--method", default="CONNECT")
    ap.add_argument("--expect-status", type=int)
    ap.add_argument("--expect-handshake-failure", action="store_true")
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()

    host, port = a.addr.rsplit(":", 1)
    cert = os.path.join(a.certs, a.identity + ".pem")
    key = os.path.join(a.certs, a.identity + "-key.pem")
    ca = os.path.join(a.certs, "ca.pem")
    try:
        c = HboneClient(host, int(port), cert, key, ca, expect_san=a.expect_san,
                        timeout=a.timeout)
        # TLS 1.3: a refused client certificate shows up after the
        # handshake, as an alert on the first read.
        c.ping()
        c.run_until(lambda: c.pings_acked > 0, 5.0)
        if c.closed or c.pings_acked == 0:
            raise ssl.SSLError("connection closed after handshake")
    except (ssl.SSLError, ConnectionError, OSError) as e:
        print(json.dumps({"handshake": "failed", "error": str(e)}))
        return 0 if a.expect_handshake_failure else 1
    if a.expect_handshake_failure:
        print(json.dumps({"handshake": "succeeded unexpectedly"}))
        return 1
    if a.method != "CONNECT" or a.expect_status is not None:
        sid = c.open(a.authority, method=a.method)
        c.run_until(lambda: c.streams[sid].status is not None or c.streams[sid].reset is not None)
        st = c.streams[sid]
        print(json.dumps({"status": st.status, "reset": st.reset}))
        return 0 if st.status == (a.expect_status or 400) else 1
    ok, report = echo_tunnels(c, a.authority, a.tunnels, a.bytes, timeout=a.timeout)
    print(json.dumps(report))
    c.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
