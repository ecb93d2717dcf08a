#!/usr/bin/python3
"""One HTTP request inside an HBONE tunnel, for the tracing integration test
(tests/integration/test_tracing.sh).

    trace_client.py --addr WP:15008 --certs DIR --authority VIP:PORT
                    [--host H] [--path P] [--proto h1|h2c] [--header NAME:VALUE]...

Opens a CONNECT stream (client certificate productpage, Forwarded for the
client library's 10.244.0.9), sends one GET over HTTP/1.1 or h2c (prior
knowledge) with the given headers, and prints JSON: the status and the
response headers. Exit status 0 when a response came. Run with
/usr/bin/python3.
"""
import argparse
import json
import os
import sys

import h2.config
import h2.connection
import h2.events

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hbone"))
from client import HboneClient  # noqa: E402


def h1(c, sid, st, a, hdrs):
    req = "GET %s HTTP/1.1\r\nhost: %s\r\nuser-agent: trace_client\r\n" % (a.path, a.host)
    req += "".join("%s: %s\r\n" % (k, v) for k, v in hdrs) + "\r\n"
    c.send(sid, req.encode())

    def done():
        end = bytes(st.rx).find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(st.rx[:end]).decode("latin-1").split("\r\n")
        n = [int(ln.split(":", 1)[1]) for ln in head if ln.lower().startswith("content-length:")]
        return len(st.rx) >= end + 4 + (n[0] if n else 0)
    if not c.run_until(done, timeout=a.timeout):
        sys.exit("no complete response: %r" % bytes(st.rx))
    head = bytes(st.rx[:bytes(st.rx).find(b"\r\n\r\n")]).decode("latin-1").split("\r\n")
    return int(head[0].split(" ")[1]), dict(
        (k.strip().lower(), v.strip()) for k, v in (ln.split(":", 1) for ln in head[1:]))


def h2c(c, sid, st, a, hdrs):
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    s = conn.get_next_available_stream_id()
    conn.send_headers(s, [(":method", "GET"), (":scheme", "http"), (":authority", a.host),
                          (":path", a.path), ("user-agent", "trace_client")] + hdrs,
                      end_stream=True)
    c.send(sid, conn.data_to_send())
    resp = {}

    def done():
        if st.rx:
            data = bytes(st.rx)
            st.rx.clear()
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    resp["headers"] = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    resp["ended"] = True
            out = conn.data_to_send()
            if out:
                c.send(sid, out)
        return resp.get("ended") or st.ended
    if not c.run_until(done, timeout=a.timeout) or "headers" not in resp:
        sys.exit("no complete h2 response")
    h = resp["headers"]
    return int(h[":status"]), h


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--certs", required=True)
    ap.add_argument("--authority", required=True)
    ap.add_argument("--host", default=None)
    ap.add_argument("--path", default="/")
    ap.add_argument("--proto", choices=["h1", "h2c"], default="h1")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()
    a.host = a.host or a.authority
    hdrs = [tuple(x.strip() for x in h.split(":", 1)) for h in a.header]
    host, port = a.addr.rsplit(":", 1)
    c = HboneClient(host, int(port), a.certs + "/productpage.pem",
                    a.certs + "/productpage-key.pem", a.certs + "/ca.pem")
    sid = c.open(a.authority)
    st = c.streams[sid]
    if not c.run_until(lambda: st.status is not None, timeout=a.timeout) or st.status != 200:
        sys.exit("CONNECT: %r" % st.status)
    status, headers = (h2c if a.proto == "h2c" else h1)(c, sid, st, a, hdrs)
    c.close()
    print(json.dumps({"status": status, "headers": headers}))


if __name__ == "__main__":
    main()
