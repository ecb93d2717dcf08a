#!/usr/bin/python3
"""Several appliances per waypoint (issue 17): three real waypointd, each in
its own testbed namespace (tests/testbed, HBONE on), on one fake API server
(fakeapi.py) in a fourth namespace the test creates. Each appliance reaches
the API server at 127.0.0.1:6443 of its own namespace: the test relays
those connections into the API server's namespace (a listening socket made
in each appliance's namespace, the upstream sockets in the API server's;
nothing else is reachable). Each appliance has its own bearer token, so the
fake's request log (the audit) names the writer of every request.

  1. all three register (one WorkloadEntry each, selected by the waypoint
     Service); an HBONE load spread over those endpoints round-robin, as a
     ztunnel would, is served by all three with every byte checked;
  2. exactly one writes Gateway status; SIGKILL it: another writes within
     the lease duration (and the status PUT); the killed one's entry is removed by the new
     leader once it has not been renewed for the TTL; restarted, the old one
     registers again and writes no status while it does not hold the Lease;
  3. SIGTERM one appliance under load: its entry is deleted before its
     GOAWAY, no tunnel is cut (all bytes verified), the others carry on;
  4. the leader cut off from the API server (every request it sends hangs)
     stops leading before its Lease expires, another takes over, and after
     the partition heals the old leader writes no status.

Members advertise distinct addresses (kubernetes.member_address
198.18.10.N); every testbed's appliance answers on 198.18.0.2 inside its
own namespace, so the test's "ztunnel" maps an endpoint's address to the
namespace of the appliance that registered it and connects there.

Needs root (network namespaces, DPDK TAP, hugepages). Lease timings are
client-go's (15 s / 10 s / 2 s); membership renews every second with a 4 s
TTL; adaptive polling sleeps up to 1 ms (polling.sleep_us = 1000) so that
three appliances share 2 cores: idle, each then uses about 2.6 % of a core
(utime + stime over 10 s, all threads), against about 13 % with the shipped
100 us. A run takes about 100 s.
Run: WP_BUILD_DIR=build /usr/bin/python3 tests/k8s/test_members.py
"""

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FakeAPI, wait_for  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("WP_BUILD_DIR") or os.path.join(ROOT, "build")
CLONE_NEWNET = 0x40000000
API_PORT = 6443
NS = "plain"
GWS = "/apis/gateway.networking.k8s.io/v1/namespaces/%s/gateways" % NS
WES = "/apis/networking.istio.io/v1/namespaces/%s/workloadentries" % NS
LEASE = "/apis/coordination.k8s.io/v1/namespaces/%s/leases/waypointd-waypointd" % NS
DURATION, DEADLINE, RETRY = 15, 10, 2
RENEW_MS, TTL_MS, GRACE_MS = 1000, 4000, 1500
AUTHORITY = "198.19.0.10:7000"
LOAD = os.path.join(ROOT, "tests/integration/hbone_load.py")
PY = "/usr/bin/python3"

_libc = ctypes.CDLL(None, use_errno=True)


def setns_fd(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


class InNs:
    """with InNs(name): the calling thread in namespace name, then back."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.back = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open("/run/netns/" + self.name, os.O_RDONLY)
        try:
            setns_fd(fd)
        finally:
            os.close(fd)

    def __exit__(self, *a):
        setns_fd(self.back)
        os.close(self.back)


class Relay:
    """127.0.0.1:API_PORT in namespace src, relayed to 127.0.0.1:API_PORT in
    namespace dst. Bounded: stops with stop()."""

    def __init__(self, src, dst):
        with InNs(src):
            self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.ls.bind(("127.0.0.1", API_PORT))
            self.ls.listen(64)
        self.ls.settimeout(0.2)
        self.dst = dst
        self.stopped = False
        self.conns = []
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        fd = os.open("/run/netns/" + self.dst, os.O_RDONLY)
        setns_fd(fd)  # this thread only: its upstream sockets live there
        os.close(fd)
        while not self.stopped:
            try:
                c, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            try:
                u = socket.create_connection(("127.0.0.1", API_PORT), timeout=2)
            except OSError:
                c.close()
                continue
            u.settimeout(None)
            c.settimeout(None)
            self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.stopped = True
        self.t.join(2)
        self.ls.close()
        for s in self.conns:
            try:
                s.close()
            except OSError:
                pass


def cluster():
    svc_port = [{"name": "mesh", "port": 15008, "targetPort": 15008, "protocol": "TCP"}]
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": NS, "labels": {"istio.io/use-waypoint": "waypoint"}}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
         "metadata": {"name": "waypointd"}, "spec": {"controllerName": "waypointd.io/controller"}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
         "metadata": {"name": "waypoint", "namespace": NS, "labels": {"istio.io/waypoint-for": "all"}},
         "spec": {"gatewayClassName": "waypointd",
                  "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]}},
        # the waypoint Service: its endpoints are the appliances' WorkloadEntries
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "waypointd", "namespace": NS, "labels": {"istio.io/use-waypoint": "none"}},
         "spec": {"clusterIP": "198.19.0.100", "clusterIPs": ["198.19.0.100"],
                  "selector": {"app.kubernetes.io/name": "waypointd"}, "ports": svc_port}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "echo", "namespace": NS},
         "spec": {"clusterIP": "198.19.0.10", "clusterIPs": ["198.19.0.10"], "selector": {"app": "echo"},
                  "ports": [{"name": "tcp", "port": 7000, "targetPort": 7000}]}},
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "echo-1", "namespace": NS, "labels": {"app": "echo"}},
         "spec": {"serviceAccountName": "echo", "nodeName": "node-1"},
         "status": {"phase": "Running", "podIP": "198.18.1.10", "podIPs": [{"ip": "198.18.1.10"}],
                    "conditions": [{"type": "Ready", "status": "True"}]}},
    ]


class Member:
    """One appliance: a testbed namespace running waypointd on the API."""

    def __init__(self, t, name, idx):
        self.t, self.name, self.idx = t, name, idx
        self.addr = "198.18.10.%d" % (idx + 1)
        self.token = "token-%s" % name
        self.kubeconfig = os.path.join(t.dir, "kubeconfig-" + name)
        t.api.write_kubeconfig(self.kubeconfig, namespace=NS, user="    token: %s\n" % self.token)
        self.relay = None
        self.pid = None

    def up(self):
        sets = ["cluster.manifest_dir=", "cluster.gateway_class=waypointd",
                "kubernetes.enabled=true", "kubernetes.kubeconfig=" + self.kubeconfig,
                "kubernetes.service_name=waypointd", "kubernetes.service_namespace=" + NS,
                "kubernetes.identity=" + self.name, "kubernetes.membership=true",
                "kubernetes.member_address=" + self.addr,
                "kubernetes.member_renew_ms=%d" % RENEW_MS, "kubernetes.member_ttl_ms=%d" % TTL_MS,
                "kubernetes.deregister_grace_ms=%d" % GRACE_MS,
                "kubernetes.sync_wait_ms=3000", "kubernetes.backoff_base_ms=100",
                "kubernetes.backoff_max_ms=1000",
                "hbone.drain_timeout_ms=20000", "polling.sleep_us=1000"]
        args = [os.path.join(ROOT, "tests/testbed"), "up", "--name", self.name, "--workers", "1",
                "--certs", self.t.pki, "--manifests", self.t.man]
        for s in sets:  # after --manifests: cluster.manifest_dir= wins (pod IPs stay on lo)
            args += ["--set", s]
        env = dict(os.environ, WP_BIN=os.path.join(BUILD, "dp/waypointd"))
        r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("testbed up %s failed: %s%s" % (self.name, r.stdout, r.stderr))
        v = dict(line.split("=", 1) for line in r.stdout.split() if "=" in line)
        self.pid, self.log, self.rc_file = int(v["WP_PID"]), v["WP_LOG"], v["WP_RC_FILE"]
        self.prefix = v["WP_PREFIX"]
        self.relay = Relay(self.name, self.t.api_ns)
        # the upstream echo server (pod echo-1, 198.18.1.10 on this namespace's lo)
        self.echo = subprocess.Popen(["ip", "netns", "exec", self.name, PY,
                                      os.path.join(ROOT, "tests/integration/tcpcheck.py"), "server", "7000"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def down(self):
        if self.relay:
            self.relay.stop()
            self.relay = None
        if getattr(self, "echo", None):
            self.echo.kill()
            self.echo.wait()
            self.echo = None
        subprocess.run([os.path.join(ROOT, "tests/testbed"), "down", self.name],
                       capture_output=True, timeout=60)

    def alive(self):
        try:
            os.kill(self.pid, 0)
            return True
        except OSError:
            return False

    def config_dump(self):
        with InNs(self.name):
            with urllib.request.urlopen("http://127.0.0.1:15000/config_dump", timeout=5) as r:
                d = json.loads(r.read())
        return next(s for s in d["sources"] if s["name"] == "kubernetes")

    def log_text(self):
        with open(self.log) as f:
            return f.read()

    def load(self, tunnels, nbytes, rate=0, timeout=60):
        """An HBONE client in this appliance's namespace (a Popen; stdout
        is hbone_load.py's JSON report)."""
        args = ["ip", "netns", "exec", self.name, PY, LOAD, "echo", "--addr", "198.18.0.2:15008",
                "--certs", self.t.pki, "--authority", AUTHORITY, "--tunnels", str(tunnels),
                "--bytes", str(nbytes), "--timeout", str(timeout)]
        if rate:
            args += ["--rate", str(rate)]
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class Test:
    def __init__(self):
        tag = "%d" % (os.getpid() % 100000)
        self.dir = tempfile.mkdtemp(prefix="wp-members-")
        os.chmod(self.dir, 0o755)
        self.api_ns = "wpm%s-api" % tag
        self.pki = os.path.join(self.dir, "pki")
        self.man = os.path.join(self.dir, "manifests")
        os.makedirs(self.man)
        subprocess.run([os.path.join(ROOT, "tests/pki/mkpki.sh"), self.pki], check=True,
                       capture_output=True, timeout=60)
        # the testbed puts the pod IPs found here on each namespace's lo
        with open(os.path.join(self.man, "pods.yaml"), "w") as f:
            json.dump(cluster()[-1], f)
        with open(os.path.join(self.dir, "cluster.yaml"), "w") as f:
            f.write("\n---\n".join(json.dumps(o) for o in cluster()))
        subprocess.run(["ip", "netns", "add", self.api_ns], check=True)
        subprocess.run(["ip", "-n", self.api_ns, "link", "set", "lo", "up"], check=True)
        self.orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open("/run/netns/" + self.api_ns, os.O_RDONLY)
        setns_fd(fd)  # the main thread (and fakeapi, wpctl) live in the API namespace
        os.close(fd)
        os.makedirs(os.path.join(self.dir, "api"))
        self.api = FakeAPI(workdir=os.path.join(self.dir, "api"), port=API_PORT,
                           load=[os.path.join(self.dir, "cluster.yaml")])
        self.members = [Member(self, "wpm%s-%s" % (tag, c), i) for i, c in enumerate("abc")]
        self.api.control("clients", tokens={m.name: m.token for m in self.members})
        self.by_name = {m.name: m for m in self.members}

    def close(self):
        for m in self.members:
            m.down()
        self.api.stop()
        setns_fd(self.orig)
        subprocess.run(["ip", "netns", "del", self.api_ns], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- what the API server shows -------------------------------------
    def entries(self):
        code, out = self.api.api("GET", WES + "?labelSelector=app.kubernetes.io%2Fname%3Dwaypointd")
        assert code == 200, out
        return {e["metadata"]["labels"]["waypointd.io/member"]: e for e in out["items"]}

    def requests(self):
        return self.api.control("requests")["requests"]

    def status_puts(self, who, since_ns=0):
        return [r["t_ns"] for r in self.requests()
                if r["method"] == "PUT" and r["path"].startswith(GWS) and r["path"].endswith("/status")
                and r["who"] == who and r["t_ns"] >= since_ns and not r["blocked"]]

    def writers(self, since_ns=0):
        return {r["who"] for r in self.requests()
                if r["method"] == "PUT" and r["path"].startswith(GWS) and r["path"].endswith("/status")
                and r["t_ns"] >= since_ns and not r["blocked"]}

    def holder(self):
        return self.api.api("GET", LEASE)[1]["spec"]["holderIdentity"]

    def bump(self, n):
        """A spec change: the leader has to write status for it."""
        code, out = self.api.api("PATCH", GWS + "/waypoint", {"spec": {"listeners": [
            {"name": "mesh", "port": 15008, "protocol": "HBONE"},
            {"name": "x%d" % n, "port": 15009, "protocol": "HBONE"}]}}, ctype="application/merge-patch+json")
        assert code == 200, out

    def programmed(self):
        gw = self.api.api("GET", GWS + "/waypoint")[1]
        conds = {c["type"]: c for c in (gw.get("status") or {}).get("conditions", [])}
        return gw["metadata"]["generation"], (conds.get("Programmed") or {}).get("observedGeneration")

    def spread(self, tunnels, nbytes, rate=0, timeout=60):
        """Tunnels spread round-robin over the Service's endpoints as
        listed now (as a ztunnel picks an endpoint per connection): one
        HBONE connection per endpoint carrying its share. {member: Popen}."""
        eps = sorted(self.entries().values(), key=lambda e: e["spec"]["address"])
        assert eps, "no endpoints"
        share = {}
        for k in range(tunnels):
            e = eps[k % len(eps)]
            share[e["metadata"]["labels"]["waypointd.io/member"]] = share.get(
                e["metadata"]["labels"]["waypointd.io/member"], 0) + 1
        return {who: self.by_name[who].load(n, nbytes, rate, timeout) for who, n in share.items()}

    @staticmethod
    def finish(loads, timeout=90):
        reps = {}
        for who, p in loads.items():
            out, _ = p.communicate(timeout=timeout)
            try:
                rep = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                rep = {"error": out}
            reps[who] = (p.returncode, rep)
        return reps


def step(msg):
    print("  - " + msg, flush=True)


def wait_registered(t, names, timeout=40):
    wait_for(lambda: set(t.entries()) == set(names), timeout, interval=0.2,
             what="entries of %s (have %s)" % (sorted(names), sorted(t.entries())))


def phase_register_and_serve(t):
    """1: three members, the Service's endpoints, a load served by all."""
    for m in t.members:
        m.up()
    wait_registered(t, [m.name for m in t.members])
    ents = t.entries()
    for m in t.members:
        e = ents[m.name]
        assert e["spec"]["address"] == m.addr and e["spec"]["serviceAccount"] == "waypointd", e
        assert e["metadata"]["name"] == "waypointd-" + m.name, e
        assert e["spec"]["labels"]["app.kubernetes.io/name"] == "waypointd", e
    step("three WorkloadEntries selected by Service %s/waypointd: %s" % (
        NS, sorted((e["metadata"]["name"], e["spec"]["address"]) for e in ents.values())))
    # every appliance ready to serve the echo authority (snapshot in force)
    for m in t.members:
        wait_for(lambda: m.config_dump()["membership"]["registered"], 10, what=m.name + " registered")
    wait_for(lambda: t.programmed()[1] == t.programmed()[0], 20, interval=0.2, what="status written")
    loads = t.spread(24, 262144)
    reps = t.finish(loads)
    for who, (rc, rep) in reps.items():
        assert rc == 0 and rep.get("ok") == rep.get("tunnels") == 8 and not rep["mismatch"], (who, rep)
    assert set(reps) == {m.name for m in t.members}, reps
    step("24 tunnels x 256 KiB both ways, 8 per endpoint, all bytes verified (SHA-256): %s" % (
        {w: r[1]["seconds"] for w, r in reps.items()}))
    # an appliance sees the members through its watch, which may trail the API server
    want = sorted(m.name for m in t.members)
    wait_for(lambda: sorted(x["identity"] for x in t.members[0].config_dump()["membership"]["members"])
             == want, 10, interval=0.2, what="config dump lists the three members")
    d = t.members[0].config_dump()
    assert sorted(x["identity"] for x in d["membership"]["members"]) == want, d
    assert d["lease"]["holder"] in t.by_name and d["lease"]["age_s"] >= 0, d
    r = subprocess.run([os.path.join(BUILD, "cp/wpctl/wpctl"), "waypoint", "status", "-n", NS,
                        "--class", "waypointd"], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, KUBECONFIG=t.api.kubeconfig, HOME=t.dir))
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()]
    assert ["MEMBER", "ENTRY", "SERVICE", "ADDRESS", "RENEWED"] in rows, r.stdout
    listed = {x[0]: x for x in rows if x and x[0] in t.by_name}
    assert set(listed) == set(t.by_name), r.stdout
    for name, row in listed.items():
        assert row[1] == "%s/waypointd-%s" % (NS, name) and row[3] == t.by_name[name].addr, r.stdout
        assert int(row[4].rstrip("s")) <= 2, r.stdout
    assert any(x[:1] == ["%s/waypointd-waypointd" % NS] for x in rows), r.stdout
    step("wpctl waypoint status lists the three members and the Lease; config dump the members and holder")


def phase_one_writer_and_kill(t):
    """2: one writer; SIGKILL it; another writes; the dead entry expires;
    restarted, it registers again and writes nothing."""
    t0 = time.time_ns()
    for n in range(2):
        t.bump(n)
        wait_for(lambda: t.programmed()[1] == t.programmed()[0], 10, interval=0.2, what="status follows")
    writers = t.writers()
    assert len(writers) == 1 and writers == {t.holder()}, (writers, t.holder())
    leader = t.by_name[t.holder()]
    assert len(t.status_puts(leader.name, t0)) >= 2
    step("exactly one status writer (audit: %s), the Lease holder" % sorted(writers))

    t_kill = time.time()
    os.kill(leader.pid, signal.SIGKILL)
    wait_for(lambda: not leader.alive(), 5, what="killed")
    t.bump(10)
    others = [m.name for m in t.members if m is not leader]
    wait_for(lambda: any(t.status_puts(o, int(t_kill * 1e9)) for o in others),
             DURATION + 2 * RETRY + 3, interval=0.2, what="another writes")
    first = min(x for o in others for x in t.status_puts(o, int(t_kill * 1e9)))
    took = first / 1e9 - t_kill
    print("    takeover after SIGKILL: %.1f s" % took)
    assert took <= DURATION + 1, took  # the lease duration, and the status PUT
    new = t.holder()
    assert new in others, new
    wait_for(lambda: t.programmed()[1] == t.programmed()[0], 5, what="new leader programs")
    # the dead member's entry: removed by the new leader once it stood still
    # for the TTL on the new leader's clock (it may have done so already)
    wait_for(lambda: leader.name not in t.entries(), TTL_MS / 1000 + 2 * RENEW_MS / 1000 + 2,
             interval=0.2, what="the dead member's entry expires")
    gone = [r for r in t.requests() if r["method"] == "DELETE" and r["path"].endswith("/waypointd-" + leader.name)]
    assert gone and {r["who"] for r in gone} == {new}, gone
    step("another (%s) wrote %.1f s after the SIGKILL; it deleted the dead member's entry" % (new, took))

    # restore it: it registers again, and writes no status as a follower
    leader.down()
    leader.up()
    wait_registered(t, [m.name for m in t.members])
    t_back = time.time_ns()
    wait_for(lambda: leader.config_dump()["lease"]["holder"] == new, 10, what="restarted one sees the holder")
    for n in range(20, 22):
        t.bump(n)
        wait_for(lambda: t.programmed()[1] == t.programmed()[0], 10, interval=0.2, what="status follows")
    assert t.status_puts(leader.name, t_back) == [], t.status_puts(leader.name, t_back)
    d = leader.config_dump()
    assert d["lease"]["leading"] is False, d
    step("restarted %s registered again and wrote no status (holder %s)" % (leader.name, new))


def phase_scale_in(t):
    """3: SIGTERM one under load: deregistered before its GOAWAY, no tunnel cut."""
    wait_registered(t, [m.name for m in t.members])
    loads = t.spread(12, 1 << 20, rate=262144, timeout=60)  # ~4 s of streaming each
    time.sleep(1)
    victim = next(m for m in t.members if m.name != t.holder())
    t_term = time.time_ns()
    os.kill(victim.pid, signal.SIGTERM)
    reps = t.finish(loads)
    for who, (rc, rep) in reps.items():
        assert rc == 0 and rep["ok"] == rep["tunnels"] == 4 and not rep["mismatch"], (who, rep)
    dels = [r["t_ns"] for r in t.requests() if r["method"] == "DELETE" and r["who"] == victim.name
            and r["path"].endswith("/waypointd-" + victim.name) and r["t_ns"] >= t_term]
    assert dels, "no DELETE of its entry"
    goaway = reps[victim.name][1]["goaway_wall_ns"]
    assert goaway, reps[victim.name]
    print("    deregistered %.2f s after SIGTERM, GOAWAY %.2f s after it" % (
        (dels[0] - t_term) / 1e9, (goaway - dels[0]) / 1e9))
    assert goaway - dels[0] >= GRACE_MS * 1e6 * 0.9, (goaway, dels[0])
    assert victim.name not in t.entries()
    for who, (rc, rep) in reps.items():
        if who != victim.name:
            assert not rep["goaway"], (who, rep)
    wait_for(lambda: not victim.alive(), 15, what="the drained one exits")
    # the testbed's wrapper writes the exit status just after the process ends
    wait_for(lambda: os.path.exists(victim.rc_file) and open(victim.rc_file).read().strip(), 5,
             what="its exit status")
    with open(victim.rc_file) as f:
        assert f.read().strip() == "0"
    step("SIGTERM under load: entry deleted, GOAWAY %.1f s later, 12 tunnels verified, others untouched"
         % ((goaway - dels[0]) / 1e9))
    rest = [m for m in t.members if m is not victim]
    loads = t.spread(8, 262144)
    assert set(loads) == {m.name for m in rest}, loads
    for who, (rc, rep) in t.finish(loads).items():
        assert rc == 0 and rep["ok"] == 4 and not rep["mismatch"], (who, rep)
    step("the two left carry on: 8 new tunnels over two endpoints, verified")
    victim.down()
    victim.up()
    wait_registered(t, [m.name for m in t.members])


def phase_partition(t):
    """4: the leader cut off from the API server steps down before its
    Lease expires; another takes over; healed, the old one writes nothing."""
    leader = t.by_name[t.holder()]
    t.api.control("block", who=leader.name, match="", seconds=30)
    t_block = time.time_ns()
    renews = [r["t_ns"] for r in t.requests() if r["who"] == leader.name and r["method"] in ("PUT", "POST")
              and "/leases" in r["path"] and not r["blocked"] and r["t_ns"] < t_block]
    t_renew = max(renews) / 1e9
    stepped, n, next_bump = None, 0, 0.0
    end = time.time() + DURATION + 2 * RETRY + 5
    while time.time() < end:
        if time.time() >= next_bump:
            t.bump(100 + n)
            n, next_bump = n + 1, time.time() + 1
        if stepped is None and not leader.config_dump()["lease"]["leading"]:
            stepped = time.time()
        if stepped and t.writers(t_block) - {leader.name}:
            break
        time.sleep(0.2)
    assert stepped is not None, "the partitioned leader never stepped down"
    print("    stepped down %.1f s after its last renewal (deadline %d s, lease %d s)" % (
        stepped - t_renew, DEADLINE, DURATION))
    assert stepped - t_renew < DURATION, stepped - t_renew
    late = [x / 1e9 - t_renew for x in t.status_puts(leader.name) if x / 1e9 > t_renew + DEADLINE]
    assert late == [], late
    new = t.writers(t_block) - {leader.name}
    assert new, "nobody took over"
    new = new.pop()
    first = min(t.status_puts(new, t_block)) / 1e9
    assert DEADLINE <= first - t_renew <= DURATION + 1, first - t_renew
    print("    %s took over %.1f s after the old leader's last renewal" % (new, first - t_renew))
    t.api.control("block", who=leader.name, off=True)
    t_heal = time.time_ns()
    wait_for(lambda: leader.config_dump()["lease"]["holder"] == new, 2 * RETRY + 6, what="old leader sees the new")
    t.bump(999)
    wait_for(lambda: t.programmed()[1] == t.programmed()[0], 10, interval=0.2, what="new leader writes")
    assert t.status_puts(leader.name, t_heal) == []
    step("partitioned leader stopped leading %.1f s after its last renewal, %s took over, "
         "healed: no write from the old leader" % (stepped - t_renew, new))


def main():
    t = Test()
    failed = False
    try:
        for phase in (phase_register_and_serve, phase_one_writer_and_kill, phase_scale_in, phase_partition):
            t0 = time.monotonic()
            print(phase.__name__, flush=True)
            phase(t)
            print("ok   %s (%.1fs)" % (phase.__name__, time.monotonic() - t0), flush=True)
    except Exception:
        import traceback
        traceback.print_exc()
        failed = True
        for m in t.members:
            try:
                print("--- %s log (tail):\n%s" % (m.name, "".join(m.log_text().splitlines(True)[-25:])))
            except OSError:
                pass
    finally:
        t.close()
    if failed:
        sys.exit(1)
    print("all phases passed")


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: needs root")
        sys.exit(77)
    main()
