#!/usr/bin/python3
"""`wpctl enrollment --dir conf/cluster -o json` works offline and gives the
seed's answers, with every field a row has; -o yaml says the same; the
table's columns (and -o wide's) are as wide as a long-named Service needs.
Usage: wpctl_enrollment.py WPCTL CLUSTER_DIR"""
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import yaml

wpctl, cluster = sys.argv[1], sys.argv[2]
out = subprocess.run([wpctl, "enrollment", "--dir", cluster, "-o", "json"],
                     check=True, capture_output=True, text=True).stdout
rows = json.loads(out)
assert isinstance(rows, list) and len(rows) == 10, rows
for r in rows:
    assert set(r) == {"kind", "namespace", "name", "waypoint", "reason", "message", "via", "served"}, r
    assert r["via"] in ("self", "namespace") and isinstance(r["served"], bool), r
    assert r["kind"] in ("Service", "Pod"), r
got = {(r["kind"], r["name"]): (r["waypoint"], r["reason"]) for r in rows}
want = {
    ("Service", "productpage"): ("default/waypoint", "WaypointBound"),
    ("Service", "reviews"): ("default/reviews-svc-waypoint", "WaypointBound"),
    ("Pod", "reviews-v2"): ("default/reviews-v2-pod-waypoint", "WaypointBound"),
    ("Pod", "reviews-v1"): (None, "NoWaypoint"),
}
for k, v in want.items():
    assert got[k] == v, (k, got[k], v)
# a bad manifest directory is an error, not an empty answer
bad = subprocess.run([wpctl, "enrollment", "--dir", "/nonexistent-wp-dir", "-o", "json"],
                     capture_output=True, text=True)
assert bad.returncode != 0, bad
# -o yaml: the same rows
out = subprocess.run([wpctl, "enrollment", "--dir", cluster, "-o", "yaml"],
                     check=True, capture_output=True, text=True).stdout
assert yaml.safe_load(out) == rows, out

# A Service whose name is longer than any fixed width: every column still
# starts where its header does, in the table and in -o wide.
LONG = "a-service-with-a-name-much-longer-than-thirty-two-characters-x"
d = tempfile.mkdtemp(prefix="wpctl-enroll-")
try:
    for f in os.listdir(cluster):
        shutil.copy(os.path.join(cluster, f), d)
    with open(os.path.join(d, "90-long.yaml"), "w") as f:
        f.write("apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: default\n"
                "spec:\n  clusterIP: 198.19.0.99\n  ports:\n  - name: http\n    port: 80\n" % LONG)
    for fmt, heads in (("table", ["KIND", "NAMESPACE", "NAME", "WAYPOINT", "REASON", "MESSAGE"]),
                       ("wide", ["KIND", "NAMESPACE", "NAME", "WAYPOINT", "REASON", "VIA", "SERVED",
                                 "MESSAGE"])):
        lines = subprocess.run([wpctl, "enrollment", "--dir", d, "-o", fmt], check=True,
                               capture_output=True, text=True).stdout.splitlines()
        assert lines[0].split() == heads, lines[0]
        starts = [lines[0].index(h) for h in heads]
        assert len(lines) == 12, lines
        for line in lines[1:]:
            for a, b in zip(starts[:-1], starts[1:]):
                # each cell starts at its header, and is followed by padding
                assert line[a] != " " and (a == 0 or line[a - 1] == " "), (fmt, line)
                assert line[b - 3:b] == "   ", (fmt, line)
        long_line = [l for l in lines if LONG in l]
        assert len(long_line) == 1 and long_line[0].split()[2] == LONG, long_line
        if fmt == "wide":
            assert long_line[0].split()[5:7] == ["namespace", "true"], long_line
finally:
    shutil.rmtree(d)

# From the admin endpoint (a stand-in on loopback): -o json and -o yaml pass
# every field of the endpoint's rows through; -o wide shows via and served.
VIEW = {"view": "snapshot", "snapshot_version": 3, "synced": True, "lagging": [], "note": "what the workers run",
        "rows": [{"kind": "Service", "namespace": "default", "name": LONG, "waypoint": "default/waypoint",
                  "reason": "WaypointBound", "message": "bound by its namespace label", "via": "namespace",
                  "served": False}]}


class Admin(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(VIEW).encode() if self.path == "/enrollment" else b"{}"
        self.send_response(200 if self.path == "/enrollment" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


srv = http.server.HTTPServer(("127.0.0.1", 0), Admin)
threading.Thread(target=srv.serve_forever, daemon=True).start()
admin = "127.0.0.1:%d" % srv.server_address[1]
try:
    def run(fmt):
        return subprocess.run([wpctl, "enrollment", "--admin", admin, "-o", fmt], check=True,
                              capture_output=True, text=True, timeout=20).stdout
    assert json.loads(run("json")) == VIEW
    assert yaml.safe_load(run("yaml")) == VIEW
    wide = run("wide").splitlines()
    assert wide[0] == "# snapshot: what the workers run", wide
    assert wide[2].split() == ["Service", "default", LONG, "default/waypoint", "WaypointBound", "namespace",
                               "false", "bound", "by", "its", "namespace", "label"], wide
finally:
    srv.shutdown()
print("ok: %d rows" % len(rows))
