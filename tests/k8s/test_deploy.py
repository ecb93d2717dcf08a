#!/usr/bin/python3
"""deploy/ stays consistent with what waypointd writes and reads: the
appliance's Service (or ServiceEntry) has port 15008, is opted out of
waypoints, is named by the Hostname the status writer puts into
status.addresses, and selects the WorkloadEntries carrying the identity
(the ones the appliances make with membership, whose labels member.c
defines, and the hand-made one of appliance-static.yaml), with a Role
letting the appliances keep theirs; the
GatewayClass has the controllerName the source recognises; the systemd unit
runs the binary with --check-config first. Suite 'unit' (no network)."""

import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
D = os.path.join(ROOT, "deploy")


def docs(name):
    with open(os.path.join(D, name)) as f:
        return {d["kind"]: d for d in yaml.safe_load_all(f) if d}


def source_default(macro, header="cp/kube/kube_source.h"):
    with open(os.path.join(ROOT, header)) as f:
        return re.search(r'#define %s "([^"]+)"' % macro, f.read()).group(1)


def main():
    gc = docs("gatewayclass.yaml")["GatewayClass"]
    assert gc["spec"]["controllerName"] == source_default("WP_KUBE_CONTROLLER_NAME")
    with open(os.path.join(ROOT, "conf/waypoint.conf")) as f:
        conf = f.read()
    assert 'controller_name = "%s"' % gc["spec"]["controllerName"] in conf
    svc_name = re.search(r'service_name = "([^"]+)"', conf).group(1)
    host = "%s.default.svc.cluster.local" % svc_name  # what status.c writes for namespace default

    a = docs("appliance.yaml")
    svc, sa = a["Service"], a["ServiceAccount"]
    we = docs("appliance-static.yaml")["WorkloadEntry"]
    assert svc["metadata"]["name"] == svc_name and svc["metadata"]["namespace"] == "default"
    assert svc["metadata"]["labels"]["istio.io/use-waypoint"] == "none"
    assert [p["port"] for p in svc["spec"]["ports"]] == [15008]
    assert all(we["spec"]["labels"].get(k) == v for k, v in svc["spec"]["selector"].items())
    assert we["spec"]["serviceAccount"] == sa["metadata"]["name"]
    assert we["metadata"]["namespace"] == svc["metadata"]["namespace"] == sa["metadata"]["namespace"]
    # membership: the entries member.c makes carry <select key>=<service_name>
    # and, by default, the Service's name as serviceAccount
    sel_key = source_default("WP_KUBE_MEMBER_SELECT_KEY", "cp/kube/member.h")
    assert svc["spec"]["selector"] == {sel_key: svc_name}, svc["spec"]["selector"]
    assert sa["metadata"]["name"] == svc_name
    mrole, mbind = a["Role"], a["RoleBinding"]
    assert mrole["metadata"]["namespace"] == svc["metadata"]["namespace"]
    assert {"apiGroups": ["networking.istio.io"], "resources": ["workloadentries"],
            "verbs": ["get", "list", "create", "update", "delete"]} in mrole["rules"], mrole
    assert mbind["roleRef"]["name"] == mrole["metadata"]["name"]
    assert mbind["subjects"] == docs("rbac.yaml")["ClusterRoleBinding"]["subjects"]

    b = docs("appliance-serviceentry.yaml")
    se, we2 = b["ServiceEntry"], b["WorkloadEntry"]
    assert se["spec"]["hosts"] == [host], se["spec"]["hosts"]
    assert [p["number"] for p in se["spec"]["ports"]] == [15008]
    assert se["metadata"]["labels"]["istio.io/use-waypoint"] == "none"
    assert all(we2["spec"]["labels"].get(k) == v for k, v in se["spec"]["workloadSelector"]["labels"].items())

    rb = docs("rbac.yaml")["ClusterRole"]
    res = {r for rule in rb["rules"] for r in rule["resources"]}
    for r in ("namespaces", "services", "pods", "endpointslices", "gateways", "gatewayclasses", "httproutes",
              "authorizationpolicies", "destinationrules", "serviceentries", "virtualservices", "telemetries", "gateways/status",
              "gatewayclasses/status", "authorizationpolicies/status"):
        assert r in res, r
    # leader election: the Lease in the controller's namespace
    role = docs("rbac.yaml")["Role"]
    assert role["metadata"]["namespace"] == "waypointd-system"
    assert {"resources": ["leases"], "verbs": ["get", "create", "update"],
            "apiGroups": ["coordination.k8s.io"]} in role["rules"], role
    rbind = docs("rbac.yaml")["RoleBinding"]
    assert rbind["roleRef"]["name"] == role["metadata"]["name"]
    assert rbind["subjects"] == docs("rbac.yaml")["ClusterRoleBinding"]["subjects"]

    with open(os.path.join(D, "waypointd.service")) as f:
        unit = f.read()
    assert re.search(r"^ExecStartPre=\S*waypointd .*--check-config$", unit, re.M)
    assert re.search(r"^ExecStart=\S*waypointd -c \S+$", unit, re.M)
    assert "[Install]" in unit
    print("deploy/ consistent")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        import traceback
        traceback.print_exc()
        sys.exit(1)
