/*
 * The HTTP/1.1 proxy's request mirrors (HTTPRoute RequestMirror,
 * VirtualService mirror / mirrors; h1proxy_int.h). A mirror is a copy of
 * the request as routed, written with the shadow Host, to an endpoint of
 * the mirror cluster on a connection of its own: its head is written at
 * the start, then every byte queued for the real upstream is copied to it
 * (wp_h1p_mirrors_tee). A mirror without room, or still being fed when the
 * real exchange ends, is abandoned and counted: a mirror never slows or
 * fails the real request.
 */
#include <string.h>

#include "h1proxy_int.h"
#include "wp/counters.h"
#include "wp/snapshot_types.h"

/* Ends mirror <m>: its connection is closed (the host told, unless it
 * already dropped the transport) and the object recycled. */
void wp_h1p_mirror_end(struct wp_h1p_core *c, struct wp_h1p_mirror *m, bool host_close)
{
	struct wp_h1p_sess *s = m->feeder;
	struct wp_h1p_up *up = m->up;

	if (s) {
		for (uint8_t k = 0; k < s->n_mir; k++)
			if (s->mir[k] == m) {
				s->mir[k] = s->mir[--s->n_mir];
				break;
			}
	}
	if (up) {
		up->mirror = NULL;
		wp_h1p_up_destroy(c, up, host_close);
	}
	m->up = NULL;
	m->feeder = NULL;
	m->out.off = m->out.len = 0;
	m->next_free = c->free_mir;
	c->free_mir = m;
}

/* The real exchange ended before the request was copied whole: the copies
 * still being fed are abandoned. */
void wp_h1p_mirrors_abort(struct wp_h1p_sess *s)
{
	while (s->n_mir > 0) {
		wp_ctr_inc(s->core->ctr, WP_CTR_L7_H1P_MIRROR_ABANDONED);
		wp_h1p_mirror_end(s->core, s->mir[s->n_mir - 1], true);
	}
}

/* The request was copied whole: the mirrors go on alone. */
void wp_h1p_mirrors_detach(struct wp_h1p_sess *s)
{
	for (uint8_t k = 0; k < s->n_mir; k++)
		s->mir[k]->feeder = NULL;
	s->n_mir = 0;
}

/* Copies the last <k> bytes queued for the real upstream to every mirror
 * being fed; a mirror without room is abandoned (it must never slow the
 * real request). */
void wp_h1p_mirrors_tee(struct wp_h1p_sess *s, size_t k)
{
	struct wp_h1p_core *c = s->core;
	const uint8_t *p = s->upb.p + s->upb.off + s->upb.len - k;

	for (uint8_t i = s->n_mir; i-- > 0;) {
		struct wp_h1p_mirror *m = s->mir[i];

		if (!ob_put(&m->out, p, k)) {
			wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_MIRROR_OVERFLOW);
			wp_h1p_mirror_end(c, m, true);
			continue;
		}
		c->ops->up_ready(c->host, m->up);
	}
}

/* Starts a copy of the request <out> (as routed; <o> are the options its
 * head was written with) to an endpoint of <cl>. Failures are counted and
 * the request goes on unmirrored. */
void wp_h1p_mirror_start(struct wp_h1p_sess *s, const struct wp_route_cluster *cl,
                         const struct wp_http1_msg *out, const struct wp_http1_req_opts *o,
                         uint64_t h, bool has)
{
	struct wp_h1p_core *c = s->core;
	struct wp_http1_req_opts mo = *o;
	struct wp_h1p_mirror *m = c->free_mir;
	int i, n;

	if (!c->ops->up_ready || !m || s->n_mir >= WP_ROUTE_MAX_MIRRORS) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_MIRROR_DROPPED);
		return;
	}
	i = wp_lb_pick(cl->lb, wp_lb_cache_core(c->lbc, cl->lb), h, has);
	if (i < 0 || (uint32_t)i >= cl->n_endpoints) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_MIRROR_DROPPED);
		return;
	}
	mo.shadow = true;
	mo.rng = NULL;
	mo.reqid_out = NULL;
	mo.reqid_generated = NULL;
	n = wp_http1_write_request_head(out, &mo, (char *)m->out.p, m->out.cap);
	if (n < 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_MIRROR_DROPPED);
		return;
	}
	c->free_mir = m->next_free;
	m->next_free = NULL;
	m->out.off = 0;
	m->out.len = (uint32_t)n;
	m->up = wp_h1p_up_open_new(c, s, m, cl, &cl->endpoints[i]);
	if (!m->up) { /* counted */
		m->out.len = 0;
		m->next_free = c->free_mir;
		c->free_mir = m;
		return;
	}
	m->feeder = s;
	m->started_ms = c->now_ms;
	s->mir[s->n_mir++] = m;
	wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_MIRROR);
	c->ops->up_ready(c->host, m->up);
}
