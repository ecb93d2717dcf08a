/*
 * libFuzzer driver for the HTTP/1.1 proxy session (dp/l7/h1proxy.c): the
 * input is a script of records <op:1><arg:1><len:1><bytes:len> played
 * against one proxy core with small pools, as its host would: client bytes
 * into either of two sessions, upstream bytes into any transport the proxy
 * opened, connects, connect failures, EOFs on both sides, partial drains of
 * every output buffer, clock ticks past every timeout, session closes. The
 * routes are a compiled HTTPRoute with weighted backends, header
 * modifiers, URLRewrite, a redirect and a mirror, so every branch of the
 * session can be reached. Checks beyond memory safety (ASan, UBSan, LSan):
 *   - what the proxy sends to an upstream parses, with llhttp in its strict
 *     default mode, as a sequence of HTTP/1.1 requests (raw bytes only after
 *     an Upgrade or CONNECT head): nothing malformed reaches a backend,
 *     whatever the client sent;
 *   - raw bytes after an Upgrade / CONNECT head reach that upstream only
 *     once it switched (l7_h1p_upgrade_switched moved inside its
 *     wp_h1p_up_in()): a backend that declines the upgrade must never parse
 *     them as requests the proxy did not route (issue 19);
 *   - the host contract holds: up_close is never called twice or after a
 *     failure, and when the core is destroyed every transport it opened has
 *     been closed or failed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

#include "h1proxy.h"
#include "wp/counters.h"
#include "wp/route.h"

#include "proxy_fixture.h"

enum op {
	OP_OPEN,       /* open session <arg & 1> if it is not open */
	OP_DOWN_IN,    /* <bytes> from the client of session <arg & 1> */
	OP_DOWN_DRAIN, /* the client reads up to <arg> * 64 bytes */
	OP_DOWN_EOF,   /* the client half-closes */
	OP_CLOSE,      /* the host closes session <arg & 1> */
	OP_UP_CONNECT, /* transport <arg> connects */
	OP_UP_FAIL,    /* transport <arg> fails (refused, reset) */
	OP_UP_IN,      /* <bytes> from the upstream of transport <arg> */
	OP_UP_DRAIN,   /* transport <arg> sends up to <bytes[0]> * 64 bytes */
	OP_UP_EOF,     /* the upstream of transport <arg> half-closes */
	OP_TICK,       /* the clock moves <arg> * 250 ms; the core's timers run */
	OP_N
};

struct transport {
	struct wp_h1p_up *up;
	bool connected, closed;
	bool switched;           /* the proxy took a 101 / CONNECT 2xx from it */
	struct pfx_reqcheck req; /* what the proxy sent so far, as requests */
};

static struct transport tr[256];
static unsigned n_tr;
static struct wp_h1p_sess *sess[2];
static uint64_t ctr[WP_CTR_MAX];
static struct wp_h1p_core *core;
static uint64_t now_ms;

static struct wp_h1p_cfg cfg = {
        .buf_size = 4096, /* the smallest the core takes */
        .max_sessions = 2,
        .max_upstreams = 6,
        .max_idle_per_ep = 2,
        .idle_timeout_ms = 5000,
        .max_mirrors = 2,
        .mirror_timeout_ms = 3000,
        .down_idle_timeout_ms = 20000,
};

static int f_open(void *host, struct wp_h1p_up *up, const struct wp_snap_endpoint *ep)
{
	struct transport *t;

	(void)host;
	(void)ep;
	if (n_tr == WP_ARRAY_SIZE(tr))
		return -EMFILE;
	t = &tr[n_tr++];
	memset(t, 0, sizeof(*t));
	t->up = up;
	pfx_reqcheck_init(&t->req);
	up->io = t;
	return 0;
}

static void f_close(void *host, struct wp_h1p_up *up)
{
	struct transport *t = up->io;

	(void)host;
	assert_true(t != NULL && !t->closed);
	t->closed = true;
}

static void f_ready(void *host, struct wp_h1p_up *up)
{
	(void)host;
	(void)up;
}

static void f_wake(void *host, struct wp_h1p_sess *s)
{
	(void)host;
	(void)s;
}

static const struct wp_h1p_ops ops = {
        .up_open = f_open, .up_close = f_close, .up_ready = f_ready, .wake = f_wake};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cfg.lim = wp_h1p_default_cfg.lim; /* the default config's parse limits */
	pfx_routes_init(ctr);
	return 0;
}

static struct transport *pick(uint8_t arg)
{
	struct transport *t;

	if (n_tr == 0)
		return NULL;
	t = &tr[arg % n_tr];
	return t->closed ? NULL : t;
}

/* What a host does after any call: drain what the proxy queued for the
 * upstreams it can write to, and close sessions that are finished. */
static void settle(void)
{
	for (int i = 0; i < 2; i++)
		if (sess[i] && wp_h1p_down_finished(sess[i])) {
			const uint8_t *p;

			while (wp_h1p_down_peek(sess[i], &p) > 0)
				wp_h1p_down_consume(sess[i], wp_h1p_down_peek(sess[i], &p));
			wp_h1p_sess_close(sess[i]);
			sess[i] = NULL;
		}
}

static void up_drain(struct transport *t, size_t max)
{
	const uint8_t *p;
	size_t n = wp_h1p_up_peek(t->up, &p), raw;

	if (n > max)
		n = max;
	if (n == 0)
		return;
	raw = t->req.raw ? n : 0;
	pfx_reqcheck_feed(&t->req, p, n);
	if (!raw && t->req.raw) /* the bytes past the Upgrade / CONNECT head */
		raw = (size_t)(p + n - (const uint8_t *)llhttp_get_error_pos(&t->req.parser));
	if (raw > 0 && !t->switched) {
		fprintf(stderr, "%zu raw bytes to an upstream that did not switch\n", raw);
		abort();
	}
	wp_h1p_up_consume(t->up, n);
}

static void step(unsigned op, uint8_t arg, const uint8_t *d, size_t len)
{
	struct wp_h1p_sess **s = &sess[arg & 1];
	struct transport *t;
	const uint8_t *p;
	size_t n;

	switch (op) {
	case OP_OPEN:
		if (*s == NULL)
			*s = wp_h1p_sess_open(core, pfx_table, NULL, "reviews:9080", 12);
		break;
	case OP_DOWN_IN:
		if (*s) {
			wp_h1p_sess_set_routes(*s, pfx_table);
			(void)wp_h1p_down_in(*s, d, len);
		}
		break;
	case OP_DOWN_DRAIN:
		if (*s && (n = wp_h1p_down_peek(*s, &p)) > 0)
			wp_h1p_down_consume(*s, WP_MIN(n, (size_t)arg * 64 + 1));
		break;
	case OP_DOWN_EOF:
		if (*s)
			wp_h1p_down_eof(*s);
		break;
	case OP_CLOSE:
		if (*s) {
			wp_h1p_sess_close(*s);
			*s = NULL;
		}
		break;
	case OP_UP_CONNECT:
		if ((t = pick(arg)) && !t->connected) {
			t->connected = true;
			wp_h1p_up_connected(t->up);
		}
		break;
	case OP_UP_FAIL:
		if ((t = pick(arg))) {
			t->closed = true; /* the host dropped it before telling */
			for (int i = 0; i < 2; i++)
				if (sess[i])
					wp_h1p_sess_set_routes(sess[i], pfx_table);
			wp_h1p_up_failed(t->up);
		}
		break;
	case OP_UP_IN:
		if ((t = pick(arg)) && t->connected) {
			uint64_t sw = ctr[WP_CTR_L7_H1P_UPGRADE_SWITCHED];

			(void)wp_h1p_up_in(t->up, d, len);
			t->switched |= ctr[WP_CTR_L7_H1P_UPGRADE_SWITCHED] != sw;
		}
		break;
	case OP_UP_DRAIN:
		if ((t = pick(arg)) && t->connected)
			up_drain(t, len ? (size_t)d[0] * 64 + 1 : SIZE_MAX);
		break;
	case OP_UP_EOF:
		if ((t = pick(arg)) && t->connected)
			wp_h1p_up_eof(t->up);
		break;
	case OP_TICK:
		now_ms += (uint64_t)arg * 250;
		wp_h1p_core_clock(core, now_ms);
		(void)wp_h1p_core_tick(core, now_ms);
		break;
	default:
		break;
	}
	settle();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	memset(ctr, 0, sizeof(ctr));
	n_tr = 0;
	now_ms = 1000;
	core = wp_h1p_core_create(&cfg, &ops, NULL, &pfx_rcore, 99, ctr);
	if (core == NULL)
		abort();
	wp_h1p_core_clock(core, now_ms);
	pfx_play(data, size, OP_N, step);
	/* what is still queued for a connected upstream goes out and is checked */
	for (unsigned i = 0; i < n_tr; i++)
		if (!tr[i].closed && tr[i].connected)
			up_drain(&tr[i], SIZE_MAX);
	for (int i = 0; i < 2; i++)
		if (sess[i]) {
			wp_h1p_sess_close(sess[i]);
			sess[i] = NULL;
		}
	wp_h1p_core_destroy(core);
	core = NULL;
	for (unsigned i = 0; i < n_tr; i++)
		if (!tr[i].closed)
			abort(); /* a transport the proxy opened and forgot */
	return 0;
}
