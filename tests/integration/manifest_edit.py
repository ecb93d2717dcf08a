#!/usr/bin/env python3
"""Edits a manifest the way editors do while /config_dump is watched
(test_manifest_edit.sh). Runs inside the test's namespace.

  1. in place: open with O_TRUNC, wait well past the debounce with the file
     empty and still open, write the new text, close;
  2. by rename: write the new text to a dot-file beside it, rename it over.

Each new text adds one Service; the edit must show up in the published
snapshot, and no Service the file had before may be missing from any
snapshot /config_dump served meanwhile (polled every 20 ms). Prints one JSON
line of figures; exits 1 when a Service vanished or an edit never showed.
"""
import argparse
import json
import os
import threading
import time
import urllib.request

EXTRA = """---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default
spec:
  clusterIP: {vip}
  selector:
    app: {name}
  ports:
  - name: http
    port: 9080
    targetPort: 9080
"""


def services(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/config_dump" % port, timeout=5) as r:
        snap = json.load(r)["snapshot"] or {}
    return {s["name"] for s in snap.get("services", [])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=15000)
    ap.add_argument("--file", required=True)
    ap.add_argument("--hold", type=float, default=0.5, help="seconds the file stays empty")
    a = ap.parse_args()

    with open(a.file) as f:
        text = f.read()
    before = services(a.port)
    out = {"before": sorted(before), "samples": 0, "vanished": 0, "first_gone": [], "edit_ms": []}
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            now = services(a.port)
            out["samples"] += 1
            gone = before - now
            if gone:
                out["vanished"] += 1  # samples that missed a Service
                out["first_gone"] = out["first_gone"] or sorted(gone)
            time.sleep(0.02)

    w = threading.Thread(target=watch)
    w.start()
    ok = True
    try:
        # 1. truncate in place, hold it empty and open, rewrite, close
        t0 = time.monotonic()
        fd = os.open(a.file, os.O_WRONLY | os.O_TRUNC)
        time.sleep(a.hold)
        text += EXTRA.format(name="edited-in-place", vip="198.19.0.91")
        os.write(fd, text.encode())
        os.close(fd)
        ok &= wait_for(a.port, "edited-in-place", t0, out)
        # 2. write beside it, rename over it
        t0 = time.monotonic()
        tmp = os.path.join(os.path.dirname(a.file), "." + os.path.basename(a.file) + ".new")
        text += EXTRA.format(name="edited-by-rename", vip="198.19.0.92")
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, a.file)
        ok &= wait_for(a.port, "edited-by-rename", t0, out)
        time.sleep(0.3)
    finally:
        stop.set()
        w.join()
    print(json.dumps(out), flush=True)
    return 0 if ok and not out["vanished"] else 1


def wait_for(port, name, t0, out):
    while time.monotonic() - t0 < 10:
        if name in services(port):
            out["edit_ms"].append(round((time.monotonic() - t0) * 1000))
            return True
        time.sleep(0.02)
    out["edit_ms"].append(None)
    return False


if __name__ == "__main__":
    raise SystemExit(main())
