/*
 * The per-core TCP stack (tcp.h has the contract with the worker and the
 * app; README.md lists the pieces and tcp_int.h the internals they share).
 * This file is the app's side: the connection calls (send, receive flow
 * control, shutdown, close, abort), active opens (port choice, connect), and
 * the stack's life (configuration defaults, create with its fixed pools and
 * tables, destroy) with its gauges. Every API call that can send or free
 * runs between enter() and leave(), like input and timers.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "tcp_int.h"

/* ---- Connection calls ---- */

void wp_tcp_conn_set_callbacks(struct wp_tcp_conn *c, const struct wp_tcp_callbacks *cbs, void *arg)
{
	c->cbs = cbs;
	c->arg = arg;
}

/* May the app queue bytes on c now? 0, or the error wp_tcp_send returns. */
static int send_state(const struct wp_tcp_conn *c)
{
	if (c->dead || c->app_closed || c->closed_notified)
		return -EBADF;
	if (c->fin_queued)
		return -EPIPE;
	switch (c->state) {
	case WP_TCP_SYN_SENT:
	case WP_TCP_SYN_RECEIVED:
	case WP_TCP_ESTABLISHED:
	case WP_TCP_CLOSE_WAIT:
		break;
	default:
		return -ENOTCONN;
	}
	return 0;
}

/* send_state(), and the send buffer taken from the pool on first use. */
static int send_ready(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	int rc = send_state(c);

	if (rc < 0)
		return rc;
	if (!c->sbuf) {
		c->sbuf = pool_get(&st->spool);
		if (!c->sbuf) {
			ctr_inc(st, WP_CTR_TCP_SNDBUF_POOL_EMPTY);
			return -ENOBUFS;
		}
		c->shead = 0;
		c->rec = (struct txrec *)(void *)(c->sbuf + st->rec_off);
		c->rec_head = c->rec_n = 0;
		c->sacked_out = c->lost_out = 0;
	}
	return 0;
}

/* n more bytes are queued at the end of the send buffer: send them. */
static void queued(struct wp_tcp_conn *c, uint32_t n)
{
	struct wp_tcp_stack *st = c->st;

	c->slen += n;
	enter(st, 0);
	wp_tcp_output(c);
	leave(st);
}

ssize_t wp_tcp_send(struct wp_tcp_conn *c, const void *data, size_t len)
{
	struct wp_tcp_stack *st = c->st;
	int rc = len ? send_ready(c) : send_state(c);

	if (rc < 0 || !len)
		return rc;
	uint32_t space = st->cfg.snd_buf - c->slen;
	uint32_t n = (uint32_t)WP_MIN(len, (size_t)space);
	ring_write(c->sbuf, st->cfg.snd_buf, c->shead + c->slen, data, n);
	if (n < len)
		c->want_writable = true;
	queued(c, n);
	return n;
}

ssize_t wp_tcp_send_reserve(struct wp_tcp_conn *c, size_t want, struct iovec v[2])
{
	struct wp_tcp_stack *st = c->st;
	uint32_t size = st->cfg.snd_buf, space, pos, first;
	int rc = send_ready(c);

	v[0].iov_len = v[1].iov_len = 0;
	v[0].iov_base = v[1].iov_base = NULL;
	if (rc < 0)
		return rc;
	space = size - c->slen;
	if (space < want)
		c->want_writable = true;
	pos = (c->shead + c->slen) % size;
	first = WP_MIN(space, size - pos);
	v[0].iov_base = c->sbuf + pos;
	v[0].iov_len = first;
	v[1].iov_base = c->sbuf;
	v[1].iov_len = space - first;
	return space;
}

void wp_tcp_send_commit(struct wp_tcp_conn *c, size_t n)
{
	struct wp_tcp_stack *st = c->st;

	WP_ASSERT(n <= st->cfg.snd_buf - c->slen);
	if (n) {
		queued(c, (uint32_t)n);
	} else if (c->sbuf && !c->slen && !c->rec_n) {
		/* reserved and not used: back to the pool, as when acked */
		pool_put(&st->spool, c->sbuf);
		c->sbuf = NULL;
		c->rec = NULL;
		c->shead = 0;
	}
}

void wp_tcp_set_delack(struct wp_tcp_conn *c, bool on)
{
	c->delack_app = on;
	if (!on)
		c->pingpong = false;
}

void wp_tcp_set_keepalive(struct wp_tcp_conn *c, uint32_t idle_ms, uint32_t intvl_ms,
                          uint8_t probes)
{
	c->keep_idle_ms = idle_ms;
	c->keep_intvl_ms = intvl_ms;
	c->keep_max = probes;
	c->keep_probes = 0;
	/* T_KEEP is FIN_WAIT_2's limit in the other states: left alone there */
	if (c->state != WP_TCP_ESTABLISHED && c->state != WP_TCP_CLOSE_WAIT)
		return;
	if (idle_ms)
		wp_tcp_set_timer(c, T_KEEP, c->last_rcv_us + (uint64_t)idle_ms * 1000);
	else
		stop_timer(c, T_KEEP);
}

void wp_tcp_quickack(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;

	if (c->dead || !c->ack_pending || c->ack_now)
		return;
	ctr_inc(st, WP_CTR_TCP_QUICKACK);
	c->ack_now = true;
	enter(st, 0);
	wp_tcp_output(c);
	leave(st);
}

size_t wp_tcp_send_space(const struct wp_tcp_conn *c)
{
	if (c->fin_queued || c->app_closed)
		return 0;
	return c->st->cfg.snd_buf - c->slen;
}

void wp_tcp_recv_resume(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	if (c->dead)
		return;
	enter(st, 0);
	wp_tcp_deliver(c);
	if (!c->dead) {
		wp_tcp_output(c);
		wp_tcp_maybe_finish(c);
	}
	leave(st);
}

int wp_tcp_shutdown(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	if (c->dead)
		return -EBADF;
	if (c->fin_queued)
		return 0;
	switch (c->state) {
	case WP_TCP_ESTABLISHED:
		set_state(c, WP_TCP_FIN_WAIT_1);
		break;
	case WP_TCP_CLOSE_WAIT:
		set_state(c, WP_TCP_LAST_ACK);
		break;
	case WP_TCP_SYN_SENT:
	case WP_TCP_SYN_RECEIVED:
		break; /* FIN follows the handshake (on_established) */
	default:
		return -ENOTCONN;
	}
	c->fin_queued = true;
	c->fin_seq = c->sbuf_seq + c->slen;
	enter(st, 0);
	wp_tcp_output(c);
	leave(st);
	return 0;
}

void wp_tcp_close(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	if (c->dead || c->app_closed)
		return;
	enter(st, 0);
	bool notified = c->closed_notified;
	c->app_closed = true;
	c->cbs = NULL;
	if (notified) {
		/* Called from inside closed(): the stack releases it. */
	} else if (c->state == WP_TCP_SYN_SENT) {
		wp_tcp_conn_release(c);
	} else if (c->rlen > c->offered || c->state == WP_TCP_SYN_RECEIVED) {
		if (c->rlen > c->offered)
			ctr_inc(st, WP_CTR_TCP_CLOSE_UNREAD);
		send_rst_conn(c);
		wp_tcp_conn_release(c);
	} else {
		if (c->state == WP_TCP_ESTABLISHED || c->state == WP_TCP_CLOSE_WAIT) {
			c->app_closed = false;
			(void)wp_tcp_shutdown(c);
			c->app_closed = true;
		}
		if (!c->dead && c->state == WP_TCP_FIN_WAIT_2)
			wp_tcp_set_timer(c, T_KEEP, st->now_us + st->cfg.fin_wait2_us);
		wp_tcp_maybe_finish(c);
	}
	leave(st);
}

void wp_tcp_abort(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	if (c->dead)
		return;
	enter(st, 0);
	if (c->state != WP_TCP_SYN_SENT && c->state != WP_TCP_CLOSED &&
	    c->state != WP_TCP_TIME_WAIT)
		send_rst_conn(c);
	ctr_inc(st, WP_CTR_TCP_CONN_ABORTED);
	c->app_closed = true;
	wp_tcp_conn_release(c);
	leave(st);
}

/* ---- Active opens ---- */

static bool port_busy(struct wp_tcp_stack *st, const struct wp_addr *la, uint16_t lp,
                      const struct wp_addr *ra, uint16_t rp)
{
	return listener_find(st, lp) || wp_tcp_conn_lookup(st, la, lp, ra, rp) ||
	       wp_tcp_tw_lookup(st, la, lp, ra, rp);
}

int wp_tcp_pick_port(struct wp_tcp_stack *st, uint32_t dst_ip, uint16_t dst_port,
                     wp_tcp_port_pred_cb pred, void *pred_arg, uint16_t *port)
{
	struct wp_addr la = {.family = WP_AF_INET, .v4 = st->cfg.local_ip};
	struct wp_addr ra = {.family = WP_AF_INET, .v4 = dst_ip};
	uint32_t lo = st->cfg.eph_port_lo, n = (uint32_t)st->cfg.eph_port_hi - lo + 1;
	for (uint32_t i = 0; i < n; i++) {
		uint16_t p = (uint16_t)(lo + (st->eph_cursor + i) % n);
		if (port_busy(st, &la, p, &ra, dst_port))
			continue;
		if (pred && !pred(p, pred_arg))
			continue;
		st->eph_cursor = (st->eph_cursor + i + 1) % n;
		*port = p;
		return 0;
	}
	return -EADDRNOTAVAIL;
}

int wp_tcp_connect(struct wp_tcp_stack *st, uint32_t dst_ip, uint16_t dst_port, uint16_t local_port,
                   const struct wp_tcp_callbacks *cbs, void *arg, struct wp_tcp_conn **connp)
{
	struct wp_addr la = {.family = WP_AF_INET, .v4 = st->cfg.local_ip};
	struct wp_addr ra = {.family = WP_AF_INET, .v4 = dst_ip};
	if (!dst_port)
		return -EINVAL;
	if (!local_port) {
		int rc = wp_tcp_pick_port(st, dst_ip, dst_port, NULL, NULL, &local_port);
		if (rc < 0)
			return rc;
	} else if (wp_tcp_conn_lookup(st, &la, local_port, &ra, dst_port) ||
	           wp_tcp_tw_lookup(st, &la, local_port, &ra, dst_port)) {
		return -EADDRINUSE;
	}
	enter(st, 0);
	struct wp_tcp_conn *c = wp_tcp_conn_alloc(st);
	if (!c) {
		leave(st);
		return -ENOBUFS;
	}
	c->laddr = la;
	c->raddr = ra;
	c->lport = local_port;
	c->rport = dst_port;
	c->cbs = cbs;
	c->arg = arg;
	c->app_owned = true;
	c->iss = isn_make(st, &la, local_port, &ra, dst_port);
	c->ts_offset = (uint32_t)wp_tcp_siphash24(st->key, &c->iss, sizeof(c->iss));
	c->snd_una = c->iss;
	c->snd_nxt = c->snd_max = c->iss + 1;
	c->sbuf_seq = c->iss + 1;
	c->recover = c->iss;
	wp_tcp_hash_insert(c);
	set_state(c, WP_TCP_SYN_SENT);
	ctr_inc(st, WP_CTR_TCP_ACTIVE_OPEN);
	wp_tcp_send_syn(c);
	wp_tcp_arm_rto(c);
	*connp = c;
	leave(st);
	return 0;
}

/* ---- Stack life and introspection ---- */

void wp_tcp_config_default(struct wp_tcp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_conns = 4096;
	cfg->syn_backlog = 256;
	cfg->accept_backlog = 256;
	cfg->time_wait_max = 4096;
	cfg->rcv_buf = 64 * 1024;
	cfg->snd_buf = 64 * 1024;
	cfg->mss = 1460;
	cfg->max_ooo_ranges = 8;
	cfg->rto_min_us = 200000;
	cfg->rto_max_us = 60000000;
	cfg->rto_initial_us = 1000000;
	cfg->max_retries = 8;
	cfg->syn_retries = 5;
	cfg->synack_retries = 5;
	cfg->keepalive_probes = 5;
	cfg->delack_us = 40000;
	cfg->time_wait_us = 2000000;
	cfg->fin_wait2_us = 30000000;
	cfg->keepalive_idle_ms = 0;
	cfg->keepalive_intvl_ms = 15000;
	cfg->challenge_ack_per_sec = 1000;
	cfg->eph_port_lo = 32768;
	cfg->eph_port_hi = 60999;
	cfg->window_scaling = true;
	cfg->timestamps = true;
	cfg->sack = true;
}

static int pool_init(struct bufpool *p, uint32_t size, uint32_t count)
{
	p->size = size;
	p->count = count;
	p->mem = malloc((size_t)size * count);
	p->free = malloc(sizeof(uint32_t) * count);
	if (!p->mem || !p->free)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++)
		p->free[i] = count - 1 - i;
	p->nfree = count;
	return 0;
}

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 16;
	while (p < n && p < (1u << 30))
		p <<= 1;
	return p;
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct wp_tcp_stack *wp_tcp_stack_create(const struct wp_tcp_config *cfg,
                                         const struct wp_tcp_io_ops *ops, uint64_t *ctr)
{
	if (!cfg || !ops || !ops->tx_alloc || !ops->tx_send || !ctr || !cfg->max_conns ||
	    cfg->mss < MSS_MIN + 40 || cfg->rcv_buf < cfg->mss || cfg->snd_buf < 1 ||
	    cfg->rcv_buf > (1u << 30) || cfg->snd_buf > (1u << 30) || !cfg->max_ooo_ranges ||
	    cfg->max_ooo_ranges > WP_TCP_MAX_OOO || cfg->eph_port_lo == 0 ||
	    cfg->eph_port_hi < cfg->eph_port_lo || !cfg->rto_min_us ||
	    cfg->rto_max_us < cfg->rto_min_us || cfg->max_conns >= NIL) {
		errno = EINVAL;
		return NULL;
	}
	struct wp_tcp_stack *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->cfg = *cfg;
	st->ops = *ops;
	st->ctr = ctr;
	if (cfg->seed) {
		uint64_t x = cfg->seed;
		st->key[0] = splitmix(&x);
		st->key[1] = splitmix(&x);
	} else if (getrandom(st->key, sizeof(st->key), 0) != sizeof(st->key)) {
		goto fail;
	}
	while ((cfg->rcv_buf >> st->rcv_wscale) > 65535 && st->rcv_wscale < 14)
		st->rcv_wscale++;

	/* Scoreboard records: one per segment in flight, at most one per 256 bytes. */
	st->rec_cap = 64;
	while (st->rec_cap < cfg->snd_buf / 256 && st->rec_cap < 65536)
		st->rec_cap <<= 1;
	st->rec_off = (cfg->snd_buf + 15u) & ~15u;

	st->conns = calloc(cfg->max_conns, sizeof(*st->conns));
	uint32_t hsize = pow2_at_least(cfg->max_conns * 2);
	st->hash = malloc(sizeof(uint32_t) * hsize);
	if (!st->conns || !st->hash)
		goto fail;
	st->hmask = hsize - 1;
	st->last_found = NIL;
	memset(st->hash, 0xff, sizeof(uint32_t) * hsize);
	for (uint32_t i = 0; i < cfg->max_conns; i++) {
		st->conns[i].idx = i;
		st->conns[i].list_next = i + 1 < cfg->max_conns ? i + 1 : NIL;
	}
	st->conn_free = 0;
	st->dead_head = NIL;

	if (pool_init(&st->rpool, cfg->rcv_buf,
	              cfg->rcv_buf_count ? cfg->rcv_buf_count : cfg->max_conns) ||
	    pool_init(&st->spool, st->rec_off + st->rec_cap * (uint32_t)sizeof(struct txrec),
	              cfg->snd_buf_count ? cfg->snd_buf_count : cfg->max_conns))
		goto fail;

	st->tw_cap = cfg->time_wait_max;
	if (st->tw_cap) {
		uint32_t tsize = pow2_at_least(st->tw_cap * 2);
		st->tw = calloc(st->tw_cap, sizeof(*st->tw));
		st->tw_hash = malloc(sizeof(uint32_t) * tsize);
		if (!st->tw || !st->tw_hash)
			goto fail;
		st->tw_hmask = tsize - 1;
		memset(st->tw_hash, 0xff, sizeof(uint32_t) * tsize);
	}
	memset(st->wheel, 0xff, sizeof(st->wheel));
	for (int i = 0; i < WP_TCP_MAX_LISTENERS; i++)
		st->listeners[i].aq_head = st->listeners[i].aq_tail = NIL;
	st->eph_cursor =
	        (uint32_t)(st->key[0] % ((uint32_t)cfg->eph_port_hi - cfg->eph_port_lo + 1));
	return st;
fail:
	wp_tcp_stack_destroy(st);
	return NULL;
}

void wp_tcp_stack_destroy(struct wp_tcp_stack *st)
{
	if (!st)
		return;
	free(st->conns);
	free(st->hash);
	free(st->rpool.mem);
	free(st->rpool.free);
	free(st->spool.mem);
	free(st->spool.free);
	free(st->tw);
	free(st->tw_hash);
	free(st);
}

void wp_tcp_stack_gauges(const struct wp_tcp_stack *st, struct wp_tcp_gauges *g)
{
	memset(g, 0, sizeof(*g));
	g->conns = st->conn_used;
	memcpy(g->state, st->by_state, sizeof(g->state));
	g->time_wait = st->tw_live;
	for (int i = 0; i < WP_TCP_MAX_LISTENERS; i++) {
		if (!st->listeners[i].used)
			continue;
		g->listeners++;
		g->syn_queue += st->listeners[i].synq;
		g->accept_queue += st->listeners[i].acceptq;
	}
	g->rcv_bufs = st->rpool.count - st->rpool.nfree;
	g->snd_bufs = st->spool.count - st->spool.nfree;
}

void wp_tcp_conn_info(const struct wp_tcp_conn *c, struct wp_tcp_conn_info *info)
{
	memset(info, 0, sizeof(*info));
	info->local = c->laddr;
	info->remote = c->raddr;
	info->local_port = c->lport;
	info->remote_port = c->rport;
	info->state = (enum wp_tcp_state)c->state;
	info->snd_queued = c->slen;
	info->rcv_queued = c->rlen;
	info->srtt_us = c->srtt_us;
	info->rto_us = c->rto_us;
	info->cwnd = c->cwnd;
	info->snd_wnd = c->snd_wnd;
	info->mss = c->mss;
	info->ts_ok = c->ts_ok;
	info->sack_ok = c->sack_ok;
	info->ws_ok = c->ws_ok;
}

const char *wp_tcp_state_name(enum wp_tcp_state s)
{
	static const char *const names[WP_TCP_STATE_MAX] = {
	        "CLOSED",     "SYN_SENT",   "SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1",
	        "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING",      "LAST_ACK",    "TIME_WAIT",
	};
	return (unsigned)s < WP_TCP_STATE_MAX ? names[s] : "?";
}
