/*
 * The per-core neighbour cache: IPv4 address -> MAC, plus the packets that
 * wait for an address to resolve. Everything is allocated at create time:
 *
 *  - a power-of-two open-addressing table (linear probing, at most half
 *    full) of entries; deletion shifts the following cluster back
 *    (Knuth's algorithm R), so there are no tombstones;
 *  - a pool of <pending_max> pending nodes. Each node sits on its entry's
 *    FIFO (singly linked, head/tail in the entry) and on one global list in
 *    arrival order (doubly linked). All packets share one timeout, so the
 *    global list is also expiry order and wp_arp_cache_expire() only looks
 *    at its head. Nodes name their entry by address, not by slot, so
 *    entries may move during deletion.
 *
 * When the table is full, entries that are stale and hold no packets are
 * reclaimed (at most every GC_INTERVAL_US) before an insert gives up.
 */
#include <errno.h>
#include <stdlib.h>

#include "net_bytes.h"
#include "wp/counters.h"

#define NIL              UINT32_MAX
#define REQUEST_RETRY_US 1000000u /* re-send an ARP request at most once a second */
#define GC_INTERVAL_US   10000u

enum entry_state {
	ENTRY_FREE = 0,
	ENTRY_INCOMPLETE, /* requested, never answered */
	ENTRY_RESOLVED,   /* mac valid; fresh while now - learned_us < ttl */
};

struct arp_entry {
	uint32_t ip; /* network order */
	uint8_t mac[6];
	uint8_t state;
	bool requested; /* requested_us is valid */
	uint64_t learned_us;
	uint64_t requested_us;
	uint32_t pend_head; /* node index or NIL */
	uint32_t pend_tail;
	uint32_t npend;
};

struct pend_node {
	void *pkt;
	uint64_t queued_us;
	uint32_t ip;        /* owning entry's address */
	uint32_t next_same; /* next node of the same entry (FIFO) */
	uint32_t prev_all;  /* global arrival-order list */
	uint32_t next_all;
};

struct wp_arp_cache {
	struct arp_entry *slots;
	uint32_t mask; /* slots - 1 */
	uint32_t shift;
	uint32_t count;
	uint32_t max_entries;
	uint64_t ttl_us;
	uint64_t pending_timeout_us;
	uint64_t last_gc_us;
	bool gc_ran;

	struct pend_node *nodes;
	uint32_t pending_max;
	uint32_t npending;
	uint32_t free_head; /* free nodes, chained through next_all */
	uint32_t all_head;  /* oldest */
	uint32_t all_tail;  /* newest */

	wp_arp_free_cb free_cb;
	void *free_arg;
};

static uint32_t slot_of(const struct wp_arp_cache *c, uint32_t ip)
{
	/* Fibonacci hashing; the top bits are the best mixed. */
	return (uint32_t)((ip * 2654435769u) >> c->shift) & c->mask;
}

static struct arp_entry *find(const struct wp_arp_cache *c, uint32_t ip)
{
	for (uint32_t i = slot_of(c, ip);; i = (i + 1) & c->mask) {
		struct arp_entry *e = &c->slots[i];
		if (e->state == ENTRY_FREE)
			return NULL;
		if (e->ip == ip)
			return e;
	}
}

/* Removes the entry at slot i and closes the gap (no tombstones). */
static void remove_slot(struct wp_arp_cache *c, uint32_t i)
{
	uint32_t j = i;

	c->slots[i].state = ENTRY_FREE;
	c->count--;
	for (;;) {
		j = (j + 1) & c->mask;
		struct arp_entry *e = &c->slots[j];
		if (e->state == ENTRY_FREE)
			return;
		uint32_t home = slot_of(c, e->ip);
		/* Move e back to i unless its home lies cyclically in (i, j]. */
		bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
		if (stays)
			continue;
		c->slots[i] = *e;
		e->state = ENTRY_FREE;
		i = j;
	}
}

static bool reclaimable(const struct wp_arp_cache *c, const struct arp_entry *e, uint64_t now_us)
{
	if (e->npend)
		return false;
	if (e->state == ENTRY_RESOLVED)
		return now_us - e->learned_us >= c->ttl_us;
	return now_us - e->requested_us >= c->pending_timeout_us;
}

/* Drops stale entries that hold no packets. */
static void gc(struct wp_arp_cache *c, uint64_t now_us)
{
	if (c->gc_ran && now_us - c->last_gc_us < GC_INTERVAL_US)
		return;
	c->gc_ran = true;
	c->last_gc_us = now_us;
	uint32_t i = 0;
	while (i <= c->mask) {
		struct arp_entry *e = &c->slots[i];
		/* After a removal slot i holds a shifted entry: look again. */
		if (e->state != ENTRY_FREE && reclaimable(c, e, now_us))
			remove_slot(c, i);
		else
			i++;
	}
}

/*
 * Returns the entry for ip, inserting a fresh one (state ENTRY_FREE is then
 * left for the caller to set) if there is room; NULL when the table is full.
 */
static struct arp_entry *find_or_insert(struct wp_arp_cache *c, uint32_t ip, uint64_t now_us,
                                        bool *inserted)
{
	struct arp_entry *e = find(c, ip);

	*inserted = false;
	if (e)
		return e;
	if (c->count >= c->max_entries) {
		gc(c, now_us);
		if (c->count >= c->max_entries)
			return NULL;
	}
	uint32_t i = slot_of(c, ip);
	while (c->slots[i].state != ENTRY_FREE)
		i = (i + 1) & c->mask;
	e = &c->slots[i];
	memset(e, 0, sizeof(*e));
	e->ip = ip;
	e->pend_head = NIL;
	e->pend_tail = NIL;
	c->count++;
	*inserted = true;
	return e;
}

struct wp_arp_cache *wp_arp_cache_create(uint32_t entries, uint32_t pending_max, uint64_t ttl_us,
                                         uint64_t pending_timeout_us, wp_arp_free_cb free_cb,
                                         void *free_arg)
{
	if (entries == 0 || entries > (1u << 30) || pending_max >= NIL || !free_cb)
		return NULL;
	struct wp_arp_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	uint32_t bits = 1;
	while ((1u << bits) < entries * 2)
		bits++;
	c->slots = calloc((size_t)1 << bits, sizeof(*c->slots));
	if (!c->slots)
		goto fail_slots;
	c->nodes = calloc(pending_max ? pending_max : 1, sizeof(*c->nodes));
	if (!c->nodes)
		goto fail_nodes;
	c->mask = (1u << bits) - 1;
	c->shift = 32 - bits;
	c->max_entries = entries;
	c->ttl_us = ttl_us;
	c->pending_timeout_us = pending_timeout_us;
	c->pending_max = pending_max;
	c->free_cb = free_cb;
	c->free_arg = free_arg;
	c->all_head = NIL;
	c->all_tail = NIL;
	c->free_head = pending_max ? 0 : NIL;
	for (uint32_t i = 0; i < pending_max; i++)
		c->nodes[i].next_all = i + 1 < pending_max ? i + 1 : NIL;
	return c;

fail_nodes:
	free(c->slots);
fail_slots:
	free(c);
	return NULL;
}

void wp_arp_cache_destroy(struct wp_arp_cache *c)
{
	if (!c)
		return;
	for (uint32_t n = c->all_head; n != NIL; n = c->nodes[n].next_all)
		c->free_cb(c->nodes[n].pkt, c->free_arg);
	free(c->nodes);
	free(c->slots);
	free(c);
}

bool wp_arp_cache_lookup(struct wp_arp_cache *c, uint32_t ip, uint64_t now_us, uint8_t mac[6])
{
	const struct arp_entry *e = find(c, ip);

	if (!e || e->state != ENTRY_RESOLVED || now_us - e->learned_us >= c->ttl_us)
		return false;
	memcpy(mac, e->mac, 6);
	return true;
}

bool wp_arp_cache_contains(const struct wp_arp_cache *c, uint32_t ip)
{
	return find(c, ip) != NULL;
}

int wp_arp_cache_learn(struct wp_arp_cache *c, uint32_t ip, const uint8_t mac[6], uint64_t now_us,
                       uint64_t *ctr)
{
	bool inserted;
	struct arp_entry *e = find_or_insert(c, ip, now_us, &inserted);

	if (!e) {
		wp_ctr_inc(ctr, WP_CTR_ARP_TABLE_FULL);
		return -ENOSPC;
	}
	memcpy(e->mac, mac, 6);
	e->state = ENTRY_RESOLVED;
	e->learned_us = now_us;
	e->requested = false; /* once stale, the first queued packet asks again */
	wp_ctr_inc(ctr, WP_CTR_ARP_LEARNED);
	return 0;
}

int wp_arp_cache_queue(struct wp_arp_cache *c, uint32_t ip, void *pkt, uint64_t now_us,
                       uint64_t *ctr)
{
	if (c->npending >= c->pending_max) {
		wp_ctr_inc(ctr, WP_CTR_ARP_PENDING_FULL);
		return -ENOBUFS;
	}
	bool inserted;
	struct arp_entry *e = find_or_insert(c, ip, now_us, &inserted);
	if (!e) {
		wp_ctr_inc(ctr, WP_CTR_ARP_TABLE_FULL);
		return -ENOBUFS;
	}
	if (inserted)
		e->state = ENTRY_INCOMPLETE;

	uint32_t n = c->free_head;
	struct pend_node *p = &c->nodes[n];
	c->free_head = p->next_all;
	c->npending++;
	p->pkt = pkt;
	p->queued_us = now_us;
	p->ip = ip;
	p->next_same = NIL;
	if (e->pend_tail == NIL)
		e->pend_head = n;
	else
		c->nodes[e->pend_tail].next_same = n;
	e->pend_tail = n;
	e->npend++;
	p->next_all = NIL;
	p->prev_all = c->all_tail;
	if (c->all_tail == NIL)
		c->all_head = n;
	else
		c->nodes[c->all_tail].next_all = n;
	c->all_tail = n;

	if (!e->requested || now_us - e->requested_us >= REQUEST_RETRY_US) {
		e->requested = true;
		e->requested_us = now_us;
		return 1;
	}
	return 0;
}

/* Pops the oldest node of e, unlinks it from the global list and frees it. */
static void *pop_head(struct wp_arp_cache *c, struct arp_entry *e)
{
	uint32_t n = e->pend_head;
	struct pend_node *p = &c->nodes[n];

	e->pend_head = p->next_same;
	if (e->pend_head == NIL)
		e->pend_tail = NIL;
	e->npend--;
	if (p->prev_all == NIL)
		c->all_head = p->next_all;
	else
		c->nodes[p->prev_all].next_all = p->next_all;
	if (p->next_all == NIL)
		c->all_tail = p->prev_all;
	else
		c->nodes[p->next_all].prev_all = p->prev_all;
	p->next_all = c->free_head;
	c->free_head = n;
	c->npending--;
	return p->pkt;
}

unsigned wp_arp_cache_take_pending(struct wp_arp_cache *c, uint32_t ip, void **pkts, unsigned max)
{
	struct arp_entry *e = find(c, ip);
	unsigned k = 0;

	if (!e)
		return 0;
	while (k < max && e->pend_head != NIL)
		pkts[k++] = pop_head(c, e);
	return k;
}

void wp_arp_cache_expire(struct wp_arp_cache *c, uint64_t now_us, uint64_t *ctr)
{
	while (c->all_head != NIL) {
		const struct pend_node *p = &c->nodes[c->all_head];
		if (now_us - p->queued_us < c->pending_timeout_us)
			return;
		struct arp_entry *e = find(c, p->ip);
		/* Per-entry FIFOs are in arrival order: the oldest is e's head. */
		WP_ASSERT(e && e->pend_head == c->all_head);
		void *pkt = pop_head(c, e);
		c->free_cb(pkt, c->free_arg);
		wp_ctr_inc(ctr, WP_CTR_ARP_PENDING_EXPIRED);
	}
}

uint32_t wp_arp_cache_pending_count(const struct wp_arp_cache *c)
{
	return c->npending;
}

uint32_t wp_arp_cache_count(const struct wp_arp_cache *c)
{
	return c->count;
}
