#!/usr/bin/python3
"""Load balancing of opaque TCP tunnels (test_tcp_lb.sh).

  tcp_lb.py serve --bind IP:PORT=NAME ...
      TCP backends: each accepted connection is sent "NAME\\n" at once and
      held until the client closes it (then closed). One process, every bind.

  tcp_lb.py least|hash|spread --addr WP:15008 --certs DIR --authority VIP:PORT
      HBONE CONNECT tunnels (tests/hbone/client.py, one HBONE connection, so
      one waypoint worker) that read the backend's name. Prints a JSON report,
      exit 0 when the check holds:

      least   hold 6 tunnels open, close those on the endpoint that got the
              fewest (so two endpoints stay loaded and one has none), then
              --n short tunnels one after the other: LEAST_REQUEST sends
              more than --min-free of them to the idle endpoint (round robin
              sends a third, random about a third);
      hash    --sources distinct `Forwarded: for=` addresses, --n tunnels
              each, plus --n without a Forwarded header (the HBONE peer's
              address is hashed): each source always lands on one endpoint,
              and the sources together reach more than one;
      spread  --n short tunnels one after the other; every endpoint gets at
              least --min-each (--exact: exactly n / endpoints each).
      outlier one endpoint of the service refuses connections: short
              tunnels until --fails CONNECTs were refused (503), then a
              pause of --wait s (outlier detection's interval), then --n
              short tunnels that must all reach a working endpoint.
      idle    two tunnels: one silent, one sending a byte every --every s;
              after --hold s the silent one must have been closed by the
              waypoint no sooner than --idle s after it opened, and the
              busy one must still be open (then closed cleanly).
      hold    one silent tunnel that must still be open after --hold s
              (then closed cleanly).
"""

import argparse
import json
import os
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hbone"))
from client import HboneClient  # noqa: E402


def serve(binds, deadline):
    sel = selectors.DefaultSelector()
    for b in binds:
        addr, name = b.split("=", 1)
        host, port = addr.rsplit(":", 1)
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((host, int(port)))
        ls.listen(256)
        ls.setblocking(False)
        sel.register(ls, selectors.EVENT_READ, ("listen", name.encode() + b"\n"))
    print("listening", flush=True)
    while time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            kind, data = key.data
            if kind == "listen":
                try:
                    c, _ = key.fileobj.accept()
                except BlockingIOError:
                    continue
                c.setblocking(False)
                try:
                    c.send(data)
                except OSError:
                    c.close()
                    continue
                sel.register(c, selectors.EVENT_READ, ("conn", None))
            else:
                try:
                    d = key.fileobj.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    d = b""
                if not d:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()


class Tunnels:
    def __init__(self, a):
        host, port = a.addr.rsplit(":", 1)
        c = os.path.join(a.certs, "productpage")
        self.c = HboneClient(host, int(port), c + ".pem", c + "-key.pem",
                             os.path.join(a.certs, "ca.pem"), timeout=a.timeout)
        self.authority = a.authority

    def open(self, fwd="default"):
        """Opens a tunnel and returns (sid, backend name)."""
        if fwd == "default":
            sid = self.c.open(self.authority)
        else:
            sid = self.c.open(self.authority, forwarded=fwd)
        st = self.c.streams[sid]
        self.c.run_until(lambda: b"\n" in st.rx or st.ended or st.reset is not None)
        if st.status != 200 or b"\n" not in st.rx:
            raise RuntimeError("tunnel %d: status %s reset %s rx %r" %
                               (sid, st.status, st.reset, bytes(st.rx)))
        return sid, st.rx.split(b"\n", 1)[0].decode()

    def close(self, sid):
        """Half-closes; the backend closes; waits for END_STREAM."""
        st = self.c.streams[sid]
        self.c.send(sid, b"", end=True)
        if not self.c.run_until(lambda: st.ended or st.reset is not None):
            raise RuntimeError("tunnel %d did not end" % sid)

    def short(self, fwd="default"):
        sid, name = self.open(fwd)
        self.close(sid)
        return name


def count(names):
    out = {}
    for n in names:
        out[n] = out.get(n, 0) + 1
    return out


def least(t, a):
    held = [t.open() for _ in range(6)]
    per = count(n for _, n in held)
    for e in a.endpoints.split(","):
        per.setdefault(e, 0)
    free = min(sorted(per), key=lambda e: per[e])
    for sid, n in held:
        if n == free:
            t.close(sid)
    loaded = {e: k for e, k in per.items() if e != free}
    if min(loaded.values()) == 0:
        return False, {"error": "held tunnels did not load two endpoints", "held": per}
    got = count(t.short() for _ in range(a.n))
    ok = got.get(free, 0) > a.min_free
    return ok, {"held": loaded, "idle": free, "short": got, "need_idle_above": a.min_free}


def hash_(t, a):
    srcs = ['for="10.244.%d.%d:%d"' % (i // 200, 1 + i % 200, 40000 + i) for i in range(a.sources)]
    srcs.append(None)  # no Forwarded: the HBONE peer address is the key
    per = {}
    for s in srcs:
        per[s or "(peer)"] = count(t.short(s) for _ in range(a.n))
    sticky = all(len(v) == 1 for v in per.values())
    reached = {next(iter(v)) for v in per.values() if len(v) == 1}
    ok = sticky and len(reached) > 1
    return ok, {"sticky": sticky, "endpoints_reached": sorted(reached), "per_source": per}


def spread(t, a):
    eps = a.endpoints.split(",")
    got = count(t.short() for _ in range(a.n))
    if a.exact:
        ok = all(got.get(e, 0) == a.n // len(eps) for e in eps)
    else:
        ok = all(got.get(e, 0) >= a.min_each for e in eps)
    return ok, {"per_endpoint": got}


def outlier(t, a):
    fails, reached, tries = 0, {}, 0
    while fails < a.fails and tries < 10 * a.fails:
        tries += 1
        try:
            name = t.short()
            reached[name] = reached.get(name, 0) + 1
        except RuntimeError:
            fails += 1
    if fails < a.fails:
        return False, {"error": "the refusing endpoint was not reached", "reached": reached}
    time.sleep(a.wait)
    after, refused = {}, 0
    for _ in range(a.n):
        try:
            name = t.short()
            after[name] = after.get(name, 0) + 1
        except RuntimeError:
            refused += 1
    ok = refused == 0 and sum(after.values()) == a.n
    return ok, {"before": {"refused": fails, "reached": reached},
                "after_interval": {"refused": refused, "reached": after}}


def idle(t, a):
    quiet, _ = t.open()
    busy, _ = t.open()
    t0 = time.monotonic()
    qs, bs = t.c.streams[quiet], t.c.streams[busy]
    closed_at = None
    while time.monotonic() - t0 < a.hold:
        t.c.send(busy, b"x")
        t.c.run_until(lambda: bs.ended or bs.reset is not None, timeout=a.every)
        if closed_at is None and (qs.ended or qs.reset is not None):
            closed_at = time.monotonic() - t0
        if bs.ended or bs.reset is not None:
            break
    busy_open = not bs.ended and bs.reset is None
    rep = {"quiet_closed_after_s": None if closed_at is None else round(closed_at, 2),
           "quiet_reset": qs.reset, "busy_open_after_s": a.hold if busy_open else None}
    ok = busy_open and closed_at is not None and a.idle - 0.2 <= closed_at <= a.idle + 1.5
    if busy_open:
        t.close(busy)
    return ok, rep


def hold(t, a):
    sid, name = t.open()
    st = t.c.streams[sid]
    t.c.run_until(lambda: st.ended or st.reset is not None, timeout=a.hold)
    ok = not st.ended and st.reset is None
    if ok:
        t.close(sid)
    return ok, {"endpoint": name, "open_after_s": a.hold if ok else None, "reset": st.reset}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--bind", action="append", required=True)
    s.add_argument("--max-time", type=float, default=600.0)
    for name in ("least", "hash", "spread", "outlier", "idle", "hold"):
        p = sub.add_parser(name)
        p.add_argument("--addr", required=True)
        p.add_argument("--certs", required=True)
        p.add_argument("--authority", required=True)
        p.add_argument("--endpoints", default="tlb-1,tlb-2,tlb-3")
        p.add_argument("--n", type=int, default=30)
        p.add_argument("--timeout", type=float, default=10.0)
        p.add_argument("--min-free", type=int, default=0)
        p.add_argument("--sources", type=int, default=12)
        p.add_argument("--min-each", type=int, default=1)
        p.add_argument("--exact", action="store_true")
        p.add_argument("--fails", type=int, default=2)
        p.add_argument("--wait", type=float, default=2.5)
        p.add_argument("--idle", type=float, default=2.0)
        p.add_argument("--every", type=float, default=0.5)
        p.add_argument("--hold", type=float, default=4.5)
    a = ap.parse_args()
    if a.cmd == "serve":
        serve(a.bind, time.monotonic() + a.max_time)
        return 0
    t = Tunnels(a)
    try:
        ok, report = {"least": least, "hash": hash_, "spread": spread,
                      "outlier": outlier, "idle": idle, "hold": hold}[a.cmd](t, a)
    except RuntimeError as e:
        ok, report = False, {"error": str(e)}
    print(json.dumps(report, sort_keys=True))
    t.c.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
