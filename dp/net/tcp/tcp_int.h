/*
 * Internals of the per-core TCP stack, shared by its pieces (README.md lists
 * them: connection table, input, output, loss recovery, timers, listeners,
 * app API). The public contract stays in tcp.h; nothing outside dp/net/tcp
 * (except its unit tests) includes this file.
 *
 * It holds the control blocks and the stack, the parsed-segment and
 * scoreboard types, and the small helpers more than one piece uses, as
 * static inline so that the per-segment path inlines them exactly as it did
 * when the stack was one file. Functions that one piece defines and others
 * call are declared after the types: they are named wp_tcp_<what> like the public
 * API, but have hidden visibility, so they never leave the library and calls
 * to them inside their own file can still be inlined.
 *
 * Memory: control blocks, receive buffers, send buffers and TIME_WAIT entries
 * are fixed pools allocated at create. A connection takes a buffer only when
 * it first has bytes to hold and gives it back once drained, so idle
 * connections stay small. A receive buffer is a ring that also holds
 * out-of-order data at its final position; the advertised window never
 * exceeds the ring's free space, so reassembly needs no other memory (only a
 * small table of ranges, bounded by cfg.max_ooo_ranges).
 *
 * Re-entrancy: callbacks may call the API. A freed block is only marked dead
 * and unlinked; it returns to the free list when the outermost entry point
 * (input, timers or an app call) unwinds, so code that made a callback can
 * still test c->dead afterwards.
 */
#ifndef WP_DP_NET_TCP_TCP_INT_H
#define WP_DP_NET_TCP_TCP_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cksum.h"
#include "tcp.h"
#include "wp/counters.h"

#define NIL              UINT32_MAX
#define TICK_US          1000u
#define WHEEL_SLOTS      4096u
#define WHEEL_MASK       (WHEEL_SLOTS - 1)
#define RXQ_MAX          64u /* connections one receive burst can file (more: served at once) */
#define DUPTHRESH        3
#define PTO_MIN_US       10000u /* tail-loss probe floor (Linux: 2 jiffies) */
#define MSS_DEFAULT      536
#define MSS_MIN          64
#define PAWS_IDLE_US     (24ull * 24 * 3600 * 1000000) /* RFC 7323 5.5: 24 days */
#define COOKIE_PERIOD_US (64ull * 1000000)
#define ONE_SEC_US       1000000ull
/* Window probes to a peer that answers them back off to at most this: it
 * is alive and its buffer full, so a probe costs one small exchange, while
 * a lost window update would otherwise stall the flow for up to rto_max. */
#define PROBE_MAX_US 1000000ull

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10
#define TH_URG 0x20

#define OPT_EOL    0
#define OPT_NOP    1
#define OPT_MSS    2
#define OPT_WS     3
#define OPT_SACKOK 4
#define OPT_SACK   5
#define OPT_TS     8

/* Sequence arithmetic: always a signed 32-bit difference. */
#define SEQ_LT(a, b)  ((int32_t)((uint32_t)(a) - (uint32_t)(b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) <= 0)
#define SEQ_GT(a, b)  ((int32_t)((uint32_t)(a) - (uint32_t)(b)) > 0)
#define SEQ_GEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) >= 0)
#define SEQ_MAX(a, b) (SEQ_GT(a, b) ? (a) : (b))

enum { T_RTO, T_PERSIST, T_DELACK, T_KEEP, T_REO, T_PTO, T_MAX };

struct seq_range {
	uint32_t start, end; /* [start, end) */
};

/*
 * One data segment in flight (the sender's scoreboard, RFC 6675 + RFC 8985).
 * Records are kept in sequence order in a ring stored behind the send
 * buffer's bytes (see wp_tcp_stack.rec_cap): they exist only while data is
 * unacknowledged, exactly when the connection holds a send buffer.
 */
#define TR_SACKED  0x01 /* the peer SACKed all of it */
#define TR_LOST    0x02 /* deemed lost, waiting to be retransmitted */
#define TR_RETRANS 0x04 /* retransmitted at least once */
struct txrec {
	uint32_t seq, end; /* data bytes [seq, end); never the FIN */
	uint32_t xmit_us;  /* low 32 bits of the clock at the last (re)transmission */
	uint8_t flags;
};

/* A parsed incoming segment. */
struct seg {
	uint16_t sport, dport, wnd;
	uint32_t seq, ack;
	uint8_t flags;
	/* payload: len bytes from <skip> on, of <head> bytes at <data> and
	 * then the pieces <more>[0..nmore) */
	const uint8_t *data;
	uint32_t len, head, skip;
	const struct wp_tcp_piece *more;
	unsigned nmore;
	/* the receive ring <placed> at <placed_pos> (mod its size) already
	 * holds the payload, copied there as its checksum was verified; NULL:
	 * nowhere */
	const uint8_t *placed;
	uint32_t placed_pos;
	bool has_mss, has_ws, has_sackok, has_ts;
	uint16_t mss;
	uint8_t ws, nsack;
	uint32_t tsval, tsecr;
	struct seq_range sack[4];
};

/* A connection's control block: an element of wp_tcp_stack.conns, linked by index. */
struct wp_tcp_conn {
	struct wp_tcp_stack *st;
	uint32_t idx;
	uint32_t hnext;               /* flow hash chain */
	uint32_t wnext, wprev, wslot; /* timer wheel slot list */
	uint32_t aq_next;             /* listener accept queue */
	uint32_t list_next;           /* free list / dead list */
	uint32_t fire_next;           /* expired-timer batch */
	struct wp_addr laddr, raddr;
	uint16_t lport, rport;
	uint8_t state;
	uint8_t listener; /* listener index + 1 for passive opens */
	bool used, dead, passive, app_owned, app_closed, closed_notified;
	bool in_synq, in_acceptq, in_wheel, delivering;
	bool rx_filed; /* in rxq: delivery and output wait for wp_tcp_rx_flush() */
	bool fin_rcvd, eof_delivered, fin_queued, want_writable;
	bool ws_ok, ts_ok, sack_ok, in_recovery, rtt_active, rtt_valid, syn_rexmit;
	bool ack_now, ack_pending, ooo_fin;
	/* delayed ACKs for request/response (wp_tcp_set_delack): the app
	 * opted in (delack_app); we answered data within delack_us of receiving
	 * it, so the ACK of a short pushed segment waits for our answer
	 * (pingpong, Linux's interactive mode; left when the timer fires) */
	bool delack_app, pingpong;
	uint64_t last_data_us;   /* when in-order data last arrived */
	uint32_t rcv_since_send; /* in-order bytes received since we last sent data */
	bool rack_valid, rescue_done, tlp_out;
	uint32_t offered; /* bytes handed to the data callback right now */

	/* send side */
	uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd, max_snd_wnd, snd_wl1, snd_wl2;
	uint32_t sbuf_seq; /* sequence number of the first byte in sbuf */
	uint32_t fin_seq;
	uint32_t cwnd, ssthresh, recover, rtt_seq;
	uint16_t mss;     /* peer's MSS clamped to ours (payload + options) */
	uint16_t dupacks; /* non-SACK peers only (NewReno) */
	uint8_t snd_wscale, rcv_wscale, retries, backoff, persist_backoff, keep_probes;
	/* keepalive (the stack's, or wp_tcp_set_keepalive()): idle time before
	 * the first probe (0: off), between probes, unanswered probes allowed */
	uint8_t keep_max;
	uint32_t keep_idle_ms, keep_intvl_ms;
	/* scoreboard: ring of segments in flight (NULL without a send buffer) */
	struct txrec *rec;
	uint32_t rec_head, rec_n;
	uint32_t sacked_out, lost_out; /* bytes of records marked SACKED / LOST */
	/* RACK (RFC 8985): the most recently sent segment known delivered */
	uint32_t rack_xmit_us, rack_end, rack_rtt_us, min_rtt_us;
	/* PRR (RFC 6937) during recovery */
	uint32_t prr_delivered, prr_out, recover_fs;
	uint32_t srtt_us, rttvar_us, rto_us;
	uint64_t rtt_start_us;

	/* receive side */
	uint32_t irs, rcv_nxt, rcv_adv, last_ack_sent, rcv_unacked, rcv_mss;
	uint32_t ts_recent, ts_offset, ooo_fin_seq;
	uint64_t ts_recent_us, last_rcv_us;
	uint8_t nooo, ooo_recent;
	struct seq_range ooo[WP_TCP_MAX_OOO]; /* sorted, disjoint, all above rcv_nxt */

	/* buffers (rings) */
	uint8_t *rbuf, *sbuf;
	uint32_t rhead, rlen, shead, slen;

	/* timers: absolute deadlines (0 = off); one wheel entry at the earliest */
	uint64_t tdl[T_MAX];
	uint64_t wexpire;

	const struct wp_tcp_callbacks *cbs;
	void *arg;
};

/* A listening port with its SYN and accept queues (tcp_listen.c). */
struct listener {
	bool used;
	uint16_t port;
	wp_tcp_accept_cb cb;
	void *arg;
	uint32_t synq, acceptq;
	uint32_t aq_head, aq_tail;
	uint64_t cookie_us; /* last time a cookie was sent (0: never) */
};

/* What TIME_WAIT keeps of a closed connection (tcp_conn.c). */
struct tw_entry {
	struct wp_addr laddr, raddr;
	uint16_t lport, rport;
	uint32_t snd_nxt, rcv_nxt, ts_recent, ts_offset;
	uint64_t expire_us;
	uint32_t hnext;
	uint16_t wnd;
	bool ts_ok, live;
};

/* A fixed pool of equal buffers: receive rings or send rings with their scoreboard. */
struct bufpool {
	uint8_t *mem;
	uint32_t size, count, nfree;
	uint32_t *free;
};

/* One worker's stack: configuration, I/O ops, the pools and tables, the wheel. */
struct wp_tcp_stack {
	struct wp_tcp_config cfg;
	struct wp_tcp_io_ops ops;
	uint64_t *ctr;
	uint64_t key[2];
	uint64_t now_us;
	int depth;
	uint8_t rcv_wscale;

	struct wp_tcp_conn *conns;
	uint32_t conn_free, conn_used, dead_head;
	uint32_t *hash;
	uint32_t hmask;
	uint32_t last_found; /* the connection wp_tcp_conn_lookup() found last (NIL: none) */
	uint32_t by_state[WP_TCP_STATE_MAX];

	struct bufpool rpool, spool;
	uint32_t rec_cap, rec_off; /* scoreboard records per send buffer (power of 2), offset */
	struct listener listeners[WP_TCP_MAX_LISTENERS];

	struct tw_entry *tw;
	uint32_t tw_cap, tw_head, tw_fill, tw_live;
	uint32_t *tw_hash;
	uint32_t tw_hmask;

	uint32_t wheel[WHEEL_SLOTS];
	uint64_t wheel_tick;

	uint64_t chack_start;
	uint32_t chack_n;
	uint32_t eph_cursor;

	uint32_t rxq[RXQ_MAX]; /* rx_coalesce: connections filed since the last flush */
	uint32_t rxq_n;
};

/* An outgoing segment, as the output functions hand it to the transmit step. */
struct txinfo {
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t wnd;
	uint8_t opt[40];
	uint8_t optlen;
	const uint8_t *ring;
	uint32_t ring_size, ring_pos, len;
	uint16_t tso_segsz; /* payload per wire segment when the device cuts it; else 0 */
};

/* ---- Functions one piece defines and the others call ---- */

/* Hidden: internal to the library (see the top of this file). */
#pragma GCC visibility push(hidden)

/* tcp_conn.c */
/* SipHash-2-4 of <data> under the 128-bit key <k>. */
uint64_t wp_tcp_siphash24(const uint64_t k[2], const void *data, size_t len);
/* The block for the 4-tuple, or NULL. */
struct wp_tcp_conn *wp_tcp_conn_lookup(struct wp_tcp_stack *st, const struct wp_addr *la,
                                       uint16_t lp, const struct wp_addr *ra, uint16_t rp);
/* Adds <c> to the flow table under its 4-tuple. */
void wp_tcp_hash_insert(struct wp_tcp_conn *c);
/* A zeroed block in CLOSED, or NULL (counted) when the pool is empty. */
struct wp_tcp_conn *wp_tcp_conn_alloc(struct wp_tcp_stack *st);
/* Unlinks <c> everywhere and frees its buffers; recycled when the outermost call unwinds. */
void wp_tcp_conn_release(struct wp_tcp_conn *c);
/* TIME_WAIT / CLOSED: once the app read everything, say closed and free the block. */
void wp_tcp_maybe_finish(struct wp_tcp_conn *c);
/* Takes <e> out of the TIME_WAIT hash (its slot ages out of the ring later). */
void wp_tcp_tw_unhash(struct wp_tcp_stack *st, struct tw_entry *e);
/* The live TIME_WAIT entry for the 4-tuple, or NULL. */
struct tw_entry *wp_tcp_tw_lookup(struct wp_tcp_stack *st, const struct wp_addr *la, uint16_t lp,
                                  const struct wp_addr *ra, uint16_t rp);

/* tcp_output.c */
/* Builds and sends one segment; -ENOBUFS (counted) when tx_alloc fails. */
int wp_tcp_tx(struct wp_tcp_stack *st, const struct wp_addr *src, const struct wp_addr *dst,
              uint16_t sport, uint16_t dport, const struct txinfo *t);
/* A segment without payload: ACK, probe or RST. */
void wp_tcp_send_ctl(struct wp_tcp_conn *c, uint32_t seq, uint8_t flags);
/* RST in reply to a segment that has no connection (RFC 9293 3.10.7.1). */
void wp_tcp_send_rst_reply(struct wp_tcp_stack *st, const struct wp_addr *la,
                           const struct wp_addr *ra, const struct seg *s);
/* The handshake segments of <c> (first send or retransmission). */
void wp_tcp_send_syn(struct wp_tcp_conn *c);
void wp_tcp_send_synack(struct wp_tcp_conn *c);
/* Sends [seq, seq+len) of the send buffer (and the FIN when it ends there). */
void wp_tcp_send_data(struct wp_tcp_conn *c, uint32_t seq, uint32_t len, bool retrans);
/* Sends what the windows allow, then any ACK still owed. */
void wp_tcp_output(struct wp_tcp_conn *c);

/* tcp_timer.c */
/* Arms timer <t> (T_*) at <when>, an absolute time in us. */
void wp_tcp_set_timer(struct wp_tcp_conn *c, int t, uint64_t when);
/* Arms the retransmission timer at now + RTO (backed off, capped). */
void wp_tcp_arm_rto(struct wp_tcp_conn *c);

/* tcp_recovery.c */
/* Marks the records the SACK blocks of <s> cover. True when any was newly SACKed. */
bool wp_tcp_sack_mark(struct wp_tcp_conn *c, const struct seg *s);
/* Drops the records below the cumulative ACK <ack>. */
void wp_tcp_rec_ack(struct wp_tcp_conn *c, uint32_t ack);
/* After an ACK or the reordering timer: find losses, enter or pace recovery. */
void wp_tcp_recovery_step(struct wp_tcp_conn *c, uint32_t delivered);

/* tcp_listen.c */
/* Takes <c> out of the accept queue of <l>. */
void wp_tcp_acceptq_remove(struct listener *l, struct wp_tcp_conn *c);
/* Queues an established passive connection (at the head when the app deferred it). */
void wp_tcp_acceptq_push(struct listener *l, struct wp_tcp_conn *c, bool front);
/* Offers the accept queue to the app's accept callback. */
void wp_tcp_try_accept(struct wp_tcp_stack *st, struct listener *l);
/* A segment for no connection, to the listener on its port. */
void wp_tcp_listen_input(struct wp_tcp_stack *st, struct listener *l, const struct wp_addr *la,
                         const struct wp_addr *ra, struct seg *s);

/* tcp_input.c */
/* The negotiated options of a SYN (either side of the handshake). */
void wp_tcp_syn_options(struct wp_tcp_conn *c, const struct seg *s);
/* The handshake is complete: initial cwnd, state, keepalive. */
void wp_tcp_on_established(struct wp_tcp_conn *c);
/* A parsed segment for <c>: the state machine. */
void wp_tcp_conn_input(struct wp_tcp_conn *c, struct seg *s);
/* Fills s's option fields from the n option bytes at o (tcp_input.c). */
void wp_tcp_parse_opts(const uint8_t *o, unsigned n, struct seg *s);
/* Offers buffered in-order bytes to the app, then EOF once everything is read. */
void wp_tcp_deliver(struct wp_tcp_conn *c);

#pragma GCC visibility pop

/* ---- Bytes and rings ---- */

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void wr16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

static inline void ring_write(uint8_t *ring, uint32_t size, uint32_t pos, const uint8_t *src,
                              uint32_t len)
{
	pos %= size;
	uint32_t first = WP_MIN(len, size - pos);
	memcpy(ring + pos, src, first);
	if (len > first)
		memcpy(ring, src + first, len - first);
}

static inline void ring_read(const uint8_t *ring, uint32_t size, uint32_t pos, uint8_t *dst,
                             uint32_t len)
{
	pos %= size;
	uint32_t first = WP_MIN(len, size - pos);
	memcpy(dst, ring + pos, first);
	if (len > first)
		memcpy(dst + first, ring, len - first);
}

/* Copies two pieces as a ring's wrap cuts them (<n0> bytes from <s0> to
 * <d0>, then <n1> from <s1> to <d1>) and returns their running checksum
 * (dp/net/cksum.h) as summed at an even offset of the segment: after an
 * odd first piece the second joins byte-swapped. */
static inline uint64_t copy2_cksum(uint8_t *d0, const uint8_t *s0, uint32_t n0, uint8_t *d1,
                                   const uint8_t *s1, uint32_t n1)
{
	uint64_t sum = wp_cksum_copy(0, d0, s0, n0);
	if (n1) {
		uint64_t rest = wp_cksum_copy(0, d1, s1, n1);
		sum += n0 & 1 ? wp_cksum_odd(rest) : rest;
	}
	return sum;
}

/* ring_write() that also returns the bytes' running checksum. */
static inline uint64_t ring_write_cksum(uint8_t *ring, uint32_t size, uint32_t pos,
                                        const uint8_t *src, uint32_t len)
{
	pos %= size;
	uint32_t first = WP_MIN(len, size - pos);
	return copy2_cksum(ring + pos, src, first, ring, src + first, len - first);
}

/* ring_read() that also returns the bytes' running checksum. */
static inline uint64_t ring_read_cksum(const uint8_t *ring, uint32_t size, uint32_t pos,
                                       uint8_t *dst, uint32_t len)
{
	pos %= size;
	uint32_t first = WP_MIN(len, size - pos);
	return copy2_cksum(dst, ring + pos, first, dst + first, ring, len - first);
}

/* ---- Addresses and counters ---- */

static inline size_t addr_len(const struct wp_addr *a)
{
	return a->family == WP_AF_INET6 ? 16 : 4;
}

static inline bool addr_eq(const struct wp_addr *a, const struct wp_addr *b)
{
	return a->family == b->family && memcmp(a->v6, b->v6, addr_len(a)) == 0;
}

static inline size_t tuple_bytes(uint8_t *b, const struct wp_addr *la, uint16_t lp,
                                 const struct wp_addr *ra, uint16_t rp)
{
	size_t n = 0, al = addr_len(la);
	memcpy(b + n, la->v6, al);
	n += al;
	memcpy(b + n, ra->v6, al);
	n += al;
	wr16(b + n, lp);
	wr16(b + n + 2, rp);
	return n + 4;
}

/* RFC 6528: ISN = keyed hash of the 4-tuple + a 4 us clock. */
static inline uint32_t isn_make(const struct wp_tcp_stack *st, const struct wp_addr *la,
                                uint16_t lp, const struct wp_addr *ra, uint16_t rp)
{
	uint8_t b[44];
	size_t n = tuple_bytes(b, la, lp, ra, rp);
	memcpy(b + n, "isn!", 4);
	return (uint32_t)(wp_tcp_siphash24(st->key, b, n + 4) >> 32) + (uint32_t)(st->now_us / 4);
}

static inline void ctr_inc(struct wp_tcp_stack *st, enum wp_ctr id)
{
	wp_ctr_inc(st->ctr, id);
}

/* ---- Buffer pools ---- */

static inline uint8_t *pool_get(struct bufpool *p)
{
	if (!p->nfree)
		return NULL;
	return p->mem + (size_t)p->free[--p->nfree] * p->size;
}

static inline void pool_put(struct bufpool *p, uint8_t *b)
{
	WP_ASSERT(p->nfree < p->count);
	p->free[p->nfree++] = (uint32_t)((size_t)(b - p->mem) / p->size);
}

/* ---- States, lifetime and entry depth ---- */

static inline void set_state(struct wp_tcp_conn *c, enum wp_tcp_state s)
{
	c->st->by_state[c->state]--;
	c->st->by_state[s]++;
	c->state = (uint8_t)s;
}

static inline bool synchronized(const struct wp_tcp_conn *c)
{
	return c->state >= WP_TCP_ESTABLISHED && c->state <= WP_TCP_TIME_WAIT;
}

static inline void enter(struct wp_tcp_stack *st, uint64_t now_us)
{
	if (now_us > st->now_us)
		st->now_us = now_us;
	st->depth++;
}

static inline void leave(struct wp_tcp_stack *st)
{
	if (--st->depth)
		return;
	while (st->dead_head != NIL) {
		struct wp_tcp_conn *c = &st->conns[st->dead_head];
		st->dead_head = c->list_next;
		c->used = false;
		c->list_next = st->conn_free;
		st->conn_free = c->idx;
	}
}

/* Tells the app (once) that the connection ended; the block stays until released. */
static inline void notify_closed(struct wp_tcp_conn *c, enum wp_tcp_close_reason why)
{
	if (c->closed_notified)
		return;
	c->closed_notified = true;
	if (c->app_owned && !c->app_closed && c->cbs && c->cbs->closed)
		c->cbs->closed(c, c->arg, why);
}

static inline void terminate(struct wp_tcp_conn *c, enum wp_tcp_close_reason why)
{
	notify_closed(c, why);
	wp_tcp_conn_release(c);
}

/* ---- Timers ---- */

static inline void stop_timer(struct wp_tcp_conn *c, int t)
{
	c->tdl[t] = 0; /* the wheel entry is lazy */
}

static inline void wheel_unlink(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	if (!c->in_wheel)
		return;
	if (c->wprev != NIL)
		st->conns[c->wprev].wnext = c->wnext;
	else
		st->wheel[c->wslot] = c->wnext;
	if (c->wnext != NIL)
		st->conns[c->wnext].wprev = c->wprev;
	c->in_wheel = false;
}

/* ---- Listeners ---- */

static inline struct listener *listener_find(struct wp_tcp_stack *st, uint16_t port)
{
	for (int i = 0; i < WP_TCP_MAX_LISTENERS; i++)
		if (st->listeners[i].used && st->listeners[i].port == port)
			return &st->listeners[i];
	return NULL;
}

/* ---- Outgoing segments: options, windows, control segments ---- */

static inline uint32_t ts_now(const struct wp_tcp_stack *st)
{
	return (uint32_t)(st->now_us / 1000);
}

static inline uint8_t put_ts(uint8_t *o, uint32_t tsval, uint32_t tsecr)
{
	o[0] = OPT_NOP;
	o[1] = OPT_NOP;
	o[2] = OPT_TS;
	o[3] = 10;
	wr32(o + 4, tsval);
	wr32(o + 8, tsecr);
	return 12;
}

static inline uint8_t sack_blocks_room(const struct wp_tcp_conn *c)
{
	if (!c->sack_ok || !c->nooo)
		return 0;
	return (uint8_t)WP_MIN(c->nooo, c->ts_ok ? 3 : 4);
}

static inline uint8_t opts_len(const struct wp_tcp_conn *c)
{
	uint8_t nb = sack_blocks_room(c);
	return (uint8_t)((c->ts_ok ? 12 : 0) + (nb ? 4 + 8 * nb : 0));
}

/* Payload that fits in <limit> bytes of options and payload (at least 8). */
static inline uint32_t payload_within(const struct wp_tcp_conn *c, uint32_t limit)
{
	uint32_t o = opts_len(c);
	return limit > o + 8 ? limit - o : 8;
}

static inline uint32_t seg_payload_max(const struct wp_tcp_conn *c)
{
	return payload_within(c, c->mss);
}

/* Free receive space, as the window may claim it. */
static inline uint32_t rcv_space(const struct wp_tcp_conn *c)
{
	return c->st->cfg.rcv_buf - c->rlen;
}

/* What the peer may still send: what we advertised, never more than the ring holds. */
static inline uint32_t rcv_wnd_accept(const struct wp_tcp_conn *c)
{
	uint32_t adv = SEQ_GT(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
	return WP_MIN(adv, rcv_space(c));
}

/*
 * The window field for an outgoing segment. The right edge never moves left;
 * small openings are not advertised (receiver SWS avoidance, RFC 1122).
 */
static inline uint16_t rcv_wnd_advertise(struct wp_tcp_conn *c)
{
	uint32_t space = rcv_space(c);
	uint32_t cur = SEQ_GT(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
	uint32_t thr = WP_MIN(c->st->cfg.rcv_buf / 2, c->rcv_mss);
	uint32_t w = space;
	if (space > cur && space - cur < thr)
		w = cur;
	uint32_t field = w >> c->rcv_wscale;
	if (field > 65535)
		field = 65535;
	uint32_t edge = c->rcv_nxt + (field << c->rcv_wscale);
	if (SEQ_GT(edge, c->rcv_adv))
		c->rcv_adv = edge;
	return (uint16_t)field;
}

static inline uint16_t syn_window(const struct wp_tcp_stack *st)
{
	return (uint16_t)WP_MIN(st->cfg.rcv_buf, 65535u); /* a SYN's window is never scaled */
}

static inline bool can_send_state(const struct wp_tcp_conn *c)
{
	switch (c->state) {
	case WP_TCP_ESTABLISHED:
	case WP_TCP_CLOSE_WAIT:
	case WP_TCP_FIN_WAIT_1:
	case WP_TCP_CLOSING:
	case WP_TCP_LAST_ACK:
		return true;
	default:
		return false;
	}
}

/*
 * The sequence number of an ACK or RST: snd_max, unless data went out past
 * the peer's right edge (a window it shrank, or a probe into a closed one);
 * then the edge. A receiver whose window is zero accepts an empty segment
 * only at rcv_nxt and drops the others with the ACK they carry (RFC 9293
 * 3.10.7.4; Linux 6.18 drops even our probe while its queue is full), so
 * ACKs sent from snd_max would never be read and both ends would wait.
 */
static inline uint32_t ctl_seq(const struct wp_tcp_conn *c)
{
	uint32_t edge = c->snd_una + c->snd_wnd;
	return can_send_state(c) && SEQ_GT(c->snd_max, edge) ? edge : c->snd_max;
}

static inline void send_ack(struct wp_tcp_conn *c)
{
	ctr_inc(c->st, WP_CTR_TCP_ACK_ONLY);
	wp_tcp_send_ctl(c, ctl_seq(c), 0);
}

/* Keepalive / zero-window probe: an old sequence number draws an ACK. */
static inline void send_probe(struct wp_tcp_conn *c)
{
	wp_tcp_send_ctl(c, c->snd_una - 1, 0);
}

static inline void send_rst_conn(struct wp_tcp_conn *c)
{
	wp_tcp_send_ctl(c, ctl_seq(c), TH_RST);
}

/* ---- Sender scoreboard and loss recovery ---- */

static inline struct txrec *rec_get(const struct wp_tcp_conn *c, uint32_t i)
{
	return &c->rec[(c->rec_head + i) & (c->st->rec_cap - 1)];
}

static inline uint32_t rec_len(const struct txrec *r)
{
	return r->end - r->seq;
}

static inline void rec_mark_lost(struct wp_tcp_conn *c, struct txrec *r, enum wp_ctr why)
{
	if (r->flags & (TR_SACKED | TR_LOST))
		return;
	r->flags |= TR_LOST;
	c->lost_out += rec_len(r);
	ctr_inc(c->st, why);
	if (r->flags & TR_RETRANS)
		ctr_inc(c->st, WP_CTR_TCP_LOST_RETRANSMIT);
}

/* Bytes deemed in the network (RFC 6675 "pipe"; RFC 8985 in-flight). */
static inline uint32_t pipe_bytes(const struct wp_tcp_conn *c)
{
	uint64_t sub = (uint64_t)c->sacked_out + c->lost_out;
	if (!c->sack_ok)
		sub += (uint64_t)c->dupacks * c->mss; /* NewReno: each dupack left the network */
	uint32_t out = c->snd_max - c->snd_una;
	return out > sub ? (uint32_t)(out - sub) : 0;
}

/* Retransmits one scoreboard record (lost, probe or rescue). */
static inline void retransmit_rec(struct wp_tcp_conn *c, struct txrec *r)
{
	if (r->flags & TR_LOST) {
		r->flags &= (uint8_t)~TR_LOST;
		c->lost_out -= rec_len(r);
	}
	wp_tcp_send_data(c, r->seq, rec_len(r), true);
	r->flags |= TR_RETRANS;
	r->xmit_us = (uint32_t)c->st->now_us;
}

/*
 * Tail-loss probe (RFC 8985 7): with SACK, data in flight and no probe
 * outstanding, a probe goes out after max(2 SRTT, 10 ms) (+ the minimum RTO
 * when one segment is in flight, as Linux does) unless the RTO comes first. Unlike RFC
 * 8985 it is also armed in recovery: a lost retransmission at the end of a
 * send-buffer-limited flight has no later segment for RACK to compare with.
 * Not after an RTO until an ACK makes progress (backoff 0 again).
 */
static inline void arm_pto(struct wp_tcp_conn *c)
{
	if (!c->sack_ok || !c->rec_n || c->tlp_out || c->backoff) {
		stop_timer(c, T_PTO);
		return;
	}
	uint64_t pto = WP_MAX(2ull * c->srtt_us, (uint64_t)PTO_MIN_US);
	if (c->rec_n == 1)
		pto += c->st->cfg.rto_min_us; /* the ACK may be delayed: as Linux, ~no probe */
	uint64_t when = c->st->now_us + pto;
	if (c->tdl[T_RTO] && when >= c->tdl[T_RTO]) {
		stop_timer(c, T_PTO);
		return;
	}
	wp_tcp_set_timer(c, T_PTO, when);
}

#endif /* WP_DP_NET_TCP_TCP_INT_H */
