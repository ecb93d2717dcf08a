/*
 * Fault injection for the port layer: drops, duplicates and reorders a
 * configured fraction of packets in one direction, from a seeded PRNG so a
 * failing run can be replayed. Off (all zero) by default. Sans-I/O: packets
 * are opaque handles, copied and freed through the ops the caller gives, so
 * unit tests run it on plain pointers and the worker on mbufs.
 */
#ifndef WP_DP_PORT_FAULT_H
#define WP_DP_PORT_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#include "wp/counters.h"

#define WP_FAULT_HOLD_POLLS 4 /* a held-back packet waits at most this many polls */

struct wp_fault_ops {
	void *(*copy)(void *pkt, void *arg); /* a duplicate, or NULL when out of buffers */
	void (*free)(void *pkt, void *arg);
	void *arg;
};

struct wp_fault {
	double drop, dup, reorder; /* fractions 0..1 */
	uint64_t rng;              /* xorshift64* state, never 0 */
	void *held;                /* a packet held back to be sent after a later one */
	unsigned held_polls;
	enum wp_ctr ctr_drop, ctr_dup, ctr_reorder;
	bool enabled;
};

/* Sets up one direction. seed is mixed with <salt> (e.g. worker and port). */
void wp_fault_init(struct wp_fault *f, double drop, double dup, double reorder, uint64_t seed,
                   uint64_t salt, enum wp_ctr ctr_drop, enum wp_ctr ctr_dup,
                   enum wp_ctr ctr_reorder);

/*
 * Filters pkts[0..n) into out[] (room for out_max, which must be at least
 * 2 * n + 1). Dropped packets are freed through ops and counted. Returns how
 * many packets are in out[]; they are the caller's. Call it every poll, with
 * n == 0 too, so a held-back packet is released in time.
 */
uint16_t wp_fault_filter(struct wp_fault *f, void **pkts, uint16_t n, void **out, uint16_t out_max,
                         const struct wp_fault_ops *ops, uint64_t *ctr);

/* Frees a held-back packet (at shutdown). */
void wp_fault_flush(struct wp_fault *f, const struct wp_fault_ops *ops);

#endif /* WP_DP_PORT_FAULT_H */
