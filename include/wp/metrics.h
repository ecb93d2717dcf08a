/*
 * Istio's standard metrics, kept per core (dp/obs/metrics.c).
 *
 * Each worker owns one struct wp_metrics_core and is its only writer: the
 * request pipeline records a finished HTTP request (istio_requests_total and
 * the duration / request bytes / response bytes histograms) or a TCP
 * connection's open, bytes and close (istio_tcp_*) against a label set,
 * with no lock, no atomic read-modify-write and no allocation: everything
 * is sized at create (metrics.max_series_per_core).
 *
 * A label set is a struct of interned string ids (wp_metrics_intern), one
 * per Istio label; reporter is always "waypoint". Id 0 is "unknown" (what
 * Istio writes for a peer it knows nothing about), so a zeroed struct is a
 * valid label set. Callers intern once per connection or route and keep
 * the ids: interning hashes the bytes, recording hashes only the ids.
 *
 * Bounds and what happens beyond them (each counted in the worker's
 * counter table, metrics.def):
 *   - a new label set when the core already holds max_series_per_core HTTP
 *     (or TCP) series goes to that table's overflow series, whose every
 *     label but reporter is "overflow" (METRICS_SERIES_OVERFLOW);
 *   - a string when the core's string table is full, or one longer than
 *     WP_METRICS_MAX_VALUE, is interned as "overflow"
 *     (METRICS_LABEL_OVERFLOW).
 *
 * Readers (the control plane, on a scrape; dp/obs/prom.c) read other
 * cores' cells without locks: every value is a naturally aligned uint64
 * that its one writer stores with a relaxed atomic store (a plain move on
 * x86-64 and arm64) and readers load the same way, so a value is never
 * torn and never goes backwards; a new series and its strings are
 * published with a release store of the series count. Values of one
 * series are not read as a unit: a scrape may see a request in
 * istio_requests_total and not yet in its histograms (one request behind,
 * never more than the requests in flight on that core).
 */
#ifndef WP_METRICS_H
#define WP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "wp/common.h"

/* The labels of Istio's standard metrics, reporter aside (always
 * "waypoint"), in the order they are written. TCP series have no
 * response_code and no grpc_response_status (as Istio's). */
#define WP_METRICS_LABELS(X)                                                                       \
	X(SOURCE_WORKLOAD, "source_workload")                                                      \
	X(SOURCE_WORKLOAD_NAMESPACE, "source_workload_namespace")                                  \
	X(SOURCE_PRINCIPAL, "source_principal")                                                    \
	X(SOURCE_APP, "source_app")                                                                \
	X(SOURCE_VERSION, "source_version")                                                        \
	X(SOURCE_CANONICAL_SERVICE, "source_canonical_service")                                    \
	X(SOURCE_CANONICAL_REVISION, "source_canonical_revision")                                  \
	X(SOURCE_CLUSTER, "source_cluster")                                                        \
	X(DESTINATION_WORKLOAD, "destination_workload")                                            \
	X(DESTINATION_WORKLOAD_NAMESPACE, "destination_workload_namespace")                        \
	X(DESTINATION_PRINCIPAL, "destination_principal")                                          \
	X(DESTINATION_APP, "destination_app")                                                      \
	X(DESTINATION_VERSION, "destination_version")                                              \
	X(DESTINATION_SERVICE, "destination_service")                                              \
	X(DESTINATION_SERVICE_NAME, "destination_service_name")                                    \
	X(DESTINATION_SERVICE_NAMESPACE, "destination_service_namespace")                          \
	X(DESTINATION_CANONICAL_SERVICE, "destination_canonical_service")                          \
	X(DESTINATION_CANONICAL_REVISION, "destination_canonical_revision")                        \
	X(DESTINATION_CLUSTER, "destination_cluster")                                              \
	X(REQUEST_PROTOCOL, "request_protocol")                                                    \
	X(RESPONSE_CODE, "response_code")                                                          \
	X(GRPC_RESPONSE_STATUS, "grpc_response_status")                                            \
	X(RESPONSE_FLAGS, "response_flags")                                                        \
	X(CONNECTION_SECURITY_POLICY, "connection_security_policy")

enum wp_metrics_label {
#define WP_ML_ENUM(id, name) WP_ML_##id,
	WP_METRICS_LABELS(WP_ML_ENUM)
#undef WP_ML_ENUM
	        WP_ML_MAX
};

/* Label names, indexed by enum wp_metrics_label. */
extern const char *const wp_metrics_label_names[WP_ML_MAX];

#define WP_METRICS_UNKNOWN   0u  /* the id of "unknown" */
#define WP_METRICS_OVERFLOW  1u  /* the id of "overflow" */
#define WP_METRICS_EMPTY     2u  /* the id of "" (grpc_response_status of plain HTTP) */
#define WP_METRICS_MAX_VALUE 512 /* longest label value, bytes */

struct wp_metrics_labels {
	uint32_t v[WP_ML_MAX]; /* interned ids, enum wp_metrics_label */
};

/* Istio/Envoy's default histogram buckets (Envoy's defaults apply to all
 * three of Istio's histograms unless the bootstrap sets
 * histogram_bucket_settings, which Istio's does not by default). Duration
 * in milliseconds, bytes in bytes; "+Inf" follows the last. */
#define WP_METRICS_BUCKETS 19
extern const double wp_metrics_bucket_bounds[WP_METRICS_BUCKETS];

/* One HTTP series: istio_requests_total and the three histograms. Bucket
 * counts are per bucket (not cumulative); [WP_METRICS_BUCKETS] is +Inf. */
struct wp_metrics_hist {
	uint64_t bucket[WP_METRICS_BUCKETS + 1];
	uint64_t sum; /* microseconds for the duration, bytes for sizes */
};

struct wp_metrics_http {
	struct wp_metrics_labels labels;
	uint64_t requests;
	struct wp_metrics_hist duration, req_bytes, resp_bytes;
};

struct wp_metrics_tcp {
	struct wp_metrics_labels labels;
	uint64_t opened, closed, sent, received;
};

struct wp_metrics_core;

/* Everything a core needs for up to max_series HTTP and max_series TCP
 * series (plus one overflow series each) and their strings, allocated
 * here, once; the pages are touched first by the worker that writes them.
 * ctr is the owner's counter array (enum wp_ctr, METRICS_* rows). NULL when
 * out of memory or max_series is 0. */
struct wp_metrics_core *wp_metrics_core_create(unsigned max_series, uint64_t *ctr);

void wp_metrics_core_destroy(struct wp_metrics_core *m);

/* The id of s[0..len) on this core (owner only). Returns WP_METRICS_OVERFLOW
 * when it cannot be kept (table full or len > WP_METRICS_MAX_VALUE). */
uint32_t wp_metrics_intern(struct wp_metrics_core *m, const char *s, size_t len);

/* Records one finished HTTP request (owner only): duration in
 * microseconds, bytes received from and sent to the downstream. The same
 * in two steps: the HTTP series of l, created on first use (a handle valid
 * for the core's life, 0 the overflow series), then one request added to
 * it; a caller whose requests often share labels keeps the handle. */
uint32_t wp_metrics_http_series(struct wp_metrics_core *m, const struct wp_metrics_labels *l);
void wp_metrics_http_add(struct wp_metrics_core *m, uint32_t series, uint64_t duration_us,
                         uint64_t req_bytes, uint64_t resp_bytes);
void wp_metrics_http_record(struct wp_metrics_core *m, const struct wp_metrics_labels *l,
                            uint64_t duration_us, uint64_t req_bytes, uint64_t resp_bytes);

/* The TCP series of l (response_code and grpc_response_status ignored),
 * created on first use: a handle valid for the core's life, to keep for the
 * connection and pass to wp_metrics_tcp_* (owner only). */
uint32_t wp_metrics_tcp_series(struct wp_metrics_core *m, const struct wp_metrics_labels *l);

/* Adds to a TCP series: connections opened / closed, bytes sent to and
 * received from the downstream since the last call (owner only). */
void wp_metrics_tcp_add(struct wp_metrics_core *m, uint32_t series, uint64_t opened,
                        uint64_t closed, uint64_t sent, uint64_t received);

/* ---- readers (any thread) ---------------------------------------------------------------- */

/* The series published so far, in creation order; index n_http/n_tcp is
 * past the end. The overflow series is index 0 of each table (all zero
 * until used). */
unsigned wp_metrics_n_http(const struct wp_metrics_core *m);
unsigned wp_metrics_n_tcp(const struct wp_metrics_core *m);
const struct wp_metrics_http *wp_metrics_http_at(const struct wp_metrics_core *m, unsigned i);
const struct wp_metrics_tcp *wp_metrics_tcp_at(const struct wp_metrics_core *m, unsigned i);

/* The bytes of a string id that a published series holds. */
const char *wp_metrics_string(const struct wp_metrics_core *m, uint32_t id, size_t *len);

/* One value of a published series, as readers must load it. */
static inline uint64_t wp_metrics_load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

#endif /* WP_METRICS_H */
