#!/usr/bin/python3
"""TCP benchmark: waypointd's user-space stack against the Linux kernel's,
measured in one run with the same Linux client.

Three bounded phases, each run twice:

  upload     one connection sends BYTES to a discard service (port 9)
  download   one connection asks a source service (port 19) for BYTES
  connect    COUNT short connections (connect, 1 byte echoed, close; 32 in
             flight) to an echo service (port 7)

  waypointd  a testbed namespace (1 worker, busy polling); the client talks
             to waypointd's diagnostic services on a TAP port.
  kernel     two namespaces joined by a veth pair; the server is this script
             (--serve) answering the same three services through the kernel.

Printed per phase: throughput (Gbit/s) or connections per second; for
waypointd its busy cycles per segment (rx + tx packets) and per connection
from its TSC accounting, split into the TAP PMD's system-call share
(io_cycles, which a real NIC does not pay) and its own processing; for both,
the whole machine's non-idle CPU (/proc/stat, at the TSC rate) per segment
or connection, and the kernel/waypointd ratios (>1: waypointd cheaper). The
machine figures include the Python client in both runs, and the Python
server in the kernel run; the waypointd worker's empty polls (idle_cycles)
are subtracted since a busy-polling core is always "busy" to /proc/stat.

Usage:  sudo bench/tcp_bench.py [--bytes N] [--count N]
"""
import argparse
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time

from benchlib import ROOT, cpu_busy_jiffies, sh

BUILD = os.environ.get("WP_BUILD_DIR", os.path.join(ROOT, "build"))
WPCTL = os.path.join(BUILD, "cp", "wpctl", "wpctl")
TESTBED = os.path.join(ROOT, "tests", "testbed")
os.environ.setdefault("WP_BIN", os.path.join(BUILD, "dp", "waypointd"))
DEADLINE = 60
CHUNK = 1 << 20


# ---- the kernel-side server (--serve), run inside its namespace ----

def serve():
    def discard(c):
        buf = bytearray(CHUNK)
        while c.recv_into(buf):
            pass
        c.close()

    def source(c):
        req = b""
        while not req.endswith(b"\n"):
            d = c.recv(64)
            if not d:
                return c.close()
            req += d
        left = int(req.strip())
        block = bytes(CHUNK)
        while left:
            n = c.send(block[:min(left, CHUNK)])
            left -= n
        c.close()

    def echo(c):
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
        c.close()

    def listen(port, fn):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("0.0.0.0", port))
        ls.listen(4096)
        while True:
            c, _ = ls.accept()
            if fn is echo:
                fn(c)  # short connections: no thread per connection
            else:
                threading.Thread(target=fn, args=(c,), daemon=True).start()

    for port, fn in ((9, discard), (19, source), (7, echo)):
        threading.Thread(target=listen, args=(port, fn), daemon=True).start()
    print("ready", flush=True)
    time.sleep(DEADLINE * 5)


# ---- the client phases ----

def upload(host, nbytes):
    s = socket.create_connection((host, 9), timeout=DEADLINE)
    block = os.urandom(CHUNK)
    t0 = time.monotonic()
    left = nbytes
    while left:
        n = min(left, CHUNK)
        s.sendall(block[:n])
        left -= n
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    el = time.monotonic() - t0
    s.close()
    return el


def download(host, nbytes):
    s = socket.create_connection((host, 19), timeout=DEADLINE)
    t0 = time.monotonic()
    s.sendall(b"%d\r\n" % nbytes)
    got = 0
    buf = bytearray(CHUNK)
    while got < nbytes:
        n = s.recv_into(buf)
        if not n:
            break
        got += n
    el = time.monotonic() - t0
    s.close()
    if got != nbytes:
        sys.exit(f"tcp_bench: download got {got} of {nbytes} bytes")
    return el


def connect_many(host, count):
    sel = selectors.DefaultSelector()
    t0 = time.monotonic()
    started = done = 0
    state = {}
    while done < count:
        if time.monotonic() - t0 > DEADLINE:
            sys.exit(f"tcp_bench: {done}/{count} connections after {DEADLINE}s")
        while started < count and len(state) < 32:
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((host, 7))
            state[s] = 0
            sel.register(s, selectors.EVENT_WRITE)
            started += 1
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            if state[s] == 0:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    sys.exit("tcp_bench: connect failed")
                s.send(b"x")
                state[s] = 1
                sel.modify(s, selectors.EVENT_READ)
            else:
                if s.recv(16) != b"x":
                    sys.exit("tcp_bench: echo mismatch")
                sel.unregister(s)
                del state[s]
                s.close()
                done += 1
    return time.monotonic() - t0


def in_ns(ns, phase, host, n):
    """Runs one client phase in namespace ns (this script, --client); its seconds."""
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                          "--client", phase, host, str(n)],
                         capture_output=True, text=True, timeout=DEADLINE * 2)
    if out.returncode:
        sys.exit(f"tcp_bench: {phase} client in {ns} failed: {out.stderr.strip()}")
    return float(out.stdout)


PHASES = ("upload", "download", "connect")


def run_phases(ns, host, nbytes, count, counters):
    """counters() -> dict of cumulative figures; returns per-phase deltas."""
    out = {}
    for ph in PHASES:
        c0, b0 = counters(), cpu_busy_jiffies()
        el = in_ns(ns, ph, host, count if ph == "connect" else nbytes)
        b1, c1 = cpu_busy_jiffies(), counters()
        d = {k: c1[k] - c0[k] for k in c0}
        d["secs"] = el
        d["machine_s"] = (b1 - b0) / os.sysconf("SC_CLK_TCK")
        out[ph] = d
    return out


def wp_counters(prefix):
    def f():
        t = json.loads(sh(WPCTL, "stats", "--json", "--prefix", prefix))["total"]
        return {k: t[k] for k in ("busy_cycles", "io_cycles", "idle_cycles", "rx_packets",
                                  "tx_packets")}
    return f


def kernel_counters(ns):
    def f():
        lines = sh("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").splitlines()
        tcp = [l.split() for l in lines if l.startswith("Tcp:")]
        m = dict(zip(tcp[0][1:], (int(x) for x in tcp[1][1:])))
        return {"segs": m["InSegs"] + m["OutSegs"]}
    return f


def bench_waypointd(nbytes, count):
    name = f"wpbench-tcp-{os.getpid()}"
    out = sh(TESTBED, "up", "--name", name, "--workers", "1", "--set", "polling.mode=busy")
    v = dict(l.split("=", 1) for l in out.split())
    try:
        hz = json.loads(sh(WPCTL, "stats", "--json", "--prefix", v["WP_PREFIX"]))["tsc_hz"]
        return hz, run_phases(name, v["WP_IP"], nbytes, count, wp_counters(v["WP_PREFIX"]))
    finally:
        subprocess.run([TESTBED, "down", name])


def bench_kernel(nbytes, count, offload):
    a, b = f"wpbench-tka-{os.getpid()}", f"wpbench-tkb-{os.getpid()}"
    srv = None
    try:
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        sh("ip", "link", "add", "tb0", "netns", a, "type", "veth", "peer", "name", "tb1",
           "netns", b)
        sh("ip", "-n", a, "addr", "add", "198.18.0.1/24", "dev", "tb0")
        sh("ip", "-n", b, "addr", "add", "198.18.0.2/24", "dev", "tb1")
        for ns, dev in ((a, "tb0"), (b, "tb1")):
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            if not offload:
                # The TAP port has no offloads: make the kernel segment too.
                sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso",
                   "off", "gro", "off")
        srv = subprocess.Popen(["ip", "netns", "exec", b, sys.executable,
                                os.path.abspath(__file__), "--serve"],
                               stdout=subprocess.PIPE, text=True)
        if srv.stdout.readline().strip() != "ready":
            sys.exit("tcp_bench: kernel-side server did not start")
        return run_phases(a, "198.18.0.2", nbytes, count, kernel_counters(b))
    finally:
        if srv:
            srv.kill()
            srv.wait()
        subprocess.run(["ip", "netns", "del", a], capture_output=True)
        subprocess.run(["ip", "netns", "del", b], capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bytes", type=int, default=256 << 20)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve()
    if args.client:
        fn = {"upload": upload, "download": download, "connect": connect_many}[args.client[0]]
        print(fn(args.client[1], int(args.client[2])))
        return
    if os.geteuid() != 0:
        sys.exit("tcp_bench: needs root (network namespaces)")
    args.bytes = min(args.bytes, 4 << 30)
    args.count = min(args.count, 100000)
    hz, w = bench_waypointd(args.bytes, args.count)
    k = bench_kernel(args.bytes, args.count, False)
    ko = bench_kernel(args.bytes, args.count, True)
    print(f"tsc_hz {hz}; {args.bytes} bytes per transfer, {args.count} short connections")
    print("cycles per 1448-byte data segment (transfers) or per connection; 'wp busy' ="
          " waypointd's TSC busy cycles = 'wp io' (TAP PMD syscalls) + 'wp own';")
    print("'machine' = whole-machine non-idle CPU incl. the Python client (and server for the"
          " kernel); ratio = kernel machine / waypointd machine")
    print(f"{'phase':9} {'who':16} {'rate':>15} {'wp busy':>9} {'wp io':>8} {'wp own':>8} "
          f"{'machine':>9} {'ratio':>6}")
    for ph in PHASES:
        wd = w[ph]
        n = args.count if ph == "connect" else max(args.bytes // 1448, 1)

        def rate(d):
            if ph == "connect":
                return f"{args.count / d['secs']:.0f} conn/s"
            return f"{args.bytes * 8 / d['secs'] / 1e9:.2f} Gbit/s"

        w_busy, w_io = wd["busy_cycles"] / n, wd["io_cycles"] / n
        w_mach = (wd["machine_s"] * hz - wd["idle_cycles"]) / n
        print(f"{ph:9} {'waypointd':16} {rate(wd):>15} {w_busy:9.0f} {w_io:8.0f} "
              f"{w_busy - w_io:8.0f} {w_mach:9.0f} {'':>6}  "
              f"({wd['rx_packets'] + wd['tx_packets']} packets)")
        for label, kk in (("kernel", k), ("kernel+offload", ko)):
            kd = kk[ph]
            k_mach = kd["machine_s"] * hz / n
            print(f"{'':9} {label:16} {rate(kd):>15} {'':>9} {'':>8} {'':>8} {k_mach:9.0f} "
                  f"{k_mach / max(w_mach, 1):6.2f}  ({kd['segs']} segments)")

if __name__ == "__main__":
    main()
