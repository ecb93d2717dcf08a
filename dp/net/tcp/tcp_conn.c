/*
 * The connection table of the TCP stack (tcp_int.h has the types): the keyed
 * hash (SipHash-2-4) that spreads flows and keeps ISNs and SYN cookies
 * unguessable, the flow hash table over the control-block array, taking and
 * releasing control blocks with their buffers, the end of a connection's
 * life (maybe_finish) and the compact TIME_WAIT table that outlives it. The
 * arrays are sized and allocated at create (tcp.c); lookups serve input
 * (tcp_input.c) and connect and port picking (tcp.c).
 */
#include <string.h>

#include "tcp_int.h"

/* ---- Keyed hash (SipHash-2-4) ---- */

static inline uint64_t rotl64(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = rotl64(v1, 13);                                                               \
		v1 ^= v0;                                                                          \
		v0 = rotl64(v0, 32);                                                               \
		v2 += v3;                                                                          \
		v3 = rotl64(v3, 16);                                                               \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = rotl64(v3, 21);                                                               \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = rotl64(v1, 17);                                                               \
		v1 ^= v2;                                                                          \
		v2 = rotl64(v2, 32);                                                               \
	} while (0)

uint64_t wp_tcp_siphash24(const uint64_t k[2], const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t v0 = k[0] ^ 0x736f6d6570736575ull;
	uint64_t v1 = k[1] ^ 0x646f72616e646f6dull;
	uint64_t v2 = k[0] ^ 0x6c7967656e657261ull;
	uint64_t v3 = k[1] ^ 0x7465646279746573ull;
	size_t blocks = len / 8;
	for (size_t i = 0; i < blocks; i++) {
		uint64_t m = 0;
		for (int j = 0; j < 8; j++)
			m |= (uint64_t)p[i * 8 + j] << (8 * j);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	uint64_t b = (uint64_t)len << 56;
	for (size_t j = 0; j < (len & 7); j++)
		b |= (uint64_t)p[blocks * 8 + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- Flow table ---- */

static uint32_t flow_hash(const struct wp_tcp_stack *st, const struct wp_addr *la, uint16_t lp,
                          const struct wp_addr *ra, uint16_t rp)
{
	uint8_t b[40];
	size_t n = tuple_bytes(b, la, lp, ra, rp);
	return (uint32_t)wp_tcp_siphash24(st->key, b, n);
}

static inline bool conn_is(const struct wp_tcp_conn *c, const struct wp_addr *la, uint16_t lp,
                           const struct wp_addr *ra, uint16_t rp)
{
	return c->lport == lp && c->rport == rp && addr_eq(&c->raddr, ra) && addr_eq(&c->laddr, la);
}

/* The connection last found is tried first: a receive burst mostly
 * brings one flow's segments, and the keyed hash is the dearest part of a
 * lookup. hash_remove() forgets it. */
struct wp_tcp_conn *wp_tcp_conn_lookup(struct wp_tcp_stack *st, const struct wp_addr *la,
                                       uint16_t lp, const struct wp_addr *ra, uint16_t rp)
{
	if (st->last_found != NIL && conn_is(&st->conns[st->last_found], la, lp, ra, rp))
		return &st->conns[st->last_found];
	uint32_t i = st->hash[flow_hash(st, la, lp, ra, rp) & st->hmask];
	while (i != NIL) {
		struct wp_tcp_conn *c = &st->conns[i];
		if (conn_is(c, la, lp, ra, rp)) {
			st->last_found = i;
			return c;
		}
		i = c->hnext;
	}
	return NULL;
}

void wp_tcp_hash_insert(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	uint32_t *head =
	        &st->hash[flow_hash(st, &c->laddr, c->lport, &c->raddr, c->rport) & st->hmask];
	c->hnext = *head;
	*head = c->idx;
}

static void hash_remove(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	if (st->last_found == c->idx)
		st->last_found = NIL;
	uint32_t *p =
	        &st->hash[flow_hash(st, &c->laddr, c->lport, &c->raddr, c->rport) & st->hmask];
	while (*p != NIL) {
		if (*p == c->idx) {
			*p = c->hnext;
			return;
		}
		p = &st->conns[*p].hnext;
	}
}

/* ---- Control blocks ---- */

struct wp_tcp_conn *wp_tcp_conn_alloc(struct wp_tcp_stack *st)
{
	if (st->conn_free == NIL) {
		ctr_inc(st, WP_CTR_TCP_CONN_POOL_EMPTY);
		return NULL;
	}
	struct wp_tcp_conn *c = &st->conns[st->conn_free];
	st->conn_free = c->list_next;
	uint32_t idx = c->idx;
	memset(c, 0, sizeof(*c));
	c->st = st;
	c->idx = idx;
	c->hnext = c->wnext = c->wprev = c->aq_next = c->list_next = NIL;
	c->used = true;
	c->state = WP_TCP_CLOSED;
	st->by_state[WP_TCP_CLOSED]++;
	st->conn_used++;
	c->rto_us = st->cfg.rto_initial_us;
	c->mss = MSS_DEFAULT;
	c->rcv_mss = MSS_DEFAULT;
	c->ssthresh = UINT32_MAX / 2;
	c->keep_idle_ms = st->cfg.keepalive_idle_ms;
	c->keep_intvl_ms = st->cfg.keepalive_intvl_ms;
	c->keep_max = st->cfg.keepalive_probes;
	return c;
}

/* Unlinks <c> everywhere; the block is recycled when the outermost call unwinds. */
void wp_tcp_conn_release(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	if (c->dead)
		return;
	hash_remove(c);
	wheel_unlink(c);
	if (c->listener) {
		struct listener *l = &st->listeners[c->listener - 1];
		if (c->in_synq) {
			l->synq--;
			c->in_synq = false;
		}
		if (c->in_acceptq)
			wp_tcp_acceptq_remove(l, c);
	}
	if (c->rbuf)
		pool_put(&st->rpool, c->rbuf);
	if (c->sbuf)
		pool_put(&st->spool, c->sbuf);
	c->rbuf = c->sbuf = NULL;
	c->rec = NULL;
	c->rec_n = 0;
	st->by_state[c->state]--;
	st->conn_used--;
	c->dead = true;
	c->list_next = st->dead_head;
	st->dead_head = c->idx;
}

/* ---- TIME_WAIT table and the end of a connection ---- */

static uint32_t *tw_head_of(struct wp_tcp_stack *st, const struct tw_entry *e)
{
	return &st->tw_hash[flow_hash(st, &e->laddr, e->lport, &e->raddr, e->rport) & st->tw_hmask];
}

void wp_tcp_tw_unhash(struct wp_tcp_stack *st, struct tw_entry *e)
{
	uint32_t idx = (uint32_t)(e - st->tw);
	uint32_t *p = tw_head_of(st, e);
	while (*p != NIL) {
		if (*p == idx) {
			*p = e->hnext;
			break;
		}
		p = &st->tw[*p].hnext;
	}
	e->live = false;
	st->tw_live--;
}

struct tw_entry *wp_tcp_tw_lookup(struct wp_tcp_stack *st, const struct wp_addr *la, uint16_t lp,
                                  const struct wp_addr *ra, uint16_t rp)
{
	if (!st->tw_cap)
		return NULL;
	uint32_t i = st->tw_hash[flow_hash(st, la, lp, ra, rp) & st->tw_hmask];
	while (i != NIL) {
		struct tw_entry *e = &st->tw[i];
		if (e->lport == lp && e->rport == rp && addr_eq(&e->raddr, ra) &&
		    addr_eq(&e->laddr, la))
			return e;
		i = e->hnext;
	}
	return NULL;
}

static void tw_insert(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	if (!st->tw_cap)
		return;
	if (st->tw_fill == st->tw_cap) {
		struct tw_entry *old = &st->tw[st->tw_head];
		if (old->live) {
			wp_tcp_tw_unhash(st, old);
			ctr_inc(st, WP_CTR_TCP_TIME_WAIT_RECYCLED);
		}
		st->tw_head = (st->tw_head + 1) % st->tw_cap;
		st->tw_fill--;
	}
	uint32_t idx = (st->tw_head + st->tw_fill) % st->tw_cap;
	st->tw_fill++;
	struct tw_entry *e = &st->tw[idx];
	e->laddr = c->laddr;
	e->raddr = c->raddr;
	e->lport = c->lport;
	e->rport = c->rport;
	e->snd_nxt = c->snd_max;
	e->rcv_nxt = c->rcv_nxt;
	e->ts_ok = c->ts_ok;
	e->ts_recent = c->ts_recent;
	e->ts_offset = c->ts_offset;
	e->wnd = rcv_wnd_advertise(c);
	e->expire_us = st->now_us + st->cfg.time_wait_us;
	e->live = true;
	uint32_t *h = tw_head_of(st, e);
	e->hnext = *h;
	*h = idx;
	st->tw_live++;
}

/* TIME_WAIT / CLOSED: once the app read everything, say closed and free the block. */
void wp_tcp_maybe_finish(struct wp_tcp_conn *c)
{
	if (c->dead || (c->state != WP_TCP_TIME_WAIT && c->state != WP_TCP_CLOSED))
		return;
	if (!c->app_owned && !c->app_closed)
		return; /* still in an accept queue: delivered when accepted */
	if (c->app_owned && !c->app_closed && !c->closed_notified) {
		if (c->rlen || !c->eof_delivered)
			return;
		notify_closed(c, WP_TCP_CLOSE_NORMAL);
		if (c->dead)
			return;
	}
	if (c->state == WP_TCP_TIME_WAIT)
		tw_insert(c);
	wp_tcp_conn_release(c);
}
