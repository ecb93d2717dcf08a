#!/usr/bin/python3
"""Initial-sync benchmark of the Kubernetes source (not a test; prints
figures). Loads N namespaces, services and pods into the fake API server,
runs kube_source_probe (paged LIST, default 500 per page) and reports the
time to SYNCED, the probe's peak RSS, and the lag from a label change at
the API server to the probe's sink seeing it.

usage: bench_sync.py [--ns 1000] [--svc 10000] [--pods 100000] [--limit 500]
(KUBE_SOURCE_PROBE or WP_BUILD_DIR locate the probe; use a release build.)
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FakeAPI  # noqa: E402
from test_kube_source import Probe  # noqa: E402


def peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ns", type=int, default=1000)
    ap.add_argument("--svc", type=int, default=10000)
    ap.add_argument("--pods", type=int, default=100000)
    ap.add_argument("--limit", type=int, default=500)
    a = ap.parse_args()
    with FakeAPI(bookmark_interval=5) as api:
        t0 = time.monotonic()
        batch = []

        def flush():
            if batch:
                api.control("bulk", objects=batch)
                batch.clear()

        def add(o):
            batch.append(o)
            if len(batch) >= 2000:
                flush()
        for i in range(a.ns):
            add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns%d" % i}})
        for i in range(a.svc):
            add({"apiVersion": "v1", "kind": "Service",
                 "metadata": {"name": "svc%d" % i, "namespace": "ns%d" % (i % a.ns)},
                 "spec": {"clusterIP": "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255),
                          "ports": [{"port": 80, "name": "http"}], "selector": {"app": "svc%d" % i}}})
        for i in range(a.pods):
            j = i % max(a.svc, 1)
            add({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": "pod%d" % i, "namespace": "ns%d" % (j % a.ns),
                              "labels": {"app": "svc%d" % j}},
                 "spec": {"serviceAccountName": "default", "nodeName": "node1"},
                 "status": {"phase": "Running", "podIP": "10.128.%d.%d" % (i >> 8 & 255, i & 255),
                            "podIPs": [{"ip": "10.128.%d.%d" % (i >> 8 & 255, i & 255)}]}})
        flush()
        print("loaded %d objects into the fake API in %.1fs" % (a.ns + a.svc + a.pods, time.monotonic() - t0))
        t0 = time.monotonic()
        with Probe(api, "--limit", str(a.limit)) as p:
            t, _ = p.wait("SYNCED", timeout=3600)
            sync = t - t0
            rss = peak_rss_kib(p.proc.pid)
            cpu = cpu_s(p.proc.pid)
            api_cpu = cpu_s(api.proc.pid)
            m = p.mark()
            t1 = time.monotonic()
            api.api("PATCH", "/api/v1/namespaces/ns1", {"metadata": {"labels": {"istio.io/use-waypoint": "w"}}},
                    ctype="application/merge-patch+json")
            t2, _ = p.wait("UPSERT Namespace /ns1", after=m, timeout=30)
            n_up = sum(1 for l in p.all() if l.startswith("UPSERT"))
        print("initial sync: %d objects in %.2fs (%.0f objects/s), probe CPU %.2fs (fake API server CPU "
              "%.2fs), probe peak RSS %.1f MiB, label change -> sink %.1f ms" % (
                  n_up - 1, sync, (n_up - 1) / sync, cpu, api_cpu, rss / 1024, (t2 - t1) * 1000))


if __name__ == "__main__":
    main()
