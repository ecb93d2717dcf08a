#!/usr/bin/python3
"""kubeconfig exec credential plugins (client.authentication.k8s.io
ExecCredential) against the fake API server, which demands its bearer token:
wpctl waypoint list and apply authenticate through a plugin the test writes;
an expired credential and a refused one (401) make the plugin run again; a
failing or missing plugin is a clear error and exit 1; the list/watch source
(the waypointd side, through kube_source_probe) syncs with it. Run:
test_exec_auth.py (WPCTL/KUBE_SOURCE_PROBE or WP_BUILD_DIR locate the
binaries)."""

import base64
import json
import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FakeAPI, Failures, wait_for, wpctl  # noqa: E402
from test_kube_source import Probe, probe_log  # noqa: E402

# The plugin: counts its runs in $PLUGIN_DIR/runs, then acts on
# $PLUGIN_DIR/mode (JSON): "exit" (status, with "stderr" on stderr), else
# prints an ExecCredential whose token is tokens[run-1] (the last one past
# the end) with "expiry" as its expirationTimestamp when set.
PLUGIN = r'''#!/usr/bin/python3
import json, os, sys
d = os.environ["PLUGIN_DIR"]
with open(os.path.join(d, "runs"), "a") as f:
    f.write("x\n")
with open(os.path.join(d, "runs")) as f:
    n = len(f.readlines())
with open(os.path.join(d, "info"), "w") as f:
    f.write(os.environ.get("KUBERNETES_EXEC_INFO", ""))
mode = json.load(open(os.path.join(d, "mode")))
if "exit" in mode:
    sys.stderr.write(mode.get("stderr", ""))
    sys.exit(mode["exit"])
status = {"token": mode["tokens"][min(n, len(mode["tokens"])) - 1]}
if mode.get("expiry"):
    status["expirationTimestamp"] = mode["expiry"]
json.dump({"apiVersion": mode.get("apiVersion", "client.authentication.k8s.io/v1"),
           "kind": "ExecCredential", "status": status}, sys.stdout)
'''

API_V1 = "client.authentication.k8s.io/v1"


class Plugin:
    def __init__(self, api, command=None, api_version=API_V1):
        self.dir = api.dir
        self.path = os.path.join(api.dir, "plugin.py")
        with open(self.path, "w") as f:
            f.write(PLUGIN)
        os.chmod(self.path, stat.S_IRWXU)
        self.mode(tokens=[api.token])
        self.kubeconfig = os.path.join(api.dir, "kc-exec")
        api.write_kubeconfig(self.kubeconfig, user=(
            "    exec:\n"
            "      apiVersion: %s\n"
            "      command: %s\n"
            "      interactiveMode: Never\n"
            "      provideClusterInfo: true\n"
            "      installHint: see the plugin's README\n"
            "      env:\n"
            "      - name: PLUGIN_DIR\n"
            "        value: %s\n" % (api_version, command or self.path, api.dir)))

    def mode(self, **m):
        with open(os.path.join(self.dir, "mode"), "w") as f:
            json.dump(m, f)
        try:
            os.unlink(os.path.join(self.dir, "runs"))
        except FileNotFoundError:
            pass

    def runs(self):
        try:
            with open(os.path.join(self.dir, "runs")) as f:
                return len(f.readlines())
        except FileNotFoundError:
            return 0

    def info(self):
        with open(os.path.join(self.dir, "info")) as f:
            return json.loads(f.read())


def ok(r):
    assert r.returncode == 0, "exit %d: %s%s" % (r.returncode, r.stdout, r.stderr)
    return r


def namespace(api):
    api.create({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "default", "labels": {"istio.io/dataplane-mode": "ambient"}}})


def test_list_and_apply_through_the_plugin():
    with FakeAPI() as api:
        namespace(api)
        p = Plugin(api)
        r = ok(wpctl(api, "waypoint", "list", "--kubeconfig", p.kubeconfig))
        assert r.stdout == "No waypoints found.\n", r.stdout
        assert p.runs() == 1, p.runs()
        info = p.info()
        assert info["apiVersion"] == API_V1 and info["kind"] == "ExecCredential", info
        assert info["spec"]["interactive"] is False, info
        assert info["spec"]["cluster"]["server"] == api.url, info
        with open(api.pki["ca.crt"], "rb") as f:
            ca = f.read()
        assert base64.b64decode(info["spec"]["cluster"]["certificate-authority-data"]) == ca, info
        # apply makes several requests: one run of the plugin serves them.
        p.mode(tokens=[api.token])
        ok(wpctl(api, "waypoint", "apply", "-n", "default", "--kubeconfig", p.kubeconfig))
        assert p.runs() == 1, p.runs()
        r = ok(wpctl(api, "waypoint", "list", "--kubeconfig", p.kubeconfig))
        assert "waypoint" in r.stdout, r.stdout
        # The same with the v1beta1 protocol.
        p = Plugin(api, api_version="client.authentication.k8s.io/v1beta1")
        p.mode(tokens=[api.token], apiVersion="client.authentication.k8s.io/v1beta1")
        ok(wpctl(api, "waypoint", "list", "--kubeconfig", p.kubeconfig))
        assert p.runs() == 1 and p.info()["apiVersion"].endswith("/v1beta1"), p.runs()


def test_expired_credential_is_renewed():
    with FakeAPI() as api:
        namespace(api)
        p = Plugin(api)
        # Expired as soon as printed: every request asks the plugin again.
        p.mode(tokens=[api.token], expiry="2001-01-01T00:00:00Z")
        ok(wpctl(api, "waypoint", "apply", "-n", "default", "--kubeconfig", p.kubeconfig))
        assert p.runs() >= 2, p.runs()
        # Valid for a long while: one run.
        p.mode(tokens=[api.token], expiry="2999-01-01T00:00:00Z")
        ok(wpctl(api, "waypoint", "apply", "-n", "default", "--kubeconfig", p.kubeconfig))
        assert p.runs() == 1, p.runs()


def test_refused_credential_runs_the_plugin_once_more():
    with FakeAPI() as api:
        p = Plugin(api)
        # A 401 for the first token: the plugin runs again, once.
        p.mode(tokens=["revoked", api.token])
        ok(wpctl(api, "waypoint", "list", "--kubeconfig", p.kubeconfig))
        assert p.runs() == 2, p.runs()
        # Refused every time: Unauthorized after exactly one more run.
        p.mode(tokens=["revoked"])
        r = wpctl(api, "waypoint", "list", "--kubeconfig", p.kubeconfig)
        assert r.returncode == 1 and r.stderr == "Error: Unauthorized\n", r.stderr
        assert p.runs() == 2, p.runs()


def test_failing_plugin_is_a_clear_error():
    with FakeAPI() as api:
        p = Plugin(api)
        p.mode(exit=3, stderr="error: you must be logged in to the server\n")
        r = wpctl(api, "waypoint", "list", "--kubeconfig", p.kubeconfig)
        assert r.returncode == 1, r
        want = ('Error: kubeconfig %s, user "tester": exec plugin "%s" failed: exit status 3: '
                "error: you must be logged in to the server\n" % (p.kubeconfig, p.path))
        assert r.stderr == want, "%r\nwanted %r" % (r.stderr, want)
        # Not an ExecCredential.
        p.mode(tokens=["x"], apiVersion="v1")
        r = wpctl(api, "waypoint", "list", "--kubeconfig", p.kubeconfig)
        assert r.returncode == 1 and "it answered apiVersion v1" in r.stderr, r.stderr
        # Not installed: the install hint follows.
        p = Plugin(api, command="wp-test-no-such-plugin")
        r = wpctl(api, "waypoint", "list", "--kubeconfig", p.kubeconfig)
        assert r.returncode == 1, r
        assert r.stderr == ('Error: kubeconfig %s, user "tester": exec plugin '
                            '"wp-test-no-such-plugin": executable file not found in $PATH\n'
                            "see the plugin's README\n" % p.kubeconfig), r.stderr


def test_source_syncs_through_the_plugin():
    with FakeAPI() as api:
        namespace(api)
        p = Plugin(api)
        with Probe(api, kubeconfig=p.kubeconfig) as probe:
            probe.wait("SYNCED", timeout=20)
            probe.wait("UPSERT Namespace /default")
            c = probe.counters()
        # One credential serves every kind's thread.
        assert p.runs() == 1, p.runs()
        assert c["KUBE_EXEC_RUN"] >= 1 and c["KUBE_EXEC_FAILED"] == 0, c
        # A failing plugin: the source says why in its log, and counts it.
        p.mode(exit=1, stderr="token expired, log in again\n")
        with Probe(api, kubeconfig=p.kubeconfig) as probe:
            wait_for(lambda: "token expired, log in again" in probe_log(api), timeout=10,
                     what="the plugin's error in the source's log")
            assert probe.counters()["KUBE_EXEC_FAILED"] >= 1
            assert not probe.find("SYNCED")
        assert ('kube: kubeconfig %s, user "tester": exec plugin "%s" failed: exit status 1: '
                "token expired, log in again\n" % (p.kubeconfig, p.path)) in probe_log(api)


if __name__ == "__main__":
    Failures().run(globals(), only=sys.argv[1:] or None)
