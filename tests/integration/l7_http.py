#!/usr/bin/python3
"""HTTP/1.1 inside HBONE tunnels, for the L7 integration test (issue 6).

Uses tests/hbone/client.py's HboneClient (python3-h2, ztunnel-like):
  l7_http.py get   --authority VIP:PORT --path /x [--n N]
      N keep-alive GETs on one CONNECT stream; prints a JSON object counting
      the first word of each response body (the backend's name) and the
      statuses (and the request / response bytes, "bytes_sent" /
      "bytes_received"; --baggage sets the CONNECT's baggage; each request's
      time from sending to its complete answer, "min_ms" / "max_ms", and
      with --slow-ms M "slow": how many took M ms or more). With --pause-after K --pause-file F: after K requests it
      creates F.paused, waits for F, goes on on the same stream and reports
      the backends before and after separately.
  l7_http.py raw   --authority VIP:PORT --data 'python-escaped bytes'
      sends the bytes on a fresh CONNECT stream (no END_STREAM) and prints
      JSON: the CONNECT status, what came back, whether the stream ended.
Run with /usr/bin/python3.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hbone"))
from client import HboneClient  # noqa: E402


def parse_response(buf):
    """(status, headers dict, body, consumed) for one complete response in buf, or None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    hdrs = {}
    for ln in lines[1:]:
        k, v = ln.split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    if len(buf) < end + 4 + n:
        return None
    return status, hdrs, bytes(buf[end + 4:end + 4 + n]), end + 4 + n


def connect(a):
    cert = os.path.join(a.certs, a.identity + ".pem")
    key = os.path.join(a.certs, a.identity + "-key.pem")
    host, port = a.addr.rsplit(":", 1)
    return HboneClient(host, int(port), cert, key, os.path.join(a.certs, "ca.pem"),
                       timeout=a.timeout)


def cmd_get(a):
    c = connect(a)
    counts, statuses = {}, {}
    sent = received = 0
    kw = {"baggage": a.baggage} if a.baggage is not None else {}
    if a.forwarded_for:
        sid = c.open(a.authority, forwarded='for="%s"' % a.forwarded_for, **kw)
    else:
        sid = c.open(a.authority, **kw)
    if not c.run_until(lambda: c.streams[sid].status is not None):
        sys.exit("no CONNECT answer")
    if c.streams[sid].status != 200:
        sys.exit("CONNECT status %s" % c.streams[sid].status)
    st = c.streams[sid]
    after = {}
    times = []
    for i in range(a.n):
        if a.pause_after and i == a.pause_after:
            # phase 2 (same stream, same connection): wait for the go file;
            # if the waypoint ends the tunnel meanwhile (a drain closes idle
            # sessions), stop, as an HTTP client does at EOF on an idle
            # keep-alive connection
            open(a.pause_file + ".paused", "w").close()
            deadline = time.monotonic() + 60
            while (not os.path.exists(a.pause_file) and time.monotonic() < deadline
                   and not st.ended and st.reset is None):
                c.poll(0.1)
            counts, after = {}, counts
            if st.ended or st.reset is not None:
                break
        req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: l7_http\r\n%s\r\n" %
               (a.path, a.host or a.authority, "".join(h + "\r\n" for h in a.header))).encode()
        t0 = time.monotonic()
        c.send(sid, req)
        sent += len(req)
        got = {}

        def done():
            r = parse_response(st.rx)
            if r is not None:
                got["r"] = r
            return r is not None or st.ended or st.reset is not None
        if not c.run_until(done) or "r" not in got:
            sys.exit("request %d: no response (rx=%r ended=%s reset=%s)" %
                     (i, bytes(st.rx[:200]), st.ended, st.reset))
        times.append((time.monotonic() - t0) * 1000)
        status, hdrs, body, used = got["r"]
        del st.rx[:used]
        received += used
        statuses[status] = statuses.get(status, 0) + 1
        w = body.split(b" ")[0].decode() if body else ""
        counts[w] = counts.get(w, 0) + 1
    if st.reset is None:
        c.send(sid, b"", end=True)
    c.run_until(lambda: st.ended or st.reset is not None, timeout=5)
    out = {"backends": counts, "statuses": statuses, "closed": st.ended,
           "bytes_sent": sent, "bytes_received": received,
           "min_ms": round(min(times), 1) if times else None,
           "max_ms": round(max(times), 1) if times else None}
    if a.slow_ms:
        out["slow"] = sum(1 for t in times if t >= a.slow_ms)
    if a.pause_after:
        out = {"before": after, "after": counts, "statuses": statuses, "closed": st.ended}
    print(json.dumps(out))


def cmd_raw(a):
    c = connect(a)
    sid = c.open(a.authority)
    st = c.streams[sid]
    if not c.run_until(lambda: st.status is not None):
        sys.exit("no CONNECT answer")
    if st.status == 200:
        c.send(sid, a.data.encode("latin-1").decode("unicode_escape").encode("latin-1"))
        c.run_until(lambda: st.ended or st.reset is not None, timeout=a.wait)
    print(json.dumps({"connect": st.status, "rx": bytes(st.rx).decode("latin-1"),
                      "ended": st.ended, "reset": st.reset}))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("mode", choices=["get", "raw"])
    ap.add_argument("--addr", required=True)
    ap.add_argument("--certs", required=True)
    ap.add_argument("--identity", default="productpage")
    ap.add_argument("--authority", required=True)
    ap.add_argument("--host", default=None)
    ap.add_argument("--path", default="/")
    ap.add_argument("--n", type=int, default=1)
    ap.add_argument("--data", default="")
    ap.add_argument("--pause-after", type=int, default=0,
                    help="get: after this many requests, wait for --pause-file to exist "
                         "(touching PAUSE_FILE.paused first), then go on on the same stream")
    ap.add_argument("--pause-file", default="")
    ap.add_argument("--forwarded-for", default="")
    ap.add_argument("--baggage", default=None, help="the CONNECT's baggage header")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--wait", type=float, default=5.0)
    ap.add_argument("--slow-ms", type=float, default=0.0,
                    help="count the answers that took this long or longer")
    ap.add_argument("--timeout", type=float, default=20.0)
    a = ap.parse_args()
    {"get": cmd_get, "raw": cmd_raw}[a.mode](a)


if __name__ == "__main__":
    main()
