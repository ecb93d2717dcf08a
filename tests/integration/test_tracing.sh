#!/usr/bin/env bash
# Issue 14, acceptance 3: tracing. A collector started here
# (tests/integration/trace_collector.py, on the waypoint's loopback)
# receives the spans; the details backend logs the headers it received.
# Four fresh waypoints: OTLP/HTTP JSON with tracing.sampling 100, the same
# with sampling 0, Zipkin v2 JSON with sampling 100, and OTLP with
# tracing.sampling 100 overridden by a Telemetry resource targeting the
# waypoint with randomSamplingPercentage 0 (spans as with sampling 0). Each gets HTTP/1.1
# and h2c requests (tests/integration/trace_client.py) carrying:
#   a traceparent (sampled, with a tracestate), B3 multi-header (sampled),
#   b3 single-header (sampled), none, a traceparent not sampled, an
#   invalid traceparent (all-zero trace id), B3 multi-header without a
#   sampling decision; h2c: a traceparent (sampled), none.
# Checked:
#   - exactly one span per sampled request: a sampled flag that came wins
#     over tracing.sampling (as Envoy's tracers honour the parent's
#     decision), requests without a decision follow tracing.sampling; none
#     for the unsampled ones;
#   - each span: the incoming trace id and the incoming span id as parent
#     (no parent for a new trace), SERVER, named as Istio's route decorator
#     (details.default.svc.cluster.local:9080/*), Envoy's and Istio's tags
#     (http.method, http.url, http.status_code, http.protocol,
#     upstream_cluster, upstream_address, guid:x-request-id, peer.address,
#     user_agent, response_flags, component, istio.*), application/json;
#   - the backend received the same trace with the exported span's id as
#     parent, in the formats that came (traceparent, b3, x-b3-*; tracestate
#     unchanged); a new trace in the protocol's format (traceparent for
#     OTLP, x-b3-* for Zipkin), flagged not sampled when it was not; an
#     unsampled context untouched;
#   - counters: trace_span_exported, trace_header_invalid, nothing dropped;
#     with the collector gone, a batch fails and is counted
#     (trace_batch_failed, trace_span_lost).
. "$(dirname "$0")/lib.sh"
l7_setup trace
COLLECTOR=127.0.0.1:14318

# run PROTOCOL SAMPLING [CONFIG_SAMPLING]: with CONFIG_SAMPLING, the
# configuration says that and a Telemetry resource targeting the waypoint
# says SAMPLING (randomSamplingPercentage), which must win
run() {
	local proto=$1 sampling=$2 cfg=${3:-$2} name clog=$T/collector-$1-$2-${3:-c}.log blog=$T/details-$1-$2-${3:-c}.log
	name="$(tb_name | cut -c1-20)-$proto-$sampling${3:+t}"
	rm -f "$MAN/90-telemetry.yaml"
	if [ "$cfg" != "$sampling" ]; then
		cat >"$MAN/90-telemetry.yaml" <<YAML
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: waypoint-tracing
  namespace: default
spec:
  targetRefs:
  - {group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}
  tracing:
  - providers: [{name: otel-tracing}]
    randomSamplingPercentage: $sampling
YAML
	fi
	tb_up "$name" --manifests "$MAN" --certs "$PKI" --set cluster.gateway_class=istio-waypoint \
		--set "tracing.collector=$COLLECTOR" --set "tracing.protocol=$proto" \
		--set "tracing.sampling=$cfg" --set tracing.flush_ms=100 \
		--set tracing.service_name=waypoint-test --set tracing.namespace=default
	ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/l7_backend.py" --bind 198.18.1.11:9080 \
		--name details --version v1 >"$blog" 2>&1 &
	PIDS+=($!)
	disown $!
	ip netns exec "$WP_NETNS" $PY "$ROOT/tests/integration/trace_collector.py" \
		--bind "$COLLECTOR" >"$clog" 2>&1 &
	local cpid=$!
	PIDS+=($cpid)
	disown $cpid
	for f in "$blog" "$clog"; do
		for _ in $(seq 100); do grep -q listening "$f" 2>/dev/null && break; sleep 0.1; done
		grep -q listening "$f" || fail "$f: did not start: $(cat "$f")"
	done
	for _ in $(seq 100); do
		in_ns $CLIENT --addr "$WP_IP:15008" --certs "$PKI" --authority 198.19.0.11:9080 \
			--expect-status 200 --timeout 5 >/dev/null 2>&1 && break
		sleep 0.2
	done
	in_ns $PY - "$ROOT" "$WP_IP" "$PKI" "$clog" "$blog" "$proto" "$sampling" >"$T/checked" <<'PY' ||
import json, os, re, subprocess, sys, time, uuid
root, wp_ip, pki, clog, blog, proto, sampling = sys.argv[1:8]
full = sampling == "100"
t0 = time.time()

def hexid(n):
    return os.urandom(n).hex()

def req(case, hdrs, via="h1"):
    rid = str(uuid.uuid4())
    cmd = ["/usr/bin/python3", root + "/tests/integration/trace_client.py", "--addr",
           wp_ip + ":15008", "--certs", pki, "--authority", "198.19.0.11:9080", "--host",
           "details:9080", "--path", "/trace/" + case, "--proto", via,
           "--header", "x-request-id:" + rid]
    for k, v in hdrs:
        cmd += ["--header", "%s:%s" % (k, v)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or json.loads(r.stdout)["status"] != 200:
        sys.exit("%s: %s %s" % (case, r.stdout, r.stderr))
    return rid

ids = {c: (hexid(16), hexid(8)) for c in "ABCEFHI"}
cases = {  # name: (headers, via, sampled)
    "A": ([("traceparent", "00-%s-%s-01" % ids["A"]), ("tracestate", "vendor=opaque,x=1")], "h1", True),
    "B": ([("x-b3-traceid", ids["B"][0]), ("x-b3-spanid", ids["B"][1]), ("x-b3-sampled", "1")], "h1", True),
    "C": ([("b3", "%s-%s-1" % ids["C"])], "h1", True),
    "D": ([], "h1", full),
    "E": ([("traceparent", "00-%s-%s-00" % ids["E"])], "h1", False),
    "H": ([("traceparent", "00-%s-%s-01" % ("0" * 32, ids["H"][1]))], "h1", full),
    "I": ([("x-b3-traceid", ids["I"][0]), ("x-b3-spanid", ids["I"][1])], "h1", full),
    "F": ([("traceparent", "00-%s-%s-01" % ids["F"])], "h2c", True),
    "G": ([], "h2c", full),
}
rids = {c: req(c, h, via) for c, (h, via, _) in cases.items()}
want = sum(1 for c in cases.values() if c[2])

def spans():
    out = []
    for ln in open(clog):
        if ln.startswith("{"):
            d = json.loads(ln)
            if "error" in d:
                sys.exit("collector: " + d["error"])
            out.append(d)
    return out

for _ in range(100):
    if len(spans()) >= want:
        break
    time.sleep(0.1)
time.sleep(0.5)  # no span more may come
got = spans()
if len(got) != want:
    sys.exit("%d spans, expected %d: %s" % (len(got), want, got))
by_rid = {s["attrs"].get("guid:x-request-id"): s for s in got}
seen = {}
for ln in open(blog):
    if ln.startswith('{"method"'):
        d = json.loads(ln)
        h = {k.lower(): v for k, v in d["headers"].items()}
        seen[h["x-request-id"]] = h

def check_span(c, s, via):
    tags = dict(s["attrs"])
    want_tags = {
        "http.method": "GET", "http.url": "http://details:9080/trace/" + c,
        "http.status_code": "200", "http.protocol": "HTTP/2" if via == "h2c" else "HTTP/1.1",
        "upstream_cluster": "outbound|9080||details.default.svc.cluster.local",
        "upstream_cluster.name": "outbound|9080||details.default.svc.cluster.local",
        "upstream_address": "198.18.1.11:9080", "guid:x-request-id": rids[c],
        "component": "proxy", "response_flags": "-", "peer.address": "10.244.0.9",
        "user_agent": "trace_client", "downstream_cluster": "-",
        "istio.namespace": "default", "istio.canonical_service": "waypoint-test",
        "istio.canonical_revision": "latest", "istio.mesh_id": "cluster.local",
        "istio.cluster_id": "Kubernetes", "node_id": "", "zone": "",
    }
    for k, v in want_tags.items():
        if tags.get(k) != v:
            sys.exit("%s: tag %s = %r, expected %r: %s" % (c, k, tags.get(k), v, s))
    if "error" in tags or not tags["request_size"].isdigit() or int(tags["response_size"]) <= 0:
        sys.exit("%s: tags %s" % (c, tags))
    if s["name"] != "details.default.svc.cluster.local:9080/*":
        sys.exit("%s: name %s" % (c, s["name"]))
    if s["kind"] != (2 if proto == "otlp" else "SERVER") or s["service"] != "waypoint-test":
        sys.exit("%s: kind / service %s" % (c, s))
    if s["content_type"] != "application/json" or s["format"] != proto:
        sys.exit("%s: %s" % (c, s))
    if not (t0 - 1 <= s["start_us"] / 1e6 <= time.time()) or not 0 <= s["duration_us"] < 5e6:
        sys.exit("%s: times %s (test began %f)" % (c, s, t0))
    if not re.fullmatch(r"[0-9a-f]{16}", s["span_id"]) or not re.fullmatch(r"[0-9a-f]{32}", s["trace_id"]):
        sys.exit("%s: ids %s" % (c, s))

for c, (hdrs, via, sampled) in cases.items():
    h = seen.get(rids[c])
    if h is None:
        sys.exit("%s: the backend did not see request %s" % (c, rids[c]))
    s = by_rid.get(rids[c])
    if not sampled:
        if s is not None:
            sys.exit("%s: unsampled, but a span came: %s" % (c, s))
        if c in "EI":  # a context that came, not sampled: untouched
            for k, v in hdrs:
                if h.get(k) != v:
                    sys.exit("%s: %s %r reached the backend, sent %r" % (c, k, h.get(k), v))
            if c == "I" and "x-b3-sampled" in h:
                sys.exit("I: %s" % h)
        elif proto == "otlp":  # a new trace, propagated as not sampled
            if not re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-00", h.get("traceparent", "")) or \
                    (c == "H" and h["traceparent"][3:35] == "0" * 32):
                sys.exit("%s: traceparent %r" % (c, h.get("traceparent")))
        elif h.get("x-b3-sampled") != "0" or not re.fullmatch(r"[0-9a-f]{32}", h.get("x-b3-traceid", "")):
            sys.exit("%s: B3 %s" % (c, h))
        continue
    if s is None:
        sys.exit("%s: sampled, no span" % c)
    check_span(c, s, via)
    tid, sid = ids.get(c, (None, None))
    parent = c in "ABCFI"
    if parent and (s["trace_id"] != tid or s["parent_id"] != sid):
        sys.exit("%s: span %s/%s parent %s, sent %s/%s" % (c, s["trace_id"], s["span_id"], s["parent_id"], tid, sid))
    if not parent and s["parent_id"] is not None:
        sys.exit("%s: a new trace with a parent: %s" % (c, s))
    tp = "00-%s-%s-01" % (s["trace_id"], s["span_id"])
    if c in "AFH" or (c in "DG" and proto == "otlp"):
        if h.get("traceparent") != tp:
            sys.exit("%s: backend traceparent %r, expected %r" % (c, h.get("traceparent"), tp))
        if c == "A" and h.get("tracestate") != "vendor=opaque,x=1":
            sys.exit("A: tracestate %r" % h.get("tracestate"))
    if c in "BI" or (c in "DG" and proto == "zipkin"):
        b3 = {"x-b3-traceid": s["trace_id"], "x-b3-spanid": s["span_id"], "x-b3-sampled": "1",
              "x-b3-parentspanid": sid if parent else None}
        for k, v in b3.items():
            if h.get(k) != v:
                sys.exit("%s: backend %s %r, expected %r: %s" % (c, k, h.get(k), v, h))
        if c in "BI" and "traceparent" in h:
            sys.exit("%s: a traceparent was added to B3: %s" % (c, h))
    if c == "C" and h.get("b3") != "%s-%s-1-%s" % (s["trace_id"], s["span_id"], sid):
        sys.exit("C: backend b3 %r" % h.get("b3"))
print("%s %s%%: %d spans for %d requests, parents and tags as sent, headers as expected"
      % (proto, sampling, want, len(cases)))
PY
		fail "$proto sampling $sampling: $(cat "$T/checked") $(tail -5 "$clog")"
	cat "$T/checked"
	! grep -q Traceback "$clog" || fail "collector: $(cat "$clog")" # (e.g. a connection reset)
	local exported=$((sampling == 100 ? 8 : 4))
	[ "$(stat trace_span_exported)" = $exported ] || fail "trace_span_exported $(stat trace_span_exported), expected $exported"
	[ "$(stat trace_header_invalid)" = 1 ] || fail "trace_header_invalid $(stat trace_header_invalid)"
	[ "$(stat trace_span_dropped)" = 0 ] && [ "$(stat trace_batch_failed)" = 0 ] ||
		fail "dropped $(stat trace_span_dropped), failed batches $(stat trace_batch_failed)"
	[ "$cfg" = "$sampling" ] || pass "a Telemetry resource's randomSamplingPercentage $sampling overrode tracing.sampling $cfg"
	pass "tracing $proto, sampling $sampling%: one span per sampled request (HTTP/1.1 and h2c) with the incoming trace as parent and Istio's tags; none for the unsampled; the backend saw the trace with the span as parent"
	if [ "$proto" = otlp ] && [ "$sampling" = 100 ]; then
		kill "$cpid"
		sleep 0.2
		in_ns $PY "$ROOT/tests/integration/trace_client.py" --addr "$WP_IP:15008" --certs "$PKI" \
			--authority 198.19.0.11:9080 --host details:9080 --path /trace/gone >/dev/null ||
			fail "request with the collector gone"
		for _ in $(seq 50); do [ "$(stat trace_batch_failed)" -ge 1 ] && break; sleep 0.1; done
		[ "$(stat trace_batch_failed)" = 1 ] && [ "$(stat trace_span_lost)" = 1 ] ||
			fail "collector gone: failed batches $(stat trace_batch_failed), lost $(stat trace_span_lost)"
		pass "collector gone: the batch fails, counted (trace_batch_failed, trace_span_lost); requests go on"
	fi
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	PIDS=()
	"$TESTBED" down "$name" || true
}

run otlp 100
run otlp 0
run zipkin 100
run otlp 0 100
