/*
 * A single-producer single-consumer ring of fixed-size entries, the way a
 * worker hands records (access-log lines, spans) to a thread that writes
 * them out: the worker reserves an entry, fills it in place and commits it;
 * the consumer peeks the oldest, uses it and pops it. No lock and no
 * allocation after creation; the two indexes sit on their own cache lines.
 * A full ring refuses the entry (the caller counts it): a worker never
 * waits for the consumer.
 */
#ifndef WP_DP_OBS_SPSC_H
#define WP_DP_OBS_SPSC_H

#include <stddef.h>
#include <stdint.h>

#include "wp/common.h"

struct wp_spsc {
	uint32_t head WP_CACHE_ALIGNED; /* next entry the producer fills */
	uint32_t tail WP_CACHE_ALIGNED; /* next entry the consumer reads */
	uint32_t mask;
	uint32_t esz;
	uint8_t *e;
};

/* A ring of <entries> (rounded up to a power of two, at most 2^20) entries
 * of <esz> bytes, zeroed; NULL when out of memory. */
struct wp_spsc *wp_spsc_create(unsigned entries, size_t esz);
void wp_spsc_destroy(struct wp_spsc *q);

/* Producer: the entry to fill, or NULL when the ring is full. */
static inline void *wp_spsc_reserve(struct wp_spsc *q)
{
	uint32_t tail = __atomic_load_n(&q->tail, __ATOMIC_ACQUIRE);

	if (q->head - tail > q->mask)
		return NULL;
	return q->e + (size_t)(q->head & q->mask) * q->esz;
}

/* Producer: publishes the entry reserve() gave. */
static inline void wp_spsc_commit(struct wp_spsc *q)
{
	__atomic_store_n(&q->head, q->head + 1, __ATOMIC_RELEASE);
}

/* Consumer: the oldest committed entry, or NULL when none. */
static inline void *wp_spsc_peek(struct wp_spsc *q)
{
	if (q->tail == __atomic_load_n(&q->head, __ATOMIC_ACQUIRE))
		return NULL;
	return q->e + (size_t)(q->tail & q->mask) * q->esz;
}

/* Consumer: done with the entry peek() gave; the producer may reuse it. */
static inline void wp_spsc_pop(struct wp_spsc *q)
{
	__atomic_store_n(&q->tail, q->tail + 1, __ATOMIC_RELEASE);
}

#endif /* WP_DP_OBS_SPSC_H */
