/*
 * Snapshot publication with rte_rcu_qsbr (see wp/snapshot.h). The QSBR
 * variable is plain memory, so this works without rte_eal_init(). Retired
 * snapshots wait on a FIFO with the token rte_rcu_qsbr_start() gave when
 * they were retired; they are freed once rte_rcu_qsbr_check() says every
 * registered worker has reported quiescence since. The control plane is
 * the only publisher and the only one that frees.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_rcu_qsbr.h>

#include "wp/snapshot.h"

struct retired {
	struct retired *next;
	struct wp_snapshot *snap;
	uint64_t token;
};

struct wp_snapshot_slot {
	struct wp_snapshot *current; /* written with release, read with acquire */
	struct rte_rcu_qsbr *qsbr;
	unsigned n_workers;
	struct retired *head, *tail; /* oldest first */
	unsigned n_retired;
};

struct wp_snapshot_slot *wp_snapshot_slot_create(unsigned n_workers)
{
	struct wp_snapshot_slot *s;
	size_t sz;

	if (!n_workers)
		n_workers = 1;
	sz = rte_rcu_qsbr_get_memsize(n_workers);
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	sz = (sz + RTE_CACHE_LINE_SIZE - 1) & ~(size_t)(RTE_CACHE_LINE_SIZE - 1);
	s->qsbr = aligned_alloc(RTE_CACHE_LINE_SIZE, sz);
	if (!s->qsbr || rte_rcu_qsbr_init(s->qsbr, n_workers)) {
		free(s->qsbr);
		free(s);
		return NULL;
	}
	s->n_workers = n_workers;
	return s;
}

int wp_snapshot_slot_register(struct wp_snapshot_slot *slot, unsigned worker_id)
{
	if (worker_id >= slot->n_workers || rte_rcu_qsbr_thread_register(slot->qsbr, worker_id))
		return -EINVAL;
	rte_rcu_qsbr_thread_online(slot->qsbr, worker_id);
	return 0;
}

int wp_snapshot_slot_unregister(struct wp_snapshot_slot *slot, unsigned worker_id)
{
	if (worker_id >= slot->n_workers)
		return -EINVAL;
	rte_rcu_qsbr_thread_offline(slot->qsbr, worker_id);
	return rte_rcu_qsbr_thread_unregister(slot->qsbr, worker_id) ? -EINVAL : 0;
}

void wp_snapshot_quiescent(struct wp_snapshot_slot *slot, unsigned worker_id)
{
	rte_rcu_qsbr_quiescent(slot->qsbr, worker_id);
}

const struct wp_snapshot *wp_snapshot_get(const struct wp_snapshot_slot *slot)
{
	return __atomic_load_n(&slot->current, __ATOMIC_ACQUIRE);
}

const struct wp_snapshot *wp_snapshot_slot_current(const struct wp_snapshot_slot *slot)
{
	return __atomic_load_n(&slot->current, __ATOMIC_ACQUIRE);
}

unsigned wp_snapshot_slot_reclaim(struct wp_snapshot_slot *slot)
{
	while (slot->head && rte_rcu_qsbr_check(slot->qsbr, slot->head->token, false) == 1) {
		struct retired *r = slot->head;

		slot->head = r->next;
		if (!slot->head)
			slot->tail = NULL;
		wp_snapshot_free(r->snap);
		free(r);
		slot->n_retired--;
	}
	return slot->n_retired;
}

int wp_snapshot_publish(struct wp_snapshot_slot *slot, struct wp_snapshot *next)
{
	struct retired *r = NULL;
	struct wp_snapshot *old = slot->current;

	if (old) {
		r = calloc(1, sizeof(*r));
		if (!r) {
			wp_snapshot_free(next);
			return -ENOMEM;
		}
	}
	__atomic_store_n(&slot->current, next, __ATOMIC_RELEASE);
	if (r) {
		/* the token is taken after the swap: a worker that reports
		 * quiescence past it can no longer hold the old pointer */
		r->snap = old;
		r->token = rte_rcu_qsbr_start(slot->qsbr);
		if (slot->tail)
			slot->tail->next = r;
		else
			slot->head = r;
		slot->tail = r;
		slot->n_retired++;
	}
	wp_snapshot_slot_reclaim(slot);
	return 0;
}

void wp_snapshot_slot_sync(struct wp_snapshot_slot *slot)
{
	rte_rcu_qsbr_synchronize(slot->qsbr, RTE_QSBR_THRID_INVALID);
	wp_snapshot_slot_reclaim(slot);
	while (slot->n_retired) {
		rte_pause();
		wp_snapshot_slot_reclaim(slot);
	}
}

void wp_snapshot_slot_destroy(struct wp_snapshot_slot *slot)
{
	if (!slot)
		return;
	wp_snapshot_slot_sync(slot);
	wp_snapshot_free(slot->current);
	free(slot->qsbr);
	free(slot);
}
