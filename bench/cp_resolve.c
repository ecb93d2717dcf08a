/*
 * Control-plane benchmark (issue 4): full resolution of a synthetic cluster
 * of 1,000 Namespaces, 10,000 Services and 100,000 Pods, and the latency
 * from changing one label to the new snapshot being published.
 *
 * Every namespace has its own waypoint Gateway (served, by class) and is
 * enrolled by its namespace label, so every Service is captured: the worst
 * case for snapshot size. Objects go in as JSON text through the same path
 * the Kubernetes source uses (wp_source_deliver_text), so the figures
 * include parsing. One reader thread reports quiescence as a worker would.
 * There is no peer here (no Istio control plane runs on this machine): the
 * figures are absolute, not ratios. Prints the figures, then one JSON line.
 *
 *   build/bench/cp_resolve [namespaces services-per-ns pods-per-service]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "wp/resolve.h"
#include "wp/snapshot.h"
#include "wp/source.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long maxrss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* Objects delivered so far: what parse+store time is divided by. */
static unsigned long n_delivered;

static void deliver(struct wp_resolver *r, const char *text)
{
	n_delivered++;
	if (wp_source_deliver_text(wp_resolver_sink(r), "bench", text, strlen(text)) != 1) {
		fprintf(stderr, "bench: object rejected: %s\n", text);
		exit(1);
	}
}

static int pod_json(char *b, size_t n, unsigned ns, unsigned s, unsigned p, const char *app)
{
	return snprintf(
	        b, n,
	        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"svc-%u-pod-"
	        "%u\",\"namespace\":\"ns-%u\",\"labels\":{\"app\":\"%s\",\"version\":\"v1\"}},"
	        "\"spec\":{\"serviceAccountName\":\"sa-%u\",\"nodeName\":\"node-%u\","
	        "\"containers\":[{\"name\":\"c\",\"ports\":[{\"name\":\"http\","
	        "\"containerPort\":8080}]}]},\"status\":{\"phase\":\"Running\",\"podIP\":"
	        "\"10.%u.%u.%u\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
	        s, p, ns, app, s, p % 50, 64 + ns / 256, ns % 256, s * 20 + p);
}

struct rd {
	struct wp_snapshot_slot *slot;
	volatile int stop;
};

static void *reader(void *arg)
{
	struct rd *rd = arg;

	wp_snapshot_slot_register(rd->slot, 0);
	while (!rd->stop) {
		wp_snapshot_quiescent(rd->slot, 0);
		(void)wp_snapshot_get(rd->slot);
	}
	wp_snapshot_slot_unregister(rd->slot, 0);
	return NULL;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	unsigned n_ns = argc > 1 ? (unsigned)atoi(argv[1]) : 1000;
	unsigned spn = argc > 2 ? (unsigned)atoi(argv[2]) : 10;
	unsigned pps = argc > 3 ? (unsigned)atoi(argv[3]) : 10;
	struct wp_served served = {.class_name = "istio-waypoint"};
	struct wp_resolver *r = wp_resolver_create(&served);
	struct wp_snapshot_slot *slot = wp_snapshot_slot_create(1);
	struct rd rd = {.slot = slot};
	double t0, t1, t2, lat[41], nlat[11];
	unsigned long n_parsed;
	struct wp_snapshot *s;
	pthread_t th;
	char b[2048];
	long rss0 = maxrss_kb();

	if (!r || !slot || spn > 12 || pps > 20) {
		fprintf(stderr, "usage: cp_resolve [namespaces<=4096 services-per-ns<=12 "
		                "pods-per-service<=20]\n");
		return 2;
	}
	t0 = now();
	deliver(r, "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"GatewayClass\","
	           "\"metadata\":{\"name\":\"istio-waypoint\"},\"spec\":{\"controllerName\":"
	           "\"istio.io/mesh-controller\"}}");
	for (unsigned ns = 0; ns < n_ns; ns++) {
		snprintf(
		        b, sizeof(b),
		        "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"ns-"
		        "%u\",\"labels\":{\"istio.io/use-waypoint\":\"wp\"}}}",
		        ns);
		deliver(r, b);
		snprintf(
		        b, sizeof(b),
		        "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"Gateway\","
		        "\"metadata\":{\"name\":\"wp\",\"namespace\":\"ns-%u\"},\"spec\":{"
		        "\"gatewayClassName\":\"istio-waypoint\",\"listeners\":[{\"name\":\"mesh\","
		        "\"port\":15008,\"protocol\":\"HBONE\"}]}}",
		        ns);
		deliver(r, b);
		for (unsigned sv = 0; sv < spn; sv++) {
			snprintf(b, sizeof(b),
			         "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{"
			         "\"name\":"
			         "\"svc-%u\",\"namespace\":\"ns-%u\"},\"spec\":{\"clusterIP\":"
			         "\"100.%u."
			         "%u.%u\",\"selector\":{\"app\":\"svc-%u\"},\"ports\":[{\"name\":"
			         "\"http\",\"port\":80,\"targetPort\":\"http\"},{\"name\":\"grpc\","
			         "\"port\":9090}]}}",
			         sv, ns, 64 + ns / 256, ns % 256, sv, sv);
			deliver(r, b);
			for (unsigned p = 0; p < pps; p++) {
				char app[32];

				snprintf(app, sizeof(app), "svc-%u", sv);
				pod_json(b, sizeof(b), ns, sv, p, app);
				deliver(r, b);
			}
		}
	}
	t1 = now();
	n_parsed = n_delivered;
	s = wp_resolver_build(r);
	t2 = now();
	if (!s) {
		fprintf(stderr, "bench: build failed\n");
		return 1;
	}
	printf("cluster: %u namespaces, %zu services, %zu pods, %u gateways (all served)\n", n_ns,
	       wp_resolver_count(r, WP_KIND_SERVICE), wp_resolver_count(r, WP_KIND_POD), n_ns);
	printf("parse+store (JSON, %lu objects: 1 GatewayClass, %u Namespaces, %u Gateways, "
	       "Services, Pods): %.3f s (%.2f us/object)\n",
	       n_parsed, n_ns, n_ns, t1 - t0, (t1 - t0) * 1e6 / (double)n_parsed);
	printf("full resolution (enrollment + first snapshot): %.1f ms; snapshot: %u services, "
	       "%u workloads, %u captured destinations\n",
	       (t2 - t1) * 1e3, s->n_services, s->n_workloads, s->n_dests);
	wp_snapshot_publish(slot, s);
	pthread_create(&th, NULL, reader, &rd);

	/* one Pod label change -> published snapshot */
	for (unsigned i = 0; i < WP_ARRAY_SIZE(lat); i++) {
		unsigned ns = (i * 37) % n_ns;
		char app[32];
		double a, c;

		snprintf(app, sizeof(app), "svc-%u", (i % 2) ? 0 : 1 % spn);
		pod_json(b, sizeof(b), ns, 0, 0, app);
		a = now();
		deliver(r, b);
		s = wp_resolver_build(r);
		if (!s || wp_snapshot_publish(slot, s))
			return 1;
		c = now();
		lat[i] = (c - a) * 1e3;
	}
	/* one Namespace label change (re-enrolls its services and pods) */
	for (unsigned i = 0; i < WP_ARRAY_SIZE(nlat); i++) {
		double a, c;

		snprintf(
		        b, sizeof(b),
		        "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"ns-"
		        "%u\",\"labels\":{\"istio.io/use-waypoint\":\"%s\"}}}",
		        (i * 7) % n_ns, (i % 2) ? "wp" : "none");
		a = now();
		deliver(r, b);
		s = wp_resolver_build(r);
		if (!s || wp_snapshot_publish(slot, s))
			return 1;
		c = now();
		nlat[i] = (c - a) * 1e3;
	}
	qsort(lat, WP_ARRAY_SIZE(lat), sizeof(double), dcmp);
	qsort(nlat, WP_ARRAY_SIZE(nlat), sizeof(double), dcmp);
	printf("pod label change -> snapshot published: median %.2f ms, max %.2f ms (%zu runs)\n",
	       lat[WP_ARRAY_SIZE(lat) / 2], lat[WP_ARRAY_SIZE(lat) - 1], WP_ARRAY_SIZE(lat));
	printf("namespace label change -> snapshot published: median %.2f ms, max %.2f ms (%zu "
	       "runs)\n",
	       nlat[WP_ARRAY_SIZE(nlat) / 2], nlat[WP_ARRAY_SIZE(nlat) - 1], WP_ARRAY_SIZE(nlat));
	printf("peak RSS: %ld MiB (start %ld MiB)\n", maxrss_kb() / 1024, rss0 / 1024);
	printf("{\"bench\": \"cp_resolve\", \"namespaces\": %u, \"services\": %zu, "
	       "\"pods\": %zu, \"objects_parsed\": %lu, \"parse_store_s\": %.3f, "
	       "\"parse_store_us_per_object\": %.2f, \"full_resolution_ms\": %.1f, "
	       "\"pod_label_publish_median_ms\": %.2f, \"pod_label_publish_max_ms\": %.2f, "
	       "\"ns_label_publish_median_ms\": %.2f, \"ns_label_publish_max_ms\": %.2f, "
	       "\"peak_rss_mib\": %ld, \"peer\": null}\n",
	       n_ns, wp_resolver_count(r, WP_KIND_SERVICE), wp_resolver_count(r, WP_KIND_POD),
	       n_parsed, t1 - t0, (t1 - t0) * 1e6 / (double)n_parsed, (t2 - t1) * 1e3,
	       lat[WP_ARRAY_SIZE(lat) / 2], lat[WP_ARRAY_SIZE(lat) - 1],
	       nlat[WP_ARRAY_SIZE(nlat) / 2], nlat[WP_ARRAY_SIZE(nlat) - 1], maxrss_kb() / 1024);
	rd.stop = 1;
	pthread_join(th, NULL);
	wp_snapshot_slot_destroy(slot);
	wp_resolver_destroy(r);
	return 0;
}
