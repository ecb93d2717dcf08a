#!/usr/bin/python3
"""Draws bench/l7_bench.py's result (its --json FILE) as a PNG: per link,
CPU cycles per request of waypointd and each peer in the same shape and in
the peers' multiplexed shape, and the latency each adds over direct at half
load, side by side.

  bench/plot_l7.py RESULT.json OUT.png

Needs python3-matplotlib (scripts/setup installs it).
"""
import json
import sys
import textwrap

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit("plot_l7: python3-matplotlib missing (apt-get install python3-matplotlib)")

ROWS = (("waypointd", "waypointd"), ("haproxy", "HAProxy"),
        ("haproxy_multiplexed", "HAProxy M x K"), ("h2o", "h2o"),
        ("h2o_multiplexed", "h2o M x K"))
COLORS = ("#2b6cb0", "#c05621", "#ed8936", "#2f855a", "#68d391")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        res = json.loads(f.read())
    links = list(res.get("links", {}))
    if not links:
        sys.exit("plot_l7: %s has no links (not an l7_bench result?)" % sys.argv[1])
    width = max(8, 6 * len(links))
    wrap = int(14 * width)  # characters of small text across the figure
    fig, axes = plt.subplots(2, len(links), figsize=(width, 9), squeeze=False)
    for col, link in enumerate(links):
        out = res["links"][link]
        rows = [(k, label) for k, label in ROWS if k in out]
        ax = axes[0][col]
        vals = [out[k]["cpu_cycles_per_request"] or 0 for k, _ in rows]
        bars = ax.bar([label for _, label in rows], vals, color=COLORS[:len(rows)])
        ax.bar_label(bars, labels=["%.0fk" % (v / 1000) for v in vals], fontsize=8)
        ax.set_title("%s link: CPU cycles per 1 KiB request (lower is better)" % link,
                     fontsize=10)
        ax.tick_params(axis="x", labelsize=8, rotation=15)
        ax = axes[1][col]
        half = out.get("half_load", {})
        names = [k for k in ("waypointd", "haproxy", "h2o") if k in half]
        if names:
            x = range(len(names))
            p50 = [half[k]["added_p50_us"] for k in names]
            p99 = [half[k]["added_p99_us"] for k in names]
            ax.bar([i - 0.2 for i in x], p50, width=0.4, label="p50", color="#4a5568")
            ax.bar([i + 0.2 for i in x], p99, width=0.4, label="p99", color="#a0aec0")
            ax.set_xticks(list(x))
            ax.set_xticklabels(names, fontsize=8)
            ax.legend(fontsize=8)
            ax.set_title("%s link: latency added over direct at %s req/s (us)" %
                         (link, half.get("rate")), fontsize=10)
        else:
            ax.set_axis_off()
    notes = "; ".join(res.get("peer_notes", []))
    fig.suptitle(textwrap.fill("l7_bench, %s connections, %g s per row; %s" % (
        res.get("conns"), res.get("seconds_per_run", 0), res.get("pinning", "")), wrap),
        fontsize=9)
    if notes:
        fig.text(0.01, 0.005, textwrap.fill("Note: " + notes, wrap), fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    fig.savefig(sys.argv[2], dpi=110)
    print("plot_l7: wrote %s" % sys.argv[2])


if __name__ == "__main__":
    main()
