#!/usr/bin/python3
"""wpctl waypoint against the fake API server: the seed's walk-through
(generate, apply, --enroll-namespace, kubectl label, delete --all), list,
status, --wait, and istioctl's error texts. Run: test_wpctl.py (WPCTL or
WP_BUILD_DIR must locate wpctl)."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FakeAPI, Failures, kubectl, wpctl  # noqa: E402

SEED_GATEWAY = """apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  labels:
    istio.io/waypoint-for: service
  name: waypoint
  namespace: default
spec:
  gatewayClassName: istio-waypoint
  listeners:
  - name: mesh
    port: 15008
    protocol: HBONE
"""

GW = "/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways"


def bookinfo(api, ambient=True):
    labels = {"istio.io/dataplane-mode": "ambient"} if ambient else {}
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default", "labels": labels}})
    api.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "reviews", "namespace": "default"},
                "spec": {"ports": [{"port": 9080, "name": "http"}], "selector": {"app": "reviews"}}})
    for v, h in (("v1", "7d8c5f8f9-abcde"), ("v2", "5b667bcbf8-spnnh")):
        api.create({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "reviews-%s-%s" % (v, h), "namespace": "default",
                                 "labels": {"app": "reviews", "version": v}}})


def ok(r, out=None):
    assert r.returncode == 0, "exit %d: %s%s" % (r.returncode, r.stdout, r.stderr)
    if out is not None:
        assert r.stdout == out, "stdout:\n%r\nwanted:\n%r" % (r.stdout, out)


def err(r, text):
    assert r.returncode != 0, "unexpected success: " + r.stdout
    assert r.stderr == "Error: " + text + "\n", "stderr %r, wanted %r" % (r.stderr, text)


def get_gw(api, name):
    code, obj = api.api("GET", GW + "/" + name)
    return obj if code == 200 else None


def test_generate_is_the_seed():
    with FakeAPI() as api:
        ok(wpctl(api, "waypoint", "generate", "--for", "service", "-n", "default"), SEED_GATEWAY)
        # Without --for there is no label; without -n no namespace.
        r = wpctl(api, "waypoint", "generate")
        ok(r)
        assert "labels" not in r.stdout and "namespace:" not in r.stdout, r.stdout
        r = wpctl(api, "waypoint", "generate", "--class", "waypointd", "--name", "w2", "-n", "x")
        ok(r)
        assert "  gatewayClassName: waypointd\n" in r.stdout and "  name: w2\n" in r.stdout


def test_error_texts():
    with FakeAPI() as api:
        err(wpctl(api, "waypoint", "generate", "--for", "pods"),
            "failed to create gateway: invalid traffic type: pods. Valid options are: [all none service workload]")
        err(wpctl(api, "waypoint", "generate", "--name", "none"),
            "failed to create gateway: invalid name provided for waypoint, 'none' is a reserved value")
        bookinfo(api)
        err(wpctl(api, "waypoint", "apply", "-n", "default", "--name", "none"),
            "failed to create gateway: invalid name provided for waypoint, 'none' is a reserved value")
        err(wpctl(api, "waypoint", "delete", "a", "--all"),
            "cannot specify waypoint names when deleting all waypoints")
        err(wpctl(api, "waypoint", "delete"),
            "must specify a waypoint name or delete all using --all or delete specific revision using --revision")
        err(wpctl(api, "waypoint", "apply", "-n", "nosuch"), "namespace: nosuch not found")
        assert get_gw(api, "none") is None


def test_seed_walkthrough():
    with FakeAPI() as api:
        bookinfo(api)
        ok(wpctl(api, "waypoint", "apply", "-n", "default"), "✅ waypoint default/waypoint applied\n")
        gw = get_gw(api, "waypoint")
        assert gw["spec"]["gatewayClassName"] == "istio-waypoint"
        assert gw["spec"]["listeners"] == [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]
        assert any(m["manager"] == "istioctl" and m["operation"] == "Apply" for m in gw["metadata"]["managedFields"])
        ok(wpctl(api, "waypoint", "apply", "-n", "default", "--enroll-namespace", "--overwrite"),
           "✅ waypoint default/waypoint applied\n"
           "✅ namespace default labeled with \"istio.io/use-waypoint: waypoint\"\n")
        code, ns = api.api("GET", "/api/v1/namespaces/default")
        assert ns["metadata"]["labels"]["istio.io/use-waypoint"] == "waypoint"
        # Already enrolled and no --overwrite: istioctl's warning, nothing changes.
        ok(wpctl(api, "waypoint", "apply", "-n", "default", "--enroll-namespace", "--name", "other"),
           "⚠️ Warning: namespace (default) already has an enrolled Waypoint. Consider adding the "
           "`--overwrite` flag to your apply command.\n")
        assert get_gw(api, "other") is None
        ok(wpctl(api, "waypoint", "apply", "-n", "default", "--name", "reviews-svc-waypoint"),
           "✅ waypoint default/reviews-svc-waypoint applied\n")
        r = kubectl(api, "label", "service", "reviews", "istio.io/use-waypoint=reviews-svc-waypoint")
        assert r.stdout == "service/reviews labeled\n", r.stdout
        ok(wpctl(api, "waypoint", "apply", "-n", "default", "--name", "reviews-v2-pod-waypoint", "--for", "workload"),
           "✅ waypoint default/reviews-v2-pod-waypoint applied\n")
        assert get_gw(api, "reviews-v2-pod-waypoint")["metadata"]["labels"] == {"istio.io/waypoint-for": "workload"}
        r = kubectl(api, "label", "pod", "-l", "version=v2,app=reviews", "istio.io/use-waypoint=reviews-v2-pod-waypoint")
        assert r.stdout == "pod/reviews-v2-5b667bcbf8-spnnh labeled\n", r.stdout
        code, pod = api.api("GET", "/api/v1/namespaces/default/pods/reviews-v1-7d8c5f8f9-abcde")
        assert "istio.io/use-waypoint" not in pod["metadata"].get("labels", {})
        r = kubectl(api, "get", "gtw")
        assert r.stdout.split("\n")[0].split() == ["NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"], r.stdout
        assert len(r.stdout.strip().split("\n")) == 4, r.stdout
        ok(wpctl(api, "waypoint", "list", "-n", "default"),
           "NAME                        REVISION     TRAFFIC TYPE     PROGRAMMED\n"
           "reviews-svc-waypoint        default      none             False\n"
           "reviews-v2-pod-waypoint     default      workload         False\n"
           "waypoint                    default      none             False\n")
        # Cleaning up, as the seed does.
        r = wpctl(api, "waypoint", "delete", "--all", "-n", "default")
        ok(r)
        assert sorted(r.stdout.strip().split("\n")) == [
            "waypoint default/reviews-svc-waypoint deleted", "waypoint default/reviews-v2-pod-waypoint deleted",
            "waypoint default/waypoint deleted"], r.stdout
        r = kubectl(api, "label", "ns", "default", "istio.io/use-waypoint-")
        assert r.stdout in ("namespace/default labeled\n", "namespace/default unlabeled\n"), r.stdout  # kubectl >= 1.2x says unlabeled
        code, ns = api.api("GET", "/api/v1/namespaces/default")
        assert "istio.io/use-waypoint" not in ns["metadata"]["labels"]
        ok(wpctl(api, "waypoint", "list"), "No waypoints found.\n")


def test_enroll_warns_when_not_ambient():
    with FakeAPI() as api:
        bookinfo(api, ambient=False)
        ok(wpctl(api, "waypoint", "apply", "-n", "default", "--enroll-namespace"),
           "⚠️ Warning: namespace is not enrolled in ambient. Consider running\t"
           "`kubectl label namespace default istio.io/dataplane-mode=ambient`\n"
           "✅ waypoint default/waypoint applied\n"
           "✅ namespace default labeled with \"istio.io/use-waypoint: waypoint\"\n")


def test_apply_is_server_side_apply():
    with FakeAPI() as api:
        bookinfo(api)
        ok(wpctl(api, "waypoint", "apply", "-n", "default", "--for", "all", "-r", "canary"))
        assert get_gw(api, "waypoint")["metadata"]["labels"] == {"istio.io/waypoint-for": "all", "istio.io/rev": "canary"}
        # Another manager's label survives; our dropped --for label goes.
        code, _ = api.api("PATCH", GW + "/waypoint", {"metadata": {"labels": {"team": "a"}}},
                          ctype="application/merge-patch+json")
        assert code == 200
        ok(wpctl(api, "waypoint", "apply", "-n", "default"))
        assert get_gw(api, "waypoint")["metadata"]["labels"] == {"team": "a"}


def test_delete_by_name_and_revision():
    with FakeAPI() as api:
        bookinfo(api)
        for n, rev in (("a", None), ("b", "r1"), ("c", "r1")):
            args = ["waypoint", "apply", "-n", "default", "--name", n] + (["-r", rev] if rev else [])
            ok(wpctl(api, *args))
        api.create({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                    "metadata": {"name": "ingress", "namespace": "default"},
                    "spec": {"gatewayClassName": "istio", "listeners": []}})
        ok(wpctl(api, "waypoint", "delete", "a", "zz", "ingress", "-n", "default"),
           "waypoint default/zz not found\nwaypoint default/ingress not found\nwaypoint default/a deleted\n")
        r = wpctl(api, "waypoint", "delete", "-r", "r1", "-n", "default")
        ok(r)
        assert sorted(r.stdout.split("\n")) == ["", "waypoint default/b deleted", "waypoint default/c deleted"]
        assert get_gw(api, "ingress") is not None


def programmed_later(api, name, delay):
    def run():
        time.sleep(delay)
        api.api("PATCH", GW + "/" + name + "/status",
                {"status": {"conditions": [
                    {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                     "lastTransitionTime": "2024-01-01T00:00:00Z", "observedGeneration": 1},
                    {"type": "Programmed", "status": "True", "reason": "Programmed", "message": "ready",
                     "lastTransitionTime": "2024-01-01T00:00:00Z", "observedGeneration": 1}]}},
                ctype="application/merge-patch+json")
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_wait_and_status():
    """--wait against a status written by someone else (the appliance's own
    writer is exercised in test_gateway_status.py)."""
    with FakeAPI() as api:
        bookinfo(api)
        t0 = time.monotonic()
        t = programmed_later(api, "waypoint", 1.5)
        ok(wpctl(api, "waypoint", "apply", "-n", "default", "--wait", "--class", "waypointd"),
           "✅ waypoint default/waypoint applied\n✅ waypoint default/waypoint is ready!\n")
        assert time.monotonic() - t0 >= 1.5
        t.join()
        ok(wpctl(api, "waypoint", "status", "-n", "default"),
           "NAME         STATUS     TYPE           REASON         MESSAGE\n"
           "waypoint     True       Programmed     Programmed     ready\n")
        ok(wpctl(api, "waypoint", "list", "-A"),
           "NAMESPACE     NAME         REVISION     TRAFFIC TYPE     PROGRAMMED\n"
           "default       waypoint     default      none             True\n")
        ok(wpctl(api, "waypoint", "apply", "-n", "default", "--name", "slow"))
        r = wpctl(api, "waypoint", "apply", "-n", "default", "--name", "slow", "--wait", "--waypoint-timeout", "1s")
        err(r, "timed out while waiting for waypoint\tdefault/slow")
        assert r.stdout == "✅ waypoint default/slow applied\n"


def test_kubeconfig_client_cert_and_token_file():
    with FakeAPI() as api:
        bookinfo(api)
        p = api.pki
        kc = os.path.join(api.dir, "kc-cert")
        api.write_kubeconfig(kc, user="    client-certificate: %s\n    client-key: %s\n" % (p["client.crt"], p["client.key"]))
        ok(wpctl(api, "waypoint", "list", "-c", kc), "No waypoints found.\n")
        kc2 = os.path.join(api.dir, "kc-tokfile")
        api.write_kubeconfig(kc2, user="    tokenFile: token\n")
        ok(wpctl(api, "waypoint", "list", "--kubeconfig", kc2), "No waypoints found.\n")
        kc3 = os.path.join(api.dir, "kc-bad")
        api.write_kubeconfig(kc3, user="    token: wrong\n")
        r = wpctl(api, "waypoint", "list", "--kubeconfig", kc3)
        assert r.returncode == 1 and r.stderr == "Error: Unauthorized\n", r.stderr


if __name__ == "__main__":
    Failures().run(globals(), only=sys.argv[1:] or None)
