#!/usr/bin/python3
"""Linux-side TCP peers for the TCP integration tests (run inside the test's
network namespace). Every mode is bounded in count and time and exits
non-zero with a reason when a check fails.

  echo-many HOST PORT CONNS BYTES   CONNS concurrent connections to an echo
                                    service, each sends BYTES of random data
                                    and verifies every echoed byte
  bulk HOST PORT BYTES              one connection: sends BYTES while reading
                                    the echo; SHA-256 of both must match
  short HOST PORT COUNT             COUNT short connections (connect, 1 byte
                                    echoed, close), 32 in flight
  server PORT                       an echo server on 0.0.0.0:PORT that writes
                                    "<connections> <bytes> <sha256>" of what it
                                    received to stdout when SIGTERM arrives
  pattern-sha K BYTES               SHA-256 of waypointd's diagnostic client
                                    pattern for connection K
  sink HOST PORT BYTES              sends BYTES to a discard service, then
                                    its FIN; the service's FIN must follow
                                    (it comes once every byte was read)
  source HOST PORT BYTES            asks the source service for BYTES and
                                    checks every byte of its pattern
                                    (byte i is i % 251) and the close after
"""
import errno
import hashlib
import os
import selectors
import signal
import socket
import sys
import threading
import time

DEADLINE = float(os.environ.get("TCPCHECK_DEADLINE", "300"))


def die(msg):
    print(f"tcpcheck: {msg}", file=sys.stderr)
    sys.exit(1)


def echo_many(host, port, conns, nbytes):
    sel = selectors.DefaultSelector()
    start = time.time()
    state = {}
    for i in range(conns):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((host, port))
        data = os.urandom(nbytes)
        state[s] = {"data": data, "sent": 0, "got": bytearray(), "i": i}
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    done = 0
    while done < conns:
        if time.time() - start > DEADLINE:
            die(f"echo-many: {done}/{conns} done after {DEADLINE}s")
        for key, ev in sel.select(timeout=1.0):
            s, st = key.fileobj, state[key.fileobj]
            if ev & selectors.EVENT_WRITE and st["sent"] < nbytes:
                try:
                    st["sent"] += s.send(st["data"][st["sent"]:st["sent"] + 65536])
                except BlockingIOError:
                    pass
                except OSError as e:
                    die(f"echo-many: conn {st['i']} send: {e}")
                if st["sent"] == nbytes:
                    sel.modify(s, selectors.EVENT_READ)
            if ev & selectors.EVENT_READ:
                try:
                    chunk = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as e:
                    die(f"echo-many: conn {st['i']} recv: {e}")
                if not chunk:
                    die(f"echo-many: conn {st['i']} closed after {len(st['got'])} bytes")
                st["got"] += chunk
                if len(st["got"]) > nbytes:
                    die(f"echo-many: conn {st['i']} got too many bytes")
                if len(st["got"]) == nbytes:
                    if bytes(st["got"]) != st["data"]:
                        got, want = bytes(st["got"]), st["data"]
                        off = next(j for j in range(nbytes) if got[j] != want[j])
                        where = want.find(got[off:off + 32])
                        die(f"echo-many: conn {st['i']} echoed different bytes from offset "
                            f"{off} (those bytes were sent at offset {where})")
                    sel.unregister(s)
                    s.close()
                    done += 1
    print(f"echo-many: {conns} connections x {nbytes} bytes verified in "
          f"{time.time() - start:.1f}s")


def bulk(host, port, nbytes):
    s = socket.create_connection((host, port), timeout=30)
    s.settimeout(DEADLINE)
    sent_sha, got_sha = hashlib.sha256(), hashlib.sha256()
    seed = os.urandom(1 << 20)
    err = []

    def writer():
        try:
            left, off = nbytes, 0
            while left:
                n = min(left, 1 << 20)
                block = bytes(b ^ (off >> 20 & 0xff) for b in seed[:64]) + seed[64:n]
                sent_sha.update(block[:n])
                s.sendall(block[:n])
                left -= n
                off += n
        except OSError as e:
            err.append(e)

    start = time.time()
    t = threading.Thread(target=writer)
    t.start()
    got = 0
    while got < nbytes:
        chunk = s.recv(1 << 20)
        if not chunk:
            die(f"bulk: closed after {got} of {nbytes} bytes")
        got_sha.update(chunk)
        got += len(chunk)
    t.join()
    s.close()
    if err:
        die(f"bulk: send failed: {err[0]}")
    secs = time.time() - start
    if sent_sha.hexdigest() != got_sha.hexdigest():
        die("bulk: SHA-256 of echoed bytes differs from what was sent")
    print(f"bulk: {nbytes} bytes each way, sha256 {got_sha.hexdigest()[:16]}..., "
          f"{secs:.1f}s, {nbytes * 8 / secs / 1e9:.2f} Gbit/s each way")


def short(host, port, count):
    sel = selectors.DefaultSelector()
    start = time.time()
    started = finished = 0
    inflight = {}

    def launch():
        nonlocal started
        s = socket.socket()
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\0" * 8)
        e = s.connect_ex((host, port))
        if e not in (0, errno.EINPROGRESS):
            die(f"short: connect #{started}: {os.strerror(e)}")
        inflight[s] = "connecting"
        sel.register(s, selectors.EVENT_WRITE)
        started += 1

    while finished < count:
        if time.time() - start > DEADLINE:
            die(f"short: {finished}/{count} after {DEADLINE}s")
        while started < count and len(inflight) < 32:
            launch()
        for key, ev in sel.select(timeout=1.0):
            s = key.fileobj
            if inflight[s] == "connecting":
                e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if e:
                    die(f"short: connect failed: {os.strerror(e)}")
                s.send(b"x")
                inflight[s] = "reading"
                sel.modify(s, selectors.EVENT_READ)
            else:
                if s.recv(16) != b"x":
                    die("short: echo mismatch")
                sel.unregister(s)
                del inflight[s]
                s.shutdown(socket.SHUT_WR)
                s.close()
                finished += 1
    print(f"short: {count} connections in {time.time() - start:.1f}s")


def server(port):
    """Echo server, event-driven: every connection has its own pending
    output; a connection whose peer reads slowly stops being read (its
    output above ECHO_HOLD) instead of blocking the others, and nothing
    ever gives up on a slow peer -- the flow control under test decides."""
    ECHO_HOLD = 1 << 20
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(4096)
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ)
    total = {"conns": 0, "bytes": 0}
    shas = {}
    out = {}  # socket -> bytearray still to send
    eof = set()  # peers that half-closed: close once their output is out
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    print("ready", flush=True)
    start = time.time()

    def close(c):
        sel.unregister(c)
        c.close()
        out.pop(c, None)
        eof.discard(c)

    def interest(c):
        ev = 0
        if c not in eof and len(out[c]) < ECHO_HOLD:
            ev |= selectors.EVENT_READ
        if out[c]:
            ev |= selectors.EVENT_WRITE
        if ev == 0:
            close(c)  # half-closed and everything echoed
        else:
            sel.modify(c, ev)

    while not stop and time.time() - start < DEADLINE:
        for key, ev in sel.select(timeout=0.2):
            c = key.fileobj
            if c is ls:
                try:
                    c, _ = ls.accept()
                except BlockingIOError:
                    continue
                c.setblocking(False)
                total["conns"] += 1
                shas[c] = hashlib.sha256()
                out[c] = bytearray()
                sel.register(c, selectors.EVENT_READ)
                continue
            if ev & selectors.EVENT_WRITE and out[c]:
                try:
                    n = c.send(out[c])
                    del out[c][:n]
                except BlockingIOError:
                    pass
                except OSError:
                    close(c)
                    continue
            if ev & selectors.EVENT_READ:
                try:
                    data = c.recv(1 << 20)
                except BlockingIOError:
                    data = None
                except OSError:
                    close(c)
                    continue
                if data == b"":
                    eof.add(c)
                elif data:
                    shas[c].update(data)
                    total["bytes"] += len(data)
                    out[c] += data
            interest(c)
    digest = ""
    if len(shas) == 1:
        digest = next(iter(shas.values())).hexdigest()
    print(f"{total['conns']} {total['bytes']} {digest}", flush=True)


def pattern_sha(k, nbytes):
    block = bytes(((((j + 7919 * k) * 2654435761) & 0xffffffff) >> 24) for j in range(65521))
    h = hashlib.sha256()
    full, rest = divmod(nbytes, len(block))
    for _ in range(full):
        h.update(block)
    h.update(block[:rest])
    print(h.hexdigest())


def source(host, port, nbytes):
    chunk = 1 << 18
    pat = bytes(i % 251 for i in range(chunk + 251))  # any receive at any offset
    s = socket.create_connection((host, port), timeout=30)
    s.settimeout(DEADLINE)
    s.sendall(b"%d\r\n" % nbytes)
    got = 0
    while True:
        b = s.recv(chunk)
        if not b:
            break
        off = got % 251
        if b != pat[off:off + len(b)]:
            die(f"source: wrong byte in {got}..{got + len(b)}")
        got += len(b)
    if got != nbytes:
        die(f"source: {got} bytes before the close, not {nbytes}")
    print(f"source: {got} bytes, every one as expected")


def sink(host, port, nbytes):
    s = socket.create_connection((host, port), timeout=30)
    s.settimeout(DEADLINE)
    buf = os.urandom(1 << 16)
    left = nbytes
    while left:
        left -= s.send(buf[:min(left, len(buf))])
    s.shutdown(socket.SHUT_WR)
    if s.recv(1):
        die("sink: the discard service sent data")
    print(f"sink: {nbytes} bytes sent, the service's FIN after them")


def main():
    a = sys.argv[1:]
    if not a:
        die(__doc__)
    mode = a[0]
    if mode == "echo-many":
        echo_many(a[1], int(a[2]), int(a[3]), int(a[4]))
    elif mode == "bulk":
        bulk(a[1], int(a[2]), int(a[3]))
    elif mode == "short":
        short(a[1], int(a[2]), int(a[3]))
    elif mode == "server":
        server(int(a[1]))
    elif mode == "sink":
        sink(a[1], int(a[2]), int(a[3]))
    elif mode == "source":
        source(a[1], int(a[2]), int(a[3]))
    elif mode == "pattern-sha":
        pattern_sha(int(a[1]), int(a[2]))
    else:
        die(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
