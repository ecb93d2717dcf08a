#!/usr/bin/python3
"""The appliance after a late or long-gone API server (issue 21's acceptance):
the real waypointd in a testbed namespace, the fake API server on that
namespace's loopback, `wpctl enrollment -o json` polled every 100 ms all
along by a thread.

  1. late start: waypointd starts with no API server and every kind backs
     off (0.8 s doubling, capped at kubernetes.backoff_max_ms = 8 s, lowered
     from 30 s to keep the test short); the server comes up well after the
     start-up wait, when the kinds' next attempts are seconds away. The first
     snapshot must reach the workers within 2 s of the server answering, and
     no poll may show a partial view as the running one: before the first
     snapshot the view is "none" with no rows and names the lagging kinds;
     after it, "snapshot" with every row.
  2. long outage mid-run: the server refuses connections for 10 s (longer
     than the 8 s maximum backoff). Every poll shows the running snapshot,
     whole, and says which kinds are not current while they are not; a
     change made as the server returns reaches the workers within 2 s, and
     every kind is watching again within 2 s.

Needs root (network namespace, DPDK TAP); suite 'integration'.
Run: WP_BUILD_DIR=build /usr/bin/python3 tests/k8s/test_late_api.py
"""

import json
import os
import sys
import threading
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from appliance import Appliance  # noqa: E402
from harness import wait_for  # noqa: E402
from test_appliance import cluster  # noqa: E402

BOUND_S = 2.0
ROWS = 13  # cluster(): 5 Services and 8 Pods
POD = "/api/v1/namespaces/other/pods/echo-1"


def step(msg):
    print("  - " + msg, flush=True)


class Poller:
    """`wpctl enrollment -o json` every 100 ms on a thread: [(time_ns, answer
    or the raw output when it is not JSON)]."""

    def __init__(self, wp):
        self.wp, self.polls, self.stop_ev = wp, [], threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop_ev.is_set():
            t0 = time.monotonic()
            r = self.wp.wpctl("enrollment", "-o", "json", timeout=10)
            try:
                out = json.loads(r.stdout)
            except ValueError:
                out = "exit %d: %s%s" % (r.returncode, r.stdout, r.stderr)
            self.polls.append((time.time_ns(), out))
            self.stop_ev.wait(max(0.0, 0.1 - (time.monotonic() - t0)))

    def stop(self):
        self.stop_ev.set()
        self.t.join(15)
        return self.polls


def check_no_partial_running_view(polls, stale_from_ns=None, stale_until_ns=None):
    """Every poll is the running view ("none" before the first snapshot,
    nothing listed and the lagging kinds named; "snapshot" with every row)
    and, between stale_from_ns and stale_until_ns, says it is not current."""
    assert polls, "no poll answered"
    for t, p in polls:
        assert isinstance(p, dict) and p.get("view") in ("none", "snapshot"), p
        if p["view"] == "none":
            assert p["rows"] == [] and p["lagging"] and p["snapshot_version"] is None, p
        else:
            assert len(p["rows"]) == ROWS, "a partial view presented as the running one: %s" % p
        if stale_from_ns and stale_from_ns <= t <= stale_until_ns:
            assert p["lagging"], "the view during the outage claims to be current: %s" % p


def phase_late_start(wp):
    step("no API server: every kind backs off; the start-up wait runs out")
    poller = Poller(wp)
    wait_for(lambda: "no first full sync of kubernetes" in wp.log_text(), 10, what="the start-up wait to end")
    # The kinds' attempts (about 0, 0.8, 2.4, 5.6, 12, 19 s after the
    # source started, jittered) leave them seconds away from their next
    # one 11 s after the 1.5 s start-up wait ran out.
    time.sleep(11.0)
    path = os.path.join(wp.dir, "cluster.yaml")
    with open(path, "w") as f:
        yaml.safe_dump_all(cluster(), f)
    wp.start_api(load=[path])
    t_up = time.time_ns()
    step("API server answering")
    rows = wp.wait_snapshot_rows(lambda r: r["version"] >= 1, timeout=25, what="the first snapshot")
    lags = [(r["seen_ns"] - t_up) / 1e9 for r in rows]
    step("    first snapshot in the workers %s s after the API server answered"
         % ", ".join("%.2f" % x for x in lags))
    for w, lag in enumerate(lags):
        assert lag < BOUND_S, "the first snapshot reached worker %d %.2f s after the server answered" % (w, lag)
    wait_for(lambda: wp.admin_json("/enrollment")["lagging"] == [], 5, what="every kind watching")
    time.sleep(0.3)  # a few polls of the complete view
    polls = poller.stop()
    check_no_partial_running_view(polls)
    assert any(p["view"] == "none" for _, p in polls), "no poll before the first snapshot"
    assert any(p["view"] == "snapshot" for _, p in polls), "no poll after the first snapshot"
    step("    %d polls: none before the first snapshot claimed to be the running state" % len(polls))
    assert "API server answering again" in wp.log_text()


def phase_long_outage(wp):
    api = wp.api
    step("API server gone for 10 s (longer than the 8 s maximum backoff)")
    v0 = wp.snapshot(0)["version"]
    poller = Poller(wp)
    time.sleep(0.3)
    t_down = time.time_ns()
    api.control("down", seconds=10.0)
    t_up_mono = time.monotonic() + 10.0
    t_up = t_down + 10 * 10**9
    time.sleep(max(0.0, t_up_mono - time.monotonic() + 0.02))
    # a change made as the server returns (a direct PATCH: no kubectl start-up)
    code = wait_for(lambda: api.api("PATCH", POD, {"metadata": {"labels": {"istio.io/use-waypoint": "none"}}},
                                    ctype="application/merge-patch+json")[0] == 200, 2, interval=0.02,
                    what="the PATCH accepted")
    assert code
    rows = wp.wait_snapshot_rows(lambda r: r["dests"] == 1 and r["version"] > v0, timeout=15,
                                 what="echo-1 opted out")
    lags = [(r["seen_ns"] - t_up) / 1e9 for r in rows]
    step("    the change in the workers %s s after the API server answered" % ", ".join("%.2f" % x for x in lags))
    for w, lag in enumerate(lags):
        assert lag < BOUND_S, "the change reached worker %d %.2f s after the server answered" % (w, lag)
    wait_for(lambda: wp.admin_json("/enrollment")["lagging"] == [], 5, what="every kind watching")
    time.sleep(0.3)
    polls = poller.stop()
    # the watches break when the server drops them; allow the polls in flight
    check_no_partial_running_view(polls, stale_from_ns=t_down + 500 * 10**6, stale_until_ns=t_up)
    back = [t for t, p in polls if t > t_up and p["lagging"] == []]
    assert back and (back[0] - t_up) / 1e9 < BOUND_S, \
        "every kind watching again %s s after the return" % ((back[0] - t_up) / 1e9 if back else "never")
    step("    %d polls: the running snapshot, whole, marked not current during the outage; every kind "
         "watching again %.2f s after the return" % (len(polls), (back[0] - t_up) / 1e9))


def main():
    name = "wpt-k8s-late-%d" % os.getpid()
    sets = ["cluster.manifest_dir=", "cluster.gateway_class=waypointd",
            "cluster.gateways.[0]=other/wp", "cluster.gateways.[1]=other/wp", "cluster.gateways.[2]=other/wp",
            "kubernetes.sync_wait_ms=1500", "kubernetes.backoff_base_ms=800", "kubernetes.backoff_max_ms=8000"]
    wp = Appliance(name, sets=sets, workers=int(os.environ.get("WP_WORKERS", "2")))
    failed = False
    try:
        for phase in (phase_late_start, phase_long_outage):
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
