/*
 * The per-core upstream pool of the L7 proxies (see uppool.h): intrusive
 * lists over the owner's entries -- a free list, a busy list (searched only
 * for shared, multiplexed connections) and the idle LRU -- plus the
 * retry helpers. Entries move between the lists in O(1); a lookup walks
 * the idle list from its most recent end, as the proxies did before.
 */
#include <string.h>

#include "uppool.h"
#include "wp/lb.h"

void wp_uppool_init(struct wp_uppool *p, struct wp_uppool_ent *first, size_t stride, uint32_t n,
                    uint32_t idle_timeout_ms, const struct wp_uppool_ops *ops)
{
	memset(p, 0, sizeof(*p));
	p->base = (uint8_t *)first;
	p->stride = stride;
	p->n = n;
	p->idle_timeout_ms = idle_timeout_ms;
	p->ops = ops;
	for (uint32_t i = n; i-- > 0;) {
		struct wp_uppool_ent *e = wp_uppool_at(p, i);

		memset(e, 0, sizeof(*e));
		e->next = p->free;
		p->free = e;
	}
}

/* The same endpoint and kind (as wp_uppool_same_ep(), cheapest first). */
static bool same_key(const struct wp_uppool_ent *a, const struct wp_uppool_ent *b)
{
	return a->addr.v4 == b->addr.v4 && a->port == b->port && a->kind == b->kind &&
	       a->ambient == b->ambient && a->addr.family == b->addr.family &&
	       (a->addr.family == WP_AF_INET || !memcmp(a->addr.v6, b->addr.v6, 16));
}

/* Doubly linked list helpers: the busy list (head only) and the idle LRU. */
static void list_unlink(struct wp_uppool_ent **head, struct wp_uppool_ent **tail,
                        struct wp_uppool_ent *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		*head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else if (tail)
		*tail = e->prev;
	e->prev = e->next = NULL;
}

static void busy_push(struct wp_uppool *p, struct wp_uppool_ent *e)
{
	e->state = WP_UPPOOL_BUSY;
	e->prev = NULL;
	e->next = p->busy;
	if (p->busy)
		p->busy->prev = e;
	p->busy = e;
	p->n_busy++;
}

/* Takes <e> off whichever list it is on (its state stays). */
static void unlink_any(struct wp_uppool *p, struct wp_uppool_ent *e)
{
	if (e->state == WP_UPPOOL_IDLE) {
		list_unlink(&p->idle_head, &p->idle_tail, e);
		p->n_idle--;
	} else if (e->state == WP_UPPOOL_BUSY) {
		list_unlink(&p->busy, NULL, e);
		p->n_busy--;
	}
}

/* The busy shared connection to <ep> with room: connected first, then the
 * one with most users. */
static struct wp_uppool_ent *best_shared(const struct wp_uppool *p,
                                         const struct wp_snap_endpoint *ep, uint8_t kind)
{
	struct wp_uppool_ent *best = NULL;

	for (struct wp_uppool_ent *e = p->busy; e; e = e->next) {
		if (!wp_uppool_same_ep(e, ep) || e->kind != kind || e->active >= p->ops->limit(e))
			continue;
		if (!best || (!best->ready && e->ready) ||
		    (best->ready == e->ready && e->active > best->active))
			best = e;
	}
	return best;
}

struct wp_uppool_ent *wp_uppool_get(struct wp_uppool *p, const struct wp_snap_endpoint *ep,
                                    uint8_t kind)
{
	uint32_t (*limit)(const struct wp_uppool_ent *) = p->ops->limit;
	struct wp_uppool_ent *shared = limit ? best_shared(p, ep, kind) : NULL;

	if (shared && shared->ready)
		return shared;
	for (struct wp_uppool_ent *e = p->idle_tail; e; e = e->prev) {
		if (!wp_uppool_same_ep(e, ep) || e->kind != kind ||
		    (limit && e->active >= limit(e)))
			continue;
		list_unlink(&p->idle_head, &p->idle_tail, e);
		p->n_idle--;
		busy_push(p, e);
		return e;
	}
	return shared;
}

struct wp_uppool_ent *wp_uppool_open(struct wp_uppool *p, const struct wp_snap_endpoint *ep,
                                     uint8_t kind, uint64_t now_ms,
                                     const struct wp_uppool_ent *skip, bool *evicted)
{
	struct wp_uppool_ent *e;

	*evicted = false;
	if (!p->free) {
		e = p->idle_head;
		if (e && e == skip)
			e = e->next;
		if (!e)
			return NULL;
		p->ops->retire(e); /* frees it */
		*evicted = true;
	}
	e = p->free;
	if (!e)
		return NULL;
	p->free = e->next;
	e->addr = ep->addr;
	e->port = ep->port;
	e->ambient = ep->ambient;
	e->kind = kind;
	e->ready = false;
	e->active = 0;
	e->idle_ms = 0;
	e->idle_since_ms = now_ms;
	busy_push(p, e);
	return e;
}

bool wp_uppool_idle(struct wp_uppool *p, struct wp_uppool_ent *e, uint32_t max_idle,
                    uint64_t now_ms)
{
	uint32_t same = 0;

	if (p->draining || max_idle == 0)
		return false;
	for (const struct wp_uppool_ent *u = p->idle_head; u; u = u->next)
		if (same_key(u, e) && ++same >= max_idle)
			return false;
	list_unlink(&p->busy, NULL, e);
	p->n_busy--;
	e->state = WP_UPPOOL_IDLE;
	e->idle_since_ms = now_ms;
	e->next = NULL;
	e->prev = p->idle_tail;
	if (p->idle_tail)
		p->idle_tail->next = e;
	else
		p->idle_head = e;
	p->idle_tail = e;
	p->n_idle++;
	return true;
}

unsigned wp_uppool_expire(struct wp_uppool *p, uint64_t now_ms)
{
	unsigned n = 0;

	/* the whole list: an entry with its own timeout may expire before
	 * older ones (one walk per tick, not per request) */
	for (struct wp_uppool_ent *e = p->idle_head, *next; e; e = next) {
		next = e->next;
		if (now_ms - e->idle_since_ms >= (e->idle_ms ? e->idle_ms : p->idle_timeout_ms)) {
			p->ops->retire(e);
			n++;
		}
	}
	return n;
}

struct wp_uppool_ent *wp_uppool_take_if(struct wp_uppool *p,
                                        bool (*pred)(const struct wp_uppool_ent *, void *),
                                        void *arg)
{
	for (struct wp_uppool_ent *e = p->idle_tail; e; e = e->prev) {
		if (!pred(e, arg))
			continue;
		list_unlink(&p->idle_head, &p->idle_tail, e);
		p->n_idle--;
		busy_push(p, e);
		return e;
	}
	return NULL;
}

bool wp_uppool_retire_if(struct wp_uppool *p, bool (*pred)(const struct wp_uppool_ent *, void *),
                         void *arg)
{
	for (struct wp_uppool_ent *e = p->idle_head; e; e = e->next)
		if (pred(e, arg)) {
			p->ops->retire(e);
			return true;
		}
	return false;
}

void wp_uppool_drain(struct wp_uppool *p)
{
	p->draining = true;
	while (p->idle_head)
		p->ops->retire(p->idle_head);
}

void wp_uppool_free(struct wp_uppool *p, struct wp_uppool_ent *e)
{
	unlink_any(p, e);
	e->state = WP_UPPOOL_FREE;
	e->ready = false;
	e->active = 0;
	e->prev = NULL;
	e->next = p->free;
	p->free = e;
}

void wp_uppool_tried_add(struct wp_uppool_tried *t, const struct wp_uppool_ent *e)
{
	if (t->n >= WP_UPPOOL_TRIED)
		return;
	t->ep[t->n].addr = e->addr;
	t->ep[t->n].port = e->port;
	t->n++;
}

static bool tried(const struct wp_uppool_tried *t, const struct wp_snap_endpoint *ep)
{
	for (uint8_t k = 0; k < t->n; k++)
		if (t->ep[k].port == ep->port && t->ep[k].addr.family == ep->addr.family &&
		    !memcmp(t->ep[k].addr.v6, ep->addr.v6, ep->addr.family == WP_AF_INET ? 4 : 16))
			return true;
	return false;
}

int wp_uppool_pick(const struct wp_route_cluster *cl, struct wp_lb_cache *lbc, uint64_t hash,
                   bool has_hash, const struct wp_uppool_tried *avoid)
{
	int i = -1;

	for (int k = 0; k < (avoid ? WP_UPPOOL_RETRY_PICKS : 1); k++) {
		i = wp_lb_pick(cl->lb, wp_lb_cache_core(lbc, cl->lb), hash, has_hash);
		if (i < 0 || (uint32_t)i >= cl->n_endpoints)
			return -1;
		if (!avoid || !tried(avoid, &cl->endpoints[i]))
			break;
	}
	return i;
}
