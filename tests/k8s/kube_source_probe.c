/*
 * Test driver for the Kubernetes source: runs wp_kube_source_create() on a
 * kubeconfig (or in-cluster settings) with a sink that prints every event
 * as one line on stdout, so the Python tests in tests/k8s can check what the
 * control plane would have received, and when:
 *     UPSERT <Kind> <ns>/<name> rv=<rv> use-waypoint=<label or ->
 *     DELETE <Kind> <ns>/<name>
 *     ERROR <origin> <msg>
 *     SYNCED <source>
 * A line "COUNTERS name=value ..." is printed on SIGUSR1 and at exit (the
 * KUBE_* counters, status_writes, status_pending: status writes not done
 * yet, lagging: kinds not current); the probe exits on SIGTERM/SIGINT.
 * Options: --status (write Gateway status), --standalone, --ip ADDR (repeat),
 * --service NAME, --limit N, --watch-timeout S, --backoff BASE,MAX,
 * --max-event BYTES, --max-list BYTES, --resolve CLASS (also feed a resolver
 * serving Gateways of CLASS and, as the control plane does, hand the
 * source each snapshot's enrollment once synced; prints "PUBLISHED <n>"),
 * --lease NAME --identity ID [--lease-ns NS] (write status only while
 * holding Lease NS/NAME, client-go timings; COUNTERS then also says
 * leading=0|1 holder=ID).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_source.h"
#include "lease.h"
#include "wp/counters.h"
#include "wp/cp_json.h"
#include "wp/model.h"
#include "wp/resolve.h"
#include "wp/snapshot.h"

static volatile sig_atomic_t quit, dump;
static bool synced;

static void on_sig(int sig)
{
	if (sig == SIGUSR1)
		dump = 1;
	else
		quit = 1;
}

static int sink_upsert(void *ctx, struct wp_obj *obj)
{
	const char *l = wp_labels_get(&obj->meta.labels, WP_LABEL_USE_WAYPOINT);

	(void)ctx;
	printf("UPSERT %s %s/%s rv=%s use-waypoint=%s\n", wp_kind_name(obj->kind), obj->meta.ns,
	       obj->meta.name, obj->meta.resource_version ? obj->meta.resource_version : "-",
	       l ? l : "-");
	if (ctx)
		return wp_resolver_upsert(ctx, obj); /* takes obj */
	wp_obj_free(obj);
	return 0;
}

static int sink_remove(void *ctx, enum wp_kind kind, const char *ns, const char *name)
{
	printf("DELETE %s %s/%s\n", wp_kind_name(kind), ns ? ns : "", name);
	return ctx ? wp_resolver_remove(ctx, kind, ns, name) : 0;
}

static void sink_error(void *ctx, const char *origin, const char *msg)
{
	(void)ctx;
	printf("ERROR %s %s\n", origin, msg);
}

static void sink_clear(void *ctx, const char *origin)
{
	(void)ctx, (void)origin;
}

static void sink_synced(void *ctx, const char *name)
{
	(void)ctx;
	synced = true;
	printf("SYNCED %s\n", name);
}

static const struct wp_source_sink_ops ops = {
        .upsert = sink_upsert,
        .remove = sink_remove,
        .error = sink_error,
        .clear_errors = sink_clear,
        .synced = sink_synced,
};

static const char *const ctr_names[] = {
#define WP_CTR(name, kind, desc) #name,
#include "wp/counters/list.h"
#undef WP_CTR
};

static void print_counters(struct wp_source *src)
{
	uint64_t c[WP_CTR_MAX];
	struct wp_source_state st;

	wp_kube_source_counters(src, c);
	printf("COUNTERS");
	for (int i = 0; i < WP_CTR_MAX; i++)
		if (!strncmp(ctr_names[i], "KUBE_", 5))
			printf(" %s=%llu", ctr_names[i], (unsigned long long)c[i]);
	src->ops->state(src, &st);
	printf(" status_writes=%llu status_pending=%u lagging=%u",
	       (unsigned long long)wp_kube_source_status_writes(src), st.pending_writes,
	       st.n_lagging);
	{
		struct wp_kube_lease_info li;

		if (wp_kube_source_lease(src, &li))
			printf(" leading=%d holder=%s", li.leading, li.holder[0] ? li.holder : "-");
	}
	printf("\n");
}

/* What the control plane does at a publication: the snapshot's
 * enrollment to the source. */
static void publish(struct wp_source *src, struct wp_resolver *r)
{
	struct wp_snapshot *snap = wp_resolver_build(r);
	json_t *rows;

	if (!snap)
		return;
	rows = wp_enrollment_json(r, true);
	if (rows)
		src->ops->published(src, rows);
	printf("PUBLISHED %llu\n", (unsigned long long)snap->version);
	json_decref(rows);
	wp_snapshot_free(snap);
}

int main(int argc, char **argv)
{
	struct wp_resolver *res = NULL;
	struct wp_kube_source_config cfg = {0};
	const char *ips[8];
	struct wp_source_sink sink = {.ops = &ops};
	struct wp_source *src;
	char err[512] = "";
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--status"))
			cfg.status_enabled = true;
		else if (!strcmp(argv[i], "--standalone"))
			cfg.standalone = true;
		else if (!strcmp(argv[i], "--ip") && i + 1 < argc && cfg.n_ips < 8)
			ips[cfg.n_ips++] = argv[++i];
		else if (!strcmp(argv[i], "--lease") && i + 1 < argc)
			cfg.lease_name = argv[++i];
		else if (!strcmp(argv[i], "--lease-ns") && i + 1 < argc)
			cfg.lease_namespace = argv[++i];
		else if (!strcmp(argv[i], "--identity") && i + 1 < argc)
			cfg.identity = argv[++i];
		else if (!strcmp(argv[i], "--service") && i + 1 < argc)
			cfg.service_name = argv[++i];
		else if (!strcmp(argv[i], "--limit") && i + 1 < argc)
			cfg.page_limit = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--max-event") && i + 1 < argc)
			cfg.max_event_bytes = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--max-list") && i + 1 < argc)
			cfg.max_list_bytes = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--watch-timeout") && i + 1 < argc)
			cfg.watch_timeout = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--backoff") && i + 1 < argc) {
			char *end;
			cfg.backoff_base = strtod(argv[++i], &end);
			cfg.backoff_max = *end == ',' ? strtod(end + 1, NULL) : 0;
		} else if (!strcmp(argv[i], "--resolve") && i + 1 < argc) {
			struct wp_served served = {.class_name = argv[++i]};

			res = wp_resolver_create(&served);
			if (!res)
				return 1;
			sink.ctx = res;
		} else {
			fprintf(stderr, "kube_source_probe: unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	cfg.ips = ips;
	ret = wp_kube_config_auto(&cfg.kube, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "kube_source_probe: %s (%s)\n", err, strerror(-ret));
		return 1;
	}
	src = wp_kube_source_create(&cfg);
	wp_kube_config_clear(&cfg.kube);
	if (!src) {
		fprintf(stderr, "kube_source_probe: cannot create the source\n");
		return 1;
	}
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	signal(SIGUSR1, on_sig);
	if (src->ops->start(src, &sink) != 0) {
		fprintf(stderr, "kube_source_probe: start failed\n");
		return 1;
	}
	while (!quit) {
		struct pollfd p = {.fd = src->ops->fd(src), .events = POLLIN};

		if (poll(&p, 1, 100) < 0 && errno != EINTR)
			break;
		src->ops->poll(src);
		if (res && synced && wp_resolver_dirty(res))
			publish(src, res);
		if (dump) {
			dump = 0;
			print_counters(src);
		}
	}
	print_counters(src);
	wp_source_destroy(src);
	wp_resolver_destroy(res);
	return 0;
}
