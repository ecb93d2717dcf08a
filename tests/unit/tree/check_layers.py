#!/usr/bin/env python3
"""dp/ and cp/ meet only through the shared layer (include/wp/, lib/), and
the build keeps them apart: the repository root is on no include path.

Project headers outside include/wp/ are included by bare name ("tcp.h"):
each library's folder is on the include path of the libraries that declare
it as a dependency. A bare name is resolved as the compiler would find it
in this tree: the including file's folder first, else the one header of
that basename in dp/, cp/ or lib/.

Fails, printing file:line, when
  * two headers in dp/, cp/ and lib/ share a basename (a bare name would
    be ambiguous);
  * a C file under dp/ includes a header of cp/ (bare, "cp/...", or a
    relative path that lands there), or a file under cp/ one of dp/;
  * a meson.build under dp/ names a file or folder of cp/ (compiles it, as
    cp/resolve once compiled lib/route.c), or the other way round;
  * a file of the shared layer (include/wp/, lib/) includes either;
  * any meson.build puts the repository root on an include path
    (include_directories('.') at the top, or '..' climbing back to it).

usage: check_layers.py SOURCE_DIR
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')
QUOTED = re.compile(r"'([^']*)'")
INCDIRS = re.compile(r"include_directories\s*\(([^)]*)\)")
SIDES = ("dp", "cp")
SHARED = ("include", "lib")
HEADER_TOPS = ("dp", "cp", "lib")


def side_of(rel):
    """The top folder of a path relative to the root, '' outside the tree."""
    parts = rel.split("/")
    return parts[0] if parts and parts[0] != ".." else ""


def forbidden(of, target_side):
    """Whether code of side <of> may not reach into <target_side>."""
    if of in SIDES:
        return target_side in SIDES and target_side != of
    return of in SHARED and target_side in SIDES


def walk(root, tops):
    """Files under the given top folders, relative to the root, sorted."""
    for top in tops:
        for d, dirs, files in os.walk(os.path.join(root, top)):
            dirs.sort()
            for f in sorted(files):
                yield os.path.relpath(os.path.join(d, f), root)


def header_map(root):
    """basename -> [paths] of every header in dp/, cp/ and lib/."""
    names = {}
    for rel in walk(root, HEADER_TOPS):
        if rel.endswith(".h"):
            names.setdefault(os.path.basename(rel), []).append(rel)
    return names


def include_target(root, rel, name, quoted, headers):
    """Where an #include of <name> in file <rel> lands, relative to the root,
    or None (a system or third-party header)."""
    src_dir = os.path.dirname(os.path.join(root, rel))
    if quoted:
        here = os.path.normpath(os.path.join(src_dir, name))
        if os.path.exists(here):
            return os.path.relpath(here, root)
    if "/" in name:
        # "dp/x/y.h" or "cp/x/y.h": only through a root on the include
        # path, which the build no longer has; still a crossing.
        return name if name.split("/")[0] in SIDES else None
    found = headers.get(name, [])
    return found[0] if len(found) == 1 else None


def check_c(root, rel, headers):
    of = side_of(rel)
    bad = []
    with open(os.path.join(root, rel), errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            target = include_target(root, rel, m.group(2), m.group(1) == '"', headers)
            if target and forbidden(of, side_of(target)):
                bad.append(f"{rel}:{n}: {line.strip()} -> {target}")
    return bad


def check_meson(root, rel):
    """dp/cp crossings in the names a meson.build gives (relative to its
    folder), and the root on an include path."""
    of = side_of(rel)
    meson_dir = os.path.dirname(os.path.join(root, rel))
    bad = []
    with open(os.path.join(root, rel), errors="replace") as f:
        for n, line in enumerate(f, 1):
            code = line.split("#", 1)[0]
            for name in QUOTED.findall(code):
                if "/" not in name and name not in (".", ".."):
                    continue
                target = os.path.relpath(os.path.normpath(os.path.join(meson_dir, name)), root)
                if forbidden(of, side_of(target)):
                    bad.append(f"{rel}:{n}: {line.strip()} -> {target}")
            for args in INCDIRS.findall(code):
                for name in QUOTED.findall(args):
                    target = os.path.normpath(os.path.join(meson_dir, name))
                    if target == root:
                        bad.append(f"{rel}:{n}: {line.strip()} -> the repository root "
                                   "on an include path")
    return bad


def meson_files(root):
    """Every meson.build of the tree, outside build directories."""
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs
                         if not x.startswith(".") and x != "subprojects"
                         and not os.path.exists(os.path.join(d, x, "build.ninja")))
        if "meson.build" in files:
            yield os.path.relpath(os.path.join(d, "meson.build"), root)


def main():
    root = os.path.abspath(sys.argv[1])
    headers = header_map(root)
    checked = 0
    bad = []
    for name, paths in sorted(headers.items()):
        if len(paths) > 1:
            bad.append(f"{', '.join(paths)}: the basename {name} is ambiguous")
    for rel in walk(root, SIDES + SHARED):
        if rel.endswith((".c", ".h")):
            checked += 1
            bad += check_c(root, rel, headers)
    for rel in meson_files(root):
        checked += 1
        bad += check_meson(root, rel)
    for b in bad:
        print(b)
    if checked == 0 or not headers:
        print("no file found to check", file=sys.stderr)
        return 1
    print(f"{checked} files checked, {len(headers)} header names, {len(bad)} failures "
          "(crossings between dp/ and cp/, ambiguous names, root on an include path)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
