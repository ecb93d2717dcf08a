#!/usr/bin/env bash
# Issue 16, part 1: the mesh identity from istiod's CA. A fake istiod
# (fake_istiod_ca.py: gRPC IstioCertificateService over TLS on
# 127.0.0.1:15012 in the test's namespace, 60-second certificates signed by
# its own root) and waypointd with ca.enabled and no certificate files:
#   - it starts, gets spiffe://cluster.local/ns/default/sa/waypoint issued
#     (token and ClusterID checked by the CA: a stale token is refused,
#     counted, and the rotated token file is read on the next try) and
#     serves HBONE with it;
#     wpctl cert shows source istiod, identity, serial and expiry;
#   - while 4 tunnels stream (SHA-256 checked at the end, none reset) it
#     renews twice: new handshakes get each new certificate;
#   - a CA answering with the wrong SAN, then with a chain from another CA,
#     is refused (ca_wrong_san, ca_untrusted_chain), the old certificate
#     still served; the CA down: requests fail with growing backoff, then
#     the CA is back and the certificate is renewed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hbone_common.sh"
LOAD="/usr/bin/python3 $ROOT/tests/integration/hbone_load.py"
CHECK="/usr/bin/python3 $ROOT/tests/integration/hbone_tunnel_checks.py"
FAKE="/usr/bin/python3 $ROOT/tests/integration/fake_istiod_ca.py"
AUTH=198.19.0.10:7000
ID=spiffe://cluster.local/ns/default/sa/waypoint
CA=$HB_TMP/ca
CLI=$HB_TMP/cli
name=$(tb_name)

mkdir -p "$CA" "$CLI"
echo ok >"$CA/mode"
# The CA's token; the waypoint's token file holds a stale one at first.
echo "test-sa-token" >"$HB_TMP/ca-token"
echo "stale-token" >"$HB_TMP/token"
$FAKE --dir "$CA" --init || fail "fake CA --init"
# Clients: the mkpki productpage identity, verifying the waypoint against
# the fake istiod's root. The waypoint's mesh root file (ca.root_cert, also
# its HBONE roots) holds both roots; the CA's "badchain" one is in neither.
cp "$HB_PKI/productpage.pem" "$HB_PKI/productpage-key.pem" "$CLI/"
cp "$CA/root.pem" "$CLI/ca.pem"
cat "$HB_PKI/ca.pem" "$CA/root.pem" >"$HB_TMP/roots.pem"

# start_ca: the fake istiod in the namespace, once its loopback is up (the
# namespace is made by tb_up below, and waypointd waits for the CA).
start_ca() {
	(for _ in $(seq 200); do
		ip -n "$name" addr show lo 2>/dev/null | grep -q 127.0.0.1 && break
		sleep 0.05
	done
	exec ip netns exec "$name" $FAKE --listen 127.0.0.1:15012 --dir "$CA" \
		--token-file "$HB_TMP/ca-token" --cluster-id test-cluster) >>"$CA/log" 2>&1 &
	CA_PID=$!
	HB_PIDS+=($CA_PID)
}
issued_serial() { grep '"mode": "ok"' "$CA/log" | sed -n "${1}p" | sed 's/.*"serial": "\([0-9a-f]*\)".*/\1/'; }
field() { /usr/bin/python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2], ""); print(v[0] if isinstance(v, list) and v else v)' "$1" "$2"; }
probe() { in_ns $CHECK probe --addr "$WP_IP:15008" --authority $AUTH --cert "$CLI/productpage.pem" \
	--key "$CLI/productpage-key.pem" --ca "$CLI/ca.pem"; }
resets() { echo $(($(ctr tunnel_downstream_reset) + $(ctr tunnel_upstream_reset))); }
# wait_ctr NAME MIN SECONDS
wait_ctr() {
	for _ in $(seq $(($3 * 5))); do
		[ "$(ctr "$1")" -ge "$2" ] && return 0
		sleep 0.2
	done
	fail "$1 did not reach $2 within $3 s (now $(ctr "$1")): $(tail -5 "$WP_LOG")"
}
serving() { # SERIAL: new handshakes present it, with our identity
	local out
	out=$(probe) || fail "probe: $out"
	[ "$(field "$out" peer)" = "$ID" ] || fail "served identity is not $ID: $out"
	[ "$(field "$out" serial | sed 's/^0*//')" = "$(echo "$1" | sed 's/^0*//')" ] ||
		fail "new handshakes do not present serial $1: $out"
}

start_ca
# kubelet rotates the projected token: the file is re-read per request.
# Once the CA refused the stale one, the good token is moved into place.
(for _ in $(seq 150); do grep -q '"refused"' "$CA/log" 2>/dev/null && break; sleep 0.1; done
cp "$HB_TMP/ca-token" "$HB_TMP/token.new"; mv "$HB_TMP/token.new" "$HB_TMP/token") &
t0=$(date +%s)
tb_up "$name" --manifests "$HB_MAN" --set cluster.gateway_class=istio-waypoint \
	--set hbone.enabled=true --set tls.reload_ms=200 \
	--set ca.enabled=true --set ca.address=127.0.0.1:15012 \
	--set "ca.root_cert=$HB_TMP/roots.pem" --set "ca.token_file=$HB_TMP/token" \
	--set ca.cluster_id=test-cluster --set ca.namespace=default \
	--set ca.service_account=waypoint --set ca.lifetime_s=60 \
	--set "ca.dir=$HB_TMP/identity" --set ca.timeout_ms=2000 \
	--set ca.backoff_base_ms=300 --set ca.backoff_max_ms=2000
hb_echo_server
tr '\0' '\n' </proc/"$WP_PID"/cmdline | grep -q "^tls\.\(cert\|key\)=" && fail "the testbed passed certificate files"
[ -s "$HB_TMP/identity/identity.pem" ] || fail "no issued identity in ca.dir"
[ "$(command stat -c %a "$HB_TMP/identity")" = 700 ] || fail "ca.dir is not private: $(command stat -c %a "$HB_TMP/identity")"
[ "$(command stat -c %a "$HB_TMP/identity/identity.pem")" = 600 ] || fail "identity.pem is not private: $(command stat -c %a "$HB_TMP/identity/identity.pem")"
grep -q "requested_s\": 60" "$CA/log" || fail "validity_duration 60 not sent: $(cat "$CA/log")"
[ "$(ctr ca_grpc_error)" -ge 1 ] || fail "the stale token was not refused (ca_grpc_error)"
grep -q "grpc-message: bad token or cluster id" "$WP_LOG" || fail "the CA's refusal is not logged"
grpc_errors=$(ctr ca_grpc_error)
s1=$(issued_serial 1)
[ -n "$s1" ] || fail "the CA issued nothing: $(cat "$CA/log")"
for _ in $(seq 50); do out=$(probe) && break; sleep 0.2; done
serving "$s1"
pass "started without certificate files; HBONE served as $ID (serial $s1) issued by the CA"

out=$(in_ns "$WPCTL" cert) || fail "wpctl cert: $out"
grep -q "^source *istiod" <<<"$out" || fail "wpctl cert source: $out"
grep -q "^identity *$ID" <<<"$out" || fail "wpctl cert identity: $out"
grep -q "^serial *0*${s1#0}" <<<"$out" || fail "wpctl cert serial: $out"
grep -q "^not after *20" <<<"$out" || fail "wpctl cert expiry: $out"
pass "wpctl cert: $(echo "$out" | tr -s ' ' | tr '\n' ';' | cut -c1-200)"

# 4 tunnels at 128 KiB/s for ~72 s: open across both renewals.
base_resets=$(resets)
in_ns $LOAD echo --addr "$WP_IP:15008" --certs "$CLI" --authority $AUTH \
	--tunnels 4 --bytes 9437184 --rate 131072 --timeout 110 >"$HB_TMP/load.out" 2>&1 &
load=$!
HB_PIDS+=($load)

# Renewal 1: at about half the lifetime (24-30 s after the first).
wait_ctr ca_issued 2 40
s2=$(issued_serial 2)
[ "$s2" != "$s1" ] || fail "renewal returned the same serial"
for _ in $(seq 20); do probe >/dev/null 2>&1 && [ "$(field "$(probe)" serial | sed 's/^0*//')" = "${s2##0}" ] && break; sleep 0.2; done
serving "$s2"
kill -0 "$load" 2>/dev/null || fail "the load ended before the first renewal: $(cat "$HB_TMP/load.out")"
pass "renewal 1 at $(($(date +%s) - t0)) s: new handshakes present serial $s2, tunnels still streaming"

# The next renewal is answered with the wrong SAN, then with an untrusted chain.
echo badsan >"$CA/mode"
before=$(sha256sum <"$HB_TMP/identity/identity.pem")
wait_ctr ca_wrong_san 1 40
echo badchain >"$CA/mode"
wait_ctr ca_untrusted_chain 1 10
[ "$(sha256sum <"$HB_TMP/identity/identity.pem")" = "$before" ] || fail "a refused chain was installed"
serving "$s2"
grep -q "URI SAN 'spiffe://cluster.local/ns/default/sa/intruder', want $ID" "$WP_LOG" ||
	fail "the wrong SAN is not logged: $(grep "ca:" "$WP_LOG" | tail -3)"
grep -q "chain does not verify" "$WP_LOG" || fail "the untrusted chain is not logged"
pass "wrong SAN and untrusted chain refused (counted, logged), serial $s2 still served"

# The CA down for a while: failures back off (300 ms doubling to 2 s).
kill "$CA_PID"
wait "$CA_PID" 2>/dev/null || true
echo ok >"$CA/mode"
base_tr=$(ctr ca_transport_error)
wait_ctr ca_transport_error $((base_tr + 3)) 15
grep -q "retry in 2000 ms" "$WP_LOG" || sleep 2.5
grep -q "retry in 2000 ms" "$WP_LOG" || fail "no backoff up to ca.backoff_max_ms: $(grep "ca:" "$WP_LOG" | tail -5)"
serving "$s2"
start_ca
wait_ctr ca_issued 3 15
s3=$(issued_serial 3)
for _ in $(seq 20); do [ "$(field "$(probe)" serial | sed 's/^0*//')" = "${s3##0}" ] && break; sleep 0.2; done
serving "$s3"
kill -0 "$load" 2>/dev/null || fail "the load ended before the second renewal: $(cat "$HB_TMP/load.out")"
pass "CA down $(ctr ca_transport_error) failed requests with backoff, then renewal 2 at $(($(date +%s) - t0)) s (serial $s3) while tunnels stream"

wait "$load" || fail "tunnels open across the renewals failed: $(cat "$HB_TMP/load.out")"
[ "$(resets)" = "$base_resets" ] || fail "tunnels were reset across the renewals"
[ "$(ctr ca_expired)" = 0 ] || fail "ca_expired moved"
prom=$(in_ns curl -sf http://127.0.0.1:15000/stats/prometheus) || fail "no /stats/prometheus"
grep -q "^waypointd_ca_issued_total 3$" <<<"$prom" || fail "prometheus: $(grep ca_issued <<<"$prom")"
grep -q "^waypointd_ca_wrong_san_total [1-9]" <<<"$prom" || fail "prometheus: no ca_wrong_san"
[ "$(ctr ca_grpc_error)" = "$grpc_errors" ] || fail "the CA refused a request (token or cluster id): $(grep "ca:" "$WP_LOG" | tail -3)"
pass "4 tunnels across 2 renewals finished verified, none reset: $(cat "$HB_TMP/load.out")"
