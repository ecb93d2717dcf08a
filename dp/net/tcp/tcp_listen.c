/*
 * Passive opens of the TCP stack: listeners, their SYN and accept queues,
 * and SYN cookies (RFC 4987). A SYN to a listener takes a control block in
 * SYN_RECEIVED while the SYN queue has room; beyond it, or when the pool is
 * empty, the SYN-ACK is stateless and a returning ACK that carries a valid
 * cookie rebuilds the connection. Established passive connections wait in
 * the accept queue until the app's accept callback takes them
 * (wp_tcp_try_accept), or defers them with -EAGAIN. Input (tcp_input.c)
 * hands segments for no connection here; the handshake itself runs in the
 * state machine there.
 */
#include <errno.h>
#include <string.h>

#include "tcp_int.h"

/* ---- SYN cookies (RFC 4987) ---- */

static const uint16_t cookie_mss[8] = {536, 1220, 1360, 1400, 1440, 1452, 1460, 8960};

static uint32_t cookie_hash(const struct wp_tcp_stack *st, const struct wp_addr *la, uint16_t lp,
                            const struct wp_addr *ra, uint16_t rp, uint32_t peer_isn, uint32_t t)
{
	uint8_t b[48];
	size_t n = tuple_bytes(b, la, lp, ra, rp);
	wr32(b + n, peer_isn);
	wr32(b + n + 4, t);
	uint64_t k[2] = {st->key[0] ^ 0x636f6f6b6965ull, st->key[1]};
	return (uint32_t)wp_tcp_siphash24(k, b, n + 8);
}

/* Layout: 5 bits time counter | 3 bits MSS index | 24 bits keyed hash. */
static uint32_t cookie_make(const struct wp_tcp_stack *st, const struct wp_addr *la, uint16_t lp,
                            const struct wp_addr *ra, uint16_t rp, uint32_t peer_isn,
                            unsigned mssidx)
{
	uint32_t t = (uint32_t)(st->now_us / COOKIE_PERIOD_US);
	return (t & 31) << 27 | (uint32_t)mssidx << 24 |
	       (cookie_hash(st, la, lp, ra, rp, peer_isn, t) & 0xffffff);
}

static int cookie_check(const struct wp_tcp_stack *st, const struct wp_addr *la, uint16_t lp,
                        const struct wp_addr *ra, uint16_t rp, uint32_t peer_isn, uint32_t cookie,
                        unsigned *mssidx)
{
	uint32_t now_t = (uint32_t)(st->now_us / COOKIE_PERIOD_US);
	for (uint32_t d = 0; d < 2 && d <= now_t; d++) {
		uint32_t t = now_t - d;
		if ((t & 31) != cookie >> 27)
			continue;
		if ((cookie_hash(st, la, lp, ra, rp, peer_isn, t) & 0xffffff) ==
		    (cookie & 0xffffff)) {
			*mssidx = (cookie >> 24) & 7;
			return 0;
		}
	}
	return -1;
}

/*
 * A segment with data or FIN that failed the cookie check but acknowledges
 * what could be a cookie of the current or the previous period (its time
 * bits match). Such a segment is likely a later one of a cookie handshake
 * whose first segment (the one with the peer's ISN + 1) is late: lost, or
 * behind it in another core's steering ring (a multi-queue TAP moves a flow
 * to the queue it last saw the flow's replies on). It is dropped without a
 * RST, so the peer retransmits it once the first segment has rebuilt the
 * connection; a RST would kill a good connection. 30 of 32 random
 * acknowledgment numbers (a stale connection's) still get their RST at once.
 */
static bool cookie_ahead(const struct wp_tcp_stack *st, const struct seg *s)
{
	uint32_t now_t = (uint32_t)(st->now_us / COOKIE_PERIOD_US), t = (s->ack - 1) >> 27;

	if (s->len == 0 && !(s->flags & TH_FIN))
		return false;
	return t == (now_t & 31) || (now_t > 0 && t == ((now_t - 1) & 31));
}

/*
 * Stateless SYN-ACK. Window scale and SACK-permitted ride in the low six bits
 * of our timestamp (echoed back in TSecr); without timestamps they are not
 * offered.
 */
static void send_cookie_synack(struct wp_tcp_stack *st, const struct wp_addr *la,
                               const struct wp_addr *ra, const struct seg *s)
{
	unsigned idx = 0;
	uint16_t peer_mss = s->has_mss ? s->mss : MSS_DEFAULT;
	for (unsigned i = 0; i < 8; i++)
		if (cookie_mss[i] <= peer_mss && cookie_mss[i] <= st->cfg.mss)
			idx = i;
	uint32_t cookie = cookie_make(st, la, s->dport, ra, s->sport, s->seq, idx);
	struct txinfo t = {.seq = cookie, .ack = s->seq + 1, .flags = TH_SYN | TH_ACK};
	t.wnd = syn_window(st);
	uint8_t *o = t.opt, n = 0;
	o[n++] = OPT_MSS;
	o[n++] = 4;
	wr16(o + n, st->cfg.mss);
	n += 2;
	bool ts = st->cfg.timestamps && s->has_ts;
	if (ts) {
		bool ws = st->cfg.window_scaling && s->has_ws;
		bool sack = st->cfg.sack && s->has_sackok;
		uint32_t tsval = (ts_now(st) & ~0x3fu) | 0x20 | (sack ? 0x10 : 0) |
		                 (ws ? st->rcv_wscale : 0xf);
		n += put_ts(o + n, tsval, s->tsval);
		if (sack) {
			o[n++] = OPT_NOP;
			o[n++] = OPT_NOP;
			o[n++] = OPT_SACKOK;
			o[n++] = 2;
		}
		if (ws) {
			o[n++] = OPT_NOP;
			o[n++] = OPT_WS;
			o[n++] = 3;
			o[n++] = st->rcv_wscale;
		}
	}
	t.optlen = n;
	wp_tcp_tx(st, la, ra, s->dport, s->sport, &t);
}

/* A bare ACK to a listener: maybe the third step of a cookie handshake. */
static bool cookie_accept(struct wp_tcp_stack *st, struct listener *l, const struct wp_addr *la,
                          const struct wp_addr *ra, struct seg *s)
{
	unsigned idx;
	if (cookie_check(st, la, s->dport, ra, s->sport, s->seq - 1, s->ack - 1, &idx) < 0)
		return false;
	if (l->acceptq >= st->cfg.accept_backlog) {
		ctr_inc(st, WP_CTR_TCP_ACCEPT_QUEUE_FULL);
		return true;
	}
	struct wp_tcp_conn *c = wp_tcp_conn_alloc(st);
	if (!c)
		return true;
	ctr_inc(st, WP_CTR_TCP_SYNCOOKIE_OK);
	c->laddr = *la;
	c->raddr = *ra;
	c->lport = s->dport;
	c->rport = s->sport;
	c->passive = true;
	c->listener = (uint8_t)(l - st->listeners + 1);
	c->irs = s->seq - 1;
	c->rcv_nxt = s->seq;
	c->last_ack_sent = s->seq;
	c->rcv_adv = c->rcv_nxt + syn_window(st);
	c->iss = s->ack - 1;
	c->snd_una = c->snd_nxt = c->snd_max = s->ack;
	c->sbuf_seq = s->ack;
	c->mss = (uint16_t)WP_MIN(cookie_mss[idx], st->cfg.mss);
	if (st->cfg.timestamps && s->has_ts && (s->tsecr & 0x20)) {
		c->ts_ok = true;
		c->ts_recent = s->tsval;
		c->ts_recent_us = st->now_us;
		c->ts_offset = 0;
		c->sack_ok = st->cfg.sack && (s->tsecr & 0x10);
		if ((s->tsecr & 0xf) != 0xf) {
			/* Our SYN-ACK offered scaling, so the SYN carried it; its shift is lost. */
			c->ws_ok = true;
			c->rcv_wscale = (uint8_t)(s->tsecr & 0xf);
			c->snd_wscale = 0;
		}
	}
	c->rcv_mss = (uint32_t)st->cfg.mss - (c->ts_ok ? 12 : 0);
	c->snd_wnd = (uint32_t)s->wnd << c->snd_wscale;
	c->max_snd_wnd = c->snd_wnd;
	c->snd_wl1 = s->seq;
	c->snd_wl2 = s->ack;
	wp_tcp_hash_insert(c);
	wp_tcp_on_established(c);
	wp_tcp_acceptq_push(l, c, false);
	ctr_inc(st, WP_CTR_TCP_PASSIVE_OPEN);
	wp_tcp_conn_input(c, s);
	if (!c->dead && c->in_acceptq)
		wp_tcp_try_accept(st, l);
	return true;
}

/* ---- Accept queue ---- */

void wp_tcp_acceptq_remove(struct listener *l, struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	uint32_t *p = &l->aq_head, prev = NIL;
	while (*p != NIL) {
		if (*p == c->idx) {
			*p = c->aq_next;
			if (l->aq_tail == c->idx)
				l->aq_tail = prev;
			break;
		}
		prev = *p;
		p = &st->conns[*p].aq_next;
	}
	c->aq_next = NIL;
	c->in_acceptq = false;
	l->acceptq--;
}

void wp_tcp_acceptq_push(struct listener *l, struct wp_tcp_conn *c, bool front)
{
	struct wp_tcp_stack *st = c->st;
	c->in_acceptq = true;
	l->acceptq++;
	if (front) {
		c->aq_next = l->aq_head;
		l->aq_head = c->idx;
		if (l->aq_tail == NIL)
			l->aq_tail = c->idx;
		return;
	}
	c->aq_next = NIL;
	if (l->aq_tail != NIL)
		st->conns[l->aq_tail].aq_next = c->idx;
	else
		l->aq_head = c->idx;
	l->aq_tail = c->idx;
}

void wp_tcp_try_accept(struct wp_tcp_stack *st, struct listener *l)
{
	while (l->aq_head != NIL) {
		struct wp_tcp_conn *c = &st->conns[l->aq_head];
		wp_tcp_acceptq_remove(l, c);
		c->app_owned = true;
		int r = l->cb ? l->cb(c, l->arg) : -ECONNREFUSED;
		if (c->dead)
			continue;
		if (r == -EAGAIN) {
			c->app_owned = false;
			wp_tcp_acceptq_push(l, c, true);
			return;
		}
		if (r < 0) {
			ctr_inc(st, WP_CTR_TCP_ACCEPT_REFUSED);
			c->app_owned = false;
			send_rst_conn(c);
			wp_tcp_conn_release(c);
			continue;
		}
		wp_tcp_deliver(c);
		if (c->dead)
			continue;
		wp_tcp_output(c);
		wp_tcp_maybe_finish(c);
	}
}

/* ---- Segments to a listener ---- */

void wp_tcp_listen_input(struct wp_tcp_stack *st, struct listener *l, const struct wp_addr *la,
                         const struct wp_addr *ra, struct seg *s)
{
	if (s->flags & TH_RST) {
		ctr_inc(st, WP_CTR_TCP_RST_NO_CONN);
		return;
	}
	if (s->flags & TH_ACK) {
		if (!(s->flags & TH_SYN) && l->cookie_us &&
		    st->now_us - l->cookie_us < 2 * COOKIE_PERIOD_US) {
			if (cookie_accept(st, l, la, ra, s))
				return;
			if (cookie_ahead(st, s)) {
				ctr_inc(st, WP_CTR_TCP_SYNCOOKIE_AHEAD);
				return;
			}
			ctr_inc(st, WP_CTR_TCP_SYNCOOKIE_FAILED);
		} else {
			ctr_inc(st, WP_CTR_TCP_LISTEN_BAD_SEG);
		}
		wp_tcp_send_rst_reply(st, la, ra, s);
		return;
	}
	if (!(s->flags & TH_SYN)) {
		ctr_inc(st, WP_CTR_TCP_LISTEN_BAD_SEG);
		return;
	}
	if (l->acceptq >= st->cfg.accept_backlog) {
		ctr_inc(st, WP_CTR_TCP_ACCEPT_QUEUE_FULL);
		return;
	}
	struct wp_tcp_conn *c = NULL;
	if (l->synq < st->cfg.syn_backlog)
		c = wp_tcp_conn_alloc(st);
	else
		ctr_inc(st, WP_CTR_TCP_SYN_QUEUE_FULL);
	if (!c) {
		send_cookie_synack(st, la, ra, s);
		ctr_inc(st, WP_CTR_TCP_SYNCOOKIE_SENT);
		l->cookie_us = st->now_us ? st->now_us : 1;
		return;
	}
	c->laddr = *la;
	c->raddr = *ra;
	c->lport = s->dport;
	c->rport = s->sport;
	c->passive = true;
	c->listener = (uint8_t)(l - st->listeners + 1);
	c->in_synq = true;
	l->synq++;
	c->irs = s->seq;
	c->rcv_nxt = s->seq + 1;
	c->last_ack_sent = c->rcv_nxt;
	wp_tcp_syn_options(c, s);
	c->iss = isn_make(st, la, s->dport, ra, s->sport);
	c->ts_offset = (uint32_t)wp_tcp_siphash24(st->key, &c->iss, sizeof(c->iss));
	c->snd_una = c->iss;
	c->snd_nxt = c->snd_max = c->iss + 1;
	c->sbuf_seq = c->iss + 1;
	c->recover = c->iss;
	wp_tcp_hash_insert(c);
	set_state(c, WP_TCP_SYN_RECEIVED);
	wp_tcp_send_synack(c);
	wp_tcp_arm_rto(c);
}

/* ---- API ---- */

int wp_tcp_listen(struct wp_tcp_stack *st, uint16_t port, wp_tcp_accept_cb cb, void *arg)
{
	if (!port || !cb)
		return -EINVAL;
	if (listener_find(st, port))
		return -EADDRINUSE;
	for (int i = 0; i < WP_TCP_MAX_LISTENERS; i++) {
		struct listener *l = &st->listeners[i];
		if (l->used)
			continue;
		memset(l, 0, sizeof(*l));
		l->used = true;
		l->port = port;
		l->cb = cb;
		l->arg = arg;
		l->aq_head = l->aq_tail = NIL;
		return 0;
	}
	return -ENOSPC;
}

int wp_tcp_unlisten(struct wp_tcp_stack *st, uint16_t port)
{
	struct listener *l = listener_find(st, port);
	if (!l)
		return -ENOENT;
	enter(st, 0);
	uint8_t id = (uint8_t)(l - st->listeners + 1);
	for (uint32_t i = 0; i < st->cfg.max_conns; i++) {
		struct wp_tcp_conn *c = &st->conns[i];
		if (c->used && !c->dead && c->listener == id && !c->app_owned) {
			ctr_inc(st, WP_CTR_TCP_CONN_ABORTED);
			send_rst_conn(c);
			wp_tcp_conn_release(c);
		}
	}
	for (uint32_t i = 0; i < st->cfg.max_conns; i++)
		if (st->conns[i].used && st->conns[i].listener == id)
			st->conns[i].listener = 0;
	l->used = false;
	leave(st);
	return 0;
}

void wp_tcp_accept_resume(struct wp_tcp_stack *st, uint16_t port)
{
	struct listener *l = listener_find(st, port);
	if (!l)
		return;
	enter(st, 0);
	wp_tcp_try_accept(st, l);
	leave(st);
}
