#!/usr/bin/env bash
# Issue 5, acceptance 3: every rejection, each with its counter.
#   foreign trust domain, expired certificate, no client certificate
#     -> the TLS handshake fails (tls_hs_foreign_trust_domain, tls_hs_expired,
#        tls_hs_no_peer_cert; tunnel_handshake_failed)
#   no TLS 1.3 suite in common -> the handshake fails (tunnel_handshake_failed);
#     the server's preference (tls.ciphersuites, AES-256 first here) picks the suite
#   non-CONNECT -> 400 (hbone_not_connect)
#   an authority this waypoint does not capture -> 400 (tunnel_not_captured)
#   no endpoints -> 503 (tunnel_no_endpoint)
#   endpoint refuses -> 503 (tunnel_connect_refused)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hbone_common.sh"
LOAD="/usr/bin/python3 $ROOT/tests/integration/hbone_load.py"

# AES-256-GCM preferred: the operator's order, not the default, decides below
hb_up "$(tb_name)" --set tls.ciphersuites=TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256
hb_echo_server
hb_wait_captured 198.19.0.10:7000

# expect_delta COUNTER BEFORE: the counter grew by exactly one.
expect_delta() {
	local now
	now=$(ctr "$1")
	[ "$now" = $(($2 + 1)) ] || fail "$1 is $now, expected $(($2 + 1))"
}

for case in evil:tls_hs_foreign_trust_domain expired:tls_hs_expired none:tls_hs_no_peer_cert \
	rogue:tls_hs_bad_chain; do
	id=${case%%:*} c=${case#*:}
	b=$(ctr "$c") h=$(ctr tunnel_handshake_failed)
	out=$(in_ns $LOAD handshake --addr "$WP_IP:15008" --certs "$HB_PKI" --identity "$id") ||
		fail "identity $id: $out"
	expect_delta "$c" "$b"
	expect_delta tunnel_handshake_failed "$h"
	pass "client certificate '$id': handshake fails, $c counted"
done

# tls.ciphersuites (AES-256-GCM first here): the server's preference decides
# whatever the client prefers; a client offering none of the configured
# suites is refused. (openssl s_client, productpage's certificate)
suite() { # the TLS 1.3 suite waypointd settles on for the offer $1, or nothing
	echo | in_ns timeout 10 openssl s_client -connect "$WP_IP:15008" -ciphersuites "$1" \
		-cert "$HB_PKI/productpage.pem" -key "$HB_PKI/productpage-key.pem" \
		-CAfile "$HB_PKI/ca.pem" -alpn h2 2>/dev/null | sed -n 's/^New, TLSv1.3, Cipher is //p' ||
		true # s_client fails when the handshake does
}
got=$(suite TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384)
[ "$got" = TLS_AES_256_GCM_SHA384 ] || fail "offer AES-128 first: got '$got'"
got=$(suite TLS_AES_128_GCM_SHA256)
[ "$got" = TLS_AES_128_GCM_SHA256 ] || fail "offer AES-128 alone: got '$got'"
h=$(ctr tunnel_handshake_failed)
got=$(suite TLS_CHACHA20_POLY1305_SHA256)
[ -z "$got" ] || fail "offer ChaCha20 alone: got '$got'"
expect_delta tunnel_handshake_failed "$h"
pass "TLS 1.3 suite: AES-256-GCM by the configured preference, AES-128-GCM when alone offered, ChaCha20 refused"
# The start-up log names what seals and opens each suite's records; a build
# linked with intel-ipsec-mb runs AES-GCM on it (the tunnels below run
# AES-256-GCM records through it).
if ldd "$WP_BIN" | grep -q libIPSec_MB; then
	grep -q "TLS records: AES-GCM on intel-ipsec-mb .*, ChaCha20-Poly1305 on OpenSSL" "$WP_LOG" ||
		fail "record crypto not in the log: $(grep 'TLS records' "$WP_LOG")"
	pass "the start-up log names intel-ipsec-mb for AES-GCM records, OpenSSL for ChaCha20-Poly1305"
fi

check() { # description counter expected-status client-args...
	local what=$1 c=$2 st=$3 b out
	shift 3
	b=$(ctr "$c")
	out=$(in_ns $HB_CLIENT --addr "$WP_IP:15008" --certs "$HB_PKI" --expect-status "$st" "$@") ||
		fail "$what: $out"
	expect_delta "$c" "$b"
	pass "$what: $st, $c counted ($out)"
}
check "GET instead of CONNECT" hbone_not_connect 400 --method GET --authority 198.19.0.10:7000
check "uncaptured authority 198.19.9.9:80" tunnel_not_captured 400 --authority 198.19.9.9:80
check "service without endpoints" tunnel_no_endpoint 503 --authority 198.19.0.12:7002
check "endpoint refuses the connection" tunnel_connect_refused 503 --authority 198.19.0.11:7001

check "HBONE destination down (nothing on podIP:15008)" tunnel_originate_failed 503 --authority 198.19.0.20:7000
