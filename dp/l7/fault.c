/*
 * The fault stage's decision (fault.h): two independent draws per request
 * against the rule's shares, per million as Envoy's runtime feature check
 * compares them (a draw modulo 1,000,000 below the numerator).
 */
#include "fault.h"
#include "pipeline.h"
#include "wp/rand.h"

static bool hit(uint64_t *rng, uint32_t ppm)
{
	if (ppm == 0)
		return false;
	return ppm >= 1000000 || wp_rand_below(rng, 1000000) < ppm;
}

bool wp_fault_decide(uint64_t *rng, const struct wp_route_fault *f, struct wp_fault_plan *p)
{
	p->delay_ms = 0;
	p->abort = false;
	if (!f || (!f->delay && !f->abort))
		return false;
	if (f->delay && hit(rng, f->delay_ppm))
		p->delay_ms = f->delay_ms;
	if (f->abort && hit(rng, f->abort_ppm)) {
		p->abort = true;
		/* a grpcStatus abort answers 200 (Envoy); an httpStatus one
		 * gives a gRPC request the status Envoy maps it to */
		p->status = f->abort_status ? f->abort_status : 200;
		p->grpc = f->abort_status ? (uint8_t)wp_pipe_http_to_grpc(f->abort_status)
		                          : f->abort_grpc;
	}
	return p->delay_ms > 0 || p->abort;
}
