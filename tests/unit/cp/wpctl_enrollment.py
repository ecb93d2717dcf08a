#!/usr/bin/python3
"""`wpctl enrollment --dir conf/cluster -o json` works offline and gives the
seed's answers. Usage: wpctl_enrollment.py WPCTL CLUSTER_DIR"""
import json
import subprocess
import sys

wpctl, cluster = sys.argv[1], sys.argv[2]
out = subprocess.run([wpctl, "enrollment", "--dir", cluster, "-o", "json"],
                     check=True, capture_output=True, text=True).stdout
rows = json.loads(out)
assert isinstance(rows, list) and len(rows) == 10, rows
for r in rows:
    assert set(r) == {"kind", "namespace", "name", "waypoint", "reason"}, r
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
print("ok: %d rows" % len(rows))
