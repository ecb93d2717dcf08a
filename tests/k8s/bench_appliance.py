#!/usr/bin/python3
"""Initial-sync benchmark of the appliance itself (not a test; prints
figures): the real waypointd in a testbed namespace, the fake API server on
that namespace's loopback holding N namespaces (each with a waypoint Gateway
of class waypointd and the namespace enrolled to it), services and pods.

Reports: the time from the API server answering to the first snapshot
running in the workers (paged LIST of every kind, enrollment, compile,
RCU publish), waypointd's peak RSS before and after, and the lag from a
label change at the API server (a Service opted out with
istio.io/use-waypoint=none) to the workers running the snapshot without it,
as recorded by the workers themselves (/wp/snapshot seen_ns).

usage: bench_appliance.py [--ns 1000] [--svc 10000] [--pods 100000]
       [--limit 500] [--changes 20] [--workers 2] [--debounce 50]
Needs root; use a release build (WP_BUILD_DIR). Status writing is off here
(1k Gateway status writes would measure the Python fake, not the appliance).
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from appliance import Appliance, now_ns  # noqa: E402
from harness import wait_for  # noqa: E402


def vm(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
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
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--debounce", type=int, default=50, help="cluster.debounce_ms")
    a = ap.parse_args()
    sets = ["cluster.manifest_dir=", "cluster.gateway_class=waypointd", "kubernetes.status=false",
            "kubernetes.page_limit=%d" % a.limit, "kubernetes.sync_wait_ms=100",
            "kubernetes.backoff_base_ms=20", "kubernetes.backoff_max_ms=50",
            "cluster.debounce_ms=%d" % a.debounce]
    wp = Appliance("wpb-k8s-%d" % os.getpid(), sets=sets, workers=a.workers)
    try:
        rss0 = vm(wp.pid, "VmRSS")
        # Every request fails until the cluster is loaded; then t0.
        api = wp.start_api(fail={"count": 1 << 40, "code": 503, "match": "/api"})
        t = time.monotonic()
        batch = []

        def flush():
            if batch:
                api.control("bulk", objects=batch)
                batch.clear()

        def add(o):
            batch.append(o)
            if len(batch) >= 2000:
                flush()
        add({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
             "metadata": {"name": "waypointd"}, "spec": {"controllerName": "waypointd.io/controller"}})
        for i in range(a.ns):
            add({"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": "ns%d" % i, "labels": {"istio.io/use-waypoint": "wp"}}})
            add({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                 "metadata": {"name": "wp", "namespace": "ns%d" % i},
                 "spec": {"gatewayClassName": "waypointd",
                          "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}})
        for i in range(a.svc):
            add({"apiVersion": "v1", "kind": "Service",
                 "metadata": {"name": "svc%d" % i, "namespace": "ns%d" % (i % a.ns)},
                 "spec": {"clusterIP": "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255),
                          "ports": [{"port": 80, "name": "http"}], "selector": {"app": "svc%d" % i}}})
        for i in range(a.pods):
            j = i % max(a.svc, 1)
            ip = "10.%d.%d.%d" % (128 + (i >> 16 & 63), i >> 8 & 255, i & 255)
            add({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": "pod%d" % i, "namespace": "ns%d" % (j % a.ns), "labels": {"app": "svc%d" % j}},
                 "spec": {"serviceAccountName": "default", "nodeName": "node1"},
                 "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                            "conditions": [{"type": "Ready", "status": "True"}]}})
        flush()
        n = 1 + 2 * a.ns + a.svc + a.pods
        print("loaded %d objects into the fake API server in %.1fs" % (n, time.monotonic() - t), flush=True)
        assert all(v == 0 for v in wp.snapshot()["version"]), "published before the list"
        cpu0 = cpu_s(wp.pid)
        t0 = now_ns()
        api.control("fail", count=0)
        row = wp.wait_snapshot(lambda r: r["version"] >= 1, timeout=3600, what="the first snapshot")
        sync = (row["seen_ns"] - t0) / 1e9
        wait_for(lambda: wp.admin("/healthz/ready")[0] == 200, 10)
        rss1, hwm = vm(wp.pid, "VmRSS"), vm(wp.pid, "VmHWM")
        cpu = cpu_s(wp.pid) - cpu0
        print("initial sync: %d objects -> first snapshot in the workers in %.2f s (%.0f objects/s); "
              "snapshot v%d: %d gateways, %d services, %d workloads, %d captured destinations" % (
                  n, sync, n / sync, row["version"], row["gateways"], row["services"], row["workloads"],
                  row["dests"]), flush=True)
        print("waypointd CPU during the sync %.2f s (all threads); RSS %.1f MiB before, %.1f MiB after "
              "(+%.1f MiB), peak RSS %.1f MiB" % (cpu, rss0 / 1024, rss1 / 1024, (rss1 - rss0) / 1024, hwm / 1024),
              flush=True)
        time.sleep(1.0)
        lags = []
        for k in range(a.changes):
            cur = wp.snapshot(0)
            v, d = cur["version"], cur["dests"]
            name, ns = "svc%d" % (k * 7 % a.svc), "ns%d" % (k * 7 % a.svc % a.ns)
            t0 = now_ns()
            code, _ = api.api("PATCH", "/api/v1/namespaces/%s/services/%s" % (ns, name),
                              {"metadata": {"labels": {"istio.io/use-waypoint": "none"}}},
                              ctype="application/merge-patch+json")
            assert code == 200, code
            row = wp.wait_snapshot(lambda r: r["version"] > v and r["dests"] == d - 1, timeout=30,
                                   what="%s/%s withdrawn" % (ns, name))
            lags.append((row["seen_ns"] - t0) / 1e6)
        lags.sort()
        print("label change at the API server -> workers running the new snapshot: median %.1f ms, "
              "min %.1f ms, max %.1f ms over %d changes (debounce %s)" % (
                  statistics.median(lags), lags[0], lags[-1], len(lags), "%d ms" % a.debounce), flush=True)
    finally:
        wp.close()


if __name__ == "__main__":
    main()
