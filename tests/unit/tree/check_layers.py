#!/usr/bin/env python3
"""dp/ and cp/ meet only through the shared layer (include/wp/, lib/).

Fails, printing file:line, when
  * a C file under dp/ includes a header of cp/ ("cp/...", or a relative
    path that lands in cp/), or a file under cp/ one of dp/;
  * a meson.build under dp/ names a file of cp/ (compiles it, as
    cp/resolve once compiled lib/route.c), or the other way round;
  * a file of the shared layer (include/wp/, lib/) includes either.

usage: check_layers.py SOURCE_DIR
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]')
QUOTED = re.compile(r"'([^']*)'")
SIDES = ("dp", "cp")
SHARED = ("include", "lib")


def side_of(rel):
    """The top folder of a path relative to the root, '' outside the tree."""
    parts = rel.split("/")
    return parts[0] if parts and parts[0] != ".." else ""


def forbidden(of, target_side):
    """Whether code of side <of> may not reach into <target_side>."""
    if of in SIDES:
        return target_side in SIDES and target_side != of
    return of in SHARED and target_side in SIDES


def target_of(root, src_dir, name):
    """Where an include or meson file name lands, relative to the root:
    "dp/.." and "cp/.." resolve against the root (the include path), other
    names against the including file's folder."""
    if name.split("/")[0] in SIDES:
        return name
    return os.path.relpath(os.path.normpath(os.path.join(src_dir, name)), root)


def check_file(root, rel):
    of = side_of(rel)
    src_dir = os.path.dirname(os.path.join(root, rel))
    is_meson = os.path.basename(rel) == "meson.build"
    bad = []
    with open(os.path.join(root, rel), errors="replace") as f:
        for n, line in enumerate(f, 1):
            if is_meson:
                code = line.split("#", 1)[0]
                names = [m for m in QUOTED.findall(code) if "/" in m]
            else:
                m = INCLUDE.match(line)
                names = [m.group(1)] if m else []
            for name in names:
                if forbidden(of, side_of(target_of(root, src_dir, name))):
                    bad.append(f"{rel}:{n}: {line.strip()}")
    return bad


def main():
    root = os.path.abspath(sys.argv[1])
    checked = 0
    bad = []
    for top in SIDES + SHARED:
        for d, dirs, files in os.walk(os.path.join(root, top)):
            dirs.sort()
            for f in sorted(files):
                if not (f.endswith((".c", ".h")) or f == "meson.build"):
                    continue
                checked += 1
                bad += check_file(root, os.path.relpath(os.path.join(d, f), root))
    for b in bad:
        print(b)
    if checked == 0:
        print("no file found to check", file=sys.stderr)
        return 1
    print(f"{checked} files checked, {len(bad)} crossings between dp/ and cp/")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
