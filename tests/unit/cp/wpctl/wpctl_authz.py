#!/usr/bin/python3
"""`wpctl authz check`: offline (--dir) on the fixture tests/unit/cp/resolve/authz_check,
-o json with every field of the answer, the text form, exit codes (0 a
decision, even DENY; 1 none; 2 usage) and the help; online, the request goes
to the admin endpoint's /authz/check as a query (a stand-in on loopback) and
its answer is printed, its refusal reported with exit 1.
With -c waypoint.conf the trust domain and its aliases are the
configuration's, as waypointd reads them.
Usage: wpctl_authz.py WPCTL FIXTURE_DIR WAYPOINT_CONF"""
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse

wpctl, fixture, conf = sys.argv[1], sys.argv[2], sys.argv[3]


def run(*args, rc=0):
    p = subprocess.run([wpctl, "authz", "check", *args], capture_output=True, text=True, timeout=20)
    assert p.returncode == rc, (args, p.returncode, p.stdout, p.stderr)
    return p


def check(*args):
    return json.loads(run("--dir", fixture, "-o", "json", *args).stdout)


a = check("--from", "spiffe://cluster.local/ns/a/sa/reader", "--to", "svc.a:80", "--path",
          "/api/%2e%2e/admin?x=1", "--header", "X-Trace=1", "--source-ip", "10.0.0.5")
assert set(a) == {"decision", "allowed", "audited", "reason", "policy", "service", "policies",
                  "errors", "request", "snapshot_version"}, a
assert (a["decision"], a["allowed"], a["audited"], a["reason"]) == ("DENY", False, False, "deny_match"), a
assert a["policy"] == {"namespace": "a", "name": "deny-admin", "action": "DENY", "rule": 0}, a
assert a["service"] == {"namespace": "a", "name": "svc", "hostname": "svc.a.svc.cluster.local",
                        "waypoint": "a/wp", "port": 80}, a
assert [p["name"] for p in a["policies"]] == ["allow-reader", "audit-delete", "deny-admin"], a
assert a["request"] == {"principal": "cluster.local/ns/a/sa/reader", "src_ip": "10.0.0.5",
                        "remote_ip": "10.0.0.5", "dst_ip": "198.19.0.10", "dst_port": 80, "http": True,
                        "host": "svc.a:80", "method": "GET", "path": "/admin",
                        "headers": {"x-trace": "1"}}, a
a = check("--from", "cluster.local/ns/ops/sa/x", "--to", "198.19.0.10:80", "--method", "DELETE")
assert (a["decision"], a["audited"], a["reason"], a["policy"]["rule"]) == ("ALLOW", True, "allow_match", 1), a
a = check("--from", "cluster.local/ns/a/sa/x", "--to", "open.a.svc.cluster.local:80", "--path", "/admin")
assert (a["decision"], a["reason"], a["policy"], a["policies"]) == ("ALLOW", "no_policy", None, []), a
a = check("--from", "cluster.local/ns/a/sa/x", "--to", "db.a:5432", "--tcp", "--path", "/x")
assert (a["decision"], a["reason"], a["request"]["http"]) == ("DENY", "no_allow_match", False), a
assert (a["request"]["host"], a["request"]["method"], a["request"]["path"]) == (None, None, None), a
a = check("--from", "cluster.local/ns/a/sa/x", "--to", "broken.a:80")
assert a["reason"] == "deny_invalid_policy" and "10-policies.yaml:" in a["errors"][0], a

# -c: the configuration's manifest directory and trust domain ("cluster.local"
# in a policy stands for it and its aliases)
d = tempfile.mkdtemp(prefix="wpctl-authz-")
try:
    with open(conf) as f:
        text = f.read()
    text = re.sub(r'manifest_dir = "[^"]*";', 'manifest_dir = "%s";' % fixture, text, count=1)
    text = re.sub(r'gateways = \[[^]]*\];', 'gateways = [ "a/wp" ];', text, count=1)
    text = re.sub(r'trust_domain = "[^"]*";', 'trust_domain = "new.td";', text, count=1)
    text = re.sub(r'trust_domain_aliases = \[[^]]*\];', 'trust_domain_aliases = ["old.td"];', text, count=1)
    with open(os.path.join(d, "waypoint.conf"), "w") as f:
        f.write(text)
    for who, want in (("old.td", "ALLOW"), ("new.td", "ALLOW"), ("cluster.local", "DENY")):
        a = json.loads(run("-c", os.path.join(d, "waypoint.conf"), "-o", "json", "--from",
                           who + "/ns/a/sa/reader", "--to", "svc.a:80", "--path", "/api/x").stdout)
        assert a["decision"] == want, (who, a)
    # without -c: the default trust domain, cluster.local
    assert check("--from", "old.td/ns/a/sa/reader", "--to", "svc.a:80", "--path", "/api/x")["decision"] == "DENY"
    run("-c", os.path.join(d, "nope.conf"), "--from", "a/ns/a/sa/b", "--to", "svc.a:80", rc=1)
    run("-c", os.path.join(d, "waypoint.conf"), "--class", "x", "--from", "a/ns/a/sa/b", "--to", "svc.a:80",
        rc=2)
finally:
    shutil.rmtree(d)

# the text form says the same
out = run("--dir", fixture, "--from", "cluster.local/ns/a/sa/reader", "--to", "svc.a:80", "--path",
          "/api/v1").stdout.splitlines()
assert out[0].split() == ["decision:", "ALLOW"] and out[1].split() == ["reason:", "allow_match"], out
assert out[2].split() == ["policy:", "a/allow-reader", "(ALLOW),", "rule", "0"], out

# no decision: 1; usage: 2; help: 0 on stdout
run("--dir", fixture, "--from", "cluster.local/ns/a/sa/x", "--to", "nosuch.a:80", rc=1)
run("--dir", "/nonexistent-wp-dir", "--from", "cluster.local/ns/a/sa/x", "--to", "svc.a:80", rc=1)
for bad in (["--to", "svc.a:80"], ["--from", "x", "--to", "svc.a:80"],
            ["--from", "cluster.local/ns/a/sa/x", "--to", "svc.a"],
            ["--from", "cluster.local/ns/a/sa/x", "--to", "svc.a:80", "--header", "novalue"],
            ["--from", "cluster.local/ns/a/sa/x", "--to", "svc.a:80", "-o", "yaml"],
            ["--bogus"]):
    assert run("--dir", fixture, *bad, rc=2).stderr, bad
for h in (["--help"], ["help"]):
    assert "--from PRINCIPAL" in run(*h).stdout
p = subprocess.run([wpctl, "authz"], capture_output=True, text=True)
assert p.returncode == 2 and "check" in p.stderr, p
p = subprocess.run([wpctl, "help", "authz"], capture_output=True, text=True)
assert p.returncode == 0 and "check" in p.stdout, p

# Online: what wpctl sends and prints (a stand-in for the admin endpoint).
ANSWER = dict(a, view="snapshot")
seen = []


class Admin(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        seen.append((u.path, q))
        ok = q.get("to") == ["broken.a:80"]
        body = json.dumps(ANSWER if ok else {"error": "nosuch.a is not a Service this appliance captures"})
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *a):
        pass


srv = http.server.HTTPServer(("127.0.0.1", 0), Admin)
threading.Thread(target=srv.serve_forever, daemon=True).start()
admin = "127.0.0.1:%d" % srv.server_address[1]
try:
    out = run("--admin", admin, "-o", "json", "--from", "cluster.local/ns/a/sa/x", "--to", "broken.a:80",
              "--path", "/a b?c=d&e", "--header", "k=v=w", "--header", "x=1", "--tcp").stdout
    assert json.loads(out) == ANSWER, out
    path, q = seen[-1]
    assert path == "/authz/check", seen
    assert q == {"from": ["cluster.local/ns/a/sa/x"], "to": ["broken.a:80"], "path": ["/a b?c=d&e"],
                 "header": ["k=v=w", "x=1"], "tcp": ["1"]}, q
    p = run("--admin", admin, "--from", "cluster.local/ns/a/sa/x", "--to", "nosuch.a:80", rc=1)
    assert "answered 404: nosuch.a is not a Service" in p.stderr, p.stderr
finally:
    srv.shutdown()
# nothing listening: 1
run("--admin", "127.0.0.1:1", "--from", "cluster.local/ns/a/sa/x", "--to", "svc.a:80", rc=1)
print("ok")
