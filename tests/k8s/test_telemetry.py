#!/usr/bin/python3
"""Issue 14, acceptance 2 (the Telemetry part, Kubernetes mode): the real
waypointd in a testbed namespace reads telemetry.istio.io Telemetries from
the fake API server on that namespace's loopback, which serves them as
v1alpha1 only (an Istio older than 1.22), and its access log follows them:

  1. the list of telemetries.telemetry.istio.io/v1 answers 404 and the
     source reads v1alpha1 instead; the first sync completes;
  2. no access_log.file and no Telemetry: HTTP requests through the
     waypoint write no access-log line;
  3. a Telemetry created through the API server, targeting the waypoint
     Gateway with the envoy provider: /config_dump shows accessLog on and
     each request writes one line to waypointd's stdout;
  4. deleted: accessLog back to the configuration (off), no line; created
     again with disabled: true: accessLog off, no line.

Needs root (network namespace, DPDK TAP); suite 'integration'.
Run: WP_BUILD_DIR=build /usr/bin/python3 tests/k8s/test_telemetry.py
"""

import os
import subprocess
import sys
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from appliance import ROOT, Appliance  # noqa: E402
from harness import wait_for  # noqa: E402

PY = "/usr/bin/python3"
TEL = "/apis/telemetry.istio.io/v1alpha1/namespaces/default/telemetries"


def cluster():
    """default enrolled to default/waypoint (istio-waypoint, served by
    class), details on 198.19.0.11:9080 with one pod at 198.18.1.11."""
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "default", "labels": {"istio.io/use-waypoint": "waypoint"}}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
         "metadata": {"name": "istio-waypoint"}, "spec": {"controllerName": "istio.io/mesh-controller"}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
         "metadata": {"name": "waypoint", "namespace": "default", "labels": {"istio.io/waypoint-for": "service"}},
         "spec": {"gatewayClassName": "istio-waypoint",
                  "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "details", "namespace": "default", "labels": {"app": "details"}},
         "spec": {"clusterIP": "198.19.0.11", "clusterIPs": ["198.19.0.11"], "selector": {"app": "details"},
                  "ports": [{"name": "http", "port": 9080, "targetPort": 9080}]}},
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "details-1", "namespace": "default", "labels": {"app": "details"}},
         "spec": {"serviceAccountName": "details", "nodeName": "node-1",
                  "containers": [{"name": "app", "image": "example", "ports": [{"containerPort": 9080}]}]},
         "status": {"phase": "Running", "podIP": "198.18.1.11", "podIPs": [{"ip": "198.18.1.11"}],
                    "conditions": [{"type": "Ready", "status": "True"}]}},
    ]


def telemetry(disabled=False):
    entry = {"providers": [{"name": "envoy"}]}
    if disabled:
        entry["disabled"] = True
    return {"apiVersion": "telemetry.istio.io/v1alpha1", "kind": "Telemetry",
            "metadata": {"name": "waypoint-logs", "namespace": "default"},
            "spec": {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "waypoint"},
                     "accessLogging": [entry]}}


def step(msg):
    print("  - " + msg, flush=True)


def run(wp, pki):
    path = os.path.join(wp.dir, "cluster.yaml")
    with open(path, "w") as f:
        yaml.safe_dump_all(cluster(), f)
    api = wp.start_api(load=[path], serve=["telemetry.istio.io/telemetries=v1alpha1"])
    addr = wp.vars["WP_IP"] + ":15008"

    step("telemetries: v1 not served (404), v1alpha1 read instead; first sync done")
    wait_for(lambda: wp.admin("/healthz/ready")[0] == 200, 20, what="ready")
    reqs = [r["path"] for r in api.control("requests")["requests"]]
    assert any(p.startswith("/apis/telemetry.istio.io/v1/telemetries") for p in reqs), reqs
    assert any(p.startswith("/apis/telemetry.istio.io/v1alpha1/telemetries") and "watch=1" in p
               for p in reqs), reqs

    # the pod's address on the namespace's loopback (the testbed adds those of
    # manifest pods only), reached by the appliance through the TAP
    subprocess.run(["ip", "addr", "add", "198.18.1.11/32", "dev", "lo"], check=True)
    backend = subprocess.Popen([PY, os.path.join(ROOT, "tests/integration/l7_backend.py"), "--bind",
                                "198.18.1.11:9080", "--name", "details", "--version", "v1"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = backend.stdout.readline()
        assert "listening" in first, first
        _traffic(wp, api, pki, addr)
    finally:
        backend.kill()
        backend.wait()


def _traffic(wp, api, pki, addr):
    def get(p, n):
        r = subprocess.run([PY, os.path.join(ROOT, "tests/integration/l7_http.py"), "get", "--addr", addr,
                            "--certs", pki, "--authority", "198.19.0.11:9080", "--host", "details:9080",
                            "--path", p, "--n", str(n)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, "GET %s: %s%s" % (p, r.stdout, r.stderr)

    def lines(p):
        return sum('"GET %s HTTP/1.1" 200 ' % p in ln for ln in wp.log_text().splitlines())

    def access_log():
        d = wp.admin_json("/config_dump")
        (g,) = [g for g in d["snapshot"]["gateways"] if g["name"] == "waypoint"]
        return g["telemetry"]["accessLog"]

    wait_for(lambda: subprocess.run([PY, os.path.join(ROOT, "tests/integration/l7_http.py"), "get", "--addr",
                                     addr, "--certs", pki, "--authority", "198.19.0.11:9080", "--path", "/",
                                     "--n", "1"], capture_output=True, timeout=30).returncode == 0,
             20, what="details reachable through the waypoint")

    step("no access_log.file, no Telemetry: no line")
    get("/before", 2)
    time.sleep(0.3)
    assert lines("/before") == 0, wp.log_text()
    assert access_log() == "config"

    step("Telemetry (v1alpha1, targetRef to the waypoint, provider envoy) created: one line per request")
    code, out = api.api("POST", TEL, telemetry())
    assert code in (200, 201), (code, out)
    wait_for(lambda: access_log() == "on", 10, what="accessLog on")
    get("/on", 3)
    wait_for(lambda: lines("/on") == 3, 5, what="3 lines for /on")
    time.sleep(0.3)
    assert lines("/on") == 3, lines("/on")

    step("deleted: back to the configuration (off); created again disabled: off")
    code, out = api.api("DELETE", TEL + "/waypoint-logs")
    assert code == 200, (code, out)
    wait_for(lambda: access_log() == "config", 10, what="accessLog config")
    get("/deleted", 1)
    code, out = api.api("POST", TEL, telemetry(disabled=True))
    assert code in (200, 201), (code, out)
    wait_for(lambda: access_log() == "off", 10, what="accessLog off")
    get("/off", 2)
    time.sleep(0.5)
    assert lines("/deleted") == 0 and lines("/off") == 0, wp.log_text()
    assert lines("/on") == 3
    assert wp.alive()


def main():
    name = "wpt-k8s-tel-%d" % os.getpid()
    sets = ["cluster.manifest_dir=", "cluster.gateway_class=istio-waypoint",
            "kubernetes.sync_wait_ms=1500", "kubernetes.backoff_base_ms=100", "kubernetes.backoff_max_ms=1000"]
    pki_dir = None
    failed = False
    wp = None
    try:
        import tempfile
        pki_dir = tempfile.mkdtemp(prefix="wp-k8s-tel-")
        pki = os.path.join(pki_dir, "pki")
        subprocess.run([os.path.join(ROOT, "tests/pki/mkpki.sh"), pki], check=True, capture_output=True)
        wp = Appliance(name, sets=sets, args=["--certs", pki])
        run(wp, pki)
    except Exception:
        import traceback
        traceback.print_exc()
        failed = True
        if wp:
            print("--- waypointd log (tail):\n" + "".join(wp.log_text().splitlines(True)[-30:]))
    finally:
        if wp:
            wp.close()
        if pki_dir:
            subprocess.run(["rm", "-rf", pki_dir])
    if failed:
        sys.exit(1)
    print("PASS: Telemetry through the API server (v1alpha1) turns the access log on and off")


if __name__ == "__main__":
    main()
