#!/usr/bin/env bash
# Foundation acceptance 2: ping and arping against the appliance on a TAP
# port, and the per-core counters read through wpctl and through DPDK's own
# dpdk-telemetry.py agree.
. "$(dirname "$0")/lib.sh"

tb_up "$(tb_name)" --workers 1

ping_all 200 "on the TAP"
pass "ping -c 200 -i 0.01: 200 replies"

# Adaptive polling (the default) timed the platform's shortest sleep at
# start and begins its sleeps there, never below polling.first_sleep_us,
# never above polling.sleep_us.
line=$(grep "adaptive polling's sleeps start at" "$WP_LOG") || fail "no polling line in the log"
/usr/bin/python3 - "$line" <<'PY' || fail "the first sleep does not follow the measured one: $line"
import re, sys
m = re.search(r"a 1 us sleep takes (\d+) us here and ([\d.]+) us of CPU; adaptive polling's sleeps "
              r"start at (\d+) us \(polling.first_sleep_us (\d+)\), up to (\d+)", sys.argv[1])
shortest, cpu, first, cfg_first, cap = int(m[1]), float(m[2]), int(m[3]), int(m[4]), int(m[5])
assert shortest >= 1 and cpu > 0, (shortest, cpu)
assert first == min(max(cfg_first, shortest), cap), (first, shortest, cfg_first, cap)
print(f"shortest sleep {shortest} us ({cpu} us of CPU), first sleep {first} us")
PY
pass "adaptive polling starts at the measured shortest sleep"

in_ns ip neigh flush dev wp0
out=$(in_ns arping -c 3 -w 5 -I wp0 "$WP_IP" 2>&1) || fail "arping: $out"
grep -qi "reply\|bytes from" <<<"$out" || fail "arping saw no reply: $out"
pass "arping resolves $WP_IP"

# Counters are quiet now (no traffic): both readers must agree exactly.
sleep 0.3
json=$("$WPCTL" stats --json --prefix "$WP_PREFIX") || fail "wpctl stats --json"
tel=$(echo "/wp/stats" | dpdk-telemetry.py -f "$WP_PREFIX" 2>/dev/null | tail -n +1) ||
	fail "dpdk-telemetry.py"
/usr/bin/python3 - "$json" "$tel" <<'PY' || fail "wpctl and dpdk-telemetry.py disagree"
import json, sys, re
wp = json.loads(sys.argv[1])["total"]
# dpdk-telemetry.py prints the greeting, then the reply JSON on its own line.
objs = [json.loads(l) for l in sys.argv[2].splitlines() if l.strip().startswith("{")]
raw = [o["/wp/stats"] for o in objs if "/wp/stats" in o][0]
# counters come nested by name prefix ({"icmp": {"icmp_echo_replied": ..}})
tel = {}
for k, v in raw.items():
    tel.update(v if isinstance(v, dict) else {k: v})
keys = ["rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "icmp_echo_replied", "arp_reply_sent"]
for k in keys:
    if wp[k] != tel[k]:
        sys.exit(f"{k}: wpctl {wp[k]} != telemetry {tel[k]}")
assert wp["icmp_echo_replied"] >= 200, wp["icmp_echo_replied"]
assert wp["arp_reply_sent"] >= 1
print("counters agree:", {k: wp[k] for k in keys})
PY
pass "wpctl stats --json matches dpdk-telemetry.py"

table=$("$WPCTL" stats --prefix "$WP_PREFIX") || fail "wpctl stats"
grep -q "^icmp_echo_replied" <<<"$table" || fail "table lacks icmp_echo_replied: $table"
pass "wpctl stats table"
