#!/usr/bin/python3
"""HBONE benchmark: waypointd against nghttpx on the same loads, same run.

  sudo bench/hbone_bench.py [--build DIR] [--handshakes N] [--bytes N] [--idle N]

Inside a testbed namespace (tests/testbed --manifests --certs, 1 worker):
  1. mTLS handshakes: bench/hbone_hs (TLS 1.3, client certificate, ALPN h2,
     HTTP/2 preface + SETTINGS, full handshakes) against waypointd:15008 and
     against nghttpx (Debian nghttp2-proxy; --verify-client, same
     certificates, one worker) on the namespace's loopback. Per core:
     waypointd's TSC busy cycles per handshake (wpctl stats), nghttpx's
     utime+stime per handshake (/proc).
  2. Tunnel throughput: one HBONE tunnel, N bytes to a plaintext echo
     backend and back (tests/integration/hbone_load.py): Gbit/s as seen by
     the client, cycles per forwarded byte and Gbit/s per core from the busy
     cycles. (nghttpx cannot splice CONNECT tunnels: no peer figure.)
  3. Memory per idle HBONE connection with N idle connections: waypointd's
     HTTP/2 + TLS + TCP buffer bytes (telemetry /wp/tunnels, wpctl stats)
     over N, with the parts: HTTP/2 as held in size classes and as slabs
     carved, OpenSSL's live bytes, TCP buffers; and waypointd's RSS growth
     over N as a cross-check (malloc'd memory: HTTP/2 slabs, OpenSSL and
     malloc's own overhead; hugepage memory -- mbufs, TCP buffers, the
     session and connection pools sized at start -- is not in RSS).
     nghttpx's RSS growth over N for the same N connections.
Prints the figures and the ratios. Bounded; not a pass/fail test.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import ROOT, WAYPOINT_MANIFEST_HEAD, proc_cpu_s, proc_rss, sh, stats, tel, total

NS = "wpbench-hbone"
PY = "/usr/bin/python3"


def ns(*args, **kw):
    return sh("ip", "netns", "exec", NS, *args, **kw)


MANIFEST = WAYPOINT_MANIFEST_HEAD + """apiVersion: v1
kind: Service
metadata: {name: echo, namespace: bench}
spec:
  clusterIP: 198.19.0.10
  selector: {app: echo}
  ports: [{name: tcp, port: 7000, targetPort: 7000}]
---
apiVersion: v1
kind: Pod
metadata: {name: echo-1, namespace: bench, labels: {app: echo}}
spec: {serviceAccountName: echo}
status:
  phase: Running
  podIP: 198.18.1.10
  conditions: [{type: Ready, status: "True"}]
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--handshakes", type=int, default=2000)
    ap.add_argument("--bytes", type=int, default=256 << 20)
    ap.add_argument("--idle", type=int, default=10000)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("hbone_bench: run as root")
    if not shutil.which("nghttpx"):
        sys.exit("hbone_bench: nghttpx missing (apt-get install nghttp2-proxy)")
    wpctl = os.path.join(a.build, "cp/wpctl/wpctl")
    hs = os.path.join(a.build, "bench/hbone_hs")
    tmp = tempfile.mkdtemp(prefix="wp-hbone-bench.")
    pki, man = os.path.join(tmp, "pki"), os.path.join(tmp, "man")
    os.makedirs(man)
    sh(os.path.join(ROOT, "tests/pki/mkpki.sh"), pki)
    with open(os.path.join(man, "cluster.yaml"), "w") as f:
        f.write(MANIFEST)
    env = dict(os.environ, WP_BIN=os.path.join(a.build, "dp/waypointd"))
    conns = a.idle + 1024
    out = sh(os.path.join(ROOT, "tests/testbed"), "up", "--name", NS, "--manifests", man,
             "--certs", pki, "--set", "cluster.gateway_class=istio-waypoint",
             "--set", "tcp.max_conns=%d" % (conns + 1024), "--set", "tcp.buffers=%d" % conns,
             "--set", "tcp.accept_backlog=4096", "--set", "tcp.syn_backlog=4096",
             "--set", "hbone.max_sessions=%d" % conns, "--set", "mbufs_per_worker=65535",
             env=env)
    tb = dict(line.split("=", 1) for line in out.split())
    prefix, wip, wp_pid = tb["WP_PREFIX"], tb["WP_IP"], int(tb["WP_PID"])
    procs = []
    res = {}
    try:
        procs.append(subprocess.Popen(["ip", "netns", "exec", NS, PY,
                                       os.path.join(ROOT, "tests/integration/tcpcheck.py"),
                                       "server", "7000"], stdout=subprocess.DEVNULL))
        ng = subprocess.Popen(["ip", "netns", "exec", NS, "nghttpx", "--workers=1",
                               "--frontend=127.0.0.1,15443", "--backend=127.0.0.1,7000",
                               "--verify-client", "--verify-client-cacert=" + pki + "/ca.pem",
                               "--tls-min-proto-version=TLSv1.3", "--no-ocsp",
                               "--frontend-http2-max-concurrent-streams=100",
                               "--worker-frontend-connections=%d" % (conns),
                               "--errorlog-file=" + tmp + "/nghttpx.log",
                               "--accesslog-file=/dev/null",
                               pki + "/key.pem", pki + "/cert.pem"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(ng)
        time.sleep(1.0)
        # nghttpx forks its worker: measure the worker (a child of the one we started).
        kids = subprocess.run(["pgrep", "-P", str(ng.pid)], capture_output=True,
                              text=True).stdout.split()
        ng_pid = int(kids[0]) if kids else ng.pid
        st = stats(wpctl, prefix)
        tsc = st["tsc_hz"]
        cert = [pki + "/productpage.pem", pki + "/productpage-key.pem", pki + "/ca.pem"]

        # 1. handshakes
        ns(hs, wip, "15008", *cert, "50", "1")  # warm-up (ARP, caches)
        b0 = total(stats(wpctl, prefix), "busy_cycles")
        r = json.loads(ns(hs, wip, "15008", *cert, str(a.handshakes), "2"))
        b1 = total(stats(wpctl, prefix), "busy_cycles")
        wp_cyc = (b1 - b0) / max(r["handshakes"], 1)
        ns(hs, "127.0.0.1", "15443", *cert, "50", "1")
        c0 = proc_cpu_s(ng_pid)
        rn = json.loads(ns(hs, "127.0.0.1", "15443", *cert, str(a.handshakes), "2"))
        c1 = proc_cpu_s(ng_pid)
        ng_s = (c1 - c0) / max(rn["handshakes"], 1)
        res["handshakes"] = {
            "waypointd": {"count": r["handshakes"], "failed": r["failed"],
                          "wall_per_s": round(r["handshakes"] / r["seconds"]),
                          "cycles_each": round(wp_cyc),
                          "per_core_per_s": round(tsc / wp_cyc) if wp_cyc else None},
            "nghttpx": {"count": rn["handshakes"], "failed": rn["failed"],
                        "wall_per_s": round(rn["handshakes"] / rn["seconds"]),
                        "cpu_us_each": round(ng_s * 1e6, 1),
                        "per_core_per_s": round(1 / ng_s) if ng_s else None},
        }
        if wp_cyc and ng_s:
            res["handshakes"]["ratio_per_core"] = round((tsc / wp_cyc) * ng_s, 2)

        # 2. throughput
        b0 = stats(wpctl, prefix)
        r = json.loads(ns(PY, os.path.join(ROOT, "tests/integration/hbone_load.py"), "echo",
                          "--addr", wip + ":15008", "--certs", pki, "--authority",
                          "198.19.0.10:7000", "--tunnels", "1", "--bytes", str(a.bytes),
                          "--timeout", "600"))
        b1 = stats(wpctl, prefix)
        fwd = (total(b1, "tunnel_bytes_up") - total(b0, "tunnel_bytes_up") +
               total(b1, "tunnel_bytes_down") - total(b0, "tunnel_bytes_down"))
        busy = total(b1, "busy_cycles") - total(b0, "busy_cycles")
        io = total(b1, "io_cycles") - total(b0, "io_cycles")
        cpb = busy / fwd if fwd else 0
        res["tunnel"] = {"bytes_each_way": a.bytes, "ok": r["ok"] == 1,
                         "client_gbit_s_both_ways": round(r["mbit_s_both_ways"] / 1000, 3),
                         "cycles_per_byte": round(cpb, 2),
                         "cycles_per_byte_without_pmd_io": round((busy - io) / fwd, 2) if fwd else 0,
                         "gbit_s_per_core": round(tsc * 8 / cpb / 1e9, 2) if cpb else None}

        # 3. idle connections
        def idle(addr, port, pid_for_rss):
            rss0 = proc_rss(pid_for_rss)
            p = subprocess.Popen(["ip", "netns", "exec", NS, PY,
                                  os.path.join(ROOT, "tests/integration/hbone_load.py"), "idle",
                                  "--addr", "%s:%s" % (addr, port), "--certs", pki,
                                  "--conns", str(a.idle), "--hold", "600", "--timeout", "30"],
                                 stdout=subprocess.PIPE, text=True)
            line = json.loads(p.stdout.readline())
            time.sleep(2.5)  # idle: buffers trimmed after 1 s
            snap = {"established": line["established"], "setup_s": line["setup_seconds"]}
            snap["rss_growth"] = proc_rss(pid_for_rss) - rss0
            if pid_for_rss == wp_pid:
                snap["tel"] = tel(prefix, "/wp/tunnels")
                snap["stats"] = stats(wpctl, prefix)
            p.terminate()
            p.wait()
            return snap

        base = tel(prefix, "/wp/tunnels")
        w = idle(wip, 15008, wp_pid)
        t = w["tel"]
        tcpb = (total(w["stats"], "tcp_rcv_bufs") + total(w["stats"], "tcp_snd_bufs")) * 65536
        wp_bytes = (t.get("h2_held_bytes", 0) - base.get("h2_held_bytes", 0) +
                    t.get("tls_live_bytes", 0) - base.get("tls_live_bytes", 0) + tcpb)
        n = max(w["established"], 1)

        def each(key):
            return round((t.get(key, 0) - base.get(key, 0)) / n)
        time.sleep(3)
        g = idle("127.0.0.1", 15443, ng_pid)
        res["idle"] = {
            "connections": a.idle,
            "waypointd": {"established": w["established"], "bytes_each": round(wp_bytes / n),
                          "h2_bytes_each": each("h2_held_bytes"),
                          "h2_slab_bytes_each": each("h2_slab_bytes"),
                          "tls_bytes_each": each("tls_live_bytes"),
                          "tcp_buffer_bytes_each": round(tcpb / n),
                          "rss_bytes_each": round(w["rss_growth"] / n),
                          "goal_bytes": 16384},
            "nghttpx": {"established": g["established"],
                        "rss_bytes_each": round(g["rss_growth"] / max(g["established"], 1))},
        }
        if g["rss_growth"] > 0 and wp_bytes > 0:
            res["idle"]["ratio_nghttpx_over_waypointd"] = round(
                (g["rss_growth"] / max(g["established"], 1)) / (wp_bytes / n), 2)
        if g["rss_growth"] > 0 and w["rss_growth"] > 0:
            # RSS against RSS (waypointd's hugepage memory excluded, see above).
            res["idle"]["ratio_rss_nghttpx_over_waypointd"] = round(
                (g["rss_growth"] / max(g["established"], 1)) / (w["rss_growth"] / n), 2)
    finally:
        for p in procs:
            p.terminate()
        subprocess.run([os.path.join(ROOT, "tests/testbed"), "down", NS], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
