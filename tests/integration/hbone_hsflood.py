#!/usr/bin/python3
"""Stalled-handshake flood for test_hbone_hsflood.sh (run inside the test's
namespace with /usr/bin/python3). Bounded in count (--conns <= 2000) and
time (--timeout); one JSON line per phase on stdout.

  hbone_hsflood.py --addr IP:PORT --conns N --expect-held K
                   (--close-after S | --wait-closed S) [--settle S]

Opens N TCP connections to the HBONE port one after the other. Even ones
send nothing; odd ones send the first half of a real TLS 1.3 ClientHello
(ALPN h2), so the server holds a handshake that cannot progress. After
--settle seconds every connection is classified: "refused" when the server
reset or closed it, "held" when it is still open and silent. The first
line reports {"opened", "held", "refused", "setup_seconds"}.

Then either
  --close-after S  keeps the held connections S seconds and closes them
                   (FIN), reporting {"closed": n};
  --wait-closed S  waits up to S seconds for the server to end every held
                   connection (its set-up timeout), reporting
                   {"server_closed": n, "first_s", "last_s"} in seconds
                   since the first connection was opened.
Exit status 0 when exactly K were held and, with --wait-closed, the server
ended all of them in time.
"""

import argparse
import errno
import json
import resource
import select
import socket
import ssl
import sys
import time


def partial_client_hello():
    """The first half of a TLS 1.3 ClientHello as a real client sends it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["h2"])
    rd, wr = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(rd, wr)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = wr.read()
    if len(hello) < 100 or hello[0] != 22:
        sys.exit(f"hsflood: unexpected ClientHello of {len(hello)} bytes")
    return hello[: len(hello) // 2]


def ended(s):
    """True when the peer reset or closed s (checked without blocking)."""
    try:
        return s.recv(1, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True  # ECONNRESET and the like


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--conns", type=int, required=True)
    ap.add_argument("--expect-held", type=int, required=True)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=60.0)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--close-after", type=float)
    mode.add_argument("--wait-closed", type=float)
    a = ap.parse_args()
    if not 0 < a.conns <= 2000:
        sys.exit("hsflood: --conns must be 1..2000")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    host, port = a.addr.rsplit(":", 1)
    hello = partial_client_hello()
    start = time.monotonic()
    deadline = start + a.timeout
    socks, refused = [], 0
    for i in range(a.conns):
        if time.monotonic() > deadline:
            sys.exit(f"hsflood: only {i} connections opened in {a.timeout} s")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5.0)
        try:
            s.connect((host, int(port)))
            if i % 2 == 1:
                s.sendall(hello)
        except OSError as e:
            # The server's RST may beat our send (or even the connect's
            # return): that connection was refused, which is what we count.
            if e.errno not in (errno.ECONNRESET, errno.ECONNREFUSED, errno.EPIPE):
                raise
            s.close()
            refused += 1
            continue
        s.setblocking(False)  # ended() must not wait
        socks.append(s)
    setup = time.monotonic() - start
    time.sleep(a.settle)
    held = []
    for s in socks:
        if ended(s):
            refused += 1
            s.close()
        else:
            held.append(s)
    print(json.dumps({"opened": a.conns, "held": len(held), "refused": refused,
                      "setup_seconds": round(setup, 2)}), flush=True)
    ok = len(held) == a.expect_held
    if a.close_after is not None:
        time.sleep(a.close_after)
        for s in held:
            s.close()
        print(json.dumps({"closed": len(held)}), flush=True)
        return 0 if ok else 1
    # --wait-closed: the server must end each held connection by itself.
    until = min(deadline, time.monotonic() + a.wait_closed)
    poller = select.poll()
    byfd = {s.fileno(): s for s in held}
    for fd in byfd:
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    times = []
    while byfd and time.monotonic() < until:
        for fd, _ in poller.poll(100):
            s = byfd.get(fd)
            if s is None or not ended(s):
                continue
            times.append(time.monotonic() - start)
            poller.unregister(fd)
            del byfd[fd]
            s.close()
    for s in byfd.values():
        s.close()
    print(json.dumps({"server_closed": len(times), "still_open": len(byfd),
                      "first_s": round(min(times), 2) if times else None,
                      "last_s": round(max(times), 2) if times else None}), flush=True)
    return 0 if ok and not byfd else 1


if __name__ == "__main__":
    sys.exit(main())
