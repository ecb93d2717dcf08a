#!/usr/bin/python3
"""Byte-level interop of dp/tls + dp/hbone with python3-h2, on loopback.

Runs tests/hbone/harness (our TLS+HBONE server over kernel sockets with an
echo application) and drives it with client.py (ztunnel-like), then runs
the harness's HBONE originate against dest.py. Fails loudly on the first
mismatch.

    test_interop.py HARNESS MKPKI
"""

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import client  # noqa: E402


class Proc:
    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if not line.startswith("listening "):
            raise RuntimeError("%s did not start: %r" % (argv[0], line))
        self.port = int(line.split(":")[-1])

    def stats(self):
        self.p.send_signal(signal.SIGUSR1)
        return json.loads(self.p.stdout.readline())

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok -", what, flush=True)


def connect(port, pki, who="productpage", **kw):
    return client.HboneClient("127.0.0.1", port, os.path.join(pki, who + ".pem"),
                              os.path.join(pki, who + "-key.pem"),
                              os.path.join(pki, "ca.pem"), **kw)


def refused(port, pki, who=None, ctx=None):
    """True when the server refuses the handshake (TLS 1.3: the client may
    only learn it on its first read)."""
    try:
        c = connect(port, pki, who or "productpage", tls_ctx=ctx)
        c.ping()
        c.run_until(lambda: c.pings_acked > 0, 3.0)
        ok = c.pings_acked > 0 and not c.closed
        c.close()
        return not ok
    except (ssl.SSLError, ConnectionError, OSError):
        return True


def main():
    harness, mkpki = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="wp-hbone-interop.")
    pki = os.path.join(tmp, "pki")
    procs = []
    try:
        subprocess.run(["sh", mkpki, pki], check=True, stdout=subprocess.DEVNULL)
        srv = Proc([harness, "--certs", pki])
        procs.append(srv)

        # 100 concurrent tunnels on one connection, 64 KiB each, echoed.
        c = connect(srv.port, pki, expect_san="spiffe://cluster.local/ns/default/sa/waypoint")
        ok, rep = client.echo_tunnels(c, "10.0.0.1:8080", 100, 64 * 1024, timeout=120)
        check(ok, "100 concurrent tunnels x 64 KiB echoed (%s)" % json.dumps(rep)[:200])
        # One big tunnel, more than the stream and connection windows' worth
        # of flow-control updates.
        ok, rep = client.echo_tunnels(c, "[fd00::1]:9080", 1, 8 * 1024 * 1024, timeout=120)
        check(ok, "8 MiB through one tunnel (IPv6 authority)")

        # Refusals on the same connection.
        for method, auth, want in (("GET", "10.0.0.1:80", 400),
                                   ("CONNECT", "reviews:9080", 400),
                                   ("CONNECT", "10.0.0.1:1", 503),
                                   ("CONNECT", "10.0.0.1:2", 401),
                                   ("CONNECT", "10.0.0.1:3", 400)):
            sid = c.open(auth, method=method)
            c.run_until(lambda: c.streams[sid].status is not None)
            st = c.streams[sid]
            check(st.status == want, "%s %s -> %s (got %s)" % (method, auth, want, st.status))
            c.run_until(lambda: st.ended or st.reset is not None, 2.0)
            check(st.ended, "%s %s: the refusal ends the stream" % (method, auth))
        # RST as EOF, half-close.
        sid = c.open("10.0.0.1:8080")
        c.run_until(lambda: c.streams[sid].status == 200)
        c.send(sid, b"half", end=True)
        c.run_until(lambda: c.streams[sid].ended)
        check(bytes(c.streams[sid].rx) == b"half", "half-close: echo then END_STREAM")
        sid = c.open("10.0.0.1:8080")
        c.run_until(lambda: c.streams[sid].status == 200)
        c.reset(sid)
        c.ping()
        n = c.pings_acked
        c.run_until(lambda: c.pings_acked > n)
        check(not c.closed, "RST_STREAM CANCEL on a tunnel keeps the connection")
        c.close()

        # Handshake refusals, each counted.
        base = srv.stats()["counters"]
        check(refused(srv.port, pki, "evil"), "foreign trust domain refused")
        check(refused(srv.port, pki, "expired"), "expired certificate refused")
        check(refused(srv.port, pki, "rogue"), "untrusted chain refused")
        noc = client.tls_context(None, None, os.path.join(pki, "ca.pem"))
        check(refused(srv.port, pki, ctx=noc), "no client certificate refused")
        h11 = client.tls_context(os.path.join(pki, "productpage.pem"),
                                 os.path.join(pki, "productpage-key.pem"),
                                 os.path.join(pki, "ca.pem"))
        h11.set_alpn_protocols(["http/1.1"])
        check(refused(srv.port, pki, ctx=h11), "no h2 in ALPN refused")
        t12 = client.tls_context(os.path.join(pki, "productpage.pem"),
                                 os.path.join(pki, "productpage-key.pem"),
                                 os.path.join(pki, "ca.pem"))
        t12.minimum_version = ssl.TLSVersion.TLSv1_2
        t12.maximum_version = ssl.TLSVersion.TLSv1_2
        check(refused(srv.port, pki, ctx=t12), "TLS 1.2 refused")
        time.sleep(0.3)
        ctr = srv.stats()["counters"]
        for name in ("TLS_HS_FOREIGN_TRUST_DOMAIN", "TLS_HS_EXPIRED", "TLS_HS_BAD_CHAIN",
                     "TLS_HS_NO_PEER_CERT", "TLS_HS_NO_ALPN_H2", "TLS_HS_PROTOCOL_VERSION"):
            check(ctr.get(name, 0) == base.get(name, 0) + 1, "counter %s" % name)
        for name in ("HBONE_NOT_CONNECT", "HBONE_BAD_AUTHORITY", "HBONE_RESP_503",
                     "HBONE_RESP_401", "HBONE_RESP_400"):
            check(ctr.get(name, 0) == 1, "counter %s" % name)

        # Memory per idle connection (after handshake + SETTINGS + a PING).
        st0 = srv.stats()
        idle = []
        for _ in range(50):
            c = connect(srv.port, pki)
            c.ping()
            c.run_until(lambda: c.pings_acked > 0)
            idle.append(c)
        time.sleep(0.3)
        st1 = srv.stats()
        n = st1["established"] - st0["established"]
        check(n == 50, "50 idle connections established")
        tls = (st1["tls_bytes"] - st0["tls_bytes"]) / n
        h2b = (st1["h2_bytes"] - st0["h2_bytes"]) / n
        h2h = (st1["h2_held"] - st0["h2_held"]) / n
        print("MEMORY per idle HBONE connection: OpenSSL %.0f B + nghttp2 %.0f B "
              "(%.0f B in allocator classes) = %.0f B" % (tls, h2b, h2h, tls + h2b), flush=True)
        for c in idle:
            c.close()

        # SIGTERM drains: GOAWAY, the open tunnel finishes its transfer.
        c = connect(srv.port, pki)
        sid = c.open("10.0.0.1:8080")
        c.run_until(lambda: c.streams[sid].status == 200)
        data = client.payload(sid, 1 << 20)
        c.send(sid, data[:1 << 19])
        srv.p.send_signal(signal.SIGTERM)
        c.run_until(lambda: c.goaway is not None)
        check(c.goaway is not None and c.goaway.error_code == 0, "GOAWAY(NO_ERROR) on SIGTERM")
        c.send(sid, data[1 << 19:], end=True)
        c.run_until(lambda: c.streams[sid].ended, 30)
        check(bytes(c.streams[sid].rx) == data, "open tunnel finished its 1 MiB after GOAWAY")
        c.close()
        srv.p.stdout.readline()  # final stats
        check(srv.p.wait(timeout=10) == 0, "harness exits after the drain")

        # HBONE originate: our client against python3-h2's server.
        dst = Proc(["/usr/bin/python3", os.path.join(HERE, "dest.py"), "--certs", pki])
        procs.append(dst)
        r = subprocess.run([harness, "--certs", pki, "--originate", "127.0.0.1:%d" % dst.port,
                            "--tunnels", "100", "--bytes", str(64 * 1024), "--expect-peer",
                            "spiffe://cluster.local/ns/default/sa/dest"],
                           stdout=subprocess.PIPE, text=True, timeout=120)
        print(r.stdout.strip())
        check(r.returncode == 0, "originate: 100 tunnels x 64 KiB echoed by dest.py")
        r = subprocess.run([harness, "--certs", pki, "--originate", "127.0.0.1:%d" % dst.port,
                            "--tunnels", "1", "--bytes", "1024", "--expect-peer",
                            "spiffe://cluster.local/ns/default/sa/other"],
                           stdout=subprocess.PIPE, text=True, timeout=60)
        check(r.returncode != 0, "originate: wrong server identity refused")
        print("all interop checks passed")
        return 0
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
