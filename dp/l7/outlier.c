/*
 * The process's outlier-ejection table (see outlier.h). Open addressing
 * over a power-of-two array; an entry's key is written last (release) and
 * never changes after, so readers probe without the lock. Only ejections
 * (and the views) take the mutex.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_telemetry.h>

#include "outlier.h"
#include "wp/addr.h"
#include "wp/counters.h"

struct ent {
	uint64_t key; /* 0: free; atomic, set once */
	struct wp_addr addr;
	uint16_t port;
	uint8_t reason;
	char cluster[120];
	uint64_t until_ms; /* atomic; readers compare it with their clock */
	uint32_t mult;     /* ejections in a row */
	uint32_t total;
};

struct wp_outlier {
	pthread_mutex_t lock;
	uint64_t gen; /* atomic */
	uint32_t mask;
	struct ent *ent;
};

struct wp_outlier *wp_outlier_new(uint32_t cap)
{
	struct wp_outlier *o = calloc(1, sizeof(*o));
	uint32_t n = 16;

	while (n < cap && n < (1u << 24))
		n <<= 1;
	if (!o)
		return NULL;
	o->ent = calloc(n, sizeof(*o->ent));
	if (!o->ent) {
		free(o);
		return NULL;
	}
	o->mask = n - 1;
	pthread_mutex_init(&o->lock, NULL);
	return o;
}

void wp_outlier_free(struct wp_outlier *o)
{
	if (!o)
		return;
	pthread_mutex_destroy(&o->lock);
	free(o->ent);
	free(o);
}

uint64_t wp_outlier_gen(const struct wp_outlier *o)
{
	return __atomic_load_n(&o->gen, __ATOMIC_ACQUIRE);
}

static uint64_t key_of(const struct wp_lb_table *t, uint32_t ep)
{
	const struct wp_lb_endpoint *e = &t->eps[ep];
	uint8_t b[8 + 1 + 16 + 2];
	uint64_t k;

	memcpy(b, &t->od.cluster_key, 8);
	b[8] = e->addr.family;
	memcpy(b + 9, e->addr.v6, 16); /* v4 is its first 4 bytes, the rest zero */
	memcpy(b + 25, &e->port, 2);
	k = wp_lb_hash(b, sizeof(b));
	return k ? k : 1;
}

/* The entry of <key>, or (insert) the free slot where it goes; NULL when
 * absent (or, inserting, when the table is full). */
static struct ent *probe(const struct wp_outlier *o, uint64_t key, bool insert)
{
	for (uint32_t n = 0, i = (uint32_t)key & o->mask; n <= o->mask;
	     n++, i = (i + 1) & o->mask) {
		struct ent *e = &o->ent[i];
		uint64_t k = __atomic_load_n(&e->key, __ATOMIC_ACQUIRE);

		if (k == key)
			return e;
		if (k == 0)
			return insert ? e : NULL;
	}
	return NULL;
}

uint64_t wp_outlier_until(const struct wp_outlier *o, const struct wp_lb_table *t, uint32_t ep)
{
	const struct ent *e = probe(o, key_of(t, ep), false);

	return e ? __atomic_load_n(&e->until_ms, __ATOMIC_RELAXED) : 0;
}

static const enum wp_ctr eject_ctr[] = {
        [WP_OUTLIER_5XX] = WP_CTR_L7_OD_EJECT_5XX,
        [WP_OUTLIER_GATEWAY] = WP_CTR_L7_OD_EJECT_GATEWAY,
        [WP_OUTLIER_LOCAL] = WP_CTR_L7_OD_EJECT_LOCAL,
};

int wp_outlier_eject(struct wp_outlier *o, const struct wp_lb_table *t, uint32_t ep,
                     enum wp_outlier_reason why, uint64_t now_ms, uint64_t *ctr)
{
	const struct wp_lb_outlier *od = &t->od;
	uint64_t key = key_of(t, ep), base = od->base_ms, cap, until;
	uint32_t ejected = 0, mult;
	struct ent *e;
	int rc = 0;

	pthread_mutex_lock(&o->lock);
	e = probe(o, key, true);
	if (!e) {
		wp_ctr_inc(ctr, WP_CTR_L7_OD_TABLE_FULL);
		rc = -ENOSPC;
		goto out;
	}
	if (e->key && e->until_ms > now_ms) {
		rc = -EALREADY; /* another core got there first */
		goto out;
	}
	for (uint32_t i = 0; i < t->n_ep; i++) {
		const struct ent *x = i == ep ? NULL : probe(o, key_of(t, i), false);

		if (x && x->until_ms > now_ms)
			ejected++;
	}
	if ((uint64_t)(ejected + 1) * 100 > (uint64_t)od->max_eject_pct * t->n_ep) {
		wp_ctr_inc(ctr, WP_CTR_L7_OD_EJECT_OVERFLOW);
		rc = -EDQUOT;
		goto out;
	}
	if (!e->key) {
		e->addr = t->eps[ep].addr;
		e->port = t->eps[ep].port;
		memcpy(e->cluster, od->cluster, sizeof(e->cluster));
		e->cluster[sizeof(e->cluster) - 1] = '\0';
		__atomic_store_n(&e->key, key, __ATOMIC_RELEASE);
	}
	/* Envoy brings the multiplier down by one per interval spent back
	 * in service since the last ejection ended */
	mult = e->mult;
	if (mult && od->interval_ms && now_ms > e->until_ms) {
		uint64_t healthy = (now_ms - e->until_ms) / od->interval_ms;

		mult = healthy >= mult ? 0 : mult - (uint32_t)healthy;
	}
	e->mult = mult + 1;
	e->total++;
	e->reason = (uint8_t)why;
	cap = base > WP_OUTLIER_MAX_EJECTION_MS ? base : WP_OUTLIER_MAX_EJECTION_MS;
	until = base * e->mult;
	__atomic_store_n(&e->until_ms, now_ms + (until < cap ? until : cap), __ATOMIC_RELAXED);
	__atomic_add_fetch(&o->gen, 1, __ATOMIC_RELEASE);
	wp_ctr_inc(ctr, eject_ctr[why]);
out:
	pthread_mutex_unlock(&o->lock);
	return rc;
}

uint32_t wp_outlier_rows(struct wp_outlier *o, uint64_t now_ms, struct wp_outlier_row *rows,
                         uint32_t max)
{
	uint32_t n = 0;

	pthread_mutex_lock(&o->lock);
	for (uint32_t i = 0; i <= 2 * o->mask + 1 && n < max; i++) {
		/* first pass: ejected now; second: back in service */
		const struct ent *e = &o->ent[i & o->mask];
		struct wp_outlier_row *r = &rows[n];

		if (!e->key || (e->until_ms > now_ms) != (i <= o->mask))
			continue;
		memcpy(r->cluster, e->cluster, sizeof(r->cluster));
		r->addr = e->addr;
		r->port = e->port;
		r->reason = e->reason;
		r->ejections = e->mult;
		r->total = e->total;
		r->until_ms = e->until_ms;
		n++;
	}
	pthread_mutex_unlock(&o->lock);
	return n;
}

void wp_outlier_totals(struct wp_outlier *o, uint64_t now_ms, uint64_t active[4], uint64_t *total)
{
	memset(active, 0, 4 * sizeof(*active));
	*total = 0;
	pthread_mutex_lock(&o->lock);
	for (uint32_t i = 0; i <= o->mask; i++) {
		const struct ent *e = &o->ent[i];

		if (!e->key)
			continue;
		*total += e->total;
		if (e->until_ms > now_ms && e->reason <= WP_OUTLIER_LOCAL) {
			active[0]++;
			active[e->reason]++;
		}
	}
	pthread_mutex_unlock(&o->lock);
}

const char *wp_outlier_reason_name(uint8_t why)
{
	switch (why) {
	case WP_OUTLIER_5XX:
		return "5xx";
	case WP_OUTLIER_GATEWAY:
		return "gateway";
	case WP_OUTLIER_LOCAL:
		return "local-origin";
	default:
		return "none";
	}
}

/* ---- /wp/outliers ---------------------------------------------------------- */

#define TEL_ROWS 64 /* entries listed: a DPDK telemetry reply holds 16 KiB */

/* The telemetry callbacks take no context: the table registered. */
static struct wp_outlier *tel_table;

/*
 * A dict of columns, one element per endpoint ever ejected (the first
 * TEL_ROWS, ejected ones first): endpoint ("addr:port"), cluster, reason,
 * ejections (in a row), total, seconds_left (0: back in service); and over
 * every entry ejected_active (also per reason: ejected_active_5xx,
 * _gateway, _local_origin) and ejections_total. Columns, not one dict per endpoint, because DPDK
 * telemetry nests containers one level deep only.
 */
static int cmd_outliers(const char *cmd WP_UNUSED, const char *params WP_UNUSED,
                        struct rte_tel_data *d)
{
	static struct wp_outlier_row rows[TEL_ROWS];
	/* the workers' clock exactly (wp_worker_now_us() / 1000): another
	 * rounding of the TSC rate would drift from it over the uptime */
	uint64_t now_ms = rte_rdtsc() / (rte_get_tsc_hz() / 1000000) / 1000;
	uint64_t active[4] = {0}, total = 0;
	uint32_t n = tel_table ? wp_outlier_rows(tel_table, now_ms, rows, TEL_ROWS) : 0;
	struct rte_tel_data *ep = rte_tel_data_alloc(), *cl = rte_tel_data_alloc(),
	                    *why = rte_tel_data_alloc(), *ej = rte_tel_data_alloc(),
	                    *tot = rte_tel_data_alloc(), *left = rte_tel_data_alloc();

	if (!ep || !cl || !why || !ej || !tot || !left) {
		rte_tel_data_free(ep);
		rte_tel_data_free(cl);
		rte_tel_data_free(why);
		rte_tel_data_free(ej);
		rte_tel_data_free(tot);
		rte_tel_data_free(left);
		return -ENOMEM;
	}
	rte_tel_data_start_dict(d);
	rte_tel_data_start_array(ep, RTE_TEL_STRING_VAL);
	rte_tel_data_start_array(cl, RTE_TEL_STRING_VAL);
	rte_tel_data_start_array(why, RTE_TEL_STRING_VAL);
	rte_tel_data_start_array(ej, RTE_TEL_U64_VAL);
	rte_tel_data_start_array(tot, RTE_TEL_U64_VAL);
	rte_tel_data_start_array(left, RTE_TEL_U64_VAL);
	for (uint32_t i = 0; i < n; i++) {
		char a[64], s[80];
		uint64_t ms = rows[i].until_ms > now_ms ? rows[i].until_ms - now_ms : 0;

		wp_addr_format(&rows[i].addr, a, sizeof(a));
		snprintf(s, sizeof(s), "%s:%u", a, rows[i].port);
		rte_tel_data_add_array_string(ep, s);
		rte_tel_data_add_array_string(cl, rows[i].cluster);
		rte_tel_data_add_array_string(why, wp_outlier_reason_name(rows[i].reason));
		rte_tel_data_add_array_u64(ej, rows[i].ejections);
		rte_tel_data_add_array_u64(tot, rows[i].total);
		rte_tel_data_add_array_u64(left, (ms + 999) / 1000);
	}
	if (tel_table)
		wp_outlier_totals(tel_table, now_ms, active, &total);
	rte_tel_data_add_dict_u64(d, "ejected_active", active[0]);
	rte_tel_data_add_dict_u64(d, "ejected_active_5xx", active[WP_OUTLIER_5XX]);
	rte_tel_data_add_dict_u64(d, "ejected_active_gateway", active[WP_OUTLIER_GATEWAY]);
	rte_tel_data_add_dict_u64(d, "ejected_active_local_origin", active[WP_OUTLIER_LOCAL]);
	rte_tel_data_add_dict_u64(d, "ejections_total", total);
	{
		static const char *const names[] = {"endpoint",  "cluster", "reason",
		                                    "ejections", "total",   "seconds_left"};
		struct rte_tel_data *cols[] = {ep, cl, why, ej, tot, left};
		int rc = 0;

		/* the dict owns each column it took; the others are freed here */
		for (size_t i = 0; i < WP_ARRAY_SIZE(cols); i++)
			if (rc || rte_tel_data_add_dict_container(d, names[i], cols[i], 0)) {
				rte_tel_data_free(cols[i]);
				rc = -ENOMEM;
			}
		return rc;
	}
}

int wp_outlier_telemetry_register(struct wp_outlier *o)
{
	tel_table = o;
	return rte_telemetry_register_cmd("/wp/outliers", cmd_outliers,
	                                  "endpoints ejected by outlier detection")
	               ? -EINVAL
	               : 0;
}
