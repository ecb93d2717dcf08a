#!/usr/bin/python3
"""L7 benchmark (issue 6): waypointd against HAProxy and h2o on the same load, same run.

  bench/l7_bench.py [--build DIR] [--conns N] [--seconds S]
                         [--links tap,memif] [--mux-conns M] [--mux-streams K]
                         [--authz-policies P] [--telemetry] [--resilience]
                         [--set KEY=VALUE ...] [--json FILE]

Per link (tap, memif), one testbed namespace (tests/testbed --manifests
--certs, 1 worker) holds:
  backend   bench/l7_load serve: a C epoll HTTP/1.1 server on the pod IP
            198.18.1.10:9080 answering every request with 200 and a
            1024-byte body (keep-alive).
  waypointd HBONE on :15008; service "web" 198.19.0.10:9080 (port name
            http, namespace not ambient: plaintext pooled upstreams) -> pod.
  HAProxy   the peer (Debian haproxy) on the namespace's loopback :15443:
            TLS 1.3 with client-certificate verification (same CA and
            identities), ALPN h2, one thread; HTTP/1.1 to the same backend
            with connection reuse (http-reuse always).
  h2o       the second peer (Debian h2o) on loopback :15444: TLS 1.3, ALPN
            h2, one thread; HTTP/1.1 to the same backend with keep-alive
            (proxy.reverse.url, proxy.timeout.keepalive). Debian 12's h2o
            (2.2.5) cannot ask for client certificates, so its TLS has no
            client authentication (the output says so): slightly less work
            than the other two do. Its CPU is counted over its process and
            the helper process it forks.
TLS suite: every row's TLS 1.3 runs TLS_AES_128_GCM_SHA256, waypointd's
default choice: HAProxy is given waypointd's list (its own default would
pick AES-256), and l7_load offers it in that order, which h2o 2.2 (no
TLS 1.3 suite setting) follows. The table and the JSON give the suite each
row negotiated, and a note says when they differ.
Pinning, the same for both proxies in every run: the proxy under test alone
on the last CPU (waypointd: its worker lcore; its main lcore -- control
plane -- on CPU 0; HAProxy: taskset), the load generator, the backend and
(memif) the wire on CPU 0. With one CPU nothing is pinned.
Links: tap -- waypointd's port is the TAP, each packet a read()/write()
system call on the worker's core; memif -- tests/testbed --link memif,
dpdk-testpmd on CPU 0 joins a memif ring (what a NIC's descriptor ring
costs) to the same TAP. HAProxy uses kernel sockets on loopback in both.

Load (bench/l7_load, C, OpenSSL + nghttp2, kernel sockets, one thread per
connection): 1 KiB HTTP/1.1 requests (POST, 1024-byte body; the response
carries 1024 bytes). Shapes:
  waypointd             N persistent HBONE tunnels (one mTLS h2 connection
                        each, one CONNECT stream), keep-alive HTTP/1.1 inside,
                        one request in flight per tunnel;
  haproxy               the same shape: N mTLS h2 connections, one h2 POST in
                        flight each (a new stream per request), forwarded as
                        HTTP/1.1 -- HAProxy does not proxy HTTP/1.1 inside h2
                        CONNECT, so this is the closest equivalent it
                        supports: same TLS, same h2 framing in front, same
                        HTTP/1.1 requests behind, same bytes;
  haproxy_multiplexed   HAProxy at its cheaper shape: M connections x K
                        concurrent streams each (default 16 x 16);
  h2o, h2o_multiplexed  h2o in the same two shapes;
  direct                N plain keep-alive HTTP/1.1 connections to the
                        backend (the baseline for the added latency).

Figures per link:
  1. closed loop, S seconds per row: requests/s seen by the client, and
     cpu_cycles_per_request = the proxy process's user+system CPU time
     (/proc/PID/stat, all its threads) over the run x TSC Hz / requests.
     This is the measure every ratio uses, the same for both proxies.
     waypointd's process time includes its control-plane thread and its
     worker's adaptive idle polling (spins before it sleeps) -- an upper
     bound on its work; HAProxy sleeps in epoll.
     Not ratios, waypointd only: its TSC accounting (busy_cycles: loop
     iterations that did work, so without idle polls but with any time the
     worker was preempted; io_cycles: inside the PMD's burst calls -- on TAP
     the system calls; own = busy - io) per request, and the worker
     thread's user/system CPU per request.
  2. half load: waypointd, haproxy, h2o (same shape) and direct paced at the
     same rate, half the lowest of the same-shape closed-loop rates; p50/p99
     latency and the added latency over direct.
Ratios (per link, PEER haproxy or h2o):
  cpu_per_request_PEER_over_waypointd             same shape, same pinning;
  cpu_per_request_PEER_multiplexed_over_waypointd shapes differ (M x K
      streams for the peer, N x 1 for waypointd), said in the key;
  added_p50/p99_PEER_over_waypointd               half load.
--json FILE also writes the JSON line to FILE (bench/plot_l7.py draws the
peers side by side from it as a PNG).
With --authz-policies P (issue 13): after the waypointd row, P
AuthorizationPolicies on the service (a mix of ALLOW rules on principals,
paths and methods, DENY rules on paths and a header, AUDIT rules; the
client's identity allowed by one of them) are written into the manifest
directory, and once the workers decide with them (authz_allowed_match moves)
the same closed loop runs again: row waypointd_authz, and the ratio
busy_cycles_per_request_authz_over_none (goal: at most 1.10).
With --resilience (issue 15): after the waypointd row, a DestinationRule
on the service with connection-pool limits (high enough never to refuse
the bench's 16 requests in flight) and outlier detection is written into
the manifest directory, and once the config dump lists its limits the same
closed loop runs again: row waypointd_resilience, and the ratio
busy_cycles_per_request_resilience_over_none (goal: at most 1.03).
With --telemetry (issue 14): after the rows above, per link, waypointd
alone in fresh testbeds (same pinning, same load), --telemetry-runs
(default 3) pairs of closed loops in turn: telemetry off (metrics.enabled
false, no access log), then on (Istio metrics recorded and an access-log
line per request written to a file); rows waypointd_telemetry_off / _on
(the mean of the runs of each, each run listed) and the ratio busy_cycles_per_request_telemetry_on_over_off (goal: at
most 1.05), with the access-log lines counted against the requests.
--set KEY=VALUE (repeatable) passes a waypointd setting to every testbed
of the run, as tests/testbed --set (e.g. polling.mode=busy: a saturated
worker's terms, since a worker that always has work never sleeps); the
JSON line lists them (waypointd_settings).
Prints a table per link, then one JSON line. Bounded (per link a fixed
number of runs of S seconds, each stopping by itself, plus set-up); not a
pass/fail test.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import (ROOT, WAYPOINT_MANIFEST_HEAD, Telemetry, proc_cpu_s, sh, thread_cpu_s,
                      tree_cpu_s)

NS = "wpbench-l7"
VIP = "198.19.0.10"
POD = "198.18.1.10"


def ns_run(*args):
    """Runs in the namespace; returns (json of the last stdout line, rc)."""
    p = subprocess.run(["ip", "netns", "exec", NS, *args], capture_output=True, text=True,
                       timeout=600)
    lines = p.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError("%s: no output (rc %d): %s" % (args[0], p.returncode, p.stderr[-500:]))
    return json.loads(lines[-1]), p.returncode


MANIFEST = WAYPOINT_MANIFEST_HEAD + """apiVersion: v1
kind: Service
metadata: {name: web, namespace: bench}
spec:
  clusterIP: %s
  selector: {app: web}
  ports: [{name: http, port: 9080, targetPort: 9080}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: bench, labels: {app: web}}
spec: {serviceAccountName: web}
status:
  phase: Running
  podIP: %s
  conditions: [{type: Ready, status: "True"}]
""" % (VIP, POD)

HAPROXY_CFG = """global
    nbthread 1
    maxconn 4096
    tune.ssl.default-dh-param 2048
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend fe
    bind 127.0.0.1:15443 ssl crt {pki}/haproxy.pem ca-file {pki}/ca.pem verify required alpn h2 ssl-min-ver TLSv1.3 ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384
    default_backend be
backend be
    http-reuse always
    server s1 {pod}:9080
"""

RESILIENCE_DR = """apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web-resilience, namespace: bench}
spec:
  host: web.bench.svc.cluster.local
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1024, connectTimeout: 2s}
      http: {http1MaxPendingRequests: 1024, http2MaxRequests: 1024, maxRetries: 16}
    outlierDetection:
      consecutive5xxErrors: 5
      consecutiveGatewayErrors: 3
      interval: 5s
      baseEjectionTime: 30s
      maxEjectionPercent: 50
"""

# Prints the connection pools the running snapshot holds for service web.
POOLS_PY = """import json, urllib.request
d = json.load(urllib.request.urlopen("http://127.0.0.1:15000/config_dump", timeout=5))
print(json.dumps([c for s in d["snapshot"]["services"] if s["name"] == "web"
                  for p in s["ports"] for c in p["routes"].get("connectionPools", [])]))
"""

H2O_PORT = 15444
H2O_CFG = """num-threads: 1
user: nobody
listen:
  host: 127.0.0.1
  port: {port}
  ssl:
    certificate-file: {pki}/cert.pem
    key-file: {pki}/key.pem
    minimum-version: TLSv1.3
    ocsp-update-interval: 0
proxy.timeout.keepalive: 60000
http2-idle-timeout: 60
access-log: /dev/null
hosts:
  default:
    paths:
      /:
        proxy.reverse.url: http://{pod}:9080/
"""
H2O_NOTE = ("h2o %s cannot request client certificates: its TLS 1.3 runs without client "
            "authentication (waypointd and HAProxy verify the client's certificate)")

PEERS = ("haproxy", "h2o")


def policies(n):
    """n AuthorizationPolicies on service web: the bench client
    (productpage) allowed by the first; the others a mix of what meshes
    write, none of which matches the bench's requests but all of which the
    engine has in its databases."""
    docs = ["""apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-bench, namespace: bench}
spec:
  targetRefs: [{kind: Service, group: "", name: web}]
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/productpage"]}}]
    to: [{operation: {methods: ["GET", "POST"], paths: ["/bench", "/api/*"]}}]
"""]
    for i in range(1, n):
        kind = i % 10
        if kind < 6:
            docs.append("""apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-%d, namespace: bench}
spec:
  targetRefs: [{kind: Service, group: "", name: web}]
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/ns%d/sa/sa%d"], namespaces: ["team%d"]}}]
    to: [{operation: {methods: ["GET"], paths: ["/api/v%d/*", "*.json"]}}]
""" % (i, i % 40, i, i % 25, i % 7))
        elif kind < 9:
            docs.append("""apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-%d, namespace: bench}
spec:
  targetRefs: [{kind: Service, group: "", name: web}]
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin/%d*"]}}]
  - when: [{key: "request.headers[x-tenant]", values: ["blocked-%d"]}]
""" % (i, i, i))
        else:
            docs.append("""apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit-%d, namespace: bench}
spec:
  targetRefs: [{kind: Service, group: "", name: web}]
  action: AUDIT
  rules:
  - from: [{source: {principals: ["*/sa/audited-%d"]}}]
""" % (i, i))
    return "---\n".join(docs)


def stop(procs):
    """Stops the peers started so far (SIGTERM, then SIGKILL after 5 s)."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
    procs.clear()


def per_request(cpu_s, n, tsc):
    return round(cpu_s / n * tsc) if n else None


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--conns", type=int, default=16,
                    help="N: tunnels / connections, one request in flight each (default 16)")
    ap.add_argument("--seconds", type=float, default=10, help="S: per run (default 10)")
    ap.add_argument("--links", default="tap,memif", help="tap, memif or both (default tap,memif)")
    ap.add_argument("--mux-conns", type=int, default=16,
                    help="M: haproxy_multiplexed connections (default 16)")
    ap.add_argument("--authz-policies", type=int, default=0,
                    help="P: also run waypointd with P AuthorizationPolicies (default 0: not)")
    ap.add_argument("--telemetry", action="store_true",
                    help="also run waypointd with Istio metrics and the access log off and on")
    ap.add_argument("--telemetry-runs", type=int, default=3, metavar="N",
                    help="--telemetry: off/on pairs, alternating (default 3)")
    ap.add_argument("--resilience", action="store_true",
                    help="also run waypointd with a DestinationRule's connection-pool limits and "
                         "outlier detection on the service")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a waypointd setting for every testbed of the run, as tests/testbed "
                         "--set (e.g. polling.mode=busy); repeatable")
    ap.add_argument("--json", help="also write the JSON result to this file")
    ap.add_argument("--mux-streams", type=int, default=16,
                    help="K: haproxy_multiplexed streams in flight per connection (default 16)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("l7_bench: run as root")
    for peer in PEERS:
        if not shutil.which(peer):
            sys.exit("l7_bench: %s missing (apt-get install %s)" % (peer, peer))
    a.conns = max(1, min(a.conns, 256))
    a.mux_conns = max(1, min(a.mux_conns, 256))
    a.mux_streams = max(1, min(a.mux_streams, 100))
    links = [x for x in ("tap", "memif") if x in a.links.split(",")]
    if not links or set(a.links.split(",")) - {"tap", "memif"}:
        sys.exit("l7_bench: --links: tap, memif or tap,memif")
    a.seconds = max(1.0, min(a.seconds, 120.0))
    for kv in a.set:
        if "=" not in kv:
            sys.exit("l7_bench: --set %s: KEY=VALUE" % kv)
    load = os.path.join(a.build, "bench/l7_load")
    tmp = tempfile.mkdtemp(prefix="wp-l7-bench.")
    pki, man = os.path.join(tmp, "pki"), os.path.join(tmp, "man")
    os.makedirs(man)
    sh(os.path.join(ROOT, "tests/pki/mkpki.sh"), pki)
    with open(os.path.join(pki, "haproxy.pem"), "w") as f:
        for n in ("cert.pem", "key.pem"):
            f.write(open(os.path.join(pki, n)).read())
    with open(os.path.join(man, "cluster.yaml"), "w") as f:
        f.write(MANIFEST)
    with open(os.path.join(tmp, "haproxy.cfg"), "w") as f:
        f.write(HAPROXY_CFG.format(pki=pki, pod=POD))
    with open(os.path.join(tmp, "h2o.conf"), "w") as f:
        f.write(H2O_CFG.format(port=H2O_PORT, pki=pki, pod=POD))
    h2o_version = subprocess.run(["h2o", "--version"], capture_output=True,
                                 text=True).stdout.split("\n")[0].replace("h2o version ", "")
    env = dict(os.environ, WP_BIN=os.path.join(a.build, "dp/waypointd"))
    ncpu = os.cpu_count() or 1
    proxy_cpu = ncpu - 1
    pin = ["taskset", "-c", "0"] if ncpu > 1 else []  # load generator, backend
    pin_proxy = ["taskset", "-c", str(proxy_cpu)] if ncpu > 1 else []
    res = {"bench": "l7_bench", "conns": a.conns, "seconds_per_run": a.seconds,
           "request_body": 1024, "response_body": 1024,
           "pinning": ("proxy alone on CPU %d; load generator, backend, waypointd's main "
                       "lcore and (memif link) the wire on CPU 0" % proxy_cpu)
                      if ncpu > 1 else "none",
           "cpu_measure": "process user+system CPU time (/proc/PID/stat) x TSC Hz / requests",
           "peers": {"haproxy": subprocess.run(["haproxy", "-v"], capture_output=True,
                                               text=True).stdout.split("\n")[0],
                     "h2o": "h2o " + h2o_version},
           "peer_notes": [H2O_NOTE % h2o_version],
           "links": {}}
    if a.set:
        res["waypointd_settings"] = a.set
    if "polling.mode=busy" in a.set:
        res["peer_notes"].append("polling.mode=busy: waypointd's worker polls without sleeping, "
                                 "so its process CPU is its whole core whatever the load and "
                                 "the cpu/request ratios say nothing of its work; compare its "
                                 "TSC busy cycles per request")
    cert = [pki + "/productpage.pem", pki + "/productpage-key.pem", pki + "/ca.pem"]
    auth = "%s:9080" % VIP

    def hbone(wip, conns, secs, rate):
        return ns_run(*pin, load, "hbone", wip, "15008", str(conns), str(secs), str(rate),
                      *cert, auth)

    def h2(conns, secs, rate, streams=1, port=15443):
        return ns_run(*pin, load, "h2", "127.0.0.1", str(port), str(conns), str(secs), str(rate),
                      *cert, auth, str(streams))

    def h1(conns, secs, rate):
        return ns_run(*pin, load, "h1", POD, "9080", str(conns), str(secs), str(rate))

    def testbed_up(link, sets=()):
        sh(os.path.join(ROOT, "tests/testbed"), "down", NS)  # a leftover from an aborted run
        extra = ["--set", "eal.lcores=0@0,1@%d" % proxy_cpu] if ncpu > 1 else []
        for kv in (*a.set, *sets):
            extra += ["--set", kv]
        if link == "memif":
            extra += ["--link", "memif", "--wire-cpu", "0"]
        out = sh(os.path.join(ROOT, "tests/testbed"), "up", "--name", NS, "--manifests", man,
                 "--certs", pki, "--set", "cluster.gateway_class=istio-waypoint", *extra,
                 env=env)
        tb = dict(line.split("=", 1) for line in out.split())
        return tb["WP_PREFIX"], tb["WP_IP"], int(tb["WP_PID"])

    def wait_vip(wip):
        # the control plane loads the manifests: wait until the VIP is captured
        for _ in range(100):
            r, rc = hbone(wip, 1, 0.3, 0)
            if rc == 0 and r["requests"] > 0:
                return
            time.sleep(0.2)
        raise RuntimeError("web VIP never answered through waypointd: %s" % r)

    def closed_wp(t, wip, wpid, tsc):
        """waypointd at saturation: the figures of one closed-loop run."""
        s0 = t.totals()
        p0 = proc_cpu_s(wpid)
        u0, k0 = thread_cpu_s(wpid, "rte-worker")
        wr, _ = hbone(wip, a.conns, a.seconds, 0)
        p1 = proc_cpu_s(wpid)
        u1, k1 = thread_cpu_s(wpid, "rte-worker")
        s1 = t.totals()

        def d(k):
            return s1.get(k, 0) - s0.get(k, 0)
        n = wr["requests"]
        busy, io = d("busy_cycles"), d("io_cycles")
        pkts = d("rx_packets") + d("tx_packets")
        return wr, {"shape": "%d tunnels x 1 request" % a.conns,
                    "requests": n, "failed": wr["failed"], "l7_h1p_request": d("l7_h1p_request"),
                    "rps_wall": wr["rps"], "tls_suite": wr["tls_suite"],
                    "closed_loop_p50_us": wr["p50_us"], "closed_loop_p99_us": wr["p99_us"],
                    "cpu_cycles_per_request": per_request(p1 - p0, n, tsc),
                    "rps_per_core_cpu": round(n / (p1 - p0)) if p1 > p0 else None,
                    "not_ratio": {
                        "tsc_busy_cycles_per_request": round(busy / n) if n else None,
                        "tsc_io_cycles_per_request": round(io / n) if n else None,
                        "tsc_own_cycles_per_request": round((busy - io) / n) if n else None,
                        "worker_user_cycles_per_request": per_request(u1 - u0, n, tsc),
                        "worker_system_cycles_per_request": per_request(k1 - k0, n, tsc),
                        "packets_per_request": round(pkts / n, 2) if n else None,
                        "io_cycles_per_packet": round(io / pkts) if pkts else None}}

    def closed_hp(hp_pid, tsc, conns, streams, port=15443):
        """A peer at saturation (its process and any it forked)."""
        c0 = tree_cpu_s(hp_pid)
        hr, _ = h2(conns, a.seconds, 0, streams, port)
        c1 = tree_cpu_s(hp_pid)
        n = hr["requests"]
        return hr, {"shape": "%d connections x %d stream%s" % (conns, streams,
                                                              "s" if streams > 1 else ""),
                    "requests": n, "failed": hr["failed"], "rps_wall": hr["rps"],
                    "tls_suite": hr["tls_suite"],
                    "closed_loop_p50_us": hr["p50_us"], "closed_loop_p99_us": hr["p99_us"],
                    "cpu_cycles_per_request": per_request(c1 - c0, n, tsc),
                    "rps_per_core_cpu": round(n / (c1 - c0)) if c1 > c0 else None}

    def run_link(link, procs):
        prefix, wip, wpid = testbed_up(link)
        be = subprocess.Popen(["ip", "netns", "exec", NS, *pin, load, "serve", "9080"],
                              stdout=subprocess.PIPE, text=True)
        procs.append(be)
        be.stdout.readline()
        hp = subprocess.Popen(["ip", "netns", "exec", NS, *pin_proxy, "haproxy", "-db", "-f",
                               os.path.join(tmp, "haproxy.cfg")],
                              stdout=subprocess.DEVNULL, stderr=open(tmp + "/haproxy.log", "w"))
        procs.append(hp)
        ho = subprocess.Popen(["ip", "netns", "exec", NS, *pin_proxy, "h2o", "-c",
                               os.path.join(tmp, "h2o.conf")],
                              stdout=subprocess.DEVNULL, stderr=open(tmp + "/h2o.err", "w"))
        procs.append(ho)
        wait_vip(wip)
        r, rc = h2(1, 0.3, 0)
        if rc != 0 or r["requests"] == 0:
            raise RuntimeError("HAProxy does not answer: %s %s" %
                               (r, open(tmp + "/haproxy.log").read()))
        for _ in range(50):  # h2o takes a moment to listen
            r, rc = h2(1, 0.3, 0, 1, H2O_PORT)
            if rc == 0 and r["requests"] > 0:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("h2o does not answer: %s %s" %
                               (r, open(tmp + "/h2o.err").read()[-1000:]))
        t = Telemetry(prefix)
        tsc = t.query("/wp/info")["tsc_hz"]
        res["tsc_hz"] = tsc
        out = {}
        wr, out["waypointd"] = closed_wp(t, wip, wpid, tsc)
        if a.authz_policies > 0:
            with open(os.path.join(man, "policies.yaml.tmp"), "w") as f:
                f.write(policies(a.authz_policies))
            os.rename(os.path.join(man, "policies.yaml.tmp"), os.path.join(man, "policies.yaml"))
            for _ in range(300):  # until the workers decide with them
                before = t.totals().get("authz_allowed_match", 0)
                hbone(wip, 1, 0.2, 0)
                if t.totals().get("authz_allowed_match", 0) > before:
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError("the policies never reached the workers")
            a0 = t.totals()
            _, out["waypointd_authz"] = closed_wp(t, wip, wpid, tsc)
            a1 = t.totals()
            out["waypointd_authz"]["policies"] = a.authz_policies
            out["waypointd_authz"]["authz_allowed_match"] = (
                a1.get("authz_allowed_match", 0) - a0.get("authz_allowed_match", 0))
            os.unlink(os.path.join(man, "policies.yaml"))
        if a.resilience:
            with open(os.path.join(man, "resilience.yaml.tmp"), "w") as f:
                f.write(RESILIENCE_DR)
            os.rename(os.path.join(man, "resilience.yaml.tmp"),
                      os.path.join(man, "resilience.yaml"))
            for _ in range(100):  # until the snapshot holds the limits
                p = subprocess.run(["ip", "netns", "exec", NS, "/usr/bin/python3", "-c",
                                    POOLS_PY], capture_output=True, text=True)
                if p.returncode == 0 and json.loads(p.stdout or "[]"):
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError("the DestinationRule never reached the snapshot: %s" %
                                   (p.stdout + p.stderr)[-500:])
            hbone(wip, 1, 0.3, 0)  # the workers pick the new snapshot up
            _, out["waypointd_resilience"] = closed_wp(t, wip, wpid, tsc)
            out["waypointd_resilience"]["connection_pools"] = json.loads(p.stdout)
            os.unlink(os.path.join(man, "resilience.yaml"))
        hr, out["haproxy"] = closed_hp(hp.pid, tsc, a.conns, 1)
        _, out["haproxy_multiplexed"] = closed_hp(hp.pid, tsc, a.mux_conns, a.mux_streams)
        orr, out["h2o"] = closed_hp(ho.pid, tsc, a.conns, 1, H2O_PORT)
        _, out["h2o_multiplexed"] = closed_hp(ho.pid, tsc, a.mux_conns, a.mux_streams, H2O_PORT)
        dr, _ = h1(a.conns, a.seconds, 0)
        out["direct"] = {"shape": "%d connections x 1 request" % a.conns,
                         "requests": dr["requests"], "rps_wall": dr["rps"],
                         "closed_loop_p50_us": dr["p50_us"], "closed_loop_p99_us": dr["p99_us"]}
        rate = round(min(wr["rps"], hr["rps"], orr["rps"]) / 2)
        half = {"rate": rate}
        if rate > 0:
            hw, _ = hbone(wip, a.conns, a.seconds, rate)
            hh, _ = h2(a.conns, a.seconds, rate)
            ho_, _ = h2(a.conns, a.seconds, rate, 1, H2O_PORT)
            hd, _ = h1(a.conns, a.seconds, rate)
            half["direct"] = {"rps": hd["rps"], "p50_us": hd["p50_us"], "p99_us": hd["p99_us"]}
            for name, r in (("waypointd", hw), ("haproxy", hh), ("h2o", ho_)):
                half[name] = {"rps": r["rps"], "failed": r["failed"], "p50_us": r["p50_us"],
                              "p99_us": r["p99_us"],
                              "added_p50_us": round(r["p50_us"] - hd["p50_us"], 1),
                              "added_p99_us": round(r["p99_us"] - hd["p99_us"], 1)}
        out["half_load"] = half
        t.close()
        stop(procs)
        sh(os.path.join(ROOT, "tests/testbed"), "down", NS)
        ratios = {}
        w = out["waypointd"]["cpu_cycles_per_request"]
        for peer in PEERS:
            for row in (peer, peer + "_multiplexed"):
                h = out[row]["cpu_cycles_per_request"]
                ratios["cpu_per_request_%s_over_waypointd" % row] = (
                    round(h / w, 2) if w and h else None)
            if "waypointd" in half:
                for q in ("p50", "p99"):
                    hw_, hh_ = half["waypointd"]["added_%s_us" % q], half[peer]["added_%s_us" % q]
                    ratios["added_%s_%s_over_waypointd" % (q, peer)] = (
                        round(hh_ / hw_, 2) if hw_ > 0 and hh_ > 0 else None)
        ratios["shapes_of_the_multiplexed_ratio"] = "peers %s; waypointd %s" % (
            out["haproxy_multiplexed"]["shape"], out["waypointd"]["shape"])
        if "waypointd_authz" in out:
            b0 = out["waypointd"]["not_ratio"]["tsc_busy_cycles_per_request"]
            b1 = out["waypointd_authz"]["not_ratio"]["tsc_busy_cycles_per_request"]
            c1 = out["waypointd_authz"]["cpu_cycles_per_request"]
            ratios["busy_cycles_per_request_authz_over_none"] = (
                round(b1 / b0, 3) if b0 and b1 else None)
            ratios["cpu_cycles_per_request_authz_over_none"] = (
                round(c1 / w, 3) if w and c1 else None)
        if "waypointd_resilience" in out:
            b0 = out["waypointd"]["not_ratio"]["tsc_busy_cycles_per_request"]
            b1 = out["waypointd_resilience"]["not_ratio"]["tsc_busy_cycles_per_request"]
            ratios["busy_cycles_per_request_resilience_over_none"] = (
                round(b1 / b0, 3) if b0 and b1 else None)
        out["ratios"] = ratios
        return out

    def run_telemetry(link, procs):
        """--telemetry: off / on / off / on, each in a fresh testbed."""
        logf = os.path.join(tmp, "access.log")
        runs = {"off": [], "on": []}
        for mode in ("off", "on") * max(1, a.telemetry_runs):
            sets = (["metrics.enabled=false"] if mode == "off" else
                    ["metrics.enabled=true", "access_log.file=" + logf])
            if os.path.exists(logf):
                os.unlink(logf)
            prefix, wip, wpid = testbed_up(link, sets)
            be = subprocess.Popen(["ip", "netns", "exec", NS, *pin, load, "serve", "9080"],
                                  stdout=subprocess.PIPE, text=True)
            procs.append(be)
            be.stdout.readline()
            wait_vip(wip)
            t = Telemetry(prefix)
            tsc = t.query("/wp/info")["tsc_hz"]
            lines0 = sum(1 for _ in open(logf)) if os.path.exists(logf) else 0
            _, r = closed_wp(t, wip, wpid, tsc)
            time.sleep(1.5)  # the writer thread drains the rings
            lines1 = sum(1 for _ in open(logf)) if os.path.exists(logf) else 0
            r["access_log_lines"] = lines1 - lines0
            t.close()
            stop(procs)
            sh(os.path.join(ROOT, "tests/testbed"), "down", NS)
            runs[mode].append(r)
        out = {}
        for mode, rs in runs.items():
            busy = [x["not_ratio"]["tsc_busy_cycles_per_request"] for x in rs]
            cpu = [x["cpu_cycles_per_request"] for x in rs]
            out["waypointd_telemetry_" + mode] = {
                "runs": len(rs), "requests": sum(x["requests"] for x in rs),
                "rps_wall": round(sum(x["rps_wall"] for x in rs) / len(rs)),
                "tsc_busy_cycles_per_request": round(sum(busy) / len(busy)),
                "tsc_busy_cycles_per_request_each": busy,
                "cpu_cycles_per_request": round(sum(cpu) / len(cpu)),
                "access_log_lines": sum(x["access_log_lines"] for x in rs),
                "packets_per_request": rs[0]["not_ratio"]["packets_per_request"]}
        off, on = out["waypointd_telemetry_off"], out["waypointd_telemetry_on"]
        out["busy_cycles_per_request_telemetry_on_over_off"] = round(
            on["tsc_busy_cycles_per_request"] / off["tsc_busy_cycles_per_request"], 3)
        out["cpu_cycles_per_request_telemetry_on_over_off"] = round(
            on["cpu_cycles_per_request"] / off["cpu_cycles_per_request"], 3)
        return out

    def show(link, out):
        print("\n== link %s: %s; %g s per row; cpu = process user+system CPU x TSC Hz ==" %
              (link, res["pinning"], a.seconds))
        if a.set:
            print("waypointd settings (--set): %s" % " ".join(a.set))
        print("%-20s %-28s %9s %10s %12s %8s %8s  %s" % ("row", "shape", "req/s", "cpu cyc/req",
                                                         "req/s/core", "p50 us", "p99 us",
                                                         "TLS suite"))
        for row in ("waypointd", "waypointd_authz", "waypointd_resilience", "haproxy",
                    "haproxy_multiplexed", "h2o", "h2o_multiplexed", "direct"):
            if row not in out:
                continue
            r = out[row]
            print("%-20s %-28s %9.0f %10s %12s %8.1f %8.1f  %s" % (
                row, r["shape"], r["rps_wall"], r.get("cpu_cycles_per_request", "-"),
                r.get("rps_per_core_cpu", "-"), r["closed_loop_p50_us"],
                r["closed_loop_p99_us"], r.get("tls_suite", "-")))
        suites = {out[row]["tls_suite"] for row in out
                  if isinstance(out[row], dict) and out[row].get("tls_suite") not in (None, "none")}
        if len(suites) > 1:
            print("NOTE: the TLS suites differ between rows (%s): their CPU per request is not "
                  "the same work" % ", ".join(sorted(suites)))
        nr = out["waypointd"]["not_ratio"]
        print("not ratios, waypointd per request: TSC busy %s = io %s + own %s cycles; worker "
              "thread user %s, system %s cycles; %s packets" % (
                  nr["tsc_busy_cycles_per_request"], nr["tsc_io_cycles_per_request"],
                  nr["tsc_own_cycles_per_request"], nr["worker_user_cycles_per_request"],
                  nr["worker_system_cycles_per_request"], nr["packets_per_request"]))
        r = out["ratios"]
        if "waypointd_authz" in out:
            print("with %d AuthorizationPolicies: busy cycles/request %s vs %s without, ratio %s "
                  "(goal <= 1.10); process cpu ratio %s; %d requests allowed by a rule" % (
                      out["waypointd_authz"]["policies"],
                      out["waypointd_authz"]["not_ratio"]["tsc_busy_cycles_per_request"],
                      nr["tsc_busy_cycles_per_request"],
                      r["busy_cycles_per_request_authz_over_none"],
                      r["cpu_cycles_per_request_authz_over_none"],
                      out["waypointd_authz"]["authz_allowed_match"]))
        if "waypointd_resilience" in out:
            print("with connection-pool limits and outlier detection: busy cycles/request %s "
                  "vs %s without, ratio %s (goal <= 1.03)" % (
                      out["waypointd_resilience"]["not_ratio"]["tsc_busy_cycles_per_request"],
                      nr["tsc_busy_cycles_per_request"],
                      r["busy_cycles_per_request_resilience_over_none"]))
        for peer in PEERS:
            print("ratio cpu/request %s / waypointd (same shape):          %s" %
                  (peer, r["cpu_per_request_%s_over_waypointd" % peer]))
            print("ratio cpu/request %s_multiplexed / waypointd (shapes differ: %s): %s" % (
                peer, r["shapes_of_the_multiplexed_ratio"],
                r["cpu_per_request_%s_multiplexed_over_waypointd" % peer]))
        if "telemetry" in out:
            tm = out["telemetry"]
            off, on = tm["waypointd_telemetry_off"], tm["waypointd_telemetry_on"]
            print("telemetry (%d runs each, alternating): busy cycles/request off %s %s, on (Istio "
                  "metrics + access log to a file) %s %s; ratio on/off %s (goal <= 1.05); process "
                  "cpu ratio %s; %d access-log lines for %d requests" % (
                      off["runs"], off["tsc_busy_cycles_per_request"], off["tsc_busy_cycles_per_request_each"],
                      on["tsc_busy_cycles_per_request"], on["tsc_busy_cycles_per_request_each"],
                      tm["busy_cycles_per_request_telemetry_on_over_off"],
                      tm["cpu_cycles_per_request_telemetry_on_over_off"],
                      on["access_log_lines"], on["requests"]))
        h = out["half_load"]
        if "waypointd" in h:
            for peer in PEERS:
                print("half load %d req/s: added over direct p50/p99 us: waypointd %s/%s, %s "
                      "%s/%s; ratio %s/waypointd p50 %s, p99 %s" % (
                          h["rate"], h["waypointd"]["added_p50_us"],
                          h["waypointd"]["added_p99_us"], peer, h[peer]["added_p50_us"],
                          h[peer]["added_p99_us"], peer,
                          r.get("added_p50_%s_over_waypointd" % peer),
                          r.get("added_p99_%s_over_waypointd" % peer)))

    procs = []
    try:
        for link in links:
            res["links"][link] = run_link(link, procs)
            if a.telemetry:
                res["links"][link]["telemetry"] = run_telemetry(link, procs)
    finally:
        stop(procs)
        subprocess.run([os.path.join(ROOT, "tests/testbed"), "down", NS], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    for link in links:
        show(link, res["links"][link])
    for note in res["peer_notes"]:
        print("note: " + note)
    print(json.dumps(res))
    if a.json:
        with open(a.json, "w") as f:
            f.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
