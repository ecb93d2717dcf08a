#!/usr/bin/python3
"""Leader election among appliances of one waypoint (cp/kube/lease.c, issue
17): two status writers (tests/k8s/kube_source_probe --status --lease) on one
fake API server, each with its own bearer token so that the fake's request
log names who sent every request. Exactly one writes Gateway status; when it
is killed the other takes over; restarted, the first stays a follower; a
leader cut off from the Lease (its Lease requests hang) stops writing once
its renew deadline passes, before the Lease expires, and the other takes
over; one that stops cleanly gives the Lease up. Timings are client-go's: lease 15 s, renew deadline 10 s, retry 2 s."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FakeAPI, Failures, wait_for, wpctl  # noqa: E402
from test_kube_source import GWS, Probe, cond, gw_status, seed  # noqa: E402

LEASE = "/apis/coordination.k8s.io/v1/namespaces/default/leases/waypointd-waypointd"
DURATION, DEADLINE, RETRY = 15, 10, 2


def setup(api):
    api.control("clients", tokens={"a": "token-a", "b": "token-b"})
    kc = {}
    for who in ("a", "b"):
        kc[who] = os.path.join(api.dir, "kubeconfig-" + who)
        api.write_kubeconfig(kc[who], user="    token: token-%s\n" % who)
    seed(api, pods=1)
    api.create({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                "metadata": {"name": "waypointd"}, "spec": {"controllerName": "waypointd.io/controller"}})
    api.create({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                "metadata": {"name": "waypoint", "namespace": "default"},
                "spec": {"gatewayClassName": "waypointd",
                         "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}})
    return kc


def start(api, kc, who):
    return Probe(api, "--status", "--lease", "waypointd-waypointd", "--identity", who, kubeconfig=kc[who])


def bump(api, n):
    """A spec change (generation n+1 after n bumps): the leader must write."""
    code, _ = api.api("PATCH", GWS + "/waypoint", {"spec": {"listeners": [
        {"name": "mesh", "port": 15008, "protocol": "HBONE"},
        {"name": "extra%d" % n, "port": 15009, "protocol": "HBONE"}]}}, ctype="application/merge-patch+json")
    assert code == 200


def generation(api):
    return api.api("GET", GWS + "/waypoint")[1]["metadata"]["generation"]


def programmed(api):
    return (cond(gw_status(api, "waypoint") or {}, "Programmed") or {}).get("observedGeneration")


def status_puts(api, who, since_ns=0):
    return [r["t_ns"] for r in api.control("requests")["requests"]
            if r["method"] == "PUT" and r["path"].endswith("/status") and r["who"] == who and r["t_ns"] >= since_ns]


def lease(api):
    return api.api("GET", LEASE)[1]


def test_one_writer_kill_and_restart():
    with FakeAPI() as api:
        kc = setup(api)
        a = start(api, kc, "a")
        b = None
        try:
            a.wait("SYNCED")
            wait_for(lambda: programmed(api) == 1, 10, what="a programs the Gateway")
            b = start(api, kc, "b")
            b.wait("SYNCED")
            wait_for(lambda: b.counters().get("KUBE_LEASE_HELD_ELSEWHERE", 0) >= 1, 5, what="b sees a's Lease")
            for n in range(3):
                bump(api, n)
                wait_for(lambda: programmed(api) == generation(api), 10, what="status follows the spec")
            assert len(status_puts(api, "a")) >= 4 and status_puts(api, "b") == [], api.control("requests")
            c = b.counters()
            assert (c["leading"], c["KUBE_STATUS_NOT_LEADER"]) == (0, 0), c
            ls = lease(api)["spec"]
            assert (ls["holderIdentity"], ls["leaseDurationSeconds"], ls["leaseTransitions"]) == ("a", 15, 0), ls
            assert ls["renewTime"].endswith("Z") and len(ls["renewTime"]) == len("2026-01-02T03:04:05.123456Z"), ls

            # the leader dies without giving the Lease up
            t_kill = time.time()
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait()
            bump(api, 10)
            # b takes over leaseDurationSeconds after a's last renewal (b
            # dates what it saw back by a's renewTime, at most a retry period,
            # and tries again at the expiry itself): within DURATION of the
            # kill, plus the status PUT
            wait_for(lambda: status_puts(api, "b"), DURATION + 2 * RETRY + 2, interval=0.2, what="b writes")
            took = status_puts(api, "b")[0] / 1e9 - t_kill
            print("takeover after SIGKILL: %.1f s" % took)
            assert took <= DURATION + 1, took  # the lease duration, and the status PUT
            wait_for(lambda: programmed(api) == generation(api), 5, what="b programs the new generation")
            ls = lease(api)["spec"]
            assert (ls["holderIdentity"], ls["leaseTransitions"]) == ("b", 1), ls
            # wpctl waypoint status names the writer under the waypoints
            r = wpctl(api, "waypoint", "status", "-n", "default", "--class", "waypointd")
            assert r.returncode == 0, r.stderr
            rows = [l.split() for l in r.stdout.splitlines()]
            assert ["LEASE", "HOLDER", "RENEWED", "TRANSITIONS", "DURATION"] in rows, r.stdout
            row = next(x for x in rows if x[:1] == ["default/waypointd-waypointd"])
            assert row[1] == "b" and row[-2:] == ["1", "15s"] and row[3] == "ago", r.stdout
            assert 0 <= int(row[2].rstrip("s")) <= RETRY + 1, r.stdout

            # a comes back: b holds the Lease, a writes nothing
            a = start(api, kc, "a")
            a.wait("SYNCED")
            t_back = time.time_ns()
            wait_for(lambda: a.counters().get("KUBE_LEASE_HELD_ELSEWHERE", 0) >= 2, 8, what="a sees b's Lease")
            for n in range(11, 13):
                bump(api, n)
                wait_for(lambda: programmed(api) == generation(api), 10, what="b writes")
            assert status_puts(api, "a", t_back) == [], status_puts(api, "a", t_back)
            c = a.counters()
            assert c["leading"] == 0 and c["holder"] == "b", c
            # b stops cleanly: it gives the Lease up and a takes it at its next attempt
            b.stop()
            assert lease(api)["spec"]["holderIdentity"] == "", lease(api)
            bump(api, 20)
            wait_for(lambda: status_puts(api, "a", t_back), 2 * RETRY + 2, interval=0.2, what="a writes")
        finally:
            if a.proc.poll() is None:
                a.stop()
            if b:
                b.stop()


def test_partitioned_leader_steps_down():
    with FakeAPI() as api:
        kc = setup(api)
        a = start(api, kc, "a")
        b = None
        try:
            a.wait("SYNCED")
            wait_for(lambda: programmed(api) == 1, 10, what="a programs the Gateway")
            b = start(api, kc, "b")
            b.wait("SYNCED")
            wait_for(lambda: b.counters().get("KUBE_LEASE_HELD_ELSEWHERE", 0) >= 1, 5, what="b sees a's Lease")
            # a's Lease requests get no answer; everything else still works
            api.control("block", who="a", match="/leases/", seconds=30)
            t_block = time.time_ns()
            mine = [r for r in api.control("requests")["requests"]
                    if r["who"] == "a" and "/leases" in r["path"] and not r["blocked"]]
            t_renew = max(r["t_ns"] for r in mine if r["method"] in ("PUT", "POST")) / 1e9
            # a dates a renewal from before the GET that begins it, so it
            # may step down up to that GET-and-PUT round's time early, and
            # by the time its GET took to reach the fake (credentials, a new
            # connection and TLS handshake: about 1 s once on a loaded machine)
            t_start = max(r["t_ns"] for r in mine if r["method"] == "GET" and r["t_ns"] / 1e9 <= t_renew) / 1e9
            # keep giving both something to write (a spec change a second)
            # while watching a's own view of its leadership (sampled every
            # ~0.2 s: SIGUSR1 to the probe, which answers within its 100 ms poll)
            stepped, n, next_bump = None, 0, 0.0
            end = time.time() + DURATION + 2 * RETRY + 5
            while time.time() < end:
                if time.time() >= next_bump:
                    bump(api, n)
                    n, next_bump = n + 1, time.time() + 1
                if stepped is None and a.counters()["leading"] == 0:
                    stepped = time.time()
                if stepped and status_puts(api, "b", t_block):
                    break
                time.sleep(0.1)
            assert stepped is not None, "a never stepped down"
            print("a stepped down %.1f s after its last renewal (deadline %d s, lease %d s)" % (
                stepped - t_renew, DEADLINE, DURATION))
            # it stopped at the deadline (give or take the sampling above, the
            # time from the renewal's arrival at the fake to its answer
            # reaching a, and the GET's way to the fake: less than a retry
            # period, so not at an earlier failed round), well before the
            # Lease expired
            assert DEADLINE - RETRY < stepped - t_start and stepped - t_renew <= DEADLINE + 1.0, (
                stepped - t_start, stepped - t_renew)
            late = [t / 1e9 - t_renew for t in status_puts(api, "a") if t / 1e9 > t_renew + DEADLINE]
            assert late == [], "a wrote status %s s after its last renewal" % late
            first_b = status_puts(api, "b", t_block)
            assert first_b, "b never took over"
            print("b took over %.1f s after a's last renewal" % (first_b[0] / 1e9 - t_renew))
            assert DEADLINE <= first_b[0] / 1e9 - t_renew <= DURATION + 1
            wait_for(lambda: programmed(api) == generation(api), 5, what="b programs the last generation")
            c = a.counters()
            # it lost the Lease once and holds back what it would have written
            assert c["KUBE_LEASE_LOST"] == 1 and c["status_pending"] >= 1, c
            assert lease(api)["spec"]["holderIdentity"] == "b"
            # the partition heals: a stays a follower
            api.control("block", who="a", off=True)
            t_heal = time.time_ns()
            wait_for(lambda: a.counters()["holder"] == "b", 2 * RETRY + 2 + 2, what="a sees b's Lease")
            bump(api, 99)
            wait_for(lambda: programmed(api) == generation(api), 10, what="b writes")
            assert status_puts(api, "a", t_heal) == []
        finally:
            a.stop()
            if b:
                b.stop()


if __name__ == "__main__":
    Failures().run(globals(), only=sys.argv[1:] or None)
