#!/usr/bin/python3
"""waypointd under a service manager (deploy/waypointd.service, Type=notify),
with the test standing in for systemd: it binds the unix datagram socket
that NOTIFY_SOCKET names, sets WATCHDOG_USEC=1 s, and starts waypointd in a
testbed namespace (tests/testbed) with only the capabilities the unit's
CapabilityBoundingSet keeps and no_new_privs (setpriv), on its Kubernetes
source with the fake API server (tests/k8s/fakeapi.py) not yet listening on
the namespace's loopback. Then:

  * the appliance answers ping but has no snapshot (/healthz/ready 503):
    STATUS= says it waits, READY=1 does not come;
  * the API server starts, the first list completes: READY=1 comes after
    that, and when it comes /healthz/ready is 200 and ping is answered;
  * WATCHDOG=1 comes all along from the control-plane thread, never more
    than WATCHDOG_USEC apart and not more often than every half of it;
  * SIGHUP keeps it running and logs that waypoint.conf is unchanged;
  * SIGTERM: STOPPING=1, exit status 0.

Needs root and the tree's build (WP_BUILD_DIR).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "k8s"))
from appliance import API_PORT, _setns, _setns_fd  # noqa: E402
from harness import FakeAPI, make_pki, wait_for  # noqa: E402

WATCHDOG_S = 1.0
APPLIANCE_IP = "198.18.0.2"  # tests/testbed's


class Notify:
    """The service manager's end: every datagram with its arrival time."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.msgs = []  # (monotonic seconds, text)
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            with self.lock:
                self.msgs.append((time.monotonic(), data.decode()))

    def times(self, key):
        """When each message carrying the line <key> arrived."""
        with self.lock:
            return [t for t, m in self.msgs if key in m.split("\n")]

    def texts(self):
        with self.lock:
            return [m for _, m in self.msgs]

    def close(self):
        self.done = True
        self.thread.join()
        self.sock.close()


def unit_caps():
    """The capabilities deploy/waypointd.service keeps, as setpriv wants them."""
    with open(os.path.join(ROOT, "deploy", "waypointd.service")) as f:
        m = re.search(r"^CapabilityBoundingSet=(.*)$", f.read(), re.M)
    assert m, "the unit has no CapabilityBoundingSet"
    return ",".join("+" + c.lower().replace("cap_", "") for c in m.group(1).split())


def admin_ready():
    try:
        with urllib.request.urlopen("http://127.0.0.1:15000/healthz/ready", timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def pings():
    return subprocess.run(["ping", "-c", "1", "-W", "1", APPLIANCE_IP],
                          capture_output=True).returncode == 0


def main():
    build = os.environ.get("WP_BUILD_DIR") or os.path.join(ROOT, "build")
    d = tempfile.mkdtemp(prefix="wp-sdnotify-")
    os.chmod(d, 0o755)
    name = "wpt-sdnotify-%d" % os.getpid()
    pki = make_pki(d)
    token = "sdnotify-token"
    kubeconfig = os.path.join(d, "kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write("apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n"
                "    server: https://127.0.0.1:%d\n    certificate-authority: %s\n"
                "users:\n- name: tester\n  user:\n    token: %s\n"
                "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: tester\n"
                "current-context: fake\n" % (API_PORT, pki["ca.crt"], token))
    wrapper = os.path.join(d, "waypointd")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec setpriv --bounding-set -all,%s --no-new-privs -- %s \"$@\"\n"
                % (unit_caps(), os.path.join(build, "dp", "waypointd")))
    os.chmod(wrapper, 0o755)
    notify = Notify(os.path.join(d, "notify.sock"))
    env = dict(os.environ, WP_BIN=wrapper, NOTIFY_SOCKET=notify.sock.getsockname(),
               WATCHDOG_USEC=str(int(WATCHDOG_S * 1e6)))
    env.pop("WATCHDOG_PID", None)
    orig_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    api = None
    try:
        r = subprocess.run([os.path.join(ROOT, "tests", "testbed"), "up", "--name", name,
                            "--set", "kubernetes.enabled=true",
                            "--set", "kubernetes.kubeconfig=" + kubeconfig,
                            "--set", "kubernetes.sync_wait_ms=300",
                            "--set", "kubernetes.backoff_base_ms=100",
                            "--set", "kubernetes.backoff_max_ms=300"],
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, "testbed up failed: %s%s" % (r.stdout, r.stderr)
        tb = dict(line.split("=", 1) for line in r.stdout.split() if "=" in line)
        pid = int(tb["WP_PID"])
        _setns("/run/netns/" + name)

        # Up and answering, but no snapshot: not ready.
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            assert not notify.times("READY=1"), "READY=1 before the first snapshot"
            assert admin_ready() == 503, "/healthz/ready is not 503 before the API answers"
            time.sleep(0.1)
        assert pings(), "the appliance does not answer ping"
        assert any(m.startswith("STATUS=") and "waiting" in m for m in notify.texts()), \
            "no STATUS= while waiting: %s" % notify.texts()
        assert not notify.times("READY=1"), "READY=1 before the first snapshot"

        os.makedirs(os.path.join(d, "api"))
        t_api = time.monotonic()
        api = FakeAPI(token=token, workdir=os.path.join(d, "api"), port=API_PORT, pki=pki)
        ready = wait_for(lambda: notify.times("READY=1"), 10.0, interval=0.01, what="READY=1")
        assert ready[0] > t_api, "READY=1 came before the API server started"
        assert admin_ready() == 200, "READY=1 but /healthz/ready is not 200"
        assert pings(), "READY=1 but the appliance does not answer ping"
        print("READY=1 %.0f ms after the API server started" % ((ready[0] - t_api) * 1000))

        # SIGHUP: still running, the file compared and unchanged.
        os.kill(pid, signal.SIGHUP)
        wait_for(lambda: "SIGHUP: conf/waypoint.conf unchanged" in open(tb["WP_LOG"]).read(),
                 5.0, what="the SIGHUP log line")
        assert pings(), "no answer to ping after SIGHUP"

        time.sleep(2.0)  # more watchdog pings
        wd = notify.times("WATCHDOG=1")
        gaps = [b - a for a, b in zip(wd, wd[1:])]
        assert len(wd) >= 5, "only %d WATCHDOG=1 in %.1f s" % (len(wd), time.monotonic() - t_api)
        assert max(gaps) < WATCHDOG_S, "WATCHDOG=1 %.0f ms apart" % (max(gaps) * 1000)
        # at most one per half interval (the loop may be late, never early)
        assert min(gaps) >= WATCHDOG_S / 2 - 0.02, "WATCHDOG=1 %.0f ms apart" % (min(gaps) * 1000)
        print("%d WATCHDOG=1, %.0f..%.0f ms apart" % (len(wd), min(gaps) * 1000, max(gaps) * 1000))

        t_term = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        stop = wait_for(lambda: notify.times("STOPPING=1"), 5.0, interval=0.01, what="STOPPING=1")
        assert stop[0] >= t_term
        rc_file = tb["WP_RC_FILE"]
        wait_for(lambda: os.path.exists(rc_file) and open(rc_file).read().strip(), 10.0,
                 what="waypointd's exit")
        rc = open(rc_file).read().strip()
        assert rc == "0", "exit status %s after SIGTERM" % rc
        assert len(notify.times("READY=1")) == 1, "READY=1 sent more than once"
        print("STOPPING=1 %.0f ms after SIGTERM, exit 0" % ((stop[0] - t_term) * 1000))
    finally:
        if api:
            api.stop()
        _setns_fd(orig_ns)
        os.close(orig_ns)
        subprocess.run([os.path.join(ROOT, "tests", "testbed"), "down", name],
                       capture_output=True, timeout=60)
        notify.close()
        shutil.rmtree(d, ignore_errors=True)
    print("PASS: READY after the first snapshot, WATCHDOG every half interval, STOPPING on SIGTERM")


if __name__ == "__main__":
    main()
