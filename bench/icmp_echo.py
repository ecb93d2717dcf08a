#!/usr/bin/python3
"""ICMP echo cost: waypointd against the Linux kernel, measured in one run.

  bench/icmp_echo.py [--count N]          (default 200000; ~10 s)

The same bounded ping flood (ping -f -c COUNT, at most 60 s) is answered
twice:

  waypointd  a testbed namespace; waypointd (1 worker, busy polling) answers
             on a TAP port.
  kernel     two network namespaces joined by a veth pair; the kernel answers.
             This is the peer.

The ratio divides like quantities: the whole machine's non-idle CPU time
(/proc/stat, all CPUs, converted to cycles at the TSC rate) per echo
answered, in each run. Both include the sender (ping and its kernel path),
so the ratio compares sender + link + responder, not the responders alone;
the kernel's responder runs in softirq inside the sender's system calls on a
veth pair and cannot be measured apart. In the waypointd run the worker's
empty polls (its TSC idle_cycles) are subtracted, since a busy-polling core
is "busy" to /proc/stat whether or not it has work; waypointd's counters and
/proc/stat are read together over one open telemetry socket, so both cover
the same window (the skew printed is the most they can differ by, against
/proc/stat's 10 ms tick). idle_cycles is wall time in empty iterations: it
equals the CPU time they took only while the worker is not preempted, so
run this on a quiet machine.

Not a ratio, printed beside it: waypointd's own TSC accounting, busy cycles
per echo, split into the PMD's share (io_cycles: on TAP a read and a write
system call per packet, which a NIC does not pay) and waypointd's own
processing. These count the worker alone and are not comparable to the
machine figures.

Prints a table, then one JSON line. Not a pass/fail test.
"""
import argparse
import json
import os
import re
import subprocess
import sys

from benchlib import ROOT, Telemetry, cpu_busy_jiffies, sample, sh

BUILD = os.environ.get("WP_BUILD_DIR", os.path.join(ROOT, "build"))
TESTBED = os.path.join(ROOT, "tests", "testbed")
DEADLINE = 60
TICK = os.sysconf("SC_CLK_TCK")


def ping_flood(ns, target, count):
    """ping -f in ns; the number of echoes it saw answered."""
    out = subprocess.run(["ip", "netns", "exec", ns, "ping", "-f", "-q", "-c", str(count),
                          "-w", str(DEADLINE), target], capture_output=True, text=True).stdout
    m = re.search(r"(\d+) received", out)
    return int(m.group(1)) if m else 0


def bench_waypointd(count):
    name = f"wpbench-icmp-{os.getpid()}"
    out = sh(TESTBED, "up", "--name", name, "--workers", "1", "--set", "polling.mode=busy",
             env=dict(os.environ, WP_BIN=os.path.join(BUILD, "dp", "waypointd")))
    v = dict(l.split("=", 1) for l in out.split())
    try:
        t = Telemetry(v["WP_PREFIX"])
        hz = t.query("/wp/info")["tsc_hz"]
        c0, j0, sk0 = sample(t)
        got = ping_flood(name, v["WP_IP"], count)
        c1, j1, sk1 = sample(t)
        t.close()
        d = {k: c1[k] - c0[k]
             for k in ("icmp_echo_replied", "busy_cycles", "io_cycles", "idle_cycles")}
        d["machine_cycles"] = (j1 - j0) / TICK * hz - d["idle_cycles"]
        d["skew_ms"] = round(max(sk0, sk1) * 1e3, 2)
        d["ping_received"] = got
        return hz, d
    finally:
        subprocess.run([TESTBED, "down", name])


def bench_kernel(count, hz):
    a, b = f"wpbench-ka-{os.getpid()}", f"wpbench-kb-{os.getpid()}"
    try:
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        sh("ip", "link", "add", "vb0", "netns", a, "type", "veth", "peer", "name", "vb1",
           "netns", b)
        sh("ip", "-n", a, "addr", "add", "198.18.0.1/24", "dev", "vb0")
        sh("ip", "-n", b, "addr", "add", "198.18.0.2/24", "dev", "vb1")
        for ns, dev in ((a, "vb0"), (b, "vb1")):
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", a, "ping", "-c", "1", "-W", "2", "198.18.0.2")
        j0 = cpu_busy_jiffies()
        got = ping_flood(a, "198.18.0.2", count)
        j1 = cpu_busy_jiffies()
        return got, (j1 - j0) / TICK * hz
    finally:
        subprocess.run(["ip", "netns", "del", a], capture_output=True)
        subprocess.run(["ip", "netns", "del", b], capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=200000, help="echoes per run (default 200000)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("icmp_echo: needs root (network namespaces)")
    args.count = max(1, min(args.count, 2000000))
    hz, d = bench_waypointd(args.count)
    kgot, kcycles = bench_kernel(args.count, hz)
    n = max(d["icmp_echo_replied"], 1)
    wp, wp_io = d["busy_cycles"] / n, d["io_cycles"] / n
    wp_machine = d["machine_cycles"] / n
    k_machine = kcycles / max(kgot, 1)
    ratio = k_machine / wp_machine if wp_machine > 0 else None
    print(f"icmp_echo: ping -f -c {args.count}; tsc_hz {hz}")
    print(f"echoes answered: waypointd {d['icmp_echo_replied']} (ping saw "
          f"{d['ping_received']}), kernel {kgot}")
    print("whole-machine CPU cycles per echo (sender + link + responder; /proc/stat at the "
          "TSC rate):")
    print(f"  kernel responder (veth)                {k_machine:8.0f}")
    print(f"  waypointd responder (TAP)              {wp_machine:8.0f}   (its idle polls "
          f"subtracted; windows differ by <= {d['skew_ms']} ms)")
    print(f"  ratio kernel / waypointd               {ratio:8.2f}" if ratio else
          "  ratio kernel / waypointd                    n/a")
    print("not a ratio -- waypointd's worker alone, its TSC accounting, cycles per echo:")
    print(f"  busy                                   {wp:8.0f}")
    print(f"    inside the TAP PMD (syscalls)        {wp_io:8.0f}")
    print(f"    waypointd's own processing           {wp - wp_io:8.0f}")
    print(json.dumps({
        "bench": "icmp_echo", "count": args.count, "tsc_hz": hz,
        "waypointd": {"echoes": d["icmp_echo_replied"], "ping_received": d["ping_received"],
                      "machine_cycles_per_echo": round(wp_machine),
                      "window_skew_ms": d["skew_ms"],
                      "worker_busy_cycles_per_echo": round(wp),
                      "worker_io_cycles_per_echo": round(wp_io),
                      "worker_own_cycles_per_echo": round(wp - wp_io)},
        "kernel": {"echoes": kgot, "machine_cycles_per_echo": round(k_machine)},
        "ratio_machine_kernel_over_waypointd": round(ratio, 2) if ratio else None}))


if __name__ == "__main__":
    main()
