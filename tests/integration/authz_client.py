#!/usr/bin/python3
"""HBONE clients presenting different workload identities, for the
AuthorizationPolicy integration test (tests/integration/test_l7_authz.sh).

    authz_client.py --addr WP:15008 --certs DIR [--backend-log FILE]...
                    [--wpctl WPCTL --dir MANIFESTS] [--records OUT] CASES

Runs the cases of the file CASES in order, one line each (words split as
a POSIX shell does; a '#' beginning a word starts a comment):

    EXPECT IDENTITY AUTHORITY METHOD TARGET [OPTION]...
    pause FILE

IDENTITY is a certificate of DIR (tests/pki/mkpki.sh: productpage,
reviews, foo-bar, sleep, ...): the client's mTLS identity, one HBONE
connection per identity. AUTHORITY (VIP:PORT) is the CONNECT target; each
case has a CONNECT stream of its own unless it names one with conn=.
METHOD TARGET is the request, sent as written (no client-side
normalization); METHOD TCP (TARGET -) is an opaque tunnel instead.

EXPECT, and what is checked:
  200     answered by the backend (its x-backend header), status 200;
          with sees=TARGET (and --backend-log) the backend received that
          request-target
  403     the waypoint's denial: 403, content-type text/plain, body
          "RBAC: access denied", and the CONNECT stream still open (HTTP/1.1
          keep-alive; for h2c the connection, the request stream ends)
  grpc-0  (proto=grpc) 200, messages, trailers with grpc-status 0
  grpc-7  (proto=grpc) trailers-only answer: one HEADERS frame with
          END_STREAM, :status 200, grpc-status 7, grpc-message
          "RBAC: access denied", no DATA
  tcp-ok  (TCP) CONNECT 200 and the bytes come back (echo upstream)
  401     (TCP) CONNECT refused with 401, nothing else on the stream
  reset   (TCP) CONNECT 200, the first (non-HTTP) bytes get the stream
          reset and nothing comes back

OPTIONS: host=H (Host / :authority; default AUTHORITY), h=NAME:VALUE
(a request header, repeatable), for=IP (the CONNECT's Forwarded for=;
default the client library's 10.244.0.9), body=N (N body bytes,
content-length; with chunked=1 in two chunks), pipe=TARGET (HTTP/1.1: a
GET of TARGET pipelined behind the request in the same write, to be
answered 200 by the backend), proto=h1|h2c|grpc (default h1), conn=NAME
(lines with the same NAME share one CONNECT stream: keep-alive; the
stream must still be open after its last case), sees=TARGET, audited=0|1
(with --wpctl: whether an AUDIT policy must match), wpctl=no (a case
wpctl authz check cannot be asked about; listed in the summary).

`pause FILE` creates FILE.paused and waits (at most 60 s) for FILE to
exist, keeping every connection serviced: the test changes policies while
connections are open.

Every HTTP request carries a unique x-case header. With --backend-log
(the JSON request logs of tests/integration/l7_backend.py), every allowed
request must have reached a backend exactly once and no denied one at all.
Each case is also a record: the request as the data path saw it
(principal, source and remote address, host, method, path, headers, tcp)
and the decision observed (ALLOW / DENY). With --wpctl, `wpctl authz
check --dir MANIFESTS -o json` is asked about each record and must answer
the same decision (issue 13 acceptance 4); --records writes the records,
one JSON object a line. Prints one JSON line per case and a summary; exit
status 0 when every check passed. Run with /usr/bin/python3.
"""
import argparse
import json
import os
import re
import shlex
import ssl
import struct
import subprocess
import sys
import time
import uuid

import h2.config
import h2.connection
import h2.events
import h2.exceptions

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hbone"))
from client import HboneClient  # noqa: E402
from l7_http import parse_response  # noqa: E402

DENIED_BODY = b"RBAC: access denied"
DEFAULT_REMOTE = "10.244.0.9"  # client.py's default Forwarded for=


class Failed(Exception):
    pass


def principal_of(cert):
    """The certificate's SPIFFE URI SAN without spiffe://."""
    d = ssl._ssl._test_decode_cert(cert)  # noqa: SLF001 - stdlib's PEM reader
    for k, v in d.get("subjectAltName", ()):
        if k == "URI" and v.startswith("spiffe://"):
            return v[len("spiffe://"):]
    return None


class Inner:
    """An h2c client connection carried inside one CONNECT stream."""

    def __init__(self, tun):
        self.tun = tun
        self.h2 = h2.connection.H2Connection(config=h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8"))
        self.h2.initiate_connection()
        self.resp = {}
        self.flush()

    def flush(self):
        out = self.h2.data_to_send()
        if out:
            self.tun.c.send(self.tun.sid, out)

    def pump(self):
        st = self.tun.st
        if st.rx:
            data = bytes(st.rx)
            st.rx.clear()
            for ev in self.h2.receive_data(data):
                r = self.resp.get(getattr(ev, "stream_id", None))
                if r is None:
                    continue
                if isinstance(ev, h2.events.ResponseReceived):
                    r["headers"] = dict(ev.headers)
                    r["head_ended"] = ev.stream_ended is not None
                elif isinstance(ev, h2.events.DataReceived):
                    r["body"] += ev.data
                    self.h2.acknowledge_received_data(ev.flow_controlled_length,
                                                      ev.stream_id)
                elif isinstance(ev, h2.events.TrailersReceived):
                    r["trailers"] = dict(ev.headers)
                elif isinstance(ev, h2.events.StreamEnded):
                    r["ended"] = True
                elif isinstance(ev, h2.events.StreamReset):
                    r["reset"] = ev.error_code
            self.flush()

    def request(self, headers, body):
        """Sends the request, its body as flow control lets it, until the
        response ended and the body is out or the stream was reset."""
        sid = self.h2.get_next_available_stream_id()
        self.resp[sid] = {"headers": None, "head_ended": False, "body": b"", "trailers": None,
                          "ended": False, "reset": None}
        self.h2.send_headers(sid, headers, end_stream=not body)
        self.flush()
        r = self.resp[sid]
        left = [body]

        def send_some():
            while left[0] and r["reset"] is None:
                n = min(len(left[0]), self.h2.local_flow_control_window(sid),
                        self.h2.max_outbound_frame_size)
                if n <= 0:
                    break
                self.h2.send_data(sid, left[0][:n], end_stream=n == len(left[0]))
                left[0] = left[0][n:]
            self.flush()

        def done():
            self.pump()
            send_some()
            return ((r["ended"] and not left[0]) or r["reset"] is not None or
                    self.tun.st.ended)
        if not self.tun.c.run_until(done):
            raise Failed("h2c stream: no complete answer, %d body bytes unsent (%r)" %
                         (len(left[0]), r))
        return r


class Tunnel:
    """One CONNECT stream of one identity's HBONE connection."""

    def __init__(self, c, authority, remote):
        self.c = c
        self.authority = authority
        kw = {}
        if remote:
            kw["forwarded"] = 'for="%s"' % remote
        self.sid = c.open(authority, **kw)
        self.st = c.streams[self.sid]
        if not c.run_until(lambda: self.st.status is not None or self.st.reset is not None):
            raise Failed("no CONNECT answer")
        self.status = self.st.status
        self.inner = None

    def alive(self):
        self.c.poll(0.05)
        return not (self.st.ended or self.st.reset is not None or self.c.closed)

    def close(self):
        if not self.st.end_sent and self.st.reset is None and not self.c.closed:
            self.c.send(self.sid, b"", end=True)


class Runner:
    def __init__(self, a):
        self.a = a
        self.conns = {}
        self.named = {}
        self.run = uuid.uuid4().hex[:8]
        self.allowed_ids, self.denied_ids = [], []
        self.records = []
        self.tcp_bytes = 0
        self.sees = {}  # case id -> the request-target the backend must get

    def conn(self, identity):
        c = self.conns.get(identity)
        if c is None or c.closed:
            host, port = self.a.addr.rsplit(":", 1)
            cert = os.path.join(self.a.certs, identity + ".pem")
            c = HboneClient(host, int(port), cert,
                            os.path.join(self.a.certs, identity + "-key.pem"),
                            os.path.join(self.a.certs, "ca.pem"), timeout=self.a.timeout)
            c.principal = principal_of(cert)
            self.conns[identity] = c
        return c

    def tunnel(self, identity, authority, opts):
        name = opts.get("conn")
        if name and name in self.named:
            t, ident, auth = self.named[name]
            if (ident, auth) != (identity, authority):
                raise Failed("conn=%s is %s to %s" % (name, ident, auth))
            return t
        t = Tunnel(self.conn(identity), authority, opts.get("for"))
        if name:
            self.named[name] = (t, identity, authority)
        return t

    # ---- one case ----

    def case(self, n, expect, identity, authority, method, target, opts):
        proto = opts.get("proto", "h1")
        t = self.tunnel(identity, authority, opts)
        cid = "%s-%d" % (self.run, n)
        rec = {"line": n, "principal": t.c.principal, "authority": authority,
               "source_ip": t.c.sock.getsockname()[0],
               "remote_ip": opts.get("for", DEFAULT_REMOTE).strip("[]")}
        if method == "TCP":
            rec["tcp"] = True
            got = self.tcp_case(t, expect, cid)
        else:
            if t.status != 200:
                raise Failed("CONNECT answered %s" % t.status)
            hdrs = [tuple(h.split(":", 1)) for h in opts.get("h", [])]
            host = opts.get("host", authority)
            rec.update(method=method, path=target, host=host,
                       headers=["%s=%s" % (k, v) for k, v in hdrs])
            m = re.match(r"https?://([^/?#]*)(.*)", target)
            if m:  # absolute-form: the URI's authority and path decide
                rec.update(host=m.group(1), path=m.group(2) or "/")
            body = b"b" * int(opts.get("body", "0"))
            if proto == "h1":
                got = self.h1_case(t, expect, method, target, host, hdrs, body, cid, opts)
            elif proto == "h2c":
                got = self.h2c_case(t, expect, method, target, host, hdrs, body, cid, opts)
            elif proto == "grpc":
                got = self.grpc_case(t, expect, target, host, hdrs)
            else:
                raise Failed("unknown proto " + proto)
            if proto != "grpc":
                (self.allowed_ids if expect == "200" else self.denied_ids).append(cid)
            if "sees" in opts:
                self.sees[cid] = opts["sees"]
        rec["decision"] = "ALLOW" if expect in ("200", "grpc-0", "tcp-ok") else "DENY"
        if "audited" in opts:
            rec["audited"] = opts["audited"] == "1"
        if opts.get("wpctl") == "no":
            rec["no_wpctl"] = True
        self.records.append(rec)
        if not opts.get("conn"):
            t.close()
        return got

    def h1_case(self, t, expect, method, target, host, hdrs, body, cid, opts):
        head = "%s %s HTTP/1.1\r\nHost: %s\r\nx-case: %s\r\n" % (method, target, host, cid)
        head += "".join("%s: %s\r\n" % (k, v) for k, v in hdrs)
        if body and opts.get("chunked"):
            head += "transfer-encoding: chunked\r\n"
            h = len(body) // 2
            body = b"".join(b"%x\r\n%s\r\n" % (len(x), x) for x in (body[:h], body[h:]))
            body += b"0\r\n\r\n"
        elif body:
            head += "content-length: %d\r\n" % len(body)
        data = (head + "\r\n").encode("latin-1") + body
        if "pipe" in opts:  # a second request in the same write, to be served
            pid = cid + "p"
            data += ("GET %s HTTP/1.1\r\nHost: %s\r\nx-case: %s\r\n\r\n" %
                     (opts["pipe"], host, pid)).encode("latin-1")
            self.allowed_ids.append(pid)
            self.sees[pid] = opts["pipe"]
        t.c.send(t.sid, data)
        status = self.h1_response(t, expect, opts)
        if "pipe" in opts:
            self.h1_response(t, "200", {})
        return status

    def h1_response(self, t, expect, opts):
        got = {}

        def done():
            r = parse_response(t.st.rx)
            if r is not None:
                got["r"] = r
            return r is not None or t.st.ended or t.st.reset is not None
        if not t.c.run_until(done) or "r" not in got:
            raise Failed("no response (rx=%r ended=%s reset=%s)" %
                         (bytes(t.st.rx[:200]), t.st.ended, t.st.reset))
        status, rh, rbody, used = got["r"]
        del t.st.rx[:used]
        self.check_http(expect, status, rh, rbody, opts)
        if expect == "403":
            if rh.get("connection", "").lower() == "close" or not t.alive():
                raise Failed("the 403 closed the connection (headers %r)" % rh)
        return status

    def h2c_case(self, t, expect, method, target, host, hdrs, body, cid, opts):
        if t.inner is None:
            t.inner = Inner(t)
        h = [(":method", method), (":scheme", "http"), (":path", target),
             (":authority", host), ("x-case", cid)] + [(k.lower(), v) for k, v in hdrs]
        if body:
            h.append(("content-length", str(len(body))))
        r = t.inner.request(h, body)
        if r["headers"] is None:
            raise Failed("h2c: no response head (%r)" % r)
        status = int(r["headers"][":status"])
        self.check_http(expect, status, r["headers"], r["body"], opts)
        if expect == "403" and not t.alive():
            raise Failed("the 403 ended the tunnel")
        return status

    def check_http(self, expect, status, rh, body, opts):
        if str(status) != expect:
            raise Failed("status %s, expected %s (body %r)" % (status, expect, body[:200]))
        if expect == "403":
            if body != DENIED_BODY:
                raise Failed("403 body %r" % body)
            if rh.get("content-type") != "text/plain":
                raise Failed("403 content-type %r" % rh.get("content-type"))
            if "x-backend" in rh:
                raise Failed("the 403 came from the backend")
        elif expect == "200":
            if "x-backend" not in rh:
                raise Failed("200 not from a backend: %r" % rh)

    def grpc_case(self, t, expect, target, host, hdrs):
        if t.inner is None:
            t.inner = Inner(t)
        msg = b"3"  # /test.Echo/Count: three messages
        h = [(":method", "POST"), (":scheme", "http"), (":path", target), (":authority", host),
             ("content-type", "application/grpc"), ("te", "trailers")]
        h += [(k.lower(), v) for k, v in hdrs]
        r = t.inner.request(h, b"\x00" + struct.pack(">I", len(msg)) + msg)
        hd = r["headers"] or {}
        if hd.get(":status") != "200":
            raise Failed("gRPC :status %r (%r)" % (hd.get(":status"), r))
        if expect == "grpc-7":
            if not r["head_ended"] or r["body"] or r["trailers"] is not None:
                raise Failed("not a trailers-only answer: %r" % r)
            if hd.get("grpc-status") != "7" or hd.get("grpc-message") != DENIED_BODY.decode():
                raise Failed("denied call: %r" % hd)
            return "grpc-7"
        tr = r["trailers"] or {}
        if tr.get("grpc-status") != "0" or tr.get("x-count") != "3" or len(r["body"]) != 3 * 7:
            raise Failed("allowed call: %r" % r)
        return "grpc-0"

    def tcp_case(self, t, expect, cid):
        if expect == "401":
            if t.status != 401:
                raise Failed("CONNECT %s, expected 401" % t.status)
            t.c.run_until(lambda: t.st.ended or t.st.reset is not None, timeout=2)
            if t.st.rx:
                raise Failed("bytes after a refused CONNECT: %r" % bytes(t.st.rx))
            return 401
        if t.status != 200:
            raise Failed("CONNECT %s, expected 200" % t.status)
        if expect == "reset":
            data = ("OPAQUE-%s\n" % cid).encode()
            t.c.send(t.sid, data)
            t.c.run_until(lambda: t.st.reset is not None or t.st.ended, timeout=5)
            if t.st.reset is None or t.st.rx:
                raise Failed("denied opaque stream not reset (reset %s, rx %r)" %
                             (t.st.reset, bytes(t.st.rx)))
            return "reset"
        data = ("authz-echo %s\n" % cid).encode()
        t.c.send(t.sid, data)
        if not t.c.run_until(lambda: len(t.st.rx) >= len(data) or t.st.reset is not None):
            raise Failed("no echo (rx %r)" % bytes(t.st.rx))
        if bytes(t.st.rx) != data:
            raise Failed("echo %r, sent %r" % (bytes(t.st.rx), data))
        self.tcp_bytes += len(data)
        return "tcp-ok"

    # ---- the run ----

    def pause(self, path):
        open(path + ".paused", "w").close()
        deadline = time.monotonic() + 60
        while not os.path.exists(path) and time.monotonic() < deadline:
            for c in self.conns.values():
                if not c.closed:
                    c.poll(0.02)
            time.sleep(0.02)
        if not os.path.exists(path):
            raise Failed("paused 60 s: %s never came" % path)

    def check_backends(self):
        """Allowed requests reached a backend once each, denied ones never."""
        want = set(self.allowed_ids)
        seen = {}
        deadline = time.monotonic() + 3
        while True:
            seen, targets = {}, {}
            for f in self.a.backend_log:
                with open(f) as fh:
                    for ln in fh:
                        try:
                            o = json.loads(ln)
                        except ValueError:
                            continue
                        h = {k.lower(): v for k, v in o.get("headers", {}).items()}
                        i = h.get("x-case", "")
                        if i.startswith(self.run + "-"):
                            seen[i] = seen.get(i, 0) + 1
                            targets[i] = o.get("target")
            if want <= set(seen) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        bad = sorted(i for i in self.denied_ids if i in seen)
        missing = sorted(want - set(seen))
        twice = sorted(i for i, k in seen.items() if k > 1)
        wrong = ["%s: %r, not %r" % (i, targets[i], t) for i, t in sorted(self.sees.items())
                 if i in targets and targets[i] != t]
        return {"denied_reached_backend": bad, "allowed_missing": missing, "twice": twice,
                "wrong_target": wrong}


def wpctl_check(a, records):
    """`wpctl authz check --dir` on each record: its decision must be the
    one observed (and its AUDIT mark, where the case gave one)."""
    bad = []
    for rec in records:
        if rec.get("no_wpctl"):
            continue
        cmd = [a.wpctl, "authz", "check", "--dir", a.dir, "-o", "json",
               "--from", rec["principal"], "--to", rec["authority"],
               "--source-ip", rec["source_ip"], "--remote-ip", rec["remote_ip"]]
        if rec.get("tcp"):
            cmd.append("--tcp")
        else:
            cmd += ["--method", rec["method"], "--path", rec["path"], "--host", rec["host"]]
            for h in rec["headers"]:
                cmd += ["--header", h]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        try:
            ans = json.loads(p.stdout)
        except ValueError:
            bad.append({"line": rec["line"], "wpctl": p.returncode, "stderr": p.stderr[-300:]})
            continue
        if ans.get("decision") != rec["decision"] or (
                "audited" in rec and ans.get("audited") != rec["audited"]):
            bad.append({"line": rec["line"], "observed": rec["decision"],
                        "audited": rec.get("audited"), "wpctl": ans.get("decision"),
                        "wpctl_audited": ans.get("audited"), "reason": ans.get("reason"),
                        "policy": ans.get("policy")})
    return bad


def parse_line(ln):
    w = shlex.split(ln)
    if w[0] == "pause":
        return ("pause", w[1])
    if len(w) < 5:
        raise ValueError("short case line: " + ln)
    opts = {"h": []}
    for o in w[5:]:
        k, v = o.split("=", 1)
        if k == "h":
            opts["h"].append(v)
        else:
            opts[k] = v
    return ("case", w[0], w[1], w[2], w[3], w[4], opts)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases")
    ap.add_argument("--addr", required=True)
    ap.add_argument("--certs", required=True)
    ap.add_argument("--backend-log", action="append", default=[])
    ap.add_argument("--records")
    ap.add_argument("--wpctl", help="wpctl binary: check each decision with wpctl authz check")
    ap.add_argument("--dir", help="with --wpctl: the manifest directory")
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()
    r = Runner(a)
    failed = 0
    total = 0
    with open(a.cases) as fh:
        # a comment starts at a '#' that begins a word (a target may hold one)
        lines = [(i + 1, re.sub(r"(^|\s)#.*", "", ln).strip()) for i, ln in enumerate(fh)]
    for n, ln in lines:
        if not ln:
            continue
        p = parse_line(ln)
        if p[0] == "pause":
            r.pause(p[1])
            continue
        total += 1
        _, expect, ident, auth, method, target, opts = p
        try:
            got = r.case(n, expect, ident, auth, method, target, opts)
            print(json.dumps({"line": n, "ok": True, "got": got, "case": ln}), flush=True)
        except (Failed, OSError, ssl.SSLError, h2.exceptions.ProtocolError) as e:
            failed += 1
            print(json.dumps({"line": n, "ok": False, "why": str(e), "case": ln}), flush=True)
    for name, (t, _, _) in r.named.items():
        if not t.alive():
            failed += 1
            print(json.dumps({"conn": name, "ok": False,
                              "why": "the kept connection was closed"}), flush=True)
        t.close()
    summary = {"cases": total, "failed": failed, "tcp_bytes_echoed": r.tcp_bytes}
    if a.backend_log:
        chk = r.check_backends()
        summary["backends"] = chk
        if any(chk.values()):
            failed += 1
            summary["failed"] = failed
    if a.wpctl:
        bad = wpctl_check(a, r.records)
        summary["wpctl_checked"] = sum(1 for x in r.records if not x.get("no_wpctl"))
        summary["wpctl_not_asked"] = [x["line"] for x in r.records if x.get("no_wpctl")]
        summary["wpctl_disagrees"] = bad
        if bad:
            failed += 1
            summary["failed"] = failed
    if a.records:
        with open(a.records, "w") as fh:
            for rec in r.records:
                fh.write(json.dumps(rec) + "\n")
    for c in r.conns.values():
        c.run_until(lambda: all(s.ended or s.reset is not None for s in c.streams.values()),
                    timeout=1)
        c.close()
    print(json.dumps(summary), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
