#!/usr/bin/python3
"""TCP benchmark: waypointd's user-space stack against the Linux kernel's,
measured in one run with the same Linux client.

  bench/tcp_bench.py [--bytes N] [--count N]   (defaults 256 MiB, 5000)

Three bounded phases (each at most 60 s), run against three servers:

  upload     one connection sends BYTES to a discard service (port 9)
  download   one connection asks a source service (port 19) for BYTES
  connect    COUNT short connections (connect, 1 byte echoed, close; 32 in
             flight) to an echo service (port 7)

  waypointd       a testbed namespace (1 worker, busy polling); the client
                  talks to waypointd's diagnostic services on a TAP port.
  kernel          the peer: two namespaces joined by a veth pair, the same
                  three services served by build/bench/tcp_peer (C, one epoll
                  thread, kernel sockets), TSO/GSO/GRO off on the veths (the
                  TAP port has no offloads either);
  kernel+offload  the same with the veths' offloads on.

The client is this script (Python, kernel sockets) in all three runs.

Units. "per segment" means per 1448 bytes of payload moved (BYTES / 1448,
the payload of one full-sized segment at MTU 1500), the same divisor for
every server whatever the packets on the wire were (with offloads the kernel
sends fewer, larger ones); the packets actually counted are printed beside
it. "per connection" means per short connection of the connect phase.

The ratio divides like quantities: the whole machine's non-idle CPU
(/proc/stat, all CPUs, at the TSC rate) per segment or per connection,
kernel run over waypointd run (>1: waypointd cheaper). Both include the same
Python client and its kernel TCP; the kernel run also includes tcp_peer. In
the waypointd run the worker's empty polls (its TSC idle_cycles) are
subtracted, since a busy-polling core is "busy" to /proc/stat whether or not
it has work; waypointd's counters and /proc/stat are read together over one
open telemetry socket, so both cover the same window (skew printed).
idle_cycles is wall time: it equals the CPU time of the empty polls only
while the worker is not preempted, so run this on a quiet machine.

Not a ratio, printed beside it: waypointd's worker alone from its TSC
accounting, busy cycles per segment or connection, split into the TAP PMD's
system calls (io_cycles, which a NIC does not pay) and its own processing.

Prints a table, then one JSON line. Not a pass/fail test.
"""
import argparse
import json
import os
import selectors
import socket
import subprocess
import sys
import time

from benchlib import ROOT, Telemetry, cpu_busy_jiffies, sample, sh

BUILD = os.environ.get("WP_BUILD_DIR", os.path.join(ROOT, "build"))
PEER = os.path.join(BUILD, "bench", "tcp_peer")
TESTBED = os.path.join(ROOT, "tests", "testbed")
os.environ.setdefault("WP_BIN", os.path.join(BUILD, "dp", "waypointd"))
DEADLINE = 60
CHUNK = 1 << 20
SEG = 1448
TICK = os.sysconf("SC_CLK_TCK")


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


def run_phases(ns, host, nbytes, count, before, after):
    """before() and after() -> (counters, busy jiffies, skew s), read at the
    window's edges; returns per-phase deltas."""
    out = {}
    for ph in PHASES:
        c0, j0, sk0 = before()
        el = in_ns(ns, ph, host, count if ph == "connect" else nbytes)
        c1, j1, sk1 = after()
        d = {k: c1[k] - c0[k] for k in c0}
        d["secs"] = el
        d["machine_s"] = (j1 - j0) / TICK
        d["skew_ms"] = round(max(sk0, sk1) * 1e3, 2)
        out[ph] = d
    return out


WP_KEYS = ("busy_cycles", "io_cycles", "idle_cycles", "rx_packets", "tx_packets")


def bench_waypointd(nbytes, count):
    name = f"wpbench-tcp-{os.getpid()}"
    out = sh(TESTBED, "up", "--name", name, "--workers", "1", "--set", "polling.mode=busy")
    v = dict(l.split("=", 1) for l in out.split())
    try:
        t = Telemetry(v["WP_PREFIX"])
        hz = t.query("/wp/info")["tsc_hz"]

        def edge():
            c, j, sk = sample(t)
            return {k: c[k] for k in WP_KEYS}, j, sk
        r = run_phases(name, v["WP_IP"], nbytes, count, edge, edge)
        t.close()
        return hz, r
    finally:
        subprocess.run([TESTBED, "down", name])


def bench_kernel(nbytes, count, offload):
    a, b = f"wpbench-tka-{os.getpid()}", f"wpbench-tkb-{os.getpid()}"
    srv = None

    def segs():
        lines = sh("ip", "netns", "exec", b, "cat", "/proc/net/snmp").splitlines()
        tcp = [l.split() for l in lines if l.startswith("Tcp:")]
        m = dict(zip(tcp[0][1:], (int(x) for x in tcp[1][1:])))
        return {"segs": m["InSegs"] + m["OutSegs"]}

    # /proc/stat right beside the client: the segment counts are read outside
    # the CPU window (their reading costs CPU of its own).
    def before():
        c = segs()
        return c, cpu_busy_jiffies(), 0.0

    def after():
        j = cpu_busy_jiffies()
        return segs(), j, 0.0
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
        srv = subprocess.Popen(["ip", "netns", "exec", b, PEER], stdout=subprocess.PIPE,
                               text=True)
        if "ready" not in srv.stdout.readline():
            sys.exit("tcp_bench: tcp_peer did not start")
        return run_phases(a, "198.18.0.2", nbytes, count, before, after)
    finally:
        if srv:
            srv.kill()
            srv.wait()
        subprocess.run(["ip", "netns", "del", a], capture_output=True)
        subprocess.run(["ip", "netns", "del", b], capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bytes", type=int, default=256 << 20,
                    help="bytes per transfer (default 256 MiB)")
    ap.add_argument("--count", type=int, default=5000,
                    help="short connections (default 5000)")
    ap.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        fn = {"upload": upload, "download": download, "connect": connect_many}[args.client[0]]
        print(fn(args.client[1], int(args.client[2])))
        return
    if os.geteuid() != 0:
        sys.exit("tcp_bench: needs root (network namespaces)")
    if not os.access(PEER, os.X_OK):
        sys.exit(f"tcp_bench: {PEER} not built (scripts/build)")
    args.bytes = max(SEG, min(args.bytes, 4 << 30))
    args.count = max(1, min(args.count, 100000))
    hz, w = bench_waypointd(args.bytes, args.count)
    k = bench_kernel(args.bytes, args.count, False)
    ko = bench_kernel(args.bytes, args.count, True)
    res = {"bench": "tcp_bench", "tsc_hz": hz, "bytes": args.bytes, "count": args.count,
           "unit_segment_payload_bytes": SEG, "phases": {}}
    print(f"tcp_bench: tsc_hz {hz}; {args.bytes} bytes per transfer, {args.count} short "
          "connections; Python client in every run")
    print(f"unit: per segment = per {SEG} payload bytes (bytes / {SEG}, whatever went on the "
          "wire); per connection = per short connection")
    print("machine = whole-machine non-idle CPU cycles per unit (client + server side; "
          "waypointd's idle polls out);")
    print("ratio = kernel machine / waypointd machine (>1: waypointd cheaper)")
    print("not ratios: wp busy = waypointd worker's TSC busy cycles per unit = wp io (TAP PMD "
          "syscalls) + wp own")
    print(f"{'phase':9} {'server':16} {'rate':>15} {'machine':>9} {'ratio':>6} {'wp busy':>9} "
          f"{'wp io':>8} {'wp own':>8}  packets")
    for ph in PHASES:
        wd = w[ph]
        n = args.count if ph == "connect" else args.bytes // SEG

        def rate(d):
            if ph == "connect":
                return args.count / d["secs"]
            return args.bytes * 8 / d["secs"] / 1e9

        def rate_s(d):
            return f"{rate(d):.0f} conn/s" if ph == "connect" else f"{rate(d):.2f} Gbit/s"

        w_busy, w_io = wd["busy_cycles"] / n, wd["io_cycles"] / n
        w_mach = (wd["machine_s"] * hz - wd["idle_cycles"]) / n
        pk = wd["rx_packets"] + wd["tx_packets"]
        print(f"{ph:9} {'waypointd':16} {rate_s(wd):>15} {w_mach:9.0f} {'':>6} {w_busy:9.0f} "
              f"{w_io:8.0f} {w_busy - w_io:8.0f}  {pk} (skew <= {wd['skew_ms']} ms)")
        row = {"unit": "connection" if ph == "connect" else "segment", "units": n,
               "waypointd": {"rate": round(rate(wd), 3), "machine_cycles": round(w_mach),
                             "worker_busy_cycles": round(w_busy),
                             "worker_io_cycles": round(w_io),
                             "worker_own_cycles": round(w_busy - w_io), "packets": pk,
                             "window_skew_ms": wd["skew_ms"]}}
        for label, kk in (("kernel", k), ("kernel+offload", ko)):
            kd = kk[ph]
            k_mach = kd["machine_s"] * hz / n
            ratio = k_mach / w_mach if w_mach > 0 else None
            print(f"{'':9} {label:16} {rate_s(kd):>15} {k_mach:9.0f} "
                  f"{(f'{ratio:.2f}' if ratio else 'n/a'):>6} {'':>9} {'':>8} {'':>8}  "
                  f"{kd['segs']} segments")
            row[label] = {"rate": round(rate(kd), 3), "machine_cycles": round(k_mach),
                          "segments": kd["segs"],
                          "ratio_machine_over_waypointd": round(ratio, 2) if ratio else None}
        res["phases"][ph] = row
    print(json.dumps(res))


if __name__ == "__main__":
    main()
