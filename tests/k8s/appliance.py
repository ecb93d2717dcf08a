"""The real waypointd on its Kubernetes source, for test_appliance.py and
bench_appliance.py: a testbed network namespace (tests/testbed) whose
waypointd talks to a fake API server that runs inside the same namespace on
its loopback (nothing listens or sends outside it), plus readers for what the
appliance shows: the admin endpoint (in the namespace) and the DPDK
telemetry socket (/wp/snapshot: what each worker runs).

The calling process enters the namespace (setns) once the testbed is up, so
every later socket and child process (fakeapi.py, kubectl, wpctl) lives in
it; close() goes back and tears the testbed down. Needs root.
"""

import ctypes
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from harness import FakeAPI, make_pki, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLONE_NEWNET = 0x40000000
API_PORT = 6443  # inside the test's own namespace


def _setns(path):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + path)
    finally:
        os.close(fd)


class Appliance:
    """waypointd in a testbed, reading the API server at 127.0.0.1:API_PORT
    of its namespace. sets: extra --set options; args: other testbed
    options (--certs DIR for HBONE)."""

    def __init__(self, name, sets=(), workers=1, args=()):
        self.build = os.environ.get("WP_BUILD_DIR") or os.path.join(ROOT, "build")
        self.wpctl_bin = os.path.join(self.build, "cp/wpctl/wpctl")
        self.dir = tempfile.mkdtemp(prefix="wp-appliance-")
        os.chmod(self.dir, 0o755)
        self.pki = make_pki(self.dir)
        self.token = "appliance-token"
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        with open(self.kubeconfig, "w") as f:
            f.write("apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n"
                    "    server: https://127.0.0.1:%d\n    certificate-authority: %s\n"
                    "users:\n- name: tester\n  user:\n    token: %s\n"
                    "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: tester\n"
                    "    namespace: default\ncurrent-context: fake\n"
                    % (API_PORT, self.pki["ca.crt"], self.token))
        self.name = name
        self.orig_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
        self.api = None
        env = dict(os.environ, WP_BIN=os.path.join(self.build, "dp/waypointd"))
        tb = [os.path.join(ROOT, "tests/testbed"), "up", "--name", name, "--workers", str(workers),
              "--set", "kubernetes.enabled=true",
              "--set", "kubernetes.kubeconfig=" + self.kubeconfig]
        for s in sets:
            tb += ["--set", s]
        tb += list(args)
        r = subprocess.run(tb, env=env, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("testbed up failed: %s%s" % (r.stdout, r.stderr))
        self.vars = dict(line.split("=", 1) for line in r.stdout.split() if "=" in line)
        self.prefix = self.vars["WP_PREFIX"]
        self.log = self.vars["WP_LOG"]
        self.pid = int(self.vars["WP_PID"])
        _setns("/run/netns/" + name)

    # --- the API server -------------------------------------------------------
    def start_api(self, load=(), fail=None, serve=()):
        os.makedirs(os.path.join(self.dir, "api"), exist_ok=True)
        self.api = FakeAPI(token=self.token, workdir=os.path.join(self.dir, "api"), port=API_PORT,
                           load=load, fail=fail, pki=self.pki, serve=serve)
        return self.api

    # --- what the appliance shows ------------------------------------------
    def admin(self, path):
        """(status, body) of GET on the admin endpoint (127.0.0.1:15000)."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:15000" + path, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def admin_json(self, path):
        st, body = self.admin(path)
        assert st == 200, "%s answered %d: %s" % (path, st, body)
        return json.loads(body)

    def tel(self, cmd):
        """One DPDK telemetry command on the appliance's socket (v2 protocol)."""
        path = "/var/run/dpdk/%s/dpdk_telemetry.v2" % self.prefix
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.settimeout(5)
            s.connect(path)
            json.loads(s.recv(16384).decode())  # greeting
            s.send(cmd.encode())
            reply = json.loads(s.recv(1 << 20).decode())
        finally:
            s.close()
        return reply[cmd.split(",")[0]]

    def snapshot(self, worker=None):
        return self.tel("/wp/snapshot" if worker is None else "/wp/snapshot,%d" % worker)

    def gateways(self, worker=0):
        """{"ns/name": (services, workloads)} of the snapshot the worker runs."""
        s = self.snapshot(worker)
        return {n: (sv, wl) for n, sv, wl in zip(s["gw_names"], s["gw_services"], s["gw_workloads"])}

    def wait_snapshot_rows(self, pred, timeout=5.0, what="snapshot"):
        """Waits until pred(row of every worker) holds; returns every
        worker's row (seen_ns: when that worker first ran that snapshot)."""
        last = {}

        def check():
            nonlocal last
            rows = [self.snapshot(w) for w in range(self.snapshot()["workers"])]
            last = rows
            return rows if all(pred(r) for r in rows) else None
        try:
            return wait_for(check, timeout, interval=0.02, what=what)
        except AssertionError:
            raise AssertionError("timed out waiting for %s; workers run %s" % (what, last))

    def wait_snapshot(self, pred, timeout=5.0, what="snapshot"):
        """Waits until pred(row of every worker) holds; returns worker 0's row."""
        return self.wait_snapshot_rows(pred, timeout, what)[0]

    def log_text(self):
        with open(self.log) as f:
            return f.read()

    def kubectl_env(self):
        return dict(os.environ, KUBECONFIG=self.kubeconfig, HOME=self.dir)

    def wpctl(self, *args, timeout=60):
        env = self.kubectl_env()
        env.pop("KUBERNETES_SERVICE_HOST", None)
        return subprocess.run([self.wpctl_bin] + list(args), env=env, capture_output=True, text=True,
                              timeout=timeout)

    def alive(self):
        try:
            os.kill(self.pid, 0)
            return True
        except OSError:
            return False

    def close(self):
        if self.api:
            self.api.stop()
        _setns_fd(self.orig_ns)
        subprocess.run([os.path.join(ROOT, "tests/testbed"), "down", self.name], capture_output=True, timeout=60)
        os.close(self.orig_ns)
        shutil.rmtree(self.dir, ignore_errors=True)


def _setns_fd(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns back")


def now_ns():
    return time.time_ns()
