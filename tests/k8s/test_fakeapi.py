#!/usr/bin/python3
"""The fake API server keeps the protocol promises the other tests rely on:
discovery, paging, watch with bookmarks and 410, faults, /status, apply."""

import http.client
import json
import os
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FakeAPI, Failures, kubectl  # noqa: E402

PODS = "/api/v1/namespaces/default/pods"


def pod(name, **labels):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": labels}}


def watch(api, path, n_events, timeout=5):
    """Reads a watch stream until n_events events or the stream ends."""
    ctx = ssl.create_default_context(cafile=api.pki["ca.crt"])
    c = http.client.HTTPSConnection("127.0.0.1", api.port, context=ctx, timeout=timeout)
    c.request("GET", path, headers={"Authorization": "Bearer " + api.token})
    r = c.getresponse()
    assert r.status == 200, r.status
    out = []
    while len(out) < n_events:
        line = r.readline()
        if not line:
            break
        out.append(json.loads(line))
    c.close()
    return out


def test_discovery_and_kubectl_get():
    with FakeAPI() as api:
        code, d = api.api("GET", "/apis/gateway.networking.k8s.io/v1")
        assert code == 200
        gw = [r for r in d["resources"] if r["name"] == "gateways"][0]
        assert gw["shortNames"] == ["gtw"] and gw["namespaced"]
        assert any(r["name"] == "gateways/status" for r in d["resources"])
        api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
        r = kubectl(api, "get", "ns")
        assert r.stdout.split("\n")[1].split()[:2] == ["default", "Active"], r.stdout


def test_auth():
    with FakeAPI() as api:
        assert api.api("GET", PODS, token="nope")[0] == 401
        assert api.api("GET", PODS)[0] == 200
        api.control("token", token="rotated")
        assert api.api("GET", PODS)[0] == 401
        assert api.api("GET", PODS, token="rotated")[0] == 200


def test_paged_list():
    with FakeAPI() as api:
        for i in range(7):
            api.create(pod("p%d" % i, app="a" if i % 2 else "b"))
        names, cont, pages = [], "", 0
        while True:
            code, lst = api.api("GET", PODS + "?limit=3" + ("&continue=" + cont if cont else ""))
            assert code == 200
            pages += 1
            names += [o["metadata"]["name"] for o in lst["items"]]
            cont = lst["metadata"].get("continue")
            if not cont:
                break
        assert names == ["p%d" % i for i in range(7)] and pages == 3
        code, lst = api.api("GET", PODS + "?labelSelector=app%3Da")
        assert [o["metadata"]["name"] for o in lst["items"]] == ["p1", "p3", "p5"]
        code, first = api.api("GET", PODS + "?limit=2")
        api.control("expire")
        code, st = api.api("GET", PODS + "?limit=2&continue=" + first["metadata"]["continue"])
        assert code == 410 and st["reason"] == "Expired"


def test_watch_bookmark_and_410():
    with FakeAPI(bookmark_interval=0.3) as api:
        api.create(pod("a"))
        code, lst = api.api("GET", PODS)
        rv = lst["metadata"]["resourceVersion"]
        api.create(pod("b"))
        ev = watch(api, PODS + "?watch=1&allowWatchBookmarks=true&resourceVersion=" + rv, 2)
        assert ev[0]["type"] == "ADDED" and ev[0]["object"]["metadata"]["name"] == "b"
        assert ev[1]["type"] == "BOOKMARK" and int(ev[1]["object"]["metadata"]["resourceVersion"]) >= int(rv) + 1
        api.control("expire")
        ev = watch(api, PODS + "?watch=1&resourceVersion=" + rv, 1)
        assert ev[0]["type"] == "ERROR" and ev[0]["object"]["code"] == 410
        # A clean end: timeoutSeconds.
        t0 = time.monotonic()
        ev = watch(api, PODS + "?watch=1&timeoutSeconds=1", 10)
        assert [e["type"] for e in ev] == ["ADDED", "ADDED"] and time.monotonic() - t0 < 3


def test_faults():
    with FakeAPI() as api:
        api.control("fail", count=2, code=429, retry_after=1)
        assert api.api("GET", PODS)[0] == 429
        assert api.api("GET", PODS)[0] == 429
        assert api.api("GET", PODS)[0] == 200
        api.control("fail", count=1, code=500, match="services")
        assert api.api("GET", PODS)[0] == 200
        assert api.api("GET", "/api/v1/services")[0] == 500


def test_status_subresource_and_generation():
    with FakeAPI() as api:
        gwp = "/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways"
        api.create({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                    "metadata": {"name": "w", "namespace": "default"},
                    "spec": {"gatewayClassName": "x", "listeners": []}, "status": {"addresses": [{"value": "ignored"}]}})
        code, gw = api.api("GET", gwp + "/w")
        assert "status" not in gw and gw["metadata"]["generation"] == 1
        code, gw = api.api("PATCH", gwp + "/w", {"status": {"addresses": []}, "metadata": {"labels": {"a": "b"}}},
                           ctype="application/merge-patch+json")
        assert "status" not in gw and gw["metadata"]["generation"] == 1
        code, gw = api.api("PATCH", gwp + "/w/status", {"status": {"conditions": [{"type": "Accepted"}]}},
                           ctype="application/merge-patch+json")
        assert code == 200 and gw["status"]["conditions"] == [{"type": "Accepted"}]
        code, gw = api.api("PATCH", gwp + "/w", {"spec": {"gatewayClassName": "y"}},
                           ctype="application/merge-patch+json")
        assert gw["metadata"]["generation"] == 2 and gw["status"]["conditions"] == [{"type": "Accepted"}]


if __name__ == "__main__":
    Failures().run(globals(), only=sys.argv[1:] or None)
