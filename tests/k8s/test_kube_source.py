#!/usr/bin/python3
"""The Kubernetes list/watch source (cp/kube/kube_source.c) against the fake
API server, through tests/k8s/kube_source_probe (a sink that prints events):
initial paged sync and no publication before it, label changes within a
second, watch reliability (410 mid-stream, API server restart, 429/500, a
rotated token, a cleanly ended watch), every kind back at once after a late
or long-gone API server (issue 21), bounded watch lines and LIST pages
(issue 19) and the Gateway status writer, with the WaypointAccepted
condition of AuthorizationPolicies bound to the appliance's Gateways."""

import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakeapi import KINDS  # noqa: E402

# what the source lists and watches: every kind the fake server serves but
# the Lease, which leader election reads and writes by name, and the
# WorkloadEntry, which membership writes
WATCHED = [k for k in KINDS if k[2] not in ("Lease", "WorkloadEntry")]
from harness import FakeAPI, Failures, kubectl, wait_for, wpctl  # noqa: E402

PROBE = os.environ.get("KUBE_SOURCE_PROBE") or os.path.join(os.environ.get("WP_BUILD_DIR", ""),
                                                            "tests/k8s/kube_source_probe")
GWS = "/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways"


class Probe:
    def __init__(self, api, *args, kubeconfig=None):
        env = dict(os.environ, KUBECONFIG=kubeconfig or api.kubeconfig, HOME=api.dir)
        env.pop("KUBERNETES_SERVICE_HOST", None)
        self.proc = subprocess.Popen([PROBE, "--backoff", "0.2,1"] + list(args), env=env, stdout=subprocess.PIPE,
                                     stderr=open(os.path.join(api.dir, "probe.err"), "w"), text=True)
        self.lines = []
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append((time.monotonic(), line.rstrip("\n")))

    def all(self):
        with self.lock:
            return [l for _, l in self.lines]

    def find(self, prefix, after=0):
        with self.lock:
            for t, l in self.lines[after:]:
                if l.startswith(prefix):
                    return t, l
        return None

    def wait(self, prefix, timeout=5.0, after=0):
        return wait_for(lambda: self.find(prefix, after), timeout, what="probe line %r; got %s" % (
            prefix, self.all()[-20:]))

    def mark(self):
        with self.lock:
            return len(self.lines)

    def counters(self):
        n = self.mark()
        self.proc.send_signal(signal.SIGUSR1)
        _, line = self.wait("COUNTERS", after=n)
        return {k: int(v) if v.isdigit() else v for k, v in (f.split("=") for f in line.split()[1:])}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("probe did not stop on SIGTERM")
        self.t.join(5)
        assert self.proc.returncode == 0, "probe exit %d" % self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def seed(api, pods=5):
    api.create({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "default", "labels": {"istio.io/dataplane-mode": "ambient"}}})
    api.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "reviews", "namespace": "default"},
                "spec": {"clusterIP": "198.19.0.10", "ports": [{"port": 9080, "name": "http"}],
                         "selector": {"app": "reviews"}}})
    for i in range(pods):
        api.create({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "p%d" % i, "namespace": "default", "labels": {"app": "reviews"}},
                    "status": {"podIP": "198.18.1.%d" % (10 + i), "podIPs": [{"ip": "198.18.1.%d" % (10 + i)}]}})


def add_pod(api, name):
    api.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}})


def test_initial_sync_is_paged_and_gates_publication():
    with FakeAPI() as api:
        seed(api, pods=5)
        api.create({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                    "metadata": {"name": "waypointd"}, "spec": {"controllerName": "waypointd.io/controller"}})
        api.control("requests", clear=True)
        # GatewayClass lists fail for a while: nothing may be published.
        api.control("fail", count=4, code=500, match="gatewayclasses?limit")
        with Probe(api, "--limit", "2") as p:
            p.wait("SYNCED", timeout=15)
            lines = p.all()
            synced = lines.index("SYNCED kubernetes")
            ups = [l for l in lines if l.startswith("UPSERT")]
            assert len(ups) == 8, lines
            assert lines.index([l for l in lines if l.startswith("UPSERT GatewayClass")][0]) < synced
            assert all(lines.index(u) < synced for u in ups)
            reqs = [r["path"] for r in api.control("requests")["requests"]]
            pod_lists = [r for r in reqs if r.startswith("/api/v1/pods?limit=2")]
            assert len(pod_lists) == 3 and sum("continue=" in r for r in pod_lists) == 2, pod_lists
            assert sum(r.startswith("/apis/gateway.networking.k8s.io/v1/gatewayclasses?limit") for r in reqs) == 5
            c = p.counters()
            assert c["KUBE_HTTP_RETRYABLE"] >= 4, c


def test_telemetry_crd_absent_or_v1alpha1():
    """telemetries.telemetry.istio.io is optional: served as v1alpha1 only
    (Istio before 1.22), the source reads that version; served in neither,
    the first sync still completes, the kind is not lagging, and it is asked
    for again after a backoff."""
    with FakeAPI(serve=["telemetry.istio.io/telemetries=v1alpha1"]) as api:
        seed(api)
        api.api("POST", "/apis/telemetry.istio.io/v1alpha1/namespaces/default/telemetries",
                {"apiVersion": "telemetry.istio.io/v1alpha1", "kind": "Telemetry",
                 "metadata": {"name": "mesh", "namespace": "default"}, "spec": {}})
        with Probe(api) as p:
            p.wait("SYNCED", timeout=10)
            assert any(l.startswith("UPSERT Telemetry default/mesh ") for l in p.all()), p.all()
    with FakeAPI(serve=["telemetry.istio.io/telemetries=none"]) as api:
        seed(api)
        with Probe(api) as p:
            p.wait("SYNCED", timeout=10)
            assert p.counters()["lagging"] == 0, p.counters()
            n = lambda: sum("/telemetry.istio.io/" in r["path"]
                            for r in api.control("requests")["requests"])
            before = n()
            wait_for(lambda: n() > before, 5, what="telemetries asked for again")
            assert "served neither as v1 nor as v1alpha1" in probe_log(api), probe_log(api)


def test_label_change_within_a_second():
    with FakeAPI() as api:
        seed(api)
        with Probe(api) as p:
            p.wait("SYNCED")
            m = p.mark()
            t0 = time.monotonic()
            kubectl(api, "label", "ns", "default", "istio.io/use-waypoint=waypoint")
            t, line = p.wait("UPSERT Namespace /default", after=m)
            assert line.endswith("use-waypoint=waypoint"), line
            assert t - t0 < 1.0, t - t0
            m = p.mark()
            t0 = time.monotonic()
            kubectl(api, "label", "service", "reviews", "istio.io/use-waypoint=reviews-svc-waypoint")
            t, line = p.wait("UPSERT Service default/reviews", after=m)
            assert line.endswith("use-waypoint=reviews-svc-waypoint") and t - t0 < 1.0, (line, t - t0)
            m = p.mark()
            kubectl(api, "label", "ns", "default", "istio.io/use-waypoint-")
            _, line = p.wait("UPSERT Namespace /default", after=m)
            assert line.endswith("use-waypoint=-"), line


def test_410_mid_stream_relists_and_deletes_what_vanished():
    with FakeAPI() as api:
        seed(api, pods=3)
        with Probe(api) as p:
            p.wait("SYNCED")
            m = p.mark()
            api.control("vanish", kind="pods", namespace="default", name="p1")
            p.wait("DELETE Pod default/p1", after=m)
            add_pod(api, "after")
            p.wait("UPSERT Pod default/after", after=m)
            # Unchanged objects are not delivered again by the relist.
            assert not p.find("UPSERT Pod default/p0", after=m), p.all()
            c = p.counters()
            assert c["KUBE_WATCH_EXPIRED"] >= 1, c


def test_plain_expire_relists():
    with FakeAPI() as api:
        seed(api, pods=1)
        with Probe(api) as p:
            p.wait("SYNCED")
            api.control("requests", clear=True)
            api.control("expire")
            wait_for(lambda: any(r["path"].startswith("/api/v1/pods?limit")
                                 for r in api.control("requests")["requests"]), 5, what="relist")
            m = p.mark()
            add_pod(api, "x")
            p.wait("UPSERT Pod default/x", after=m)


def test_api_server_restart():
    with FakeAPI() as api:
        seed(api, pods=2)
        with Probe(api) as p:
            p.wait("SYNCED")
            m = p.mark()
            api.control("down", seconds=2)
            time.sleep(2.2)
            add_pod(api, "back")
            p.wait("UPSERT Pod default/back", timeout=8, after=m)
            c = p.counters()
            assert c["KUBE_WATCH_BROKEN"] + c["KUBE_TRANSPORT_ERROR"] >= 1, c
            assert p.all().count("SYNCED kubernetes") == 1


def probe_log(api):
    with open(os.path.join(api.dir, "probe.err")) as f:
        return f.read()


def test_late_api_server_every_kind_at_once():
    """The API server answers only after every kind is deep in its backoff
    (0.8 s doubling to 30 s): the first answer (the /version probe's) sends
    every kind back at once, so the sync follows within 2 s, not one kind at
    a time over the backoff."""
    with FakeAPI() as api:
        seed(api, pods=2)
        t_up = time.monotonic() + 9.0
        api.control("down", seconds=9.0)
        with Probe(api, "--backoff", "0.8,30") as p:
            time.sleep(1.0)
            assert p.counters()["lagging"] == len(WATCHED)  # every kind
            t, _ = p.wait("SYNCED", timeout=25)
            assert t > t_up, (t, t_up)
            assert t - t_up < 2.0, "first full sync %.2f s after the API server answered" % (t - t_up)
            c = p.counters()
            assert c["KUBE_RECONNECTED"] >= 1 and c["lagging"] == 0, c
            assert "API server answering again" in probe_log(api)


def test_long_outage_every_kind_back_at_once():
    """Mid-run, the API server is gone for longer than the longest backoff: every
    kind says it is retrying meanwhile, and all are watching again within 2 s
    of its return (a change made then arrives)."""
    with FakeAPI() as api:
        seed(api, pods=2)
        with Probe(api, "--backoff", "0.8,8") as p:
            p.wait("SYNCED")
            assert p.counters()["lagging"] == 0
            m = p.mark()
            t_up = time.monotonic() + 10.0
            api.control("down", seconds=10.0)
            time.sleep(1.0)
            assert p.counters()["lagging"] == len(WATCHED)  # every kind
            time.sleep(t_up - time.monotonic() + 0.05)
            add_pod(api, "back")
            t, _ = p.wait("UPSERT Pod default/back", timeout=10, after=m)
            assert t - t_up < 2.0, "a change after the outage arrived %.2f s after the return" % (t - t_up)
            wait_for(lambda: p.counters()["lagging"] == 0, max(0.1, t_up + 2.0 - time.monotonic()),
                     interval=0.1, what="every kind watching again within 2 s")
            assert p.counters()["KUBE_RECONNECTED"] >= 1


def big_pod(name, size):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "annotations": {"blob": "x" * size}}}


def test_oversized_watch_event_relists():
    """A watch event longer than max_event_bytes is dropped with a log line
    naming the kind and the limit, counted, and the kind relists (the object
    arrives with the list, whose page bound is larger)."""
    with FakeAPI() as api:
        seed(api, pods=1)
        with Probe(api, "--max-event", "16384", "--max-list", "1048576") as p:
            p.wait("SYNCED")
            m = p.mark()
            api.control("requests", clear=True)
            api.create(big_pod("big", 40000))
            p.wait("UPSERT Pod default/big", after=m)
            c = p.counters()
            assert c["KUBE_EVENT_TOO_BIG"] == 1, c
            reqs = [r["path"] for r in api.control("requests")["requests"]]
            assert any(r.startswith("/api/v1/pods?limit") for r in reqs), reqs
            assert ("kube: watch of Pod: an event longer than 16384 bytes (kubernetes.max_event_bytes) "
                    "dropped; relisting") in probe_log(api)
            add_pod(api, "small")  # the watch goes on after the relist
            p.wait("UPSERT Pod default/small", after=m)


def test_oversized_list_page_retries():
    """A LIST page longer than max_list_bytes fails the list (logged with the
    kind and the limit, counted) and it is retried: nothing syncs until the
    page fits."""
    with FakeAPI() as api:
        seed(api, pods=0)
        for i in range(3):
            api.create(big_pod("big%d" % i, 30000))
        with Probe(api, "--max-event", "65536", "--max-list", "65536") as p:
            msg = ("kube: LIST of Pod: a page longer than 65536 bytes (kubernetes.max_list_bytes); "
                   "relisting after a backoff\n")
            wait_for(lambda: probe_log(api).count(msg) >= 2, 10, interval=0.2, what="two refused pages")
            assert p.counters()["KUBE_BODY_TOO_BIG"] >= 2
            assert not p.find("SYNCED"), p.all()
            assert api.api("DELETE", "/api/v1/namespaces/default/pods/big0")[0] == 200
            p.wait("SYNCED", timeout=10)
            assert p.find("UPSERT Pod default/big1") and not p.find("UPSERT Pod default/big0")


def test_429_and_500():
    with FakeAPI() as api:
        seed(api, pods=1)
        with Probe(api, "--watch-timeout", "1") as p:
            p.wait("SYNCED")
            m = p.mark()
            t0 = time.monotonic()
            api.control("fail", count=3, code=429, match="/api/v1/pods?", retry_after=1)
            wait_for(lambda: p.counters()["KUBE_HTTP_RETRYABLE"] >= 3, 10, interval=0.2, what="three 429s")
            # Retry-After: 1 was honoured between the 429s.
            assert time.monotonic() - t0 >= 2.0
            api.control("fail", count=2, code=500, match="/api/v1/pods?")
            wait_for(lambda: p.counters()["KUBE_HTTP_RETRYABLE"] >= 5, 10, interval=0.2, what="two 500s")
            add_pod(api, "late")
            p.wait("UPSERT Pod default/late", timeout=10, after=m)


def test_rotated_token():
    with FakeAPI() as api:
        seed(api, pods=1)
        kc = os.path.join(api.dir, "kc-tokfile")
        api.write_kubeconfig(kc, user="    tokenFile: token\n")
        with Probe(api, kubeconfig=kc) as p:
            p.wait("SYNCED")
            m = p.mark()
            with open(api.token_file + ".new", "w") as f:
                f.write("rotated-token\n")
            os.rename(api.token_file + ".new", api.token_file)
            api.control("token", token="rotated-token")
            api.token = "rotated-token"
            api.control("close-watches")
            add_pod(api, "rot")
            p.wait("UPSERT Pod default/rot", timeout=8, after=m)
            c = p.counters()
            assert c["KUBE_TOKEN_RELOADED"] >= 1, c


def test_clean_watch_end_rewatches_from_last_version():
    with FakeAPI() as api:
        seed(api, pods=1)
        with Probe(api, "--watch-timeout", "1") as p:
            p.wait("SYNCED")
            api.control("requests", clear=True)

            def pod_watches():
                return [r["path"] for r in api.control("requests")["requests"]
                        if r["path"].startswith("/api/v1/pods?watch=1")]
            # each watch ends after 1 s: two more begin within about 2 s of
            # the clear, wherever in its second the watch then open was
            wait_for(lambda: len(pod_watches()) >= 2, 10, interval=0.1, what="two pod watches")
            m = p.mark()
            add_pod(api, "w")
            p.wait("UPSERT Pod default/w", after=m)
            reqs = [r["path"] for r in api.control("requests")["requests"]]
            watches = pod_watches()
            assert len(watches) >= 2 and all("resourceVersion=" in w for w in watches), watches
            assert not any(r.startswith("/api/v1/pods?limit") for r in reqs), reqs
            c = p.counters()
            assert c["KUBE_WATCH_CLOSED"] >= 2, c


def gw_status(api, name):
    code, gw = api.api("GET", GWS + "/" + name)
    return gw.get("status", {}) if code == 200 else None


def cond(st, typ):
    return next((c for c in st.get("conditions", []) if c["type"] == typ), None)


def writer_idle(p):
    """The sync point for "no status written": the status writer has nothing
    left to write (objects delivered before this were handed to it first)."""
    wait_for(lambda: p.counters()["status_pending"] == 0, 5, interval=0.05, what="status writer idle")


def test_gateway_status_for_own_class():
    with FakeAPI() as api:
        seed(api)
        r = kubectl(api, "apply", "-f", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                     "../../deploy/gatewayclass.yaml"))
        assert r.stdout == "gatewayclass.gateway.networking.k8s.io/waypointd created\n", r.stdout
        with Probe(api, "--status") as p:
            p.wait("SYNCED")
            r = wpctl(api, "waypoint", "apply", "-n", "default", "--class", "waypointd", "--wait")
            assert r.returncode == 0 and r.stdout == ("✅ waypoint default/waypoint applied\n"
                                                      "✅ waypoint default/waypoint is ready!\n"), r.stdout + r.stderr
            st = gw_status(api, "waypoint")
            assert st["addresses"] == [{"type": "Hostname", "value": "waypointd.default.svc.cluster.local"}], st
            assert cond(st, "Accepted")["status"] == "True" and cond(st, "Programmed")["observedGeneration"] == 1
            assert st["listeners"][0]["name"] == "mesh" and st["listeners"][0]["attachedRoutes"] == 0
            code, gc = api.api("GET", "/apis/gateway.networking.k8s.io/v1/gatewayclasses/waypointd")
            assert cond(gc["status"], "Accepted")["status"] == "True"
            # Someone else's condition survives our next write.
            code, gw = api.api("GET", GWS + "/waypoint")
            gw["status"]["conditions"].append({"type": "example.com/Audited", "status": "True", "reason": "Ok",
                                               "message": "", "lastTransitionTime": "2024-01-01T00:00:00Z"})
            assert api.api("PUT", GWS + "/waypoint/status", gw)[0] == 200
            r = wpctl(api, "waypoint", "apply", "-n", "default", "--class", "waypointd", "--for", "all")
            assert r.returncode == 0
            code, gw = api.api("GET", GWS + "/waypoint")
            assert gw["metadata"]["generation"] == 1  # labels are metadata
            api.api("PATCH", GWS + "/waypoint", {"spec": {"listeners": [
                {"name": "mesh", "port": 15008, "protocol": "HBONE"},
                {"name": "extra", "port": 15009, "protocol": "HBONE"}]}}, ctype="application/merge-patch+json")
            wait_for(lambda: (cond(gw_status(api, "waypoint"), "Programmed") or {}).get("observedGeneration") == 2,
                     5, what="observedGeneration 2")
            st = gw_status(api, "waypoint")
            assert cond(st, "example.com/Audited") is not None, st
            assert [l["name"] for l in st["listeners"]] == ["mesh", "extra"]
            # istio-waypoint Gateways are istiod's when not standalone: once
            # the source delivered it and the writer is idle, nothing was written.
            m = p.mark()
            assert wpctl(api, "waypoint", "apply", "-n", "default", "--name", "istio-one").returncode == 0
            p.wait("UPSERT Gateway default/istio-one", after=m)
            writer_idle(p)
            assert gw_status(api, "istio-one") == {}
            writes = p.counters()["status_writes"]
            time.sleep(1.0)
            assert p.counters()["status_writes"] == writes  # no write loop


def test_gateway_status_standalone_and_manual_deployment():
    with FakeAPI() as api:
        seed(api)
        api.create({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                    "metadata": {"name": "manual", "namespace": "default"},
                    "spec": {"gatewayClassName": "istio-waypoint",
                             "addresses": [{"type": "Hostname", "value": "wp.default.svc.cluster.local"}],
                             "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}})
        with Probe(api, "--status", "--standalone", "--ip", "198.18.0.2") as p:
            p.wait("SYNCED")
            r = wpctl(api, "waypoint", "apply", "-n", "default", "--wait", "--waypoint-timeout", "10s")
            assert r.returncode == 0, r.stdout + r.stderr
            st = gw_status(api, "waypoint")
            assert st["addresses"] == [{"type": "IPAddress", "value": "198.18.0.2"}], st
            writer_idle(p)  # manual was listed before SYNCED
            assert gw_status(api, "manual") == {}
            r = wpctl(api, "waypoint", "list")
            assert r.stdout.split("\n")[1].split() == ["manual", "default", "none", "False"], r.stdout
            assert r.stdout.split("\n")[2].split() == ["waypoint", "default", "none", "True"], r.stdout


APS = "/apis/security.istio.io/v1/namespaces/default/authorizationpolicies"


def ap_status(api, name):
    code, ap = api.api("GET", APS + "/" + name)
    return ap.get("status", {}) if code == 200 else None


def policy(name, refs):
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"targetRefs": refs, "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}}


def test_authorization_policy_waypoint_accepted():
    """As istiod writes it for its waypoints: True, Accepted, "bound to
    NS/NAME", observedGeneration (a string, as istiod's protobuf JSON) for a
    policy bound to our Gateway; False, TargetNotFound once the Gateway is
    deleted; nothing on policies that are istiod's (its Gateway, a Service)."""
    gw_ref = {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "waypoint"}
    with FakeAPI() as api:
        seed(api)
        kubectl(api, "apply", "-f", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "../../deploy/gatewayclass.yaml"))
        with Probe(api, "--status") as p:
            p.wait("SYNCED")
            # a policy that arrives before its Gateway is bound once the Gateway is there
            api.create(policy("deny-admin", [gw_ref]))
            api.create(policy("istio-only", [dict(gw_ref, name="istio-one")]))
            api.create(policy("svc-only", [{"kind": "Service", "group": "", "name": "reviews"}]))
            assert wpctl(api, "waypoint", "apply", "-n", "default", "--class", "waypointd",
                         "--wait").returncode == 0
            assert wpctl(api, "waypoint", "apply", "-n", "default", "--name", "istio-one").returncode == 0
            wait_for(lambda: cond(ap_status(api, "deny-admin"), "WaypointAccepted"), 5, what="WaypointAccepted")
            c = cond(ap_status(api, "deny-admin"), "WaypointAccepted")
            assert {k: v for k, v in c.items() if k != "lastTransitionTime"} == {
                "type": "WaypointAccepted", "status": "True", "reason": "Accepted",
                "message": "bound to default/waypoint", "observedGeneration": "1"}, c
            assert c["lastTransitionTime"].endswith("Z"), c
            # istiod's conditions on the same policy stay
            code, ap = api.api("GET", APS + "/deny-admin")
            ap["status"]["conditions"].insert(0, {"type": "ZtunnelAccepted", "status": "False",
                                                  "reason": "UnsupportedValue", "message": "x"})
            assert api.api("PUT", APS + "/deny-admin/status", ap)[0] == 200
            # a spec change: the new generation is observed
            api.api("PATCH", APS + "/deny-admin", {"spec": {"action": "AUDIT"}},
                    ctype="application/merge-patch+json")
            wait_for(lambda: (cond(ap_status(api, "deny-admin"), "WaypointAccepted") or {}).get(
                "observedGeneration") == "2", 5, what="observedGeneration 2")
            assert cond(ap_status(api, "deny-admin"), "ZtunnelAccepted")["reason"] == "UnsupportedValue"
            writer_idle(p)
            assert ap_status(api, "istio-only") == {} and ap_status(api, "svc-only") == {}
            # the Gateway goes: False, TargetNotFound
            assert api.api("DELETE", GWS + "/waypoint")[0] == 200
            wait_for(lambda: cond(ap_status(api, "deny-admin"), "WaypointAccepted")["status"] == "False", 5,
                     what="WaypointAccepted False")
            c = cond(ap_status(api, "deny-admin"), "WaypointAccepted")
            assert (c["reason"], c["message"], c["observedGeneration"]) == ("TargetNotFound", "not bound", "2"), c
            # and back
            assert wpctl(api, "waypoint", "apply", "-n", "default", "--class", "waypointd").returncode == 0
            wait_for(lambda: cond(ap_status(api, "deny-admin"), "WaypointAccepted")["status"] == "True", 5,
                     what="WaypointAccepted True again")
            writer_idle(p)
            writes = p.counters()["status_writes"]
            time.sleep(1.0)
            assert p.counters()["status_writes"] == writes  # no write loop


def test_service_policy_waypoint_accepted():
    """A policy on a Service follows the published snapshot's enrollment (the
    probe feeds a resolver and hands the source each snapshot, as the control
    plane does): True while the Service is bound to our waypoint, then False,
    AncestorNotBound when its label goes, TargetNotFound when it goes."""
    svc = "/api/v1/namespaces/default/services/reviews"
    with FakeAPI() as api:
        seed(api)
        kubectl(api, "apply", "-f", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "../../deploy/gatewayclass.yaml"))
        with Probe(api, "--status", "--resolve", "waypointd") as p:
            p.wait("SYNCED")
            assert wpctl(api, "waypoint", "apply", "-n", "default", "--class", "waypointd",
                         "--wait").returncode == 0
            api.create(policy("reviews", [{"kind": "Service", "group": "", "name": "reviews"}]))
            writer_idle(p)
            assert ap_status(api, "reviews") == {}  # not bound to a waypoint yet
            api.api("PATCH", svc, {"metadata": {"labels": {"istio.io/use-waypoint": "waypoint"}}},
                    ctype="application/merge-patch+json")
            wait_for(lambda: (cond(ap_status(api, "reviews"), "WaypointAccepted") or {}).get("status") == "True",
                     5, what="WaypointAccepted True")
            c = cond(ap_status(api, "reviews"), "WaypointAccepted")
            assert (c["reason"], c["message"], c["observedGeneration"]) == (
                "Accepted", "bound to default/waypoint", "1"), c
            api.api("PATCH", svc, {"metadata": {"labels": {"istio.io/use-waypoint": None}}},
                    ctype="application/merge-patch+json")
            wait_for(lambda: cond(ap_status(api, "reviews"), "WaypointAccepted")["status"] == "False", 5,
                     what="WaypointAccepted False")
            c = cond(ap_status(api, "reviews"), "WaypointAccepted")
            assert (c["reason"], c["message"]) == (
                "AncestorNotBound", "Service default/reviews is not bound to a waypoint"), c
            assert api.api("DELETE", svc)[0] == 200
            wait_for(lambda: cond(ap_status(api, "reviews"), "WaypointAccepted")["reason"] == "TargetNotFound", 5,
                     what="TargetNotFound")
            assert cond(ap_status(api, "reviews"), "WaypointAccepted")["message"] == \
                "Service default/reviews was not found"


if __name__ == "__main__":
    Failures().run(globals(), only=sys.argv[1:] or None)
