/*
 * The fault stage of the request pipeline (pipeline.h: normalize ->
 * authorize -> fault -> balance -> upstream -> complete): VirtualService
 * fault injection as Envoy's fault filter runs it with the configuration
 * istiod gives it (struct wp_route_fault, compiled by cp/resolve/vs_compile.c).
 *
 * A request whose rule has a fault gets two independent draws (each its own
 * share; istiod: a missing percentage is 0 %): a delay holds it for
 * delay_ms before it goes on (flag DI), then an abort answers it locally
 * (flag FI) before load balancing, so no upstream connection is made for
 * it. The answer is Envoy's: the status with the text/plain body "fault
 * filter abort"; for a gRPC request a trailers-only answer (HTTP 200) whose
 * grpc-status is the abort's gRPC code, or its HTTP status mapped as Envoy
 * maps it; a grpcStatus abort of a request that is not gRPC is a plain 200.
 *
 * Here is the decision, shared by both proxies (h1proxy.c holds a request
 * on its session's timers, h2p_fault.c a stream on the core's); the proxies
 * act on the plan and count (l7_fault_*). Nothing allocates; the draws come
 * from a per-core generator the proxy keeps (wp/rand.h).
 */
#ifndef WP_DP_L7_FAULT_H
#define WP_DP_L7_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#include "wp/route.h"

#define WP_FAULT_ABORT_BODY     "fault filter abort"
#define WP_FAULT_ABORT_BODY_LEN (sizeof(WP_FAULT_ABORT_BODY) - 1)

/* What the fault stage does with one request. */
struct wp_fault_plan {
	uint32_t delay_ms; /* held this long first; 0: not delayed */
	bool abort;        /* then answered locally */
	uint16_t status;   /* the abort's HTTP status (200 for a grpcStatus abort) */
	uint8_t grpc;      /* its grpc-status for a gRPC request */
};

/* Keeps in *due the earliest time a held request resumes (0: none). */
static inline void wp_fault_due(uint64_t *due, uint64_t until)
{
	if (!*due || until < *due)
		*due = until;
}

/* Draws request's plan from fault <f> (NULL or none configured: nothing).
 * Returns whether the request is delayed or aborted. */
bool wp_fault_decide(uint64_t *rng, const struct wp_route_fault *f, struct wp_fault_plan *p);

#endif /* WP_DP_L7_FAULT_H */
