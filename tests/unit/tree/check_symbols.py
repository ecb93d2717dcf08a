#!/usr/bin/env python3
"""Every symbol our libraries export carries the wp_ prefix.

Reads the build directory's target list (meson-info/intro-targets.json,
what `meson introspect --targets` prints) and runs `nm -g --defined-only`
on every static library the tree builds and on the objects of every
program it installs (waypointd, wpctl). A global symbol that does not
start with wp_ fails the check; the offenders are printed with their
library. Allowed besides wp_*: main, libFuzzer's entry points, and names
starting with "__" (reserved to the toolchain: sanitizer and coverage
instrumentation define some). Test and benchmark code (tests/, bench/) is
not checked, nor third-party code the build compiles (llhttp).

usage: check_symbols.py BUILD_DIR SOURCE_DIR
"""
import json
import os
import subprocess
import sys

THIRD_PARTY = {"llhttp"}
ALLOWED = {"main", "LLVMFuzzerTestOneInput", "LLVMFuzzerInitialize"}
NOT_CHECKED_DIRS = ("tests", "bench")


def ours(target, src):
    rel = os.path.relpath(target["defined_in"], src)
    return target["name"] not in THIRD_PARTY and rel.split(os.sep)[0] not in NOT_CHECKED_DIRS


def files_of(target):
    """The files nm reads: a static library itself, a program's objects."""
    path = target["filename"][0]
    if target["type"] == "static library":
        return [path]
    objdir = path + ".p"
    if not os.path.isdir(objdir):
        return []
    return sorted(os.path.join(objdir, f) for f in os.listdir(objdir) if f.endswith(".o"))


def offenders(path):
    """Lines "member.o T name" for the symbols that fail."""
    out = subprocess.run(["nm", "-A", "-g", "--defined-only", path], check=True,
                         capture_output=True, text=True).stdout
    bad = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        name = fields[-1]
        if name.startswith("wp_") or name.startswith("__") or name in ALLOWED:
            continue
        # "library:member:address" (an archive) or "object:address"
        member = fields[0].rsplit(":", 1)[0][len(path):].lstrip(":")
        bad.append(f"{os.path.basename(member)} {fields[-2]} {name}")
    return bad


def main():
    build, src = sys.argv[1], sys.argv[2]
    with open(os.path.join(build, "meson-info", "intro-targets.json")) as f:
        targets = json.load(f)
    checked = 0
    failed = 0
    for t in targets:
        if not ours(t, src):
            continue
        if t["type"] != "static library" and not (t["type"] == "executable" and t.get("installed")):
            continue
        for path in files_of(t):
            if not os.path.exists(path):
                print(f"{path}: not built", file=sys.stderr)
                failed += 1
                continue
            checked += 1
            for sym in offenders(path):
                print(f"{os.path.relpath(path, build)}: {sym}")
                failed += 1
    if checked == 0:
        print("no library found to check", file=sys.stderr)
        return 1
    print(f"{checked} libraries and objects checked, {failed} symbols without the wp_ prefix")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
