/*
 * The session timer wheel: when each HBONE session next needs the worker's
 * attention without any bytes arriving (its handshake deadline, a keepalive
 * PING due or overdue, the idle trim of its TLS buffers, a retry of
 * ciphertext TCP refused).
 *
 * A hashed timing wheel (Varghese & Lauck): WP_TWHEEL_SLOTS lists, one per
 * tick of tick_ms, a node in the list of the tick its deadline rounds up
 * to. Arming and disarming are O(1); expiring visits only the slots of the
 * ticks that passed and, in them, only the nodes whose round it is (a
 * deadline more than one turn ahead stays in its slot until its turn). So
 * 100,000 idle sessions cost the poll nothing between their deadlines,
 * where a walk of every session each tick touched them all ten times a
 * second.
 *
 * A node never fires before its deadline, and at most one tick after it
 * (if the poll asks at least once a tick). A deadline already passed fires
 * at the next tick. Nodes are embedded in their owner (container_of);
 * the owner disarms before it is freed. One wheel per worker, used by that
 * worker only. No DPDK here: unit tested in tests/unit/dp/tunnel.
 */
#ifndef WP_DP_TUNNEL_TWHEEL_H
#define WP_DP_TUNNEL_TWHEEL_H

#include <stdbool.h>
#include <stdint.h>

#define WP_TWHEEL_SLOTS 1024 /* a power of two: with 100 ms ticks, 102.4 s a turn */

struct wp_twheel_node {
	struct wp_twheel_node *next, *prev; /* NULL when not armed */
	uint64_t tick;                      /* the tick it fires at */
};

struct wp_twheel {
	uint32_t tick_ms;
	uint64_t next_tick;                          /* the first tick not yet expired */
	struct wp_twheel_node due;                   /* the slot being expired (list head) */
	struct wp_twheel_node slot[WP_TWHEEL_SLOTS]; /* list heads */
};

/* An empty wheel whose first tick is the one holding now_ms. */
void wp_twheel_init(struct wp_twheel *w, uint32_t tick_ms, uint64_t now_ms);

/* Arms n to fire at at_ms (moves it if armed). */
void wp_twheel_arm(struct wp_twheel *w, struct wp_twheel_node *n, uint64_t at_ms);

/* Disarms n (nothing if not armed). */
void wp_twheel_disarm(struct wp_twheel_node *n);

static inline bool wp_twheel_armed(const struct wp_twheel_node *n)
{
	return n->next != NULL;
}

/*
 * The next node due at now_ms, disarmed, or NULL when none is. Call until
 * NULL; the caller may arm, disarm or re-arm any node (the one returned
 * included) between calls.
 */
struct wp_twheel_node *wp_twheel_pop(struct wp_twheel *w, uint64_t now_ms);

#endif /* WP_DP_TUNNEL_TWHEEL_H */
