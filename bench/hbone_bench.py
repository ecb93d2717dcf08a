#!/usr/bin/python3
"""HBONE benchmark: waypointd against nghttpx on the same loads, same run.

  bench/hbone_bench.py [--build DIR] [--handshakes N] [--bytes N] [--idle N]
                       [--idle-peer M] [--idle-hold S] [--idle-rate R]
                       [--workers 1|2]
                       [--link tap|memif|memif-zc|virtio|virtio-offload]
                       [--mtu N]
                       [--phases idle,handshakes,capacity,tunnel,tunnel-capacity,storm]
                       [--storm N]
                       [--storm-bytes B] [--handshake-share P] [--storm-nice]
                       [--storm-procs K] [--storm-pace F]
                       [--tunnel-client c|py] [--set KEY=VALUE ...]
                       (defaults 2000, 256 MiB, 10000, 15000, 25 s, unpaced, 1,
                       tap, 1500, all phases but storm, 10000, 64 MiB,
                       waypointd's own, 4, 0.8, c)

Inside a testbed namespace (tests/testbed --manifests --certs, --workers
waypointd workers sized for N connections); the peer is nghttpx (Debian
nghttp2-proxy; --verify-client, the same certificates, one worker process)
on the namespace's loopback.

  1. Memory per idle HBONE connection, N idle connections (mTLS + HTTP/2
     preface and SETTINGS, then nothing but keepalive PINGs answered),
     opened by bench/hbone_idle from one source address per 20,000
     connections, measured first, on fresh processes, so that memory freed
     by earlier phases does not hide growth. N is at most 100,000; nghttpx
     gets M = min(M, N) connections (its one worker process cannot hold
     more descriptors than the open-files hard limit; the ratio says so
     when M < N). Also per side: the set-up rate (connections established
     per second) and the keepalive budget over the hold of S seconds (PINGs
     received per connection, min / mean / max, the longest time without
     one, connections closed during the hold).
     The headline, bytes_each, counts every part of an idle connection on
     our side, in four terms that do not overlap:
       rss_growth    waypointd's resident memory growth over N (/proc VmRSS):
                     everything malloc'd for the connections -- HTTP/2 slabs
                     (with their slack), OpenSSL's allocations and malloc's
                     own overhead, the TLS connection structs, and pages
                     touched during set-up that are free again at idle (TCP
                     buffers, malloc's), as the peer's RSS holds its own;
       h2_prealloc   HTTP/2 blocks served from the 1 MiB of slabs carved at
                     start (resident before the phase, so not in rss_growth):
                     the growth of HTTP/2 bytes held minus the growth of
                     slabs carved, when positive (telemetry /wp/tunnels);
       heap_growth   DPDK heap (hugepage) allocations made meanwhile
                     (telemetry /eal/heap_info; hugepages are not in RSS);
       reserved      the pools sized at start per connection of capacity --
                     HBONE session structs (hugepages), TCP control blocks,
                     their hash table, the TCP buffer free lists: measured as
                     the growth of waypointd's start-up footprint (VmRSS +
                     DPDK heap) from a start with capacity for 0 + 1024 to
                     one for N + 1024 connections, over N (the element sizes
                     are not exported; this measures them).
     The peer's figure is nghttpx's worker RSS growth over N, which counts
     all of its parts. Ratio: nghttpx's bytes per connection over
     waypointd's bytes_each. Printed beside it, not summed into the
     headline: waypointd's own accounting (telemetry /wp/tunnels, wpctl
     stats) -- HTTP/2 bytes held in size classes (with block headers) and
     slabs carved during the phase, OpenSSL's live bytes (without its
     per-allocation header and malloc overhead), TCP buffer bytes held --
     and accounted_bytes_each, their sum (held HTTP/2 + OpenSSL + TCP
     buffers), which was the headline before and leaves out the pools,
     slab slack and malloc overhead. Limit: memory malloc already held free
     at the start is reused without growing RSS; on a fresh process that
     is little against N connections, but it is not counted.
  2. mTLS handshakes: bench/hbone_hs (TLS 1.3, client certificate, ALPN h2,
     HTTP/2 preface + SETTINGS, 2 processes) against both: full handshakes,
     then resumed ones (each process offers the newest session ticket it
     was given: PSK with (EC)DHE; the count resumed is printed with each).
     Like quantities: process CPU (user+system, /proc/PID/stat) per
     handshake for both, at the TSC rate; waypointd's TSC busy cycles per
     handshake printed apart (not a ratio).
  3. Tunnel throughput: one HBONE tunnel, BYTES to a plaintext echo backend
     and back, by bench/l7_load bulk (C: the tunnel kept full, 16 KiB TLS
     records, SHA-256 of both directions compared; --tunnel-client py: the
     Python tests/integration/hbone_load.py, which cannot fill it): Gbit/s
     as seen by the client, waypointd's TSC busy cycles per forwarded byte
     and Gbit/s per core, packets per busy loop (the iterations that did
     work: a light load's few packets each carry the loop's fixed cost);
     ok only when every byte came back unchanged. No
     peer: nghttpx cannot splice CONNECT tunnels, so no ratio.
  4. (capacity; run last, in a testbed of its own) What one saturated
     core can do: polling.mode=busy, the one worker alone on the last CPU,
     hbone_hs (and, on the memif links, the wire) on CPU 0; the same full
     and resumed handshakes. A worker that always has work never sleeps,
     so adaptive polling at saturation costs what busy polling costs; at
     the handshakes phase's load, which does not fill the worker, nearly
     every packet is handled straight after a sleep and costs more for it
     (cold caches, or time the host takes from the vCPU: bench/README.md,
     "Idle polling's wake-ups"). Busy polling reproduces the saturated
     case at a load this 2-CPU machine can offer. Reported: TSC busy
     cycles per handshake, the handshakes per second per core they allow,
     (full) that rate's share of the crypto limit, and the steal time on
     the worker's CPU over each run (/proc/stat: what the hypervisor took,
     which busy cycles, being wall time, would include). Process CPU means
     nothing here (a busy-polling core is always at 100%), so no peer
     ratio: the handshakes phase gives it. tunnel-capacity: the same
     saturated, pinned worker carries phase 3's tunnel (its client and the
     echo backend on CPU 0): busy cycles per byte of a core that shares
     its CPU with nothing, where phase 3's worker shares it with the
     client and the scheduler (its busy cycles, being wall time, count
     the client's turns on the CPU too).
  5. (--phases storm, not in the default) a handshake storm beside an open
     tunnel: the tunnel's Gbit/s alone and during --storm full handshakes
     (hbone_hs, K processes), handshakes per second alone and beside it,
     steps deferred by hbone.handshake_share (--handshake-share sets it),
     the worker's busy share of TSC cycles beside the storm. The tunnel is
     kept full first, then (F > 0) paced at F times its rate alone: a
     steady stream, alone and in a second storm.
Prints a summary, then one JSON line. Bounded; not a pass/fail test.
"""

import argparse
import ipaddress
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import (ROOT, WAYPOINT_MANIFEST_HEAD, Telemetry, cpu_steal_s, proc_cpu_s, proc_rss,
                      sh, stats, total)

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


def per_worker(conns, workers):
    """Per-worker capacity for conns connections in all: waypointd steers
    connections to its workers by a hash of the 4-tuple, so each gets about
    its share, with a margin for the hash's unevenness."""
    return conns if workers == 1 else conns // workers + conns // 16 + 512


def testbed_up(pki, man, build, conns, workers, link, extra=()):
    """waypointd with capacity for conns HBONE connections on the TAP, memif or
    virtio link (tests/testbed --link); (prefix, ip, pid)."""
    sh(os.path.join(ROOT, "tests/testbed"), "down", NS)  # a leftover from an aborted run
    pw = per_worker(conns, workers)
    out = sh(os.path.join(ROOT, "tests/testbed"), "up", "--name", NS, "--manifests", man,
             "--workers", str(workers), "--link", link,
             "--certs", pki, "--set", "cluster.gateway_class=istio-waypoint",
             "--set", "tcp.max_conns=%d" % (pw + 1024), "--set", "tcp.buffers=%d" % min(pw, 16384),
             "--set", "tcp.accept_backlog=4096", "--set", "tcp.syn_backlog=4096",
             "--set", "hbone.max_sessions=%d" % pw, "--set", "mbufs_per_worker=32767",
             "--set", "eal.memory_mb=512", *extra,
             env=dict(os.environ, WP_BIN=os.path.join(build, "dp/waypointd")))
    tb = dict(line.split("=", 1) for line in out.split())
    return tb["WP_PREFIX"], tb["WP_IP"], int(tb["WP_PID"])


# Source addresses for the idle connections: one address has about 28k
# ephemeral ports towards one server port, so one per CONNS_PER_SOURCE.
CONNS_PER_SOURCE = 20000
WP_SRC = "198.18.0.100"   # added to the namespace's end of the TAP link
PEER_SRC = "127.0.0.100"  # on the namespace's lo (all of 127/8 is local)


def sources(n):
    return (n + CONNS_PER_SOURCE - 1) // CONNS_PER_SOURCE


def ip_plus(ip, k):
    return str(ipaddress.ip_address(ip) + k)


def footprint(prefix, pid):
    """waypointd's resident memory plus its DPDK heap allocations, bytes."""
    time.sleep(1.0)  # the control plane has loaded the manifests
    t = Telemetry(prefix)
    heap = t.heap_alloc_bytes()
    t.close()
    return proc_rss(pid) + heap


# TCP buffer element sizes at the default tcp.rcv_buf = tcp.snd_buf = 65536
# (dp/net/tcp/tcp.c pool_init: a send buffer carries its scoreboard, one
# 16-byte record per 256 bytes); used for the accounted breakdown only.
TCP_RCV_BUF = 65536
TCP_SND_BUF = 65536 + 256 * 16
# The TAP link's queue towards waypointd (wp0's txqueuelen) stands for a
# NIC's RX ring: the kernel's default of 1,000 packets is far below the
# thousands of descriptors a NIC has, and while the worker is busy with a
# burst of handshakes the keepalive traffic of 100,000 connections (some
# 30,000 packets a second) overflows it; the drops turn into TCP
# retransmissions with backoff and PING timeouts. Set for the idle phase;
# its drops are reported (tap_drops).
TAP_QUEUE = 16384


def tap_drops():
    """Packets the kernel dropped on wp0 towards waypointd (its queue full)."""
    return int(ns("cat", "/sys/class/net/wp0/statistics/tx_dropped"))


# hbone.ping_interval_ms of conf/waypoint.conf (not overridden here): a
# keepalive PING after this long without anything received.
PING_INTERVAL_MS = 10000


def print_idle(i, a):
    wi, gi = i["waypointd"], i["nghttpx"]
    print("idle connections: bytes per connection, every part on each side")
    print("  waypointd  %8d at %d = RSS growth %d + HTTP/2 from start-up slabs %d + DPDK heap "
          "growth %d + pools reserved at start %d (per connection of capacity); goal %d" % (
              wi["bytes_each"], a.idle, wi["rss_growth_each"], wi["h2_prealloc_each"],
              wi["heap_growth_each"], wi["reserved_each"], wi["goal_bytes"]))
    print("  nghttpx    %8d at %d = RSS growth of its worker" % (
        gi["rss_growth_each"], a.idle_peer))
    print("  ratio nghttpx / waypointd: %s%s" % (
        i["ratio_nghttpx_over_waypointd"],
        " (%s)" % i["ratio_note"] if i["ratio_note"] else ""))
    ac = wi["accounted"]
    print("  not summed (waypointd's own accounting): HTTP/2 held %d, slabs carved %d; OpenSSL "
          "live %d; TCP buffers %d; their sum (held + OpenSSL + TCP, the old headline) %d" % (
              ac["h2_held_bytes_each"], ac["h2_slab_bytes_each"], ac["tls_live_bytes_each"],
              ac["tcp_buffer_bytes_each"], ac["accounted_bytes_each"]))
    for name, side in (("waypointd", wi), ("nghttpx", gi)):
        st, pb = side["setup"], side["ping_budget"]
        print("  %-9s set-up: %d established, %d failed %s in %.1f s: %.0f connections/s "
              "(%d in set-up at once%s)" % (name, st["established"], st["failed"],
                                            st["fail_reasons"] or "", st["setup_s"],
                                            st["rate_per_s"], st["in_flight"],
                                            ", paced at %d/s" % st["rate_cap_per_s"]
                                            if st["rate_cap_per_s"] else ""))
        print("  %-9s held %.0f s: %d alive at the end, closed %s; PINGs per connection min %d "
              "mean %.2f max %d, %d without one, longest gap %d ms" % (
                  name, pb["hold_s"], pb["alive_at_end"], pb["closed_during_hold"] or "none",
                  pb["pings_per_conn_min"], pb["pings_per_conn_mean"], pb["pings_per_conn_max"],
                  pb["conns_without_ping"], pb["longest_gap_ms"]))
    print("  waypointd keepalive: a PING after %d ms without anything received" %
          wi["ping_interval_ms"])
    print("  waypointd link: TAP queue %d packets, %d dropped on it (set-up and hold); "
          "counters over both: %s" % (wi["tap_queue"], wi["tap_drops"],
                                      " ".join("%s %d" % kv for kv in wi["counters"].items())))


def crypto_limit():
    """What the crypto of one server-side full mTLS 1.3 handshake costs
    here, by `openssl speed` (machine-readable): one X25519 key agreement,
    one ECDSA P-256 signature, two ECDSA P-256 verifications (the client's
    certificate and its CertificateVerify). Returns the rates and the
    handshakes per second per core that crypto alone allows."""
    out = subprocess.run(["openssl", "speed", "-seconds", "2", "-mr", "ecdhx25519",
                          "ecdsap256"], capture_output=True, text=True, check=True).stdout
    sign = verify = x25519 = None
    for line in out.splitlines():
        f = line.split(":")
        if f[0] == "+F4" and f[2] == "256":
            sign, verify = float(f[3]), float(f[4])
        elif f[0] == "+F5" and f[2] == "253":
            x25519 = float(f[3])
    if not (sign and verify and x25519):
        raise SystemExit("hbone_bench: cannot read `openssl speed -mr` output")
    each = 1 / x25519 + 1 / sign + 2 / verify
    return {"x25519_per_s": round(x25519), "p256_sign_per_s": round(sign),
            "p256_verify_per_s": round(verify), "us_each": round(each * 1e6, 1),
            "handshakes_per_s": round(1 / each)}


def print_tunnel(head, u, res):
    print("%s (no peer, client %s, %s link, MTU %d): %s Gbit/s at the client, %s TSC "
          "busy cycles per byte (%s without the PMD's I/O), %s Gbit/s per core, mean frame "
          "%d bytes received and %d sent, %s packets per busy loop, %s%s" % (
              head, u["client"], res["link"], res["mtu"], u["client_gbit_s_both_ways"],
              u["tsc_busy_cycles_per_byte"], u["tsc_busy_cycles_per_byte_without_pmd_io"],
              u["gbit_s_per_core"], u["mean_frame_bytes"]["rx"], u["mean_frame_bytes"]["tx"],
              u["packets_per_busy_loop"],
              "every byte back, SHA-256 equal" if u["ok"] else "FAILED",
              "; steal time on the worker's CPU %.1f%% of the run" %
              (100 * u["steal_share_worker_cpu"]) if "steal_share_worker_cpu" in u else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--handshakes", type=int, default=2000, help="per proxy (default 2000)")
    ap.add_argument("--bytes", type=int, default=256 << 20,
                    help="tunnel bytes each way (default 256 MiB)")
    ap.add_argument("--idle", type=int, default=10000,
                    help="idle connections (default 10000, at most 100000)")
    ap.add_argument("--idle-peer", type=int, default=15000,
                    help="idle connections for nghttpx, at most --idle and under the open "
                         "files hard limit (one process; default 15000)")
    ap.add_argument("--idle-rate", type=int, default=0,
                    help="idle set-up paced: at most R * t connections started by t s "
                         "(default 0: only the 128 in set-up at once limit it)")
    ap.add_argument("--idle-hold", type=float, default=25.0,
                    help="seconds the idle connections are held (default 25: two keepalive "
                         "PING intervals and the measurement)")
    ap.add_argument("--workers", type=int, default=1, choices=(1, 2),
                    help="waypointd workers (default 1)")
    ap.add_argument("--link", default="tap", choices=("tap", "memif", "memif-zc", "virtio",
                                                       "virtio-offload"),
                    help="waypointd's port: the TAP (default) or memif, the NIC stand-in "
                         "(tests/testbed --link memif: dpdk-testpmd on CPU 0 is the wire); "
                         "memif-zc: its zero-copy mode, no copy on waypointd's core; "
                         "virtio: a virtual machine's NIC, virtio_user with the wire as its "
                         "vhost-user host; virtio-offload: that host offering checksum, LRO "
                         "and TSO offloads (tests/testbed; waypointd takes them with --set "
                         "'ports.[0].checksum_offload=on' and so on)")
    ap.add_argument("--mtu", type=int, default=1500,
                    help="MTU of waypointd's port and of the kernel side (default 1500; above "
                         "1500 with --link memif, memif-zc or virtio, jumbo frames through the wire: "
                         "tests/testbed --mtu)")
    ap.add_argument("--storm", type=int, default=10000,
                    help="full handshakes in the storm phase (default 10000)")
    ap.add_argument("--storm-bytes", type=int, default=64 << 20,
                    help="bytes each way of the tunnel streamed during the storm (default 64 MiB)")
    ap.add_argument("--storm-nice", action="store_true",
                    help="run the storm's clients at nice 19 (a 2-CPU machine: they do not "
                         "take the tunnel client's CPU)")
    ap.add_argument("--storm-pace", type=float, default=0.8,
                    help="the storm phase also runs the tunnel paced at this fraction of "
                         "its rate alone, 0 < F < 1 (default 0.8; 0: no paced runs)")
    ap.add_argument("--storm-procs", type=int, default=4,
                    help="the storm's client processes, each one handshake at a time "
                         "(default 4)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a waypointd setting for every phase, as tests/testbed --set "
                         "(e.g. ports.[0].tso=on); repeatable")
    ap.add_argument("--handshake-share", type=int, default=0,
                    help="waypointd's hbone.handshake_share, 1..100 (default: its own, 50)")
    ap.add_argument("--phases", default="idle,handshakes,capacity,tunnel,tunnel-capacity",
                    help="comma-separated subset of idle,handshakes,capacity,tunnel,"
                         "tunnel-capacity,storm (default all but storm)")
    ap.add_argument("--tunnel-client", default="c", choices=("c", "py"),
                    help="the tunnel and storm phases' client: bench/l7_load bulk (default) "
                         "or tests/integration/hbone_load.py")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("hbone_bench: run as root")
    if not shutil.which("nghttpx"):
        sys.exit("hbone_bench: nghttpx missing (apt-get install nghttp2-proxy)")
    a.idle = max(100, min(a.idle, 100000))
    # nghttpx's worker is one process: its descriptors are capped by the
    # hard limit, which a container without CAP_SYS_RESOURCE cannot raise
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    a.idle_peer = max(100, min(a.idle_peer, a.idle, nofile - 2048))
    phases = set(a.phases.split(","))
    if not 0 <= a.storm_pace < 1:
        sys.exit("hbone_bench: --storm-pace: 0 (no paced runs) or a fraction under 1, not %s"
                 % a.storm_pace)
    if a.storm_procs < 1:
        sys.exit("hbone_bench: --storm-procs: at least 1, not %d" % a.storm_procs)
    if not phases or phases - {"idle", "handshakes", "capacity", "tunnel", "tunnel-capacity",
                               "storm"}:
        sys.exit("hbone_bench: --phases: a subset of "
                 "idle,handshakes,capacity,tunnel,tunnel-capacity,storm")
    # what every phase's testbed gets besides its sizing
    tb_args = (("--set", "hbone.handshake_share=%d" % a.handshake_share)
               if a.handshake_share else ())
    if a.mtu != 1500:
        tb_args += ("--mtu", str(a.mtu))
    for kv in a.set:
        if "=" not in kv:
            sys.exit("hbone_bench: --set %s: KEY=VALUE" % kv)
        tb_args += ("--set", kv)
    idle_gen = os.path.join(a.build, "bench/hbone_idle")
    wpctl = os.path.join(a.build, "cp/wpctl/wpctl")
    hs = os.path.join(a.build, "bench/hbone_hs")
    tmp = tempfile.mkdtemp(prefix="wp-hbone-bench.")
    pki, man = os.path.join(tmp, "pki"), os.path.join(tmp, "man")
    os.makedirs(man)
    sh(os.path.join(ROOT, "tests/pki/mkpki.sh"), pki)
    with open(os.path.join(man, "cluster.yaml"), "w") as f:
        f.write(MANIFEST)
    procs = []
    res = {"bench": "hbone_bench"}
    if a.set:
        res["waypointd_settings"] = a.set
    res["link"], res["mtu"] = a.link, a.mtu
    try:
        # The pools sized at start, per connection of capacity: two starts.
        reserved_each = 0
        if "idle" in phases:
            prefix, _, wp_pid = testbed_up(pki, man, a.build, 1024, a.workers, a.link, tb_args)
            f0 = footprint(prefix, wp_pid)
            prefix, wip, wp_pid = testbed_up(pki, man, a.build, a.idle + 1024, a.workers, a.link,
                                             tb_args)
            f1 = footprint(prefix, wp_pid)
            reserved_each = (f1 - f0) / a.idle
            for k in range(sources(a.idle)):  # the client's source addresses, beside 198.18.0.1
                ns("ip", "addr", "add", "%s/32" % ip_plus(WP_SRC, k), "dev", "wp0")
            ns("ip", "link", "set", "wp0", "txqueuelen", str(TAP_QUEUE))
        else:
            prefix, wip, wp_pid = testbed_up(pki, man, a.build, 1024, a.workers, a.link, tb_args)

        # the echo backend on 7000: bench/tcp_peer (C, one epoll thread), so that
        # the tunnel phase's client, not an interpreter behind it, sets the pace
        procs.append(subprocess.Popen(["ip", "netns", "exec", NS,
                                       os.path.join(a.build, "bench/tcp_peer"), "6993"],
                                      stdout=subprocess.DEVNULL))
        ng = subprocess.Popen(["ip", "netns", "exec", NS, "nghttpx", "--workers=1",
                               "--frontend=127.0.0.1,15443", "--backend=127.0.0.1,7000",
                               "--verify-client", "--verify-client-cacert=" + pki + "/ca.pem",
                               "--tls-min-proto-version=TLSv1.3", "--no-ocsp",
                               # waypointd's default order (nghttpx's own default too)
                               "--tls13-ciphers=TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
                               "--frontend-http2-max-concurrent-streams=100",
                               "--worker-frontend-connections=%d" % (a.idle_peer + 1024),
                               "--rlimit-nofile=%d" % min(nofile, a.idle_peer + 2048),
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
        t = Telemetry(prefix)
        tsc = t.query("/wp/info")["tsc_hz"]
        res["tsc_hz"] = tsc
        cert = [pki + "/productpage.pem", pki + "/productpage-key.pem", pki + "/ca.pem"]

        # 1. idle connections, first, on fresh processes
        def idle(addr, port, src, count, pid_for_rss):
            rss0 = proc_rss(pid_for_rss)
            heap0 = t.heap_alloc_bytes() if pid_for_rss == wp_pid else 0
            p = subprocess.Popen(["ip", "netns", "exec", NS, idle_gen, "--addr",
                                  "%s:%s" % (addr, port), "--cert", cert[0], "--key", cert[1],
                                  "--ca", cert[2], "--conns", str(count), "--src", src,
                                  "--nsrc", str(sources(count)), "--hold", str(a.idle_hold),
                                  "--rate", str(a.idle_rate),
                                  "--timeout", "30"],
                                 stdout=subprocess.PIPE, text=True)
            try:
                snap = json.loads(p.stdout.readline())
                time.sleep(2.5)  # idle: buffers trimmed after 1 s
                snap["rss_growth"] = proc_rss(pid_for_rss) - rss0
                if pid_for_rss == wp_pid:
                    snap["heap_growth"] = t.heap_alloc_bytes() - heap0
                    snap["tel"] = t.query("/wp/tunnels")
                    snap["stats"] = stats(wpctl, prefix)
                snap["hold"] = json.loads(p.stdout.readline())  # after --idle-hold s
                p.wait(timeout=60)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            return snap

        def ping_budget(snap):
            h = snap["hold"]
            return {"hold_s": h["hold_s"], "alive_at_end": h["alive"],
                    "closed_during_hold": h["closed_during_hold"],
                    "pings_per_conn_min": h["pings"]["min"],
                    "pings_per_conn_mean": h["pings"]["mean"],
                    "pings_per_conn_max": h["pings"]["max"],
                    "conns_without_ping": h["pings"]["conns_without"],
                    "longest_gap_ms": h["pings"]["max_gap_ms"]}

        def setup(snap):
            return {"established": snap["established"], "failed": snap["failed"],
                    "fail_reasons": snap["fail_reasons"], "setup_s": snap["setup_s"],
                    "rate_per_s": snap["rate_per_s"], "in_flight": snap["parallel"],
                    "rate_cap_per_s": snap["rate_cap"] or None}

        if "idle" in phases:
            base = t.query("/wp/tunnels")
            base_st = stats(wpctl, prefix)
            ping_ms = PING_INTERVAL_MS
            drops0 = tap_drops()
            w = idle(wip, 15008, WP_SRC, a.idle, wp_pid)
            drops1 = tap_drops()
            end_st = stats(wpctl, prefix)
            n = max(w["established"], 1)
            tl = w["tel"]

            def each(key):
                return (tl.get(key, 0) - base.get(key, 0)) / n
            tcpb = ((total(w["stats"], "tcp_rcv_bufs") - total(base_st, "tcp_rcv_bufs")) *
                    TCP_RCV_BUF +
                    (total(w["stats"], "tcp_snd_bufs") - total(base_st, "tcp_snd_bufs")) *
                    TCP_SND_BUF)
            accounted = each("h2_held_bytes") + each("tls_live_bytes") + tcpb / n
            rss_each, heap_each = w["rss_growth"] / n, w["heap_growth"] / n
            pre_each = max(0.0, each("h2_held_bytes") - each("h2_slab_bytes"))
            wp_each = rss_each + pre_each + heap_each + reserved_each
            time.sleep(3)
            g = idle("127.0.0.1", 15443, PEER_SRC, a.idle_peer, ng_pid)
            ng_each = g["rss_growth"] / max(g["established"], 1)
            res["idle"] = {
                "connections": a.idle,
                "waypointd": {"established": w["established"],
                              "bytes_each": round(wp_each),
                              "rss_growth_each": round(rss_each),
                              "h2_prealloc_each": round(pre_each),
                              "heap_growth_each": round(heap_each),
                              "reserved_each": round(reserved_each),
                              "accounted": {
                                  "accounted_bytes_each": round(accounted),
                                  "h2_held_bytes_each": round(each("h2_held_bytes")),
                                  "h2_slab_bytes_each": round(each("h2_slab_bytes")),
                                  "tls_live_bytes_each": round(each("tls_live_bytes")),
                                  "tcp_buffer_bytes_each": round(tcpb / n)},
                              "goal_bytes": 8192,
                              "setup": setup(w),
                              "ping_interval_ms": ping_ms,
                              "ping_budget": ping_budget(w),
                              "tap_queue": TAP_QUEUE,
                              "tap_drops": drops1 - drops0,
                              "counters": {k: total(end_st, k) - total(base_st, k) for k in (
                                  "hbone_ping_sent", "hbone_ping_timeout", "tcp_rto_timeout",
                                  "tunnel_handshake_timeout", "drops")}},
                "nghttpx": {"connections": a.idle_peer, "established": g["established"],
                            "rss_growth_each": round(ng_each), "setup": setup(g),
                            "ping_budget": ping_budget(g)},
                "ratio_nghttpx_over_waypointd":
                    round(ng_each / wp_each, 2) if wp_each > 0 else None,
                "ratio_note": None if a.idle_peer == a.idle else
                    "nghttpx measured at %d connections, waypointd at %d" % (
                        a.idle_peer, a.idle),
            }

        # 2. handshakes, full then resumed: process CPU for both
        def hs_run(addr, port, pid, mode, pin=(), steal_cpu=0):
            """mode () full handshakes, ("resume",) resumed ones (each of
            the 2 generator processes offers the newest ticket it got);
            pin, a taskset prefix for the generator; steal_cpu, the CPU
            whose steal time (the share of the run the host took) is
            measured."""
            ns(*pin, hs, addr, port, *cert, "50", "1", *mode)  # warm-up (ARP, caches)
            b0, p0 = t.totals()["busy_cycles"], proc_cpu_s(pid)
            s0, w0 = cpu_steal_s(steal_cpu), time.monotonic()
            r = json.loads(ns(*pin, hs, addr, port, *cert, str(a.handshakes), "2", *mode))
            s1, w1 = cpu_steal_s(steal_cpu), time.monotonic()
            b1, p1 = t.totals()["busy_cycles"], proc_cpu_s(pid)
            n = max(r["handshakes"], 1)
            cpu = (p1 - p0) / n
            return {"count": r["handshakes"], "resumed": r["resumed"], "failed": r["failed"],
                    "wall_per_s": round(r["handshakes"] / r["seconds"]),
                    "cpu_cycles_each": round(cpu * tsc),
                    "per_core_per_s": round(1 / cpu) if cpu else None,
                    "_cpu": cpu, "_busy": (b1 - b0) / n,
                    "_steal": (s1 - s0) / (w1 - w0) if w1 > w0 else 0.0}

        if "handshakes" in phases:
            for kind, mode in (("handshakes", ()), ("resumed_handshakes", ("resume",))):
                w = hs_run(wip, "15008", wp_pid, mode)
                g = hs_run("127.0.0.1", "15443", ng_pid, mode)
                w["not_ratio_tsc_busy_cycles_each"] = round(w["_busy"])
                res[kind] = {"waypointd": w, "nghttpx": g,
                             "ratio_cpu_each_nghttpx_over_waypointd":
                                 round(g["_cpu"] / w["_cpu"], 2) if w["_cpu"] else None}
                for x in (w, g):
                    del x["_cpu"], x["_busy"], x["_steal"]
            res["handshakes"]["crypto_limit"] = crypto_limit()
            lim = res["handshakes"]["crypto_limit"]["handshakes_per_s"]
            per_core = res["handshakes"]["waypointd"]["per_core_per_s"]
            res["handshakes"]["waypointd_share_of_crypto_limit"] = (
                round(per_core / lim, 3) if lim and per_core else None)

        def tunnel_echo(nbytes, mbit=0.0, pin=()):
            """One tunnel, nbytes each way to the echo backend and back, by
            the --tunnel-client: (Gbit/s both ways at the client, ok: every
            byte back with the SHA-256 of what was sent). mbit > 0 paces the
            sending at mbit Mbit/s (l7_load only); pin, a taskset prefix
            for the client."""
            if a.tunnel_client == "py":
                if mbit:
                    raise RuntimeError("a paced tunnel needs --tunnel-client c")
                r = json.loads(ns(*pin, PY, os.path.join(ROOT, "tests/integration/hbone_load.py"),
                                  "echo", "--addr", wip + ":15008", "--certs", pki,
                                  "--authority", "198.19.0.10:7000", "--tunnels", "1",
                                  "--bytes", str(nbytes), "--timeout", "600"))
                return r["mbit_s_both_ways"] / 1000, r["ok"] == 1
            p = subprocess.run(["ip", "netns", "exec", NS, *pin,
                                os.path.join(a.build, "bench/l7_load"),
                                "bulk", wip, "15008", str(nbytes), *cert, "198.19.0.10:7000",
                                "600", "%.1f" % mbit], capture_output=True, text=True)
            if not p.stdout.strip():
                raise RuntimeError("l7_load bulk: exit %d, no report: %s" % (
                    p.returncode, p.stderr.strip()))
            r = json.loads(p.stdout.splitlines()[-1])  # without a tunnel: ok 0 and the error
            if p.returncode != 0:
                print("hbone_bench: l7_load bulk failed: %s" % json.dumps(r), file=sys.stderr)
            return r.get("gbit_s_both_ways", 0.0), p.returncode == 0 and r["sha256_ok"] == 1

        def tunnel_run(tel, pin=(), steal_cpu=None):
            """One tunnel_echo() of --bytes measured by waypointd's counters
            (tel): busy TSC cycles per forwarded byte, both directions'
            payload; with steal_cpu, the share of the run the host took
            from that CPU."""
            b0, s0, w0 = tel.totals(), cpu_steal_s(steal_cpu or 0), time.monotonic()
            gbit, ok = tunnel_echo(a.bytes, pin=pin)
            b1, s1, w1 = tel.totals(), cpu_steal_s(steal_cpu or 0), time.monotonic()
            fwd = (b1["tunnel_bytes_up"] - b0["tunnel_bytes_up"] +
                   b1["tunnel_bytes_down"] - b0["tunnel_bytes_down"])
            busy = b1["busy_cycles"] - b0["busy_cycles"]
            io = b1["io_cycles"] - b0["io_cycles"]
            frames = {d: round((b1[d + "_bytes"] - b0[d + "_bytes"]) /
                               max(1, b1[d + "_packets"] - b0[d + "_packets"]))
                      for d in ("rx", "tx")}
            cpb = busy / fwd if fwd else 0
            pkts = sum(b1[d + "_packets"] - b0[d + "_packets"] for d in ("rx", "tx"))
            loops = b1["busy_loops"] - b0["busy_loops"]
            r = {"bytes_each_way": a.bytes, "ok": ok, "peer": None,
                 "client": a.tunnel_client,
                 "client_gbit_s_both_ways": round(gbit, 3),
                 "tsc_busy_cycles_per_byte": round(cpb, 2),
                 "tsc_busy_cycles_per_byte_without_pmd_io":
                     round((busy - io) / fwd, 2) if fwd else None,
                 "gbit_s_per_core": round(tsc * 8 / cpb / 1e9, 2) if cpb else None,
                 "mean_frame_bytes": frames,
                 # how full the worker's iterations were: a light load's
                 # few packets each carry the loop's fixed cost
                 "packets_per_busy_loop": round(pkts / loops, 2) if loops else None}
            if steal_cpu is not None:
                r["steal_share_worker_cpu"] = round((s1 - s0) / (w1 - w0), 3) if w1 > w0 else 0.0
            return r

        # 3. throughput (no peer)
        if "tunnel" in phases:
            res["tunnel"] = tunnel_run(t)
        # 4. a handshake storm while one tunnel streams (no peer)
        if "storm" in phases:
            def storm_start():
                # the storm's clients at the lowest priority: on a machine this
                # small they would otherwise take the CPU the tunnel's client
                # needs, and the figure would be theirs, not waypointd's
                nice = ("nice", "-n", "19") if a.storm_nice else ()
                return subprocess.Popen(["ip", "netns", "exec", NS, *nice, hs, wip, "15008",
                                         *cert, str(a.storm), str(a.storm_procs)],
                                        stdout=subprocess.PIPE, text=True)

            def storm_end(p):
                out, _ = p.communicate(timeout=1800)
                r = json.loads(out)
                return {"handshakes": r["handshakes"], "failed": r["failed"],
                        "seconds": r["seconds"],
                        "per_s": round(r["handshakes"] / r["seconds"]) if r["seconds"] else None}

            def alone_then_storm(mbit):
                """The tunnel (paced at mbit when > 0) alone, then during a
                storm: both rates and their ratio, SHA-256, whether the storm
                outlasted it, the storm's figures, the steps deferred, and
                the worker's share of busy TSC cycles over the tunnel's run
                in the storm."""
                alone, ok_alone = tunnel_echo(a.storm_bytes, mbit)
                d0 = t.totals().get("tunnel_handshake_deferred", 0)
                p = storm_start()
                time.sleep(0.5)  # the storm under way before the tunnel starts
                b0, w0 = t.totals()["busy_cycles"], time.monotonic()
                during, ok = tunnel_echo(a.storm_bytes, mbit)
                b1, w1 = t.totals()["busy_cycles"], time.monotonic()
                outlasted = p.poll() is None
                storm = storm_end(p)
                return {"tunnel_gbit_s_alone": round(alone, 3),
                        "tunnel_gbit_s_during_storm": round(during, 3),
                        "ratio_during_over_alone": round(during / alone, 2) if alone else None,
                        "sha256_ok": ok_alone and ok,
                        "storm_outlasted_tunnel": outlasted, "storm_during_tunnel": storm,
                        "handshake_steps_deferred":
                            t.totals().get("tunnel_handshake_deferred", 0) - d0,
                        "worker_busy_share_during":
                            round((b1 - b0) / (tsc * (w1 - w0) * a.workers), 2)}

            res["storm"] = {"tunnel_bytes_each_way": a.storm_bytes, "storm_handshakes": a.storm,
                            "storm_clients_nice": a.storm_nice, "storm_procs": a.storm_procs,
                            "storm_alone": storm_end(storm_start())}
            res["storm"].update(alone_then_storm(0))
            alone_gbit = res["storm"]["tunnel_gbit_s_alone"]
            if 0 < a.storm_pace < 1 and alone_gbit:
                # a tunnel carrying a steady stream: what it is offered
                # (each way) against what it carried, alone and in a storm
                mbit = alone_gbit * 1000 / 2 * a.storm_pace
                res["storm"]["paced"] = {"offered_mbit_s_each_way": round(mbit, 1),
                                         **alone_then_storm(mbit)}
        t.close()

        # 4. a saturated core's handshakes and tunnel: last, in a testbed of its own
        if phases & {"capacity", "tunnel-capacity"}:
            ncpu = os.cpu_count() or 1
            pinned = ncpu > 1
            pin = ("taskset", "-c", "0") if pinned else ()
            cap_args = tb_args + ("--set", "polling.mode=busy")
            if pinned:  # main lcore (control plane) on CPU 0, the worker alone on the last
                cap_args += ("--set", "eal.lcores=0@0,1@%d" % (ncpu - 1))
            prefix, wip, wp_pid = testbed_up(pki, man, a.build, 1024, 1, a.link, cap_args)
            t = Telemetry(prefix)
            cap = {"polling": "busy", "workers": 1, "pinned": pinned}
            for kind, mode in (("full", ()), ("resumed", ("resume",))):
                if "capacity" not in phases:
                    break
                w = hs_run(wip, "15008", wp_pid, mode, pin, ncpu - 1)
                # busy cycles are wall time: what the host took from the
                # worker's CPU (steal time) would be in them
                cap[kind] = {"count": w["count"], "resumed": w["resumed"], "failed": w["failed"],
                             "tsc_busy_cycles_each": round(w["_busy"]),
                             "per_core_per_s": round(tsc / w["_busy"]) if w["_busy"] else None,
                             "steal_share_worker_cpu": round(w["_steal"], 3)}
            if "capacity" in phases:
                lim = (res["handshakes"]["crypto_limit"] if "handshakes" in res
                       else crypto_limit())
                cap["crypto_limit_handshakes_per_s"] = lim["handshakes_per_s"]
                cap["full_share_of_crypto_limit"] = (
                    round(cap["full"]["per_core_per_s"] / lim["handshakes_per_s"], 3)
                    if cap["full"]["per_core_per_s"] else None)
            if "tunnel-capacity" in phases:
                # the testbed's new namespace needs its own echo backend;
                # the client shares CPU 0 with it and the control plane
                echo = subprocess.Popen(["ip", "netns", "exec", NS, *pin,
                                         os.path.join(a.build, "bench/tcp_peer"), "6993"],
                                        stdout=subprocess.PIPE, text=True)
                procs.append(echo)
                echo.stdout.readline()  # {"ready": true}
                cap["tunnel"] = tunnel_run(t, pin, ncpu - 1)
            res["capacity"] = cap
            t.close()
    finally:
        for p in procs:
            p.terminate()
        subprocess.run([os.path.join(ROOT, "tests/testbed"), "down", NS], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print("hbone_bench: tsc_hz %d" % res["tsc_hz"])
    if "idle" in res:
        print_idle(res["idle"], a)
    for kind in ("handshakes", "resumed_handshakes"):
        if kind not in res:
            continue
        h = res[kind]
        print("%s (%d each, process CPU at the TSC rate):" % (kind.replace("_", " "),
                                                              a.handshakes))
        print("  waypointd %d cycles each (%s per core per s, %d resumed); nghttpx %d cycles "
              "each (%s per core per s, %d resumed); ratio nghttpx / waypointd %s" % (
                  h["waypointd"]["cpu_cycles_each"], h["waypointd"]["per_core_per_s"],
                  h["waypointd"]["resumed"], h["nghttpx"]["cpu_cycles_each"],
                  h["nghttpx"]["per_core_per_s"], h["nghttpx"]["resumed"],
                  h["ratio_cpu_each_nghttpx_over_waypointd"]))
        print("  not a ratio: waypointd TSC busy cycles per handshake %d" %
              h["waypointd"]["not_ratio_tsc_busy_cycles_each"])
        if "crypto_limit" in h:
            c = h["crypto_limit"]
            print("  crypto limit (openssl speed, this run): X25519 %d/s, P-256 sign %d/s, "
                  "verify %d/s: %s us of crypto a server handshake, %d per core per s; "
                  "waypointd at %s of it" % (
                      c["x25519_per_s"], c["p256_sign_per_s"], c["p256_verify_per_s"],
                      c["us_each"], c["handshakes_per_s"],
                      "%.0f%%" % (100 * h["waypointd_share_of_crypto_limit"])
                      if h["waypointd_share_of_crypto_limit"] else "?"))
    if "capacity" in res:
        c = res["capacity"]
        print("capacity (a saturated core: polling.mode=busy, %s):"
              % ("the worker alone on the last CPU, the clients on CPU 0" if c["pinned"]
                 else "one CPU, nothing pinned: the clients' preemption counts too"))
        for kind in ("full", "resumed"):
            if kind not in c:
                continue
            k = c[kind]
            print("  %s handshakes: %d TSC busy cycles each, %s per core per s (%d handshakes, "
                  "%d resumed, %d failed)%s" % (
                      kind, k["tsc_busy_cycles_each"], k["per_core_per_s"],
                      k["count"], k["resumed"], k["failed"],
                      "; %.0f%% of the crypto limit (%d per core per s)" % (
                          100 * c["full_share_of_crypto_limit"],
                          c["crypto_limit_handshakes_per_s"])
                      if kind == "full" and c["full_share_of_crypto_limit"] else ""))
            print("    steal time on the worker's CPU meanwhile (counted in busy cycles): %.1f%% "
                  "of the run" % (100 * k["steal_share_worker_cpu"]))
        if "tunnel" in c:
            print_tunnel("  tunnel", c["tunnel"], res)
    if "tunnel" in res:
        print_tunnel("tunnel", res["tunnel"], res)
    if "storm" in res:
        u = res["storm"]
        print("storm (no peer): one tunnel, %d bytes each way: %s Gbit/s alone, %s Gbit/s during a "
              "storm of %d full handshakes (ratio %s; the storm %s the tunnel's run; SHA-256 %s)" % (
                  u["tunnel_bytes_each_way"], u["tunnel_gbit_s_alone"],
                  u["tunnel_gbit_s_during_storm"], u["storm_handshakes"],
                  u["ratio_during_over_alone"],
                  "outlasted" if u["storm_outlasted_tunnel"] else "ended before the end of",
                  "equal" if u["sha256_ok"] else "MISMATCH"))
        print("  handshakes: %s/s alone, %s/s beside the tunnel, failed %d + %d; steps deferred "
              "by hbone.handshake_share: %d" % (
                  u["storm_alone"]["per_s"], u["storm_during_tunnel"]["per_s"],
                  u["storm_alone"]["failed"], u["storm_during_tunnel"]["failed"],
                  u["handshake_steps_deferred"]))
        print("  the worker's busy share of TSC cycles over the tunnel's run in the storm: %s" %
              u["worker_busy_share_during"])
        if "paced" in u:
            v = u["paced"]
            print("  paced at %s Mbit/s each way: %s Gbit/s alone, %s Gbit/s during a storm "
                  "(ratio %s; the storm %s the tunnel's run; SHA-256 %s); handshakes %s/s "
                  "beside it, failed %d, steps deferred %d, worker busy share %s" % (
                      v["offered_mbit_s_each_way"], v["tunnel_gbit_s_alone"],
                      v["tunnel_gbit_s_during_storm"], v["ratio_during_over_alone"],
                      "outlasted" if v["storm_outlasted_tunnel"] else "ended before the end of",
                      "equal" if v["sha256_ok"] else "MISMATCH",
                      v["storm_during_tunnel"]["per_s"], v["storm_during_tunnel"]["failed"],
                      v["handshake_steps_deferred"], v["worker_busy_share_during"]))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
