#!/usr/bin/env python3
"""No C file includes another .c file (a module is a translation unit; a
test or fuzzer that needs a module's internals includes its private
*_int.h header and links the module).

Fails, printing file:line, for every #include of a name ending in .c in
dp/, cp/, lib/, include/, tests/ and bench/.

usage: check_c_includes.py SOURCE_DIR
"""
import os
import re
import sys

INCLUDE_C = re.compile(r'^\s*#\s*include\s*[<"]([^">]+\.c)[">]')
TOPS = ("dp", "cp", "lib", "include", "tests", "bench")


def main():
    root = os.path.abspath(sys.argv[1])
    checked = 0
    bad = []
    for top in TOPS:
        for d, dirs, files in os.walk(os.path.join(root, top)):
            dirs.sort()
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                checked += 1
                path = os.path.join(d, f)
                with open(path, errors="replace") as fh:
                    for n, line in enumerate(fh, 1):
                        if INCLUDE_C.match(line):
                            bad.append(f"{os.path.relpath(path, root)}:{n}: {line.strip()}")
    for b in bad:
        print(b)
    if checked == 0:
        print("no file found to check", file=sys.stderr)
        return 1
    print(f"{checked} files checked, {len(bad)} includes of a .c file")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
