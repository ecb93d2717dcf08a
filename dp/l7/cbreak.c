/*
 * Circuit breaking (cbreak.h): a core's counts per limited cluster in a
 * small open-addressed table keyed by a hash of the cluster name, and the
 * checks against this core's share of each DestinationRule limit. Runs on
 * the worker that owns the table; nothing here locks or allocates.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cbreak.h"
#include "wp/counters.h"
#include "wp/hash.h"

const char wp_cb_overflow_body[] =
        "upstream connect error or disconnect/reset before headers. reset reason: overflow";

_Static_assert(sizeof(wp_cb_overflow_body) - 1 == WP_CB_OVERFLOW_BODY_LEN, "body length");

void wp_cb_core_init(struct wp_cb_core *c, uint32_t n_workers, uint64_t *ctr)
{
	memset(c, 0, sizeof(*c));
	c->n_workers = n_workers ? n_workers : 1;
	c->ctr = ctr;
}

static bool slot_unused(const struct wp_cb_clu *k)
{
	return !k->conns && !k->rq && !k->pending && !k->retries && !k->wait_head;
}

static uint64_t key_of(const struct wp_route_cluster *cl)
{
	return wp_hash_bytes(0x6362726b, cl->name, strlen(cl->name)) | 1; /* never 0 */
}

bool wp_cb_is(const struct wp_cb_clu *k, const struct wp_route_cluster *cl)
{
	return k && k->key == key_of(cl);
}

struct wp_cb_clu *wp_cb_get(struct wp_cb_core *c, const struct wp_route_cluster *cl)
{
	struct wp_cb_clu *reuse = NULL;
	uint64_t key;
	uint32_t i;

	if (!wp_cb_limited(&cl->pool))
		return NULL;
	key = key_of(cl);
	i = (uint32_t)key % WP_CB_SLOTS;
	/* the whole probe chain first: a key is in the table at most once */
	for (uint32_t n = 0; n < WP_CB_SLOTS; n++, i = (i + 1) % WP_CB_SLOTS) {
		struct wp_cb_clu *k = &c->slot[i];

		if (k->key == key)
			return k;
		if (!k->key) {
			if (!reuse)
				reuse = k;
			break;
		}
		if (!reuse && slot_unused(k))
			reuse = k;
	}
	if (!reuse) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_CB_TABLE_FULL);
		return NULL;
	}
	memset(reuse, 0, sizeof(*reuse));
	reuse->key = key;
	return reuse;
}

bool wp_cb_req_begin(struct wp_cb_core *c, struct wp_cb_clu *k, const struct wp_route_cluster *cl)
{
	if (k->rq >= wp_cb_share(c, cl->pool.max_requests)) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_UPSTREAM_OVERFLOW);
		wp_ctr_inc(c->ctr, WP_CTR_L7_CB_RQ_OVERFLOW);
		return false;
	}
	k->rq++;
	return true;
}

void wp_cb_req_end(struct wp_cb_clu *k)
{
	if (k && k->rq > 0)
		k->rq--;
}

bool wp_cb_wait(struct wp_cb_core *c, struct wp_cb_clu *k, const struct wp_route_cluster *cl,
                struct wp_cb_wait *w)
{
	if (k->pending >= wp_cb_share(c, cl->pool.max_pending)) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_UPSTREAM_OVERFLOW);
		wp_ctr_inc(c->ctr, WP_CTR_L7_CB_PENDING_OVERFLOW);
		return false;
	}
	k->pending++;
	w->clu = k;
	w->next = NULL;
	w->prev = k->wait_tail;
	if (k->wait_tail)
		k->wait_tail->next = w;
	else
		k->wait_head = w;
	k->wait_tail = w;
	wp_ctr_inc(c->ctr, WP_CTR_L7_CB_PENDING);
	return true;
}

void wp_cb_unwait(struct wp_cb_wait *w)
{
	struct wp_cb_clu *k = w->clu;

	if (!k)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		k->wait_head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		k->wait_tail = w->prev;
	w->prev = w->next = NULL;
	w->clu = NULL;
	k->pending--;
}

bool wp_cb_retry_begin(struct wp_cb_core *c, struct wp_cb_clu *k, const struct wp_route_cluster *cl)
{
	if (k && k->retries >= wp_cb_share(c, cl->pool.max_retries)) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_CB_RETRY_OVERFLOW);
		return false;
	}
	if (k)
		k->retries++;
	return true;
}

void wp_cb_retry_end(struct wp_cb_clu *k)
{
	if (k && k->retries > 0)
		k->retries--;
}

int wp_cb_write_overflow(bool keep_alive, bool head_only, char *buf, size_t cap)
{
	int n = snprintf(buf, cap,
	                 "HTTP/1.1 503 Service Unavailable\r\ncontent-length: %u\r\n"
	                 "content-type: text/plain\r\nx-envoy-overloaded: true\r\n%s\r\n%s",
	                 WP_CB_OVERFLOW_BODY_LEN, keep_alive ? "" : "connection: close\r\n",
	                 head_only ? "" : wp_cb_overflow_body);

	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}
