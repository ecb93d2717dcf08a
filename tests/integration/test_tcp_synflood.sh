#!/usr/bin/env bash
# TCP acceptance 4: a bounded SYN flood from a raw-socket sender in the
# namespace (spoofed sources from 198.19.0.0/16, random ports, as fast as
# the sender goes for 8 s) while legitimate clients still connect and
# transfer: 100 x 64 KiB echoed and verified, and 300 short connections.
# SYN cookies must have been used and the control blocks stay bounded by
# the SYN backlog.
. "$(dirname "$0")/lib.sh"

tb_up "$(tb_name)" --workers 2

in_ns $ROOT/tests/integration/synflood.py "$WP_IP" 7 8 >"$WP_LOG.flood" 2>&1 &
flood=$!
sleep 1
kill -0 "$flood" 2>/dev/null || fail "the flood ended early: $(cat "$WP_LOG.flood")"
sent0=$(stat tcp_syncookie_sent)
[ "$sent0" -gt 0 ] || fail "1 s into the flood no SYN cookie was sent"

export TCPCHECK_DEADLINE=60
in_ns $TCPCHECK echo-many "$WP_IP" 7 100 65536 || fail "100 x 64 KiB echo during the flood"
kill -0 "$flood" 2>/dev/null || fail "the flood ended before the legitimate transfers did"
pass "100 x 64 KiB echoed and verified during the SYN flood"
in_ns $TCPCHECK short "$WP_IP" 7 300 || fail "300 short connections during the flood"
pass "300 short connections during the SYN flood"
overlap=$(kill -0 "$flood" 2>/dev/null && echo yes || echo no)

wait "$flood" || fail "flood sender failed: $(cat "$WP_LOG.flood")"
cat "$WP_LOG.flood"
sent=$(stat tcp_syncookie_sent)
ok=$(stat tcp_syncookie_ok)
full=$(stat tcp_syn_queue_full)
conns=$(stat tcp_conns)
[ "$sent" -gt 1000 ] || fail "only $sent SYN cookies sent"
# Each worker holds at most syn_backlog (1024) embryos per listener; the 400
# legitimate connections of this test may still be closing (FIN_WAIT,
# LAST_ACK) when the gauge is read, on top of those.
[ "$conns" -le $((2048 + 400)) ] ||
	fail "$conns control blocks after the flood (bound 2048 embryos + 400 closing)"
pass "SYN cookies sent $sent (queue full $full, cookie connections $ok), $conns blocks left, short run overlapped flood: $overlap"
