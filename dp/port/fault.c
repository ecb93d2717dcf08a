/*
 * Port-layer fault injection (see port_fault.h). One held-back slot gives real
 * reordering: the held packet goes out right after the next packet that
 * passes, or after WP_FAULT_HOLD_POLLS polls when traffic stops, so a lone
 * packet is delayed, never lost.
 */
#include <string.h>

#include "port_fault.h"
#include "wp/common.h"
#include "wp/rand.h"

/* True with probability p. */
static inline bool chance(struct wp_fault *f, double p)
{
	return wp_rand_chance(&f->rng, p);
}

void wp_fault_init(struct wp_fault *f, double drop, double dup, double reorder, uint64_t seed,
                   uint64_t salt, enum wp_ctr ctr_drop, enum wp_ctr ctr_dup,
                   enum wp_ctr ctr_reorder)
{
	memset(f, 0, sizeof(*f));
	f->drop = drop;
	f->dup = dup;
	f->reorder = reorder;
	f->rng = (seed ^ (salt * 0x9E3779B97F4A7C15ULL)) | 1;
	f->ctr_drop = ctr_drop;
	f->ctr_dup = ctr_dup;
	f->ctr_reorder = ctr_reorder;
	f->enabled = drop > 0.0 || dup > 0.0 || reorder > 0.0;
}

uint16_t wp_fault_filter(struct wp_fault *f, void **pkts, uint16_t n, void **out, uint16_t out_max,
                         const struct wp_fault_ops *ops, uint64_t *ctr)
{
	uint16_t k = 0;

	WP_ASSERT(out_max >= 2 * n + 1);
	(void)out_max;
	if (!f->enabled) {
		memcpy(out, pkts, n * sizeof(*pkts));
		return n;
	}
	for (uint16_t i = 0; i < n; i++) {
		void *p = pkts[i];

		if (chance(f, f->drop)) {
			ops->free(p, ops->arg);
			wp_ctr_inc(ctr, f->ctr_drop);
			continue;
		}
		if (f->held == NULL && chance(f, f->reorder)) {
			f->held = p;
			f->held_polls = 0;
			wp_ctr_inc(ctr, f->ctr_reorder);
			continue;
		}
		out[k++] = p;
		if (chance(f, f->dup)) {
			void *c = ops->copy(p, ops->arg);
			if (c != NULL) {
				out[k++] = c;
				wp_ctr_inc(ctr, f->ctr_dup);
			}
		}
		if (f->held != NULL) {
			out[k++] = f->held; /* after a later packet: reordered */
			f->held = NULL;
		}
	}
	if (f->held != NULL && n == 0 && ++f->held_polls >= WP_FAULT_HOLD_POLLS) {
		out[k++] = f->held;
		f->held = NULL;
	}
	return k;
}

void wp_fault_flush(struct wp_fault *f, const struct wp_fault_ops *ops)
{
	if (f->held != NULL) {
		ops->free(f->held, ops->arg);
		f->held = NULL;
	}
}
