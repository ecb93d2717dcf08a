"""Shared helpers for the tests in tests/k8s: certificates made with openssl
at test time, a running fakeapi.py on 127.0.0.1, a kubeconfig pointing at it,
a kubectl to drive it, and the control endpoint for fault injection.

Environment: WPCTL (path of the built wpctl), KUBECTL (defaults to the Debian
kubernetes-client binary if found, else kubectl on PATH), WP_BUILD_DIR.
"""

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"


def find_kubectl():
    k = os.environ.get("KUBECTL")
    if k:
        return k
    for cand in ("/opt/kubernetes-client/usr/bin/kubectl",):
        if os.access(cand, os.X_OK):
            return cand
    return shutil.which("kubectl")


def make_pki(d):
    """CA, a server cert for 127.0.0.1, and a client cert (CN=tester)."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p = lambda n: os.path.join(d, n)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
        "-subj", "/CN=fake-kube-ca", "-keyout", p("ca.key"), "-out", p("ca.crt"))
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                      ("client", "extendedKeyUsage=clientAuth")):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=" + ("127.0.0.1" if name == "server" else "tester"),
            "-keyout", p(name + ".key"), "-out", p(name + ".csr"))
        with open(p(name + ".ext"), "w") as f:
            f.write(ext + "\n")
        run("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"),
            "-CAcreateserial", "-days", "2", "-extfile", p(name + ".ext"), "-out", p(name + ".crt"))
    return {n: p(n) for n in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")}


class FakeAPI:
    """A fakeapi.py process. tls=False gives plain HTTP."""

    def __init__(self, tls=True, token="secret-token", bookmark_interval=1.0, load=(), workdir=None,
                 port=0, fail=None, pki=None, serve=()):
        self.own_dir = workdir is None  # removed by stop()
        self.dir = workdir or tempfile.mkdtemp(prefix="fakeapi-")
        self.token = token
        self.tls = tls
        self.pki = (pki or make_pki(self.dir)) if tls else None
        args = [PY, os.path.join(HERE, "fakeapi.py"), "--bookmark-interval", str(bookmark_interval),
                "--port", str(port)]
        if fail:
            args += ["--fail", json.dumps(fail)]
        if token:
            args += ["--token", token]
        if tls:
            args += ["--cert", self.pki["server.crt"], "--key", self.pki["server.key"],
                     "--client-ca", self.pki["ca.crt"]]
        for f in load:
            args += ["--load", f]
        for s in serve:
            args += ["--serve", s]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(os.path.join(self.dir, "fakeapi.log"), "w"),
                                     text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError("fakeapi did not start: %r" % line)
        self.port = int(line.split()[1])
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.port)
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.write_kubeconfig(self.kubeconfig)
        self.token_file = os.path.join(self.dir, "token")
        with open(self.token_file, "w") as f:
            f.write(token or "")

    def write_kubeconfig(self, path, namespace="default", user=None):
        cluster = "    server: %s\n" % self.url
        if self.tls:
            cluster += "    certificate-authority: %s\n" % self.pki["ca.crt"]
        if user is None:
            user = "    token: %s\n" % self.token if self.token else "    {}\n"
        with open(path, "w") as f:
            f.write("apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n%s"
                    "users:\n- name: tester\n  user:\n%s"
                    "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: tester\n"
                    "    namespace: %s\ncurrent-context: fake\n" % (cluster, user, namespace))

    def _ctx(self):
        if not self.tls:
            return None
        c = ssl.create_default_context(cafile=self.pki["ca.crt"])
        return c

    def control(self, op, **arg):
        req = urllib.request.Request(self.url + "/_fake/" + op, data=json.dumps(arg).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self._ctx(), timeout=10) as r:
            return json.loads(r.read())

    def api(self, method, path, body=None, ctype="application/json", token=None):
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs = {"Content-Type": ctype}
        tok = token if token is not None else self.token
        if tok:
            hdrs["Authorization"] = "Bearer " + tok
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, context=self._ctx(), timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def create(self, obj):
        from fakeapi import KIND_LIST
        for k in KIND_LIST:
            if k.api_version == obj["apiVersion"] and k.kind == obj["kind"]:
                base = ("/api/" if not k.group else "/apis/" + k.group + "/") + k.version
                if k.namespaced:
                    base += "/namespaces/" + obj["metadata"].get("namespace", "default")
                code, out = self.api("POST", base + "/" + k.plural, obj)
                if code not in (200, 201):
                    raise RuntimeError("create failed: %s %s" % (code, out))
                return out
        raise KeyError(obj["kind"])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def kubectl(api, *args, input=None, check=True):
    kc = find_kubectl()
    env = dict(os.environ, KUBECONFIG=api.kubeconfig, HOME=api.dir)
    r = subprocess.run([kc] + list(args), input=input, env=env, capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("kubectl %s failed (%d): %s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def wpctl(api, *args, check=False, timeout=120, env=None):
    exe = os.environ.get("WPCTL") or os.path.join(os.environ.get("WP_BUILD_DIR", ""), "cp/wpctl/wpctl")
    e = dict(os.environ, KUBECONFIG=api.kubeconfig, HOME=api.dir)
    e.pop("KUBERNETES_SERVICE_HOST", None)
    if env:
        e.update(env)
    r = subprocess.run([exe] + list(args), env=e, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("wpctl %s failed (%d): %s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def wait_for(pred, timeout=5.0, interval=0.05, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out waiting for " + what)


class Failures:
    """Minimal test runner: each test_* function gets a fresh call; exit 1 on any failure."""

    def __init__(self):
        self.failed = []

    def run(self, module_globals, only=None):
        tests = sorted(n for n in module_globals if n.startswith("test_") and callable(module_globals[n]))
        if only:
            tests = [t for t in tests if t in only]
        for t in tests:
            t0 = time.monotonic()
            try:
                module_globals[t]()
                print("ok   %s (%.2fs)" % (t, time.monotonic() - t0), flush=True)
            except Exception as e:
                import traceback
                traceback.print_exc()
                print("FAIL %s: %s" % (t, e), flush=True)
                self.failed.append(t)
        if self.failed:
            print("%d failed: %s" % (len(self.failed), ", ".join(self.failed)))
            sys.exit(1)
        print("all %d passed" % len(tests))
