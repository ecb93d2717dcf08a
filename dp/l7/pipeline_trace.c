/*
 * The request pipeline's tracing (see pipeline.h): the sampling decision
 * and trace context of a request when its head arrives, and its span when
 * the completion stage records it.
 *
 * The decision follows Envoy's: a sampled flag that came with the request
 * (traceparent's flags, b3's or x-b3-sampled / x-b3-flags) is honoured, as
 * Envoy's tracers make the child span inherit the parent's decision; a
 * request that carries none is sampled at random, at the Telemetry
 * resource's randomSamplingPercentage when one sets it, else at
 * tracing.sampling. A sampled request gets one span (SERVER, as Envoy's
 * ingress span), a child of the incoming context or the root of a new
 * trace; the upstream request carries the same trace id with the span's
 * id as parent, in every format the request came with (W3C, b3, x-b3-*),
 * or for a new trace in the format of the configured protocol (OTLP:
 * traceparent, as Envoy's OpenTelemetry tracer; Zipkin: x-b3-*, as its
 * Zipkin tracer). tracestate and x-request-id go on untouched.
 *
 * No allocation: the state is in the request's record (struct
 * wp_pipe_trace), the span a fixed entry of the core's ring.
 */
#include <string.h>
#include <strings.h>

#include "http1.h"
#include "pipeline.h"
#include "wp/config.h"
#include "wp/counters.h"
#include "wp/rand.h"

void wp_pipe_core_set_trace(struct wp_pipe_core *pc, struct wp_span_ring *ring, uint32_t ppm,
                            uint8_t protocol, uint64_t seed)
{
	pc->trace = ring;
	pc->trace_ppm = ppm;
	pc->trace_fmt = protocol == WP_TRACE_ZIPKIN ? WP_TC_B3M : WP_TC_W3C;
	pc->trace_rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

/* <n> random bytes, not all zero (an all-zero id is invalid). */
static void rand_id(struct wp_pipe_core *pc, uint8_t *out, size_t n)
{
	do {
		for (size_t i = 0; i < n; i += 8) {
			uint64_t v = wp_rand_next(&pc->trace_rng);

			memcpy(out + i, &v, WP_MIN(n - i, sizeof(v)));
		}
	} while (!memcmp(out, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", n));
}

void wp_pipe_trace_begin(const struct wp_pipe_conn *c, struct wp_pipe_rec *r,
                         struct wp_tracectx *in)
{
	struct wp_pipe_core *pc = c->core;
	struct wp_pipe_trace *t = &r->tr;
	uint32_t ppm = c->tel.sampling_ppm >= 0 ? (uint32_t)c->tel.sampling_ppm : pc->trace_ppm;
	bool sampled;

	if (wp_tc_finish(in))
		wp_ctr_inc(pc->ctr, WP_CTR_TRACE_HEADER_INVALID);
	if (in->sampled >= 0)
		sampled = in->sampled;
	else
		sampled = ppm >= 1000000 ||
		          (ppm > 0 && wp_rand_below(&pc->trace_rng, 1000000) < (uint64_t)ppm);
	t->span = t->headers = false;
	if (!sampled && in->has_ctx)
		return; /* not ours to make: the headers go on as they came */
	if (in->has_ctx) {
		memcpy(t->trace_id, in->trace_id, sizeof(t->trace_id));
		memcpy(t->parent_id, in->span_id, sizeof(t->parent_id));
	} else {
		rand_id(pc, t->trace_id, sizeof(t->trace_id));
	}
	rand_id(pc, t->span_id, sizeof(t->span_id));
	t->has_parent = in->has_ctx;
	t->b3_64 = in->has_ctx && in->b3_64;
	t->formats = in->present ? in->present : pc->trace_fmt;
	t->sampled = sampled;
	t->headers = true;
	t->span = sampled && r->active; /* a record that is not kept has no span either */
	if (t->span)
		wp_ctr_inc(pc->ctr, WP_CTR_TRACE_SPAN_SAMPLED);
}

void wp_pipe_trace_http1(const struct wp_pipe_conn *c, struct wp_pipe_rec *r,
                         const struct wp_http1_msg *m)
{
	struct wp_tracectx in;

	if (!wp_pipe_traces(c))
		return;
	wp_tc_init(&in);
	for (uint16_t i = 0; i < m->n_hdrs; i++)
		wp_tc_header(&in, m->hdrs[i].name, m->hdrs[i].name_len, m->hdrs[i].value,
		             m->hdrs[i].value_len);
	wp_pipe_trace_begin(c, r, &in);
}

void wp_pipe_trace_h2(const struct wp_pipe_conn *c, struct wp_pipe_rec *r, const nghttp2_nv *nv,
                      size_t n)
{
	struct wp_tracectx in;

	if (!wp_pipe_traces(c))
		return;
	wp_tc_init(&in);
	for (size_t i = 0; i < n; i++)
		wp_tc_header(&in, (const char *)nv[i].name, nv[i].namelen,
		             (const char *)nv[i].value, nv[i].valuelen);
	wp_pipe_trace_begin(c, r, &in);
}

void wp_pipe_trace_span(const struct wp_pipe_conn *c, const struct wp_pipe_rec *r,
                        const struct wp_pipe_log_view *v, uint32_t flags_id, uint64_t dur_us)
{
	struct wp_pipe_core *pc = c->core;
	struct wp_span_entry *e = wp_span_reserve(pc->trace);
	const char *s;
	size_t n;

	if (!e) {
		wp_ctr_inc(pc->ctr, WP_CTR_TRACE_SPAN_DROPPED);
		return;
	}
	memcpy(e->trace_id, r->tr.trace_id, sizeof(e->trace_id));
	memcpy(e->span_id, r->tr.span_id, sizeof(e->span_id));
	memcpy(e->parent_id, r->tr.parent_id, sizeof(e->parent_id));
	e->has_parent = r->tr.has_parent;
	e->start_us = (uint64_t)((int64_t)r->start_us + pc->wall_off_us);
	e->duration_us = dur_us;
	e->bytes_rx = r->req_bytes;
	e->bytes_tx = r->resp_bytes;
	e->status = r->status;
	e->is_grpc = r->is_grpc;
	e->grpc = r->grpc;
	e->has_upstream = r->has_ep;
	e->upstream = r->up_addr;
	e->upstream_port = r->up_port;
	e->peer = c->remote;
	e->port = c->dst_port;
	e->proto = v ? v->proto : WP_ALOG_HTTP11;
	WP_ALOG_SET(e, method, v ? v->method : NULL, v ? v->method_len : 0);
	WP_ALOG_SET(e, path, v ? v->path : NULL, v ? v->path_len : 0);
	WP_ALOG_SET(e, authority, v ? v->authority : NULL, v ? v->authority_len : 0);
	WP_ALOG_SET(e, user_agent, v ? v->user_agent : NULL, v ? v->user_agent_len : 0);
	WP_ALOG_SET(e, request_id, v ? v->request_id : NULL, v ? v->request_id_len : 0);
	s = wp_metrics_string(pc->metrics, flags_id, &n);
	WP_ALOG_SET(e, flags, s, n);
	e->host_len = e->cluster_len = 0;
	if (r->has_svc && r->svc[0] != WP_METRICS_UNKNOWN) {
		s = wp_metrics_string(pc->metrics, r->svc[0], &n);
		WP_ALOG_SET(e, host, s, n);
	}
	if (r->has_svc && r->svc[3] != WP_METRICS_UNKNOWN) {
		s = wp_metrics_string(pc->metrics, r->svc[3], &n);
		WP_ALOG_SET(e, cluster, s, n);
	}
	wp_span_commit(pc->trace);
}
