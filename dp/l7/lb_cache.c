/*
 * Per-core load-balancer state by table pointer, and this core's side of
 * outlier detection (see lb_cache.h).
 */
#include <stdlib.h>
#include <string.h>

#include "lb_cache.h"
#include "outlier.h"
#include "wp/counters.h"

#define LB_SLOTS      64
#define LB_ACTIVE_MAX 1024 /* endpoints tracked per slot; larger clusters: no counts */

/* Consecutive errors of one endpoint on this core. */
struct od_cnt {
	uint16_t c5xx, gw, local;
	uint8_t pend; /* enum wp_outlier_reason of a threshold reached, not yet reported */
};

struct lb_slot {
	const struct wp_lb_table *t;
	uint64_t serial; /* t->serial: a new table at a freed one's address is another */
	struct wp_lb_core c;
	uint32_t *active;   /* LB_ACTIVE_MAX counters */
	struct od_cnt *cnt; /* LB_ACTIVE_MAX */
	uint64_t od_gen;    /* table generation the bitmap was read at */
	uint64_t od_expiry; /* earliest end of a marked ejection (ms) */
	uint32_t od_n;      /* endpoints marked */
	uint32_t od_pend;   /* endpoints with cnt[i].pend set */
	/* the table's thresholds, copied while it was known live: a result may
	 * come after its snapshot (and the table) was freed */
	bool od_on, od_split;
	uint16_t thr_5xx, thr_gw, thr_local;
	uint64_t ej[LB_ACTIVE_MAX / 64];
};

struct wp_lb_cache {
	uint64_t seed;
	uint64_t *ctr;
	struct wp_outlier *od; /* shared ejection table, NULL: off */
	uint64_t now_ms;
	struct lb_slot slot[LB_SLOTS];
	uint32_t active[LB_SLOTS * LB_ACTIVE_MAX];
	struct od_cnt cnt[LB_SLOTS * LB_ACTIVE_MAX];
};

struct wp_lb_cache *wp_lb_cache_new(uint64_t seed, uint64_t *ctr)
{
	struct wp_lb_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->seed = seed | 1;
	c->ctr = ctr;
	for (unsigned i = 0; i < LB_SLOTS; i++) {
		c->slot[i].active = c->active + (size_t)i * LB_ACTIVE_MAX;
		c->slot[i].cnt = c->cnt + (size_t)i * LB_ACTIVE_MAX;
	}
	return c;
}

void wp_lb_cache_set_outlier(struct wp_lb_cache *c, struct wp_outlier *od)
{
	c->od = od;
}

void wp_lb_cache_clock(struct wp_lb_cache *c, uint64_t now_ms)
{
	c->now_ms = now_ms;
}

void wp_lb_cache_free(struct wp_lb_cache *c)
{
	free(c);
}

static struct lb_slot *slot_of(struct wp_lb_cache *c, const struct wp_lb_table *t)
{
	return &c->slot[((uintptr_t)t >> 6) % LB_SLOTS];
}

/* Re-reads which endpoints of <t> are ejected (table generation <g>). */
static void od_refresh(struct wp_lb_cache *c, struct lb_slot *sl, const struct wp_lb_table *t,
                       uint64_t g)
{
	uint32_t n = 0;
	uint64_t expiry = UINT64_MAX;

	memset(sl->ej, 0, sizeof(sl->ej));
	for (uint32_t i = 0; i < t->n_ep; i++) {
		uint64_t until = wp_outlier_until(c->od, t, i);

		if (until <= c->now_ms)
			continue;
		sl->ej[i >> 6] |= 1ull << (i & 63);
		n++;
		if (until < expiry)
			expiry = until;
	}
	sl->od_gen = g;
	sl->od_on = true;
	sl->od_split = t->od.split_local;
	sl->thr_5xx = t->od.consec_5xx;
	sl->thr_gw = t->od.consec_gw;
	sl->thr_local = t->od.consec_local;
	sl->od_n = n;
	sl->od_expiry = expiry;
	sl->c.ejected = n ? sl->ej : NULL;
	sl->c.none_healthy = false;
	if (n && (uint64_t)(t->n_ep - n) * 100 < (uint64_t)t->od.min_health_pct * t->n_ep) {
		/* Envoy's panic threshold: balance over every endpoint */
		wp_ctr_inc(c->ctr, WP_CTR_L7_OD_PANIC);
		sl->c.ejected = NULL;
	} else if (n == t->n_ep) {
		/* all ejected, panic mode off (minHealthPercent 0): Envoy finds
		 * no healthy host, the request gets 503 UH */
		sl->c.ejected = NULL;
		sl->c.none_healthy = true;
	}
}

/* Reports the thresholds reached on <t> (live: a pick holds it) to the
 * shared table: the ejections happen here, not in wp_lb_cache_result(). */
static void od_report(struct wp_lb_cache *c, struct lb_slot *sl, const struct wp_lb_table *t)
{
	for (uint32_t i = 0; i < t->n_ep && sl->od_pend; i++) {
		struct od_cnt *k = &sl->cnt[i];

		if (!k->pend)
			continue;
		(void)wp_outlier_eject(c->od, t, i, (enum wp_outlier_reason)k->pend, c->now_ms,
		                       c->ctr);
		k->pend = 0;
		sl->od_pend--;
	}
}

struct wp_lb_core *wp_lb_cache_core(struct wp_lb_cache *c, const struct wp_lb_table *t)
{
	struct lb_slot *sl = slot_of(c, t);

	if (sl->t != t || sl->serial != t->serial) {
		sl->t = t;
		sl->serial = t->serial;
		c->seed = c->seed * 6364136223846793005ULL + 1442695040888963407ULL;
		memset(sl->active, 0, LB_ACTIVE_MAX * sizeof(uint32_t));
		memset(sl->cnt, 0, LB_ACTIVE_MAX * sizeof(*sl->cnt));
		wp_lb_core_init(&sl->c, t, c->seed | 1,
		                t->n_ep <= LB_ACTIVE_MAX ? sl->active : NULL, c->ctr);
		sl->od_gen = UINT64_MAX; /* read the ejections on first use */
		sl->od_n = 0;
		sl->od_pend = 0;
		sl->od_on = false;
	}
	if (c->od && t->od.enabled && t->n_ep <= LB_ACTIVE_MAX) {
		uint64_t g;

		if (sl->od_pend)
			od_report(c, sl, t);
		g = wp_outlier_gen(c->od);
		if (g != sl->od_gen || (sl->od_n && c->now_ms >= sl->od_expiry))
			od_refresh(c, sl, t, g);
	}
	return &sl->c;
}

void wp_lb_cache_begin(struct wp_lb_cache *c, const struct wp_lb_table *t, int i,
                       struct wp_lb_active *a)
{
	struct wp_lb_core *lc = wp_lb_cache_core(c, t);

	a->t = NULL;
	if (lc->active && i >= 0 && (uint32_t)i < LB_ACTIVE_MAX) {
		lc->active[i]++;
		a->t = t;
		a->serial = t->serial;
		a->ep = (uint32_t)i;
	}
}

void wp_lb_cache_end(struct wp_lb_cache *c, struct wp_lb_active *a)
{
	struct lb_slot *sl;

	if (!a->t)
		return;
	sl = slot_of(c, a->t);
	/* the slot may have been taken by another table since: then its
	 * counts were reset and this request is not in them */
	if (sl->t == a->t && sl->serial == a->serial && sl->c.active && sl->active[a->ep] > 0)
		sl->active[a->ep]--;
	a->t = NULL;
}

/* One more consecutive error against threshold <thr> (0: off): true when
 * it is reached, the count then starting over as Envoy's does. */
static bool od_bump(uint16_t *k, uint16_t thr)
{
	if (!thr)
		return false;
	if (*k < UINT16_MAX)
		(*k)++;
	if (*k < thr)
		return false;
	*k = 0;
	return true;
}

/* A threshold of endpoint <k> was reached: reported on the next pick. */
static void od_pend(struct lb_slot *sl, struct od_cnt *k, enum wp_outlier_reason why)
{
	if (k->pend)
		return;
	k->pend = (uint8_t)why;
	sl->od_pend++;
}

/* Never dereferences a->t: its snapshot may be gone by now (tables are
 * only read under a pick, wp_lb_cache_core()); the slot's copy of the
 * thresholds is used, and what reaches one waits for the next pick. */
void wp_lb_cache_result(struct wp_lb_cache *c, const struct wp_lb_active *a, int res)
{
	struct lb_slot *sl;
	struct od_cnt *k;

	if (!a->t || !c->od)
		return;
	sl = slot_of(c, a->t);
	if (sl->t != a->t || sl->serial != a->serial || !sl->od_on)
		return; /* the slot moved on, or no outlier detection */
	k = &sl->cnt[a->ep];
	if (res == WP_LB_RES_CONNECTED) {
		k->local = 0;
		return;
	}
	if (res == WP_LB_RES_LOCAL_FAIL) {
		if (sl->od_split) {
			if (od_bump(&k->local, sl->thr_local))
				od_pend(sl, k, WP_OUTLIER_LOCAL);
			return;
		}
		res = 503; /* not split: a local-origin failure counts as a gateway error */
	}
	k->local = 0; /* an answer came: the connection worked */
	if (res < 500 || res > 599) {
		k->c5xx = k->gw = 0;
		return;
	}
	if (res >= 502 && res <= 504) {
		if (od_bump(&k->gw, sl->thr_gw))
			od_pend(sl, k, WP_OUTLIER_GATEWAY);
	} else {
		k->gw = 0;
	}
	if (od_bump(&k->c5xx, sl->thr_5xx))
		od_pend(sl, k, WP_OUTLIER_5XX);
}
