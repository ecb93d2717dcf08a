#!/usr/bin/python3
"""Tunnel-level checks for the HBONE integration tests (reload, flow control,
RST_STREAM, PING). Run inside the test's namespace with /usr/bin/python3;
each mode is bounded in time, starts its own TCP backend on 0.0.0.0:PORT
(the pod IP of the test service) when it needs one, prints one JSON report
line and exits 0 only when every check passed.

  probe     --addr A --cert C --key K --ca CA --authority AUTH
            one HBONE connection: prints the server certificate's SHA-256
            fingerprint and serial, and echoes 64 KiB through one tunnel.
  flow-up   --addr A --certs DIR --authority AUTH --prefix P --window W
            client -> backend while the backend does not read: the client's
            HTTP/2 send window must run dry and stay dry, waypointd's queued
            bytes stay <= W (hbone.stream_window) and the bytes in flight
            stay bounded; then the backend reads and all of it arrives
            (SHA-256).
  flow-down --addr A --certs DIR --authority AUTH --prefix P
            backend -> client while the client reads frames but returns no
            window (no WINDOW_UPDATE): the backend's writes must block, the
            gauges stay bounded; then the client opens its window and all of
            it arrives (SHA-256).
  rst       --addr A --certs DIR --authority AUTH --prefix P [--only-cancel]
            RST_STREAM(CANCEL) while bytes flow both ways: the backend sees
            EOF or RST, its further sends are refused (the upstream is not
            left half-open), the tunnel is freed, the connection stays
            usable; then the backend resets a tunnel (SO_LINGER 0): the
            client gets RST_STREAM.
  ping      --addr A --certs DIR --authority AUTH --prefix P --wait S
            three connections with a tunnel each: one answers PINGs, one goes
            silent for S seconds, one reads everything and sends DATA every
            0.5 s but returns no PING ACK. The silent and the deaf one must
            be closed (their backends see EOF or RST), the answering one must
            stay up and work.
"""

import argparse
import errno
import hashlib
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "hbone"))
sys.path.insert(0, HERE)
import h2.events  # noqa: E402
from hyperframe.frame import PingFrame  # noqa: E402
from client import HboneClient  # noqa: E402
from hbone_load import Source  # noqa: E402

CHUNK = 65536
PENDING_MAX = 256 * 1024


def report(ok, **kw):
    kw["ok"] = bool(ok)
    print(json.dumps(kw), flush=True)
    return 0 if ok else 1


def gauges(prefix):
    """/wp/tunnels over DPDK telemetry (the unix socket is reachable from the namespace)."""
    out = subprocess.run(["dpdk-telemetry.py", "-f", prefix], input="/wp/tunnels\n",
                         capture_output=True, text=True, timeout=20).stdout
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            o = json.loads(line)
            if "/wp/tunnels" in o:
                return o["/wp/tunnels"]
    raise RuntimeError("no /wp/tunnels reply: %r" % out[-200:])


def connect(a, tls_ctx=None):
    host, port = a.addr.rsplit(":", 1)
    return HboneClient(host, int(port), os.path.join(a.certs, "productpage.pem"),
                       os.path.join(a.certs, "productpage-key.pem"),
                       os.path.join(a.certs, "ca.pem"), timeout=a.timeout, tls_ctx=tls_ctx)


class Backend:
    """A TCP server on 0.0.0.0:port; handler(conn, rec) runs per connection in
    a thread and fills rec (a dict, appended to self.conns)."""

    def __init__(self, port, handler, rcvbuf=None, sndbuf=None):
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Set on the listener so accepted sockets start small (no autotuning).
        if rcvbuf:
            self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf:
            self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.ls.bind(("0.0.0.0", port))
        self.ls.listen(16)
        self.handler = handler
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            rec = {"rx": 0, "tx": 0, "end": None, "rx_sha": hashlib.sha256()}
            with self.lock:
                self.conns.append(rec)
            threading.Thread(target=self.handler, args=(c, rec), daemon=True).start()

    def wait_conns(self, n, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if len(self.conns) >= n:
                    return True
            time.sleep(0.02)
        return False


def read_until_end(c, rec, gate=None, close=True):
    """Reads (when gate is set) until EOF or reset; rec["end"] says which."""
    c.settimeout(0.2)
    while True:
        if gate is not None and not gate.is_set():
            time.sleep(0.02)
            continue
        try:
            d = c.recv(CHUNK)
        except socket.timeout:
            continue
        except ConnectionResetError:
            rec["end"] = "rst"
            break
        except OSError as e:
            rec["end"] = "error %s" % e
            break
        if not d:
            rec["end"] = "eof"
            break
        rec["rx"] += len(d)
        rec["rx_sha"].update(d)
    rec["end_t"] = time.monotonic()
    if close:
        c.close()


def open_tunnel(c, authority, timeout):
    sid = c.open(authority)
    if not c.run_until(lambda: c.streams[sid].status is not None or
                       c.streams[sid].reset is not None, timeout):
        raise RuntimeError("no answer to CONNECT")
    if c.streams[sid].status != 200:
        raise RuntimeError("CONNECT answered %s" % c.streams[sid].status)
    return sid


def pump(c, sid, src):
    """Keeps up to PENDING_MAX of src queued on the stream; END_STREAM at the end."""
    st = c.streams[sid]
    while len(st.pending) < PENDING_MAX and src.off < src.n:
        st.pending += src.next(CHUNK)
    if src.off >= src.n:
        st.end_after = True


def handed(c, sid, src):
    """Bytes the client's HTTP/2 flow control let out (the rest waits in pending)."""
    return src.off - len(c.streams[sid].pending)


# ---- probe ---------------------------------------------------------------------------------


def cmd_probe(a):
    host, port = a.addr.rsplit(":", 1)
    try:
        c = HboneClient(host, int(port), a.cert, a.key, a.ca, timeout=a.timeout)
        der = c.sock.getpeercert(binary_form=True)
        info = c.sock.getpeercert()
        sid = open_tunnel(c, a.authority, a.timeout)
    except (ssl.SSLError, OSError, RuntimeError) as e:
        return report(False, error=str(e))
    data = os.urandom(65536)
    c.send(sid, data, end=True)
    done = c.run_until(lambda: c.streams[sid].ended or c.streams[sid].reset is not None)
    ok = done and bytes(c.streams[sid].rx) == data
    c.close()
    return report(ok, fingerprint=hashlib.sha256(der).hexdigest(),
                  serial=info.get("serialNumber", "").lower(), peer=c.peer_ids,
                  echoed=len(c.streams[sid].rx))


# ---- flow control --------------------------------------------------------------------------


def cmd_flow_up(a):
    gate = threading.Event()  # the backend reads only once set
    be = Backend(a.port, lambda c, rec: read_until_end(c, rec, gate), rcvbuf=16384)
    c = connect(a)
    sid = open_tunnel(c, a.authority, a.timeout)
    if not be.wait_conns(1, 5):
        return report(False, error="backend never connected")
    rec = be.conns[0]
    src = Source(1, a.bytes)
    c.streams[sid].keep_rx = False
    samples = []
    t0 = time.monotonic()
    # Stall: push as hard as the window lets us for a.stall seconds.
    while time.monotonic() - t0 < a.stall:
        pump(c, sid, src)
        c.poll(0.02)
        samples.append((time.monotonic() - t0, handed(c, sid, src)))
    g = gauges(a.prefix)
    win = c.h2.local_flow_control_window(sid)
    sent_stall = handed(c, sid, src)
    half = [n for (t, n) in samples if t >= a.stall / 2]
    plateau = half[-1] - half[0] if half else -1
    checks = {
        "backend_read_nothing": rec["rx"] == 0,
        "client_window_dry": win == 0 and len(c.streams[sid].pending) > 0,
        "plateau_second_half": plateau == 0,
        # what left the client sits in waypointd (<= the window it granted),
        # its TCP send buffer and the backend's small socket buffers
        "in_flight_bounded": sent_stall <= a.window + a.slack,
        "queued_le_window": g["queued_bytes"] <= a.window,
        "not_everything": sent_stall < a.bytes // 2,
    }
    gate.set()
    # The backend reads to EOF (our END_STREAM) and closes: END_STREAM comes back.
    end = time.monotonic() + a.timeout
    st = c.streams[sid]
    while not st.ended and st.reset is None and not c.closed and time.monotonic() < end:
        pump(c, sid, src)
        c.poll(0.02)
    checks["tunnel_ended"] = st.ended and st.reset is None
    checks["all_arrived"] = rec["rx"] == a.bytes and rec["rx_sha"].hexdigest() == \
        src.sha.hexdigest()
    checks["backend_eof"] = rec["end"] == "eof"
    c.close()
    return report(all(checks.values()), checks=checks, stall_sent=sent_stall,
                  stall_window=win, gauges_stalled=g, backend_rx=rec["rx"], bytes=a.bytes)


class HoldingClient(HboneClient):
    """Reads every frame (PINGs are answered) but returns no flow-control
    window while self.hold is set: the HTTP/2 reader is 'slow'."""

    hold = False
    unacked = {}

    def _handle(self, ev):
        if isinstance(ev, h2.events.DataReceived) and self.hold:
            st = self.streams.get(ev.stream_id)
            if st is not None:
                st.rx_hash.update(ev.data)
                st.rx_len += len(ev.data)
            self.unacked[ev.stream_id] = self.unacked.get(ev.stream_id, 0) + \
                ev.flow_controlled_length
            return
        super()._handle(ev)

    def release(self):
        self.hold = False
        for sid, n in self.unacked.items():
            if n:
                self.h2.acknowledge_received_data(n, sid)
        self.unacked = {}
        self._flush()


def cmd_flow_down(a):
    src = Source(2, a.bytes)
    lock = threading.Lock()

    def serve(c, rec):
        # Writes as fast as the kernel takes it; blocks when the tunnel is full.
        try:
            while src.off < src.n:
                with lock:
                    d = src.next(CHUNK)
                c.sendall(d)
                rec["tx"] += len(d)
            c.shutdown(socket.SHUT_WR)
        except OSError as e:
            rec["end"] = "send error %s" % e
            return
        read_until_end(c, rec)

    be = Backend(a.port, serve, sndbuf=16384)
    host, port = a.addr.rsplit(":", 1)
    c = HoldingClient(host, int(port), os.path.join(a.certs, "productpage.pem"),
                      os.path.join(a.certs, "productpage-key.pem"),
                      os.path.join(a.certs, "ca.pem"), timeout=a.timeout)
    c.hold = True
    sid = open_tunnel(c, a.authority, a.timeout)
    if not be.wait_conns(1, 5):
        return report(False, error="backend never connected")
    rec = be.conns[0]
    st = c.streams[sid]
    st.keep_rx = False
    samples = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < a.stall:
        c.poll(0.02)
        samples.append((time.monotonic() - t0, rec["tx"], st.rx_len))
    g = gauges(a.prefix)
    half = [s for s in samples if s[0] >= a.stall / 2]
    tx_stall, rx_stall = rec["tx"], st.rx_len
    checks = {
        "client_alive": not c.closed,
        "client_window_full": rx_stall > 0 and rx_stall <= a.client_window,
        "backend_blocked": half and half[-1][1] == half[0][1],
        "in_flight_bounded": tx_stall - rx_stall <= a.slack,
        "queued_bounded": g["queued_bytes"] <= a.slack,
        "not_everything": tx_stall < a.bytes // 2,
    }
    c.release()
    c.send(sid, b"", end=True)
    end = time.monotonic() + a.timeout
    c.run_until(lambda: st.ended or st.reset is not None, a.timeout)
    while rec["end"] is None and time.monotonic() < end:
        c.poll(0.05)
    checks["all_arrived"] = st.ended and st.rx_len == a.bytes and \
        st.rx_hash.hexdigest() == src.sha.hexdigest()
    checks["backend_eof"] = rec["end"] == "eof"
    c.close()
    return report(all(checks.values()), checks=checks, stall_backend_tx=tx_stall,
                  stall_client_rx=rx_stall, gauges_stalled=g, client_rx=st.rx_len,
                  bytes=a.bytes)


# ---- RST_STREAM ----------------------------------------------------------------------------


def cmd_rst(a):
    mode = {"n": 0}

    def serve(c, rec):
        mode["n"] += 1
        if mode["n"] == 1:
            # tunnel 1: both ways busy when the client cancels; the backend
            # keeps sending until its connection is closed under it
            def writer():
                blk = os.urandom(CHUNK)
                try:
                    while True:
                        try:  # (the socket has the reader's 0.2 s timeout)
                            rec["tx"] += c.send(blk)
                        except socket.timeout:
                            continue  # blocked by flow control: not refused
                except OSError as e:
                    rec["tx_end"] = "%s" % (errno.errorcode.get(e.errno) or e)
                    rec["tx_end_t"] = time.monotonic()
            threading.Thread(target=writer, daemon=True).start()
            read_until_end(c, rec, close=False)
            return
        # tunnel 2: the backend reads 64 KiB, then resets
        c.settimeout(10)
        got = 0
        while got < 65536:
            d = c.recv(CHUNK)
            if not d:
                break
            got += len(d)
        rec["rx"] = got
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        rec["end"] = "we reset"

    be = Backend(a.port, serve)
    c = connect(a)
    checks = {}
    # 1: client cancels after the backend got >= 256 KiB of a 16 MiB upload.
    sid = open_tunnel(c, a.authority, a.timeout)
    if not be.wait_conns(1, 5):
        return report(False, error="backend never connected")
    rec = be.conns[0]
    src = Source(3, 16 << 20)
    c.streams[sid].keep_rx = False
    end = time.monotonic() + a.timeout
    while rec["rx"] < 262144 and time.monotonic() < end:
        pump(c, sid, src)
        c.poll(0.02)
    checks["mid_transfer"] = 262144 <= rec["rx"] < src.n
    c.streams[sid].pending.clear()
    c.reset(sid, 8)
    t_rst = time.monotonic()
    while rec["end"] is None and time.monotonic() < t_rst + 5:
        c.poll(0.05)
    checks["backend_closed"] = rec["end"] in ("eof", "rst")
    checks["backend_closed_fast"] = rec["end"] is not None and rec["end_t"] - t_rst < 2.0
    # Nothing can go back on a reset stream: the upstream must not stay
    # half-open, its further bytes are refused (RST), not swallowed.
    while "tx_end" not in rec and time.monotonic() < t_rst + 5:
        c.poll(0.05)
    checks["backend_send_refused"] = "tx_end" in rec and rec["tx_end_t"] - t_rst < 3.0
    checks["downloaded_before"] = c.streams[sid].rx_len > 0
    g1 = gauges(a.prefix)
    checks["cancelled_tunnel_freed"] = g1["tunnels"] == 0
    # python-h2 answers each DATA frame still in flight after its CANCEL
    # with RST_STREAM(STREAM_CLOSED); make that deterministic: 250 of them
    # (over hbone's 200/s rapid-reset bound) for the stream now closed. They
    # are no rapid reset (no stream opened) and must not cost the connection.
    c.poll(0.2)
    c._flush()
    burst = b"".join(struct.pack(">I", 4)[1:] + bytes([3, 0]) + struct.pack(">II", sid, 5)
                     for _ in range(250))
    c._out += burst
    c._flush()
    # the HBONE connection is still usable
    c.run_until(lambda: c.closed or c.goaway is not None, 0.5)
    if c.closed or c.goaway is not None:
        return report(False, checks=checks, error="connection closed after the CANCEL",
                      goaway=c.goaway and (c.goaway.error_code, c.goaway.additional_data),
                      backend1=rec["end"], gauges=gauges(a.prefix))
    c.ping()
    acked = c.pings_acked
    checks["conn_alive"] = c.run_until(lambda: c.pings_acked > acked, 5) and not c.closed
    if a.only_cancel:
        time.sleep(0.3)
        g = gauges(a.prefix)
        checks["no_tunnel_left"] = g["tunnels"] == 0 and g["queued_bytes"] == 0
        c.close()
        return report(all(checks.values()), checks=checks, backend1=rec["end"],
                      backend1_rx=rec["rx"], backend1_tx_end=rec.get("tx_end"), gauges=g)
    # 2: the backend resets: the client gets RST_STREAM on that tunnel.
    sid2 = open_tunnel(c, a.authority, a.timeout)
    if not be.wait_conns(2, 5):
        return report(False, error="backend never connected (2)")
    c.send(sid2, os.urandom(131072))
    c.run_until(lambda: c.streams[sid2].reset is not None or c.streams[sid2].ended, 5)
    checks["client_got_rst"] = c.streams[sid2].reset is not None
    time.sleep(0.3)
    g = gauges(a.prefix)
    checks["no_tunnel_left"] = g["tunnels"] == 0 and g["queued_bytes"] == 0
    c.close()
    return report(all(checks.values()), checks=checks, backend1=rec["end"],
                  backend1_rx=rec["rx"], backend1_tx_end=rec.get("tx_end"),
                  gauges_after_cancel=g1, rst2=c.streams[sid2].reset, gauges=g)


# ---- PING ----------------------------------------------------------------------------------


def cmd_ping(a):
    be = Backend(a.port, read_until_end)
    good = connect(a)
    sg = open_tunnel(good, a.authority, a.timeout)
    if not be.wait_conns(1, 5):
        return report(False, error="backend never connected")
    good_rec = be.conns[0]
    mute = connect(a)
    sm = open_tunnel(mute, a.authority, a.timeout)
    if not be.wait_conns(2, 5):
        return report(False, error="backend never connected (2)")
    mute_rec = be.conns[1]
    # "deaf" reads everything and keeps sending DATA every 0.5 s, but its
    # HTTP/2 stack returns no PING ACK: busy is not alive.
    deaf = connect(a)
    sd = open_tunnel(deaf, a.authority, a.timeout)
    if not be.wait_conns(3, 5):
        return report(False, error="backend never connected (3)")
    deaf_rec = be.conns[2]
    ping_rx = deaf.h2._frame_dispatch_table[PingFrame]

    def no_ack(frame):
        frames, events = ping_rx(frame)
        return [f for f in frames if not isinstance(f, PingFrame)], events

    deaf.h2._frame_dispatch_table[PingFrame] = no_ack
    good.send(sg, b"g" * 1000)
    # The last frames "mute" ever sends: waypointd hears nothing after t0, so
    # it may not give up before t0 + ping_interval + ping_timeout.
    t0 = time.monotonic()
    mute.send(sm, b"m" * 1000)
    # From now on "mute" is never read or written: its PINGs go unanswered.
    deaf_sent, next_deaf = 0, t0
    while time.monotonic() - t0 < a.wait:
        good.poll(0.03)
        if not deaf.closed:
            if time.monotonic() >= next_deaf and deaf.streams[sd].reset is None:
                try:
                    deaf.send(sd, b"d" * 100)
                    deaf_sent += 100
                except Exception:
                    pass
                next_deaf += 0.5
            try:
                deaf.poll(0.02)
            except Exception:
                deaf.closed = True
    checks = {
        "good_alive": not good.closed and good.streams[sg].reset is None,
        "good_backend_open": good_rec["end"] is None,
        "mute_backend_closed": mute_rec["end"] in ("eof", "rst"),
        "mute_closed_in_time": mute_rec["end"] is not None and
        mute_rec["end_t"] - t0 >= a.min_close,
        "deaf_backend_closed": deaf_rec["end"] in ("eof", "rst"),
        "deaf_was_busy": deaf_rec["rx"] >= 200,
        "deaf_conn_closed": deaf.closed,
    }
    # the answering connection still carries data, to the end
    good.send(sg, b"x" * 5000, end=True)
    good.run_until(lambda: good_rec["end"] is not None, 5)
    checks["good_works"] = good_rec["rx"] == 6000 and good_rec["end"] == "eof"
    # and ends cleanly: the backend closed after our EOF, so waypointd's
    # END_STREAM comes back before we close the connection (closing first
    # would reset a half-open tunnel, a third tunnel_downstream_reset)
    good.run_until(lambda: good.streams[sg].ended, 5)
    checks["good_ended"] = good.streams[sg].ended
    # the mute client finds the connection closed when it looks again
    mute.run_until(lambda: mute.closed, 5)
    checks["mute_conn_closed"] = mute.closed
    good.close()
    return report(all(checks.values()), checks=checks,
                  mute_backend={"rx": mute_rec["rx"], "end": mute_rec["end"],
                                "after_s": round(mute_rec.get("end_t", t0) - t0, 2)},
                  good_backend={"rx": good_rec["rx"], "end": good_rec["end"]},
                  deaf_backend={"rx": deaf_rec["rx"], "end": deaf_rec["end"],
                                "after_s": round(deaf_rec.get("end_t", t0) - t0, 2)},
                  mute_goaway=mute.goaway is not None and mute.goaway.error_code)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("probe", "flow-up", "flow-down", "rst", "ping"):
        p = sub.add_parser(name)
        p.add_argument("--addr", required=True)
        p.add_argument("--authority", required=True)
        p.add_argument("--timeout", type=float, default=60.0)
        p.add_argument("--port", type=int, default=7000, help="backend port")
        if name == "probe":
            for k in ("cert", "key", "ca"):
                p.add_argument("--" + k, required=True)
            continue
        p.add_argument("--certs", required=True)
        p.add_argument("--prefix", required=True, help="waypointd's EAL file prefix")
        p.add_argument("--bytes", type=int, default=32 << 20)
        p.add_argument("--stall", type=float, default=3.0)
        p.add_argument("--window", type=int, default=1 << 20, help="hbone.stream_window")
        p.add_argument("--client-window", type=int, default=4 << 20)
        p.add_argument("--slack", type=int, default=768 << 10)
        p.add_argument("--wait", type=float, default=3.0)
        p.add_argument("--only-cancel", action="store_true", help="rst: the CANCEL case only")
        p.add_argument("--min-close", type=float, default=0.0,
                       help="ping: the mute connection may not close sooner (s)")
    a = ap.parse_args()
    return {"probe": cmd_probe, "flow-up": cmd_flow_up, "flow-down": cmd_flow_down,
            "rst": cmd_rst, "ping": cmd_ping}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
