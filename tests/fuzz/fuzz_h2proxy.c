/*
 * libFuzzer driver for the h2c / gRPC proxy session (dp/l7/h2proxy.c): the
 * input is a script of records <op:1><arg:1><len:1><bytes:len> played
 * against one proxy core with small pools, rings and header limits, as its
 * host would. Each proxy session has a real nghttp2 CLIENT session in
 * front of it, so the script gets past the preface and the framing: it
 * submits requests whose method, path, authority and fields are cut from
 * the record bytes (gRPC content-type, content-length, END_STREAM or not),
 * request DATA and trailers, RST_STREAMs and GOAWAYs, and it can also throw
 * raw bytes at wp_h2p_down_in(). Sessions are opened with or without
 * WP_H2P_SESS_H1_UPSTREAM. Behind the proxy, each transport it opens is
 * either an HTTP/1.1 backend (response bytes come raw from the script) or,
 * for h2c, a real nghttp2 SERVER session fed what the proxy sends, which
 * answers with script-made response heads, DATA, trailers, RST_STREAMs and
 * GOAWAYs (raw garbage can be thrown at wp_h2p_up_in() too). Connects,
 * connect failures, EOFs, partial drains both ways, clock ticks past every
 * timeout and shutdown drains are ops of their own. Checks beyond memory
 * safety (ASan, UBSan, LSan):
 *   - what the proxy sends to an HTTP/1.1 upstream parses, with llhttp in
 *     its strict default mode, as a sequence of HTTP/1.1 requests;
 *   - what the proxy sends to a client (and to an h2c upstream) never makes
 *     that nghttp2 session fail (nghttp2_session_mem_recv < 0) nor end the
 *     connection with an error GOAWAY of its own, nor makes the client reset
 *     a stream the script did not ask it to, unless the script threw
 *     raw bytes into that session (then it is no longer checked);
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
#include <nghttp2/nghttp2.h>

#include "h2proxy.h"
#include "wp/counters.h"
#include "wp/route.h"

#include "proxy_fixture.h"

enum op {
	OP_OPEN,       /* open session <arg & 1>; <arg & 2>: HTTP/1.1 upstreams */
	OP_CL_REQ,     /* client of session <arg & 1> submits a request (see cl_req) */
	OP_CL_DATA,    /* ... stream <arg >> 1>: <bytes[0]> bit 0 the end, bit 1 the rest is a
	                * trailer value (else body bytes) */
	OP_CL_RST,     /* ... resets stream <arg >> 1> with code <bytes[0]> */
	OP_CL_GOAWAY,  /* ... sends GOAWAY with code <arg >> 1> */
	OP_CL_RAW,     /* <bytes> straight into wp_h2p_down_in (garbage frames) */
	OP_CL_PUMP,    /* client <-> proxy, the proxy's output in pieces of <bytes[0]>*64+1 */
	OP_DOWN_EOF,   /* the client half-closes */
	OP_CLOSE,      /* the host closes session <arg & 1> */
	OP_UP_CONNECT, /* transport <arg> connects */
	OP_UP_FAIL,    /* transport <arg> fails (refused, reset) */
	OP_UP_EOF,     /* the upstream of transport <arg> half-closes */
	OP_UP_IN,      /* <bytes> from the upstream of transport <arg> (raw; what an
	                * HTTP/1.1 one does not take is held and offered again) */
	OP_UP_DRAIN,   /* transport <arg> sends up to <bytes[0]> * 64 + 1 bytes */
	OP_SRV_RESP,   /* h2c backend of transport <arg> answers (see srv_resp) */
	OP_SRV_RST,    /* ... resets stream <bytes[0]> with code <bytes[1]> */
	OP_SRV_GOAWAY, /* ... sends GOAWAY (last stream id <bytes[0]>, code <bytes[1]>) */
	OP_TICK,       /* the clock moves <arg> * 250 ms; the core's timers run */
	OP_DRAIN,      /* shutting down: session <arg & 1> (GOAWAY), or the core (<arg & 2>) */
	OP_N
};

#define N_SLOTS 8
#define BODY    512

/* A stream's body as a data provider source: bytes queued by the script,
 * then (eof) the end, with one trailer field when trl_n is set. */
struct body {
	int32_t sid; /* 0: slot free */
	bool eof, submitted;
	uint8_t buf[BODY];
	size_t len;
	uint8_t trl_v[32];
	size_t trl_n;
};

struct csess {
	struct wp_h2p_sess *s;
	nghttp2_session *cl;
	bool h1, tainted, stall, our_goaway;
	unsigned rst_ours, rst_sent; /* RST_STREAMs the script asked for / the client sent */
	struct body b[N_SLOTS];
};

struct transport {
	struct wp_h2p_up *up;
	bool connected, closed, h1, tainted, our_goaway;
	struct pfx_reqcheck req; /* HTTP/1.1: what the proxy sent so far, as requests */
	nghttp2_session *srv;    /* h2c: the backend */
	struct body b[N_SLOTS];
	uint8_t held[1024]; /* HTTP/1.1: response bytes the proxy did not take yet */
	size_t n_held;
};

static struct transport tr[64];
static unsigned n_tr;
static struct csess sess[2];
static uint64_t ctr[WP_CTR_MAX];
static struct wp_h2p_core *core;
static uint64_t now_ms;
static nghttp2_session_callbacks *cl_cbs, *srv_cbs;
static bool trace; /* H2FZ_TRACE set: what the client gets, on stderr (writing seeds) */

static struct wp_h2p_cfg cfg = {
        .max_sessions = 2,
        .max_upstreams = 4,
        .max_streams = 6,
        .max_down_streams = 4,
        .max_up_streams = 2,
        .stream_buf = 1024, /* the smallest the core takes */
        .window = 1024,
        .max_header_bytes = 512,
        .max_headers = 12,
        .idle_timeout_ms = 5000,
        .max_idle_per_ep = 1,
        .max_idle_h1_per_ep = 1,
        .rst_per_sec = 6,
        .down_idle_timeout_ms = 20000,
        .mirror_timeout_ms = 3000,
};

/* ---- bodies (both nghttp2 peers) -------------------------------------------------------- */

static struct body *body_new(struct body *b, int32_t sid)
{
	for (int i = 0; i < N_SLOTS; i++)
		if (b[i].sid == 0) {
			memset(&b[i], 0, sizeof(b[i]));
			b[i].sid = sid;
			return &b[i];
		}
	return NULL;
}

static struct body *body_of(struct body *b, int32_t sid)
{
	for (int i = 0; i < N_SLOTS; i++)
		if (b[i].sid == sid && sid != 0)
			return &b[i];
	return NULL;
}

/* the <k>th slot in use (k modulo how many are) */
static struct body *body_pick(struct body *b, unsigned k)
{
	unsigned n = 0;

	for (int i = 0; i < N_SLOTS; i++)
		n += b[i].sid != 0;
	if (n == 0)
		return NULL;
	k %= n;
	for (int i = 0; i < N_SLOTS; i++)
		if (b[i].sid != 0 && k-- == 0)
			return &b[i];
	return NULL;
}

static void body_add(struct body *b, const uint8_t *d, size_t len)
{
	len = WP_MIN(len, BODY - b->len);
	memcpy(b->buf + b->len, d, len);
	b->len += len;
}

static ssize_t body_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct body *b = src->ptr;
	size_t n;

	(void)ud;
	if (b == NULL || b->sid != sid)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	n = WP_MIN(len, b->len);
	memcpy(buf, b->buf, n);
	memmove(b->buf, b->buf + n, b->len - n);
	b->len -= n;
	if (b->len > 0)
		return (ssize_t)n;
	if (!b->eof)
		return n ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	if (b->trl_n) {
		nghttp2_nv t = {(uint8_t *)"x-trl", b->trl_v, 5, b->trl_n, NGHTTP2_NV_FLAG_NONE};

		if (nghttp2_submit_trailer(ng, sid, &t, 1) == 0)
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
	}
	return (ssize_t)n;
}

/* Starts or resumes the DATA of <b> on <ng>. */
static void body_kick(nghttp2_session *ng, struct body *b)
{
	nghttp2_data_provider prd = {.source.ptr = b, .read_callback = body_read};

	if (!b->submitted) {
		if (nghttp2_submit_data(ng, NGHTTP2_FLAG_END_STREAM, b->sid, &prd) == 0)
			b->submitted = true;
	} else {
		(void)nghttp2_session_resume_data(ng, b->sid);
	}
}

/* Cuts <d> into '\n'-separated tokens. */
static size_t tokens(const uint8_t *d, size_t len, const uint8_t **tok, size_t *tl, size_t max)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i <= len && n < max; i++)
		if (i == len || d[i] == '\n') {
			tok[n] = d + start;
			tl[n++] = i - start;
			start = i + 1;
		}
	return n;
}

static void nv_put(nghttp2_nv *nv, const void *n, size_t nl, const void *v, size_t vl)
{
	nv->name = (uint8_t *)n;
	nv->namelen = nl;
	nv->value = (uint8_t *)v;
	nv->valuelen = vl;
	nv->flags = NGHTTP2_NV_FLAG_NONE;
}

/* ---- the clients ------------------------------------------------------------------------ */

static int cl_data(nghttp2_session *ng, uint8_t fl, int32_t sid, const uint8_t *d, size_t len,
                   void *ud)
{
	struct csess *c = ud;

	(void)fl;
	(void)d;
	if (!c->stall)
		(void)nghttp2_session_consume(ng, sid, len);
	return 0;
}

static int cl_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *n, size_t nl,
                     const uint8_t *v, size_t vl, uint8_t fl, void *ud)
{
	(void)ng;
	(void)fl;
	fprintf(stderr, "client %d stream %d: %.*s: %.*s\n", (int)((struct csess *)ud - sess),
	        f->hd.stream_id, (int)nl, (const char *)n, (int)vl, (const char *)v);
	return 0;
}

static int cl_frame(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	(void)ng;
	fprintf(stderr, "client %d gets frame %u flags %x stream %d length %zu\n",
	        (int)((struct csess *)ud - sess), f->hd.type, f->hd.flags, f->hd.stream_id,
	        f->hd.length);
	return 0;
}

static int cl_invalid(nghttp2_session *ng, const nghttp2_frame *f, int err, void *ud)
{
	(void)ng;
	fprintf(stderr, "client %d: invalid frame %u stream %d: %s\n",
	        (int)((struct csess *)ud - sess), f->hd.type, f->hd.stream_id,
	        nghttp2_strerror(err));
	return 0;
}

static int cl_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *ud)
{
	struct csess *c = ud;
	struct body *b = body_of(c->b, sid);

	(void)ng;
	if (trace)
		fprintf(stderr, "client %d stream %d closed (%u)\n", (int)(c - sess), sid, code);
	if (b)
		b->sid = 0;
	return 0;
}

static int peer_sent(nghttp2_session *ng, const nghttp2_frame *f, bool tainted, bool ours,
                     const char *who)
{
	(void)ng;
	if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR && !tainted &&
	    !ours) {
		fprintf(stderr, "%s ends the connection: GOAWAY %s (%.*s)\n", who,
		        nghttp2_http2_strerror(f->goaway.error_code),
		        (int)f->goaway.opaque_data_len, (const char *)f->goaway.opaque_data);
		abort();
	}
	return 0;
}

static int cl_sent(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct csess *c = ud;

	/* the client resets a stream on its own only when the proxy's answer
	 * on it breaks the protocol (bad fields, flow control, framing) */
	if (f->hd.type == NGHTTP2_RST_STREAM && ++c->rst_sent > c->rst_ours && !c->tainted) {
		fprintf(stderr, "the client resets stream %d on its own: %s\n", f->hd.stream_id,
		        nghttp2_http2_strerror(f->rst_stream.error_code));
		abort();
	}
	return peer_sent(ng, f, c->tainted, c->our_goaway, "the client");
}

/*
 * A request: <bytes[0]> flags (bit 0 END_STREAM with the head, bit 1
 * content-type application/grpc, bit 2 a content-length of <bytes[1]> >> 4,
 * bits 3-5 the method (7: from the first token), bit 6 the path from the
 * next token instead of a fixed one of <bytes[1]>, bit 7 :authority from
 * the next token; <bytes[1]> bit 3: no :authority);
 * the rest '\n'-separated tokens, then name / value pairs.
 */
static void cl_req(struct csess *c, const uint8_t *d, size_t len)
{
	static const char *methods[] = {"GET",    "POST",    "HEAD", "PUT",
	                                "DELETE", "OPTIONS", "GET",  "POST"};
	static const char *paths[] = {"/",  "/split/a", "/go/x", "/m/y?q=1",
	                              "/r", "/split",   "/mq",   "*"};
	uint8_t fl = len ? d[0] : 0, sel = len > 1 ? d[1] : 0;
	const uint8_t *tok[16];
	size_t tl[16], nt = len > 2 ? tokens(d + 2, len - 2, tok, tl, 16) : 0, k = 0, n = 0;
	nghttp2_nv nv[16];
	char clen[8];
	nghttp2_data_provider prd = {.read_callback = body_read};
	struct body *b = NULL;
	int32_t sid;
	const char *m = methods[(fl >> 3) & 7];

	if (m) {
		nv_put(&nv[n++], ":method", 7, m, strlen(m));
	} else if (k < nt) {
		nv_put(&nv[n++], ":method", 7, tok[k], tl[k]);
		k++;
	}
	nv_put(&nv[n++], ":scheme", 7, "http", 4);
	if ((fl & 0x40) && k < nt) {
		nv_put(&nv[n++], ":path", 5, tok[k], tl[k]);
		k++;
	} else {
		nv_put(&nv[n++], ":path", 5, paths[sel & 7], strlen(paths[sel & 7]));
	}
	if ((fl & 0x80) && k < nt) {
		nv_put(&nv[n++], ":authority", 10, tok[k], tl[k]);
		k++;
	} else if (!(sel & 8)) {
		nv_put(&nv[n++], ":authority", 10, "reviews:9080", 12);
	}
	if (fl & 2) {
		nv_put(&nv[n++], "content-type", 12, "application/grpc", 16);
		nv_put(&nv[n++], "te", 2, "trailers", 8);
	}
	if (fl & 4) {
		snprintf(clen, sizeof(clen), "%u", (unsigned)(sel >> 4));
		nv_put(&nv[n++], "content-length", 14, clen, strlen(clen));
	}
	for (; k + 1 < nt && n < WP_ARRAY_SIZE(nv); k += 2)
		nv_put(&nv[n++], tok[k], tl[k], tok[k + 1], tl[k + 1]);
	if (!(fl & 1)) {
		b = body_new(c->b, -1);
		if (!b)
			return;
		prd.source.ptr = b;
		b->submitted = true;
	}
	sid = nghttp2_submit_request(c->cl, NULL, nv, n, b ? &prd : NULL, NULL);
	if (b)
		b->sid = sid > 0 ? sid : 0;
}

/* Client output into the proxy, the proxy's output (pieces of <piece>)
 * into the client, until nothing moves. */
static void cl_pump(struct csess *c, size_t piece)
{
	for (int round = 0; round < 64 && c->s; round++) {
		bool moved = false;
		const uint8_t *p;
		ssize_t n;
		size_t k;

		while (c->s && (n = nghttp2_session_mem_send(c->cl, &p)) > 0) {
			(void)wp_h2p_down_in(c->s, p, (size_t)n);
			moved = true;
		}
		if (n < 0)
			c->tainted = true; /* the client gave up on its own */
		if (c->s && (k = wp_h2p_down_peek(c->s, &p)) > 0) {
			k = WP_MIN(k, piece);
			if (trace) {
				fprintf(stderr, "to client %d:", (int)(c - sess));
				for (size_t i = 0; i < k; i++)
					fprintf(stderr, " %02x", p[i]);
				fprintf(stderr, "\n");
			}
			n = nghttp2_session_mem_recv(c->cl, p, k);
			if (n < 0 && !c->tainted) {
				fprintf(stderr, "the client fails on the proxy's output: %s\n",
				        nghttp2_strerror((int)n));
				abort();
			}
			wp_h2p_down_consume(c->s, k);
			moved = true;
		}
		if (!moved)
			break;
	}
}

/* ---- the upstreams ---------------------------------------------------------------------- */

static int srv_begin(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct transport *t = ud;

	(void)ng;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
		(void)body_new(t->b, f->hd.stream_id);
	return 0;
}

static int srv_data(nghttp2_session *ng, uint8_t fl, int32_t sid, const uint8_t *d, size_t len,
                    void *ud)
{
	(void)fl;
	(void)d;
	(void)ud;
	(void)nghttp2_session_consume(ng, sid, len);
	return 0;
}

static int srv_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *ud)
{
	struct transport *t = ud;
	struct body *b = body_of(t->b, sid);

	(void)ng;
	(void)code;
	if (b)
		b->sid = 0;
	return 0;
}

static int srv_sent(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct transport *t = ud;

	return peer_sent(ng, f, t->tainted, t->our_goaway, "an h2c upstream");
}

static int f_open(void *host, struct wp_h2p_up *up, const struct wp_snap_endpoint *ep)
{
	struct transport *t;

	(void)host;
	(void)ep;
	if (n_tr == WP_ARRAY_SIZE(tr))
		return -EMFILE;
	t = &tr[n_tr++];
	memset(t, 0, sizeof(*t));
	t->up = up;
	t->h1 = up->h1;
	if (t->h1) {
		pfx_reqcheck_init(&t->req);
	} else {
		nghttp2_option *o;

		if (nghttp2_option_new(&o) != 0)
			abort();
		nghttp2_option_set_no_auto_window_update(o, 1);
		if (nghttp2_session_server_new2(&t->srv, srv_cbs, t, o) != 0)
			abort();
		nghttp2_option_del(o);
		nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 3}};

		(void)nghttp2_submit_settings(t->srv, NGHTTP2_FLAG_NONE, iv, 1);
	}
	up->io = t;
	return 0;
}

static void f_close(void *host, struct wp_h2p_up *up)
{
	struct transport *t = up->io;

	(void)host;
	assert_true(t != NULL && !t->closed);
	t->closed = true;
}

static const struct wp_h2p_ops ops = {.up_open = f_open, .up_close = f_close};

static struct transport *pick(uint8_t arg)
{
	struct transport *t;

	if (n_tr == 0)
		return NULL;
	t = &tr[arg % n_tr];
	return t->closed ? NULL : t;
}

/* The upstream's bytes (an h2c backend's answers) into the proxy. */
static void srv_out(struct transport *t)
{
	const uint8_t *p;
	ssize_t n;

	for (int i = 0; i < 16 && !t->closed && t->srv; i++) {
		n = nghttp2_session_mem_send(t->srv, &p);
		if (n <= 0)
			break;
		if (trace)
			fprintf(stderr, "from h2c upstream %d: %zd bytes\n", (int)(t - tr), n);
		(void)wp_h2p_up_in(t->up, p, (size_t)n);
	}
}

/* Transport <t> sends up to <max> bytes of what the proxy queued for it
 * (an h2c backend's answers go back at once). */
static void up_drain(struct transport *t, size_t max)
{
	for (int round = 0; round < 16 && max > 0 && !t->closed; round++) {
		const uint8_t *p;
		size_t n = wp_h2p_up_peek(t->up, &p);
		ssize_t r;

		if (t->closed) /* the peek may have closed it */
			return;
		n = WP_MIN(n, max);
		if (n == 0)
			return;
		max -= n;
		if (t->h1) {
			if (trace)
				fprintf(stderr, "to upstream %d: %.*s\n", (int)(t - tr), (int)n,
				        (const char *)p);
			pfx_reqcheck_feed(&t->req, p, n);
			wp_h2p_up_consume(t->up, n);
			continue;
		}
		if (trace)
			fprintf(stderr, "to h2c upstream %d: %zu bytes\n", (int)(t - tr), n);
		r = nghttp2_session_mem_recv(t->srv, p, n);
		if (r < 0 && !t->tainted) {
			fprintf(stderr, "an h2c upstream fails on the proxy's output: %s\n",
			        nghttp2_strerror((int)r));
			abort();
		}
		wp_h2p_up_consume(t->up, n);
		srv_out(t);
	}
}

/*
 * The h2c backend answers stream <bytes[0] >> 3> of the ones it has:
 * <bytes[0]> bit 0 the head ends the stream, bit 1 head is trailers (no
 * :status), bit 2 the body ends after these bytes; the rest '\n'-separated
 * tokens: :status, name / value pairs, then the last token is body.
 */
static void srv_resp(struct transport *t, const uint8_t *d, size_t len)
{
	uint8_t fl = len ? d[0] : 0;
	struct body *b = body_pick(t->b, fl >> 3);
	const uint8_t *tok[16];
	size_t tl[16], nt = len > 1 ? tokens(d + 1, len - 1, tok, tl, 16) : 0, k = 0, n = 0;
	nghttp2_nv nv[12];

	if (!b)
		return;
	if (!(fl & 2)) {
		if (nt > 0)
			nv_put(&nv[n++], ":status", 7, tok[k], tl[k]), k++;
		else
			nv_put(&nv[n++], ":status", 7, "200", 3);
	}
	for (; k + 1 < nt && n < WP_ARRAY_SIZE(nv); k += 2)
		nv_put(&nv[n++], tok[k], tl[k], tok[k + 1], tl[k + 1]);
	if (!b->submitted || (fl & 2))
		(void)nghttp2_submit_headers(t->srv, (fl & 1) ? NGHTTP2_FLAG_END_STREAM : 0, b->sid,
		                             NULL, nv, n, NULL);
	if (k < nt)
		body_add(b, tok[k], tl[k]);
	if (fl & 4)
		b->eof = true;
	if (!(fl & 1))
		body_kick(t->srv, b);
}

/* ---- the script ------------------------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	pfx_routes_init(ctr);
	if (nghttp2_session_callbacks_new(&cl_cbs) != 0 ||
	    nghttp2_session_callbacks_new(&srv_cbs) != 0)
		abort();
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cl_cbs, cl_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cl_cbs, cl_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cl_cbs, cl_sent);
	trace = getenv("H2FZ_TRACE") != NULL;
	if (trace) {
		nghttp2_session_callbacks_set_on_header_callback(cl_cbs, cl_header);
		nghttp2_session_callbacks_set_on_invalid_header_callback(cl_cbs, cl_header);
		nghttp2_session_callbacks_set_on_frame_recv_callback(cl_cbs, cl_frame);
		nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cl_cbs, cl_invalid);
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(srv_cbs, srv_begin);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(srv_cbs, srv_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(srv_cbs, srv_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(srv_cbs, srv_sent);
	return 0;
}

static void sess_end(struct csess *c)
{
	wp_h2p_sess_close(c->s);
	c->s = NULL;
	nghttp2_session_del(c->cl);
	c->cl = NULL;
}

/* What a host does after any call: close sessions that are finished. */
static void settle(void)
{
	for (int i = 0; i < 2; i++)
		if (sess[i].s && wp_h2p_down_finished(sess[i].s)) {
			cl_pump(&sess[i], SIZE_MAX);
			if (sess[i].s && wp_h2p_down_finished(sess[i].s))
				sess_end(&sess[i]);
		}
}

static void step(unsigned op, uint8_t arg, const uint8_t *d, size_t len)
{
	struct csess *c = &sess[arg & 1];
	struct transport *t;
	struct body *b;
	size_t n;

	switch (op) {
	case OP_OPEN:
		if (c->s == NULL) {
			nghttp2_option *o;

			c->s = wp_h2p_sess_open(core, pfx_table, NULL, "reviews:9080", 12,
			                        (arg & 2) ? WP_H2P_SESS_H1_UPSTREAM : 0);
			if (!c->s)
				break;
			memset(c->b, 0, sizeof(c->b));
			c->h1 = (arg & 2) != 0;
			c->tainted = c->stall = c->our_goaway = false;
			c->rst_ours = c->rst_sent = 0;
			if (nghttp2_option_new(&o) != 0)
				abort();
			nghttp2_option_set_no_auto_window_update(o, 1);
			if (nghttp2_session_client_new2(&c->cl, cl_cbs, c, o) != 0)
				abort();
			nghttp2_option_del(o);
			(void)nghttp2_submit_settings(c->cl, NGHTTP2_FLAG_NONE, NULL, 0);
		}
		break;
	case OP_CL_REQ:
		if (c->s)
			cl_req(c, d, len);
		break;
	case OP_CL_DATA:
		if (c->s && len > 0 && (b = body_pick(c->b, arg >> 1))) {
			if (d[0] & 2) { /* the rest is a trailer's value */
				b->trl_n = WP_MIN(len - 1, sizeof(b->trl_v));
				memcpy(b->trl_v, d + 1, b->trl_n);
			} else {
				body_add(b, d + 1, len - 1);
			}
			if (d[0] & 1)
				b->eof = true;
			(void)nghttp2_session_resume_data(c->cl, b->sid);
		}
		break;
	case OP_CL_RST:
		if (c->s && (b = body_pick(c->b, arg >> 1)) &&
		    nghttp2_submit_rst_stream(c->cl, NGHTTP2_FLAG_NONE, b->sid,
		                              len ? d[0] % 14 : NGHTTP2_CANCEL) == 0)
			c->rst_ours++;
		break;
	case OP_CL_GOAWAY:
		if (c->s) {
			c->our_goaway = true;
			(void)nghttp2_submit_goaway(c->cl, NGHTTP2_FLAG_NONE,
			                            nghttp2_session_get_last_proc_stream_id(c->cl),
			                            (arg >> 1) % 14, d, len);
		}
		break;
	case OP_CL_RAW:
		if (c->s) {
			c->tainted = true;
			(void)wp_h2p_down_in(c->s, d, len);
		}
		break;
	case OP_CL_PUMP:
		if (c->s) {
			if (len > 1 && (d[1] & 1))
				c->stall = !c->stall;
			cl_pump(c, len ? (size_t)d[0] * 64 + 1 : SIZE_MAX);
		}
		break;
	case OP_DOWN_EOF:
		if (c->s)
			wp_h2p_down_eof(c->s);
		break;
	case OP_CLOSE:
		if (c->s)
			sess_end(c);
		break;
	case OP_UP_CONNECT:
		if ((t = pick(arg)) && !t->connected) {
			t->connected = true;
			wp_h2p_up_connected(t->up);
		}
		break;
	case OP_UP_FAIL:
		if ((t = pick(arg))) {
			t->closed = true; /* the host dropped it before telling */
			wp_h2p_up_failed(t->up);
		}
		break;
	case OP_UP_EOF:
		if ((t = pick(arg)) && t->connected)
			wp_h2p_up_eof(t->up);
		break;
	case OP_UP_IN:
		if ((t = pick(arg)) && t->connected) {
			if (!t->h1) {
				t->tainted = true; /* the backend's framing is broken now */
				(void)wp_h2p_up_in(t->up, d, len);
				break;
			}
			len = WP_MIN(len, sizeof(t->held) - t->n_held);
			memcpy(t->held + t->n_held, d, len);
			t->n_held += len;
			n = wp_h2p_up_in(t->up, t->held, t->n_held);
			if (!t->closed) {
				assert_true(n <= t->n_held);
				memmove(t->held, t->held + n, t->n_held - n);
				t->n_held -= n;
			}
		}
		break;
	case OP_UP_DRAIN:
		if ((t = pick(arg)) && t->connected)
			up_drain(t, len ? (size_t)d[0] * 64 + 1 : SIZE_MAX);
		break;
	case OP_SRV_RESP:
		if ((t = pick(arg)) && t->connected && t->srv) {
			srv_resp(t, d, len);
			srv_out(t);
		}
		break;
	case OP_SRV_RST:
		if ((t = pick(arg)) && t->connected && t->srv &&
		    (b = body_pick(t->b, len ? d[0] : 0))) {
			(void)nghttp2_submit_rst_stream(t->srv, NGHTTP2_FLAG_NONE, b->sid,
			                                len > 1 ? d[1] % 14
			                                        : NGHTTP2_REFUSED_STREAM);
			srv_out(t);
		}
		break;
	case OP_SRV_GOAWAY:
		if ((t = pick(arg)) && t->connected && t->srv) {
			t->our_goaway = true;
			(void)nghttp2_submit_goaway(t->srv, NGHTTP2_FLAG_NONE, len ? d[0] : 0,
			                            len > 1 ? d[1] % 14 : NGHTTP2_NO_ERROR, NULL,
			                            0);
			srv_out(t);
		}
		break;
	case OP_TICK:
		now_ms += (uint64_t)arg * 250;
		wp_h2p_core_clock(core, now_ms);
		(void)wp_h2p_core_tick(core, now_ms);
		break;
	case OP_DRAIN:
		if (arg & 2)
			wp_h2p_core_drain(core);
		else if (c->s)
			wp_h2p_sess_drain(c->s);
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
	core = wp_h2p_core_create(&cfg, &ops, NULL, &pfx_rcore, NULL, 99, ctr);
	if (core == NULL)
		abort();
	wp_h2p_core_clock(core, now_ms);
	pfx_play(data, size, OP_N, step);
	/* what is still queued goes out and is checked */
	for (int i = 0; i < 2; i++)
		if (sess[i].s)
			cl_pump(&sess[i], SIZE_MAX);
	for (unsigned i = 0; i < n_tr; i++)
		if (!tr[i].closed && tr[i].connected)
			up_drain(&tr[i], SIZE_MAX);
	for (int i = 0; i < 2; i++)
		if (sess[i].s)
			sess_end(&sess[i]);
	wp_h2p_core_destroy(core);
	core = NULL;
	for (unsigned i = 0; i < n_tr; i++) {
		if (!tr[i].closed)
			abort(); /* a transport the proxy opened and forgot */
		nghttp2_session_del(tr[i].srv);
	}
	return 0;
}
