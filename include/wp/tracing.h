/*
 * Span export (dp/obs/tracing.c): one span per sampled request, sent in
 * batches to a collector over OTLP/HTTP JSON (POST /v1/traces) or Zipkin
 * v2 JSON (POST /api/v2/spans), by a thread of its own.
 *
 * As with the access log, workers never format nor send: the request
 * pipeline's completion stage (dp/l7/pipeline_trace.c) copies the span's
 * fields into a fixed-size entry of its core's ring (single producer,
 * single consumer; no allocation, no lock) and goes on; a full ring drops
 * the span (TRACE_SPAN_DROPPED, counted by the worker). The exporter
 * thread drains the rings, encodes a batch when it holds batch_spans spans
 * or its oldest waited flush_ms, and POSTs it over a plain kernel TCP
 * socket (HTTP/1.1, one connection per batch). A batch that fails
 * (connect, timeout, a status other than 2xx) is dropped and counted, and
 * the exporter backs off before the next try; spans keep being drained
 * meanwhile so workers never wait.
 */
#ifndef WP_TRACING_H
#define WP_TRACING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wp/accesslog.h" /* WP_ALOG_FIELD, WP_ALOG_SET */
#include "wp/addr_types.h"

struct wp_tracing_config;

/* One finished span: the request as the completion stage saw it. */
struct wp_span_entry {
	uint8_t trace_id[16], span_id[8], parent_id[8];
	bool has_parent;
	bool has_upstream;
	bool is_grpc;
	uint8_t proto;   /* enum wp_alog_proto */
	uint16_t status; /* 0: no response */
	int16_t grpc;    /* grpc-status; -1: none */
	uint16_t port;   /* the destination service port (operation name) */
	uint16_t upstream_port;
	uint64_t start_us; /* wall clock, µs since the epoch */
	uint64_t duration_us;
	uint64_t bytes_rx, bytes_tx;
	struct wp_addr peer, upstream;
	WP_ALOG_FIELD(host, 192); /* destination service hostname ("" unknown) */
	WP_ALOG_FIELD(method, 16);
	WP_ALOG_FIELD(authority, 160);
	WP_ALOG_FIELD(path, 256); /* Envoy's max_path_tag_length */
	WP_ALOG_FIELD(user_agent, 160);
	WP_ALOG_FIELD(request_id, 64);
	WP_ALOG_FIELD(flags, 48);
	WP_ALOG_FIELD(cluster, 192);
};

struct wp_span_ring;
struct wp_trace_exporter;

/* A core's ring of <entries> (rounded up to a power of two), or NULL. */
struct wp_span_ring *wp_span_ring_create(unsigned entries);
void wp_span_ring_destroy(struct wp_span_ring *r);

/* Producer (the owning core only): a free entry, or NULL when the ring is
 * full (the caller counts the drop). Then wp_span_commit(). */
struct wp_span_entry *wp_span_reserve(struct wp_span_ring *r);
void wp_span_commit(struct wp_span_ring *r);

/* What every span of this waypoint carries besides its own fields. */
struct wp_trace_resource {
	const char *service_name, *ns, *canonical_revision, *mesh_id, *cluster_id;
	const char *node_id, *zone;
};

/* Encodes <n> spans as one OTLP/HTTP JSON request body (resourceSpans) or
 * a Zipkin v2 JSON array. Returns its length, or 0 when <cap> is too small. */
size_t wp_trace_encode_otlp(const struct wp_span_entry *const *s, unsigned n,
                            const struct wp_trace_resource *res, char *buf, size_t cap);
size_t wp_trace_encode_zipkin(const struct wp_span_entry *const *s, unsigned n,
                              const struct wp_trace_resource *res, char *buf, size_t cap);

/* The span's operation name as Istio's route decorator writes it: the
 * destination service's host, ':', the port, then "/\*" (the authority
 * then "/\*" without a known service); returns its length. */
size_t wp_trace_span_name(const struct wp_span_entry *e, char *buf, size_t cap);

/*
 * Creates the exporter for <cfg> (a collector must be set) with <n_rings>
 * rings of cfg->ring_entries and starts its thread. <res> strings are
 * copied. NULL (errno) when out of memory or the thread does not start.
 */
struct wp_trace_exporter *wp_trace_exporter_start(const struct wp_tracing_config *cfg,
                                                  const struct wp_trace_resource *res,
                                                  unsigned n_rings);

/* Ring <i>, for worker <i>'s pipeline. */
struct wp_span_ring *wp_trace_exporter_ring(struct wp_trace_exporter *x, unsigned i);

/* Adds the exporter's counters (TRACE_*) into <out>. */
void wp_trace_exporter_counters(const struct wp_trace_exporter *x, uint64_t *out);

/* Sends what the rings still hold (one try, bounded by timeout_ms, at most
 * a second), stops the thread and frees it and its rings. */
void wp_trace_exporter_stop(struct wp_trace_exporter *x);

#endif /* WP_TRACING_H */
