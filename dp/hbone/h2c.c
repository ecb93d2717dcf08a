/*
 * HBONE over nghttp2 (see hbone.h): the server and client sides share the
 * connection object, the stream object, the tunnel data path and the abuse
 * bounds; they differ only in who opens streams. nghttp2 runs with
 * NGHTTP2_OPT_NO_AUTO_WINDOW_UPDATE so the peer's window opens only as fast
 * as our upstream takes bytes (wp_h2s_consume). Tunnel bytes for the peer
 * sit in one bounded buffer per stream, read by a data provider that
 * defers when it is empty.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "dp/hbone/hbone.h"
#include "wp/addr.h"
#include "wp/counters.h"

struct wp_h2s {
	struct wp_h2c *c;
	struct wp_h2s *prev, *next; /* c->streams */
	void *app;
	int32_t id;
	int16_t status;    /* client: response status */
	uint8_t known : 1; /* the application saw it: owes it on_close */
	uint8_t responded : 1;
	uint8_t has_prd : 1;  /* a data provider is attached */
	uint8_t deferred : 1; /* the provider returned DEFERRED */
	uint8_t shut_out : 1; /* wp_h2s_shutdown called */
	uint8_t want_writable : 1;
	uint8_t notify : 1;      /* on_writable due */
	uint8_t local_close : 1; /* we reset it or answered non-200 */
	uint8_t peer_rst : 1;
	uint8_t conts;
	uint32_t hdr_bytes;
	uint8_t *sbuf; /* towards the peer; NULL while empty */
	uint32_t shead, slen;
	uint64_t unconsumed; /* delivered by on_data, not consumed yet */
	nghttp2_rcbuf *method, *authority, *baggage, *forwarded, *traceparent;
	struct wp_hbone_req req;
};

struct wp_h2c {
	nghttp2_session *ss;
	struct wp_h2mem *mem;
	const struct wp_hbone_ops *ops;
	void *app;
	uint64_t *ctrs;
	struct wp_hbone_config cfg;
	struct wp_h2s *streams;
	uint32_t nstreams;
	bool server;
	bool failed;
	bool goaway_rx;
	bool ping_out;
	const uint8_t *out;
	size_t outlen;
	uint64_t now, last_rx, ping_sent;
	uint64_t rst_window;
	uint32_t rst_count;
	uint32_t conts; /* CONTINUATION frames in the current header block */
};

static inline void ctr(struct wp_h2c *c, enum wp_ctr k)
{
	if (c->ctrs != NULL)
		wp_ctr_inc(c->ctrs, k);
}

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

/* ---- streams ---- */

static struct wp_h2s *stream_new(struct wp_h2c *c)
{
	struct wp_h2s *s = wp_h2mem_calloc(c->mem, 1, sizeof(*s));

	if (s == NULL) {
		ctr(c, WP_CTR_HBONE_NOMEM);
		return NULL;
	}
	s->c = c;
	s->next = c->streams;
	if (c->streams != NULL)
		c->streams->prev = s;
	c->streams = s;
	c->nstreams++;
	return s;
}

static void rc_drop(nghttp2_rcbuf **rc)
{
	if (*rc != NULL)
		nghttp2_rcbuf_decref(*rc);
	*rc = NULL;
}

static void stream_free(struct wp_h2s *s)
{
	struct wp_h2c *c = s->c;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		c->streams = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	c->nstreams--;
	rc_drop(&s->method);
	rc_drop(&s->authority);
	rc_drop(&s->baggage);
	rc_drop(&s->forwarded);
	rc_drop(&s->traceparent);
	wp_h2mem_release(c->mem, s->sbuf);
	wp_h2mem_release(c->mem, s);
}

static struct wp_hbone_hval hval(nghttp2_rcbuf *rc)
{
	struct wp_hbone_hval v = {NULL, 0};

	if (rc != NULL) {
		nghttp2_vec b = nghttp2_rcbuf_get_buf(rc);
		v.base = (const char *)b.base;
		v.len = b.len;
	}
	return v;
}

/* The data provider: hands out the stream's buffered bytes. */
static ssize_t read_cb(nghttp2_session *ss, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *ud)
{
	struct wp_h2s *s = src->ptr;
	size_t n = WP_MIN(len, (size_t)s->slen);

	(void)ss;
	(void)id;
	(void)ud;
	if (n > 0) {
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
	}
	if (s->slen == 0 && s->shut_out) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return (ssize_t)n;
	}
	if (n == 0) {
		s->deferred = 1;
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)n;
}

static void resume(struct wp_h2s *s)
{
	if (s->deferred && s->has_prd) {
		s->deferred = 0;
		(void)nghttp2_session_resume_data(s->c->ss, s->id);
	}
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_frame(nghttp2_session *ss, const nghttp2_frame_hd *hd, void *ud)
{
	struct wp_h2c *c = ud;

	if (hd->type == NGHTTP2_HEADERS) {
		c->conts = 0;
	} else if (hd->type == NGHTTP2_CONTINUATION && ++c->conts > c->cfg.max_continuations) {
		ctr(c, WP_CTR_HBONE_CONTINUATION_FLOOD);
		(void)nghttp2_session_terminate_session(ss, NGHTTP2_ENHANCE_YOUR_CALM);
		c->failed = true;
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	return 0;
}

static int on_begin_headers(nghttp2_session *ss, const nghttp2_frame *f, void *ud)
{
	struct wp_h2c *c = ud;
	struct wp_h2s *s;

	if (!c->server || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	s = stream_new(c);
	if (s == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	s->id = f->hd.stream_id;
	(void)nghttp2_session_set_stream_user_data(ss, s->id, s);
	return 0;
}

static void keep(nghttp2_rcbuf **slot, nghttp2_rcbuf *v)
{
	if (*slot != NULL)
		return; /* the first one counts */
	nghttp2_rcbuf_incref(v);
	*slot = v;
}

static bool name_is(nghttp2_vec n, const char *lit)
{
	size_t l = strlen(lit);
	return n.len == l && memcmp(n.base, lit, l) == 0;
}

static int on_header(nghttp2_session *ss, const nghttp2_frame *f, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *ud)
{
	struct wp_h2c *c = ud;
	struct wp_h2s *s = nghttp2_session_get_stream_user_data(ss, f->hd.stream_id);
	nghttp2_vec n = nghttp2_rcbuf_get_buf(name), v = nghttp2_rcbuf_get_buf(value);

	(void)flags;
	if (s == NULL)
		return 0;
	s->hdr_bytes += (uint32_t)(n.len + v.len + 32);
	if (s->hdr_bytes > c->cfg.max_header_list) {
		ctr(c, WP_CTR_HBONE_HEADERS_TOO_LARGE);
		s->local_close = 1;
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM */
	}
	if (!c->server) {
		if (name_is(n, ":status") && v.len == 3)
			s->status = (int16_t)((v.base[0] - '0') * 100 + (v.base[1] - '0') * 10 +
			                      (v.base[2] - '0'));
		return 0;
	}
	if (f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (name_is(n, ":method"))
		keep(&s->method, value);
	else if (name_is(n, ":authority"))
		keep(&s->authority, value);
	else if (name_is(n, "baggage"))
		keep(&s->baggage, value);
	else if (name_is(n, "forwarded"))
		keep(&s->forwarded, value);
	else if (name_is(n, "traceparent"))
		keep(&s->traceparent, value);
	return 0;
}

static void respond_internal(struct wp_h2s *s, int status, enum wp_ctr k)
{
	ctr(s->c, k);
	(void)wp_h2s_respond(s, status);
}

static void on_request(struct wp_h2c *c, struct wp_h2s *s)
{
	nghttp2_vec m;

	if (s->method == NULL) {
		respond_internal(s, 400, WP_CTR_HBONE_NOT_CONNECT);
		return;
	}
	m = nghttp2_rcbuf_get_buf(s->method);
	if (!name_is(m, "CONNECT")) {
		respond_internal(s, 400, WP_CTR_HBONE_NOT_CONNECT);
		return;
	}
	if (s->authority == NULL ||
	    wp_sockaddr_parse((const char *)nghttp2_rcbuf_get_buf(s->authority).base,
	                      &s->req.authority) != 0) {
		respond_internal(s, 400, WP_CTR_HBONE_BAD_AUTHORITY);
		return;
	}
	s->req.authority_text = hval(s->authority);
	s->req.baggage = hval(s->baggage);
	s->req.forwarded = hval(s->forwarded);
	s->req.traceparent = hval(s->traceparent);
	rc_drop(&s->method);
	s->known = 1;
	c->ops->on_request(c, s, &s->req);
}

static int on_frame_recv(nghttp2_session *ss, const nghttp2_frame *f, void *ud)
{
	struct wp_h2c *c = ud;
	struct wp_h2s *s =
	        f->hd.stream_id ? nghttp2_session_get_stream_user_data(ss, f->hd.stream_id) : NULL;

	switch (f->hd.type) {
	case NGHTTP2_HEADERS:
		if (s == NULL)
			break;
		if (c->server && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
			on_request(c, s);
		} else if (!c->server && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
			if (s->status != 200 && s->status >= 200) {
				/* A CONNECT that failed: end our side too. */
				ctr(c, WP_CTR_HBONE_UPSTREAM_REFUSED);
				s->local_close = 1;
				(void)nghttp2_submit_rst_stream(ss, NGHTTP2_FLAG_NONE, s->id,
				                                NGHTTP2_CANCEL);
			}
			if (s->known && c->ops->on_response != NULL)
				c->ops->on_response(s, s->status);
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
		/*
		 * Rapid reset counts the streams the peer opened and reset. A reset
		 * of a stream already closed here costs nothing and is what a peer
		 * like python-h2 answers each DATA frame that was in flight when it
		 * reset a stream with: not counted (a busy CANCEL hit the limit).
		 */
		if (s == NULL)
			break;
		s->peer_rst = 1;
		if (c->now - c->rst_window >= 1000) {
			c->rst_window = c->now;
			c->rst_count = 0;
		}
		if (++c->rst_count > c->cfg.rst_per_sec) {
			ctr(c, WP_CTR_HBONE_RAPID_RESET);
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
		ctr(c, WP_CTR_HBONE_GOAWAY_RECEIVED);
		break;
	default:
		break;
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *ss, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
	struct wp_h2c *c = ud;
	struct wp_h2s *s = nghttp2_session_get_stream_user_data(ss, id);

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
	struct wp_h2c *c = ud;
	struct wp_h2s *s = nghttp2_session_get_stream_user_data(ss, id);
	enum wp_hbone_close why;

	if (s == NULL)
		return 0;
	(void)nghttp2_session_set_stream_user_data(ss, id, NULL);
	if (s->unconsumed > 0)
		(void)nghttp2_session_consume_connection(ss, s->unconsumed);
	if (s->local_close)
		why = WP_HBONE_CLOSE_LOCAL;
	else if (s->peer_rst)
		why = (err == NGHTTP2_NO_ERROR || err == NGHTTP2_CANCEL) ? WP_HBONE_CLOSE_EOF
		                                                         : WP_HBONE_CLOSE_RESET;
	else
		why = err == NGHTTP2_NO_ERROR ? WP_HBONE_CLOSE_DONE : WP_HBONE_CLOSE_RESET;
	if (s->peer_rst && why == WP_HBONE_CLOSE_RESET)
		ctr(c, WP_CTR_HBONE_PEER_RESET);
	if (s->known && c->ops->on_close != NULL)
		c->ops->on_close(s, why, err);
	stream_free(s);
	return 0;
}

static int on_frame_send(nghttp2_session *ss, const nghttp2_frame *f, void *ud)
{
	struct wp_h2c *c = ud;

	(void)ss;
	if (f->hd.type == NGHTTP2_RST_STREAM && f->rst_stream.error_code == NGHTTP2_REFUSED_STREAM)
		ctr(c, WP_CTR_HBONE_STREAM_REFUSED);
	return 0;
}

static nghttp2_session_callbacks *cbs;
static nghttp2_option *opt_server, *opt_client;
static pthread_once_t cbs_once = PTHREAD_ONCE_INIT;

static void cbs_init(void)
{
	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return;
	nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback2(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
	for (int i = 0; i < 2; i++) {
		nghttp2_option **o = i ? &opt_client : &opt_server;
		if (nghttp2_option_new(o) != 0)
			return;
		nghttp2_option_set_no_auto_window_update(*o, 1);
		/* Memory an idle connection need not keep: closed streams (kept
		 * for RFC 7540 priorities, which HBONE does not use) and our
		 * encoder's dynamic table (CONNECT headers differ per tunnel). */
		nghttp2_option_set_no_closed_streams(*o, 1);
		nghttp2_option_set_max_deflate_dynamic_table_size(*o, 0);
		/* Until the peer's SETTINGS say otherwise. */
		nghttp2_option_set_peer_max_concurrent_streams(*o, 100);
	}
}

/* ---- connections ---- */

struct wp_h2c *wp_h2c_new(bool is_server, const struct wp_hbone_config *cfg, struct wp_h2mem *mem,
                          const struct wp_hbone_ops *ops, void *app, uint64_t *ctrs,
                          uint64_t now_ms)
{
	struct wp_h2c *c;
	nghttp2_settings_entry iv[5];
	size_t niv = 0;
	int rv;

	pthread_once(&cbs_once, cbs_init);
	if (cbs == NULL || opt_server == NULL || opt_client == NULL)
		return NULL;
	c = wp_h2mem_calloc(mem, 1, sizeof(*c));
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
	if (is_server)
		rv = nghttp2_session_server_new3(&c->ss, cbs, c, opt_server, wp_h2mem_nghttp2(mem));
	else
		rv = nghttp2_session_client_new3(&c->ss, cbs, c, opt_client, wp_h2mem_nghttp2(mem));
	if (rv != 0)
		goto fail;
	if (is_server) {
		iv[niv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
		                                     c->cfg.max_streams};
		iv[niv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
		                                     c->cfg.max_header_list};
	} else {
		iv[niv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
	}
	iv[niv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
	                                     c->cfg.stream_window};
	iv[niv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_HEADER_TABLE_SIZE,
	                                     c->cfg.header_table_size};
	if (nghttp2_submit_settings(c->ss, NGHTTP2_FLAG_NONE, iv, niv) != 0 ||
	    nghttp2_session_set_local_window_size(c->ss, NGHTTP2_FLAG_NONE, 0,
	                                          (int32_t)c->cfg.conn_window) != 0)
		goto fail;
	return c;
fail:
	ctr(c, WP_CTR_HBONE_NOMEM);
	nghttp2_session_del(c->ss);
	wp_h2mem_release(mem, c);
	return NULL;
}

void wp_h2c_free(struct wp_h2c *c)
{
	if (c == NULL)
		return;
	while (c->streams != NULL) {
		struct wp_h2s *s = c->streams;
		(void)nghttp2_session_set_stream_user_data(c->ss, s->id, NULL);
		if (s->known && c->ops->on_close != NULL)
			c->ops->on_close(s, WP_HBONE_CLOSE_ABORT, NGHTTP2_CANCEL);
		stream_free(s);
	}
	nghttp2_session_del(c->ss);
	wp_h2mem_release(c->mem, c);
}

void *wp_h2c_app(const struct wp_h2c *c)
{
	return c->app;
}

ssize_t wp_h2c_input(struct wp_h2c *c, const uint8_t *buf, size_t len, uint64_t now_ms)
{
	ssize_t n;

	if (c->failed)
		return -EPROTO;
	c->now = now_ms;
	c->last_rx = now_ms;
	n = nghttp2_session_mem_recv(c->ss, buf, len);
	if (n < 0) {
		if (!c->failed) {
			/* Our own bounds counted already; these are nghttp2's. */
			ctr(c, n == NGHTTP2_ERR_NOMEM ? WP_CTR_HBONE_NOMEM
			       : n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
			               ? WP_CTR_HBONE_CONTINUATION_FLOOD
			               : WP_CTR_HBONE_PROTOCOL_ERROR);
			(void)nghttp2_session_terminate_session(
			        c->ss, n == NGHTTP2_ERR_NOMEM ? NGHTTP2_INTERNAL_ERROR
			                                      : NGHTTP2_ENHANCE_YOUR_CALM);
		}
		c->failed = true;
		return -EPROTO;
	}
	return n;
}

static void notify_writable(struct wp_h2c *c)
{
	struct wp_h2s *s, *next;

	for (s = c->streams; s != NULL; s = next) {
		next = s->next;
		if (s->notify) {
			s->notify = 0;
			if (s->known && c->ops->on_writable != NULL)
				c->ops->on_writable(s);
		}
	}
}

ssize_t wp_h2c_peek(struct wp_h2c *c, const uint8_t **p)
{
	ssize_t n;

	if (c->outlen == 0) {
		for (int round = 0; round < 2; round++) {
			n = nghttp2_session_mem_send(c->ss, &c->out);
			if (n < 0) {
				ctr(c, n == NGHTTP2_ERR_NOMEM ? WP_CTR_HBONE_NOMEM
				                              : WP_CTR_HBONE_PROTOCOL_ERROR);
				c->failed = true;
				c->outlen = 0;
				return n == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
			}
			c->outlen = (size_t)n;
			notify_writable(c);
			if (n > 0)
				break;
			/* on_writable may have queued data: try once more. */
		}
	}
	*p = c->out;
	return (ssize_t)c->outlen;
}

void wp_h2c_advance(struct wp_h2c *c, size_t n)
{
	WP_ASSERT(n <= c->outlen);
	c->out += n;
	c->outlen -= n;
}

int wp_h2c_tick(struct wp_h2c *c, uint64_t now_ms)
{
	c->now = now_ms;
	if (c->failed)
		return 0;
	if (c->ping_out && now_ms - c->ping_sent >= c->cfg.ping_timeout_ms) {
		ctr(c, WP_CTR_HBONE_PING_TIMEOUT);
		(void)nghttp2_session_terminate_session(c->ss, NGHTTP2_NO_ERROR);
		c->failed = true;
		return -ETIMEDOUT;
	}
	if (!c->ping_out && now_ms - c->last_rx >= c->cfg.ping_interval_ms) {
		if (nghttp2_submit_ping(c->ss, NGHTTP2_FLAG_NONE, NULL) == 0) {
			c->ping_out = true;
			c->ping_sent = now_ms;
			ctr(c, WP_CTR_HBONE_PING_SENT);
		}
	}
	return 0;
}

int wp_h2c_drain(struct wp_h2c *c)
{
	int rv = nghttp2_submit_goaway(c->ss, NGHTTP2_FLAG_NONE,
	                               nghttp2_session_get_last_proc_stream_id(c->ss),
	                               NGHTTP2_NO_ERROR, NULL, 0);
	if (rv != 0)
		return -ENOMEM;
	ctr(c, WP_CTR_HBONE_GOAWAY_SENT);
	return 0;
}

bool wp_h2c_done(const struct wp_h2c *c)
{
	if (c->outlen > 0 || nghttp2_session_want_write(c->ss))
		return false;
	return c->failed || !nghttp2_session_want_read(c->ss);
}

uint32_t wp_h2c_streams(const struct wp_h2c *c)
{
	return c->nstreams;
}

bool wp_h2c_can_open(const struct wp_h2c *c)
{
	uint32_t peer_max =
	        nghttp2_session_get_remote_settings(c->ss, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);

	return !c->server && !c->failed && !c->goaway_rx &&
	       c->nstreams < WP_MIN(peer_max, c->cfg.max_streams) &&
	       nghttp2_session_get_next_stream_id(c->ss) <= INT32_MAX;
}

#define NV(n, v, vl)                                                                               \
	((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl),                         \
	              NGHTTP2_NV_FLAG_NO_COPY_NAME})

struct wp_h2s *wp_h2c_open(struct wp_h2c *c, const struct wp_sockaddr *authority,
                           const char *baggage, const char *forwarded, const char *traceparent,
                           void *app)
{
	char auth[WP_ADDR_STRLEN];
	nghttp2_nv nva[5];
	size_t n = 0;
	nghttp2_data_provider prd;
	struct wp_h2s *s;
	int32_t id;

	if (!wp_h2c_can_open(c)) {
		ctr(c, WP_CTR_HBONE_OPEN_LIMIT);
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
	s = stream_new(c);
	if (s == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	prd.source.ptr = s;
	prd.read_callback = read_cb;
	id = nghttp2_submit_request(c->ss, NULL, nva, n, &prd, s);
	if (id < 0) {
		stream_free(s);
		errno = id == NGHTTP2_ERR_NOMEM ? ENOMEM : ECONNRESET;
		return NULL;
	}
	s->id = id;
	s->app = app;
	s->known = 1;
	s->has_prd = 1;
	s->responded = 1;
	return s;
}

/* ---- streams: the application's side ---- */

int wp_h2s_respond(struct wp_h2s *s, int status)
{
	struct wp_h2c *c = s->c;
	char st[4];
	nghttp2_nv nv;
	nghttp2_data_provider prd;
	int rv;

	if (s->responded || !c->server)
		return -EALREADY;
	if (status < 100 || status > 999)
		return -EINVAL;
	snprintf(st, sizeof(st), "%03d", status);
	nv = NV(":status", st, 3);
	if (status == 200) {
		prd.source.ptr = s;
		prd.read_callback = read_cb;
		rv = nghttp2_submit_response(c->ss, s->id, &nv, 1, &prd);
		if (rv == 0) {
			s->has_prd = 1;
			ctr(c, WP_CTR_HBONE_TUNNEL_OPENED);
		}
	} else {
		rv = nghttp2_submit_response(c->ss, s->id, &nv, 1, NULL);
		if (rv == 0) {
			s->local_close = 1;
			if (s->known)
				ctr(c, status == 400   ? WP_CTR_HBONE_RESP_400
				       : status == 401 ? WP_CTR_HBONE_RESP_401
				       : status == 503 ? WP_CTR_HBONE_RESP_503
				                       : WP_CTR_HBONE_RESP_OTHER);
		}
	}
	if (rv != 0)
		return rv == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EINVAL;
	s->responded = 1;
	return 0;
}

ssize_t wp_h2s_write(struct wp_h2s *s, const uint8_t *data, size_t len)
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
			ctr(s->c, WP_CTR_HBONE_NOMEM);
			s->want_writable = 1;
			return 0;
		}
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
	resume(s);
	return (ssize_t)n;
}

int wp_h2s_shutdown(struct wp_h2s *s)
{
	if (s->shut_out)
		return 0;
	s->shut_out = 1;
	resume(s);
	return 0;
}

int wp_h2s_consume(struct wp_h2s *s, size_t n)
{
	n = WP_MIN(n, s->unconsumed);
	if (n == 0)
		return 0;
	s->unconsumed -= n;
	return nghttp2_session_consume(s->c->ss, s->id, n) == 0 ? 0 : -EINVAL;
}

int wp_h2s_reset(struct wp_h2s *s, uint32_t h2_error)
{
	s->local_close = 1;
	return nghttp2_submit_rst_stream(s->c->ss, NGHTTP2_FLAG_NONE, s->id, h2_error) == 0
	               ? 0
	               : -ENOMEM;
}

void wp_h2s_set_app(struct wp_h2s *s, void *app)
{
	s->app = app;
}

void *wp_h2s_app(const struct wp_h2s *s)
{
	return s->app;
}

struct wp_h2c *wp_h2s_conn(const struct wp_h2s *s)
{
	return s->c;
}

int32_t wp_h2s_id(const struct wp_h2s *s)
{
	return s->id;
}

const struct wp_hbone_req *wp_h2s_request(const struct wp_h2s *s)
{
	return s->c->server ? &s->req : NULL;
}

size_t wp_h2s_pending(const struct wp_h2s *s)
{
	return s->slen;
}
