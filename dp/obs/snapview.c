/*
 * Per-worker snapshot records and the /wp/snapshot telemetry command (see
 * snapview.h). Each record is written only by its worker under a sequence
 * counter (odd while writing), so a reader on the telemetry thread never
 * sees a version next to another version's counts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_telemetry.h>

#include "snapview.h"
#include "wp/common.h"
#include "wp/config.h"

struct record {
	uint64_t seq;
	struct wp_snapview_row row;
} WP_CACHE_ALIGNED;

static struct record records[WP_MAX_WORKERS];
static unsigned n_registered;

#define STORE(p, v) __atomic_store_n(&(p), (v), __ATOMIC_RELAXED)
#define LOAD(p)     __atomic_load_n(&(p), __ATOMIC_RELAXED)

void wp_snapview_observe(unsigned worker_id, const struct wp_snapshot *s)
{
	struct record *r = &records[worker_id];
	uint64_t v = s ? s->version : 0;
	struct timespec ts;

	if (v == r->row.version) /* only this worker writes it */
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	STORE(r->seq, r->seq + 1);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	STORE(r->row.version, v);
	STORE(r->row.dests, s ? s->n_dests : 0);
	STORE(r->row.services, s ? s->n_services : 0);
	STORE(r->row.workloads, s ? s->n_workloads : 0);
	STORE(r->row.gateways, s ? s->n_gateways : 0);
	STORE(r->row.built_ns, s ? s->built_ns : 0);
	STORE(r->row.seen_ns, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
	STORE(r->row.changes, r->row.changes + 1);
	r->row.n_gw = 0;
	for (uint32_t i = 0; s && i < s->n_gateways && i < WP_SNAPVIEW_GATEWAYS; i++) {
		struct wp_snapview_gw *g = &r->row.gw[i];

		snprintf(g->name, sizeof(g->name), "%s/%s", s->gateways[i].ns, s->gateways[i].name);
		g->services = s->gateways[i].n_services;
		g->workloads = s->gateways[i].n_workloads;
		r->row.n_gw = i + 1;
	}
	__atomic_store_n(&r->seq, r->seq + 1, __ATOMIC_RELEASE);
}

void wp_snapview_read(unsigned worker_id, struct wp_snapview_row *out)
{
	const struct record *r = &records[worker_id];
	uint64_t s1, s2;

	do {
		s1 = __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE);
		out->version = LOAD(r->row.version);
		out->dests = LOAD(r->row.dests);
		out->services = LOAD(r->row.services);
		out->workloads = LOAD(r->row.workloads);
		out->gateways = LOAD(r->row.gateways);
		out->built_ns = LOAD(r->row.built_ns);
		out->seen_ns = LOAD(r->row.seen_ns);
		out->changes = LOAD(r->row.changes);
		out->n_gw = LOAD(r->row.n_gw);
		if (out->n_gw > WP_SNAPVIEW_GATEWAYS)
			out->n_gw = WP_SNAPVIEW_GATEWAYS;
		memcpy(out->gw, r->row.gw, sizeof(out->gw[0]) * out->n_gw);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&r->seq, __ATOMIC_RELAXED);
	} while ((s1 & 1) || s1 != s2);
}

#define FIELDS(X)                                                                                  \
	X(version)                                                                                 \
	X(dests)                                                                                   \
	X(services)                                                                                \
	X(workloads)                                                                               \
	X(gateways)                                                                                \
	X(built_ns)                                                                                \
	X(seen_ns)                                                                                 \
	X(changes)

/* gw_names, gw_services, gw_workloads: parallel arrays. */
static int add_gateways(struct rte_tel_data *d, const struct wp_snapview_row *r)
{
	struct rte_tel_data *names = rte_tel_data_alloc(), *svcs = rte_tel_data_alloc(),
	                    *wls = rte_tel_data_alloc();

	if (!names || !svcs || !wls)
		goto fail;
	rte_tel_data_start_array(names, RTE_TEL_STRING_VAL);
	rte_tel_data_start_array(svcs, RTE_TEL_U64_VAL);
	rte_tel_data_start_array(wls, RTE_TEL_U64_VAL);
	for (uint32_t i = 0; i < r->n_gw; i++) {
		rte_tel_data_add_array_string(names, r->gw[i].name);
		rte_tel_data_add_array_u64(svcs, r->gw[i].services);
		rte_tel_data_add_array_u64(wls, r->gw[i].workloads);
	}
	if (rte_tel_data_add_dict_container(d, "gw_names", names, 0))
		goto fail;
	names = NULL;
	if (rte_tel_data_add_dict_container(d, "gw_services", svcs, 0))
		goto fail;
	svcs = NULL;
	if (rte_tel_data_add_dict_container(d, "gw_workloads", wls, 0))
		goto fail;
	return 0;
fail:
	rte_tel_data_free(names);
	rte_tel_data_free(svcs);
	rte_tel_data_free(wls);
	return -ENOMEM;
}

static int cmd_snapshot(const char *cmd WP_UNUSED, const char *params, struct rte_tel_data *d)
{
	struct wp_snapview_row rows[WP_MAX_WORKERS];
	unsigned n = n_registered;

	if (params != NULL && *params != '\0') {
		char *end;
		unsigned long id = strtoul(params, &end, 10);

		if (*end != '\0' || id >= n)
			return -EINVAL;
		wp_snapview_read((unsigned)id, &rows[0]);
		rte_tel_data_start_dict(d);
		rte_tel_data_add_dict_u64(d, "worker", id);
#define ONE(f) rte_tel_data_add_dict_u64(d, #f, rows[0].f);
		FIELDS(ONE)
#undef ONE
		return add_gateways(d, &rows[0]);
	}
	for (unsigned i = 0; i < n; i++)
		wp_snapview_read(i, &rows[i]);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "workers", n);
#define ARR(f)                                                                                     \
	do {                                                                                       \
		struct rte_tel_data *a = rte_tel_data_alloc();                                     \
		if (a == NULL)                                                                     \
			return -ENOMEM;                                                            \
		rte_tel_data_start_array(a, RTE_TEL_U64_VAL);                                      \
		for (unsigned i = 0; i < n; i++)                                                   \
			rte_tel_data_add_array_u64(a, rows[i].f);                                  \
		if (rte_tel_data_add_dict_container(d, #f, a, 0) != 0) {                           \
			rte_tel_data_free(a);                                                      \
			return -ENOSPC;                                                            \
		}                                                                                  \
	} while (0);
	FIELDS(ARR)
#undef ARR
	return 0;
}

int wp_snapview_register(unsigned n_workers)
{
	if (n_workers == 0 || n_workers > WP_MAX_WORKERS)
		return -EINVAL;
	n_registered = n_workers;
	if (rte_telemetry_register_cmd("/wp/snapshot", cmd_snapshot,
	                               "the snapshot each worker runs: version, captured "
	                               "destinations, ... Parameters: [int worker_id]"))
		return -EEXIST;
	return 0;
}
