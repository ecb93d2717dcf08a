/*
 * Single-producer single-consumer rings, the way a worker hands records to
 * a thread that writes them out: the worker reserves room, fills it in
 * place and commits it; the consumer peeks the oldest record, uses it and
 * pops it. No lock and no allocation after creation; the two indexes sit
 * on their own cache lines. A full ring refuses the record (the caller
 * counts it): a worker never waits for the consumer.
 *
 * Two kinds: struct wp_spsc holds entries of one fixed size (spans);
 * struct wp_spsc_var holds records of any size back to back in a byte
 * buffer (access-log lines: a typical line takes a few cache lines where
 * a fixed slot for the longest would take twenty).
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

/* ---- records of any size ---------------------------------------------------------------- */

/*
 * Each record is an 8-byte header (its size in the buffer, header and
 * alignment included, and the size asked for) and its bytes, 8-byte
 * aligned, at the next free byte. A record never wraps: when it does not
 * fit before the end of the buffer, the producer writes a pad header over
 * the rest (the consumer skips it) and puts the record at the start.
 * Positions count bytes since creation (64 bits: they never wrap). Each
 * side keeps its last view of the other's position on its own line and
 * loads the other's (acquire) only when that view says full or empty, so
 * the lines the two threads share move only when they must.
 */
struct wp_spsc_var {
	uint64_t head WP_CACHE_ALIGNED; /* producer: bytes committed */
	uint64_t tail_seen;             /* producer: tail when last loaded */
	uint32_t pend;                  /* producer: bytes the reserved record takes */
	uint64_t tail WP_CACHE_ALIGNED; /* consumer: bytes released */
	uint64_t head_seen;             /* consumer: head when last loaded */
	uint64_t size WP_CACHE_ALIGNED; /* bytes in b, a power of two */
	uint8_t *b;
};

#define WP_SPSC_VAR_HDR 8u
#define WP_SPSC_VAR_PAD 0x80000000u /* header flag: skip to the end of the buffer */

/* A ring of <bytes> (rounded up to a power of two, 64 bytes to 1 GiB),
 * zeroed; NULL when out of memory. */
struct wp_spsc_var *wp_spsc_var_create(size_t bytes);
void wp_spsc_var_destroy(struct wp_spsc_var *q);

/* Producer: room for a record of <len> bytes (8-byte aligned), or NULL
 * when the ring has not that much free (or len could never fit). */
static inline void *wp_spsc_var_reserve(struct wp_spsc_var *q, size_t len)
{
	uint64_t pos = q->head & (q->size - 1), skip = 0;
	uint64_t need = (len + WP_SPSC_VAR_HDR + 7) & ~(uint64_t)7;
	uint32_t *h;

	if (need > q->size / 2)
		return NULL; /* beside a pad, it might never fit */
	if (need > q->size - pos)
		skip = q->size - pos;
	if (q->head + skip + need - q->tail_seen > q->size) {
		q->tail_seen = __atomic_load_n(&q->tail, __ATOMIC_ACQUIRE);
		if (q->head + skip + need - q->tail_seen > q->size)
			return NULL;
	}
	if (skip) {
		h = (uint32_t *)(q->b + pos);
		h[0] = WP_SPSC_VAR_PAD | (uint32_t)skip;
		pos = 0;
	}
	h = (uint32_t *)(q->b + pos);
	h[0] = (uint32_t)need;
	h[1] = (uint32_t)len;
	q->pend = (uint32_t)(skip + need);
	return h + 2;
}

/* Producer: publishes the record reserve() gave. */
static inline void wp_spsc_var_commit(struct wp_spsc_var *q)
{
	__atomic_store_n(&q->head, q->head + q->pend, __ATOMIC_RELEASE);
}

/* Producer: asks for the <bytes> after the last record to be brought
 * into this core's cache for writing, so that the next record's stores do
 * not wait for the lines the consumer read last (a hint: nothing else
 * changes). */
static inline void wp_spsc_var_prefetch(const struct wp_spsc_var *q, size_t bytes)
{
	uint64_t pos = q->head & (q->size - 1);

	for (size_t i = 0; i < bytes && pos + i < q->size; i += WP_CACHE_LINE)
		__builtin_prefetch(q->b + pos + i, 1, 3);
}

/* Consumer: the oldest committed record (and its length into *len, when
 * len is not NULL), or NULL when none. */
static inline void *wp_spsc_var_peek(struct wp_spsc_var *q, size_t *len)
{
	for (;;) {
		uint32_t *h;

		if (q->tail == q->head_seen) {
			q->head_seen = __atomic_load_n(&q->head, __ATOMIC_ACQUIRE);
			if (q->tail == q->head_seen)
				return NULL;
		}
		h = (uint32_t *)(q->b + (q->tail & (q->size - 1)));
		if (!(h[0] & WP_SPSC_VAR_PAD)) {
			if (len)
				*len = h[1];
			return h + 2;
		}
		__atomic_store_n(&q->tail, q->tail + (h[0] & ~WP_SPSC_VAR_PAD), __ATOMIC_RELEASE);
	}
}

/* Consumer: done with the record peek() gave; the producer may reuse its
 * bytes. */
static inline void wp_spsc_var_pop(struct wp_spsc_var *q)
{
	const uint32_t *h = (const uint32_t *)(q->b + (q->tail & (q->size - 1)));

	__atomic_store_n(&q->tail, q->tail + h[0], __ATOMIC_RELEASE);
}

#endif /* WP_DP_OBS_SPSC_H */
