/*
 * The request pipeline's completion stage (dp/l7/pipeline_obs.c): the label
 * set of a connection from its peer identity and the CONNECT's baggage
 * (Istio's rules, "unknown" / "latest" where Istio writes them), the
 * destination from the route cluster and endpoint (and the per-core caches
 * across snapshot generations), response codes, gRPC statuses, Envoy's
 * response flags, one record per exchange, opaque TCP series, the
 * destination workload labels from an endpoint's Pod, nothing recorded
 * with metrics off, and the access-log lines of an exchange, a local
 * answer and an opaque TCP connection in text and JSON.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pipeline.h"
#include "wp/counters.h"
#include "wp/snapshot_types.h"

static uint64_t ctr[WP_CTR_MAX];
static struct wp_metrics_core *cells;
static struct wp_pipe_core core;

static const char *baggage = "k8s.cluster.name=east,k8s.namespace.name=bookinfo,"
                             "k8s.deployment.name=productpage-v1,service.name=productpage,"
                             "service.version=v1";

static const struct wp_snap_service reviews = {
        .ns = "default", .name = "reviews", .hostname = "reviews.default.svc.cluster.local"};

static int setup(void **state)
{
	(void)state;
	memset(ctr, 0, sizeof(ctr));
	cells = wp_metrics_core_create(64, ctr);
	assert_non_null(cells);
	wp_pipe_core_init(&core, ctr);
	wp_pipe_core_set_metrics(&core, cells, "cluster.local", "cluster.local", "Kubernetes");
	wp_pipe_core_clock(&core, 1000000, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	wp_pipe_core_fini(&core);
	wp_metrics_core_destroy(cells);
	return 0;
}

static void conn_init(struct wp_pipe_conn *c, const char *principal, const char *bg,
                      const struct wp_snap_service *svc)
{
	memset(c, 0, sizeof(*c));
	c->core = &core;
	if (principal) {
		c->principal = principal;
		c->principal_len = (uint32_t)strlen(principal);
	}
	wp_pipe_conn_labels(c, bg, bg ? strlen(bg) : 0, svc, NULL);
}

/* The value of label <k> of <l> as a C string (static buffer). */
static const char *lab(const struct wp_metrics_labels *l, enum wp_metrics_label k)
{
	static char buf[4][WP_METRICS_MAX_VALUE + 1];
	static int turn;
	size_t len;
	const char *s = wp_metrics_string(cells, l->v[k], &len);
	char *b = buf[turn++ & 3];

	memcpy(b, s, len);
	b[len] = '\0';
	return b;
}

/* The HTTP series recorded last (the newest). */
static const struct wp_metrics_http *last_http(void)
{
	unsigned n = wp_metrics_n_http(cells);

	assert_true(n > 1);
	return wp_metrics_http_at(cells, n - 1);
}

static uint64_t total_requests(void)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < wp_metrics_n_http(cells); i++)
		t += wp_metrics_load(&wp_metrics_http_at(cells, i)->requests);
	return t;
}

/* One exchange: begun at 1 s, answered <status> with <flags>, ended <dur>
 * µs later, to endpoint <ep> of <cl> (either may be NULL). */
static void exchange(struct wp_pipe_conn *c, bool grpc, uint16_t status, int16_t gs, uint16_t flags,
                     uint64_t dur, const struct wp_route_cluster *cl,
                     const struct wp_snap_endpoint *ep)
{
	struct wp_pipe_rec r;

	wp_pipe_core_clock(&core, 1000000, core.gen);
	wp_pipe_rec_begin(c, &r, grpc);
	wp_pipe_rec_dest(c, &r, cl, ep);
	r.status = status;
	r.grpc = gs;
	r.flags = flags;
	r.req_bytes = 100;
	r.resp_bytes = 2000;
	wp_pipe_core_clock(&core, 1000000 + dur, core.gen);
	wp_pipe_rec_end(c, &r, NULL);
	wp_pipe_rec_end(c, &r, NULL); /* once */
}

static void test_labels_from_identity_and_baggage(void **state)
{
	struct wp_pipe_conn c;
	const struct wp_metrics_http *h;
	const struct wp_metrics_labels *l;
	struct wp_snap_endpoint ep = {.ns = "default", .service_account = "bookinfo-reviews"};
	struct wp_route_cluster cl = {.name = "outbound|9080|v2|reviews.default.svc.cluster.local",
	                              .svc_ns = "default",
	                              .svc_name = "reviews"};

	(void)state;
	conn_init(&c, "cluster.local/ns/default/sa/bookinfo-productpage", baggage, &reviews);
	assert_true(c.ml_ready);
	exchange(&c, false, 200, -1, 0, 7300, &cl, &ep);
	h = last_http();
	l = &h->labels;
	assert_string_equal(lab(l, WP_ML_SOURCE_WORKLOAD), "productpage-v1");
	/* the namespace of the identity wins over the baggage's */
	assert_string_equal(lab(l, WP_ML_SOURCE_WORKLOAD_NAMESPACE), "default");
	assert_string_equal(lab(l, WP_ML_SOURCE_PRINCIPAL),
	                    "spiffe://cluster.local/ns/default/sa/bookinfo-productpage");
	assert_string_equal(lab(l, WP_ML_SOURCE_APP), "productpage");
	assert_string_equal(lab(l, WP_ML_SOURCE_VERSION), "v1");
	assert_string_equal(lab(l, WP_ML_SOURCE_CANONICAL_SERVICE), "productpage");
	assert_string_equal(lab(l, WP_ML_SOURCE_CANONICAL_REVISION), "v1");
	assert_string_equal(lab(l, WP_ML_SOURCE_CLUSTER), "east");
	assert_string_equal(lab(l, WP_ML_DESTINATION_WORKLOAD), "unknown");
	assert_string_equal(lab(l, WP_ML_DESTINATION_WORKLOAD_NAMESPACE), "default");
	assert_string_equal(lab(l, WP_ML_DESTINATION_PRINCIPAL),
	                    "spiffe://cluster.local/ns/default/sa/bookinfo-reviews");
	assert_string_equal(lab(l, WP_ML_DESTINATION_APP), "unknown");
	assert_string_equal(lab(l, WP_ML_DESTINATION_VERSION), "unknown");
	assert_string_equal(lab(l, WP_ML_DESTINATION_SERVICE), "reviews.default.svc.cluster.local");
	assert_string_equal(lab(l, WP_ML_DESTINATION_SERVICE_NAME), "reviews");
	assert_string_equal(lab(l, WP_ML_DESTINATION_SERVICE_NAMESPACE), "default");
	assert_string_equal(lab(l, WP_ML_DESTINATION_CANONICAL_SERVICE), "unknown");
	assert_string_equal(lab(l, WP_ML_DESTINATION_CANONICAL_REVISION), "unknown");
	assert_string_equal(lab(l, WP_ML_DESTINATION_CLUSTER), "Kubernetes");
	assert_string_equal(lab(l, WP_ML_REQUEST_PROTOCOL), "http");
	assert_string_equal(lab(l, WP_ML_RESPONSE_CODE), "200");
	assert_string_equal(lab(l, WP_ML_GRPC_RESPONSE_STATUS), "");
	assert_string_equal(lab(l, WP_ML_RESPONSE_FLAGS), "-");
	assert_string_equal(lab(l, WP_ML_CONNECTION_SECURITY_POLICY), "mutual_tls");
	assert_int_equal(wp_metrics_load(&h->requests), 1);
	assert_int_equal(wp_metrics_load(&h->duration.sum), 7300);
	assert_int_equal(wp_metrics_load(&h->duration.bucket[2]), 0); /* le 5 ms */
	assert_int_equal(wp_metrics_load(&h->duration.bucket[3]), 1); /* 7.3 ms: le 10 */
	assert_int_equal(wp_metrics_load(&h->req_bytes.sum), 100);
	assert_int_equal(wp_metrics_load(&h->resp_bytes.sum), 2000);
}

static void test_labels_unknown(void **state)
{
	struct wp_pipe_conn c;
	const struct wp_metrics_labels *l;

	(void)state;
	/* no identity, no baggage: what Istio writes for an unknown peer */
	conn_init(&c, NULL, NULL, &reviews);
	exchange(&c, false, 404, -1, WP_PIPE_F(NR), 10, NULL, NULL);
	l = &last_http()->labels;
	assert_string_equal(lab(l, WP_ML_SOURCE_WORKLOAD), "unknown");
	assert_string_equal(lab(l, WP_ML_SOURCE_WORKLOAD_NAMESPACE), "unknown");
	assert_string_equal(lab(l, WP_ML_SOURCE_PRINCIPAL), "unknown");
	assert_string_equal(lab(l, WP_ML_SOURCE_APP), "unknown");
	assert_string_equal(lab(l, WP_ML_SOURCE_VERSION), "unknown");
	assert_string_equal(lab(l, WP_ML_SOURCE_CANONICAL_SERVICE), "unknown");
	assert_string_equal(lab(l, WP_ML_SOURCE_CANONICAL_REVISION), "latest");
	assert_string_equal(lab(l, WP_ML_SOURCE_CLUSTER), "unknown");
	/* a local answer: the CONNECT's Service, no endpoint */
	assert_string_equal(lab(l, WP_ML_DESTINATION_SERVICE), "reviews.default.svc.cluster.local");
	assert_string_equal(lab(l, WP_ML_DESTINATION_WORKLOAD_NAMESPACE), "unknown");
	assert_string_equal(lab(l, WP_ML_DESTINATION_PRINCIPAL), "unknown");
	assert_string_equal(lab(l, WP_ML_RESPONSE_CODE), "404");
	assert_string_equal(lab(l, WP_ML_RESPONSE_FLAGS), "NR");
	assert_string_equal(lab(l, WP_ML_CONNECTION_SECURITY_POLICY), "none");

	/* baggage only, with spaces, properties, app.* and empty values; the
	 * namespace from the baggage when the identity has none */
	conn_init(&c, NULL,
	          " k8s.pod.name = ratings-x ;p=1,k8s.namespace.name=ops,app.name=rt,"
	          "app.version=,service.version=v9,k8s.cluster.name=",
	          &reviews);
	exchange(&c, false, 200, -1, 0, 10, NULL, NULL);
	l = &last_http()->labels;
	assert_string_equal(lab(l, WP_ML_SOURCE_WORKLOAD), "ratings-x");
	assert_string_equal(lab(l, WP_ML_SOURCE_WORKLOAD_NAMESPACE), "ops");
	assert_string_equal(lab(l, WP_ML_SOURCE_APP), "rt");
	assert_string_equal(lab(l, WP_ML_SOURCE_VERSION), "v9");
	assert_string_equal(lab(l, WP_ML_SOURCE_CANONICAL_SERVICE), "unknown");
	assert_string_equal(lab(l, WP_ML_SOURCE_CANONICAL_REVISION), "v9");
	assert_string_equal(lab(l, WP_ML_SOURCE_CLUSTER), "unknown");
}

static void test_codes_grpc_and_flags(void **state)
{
	struct wp_pipe_conn c;
	const struct wp_metrics_labels *l;
	uint64_t before;

	(void)state;
	conn_init(&c, "cluster.local/ns/default/sa/a", baggage, &reviews);
	/* gRPC: the status seen; none seen: Envoy's mapping of the HTTP status */
	exchange(&c, true, 200, 5, 0, 10, NULL, NULL);
	l = &last_http()->labels;
	assert_string_equal(lab(l, WP_ML_REQUEST_PROTOCOL), "grpc");
	assert_string_equal(lab(l, WP_ML_GRPC_RESPONSE_STATUS), "5");
	exchange(&c, true, 503, -1, WP_PIPE_F(UH), 10, NULL, NULL);
	l = &last_http()->labels;
	assert_string_equal(lab(l, WP_ML_GRPC_RESPONSE_STATUS), "14");
	assert_string_equal(lab(l, WP_ML_RESPONSE_FLAGS), "UH");
	exchange(&c, true, 200, -1, 0, 10, NULL, NULL);
	assert_string_equal(lab(&last_http()->labels, WP_ML_GRPC_RESPONSE_STATUS), "2");
	/* flags in Envoy's order, joined with "," */
	exchange(&c, false, 503, -1, WP_PIPE_F(URX) | WP_PIPE_F(UF), 10, NULL, NULL);
	assert_string_equal(lab(&last_http()->labels, WP_ML_RESPONSE_FLAGS), "UF,URX");
	exchange(&c, false, 0, -1, WP_PIPE_F(DC), 10, NULL, NULL);
	l = &last_http()->labels;
	assert_string_equal(lab(l, WP_ML_RESPONSE_CODE), "0");
	assert_string_equal(lab(l, WP_ML_RESPONSE_FLAGS), "DC");
	exchange(&c, false, 504, -1, WP_PIPE_F(UT), 10, NULL, NULL);
	assert_string_equal(lab(&last_http()->labels, WP_ML_RESPONSE_FLAGS), "UT");
	/* the same exchange again: the same series, counted twice */
	before = wp_metrics_n_http(cells);
	exchange(&c, false, 504, -1, WP_PIPE_F(UT), 10, NULL, NULL);
	assert_int_equal(wp_metrics_n_http(cells), before);
	assert_int_equal(wp_metrics_load(&last_http()->requests), 2);
	assert_int_equal(total_requests(), 7);
	/* a record never begun (no labels: no cells) records nothing */
	{
		struct wp_pipe_conn none = {.core = &core};
		struct wp_pipe_rec r;

		wp_pipe_rec_begin(&none, &r, false);
		wp_pipe_rec_end(&none, &r, NULL);
		wp_pipe_rec_begin(NULL, &r, false);
		wp_pipe_rec_end(NULL, &r, NULL);
	}
	assert_int_equal(total_requests(), 7);
	assert_int_equal(wp_pipe_http_to_grpc(404), 12);
	assert_int_equal(wp_pipe_http_to_grpc(403), 7);
	assert_int_equal(wp_pipe_http_to_grpc(500), 2);
}

/* A connection keeps the series of its last request: a request that ends
 * the same way reuses it, one that differs in any label it sets does not,
 * and new connection labels (wp_pipe_conn_labels again) drop it. */
static void test_series_cache(void **state)
{
	struct wp_pipe_conn c;
	struct wp_snap_endpoint e1 = {.ns = "default", .service_account = "sa1"},
	                        e2 = {.ns = "default", .service_account = "sa2"};
	struct wp_route_cluster cl = {.svc_ns = "default", .svc_name = "ratings"};
	const struct wp_metrics_http *a, *b;

	(void)state;
	conn_init(&c, "cluster.local/ns/default/sa/a", baggage, &reviews);
	exchange(&c, false, 200, -1, 0, 10, &cl, &e1);
	a = last_http();
	exchange(&c, false, 200, -1, 0, 10, &cl, &e1);
	assert_ptr_equal(last_http(), a);
	assert_int_equal(wp_metrics_load(&a->requests), 2);
	/* another endpoint, then back */
	exchange(&c, false, 200, -1, 0, 10, &cl, &e2);
	b = last_http();
	assert_ptr_not_equal(b, a);
	assert_string_equal(lab(&b->labels, WP_ML_DESTINATION_PRINCIPAL),
	                    "spiffe://cluster.local/ns/default/sa/sa2");
	exchange(&c, false, 200, -1, 0, 10, &cl, &e1);
	assert_int_equal(wp_metrics_load(&a->requests), 3);
	/* no endpoint (a local answer), other code, other flags, gRPC */
	exchange(&c, false, 200, -1, 0, 10, &cl, NULL);
	assert_string_equal(lab(&last_http()->labels, WP_ML_DESTINATION_PRINCIPAL), "unknown");
	exchange(&c, false, 503, -1, 0, 10, &cl, &e1);
	assert_string_equal(lab(&last_http()->labels, WP_ML_RESPONSE_CODE), "503");
	exchange(&c, false, 503, -1, WP_PIPE_F(UO), 10, &cl, &e1);
	assert_string_equal(lab(&last_http()->labels, WP_ML_RESPONSE_FLAGS), "UO");
	exchange(&c, true, 503, -1, WP_PIPE_F(UO), 10, &cl, &e1);
	assert_string_equal(lab(&last_http()->labels, WP_ML_REQUEST_PROTOCOL), "grpc");
	assert_int_equal(wp_metrics_load(&a->requests), 3);
	/* the connection labelled again (another identity): a new series */
	c.principal = "cluster.local/ns/default/sa/b";
	c.principal_len = (uint32_t)strlen(c.principal);
	wp_pipe_conn_labels(&c, baggage, strlen(baggage), &reviews, NULL);
	exchange(&c, false, 200, -1, 0, 10, &cl, &e1);
	assert_ptr_not_equal(last_http(), a);
	assert_string_equal(lab(&last_http()->labels, WP_ML_SOURCE_PRINCIPAL),
	                    "spiffe://cluster.local/ns/default/sa/b");
	assert_int_equal(wp_metrics_load(&a->requests), 3);
	assert_int_equal(total_requests(), 9);
}

/* The destination caches hold ids for one snapshot generation: an endpoint
 * object at the same address in a new snapshot is looked at again. */
static void test_dest_cache_generations(void **state)
{
	struct wp_pipe_conn c;
	struct wp_snap_endpoint ep = {.ns = "default", .service_account = "sa1"};
	struct wp_route_cluster cl = {.svc_ns = "default", .svc_name = "ratings"};

	(void)state;
	conn_init(&c, NULL, NULL, &reviews);
	exchange(&c, false, 200, -1, 0, 10, &cl, &ep);
	assert_string_equal(lab(&last_http()->labels, WP_ML_DESTINATION_PRINCIPAL),
	                    "spiffe://cluster.local/ns/default/sa/sa1");
	/* no Istio cluster name: the hostname from the cluster domain */
	assert_string_equal(lab(&last_http()->labels, WP_ML_DESTINATION_SERVICE),
	                    "ratings.default.svc.cluster.local");
	ep.service_account = "sa2";
	cl.svc_name = "details";
	exchange(&c, false, 200, -1, 0, 10, &cl, &ep); /* same generation: cached */
	assert_string_equal(lab(&last_http()->labels, WP_ML_DESTINATION_PRINCIPAL),
	                    "spiffe://cluster.local/ns/default/sa/sa1");
	wp_pipe_core_clock(&core, 1000000, 2);
	exchange(&c, false, 200, -1, 0, 10, &cl, &ep);
	assert_string_equal(lab(&last_http()->labels, WP_ML_DESTINATION_PRINCIPAL),
	                    "spiffe://cluster.local/ns/default/sa/sa2");
	assert_string_equal(lab(&last_http()->labels, WP_ML_DESTINATION_SERVICE_NAME), "details");
}

static void test_tcp(void **state)
{
	struct wp_pipe_conn a, b;
	struct wp_snap_endpoint ep = {.ns = "db", .service_account = "mysql"};
	const struct wp_metrics_tcp *t;

	(void)state;
	conn_init(&a, "cluster.local/ns/default/sa/a", baggage, &reviews);
	conn_init(&b, "cluster.local/ns/default/sa/a", baggage, &reviews);
	wp_pipe_tcp_dest(&a, NULL, &ep);
	wp_pipe_tcp_dest(&b, NULL, &ep);
	wp_pipe_tcp_bytes(&a, 5, 5); /* not open yet: nothing */
	wp_pipe_tcp_open(&a);
	wp_pipe_tcp_open(&a); /* once */
	wp_pipe_tcp_open(&b);
	wp_pipe_tcp_bytes(&a, 10, 3);
	wp_pipe_tcp_bytes(&b, 1, 2);
	assert_int_equal(wp_metrics_n_tcp(cells), 2); /* overflow + one series */
	t = wp_metrics_tcp_at(cells, 1);
	assert_int_equal(wp_metrics_load(&t->opened), 2);
	assert_int_equal(wp_metrics_load(&t->closed), 0);
	assert_int_equal(wp_metrics_load(&t->sent), 11);
	assert_int_equal(wp_metrics_load(&t->received), 5);
	wp_pipe_tcp_close(&a);
	wp_pipe_tcp_close(&a);
	wp_pipe_tcp_close(&b);
	assert_int_equal(wp_metrics_load(&t->closed), 2);
	assert_string_equal(lab(&t->labels, WP_ML_REQUEST_PROTOCOL), "tcp");
	assert_string_equal(lab(&t->labels, WP_ML_DESTINATION_PRINCIPAL),
	                    "spiffe://cluster.local/ns/db/sa/mysql");
	assert_string_equal(lab(&t->labels, WP_ML_RESPONSE_FLAGS), "-");
	assert_int_equal(wp_metrics_n_http(cells), 1); /* no HTTP series */
}

/* An endpoint a Pod backs gives the destination workload and canonical
 * labels, app / version being the canonical values; one without a Pod
 * leaves them unknown. A CONNECT to a workload takes them at once. */
static void test_dest_pod_labels(void **state)
{
	struct wp_pipe_conn c, w;
	struct wp_snap_endpoint ep = {.ns = "default",
	                              .service_account = "bookinfo-reviews",
	                              .workload = "reviews-v2",
	                              .canonical_name = "reviews",
	                              .canonical_revision = "v2"};
	struct wp_snap_endpoint bare = {.ns = "default"};
	struct wp_snap_workload wl = {.ns = "shop",
	                              .service_account = "cart",
	                              .workload = "cart",
	                              .canonical_name = "cart-svc",
	                              .canonical_revision = "latest"};
	struct wp_route_cluster cl = {.svc_ns = "default", .svc_name = "reviews"};
	const struct wp_metrics_labels *l;

	(void)state;
	conn_init(&c, NULL, NULL, &reviews);
	exchange(&c, false, 200, -1, 0, 10, &cl, &ep);
	l = &last_http()->labels;
	assert_string_equal(lab(l, WP_ML_DESTINATION_WORKLOAD), "reviews-v2");
	assert_string_equal(lab(l, WP_ML_DESTINATION_WORKLOAD_NAMESPACE), "default");
	assert_string_equal(lab(l, WP_ML_DESTINATION_CANONICAL_SERVICE), "reviews");
	assert_string_equal(lab(l, WP_ML_DESTINATION_APP), "reviews");
	assert_string_equal(lab(l, WP_ML_DESTINATION_CANONICAL_REVISION), "v2");
	assert_string_equal(lab(l, WP_ML_DESTINATION_VERSION), "v2");
	exchange(&c, false, 200, -1, 0, 10, &cl, &bare);
	l = &last_http()->labels;
	assert_string_equal(lab(l, WP_ML_DESTINATION_WORKLOAD), "unknown");
	assert_string_equal(lab(l, WP_ML_DESTINATION_APP), "unknown");
	assert_string_equal(lab(l, WP_ML_DESTINATION_CANONICAL_REVISION), "unknown");
	assert_string_equal(lab(l, WP_ML_DESTINATION_WORKLOAD_NAMESPACE), "default");

	memset(&w, 0, sizeof(w));
	w.core = &core;
	wp_pipe_conn_labels(&w, NULL, 0, NULL, &wl);
	assert_string_equal(lab(&w.ml, WP_ML_DESTINATION_WORKLOAD), "cart");
	assert_string_equal(lab(&w.ml, WP_ML_DESTINATION_APP), "cart-svc");
	assert_string_equal(lab(&w.ml, WP_ML_DESTINATION_VERSION), "latest");
	assert_string_equal(lab(&w.ml, WP_ML_DESTINATION_PRINCIPAL),
	                    "spiffe://cluster.local/ns/shop/sa/cart");
}

/* metrics.enabled false: the host clears record; nothing is recorded for
 * HTTP exchanges nor opaque TCP, and (no access log) a request is not
 * even begun. */
static void test_record_off(void **state)
{
	struct wp_pipe_conn c;
	struct wp_pipe_rec r;
	struct wp_snap_endpoint ep = {.ns = "db", .service_account = "mysql"};

	(void)state;
	core.record = false;
	conn_init(&c, "cluster.local/ns/default/sa/a", baggage, &reviews);
	wp_pipe_rec_begin(&c, &r, false);
	assert_false(r.active);
	exchange(&c, false, 200, -1, 0, 10, NULL, &ep);
	wp_pipe_tcp_dest(&c, NULL, &ep);
	wp_pipe_tcp_open(&c);
	wp_pipe_tcp_bytes(&c, 10, 3);
	wp_pipe_tcp_close(&c);
	assert_int_equal(total_requests(), 0);
	assert_int_equal(wp_metrics_n_tcp(cells), 1);  /* the overflow series only */
	assert_int_equal(wp_metrics_n_http(cells), 1); /* likewise */
}

/* The access-log lines the completion stage writes (through the core's
 * ring and the writer thread into a file), for an HTTP/1.1 exchange to an
 * endpoint, a local h2 answer and an opaque TCP connection, in Istio's
 * text format and in JSON: every field from the record, the request's
 * view, the connection and the snapshot's cluster name. */
static void log_three(bool json, char *out, size_t cap)
{
	uint64_t lctr[WP_CTR_MAX] = {0};
	struct wp_alog_ring *ring = wp_alog_ring_create(64, lctr);
	char path[] = "/tmp/wp-pobs-XXXXXX";
	int fd = mkstemp(path);
	struct wp_alog_writer *w;
	struct wp_pipe_conn c;
	struct wp_pipe_rec r;
	struct wp_snap_endpoint ep = {.ns = "default", .service_account = "reviews", .port = 9080};
	struct wp_route_cluster cl = {.name = "outbound|9080|v2|reviews.default.svc.cluster.local",
	                              .svc_ns = "default",
	                              .svc_name = "reviews"};
	struct wp_pipe_log_view v = {.method = "POST",
	                             .method_len = 4,
	                             .path = "/reviews/0?q=\"1\"",
	                             .path_len = 16,
	                             .authority = "reviews:9080",
	                             .authority_len = 12,
	                             .user_agent = "curl/8.5",
	                             .user_agent_len = 8,
	                             .request_id = "4e43168a-01e6-907c-ba17-2f72fad816a8",
	                             .request_id_len = 36,
	                             .xff = "10.1.2.3",
	                             .xff_len = 8,
	                             .proto = WP_ALOG_HTTP11};
	FILE *f;
	size_t n;

	assert_non_null(ring);
	assert_true(fd >= 0);
	close(fd);
	w = wp_alog_writer_start(&ring, 1, path, json);
	assert_non_null(w);
	ep.addr.family = WP_AF_INET;
	ep.addr.v4 = htonl(0x0a00020b); /* 10.0.2.11 */
	/* 1,000,000 µs on the loop clock is 2020-11-25T21:26:18.409Z */
	wp_pipe_core_set_alog(&core, ring, true, 1606339578409000ll - 1000000);
	conn_init(&c, "cluster.local/ns/default/sa/productpage", baggage, &reviews);
	c.dst.family = WP_AF_INET;
	c.dst.v4 = htonl(0xc613000b); /* 198.19.0.11 */
	c.dst_port = 9080;
	c.remote.family = WP_AF_INET;
	c.remote.v4 = htonl(0x0af40009); /* 10.244.0.9 */
	wp_pipe_core_clock(&core, 1000000, core.gen);
	wp_pipe_rec_begin(&c, &r, false);
	wp_pipe_rec_dest(&c, &r, &cl, &ep);
	r.status = 200;
	r.req_bytes = 1024;
	r.resp_bytes = 2048;
	wp_pipe_core_clock(&core, 1012345, core.gen);
	wp_pipe_rec_end(&c, &r, &v);
	/* no route: answered here, over h2, without user agent nor xff */
	wp_pipe_rec_begin(&c, &r, false);
	r.status = 404;
	r.flags = WP_PIPE_F(NR);
	v.proto = WP_ALOG_HTTP2;
	v.method = "GET";
	v.method_len = 3;
	v.user_agent = v.xff = NULL;
	v.user_agent_len = v.xff_len = 0;
	wp_pipe_core_clock(&core, 1012845, core.gen);
	wp_pipe_rec_end(&c, &r, &v);
	/* opaque TCP, 2 s */
	wp_pipe_tcp_dest(&c, &cl, &ep);
	wp_pipe_tcp_open(&c);
	wp_pipe_tcp_bytes(&c, 2999, 3000);
	wp_pipe_core_clock(&core, 3012845, core.gen);
	wp_pipe_tcp_close(&c);
	wp_alog_writer_stop(w);
	wp_pipe_core_set_alog(&core, NULL, false, 0);
	wp_alog_ring_destroy(ring);
	assert_int_equal(lctr[WP_CTR_ACCESS_LOG_DROPPED], 0);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	fclose(f);
	unlink(path);
}

static void test_access_log_lines(void **state)
{
	static char buf[8192];

	(void)state;
	log_three(false, buf, sizeof(buf));
	assert_string_equal(
	        buf,
	        "[2020-11-25T21:26:18.409Z] \"POST /reviews/0?q=\\x221\\x22 HTTP/1.1\" 200 - - - "
	        "\"-\" 1024 2048 12 - \"10.1.2.3\" \"curl/8.5\" "
	        "\"4e43168a-01e6-907c-ba17-2f72fad816a8\" \"reviews:9080\" \"10.0.2.11:9080\" "
	        "outbound|9080|v2|reviews.default.svc.cluster.local - 198.19.0.11:9080 10.244.0.9 "
	        "- -\n"
	        "[2020-11-25T21:26:18.421Z] \"GET /reviews/0?q=\\x221\\x22 HTTP/2\" 404 NR - - "
	        "\"-\" 0 0 0 - \"-\" \"-\" \"4e43168a-01e6-907c-ba17-2f72fad816a8\" "
	        "\"reviews:9080\" \"-\" - - 198.19.0.11:9080 10.244.0.9 - -\n"
	        "[2020-11-25T21:26:18.421Z] \"- - -\" 0 - - - \"-\" 3000 2999 2000 - \"-\" \"-\" "
	        "\"-\" \"-\" \"10.0.2.11:9080\" outbound|9080|v2|reviews.default.svc.cluster.local "
	        "- 198.19.0.11:9080 10.244.0.9 - -\n");
	log_three(true, buf, sizeof(buf));
	assert_string_equal(
	        buf, "{\"start_time\":\"2020-11-25T21:26:18.409Z\",\"method\":\"POST\",\"path\":"
	             "\"/reviews/0?q=\\\"1\\\"\",\"protocol\":\"HTTP/1.1\",\"response_code\":200,"
	             "\"response_flags\":\"-\",\"response_code_details\":null,"
	             "\"connection_termination_details\":null,"
	             "\"upstream_transport_failure_reason\":null,\"bytes_received\":1024,"
	             "\"bytes_sent\":2048,\"duration\":12,\"upstream_service_time\":null,"
	             "\"x_forwarded_for\":\"10.1.2.3\",\"user_agent\":\"curl/8.5\","
	             "\"request_id\":\"4e43168a-01e6-907c-ba17-2f72fad816a8\","
	             "\"authority\":\"reviews:9080\",\"upstream_host\":\"10.0.2.11:9080\","
	             "\"upstream_cluster\":\"outbound|9080|v2|reviews.default.svc.cluster.local\","
	             "\"upstream_local_address\":null,\"downstream_local_address\":"
	             "\"198.19.0.11:9080\",\"downstream_remote_address\":\"10.244.0.9\","
	             "\"requested_server_name\":null,\"route_name\":null}\n"
	             "{\"start_time\":\"2020-11-25T21:26:18.421Z\",\"method\":\"GET\",\"path\":"
	             "\"/reviews/0?q=\\\"1\\\"\",\"protocol\":\"HTTP/2\",\"response_code\":404,"
	             "\"response_flags\":\"NR\",\"response_code_details\":null,"
	             "\"connection_termination_details\":null,"
	             "\"upstream_transport_failure_reason\":null,\"bytes_received\":0,"
	             "\"bytes_sent\":0,\"duration\":0,\"upstream_service_time\":null,"
	             "\"x_forwarded_for\":null,\"user_agent\":null,"
	             "\"request_id\":\"4e43168a-01e6-907c-ba17-2f72fad816a8\","
	             "\"authority\":\"reviews:9080\",\"upstream_host\":null,"
	             "\"upstream_cluster\":null,"
	             "\"upstream_local_address\":null,\"downstream_local_address\":"
	             "\"198.19.0.11:9080\",\"downstream_remote_address\":\"10.244.0.9\","
	             "\"requested_server_name\":null,\"route_name\":null}\n"
	             "{\"start_time\":\"2020-11-25T21:26:18.421Z\",\"method\":null,\"path\":null,"
	             "\"protocol\":null,\"response_code\":0,"
	             "\"response_flags\":\"-\",\"response_code_details\":null,"
	             "\"connection_termination_details\":null,"
	             "\"upstream_transport_failure_reason\":null,\"bytes_received\":3000,"
	             "\"bytes_sent\":2999,\"duration\":2000,\"upstream_service_time\":null,"
	             "\"x_forwarded_for\":null,\"user_agent\":null,\"request_id\":null,"
	             "\"authority\":null,\"upstream_host\":\"10.0.2.11:9080\","
	             "\"upstream_cluster\":\"outbound|9080|v2|reviews.default.svc.cluster.local\","
	             "\"upstream_local_address\":null,\"downstream_local_address\":"
	             "\"198.19.0.11:9080\",\"downstream_remote_address\":\"10.244.0.9\","
	             "\"requested_server_name\":null,\"route_name\":null}\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_labels_from_identity_and_baggage, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_labels_unknown, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_codes_grpc_and_flags, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_series_cache, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dest_cache_generations, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_tcp, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dest_pod_labels, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_record_off, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_access_log_lines, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
