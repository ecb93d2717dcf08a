/*
 * HBONE sessions (see tunnel.c): one per HBONE connection, a user-space TCP
 * connection, a TLS connection over memory BIOs and an HTTP/2 session;
 * their pool (originated ones by destination and identity), the byte pump
 * TCP -> TLS -> HTTP/2 and back, and the TCP callbacks. The CONNECT
 * streams they carry are tunnel.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tunnel_int.h"
#include "wp/addr.h"

/* ---- sessions: pool -------------------------------------------------------- */

struct sess *wp_tun_sess_alloc(struct wp_tunnel_worker *tw, struct wp_tun_port *port, bool client)
{
	struct sess *s = tw->sess_free;

	if (s == NULL)
		return NULL;
	tw->sess_free = s->next;
	memset(s, 0, sizeof(*s));
	s->tw = tw;
	s->port = port;
	s->client = client;
	s->last_active_ms = tw->now_ms;
	s->deadline_ms = wp_deadline_ms(tw->now_ms, tw->sh->cfg->hbone.connect_timeout_ms);
	s->tls = wp_tls_conn_new(wp_tls_store_get(&tw->sh->tls),
	                         client ? WP_TLS_CLIENT : WP_TLS_SERVER, tw->ctr);
	if (s->tls == NULL) {
		s->next = tw->sess_free;
		tw->sess_free = s;
		ctr(tw, WP_CTR_TUNNEL_SESSION_NOMEM);
		return NULL;
	}
	s->next = tw->live;
	if (tw->live != NULL)
		tw->live->prev = s;
	tw->live = s;
	tw->n_sess++;
	if (client)
		tw->g.sessions_out++;
	else
		tw->g.sessions_in++;
	return s;
}

static void pool_unlink(struct sess *s)
{
	struct sess **pp = &s->tw->pool[s->id_hash % POOL_BUCKETS];

	while (*pp != NULL && *pp != s)
		pp = &(*pp)->pnext;
	if (*pp == s)
		*pp = s->pnext;
	s->pnext = NULL;
}

/* The session's handshake is over (or it goes): its place in the handshake
 * gate is free for the next inbound connection. */
static void hs_leave(struct sess *s)
{
	if (!s->hs_gated)
		return;
	s->hs_gated = false;
	wp_hsgate_leave(&s->tw->g.hs);
}

/* Frees a dead session (poll only). */
void wp_tun_sess_free(struct sess *s)
{
	struct wp_tunnel_worker *tw = s->tw;

	hs_leave(s);
	if (s->client)
		pool_unlink(s);
	/* Streams end first: their tunnels learn the connection went away. */
	if (s->h2 != NULL) {
		struct wp_hbconn *h2 = s->h2;

		wp_hbconn_free(h2);
		s->h2 = NULL;
	}
	while (s->waiting != NULL) {
		struct tunnel *t = s->waiting;

		s->waiting = t->wnext;
		t->wnext = NULL;
		t->e[1].gone = true;
		t->e[1].sess = NULL;
		ctr(tw, WP_CTR_TUNNEL_ORIGINATE_FAILED);
		wp_tun_kill(t);
	}
	if (s->tcp != NULL) {
		struct wp_tcp_conn *c = s->tcp;

		s->tcp = NULL;
		wp_tcp_abort(c);
	}
	wp_twheel_disarm(&s->timer);
	wp_tls_conn_free(s->tls);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		tw->live = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	if (s->client)
		tw->g.sessions_out--;
	else
		tw->g.sessions_in--;
	tw->n_sess--;
	s->state = SESS_FREE;
	s->next = tw->sess_free;
	tw->sess_free = s;
}

/* Ends a session: the poll frees it. Its TCP connection, if any, is aborted. */
void wp_tun_sess_kill(struct sess *s)
{
	if (s->state == SESS_DEAD || s->state == SESS_FREE)
		return;
	s->state = SESS_DEAD;
	s->need_resume = false;
	if (!s->on_dead) {
		s->on_dead = true;
		s->xnext = s->tw->dead_sess;
		s->tw->dead_sess = s;
	}
}

/* ---- sessions: bytes -------------------------------------------------------- */

/*
 * Ciphertext from TLS to TCP, as much as TCP takes, straight from TLS's
 * output buffer into TCP's send ring (one copy). What TCP does not take
 * stays with TLS: a full send buffer arms writable() (a send that takes
 * less than offered does), an empty send pool is retried by the timer
 * (wp_tun_sess_timer). Returns true on progress.
 */
static bool sess_flush_out(struct sess *s)
{
	bool progress = false;

	if (s->tcp == NULL)
		return false;
	for (;;) {
		const uint8_t *p;
		size_t n = wp_tls_conn_peek(s->tls, &p);
		ssize_t sent;

		if (n == 0)
			return progress;
		sent = wp_tcp_send(s->tcp, p, n);
		if (sent <= 0)
			return progress;
		wp_tls_conn_advance(s->tls, (size_t)sent);
		progress = true;
	}
}

/* The shortest record sess_seal_direct cuts to fit TCP's free space: a
 * record costs OpenSSL ~800 cycles besides its bytes (about 0.2 a byte at
 * 4 KiB, 0.05 at 16 KiB). A quarter of the send ring when that is less,
 * so that an emptied ring always has room for one. */
#define SEAL_CUT_MIN 4096

/*
 * Plaintext from HTTP/2 sealed by TLS straight into TCP's send ring: the
 * ciphertext is written once, where TCP sends it from, and TLS buffers
 * none. What TLS already holds goes to TCP first (the order of the
 * bytes). Returns the plaintext taken; -EAGAIN when TCP has no room for a
 * record (its writable() is armed: the session is pumped again when
 * acknowledgements free some); 0 to go the buffered way
 * (wp_tls_conn_write, then sess_flush_out: TLS 1.2, a KeyUpdate due); or
 * an error of the write.
 */
static ssize_t sess_seal_direct(struct sess *s, const uint8_t *p, size_t n)
{
	size_t want = WP_MIN(n, (size_t)WP_TLS_REC_MAX_PLAIN) + WP_TLS_REC_OVERHEAD;
	size_t min_cut = WP_MIN((size_t)SEAL_CUT_MIN, (size_t)s->tw->sh->cfg->tcp.snd_buf / 4);
	struct iovec v[2];
	size_t used = 0;
	ssize_t room, w;

	if (s->tcp == NULL)
		return 0;
	if (wp_tls_conn_pending(s->tls) != 0) {
		(void)sess_flush_out(s);
		if (wp_tls_conn_pending(s->tls) != 0)
			return -EAGAIN;
	}
	room = wp_tcp_send_reserve(s->tcp, want, v);
	if (room < 0)
		return 0; /* TCP takes nothing now (pool empty, closing): TLS holds it */
	w = wp_tls_conn_write_into(s->tls, p, n, v, min_cut, &used);
	wp_tcp_send_commit(s->tcp, used);
	if (w == 0 && (size_t)room < want && (size_t)room < min_cut + WP_TLS_REC_OVERHEAD)
		return -EAGAIN;
	return w;
}

/* Starts closing: what TLS still has (an alert, a GOAWAY) is sent, then FIN. */
void wp_tun_sess_close(struct sess *s)
{
	if (s->state >= SESS_CLOSING)
		return;
	s->state = SESS_CLOSING;
	wp_tun_mark_dirty(s);
}

/* Puts the session at the end of the handshake FIFO (at most once). */
void wp_tun_hs_defer(struct sess *s)
{
	struct wp_tunnel_worker *tw = s->tw;

	if (s->hs_queued)
		return;
	s->hs_queued = true;
	s->hnext = NULL;
	*tw->hs_wait_tail = s;
	tw->hs_wait_tail = &s->hnext;
}

/*
 * May the session's handshake take a step now? Not when handshakes have
 * used their share of the worker's time (hsgate.h): the session keeps its
 * TLS input and waits in the FIFO, which the next poll runs first.
 */
static bool hs_turn(struct sess *s)
{
	if (wp_hsshare_may_step(&s->tw->hs_share))
		return true;
	if (!s->hs_queued)
		ctr(s->tw, WP_CTR_TUNNEL_HANDSHAKE_DEFERRED);
	wp_tun_hs_defer(s);
	return false;
}

/*
 * TCP -> TLS -> HTTP/2 -> TLS -> TCP until nothing moves. Never called from
 * an HTTP/2 callback.
 */
void wp_tun_sess_pump(struct sess *s)
{
	struct wp_tunnel_worker *tw = s->tw;
	uint8_t pt[IOBUF];
	bool progress;
	int guard = 0;

	if (s->state == SESS_DEAD || s->state == SESS_FREE || s->in_pump)
		return;
	s->in_pump = true;
	do {
		ssize_t n;

		progress = false;
		if (s->state == SESS_HANDSHAKE && hs_turn(s)) {
			uint64_t t0 = tw->worker->now_us(tw->worker->ctx);
			int r = wp_tls_conn_handshake(s->tls);

			wp_hsshare_charge(&tw->hs_share, tw->worker->now_us(tw->worker->ctx) - t0);
			if (r < 0) {
				ctr(tw, WP_CTR_TUNNEL_HANDSHAKE_FAILED);
				wp_tun_sess_close(s);
			} else if (r == 1) {
				s->h2 = wp_hbconn_new(!s->client, &tw->sh->h2, tw->mem,
				                      s->client ? &wp_tun_client_ops
				                                : &wp_tun_server_ops,
				                      s, tw->ctr, tw->now_ms);
				if (s->h2 == NULL) {
					ctr(tw, WP_CTR_TUNNEL_SESSION_NOMEM);
					wp_tun_sess_close(s);
				} else {
					s->state = SESS_READY;
					s->deadline_ms = 0;
					hs_leave(s);
					/* request/response over HTTP/2: answers carry
					 * the ACKs (a partial record asks at once) */
					if (s->tcp != NULL)
						wp_tcp_set_delack(s->tcp, true);
					if (s->client)
						wp_tun_client_ready(s);
				}
				progress = true;
			}
		}
		if (s->state == SESS_READY) {
			const uint8_t *v;

			/* the plaintext in place: HTTP/2 takes all of it */
			while ((n = wp_tls_conn_read_view(s->tls, &v, pt, sizeof(pt))) > 0) {
				progress = true;
				if (wp_hbconn_input(s->h2, v, (size_t)n, tw->now_ms) < 0) {
					ctr(tw, WP_CTR_TUNNEL_SESSION_ERROR);
					wp_tun_sess_close(s);
					break;
				}
				wp_tls_conn_read_done(s->tls, (size_t)n);
			}
			if (n < 0 && s->state == SESS_READY) {
				/* close_notify, an unclean end, or a record error */
				if (n == -EPROTO)
					ctr(tw, WP_CTR_TUNNEL_SESSION_ERROR);
				wp_tun_sess_close(s);
			}
		}
		if (s->h2 != NULL && (s->state == SESS_READY || s->state == SESS_CLOSING)) {
			const uint8_t *p;

			while ((n = wp_hbconn_peek(s->h2, &p)) > 0) {
				ssize_t w = sess_seal_direct(s, p, (size_t)n);

				if (w == -EAGAIN)
					break; /* TCP is full */
				if (w == 0)
					w = wp_tls_conn_write(s->tls, p, (size_t)n);

				if (w <= 0)
					break;
				wp_hbconn_advance(s->h2, (size_t)w);
				progress = true;
			}
			if (n < 0 && s->state == SESS_READY)
				wp_tun_sess_close(s);
			if (s->state == SESS_READY && wp_hbconn_done(s->h2))
				wp_tun_sess_close(s);
		}
		progress |= sess_flush_out(s);
	} while (progress && ++guard < 64 && s->state != SESS_DEAD);
	s->in_pump = false;
	if (s->state == SESS_CLOSING && wp_tls_conn_pending(s->tls) == 0) {
		/* Everything went to TCP: FIN after it, and forget the connection. */
		if (s->tcp != NULL) {
			struct wp_tcp_conn *c = s->tcp;

			s->tcp = NULL;
			wp_tcp_close(c);
		}
		wp_tun_sess_kill(s);
	}
	if (progress && guard >= 64)
		wp_tun_mark_dirty(s); /* more to do: next iteration */
	s->last_active_ms = tw->now_ms;
	s->trimmed = false;
	wp_tun_sess_timer(s);
}

/*
 * Arms the session's timer at the first of its deadlines; tunnel.c's
 * tick() runs it then. Every change that can bring one nearer goes through
 * the pump (bytes in or out, a PING ACK, a close) or through the timer
 * itself (a PING sent), and both end here. Deadlines that only move later
 * while the timer waits (the PING interval as bytes arrive) are found
 * when it fires and re-armed, so an idle session costs nothing until then.
 */
void wp_tun_sess_timer(struct sess *s)
{
	struct wp_tunnel_worker *tw = s->tw;
	uint64_t at = UINT64_MAX;

	if (s->state == SESS_DEAD || s->state == SESS_FREE) {
		wp_twheel_disarm(&s->timer);
		return;
	}
	if (s->deadline_ms != 0)
		at = s->deadline_ms;
	if (s->h2 != NULL)
		at = WP_MIN(at, wp_hbconn_next_ms(s->h2));
	if (!s->trimmed)
		at = WP_MIN(at, s->last_active_ms + IDLE_TRIM_MS);
	if (wp_tls_conn_pending(s->tls) > 0)
		at = WP_MIN(at, tw->now_ms + TICK_MS); /* TCP refused (send pool empty): retry */
	if (at == UINT64_MAX)
		wp_twheel_disarm(&s->timer);
	else
		wp_twheel_arm(&tw->wheel, &s->timer, at);
}

void wp_tun_mark_dirty(struct sess *s)
{
	if (s == NULL || s->dirty || s->state == SESS_DEAD || s->state == SESS_FREE)
		return;
	s->dirty = true;
	s->dnext = s->tw->dirty;
	s->tw->dirty = s;
}

/* ---- sessions: TCP callbacks ------------------------------------------------- */

static size_t sess_tcp_data(struct wp_tcp_conn *c, void *arg, const uint8_t *data, size_t len)
{
	struct sess *s = arg;
	size_t done = 0;

	if (s->state == SESS_DEAD || s->state == SESS_CLOSING)
		return len; /* nobody will read them */
	for (int round = 0; round < 8 && done < len; round++) {
		ssize_t n = wp_tls_conn_feed(s->tls, data + done, len - done);

		if (n < 0) {
			wp_tun_sess_close(s);
			return len;
		}
		if (n == 0)
			break;
		done += (size_t)n;
		if (s->in_pump)
			break; /* the running pump reads them */
		wp_tun_sess_pump(s);
		if (s->state == SESS_DEAD || s->state == SESS_CLOSING)
			return len;
	}
	if (done < len) {
		s->need_resume = true;
		wp_tun_mark_dirty(s);
	} else if (s->state == SESS_READY && !s->in_pump && wp_tls_conn_partial(s->tls)) {
		/* all read but the start of a record: its sender may wait for
		 * our ACK to send the rest (Nagle) */
		wp_tcp_quickack(c);
	}
	return done;
}

static void sess_tcp_eof(struct wp_tcp_conn *c, void *arg)
{
	struct sess *s = arg;

	(void)c;
	s->tcp_eof = true;
	wp_tls_conn_feed_eof(s->tls);
	if (s->state == SESS_CONNECTING || s->state == SESS_HANDSHAKE)
		wp_tun_sess_close(s);
	if (!s->in_pump)
		wp_tun_sess_pump(s);
	else
		wp_tun_mark_dirty(s);
}

static void sess_tcp_writable(struct wp_tcp_conn *c, void *arg)
{
	(void)c;
	wp_tun_mark_dirty(arg);
}

static void sess_tcp_closed(struct wp_tcp_conn *c, void *arg, enum wp_tcp_close_reason why)
{
	struct sess *s = arg;

	(void)c;
	s->tcp = NULL;
	if (s->state == SESS_CONNECTING)
		ctr(s->tw, why == WP_TCP_CLOSE_TIMEOUT ? WP_CTR_TUNNEL_CONNECT_TIMEOUT
		                                       : WP_CTR_TUNNEL_CONNECT_REFUSED);
	wp_tun_sess_kill(s);
}

static void sess_tcp_connected(struct wp_tcp_conn *c, void *arg)
{
	struct sess *s = arg;

	(void)c;
	s->state = SESS_HANDSHAKE;
	wp_tun_sess_pump(s); /* ClientHello */
}

const struct wp_tcp_callbacks wp_tun_sess_tcp_cbs = {
        .connected = sess_tcp_connected,
        .data = sess_tcp_data,
        .eof = sess_tcp_eof,
        .writable = sess_tcp_writable,
        .closed = sess_tcp_closed,
};

int wp_tun_on_accept(struct wp_tcp_conn *c, void *arg)
{
	struct wp_tun_port *port = arg;
	struct wp_tunnel_worker *tw = port->tw;
	struct sess *s;

	if (tw->draining)
		return -ECONNREFUSED;
	/* Before wp_tun_sess_alloc: a refused connection costs no TLS state. */
	if (!wp_hsgate_enter(&tw->g.hs, tw->ctr))
		return -ECONNREFUSED;
	s = wp_tun_sess_alloc(tw, port, false);
	if (s == NULL) {
		wp_hsgate_leave(&tw->g.hs);
		ctr(tw, WP_CTR_TUNNEL_SESSION_LIMIT);
		return -ENOBUFS;
	}
	ctr(tw, WP_CTR_TUNNEL_SESSION_ACCEPTED);
	s->hs_gated = true;
	s->tcp = c;
	s->state = SESS_HANDSHAKE;
	wp_tcp_conn_set_callbacks(c, &wp_tun_sess_tcp_cbs, s);
	wp_tun_sess_timer(s); /* the set-up deadline, even if the client never sends a byte */
	return 0;
}
