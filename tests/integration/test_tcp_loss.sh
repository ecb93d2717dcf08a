#!/usr/bin/env bash
# TCP acceptance 2 under loss: the same transfers with 1% of packets dropped
# and 1% reordered in each direction by the port layer; every byte still
# exact.
. "$(dirname "$0")/lib.sh"

tb_up "$(tb_name)" --workers 2 --loss 0.01 --reorder 0.01

in_ns $TCPCHECK echo-many "$WP_IP" 7 1000 65536 || fail "1000 x 64 KiB echo under loss"
pass "1000 x 64 KiB echoed and verified with 1% loss and 1% reordering"

in_ns $TCPCHECK bulk "$WP_IP" 7 $((256 << 20)) || fail "256 MiB echo under loss"
pass "256 MiB each way under loss, SHA-256 equal"

# waypointd as the client under the same loss (acceptance 3: "the same checks").
ip netns exec "$WP_NETNS" $TCPCHECK server 5007 >"$WP_LOG.server" &
server=$!
for _ in $(seq 50); do grep -q ready "$WP_LOG.server" && break; sleep 0.1; done
tel "/wp/tcp_client,$WP_PEER_IP:5007,1000,65536" >/dev/null || fail "tcp_client refused"
for _ in $(seq 1200); do
	st=$(tel /wp/tcp_client_status)
	grep -q '"running": 0' <<<"$st" && break
	sleep 0.1
done
/usr/bin/python3 -c '
import json, sys
s = json.loads(sys.argv[1])
assert s["running"] == 0 and s["ok"] == 1000 and s["failed"] == 0 and s["mismatch"] == 0, s
assert s["bytes_verified"] == 1000 * 65536, s' "$st" || fail "client job under loss: $st"
kill -TERM "$server"
wait "$server" || true
pass "waypointd as client under loss: 1000 x 64 KiB verified"

drops=$(( $(stat fault_rx_drop) + $(stat fault_tx_drop) ))
[ "$drops" -gt 1000 ] || fail "fault injection dropped only $drops packets"
wait_gauge tcp_conns 0 20
pass "fault injection dropped $drops packets; retransmits $(stat tcp_retransmit), fast $(stat tcp_fast_retransmit)"
