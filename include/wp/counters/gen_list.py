#!/usr/bin/env python3
"""Writes wp/counters/list.h: every module's counter rows, in one list.

Each module keeps its rows beside its code in a <module>_counters.def file
(WP_CTR(NAME, KIND, "what happened") lines); the top meson.build lists the
files once (wp_counter_defs), and that order is the order of enum wp_ctr.
The rows of each file are wrapped so that a file defining WP_CTR_ONLY to
one WP_CTR_GROUP_<MODULE> before including the list gets that module's rows
alone (dp/obs/prom.c: the control plane's rows; cp/admin/handlers.c).

usage: gen_list.py OUTPUT SOURCE_ROOT DEF...
"""
import os
import sys

SUFFIX = "_counters.def"


def main():
    out, root, defs = sys.argv[1], sys.argv[2], sys.argv[3:]
    groups = []
    for path in defs:
        base = os.path.basename(path)
        if not base.endswith(SUFFIX):
            print(f"gen_list.py: {path}: not a <module>{SUFFIX} file", file=sys.stderr)
            return 1
        group = base[: -len(SUFFIX)].upper()
        if group in (g for g, _, _ in groups):
            print(f"gen_list.py: {path}: module {group} listed twice", file=sys.stderr)
            return 1
        with open(path) as f:
            groups.append((group, os.path.relpath(path, root), f.read()))
    lines = [
        "/*",
        " * Every module's counter rows, in one list. Generated at build time by",
        " * include/wp/counters/gen_list.py from the <module>_counters.def files the",
        " * top meson.build lists (wp_counter_defs): edit those, not this. Included",
        " * with WP_CTR defined by wp/counters.h (the enum) and dp/obs/counters.c (the",
        " * names); with WP_CTR_ONLY defined to one WP_CTR_GROUP_*, one module's rows.",
        " */",
    ]
    for n, (group, _, _) in enumerate(groups, 1):
        lines.append(f"#define WP_CTR_GROUP_{group} {n}")
    for group, rel, text in groups:
        lines += [
            "",
            f"/* {rel} */",
            f"#if !defined(WP_CTR_ONLY) || WP_CTR_ONLY == WP_CTR_GROUP_{group}",
            text.rstrip("\n"),
            "#endif",
        ]
    data = "\n".join(lines) + "\n"
    with open(out, "w") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
