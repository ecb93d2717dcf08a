/*
 * Reading and publishing snapshots (types in wp/snapshot_types.h).
 *
 * Publication is RCU with DPDK's rte_rcu_qsbr (plain memory, no EAL
 * needed). The contract:
 *
 *  worker thread                          control-plane thread
 *  -------------                          --------------------
 *  wp_snapshot_slot_register(slot, id)    slot = wp_snapshot_slot_create(n)
 *  loop {                                 wp_snapshot_publish(slot, snap)
 *    wp_snapshot_quiescent(slot, id)        (swap; old one freed later)
 *    s = wp_snapshot_get(slot)            wp_snapshot_slot_reclaim(slot)
 *    ... use s until the next quiescent     (frees what no worker can see)
 *  }                                      wp_snapshot_slot_destroy(slot)
 *  wp_snapshot_slot_unregister(slot, id)
 *
 * A worker must report quiescence once per loop iteration, even when idle.
 * Publishing never waits for a worker: the old snapshot goes on a pending
 * list with an RCU token and is freed by a later publish/reclaim once every
 * registered worker has passed a quiescent point.
 */
#ifndef WP_SNAPSHOT_H
#define WP_SNAPSHOT_H

#include "wp/common.h"
#include "wp/snapshot_types.h"

struct wp_sockaddr;
struct wp_snapshot_slot;

/* ---- data plane ------------------------------------------------------------ */

/*
 * Finds the captured destination for an HBONE :authority. Tries ip:port
 * (a service) and then ip with any port (a workload). NULL = this waypoint
 * does not capture it (answer 400). Read-only; safe on any thread.
 */
const struct wp_snap_dest *wp_snapshot_lookup(const struct wp_snapshot *s,
                                              const struct wp_sockaddr *dst);

/* The current snapshot (may be NULL before the first publish). Valid until
 * the calling worker's next wp_snapshot_quiescent(). */
const struct wp_snapshot *wp_snapshot_get(const struct wp_snapshot_slot *slot);

/* Reports that worker_id holds no snapshot pointer. Once per loop. */
void wp_snapshot_quiescent(struct wp_snapshot_slot *slot, unsigned worker_id);

/* Called by the worker thread at start (registers and goes online) and at
 * exit (offline and unregistered). 0 or -EINVAL. */
int wp_snapshot_slot_register(struct wp_snapshot_slot *slot, unsigned worker_id);
int wp_snapshot_slot_unregister(struct wp_snapshot_slot *slot, unsigned worker_id);

/* ---- control plane ----------------------------------------------------------- */

/* A slot for up to n_workers readers (ids 0..n_workers-1), or NULL. */
struct wp_snapshot_slot *wp_snapshot_slot_create(unsigned n_workers);

/*
 * Makes next the current snapshot (the slot owns it from now on) and queues
 * the previous one for freeing after the grace period; then reclaims what it
 * can. Never blocks. 0, or -ENOMEM (next is then freed, the old one stays).
 */
int wp_snapshot_publish(struct wp_snapshot_slot *slot, struct wp_snapshot *next);

/* Frees retired snapshots that no worker can still see. Returns how many
 * are still waiting. */
unsigned wp_snapshot_slot_reclaim(struct wp_snapshot_slot *slot);

/* Waits (on the calling control-plane thread) for a full grace period and
 * frees everything retired. */
void wp_snapshot_slot_sync(struct wp_snapshot_slot *slot);

/* Frees the current snapshot and the slot; workers must be unregistered. */
void wp_snapshot_slot_destroy(struct wp_snapshot_slot *slot);

/* The current snapshot for control-plane readers (the admin server): the
 * control plane is the only publisher, so it may read without RCU. */
const struct wp_snapshot *wp_snapshot_slot_current(const struct wp_snapshot_slot *slot);

/* Frees a snapshot that was never published, or one whose grace period has
 * passed (drops its references on shared blocks). Control plane only. */
void wp_snapshot_free(struct wp_snapshot *s);

/* "http", "http2", "grpc", "tcp", "tls", "https", "unknown". */
const char *wp_app_proto_name(enum wp_app_proto p);

#endif /* WP_SNAPSHOT_H */
