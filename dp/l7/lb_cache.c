/*
 * Per-core load-balancer state by table pointer (see lb_cache.h).
 */
#include <stdlib.h>
#include <string.h>

#include "dp/l7/lb_cache.h"

#define LB_SLOTS      64
#define LB_ACTIVE_MAX 1024 /* endpoints tracked per slot; larger clusters: no counts */

struct lb_slot {
	const struct wp_lb_table *t;
	struct wp_lb_core c;
	uint32_t *active; /* LB_ACTIVE_MAX counters */
};

struct wp_lb_cache {
	uint64_t seed;
	uint64_t *ctr;
	struct lb_slot slot[LB_SLOTS];
	uint32_t active[LB_SLOTS * LB_ACTIVE_MAX];
};

struct wp_lb_cache *wp_lb_cache_new(uint64_t seed, uint64_t *ctr)
{
	struct wp_lb_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->seed = seed | 1;
	c->ctr = ctr;
	for (unsigned i = 0; i < LB_SLOTS; i++)
		c->slot[i].active = c->active + (size_t)i * LB_ACTIVE_MAX;
	return c;
}

void wp_lb_cache_free(struct wp_lb_cache *c)
{
	free(c);
}

static struct lb_slot *slot_of(struct wp_lb_cache *c, const struct wp_lb_table *t)
{
	return &c->slot[((uintptr_t)t >> 6) % LB_SLOTS];
}

struct wp_lb_core *wp_lb_cache_core(struct wp_lb_cache *c, const struct wp_lb_table *t)
{
	struct lb_slot *sl = slot_of(c, t);

	if (sl->t != t) {
		sl->t = t;
		c->seed = c->seed * 6364136223846793005ULL + 1442695040888963407ULL;
		memset(sl->active, 0, LB_ACTIVE_MAX * sizeof(uint32_t));
		wp_lb_core_init(&sl->c, t, c->seed | 1,
		                t->n_ep <= LB_ACTIVE_MAX ? sl->active : NULL, c->ctr);
	} else if (sl->c.rr_pos >= t->rr_len) {
		/* another table now lives at this address */
		sl->c.rr_pos = 0;
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
