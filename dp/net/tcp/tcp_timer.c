/*
 * Timers of the TCP stack. Each connection keeps an absolute deadline per
 * timer (retransmission, persist, delayed ACK, keepalive / FIN_WAIT_2,
 * RACK reordering, tail-loss probe) and one entry in a 1 ms timer wheel at
 * the earliest of them; the entry is lazy (stopping a timer only clears its
 * deadline) and a connection that fires early is simply rescheduled.
 * wp_tcp_timers(), called once per worker loop, walks the wheel, runs what
 * each expired timer calls for and ages the TIME_WAIT table. RTT estimation
 * is on the input side; what the loss timers mark lost is the scoreboard's
 * (tcp_recovery.c).
 */
#include "tcp_int.h"

/* ---- The wheel ---- */

static void wheel_insert(struct wp_tcp_conn *c, uint64_t when)
{
	struct wp_tcp_stack *st = c->st;
	uint64_t tick = (when + TICK_US - 1) / TICK_US;
	if (tick <= st->wheel_tick)
		tick = st->wheel_tick + 1;
	uint32_t *head = &st->wheel[tick & WHEEL_MASK];
	c->wexpire = when;
	c->wprev = NIL;
	c->wnext = *head;
	if (*head != NIL)
		st->conns[*head].wprev = c->idx;
	*head = c->idx;
	c->in_wheel = true;
	c->wslot = (uint32_t)(tick & WHEEL_MASK);
}

static void timer_sched(struct wp_tcp_conn *c)
{
	uint64_t next = 0;
	for (int t = 0; t < T_MAX; t++)
		if (c->tdl[t] && (!next || c->tdl[t] < next))
			next = c->tdl[t];
	if (!next) {
		wheel_unlink(c);
		return;
	}
	if (c->in_wheel && c->wexpire <= next)
		return; /* fires early and reschedules */
	wheel_unlink(c);
	wheel_insert(c, next);
}

void wp_tcp_set_timer(struct wp_tcp_conn *c, int t, uint64_t when)
{
	c->tdl[t] = when ? when : 1;
	if (!c->in_wheel || c->tdl[t] < c->wexpire) {
		wheel_unlink(c);
		wheel_insert(c, c->tdl[t]);
	}
}

static uint32_t cur_rto(const struct wp_tcp_conn *c)
{
	uint64_t r = (uint64_t)c->rto_us << WP_MIN(c->backoff, 20);
	return (uint32_t)WP_MIN(r, (uint64_t)c->st->cfg.rto_max_us);
}

void wp_tcp_arm_rto(struct wp_tcp_conn *c)
{
	wp_tcp_set_timer(c, T_RTO, c->st->now_us + cur_rto(c));
}

/* ---- What each timer does ---- */

static void rto_expired(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	if (c->state == WP_TCP_SYN_SENT || c->state == WP_TCP_SYN_RECEIVED) {
		uint8_t limit =
		        c->state == WP_TCP_SYN_SENT ? st->cfg.syn_retries : st->cfg.synack_retries;
		if (++c->retries > limit) {
			ctr_inc(st, WP_CTR_TCP_SYN_TIMEOUT);
			terminate(c, WP_TCP_CLOSE_TIMEOUT);
			return;
		}
		c->backoff++;
		c->syn_rexmit = true;
		ctr_inc(st, WP_CTR_TCP_SYN_RETRANSMIT);
		if (c->state == WP_TCP_SYN_SENT)
			wp_tcp_send_syn(c);
		else
			wp_tcp_send_synack(c);
		wp_tcp_arm_rto(c);
		return;
	}
	if (c->snd_una == c->snd_max || !can_send_state(c))
		return;
	/*
	 * A peer that answers with a zero window is alive, its buffer full:
	 * the retransmission is a window probe and does not count towards
	 * max_retries (Linux does the same), until the peer has been silent
	 * for twice rto_max (a live peer answers each probe, and the probes
	 * are at most rto_max apart).
	 */
	bool probe =
	        c->snd_wnd == 0 && st->now_us - c->last_rcv_us < 2 * (uint64_t)st->cfg.rto_max_us;
	if (probe)
		ctr_inc(st, WP_CTR_TCP_RTO_ZERO_WINDOW);
	else if (++c->retries > st->cfg.max_retries) {
		ctr_inc(st, WP_CTR_TCP_CONN_TIMEOUT);
		send_rst_conn(c);
		terminate(c, WP_TCP_CLOSE_TIMEOUT);
		return;
	}
	ctr_inc(st, WP_CTR_TCP_RTO_TIMEOUT);
	if (c->backoff == 0)
		c->ssthresh = WP_MAX((c->snd_max - c->snd_una) / 2, 2u * c->mss);
	c->cwnd = c->mss;
	c->in_recovery = false;
	c->dupacks = 0;
	c->recover = c->snd_max;
	c->rtt_active = false;
	c->tlp_out = false;
	stop_timer(c, T_REO);
	stop_timer(c, T_PTO);
	/*
	 * Everything not SACKed is lost. SACK marks survive the first expiry
	 * (as in Linux); a repeated one forgets them in case the receiver
	 * reneged (RFC 2018).
	 */
	bool unsacked = false;
	for (uint32_t i = 0; i < c->rec_n; i++) {
		struct txrec *r = rec_get(c, i);
		if (c->backoff && (r->flags & TR_SACKED)) {
			r->flags &= (uint8_t)~TR_SACKED;
			c->sacked_out -= rec_len(r);
		}
		if (!(r->flags & (TR_SACKED | TR_LOST))) {
			r->flags |= TR_LOST;
			c->lost_out += rec_len(r);
		}
		unsacked |= !(r->flags & TR_SACKED);
	}
	if (c->backoff < 20)
		c->backoff++;
	if (!unsacked && c->fin_queued && SEQ_GT(c->snd_max, c->fin_seq))
		wp_tcp_send_data(c, c->fin_seq, 0, true); /* only the FIN is missing */
	wp_tcp_output(c);
	if (probe) /* a live peer with its window closed: see PROBE_MAX_US */
		wp_tcp_set_timer(c, T_RTO, st->now_us + WP_MIN((uint64_t)cur_rto(c), PROBE_MAX_US));
	else
		wp_tcp_arm_rto(c);
}

/* RACK reordering window over: the segments it held back are lost now. */
static void reo_expired(struct wp_tcp_conn *c)
{
	if (!can_send_state(c) || !c->rec_n)
		return;
	wp_tcp_recovery_step(c, 0);
	wp_tcp_output(c);
}

/* Tail-loss probe: new data if the windows allow, else the last segment again. */
static void pto_expired(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	if (!can_send_state(c) || !c->rec_n || c->tlp_out)
		return;
	ctr_inc(st, WP_CTR_TCP_TLP_PROBE);
	c->tlp_out = true;
	uint32_t data_end = c->sbuf_seq + c->slen;
	int32_t rw = (int32_t)(c->snd_una + c->snd_wnd - c->snd_nxt);
	uint32_t avail = SEQ_LT(c->snd_nxt, data_end) ? data_end - c->snd_nxt : 0;
	uint32_t len = WP_MIN(WP_MIN(avail, seg_payload_max(c)), rw > 0 ? (uint32_t)rw : 0u);
	if (len && c->rec_n < st->rec_cap) {
		wp_tcp_send_data(c, c->snd_nxt, len, false);
	} else {
		for (uint32_t i = c->rec_n; i-- > 0;) {
			struct txrec *r = rec_get(c, i);
			if (!(r->flags & TR_SACKED)) {
				retransmit_rec(c, r);
				break;
			}
		}
	}
	wp_tcp_arm_rto(c);
}

static void persist_expired(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	uint32_t data_end = c->sbuf_seq + c->slen;
	bool pending =
	        SEQ_LT(c->snd_nxt, data_end) || (c->fin_queued && SEQ_LEQ(c->snd_nxt, c->fin_seq));
	if (c->snd_wnd || !pending || c->snd_max != c->snd_una) {
		wp_tcp_output(c);
		return;
	}
	ctr_inc(st, WP_CTR_TCP_PERSIST_PROBE);
	send_probe(c);
	if (c->persist_backoff < 20)
		c->persist_backoff++;
	uint64_t iv = (uint64_t)c->rto_us << c->persist_backoff;
	iv = WP_MIN(iv, (uint64_t)st->cfg.rto_max_us);
	if (st->now_us - c->last_rcv_us < 2 * (uint64_t)st->cfg.rto_max_us)
		iv = WP_MIN(iv, PROBE_MAX_US); /* it answers: see PROBE_MAX_US */
	wp_tcp_set_timer(c, T_PERSIST, st->now_us + iv);
}

static void keep_expired(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	if (c->state == WP_TCP_FIN_WAIT_2 && c->app_closed) {
		ctr_inc(st, WP_CTR_TCP_FIN_WAIT2_TIMEOUT);
		wp_tcp_conn_release(c);
		return;
	}
	if (!c->keep_idle_ms || (c->state != WP_TCP_ESTABLISHED && c->state != WP_TCP_CLOSE_WAIT))
		return;
	if (!c->keep_probes && st->now_us - c->last_rcv_us < (uint64_t)c->keep_idle_ms * 1000) {
		wp_tcp_set_timer(c, T_KEEP, c->last_rcv_us + (uint64_t)c->keep_idle_ms * 1000);
		return;
	}
	if (c->keep_probes >= c->keep_max) {
		ctr_inc(st, WP_CTR_TCP_KEEPALIVE_TIMEOUT);
		send_rst_conn(c);
		terminate(c, WP_TCP_CLOSE_TIMEOUT);
		return;
	}
	ctr_inc(st, WP_CTR_TCP_KEEPALIVE_PROBE);
	send_probe(c);
	c->keep_probes++;
	wp_tcp_set_timer(c, T_KEEP, st->now_us + (uint64_t)c->keep_intvl_ms * 1000);
}

static void delack_expired(struct wp_tcp_conn *c)
{
	if (c->ack_pending && synchronized(c)) {
		ctr_inc(c->st, WP_CTR_TCP_DELAYED_ACK);
		c->pingpong = false; /* no answer came in time: ACK at once again */
		send_ack(c);
	}
}

/* ---- Running the wheel ---- */

/* Runs the connection's due timers in a fixed order; stops once it died. */
static void conn_timers(struct wp_tcp_conn *c)
{
	static const struct {
		int t;
		void (*expired)(struct wp_tcp_conn *c);
	} order[] = {
	        {T_RTO, rto_expired}, {T_PERSIST, persist_expired}, {T_REO, reo_expired},
	        {T_PTO, pto_expired}, {T_DELACK, delack_expired},   {T_KEEP, keep_expired},
	};
	uint64_t now = c->st->now_us;

	for (size_t i = 0; i < WP_ARRAY_SIZE(order); i++) {
		int t = order[i].t;

		if (!c->tdl[t] || c->tdl[t] > now)
			continue;
		c->tdl[t] = 0;
		order[i].expired(c);
		if (c->dead)
			return;
	}
	timer_sched(c);
}

static void tw_expire(struct wp_tcp_stack *st)
{
	while (st->tw_fill && st->tw[st->tw_head].expire_us <= st->now_us) {
		struct tw_entry *e = &st->tw[st->tw_head];
		if (e->live)
			wp_tcp_tw_unhash(st, e);
		st->tw_head = (st->tw_head + 1) % st->tw_cap;
		st->tw_fill--;
	}
}

void wp_tcp_timers(struct wp_tcp_stack *st, uint64_t now_us)
{
	enter(st, now_us);
	uint64_t target = st->now_us / TICK_US;
	if (target > st->wheel_tick) {
		uint64_t n = WP_MIN(target - st->wheel_tick, (uint64_t)WHEEL_SLOTS);
		uint32_t fire = NIL;
		for (uint64_t i = 1; i <= n; i++) {
			uint32_t slot = (uint32_t)((st->wheel_tick + i) & WHEEL_MASK);
			uint32_t ci = st->wheel[slot];
			while (ci != NIL) {
				struct wp_tcp_conn *c = &st->conns[ci];
				ci = c->wnext;
				if (c->wexpire <= st->now_us) {
					wheel_unlink(c);
					c->fire_next = fire;
					fire = c->idx;
				}
			}
		}
		st->wheel_tick = target;
		while (fire != NIL) {
			struct wp_tcp_conn *c = &st->conns[fire];
			fire = c->fire_next;
			c->fire_next = NIL;
			if (!c->dead)
				conn_timers(c);
		}
	}
	tw_expire(st);
	leave(st);
}
