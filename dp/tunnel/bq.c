/*
 * The tunnel byte queue (see bq.h): a singly linked list of fixed chunks
 * taken from the worker's HTTP/2 allocator.
 */
#include <errno.h>
#include <string.h>

#include "bq.h"
#include "wp/common.h"

struct wp_bq_chunk {
	struct wp_bq_chunk *next;
	uint32_t off, len; /* live bytes are data[off, off + len) */
	uint8_t data[WP_BQ_CHUNK];
};

int wp_bq_push(struct wp_bq *q, struct wp_h2mem *mem, const uint8_t *data, size_t len)
{
	struct wp_bq_chunk *first = NULL, *last = NULL, *c;
	size_t n, done = 0, room;

	/* Fill the tail's free room first, then new chunks; allocate all the
	 * new chunks before touching the queue so a refusal changes nothing. */
	c = q->tail;
	room = c != NULL ? WP_BQ_CHUNK - c->off - c->len : 0;
	if (len > room) {
		size_t need = len - room;

		while (need > 0) {
			struct wp_bq_chunk *k = wp_h2mem_alloc(mem, sizeof(*k));

			if (k == NULL) {
				while (first != NULL) {
					k = first->next;
					wp_h2mem_release(mem, first);
					first = k;
				}
				return -ENOMEM;
			}
			k->next = NULL;
			k->off = k->len = 0;
			if (last != NULL)
				last->next = k;
			else
				first = k;
			last = k;
			need -= WP_MIN(need, (size_t)WP_BQ_CHUNK);
		}
	}
	if (room > 0) {
		n = WP_MIN(room, len);
		memcpy(c->data + c->off + c->len, data, n);
		c->len += (uint32_t)n;
		done = n;
	}
	for (c = first; c != NULL; c = c->next) {
		n = WP_MIN(len - done, (size_t)WP_BQ_CHUNK);
		memcpy(c->data, data + done, n);
		c->len = (uint32_t)n;
		done += n;
	}
	if (first != NULL) {
		if (q->tail != NULL)
			q->tail->next = first;
		else
			q->head = first;
		q->tail = last;
	}
	q->len += len;
	return 0;
}

size_t wp_bq_peek(const struct wp_bq *q, const uint8_t **p)
{
	if (q->head == NULL) {
		*p = NULL;
		return 0;
	}
	*p = q->head->data + q->head->off;
	return q->head->len;
}

void wp_bq_pop(struct wp_bq *q, struct wp_h2mem *mem, size_t n)
{
	WP_ASSERT(n <= q->len);
	q->len -= n;
	while (n > 0) {
		struct wp_bq_chunk *c = q->head;
		size_t k = WP_MIN(n, (size_t)c->len);

		c->off += (uint32_t)k;
		c->len -= (uint32_t)k;
		n -= k;
		if (c->len == 0) {
			/* A drained chunk goes back, even the tail: empty queues hold nothing. */
			q->head = c->next;
			if (q->head == NULL)
				q->tail = NULL;
			wp_h2mem_release(mem, c);
		}
	}
}

void wp_bq_clear(struct wp_bq *q, struct wp_h2mem *mem)
{
	while (q->head != NULL) {
		struct wp_bq_chunk *c = q->head;

		q->head = c->next;
		wp_h2mem_release(mem, c);
	}
	q->tail = NULL;
	q->len = 0;
}
