"""Helpers shared by the benchmarks in bench/: running commands, reading
waypointd's counters (wpctl stats --json, or its DPDK telemetry socket held
open, read beside /proc/stat so both cover the same window), and reading CPU
and memory use from /proc for waypointd and the peers measured in the same
run."""
import json
import os
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The head of every benchmark's manifests: namespace "bench" enrolled to the
# waypoint Gateway "waypoint" (istioctl's shape). Benchmarks append their
# Services and Pods.
WAYPOINT_MANIFEST_HEAD = """apiVersion: v1
kind: Namespace
metadata:
  name: bench
  labels: {istio.io/use-waypoint: waypoint}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: bench
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
"""


def sh(*args, **kw):
    """Runs a command; returns its stdout, raises on a non-zero exit."""
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw).stdout


def stats(wpctl, prefix):
    """wpctl stats --json of the waypointd with DPDK file prefix <prefix>."""
    return json.loads(sh(wpctl, "stats", "--json", "--prefix", prefix))


def total(st, key):
    """One counter summed over workers from a stats() result (0 if absent)."""
    return st["total"].get(key, 0)


class Telemetry:
    """A connection to waypointd's DPDK telemetry socket, kept open so that a
    query costs about a millisecond (no process to start): benchmarks read
    /proc/stat right beside it, so waypointd's counters and the machine's CPU
    cover the same window."""

    def __init__(self, prefix):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.connect("/var/run/dpdk/%s/dpdk_telemetry.v2" % prefix)
        self.s.recv(65536)  # the greeting

    def query(self, cmd):
        """The value of one telemetry command (e.g. "/wp/stats")."""
        self.s.send(cmd.encode())
        return json.loads(self.s.recv(1 << 20).decode())[cmd.split(",")[0]]

    def totals(self):
        """The /wp/stats counters summed over workers, flattened (telemetry
        nests them in one dict per name prefix)."""
        flat = {}
        for k, v in self.query("/wp/stats").items():
            if isinstance(v, dict):
                flat.update(v)
            else:
                flat[k] = v
        return flat

    def heap_alloc_bytes(self):
        """Bytes allocated from DPDK's heaps (hugepage memory, not in RSS)."""
        return sum(self.query("/eal/heap_info,%d" % h).get("Alloc_size", 0)
                   for h in self.query("/eal/heap_list"))

    def close(self):
        self.s.close()


def sample(t):
    """waypointd's counters and the machine's busy jiffies at one instant:
    (totals, busy jiffies, skew seconds). /proc/stat is read right after the
    telemetry answer; skew is how long that answer took (the most the two
    windows can differ by at one end, against /proc/stat's 10 ms tick)."""
    t0 = time.monotonic()
    c = t.totals()
    j = cpu_busy_jiffies()
    return c, j, time.monotonic() - t0


def cpu_busy_jiffies():
    """The machine's non-idle CPU time so far (/proc/stat), in jiffies."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[:8]) - v[3] - v[4]  # minus idle and iowait


def cpu_steal_s(cpu):
    """Seconds the hypervisor has taken from CPU <cpu> so far (/proc/stat
    steal time; 0 on bare metal)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu%d " % cpu):
                return int(line.split()[8]) / os.sysconf("SC_CLK_TCK")
    raise ValueError("no cpu%d in /proc/stat" % cpu)


def proc_cpu_s(pid):
    """User + system CPU seconds of a process."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid):
    """User + system CPU seconds of a process and of its live descendants
    (a server that forks helpers, as h2o does, works in all of them)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        kids.setdefault(ppid, []).append(int(d))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += proc_cpu_s(p)
        except OSError:
            continue
        todo.extend(kids.get(p, []))
    return total


def thread_cpu_s(pid, comm_prefix):
    """(user, system) CPU seconds summed over the threads of <pid> whose
    name starts with <comm_prefix> (DPDK names its worker lcores
    "rte-worker-N"): user time is the process's own code, system time
    its system calls (for a TAP port: the PMD's read/write and the kernel
    network stack they run)."""
    user = system = 0
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if not f.read().startswith(comm_prefix):
                    continue
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])
        system += int(fields[12])
    return user / tick, system / tick


def proc_rss(pid):
    """Resident memory of a process, bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0
