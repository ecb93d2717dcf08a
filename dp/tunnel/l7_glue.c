/*
 * L7 glue for tunnel.c (see dp/tunnel/l7.h): the HTTP/1.1 proxy's host
 * adapter. It shares the tunnel layer's types and functions through
 * tunnel_int.h, and tunnel.c calls its wp_tun_l7_* hooks from a handful of
 * places:
 *
 *   wp_tun_end_write / wp_tun_end_shut   an END_L7 end takes bytes / EOF: the proxy's
 *                          wp_h1p_down_in / _up_in / _down_eof / _up_eof
 *   wp_tun_respond            an upstream L7 tunnel connected
 *   wp_tun_kill               an END_L7 end dies: session closed / upstream failed
 *   h2_writable/up_writable a real end can take more: pump
 *   srv_request            a CONNECT to an HTTP service port: wp_tun_l7_start()
 *   wp_tun_l7_input (first bytes) an h2c client on an HTTP/1.1 port: wp_tun_l7h2_on_http()
 *   wp_tunnel_poll / tick  the pump list; idle upstream expiry
 *
 * The proxy never touches a transport: every byte it queues is moved by
 * l7_pump(), which runs from the poll loop (never from inside a TCP or
 * HTTP/2 callback), so closing a transport at the proxy's request is
 * deferred to it too.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "tunnel_int.h"

void wp_tun_l7_mark(struct tunnel *t)
{
	struct wp_tunnel_l7_worker *lw;

	if (t == NULL || t->l7.listed || !t->live || t->dead ||
	    (t->e[0].kind != END_L7 && t->e[1].kind != END_L7))
		return;
	lw = &t->tw->l7;
	t->l7.listed = true;
	t->l7.next = lw->pump;
	lw->pump = t;
}

/* wp_tun_free(): off the pump list. */
void wp_tun_l7_unlist(struct tunnel *t)
{
	struct tunnel **pp;

	if (!t->l7.listed)
		return;
	for (pp = &t->tw->l7.pump; *pp != NULL; pp = &(*pp)->l7.next)
		if (*pp == t) {
			*pp = t->l7.next;
			break;
		}
	t->l7.listed = false;
}

/* The downstream tunnel of the session an upstream currently serves. */
static struct tunnel *l7_down_of(const struct wp_h1p_up *up)
{
	return up != NULL && up->sess != NULL ? wp_h1p_sess_app(up->sess) : NULL;
}

/* The current route table of a downstream tunnel's destination (the
 * snapshot may have changed since the CONNECT). */
void wp_tun_l7_refresh_routes(struct tunnel *t)
{
	struct wp_tunnel_worker *tw = t->tw;
	const struct wp_snapshot *snap =
	        tw->worker->slot != NULL ? wp_snapshot_get(tw->worker->slot) : NULL;
	const struct wp_snap_dest *d;
	const struct wp_route_table *rt = NULL;

	if (snap != NULL && t->l7.routes_valid && t->l7.routes_version == snap->version)
		return; /* the table set last time is this snapshot's */
	d = snap != NULL ? wp_snapshot_lookup(snap, &t->l7.dest) : NULL;
	t->l7.routes_valid = snap != NULL;
	t->l7.routes_version = snap != NULL ? snap->version : 0;
	if (d != NULL && d->kind == WP_DEST_SERVICE)
		rt = d->svc->ports[d->port_idx].routes;
	if (rt != NULL)
		(void)wp_route_core_reserve(&tw->l7.rc, rt);
	wp_pipe_conn_set_authz(&t->pc,
	                       d != NULL && d->kind == WP_DEST_SERVICE ? d->svc->authz : NULL);
	if (snap != NULL)
		wp_tun_pipe_conn_tel(&t->pc, snap, d);
	if (t->l7.h2sess != NULL)
		wp_h2p_sess_set_routes(t->l7.h2sess, rt);
	else
		wp_h1p_sess_set_routes(t->l7.sess, rt);
}

/* The proxy took everything and waits for the rest of a message: the
 * transport of end <e> ACKs what came now, in case its peer holds the rest
 * back until it sees the ACK (Nagle; see wp_tcp_set_delack). */
static void l7_quickack(const struct end *e)
{
	if (e->kind == END_TCP && e->c != NULL)
		wp_tcp_quickack(e->c);
	else if (e->kind == END_H2 && e->sess != NULL && e->sess->tcp != NULL)
		wp_tcp_quickack(e->sess->tcp);
}

/* wp_tun_end_write() on an END_L7 end. */
size_t wp_tun_l7_input(struct tunnel *t, const uint8_t *p, size_t len)
{
	const uint8_t *q;
	size_t n;

	if (t->l7.h2sess != NULL || t->l7.h2up != NULL)
		return wp_tun_l7h2_input(t, p, len);
	if (t->l7.sess != NULL) {
		struct wp_h1p_up *up;

		/* the tunnel's first bytes: h2c with prior knowledge? */
		if (WP_UNLIKELY(t->l7.h2probe) && wp_tun_l7h2_on_http(t, p, len))
			return wp_tun_l7h2_input(t, p, len);
		wp_tun_l7_refresh_routes(t);
		n = wp_h1p_down_in(t->l7.sess, p, len);
		if (n == len && t->l7.sess != NULL && wp_h1p_down_partial(t->l7.sess))
			l7_quickack(&t->e[0]);
		up = wp_h1p_sess_up(t->l7.sess);
		if (up != NULL && wp_h1p_up_peek(up, &q) > 0)
			wp_tun_l7_mark(up->io);
		if (wp_h1p_down_peek(t->l7.sess, &q) > 0 || wp_h1p_down_finished(t->l7.sess))
			wp_tun_l7_mark(t);
		return n;
	}
	if (t->l7.up != NULL) {
		struct tunnel *d = l7_down_of(t->l7.up);

		n = wp_h1p_up_in(t->l7.up, p, len);
		/* the exchange may have ended the upstream (t->l7.up cleared) */
		if (n == len && t->l7.up != NULL && wp_h1p_up_partial(t->l7.up))
			l7_quickack(&t->e[1]);
		wp_tun_l7_mark(d);
		return n;
	}
	return len; /* the proxy let go: nowhere to go */
}

/* wp_tun_end_shut() on an END_L7 end: the real end's EOF, after its queued bytes. */
void wp_tun_l7_eof(struct tunnel *t)
{
	if (wp_tun_l7h2_eof(t))
		return;
	if (t->l7.sess != NULL) {
		wp_h1p_down_eof(t->l7.sess);
		wp_tun_l7_mark(t);
	} else if (t->l7.up != NULL) {
		wp_tun_l7_mark(l7_down_of(t->l7.up));
		wp_h1p_up_eof(t->l7.up);
	}
}

/* wp_tun_respond() on an upstream L7 tunnel: its transport is connected. */
void wp_tun_l7_connected(struct tunnel *t)
{
	if (wp_tun_l7h2_connected(t))
		return;
	t->responded = true;
	ctr(t->tw, WP_CTR_TUNNEL_OPENED);
	if (t->l7.up != NULL)
		wp_h1p_up_connected(t->l7.up);
	wp_tun_l7_mark(t);
}

/* wp_tun_kill() reached an END_L7 end. */
void wp_tun_l7_detach(struct tunnel *t)
{
	if (wp_tun_l7h2_detach(t))
		return;
	if (t->l7.sess != NULL) {
		struct wp_h1p_sess *s = t->l7.sess;

		t->l7.sess = NULL;
		wp_h1p_sess_close(s); /* its upstream: l7_up_close() */
	} else if (t->l7.up != NULL) {
		struct wp_h1p_up *up = t->l7.up;

		struct tunnel *d = l7_down_of(up);

		t->l7.up = NULL;
		if (d != NULL && d->l7.sess != NULL)
			wp_tun_l7_refresh_routes(d); /* a connect failure may be retried */
		wp_tun_l7_mark(d); /* it has a 503/502 to send, closes, or retries */
		wp_h1p_up_failed(up);
	}
}

/* ---- struct wp_h1p_ops -------------------------------------------------------------------- */

/*
 * An upstream L7 tunnel to <ep> (HTTP/1.1 or h2c proxy alike): end 0 is the
 * proxy's connection object, linked by the caller between wp_tun_l7_up_alloc()
 * and wp_tun_l7_up_connect(); end 1 a plaintext TCP connection or an originated
 * HBONE stream (by the endpoint's namespace), made through worker port
 * <port> exactly as for L4 tunnels. A failed connect kills the tunnel
 * (unlinked first, so the proxy hears nothing) and returns -errno.
 */
struct tunnel *wp_tun_l7_up_alloc(struct wp_tunnel_worker *tw, const struct wp_snap_endpoint *ep,
                                  int *rc)
{
	struct tunnel *t;

	if (ep->addr.family != WP_AF_INET) {
		ctr(tw, WP_CTR_TUNNEL_FAMILY_UNSUPPORTED);
		*rc = -EAFNOSUPPORT;
		return NULL;
	}
	t = wp_tun_alloc(tw);
	if (t == NULL) {
		ctr(tw, WP_CTR_TUNNEL_LIMIT);
		*rc = -ENOBUFS;
		return NULL;
	}
	t->target.addr = ep->addr;
	t->target.port = ep->port;
	t->e[0].kind = END_L7;
	return t;
}

int wp_tun_l7_up_connect(struct tunnel *t, const struct wp_snap_endpoint *ep,
                         struct wp_tun_port *port)
{
	struct wp_tunnel_worker *tw = t->tw;
	char peer[WP_TLS_ID_MAX];
	int rc;

	wp_tun_peer_identity(tw, ep->ns, ep->service_account, peer, sizeof(peer));
	if (ep->ambient) {
		ctr(tw, WP_CTR_TUNNEL_HBONE);
		rc = wp_tun_connect_hbone(t, port, peer);
	} else {
		ctr(tw, WP_CTR_TUNNEL_PLAINTEXT);
		rc = wp_tun_connect_plain(t, port);
	}
	if (rc != 0) {
		ctr(tw, WP_CTR_TUNNEL_CONNECT_FAILED);
		t->l7.up = NULL;
		t->l7.h2up = NULL;
		t->e[0].gone = true;
		t->e[1].gone = true;
		wp_tun_kill(t);
	}
	return rc;
}

/* The proxy let go of upstream tunnel <t>: abort its transport from the pump. */
void wp_tun_l7_up_let_go(struct tunnel *t)
{
	t->e[0].gone = true;
	t->l7.close = true;
	wp_tun_l7_mark(t);
}

static int l7_up_open(void *host, struct wp_h1p_up *up, const struct wp_snap_endpoint *ep)
{
	struct wp_tunnel_worker *tw = host;
	struct tunnel *d = up->origin != NULL ? wp_h1p_sess_app(up->origin) : NULL, *t;
	int rc;

	if (d == NULL || d->e[0].sess == NULL)
		return -EINVAL;
	t = wp_tun_l7_up_alloc(tw, ep, &rc);
	if (t == NULL)
		return rc;
	t->l7.up = up;
	up->io = t;
	t->keepalive = up->keepalive;
	rc = wp_tun_l7_up_connect(t, ep, d->e[0].sess->port);
	if (rc != 0)
		up->io = NULL;
	else if (t->e[1].kind == END_TCP && t->e[1].c != NULL)
		wp_tcp_set_delack(t->e[1].c, true); /* the response carries no ACK: the
		                                     * next request does (l7_quickack) */
	return rc;
}

static void l7_up_close(void *host, struct wp_h1p_up *up)
{
	struct tunnel *t = up->io;

	(void)host;
	if (t == NULL || t->l7.up != up)
		return;
	t->l7.up = NULL;
	wp_tun_l7_up_let_go(t);
}

/* The proxy let go of an upstream with no exchange in flight (idle in the
 * pool at drain, expiry or eviction, or its last exchange complete): like
 * l7_up_close(), but a plaintext TCP upstream gets a FIN, not a reset (an
 * HBONE one is still cancelled). */
static void l7_up_finish(void *host, struct wp_h1p_up *up)
{
	struct tunnel *t = up->io;

	l7_up_close(host, up);
	if (t != NULL && t->l7.close)
		t->l7.fin = true;
}

/* A mirror connection has bytes of its own to send. */
static void l7_up_ready(void *host, struct wp_h1p_up *up)
{
	(void)host;
	wp_tun_l7_mark(up->io);
}

/* A timer answered or ended a session. */
static void l7_wake(void *host, struct wp_h1p_sess *s)
{
	(void)host;
	wp_tun_l7_mark(wp_h1p_sess_app(s));
}

/* A request that waited for a connection starts: its table first. */
static void l7_refresh(void *host, struct wp_h1p_sess *s)
{
	(void)host;
	wp_tun_l7_refresh_routes(wp_h1p_sess_app(s));
}

static const struct wp_h1p_ops l7_ops = {
        .up_open = l7_up_open,
        .up_close = l7_up_close,
        .up_ready = l7_up_ready,
        .wake = l7_wake,
        .up_finish = l7_up_finish,
        .refresh = l7_refresh,
};

/* ---- downstream tunnels ------------------------------------------------------------------- */

/* The client of a downstream tunnel, for hashing on the source IP
 * (wp_tun_req_source() in tunnel.c). */
const struct wp_addr *wp_tun_l7_client(struct tunnel *t, const struct sess *s,
                                       const struct wp_hbone_req *req)
{
	t->l7.has_src = wp_tun_req_source(s, req, &t->l7.src);
	return t->l7.has_src ? &t->l7.src : NULL;
}

/* srv_request(): is the protocol of this service port sniffed (its first
 * client bytes may make the tunnel L7)? */
bool wp_tun_l7_sniffs(const struct wp_tunnel_worker *tw, const struct wp_snap_svc_port *p)
{
	return tw->l7.core != NULL && p->proto == WP_PROTO_UNKNOWN;
}

/* srv_request(): is this service port proxied at L7? */
bool wp_tun_l7_wants(const struct wp_tunnel_worker *tw, const struct wp_snap_svc_port *p)
{
	if (wp_tun_l7h2_proto(p))
		return wp_tun_l7h2_wants(tw, p);
	return p->proto == WP_PROTO_HTTP;
}

/* A CONNECT to an HTTP service port that no proxy session can take (the
 * worker's are all in use, or it has no proxy): refused, never forwarded
 * at L4, where the port's HTTP routes and policies would not apply. */
void wp_tun_l7_refuse(struct wp_tunnel_worker *tw, struct wp_hbstream *hs)
{
	ctr(tw, WP_CTR_L7_TUNNEL_NO_SESSION);
	(void)wp_hbstream_respond(hs, 503);
}

/* srv_request(): a CONNECT to an HTTP service port. Answers it (200 and
 * proxied, or 503) and returns true. */
bool wp_tun_l7_start(struct sess *s, struct wp_hbstream *hs, const struct wp_hbone_req *req,
                     const struct wp_snapshot *snap, const struct wp_snap_dest *d)
{
	struct wp_tunnel_worker *tw = s->tw;
	const struct wp_snap_svc_port *p = &d->svc->ports[d->port_idx];
	struct tunnel *t;
	int n;

	if (wp_tun_l7h2_proto(p))
		return wp_tun_l7h2_start(s, hs, req, snap, d);
	if (tw->l7.core == NULL) {
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
	t->l7.sess = wp_h1p_sess_open(tw->l7.core, p->routes, wp_tun_l7_client(t, s, req),
	                              t->l7.auth, (size_t)n);
	if (t->l7.sess == NULL) { /* l7_h1p_no_session counted */
		wp_tun_free(t);
		wp_tun_l7_refuse(tw, hs);
		return true;
	}
	wp_h1p_sess_set_app(t->l7.sess, t);
	wp_h1p_sess_set_conn(t->l7.sess, &t->pc);
	ctr(tw, WP_CTR_L7_TUNNEL_HTTP);
	t->l7.h2probe = tw->l7.h2core != NULL;
	t->target = req->authority;
	t->e[0].kind = END_H2;
	t->e[0].s = hs;
	t->e[0].sess = s;
	t->e[1].kind = END_L7;
	wp_hbstream_set_app(hs, t);
	wp_tun_respond(t, 200);
	return true;
}

/* ---- protocol sniffing (ports whose protocol the snapshot does not know) ---------------- */

/* srv_request(): an L4 tunnel to a service port was set up; if the port's
 * protocol is unknown, its first client bytes may turn it into L7. */
void wp_tun_l7_sniff_arm(struct tunnel *t, const struct wp_hbone_req *req,
                         const struct wp_snap_dest *d)
{
	const struct wp_snap_svc_port *p = &d->svc->ports[d->port_idx];
	int n;

	if (!wp_tun_l7_sniffs(t->tw, p))
		return;
	t->l7.sniff = true;
	t->l7.dest = req->authority;
	(void)wp_tun_l7_client(t, t->e[0].sess, req);
	n = snprintf(t->l7.auth, sizeof(t->l7.auth), "%s:%u", d->svc->hostname, p->port);
	if (n < 0 || (size_t)n >= sizeof(t->l7.auth))
		t->l7.auth[0] = '\0';
	t->pc.authority = t->l7.auth;
	t->pc.authority_len = (uint32_t)strlen(t->l7.auth);
}

/* An HTTP/1.x request line starts with a method and a space. */
static bool l7_looks_http(const uint8_t *d, size_t len)
{
	static const char *const m[] = {"GET ",   "POST ",    "PUT ",   "HEAD ",   "DELETE ",
	                                "PATCH ", "OPTIONS ", "TRACE ", "CONNECT "};

	for (size_t i = 0; i < WP_ARRAY_SIZE(m); i++) {
		size_t n = strlen(m[i]);

		if (len >= n && memcmp(d, m[i], n) == 0)
			return true;
	}
	return false;
}

/*
 * from_h2(): the first bytes from the client of a sniffing tunnel. Not an
 * HTTP/1.x request line: the tunnel stays L4 (one with no proxy session
 * free is marked no_session and reset by the caller).
 * Otherwise the L4 upstream (connected or not, nothing written to it yet)
 * is dropped and end 1 becomes the proxy; the caller then hands it the
 * bytes. The decision is taken on the first DATA frame alone, so a client
 * whose first frame is shorter than "GET " stays L4, and a server-first
 * protocol whose client later sends a request line is not expected.
 */
void wp_tun_l7_sniff(struct tunnel *t, const uint8_t *data, size_t len)
{
	struct wp_tunnel_worker *tw = t->tw;
	struct end *u = &t->e[1];
	struct wp_h1p_sess *s;

	t->l7.sniff = false;
	if (wp_tun_l7h2_sniff(t, data, len))
		return;
	if (!l7_looks_http(data, len) || u->gone) {
		ctr(tw, WP_CTR_L7_SNIFF_OPAQUE);
		wp_tun_l7h2_sniff_done(t, false);
		return;
	}
	s = wp_h1p_sess_open(tw->l7.core, NULL, t->l7.has_src ? &t->l7.src : NULL, t->l7.auth,
	                     strlen(t->l7.auth));
	if (s == NULL) {
		ctr(tw, WP_CTR_L7_TUNNEL_NO_SESSION);
		t->l7.no_session = true; /* from_h2() resets it */
		wp_tun_l7h2_sniff_done(t, false);
		return;
	}
	if (u->kind == END_TCP && u->c != NULL) {
		struct wp_tcp_conn *c = u->c;

		u->c = NULL;
		wp_tcp_abort(c); /* no callbacks after this */
	} else if (u->kind == END_H2 && u->s != NULL) {
		wp_hbstream_set_app(u->s, NULL); /* its on_close finds no tunnel */
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
	t->l7.sess = s;
	wp_h1p_sess_set_app(s, t);
	wp_h1p_sess_set_conn(s, &t->pc);
	ctr(tw, WP_CTR_L7_SNIFF_HTTP);
	ctr(tw, WP_CTR_L7_TUNNEL_HTTP);
	if (!t->responded)
		wp_tun_respond(t, 200);
}

/* The session is over: close it and end the inbound stream. */
static void l7_down_done(struct tunnel *t)
{
	struct wp_h1p_sess *s = t->l7.sess;

	t->l7.sess = NULL;
	wp_h1p_sess_close(s);
	t->e[1].gone = true;
	t->e[1].eof_in = true;
	wp_tun_end_flush(t, 1); /* drops what the client still had queued */
	if (!t->e[0].gone)
		wp_tun_end_shut(t, 0);
	wp_tun_check_done(t);
}

static void l7_pump(struct tunnel *t)
{
	const uint8_t *p;
	size_t n, w;
	bool moved = false;

	if (wp_tun_l7h2_pump(t))
		return;
	if (t->e[1].kind == END_L7) {
		struct wp_h1p_sess *s = t->l7.sess;
		struct wp_h1p_up *up;

		if (s == NULL)
			return;
		if (t->e[0].gone) { /* the client went away */
			l7_down_done(t);
			return;
		}
		while ((n = wp_h1p_down_peek(s, &p)) > 0) {
			w = wp_tun_end_write(t, 0, p, n);
			if (w == 0)
				break;
			wp_h1p_down_consume(s, w);
			moved = true;
		}
		/* client bytes the proxy could not take yet (pipelining, full
		 * upstream buffer), and the client's EOF behind them */
		wp_tun_end_flush(t, 1);
		if (t->l7.sess == NULL)
			return;
		/* room for the response again: the upstream's held bytes */
		up = wp_h1p_sess_up(s);
		if (up != NULL && (moved || wp_h1p_up_peek(up, &p) > 0))
			wp_tun_l7_mark(up->io);
		if (wp_h1p_down_finished(s))
			l7_down_done(t);
		else if (wp_h1p_down_shut(s) && !t->e[0].shut)
			wp_tun_end_shut(t, 0);
		return;
	}
	if (t->e[0].kind != END_L7)
		return;
	if (t->l7.close) {
		/* the proxy closed this connection: abort the transport, or
		 * close it gracefully (wp_tcp_close(): FIN) when idle */
		t->l7.close = false;
		if (t->l7.fin && t->e[1].kind == END_TCP && t->e[1].c != NULL) {
			struct wp_tcp_conn *c = t->e[1].c;

			t->e[1].c = NULL;
			t->e[1].gone = true;
			wp_tcp_close(c);
		}
		t->l7.fin = false;
		if (t->e[1].kind == END_H2 && t->e[1].s == NULL)
			wp_tun_unwait(t);
		wp_tun_kill(t);
		return;
	}
	if (t->l7.up == NULL || !t->responded)
		return;
	while ((n = wp_h1p_up_peek(t->l7.up, &p)) > 0) {
		w = wp_tun_end_write(t, 1, p, n);
		if (w == 0)
			break;
		wp_h1p_up_consume(t->l7.up, w);
		moved = true;
	}
	if (moved) /* room for the request again: the client's queued bytes */
		wp_tun_l7_mark(l7_down_of(t->l7.up));
	if (t->l7.up != NULL && t->l7.up->shut_wr && wp_h1p_up_peek(t->l7.up, &p) == 0)
		wp_tun_end_shut(t, 1);
	wp_tun_end_flush(t, 0); /* upstream bytes the proxy could not take yet; TCP resume */
}

void wp_tun_l7_pump_all(struct wp_tunnel_worker *tw)
{
	for (int round = 0; round < 4 && tw->l7.pump != NULL; round++) {
		struct tunnel *list = tw->l7.pump;

		tw->l7.pump = NULL;
		while (list != NULL) {
			struct tunnel *t = list;

			list = t->l7.next;
			t->l7.listed = false;
			if (t->live && !t->dead)
				l7_pump(t);
		}
	}
}

/* ---- worker ------------------------------------------------------------------------------- */

void wp_tun_l7_worker_init(struct wp_tunnel_worker *tw)
{
	struct wp_h1p_cfg cfg = wp_h1p_default_cfg;
	uint32_t max_tun = tw->sh->cfg->hbone.max_tunnels;

	/* Sessions and upstreams are tunnels too; leave half the pool to L4.
	 * A session holds two parser arenas (~73 KiB each at the default
	 * limits) and two 16 KiB buffers: 256 sessions are ~45 MiB per
	 * worker. Beyond them, CONNECTs to HTTP ports are refused (503). */
	cfg.buf_size = 16384;
	cfg.max_sessions = WP_MAX(1u, WP_MIN(tw->sh->cfg->l7.max_sessions, max_tun / 4));
	cfg.max_upstreams = WP_MAX(1u, WP_MIN(tw->sh->cfg->l7.max_upstreams, max_tun / 4));
	cfg.n_workers = tw->worker->n_workers;
	cfg.outlier = tw->sh->outlier;
	wp_route_core_init(&tw->l7.rc, 0x9e3779b97f4a7c15ull ^ tw->worker->worker_id, tw->ctr);
	tw->l7.core = wp_h1p_core_create(&cfg, &l7_ops, tw, &tw->l7.rc, tw->worker->worker_id + 1,
	                                 tw->ctr);
	if (tw->l7.core == NULL)
		fprintf(stderr,
		        "waypointd: worker %u: no memory for the HTTP proxy: CONNECTs to "
		        "HTTP ports are refused (503)\n",
		        tw->worker->worker_id);
	wp_tun_l7h2_worker_init(tw);
}

/* start_drain(): idle upstreams closed, keep-alive client sessions end
 * (between requests: now; otherwise after their response). */
void wp_tun_l7_drain(struct wp_tunnel_worker *tw)
{
	wp_tun_l7h2_drain(tw);
	if (tw->l7.core == NULL)
		return;
	wp_h1p_core_drain(tw->l7.core); /* l7_up_close() on each idle upstream */
	for (unsigned i = 0; i < tw->sh->cfg->hbone.max_tunnels; i++) {
		struct tunnel *t = &tw->tun_pool[i];

		if (t->live && !t->dead && t->l7.sess != NULL) {
			wp_h1p_sess_drain(t->l7.sess);
			wp_tun_l7_mark(t);
		}
	}
}

/* Before the worker's sessions and tunnels are torn down. */
void wp_tun_l7_worker_stop(struct wp_tunnel_worker *tw)
{
	wp_tun_l7h2_worker_stop(tw);
	if (tw->l7.core == NULL)
		return;
	for (unsigned i = 0; i < tw->sh->cfg->hbone.max_tunnels; i++) {
		struct tunnel *t = &tw->tun_pool[i];

		if (t->live && t->l7.sess != NULL) {
			struct wp_h1p_sess *s = t->l7.sess;

			t->l7.sess = NULL;
			t->e[1].gone = true;
			wp_h1p_sess_close(s);
		}
	}
	wp_h1p_core_destroy(tw->l7.core); /* l7_up_close() on every upstream */
	tw->l7.core = NULL;
	tw->l7.pump = NULL;
	for (unsigned i = 0; i < tw->sh->cfg->hbone.max_tunnels; i++)
		tw->tun_pool[i].l7.listed = false;
}

void wp_tun_l7_worker_fini(struct wp_tunnel_worker *tw)
{
	wp_tun_l7h2_worker_fini(tw);
	wp_h1p_core_destroy(tw->l7.core);
	tw->l7.core = NULL;
	wp_route_core_fini(&tw->l7.rc);
}
