/*
 * The handshake gate: how many inbound HBONE connections one worker holds
 * in TCP+TLS set-up at once (hbone.max_handshakes).
 *
 * An accepted connection holds some 41 KB of OpenSSL state (measured by
 * test_hbone_hsflood with OpenSSL 3.0) from its accept until its TLS
 * handshake completes (tls.c then frees the SSL object and keeps only the
 * record layer) or the connection goes.
 * hbone.connect_timeout_ms bounds how long a handshake may stall; this gate
 * bounds how many may stall at once. Past the cap the accept callback
 * refuses the connection before anything is allocated for it (the TCP
 * stack answers RST) and counts tunnel_handshake_limit. Established
 * connections never pass through the gate, so stalled handshakes can take
 * neither their place nor their memory.
 *
 * One per worker, changed by that worker only; busy and peak are also read
 * by telemetry (relaxed atomics).
 */
#ifndef WP_DP_TUNNEL_HSGATE_H
#define WP_DP_TUNNEL_HSGATE_H

#include <stdbool.h>
#include <stdint.h>

#include "wp/common.h"

struct wp_hsgate {
	uint32_t cap;  /* hbone.max_handshakes */
	uint32_t busy; /* admitted and not yet left */
	uint32_t peak; /* the highest busy since start (never above cap) */
};

void wp_hsgate_init(struct wp_hsgate *g, uint32_t cap);

/*
 * A newly accepted connection asks to start its handshake. true: admitted;
 * the caller calls wp_hsgate_leave() exactly once, when the handshake
 * completed or the connection is freed, whichever comes first. false: the
 * cap is reached, refuse the connection; counted in ctr
 * (WP_CTR_TUNNEL_HANDSHAKE_LIMIT, the per-core counter array).
 */
bool wp_hsgate_enter(struct wp_hsgate *g, uint64_t *ctr) WP_MUST_CHECK;

/* The admitted connection's handshake is over (done, failed or gone). */
void wp_hsgate_leave(struct wp_hsgate *g);

/* In flight now, and the high-water mark (any thread). */
uint32_t wp_hsgate_busy(const struct wp_hsgate *g);
uint32_t wp_hsgate_peak(const struct wp_hsgate *g);

/*
 * The handshake share (hbone.handshake_share): how much of a worker's time
 * TLS handshakes may take while other work waits. One handshake step (the
 * ClientHello's key exchange and signature, or the verification of the
 * client's certificate) takes hundreds of microseconds and cannot be cut
 * short; a storm of them run as their packets arrive would hold every
 * established tunnel's packets for as long as the storm lasts.
 *
 * So each step taken is owed (debt, in microseconds), and the time the
 * worker spends on anything else pays it back at share / (100 - share) per
 * microsecond: a step may start only while the debt is under one slice
 * (WP_HSSHARE_SLICE_US). An iteration of the worker's loop that had
 * nothing else to do (under WP_HSSHARE_QUIET_US of other work since the
 * one before) clears the debt, so handshakes alone still take the whole
 * core. The tunnel layer marks each iteration (its poll), times each step
 * and keeps the sessions whose step must wait in a FIFO for the next one.
 */
#define WP_HSSHARE_SLICE_US 100
#define WP_HSSHARE_QUIET_US 20

struct wp_hsshare {
	uint32_t share;    /* percent of the worker's time, 1..100 (100: unbounded) */
	uint64_t debt_us;  /* handshake time not yet paid back by other work */
	uint64_t spent_us; /* in handshake steps since the last mark */
	uint64_t mark_us;  /* the last iteration mark */
};

void wp_hsshare_init(struct wp_hsshare *s, uint32_t share_pct, uint64_t now_us);

/* A new iteration of the worker's loop begins at now_us. */
void wp_hsshare_iteration(struct wp_hsshare *s, uint64_t now_us);

/* May a handshake step start now? */
bool wp_hsshare_may_step(const struct wp_hsshare *s);

/* A handshake step took us microseconds. */
void wp_hsshare_charge(struct wp_hsshare *s, uint64_t us);

#endif /* WP_DP_TUNNEL_HSGATE_H */
