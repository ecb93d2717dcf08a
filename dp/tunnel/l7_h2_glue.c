/*
 * h2c / gRPC glue for tunnel.c (see dp/tunnel/l7.h and dp/l7/h2proxy.h):
 * l7_glue.c's hooks hand over to the wp_tun_l7h2_* functions here when a
 * tunnel belongs to the h2 proxy:
 *
 *   wp_tun_l7h2_wants / wp_tun_l7h2_start  a CONNECT to a service port whose protocol is
 *                            HTTP/2 (appProtocol http2, grpc, grpc-web,
 *                            kubernetes.io/h2c, or a name prefix http2 /
 *                            grpc): answered 200, end 1 a struct wp_h2p_sess
 *   wp_tun_l7h2_sniff               a port of unknown protocol whose first client
 *                            bytes are the HTTP/2 connection preface
 *   wp_tun_l7h2_on_http             an HTTP/1.1 port (its h1proxy session just
 *                            opened) whose first client bytes are the
 *                            preface: an h2 session with HTTP/1.1 upstreams
 *   wp_tun_l7h2_input / _eof        bytes / EOF into a session or an upstream
 *   wp_tun_l7h2_connected / _detach an upstream connected / a tunnel end died
 *   wp_tun_l7h2_pump                moves the proxy's output (from the poll loop)
 *   l7h2_worker_* / _tick    per-worker core, idle upstream expiry, drain
 *
 * Every upstream h2c connection is an upstream L7 tunnel (end 0 the
 * proxy's struct wp_h2p_up, end 1 plaintext TCP or an originated HBONE
 * stream, exactly as for HTTP/1.1), pooled by the proxy per worker and
 * endpoint and shared by the streams of every session of the worker.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "tunnel_int.h"

/* ---- struct wp_h2p_ops ------------------------------------------------------------------- */

static int l7h2_up_open(void *host, struct wp_h2p_up *up, const struct wp_snap_endpoint *ep)
{
	struct wp_tunnel_worker *tw = host;
	struct tunnel *t;
	int rc;

	if (tw->l7.h2port == NULL)
		return -EINVAL;
	t = wp_tun_l7_up_alloc(tw, ep, &rc);
	if (t == NULL)
		return rc;
	t->l7.h2up = up;
	up->io = t;
	t->keepalive = up->keepalive;
	rc = wp_tun_l7_up_connect(t, ep, tw->l7.h2port);
	if (rc != 0)
		up->io = NULL;
	return rc;
}

static void l7h2_up_close(void *host, struct wp_h2p_up *up)
{
	struct tunnel *t = up->io;

	(void)host;
	if (t == NULL || t->l7.h2up != up)
		return;
	t->l7.h2up = NULL;
	wp_tun_l7_up_let_go(t);
}

/* An idle HTTP/1.1 upstream let go: a FIN, not a reset (l7_up_finish()). */
static void l7h2_up_finish(void *host, struct wp_h2p_up *up)
{
	struct tunnel *t = up->io;

	l7h2_up_close(host, up);
	if (t != NULL && t->l7.close)
		t->l7.fin = true;
}

static void l7h2_wake_sess(void *host, struct wp_h2p_sess *s)
{
	(void)host;
	wp_tun_l7_mark(wp_h2p_sess_app(s));
}

/* A stream held by a fault delay resumes: its table first. */
static void l7h2_refresh(void *host, struct wp_h2p_sess *s)
{
	(void)host;
	wp_tun_l7_refresh_routes(wp_h2p_sess_app(s));
}

static void l7h2_wake_up(void *host, struct wp_h2p_up *up)
{
	(void)host;
	wp_tun_l7_mark(up->io);
}

static const struct wp_h2p_ops l7h2_ops = {
        .up_open = l7h2_up_open,
        .up_close = l7h2_up_close,
        .wake_sess = l7h2_wake_sess,
        .wake_up = l7h2_wake_up,
        .up_finish = l7h2_up_finish,
        .refresh = l7h2_refresh,
};

/* ---- tunnel ends ------------------------------------------------------------------------- */

/* wp_tun_l7_input(): bytes for the h2 proxy. */
size_t wp_tun_l7h2_input(struct tunnel *t, const uint8_t *p, size_t len)
{
	if (t->l7.h2sess != NULL) {
		if (t->e[0].sess != NULL)
			t->tw->l7.h2port = t->e[0].sess->port; /* where upstreams are opened */
		wp_tun_l7_refresh_routes(t);
		(void)wp_h2p_down_in(t->l7.h2sess, p, len);
		wp_tun_l7_mark(t);
		return len;
	}
	if (t->l7.h2up != NULL) {
		struct tunnel *self = t;
		size_t n;

		/* may let go of it; an HTTP/1.1 upstream takes fewer bytes while
		 * its client does not read (the rest waits in the tunnel, offered
		 * again by wp_tun_end_flush() once the proxy wakes it) */
		n = wp_h2p_up_in(t->l7.h2up, p, len);
		wp_tun_l7_mark(self);
		return n;
	}
	return len;
}

/* wp_tun_l7_eof(): true if it was an h2 end. */
bool wp_tun_l7h2_eof(struct tunnel *t)
{
	if (t->l7.h2sess != NULL) {
		wp_h2p_down_eof(t->l7.h2sess);
		wp_tun_l7_mark(t);
		return true;
	}
	if (t->l7.h2up != NULL) {
		wp_h2p_up_eof(t->l7.h2up); /* l7h2_up_close() */
		return true;
	}
	return false;
}

/* wp_tun_l7_connected(): true if it was an h2 upstream. */
bool wp_tun_l7h2_connected(struct tunnel *t)
{
	if (t->l7.h2up == NULL)
		return false;
	t->responded = true;
	ctr(t->tw, WP_CTR_TUNNEL_OPENED);
	wp_h2p_up_connected(t->l7.h2up);
	wp_tun_l7_mark(t);
	return true;
}

/* wp_tun_l7_detach(): true if it was an h2 end. */
bool wp_tun_l7h2_detach(struct tunnel *t)
{
	if (t->l7.h2sess != NULL) {
		struct wp_h2p_sess *s = t->l7.h2sess;

		t->l7.h2sess = NULL;
		wp_h2p_sess_close(s);
		return true;
	}
	if (t->l7.h2up != NULL) {
		struct wp_h2p_up *up = t->l7.h2up;

		t->l7.h2up = NULL;
		up->io = NULL;
		wp_h2p_up_failed(up); /* streams retried, answered or reset */
		return true;
	}
	return false;
}

/* ---- downstream tunnels ------------------------------------------------------------------ */

/* Istio's rules: appProtocol http2 / grpc / grpc-web / kubernetes.io/h2c,
 * or a port name prefixed http2 / grpc (the resolver maps grpc-web to
 * HTTP: it is looked at by name here). */
bool wp_tun_l7h2_proto(const struct wp_snap_svc_port *p)
{
	if (p->proto == WP_PROTO_HTTP2 || p->proto == WP_PROTO_GRPC)
		return true;
	return p->name != NULL && !strncasecmp(p->name, "grpc-web", 8) &&
	       (p->name[8] == '\0' || p->name[8] == '-');
}

bool wp_tun_l7h2_wants(const struct wp_tunnel_worker *tw, const struct wp_snap_svc_port *p)
{
	(void)tw;
	return wp_tun_l7h2_proto(p);
}

/* The tunnel's session from now on is <s>: end 1 is the h2 proxy. */
static void l7h2_bind(struct tunnel *t, struct wp_h2p_sess *s)
{
	t->l7.h2sess = s;
	wp_h2p_sess_set_app(s, t);
	wp_h2p_sess_set_conn(s, &t->pc);
	if (t->e[0].sess != NULL)
		t->tw->l7.h2port = t->e[0].sess->port;
	wp_tun_l7_mark(t); /* the server preface goes out */
}

/* wp_tun_l7_start() for an HTTP/2 port: 200 and proxied, or 503. */
bool wp_tun_l7h2_start(struct sess *s, struct wp_hbstream *hs, const struct wp_hbone_req *req,
                       const struct wp_snapshot *snap, const struct wp_snap_dest *d)
{
	struct wp_tunnel_worker *tw = s->tw;
	const struct wp_snap_svc_port *p = &d->svc->ports[d->port_idx];
	struct tunnel *t;
	struct wp_h2p_sess *hsess;
	int n;

	if (tw->l7.h2core == NULL) {
		wp_tun_l7_refuse(tw, hs);
		return true;
	}
	t = wp_tun_alloc(tw);
	if (t == NULL) {
		ctr(tw, WP_CTR_TUNNEL_LIMIT);
		(void)wp_hbstream_respond(hs, 503);
		return true;
	}
	t->l7.dest = req->authority;
	n = snprintf(t->l7.auth, sizeof(t->l7.auth), "%s:%u", d->svc->hostname, p->port);
	if (n < 0 || (size_t)n >= sizeof(t->l7.auth))
		n = 0;
	wp_tun_pipe_conn_fill(&t->pc, tw, s, req, snap, d);
	t->pc.authority = t->l7.auth;
	t->pc.authority_len = (uint32_t)n;
	hsess = wp_h2p_sess_open(tw->l7.h2core, p->routes, wp_tun_l7_client(t, s, req), t->l7.auth,
	                         (size_t)n, 0);
	if (hsess == NULL) { /* l7_h2p_no_session counted */
		wp_tun_free(t);
		wp_tun_l7_refuse(tw, hs);
		return true;
	}
	t->target = req->authority;
	t->e[0].kind = END_H2;
	t->e[0].s = hs;
	t->e[0].sess = s;
	t->e[1].kind = END_L7;
	wp_hbstream_set_app(hs, t);
	l7h2_bind(t, hsess);
	wp_tun_respond(t, 200);
	return true;
}

/* wp_tun_l7_sniff(): the first client bytes of a tunnel of unknown protocol. If
 * they are the HTTP/2 preface, end 1 becomes the h2 proxy (the L4
 * upstream, unused so far, is dropped) and true is returned. */
bool wp_tun_l7h2_sniff(struct tunnel *t, const uint8_t *data, size_t len)
{
	struct wp_tunnel_worker *tw = t->tw;
	struct end *u = &t->e[1];
	struct wp_h2p_sess *s;

	if (tw->l7.h2core == NULL || !wp_h2p_is_preface(data, len) || u->gone)
		return false;
	s = wp_h2p_sess_open(tw->l7.h2core, NULL, t->l7.has_src ? &t->l7.src : NULL, t->l7.auth,
	                     strlen(t->l7.auth), 0);
	if (s == NULL) {
		ctr(tw, WP_CTR_L7_TUNNEL_NO_SESSION);
		t->l7.no_session = true; /* from_h2() resets it */
		wp_tun_l7h2_sniff_done(t, false);
		return true;
	}
	if (u->kind == END_TCP && u->c != NULL) {
		struct wp_tcp_conn *c = u->c;

		u->c = NULL;
		wp_tcp_abort(c);
	} else if (u->kind == END_H2 && u->s != NULL) {
		wp_hbstream_set_app(u->s, NULL);
		(void)wp_hbstream_reset(u->s, NGHTTP2_CANCEL);
		wp_tun_mark_dirty(u->sess);
	} else if (u->kind == END_H2) {
		wp_tun_unwait(t);
	}
	wp_bq_clear(&u->q, tw->mem);
	memset(u, 0, sizeof(*u));
	wp_bq_init(&u->q);
	wp_tun_l7h2_sniff_done(t, true);
	u->kind = END_L7;
	l7h2_bind(t, s);
	ctr(tw, WP_CTR_L7_SNIFF_H2);
	if (!t->responded)
		wp_tun_respond(t, 200);
	return true;
}

/*
 * wp_tun_l7_input(): the first client bytes of a tunnel to an HTTP/1.1 port (its
 * h1proxy session has parsed nothing yet). If they are the HTTP/2
 * preface (h2c with prior knowledge), the h1proxy session is closed and
 * end 1 becomes an h2 session whose requests go to HTTP/1.1 upstreams (the
 * port's protocol); true is returned and the caller hands it the bytes.
 * Otherwise (or with no h2 session free: the h1proxy then answers the
 * preface 400, as before) false. Checked once per tunnel.
 */
bool wp_tun_l7h2_on_http(struct tunnel *t, const uint8_t *data, size_t len)
{
	struct wp_tunnel_worker *tw = t->tw;
	struct wp_h2p_sess *s;

	t->l7.h2probe = false;
	if (!wp_h2p_is_preface(data, len))
		return false;
	s = wp_h2p_sess_open(tw->l7.h2core, NULL, t->l7.has_src ? &t->l7.src : NULL, t->l7.auth,
	                     strlen(t->l7.auth), WP_H2P_SESS_H1_UPSTREAM);
	if (s == NULL) /* l7_h2p_no_session counted */
		return false;
	wp_h1p_sess_close(t->l7.sess);
	t->l7.sess = NULL;
	t->l7.routes_valid = false; /* wp_tun_l7h2_input() gives the new session its table */
	ctr(tw, WP_CTR_L7_TUNNEL_H2_ON_HTTP);
	l7h2_bind(t, s);
	return true;
}

/* wp_tun_end_write() towards the client of a tunnel whose first client bytes are
 * still awaited: an HTTP/2 server's preface (a SETTINGS frame on stream 0,
 * which an h2c upstream sends as soon as it accepts) must not reach the
 * client before the sniff, or a client whose tunnel then becomes the h2
 * proxy would see two server prefaces. Such bytes are held (queued, or
 * left in TCP) until wp_tun_l7h2_sniff_done(); any other upstream bytes (a
 * server-first protocol's greeting) pass as before. */
bool wp_tun_l7h2_hold(const uint8_t *p, size_t len)
{
	return len >= 9 && p[3] == NGHTTP2_SETTINGS && (p[4] & NGHTTP2_FLAG_ACK) == 0 &&
	       p[5] == 0 && p[6] == 0 && p[7] == 0 && p[8] == 0;
}

/* The sniff decided: an L7 tunnel drops the held upstream bytes (its L4
 * upstream is gone), an L4 one gets them flushed to the client. */
void wp_tun_l7h2_sniff_done(struct tunnel *t, bool l7)
{
	struct wp_tunnel_worker *tw = t->tw;

	if (l7) {
		tw->g.queued_bytes -= wp_bq_len(&t->e[0].q);
		wp_bq_clear(&t->e[0].q, tw->mem);
	} else {
		wp_pipe_tcp_open(&t->pc); /* stays opaque TCP: its bytes count from here */
		wp_tun_end_flush(t, 0);
	}
}

/* The session is over: close it and end the inbound stream. */
static void l7h2_down_done(struct tunnel *t)
{
	struct wp_h2p_sess *s = t->l7.h2sess;

	t->l7.h2sess = NULL;
	wp_h2p_sess_close(s);
	t->e[1].gone = true;
	t->e[1].eof_in = true;
	wp_tun_end_flush(t, 1);
	if (!t->e[0].gone)
		wp_tun_end_shut(t, 0);
	wp_tun_check_done(t);
}

/* l7_pump(): true if it was an h2 tunnel. */
bool wp_tun_l7h2_pump(struct tunnel *t)
{
	const uint8_t *p;
	size_t n, w;

	if (t->l7.h2sess != NULL) {
		struct wp_h2p_sess *s = t->l7.h2sess;

		if (t->e[0].gone) {
			l7h2_down_done(t);
			return true;
		}
		while ((n = wp_h2p_down_peek(s, &p)) > 0) {
			w = wp_tun_end_write(t, 0, p, n);
			if (w == 0)
				break;
			wp_h2p_down_consume(s, w);
		}
		wp_tun_end_flush(t, 1);
		if (t->l7.h2sess != NULL && wp_h2p_down_finished(s))
			l7h2_down_done(t);
		return true;
	}
	if (t->l7.h2up == NULL)
		return false;
	if (!t->responded)
		return true;
	while (t->l7.h2up != NULL && (n = wp_h2p_up_peek(t->l7.h2up, &p)) > 0) {
		w = wp_tun_end_write(t, 1, p, n);
		if (w == 0)
			break;
		wp_h2p_up_consume(t->l7.h2up, w);
	}
	wp_tun_end_flush(t, 0);
	return true;
}

/* ---- worker ------------------------------------------------------------------------------ */

void wp_tun_l7h2_worker_init(struct wp_tunnel_worker *tw)
{
	struct wp_h2p_cfg cfg = wp_h2p_default_cfg;
	uint32_t max_tun = tw->sh->cfg->hbone.max_tunnels;

	/* A stream holds two 64 KiB rings and two 16 KiB header blocks: 256
	 * streams are ~40 MiB per worker. Sessions and upstreams are tunnels.
	 * An HTTP/1.1 upstream (h2c clients on HTTP/1.1 ports) carries one
	 * stream at a time, so there are more upstreams than h2c alone needs;
	 * each has a parser arena and an output buffer (~80 KiB, ~10 MiB). */
	cfg.max_sessions = WP_MAX(1u, WP_MIN(tw->sh->cfg->l7.h2_max_sessions, max_tun / 8));
	cfg.max_upstreams = WP_MAX(1u, WP_MIN(tw->sh->cfg->l7.h2_max_upstreams, max_tun / 8));
	cfg.n_workers = tw->worker->n_workers;
	cfg.outlier = tw->sh->outlier;
	tw->l7.h2core =
	        wp_h2p_core_create(&cfg, &l7h2_ops, tw, &tw->l7.rc, wp_h2mem_nghttp2(tw->mem),
	                           tw->worker->worker_id + 7, tw->ctr);
	if (tw->l7.h2core == NULL)
		fprintf(stderr,
		        "waypointd: worker %u: no memory for the h2c proxy: CONNECTs to "
		        "HTTP/2 ports are refused (503)\n",
		        tw->worker->worker_id);
}

void wp_tun_l7h2_tick(struct wp_tunnel_worker *tw)
{
	if (tw->l7.h2core != NULL)
		(void)wp_h2p_core_tick(tw->l7.h2core, tw->now_ms);
}

/* A fault delay (dp/l7/fault.h) ends on time, not at the next TICK_MS:
 * a proxy's timers also run when its earliest held request is due. */
void wp_tun_l7_fault_tick(struct wp_tunnel_worker *tw)
{
	uint64_t d;

	if (tw->l7.core != NULL && (d = wp_h1p_core_due(tw->l7.core)) != 0 && tw->now_ms >= d)
		(void)wp_h1p_core_tick(tw->l7.core, tw->now_ms);
	if (tw->l7.h2core != NULL && (d = wp_h2p_core_due(tw->l7.h2core)) != 0 && tw->now_ms >= d)
		(void)wp_h2p_core_tick(tw->l7.h2core, tw->now_ms);
}

/* wp_tun_l7_drain(): idle upstreams closed, sessions GOAWAY. */
void wp_tun_l7h2_drain(struct wp_tunnel_worker *tw)
{
	if (tw->l7.h2core == NULL)
		return;
	wp_h2p_core_drain(tw->l7.h2core);
	for (unsigned i = 0; i < tw->sh->cfg->hbone.max_tunnels; i++) {
		struct tunnel *t = &tw->tun_pool[i];

		if (t->live && !t->dead && t->l7.h2sess != NULL) {
			wp_h2p_sess_drain(t->l7.h2sess);
			wp_tun_l7_mark(t);
		}
	}
}

/* wp_tun_l7_worker_stop(): sessions closed, then every upstream. */
void wp_tun_l7h2_worker_stop(struct wp_tunnel_worker *tw)
{
	if (tw->l7.h2core == NULL)
		return;
	for (unsigned i = 0; i < tw->sh->cfg->hbone.max_tunnels; i++) {
		struct tunnel *t = &tw->tun_pool[i];

		if (t->live && t->l7.h2sess != NULL) {
			struct wp_h2p_sess *s = t->l7.h2sess;

			t->l7.h2sess = NULL;
			t->e[1].gone = true;
			wp_h2p_sess_close(s);
		}
	}
	wp_h2p_core_destroy(tw->l7.h2core); /* l7h2_up_close() on every upstream */
	tw->l7.h2core = NULL;
}

void wp_tun_l7h2_worker_fini(struct wp_tunnel_worker *tw)
{
	wp_h2p_core_destroy(tw->l7.h2core);
	tw->l7.h2core = NULL;
}
