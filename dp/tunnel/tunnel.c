/*
 * Tunnels (see tunnel.h). Two object kinds, both from fixed per-worker
 * pools sized at start:
 *
 *  struct sess    one HBONE connection (session.c): a user-space TCP connection, a TLS
 *                 connection over memory BIOs and an HTTP/2 session. Inbound
 *                 ones are servers (ztunnel -> us); originated ones are
 *                 clients (us -> podIP:15008), pooled by destination.
 *  struct tunnel  one CONNECT stream spliced to its upstream: end 0 is the
 *                 inbound stream, end 1 a plaintext TCP connection or an
 *                 originated stream.
 *
 * Reentrancy: TCP callbacks pump their own session directly (TCP -> TLS ->
 * HTTP/2 and back); HTTP/2 callbacks never pump a session, they only mark
 * the sessions they touched dirty, and wp_tunnel_poll() pumps dirty sessions
 * in the same loop iteration. Sessions and tunnels that end are put on dead
 * lists and freed by the poll, so no callback frees an object its caller
 * still uses.
 *
 * Flow control, per direction from a source end to a sink end:
 *  - source is an HTTP/2 stream: on_data offers bytes; what the sink takes
 *    at once is consumed (the peer's window reopens), the rest waits in the
 *    sink's byte queue and is consumed as it drains. The queue is bounded by
 *    the window we granted.
 *  - source is TCP: the data callback returns what the sink took; the rest
 *    stays in TCP (our advertised window closes) until the sink is writable
 *    again and wp_tcp_recv_resume() offers it anew.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <nghttp2/nghttp2.h>

#include "tunnel_int.h"
#include "forwarded.h"
#include "lb_cache.h"
#include "outlier.h"
#include "pipeline.h"
#include "bq.h"
#include "l7.h"
#include "tunnel.h"
#include "wp/addr.h"
#include "wp/counters.h"
#include "wp/snapshot.h"

/* The client of a tunnel, for hashing on the source IP: the `for=` of the
 * CONNECT's Forwarded header (ztunnel's original source), else the address
 * the HBONE connection comes from. False when neither is known. */
bool wp_tun_req_source(const struct sess *s, const struct wp_hbone_req *req, struct wp_addr *out)
{
	struct wp_tcp_conn_info ci;

	if (req->forwarded.base != NULL &&
	    wp_forwarded_for(req->forwarded.base, req->forwarded.len, out) == 0)
		return true;
	if (s->tcp == NULL)
		return false;
	wp_tcp_conn_info(s->tcp, &ci);
	*out = ci.remote;
	return true;
}

/* The tunnel no longer holds a connection to the endpoint it was counted
 * on (freed, or its L4 upstream dropped for the L7 proxy). Idempotent. */
static void end_lb(struct tunnel *t)
{
	wp_lb_cache_end(t->tw->lbc, &t->lb);
}

static uint64_t hash64(const void *p, size_t n, uint64_t h)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t gw_key(const struct wp_snap_gateway *g)
{
	uint64_t h = hash64(g->ns, strlen(g->ns), 0xcbf29ce484222325ull);

	h = hash64("/", 1, h);
	return hash64(g->name, strlen(g->name), h);
}

/* ---- tunnels: pool ------------------------------------------------------------- */

struct tunnel *wp_tun_alloc(struct wp_tunnel_worker *tw)
{
	struct tunnel *t = tw->tun_free;

	if (t == NULL)
		return NULL;
	tw->tun_free = t->wnext;
	memset(t, 0, sizeof(*t));
	t->tw = tw;
	t->live = true;
	wp_bq_init(&t->e[0].q);
	wp_bq_init(&t->e[1].q);
	tw->n_tunnels++;
	tw->g.tunnels++;
	return t;
}

void wp_tun_free(struct tunnel *t)
{
	struct wp_tunnel_worker *tw = t->tw;

	/* What a killed tunnel still held leaves the gauge with it. */
	tw->g.queued_bytes -= wp_bq_len(&t->e[0].q) + wp_bq_len(&t->e[1].q);
	wp_bq_clear(&t->e[0].q, tw->mem);
	wp_bq_clear(&t->e[1].q, tw->mem);
	wp_tun_l7_unlist(t);
	wp_twheel_disarm(&t->idle);
	end_lb(t);
	wp_pipe_tcp_close(&t->pc); /* an opaque tunnel: istio_tcp_connections_closed_total */
	t->live = false;
	tw->n_tunnels--;
	tw->g.tunnels--;
	t->wnext = tw->tun_free;
	tw->tun_free = t;
}

static void tun_bury(struct tunnel *t)
{
	if (t->dead)
		return;
	t->dead = true;
	t->dnext = t->tw->dead_tun;
	t->tw->dead_tun = t;
}

/* ---- tunnels: ends ---------------------------------------------------------------- */

/* Writes to end i; returns the bytes it took. */
size_t wp_tun_end_write(struct tunnel *t, int i, const uint8_t *p, size_t len)
{
	struct end *e = &t->e[i];
	ssize_t n = 0;

	if (e->gone || e->shut || len == 0)
		return 0;
	if (i == 0 && t->l7.sniff && (t->tcp_denied || wp_tun_l7h2_hold(p, len)))
		return 0; /* an h2 server's preface waits for the sniff (l7_h2_glue.c);
		           * so does all of a denied tunnel's upstream */
	if (e->kind == END_H2 && e->s != NULL) {
		n = wp_hbstream_write(e->s, p, len);
		if (n > 0)
			wp_tun_mark_dirty(e->sess);
	} else if (e->kind == END_TCP && e->c != NULL) {
		n = wp_tcp_send(e->c, p, len);
	} else if (e->kind == END_L7) {
		n = (ssize_t)wp_tun_l7_input(t, p, len);
	}
	if (n <= 0)
		return 0;
	t->active_ms = t->tw->now_ms;
	wp_ctr_add(t->tw->ctr, i == 1 ? WP_CTR_TUNNEL_BYTES_UP : WP_CTR_TUNNEL_BYTES_DOWN,
	           (uint64_t)n);
	/* opaque TCP: sent to the client (end 0), received from it (end 1) */
	wp_pipe_tcp_bytes(&t->pc, i == 0 ? (uint64_t)n : 0, i == 1 ? (uint64_t)n : 0);
	return (size_t)n;
}

/* Half-closes end i (FIN or END_STREAM after what is queued). */
void wp_tun_end_shut(struct tunnel *t, int i)
{
	struct end *e = &t->e[i];

	if (e->shut || e->gone)
		return;
	e->shut = true;
	if (e->kind == END_H2 && e->s != NULL) {
		(void)wp_hbstream_shutdown(e->s);
		wp_tun_mark_dirty(e->sess);
	} else if (e->kind == END_TCP && e->c != NULL) {
		(void)wp_tcp_shutdown(e->c);
	} else if (e->kind == END_L7) {
		wp_tun_l7_eof(t);
	}
}

/* Acknowledges n bytes from end i (an HTTP/2 source) as passed on. */
static void end_consume(struct tunnel *t, int i, size_t n)
{
	struct end *e = &t->e[i];

	if (e->kind == END_H2 && e->s != NULL && n > 0) {
		(void)wp_hbstream_consume(e->s, n);
		wp_tun_mark_dirty(e->sess);
	}
}

/*
 * Drains end i's queue into it, reopening the source's window, then
 * half-closes it once the source ended and nothing is left; a TCP source is
 * offered its held bytes again.
 */
void wp_tun_end_flush(struct tunnel *t, int i)
{
	struct wp_tunnel_worker *tw = t->tw;
	struct end *e = &t->e[i], *src = &t->e[1 - i];

	if (!t->responded)
		return;
	while (wp_bq_len(&e->q) > 0) {
		const uint8_t *p;
		size_t n = wp_bq_peek(&e->q, &p), w;

		if (e->gone) {
			/* Nowhere to go: give the window back and drop them. */
			end_consume(t, 1 - i, wp_bq_len(&e->q));
			tw->g.queued_bytes -= wp_bq_len(&e->q);
			wp_bq_clear(&e->q, tw->mem);
			break;
		}
		w = wp_tun_end_write(t, i, p, n);
		if (w == 0)
			break;
		wp_bq_pop(&e->q, tw->mem, w);
		tw->g.queued_bytes -= w;
		end_consume(t, 1 - i, w);
	}
	if (wp_bq_len(&e->q) > 0)
		return;
	if (src->kind == END_TCP && src->c != NULL && !src->eof_in)
		wp_tcp_recv_resume(src->c);
	if (src->eof_in && !e->shut)
		wp_tun_end_shut(t, i);
}

/* Bytes arrived from end i (an HTTP/2 stream): pass them to the other end. */
static void from_h2(struct tunnel *t, int i, const uint8_t *data, size_t len)
{
	struct wp_tunnel_worker *tw = t->tw;
	int j = 1 - i;
	size_t w = 0;

	if (i == 0 && t->l7.sniff) {
		wp_tun_l7_sniff(t, data, len); /* may turn end 1 into the HTTP proxy */
		if (t->e[1].kind == END_L7) {
			end_lb(t); /* the L4 upstream was dropped */
		} else if (t->tcp_denied || t->l7.no_session) {
			/* not HTTP: the CONNECT-time denial stands; HTTP that no
			 * proxy session can take (counted): never served at L4 */
			if (!t->l7.no_session)
				ctr(tw, WP_CTR_AUTHZ_TCP_RESET);
			end_consume(t, i, len);
			wp_tun_kill(t);
			return;
		}
	}
	if (t->e[j].gone) {
		end_consume(t, i, len);
		return;
	}
	if (wp_bq_len(&t->e[j].q) == 0 && t->responded)
		w = wp_tun_end_write(t, j, data, len);
	if (w > 0)
		end_consume(t, i, w);
	if (w < len) {
		if (wp_bq_push(&t->e[j].q, tw->mem, data + w, len - w) != 0) {
			ctr(tw, WP_CTR_TUNNEL_BUF_NOMEM);
			wp_tun_kill(t);
			return;
		}
		tw->g.queued_bytes += len - w;
	}
}

/* ---- tunnels: lifecycle ------------------------------------------------------- */

/* The inbound CONNECT's answer; non-200 ends the stream. */
void wp_tun_respond(struct tunnel *t, int status)
{
	struct end *d = &t->e[0];

	if (d->kind == END_L7) { /* an L7 upstream connected */
		if (!t->responded && status == 200)
			wp_tun_l7_connected(t);
		return;
	}
	if (t->responded || d->s == NULL)
		return;
	t->responded = true;
	/* outlier detection learns how the connection to the endpoint went:
	 * up, or refused / timed out / reset before it was (the only answers
	 * an opaque tunnel has; a no-op without a pick or the policy) */
	wp_lb_cache_result(t->tw->lbc, &t->lb,
	                   status == 200 ? WP_LB_RES_CONNECTED : WP_LB_RES_LOCAL_FAIL);
	(void)wp_hbstream_respond(d->s, status);
	wp_tun_mark_dirty(d->sess);
	if (status == 200) {
		ctr(t->tw, WP_CTR_TUNNEL_OPENED);
		if (t->idle_ms) {
			t->active_ms = t->tw->now_ms;
			wp_twheel_arm(&t->tw->idle_wheel, &t->idle, t->active_ms + t->idle_ms);
		}
		/* Bytes that came with or right after the CONNECT. */
		wp_tun_end_flush(t, 1);
		wp_tun_end_flush(t, 0);
	}
}

/*
 * Abnormal end: answers 503 if the CONNECT is still unanswered, otherwise
 * resets what is left of either end.
 */
void wp_tun_kill(struct tunnel *t)
{
	for (int i = 0; i < 2; i++) {
		struct end *e = &t->e[i];

		if (e->gone)
			continue;
		if (i == 0 && !t->responded && e->s != NULL) {
			wp_tun_respond(t, 503);
			continue; /* its on_close follows */
		}
		if (e->kind == END_H2 && e->s != NULL) {
			(void)wp_hbstream_reset(e->s, NGHTTP2_CONNECT_ERROR);
			wp_tun_mark_dirty(e->sess);
		} else if (e->kind == END_TCP && e->c != NULL) {
			struct wp_tcp_conn *c = e->c;

			e->c = NULL;
			e->gone = true;
			wp_tcp_abort(c);
		} else if (e->kind == END_L7) {
			e->gone = true;
			wp_tun_l7_detach(t);
		} else if (e->kind == END_NONE || (e->kind == END_H2 && e->s == NULL)) {
			e->gone = true;
		}
	}
	wp_tun_check_done(t);
}

/* Frees the tunnel once both ends are gone. */
void wp_tun_check_done(struct tunnel *t)
{
	struct end *u = &t->e[1];

	/*
	 * A plaintext upstream whose both directions ended is closed now; so is
	 * one whose downstream stream is gone (RST_STREAM NO_ERROR/CANCEL reads
	 * as EOF, but nothing can be sent back on a reset stream): once our FIN
	 * is out, wp_tcp_close() answers what the upstream still sends with RST
	 * instead of swallowing it for as long as the upstream cares to send.
	 */
	if (u->kind == END_TCP && u->c != NULL && u->shut && wp_bq_len(&u->q) == 0 &&
	    (u->eof_in || t->e[0].gone)) {
		struct wp_tcp_conn *c = u->c;

		if (!u->eof_in)
			ctr(t->tw, WP_CTR_TUNNEL_DOWNSTREAM_RESET);
		u->c = NULL;
		u->gone = true;
		wp_tcp_close(c);
	}
	/* The same for an originated upstream stream: CANCEL it (detached now). */
	if (u->kind == END_H2 && u->s != NULL && t->e[0].gone && u->shut && !u->eof_in &&
	    wp_bq_len(&u->q) == 0) {
		ctr(t->tw, WP_CTR_TUNNEL_DOWNSTREAM_RESET);
		wp_hbstream_set_app(u->s, NULL);
		(void)wp_hbstream_reset(u->s, NGHTTP2_CANCEL);
		wp_tun_mark_dirty(u->sess);
		u->s = NULL;
		u->gone = true;
	}
	if (t->e[0].gone && t->e[1].gone) {
		if (!t->counted_done && t->e[0].eof_in && t->e[1].eof_in) {
			t->counted_done = true;
			ctr(t->tw, WP_CTR_TUNNEL_DONE);
		}
		tun_bury(t);
	}
}

/* An end went away (stream closed, TCP closed). normal: both ways ended. */
static void end_gone(struct tunnel *t, int i, bool normal)
{
	struct end *e = &t->e[i], *o = &t->e[1 - i];

	e->gone = true;
	e->s = NULL;
	e->c = NULL;
	if (t->dead)
		return;
	wp_tun_l7_mark(t);
	if (normal && t->responded) {
		e->eof_in = true;
		wp_tun_end_flush(t, 1 - i); /* shuts the other end once its queue is out */
	} else if (!o->gone) {
		if (t->responded)
			ctr(t->tw,
			    i == 0 ? WP_CTR_TUNNEL_DOWNSTREAM_RESET : WP_CTR_TUNNEL_UPSTREAM_RESET);
		wp_tun_kill(t);
		return;
	}
	wp_tun_check_done(t);
}

/* ---- upstream: plaintext TCP ------------------------------------------------------ */

static void up_connected(struct wp_tcp_conn *c, void *arg)
{
	struct tunnel *t = arg;

	(void)c;
	wp_tun_respond(t, 200);
}

static size_t up_data(struct wp_tcp_conn *c, void *arg, const uint8_t *data, size_t len)
{
	struct tunnel *t = arg;

	(void)c;
	if (t->e[0].gone)
		return len; /* nowhere to go: wp_tun_check_done closes it */
	return wp_tun_end_write(t, 0, data, len);
}

static void up_eof(struct wp_tcp_conn *c, void *arg)
{
	struct tunnel *t = arg;

	(void)c;
	t->e[1].eof_in = true;
	wp_tun_end_shut(t, 0);
	wp_tun_check_done(t);
}

static void up_writable(struct wp_tcp_conn *c, void *arg)
{
	(void)c;
	wp_tun_end_flush(arg, 1);
	wp_tun_l7_mark(arg);
	wp_tun_check_done(arg);
}

static void up_closed(struct wp_tcp_conn *c, void *arg, enum wp_tcp_close_reason why)
{
	struct tunnel *t = arg;

	(void)c;
	t->e[1].c = NULL;
	if (!t->responded) {
		ctr(t->tw, why == WP_TCP_CLOSE_TIMEOUT ? WP_CTR_TUNNEL_CONNECT_TIMEOUT
		                                       : WP_CTR_TUNNEL_CONNECT_REFUSED);
		t->e[1].gone = true;
		wp_tun_kill(t);
		return;
	}
	end_gone(t, 1, why == WP_TCP_CLOSE_NORMAL);
}

static const struct wp_tcp_callbacks up_tcp_cbs = {
        .connected = up_connected,
        .data = up_data,
        .eof = up_eof,
        .writable = up_writable,
        .closed = up_closed,
};

int wp_tun_connect_plain(struct tunnel *t, struct wp_tun_port *tp)
{
	uint16_t port;
	int rc;

	t->e[1].kind = END_TCP;
	if (t->tw->worker->pick_port(tp->io, t->target.addr.v4, t->target.port, &port) != 0)
		return -EADDRNOTAVAIL;
	rc = wp_tcp_connect(tp->io->tcp, t->target.addr.v4, t->target.port, port, &up_tcp_cbs, t,
	                    &t->e[1].c);
	if (rc != 0)
		t->e[1].c = NULL;
	else if (t->keepalive.time_ms)
		wp_tcp_set_keepalive(t->e[1].c, t->keepalive.time_ms, t->keepalive.intvl_ms,
		                     t->keepalive.probes);
	return rc;
}

/* ---- upstream: HBONE originate ------------------------------------------------------ */

static void open_stream(struct sess *s, struct tunnel *t)
{
	struct wp_tunnel_worker *tw = s->tw;
	const struct wp_hbone_req *rq = t->e[0].s != NULL ? wp_hbstream_request(t->e[0].s) : NULL;
	struct wp_hbstream *us;

	if ((rq == NULL && t->e[0].kind != END_L7) || t->e[0].gone) {
		t->e[1].gone = true;
		wp_tun_kill(t);
		return;
	}
	us = wp_hbconn_open(s->h2, &t->target, rq ? rq->baggage.base : NULL,
	                    rq ? rq->forwarded.base : NULL, rq ? rq->traceparent.base : NULL, t);
	if (us == NULL) {
		ctr(tw, WP_CTR_TUNNEL_ORIGINATE_FAILED);
		t->e[1].gone = true;
		wp_tun_kill(t);
		return;
	}
	t->e[1].s = us;
	t->e[1].sess = s;
	wp_tun_mark_dirty(s);
}

/* The originated session's HTTP/2 is up: open the waiting tunnels' streams. */
void wp_tun_client_ready(struct sess *s)
{
	while (s->waiting != NULL) {
		struct tunnel *t = s->waiting;

		s->waiting = t->wnext;
		t->wnext = NULL;
		s->n_waiting--;
		open_stream(s, t);
	}
}

static bool sess_usable(const struct sess *s, uint32_t dst_ip, uint64_t id_hash, uint32_t max)
{
	if (s->dst_ip != dst_ip || s->id_hash != id_hash || s->drained)
		return false;
	if (s->state == SESS_CONNECTING || s->state == SESS_HANDSHAKE)
		return s->n_waiting < max;
	return s->state == SESS_READY && wp_hbconn_can_open(s->h2) &&
	       wp_hbconn_streams(s->h2) < max;
}

int wp_tun_connect_hbone(struct tunnel *t, struct wp_tun_port *tp, const char *peer_id)
{
	struct wp_tunnel_worker *tw = t->tw;
	uint32_t max = tw->sh->cfg->hbone.pool_streams;
	uint64_t id_hash =
	        hash64(peer_id, strlen(peer_id), t->target.addr.v4 * 0x9e3779b97f4a7c15ull);
	struct sess **bucket = &tw->pool[id_hash % POOL_BUCKETS], *s;
	uint16_t port;

	t->e[1].kind = END_H2;
	for (s = *bucket; s != NULL; s = s->pnext)
		if (sess_usable(s, t->target.addr.v4, id_hash, max))
			break;
	if (s != NULL) {
		ctr(tw, WP_CTR_TUNNEL_ORIGINATE_REUSE);
	} else {
		if (tw->worker->pick_port(tp->io, t->target.addr.v4, HBONE_PORT, &port) != 0)
			return -EADDRNOTAVAIL;
		s = wp_tun_sess_alloc(tw, tp, true);
		if (s == NULL)
			return -ENOBUFS;
		s->dst_ip = t->target.addr.v4;
		s->id_hash = id_hash;
		if (peer_id[0] != '\0' && wp_tls_conn_set_expected_peer(s->tls, peer_id) != 0) {
			wp_tun_sess_kill(s);
			return -EINVAL;
		}
		s->state = SESS_CONNECTING;
		if (wp_tcp_connect(tp->io->tcp, s->dst_ip, HBONE_PORT, port, &wp_tun_sess_tcp_cbs,
		                   s, &s->tcp) != 0) {
			s->tcp = NULL;
			wp_tun_sess_kill(s);
			return -ENOBUFS;
		}
		wp_tun_sess_timer(s); /* the set-up deadline */
		s->pnext = *bucket;
		*bucket = s;
		ctr(tw, WP_CTR_TUNNEL_ORIGINATE_CONN);
	}
	t->e[1].sess = s;
	if (s->state == SESS_READY) {
		open_stream(s, t);
	} else {
		t->wnext = s->waiting;
		s->waiting = t;
		s->n_waiting++;
	}
	return 0;
}

/* Removes t from its originated session's waiting list (the CONNECT went away). */
void wp_tun_unwait(struct tunnel *t)
{
	struct sess *s = t->e[1].sess;
	struct tunnel **pp;

	if (s == NULL || t->e[1].s != NULL)
		return;
	for (pp = &s->waiting; *pp != NULL; pp = &(*pp)->wnext)
		if (*pp == t) {
			*pp = t->wnext;
			t->wnext = NULL;
			s->n_waiting--;
			t->e[1].gone = true;
			t->e[1].sess = NULL;
			return;
		}
}

/* ---- HTTP/2 callbacks: both sides ---------------------------------------------------- */

static int end_of(struct tunnel *t, struct wp_hbstream *s)
{
	return t->e[1].kind == END_H2 && t->e[1].s == s ? 1 : 0;
}

static void h2_data(struct wp_hbstream *s, const uint8_t *data, size_t len)
{
	struct tunnel *t = wp_hbstream_app(s);

	if (t == NULL || t->dead) {
		(void)wp_hbstream_consume(s, len);
		return;
	}
	from_h2(t, end_of(t, s), data, len);
}

static void h2_eof(struct wp_hbstream *s)
{
	struct tunnel *t = wp_hbstream_app(s);
	int i;

	if (t == NULL || t->dead)
		return;
	i = end_of(t, s);
	t->e[i].eof_in = true;
	wp_tun_end_flush(t, 1 - i);
	wp_tun_check_done(t);
}

static void h2_writable(struct wp_hbstream *s)
{
	struct tunnel *t = wp_hbstream_app(s);
	int i;

	if (t == NULL || t->dead)
		return;
	i = end_of(t, s);
	wp_tun_end_flush(t, i);
	wp_tun_l7_mark(t);
	wp_tun_check_done(t);
}

static void h2_close(struct wp_hbstream *s, enum wp_hbone_close why, uint32_t err)
{
	struct tunnel *t = wp_hbstream_app(s);
	int i;

	(void)err;
	if (t == NULL)
		return;
	wp_hbstream_set_app(s, NULL);
	i = end_of(t, s);
	if (i == 0)
		wp_tun_unwait(t);
	if (i == 1 && !t->responded) {
		/* The destination refused the CONNECT or the session died first. */
		ctr(t->tw, WP_CTR_TUNNEL_ORIGINATE_FAILED);
		t->e[1].gone = true;
		t->e[1].s = NULL;
		wp_tun_kill(t);
		return;
	}
	end_gone(t, i, why == WP_HBONE_CLOSE_DONE || why == WP_HBONE_CLOSE_EOF);
}

/* ---- HTTP/2 callbacks: server (inbound CONNECT) ------------------------------------------ */

static void note_gateway(struct sess *s, const struct wp_snap_gateway *g)
{
	uint64_t k = gw_key(g);

	for (unsigned i = 0; i < s->n_gw; i++)
		if (s->gw_hash[i] == k)
			return;
	if (s->n_gw < MAX_GW_PER_SESS)
		s->gw_hash[s->n_gw++] = k;
}

/* Builds spiffe://<td>/ns/<ns>/sa/<sa> into buf ("" when the account is unknown). */
void wp_tun_peer_identity(const struct wp_tunnel_worker *tw, const char *ns, const char *sa,
                          char *buf, size_t len)
{
	buf[0] = '\0';
	if (ns != NULL && sa != NULL && sa[0] != '\0')
		snprintf(buf, len, "spiffe://%s/ns/%s/sa/%s", tw->td, ns, sa);
}

/*
 * The endpoint of an L4 tunnel to a service port, picked from the port's
 * own cluster <cl> (built with the DestinationRule loadBalancer for this
 * host and port, as the L7 proxies pick; ready endpoints only) with this
 * worker's per-core state: round robin, least request (the tunnels open
 * from this worker to each endpoint), random, or ring hash / maglev on the
 * source address. A header, cookie or query key has nothing to hash on a
 * byte stream: the table then falls back to its keyless pick (weighted
 * random, counted l7_lb_hash_key_missing), as Envoy picks a host at random
 * when a hash policy yields no key. Returns the index in cl->endpoints, or
 * -1 when the cluster has no endpoint.
 */
static int l4_pick(struct wp_tunnel_worker *tw, const struct sess *s,
                   const struct wp_hbone_req *req, const struct wp_route_cluster *cl)
{
	struct wp_addr src;
	uint64_t h = 0;
	bool has = false;
	int i;

	if (cl->hash_key == WP_ROUTE_HASH_SOURCE_IP && wp_tun_req_source(s, req, &src) &&
	    src.family != WP_AF_NONE) {
		h = wp_lb_hash_addr(&src);
		has = true;
	}
	i = wp_lb_pick(cl->lb, wp_lb_cache_core(tw->lbc, cl->lb), h, has);
	return i >= 0 && (uint32_t)i < cl->n_endpoints ? i : -1;
}

/* What the request pipeline knows of the CONNECT <req> on <s> to <d>
 * (dp/l7/pipeline.h): the peer's workload identity (its certificate's
 * SPIFFE ID), its address, the original client's (Forwarded for=), the
 * target, and the destination's AuthorizationPolicies in snapshot <snap>
 * (a Service's, or for a workload address its waypoint's). */
void wp_tun_pipe_conn_tel(struct wp_pipe_conn *pc, const struct wp_snapshot *snap,
                          const struct wp_snap_dest *d)
{
	static const struct wp_snap_telemetry none = {.sampling_ppm = -1};

	pc->tel = d != NULL && d->gw < snap->n_gateways ? snap->gateways[d->gw].telemetry : none;
}

void wp_tun_pipe_conn_fill(struct wp_pipe_conn *pc, struct wp_tunnel_worker *tw,
                           const struct sess *s, const struct wp_hbone_req *req,
                           const struct wp_snapshot *snap, const struct wp_snap_dest *d)
{
	const char *id = wp_tls_conn_peer_id(s->tls);
	struct wp_tcp_conn_info ci;

	memset(pc, 0, sizeof(*pc));
	pc->core = &tw->pipe;
	if (id != NULL && strncmp(id, "spiffe://", 9) == 0) {
		pc->principal = id + 9;
		pc->principal_len = (uint32_t)strlen(id + 9);
	}
	if (s->tcp != NULL) {
		wp_tcp_conn_info(s->tcp, &ci);
		pc->peer = ci.remote;
	}
	if (req->forwarded.base == NULL ||
	    wp_forwarded_for(req->forwarded.base, req->forwarded.len, &pc->remote) != 0)
		pc->remote = pc->peer;
	pc->dst = req->authority.addr;
	pc->dst_port = req->authority.port;
	if (d->kind == WP_DEST_SERVICE)
		wp_pipe_conn_set_authz(pc, d->svc->authz);
	else /* a workload: the policies of the whole waypoint */
		wp_pipe_conn_set_authz(pc, d->gw < snap->n_gateways ? snap->gateways[d->gw].authz
		                                                    : NULL);
	wp_tun_pipe_conn_tel(pc, snap, d);
	wp_pipe_conn_labels(pc, req->baggage.base, req->baggage.len,
	                    d->kind == WP_DEST_SERVICE ? d->svc : NULL,
	                    d->kind == WP_DEST_SERVICE ? NULL : d->wl);
}

static void srv_request(struct wp_hbconn *c, struct wp_hbstream *hs, const struct wp_hbone_req *req)
{
	struct sess *s = wp_hbconn_app(c);
	struct wp_tunnel_worker *tw = s->tw;
	const struct wp_snapshot *snap =
	        tw->worker->slot != NULL ? wp_snapshot_get(tw->worker->slot) : NULL;
	const struct wp_snap_dest *d;
	const struct wp_route_cluster *cl = NULL; /* service: the cluster picked from */
	int ep_idx = -1;
	struct wp_sockaddr target;
	char peer[WP_TLS_ID_MAX];
	struct wp_pipe_conn pc;
	struct wp_authz_decision az;
	bool ambient, tcp_denied = false;
	struct tunnel *t;
	int rc;

	if (snap == NULL) {
		ctr(tw, WP_CTR_TUNNEL_NO_SNAPSHOT);
		(void)wp_hbstream_respond(hs, 503);
		return;
	}
	d = wp_snapshot_lookup(snap, &req->authority);
	if (d == NULL) {
		ctr(tw, WP_CTR_TUNNEL_NOT_CAPTURED);
		(void)wp_hbstream_respond(hs, 400);
		return;
	}
	if (d->gw < snap->n_gateways)
		note_gateway(s, &snap->gateways[d->gw]);
	if (d->kind == WP_DEST_SERVICE) {
		const struct wp_snap_svc_port *p = &d->svc->ports[d->port_idx];
		const struct wp_snap_endpoint *ep;

		if (wp_tun_l7_wants(tw, p) && wp_tun_l7_start(s, hs, req, snap, d))
			return;
		/* opaque TCP: authorized once, now (Istio's rules for HTTP-only
		 * fields on TCP); a port whose protocol is sniffed may still turn
		 * out to be HTTP, decided request by request */
		wp_tun_pipe_conn_fill(&pc, tw, s, req, snap, d);
		if (!wp_pipe_authorize(&pc, NULL, NULL, 0, &az)) {
			if (!wp_tun_l7_sniffs(tw, p)) {
				(void)wp_hbstream_respond(hs, WP_PIPE_DENIED_CONNECT);
				return;
			}
			tcp_denied = true;
		}
		if (p->routes == NULL || p->routes->default_cluster >= p->routes->n_clusters) {
			ctr(tw, WP_CTR_TUNNEL_NO_LB_TABLE);
			(void)wp_hbstream_respond(hs, 503);
			return;
		}
		cl = &p->routes->clusters[p->routes->default_cluster];
		ep_idx = l4_pick(tw, s, req, cl);
		if (ep_idx < 0) {
			ctr(tw, WP_CTR_TUNNEL_NO_ENDPOINT);
			(void)wp_hbstream_respond(hs, 503);
			return;
		}
		ep = &cl->endpoints[ep_idx];
		wp_pipe_tcp_dest(&pc, cl, ep);
		target.addr = ep->addr;
		target.port = ep->port;
		ambient = ep->ambient;
		wp_tun_peer_identity(tw, ep->ns, ep->service_account, peer, sizeof(peer));
	} else {
		const struct wp_snap_workload *wl = d->wl;

		if (!wl->ready) {
			ctr(tw, WP_CTR_TUNNEL_NO_ENDPOINT);
			(void)wp_hbstream_respond(hs, 503);
			return;
		}
		target = req->authority;
		ambient = wl->ambient;
		wp_tun_pipe_conn_fill(&pc, tw, s, req, snap, d);
		if (!wp_pipe_authorize(&pc, NULL, NULL, 0, &az)) {
			(void)wp_hbstream_respond(hs, WP_PIPE_DENIED_CONNECT);
			return;
		}
		wp_tun_peer_identity(tw, wl->ns, wl->service_account, peer, sizeof(peer));
	}
	if (target.addr.family != WP_AF_INET) {
		ctr(tw, WP_CTR_TUNNEL_FAMILY_UNSUPPORTED);
		(void)wp_hbstream_respond(hs, 503);
		return;
	}
	t = wp_tun_alloc(tw);
	if (t == NULL) {
		ctr(tw, WP_CTR_TUNNEL_LIMIT);
		(void)wp_hbstream_respond(hs, 503);
		return;
	}
	t->target = target;
	t->pc = pc;
	t->idle_ms = cl ? cl->pool.tcp_idle_timeout_ms : WP_ROUTE_TCP_IDLE_DEFAULT_MS;
	if (cl)
		t->keepalive = cl->pool.keepalive;
	t->tcp_denied = tcp_denied;
	t->e[0].kind = END_H2;
	t->e[0].s = hs;
	t->e[0].sess = s;
	wp_hbstream_set_app(hs, t);
	if (cl != NULL)
		wp_lb_cache_begin(tw->lbc, cl->lb, ep_idx, &t->lb);
	if (d->kind == WP_DEST_SERVICE)
		wp_tun_l7_sniff_arm(t, req,
		                    d); /* unknown protocol: the first bytes may make it L7 */
	if (!t->l7.sniff)
		wp_pipe_tcp_open(&t->pc); /* opaque TCP from the start */
	if (ambient) {
		ctr(tw, WP_CTR_TUNNEL_HBONE);
		rc = wp_tun_connect_hbone(t, s->port, peer);
	} else {
		ctr(tw, WP_CTR_TUNNEL_PLAINTEXT);
		rc = wp_tun_connect_plain(t, s->port);
	}
	if (rc != 0) {
		ctr(tw, WP_CTR_TUNNEL_CONNECT_FAILED);
		t->e[1].gone = true;
		wp_tun_kill(t);
	}
}

const struct wp_hbone_ops wp_tun_server_ops = {
        .on_request = srv_request,
        .on_data = h2_data,
        .on_eof = h2_eof,
        .on_writable = h2_writable,
        .on_close = h2_close,
};

/* ---- HTTP/2 callbacks: client (originated CONNECT) ---------------------------------------- */

static void cli_response(struct wp_hbstream *s, int status)
{
	struct tunnel *t = wp_hbstream_app(s);

	if (t == NULL || t->dead || status != 200)
		return; /* non-200: on_close follows and answers 503 */
	wp_tun_respond(t, 200);
}

const struct wp_hbone_ops wp_tun_client_ops = {
        .on_response = cli_response,
        .on_data = h2_data,
        .on_eof = h2_eof,
        .on_writable = h2_writable,
        .on_close = h2_close,
};

/* ---- the worker ------------------------------------------------------------------------ */

/* GOAWAY on connections that carried a Gateway the new snapshot lacks. */
static void check_gateways(struct wp_tunnel_worker *tw, const struct wp_snapshot *snap)
{
	for (struct sess *s = tw->live; s != NULL; s = s->next) {
		if (s->client || s->n_gw == 0 || s->drained || s->h2 == NULL)
			continue;
		for (unsigned i = 0; i < s->n_gw; i++) {
			bool found = false;

			for (uint32_t k = 0; k < snap->n_gateways && !found; k++)
				found = gw_key(&snap->gateways[k]) == s->gw_hash[i];
			if (!found) {
				s->drained = true;
				(void)wp_hbconn_drain(s->h2);
				ctr(tw, WP_CTR_TUNNEL_DRAIN_GATEWAY_GONE);
				wp_tun_mark_dirty(s);
				break;
			}
		}
	}
}

static void start_drain(struct wp_tunnel_worker *tw)
{
	tw->draining = true;
	wp_tun_l7_drain(tw);
	for (unsigned i = 0; i < tw->worker->n_ports; i++)
		if (tw->listening[i]) {
			(void)wp_tcp_unlisten(tw->worker->ports[i].tcp, tw->sh->cfg->hbone.port);
			tw->listening[i] = false;
		}
	for (struct sess *s = tw->live; s != NULL; s = s->next) {
		if (s->drained)
			continue;
		s->drained = true;
		if (s->h2 != NULL) {
			(void)wp_hbconn_drain(s->h2);
			if (!s->client)
				ctr(tw, WP_CTR_TUNNEL_DRAIN_SHUTDOWN);
			wp_tun_mark_dirty(s);
		} else if (!s->client) {
			wp_tun_sess_close(s);
		}
	}
}

/* A session's deadline came (wp_tun_sess_timer): what is due is done and
 * the timer armed at the next one. */
static void sess_expire(struct wp_tunnel_worker *tw, struct sess *s)
{
	if (s->state == SESS_DEAD)
		return; /* the poll frees it */
	if (s->deadline_ms != 0 && tw->now_ms >= s->deadline_ms) {
		ctr(tw, WP_CTR_TUNNEL_HANDSHAKE_TIMEOUT);
		wp_tun_sess_kill(s);
		return;
	}
	if (wp_tls_conn_pending(s->tls) > 0)
		wp_tun_mark_dirty(s); /* TCP refused (send pool empty): try again */
	if (s->h2 != NULL) {
		const uint8_t *p;

		if (wp_hbconn_tick(s->h2, tw->now_ms) < 0)
			wp_tun_sess_close(s);
		else if (wp_hbconn_peek(s->h2, &p) > 0)
			wp_tun_mark_dirty(s); /* a PING is due */
	}
	if (!s->trimmed && tw->now_ms - s->last_active_ms >= IDLE_TRIM_MS) {
		wp_tls_conn_trim(s->tls);
		s->trimmed = true;
	}
	wp_tun_sess_timer(s);
}

/* A tunnel's idle deadline came: closed if no byte passed since (both
 * ends reset, as Envoy's TCP proxy closes both connections), else armed
 * again at the new deadline. A tunnel the L7 proxy took over (its sniffed
 * bytes were HTTP) is the proxy's to time out. */
static void tun_idle_expire(struct wp_tunnel_worker *tw, struct tunnel *t)
{
	if (!t->live || t->dead || t->e[1].kind == END_L7)
		return;
	if (tw->now_ms - t->active_ms < t->idle_ms) {
		wp_twheel_arm(&tw->idle_wheel, &t->idle, t->active_ms + t->idle_ms);
		return;
	}
	ctr(tw, WP_CTR_TUNNEL_IDLE_TIMEOUT);
	wp_tun_kill(t);
}

static void tick(struct wp_tunnel_worker *tw)
{
	struct wp_h2mem_stats ms;
	struct wp_twheel_node *n;

	/* Only the sessions whose deadline came: no walk over the idle ones. */
	while ((n = wp_twheel_pop(&tw->wheel, tw->now_ms)) != NULL)
		sess_expire(tw, wp_container_of(n, struct sess, timer));
	while ((n = wp_twheel_pop(&tw->idle_wheel, tw->now_ms)) != NULL)
		tun_idle_expire(tw, wp_container_of(n, struct tunnel, idle));
	if (tw->l7.core != NULL)
		wp_h1p_core_tick(tw->l7.core, tw->now_ms);
	wp_tun_l7h2_tick(tw);
	wp_h2mem_stats(tw->mem, &ms);
	__atomic_store_n(&tw->g.h2_live, ms.held_bytes, __ATOMIC_RELAXED);
	__atomic_store_n(&tw->g.h2_slab, ms.slab_bytes, __ATOMIC_RELAXED);
	__atomic_store_n(&tw->g.tls_live, wp_tls_mem_live(), __ATOMIC_RELAXED);
}

/*
 * The sessions whose handshake step waited (hsgate.h's share), in their
 * order, as far as the share allows; the others keep their place. Those
 * that left the handshake meanwhile (closed, timed out) just leave the
 * FIFO. Returns the number looked at: a waiting one keeps the worker
 * awake.
 */
static unsigned run_waiting_handshakes(struct wp_tunnel_worker *tw)
{
	struct sess *list = tw->hs_wait;
	unsigned n = 0;

	tw->hs_wait = NULL;
	tw->hs_wait_tail = &tw->hs_wait;
	while (list != NULL) {
		struct sess *s = list;

		list = s->hnext;
		s->hs_queued = false;
		n++;
		if (s->state != SESS_HANDSHAKE)
			continue;
		if (wp_hsshare_may_step(&tw->hs_share))
			wp_tun_sess_pump(s);
		else
			wp_tun_hs_defer(s);
	}
	return n;
}

unsigned wp_tunnel_poll(struct wp_tunnel_worker *tw, uint64_t now_us)
{
	unsigned work = 0;

	if (tw == NULL)
		return 0;
	tw->now_ms = now_us / 1000;
	wp_lb_cache_clock(tw->lbc, tw->now_ms);
	if (tw->l7.core != NULL)
		wp_h1p_core_clock(tw->l7.core, tw->now_ms); /* request deadlines */
	if (tw->l7.h2core != NULL)
		wp_h2p_core_clock(tw->l7.h2core, tw->now_ms);
	if (!tw->draining && *tw->sh->drain)
		start_drain(tw);
	if (tw->worker->slot != NULL) {
		const struct wp_snapshot *snap = wp_snapshot_get(tw->worker->slot);

		if (snap != NULL && snap->version != tw->snap_version) {
			tw->snap_version = snap->version;
			check_gateways(tw, snap);
		}
	}
	wp_pipe_core_clock(&tw->pipe, now_us, tw->snap_version); /* request durations */
	if (WP_UNLIKELY((tw->pipe.alog || tw->pipe.trace) && !tw->pipe.wall_off_us)) {
		struct timespec ts; /* access-log and span start times: wall clock */

		clock_gettime(CLOCK_REALTIME, &ts);
		tw->pipe.wall_off_us =
		        (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - (int64_t)now_us;
	}
	{
		const struct wp_tls_ctx *cur = wp_tls_store_get(&tw->sh->tls);

		if (cur != tw->seen_ctx) {
			if (tw->seen_ctx != NULL)
				ctr(tw, WP_CTR_TUNNEL_TLS_RELOADED);
			tw->seen_ctx = cur;
		}
	}
	{
		uint64_t f = __atomic_load_n(&tw->sh->reload_failures, __ATOMIC_RELAXED);

		/* No counters on the main thread: worker 0 counts each failed attempt. */
		if (f != tw->seen_reload_failures) {
			if (tw->worker->worker_id == 0)
				wp_ctr_add(tw->ctr, WP_CTR_TLS_RELOAD_FAILED,
				           f - tw->seen_reload_failures);
			tw->seen_reload_failures = f;
		}
	}
	if (tw->now_ms - tw->last_tick_ms >= TICK_MS) {
		tw->last_tick_ms = tw->now_ms;
		tick(tw);
	} else {
		wp_tun_l7_fault_tick(tw);
	}
	wp_hsshare_iteration(&tw->hs_share, now_us);
	work += run_waiting_handshakes(tw);
	for (int round = 0; round < 8 && (tw->dirty != NULL || tw->l7.pump != NULL); round++) {
		struct sess *list;

		wp_tun_l7_pump_all(tw);
		list = tw->dirty;
		tw->dirty = NULL;
		while (list != NULL) {
			struct sess *s = list;

			list = s->dnext;
			s->dirty = false;
			if (s->state == SESS_DEAD)
				continue; /* on the dead list */
			work++;
			wp_tun_sess_pump(s);
			if (s->need_resume && s->tcp != NULL && s->state != SESS_DEAD) {
				s->need_resume = false;
				wp_tcp_recv_resume(s->tcp);
			}
		}
	}
	{
		struct sess *later = NULL;

		while (tw->dead_sess != NULL) {
			struct sess *s = tw->dead_sess;

			tw->dead_sess = s->xnext;
			if (s->dirty || s->hs_queued) { /* still on a list: next time */
				s->xnext = later;
				later = s;
				continue;
			}
			wp_tun_sess_free(s); /* may kill more sessions: they join dead_sess */
			work++;
		}
		tw->dead_sess = later;
	}
	while (tw->dead_tun != NULL) {
		struct tunnel *t = tw->dead_tun;

		tw->dead_tun = t->dnext;
		wp_tun_free(t);
		work++;
	}
	return work;
}

/* ---- set-up -------------------------------------------------------------------------- */

/* Endpoints outlier detection can have ejected at once, over the process's
 * life (an entry is kept per endpoint ever ejected; 4096 cost ~0.7 MiB). */
#define WP_TUNNEL_OUTLIER_ENTRIES 4096

int wp_tunnel_shared_init(struct wp_tunnel_shared *sh, const struct wp_config *cfg,
                          volatile const bool *drain)
{
	struct wp_tls_config tc;
	int rc;

	memset(sh, 0, sizeof(*sh));
	sh->cfg = cfg;
	sh->drain = drain;
	memset(&tc, 0, sizeof(tc));
	tc.cert_file = cfg->tls.cert;
	tc.key_file = cfg->tls.key;
	tc.ca_file = cfg->tls.ca;
	tc.trust_domain = cfg->tls.trust_domain;
	for (unsigned i = 0; i < cfg->tls.n_aliases && i < WP_TLS_MAX_ALIASES; i++)
		tc.aliases[i] = cfg->tls.aliases[i];
	tc.allow_tls12 = cfg->tls.allow_tls12;
	tc.no_session_tickets = !cfg->tls.session_tickets;
	tc.openssl_handshake = cfg->tls.openssl_handshake;
	memcpy(tc.suites13, cfg->tls.suites13, sizeof(tc.suites13));
	tc.n_suites13 = cfg->tls.n_suites13;
	tc.ticket_period_s = cfg->tls.ticket_key_rotation_s;
	rc = wp_tls_store_init(&sh->tls, &tc);
	if (rc != 0) {
		fprintf(stderr,
		        "waypointd: cannot load tls.cert '%s', tls.key '%s', tls.ca '%s': %s\n",
		        cfg->tls.cert, cfg->tls.key, cfg->tls.ca, strerror(-rc));
		return rc;
	}
	wp_hbone_config_default(&sh->h2);
	sh->h2.max_streams = cfg->hbone.max_streams;
	sh->h2.stream_window = cfg->hbone.stream_window;
	sh->h2.conn_window = cfg->hbone.conn_window;
	sh->h2.ping_interval_ms = cfg->hbone.ping_interval_ms;
	sh->h2.ping_timeout_ms = cfg->hbone.ping_timeout_ms;
	sh->h2.header_table_size = cfg->hbone.header_table_size;
	sh->outlier = wp_outlier_new(WP_TUNNEL_OUTLIER_ENTRIES);
	if (sh->outlier == NULL) {
		fprintf(stderr, "waypointd: no memory for the outlier-detection table\n");
		return -ENOMEM;
	}
	return 0;
}

int wp_tunnel_shared_tick(struct wp_tunnel_shared *sh, struct wp_stats *const *stats, unsigned n,
                          uint64_t now_ms)
{
	struct wp_tls_ctx *old = NULL;
	int rc;

	if (sh->retired != NULL) {
		bool passed = true;

		/* Every worker ended the iteration it was in when we swapped. */
		for (unsigned i = 0; i < n && passed; i++)
			passed = __atomic_load_n(&stats[i]->loops, __ATOMIC_ACQUIRE) >
			         sh->retired_loops[i];
		if (!passed)
			return 0;
		wp_tls_ctx_unref(sh->retired);
		sh->retired = NULL;
	}
	if (sh->cfg->tls.reload_ms == 0 || now_ms < sh->next_check_ms)
		return 0;
	sh->next_check_ms = now_ms + sh->cfg->tls.reload_ms;
	rc = wp_tls_store_reload(&sh->tls, false, &old, NULL);
	if (rc < 0) {
		/* Retried every reload_ms until the files load (a writer may be mid-way). */
		__atomic_add_fetch(&sh->reload_failures, 1, __ATOMIC_RELAXED);
		if (!sh->reload_failing)
			fprintf(stderr,
			        "waypointd: tls reload failed (%s); keeping the old certificate\n",
			        strerror(-rc));
		sh->reload_failing = true;
		return rc;
	}
	sh->reload_failing = false;
	if (rc == 0)
		return 0;
	for (unsigned i = 0; i < n; i++)
		sh->retired_loops[i] = __atomic_load_n(&stats[i]->loops, __ATOMIC_ACQUIRE);
	sh->retired = old;
	printf("waypointd: tls certificate, key and roots reloaded\n");
	fflush(stdout);
	return 1;
}

void wp_tunnel_shared_fini(struct wp_tunnel_shared *sh)
{
	wp_tls_ctx_unref(sh->retired);
	sh->retired = NULL;
	wp_tls_store_fini(&sh->tls);
}

struct wp_tunnel_worker *wp_tunnel_worker_create(const struct wp_app_io *io,
                                                 struct wp_tunnel_shared *sh)
{
	const struct wp_hbone_listen_config *hc = &sh->cfg->hbone;
	struct wp_tunnel_worker *tw = io->zalloc(io->ctx, "wp_tunnel", sizeof(*tw), WP_CACHE_LINE);

	if (tw == NULL)
		return NULL;
	tw->worker = io;
	tw->sh = sh;
	tw->ctr = io->ctr;
	for (unsigned i = 0; i < io->n_ports; i++) {
		tw->ports[i].tw = tw;
		tw->ports[i].io = &io->ports[i];
	}
	wp_pipe_core_init(&tw->pipe, tw->ctr);
	wp_pipe_core_set_metrics(&tw->pipe, io->metrics, sh->cfg->tls.trust_domain,
	                         sh->cfg->cluster.cluster_domain, sh->cfg->metrics.cluster_id);
	tw->pipe.record = io->metrics && sh->cfg->metrics.enabled;
	if (io->metrics)
		wp_pipe_core_set_alog(&tw->pipe, io->alog, sh->cfg->access_log.file[0] != '\0',
		                      0); /* the wall offset at the first poll */
	if (io->metrics)
		wp_pipe_core_set_trace(&tw->pipe, io->trace, sh->cfg->tracing.sampling_ppm,
		                       sh->cfg->tracing.protocol,
		                       io->now_us(io->ctx) ^ ((uint64_t)io->worker_id << 32) ^
		                               (uintptr_t)tw);
	wp_hsgate_init(&tw->g.hs, hc->max_handshakes);
	wp_hsshare_init(&tw->hs_share, hc->handshake_share, io->now_us(io->ctx));
	tw->hs_wait_tail = &tw->hs_wait;
	wp_twheel_init(&tw->wheel, TICK_MS, 0); /* catches up to the clock at the first tick */
	wp_twheel_init(&tw->idle_wheel, TICK_MS, 0);
	snprintf(tw->td, sizeof(tw->td), "%s", sh->cfg->tls.trust_domain);
	tw->mem = wp_h2mem_new(1u << 20, (size_t)hc->memory_mb << 20);
	tw->sess_pool =
	        io->zalloc(io->ctx, "wp_tunnel_sess", sizeof(struct sess) * hc->max_sessions, 0);
	tw->tun_pool =
	        io->zalloc(io->ctx, "wp_tunnel_tun", sizeof(struct tunnel) * hc->max_tunnels, 0);
	if (tw->mem == NULL || tw->sess_pool == NULL || tw->tun_pool == NULL)
		goto fail;
	for (unsigned i = hc->max_sessions; i-- > 0;) {
		tw->sess_pool[i].next = tw->sess_free;
		tw->sess_free = &tw->sess_pool[i];
	}
	for (unsigned i = hc->max_tunnels; i-- > 0;) {
		tw->tun_pool[i].wnext = tw->tun_free;
		tw->tun_free = &tw->tun_pool[i];
	}
	/* seeded per worker: round-robin cursors start apart */
	tw->lbc = wp_lb_cache_new(0x2545f4914f6cdd1dull * (io->worker_id + 1), tw->ctr);
	if (tw->lbc != NULL)
		wp_lb_cache_set_outlier(tw->lbc, tw->sh->outlier);
	if (tw->lbc == NULL)
		goto fail;
	wp_tun_l7_worker_init(tw);
	for (unsigned i = 0; i < io->n_ports; i++) {
		if (wp_tcp_listen(io->ports[i].tcp, hc->port, wp_tun_on_accept, &tw->ports[i]) != 0)
			goto fail;
		tw->listening[i] = true;
	}
	return tw;
fail:
	wp_tunnel_worker_destroy(tw);
	return NULL;
}

void wp_tunnel_worker_stop(struct wp_tunnel_worker *tw)
{
	if (tw == NULL)
		return;
	wp_tun_l7_worker_stop(tw);
	for (struct sess *s = tw->live; s != NULL; s = s->next) {
		s->state = SESS_DEAD;
		s->dirty = false;
		s->hs_queued = false;
		s->on_dead = true;
	}
	while (tw->live != NULL)
		wp_tun_sess_free(tw->live); /* aborts TCP, frees HTTP/2: tunnels are reset */
	tw->dirty = tw->dead_sess = tw->hs_wait = NULL;
	tw->hs_wait_tail = &tw->hs_wait;
	/* Plaintext tunnels whose downstream is gone already. */
	for (unsigned i = 0; i < tw->sh->cfg->hbone.max_tunnels; i++) {
		struct tunnel *t = &tw->tun_pool[i];

		if (!t->live)
			continue;
		if (t->e[1].kind == END_TCP && t->e[1].c != NULL) {
			struct wp_tcp_conn *c = t->e[1].c;

			t->e[1].c = NULL;
			wp_tcp_abort(c);
		}
		if (!t->dead)
			wp_tun_free(t);
	}
	while (tw->dead_tun != NULL) {
		struct tunnel *t = tw->dead_tun;

		tw->dead_tun = t->dnext;
		if (t->live)
			wp_tun_free(t);
	}
	for (unsigned i = 0; i < tw->worker->n_ports; i++)
		if (tw->listening[i]) {
			(void)wp_tcp_unlisten(tw->worker->ports[i].tcp, tw->sh->cfg->hbone.port);
			tw->listening[i] = false;
		}
}

void wp_tunnel_worker_destroy(struct wp_tunnel_worker *tw)
{
	if (tw == NULL)
		return;
	if (tw->live != NULL || tw->listening[0])
		wp_tunnel_worker_stop(tw);
	wp_tun_l7_worker_fini(tw);
	wp_lb_cache_free(tw->lbc);
	wp_pipe_core_fini(&tw->pipe);
	tw->worker->free_fn(tw->worker->ctx, tw->sess_pool);
	tw->worker->free_fn(tw->worker->ctx, tw->tun_pool);
	if (tw->mem != NULL)
		wp_h2mem_destroy(tw->mem);
	tw->worker->free_fn(tw->worker->ctx, tw);
}

uint64_t wp_tunnel_worker_active(const struct wp_tunnel_worker *tw)
{
	if (tw == NULL)
		return 0;
	return __atomic_load_n(&tw->g.sessions_in, __ATOMIC_RELAXED) +
	       __atomic_load_n(&tw->g.tunnels, __ATOMIC_RELAXED);
}

void wp_tunnel_worker_gauges_add(const struct wp_tunnel_worker *tw,
                                 struct wp_telemetry_tunnels *sum)
{
	sum->sessions_in += __atomic_load_n(&tw->g.sessions_in, __ATOMIC_RELAXED);
	sum->sessions_out += __atomic_load_n(&tw->g.sessions_out, __ATOMIC_RELAXED);
	sum->tunnels += __atomic_load_n(&tw->g.tunnels, __ATOMIC_RELAXED);
	sum->queued_bytes += __atomic_load_n(&tw->g.queued_bytes, __ATOMIC_RELAXED);
	sum->h2_held_bytes += __atomic_load_n(&tw->g.h2_live, __ATOMIC_RELAXED);
	sum->h2_slab_bytes += __atomic_load_n(&tw->g.h2_slab, __ATOMIC_RELAXED);
	sum->tls_live_bytes += __atomic_load_n(&tw->g.tls_live, __ATOMIC_RELAXED);
	sum->handshakes += wp_hsgate_busy(&tw->g.hs);
	sum->handshakes_peak = WP_MAX(sum->handshakes_peak, (uint64_t)wp_hsgate_peak(&tw->g.hs));
}

/* ---- the worker's hooks (dp/app/app.h) ------------------------------------------------------ */

static unsigned app_poll(void *app, uint64_t now_us)
{
	return wp_tunnel_poll(app, now_us);
}

static void app_stop(void *app)
{
	wp_tunnel_worker_stop(app);
}

static void app_destroy(void *app)
{
	wp_tunnel_worker_destroy(app);
}

static void app_gauges(const void *app, struct wp_app_gauges *g)
{
	const struct wp_tunnel_worker *tw = app;

	g->conns = tw->g.sessions_in + tw->g.sessions_out;
	g->tunnels = tw->g.tunnels;
}

const struct wp_app_ops wp_tunnel_app_ops = {
        .poll = app_poll,
        .stop = app_stop,
        .destroy = app_destroy,
        .gauges = app_gauges,
};
