#!/usr/bin/env python3
"""Slow admin clients against waypointd's admin port (test_admin_slow.sh).

Runs inside the test's namespace. Starts a client that trickles a request
into 127.0.0.1:PORT one byte every 1.5 s and a few that connect and send
nothing (each reconnects when the server closes it, as an attacker would),
then, with them connected, writes manifest edits and measures how long
each takes to show in /config_dump's snapshot, and how long each
/config_dump takes to answer. Prints one JSON line of figures, then keeps
the slow clients connected until the file --hold names disappears (the
shell test sends SIGTERM meanwhile) or 40 s pass.
"""
import argparse
import json
import os
import socket
import sys
import threading
import time

SVC = """apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: plain
spec:
  clusterIP: {vip}
  selector:
    app: {name}
  ports:
  - name: tcp
    port: 7100
    targetPort: 7100
"""

stop = threading.Event()
stats = {"trickled": 0, "reconnects": 0}


def connect(port):
    s = socket.socket()
    s.settimeout(2)
    s.connect(("127.0.0.1", port))
    return s


def trickler(port):
    req = b"GET /config_dump HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 4000 + b"\r\n\r\n"
    while not stop.is_set():
        try:
            s = connect(port)
            for b in req:
                s.send(bytes([b]))
                stats["trickled"] += 1
                if stop.wait(1.5):
                    break
        except OSError:
            stats["reconnects"] += 1
            stop.wait(0.2)


def mute(port):
    while not stop.is_set():
        try:
            s = connect(port)
            s.settimeout(0.5)
            while not stop.is_set():
                try:
                    if s.recv(1) == b"":
                        break  # closed by the server: come back
                except socket.timeout:
                    continue
            s.close()
            stats["reconnects"] += 1
        except OSError:
            stop.wait(0.2)


def config_dump(port):
    """(seconds it took, the service names in the snapshot)."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /config_dump HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    buf = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    s.close()
    dt = time.monotonic() - t0
    head, _, body = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit("config_dump answered: %r" % head[:80])
    snap = json.loads(body)["snapshot"] or {}
    return dt, {s["name"] for s in snap.get("services", [])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=15000)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--edits", type=int, default=3)
    ap.add_argument("--mute", type=int, default=4)
    ap.add_argument("--hold", required=True)
    a = ap.parse_args()

    threads = [threading.Thread(target=trickler, args=(a.port,), daemon=True)]
    threads += [threading.Thread(target=mute, args=(a.port,), daemon=True) for _ in range(a.mute)]
    for t in threads:
        t.start()
    time.sleep(2)  # the trickler is well into its request
    out = {"edit_ms": [], "dump_ms": []}
    try:
        for i in range(a.edits):
            name = "slowtest-%d" % i
            path = os.path.join(a.dir, "90-%s.yaml" % name)
            t0 = time.monotonic()
            with open(path, "w") as f:
                f.write(SVC.format(name=name, vip="198.19.0.%d" % (100 + i)))
            while True:
                dt, names = config_dump(a.port)
                out["dump_ms"].append(round(dt * 1000))
                if name in names:
                    break
                if time.monotonic() - t0 > 20:
                    raise SystemExit("edit %s not visible after 20 s" % name)
                time.sleep(0.02)
            out["edit_ms"].append(round((time.monotonic() - t0) * 1000))
            time.sleep(1)
    except (OSError, ValueError) as e:
        out["error"] = repr(e)
    out.update(stats)
    print(json.dumps(out), flush=True)
    # hold the slow clients while the shell test stops waypointd
    end = time.monotonic() + 40
    while os.path.exists(a.hold) and time.monotonic() < end:
        time.sleep(0.1)
    stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
