#!/usr/bin/env bash
# Foundation acceptance 5: SIGTERM under a ping flood exits 0 within 2 s and
# leaves nothing behind (no process, no TAP interface, no hugepage files,
# no DPDK runtime directory).
. "$(dirname "$0")/lib.sh"

tb_up "$(tb_name)" --workers 2
in_ns ping -f -w 10 "$WP_IP" >/dev/null 2>&1 &
flood=$!
sleep 1
start=$(date +%s%N)
kill -TERM "$WP_PID"
for _ in $(seq 40); do kill -0 "$WP_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$WP_PID" 2>/dev/null && fail "waypointd still running 2 s after SIGTERM"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
kill "$flood" 2>/dev/null || true
wait "$flood" 2>/dev/null || true
[ "$ms" -le 2000 ] || fail "exit took $ms ms"
for _ in $(seq 20); do [ -s "$WP_RC_FILE" ] && break; sleep 0.05; done
[ "$(cat "$WP_RC_FILE" 2>/dev/null)" = 0 ] || fail "exit status '$(cat "$WP_RC_FILE" 2>/dev/null)', expected 0"
in_ns ip link show wp0 >/dev/null 2>&1 && fail "TAP interface wp0 still exists"
ls /dev/hugepages 2>/dev/null | grep -q "$WP_PREFIX" && fail "hugepage files left"
[ -e "/var/run/dpdk/$WP_PREFIX" ] && fail "runtime directory left: /var/run/dpdk/$WP_PREFIX ($(ls /var/run/dpdk/"$WP_PREFIX"))"
pass "SIGTERM under flood: exited in $ms ms, nothing left"
