#!/usr/bin/env bash
# TCP acceptance 4: a bounded SYN flood from a raw-socket sender in the
# namespace (spoofed sources from 198.19.0.0/16, random ports, as fast as
# the sender goes, until the checks under it are done: 150 s at most, room
# for a loaded CI machine) while legitimate clients still connect and
# transfer: 100 x 64 KiB echoed and verified, and 300 short connections.
# The short connections must end while the flood still runs, connections
# must have completed through SYN cookies, and the control blocks stay
# bounded by the SYN backlog, read during the flood once the test's own
# connections are closed.
. "$(dirname "$0")/lib.sh"

tb_up "$(tb_name)" --workers 2

# not through in_ns (a subshell): $! must be the sender itself, to stop it
ip netns exec "$WP_NETNS" $ROOT/tests/integration/synflood.py "$WP_IP" 7 150 >"$WP_LOG.flood" 2>&1 &
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
kill -0 "$flood" 2>/dev/null || fail "the flood ended before the 300 short connections did"
pass "300 short connections during the SYN flood (the flood still running when they ended)"

# The bound, read while the flood still fills the SYN queues: each of the 2
# workers holds at most syn_backlog (1024) embryos on the listener, so 2048
# blocks besides TIME_WAIT ones. First the test's own connections must be
# gone: no socket of the namespace's kernel towards the appliance but in
# TIME-WAIT (the client saw the appliance's FIN and acknowledged it), then
# the appliance's side: a block waits in LAST_ACK when the flood made the
# port drop the client's last ACK. Either side's FIN, dropped by the
# flooded port, retransmits with backoff (200, 400, 800, 1600, 3200 ms),
# so each wait allows 8 s (3 s was once too short for a client's FIN
# under ASan); the bound itself stays exact. ESTABLISHED blocks are not embryos and are not
# counted: they are bounded by tcp.max_conns, not the backlog, and one can
# appear here without a client behind it. A segment of a connection that
# has closed, retransmitted before the appliance acknowledged it and read
# from a queue the flood keeps full after the close, still carries a valid
# cookie acknowledgment, so it opens a connection, as a late segment does
# with Linux's SYN cookies; no client answers it, and it closes when its
# retransmissions give up or the client's kernel resets it.
open_left=
for _ in $(seq 80); do
	open_left=$(in_ns ss -Htn state connected dst "$WP_IP" | grep -v '^TIME-WAIT' || true)
	[ -z "$open_left" ] && break
	sleep 0.1
done
[ -z "$open_left" ] ||
	fail "the test's own connections still open 8 s after the clients ended: $(head -5 <<<"$open_left")"
for _ in $(seq 80); do
	est=$(stat tcp_established)
	blocks=$(($(stat tcp_conns) - $(stat tcp_time_wait) - est))
	[ "$blocks" -le 2048 ] && break
	sleep 0.1
done
kill -0 "$flood" 2>/dev/null || fail "the flood ended before the control blocks were read"
[ "$blocks" -le 2048 ] || fail "$blocks control blocks (besides TIME_WAIT and $est ESTABLISHED) during the flood, bound 2048 (2 workers x syn_backlog 1024)"
pass "$blocks control blocks (besides TIME_WAIT and $est ESTABLISHED) during the flood, within 2 x syn_backlog (1024)"

kill -TERM "$flood"
wait "$flood" || fail "flood sender failed: $(cat "$WP_LOG.flood")"
cat "$WP_LOG.flood"
sent=$(stat tcp_syncookie_sent)
ok=$(stat tcp_syncookie_ok)
full=$(stat tcp_syn_queue_full)
[ "$sent" -gt 1000 ] || fail "only $sent SYN cookies sent"
[ "$full" -gt 0 ] || fail "the SYN queue never filled (tcp_syn_queue_full 0)"
# the legitimate clients connected while the queues were full: their
# handshakes completed through cookies
[ "$ok" -ge 1 ] || fail "no connection completed by a SYN cookie (tcp_syncookie_ok 0)"
pass "SYN cookies sent $sent (queue full $full), $ok connections completed by a cookie"
