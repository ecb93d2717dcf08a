#!/usr/bin/python3
"""ICMP echo cost: waypointd against the Linux kernel, measured in one run.

The same bounded ping flood (COUNT echoes, at most DEADLINE seconds) is
answered twice:

  kernel     two network namespaces joined by a veth pair; the kernel answers.
  waypointd  a testbed namespace; waypointd (1 worker, busy polling) answers
             on a TAP port.

For each, the whole machine's non-idle CPU time during the flood
(/proc/stat) is divided by the echoes answered, giving cycles per echo at
the TSC rate. That includes the sender (ping and its kernel path) in both
runs, so the difference between the two is the responder and the link. In
the waypointd run, the worker's empty polls (idle_cycles from its TSC
accounting) are subtracted, since a busy-polling core is "busy" to /proc/stat
whether or not it has work.

waypointd's own figure comes from its TSC accounting: busy cycles per echo,
split into the PMD's share (on TAP, a read and a write system call per
packet, which a real NIC does not pay: io_cycles) and waypointd's own
processing.

Usage:  sudo bench/icmp_echo.py [--count N]
Prints the figures and the ratios kernel/waypointd (>1: waypointd cheaper).
"""
import argparse
import json
import os
import re
import subprocess
import sys

from benchlib import ROOT, cpu_busy_jiffies, sh

BUILD = os.environ.get("WP_BUILD_DIR", os.path.join(ROOT, "build"))
WPCTL = os.path.join(BUILD, "cp", "wpctl", "wpctl")
TESTBED = os.path.join(ROOT, "tests", "testbed")
DEADLINE = 60


def telemetry(prefix):
    s = json.loads(sh(WPCTL, "stats", "--json", "--prefix", prefix))
    return s["tsc_hz"], s


def flood(ns, target, count):
    """ping -f in ns; returns (echoes answered, machine busy seconds)."""
    b0 = cpu_busy_jiffies()
    out = subprocess.run(["ip", "netns", "exec", ns, "ping", "-f", "-q", "-c", str(count),
                          "-w", str(DEADLINE), target], capture_output=True, text=True).stdout
    b1 = cpu_busy_jiffies()
    m = re.search(r"(\d+) received", out)
    return (int(m.group(1)) if m else 0), (b1 - b0) / os.sysconf("SC_CLK_TCK")


def bench_waypointd(count):
    name = f"wpbench-icmp-{os.getpid()}"
    out = sh(TESTBED, "up", "--name", name, "--workers", "1", "--set", "polling.mode=busy")
    v = dict(l.split("=", 1) for l in out.split())
    try:
        hz, before = telemetry(v["WP_PREFIX"])
        got, busy_s = flood(name, v["WP_IP"], count)
        _, after = telemetry(v["WP_PREFIX"])
        d = {k: after["total"][k] - before["total"][k]
             for k in ("icmp_echo_replied", "busy_cycles", "io_cycles", "idle_cycles")}
        d["machine_cycles"] = busy_s * hz - d["idle_cycles"]
        return hz, got, d
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
        got, busy_s = flood(a, "198.18.0.2", count)
        return got, busy_s * hz
    finally:
        subprocess.run(["ip", "netns", "del", a], capture_output=True)
        subprocess.run(["ip", "netns", "del", b], capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=200000)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("icmp_echo: needs root (network namespaces)")
    kgot, kcycles = None, None
    hz, got, d = bench_waypointd(args.count)
    kgot, kcycles = bench_kernel(args.count, hz)
    n = max(d["icmp_echo_replied"], 1)
    wp, wp_io = d["busy_cycles"] / n, d["io_cycles"] / n
    wp_machine = d["machine_cycles"] / n
    k_machine = kcycles / max(kgot, 1)
    print(f"tsc_hz                               {hz}")
    print(f"echoes answered: waypointd {d['icmp_echo_replied']} (ping saw {got}), kernel {kgot}")
    print(f"machine cycles/echo, kernel responder    {k_machine:8.0f}")
    print(f"machine cycles/echo, waypointd responder {wp_machine:8.0f}")
    print(f"waypointd busy cycles/echo (TSC)         {wp:8.0f}")
    print(f"  inside the TAP PMD (syscalls)          {wp_io:8.0f}")
    print(f"  waypointd's own processing             {wp - wp_io:8.0f}")
    print(f"ratio kernel/waypointd, whole machine    {k_machine / wp_machine:8.2f}")
    print(f"ratio kernel machine / waypointd busy    {k_machine / wp:8.2f}")
    print(f"ratio kernel machine / waypointd own     {k_machine / max(wp - wp_io, 1):8.2f}")


if __name__ == "__main__":
    main()
