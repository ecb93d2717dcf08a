/*
 * The retry decision both proxies share (h1proxy.c, h2proxy.c): whether a
 * try's outcome is retried under a rule's compiled policy (struct
 * wp_route_retry, include/wp/route.h: Envoy's retryOn conditions and
 * retriable status codes), and how long to wait before the next try
 * (Envoy's fully jittered exponential backoff). Counting the tries left,
 * holding the request for a replay and the maxRetries budget (cbreak.h)
 * stay with each proxy: this file only decides. No state but a per-core
 * PRNG; nothing allocates.
 */
#ifndef WP_DP_L7_RETRY_H
#define WP_DP_L7_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "wp/route.h"

/* How a try ended without a response the client may see yet. */
enum wp_retry_ev {
	WP_RETRY_EV_CONNECT = 0, /* the connection could not be opened */
	WP_RETRY_EV_REFUSED,     /* h2: REFUSED_STREAM, or above a GOAWAY */
	WP_RETRY_EV_RESET,       /* reset or closed before a response head */
	WP_RETRY_EV_TIMEOUT,     /* the per-try timeout (perTryTimeout, backendRequest) */
};

/* The conditions read from a response's grpc-status. */
#define WP_RETRY_GRPC_BITS                                                                         \
	(WP_ROUTE_RETRY_UNAVAILABLE | WP_ROUTE_RETRY_CANCELLED | WP_ROUTE_RETRY_DEADLINE |         \
	 WP_ROUTE_RETRY_INTERNAL | WP_ROUTE_RETRY_RES_EXHAUSTED)

/* Envoy's default backoff base interval; the cap is 10 times the base. */
#define WP_RETRY_BACKOFF_BASE_MS 25u
#define WP_RETRY_BACKOFF_MAX_MUL 10u

/* Whether <ev> is retried under <p> (ignoring the tries left). */
bool wp_retry_on_event(const struct wp_route_retry *p, enum wp_retry_ev ev);

/* Whether a response with <status> (and gRPC status <grpc>, -1 when the
 * head has none: gRPC statuses count only in a trailers-only head) is
 * retried under <p> (ignoring the tries left). */
bool wp_retry_on_status(const struct wp_route_retry *p, uint16_t status, int grpc);

/* Whether a try's request must be kept for a replay under <p>: it has
 * retries and a condition that can arise after request bytes went out
 * (anything but connect-failure). */
bool wp_retry_needs_hold(const struct wp_route_retry *p);

/* The wait before retry number <n> (1 for the first retry): a uniform draw
 * in [0, (2^n - 1) * base), capped at 10 * base (Envoy's jittered
 * exponential backoff; base = the policy's backoff, else 25 ms), from the
 * core's generator <rng> (wp/rand.h). */
uint32_t wp_retry_backoff_ms(const struct wp_route_retry *p, uint32_t n, uint64_t *rng);

/* The gRPC status in a response head's "grpc-status" value, -1 when the
 * value is absent or not a number of 0..99. */
int wp_retry_grpc_status(const char *v, uint32_t len);

#endif /* WP_DP_L7_RETRY_H */
