/*
 * Per-core load-balancer state by table pointer, and this core's side of
 * outlier detection (see lb_cache.h).
 */
#include <stdlib.h>
#include <string.h>

#include "dp/l7/lb_cache.h"
#include "dp/l7/outlier.h"
#include "wp/counters.h"

#define LB_SLOTS      64
#define LB_ACTIVE_MAX 1024 /* endpoints tracked per slot; larger clusters: no counts */

/* Consecutive errors of one endpoint on this core. */
struct od_cnt {
	uint16_t c5xx, gw, local;
};

struct lb_slot {
	const struct wp_lb_table *t;
	struct wp_lb_core c;
	uint32_t *active;   /* LB_ACTIVE_MAX counters */
	struct od_cnt *cnt; /* LB_ACTIVE_MAX */
	uint64_t od_gen;    /* table generation the bitmap was read at */
	uint64_t od_key;    /* cluster it was read for */
	uint64_t od_expiry; /* earliest end of a marked ejection (ms) */
	uint32_t od_n;      /* endpoints marked */
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
	sl->od_key = t->od.cluster_key;
	sl->od_n = n;
	sl->od_expiry = expiry;
	sl->c.ejected = n ? sl->ej : NULL;
	if (n && (n == t->n_ep ||
	          (uint64_t)(t->n_ep - n) * 100 < (uint64_t)t->od.min_health_pct * t->n_ep)) {
		/* Envoy's panic threshold: balance over every endpoint */
		wp_ctr_inc(c->ctr, WP_CTR_L7_OD_PANIC);
		sl->c.ejected = NULL;
	}
}

struct wp_lb_core *wp_lb_cache_core(struct wp_lb_cache *c, const struct wp_lb_table *t)
{
	struct lb_slot *sl = slot_of(c, t);

	if (sl->t != t) {
		sl->t = t;
		c->seed = c->seed * 6364136223846793005ULL + 1442695040888963407ULL;
		memset(sl->active, 0, LB_ACTIVE_MAX * sizeof(uint32_t));
		memset(sl->cnt, 0, LB_ACTIVE_MAX * sizeof(*sl->cnt));
		wp_lb_core_init(&sl->c, t, c->seed | 1,
		                t->n_ep <= LB_ACTIVE_MAX ? sl->active : NULL, c->ctr);
		sl->od_gen = UINT64_MAX; /* read the ejections on first use */
		sl->od_n = 0;
	} else if (sl->c.rr_pos >= t->rr_len) {
		/* another table now lives at this address */
		sl->c.rr_pos = 0;
	}
	if (c->od && t->od.enabled && t->n_ep <= LB_ACTIVE_MAX) {
		uint64_t g = wp_outlier_gen(c->od);

		if (g != sl->od_gen || sl->od_key != t->od.cluster_key ||
		    (sl->od_n && c->now_ms >= sl->od_expiry))
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
	if (sl->t == a->t && sl->c.active && sl->active[a->ep] > 0)
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

void wp_lb_cache_result(struct wp_lb_cache *c, const struct wp_lb_active *a, int res)
{
	const struct wp_lb_table *t = a->t;
	const struct wp_lb_outlier *od;
	struct lb_slot *sl;
	struct od_cnt *k;

	if (!t || !c->od || !t->od.enabled)
		return;
	sl = slot_of(c, t);
	if (sl->t != t)
		return; /* the slot moved on: its counts are another table's */
	od = &t->od;
	k = &sl->cnt[a->ep];
	if (res == WP_LB_RES_CONNECTED) {
		k->local = 0;
		return;
	}
	if (res == WP_LB_RES_LOCAL_FAIL) {
		if (od->split_local) {
			if (od_bump(&k->local, od->consec_local))
				(void)wp_outlier_eject(c->od, t, a->ep, WP_OUTLIER_LOCAL, c->now_ms,
				                       c->ctr);
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
		if (od_bump(&k->gw, od->consec_gw))
			(void)wp_outlier_eject(c->od, t, a->ep, WP_OUTLIER_GATEWAY, c->now_ms,
			                       c->ctr);
	} else {
		k->gw = 0;
	}
	if (od_bump(&k->c5xx, od->consec_5xx))
		(void)wp_outlier_eject(c->od, t, a->ep, WP_OUTLIER_5XX, c->now_ms, c->ctr);
}
