#!/usr/bin/env bash
# Issue 19 (hardening): handshakes in flight are bounded in number, not only
# in time. With hbone.max_handshakes = 50 (one worker):
#   A  200 connections that complete TCP and then stall (half silent, half a
#      partial ClientHello): 50 are held, 150 are reset and counted
#      (tunnel_handshake_limit), the worker never holds more than 50
#      handshakes (/wp/tunnels handshakes, handshakes_peak), and a real
#      HBONE client is refused while the 50 hold their places; once
#      hbone.connect_timeout_ms ends them the same client gets a tunnel;
#   B  80 more, closed by the client after a second: 30 reset, and the
#      places are free again as soon as the 50 close (no timeout needed);
#   C  a storm of 1,000 full mTLS + HTTP/2 handshakes from two clients at
#      once (build/bench/hbone_hs): with hbone.handshake_share = 50, steps
#      wait for a later poll iteration (tunnel_handshake_deferred grows)
#      and every handshake still completes;
#   throughout, a tunnel opened before the floods carries a paced 10 MiB
#   stream both ways, SHA-256 checked at the end.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hbone_common.sh"
LOAD="/usr/bin/python3 $ROOT/tests/integration/hbone_load.py"
FLOOD="/usr/bin/python3 $ROOT/tests/integration/hbone_hsflood.py"
CAP=50
TIMEOUT_MS=15000

hb_up "$(tb_name)" --set hbone.max_handshakes=$CAP --set hbone.connect_timeout_ms=$TIMEOUT_MS \
	--set hbone.handshake_share=50
hb_echo_server
hb_wait_captured 198.19.0.10:7000

# gauge KEY: one value of /wp/tunnels.
gauge() { tel /wp/tunnels | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# first_line FILE PID: waits (bounded) for the flood's first report line.
first_line() {
	for _ in $(seq 300); do
		[ -s "$1" ] && { head -1 "$1"; return 0; }
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	fail "no report from the flood: $(cat "$1")"
}

# json_field JSON KEY
json_field() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# The steady tunnel: 10 MiB each way at 128 KiB/s (~80 s), open before the
# floods start and still running after they end (they take ~45 s, more on
# a loaded machine: each telemetry read costs seconds there).
opened0=$(ctr tunnel_opened)
in_ns $LOAD echo --addr "$WP_IP:15008" --certs "$HB_PKI" --authority 198.19.0.10:7000 \
	--tunnels 1 --bytes $((10 << 20)) --rate 131072 --timeout 150 >"$HB_TMP/steady.out" 2>&1 &
steady=$!
HB_PIDS+=($steady)
t_steady=$SECONDS
for _ in $(seq 50); do [ "$(ctr tunnel_opened)" -gt "$opened0" ] && break; sleep 0.2; done
[ "$(ctr tunnel_opened)" -gt "$opened0" ] || fail "the steady tunnel did not open: $(cat "$HB_TMP/steady.out")"
tls0=$(gauge tls_live_bytes)

# ---- A: the stalled handshakes time out ----
lim0=$(ctr tunnel_handshake_limit) to0=$(ctr tunnel_handshake_timeout)
in_ns $FLOOD --addr "$WP_IP:15008" --conns 200 --expect-held $CAP \
	--wait-closed $((TIMEOUT_MS / 1000 + 10)) >"$HB_TMP/flood_a.out" 2>&1 &
fa=$!
HB_PIDS+=($fa)
rep=$(first_line "$HB_TMP/flood_a.out" $fa)
[ "$(json_field "$rep" held)" = $CAP ] || fail "flood A: held is not $CAP: $rep"
# While the 50 hold their places (TIMEOUT_MS from their accept): a real
# client is refused, and the worker holds exactly the cap.
t=$(date +%s%N)
out=$(in_ns $HB_CLIENT --addr "$WP_IP:15008" --certs "$HB_PKI" --authority 198.19.0.10:7000 \
	--expect-handshake-failure --timeout 5) || fail "a client got through a full gate: $out"
tun=$(tel /wp/tunnels)
t=$((($(date +%s%N) - t) / 1000000))
[ $t -lt $((TIMEOUT_MS - 2000)) ] || fail "the checks took $t ms: too slow to see the gate full"
hs=$(json_field "$tun" handshakes) tls1=$(json_field "$tun" tls_live_bytes)
[ "$hs" = $CAP ] || fail "flood A: /wp/tunnels handshakes is $hs, expected $CAP"
lim=$(($(ctr tunnel_handshake_limit) - lim0))
[ $lim = 151 ] || fail "flood A: tunnel_handshake_limit grew by $lim, expected 150 + the real client ($rep)"
# What the flood costs in TLS memory is the cap's worth: ~41 KB per stalled
# handshake measured (OpenSSL 3.0), 64 KiB allowed; 200 unbounded would be 8 MB.
[ $((tls1 - tls0)) -le $((CAP * 65536)) ] ||
	fail "flood A: TLS memory grew by $((tls1 - tls0)) bytes, more than $CAP x 64 KiB"
pass "flood A: 200 stalled connections, $CAP held, 150 + 1 real client reset and counted ($rep)"
pass "TLS memory with $CAP stalled handshakes: $(((tls1 - tls0) / CAP)) bytes each (tls_live_bytes $tls0 -> $tls1)"

wait $fa || fail "flood A: the server did not end the held connections: $(tail -1 "$HB_TMP/flood_a.out")"
to=$(($(ctr tunnel_handshake_timeout) - to0))
[ $to = $CAP ] || fail "flood A: tunnel_handshake_timeout grew by $to, expected $CAP"
hs=$(gauge handshakes) peak=$(gauge handshakes_peak)
[ "$hs" = 0 ] || fail "after the timeouts /wp/tunnels handshakes is $hs"
[ "$peak" = $CAP ] || fail "handshakes_peak is $peak, expected $CAP (the cap, never more)"
out=$(in_ns $HB_CLIENT --addr "$WP_IP:15008" --certs "$HB_PKI" --authority 198.19.0.10:7000 \
	--bytes 65536 --timeout 20) || fail "no tunnel after the stalled handshakes timed out: $out"
pass "the server ended the $CAP after connect_timeout_ms ($(tail -1 "$HB_TMP/flood_a.out")); peak $peak; a real client then tunnels 64 KiB: $out"

# ---- B: the stalled connections are closed by their client ----
lim0=$(ctr tunnel_handshake_limit) to0=$(ctr tunnel_handshake_timeout)
out=$(in_ns $FLOOD --addr "$WP_IP:15008" --conns 80 --expect-held $CAP --close-after 1) ||
	fail "flood B: $out"
lim=$(($(ctr tunnel_handshake_limit) - lim0))
[ $lim = 30 ] || fail "flood B: tunnel_handshake_limit grew by $lim, expected 30"
for _ in $(seq 30); do [ "$(gauge handshakes)" = 0 ] && break; sleep 0.1; done
[ "$(gauge handshakes)" = 0 ] || fail "flood B: handshakes stay at $(gauge handshakes) after the close"
out=$(in_ns $HB_CLIENT --addr "$WP_IP:15008" --certs "$HB_PKI" --authority 198.19.0.10:7000 \
	--bytes 65536 --timeout 20) || fail "no tunnel after the stalled connections closed: $out"
to=$(($(ctr tunnel_handshake_timeout) - to0))
[ $to = 0 ] || fail "flood B: $to handshakes timed out; the closes should have freed them"
pass "flood B: 80 connections, $CAP held then closed, 30 reset; a real client tunnels at once: $out"

# ---- C: a storm of real handshakes, paced by the share ----
def0=$(ctr tunnel_handshake_deferred) fail0=$(ctr tunnel_handshake_failed)
out=$(in_ns "$BUILD/bench/hbone_hs" "$WP_IP" 15008 "$HB_PKI/productpage.pem" \
	"$HB_PKI/productpage-key.pem" "$HB_PKI/ca.pem" 1000 2) || fail "storm: $out"
[ "$(json_field "$out" handshakes)" = 1000 ] && [ "$(json_field "$out" failed)" = 0 ] ||
	fail "storm: not every handshake completed: $out"
def=$(($(ctr tunnel_handshake_deferred) - def0)) hf=$(($(ctr tunnel_handshake_failed) - fail0))
[ $def -gt 0 ] || fail "storm: no handshake step was deferred (tunnel_handshake_deferred)"
[ $hf = 0 ] || fail "storm: tunnel_handshake_failed grew by $hf"
pass "storm C: 1,000 handshakes from 2 clients all completed ($out), $def steps deferred to a later iteration"

# ---- the steady tunnel ----
floods_s=$((SECONDS - t_steady))
kill -0 $steady 2>/dev/null ||
	fail "the steady tunnel ended before the floods did ($floods_s s): $(cat "$HB_TMP/steady.out")"
wait $steady || fail "the steady tunnel: $(cat "$HB_TMP/steady.out")"
[ "$(gauge handshakes_peak)" = $CAP ] || fail "handshakes_peak is $(gauge handshakes_peak)"
pass "the tunnel opened before the floods carried 10 MiB each way throughout the floods ($floods_s s), SHA-256 equal: $(cat "$HB_TMP/steady.out")"
