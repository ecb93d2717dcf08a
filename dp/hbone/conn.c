/*
 * HBONE (see hbone.h): the public API, what both sides share (streams and
 * their bounded send buffers, on_writable, on_close, keepalive PINGs and
 * the abuse bounds), and the client side over nghttp2. The server side is
 * our own framer in h2srv.c (an idle nghttp2 session costs ~26 KB, ours
 * ~1.5 KB); each API function below does the shared part and branches on
 * c->server once.
 *
 * The client's nghttp2 session runs with NGHTTP2_OPT_NO_AUTO_WINDOW_UPDATE
 * so the peer's window opens only as fast as our upstream takes bytes
 * (wp_hbstream_consume). Tunnel bytes for the peer sit in one bounded buffer
 * per stream, read by a data provider that defers when it is empty.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "h2int.h"
#include "wp/addr.h"

void wp_hbone_config_default(struct wp_hbone_config *cfg)
{
	cfg->max_streams = 100;
	cfg->stream_window = 4u << 20;
	cfg->conn_window = 16u << 20;
	cfg->max_header_list = 16 << 10;
	cfg->max_continuations = 8;
	cfg->rst_per_sec = 200;
	cfg->ping_interval_ms = 10000;
	cfg->ping_timeout_ms = 20000;
	cfg->stream_sndbuf = (64 << 10) - 16; /* one 64 KiB allocator class */
	cfg->header_table_size = 0;
}

/* ---- shared: streams ---- */

struct wp_hbstream *wp_hbone_stream_new(struct wp_hbconn *c)
{
	struct wp_hbstream *s = wp_h2mem_calloc(c->mem, 1, sizeof(*s));

	if (s == NULL) {
		h2_ctr(c, WP_CTR_HBONE_NOMEM);
		return NULL;
	}
	s->c = c;
	s->prev = c->tail;
	if (c->tail != NULL)
		c->tail->next = s;
	else
		c->streams = s;
	c->tail = s;
	c->nstreams++;
	return s;
}

void wp_hbone_stream_free(struct wp_hbstream *s)
{
	struct wp_hbconn *c = s->c;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		c->streams = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	else
		c->tail = s->prev;
	c->nstreams--;
	if (c->server) {
		if (c->u.srv.cur == s)
			c->u.srv.cur = NULL;
		if (c->u.srv.bs == s)
			c->u.srv.bs = NULL;
		wp_h2mem_release(c->mem, s->u.srv.hv);
	}
	wp_h2mem_release(c->mem, s->sbuf);
	wp_h2mem_release(c->mem, s);
}

void wp_hbone_stream_closed(struct wp_hbstream *s, uint32_t err)
{
	struct wp_hbconn *c = s->c;
	enum wp_hbone_close why;

	if (s->local_close)
		why = WP_HBONE_CLOSE_LOCAL;
	else if (s->peer_rst)
		why = (err == NGHTTP2_NO_ERROR || err == NGHTTP2_CANCEL) ? WP_HBONE_CLOSE_EOF
		                                                         : WP_HBONE_CLOSE_RESET;
	else
		why = err == NGHTTP2_NO_ERROR ? WP_HBONE_CLOSE_DONE : WP_HBONE_CLOSE_RESET;
	if (s->peer_rst && why == WP_HBONE_CLOSE_RESET)
		h2_ctr(c, WP_CTR_HBONE_PEER_RESET);
	if (s->known && c->ops->on_close != NULL)
		c->ops->on_close(s, why, err);
	wp_hbone_stream_free(s);
}

size_t wp_hbone_sbuf_take(struct wp_hbstream *s, uint8_t *buf, size_t len)
{
	size_t n = WP_MIN(len, (size_t)s->slen);

	if (n == 0)
		return 0;
	memcpy(buf, s->sbuf + s->shead, n);
	s->shead += (uint32_t)n;
	s->slen -= (uint32_t)n;
	if (s->slen == 0) {
		/* Idle streams hold no buffer. */
		wp_h2mem_release(s->c->mem, s->sbuf);
		s->sbuf = NULL;
		s->shead = 0;
	}
	if (s->want_writable && s->slen <= s->c->cfg.stream_sndbuf / 2) {
		s->want_writable = 0;
		s->notify = 1;
	}
	return n;
}

bool wp_hbone_notify_writable(struct wp_hbconn *c)
{
	struct wp_hbstream *s, *next;
	bool any = false;

	for (s = c->streams; s != NULL; s = next) {
		next = s->next;
		/* a stream whose last write found no memory is told once
		 * the allocator could give it its buffer (memory other
		 * streams released): without this nothing would wake it */
		if (s->mem_wait && wp_h2mem_can_alloc(c->mem, c->cfg.stream_sndbuf)) {
			s->mem_wait = 0;
			s->notify = 1;
		}
		if (s->notify) {
			s->notify = 0;
			if (s->known && c->ops->on_writable != NULL) {
				c->ops->on_writable(s);
				any = true;
			}
		}
	}
	return any;
}

bool wp_hbone_rst_over_limit(struct wp_hbconn *c)
{
	if (c->now - c->rst_window >= 1000) {
		c->rst_window = c->now;
		c->rst_count = 0;
	}
	if (++c->rst_count > c->cfg.rst_per_sec) {
		h2_ctr(c, WP_CTR_HBONE_RAPID_RESET);
		return true;
	}
	return false;
}

bool wp_hbone_cont_over_limit(struct wp_hbconn *c)
{
	if (++c->conts > c->cfg.max_continuations) {
		h2_ctr(c, WP_CTR_HBONE_CONTINUATION_FLOOD);
		return true;
	}
	return false;
}

void wp_hbone_count_response(struct wp_hbstream *s, int status)
{
	if (s->known)
		h2_ctr(s->c, status == 400   ? WP_CTR_HBONE_RESP_400
		             : status == 401 ? WP_CTR_HBONE_RESP_401
		             : status == 503 ? WP_CTR_HBONE_RESP_503
		                             : WP_CTR_HBONE_RESP_OTHER);
}

/* ---- client: nghttp2 ---- */

/* The data provider: hands out the stream's buffered bytes. */
static ssize_t read_cb(nghttp2_session *ss, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *ud)
{
	struct wp_hbstream *s = src->ptr;
	size_t n = wp_hbone_sbuf_take(s, buf, len);

	(void)ss;
	(void)id;
	(void)ud;
	if (s->slen == 0 && s->shut_out) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return (ssize_t)n;
	}
	if (n == 0) {
		s->u.cli.deferred = 1;
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)n;
}

static void resume(struct wp_hbstream *s)
{
	if (s->u.cli.deferred && s->u.cli.has_prd) {
		s->u.cli.deferred = 0;
		(void)nghttp2_session_resume_data(s->c->u.cli.ss, s->id);
	}
}

static int on_begin_frame(nghttp2_session *ss, const nghttp2_frame_hd *hd, void *ud)
{
	struct wp_hbconn *c = ud;

	if (hd->type == NGHTTP2_HEADERS) {
		c->conts = 0;
	} else if (hd->type == NGHTTP2_CONTINUATION && wp_hbone_cont_over_limit(c)) {
		(void)nghttp2_session_terminate_session(ss, NGHTTP2_ENHANCE_YOUR_CALM);
		c->failed = true;
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	return 0;
}

static int on_header(nghttp2_session *ss, const nghttp2_frame *f, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *ud)
{
	struct wp_hbconn *c = ud;
	struct wp_hbstream *s = nghttp2_session_get_stream_user_data(ss, f->hd.stream_id);
	nghttp2_vec n = nghttp2_rcbuf_get_buf(name), v = nghttp2_rcbuf_get_buf(value);

	(void)flags;
	if (s == NULL)
		return 0;
	s->hdr_bytes += (uint32_t)(n.len + v.len + 32);
	if (s->hdr_bytes > c->cfg.max_header_list) {
		h2_ctr(c, WP_CTR_HBONE_HEADERS_TOO_LARGE);
		s->local_close = 1;
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM */
	}
	if (n.len == 7 && memcmp(n.base, ":status", 7) == 0 && v.len == 3)
		s->u.cli.status = (int16_t)((v.base[0] - '0') * 100 + (v.base[1] - '0') * 10 +
		                            (v.base[2] - '0'));
	return 0;
}

static int on_frame_recv(nghttp2_session *ss, const nghttp2_frame *f, void *ud)
{
	struct wp_hbconn *c = ud;
	struct wp_hbstream *s =
	        f->hd.stream_id ? nghttp2_session_get_stream_user_data(ss, f->hd.stream_id) : NULL;

	switch (f->hd.type) {
	case NGHTTP2_HEADERS:
		if (s == NULL)
			break;
		if (f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
			int st = s->u.cli.status;
			if (st != 200 && st >= 200) {
				/* A CONNECT that failed: end our side too. */
				h2_ctr(c, WP_CTR_HBONE_UPSTREAM_REFUSED);
				s->local_close = 1;
				(void)nghttp2_submit_rst_stream(ss, NGHTTP2_FLAG_NONE, s->id,
				                                NGHTTP2_CANCEL);
			}
			if (s->known && c->ops->on_response != NULL)
				c->ops->on_response(s, st);
		}
		if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && s->known && c->ops->on_eof != NULL)
			c->ops->on_eof(s);
		break;
	case NGHTTP2_DATA:
		if (s != NULL && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) && s->known &&
		    c->ops->on_eof != NULL)
			c->ops->on_eof(s);
		break;
	case NGHTTP2_RST_STREAM:
		/* See h2srv.c: only live streams count towards rapid reset. */
		if (s == NULL)
			break;
		s->peer_rst = 1;
		if (wp_hbone_rst_over_limit(c)) {
			(void)nghttp2_session_terminate_session(ss, NGHTTP2_ENHANCE_YOUR_CALM);
			c->failed = true;
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		}
		break;
	case NGHTTP2_PING:
		if (f->hd.flags & NGHTTP2_FLAG_ACK)
			c->ping_out = false;
		break;
	case NGHTTP2_GOAWAY:
		c->goaway_rx = true;
		h2_ctr(c, WP_CTR_HBONE_GOAWAY_RECEIVED);
		break;
	default:
		break;
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *ss, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
	struct wp_hbconn *c = ud;
	struct wp_hbstream *s = nghttp2_session_get_stream_user_data(ss, id);

	(void)flags;
	if (s == NULL || !s->known || c->ops->on_data == NULL) {
		/* Nobody will take these: give the window back at once. */
		(void)nghttp2_session_consume(ss, id, len);
		return 0;
	}
	s->unconsumed += len;
	c->ops->on_data(s, data, len);
	return 0;
}

static int on_stream_close(nghttp2_session *ss, int32_t id, uint32_t err, void *ud)
{
	struct wp_hbstream *s = nghttp2_session_get_stream_user_data(ss, id);

	(void)ud;
	if (s == NULL)
		return 0;
	(void)nghttp2_session_set_stream_user_data(ss, id, NULL);
	if (s->unconsumed > 0)
		(void)nghttp2_session_consume_connection(ss, s->unconsumed);
	wp_hbone_stream_closed(s, err);
	return 0;
}

static nghttp2_session_callbacks *cbs;
static nghttp2_option *opt_client;
static pthread_once_t cbs_once = PTHREAD_ONCE_INIT;

static void cbs_init(void)
{
	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return;
	nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame);
	nghttp2_session_callbacks_set_on_header_callback2(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	if (nghttp2_option_new(&opt_client) != 0)
		return;
	nghttp2_option_set_no_auto_window_update(opt_client, 1);
	/* Memory an idle connection need not keep: closed streams (kept for
	 * RFC 7540 priorities, which HBONE does not use) and our encoder's
	 * dynamic table (CONNECT headers differ per tunnel). */
	nghttp2_option_set_no_closed_streams(opt_client, 1);
	nghttp2_option_set_max_deflate_dynamic_table_size(opt_client, 0);
	/* Until the peer's SETTINGS say otherwise. */
	nghttp2_option_set_peer_max_concurrent_streams(opt_client, 100);
}

static int cli_init(struct wp_hbconn *c)
{
	const nghttp2_settings_entry iv[] = {
	        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->cfg.stream_window},
	        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, c->cfg.header_table_size},
	};

	pthread_once(&cbs_once, cbs_init);
	if (cbs == NULL || opt_client == NULL)
		return -ENOMEM;
	if (nghttp2_session_client_new3(&c->u.cli.ss, cbs, c, opt_client,
	                                wp_h2mem_nghttp2(c->mem)) != 0)
		return -ENOMEM;
	if (nghttp2_submit_settings(c->u.cli.ss, NGHTTP2_FLAG_NONE, iv, WP_ARRAY_SIZE(iv)) != 0 ||
	    nghttp2_session_set_local_window_size(c->u.cli.ss, NGHTTP2_FLAG_NONE, 0,
	                                          (int32_t)c->cfg.conn_window) != 0) {
		nghttp2_session_del(c->u.cli.ss);
		return -ENOMEM;
	}
	return 0;
}

static ssize_t cli_input(struct wp_hbconn *c, const uint8_t *buf, size_t len)
{
	ssize_t n = nghttp2_session_mem_recv(c->u.cli.ss, buf, len);

	if (n >= 0)
		return n;
	if (!c->failed) {
		/* Our own bounds counted already; these are nghttp2's. */
		h2_ctr(c, n == NGHTTP2_ERR_NOMEM ? WP_CTR_HBONE_NOMEM
		          : n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
		                  ? WP_CTR_HBONE_CONTINUATION_FLOOD
		                  : WP_CTR_HBONE_PROTOCOL_ERROR);
		(void)nghttp2_session_terminate_session(
		        c->u.cli.ss, n == NGHTTP2_ERR_NOMEM ? NGHTTP2_INTERNAL_ERROR
		                                            : NGHTTP2_ENHANCE_YOUR_CALM);
	}
	c->failed = true;
	return -EPROTO;
}

static ssize_t cli_peek(struct wp_hbconn *c, const uint8_t **p)
{
	struct h2cli *k = &c->u.cli;
	ssize_t n;

	if (k->outlen == 0) {
		for (int round = 0; round < 2; round++) {
			n = nghttp2_session_mem_send(k->ss, &k->out);
			if (n < 0) {
				h2_ctr(c, n == NGHTTP2_ERR_NOMEM ? WP_CTR_HBONE_NOMEM
				                                 : WP_CTR_HBONE_PROTOCOL_ERROR);
				c->failed = true;
				k->outlen = 0;
				return n == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
			}
			k->outlen = (size_t)n;
			(void)wp_hbone_notify_writable(c);
			if (n > 0)
				break;
			/* on_writable may have queued data: try once more. */
		}
	}
	*p = k->out;
	return (ssize_t)k->outlen;
}

#define NV(n, v, vl)                                                                               \
	((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl),                         \
	              NGHTTP2_NV_FLAG_NO_COPY_NAME})

/* ---- connections ---- */

struct wp_hbconn *wp_hbconn_new(bool is_server, const struct wp_hbone_config *cfg,
                                struct wp_h2mem *mem, const struct wp_hbone_ops *ops, void *app,
                                uint64_t *ctrs, uint64_t now_ms)
{
	struct wp_hbconn *c = wp_h2mem_calloc(mem, 1, sizeof(*c));

	if (c == NULL) {
		if (ctrs != NULL)
			wp_ctr_inc(ctrs, WP_CTR_HBONE_NOMEM);
		return NULL;
	}
	c->mem = mem;
	c->ops = ops;
	c->app = app;
	c->ctrs = ctrs;
	c->server = is_server;
	c->now = c->last_rx = c->rst_window = now_ms;
	if (cfg != NULL)
		c->cfg = *cfg;
	else
		wp_hbone_config_default(&c->cfg);
	if ((is_server ? wp_hbone_srv_init(c) : cli_init(c)) != 0) {
		h2_ctr(c, WP_CTR_HBONE_NOMEM);
		wp_h2mem_release(mem, c);
		return NULL;
	}
	return c;
}

void wp_hbconn_free(struct wp_hbconn *c)
{
	if (c == NULL)
		return;
	while (c->streams != NULL) {
		struct wp_hbstream *s = c->streams;
		if (!c->server)
			(void)nghttp2_session_set_stream_user_data(c->u.cli.ss, s->id, NULL);
		if (s->known && c->ops->on_close != NULL)
			c->ops->on_close(s, WP_HBONE_CLOSE_ABORT, NGHTTP2_CANCEL);
		wp_hbone_stream_free(s);
	}
	if (c->server)
		wp_hbone_srv_fini(c);
	else
		nghttp2_session_del(c->u.cli.ss);
	wp_h2mem_release(c->mem, c);
}

void *wp_hbconn_app(const struct wp_hbconn *c)
{
	return c->app;
}

ssize_t wp_hbconn_input(struct wp_hbconn *c, const uint8_t *buf, size_t len, uint64_t now_ms)
{
	if (c->failed)
		return -EPROTO;
	c->now = now_ms;
	c->last_rx = now_ms;
	return c->server ? wp_hbone_srv_input(c, buf, len) : cli_input(c, buf, len);
}

ssize_t wp_hbconn_peek(struct wp_hbconn *c, const uint8_t **p)
{
	return c->server ? wp_hbone_srv_peek(c, p) : cli_peek(c, p);
}

void wp_hbconn_advance(struct wp_hbconn *c, size_t n)
{
	if (c->server) {
		wp_hbone_srv_advance(c, n);
		return;
	}
	WP_ASSERT(n <= c->u.cli.outlen);
	c->u.cli.out += n;
	c->u.cli.outlen -= n;
}

int wp_hbconn_tick(struct wp_hbconn *c, uint64_t now_ms)
{
	c->now = now_ms;
	if (c->failed)
		return 0;
	if (c->ping_out && now_ms - c->ping_sent >= c->cfg.ping_timeout_ms) {
		h2_ctr(c, WP_CTR_HBONE_PING_TIMEOUT);
		if (c->server)
			wp_hbone_srv_terminate(c, NGHTTP2_NO_ERROR);
		else
			(void)nghttp2_session_terminate_session(c->u.cli.ss, NGHTTP2_NO_ERROR);
		c->failed = true;
		return -ETIMEDOUT;
	}
	if (!c->ping_out && now_ms - c->last_rx >= c->cfg.ping_interval_ms) {
		if ((c->server ? wp_hbone_srv_ping(c)
		               : nghttp2_submit_ping(c->u.cli.ss, NGHTTP2_FLAG_NONE, NULL)) == 0) {
			c->ping_out = true;
			c->ping_sent = now_ms;
			h2_ctr(c, WP_CTR_HBONE_PING_SENT);
		}
	}
	return 0;
}

uint64_t wp_hbconn_next_ms(const struct wp_hbconn *c)
{
	if (c->failed)
		return UINT64_MAX;
	if (c->ping_out)
		return c->ping_sent + c->cfg.ping_timeout_ms;
	return c->last_rx + c->cfg.ping_interval_ms;
}

int wp_hbconn_drain(struct wp_hbconn *c)
{
	int rv;

	if (c->server)
		rv = wp_hbone_srv_drain(c);
	else
		rv = nghttp2_submit_goaway(c->u.cli.ss, NGHTTP2_FLAG_NONE,
		                           nghttp2_session_get_last_proc_stream_id(c->u.cli.ss),
		                           NGHTTP2_NO_ERROR, NULL, 0) == 0
		             ? 0
		             : -ENOMEM;
	if (rv == 0)
		h2_ctr(c, WP_CTR_HBONE_GOAWAY_SENT);
	return rv;
}

bool wp_hbconn_done(const struct wp_hbconn *c)
{
	if (c->server)
		return wp_hbone_srv_done(c);
	if (c->u.cli.outlen > 0 || nghttp2_session_want_write(c->u.cli.ss))
		return false;
	return c->failed || !nghttp2_session_want_read(c->u.cli.ss);
}

uint32_t wp_hbconn_streams(const struct wp_hbconn *c)
{
	return c->nstreams;
}

bool wp_hbconn_can_open(const struct wp_hbconn *c)
{
	uint32_t peer_max;

	if (c->server || c->failed || c->goaway_rx)
		return false;
	peer_max = nghttp2_session_get_remote_settings(c->u.cli.ss,
	                                               NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
	return c->nstreams < WP_MIN(peer_max, c->cfg.max_streams) &&
	       nghttp2_session_get_next_stream_id(c->u.cli.ss) <= INT32_MAX;
}

struct wp_hbstream *wp_hbconn_open(struct wp_hbconn *c, const struct wp_sockaddr *authority,
                                   const char *baggage, const char *forwarded,
                                   const char *traceparent, void *app)
{
	char auth[WP_ADDR_STRLEN];
	nghttp2_nv nva[5];
	size_t n = 0;
	nghttp2_data_provider prd;
	struct wp_hbstream *s;
	int32_t id;

	if (!wp_hbconn_can_open(c)) {
		h2_ctr(c, WP_CTR_HBONE_OPEN_LIMIT);
		errno = c->goaway_rx || c->failed ? ECONNRESET : EAGAIN;
		return NULL;
	}
	wp_sockaddr_format(authority, auth, sizeof(auth));
	nva[n++] = NV(":method", "CONNECT", 7);
	nva[n++] = NV(":authority", auth, strlen(auth));
	if (baggage != NULL)
		nva[n++] = NV("baggage", baggage, strlen(baggage));
	if (forwarded != NULL)
		nva[n++] = NV("forwarded", forwarded, strlen(forwarded));
	if (traceparent != NULL)
		nva[n++] = NV("traceparent", traceparent, strlen(traceparent));
	s = wp_hbone_stream_new(c);
	if (s == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	prd.source.ptr = s;
	prd.read_callback = read_cb;
	id = nghttp2_submit_request(c->u.cli.ss, NULL, nva, n, &prd, s);
	if (id < 0) {
		wp_hbone_stream_free(s);
		errno = id == NGHTTP2_ERR_NOMEM ? ENOMEM : ECONNRESET;
		return NULL;
	}
	s->id = id;
	s->app = app;
	s->known = 1;
	s->u.cli.has_prd = 1;
	s->responded = 1;
	return s;
}

/* ---- streams: the application's side ---- */

int wp_hbstream_respond(struct wp_hbstream *s, int status)
{
	if (s->responded || !s->c->server)
		return -EALREADY;
	if (status < 100 || status > 999)
		return -EINVAL;
	return wp_hbone_srv_respond(s, status);
}

ssize_t wp_hbstream_write(struct wp_hbstream *s, const uint8_t *data, size_t len)
{
	uint32_t cap = s->c->cfg.stream_sndbuf;
	size_t n;

	if (s->shut_out || s->local_close)
		return -EPIPE;
	if (len == 0)
		return 0;
	n = WP_MIN(len, (size_t)(cap - s->slen));
	if (n == 0) {
		s->want_writable = 1;
		return 0;
	}
	if (s->sbuf == NULL) {
		s->sbuf = wp_h2mem_alloc(s->c->mem, cap);
		if (s->sbuf == NULL) {
			h2_ctr(s->c, WP_CTR_HBONE_NOMEM);
			s->want_writable = 1;
			s->mem_wait = 1; /* wp_hbone_notify_writable() retries it */
			return 0;
		}
		s->mem_wait = 0;
		s->shead = 0;
	}
	if (s->shead + s->slen + n > cap) {
		memmove(s->sbuf, s->sbuf + s->shead, s->slen);
		s->shead = 0;
	}
	memcpy(s->sbuf + s->shead + s->slen, data, n);
	s->slen += (uint32_t)n;
	if (n < len)
		s->want_writable = 1;
	if (!s->c->server)
		resume(s);
	return (ssize_t)n;
}

int wp_hbstream_shutdown(struct wp_hbstream *s)
{
	if (s->shut_out)
		return 0;
	s->shut_out = 1;
	if (!s->c->server)
		resume(s);
	return 0;
}

int wp_hbstream_consume(struct wp_hbstream *s, size_t n)
{
	n = WP_MIN(n, s->unconsumed);
	if (n == 0)
		return 0;
	s->unconsumed -= n;
	if (s->c->server)
		return wp_hbone_srv_consume(s, n);
	return nghttp2_session_consume(s->c->u.cli.ss, s->id, n) == 0 ? 0 : -EINVAL;
}

int wp_hbstream_reset(struct wp_hbstream *s, uint32_t h2_error)
{
	if (s->c->server)
		return wp_hbone_srv_reset(s, h2_error);
	s->local_close = 1;
	return nghttp2_submit_rst_stream(s->c->u.cli.ss, NGHTTP2_FLAG_NONE, s->id, h2_error) == 0
	               ? 0
	               : -ENOMEM;
}

void wp_hbstream_set_app(struct wp_hbstream *s, void *app)
{
	s->app = app;
}

void *wp_hbstream_app(const struct wp_hbstream *s)
{
	return s->app;
}

struct wp_hbconn *wp_hbstream_conn(const struct wp_hbstream *s)
{
	return s->c;
}

int32_t wp_hbstream_id(const struct wp_hbstream *s)
{
	return s->id;
}

const struct wp_hbone_req *wp_hbstream_request(const struct wp_hbstream *s)
{
	return s->c->server ? &s->req : NULL;
}

size_t wp_hbstream_pending(const struct wp_hbstream *s)
{
	return s->slen;
}
