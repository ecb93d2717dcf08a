#!/usr/bin/python3
"""L7 benchmark (issue 6): waypointd against HAProxy on the same load, same run.

  sudo bench/l7_bench.py [--build DIR] [--conns N] [--seconds S] [--links tap,memif]

Inside a testbed namespace (tests/testbed --manifests --certs, 1 worker):
  backend   bench/l7_load serve: a C epoll HTTP/1.1 server on the pod IP
            198.18.1.10:9080 answering every request with 200 and a
            1024-byte body (keep-alive).
  waypointd HBONE on :15008; service "web" 198.19.0.10:9080 (port name
            http, namespace not ambient: plaintext pooled upstreams) -> pod.
  HAProxy   (Debian haproxy) on the namespace's loopback :15443: TLS 1.3
            with client-certificate verification (same CA and identities),
            ALPN h2, one thread; HTTP/1.1 to the same backend with
            connection reuse (http-reuse always).
Load (bench/l7_load, C, OpenSSL + nghttp2, kernel sockets, one thread per
connection): 1 KiB HTTP/1.1 requests (POST, 1024-byte body; the response
carries 1024 bytes), one in flight per connection:
  waypointd: N persistent HBONE tunnels (one mTLS h2 connection each, one
             CONNECT stream) looping keep-alive HTTP/1.1 inside the tunnel;
  HAProxy:   N mTLS h2 connections, each looping h2 POST requests (a new
             stream per request), which HAProxy forwards as HTTP/1.1 --
             HAProxy does not proxy HTTP/1.1 inside h2 CONNECT, so this is
             the closest equivalent it supports: same TLS, same h2 framing
             in front, same HTTP/1.1 requests behind, same bytes;
  direct:    N plain keep-alive HTTP/1.1 connections to the backend (the
             baseline for the added latency).
Figures:
  1. closed loop (saturation), S seconds each: requests/s seen by the
     client; waypointd's busy TSC cycles per request (wpctl stats; io_cycles
     is the TAP PMD's system-call share), requests/s per core = TSC Hz /
     cycles; the worker thread's user and system CPU time per request
     (/proc/PID/task: user = waypointd's own code, which TSC figures
     over-state when the worker is preempted on this shared machine;
     system = the TAP PMD's syscalls); as a cross-check waypointd's whole-process utime+stime
     (/proc; includes its adaptive idle polling, so an upper bound);
     HAProxy's utime+stime (/proc/PID/stat) per request, as cycles
     at the TSC rate and requests/s per core.
  2. half load: the three paced at the same rate, half the lower of the two
     proxies' closed-loop rates; p50/p99 latency and the added latency over
     the direct baseline.
3. memif link (--links memif): the closed loop of 1. again with the TAP
     moved behind dpdk-testpmd (tests/testbed --link memif): waypointd's
     port is a memif ring, as it would be a NIC's descriptor ring, the
     wire's core pays the TAP's system calls and the kernel peers' TCP,
     waypointd's worker runs alone on the last CPU and the load generator,
     backend and wire share CPU 0 (which bounds the rate; the cycles per
     request are the figure). The worker's user time there includes its
     idle polls, so the TSC busy cycles are the measure.
Prints JSON with the ratios (waypointd over HAProxy, per core and latency).
Bounded (3 x 2 runs + 1 run of S seconds plus set-up); not a pass/fail test.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import ROOT, WAYPOINT_MANIFEST_HEAD, proc_cpu_s, sh, stats, thread_cpu_s, total

NS = "wpbench-l7"
VIP = "198.19.0.10"
POD = "198.18.1.10"


def ns_run(*args):
    """Runs in the namespace; returns (json of the last stdout line, rc)."""
    p = subprocess.run(["ip", "netns", "exec", NS, *args], capture_output=True, text=True,
                       timeout=600)
    lines = p.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError("%s: no output (rc %d): %s" % (args[0], p.returncode, p.stderr[-500:]))
    return json.loads(lines[-1]), p.returncode


MANIFEST = WAYPOINT_MANIFEST_HEAD + """apiVersion: v1
kind: Service
metadata: {name: web, namespace: bench}
spec:
  clusterIP: %s
  selector: {app: web}
  ports: [{name: http, port: 9080, targetPort: 9080}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: bench, labels: {app: web}}
spec: {serviceAccountName: web}
status:
  phase: Running
  podIP: %s
  conditions: [{type: Ready, status: "True"}]
""" % (VIP, POD)

HAPROXY_CFG = """global
    nbthread 1
    maxconn 4096
    tune.ssl.default-dh-param 2048
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend fe
    bind 127.0.0.1:15443 ssl crt {pki}/haproxy.pem ca-file {pki}/ca.pem verify required alpn h2 ssl-min-ver TLSv1.3
    default_backend be
backend be
    http-reuse always
    server s1 {pod}:9080
"""


def stop(procs):
    """Stops the peers started so far (SIGTERM, then SIGKILL after 5 s)."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
    procs.clear()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--conns", type=int, default=16, help="tunnels / connections (default 16)")
    ap.add_argument("--seconds", type=float, default=10, help="per run (default 10)")
    ap.add_argument("--links", default="tap,memif",
                    help="tap, memif or both (default tap,memif; HAProxy and the "
                         "half-load latencies run with tap)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("l7_bench: run as root")
    if not shutil.which("haproxy"):
        sys.exit("l7_bench: haproxy missing (apt-get install haproxy)")
    a.conns = max(1, min(a.conns, 256))
    links = set(a.links.split(","))
    if not links or not links <= {"tap", "memif"}:
        sys.exit("l7_bench: --links: tap, memif or tap,memif")
    a.seconds = max(1.0, min(a.seconds, 120.0))
    wpctl = os.path.join(a.build, "cp/wpctl/wpctl")
    load = os.path.join(a.build, "bench/l7_load")
    tmp = tempfile.mkdtemp(prefix="wp-l7-bench.")
    pki, man = os.path.join(tmp, "pki"), os.path.join(tmp, "man")
    os.makedirs(man)
    sh(os.path.join(ROOT, "tests/pki/mkpki.sh"), pki)
    with open(os.path.join(pki, "haproxy.pem"), "w") as f:
        for n in ("cert.pem", "key.pem"):
            f.write(open(os.path.join(pki, n)).read())
    with open(os.path.join(man, "cluster.yaml"), "w") as f:
        f.write(MANIFEST)
    with open(os.path.join(tmp, "haproxy.cfg"), "w") as f:
        f.write(HAPROXY_CFG.format(pki=pki, pod=POD))
    env = dict(os.environ, WP_BIN=os.path.join(a.build, "dp/waypointd"))
    res = {"conns": a.conns, "seconds_per_run": a.seconds, "request_body": 1024,
           "response_body": 1024}
    cert = [pki + "/productpage.pem", pki + "/productpage-key.pem", pki + "/ca.pem"]
    auth = "%s:9080" % VIP
    pin = []  # CPU pinning of the load generator and backend (memif link)

    def hbone(wip, conns, secs, rate):
        return ns_run(*pin, load, "hbone", wip, "15008", str(conns), str(secs), str(rate),
                      *cert, auth)

    def h2(conns, secs, rate):
        return ns_run(load, "h2", "127.0.0.1", "15443", str(conns), str(secs), str(rate), *cert,
                      auth)

    def h1(conns, secs, rate):
        return ns_run(load, "h1", POD, "9080", str(conns), str(secs), str(rate))

    def testbed_up(*extra):
        sh(os.path.join(ROOT, "tests/testbed"), "down", NS)  # a leftover from an aborted run
        out = sh(os.path.join(ROOT, "tests/testbed"), "up", "--name", NS, "--manifests", man,
                 "--certs", pki, "--set", "cluster.gateway_class=istio-waypoint", *extra,
                 env=env)
        tb = dict(line.split("=", 1) for line in out.split())
        return tb["WP_PREFIX"], tb["WP_IP"], int(tb["WP_PID"])

    def start_backend(procs):
        be = subprocess.Popen(["ip", "netns", "exec", NS, *pin, load, "serve", "9080"],
                              stdout=subprocess.PIPE, text=True)
        procs.append(be)
        be.stdout.readline()

    def wait_vip(wip):
        # the control plane loads the manifests: wait until the VIP is captured
        for _ in range(100):
            r, rc = hbone(wip, 1, 0.3, 0)
            if rc == 0 and r["requests"] > 0:
                return
            time.sleep(0.2)
        raise RuntimeError("web VIP never answered through waypointd: %s" % r)

    def closed_loop(prefix, wip, wpid):
        """waypointd at saturation: the figures of one closed-loop run."""
        s0 = stats(wpctl, prefix)
        p0 = proc_cpu_s(wpid)
        u0, k0 = thread_cpu_s(wpid, "rte-worker")
        wr, wrc = hbone(wip, a.conns, a.seconds, 0)
        p1 = proc_cpu_s(wpid)
        u1, k1 = thread_cpu_s(wpid, "rte-worker")
        s1 = stats(wpctl, prefix)
        tsc = s1["tsc_hz"]
        pkts = (total(s1, "rx_packets") - total(s0, "rx_packets") + total(s1, "tx_packets") -
                total(s0, "tx_packets"))
        busy = total(s1, "busy_cycles") - total(s0, "busy_cycles")
        io = total(s1, "io_cycles") - total(s0, "io_cycles")
        l7req = total(s1, "l7_h1p_request") - total(s0, "l7_h1p_request")
        n = max(wr["requests"], 1)
        wcyc = busy / n
        return wr, {"requests": wr["requests"], "failed": wr["failed"],
                    "l7_h1p_request": l7req, "rps_wall": wr["rps"],
                    "closed_loop_p50_us": wr["p50_us"], "closed_loop_p99_us": wr["p99_us"],
                    "busy_cycles_per_request": round(wcyc),
                    "io_cycles_per_request": round(io / n),
                    "own_cycles_per_request": round((busy - io) / n),
                    "rps_per_core": round(tsc / wcyc) if wcyc else None,
                    "packets_per_request": round(pkts / n, 2),
                    "rx_packets_per_request": round(
                        (total(s1, "rx_packets") - total(s0, "rx_packets")) / n, 2),
                    "ack_only_segments_per_request": round(
                        (total(s1, "tcp_ack_only") - total(s0, "tcp_ack_only")) / n, 2),
                    "io_cycles_per_packet": round(io / pkts) if pkts else None,
                    # the worker thread's CPU time split by the kernel (10 ms
                    # ticks): user = waypointd's own code (TLS, HTTP/2,
                    # HTTP/1.1, proxy, TCP/IP, PMD) incl. its idle polls;
                    # system = its system calls (the TAP PMD's read/write)
                    "worker_user_cycles_per_request": round((u1 - u0) / n * tsc),
                    "worker_system_cycles_per_request": round((k1 - k0) / n * tsc),
                    "proc_cpu_us_per_request": round((p1 - p0) / n * 1e6, 2),
                    "proc_cycles_per_request_at_tsc_hz": round((p1 - p0) / n * tsc),
                    "goal_cycles_per_request": 15000}

    procs = []
    try:
        ratios = {}
        if "tap" in links:
            # A. TAP link: waypointd, HAProxy and the direct path on the same load.
            prefix, wip, wpid = testbed_up()
            start_backend(procs)
            hp = subprocess.Popen(["ip", "netns", "exec", NS, "haproxy", "-db", "-f",
                                   os.path.join(tmp, "haproxy.cfg")],
                                  stdout=subprocess.DEVNULL, stderr=open(tmp + "/haproxy.log", "w"))
            procs.append(hp)
            wait_vip(wip)
            r, rc = h2(1, 0.3, 0)
            if rc != 0 or r["requests"] == 0:
                raise RuntimeError("HAProxy does not answer: %s %s" % (r, open(tmp + "/haproxy.log").read()))
            tsc = stats(wpctl, prefix)["tsc_hz"]
            res["tsc_hz"] = tsc

            # 1. closed loop
            wr, res["waypointd"] = closed_loop(prefix, wip, wpid)
            c0 = proc_cpu_s(hp.pid)
            hr, hrc = h2(a.conns, a.seconds, 0)
            c1 = proc_cpu_s(hp.pid)
            hn = max(hr["requests"], 1)
            hcpu = (c1 - c0) / hn
            res["haproxy"] = {"requests": hr["requests"], "failed": hr["failed"], "rps_wall": hr["rps"],
                              "closed_loop_p50_us": hr["p50_us"], "closed_loop_p99_us": hr["p99_us"],
                              "cpu_us_per_request": round(hcpu * 1e6, 2),
                              "cycles_per_request_at_tsc_hz": round(hcpu * tsc),
                              "rps_per_core": round(1 / hcpu) if hcpu else None}
            dr, _ = h1(a.conns, a.seconds, 0)
            res["direct"] = {"requests": dr["requests"], "rps_wall": dr["rps"],
                             "closed_loop_p50_us": dr["p50_us"], "closed_loop_p99_us": dr["p99_us"]}

            # 2. half load, the same rate for all three
            rate = round(min(wr["rps"], hr["rps"]) / 2)
            hw, _ = hbone(wip, a.conns, a.seconds, rate)
            hh, _ = h2(a.conns, a.seconds, rate)
            hd, _ = h1(a.conns, a.seconds, rate)
            half = {"rate": rate,
                    "direct": {"rps": hd["rps"], "p50_us": hd["p50_us"], "p99_us": hd["p99_us"]}}
            for name, r in (("waypointd", hw), ("haproxy", hh)):
                half[name] = {"rps": r["rps"], "failed": r["failed"], "p50_us": r["p50_us"],
                              "p99_us": r["p99_us"],
                              "added_p50_us": round(r["p50_us"] - hd["p50_us"], 1),
                              "added_p99_us": round(r["p99_us"] - hd["p99_us"], 1)}
            res["half_load"] = half
            stop(procs)

            if res["waypointd"]["rps_per_core"] and res["haproxy"]["rps_per_core"]:
                ratios["rps_per_core_waypointd_over_haproxy"] = round(
                    res["waypointd"]["rps_per_core"] / res["haproxy"]["rps_per_core"], 2)
            for q in ("p50", "p99"):
                hw_, hh_ = half["waypointd"]["added_%s_us" % q], half["haproxy"]["added_%s_us" % q]
                if hw_ > 0 and hh_ > 0:
                    ratios["added_%s_haproxy_over_waypointd" % q] = round(hh_ / hw_, 2)
            ratios["rps_wall_waypointd_over_haproxy"] = round(wr["rps"] / max(hr["rps"], 1), 2)

        # B. memif link (a NIC's cost): the same closed loop with the TAP
        # moved behind dpdk-testpmd on CPU 0, waypointd's worker alone on
        # CPU 1, the load generator and backend on CPU 0.
        if "memif" in links:
            ncpu = os.cpu_count() or 1
            worker_cpu = ncpu - 1
            pin[:] = ["taskset", "-c", "0"] if ncpu > 1 else []
            prefix, wip, wpid = testbed_up("--link", "memif", "--wire-cpu", "0",
                                           "--set", "eal.lcores=0@0,1@%d" % worker_cpu)
            start_backend(procs)
            wait_vip(wip)
            _, res["waypointd_memif"] = closed_loop(prefix, wip, wpid)
            res["waypointd_memif"]["worker_cpu"] = worker_cpu
            stop(procs)
            m = res["waypointd_memif"]
            if m["rps_per_core"] and res.get("haproxy", {}).get("rps_per_core"):
                ratios["memif_rps_per_core_waypointd_over_haproxy"] = round(
                    m["rps_per_core"] / res["haproxy"]["rps_per_core"], 2)
        res["ratios"] = ratios
    finally:
        stop(procs)
        subprocess.run([os.path.join(ROOT, "tests/testbed"), "down", NS], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
