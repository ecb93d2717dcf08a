/*
 * A byte queue for tunnel bytes that the next hop could not take yet.
 *
 * HTTP/2 hands the tunnel every DATA frame the peer sent within the window
 * we advertised; when the upstream (a TCP send buffer or another HBONE
 * stream) accepts only part of it, the rest waits here, and the peer's
 * window reopens (wp_hbstream_consume) only as bytes leave the queue. So the
 * queue never holds more than the window we granted: bounded by
 * construction, no malloc on the data path (chunks come from the worker's
 * wp_h2mem), and an empty queue holds no memory at all.
 */
#ifndef WP_DP_TUNNEL_BQ_H
#define WP_DP_TUNNEL_BQ_H

#include <stddef.h>
#include <stdint.h>

#include "mem.h"

#define WP_BQ_CHUNK (16u * 1024u - 32u) /* payload per chunk: one allocator class */

struct wp_bq_chunk;

struct wp_bq {
	struct wp_bq_chunk *head, *tail;
	size_t len; /* bytes queued */
};

static inline void wp_bq_init(struct wp_bq *q)
{
	q->head = q->tail = NULL;
	q->len = 0;
}

static inline size_t wp_bq_len(const struct wp_bq *q)
{
	return q->len;
}

/*
 * Appends len bytes (copied). Returns 0, or -ENOMEM when mem refused a
 * chunk: then nothing was appended.
 */
int wp_bq_push(struct wp_bq *q, struct wp_h2mem *mem, const uint8_t *data, size_t len);

/* The first contiguous run of queued bytes: sets *p, returns its length (0 = empty). */
size_t wp_bq_peek(const struct wp_bq *q, const uint8_t **p);

/* Drops n (<= wp_bq_len) bytes from the front; empty chunks go back to mem. */
void wp_bq_pop(struct wp_bq *q, struct wp_h2mem *mem, size_t n);

/* Drops everything. */
void wp_bq_clear(struct wp_bq *q, struct wp_h2mem *mem);

#endif /* WP_DP_TUNNEL_BQ_H */
