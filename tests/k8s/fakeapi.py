#!/usr/bin/python3
"""A fake Kubernetes API server for waypointd's tests (Python 3 stdlib + yaml).

It speaks enough of the real protocol that Debian's kubectl and our C client
(cp/kube) cannot tell it from a small cluster:

* discovery: /version, /api, /apis, /api/v1, /apis/<group>/<version>,
  /openapi/v2 (an empty protobuf document, so kubectl's client-side
  validation skips unknown kinds);
* namespaced and cluster-wide collection paths for Namespace, Service, Pod,
  EndpointSlice, Gateway, GatewayClass, HTTPRoute, AuthorizationPolicy,
  DestinationRule, ServiceEntry, VirtualService, Telemetry (--serve: another
  version or none);
* GET, POST, PUT, DELETE; PATCH with JSON merge patch, strategic merge patch
  (maps merge, lists replace, $-directives dropped: enough for labels),
  server-side apply (application/apply-patch+yaml, JSON or YAML bodies, a
  per-manager record so fields a manager stops applying are removed);
* the /status subresource (status changes only through it for kinds that
  have one; spec changes bump metadata.generation);
* resourceVersion from one global counter; paged LIST (limit/continue);
  label selectors (=, ==, !=, exists, !exists, in, notin);
* chunked WATCH (watch=1, resourceVersion, allowWatchBookmarks,
  timeoutSeconds) with BOOKMARK events, and 410 Expired as an in-stream
  ERROR event once the resourceVersion is compacted;
* bearer-token auth (401 otherwise), or a client certificate signed by
  --client-ca; more named tokens (POST /_fake/clients) tell clients apart
  in the request log, and one client can be cut off (POST /_fake/block);
* Lease (coordination.k8s.io/v1) objects, with the same 409 on a stale
  resourceVersion as every kind; WorkloadEntry (networking.istio.io/v1);
  DELETE honours DeleteOptions' preconditions.resourceVersion (409);
* fault injection through POST /_fake/<op> (no auth needed): see
  Control.handle below.

Usage: fakeapi.py [--port 0] [--port-file F] [--cert C --key K
[--client-ca CA]] [--token T] [--bookmark-interval S] [--load FILE]...
[--fail JSON] (a fault armed before the first request). It listens on
127.0.0.1 only and prints "READY <port>" on stdout once it accepts.
"""

import argparse
import base64
import bisect
import copy
import datetime
import itertools
import json
import os
import socket
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import yaml

# (group, version, kind, plural, namespaced, shortNames, has_status)
KINDS = [
    ("", "v1", "Namespace", "namespaces", False, ["ns"], True),
    ("", "v1", "Service", "services", True, ["svc"], True),
    ("", "v1", "Pod", "pods", True, ["po"], True),
    ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True, [], False),
    ("gateway.networking.k8s.io", "v1", "Gateway", "gateways", True, ["gtw"], True),
    ("gateway.networking.k8s.io", "v1", "GatewayClass", "gatewayclasses", False, ["gc"], True),
    ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", True, [], True),
    ("security.istio.io", "v1", "AuthorizationPolicy", "authorizationpolicies", True, ["ap"], True),
    ("networking.istio.io", "v1", "DestinationRule", "destinationrules", True, ["dr"], True),
    ("networking.istio.io", "v1", "ServiceEntry", "serviceentries", True, ["se"], True),
    ("networking.istio.io", "v1", "VirtualService", "virtualservices", True, ["vs"], True),
    ("networking.istio.io", "v1", "WorkloadEntry", "workloadentries", True, ["we"], True),
    ("telemetry.istio.io", "v1", "Telemetry", "telemetries", True, ["telemetry"], True),
    ("coordination.k8s.io", "v1", "Lease", "leases", True, [], False),
]


class Kind:
    def __init__(self, group, version, kind, plural, namespaced, short, has_status):
        self.group, self.version, self.kind, self.plural = group, version, kind, plural
        self.namespaced, self.short, self.has_status = namespaced, short, has_status

    @property
    def api_version(self):
        return self.group + "/" + self.version if self.group else self.version

    @property
    def singular(self):
        return self.kind.lower()


KIND_LIST = [Kind(*k) for k in KINDS]
BY_PATH = {(k.group, k.version, k.plural): k for k in KIND_LIST}


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_obj(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def strip_directives(patch):
    if isinstance(patch, dict):
        return {k: strip_directives(v) for k, v in patch.items() if not k.startswith("$")}
    if isinstance(patch, list):
        return [strip_directives(v) for v in patch]
    return patch


def leaf_paths(obj, prefix=()):
    """Paths of leaves (maps descended, lists and scalars are leaves)."""
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            yield from leaf_paths(v, prefix + (k,))
    else:
        yield prefix


def remove_path(obj, path):
    node = obj
    for k in path[:-1]:
        if not isinstance(node, dict) or k not in node:
            return
        node = node[k]
    if isinstance(node, dict):
        node.pop(path[-1], None)


def deep_merge(base, over):
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = deep_merge(base.get(k), v)
        return out
    return copy.deepcopy(over)


def parse_selector(sel):
    """Returns a predicate over a labels dict, or raises ValueError."""
    if not sel:
        return lambda labels: True
    reqs = []
    parts, depth, cur = [], 0, ""
    for ch in sel:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    for p in parts:
        p = p.strip()
        if not p:
            continue
        if " notin " in p or " in " in p:
            neg = " notin " in p
            key, vals = p.split(" notin " if neg else " in ", 1)
            vals = {v.strip() for v in vals.strip().strip("()").split(",")}
            key = key.strip()
            if neg:
                reqs.append(lambda l, k=key, v=vals: l.get(k) not in v)
            else:
                reqs.append(lambda l, k=key, v=vals: k in l and l[k] in v)
        elif "!=" in p:
            key, val = p.split("!=", 1)
            reqs.append(lambda l, k=key.strip(), v=val.strip(): l.get(k) != v)
        elif "==" in p or "=" in p:
            key, val = p.split("==" if "==" in p else "=", 1)
            reqs.append(lambda l, k=key.strip(), v=val.strip(): l.get(k) == v)
        elif p.startswith("!"):
            reqs.append(lambda l, k=p[1:].strip(): k not in l)
        else:
            reqs.append(lambda l, k=p: k in l)
    return lambda labels: all(r(labels or {}) for r in reqs)


def parse_field_selector(sel):
    if not sel:
        return lambda obj: True
    reqs = []
    for p in sel.split(","):
        neg = "!=" in p
        key, val = p.split("!=" if neg else ("==" if "==" in p else "="), 1)
        path = key.strip().split(".")

        def get(obj, path=path):
            for k in path:
                obj = obj.get(k) if isinstance(obj, dict) else None
            return obj if obj is not None else ""
        reqs.append(lambda o, g=get, v=val.strip(), n=neg: (g(o) != v) if n else (g(o) == v))
    return lambda obj: all(r(obj) for r in reqs)


class Store:
    """All objects, the global resourceVersion and the event log."""

    def __init__(self):
        self.lock = threading.Condition()
        self.rv = 1
        self.objects = {}  # (plural-group, ns, name) -> obj
        self.applied = {}  # (key, manager) -> last applied config
        self.events = []   # (rv, kindkey, ns, type, obj)
        self.min_rv = 0    # watches/continues from below this are expired
        self.watch_gen = 0  # bumped to end every open watch
        self.expire_gen = 0  # bumped to send 410 to every open watch
        self.key_cache = {}  # (kind key, ns) -> sorted object keys

    @staticmethod
    def kkey(kind):
        return kind.plural + "." + kind.group

    def next_rv(self):
        self.rv += 1
        return self.rv

    def sorted_keys(self, kind, ns):
        """Sorted keys of one kind (and namespace), cached until a create or
        delete of that kind."""
        kk = self.kkey(kind)
        ck = (kk, ns)
        keys = self.key_cache.get(ck)
        if keys is None:
            keys = sorted(k for k in self.objects if k[0] == kk and (ns is None or k[1] == ns))
            self.key_cache[ck] = keys
        return keys

    def record(self, kind, typ, obj):
        if typ != "MODIFIED":
            kk = self.kkey(kind)
            for ck in [c for c in self.key_cache if c[0] == kk]:
                del self.key_cache[ck]
        self.events.append((int(obj["metadata"]["resourceVersion"]), self.kkey(kind),
                            obj["metadata"].get("namespace", ""), typ, copy.deepcopy(obj)))
        self.lock.notify_all()

    def list(self, kind, ns):
        kk = self.kkey(kind)
        return [o for (k, n, _), o in sorted(self.objects.items())
                if k == kk and (ns is None or n == ns)]


def age(ts):
    try:
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return "<unknown>"
    d = int((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())
    if d < 120:
        return "%ds" % max(d, 0)
    if d < 7200:
        return "%dm" % (d // 60)
    if d < 172800:
        return "%dh" % (d // 3600)
    return "%dd" % (d // 86400)


def gw_programmed(o):
    for c in (o.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Programmed":
            return c.get("status", "Unknown")
    return "Unknown"


# Extra printer columns per kind: (header, function of the object).
TABLE_COLUMNS = {
    "Namespace": [("Status", lambda o: (o.get("status") or {}).get("phase", ""))],
    "Gateway": [("Class", lambda o: o.get("spec", {}).get("gatewayClassName", "")),
                ("Address", lambda o: ((o.get("status") or {}).get("addresses") or [{}])[0].get("value", "")),
                ("Programmed", gw_programmed)],
    "GatewayClass": [("Controller", lambda o: o.get("spec", {}).get("controllerName", "")),
                     ("Accepted", lambda o: next((c.get("status") for c in (o.get("status") or {}).get(
                         "conditions") or [] if c.get("type") == "Accepted"), "Unknown"))],
    "Service": [("Type", lambda o: o.get("spec", {}).get("type", "ClusterIP")),
                ("Cluster-IP", lambda o: o.get("spec", {}).get("clusterIP", "<none>"))],
    "Pod": [("Status", lambda o: (o.get("status") or {}).get("phase", "Pending")),
            ("IP", lambda o: (o.get("status") or {}).get("podIP", "<none>"))],
}


def to_table(kind, objs, rv):
    extra = TABLE_COLUMNS.get(kind.kind, [])
    cols = [{"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}]
    cols += [{"name": h, "type": "string", "format": "", "description": "", "priority": 0} for h, _ in extra]
    cols += [{"name": "Age", "type": "string", "format": "", "description": "", "priority": 0}]
    rows = []
    for o in objs:
        cells = [o["metadata"]["name"]] + [f(o) for _, f in extra] + [age(o["metadata"].get("creationTimestamp"))]
        rows.append({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                                "metadata": o["metadata"]}})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
            "columnDefinitions": cols, "rows": rows}


class Control:
    """Faults and test hooks, driven by POST /_fake/<op> with a JSON body."""

    def __init__(self, token):
        self.lock = threading.Lock()
        self.token = token
        self.fail_count = 0
        self.fail_code = 500
        self.fail_match = ""
        self.fail_retry_after = None
        self.down_until = 0.0
        self.requests = []  # (method, path, wall-clock ns when it arrived, who, blocked) log
        self.bookmark_interval = 1.0
        self.clients = {}  # bearer token -> client name
        self.blocked = {}  # client name -> (path substring, seconds to hang)

    def who(self, auth):
        with self.lock:
            return self.clients.get(auth[len("Bearer "):]) if auth.startswith("Bearer ") else None

    def take_fault(self, path):
        with self.lock:
            if self.fail_count > 0 and self.fail_match in path:
                self.fail_count -= 1
                return self.fail_code, self.fail_retry_after
        return None, None


def serve_version(spec):
    """--serve GROUP/PLURAL=VERSION: serve that kind in VERSION instead
    (an older CRD), or not at all with VERSION none."""
    gp, _, ver = spec.partition("=")
    group, _, plural = gp.rpartition("/")
    for k in [k for k in KIND_LIST if k.group == group and k.plural == plural]:
        del BY_PATH[(k.group, k.version, k.plural)]
        if ver == "none":
            KIND_LIST.remove(k)
        else:
            k.version = ver
            BY_PATH[(k.group, k.version, k.plural)] = k


def kind_for_object(obj):
    av = obj.get("apiVersion", "")
    g, _, v = av.rpartition("/")
    for k in KIND_LIST:
        if k.group == g and k.version == v and k.kind == obj.get("kind"):
            return k
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakeapi/1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("fakeapi: " + (fmt % args) + "\n")

    # -- plumbing -----------------------------------------------------------
    def send_json(self, code, obj, extra_headers=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_status(self, code, reason, message, details=None, extra_headers=None):
        self.send_json(code, status_obj(code, reason, message, details), extra_headers)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                line = self.rfile.readline().strip()
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return data
        return self.rfile.read(n) if n else b""

    def authorized(self):
        ctl = self.server.ctl
        cert = getattr(self.connection, "getpeercert", lambda: None)()
        if cert:
            return True
        if ctl.token is None:
            return True
        auth = self.headers.get("Authorization", "")
        return auth == "Bearer " + ctl.token or ctl.who(auth) is not None

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        ctl = self.server.ctl
        if path.startswith("/_fake/"):
            return self.control(path[len("/_fake/"):], method)
        who = ctl.who(self.headers.get("Authorization", ""))
        with ctl.lock:
            block = ctl.blocked.get(who)
            blocked = block is not None and block[0] in self.path
            ctl.requests.append((method, self.path, time.time_ns(), who, blocked))
        if blocked:
            # A partition between this client and the server: no answer,
            # then the connection drops.
            self.read_body()
            time.sleep(block[1])
            self.close_connection = True
            return
        if not self.authorized():
            self.read_body()
            return self.send_status(401, "Unauthorized", "Unauthorized")
        code, retry_after = ctl.take_fault(self.path)
        if code:
            self.read_body()
            hdrs = {"Retry-After": str(retry_after)} if retry_after is not None else None
            reason = "TooManyRequests" if code == 429 else "InternalError"
            return self.send_status(code, reason, "injected fault", extra_headers=hdrs)
        try:
            self.route(method, path, q)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except BadRequest as e:
            self.send_status(400, "BadRequest", str(e))

    # -- discovery ----------------------------------------------------------
    def route(self, method, path, q):
        parts = path.strip("/").split("/") if path != "/" else []
        if method == "GET" and path == "/version":
            return self.send_json(200, {"major": "1", "minor": "29", "gitVersion": "v1.29.0-fake",
                                        "platform": "linux/amd64"})
        if method == "GET" and path == "/openapi/v2":
            self.read_body()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if method == "GET" and path in ("/healthz", "/readyz", "/livez"):
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if method == "GET" and path == "/api":
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [
                                            {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
        if method == "GET" and path == "/apis":
            groups = {}
            for k in KIND_LIST:
                if k.group:
                    groups.setdefault(k.group, set()).add(k.version)
            out = []
            for g, vs in sorted(groups.items()):
                gv = [{"groupVersion": g + "/" + v, "version": v} for v in sorted(vs)]
                out.append({"name": g, "versions": gv, "preferredVersion": gv[0]})
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": out})
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        elif parts[:1] == ["apis"] and len(parts) == 2:
            for k in KIND_LIST:
                if k.group == parts[1]:
                    gv = {"groupVersion": k.api_version, "version": k.version}
                    return self.send_json(200, {"kind": "APIGroup", "apiVersion": "v1", "name": k.group,
                                                "versions": [gv], "preferredVersion": gv})
            return self.send_status(404, "NotFound", "the server could not find the requested resource")
        else:
            return self.send_status(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            if method != "GET":
                return self.send_status(405, "MethodNotAllowed", "method not allowed")
            res = []
            for k in KIND_LIST:
                if k.group == group and k.version == version:
                    verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
                    res.append({"name": k.plural, "singularName": k.singular, "namespaced": k.namespaced,
                                "kind": k.kind, "verbs": verbs, "shortNames": k.short})
                    if k.has_status:
                        res.append({"name": k.plural + "/status", "singularName": "", "namespaced": k.namespaced,
                                    "kind": k.kind, "verbs": ["get", "patch", "update"]})
            if not res:
                return self.send_status(404, "NotFound", "the server could not find the requested resource")
            return self.send_json(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                        "groupVersion": (group + "/" + version) if group else version,
                                        "resources": res})
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        plural = rest[0]
        kind = BY_PATH.get((group, version, plural))
        if kind is None or (ns is not None and not kind.namespaced):
            self.read_body()
            return self.send_status(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) >= 2 else None
        sub = rest[2] if len(rest) >= 3 else None
        if sub is not None and (sub != "status" or not kind.has_status or len(rest) > 3):
            self.read_body()
            return self.send_status(404, "NotFound", "the server could not find the requested resource")
        if name is None:
            if method == "GET":
                if q.get("watch") in ("1", "true"):
                    return self.watch(kind, ns, q)
                return self.list(kind, ns, q)
            if method == "POST":
                return self.create(kind, ns, q)
            return self.send_status(405, "MethodNotAllowed", "method not allowed")
        if kind.namespaced and ns is None:
            return self.send_status(404, "NotFound", "the server could not find the requested resource")
        if method == "GET":
            return self.get(kind, ns, name)
        if method == "PUT":
            return self.update(kind, ns, name, sub, q)
        if method == "PATCH":
            return self.patch(kind, ns, name, sub, q)
        if method == "DELETE":
            body = self.read_body()
            try:
                opts = json.loads(body) if body else {}
            except ValueError:
                return self.send_status(400, "BadRequest", "DeleteOptions: not JSON")
            want = ((opts or {}).get("preconditions") or {}).get("resourceVersion")
            return self.delete(kind, ns, name, want)
        return self.send_status(405, "MethodNotAllowed", "method not allowed")

    # -- CRUD ---------------------------------------------------------------
    def key(self, kind, ns, name):
        return (Store.kkey(kind), ns or "", name)

    def not_found(self, kind, name):
        grp = kind.plural + ("." + kind.group if kind.group else "")
        return self.send_status(404, "NotFound", '%s "%s" not found' % (grp, name),
                                {"name": name, "group": kind.group, "kind": kind.plural})

    def decorate(self, kind, obj):
        obj = copy.deepcopy(obj)
        obj["kind"], obj["apiVersion"] = kind.kind, kind.api_version
        return obj

    def get(self, kind, ns, name):
        st = self.server.store
        with st.lock:
            obj = st.objects.get(self.key(kind, ns, name))
            if obj is None:
                return self.not_found(kind, name)
            if self.wants_table():
                return self.send_json(200, to_table(kind, [obj], obj["metadata"]["resourceVersion"]))
            return self.send_json(200, self.decorate(kind, obj))

    def wants_table(self):
        return "as=Table" in (self.headers.get("Accept") or "")

    def list(self, kind, ns, q):
        st = self.server.store
        try:
            lsel = parse_selector(q.get("labelSelector", ""))
            fsel = parse_field_selector(q.get("fieldSelector", ""))
        except ValueError as e:
            return self.send_status(400, "BadRequest", "unable to parse selector: %s" % e)
        limit = int(q.get("limit") or 0)
        cont = q.get("continue")
        with st.lock:
            start, list_rv = None, st.rv
            if cont:
                try:
                    tok = json.loads(base64.b64decode(cont))
                    start, list_rv = tuple(tok["start"]), tok["rv"]
                except Exception:
                    return self.send_status(400, "BadRequest", "invalid continue token")
                if list_rv < st.min_rv:
                    return self.send_status(410, "Expired",
                                            "The provided continue parameter is too old to display a consistent "
                                            "list result. You can start a new list without the continue parameter.")
            keys = st.sorted_keys(kind, ns)
            pos = bisect.bisect_right(keys, start) if start is not None else 0
            matched = []
            for k in itertools.islice(keys, pos, None):
                o = st.objects[k]
                if lsel(o["metadata"].get("labels")) and fsel(o):
                    matched.append((k, o))
                    if limit and len(matched) > limit:
                        break
            meta = {"resourceVersion": str(list_rv)}
            if limit and len(matched) > limit:
                last = matched[limit - 1][0]
                meta["continue"] = base64.b64encode(json.dumps({"start": list(last), "rv": list_rv}).encode()).decode()
                matched = matched[:limit]
            items = [copy.deepcopy(o) for _, o in matched]
        if self.wants_table():
            t = to_table(kind, items, meta["resourceVersion"])
            t["metadata"] = meta
            return self.send_json(200, t)
        return self.send_json(200, {"kind": kind.kind + "List", "apiVersion": kind.api_version,
                                    "metadata": meta, "items": items})

    def body_object(self):
        raw = self.read_body()
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            if ctype.endswith("yaml"):
                return yaml.safe_load(raw.decode()), ctype
            return json.loads(raw.decode() or "null"), ctype
        except Exception as e:
            raise BadRequest("cannot parse body: %s" % e)

    def fill_meta(self, kind, ns, obj, old=None):
        st = self.server.store
        md = obj.setdefault("metadata", {})
        if kind.namespaced:
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        if old is None:
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = now_iso()
            md["generation"] = 1
        else:
            for f in ("uid", "creationTimestamp"):
                md[f] = old["metadata"][f]
            gen = old["metadata"].get("generation", 1)
            strip = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status", "kind", "apiVersion")}
            md["generation"] = gen + 1 if strip(obj) != strip(old) else gen
        md["resourceVersion"] = str(st.next_rv())
        obj["kind"], obj["apiVersion"] = kind.kind, kind.api_version
        if kind.kind == "Namespace":
            md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]
            obj.setdefault("status", {"phase": "Active"})
        return obj

    def create(self, kind, ns, q):
        obj, _ = self.body_object()
        if not isinstance(obj, dict):
            return self.send_status(400, "BadRequest", "body is not an object")
        st = self.server.store
        name = (obj.get("metadata") or {}).get("name")
        if not name and (obj.get("metadata") or {}).get("generateName"):
            name = obj["metadata"]["generateName"] + uuid.uuid4().hex[:5]
            obj["metadata"]["name"] = name
        if not name:
            return self.send_status(422, "Invalid", "metadata.name: Required value")
        if kind.namespaced and ns is None:
            ns = obj["metadata"].get("namespace") or "default"
        with st.lock:
            k = self.key(kind, ns, name)
            if k in st.objects:
                grp = kind.plural + ("." + kind.group if kind.group else "")
                return self.send_status(409, "AlreadyExists", '%s "%s" already exists' % (grp, name))
            if kind.has_status:
                obj.pop("status", None)
            if q.get("dryRun") == "All":
                return self.send_json(201, self.fill_meta(kind, ns, copy.deepcopy(obj)))
            obj = self.fill_meta(kind, ns, obj)
            st.objects[k] = obj
            st.record(kind, "ADDED", obj)
            return self.send_json(201, self.decorate(kind, obj))

    def store_update(self, kind, ns, name, new, old, sub):
        """Replaces <old> by <new> (status only through /status) under the lock."""
        st = self.server.store
        if kind.has_status:
            if sub == "status":
                tmp = copy.deepcopy(old)
                if "status" in new:
                    tmp["status"] = new["status"]
                else:
                    tmp.pop("status", None)
                new = tmp
            elif "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        new = self.fill_meta(kind, ns, new, old)
        if new == dict(old, metadata=dict(old["metadata"], resourceVersion=new["metadata"]["resourceVersion"])):
            # No-op write: real API servers keep the resourceVersion.
            st.rv -= 1
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return new
        st.objects[self.key(kind, ns, name)] = new
        st.record(kind, "MODIFIED", new)
        return new

    def update(self, kind, ns, name, sub, q):
        obj, _ = self.body_object()
        if not isinstance(obj, dict):
            return self.send_status(400, "BadRequest", "body is not an object")
        st = self.server.store
        with st.lock:
            old = st.objects.get(self.key(kind, ns, name))
            if old is None:
                return self.not_found(kind, name)
            want = (obj.get("metadata") or {}).get("resourceVersion")
            if want and want != old["metadata"]["resourceVersion"]:
                grp = kind.plural + ("." + kind.group if kind.group else "")
                return self.send_status(409, "Conflict",
                                        'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                                        "please apply your changes to the latest version and try again" % (grp, name))
            new = self.store_update(kind, ns, name, copy.deepcopy(obj), old, sub)
            return self.send_json(200, self.decorate(kind, new))

    def patch(self, kind, ns, name, sub, q):
        patch, ctype = self.body_object()
        st = self.server.store
        if ctype == "application/json-patch+json":
            return self.send_status(415, "UnsupportedMediaType", "json-patch is not supported by this fake")
        if ctype not in ("application/merge-patch+json", "application/strategic-merge-patch+json",
                         "application/apply-patch+yaml", "application/apply-patch+json"):
            return self.send_status(415, "UnsupportedMediaType", "the body of the request was in an unknown format")
        if not isinstance(patch, dict):
            return self.send_status(400, "BadRequest", "patch is not an object")
        with st.lock:
            k = self.key(kind, ns, name)
            old = st.objects.get(k)
            if ctype.startswith("application/apply-patch"):
                mgr = q.get("fieldManager")
                if not mgr:
                    return self.send_status(422, "Invalid",
                                            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                                            "is required for apply patch")
                if patch.get("metadata", {}).get("name") not in (None, name):
                    return self.send_status(400, "BadRequest", "the name of the object (%s) does not match the name "
                                            "on the URL (%s)" % (patch["metadata"].get("name"), name))
                prev = st.applied.get((k, mgr, sub))
                base = copy.deepcopy(old) if old else {"metadata": {"name": name}}
                if prev:
                    newpaths = set(leaf_paths(patch))
                    for p in leaf_paths(prev):
                        if p and p not in newpaths and p[0] not in ("kind", "apiVersion"):
                            remove_path(base, p)
                new = deep_merge(base, patch)
                new.setdefault("metadata", {})["name"] = name
                mf = [m for m in (old or {}).get("metadata", {}).get("managedFields", [])
                      if not (m.get("manager") == mgr and m.get("subresource", "") == (sub or ""))]
                entry = {"manager": mgr, "operation": "Apply", "apiVersion": kind.api_version,
                         "time": now_iso(), "fieldsType": "FieldsV1", "fieldsV1": {}}
                if sub:
                    entry["subresource"] = sub
                new["metadata"]["managedFields"] = mf + [entry]
                st.applied[(k, mgr, sub)] = copy.deepcopy(patch)
                if old is None:
                    if sub:
                        return self.not_found(kind, name)
                    new = self.fill_meta(kind, ns, new)
                    if kind.has_status:
                        new.pop("status", None)
                    st.objects[k] = new
                    st.record(kind, "ADDED", new)
                    return self.send_json(201, self.decorate(kind, new))
            else:
                if old is None:
                    return self.not_found(kind, name)
                if ctype == "application/strategic-merge-patch+json":
                    patch = strip_directives(patch)
                new = merge_patch(old, patch)
            new = self.store_update(kind, ns, name, new, old, sub)
            return self.send_json(200, self.decorate(kind, new))

    def delete(self, kind, ns, name, want_rv=None):
        st = self.server.store
        with st.lock:
            k = self.key(kind, ns, name)
            old = st.objects.get(k)
            if old is None:
                return self.not_found(kind, name)
            if want_rv and want_rv != old["metadata"]["resourceVersion"]:
                return self.send_status(
                    409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the ResourceVersion '
                    "in the precondition (%s) does not match the ResourceVersion in record (%s)"
                    % (kind.plural, name, want_rv, old["metadata"]["resourceVersion"]))
            del st.objects[k]
            for ak in [a for a in st.applied if a[0] == k]:
                del st.applied[ak]
            gone = copy.deepcopy(old)
            gone["metadata"]["resourceVersion"] = str(st.next_rv())
            st.record(kind, "DELETED", gone)
            return self.send_json(200, self.decorate(kind, gone))

    # -- WATCH --------------------------------------------------------------
    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def event(self, typ, obj):
        self.chunk(json.dumps({"type": typ, "object": obj}).encode() + b"\n")

    def watch(self, kind, ns, q):
        st, ctl = self.server.store, self.server.ctl
        try:
            lsel = parse_selector(q.get("labelSelector", ""))
        except ValueError as e:
            return self.send_status(400, "BadRequest", str(e))
        rv = q.get("resourceVersion", "")
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        timeout = float(q.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        kk = Store.kkey(kind)
        with st.lock:
            my_watch_gen, my_expire_gen = st.watch_gen, st.expire_gen
            initial = []
            if rv in ("", "0"):
                since = st.rv
                initial = [copy.deepcopy(o) for o in st.list(kind, ns)]
                idx = len(st.events)
            else:
                try:
                    since = int(rv)
                except ValueError:
                    since = -1
                expired = since < st.min_rv or since < 0
                idx = 0
                # Events are appended in resourceVersion order.
                lo, hi = 0, len(st.events)
                while lo < hi:
                    mid = (lo + hi) // 2
                    if st.events[mid][0] <= since:
                        lo = mid + 1
                    else:
                        hi = mid
                idx = lo
        self.server.track(self.connection, True)
        try:
            if rv not in ("", "0") and expired:
                self.event("ERROR", status_obj(410, "Expired", "too old resource version: %s (%d)" % (rv, st.min_rv)))
                self.chunk(b"")
                return
            for o in initial:
                if lsel(o["metadata"].get("labels")):
                    self.event("ADDED", self.decorate(kind, o))
            last_bookmark = time.monotonic()
            last_rv = since
            while True:
                with st.lock:
                    while True:
                        if st.watch_gen != my_watch_gen or st.expire_gen != my_expire_gen:
                            break
                        if idx < len(st.events):
                            break
                        wait = min(deadline, last_bookmark + ctl.bookmark_interval) - time.monotonic()
                        if wait <= 0:
                            break
                        st.lock.wait(wait)
                    if st.expire_gen != my_expire_gen:
                        pending = ("expire", None)
                    elif st.watch_gen != my_watch_gen:
                        pending = ("close", None)
                    else:
                        batch = st.events[idx:]
                        idx = len(st.events)
                        pending = ("events", batch)
                    cur_rv = st.rv
                what, batch = pending
                if what == "expire":
                    self.event("ERROR", status_obj(410, "Expired", "too old resource version: %d (%d)" %
                                                   (last_rv, st.min_rv)))
                    self.chunk(b"")
                    return
                if what == "close":
                    self.chunk(b"")
                    return
                for (erv, ekk, ens, typ, obj) in batch:
                    if ekk != kk or (ns is not None and ens != ns):
                        continue
                    if erv <= since:
                        continue
                    last_rv = erv
                    if not lsel(obj["metadata"].get("labels")):
                        continue
                    self.event(typ, self.decorate(kind, obj))
                now = time.monotonic()
                if now >= deadline:
                    self.chunk(b"")
                    return
                if bookmarks and now - last_bookmark >= ctl.bookmark_interval:
                    last_rv = max(last_rv, cur_rv)
                    self.event("BOOKMARK", {"kind": kind.kind, "apiVersion": kind.api_version,
                                            "metadata": {"resourceVersion": str(last_rv)}})
                    last_bookmark = now
                elif now - last_bookmark >= ctl.bookmark_interval:
                    last_bookmark = now
        finally:
            self.server.track(self.connection, False)
            self.close_connection = True

    # -- control ------------------------------------------------------------
    def control(self, op, method):
        st, ctl = self.server.store, self.server.ctl
        raw = self.read_body()
        try:
            arg = json.loads(raw.decode() or "{}")
        except ValueError:
            return self.send_status(400, "BadRequest", "bad control body")
        if op == "fail":
            # {"count": N, "code": 429|500|..., "match": "substring of path", "retry_after": S}
            with ctl.lock:
                ctl.fail_count = int(arg.get("count", 1))
                ctl.fail_code = int(arg.get("code", 500))
                ctl.fail_match = arg.get("match", "")
                ctl.fail_retry_after = arg.get("retry_after")
        elif op == "expire":
            # Compacts history: every resourceVersion below the current one is
            # gone; open watches get an in-stream 410 ERROR.
            with st.lock:
                st.min_rv = st.next_rv()
                st.expire_gen += 1
                st.lock.notify_all()
        elif op == "vanish":
            # {"kind": plural, "group": g, "namespace": ns, "name": n}: deletes
            # the object and compacts history in one step, so watchers get a
            # 410 instead of the DELETED event and must find out by relisting.
            with st.lock:
                kind = next((k for k in KIND_LIST if k.plural == arg.get("kind") and
                             k.group == arg.get("group", k.group)), None)
                key = (Store.kkey(kind), arg.get("namespace", "") if kind.namespaced else "", arg.get("name"))
                old = st.objects.pop(key, None)
                if old is None:
                    return self.send_status(404, "NotFound", "no such object")
                gone = copy.deepcopy(old)
                gone["metadata"]["resourceVersion"] = str(st.next_rv())
                st.record(kind, "DELETED", gone)
                st.min_rv = st.next_rv()
                st.expire_gen += 1
                st.lock.notify_all()
        elif op == "close-watches":
            with st.lock:
                st.watch_gen += 1
                st.lock.notify_all()
        elif op == "token":
            with ctl.lock:
                ctl.token = arg.get("token")
        elif op == "down":
            # Drops every open connection and refuses new ones for N seconds
            # (an API server restart; state survives).
            ctl.down_until = time.monotonic() + float(arg.get("seconds", 1))
            self.server.kill_all(self.connection)
        elif op == "bookmark-interval":
            ctl.bookmark_interval = float(arg.get("seconds", 1))
        elif op == "requests":
            # {"clear": bool}: the request log, each with its arrival time
            # (t_ns, wall clock) so tests can time what followed a change.
            with ctl.lock:
                reqs = list(ctl.requests)
                if arg.get("clear"):
                    ctl.requests.clear()
            return self.send_json(200, {"requests": [{"method": m, "path": p, "t_ns": t, "who": w, "blocked": b}
                                                     for m, p, t, w, b in reqs]})
        elif op == "clients":
            # {"tokens": {"name": "token", ...}}: more accepted bearer tokens,
            # each logged under its name in the request log.
            with ctl.lock:
                ctl.clients.update({t: n for n, t in arg.get("tokens", {}).items()})
        elif op == "block":
            # {"who": name, "match": "path substring", "seconds": S}: that
            # client's matching requests get no answer (S seconds, then the
            # connection drops); {"who": name, "off": true} lifts it.
            with ctl.lock:
                if arg.get("off"):
                    ctl.blocked.pop(arg.get("who"), None)
                else:
                    ctl.blocked[arg.get("who")] = (arg.get("match", ""), float(arg.get("seconds", 5)))
        elif op == "state":
            with st.lock:
                return self.send_json(200, {"resourceVersion": str(st.rv), "minResourceVersion": str(st.min_rv),
                                            "objects": len(st.objects)})
        elif op == "bulk":
            # {"objects": [...]} created directly (benchmarks): one event each.
            with st.lock:
                for obj in arg.get("objects", []):
                    kind = kind_for_object(obj)
                    if kind is None:
                        return self.send_status(400, "BadRequest", "unknown kind %s" % obj.get("kind"))
                    ns = obj.get("metadata", {}).get("namespace", "default") if kind.namespaced else None
                    obj = self.fill_meta(kind, ns, copy.deepcopy(obj))
                    st.objects[self.key(kind, ns, obj["metadata"]["name"])] = obj
                    st.record(kind, "ADDED", obj)
        else:
            return self.send_status(404, "NotFound", "unknown control op " + op)
        return self.send_json(200, {"ok": True})


class BadRequest(Exception):
    pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, ssl_ctx, store, ctl, verbose):
        self.ssl_ctx, self.store, self.ctl, self.verbose = ssl_ctx, store, ctl, verbose
        self.conns_lock = threading.Lock()
        self.conns = set()
        self.watch_conns = set()
        super().__init__(addr, Handler)

    def track(self, conn, is_watch):
        with self.conns_lock:
            (self.watch_conns.add if is_watch else self.watch_conns.discard)(conn)

    def kill_all(self, except_conn):
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            if c is except_conn:
                continue
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self.store.lock:
            self.store.lock.notify_all()

    def process_request_thread(self, request, client_address):
        try:
            if time.monotonic() < self.ctl.down_until:
                request.close()
                return
            if self.ssl_ctx is not None:
                request.settimeout(10)
                request = self.ssl_ctx.wrap_socket(request, server_side=True)
                request.settimeout(None)
            with self.conns_lock:
                self.conns.add(request)
            try:
                self.finish_request(request, client_address)
            finally:
                with self.conns_lock:
                    self.conns.discard(request)
        except Exception:
            pass
        finally:
            try:
                self.shutdown_request(request)
            except Exception:
                pass

    def handle_error(self, request, client_address):
        if self.verbose:
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--client-ca")
    ap.add_argument("--token")
    ap.add_argument("--bookmark-interval", type=float, default=1.0)
    ap.add_argument("--load", action="append", default=[],
                    help="YAML file of objects to create at start (may repeat)")
    ap.add_argument("--fail", help="a fault armed at start, as the JSON body of POST /_fake/fail "
                    "(e.g. '{\"count\": 1000, \"code\": 500, \"match\": \"/pods\"}')")
    ap.add_argument("--serve", action="append", default=[],
                    help="GROUP/PLURAL=VERSION: serve a kind in another version (none: not at all)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    for spec in a.serve:
        serve_version(spec)
    ctx = None
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        if a.client_ca:
            ctx.load_verify_locations(a.client_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
    store, ctl = Store(), Control(a.token)
    ctl.bookmark_interval = a.bookmark_interval
    if a.fail:
        f = json.loads(a.fail)
        ctl.fail_count = int(f.get("count", 1))
        ctl.fail_code = int(f.get("code", 500))
        ctl.fail_match = f.get("match", "")
        ctl.fail_retry_after = f.get("retry_after")
    srv = Server(("127.0.0.1", a.port), ctx, store, ctl, a.verbose)
    for path in a.load:
        with open(path) as f:
            for obj in yaml.safe_load_all(f):
                if not obj:
                    continue
                kind = kind_for_object(obj)
                if kind is None:
                    sys.exit("fakeapi: %s: unknown kind %s" % (path, obj.get("kind")))
                ns = obj.get("metadata", {}).get("namespace", "default") if kind.namespaced else None
                h = Handler.__new__(Handler)
                h.server = srv
                with store.lock:
                    obj = h.fill_meta(kind, ns, obj)
                    store.objects[h.key(kind, ns, obj["metadata"]["name"])] = obj
                    store.record(kind, "ADDED", obj)
    port = srv.server_address[1]
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.rename(a.port_file + ".tmp", a.port_file)
    print("READY %d" % port, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
