/*
 * RCU publication under stress (run under ASan: a snapshot freed too early
 * is a use-after-free report), plus the control-plane runner's admin
 * endpoint against conf/cluster.
 *
 * Stress: 1,000 reloads (a Pod relabelled, rebuilt, published) while reader
 * threads spin on wp_snapshot_get()/wp_snapshot_quiescent() and check each
 * snapshot's invariants (monotonic versions, endpoint counts matching the
 * endpoints they hold, every string readable).
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "wp/addr.h"
#include "wp/counters.h"
#include "wp/cp.h"
#include "wp/resolve.h"
#include "wp/snapshot.h"
#include "wp/source.h"

#define READERS 3
#define RELOADS 1000

struct reader {
	struct wp_snapshot_slot *slot;
	unsigned id;
	volatile bool *stop;
	unsigned long reads, errors;
	uint64_t last_version;
};

static void *reader(void *arg)
{
	struct reader *rd = arg;
	struct wp_sockaddr vip;

	wp_sockaddr_parse("198.19.0.10:80", &vip);
	if (wp_snapshot_slot_register(rd->slot, rd->id))
		rd->errors++;
	while (!*rd->stop) {
		const struct wp_snapshot *s;
		const struct wp_snap_dest *d;

		wp_snapshot_quiescent(rd->slot, rd->id);
		s = wp_snapshot_get(rd->slot);
		if (!s)
			continue;
		rd->reads++;
		if (s->version < rd->last_version)
			rd->errors++;
		rd->last_version = s->version;
		d = wp_snapshot_lookup(s, &vip);
		if (!d || d->kind != WP_DEST_SERVICE || strcmp(d->svc->name, "web")) {
			rd->errors++;
			continue;
		}
		/* version v selects v % 5 + 1 pods */
		const struct wp_snap_svc_port *p = &d->svc->ports[0];
		if (p->n_endpoints != s->version % 5 + 1)
			rd->errors++;
		for (uint32_t i = 0; i < p->n_endpoints; i++)
			if (strncmp(p->endpoints[i].name, "web-", 4) ||
			    p->endpoints[i].addr.family != WP_AF_INET)
				rd->errors++;
	}
	wp_snapshot_slot_unregister(rd->slot, rd->id);
	return NULL;
}

static void pods(struct wp_resolver *r, unsigned selected)
{
	char y[4096];
	size_t off = 0;

	for (unsigned i = 0; i < 5; i++)
		off += (size_t)snprintf(
		        y + off, sizeof(y) - off,
		        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: web-%u\n"
		        "  namespace: n\n  labels: {app: %s}\nstatus: {podIP: "
		        "198.18.1.%u}\n",
		        i, i < selected ? "web" : "idle", 10 + i);
	assert_true(wp_source_deliver_text(wp_resolver_sink(r), "pods.yaml", y, off) == 5);
}

static void test_rcu_stress(void **state)
{
	(void)state;
	struct wp_served served = {.class_name = "istio-waypoint"};
	struct wp_resolver *r = wp_resolver_create(&served);
	struct wp_snapshot_slot *slot = wp_snapshot_slot_create(READERS);
	const char *base =
	        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n\n  labels: "
	        "{istio.io/use-waypoint: wp}\n---\napiVersion: gateway.networking.k8s.io/v1\n"
	        "kind: Gateway\nmetadata: {name: wp, namespace: n}\nspec:\n  gatewayClassName: "
	        "istio-waypoint\n  listeners: [{name: mesh, port: 15008, protocol: HBONE}]\n"
	        "---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: n}\n"
	        "spec:\n  clusterIP: 198.19.0.10\n  selector: {app: web}\n  ports: [{port: 80}]\n";
	struct reader rd[READERS];
	pthread_t th[READERS];
	volatile bool stop = false;
	unsigned long reads = 0;

	assert_non_null(r);
	assert_non_null(slot);
	assert_true(wp_source_deliver_text(wp_resolver_sink(r), "base.yaml", base, strlen(base)) ==
	            3);
	pods(r, 2); /* version 1 -> 1 % 5 + 1 = 2 pods */
	assert_int_equal(wp_snapshot_publish(slot, wp_resolver_build(r)), 0);
	for (unsigned i = 0; i < READERS; i++) {
		rd[i] = (struct reader){.slot = slot, .id = i, .stop = &stop};
		assert_int_equal(pthread_create(&th[i], NULL, reader, &rd[i]), 0);
	}
	for (unsigned v = 2; v <= RELOADS + 1; v++) {
		struct wp_snapshot *s;

		pods(r, v % 5 + 1);
		s = wp_resolver_build(r);
		assert_non_null(s);
		assert_int_equal(s->version, v);
		assert_int_equal(wp_snapshot_publish(slot, s), 0);
		if (v % 64 == 0)
			usleep(1000); /* let readers run on a 2-core box */
	}
	stop = true;
	for (unsigned i = 0; i < READERS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(rd[i].errors, 0);
		reads += rd[i].reads;
	}
	assert_true(reads > 0);
	assert_int_equal(wp_snapshot_get(slot)->version, RELOADS + 1);
	wp_snapshot_slot_sync(slot);
	assert_int_equal(wp_snapshot_slot_reclaim(slot), 0);
	wp_snapshot_slot_destroy(slot);
	wp_resolver_destroy(r);
	printf("rcu stress: %u reloads, %lu reads by %d readers\n", RELOADS, reads, READERS);
}

/* A publication never waits for a reader that is not quiescent. */
static void test_publish_does_not_block(void **state)
{
	(void)state;
	struct wp_served served = {0};
	struct wp_resolver *r = wp_resolver_create(&served);
	struct wp_snapshot_slot *slot = wp_snapshot_slot_create(1);

	assert_int_equal(wp_snapshot_slot_register(slot, 0), 0);
	assert_int_equal(wp_snapshot_publish(slot, wp_resolver_build(r)), 0);
	wp_snapshot_quiescent(slot, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(wp_snapshot_publish(slot, wp_resolver_build(r)), 0);
	/* the reader has not reported: the three old ones are still pending */
	assert_int_equal(wp_snapshot_slot_reclaim(slot), 3);
	wp_snapshot_quiescent(slot, 0);
	assert_int_equal(wp_snapshot_slot_reclaim(slot), 0);
	assert_int_equal(wp_snapshot_slot_unregister(slot, 0), 0);
	wp_snapshot_slot_destroy(slot);
	wp_resolver_destroy(r);
}

/* Stands in for the Kubernetes source's counters (waypointd's hook). */
static void extra_counters(void *ctx, uint64_t *out)
{
	(void)ctx;
	memset(out, 0, sizeof(uint64_t) * WP_CTR_MAX);
	out[WP_CTR_KUBE_WATCH_CLOSED] = 7;
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

static void test_cp_admin(void **state)
{
	(void)state;
	struct wp_cp_config cfg = {
	        .manifest_dir = CLUSTER_DIR,
	        .served = {.class_name = "istio-waypoint"},
	        .admin_port = 0,
	        .n_workers = 1,
	        .debounce_ms = 10,
	};
	static char body[1 << 16];
	static uint64_t ctr[WP_CTR_MAX];
	struct wp_cp *cp = wp_cp_create(&cfg);
	json_error_t jerr;
	json_t *j;

	assert_non_null(cp);
	wp_cp_set_extra_counters(cp, extra_counters, NULL);
	assert_int_equal(wp_cp_start(cp), 0);
	assert_int_equal(http_get(wp_cp_admin_port(cp), "/healthz/ready", body, sizeof(body)), 200);
	assert_int_equal(http_get(wp_cp_admin_port(cp), "/config_dump", body, sizeof(body)), 200);
	j = json_loads(body, 0, &jerr);
	assert_non_null(j);
	json_t *snap = json_object_get(j, "snapshot");
	assert_int_equal(json_array_size(json_object_get(snap, "gateways")), 3);
	assert_int_equal(json_array_size(json_object_get(snap, "services")), 4);
	assert_int_equal(json_array_size(json_object_get(snap, "workloads")), 1);
	assert_int_equal(json_array_size(json_object_get(j, "errors")), 0);
	json_decref(j);
	assert_int_equal(http_get(wp_cp_admin_port(cp), "/enrollment", body, sizeof(body)), 200);
	j = json_loads(body, 0, &jerr);
	assert_string_equal(json_string_value(json_object_get(j, "view")), "snapshot");
	assert_int_equal(json_array_size(json_object_get(j, "rows")), 10);
	json_decref(j);
	assert_int_equal(http_get(wp_cp_admin_port(cp), "/nope", body, sizeof(body)), 404);
	/* other threads see the counters, the hook's included, within a
	 * turn of the loop (200 ms) */
	for (int i = 0; i < 50; i++) {
		wp_cp_counters(cp, ctr);
		if (ctr[WP_CTR_ADMIN_REQUEST] == 3 && ctr[WP_CTR_ADMIN_NOT_FOUND] == 1)
			break;
		usleep(20000);
	}
	assert_int_equal(ctr[WP_CTR_ADMIN_REQUEST], 3);
	assert_int_equal(ctr[WP_CTR_ADMIN_NOT_FOUND], 1);
	assert_int_equal(ctr[WP_CTR_CP_SNAPSHOT_PUBLISHED], 1);
	assert_int_equal(ctr[WP_CTR_KUBE_WATCH_CLOSED], 7);
	/* the workers' side: a registered reader sees the published snapshot */
	assert_int_equal(wp_snapshot_slot_register(wp_cp_slot(cp), 0), 0);
	wp_snapshot_quiescent(wp_cp_slot(cp), 0);
	assert_non_null(wp_snapshot_get(wp_cp_slot(cp)));
	assert_int_equal(wp_snapshot_slot_unregister(wp_cp_slot(cp), 0), 0);
	wp_cp_destroy(cp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_publish_does_not_block),
	        cmocka_unit_test(test_rcu_stress),
	        cmocka_unit_test(test_cp_admin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
