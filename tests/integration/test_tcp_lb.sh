#!/usr/bin/env bash
# Issue 12, acceptance 3: opaque TCP tunnels pick their endpoint through the
# DestinationRule load balancer of their service port (dp/tunnel/tunnel.c
# l4_pick(), lib/lb.c), as the L7 proxies do.
#   - one TCP service port (name `tcp`) per policy, all over the same three
#     pods, whose backends (tests/integration/tcp_lb.py serve) send their own
#     name on every connection and hold it until the client closes;
#   - LEAST_REQUEST: with two endpoints holding open tunnels and one idle,
#     short tunnels mostly go to the idle one (round robin: a third);
#   - consistentHash useSourceIp (ring hash, and maglev): every tunnel with
#     the same `Forwarded: for=` source (or, without one, from the same HBONE
#     peer) lands on the same endpoint, and several sources reach more than
#     one; an httpHeaderName key has nothing to hash on a byte stream: the
#     picks fall back to random (counted l7_lb_hash_key_missing);
#   - ROUND_ROBIN: exactly even; RANDOM, and no DestinationRule (Istio's default,
#     LEAST_REQUEST): every endpoint gets its share.
# Issue 15: outlier detection hears from opaque tunnels too. One of three
# endpoints refuses connections (a pod IP nothing listens on: RST); with
# consecutive5xxErrors 2 (a refused connect counts as a gateway error when
# local-origin errors are not split, Istio's default) it is ejected at the
# next interval, after which every tunnel reaches a working endpoint, and
# `wpctl outliers` names it.
# DestinationRule tcp.idleTimeout: a tunnel with no byte either way for it
# is closed (tunnel_idle_timeout); one with traffic is not. tcp.tcpKeepalive:
# the upstream connection of an idle tunnel is probed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/hbone_common.sh"
DRV="/usr/bin/python3 $ROOT/tests/integration/tcp_lb.py"

dr() { # name host lb-yaml
	cat <<YAML
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: $1
  namespace: plain
spec:
  host: $2
  trafficPolicy:
    loadBalancer: $3
YAML
}
{
	for i in 1 2 3; do hb_pod plain tlb-$i 198.18.1.4$i tlb tlb; done
	hb_svc plain lr 198.19.0.41 7100 7100 tlb
	hb_svc plain sh 198.19.0.42 7100 7100 tlb
	hb_svc plain mg 198.19.0.43 7100 7100 tlb
	hb_svc plain hh 198.19.0.44 7100 7100 tlb
	hb_svc plain rr 198.19.0.45 7100 7100 tlb
	hb_svc plain dflt 198.19.0.46 7100 7100 tlb
	hb_svc plain rd 198.19.0.47 7100 7100 tlb
	dr lr lr.plain.svc.cluster.local '{simple: LEAST_REQUEST}'
	dr sh sh '{consistentHash: {useSourceIp: true}}'
	dr mg mg '{consistentHash: {useSourceIp: true, maglev: {tableSize: 65537}}}'
	dr hh hh '{consistentHash: {httpHeaderName: x-user}}'
	dr rr rr '{simple: ROUND_ROBIN}'
	dr rd rd '{simple: RANDOM}'
	for i in 1 2 3; do hb_pod plain tod-$i 198.18.1.5$i tod tod; done
	hb_svc plain od 198.19.0.48 7100 7100 tod
	hb_svc plain idl 198.19.0.49 7100 7100 tlb
	hb_svc plain ka 198.19.0.50 7100 7100 tlb
	cat <<YAML
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: od
  namespace: plain
spec:
  host: od.plain.svc.cluster.local
  trafficPolicy:
    outlierDetection:
      consecutive5xxErrors: 2
      interval: 1s
      baseEjectionTime: 120s
      maxEjectionPercent: 34
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: idl
  namespace: plain
spec:
  host: idl.plain.svc.cluster.local
  trafficPolicy:
    connectionPool:
      tcp:
        idleTimeout: 2s
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ka
  namespace: plain
spec:
  host: ka.plain.svc.cluster.local
  trafficPolicy:
    connectionPool:
      tcp:
        tcpKeepalive: {time: 1s, interval: 1s, probes: 3}
YAML
} >"$HB_MAN/30-tcplb.yaml"

hb_up "$(tb_name)"
in_ns $DRV serve --bind 198.18.1.41:7100=tlb-1 --bind 198.18.1.42:7100=tlb-2 \
	--bind 198.18.1.43:7100=tlb-3 --bind 198.18.1.51:7100=tod-1 \
	--bind 198.18.1.52:7100=tod-2 --max-time 600 >"$HB_TMP/backends.out" 2>&1 &
HB_PIDS+=($!)
for _ in $(seq 50); do grep -q listening "$HB_TMP/backends.out" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$HB_TMP/backends.out" || fail "backends did not start: $(cat "$HB_TMP/backends.out")"
for vip in 198.19.0.41 198.19.0.42 198.19.0.43 198.19.0.44 198.19.0.45 198.19.0.46 198.19.0.47 \
	198.19.0.48 198.19.0.49 198.19.0.50; do
	hb_wait_captured $vip:7100
done
drv() { in_ns $DRV "$1" --addr "$WP_IP:15008" --certs "$HB_PKI" --authority "$2" "${@:3}"; }

# (a) 120 short tunnels; P(idle endpoint in the pair of draws) = 17/27, so
# ~76 expected, sd ~5.3; round robin gives 40, random 40 +- 5.2
out=$(drv least 198.19.0.41:7100 --n 120 --min-free 55) || fail "LEAST_REQUEST: $out"
pass "LEAST_REQUEST: short tunnels avoid the endpoints holding open ones: $out"

# (b) 12 sources x 8 tunnels, and 8 tunnels keyed by the HBONE peer
for svc in 198.19.0.42:ring 198.19.0.43:maglev; do
	out=$(drv hash "${svc%%:*}:7100" --n 8 --sources 12) || fail "useSourceIp (${svc#*:}): $out"
	pass "consistentHash useSourceIp (${svc#*:}): one endpoint per source, several overall: $out"
done
miss=$(ctr l7_lb_hash_key_missing)
out=$(drv spread 198.19.0.44:7100 --n 60 --min-each 5) || fail "httpHeaderName on TCP: $out"
[ $(($(ctr l7_lb_hash_key_missing) - miss)) -ge 60 ] ||
	fail "httpHeaderName on TCP: l7_lb_hash_key_missing $miss -> $(ctr l7_lb_hash_key_missing)"
pass "consistentHash httpHeaderName on a TCP port: keyless pick, spread: $out"

# (c) one HBONE connection = one worker: its cursor cycles the three endpoints
out=$(drv spread 198.19.0.45:7100 --n 90 --exact) || fail "ROUND_ROBIN: $out"
pass "ROUND_ROBIN: exactly even: $out"
out=$(drv spread 198.19.0.47:7100 --n 90 --min-each 15) || fail "RANDOM: $out"
pass "RANDOM: every endpoint gets its share: $out"
# idle endpoints: the least-request pick is a uniform draw; 30 +- 4.5 each
out=$(drv spread 198.19.0.46:7100 --n 90 --min-each 15) || fail "no DestinationRule: $out"
pass "no DestinationRule (LEAST_REQUEST): every endpoint gets its share: $out"

# (d) outlier detection: tod-3 (198.18.1.53) refuses
out=$(drv outlier 198.19.0.48:7100 --endpoints tod-1,tod-2,tod-3 --fails 2 --n 30) ||
	fail "outlier detection on TCP: $out"
row=$("$WPCTL" outliers --json --prefix "$WP_PREFIX" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join("%s=%s" % (e, d["reason"][i]) for i, e in enumerate(d["endpoint"])))')
case " $row " in *" 198.18.1.53:7100=5xx "* | *" 198.18.1.53:7100=gateway "*) ;;
*) fail "wpctl outliers does not list the refusing endpoint ejected: $row" ;; esac
pass "outlier detection on TCP: the refusing endpoint is ejected, every tunnel after the interval reaches a working one: $out; outliers: $row"

# (e) tcp.idleTimeout 2s: a silent tunnel is closed after 2 s, a tunnel
# with a byte every 0.5 s stays open
before=$(ctr tunnel_idle_timeout)
out=$(drv idle 198.19.0.49:7100 --idle 2 --every 0.5 --hold 4.5) || fail "tcp.idleTimeout: $out"
[ $(($(ctr tunnel_idle_timeout) - before)) = 1 ] ||
	fail "tunnel_idle_timeout: $before -> $(ctr tunnel_idle_timeout)"
pass "DestinationRule tcp.idleTimeout 2s: the silent tunnel closed, the busy one open: $out"

# (f) tcp.tcpKeepalive time 1s: the silent tunnel's upstream connection is
# probed (the backend's kernel answers, so it stays open); the services
# without it sent no probe all along
[ "$(ctr tcp_keepalive_probe)" = 0 ] || fail "keepalive probes before: $(ctr tcp_keepalive_probe)"
out=$(drv hold 198.19.0.50:7100 --hold 3.5) || fail "tcp.tcpKeepalive: $out"
probes=$(ctr tcp_keepalive_probe)
[ "$probes" -ge 2 ] && [ "$(ctr tcp_keepalive_timeout)" = 0 ] ||
	fail "tcp.tcpKeepalive: $probes probes, $(ctr tcp_keepalive_timeout) timeouts"
pass "DestinationRule tcp.tcpKeepalive 1s: $probes probes answered on the idle upstream, tunnel open: $out"

[ "$(ctr tunnel_no_endpoint)" = 0 ] || fail "tunnel_no_endpoint: $(ctr tunnel_no_endpoint)"
[ "$(ctr tunnel_upstream_reset)" = 0 ] || fail "upstream resets: $(ctr tunnel_upstream_reset)"
