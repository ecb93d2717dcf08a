/*
 * The request pipeline's completion stage (dp/l7/pipeline_obs.c): the label
 * set of a connection from its peer identity and the CONNECT's baggage
 * (Istio's rules, "unknown" / "latest" where Istio writes them), the
 * destination from the route cluster and endpoint (and the per-core caches
 * across snapshot generations), response codes, gRPC statuses, Envoy's
 * response flags, one record per exchange, opaque TCP series, the
 * destination workload labels from an endpoint's Pod, and nothing recorded
 * with metrics off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dp/l7/pipeline.h"
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
static void exchange(const struct wp_pipe_conn *c, bool grpc, uint16_t status, int16_t gs,
                     uint16_t flags, uint64_t dur, const struct wp_route_cluster *cl,
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_labels_from_identity_and_baggage, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_labels_unknown, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_codes_grpc_and_flags, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dest_cache_generations, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_tcp, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dest_pod_labels, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_record_off, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
