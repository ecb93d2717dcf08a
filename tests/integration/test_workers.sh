#!/usr/bin/env bash
# Foundation acceptance 3: with 2 workers on a multi-queue TAP, flows from
# several sources reach both workers (each worker's counters > 0).
. "$(dirname "$0")/lib.sh"

tb_up "$(tb_name)" --workers 2

# 16 sources: the kernel picks the TAP queue by flow hash, so different
# source addresses land on different queues.
for i in $(seq 10 25); do in_ns ip addr add "198.18.0.$i/32" dev wp0; done
for i in $(seq 10 25); do
	in_ns ping -c 20 -i 0.01 -W 1 -I "198.18.0.$i" "$WP_IP" >/dev/null &
done
wait
json=$("$WPCTL" stats --json --prefix "$WP_PREFIX") || fail "wpctl stats"
/usr/bin/python3 - "$json" <<'PY' || fail "not every worker saw traffic"
import json, sys
s = json.loads(sys.argv[1])
w = s["workers"]
assert len(w) == 2, f"{len(w)} workers"
for x in w:
    print(f"worker{x['worker']}: rx {x['rx_packets']} echo {x['icmp_echo_replied']}")
    assert x["rx_packets"] > 0 and x["icmp_echo_replied"] > 0, x
assert s["total"]["icmp_echo_replied"] >= 16 * 20 - 5
PY
pass "both workers received and answered flows"
