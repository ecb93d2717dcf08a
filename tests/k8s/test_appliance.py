#!/usr/bin/python3
"""The appliance end to end on its Kubernetes source (issue 7's acceptance):
the real waypointd in a testbed namespace, the fake API server on that
namespace's loopback, the seed's walk-through with wpctl and kubectl, and
the running data plane's view read from the workers (/wp/snapshot).

One appliance runs through the phases in order (each builds on the last):
  1. no publication before the first full sync: waypointd starts with no API
     server (start-up wait runs out: 503, workers hold no snapshot), then
     the API server comes up with Pod lists failing: still nothing; once
     Pods list, the first snapshot the workers see already holds them;
  2. the seed: generate, apply --enroll-namespace (istio-waypoint: istiod's,
     the appliance writes nothing), apply --class waypointd --wait
     (Programmed with the Service hostname, written by the appliance),
     kubectl label service / pod move destinations in the workers within a
     second, delete --all and the namespace unlabel undo it;
  3. watch reliability against the appliance: an API-server restart, and an
     object deleted while history is compacted (410, relist).

Needs root (network namespace, DPDK TAP); suite 'integration'.
Run: WP_BUILD_DIR=build /usr/bin/python3 tests/k8s/test_appliance.py
"""

import json
import os
import socket
import sys
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from appliance import ROOT, Appliance, now_ns  # noqa: E402
from harness import kubectl, wait_for, wpctl  # noqa: E402
from test_wpctl import SEED_GATEWAY  # noqa: E402

GW = "/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways"
HOST = "waypointd.default.svc.cluster.local"
LAG_LIMIT_S = 1.0


def pod(ns, name, ip, labels, sa):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"serviceAccountName": sa, "nodeName": "node-1",
                     "containers": [{"name": "app", "image": "example", "ports": [{"containerPort": 9080}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def service(ns, name, vip, port, app):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": app, "service": name}},
            "spec": {"clusterIP": vip, "clusterIPs": [vip], "selector": {"app": app},
                     "ports": [{"name": "http", "port": port, "targetPort": port}]}}


def cluster():
    """bookinfo in default (ambient, no waypoint yet), and namespace other
    enrolled to other/wp, an istio-waypoint --for workload Gateway this
    appliance serves by name (no status written: not its class)."""
    objs = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "default", "labels": {"istio.io/dataplane-mode": "ambient"}}},
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "other", "labels": {"istio.io/dataplane-mode": "ambient",
                                                  "istio.io/use-waypoint": "wp"}}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
         "metadata": {"name": "istio-waypoint"}, "spec": {"controllerName": "istio.io/mesh-controller"}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
         "metadata": {"name": "wp", "namespace": "other", "labels": {"istio.io/waypoint-for": "workload"}},
         "spec": {"gatewayClassName": "istio-waypoint",
                  "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}},
        service("other", "echo", "198.19.1.1", 80, "echo"),
        pod("other", "echo-1", "198.18.2.1", {"app": "echo"}, "echo"),
        pod("other", "echo-2", "198.18.2.2", {"app": "echo"}, "echo"),
    ]
    for i, (name, app) in enumerate((("productpage", "productpage"), ("reviews", "reviews"),
                                     ("ratings", "ratings"), ("details", "details"))):
        objs.append(service("default", name, "198.19.0.%d" % (10 + i), 9080, app))
    for i, (name, app, ver) in enumerate((("productpage-v1-6b746f74dc-xk2qz", "productpage", "v1"),
                                          ("reviews-v1-7d8c5f8f9-abcde", "reviews", "v1"),
                                          ("reviews-v2-5b667bcbf8-spnnh", "reviews", "v2"),
                                          ("reviews-v3-5c5d764c4f-8z6dw", "reviews", "v3"),
                                          ("ratings-v1-7dc98c7588-vzftc", "ratings", "v1"),
                                          ("details-v1-6997d94bb9-c8qjd", "details", "v1"))):
        objs.append(pod("default", name, "198.18.1.%d" % (10 + i), {"app": app, "version": ver},
                        "bookinfo-" + app))
    return objs


def ok(r, out=None):
    assert r.returncode == 0, "exit %d: %s%s" % (r.returncode, r.stdout, r.stderr)
    if out is not None:
        assert r.stdout == out, "stdout:\n%r\nwanted:\n%r" % (r.stdout, out)


def step(msg):
    print("  - " + msg, flush=True)


def enrollment(wp):
    """{(kind, ns/name): row} from `wpctl enrollment -o json` (waypoint, reason)
    plus "served" from the admin endpoint; both show the running snapshot."""
    r = wp.wpctl("enrollment", "-o", "json")
    ok(r)
    view = json.loads(r.stdout)
    assert view["view"] == "snapshot", view
    rows = {(e["kind"], "%s/%s" % (e["namespace"], e["name"])): e for e in view["rows"]}
    # the admin endpoint's own view adds whether the waypoint is one this appliance serves
    for e in wp.admin_json("/enrollment")["rows"]:
        rows[(e["kind"], "%s/%s" % (e["namespace"], e["name"]))]["served"] = e["served"]
    return rows


def change_ns(api, t0_ns):
    """When the API server received the first change (a write other than a
    status write) made after t0_ns: the lag is measured from there, not from
    when kubectl or wpctl started (their start-up is not the appliance's)."""
    ts = [r["t_ns"] for r in api.control("requests")["requests"]
          if r["t_ns"] >= t0_ns and r["method"] in ("POST", "PUT", "PATCH", "DELETE")
          and not r["path"].split("?")[0].endswith("/status")]
    assert ts, "no change reached the API server"
    return min(ts)


def lag_to_workers(wp, t0_ns, pred, what):
    """Waits until every worker runs a snapshot satisfying pred; checks the
    lag from the change that followed t0_ns (as the API server received it)
    to when each worker first saw it (recorded by the worker) and returns
    the largest."""
    rows = wp.wait_snapshot_rows(pred, timeout=5.0, what=what)
    t_change = change_ns(wp.api, t0_ns)
    lags = [(r["seen_ns"] - t_change) / 1e9 for r in rows]
    for w, lag in enumerate(lags):
        assert lag < LAG_LIMIT_S, "%s took %.3f s to reach worker %d" % (what, lag, w)
    return max(lags)


def phase_first_sync(wp):
    step("no API server: start-up wait runs out, nothing published")
    assert wp.alive()
    st, body = wp.admin("/healthz/ready")
    assert st == 503, (st, body)
    snap = wp.snapshot()
    assert snap["workers"] >= 1 and all(v == 0 for v in snap["version"]), snap
    dump = wp.admin_json("/config_dump")
    assert dump["synced"] is False and dump["snapshot"] is None, dump.get("synced")
    assert "no first full sync of kubernetes" in wp.log_text(), wp.log_text()

    step("API server up, Pod lists failing (500): every other kind lists, still nothing")
    path = os.path.join(wp.dir, "cluster.yaml")
    with open(path, "w") as f:
        yaml.safe_dump_all(cluster(), f)
    api = wp.start_api(load=[path], fail={"count": 1000000, "code": 500, "match": "/pods"})

    def listed():
        reqs = [r["path"] for r in api.control("requests")["requests"]]
        watching = {p.split("?")[0].rsplit("/", 1)[-1] for p in reqs if "watch=1" in p}
        pod_lists = [p for p in reqs if p.startswith("/api/v1/pods")]
        return "services" in watching and "gateways" in watching and len(pod_lists) >= 2
    wait_for(listed, 15, what="the other kinds watching and Pod lists retried")
    # the sync point: the appliance itself says only Pods are still listing
    only_pods = [{"source": "kubernetes", "kind": "Pod", "state": "listing"}]
    wait_for(lambda: wp.admin_json("/config_dump")["lagging"] == only_pods, 5, interval=0.05,
             what="every kind but Pod listed")
    assert wp.admin("/healthz/ready")[0] == 503
    assert all(v == 0 for v in wp.snapshot()["version"]), wp.snapshot()
    dump = wp.admin_json("/config_dump")
    lease = dump["sources"][0].pop("lease")  # leader election, on by default (phase_seed)
    assert dump["synced"] is False and dump["sources"] == [
        {"name": "kubernetes", "synced": False, "pending_writes": 0}], dump["sources"]
    assert (lease["namespace"], lease["identity"]) == ("default", socket.gethostname()), lease
    # what the workers run is nothing; the half-listed store only on request
    view = json.loads(wp.wpctl("enrollment", "-o", "json").stdout)
    assert view["view"] == "none" and view["rows"] == [] and view["lagging"] == only_pods, view
    store = json.loads(wp.wpctl("enrollment", "--store", "-o", "json").stdout)
    assert store["view"] == "store" and len(store["rows"]) == 5, store  # no Pods yet

    step("Pods list: the first snapshot the workers see holds them")
    api.control("fail", count=0)
    row = wp.wait_snapshot(lambda r: r["version"] >= 1, timeout=10, what="the first snapshot")
    assert wp.admin("/healthz/ready")[0] == 200
    assert row["changes"] == 1 and row["version"] == 1, row
    gws = wp.gateways()
    assert gws == {"other/wp": (0, 2)}, gws  # both echo pods captured as workloads
    assert row["dests"] == 2, row


def phase_seed(wp):
    api = wp.api
    step("kubectl apply -f deploy/gatewayclass.yaml: the appliance accepts its class")
    r = kubectl(api, "apply", "-f", os.path.join(ROOT, "deploy/gatewayclass.yaml"))
    assert r.stdout == "gatewayclass.gateway.networking.k8s.io/waypointd created\n", r.stdout

    def class_accepted():
        code, gc = api.api("GET", "/apis/gateway.networking.k8s.io/v1/gatewayclasses/waypointd")
        conds = gc.get("status", {}).get("conditions", [])
        return any(c["type"] == "Accepted" and c["status"] == "True" for c in conds)
    wait_for(class_accepted, 5, what="GatewayClass waypointd Accepted")
    # it wrote that as the holder of its Lease, and says so
    lease = json.loads(wp.wpctl("config", "dump").stdout)["sources"][0]["lease"]
    assert lease["leading"] is True and lease["holder"] == lease["identity"] == socket.gethostname(), lease
    assert 0 <= lease["since_renew_s"] <= 2.5 and lease["transitions"] == 0, lease

    step("wpctl waypoint generate --for service -n default prints the seed's Gateway")
    ok(wpctl(api, "waypoint", "generate", "--for", "service", "-n", "default"), SEED_GATEWAY)

    step("wpctl waypoint apply -n default --enroll-namespace (istio-waypoint: istiod's)")
    ok(wpctl(api, "waypoint", "apply", "-n", "default", "--enroll-namespace"),
       "✅ waypoint default/waypoint applied\n"
       "✅ namespace default labeled with \"istio.io/use-waypoint: waypoint\"\n")
    # the sync point: the control plane has the Gateway (the source hands it
    # to the status writer before delivering it) and the writer is idle
    wait_for(lambda: wp.admin_json("/config_dump?view=store")["objects"]["Gateway"] == 2, 5, interval=0.05,
             what="the Gateway delivered")
    wait_for(lambda: wp.admin_json("/config_dump")["sources"][0]["pending_writes"] == 0, 5, interval=0.05,
             what="the status writer idle")
    code, gw = api.api("GET", GW + "/waypoint")
    assert "addresses" not in gw.get("status", {}), gw.get("status")  # not ours: no status
    assert "default/waypoint" not in wp.gateways()
    # istiod has not written its addresses (there is no istiod here): not ready
    e = enrollment(wp)[("Service", "default/reviews")]
    assert e["reason"] == "WaypointIsNotReady" and e["waypoint"] is None and not e["served"], e

    step("apply --class waypointd --wait: the appliance programs it with its Service hostname")
    t0 = now_ns()
    ok(wpctl(api, "waypoint", "apply", "-n", "default", "--class", "waypointd", "--overwrite", "--wait"),
       "✅ waypoint default/waypoint applied\n✅ waypoint default/waypoint is ready!\n")
    code, gw = api.api("GET", GW + "/waypoint")
    st = gw["status"]
    assert st["addresses"] == [{"type": "Hostname", "value": HOST}], st
    prog = [c for c in st["conditions"] if c["type"] == "Programmed"][0]
    assert prog["status"] == "True" and prog["observedGeneration"] == gw["metadata"]["generation"], prog
    assert HOST in prog["message"], prog
    lag = lag_to_workers(wp, t0, lambda r: r["services"] == 4, "default/waypoint capturing bookinfo")
    assert wp.gateways()["default/waypoint"] == (4, 0), wp.gateways()
    step("    bookinfo captured by every worker %.0f ms after the apply reached the API server" % (lag * 1000))
    e = enrollment(wp)[("Service", "default/reviews")]
    assert e["served"] and e["waypoint"] == "default/waypoint" and e["reason"] == "WaypointBound", e

    step("reviews gets its own waypoint: kubectl label service reviews ...")
    ok(wpctl(api, "waypoint", "apply", "-n", "default", "--name", "reviews-svc-waypoint", "--class", "waypointd"),
       "✅ waypoint default/reviews-svc-waypoint applied\n")
    t0 = now_ns()
    r = kubectl(api, "label", "service", "reviews", "istio.io/use-waypoint=reviews-svc-waypoint")
    assert r.stdout == "service/reviews labeled\n", r.stdout
    lag = lag_to_workers(wp, t0, lambda r: dict(zip(r["gw_names"], r["gw_services"])).get(
        "default/reviews-svc-waypoint") == 1, "reviews moving to reviews-svc-waypoint")
    gws = wp.gateways()
    assert gws["default/waypoint"] == (3, 0) and gws["default/reviews-svc-waypoint"] == (1, 0), gws
    e = enrollment(wp)
    assert e[("Service", "default/reviews")]["waypoint"] == "default/reviews-svc-waypoint", e[("Service", "default/reviews")]
    step("    in every worker %.0f ms after the change reached the API server" % (lag * 1000))

    step("reviews-v2 pod gets a workload waypoint: kubectl label pod -l version=v2,app=reviews ...")
    ok(wpctl(api, "waypoint", "apply", "-n", "default", "--name", "reviews-v2-pod-waypoint", "--for", "workload",
             "--class", "waypointd"),
       "✅ waypoint default/reviews-v2-pod-waypoint applied\n")
    before = wp.snapshot(0)["dests"]
    t0 = now_ns()
    r = kubectl(api, "label", "pod", "-l", "version=v2,app=reviews", "istio.io/use-waypoint=reviews-v2-pod-waypoint")
    assert r.stdout == "pod/reviews-v2-5b667bcbf8-spnnh labeled\n", r.stdout
    lag = lag_to_workers(wp, t0, lambda r: r["dests"] == before + 1, "the reviews-v2 pod captured")
    assert wp.gateways()["default/reviews-v2-pod-waypoint"] == (0, 1), wp.gateways()
    e = enrollment(wp)
    assert e[("Pod", "default/reviews-v2-5b667bcbf8-spnnh")]["waypoint"] == "default/reviews-v2-pod-waypoint"
    step("    in every worker %.0f ms after the change reached the API server" % (lag * 1000))

    def all_programmed():
        r = wpctl(api, "waypoint", "list", "-n", "default")
        return r.stdout if r.stdout.count(" True\n") == 3 else None
    out = wait_for(all_programmed, 5, what="three waypoints Programmed")
    assert out == ("NAME                        REVISION     TRAFFIC TYPE     PROGRAMMED\n"
                   "reviews-svc-waypoint        default      none             True\n"
                   "reviews-v2-pod-waypoint     default      workload         True\n"
                   "waypoint                    default      none             True\n"), out

    step("wpctl waypoint delete --all -n default; kubectl label ns default istio.io/use-waypoint-")
    t0 = now_ns()
    r = wpctl(api, "waypoint", "delete", "--all", "-n", "default")
    ok(r)
    lag = lag_to_workers(wp, t0, lambda r: r["gw_names"] == ["other/wp"] and r["dests"] == 2,
                         "the default waypoints gone from the workers")
    r = kubectl(api, "label", "ns", "default", "istio.io/use-waypoint-")
    assert r.stdout in ("namespace/default labeled\n", "namespace/default unlabeled\n"), r.stdout
    e = wait_for(lambda: (lambda e: e if e[("Service", "default/productpage")]["reason"] == "NoWaypoint" else None)(
        enrollment(wp)), 3, what="productpage back to NoWaypoint")
    assert e[("Service", "default/productpage")]["waypoint"] is None, e[("Service", "default/productpage")]
    step("    withdrawn from every worker %.0f ms after the change reached the API server" % (lag * 1000))


def phase_reliability(wp):
    api = wp.api
    step("API server restart (connections dropped, refused for 2 s): reconnects, nothing lost")
    v0 = wp.snapshot(0)["version"]
    api.control("requests", clear=True)
    api.control("down", seconds=2)
    time.sleep(2.5)
    t0 = now_ns()
    r = kubectl(api, "label", "pod", "-n", "other", "echo-1", "istio.io/use-waypoint=none")
    assert r.stdout == "pod/echo-1 labeled\n", r.stdout
    # the watch is back after the backoff (<= backoff_max 1 s): the change lands
    row = wp.wait_snapshot(lambda r: r["dests"] == 1, timeout=5, what="echo-1 opted out")
    assert row["version"] > v0
    step("    change after the restart in the workers after %.0f ms" % ((row["seen_ns"] - t0) / 1e6))
    reqs = [r["path"] for r in api.control("requests")["requests"]]
    assert any("watch=1" in p and "/pods" in p for p in reqs), reqs

    step("an object deleted while history is compacted (410 Gone): relist finds it gone")
    api.control("vanish", kind="pods", namespace="other", name="echo-2")
    row = wp.wait_snapshot(lambda r: r["dests"] == 0, timeout=5, what="echo-2 gone after relist")
    assert wp.gateways()["other/wp"] == (0, 0), wp.gateways()
    assert wp.alive()


def main():
    name = "wpt-k8s-app-%d" % os.getpid()
    sets = ["cluster.manifest_dir=", "cluster.gateway_class=waypointd",
            # the served list: other/wp by name (the shipped file lists three)
            "cluster.gateways.[0]=other/wp", "cluster.gateways.[1]=other/wp", "cluster.gateways.[2]=other/wp",
            "kubernetes.sync_wait_ms=1500", "kubernetes.backoff_base_ms=100", "kubernetes.backoff_max_ms=1000"]
    wp = Appliance(name, sets=sets, workers=int(os.environ.get("WP_WORKERS", "2")))
    failed = False
    try:
        for phase in (phase_first_sync, phase_seed, phase_reliability):
            t = time.monotonic()
            print("%s" % phase.__name__, flush=True)
            phase(wp)
            print("ok   %s (%.1fs)" % (phase.__name__, time.monotonic() - t), flush=True)
    except Exception:
        import traceback
        traceback.print_exc()
        failed = True
        print("--- waypointd log (tail):\n" + "".join(wp.log_text().splitlines(True)[-30:]))
    finally:
        wp.close()
    if failed:
        sys.exit(1)
    print("all phases passed")


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: needs root")
        sys.exit(77)
    main()
