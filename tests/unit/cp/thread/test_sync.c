/*
 * The control-plane runner publishes nothing before every source has
 * reported its first full sync (cp/thread/cp.c). A scripted source stands in
 * for the Kubernetes one: it delivers its objects and reports synced only
 * when the test releases it (from another thread, through an eventfd, as
 * the real source does).
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "wp/cp.h"
#include "wp/snapshot.h"
#include "wp/source.h"

static const char CLUSTER[] = "apiVersion: v1\n"
                              "kind: Namespace\n"
                              "metadata: {name: default, labels: {istio.io/use-waypoint: wp}}\n"
                              "---\n"
                              "apiVersion: gateway.networking.k8s.io/v1\n"
                              "kind: Gateway\n"
                              "metadata: {name: wp, namespace: default}\n"
                              "spec:\n"
                              "  gatewayClassName: waypointd\n"
                              "  listeners: [{name: mesh, port: 15008, protocol: HBONE}]\n"
                              "---\n"
                              "apiVersion: v1\n"
                              "kind: Service\n"
                              "metadata: {name: early, namespace: default}\n"
                              "spec: {clusterIP: 198.19.0.2, ports: [{name: http, port: 80}]}\n"
                              "---\n"
                              "apiVersion: v1\n"
                              "kind: Service\n"
                              "metadata: {name: a, namespace: default}\n"
                              "spec: {clusterIP: 198.19.0.1, ports: [{name: http, port: 80}]}\n";

/* A source that lists in two halves: the Namespace, the Gateway and Service
 * early at once, Service a and the synced report only after release. Until
 * then it says Services are still listing (ops->state). */
struct slow_source {
	struct wp_source base;
	int efd;
	volatile int released;
	int stage;
};

static int slow_start(struct wp_source *src, const struct wp_source_sink *sink)
{
	src->sink = sink;
	return 0;
}

static int slow_fd(struct wp_source *src)
{
	return ((struct slow_source *)src)->efd;
}

static int slow_poll(struct wp_source *src)
{
	struct slow_source *s = (struct slow_source *)src;
	const char *svc = strstr(CLUSTER, "---\napiVersion: v1\nkind: Service\nmetadata: {name: a");
	uint64_t n;

	if (read(s->efd, &n, sizeof(n)) < 0) {
		/* nothing signalled */
	}
	if (s->stage == 0) {
		/* the first half of the list */
		assert_int_equal(
		        wp_source_deliver_text(src->sink, "slow", CLUSTER, (size_t)(svc - CLUSTER)),
		        3);
		s->stage = 1;
	}
	if (s->stage == 1 && __atomic_load_n(&s->released, __ATOMIC_ACQUIRE)) {
		assert_int_equal(wp_source_deliver_text(src->sink, "slow", svc, strlen(svc)), 1);
		src->sink->ops->synced(src->sink->ctx, "slow");
		s->stage = 2;
	}
	return 1;
}

static void slow_state(struct wp_source *src, struct wp_source_state *st)
{
	struct slow_source *s = (struct slow_source *)src;

	memset(st, 0, sizeof(*st));
	if (s->stage < 2) {
		st->lagging[0] = "Service";
		st->why[0] = "listing";
		st->n_lagging = 1;
	}
}

static void slow_destroy(struct wp_source *src)
{
	struct slow_source *s = (struct slow_source *)src;

	close(s->efd);
	free(s);
}

static const struct wp_source_ops slow_ops = {
        .name = "slow",
        .start = slow_start,
        .fd = slow_fd,
        .poll = slow_poll,
        .state = slow_state,
        .destroy = slow_destroy,
};

static struct slow_source *slow_create(void)
{
	struct slow_source *s = calloc(1, sizeof(*s));
	uint64_t one = 1;

	assert_non_null(s);
	s->base.ops = &slow_ops;
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(s->efd >= 0);
	assert_int_equal(write(s->efd, &one, sizeof(one)), sizeof(one)); /* first half ready */
	return s;
}

static void release(struct slow_source *s)
{
	uint64_t one = 1;

	__atomic_store_n(&s->released, 1, __ATOMIC_RELEASE);
	assert_int_equal(write(s->efd, &one, sizeof(one)), sizeof(one));
}

static int http_get(uint16_t port, const char *path, char *body, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	char req[256], buf[1 << 16];
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), st = -1;
	ssize_t n;
	char *sep;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	             path);
	assert_int_equal(write(fd, req, (size_t)n), n);
	while ((n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	sscanf(buf, "HTTP/1.1 %d", &st);
	sep = strstr(buf, "\r\n\r\n");
	snprintf(body, len, "%s", sep ? sep + 4 : "");
	return st;
}

static const struct wp_snapshot *wait_published(struct wp_cp *cp, unsigned ms)
{
	const struct wp_snapshot *s = NULL;

	for (unsigned i = 0; i < ms / 5 && !s; i++) {
		s = wp_snapshot_slot_current(wp_cp_slot(cp));
		if (!s)
			usleep(5000);
	}
	return s;
}

static struct wp_cp *make_cp(unsigned sync_wait_ms)
{
	static const char *const gws[] = {"default/wp"};
	struct wp_cp_config cfg = {
	        .served = {.n_gateways = 1, .gateways = gws},
	        .admin_port = 0,
	        .n_workers = 1,
	        .debounce_ms = 10,
	        .sync_wait_ms = sync_wait_ms,
	};

	return wp_cp_create(&cfg);
}

/* The wait runs out: start returns without a snapshot, the admin endpoint
 * says not ready, and the first snapshot appears, complete, once the source
 * syncs. */
static void test_no_publication_before_sync(void **state)
{
	(void)state;
	static char body[1 << 16];
	struct wp_cp *cp = make_cp(300);
	struct slow_source *src = slow_create();
	const struct wp_snapshot *s;
	json_t *j;

	assert_non_null(cp);
	assert_int_equal(wp_cp_add_source(cp, &src->base), 0);
	assert_int_equal(wp_cp_start(cp), 0);
	assert_null(wp_snapshot_slot_current(wp_cp_slot(cp)));
	assert_int_equal(http_get(wp_cp_admin_port(cp), "/healthz/ready", body, sizeof(body)), 503);
	assert_int_equal(http_get(wp_cp_admin_port(cp), "/config_dump", body, sizeof(body)), 200);
	j = json_loads(body, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_false(json_object_get(j, "synced")));
	assert_true(json_is_null(json_object_get(j, "snapshot")) ||
	            json_object_get(j, "snapshot") == NULL);
	json_decref(j);
	/* half the list has been delivered for a while: still nothing */
	usleep(200000);
	assert_null(wp_snapshot_slot_current(wp_cp_slot(cp)));

	release(src);
	s = wait_published(cp, 2000);
	assert_non_null(s);
	assert_int_equal(s->version, 1);
	assert_int_equal(s->n_services, 2); /* the second half is in the first snapshot */
	assert_int_equal(http_get(wp_cp_admin_port(cp), "/healthz/ready", body, sizeof(body)), 200);
	assert_int_equal(http_get(wp_cp_admin_port(cp), "/config_dump", body, sizeof(body)), 200);
	j = json_loads(body, 0, NULL);
	assert_true(json_is_true(json_object_get(j, "synced")));
	assert_true(json_is_true(
	        json_object_get(json_array_get(json_object_get(j, "sources"), 0), "synced")));
	json_decref(j);
	wp_cp_destroy(cp);
}

static void *release_later(void *arg)
{
	usleep(100000);
	release(arg);
	return NULL;
}

/* A sync that completes during the wait: start returns with the first
 * snapshot published, and it holds the whole list. */
static void test_start_waits_for_sync(void **state)
{
	(void)state;
	struct wp_cp *cp = make_cp(5000);
	struct slow_source *src = slow_create();
	const struct wp_snapshot *s;
	struct timespec t0, t1;
	pthread_t th;

	assert_non_null(cp);
	assert_int_equal(wp_cp_add_source(cp, &src->base), 0);
	assert_int_equal(pthread_create(&th, NULL, release_later, src), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(wp_cp_start(cp), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_join(th, NULL);
	s = wp_snapshot_slot_current(wp_cp_slot(cp));
	assert_non_null(s);
	assert_int_equal(s->version, 1);
	assert_int_equal(s->n_services, 2);
	/* it waited for the release, not for the whole bound */
	double el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(el >= 0.09 && el < 4.0);
	wp_cp_destroy(cp);
}

/* Two sources: one that syncs at start (like the manifest directory) does
 * not let the runner publish while the other is still listing. */
static void test_every_source_must_sync(void **state)
{
	(void)state;
	struct wp_cp *cp = make_cp(200);
	struct slow_source *a = slow_create(), *b = slow_create();

	/* a is released before start: it syncs on its first polls */
	release(a);
	assert_int_equal(wp_cp_add_source(cp, &a->base), 0);
	assert_int_equal(wp_cp_add_source(cp, &b->base), 0);
	assert_int_equal(wp_cp_start(cp), 0);
	assert_null(wp_snapshot_slot_current(wp_cp_slot(cp)));
	release(b);
	assert_non_null(wait_published(cp, 2000));
	wp_cp_destroy(cp);
}

static json_t *get_json(struct wp_cp *cp, const char *path)
{
	static char body[1 << 16];
	json_t *j;

	assert_int_equal(http_get(wp_cp_admin_port(cp), path, body, sizeof(body)), 200);
	j = json_loads(body, 0, NULL);
	assert_non_null(j);
	return j;
}

/* The rows of /enrollment by name ("Service/default/a ..."), for asserts. */
static void row_names(json_t *view, char *buf, size_t len)
{
	json_t *r;
	size_t i, off = 0;

	buf[0] = '\0';
	json_array_foreach(json_object_get(view, "rows"), i, r) off +=
	        (size_t)snprintf(buf + off, len - off, "%s%s/%s/%s", off ? " " : "",
	                         json_string_value(json_object_get(r, "kind")),
	                         json_string_value(json_object_get(r, "namespace")),
	                         json_string_value(json_object_get(r, "name")));
}

/* /enrollment and /config_dump show what the workers run (nothing before
 * the first snapshot) and say what is not current; the half-listed store
 * only with ?view=store, labelled as such. */
static void test_views_follow_the_snapshot(void **state)
{
	(void)state;
	struct wp_cp *cp = make_cp(200);
	struct slow_source *src = slow_create();
	json_t *j, *lag;
	char names[256];

	assert_non_null(cp);
	assert_int_equal(wp_cp_add_source(cp, &src->base), 0);
	assert_int_equal(wp_cp_start(cp), 0);

	j = get_json(cp, "/enrollment");
	assert_string_equal(json_string_value(json_object_get(j, "view")), "none");
	assert_true(json_is_null(json_object_get(j, "snapshot_version")));
	assert_int_equal(json_array_size(json_object_get(j, "rows")), 0);
	lag = json_object_get(j, "lagging");
	assert_int_equal(json_array_size(lag), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(lag, 0), "kind")),
	                    "Service");
	assert_string_equal(json_string_value(json_object_get(json_array_get(lag, 0), "state")),
	                    "listing");
	assert_non_null(strstr(json_string_value(json_object_get(j, "note")), "Service (listing)"));
	json_decref(j);

	j = get_json(cp, "/enrollment?view=store");
	assert_string_equal(json_string_value(json_object_get(j, "view")), "store");
	row_names(j, names, sizeof(names));
	assert_string_equal(names, "Service/default/early");
	json_decref(j);

	j = get_json(cp, "/config_dump");
	assert_string_equal(json_string_value(json_object_get(j, "view")), "none");
	assert_null(json_object_get(j, "objects")); /* the store's counts: on request */
	json_decref(j);
	j = get_json(cp, "/config_dump?view=store");
	assert_int_equal(
	        json_integer_value(json_object_get(json_object_get(j, "objects"), "Service")), 1);
	json_decref(j);

	release(src);
	assert_non_null(wait_published(cp, 2000));
	j = get_json(cp, "/enrollment");
	assert_string_equal(json_string_value(json_object_get(j, "view")), "snapshot");
	assert_int_equal(json_integer_value(json_object_get(j, "snapshot_version")), 1);
	assert_int_equal(json_array_size(json_object_get(j, "lagging")), 0);
	row_names(j, names, sizeof(names));
	assert_string_equal(names, "Service/default/a Service/default/early");
	json_decref(j);
	wp_cp_destroy(cp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_no_publication_before_sync),
	        cmocka_unit_test(test_start_waits_for_sync),
	        cmocka_unit_test(test_every_source_must_sync),
	        cmocka_unit_test(test_views_follow_the_snapshot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
