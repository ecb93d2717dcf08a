/*
 * HTTP/1.1 load generator and backend for bench/l7_bench.py (issue 6's
 * benchmark; kernel sockets, OpenSSL, nghttp2; not a data path).
 *
 *   l7_load hbone IP PORT CONNS SECONDS RATE CERT KEY CA AUTHORITY
 *       CONNS threads, each one mTLS + HTTP/2 connection (ALPN h2, client
 *       certificate, like a ztunnel) with one persistent HBONE tunnel
 *       (CONNECT AUTHORITY) in which it loops keep-alive HTTP/1.1 requests:
 *       POST with a 1024-byte body, waits for the whole response
 *       (Content-Length), sends the next.
 *   l7_load h2 IP PORT CONNS SECONDS RATE CERT KEY CA AUTHORITY [STREAMS]
 *       the same over plain HTTP/2 requests (POST, 1024-byte body) on one
 *       TLS + h2 connection per thread, one request in flight: what a TLS+h2
 *       reverse proxy (HAProxy) is offered. STREAMS > 1 (closed loop only)
 *       keeps that many requests in flight on each connection, each on its
 *       own stream, a new one submitted as each ends: the shape h2 clients
 *       that multiplex use.
 *   l7_load h1 IP PORT CONNS SECONDS RATE
 *       the same HTTP/1.1 loop on a plain TCP connection (the backend
 *       directly: the baseline the added latency is measured against).
 *   l7_load serve PORT
 *       the backend: epoll, one thread, answers every HTTP/1.1 request
 *       (Content-Length bodies) with 200 and a 1024-byte body, keep-alive.
 *   l7_load bulk IP PORT BYTES CERT KEY CA AUTHORITY [SECONDS_MAX [MBIT_S]]
 *       one tunnel kept full, for bench/hbone_bench.py's tunnel phase: the
 *       hbone connection and CONNECT, then BYTES of a pseudo-random
 *       sequence sent to an echo backend while the echo is read back
 *       (non-blocking, poll), END_STREAM after the last byte, done at the
 *       echo's END_STREAM. SHA-256 of both directions compared. The windows
 *       are 16 MiB; DATA frames of 16 KiB are gathered into 16 KiB TLS
 *       records (a frame's 9-byte header would otherwise make a record of
 *       its own), as a streaming TLS client such as ztunnel's writes them.
 *       More than SECONDS_MAX (default 120) in all is a failure. With
 *       MBIT_S > 0 the sending is paced at MBIT_S megabits of payload per
 *       second (a tunnel carrying a steady stream rather than one kept
 *       full: the DATA source is deferred while it is ahead of the rate).
 *       Prints one JSON line: bytes_each_way, bytes_back, seconds (from
 *       the CONNECT's 200 to the echo's END_STREAM), gbit_s_both_ways,
 *       sha256_ok, ok (or, without a tunnel, ok 0 and the error with the
 *       CONNECT's status); exit status 0 only when every byte came back
 *       unchanged.
 *
 * RATE 0 is closed loop (as fast as answers come); RATE > 0 paces the
 * requests at RATE per second in total (each thread RATE/CONNS on a fixed
 * schedule; latency counts from the send, not from the schedule). Prints one
 * JSON line: requests, failed, seconds, rps, p50_us, p99_us, conns, streams.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "wp/tls_suites.h"

#define BODY        1024
#define MAX_SAMPLES (1 << 20)
#define INBUF       (256 * 1024)

/* bulk: the sequence is this block, rotated by 7919 bytes more each MiB
 * (tests/integration/hbone_load.py's shape); TLS plaintext gathered in OBUF
 * and written RECORD at a time; both HTTP/2 windows WINDOW. */
#define BULK_BLOCK  (1 << 20)
#define BULK_OBUF   (256 * 1024)
#define BULK_RECORD 16384
#define BULK_WINDOW (1 << 24)

enum mode { M_HBONE, M_H2, M_H1, M_BULK };

static enum mode g_mode;
static struct sockaddr_in g_sin;
static double g_seconds, g_rate;
static long g_conns;
static long g_streams = 1; /* h2: requests in flight per connection */
static const char *g_authority = "bench";
static SSL_CTX *g_ctx;
static unsigned char g_req[2048];
static size_t g_req_len;
static unsigned char g_body[BODY];
static unsigned char *g_block; /* bulk: BULK_BLOCK bytes (owned) */
static double g_bulk_rate;     /* bulk: payload bytes per second, 0 unpaced */
static double g_bulk_t0;       /* bulk: when the CONNECT was answered */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
	struct timespec ts;

	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* One of a connection's concurrent h2 requests (STREAMS > 1); the stream's
 * user data, and the read callback's source. */
struct h2req {
	int busy;
	double t0;
	size_t sent, got;
	int status;
};

/* One generator thread: its connection and its latency samples. */
struct gen {
	pthread_t th;
	int fd;
	SSL *ssl;
	nghttp2_session *s;
	int32_t sid;
	const unsigned char *out; /* pending tunnel bytes (hbone) or body (h2) */
	size_t out_len;
	unsigned char in[INBUF]; /* received HTTP/1.1 bytes / h2 body */
	size_t in_len;
	int status, stream_done, eof;
	long ok, failed;
	const char *suite; /* the TLS 1.3 suite the server picked (static), or NULL */
	float *lat_us;     /* owned, MAX_SAMPLES / g_conns entries */
	long nlat, cap;
	struct h2req *reqs; /* STREAMS > 1: g_streams slots (owned) */
	/* bulk: bytes to send, handed to nghttp2 (queued), written into obuf
	 * (made) and echoed back (got); the hash of each direction (owned) */
	uint64_t total, queued, made, got;
	EVP_MD_CTX *sha_out, *sha_in;
	/* bulk: TLS plaintext not yet taken by SSL_write, obuf[ohead..otail)
	 * (owned; NULL until the CONNECT is answered: nghttp2 writes straight
	 * to SSL before). ofull: a frame did not fit in the last send, so only
	 * whole records go out; olast: the length of a write that wants to be
	 * retried (OpenSSL wants at least as much again). */
	unsigned char *obuf;
	size_t ohead, otail, olast;
	int ofull, want_out;
	int paced_wait; /* bulk: the source deferred, ahead of g_bulk_rate */
};

/* bulk: room for len more bytes at obuf's tail (compacted first when
 * needed), or NULL when it is that full (ofull set). */
static unsigned char *obuf_room(struct gen *g, size_t len)
{
	if (BULK_OBUF - g->otail < len && g->ohead > 0) {
		/* OpenSSL may be holding a retry of obuf's head: it was told
		 * the buffer may move (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER) */
		memmove(g->obuf, g->obuf + g->ohead, g->otail - g->ohead);
		g->otail -= g->ohead;
		g->ohead = 0;
	}
	if (BULK_OBUF - g->otail < len) {
		g->ofull = 1;
		return NULL;
	}
	return g->obuf + g->otail;
}

/* bulk: len bytes of the sequence from offset off. */
static void bulk_pattern(uint64_t off, unsigned char *dst, size_t len)
{
	while (len > 0) {
		size_t in = (size_t)(off % BULK_BLOCK);
		size_t pos = (in + (size_t)(off / BULK_BLOCK * 7919 % BULK_BLOCK)) % BULK_BLOCK;
		size_t n = len;

		if (n > BULK_BLOCK - in)
			n = BULK_BLOCK - in;
		if (n > BULK_BLOCK - pos)
			n = BULK_BLOCK - pos;
		memcpy(dst, g_block + pos, n);
		dst += n;
		off += n;
		len -= n;
	}
}

/* bulk: one whole DATA frame (read_cb said NO_COPY) into obuf, its payload
 * made from the sequence there and hashed; would-block when it does not
 * fit (nghttp2 offers the same frame again). */
static int send_data_cb(nghttp2_session *s, nghttp2_frame *f, const uint8_t *hd, size_t len,
                        nghttp2_data_source *src, void *u)
{
	struct gen *g = u;
	unsigned char *p = obuf_room(g, 9 + len);

	(void)s;
	(void)f; /* never padded: no padding callback */
	(void)src;
	if (p == NULL)
		return NGHTTP2_ERR_WOULDBLOCK;
	memcpy(p, hd, 9);
	bulk_pattern(g->made, p + 9, len);
	EVP_DigestUpdate(g->sha_out, p + 9, len);
	g->made += len;
	g->otail += 9 + len;
	return 0;
}

static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *u)
{
	struct gen *g = u;
	int n;

	(void)s;
	(void)flags;
	if (g->obuf != NULL) {
		unsigned char *p = obuf_room(g, len);

		if (p == NULL)
			return NGHTTP2_ERR_WOULDBLOCK;
		memcpy(p, data, len);
		g->otail += len;
		return (ssize_t)len;
	}
	n = SSL_write(g->ssl, data, (int)len);
	return n > 0 ? n : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int chunk_cb(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                    void *u)
{
	struct gen *g = u;
	struct h2req *r = nghttp2_session_get_stream_user_data(s, sid);

	(void)flags;
	(void)data;
	if (r != NULL) {
		r->got += len;
		return 0;
	}
	if (sid == g->sid && g_mode == M_BULK) {
		EVP_DigestUpdate(g->sha_in, data, len);
		g->got += len;
		return 0;
	}
	if (sid != g->sid || g->in_len + len > sizeof(g->in))
		return 0;
	memcpy(g->in + g->in_len, data, len);
	g->in_len += len;
	return 0;
}

static int header_cb(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *u)
{
	struct gen *g = u;
	struct h2req *r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

	(void)flags;
	(void)vlen;
	if (nlen != 7 || memcmp(name, ":status", 7) != 0)
		return 0;
	if (r != NULL)
		r->status = atoi((const char *)value);
	else if (f->hd.stream_id == g->sid)
		g->status = atoi((const char *)value);
	return 0;
}

static int frame_cb(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
	struct gen *g = u;

	(void)s;
	if (f->hd.stream_id == g->sid && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    (f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS))
		g->stream_done = 1;
	return 0;
}

static void record(struct gen *g, double t0, double t1)
{
	g->ok++;
	if (g->nlat < g->cap)
		g->lat_us[g->nlat++] = (float)((t1 - t0) * 1e6);
}

static int close_cb(nghttp2_session *s, int32_t sid, uint32_t err, void *u)
{
	struct gen *g = u;
	struct h2req *r = nghttp2_session_get_stream_user_data(s, sid);

	(void)err;
	if (r != NULL) {
		if (r->status == 200 && r->got == BODY)
			record(g, r->t0, now_s());
		else
			g->failed++;
		r->busy = 0;
		return 0;
	}
	if (sid == g->sid)
		g->stream_done = 1;
	return 0;
}

/* Data source: hbone tunnel bytes (deferred when none) or the h2 body. */
static ssize_t read_cb(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *u)
{
	struct gen *g = u;
	struct h2req *r = src->ptr;
	size_t n;

	(void)s;
	(void)sid;
	if (r != NULL) {
		n = BODY - r->sent < len ? BODY - r->sent : len;
		memcpy(buf, g_body + r->sent, n);
		r->sent += n;
		if (r->sent == BODY)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		return (ssize_t)n;
	}
	if (g_mode == M_BULK) {
		if (g->obuf == NULL)
			return NGHTTP2_ERR_DEFERRED; /* until the CONNECT is answered */
		if (g_bulk_rate > 0) {
			double due = g_bulk_rate * (now_s() - g_bulk_t0) - (double)g->queued;

			if (due < (double)len && g->queued + len < g->total) {
				g->paced_wait = 1; /* bulk_run resumes it when due */
				return NGHTTP2_ERR_DEFERRED;
			}
		}
		n = g->total - g->queued < len ? (size_t)(g->total - g->queued) : len;
		g->queued += n;
		if (g->queued == g->total)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (n > 0)
			*flags |= NGHTTP2_DATA_FLAG_NO_COPY; /* send_data_cb writes it */
		return (ssize_t)n;
	}
	if (g->out_len == 0) {
		if (g_mode == M_H2) {
			*flags |= NGHTTP2_DATA_FLAG_EOF;
			return 0;
		}
		return NGHTTP2_ERR_DEFERRED;
	}
	n = g->out_len < len ? g->out_len : len;
	memcpy(buf, g->out, n);
	g->out += n;
	g->out_len -= n;
	if (g_mode == M_H2 && g->out_len == 0)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* Reads once from the connection and feeds nghttp2 (or the h1 buffer). */
static int pump(struct gen *g)
{
	unsigned char buf[32768];
	int n;

	if (g_mode == M_H1) {
		ssize_t r = read(g->fd, g->in + g->in_len, sizeof(g->in) - g->in_len);

		if (r <= 0)
			return -1;
		g->in_len += (size_t)r;
		return 0;
	}
	n = SSL_read(g->ssl, buf, sizeof(buf));
	if (n <= 0)
		return -1;
	if (nghttp2_session_mem_recv(g->s, buf, (size_t)n) < 0)
		return -1;
	return nghttp2_session_send(g->s) == 0 ? 0 : -1;
}

/* Length of one complete HTTP/1.1 response at the head of in[], or 0. */
static size_t h1_complete(const unsigned char *in, size_t len, int *status)
{
	const unsigned char *end = memmem(in, len, "\r\n\r\n", 4);
	size_t hl, cl = 0;

	if (end == NULL)
		return 0;
	hl = (size_t)(end - in) + 4;
	for (const unsigned char *p = in; p < end; p++) {
		if ((p == in || p[-1] == '\n') && (size_t)(end - p) > 15 &&
		    strncasecmp((const char *)p, "content-length:", 15) == 0) {
			cl = strtoul((const char *)p + 15, NULL, 10);
			break;
		}
	}
	if (len < hl + cl)
		return 0;
	*status = len > 12 ? atoi((const char *)in + 9) : 0;
	return hl + cl;
}

static int gen_connect(struct gen *g)
{
	static const unsigned char alpn[] = "\x02h2";
	int one = 1;
	nghttp2_session_callbacks *cb;
	nghttp2_settings_entry set[] = {
	        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, g_mode == M_BULK ? BULK_WINDOW : 1 << 20}};

	g->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (g->fd < 0)
		return -1;
	setsockopt(g->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(g->fd, (const struct sockaddr *)&g_sin, sizeof(g_sin)) != 0)
		return -1;
	if (g_mode == M_H1)
		return 0;
	g->ssl = SSL_new(g_ctx);
	SSL_set_fd(g->ssl, g->fd);
	SSL_set_alpn_protos(g->ssl, alpn, sizeof(alpn) - 1);
	if (SSL_connect(g->ssl) != 1)
		return -1;
	g->suite = SSL_CIPHER_get_name(SSL_get_current_cipher(g->ssl));
	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_callbacks_set_send_callback(cb, send_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, chunk_cb);
	nghttp2_session_callbacks_set_on_header_callback(cb, header_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, frame_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, close_cb);
	nghttp2_session_callbacks_set_send_data_callback(cb, send_data_cb);
	nghttp2_session_client_new(&g->s, cb, g);
	nghttp2_session_callbacks_del(cb);
	nghttp2_submit_settings(g->s, NGHTTP2_FLAG_NONE, set, 1);
	nghttp2_session_set_local_window_size(g->s, NGHTTP2_FLAG_NONE, 0, 1 << 24);
	if (g_mode == M_HBONE || g_mode == M_BULK) {
		nghttp2_nv nv[] = {
		        {(uint8_t *)":method", (uint8_t *)"CONNECT", 7, 7, 0},
		        {(uint8_t *)":authority", (uint8_t *)g_authority, 10, strlen(g_authority),
		         0},
		};
		nghttp2_data_provider dp = {.read_callback = read_cb};

		g->sid = nghttp2_submit_request(g->s, NULL, nv, 2, &dp, NULL);
		if (g->sid < 0 || nghttp2_session_send(g->s) != 0)
			return -1;
		while (g->status == 0 && !g->stream_done)
			if (pump(g) != 0)
				return -1;
		return g->status == 200 && !g->stream_done ? 0 : -1;
	}
	return nghttp2_session_send(g->s) == 0 ? 0 : -1;
}

/* One request and its whole response; 0 when answered 200. */
static int one_request(struct gen *g)
{
	if (g_mode == M_H2) {
		char cl[8];
		nghttp2_nv nv[] = {
		        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
		        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, 0},
		        {(uint8_t *)":path", (uint8_t *)"/bench", 5, 6, 0},
		        {(uint8_t *)":authority", (uint8_t *)g_authority, 10, strlen(g_authority),
		         0},
		        {(uint8_t *)"content-type", (uint8_t *)"application/octet-stream", 12, 24,
		         0},
		        {(uint8_t *)"content-length", (uint8_t *)cl, 14, 0, 0},
		};
		nghttp2_data_provider dp = {.read_callback = read_cb};

		nv[5].valuelen = (size_t)snprintf(cl, sizeof(cl), "%d", BODY);
		g->out = g_body;
		g->out_len = BODY;
		g->status = 0;
		g->stream_done = 0;
		g->in_len = 0;
		g->sid = nghttp2_submit_request(g->s, NULL, nv, 6, &dp, NULL);
		if (g->sid < 0 || nghttp2_session_send(g->s) != 0)
			return -1;
		while (!g->stream_done)
			if (pump(g) != 0)
				return -1;
		return g->status == 200 && g->in_len == BODY ? 0 : 1;
	}
	if (g_mode == M_H1) {
		size_t off = 0;

		while (off < g_req_len) {
			ssize_t w = write(g->fd, g_req + off, g_req_len - off);

			if (w <= 0)
				return -1;
			off += (size_t)w;
		}
	} else {
		g->out = g_req;
		g->out_len = g_req_len;
		if (nghttp2_session_resume_data(g->s, g->sid) != 0 ||
		    nghttp2_session_send(g->s) != 0)
			return -1;
	}
	for (;;) {
		int status = 0;
		size_t n = h1_complete(g->in, g->in_len, &status);

		if (n > 0) {
			memmove(g->in, g->in + n, g->in_len - n);
			g->in_len -= n;
			return status == 200 ? 0 : 1;
		}
		if ((g_mode == M_HBONE && g->stream_done) || pump(g) != 0)
			return -1;
	}
}

/* Submits a POST on slot r (STREAMS > 1). */
static int submit_multi(struct gen *g, struct h2req *r)
{
	char cl[8];
	nghttp2_nv nv[] = {
	        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
	        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, 0},
	        {(uint8_t *)":path", (uint8_t *)"/bench", 5, 6, 0},
	        {(uint8_t *)":authority", (uint8_t *)g_authority, 10, strlen(g_authority), 0},
	        {(uint8_t *)"content-type", (uint8_t *)"application/octet-stream", 12, 24, 0},
	        {(uint8_t *)"content-length", (uint8_t *)cl, 14, 0, 0},
	};
	nghttp2_data_provider dp = {.source.ptr = r, .read_callback = read_cb};

	nv[5].valuelen = (size_t)snprintf(cl, sizeof(cl), "%d", BODY);
	memset(r, 0, sizeof(*r));
	r->busy = 1;
	r->t0 = now_s();
	return nghttp2_submit_request(g->s, NULL, nv, 6, &dp, r) < 0 ? -1 : 0;
}

/* Closed loop with g_streams requests in flight on the connection: a new
 * stream replaces each one that ends, until the time is up; then the ones
 * in flight finish. */
static void run_multi(struct gen *g)
{
	double t_end = now_s() + g_seconds;

	for (;;) {
		int open = 0, more = now_s() < t_end;

		for (long i = 0; i < g_streams; i++) {
			if (!g->reqs[i].busy && more && submit_multi(g, &g->reqs[i]) != 0)
				more = 0;
			open += g->reqs[i].busy;
		}
		if (open == 0)
			return;
		if (nghttp2_session_send(g->s) != 0 || pump(g) != 0) {
			g->failed += open;
			return;
		}
	}
}

static void *gen_run(void *arg)
{
	struct gen *g = arg;
	double t_end, next, interval = g_rate > 0 ? (double)g_conns / g_rate : 0;

	if (gen_connect(g) != 0) {
		g->failed++;
		ERR_print_errors_fp(stderr);
		return NULL;
	}
	if (g->reqs != NULL) {
		run_multi(g);
		return NULL;
	}
	next = now_s();
	t_end = next + g_seconds;
	for (;;) {
		double t0, t1;
		int rc;

		if (interval > 0) {
			next += interval;
			sleep_until(next);
		}
		t0 = now_s();
		if (t0 >= t_end)
			break;
		rc = one_request(g);
		t1 = now_s();
		if (rc < 0) {
			g->failed++;
			break;
		}
		if (rc > 0) {
			g->failed++;
			continue;
		}
		record(g, t0, t1);
	}
	return NULL;
}

/* --- bulk: one tunnel kept full ------------------------------------- */

/* Writes obuf's plaintext, one 16 KiB record per SSL_write (partial-write
 * mode), until the socket is full or obuf empty; while ofull, a tail
 * shorter than a record waits for the rest of its record. 0, or -1 on a
 * TLS or socket error. */
static int bulk_flush(struct gen *g)
{
	for (;;) {
		size_t n = g->otail - g->ohead;
		int w;

		if (g->ofull)
			n -= n % BULK_RECORD;
		if (n < g->olast)
			n = g->olast;
		if (n == 0)
			return 0;
		w = SSL_write(g->ssl, g->obuf + g->ohead, (int)n);
		if (w <= 0) {
			int e = SSL_get_error(g->ssl, w);

			if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
				return -1;
			g->olast = n;
			g->want_out |= e == SSL_ERROR_WANT_WRITE;
			return 0;
		}
		g->olast = 0;
		g->ohead += (size_t)w;
		if (g->ohead == g->otail)
			g->ohead = g->otail = 0;
	}
}

/* Reads what the socket has (at most 16 records, so that writing gets its
 * turn) into nghttp2. 0, or -1 on an error or the peer's close. */
static int bulk_read(struct gen *g)
{
	unsigned char buf[BULK_RECORD];

	for (int i = 0; i < 16; i++) {
		int n = SSL_read(g->ssl, buf, sizeof(buf));

		if (n <= 0) {
			int e = SSL_get_error(g->ssl, n);

			g->want_out |= e == SSL_ERROR_WANT_WRITE;
			return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
		}
		if (nghttp2_session_mem_recv(g->s, buf, (size_t)n) < 0)
			return -1;
	}
	return 0;
}

/* Sends and reads until the echo's stream ends or t_end; 0 when it ended
 * (the caller checks the bytes), -1 on an error or the time. Waits in poll
 * only when nothing can move without the socket: obuf had room for what
 * nghttp2 could send, or the socket is full, and OpenSSL holds no record
 * already read. */
static int bulk_run(struct gen *g, double t_end)
{
	struct pollfd pfd = {.fd = g->fd};

	for (;;) {
		g->ofull = 0;
		g->want_out = 0;
		if (g->paced_wait &&
		    g_bulk_rate * (now_s() - g_bulk_t0) - (double)g->queued >= BULK_RECORD) {
			g->paced_wait = 0;
			nghttp2_session_resume_data(g->s, g->sid);
		}
		if (bulk_read(g) != 0 || nghttp2_session_send(g->s) != 0 || bulk_flush(g) != 0)
			return -1;
		if (g->stream_done)
			return 0;
		if (now_s() > t_end)
			return -1;
		if ((g->ofull && !g->want_out) || SSL_has_pending(g->ssl))
			continue;
		pfd.events = POLLIN | (g->want_out ? POLLOUT : 0);
		if (poll(&pfd, 1, g->paced_wait ? 1 : 100) < 0 && errno != EINTR)
			return -1;
	}
}

static void bulk_timeout(int sig)
{
	static const char msg[] = "{\"ok\": 0, \"error\": \"set-up timed out\"}\n";

	(void)sig;
	_exit(write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0 ? 2 : 1);
}

/* l7_load bulk on g (zeroed, g_ctx and the address set): the exit status. */
static int bulk(struct gen *g, uint64_t bytes, double seconds_max)
{
	unsigned char h_out[EVP_MAX_MD_SIZE], h_in[EVP_MAX_MD_SIZE];
	uint64_t x = 0x9e3779b97f4a7c15ull; /* xorshift64 */
	double t0, t_end = now_s() + seconds_max, secs;
	int rc, sha_ok;

	g_block = malloc(BULK_BLOCK);
	g->obuf = NULL;
	g->total = bytes;
	g->sha_out = EVP_MD_CTX_new();
	g->sha_in = EVP_MD_CTX_new();
	if (g_block == NULL || g->sha_out == NULL || g->sha_in == NULL ||
	    EVP_DigestInit_ex(g->sha_out, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestInit_ex(g->sha_in, EVP_sha256(), NULL) != 1)
		return 1;
	for (size_t i = 0; i < BULK_BLOCK; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(g_block + i, &x, 8);
	}
	/* the set-up blocks (gen_connect): the alarm bounds it */
	signal(SIGALRM, bulk_timeout);
	alarm((unsigned)seconds_max + 1);
	if (gen_connect(g) != 0) {
		ERR_print_errors_fp(stderr);
		printf("{\"ok\": 0, \"error\": \"no tunnel\", \"status\": %d}\n", g->status);
		return 1;
	}
	alarm(0);
	g->obuf = malloc(BULK_OBUF);
	if (g->obuf == NULL || fcntl(g->fd, F_SETFL, fcntl(g->fd, F_GETFL) | O_NONBLOCK) != 0)
		return 1;
	SSL_set_mode(g->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* TCP_NODELAY stays on (gen_connect): off measured no different, the
	 * kernel joins a record's last partial segment to the next record */
	t0 = g_bulk_t0 = now_s();
	/* the data source deferred while obuf was NULL (or was not asked yet:
	 * then there is nothing to resume) */
	nghttp2_session_resume_data(g->s, g->sid);
	rc = bulk_run(g, t_end);
	secs = now_s() - t0;
	EVP_DigestFinal_ex(g->sha_out, h_out, NULL);
	EVP_DigestFinal_ex(g->sha_in, h_in, NULL);
	sha_ok = memcmp(h_out, h_in, 32) == 0;
	rc = rc == 0 && sha_ok && g->made == bytes && g->got == bytes;
	printf("{\"bytes_each_way\": %llu, \"bytes_back\": %llu, \"seconds\": %.3f, "
	       "\"gbit_s_both_ways\": %.3f, \"sha256_ok\": %d, \"ok\": %d}\n",
	       (unsigned long long)bytes, (unsigned long long)g->got, secs,
	       secs > 0 ? (double)(g->made + g->got) * 8 / secs / 1e9 : 0.0, sha_ok, rc);
	EVP_MD_CTX_free(g->sha_out);
	EVP_MD_CTX_free(g->sha_in);
	free(g->obuf);
	free(g_block);
	return rc ? 0 : 1;
}

static int cmp_f(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return x < y ? -1 : x > y;
}

/* --- the backend --------------------------------------------------- */

#define MAXFD 8192
struct peer {
	unsigned char in[16384];
	size_t len;
};

static int serve(int port)
{
	static struct peer *peers[MAXFD];
	static unsigned char resp[BODY + 256];
	size_t resp_len;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct epoll_event ev, evs[256];
	int ls = socket(AF_INET, SOCK_STREAM, 0), ep = epoll_create1(0), one = 1;

	resp_len = (size_t)snprintf((char *)resp, sizeof(resp),
	                            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
	                            "Content-Length: %d\r\n\r\n",
	                            BODY);
	memset(resp + resp_len, 'r', BODY);
	resp_len += BODY;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 1024) != 0) {
		perror("serve");
		return 1;
	}
	ev.events = EPOLLIN;
	ev.data.fd = ls;
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	printf("{\"listening\": %d}\n", port);
	fflush(stdout);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			struct peer *p;
			ssize_t r;

			if (fd == ls) {
				int c = accept4(ls, NULL, NULL, SOCK_NONBLOCK);

				if (c < 0)
					continue;
				if (c >= MAXFD) {
					close(c);
					continue;
				}
				setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				if (peers[c] == NULL)
					peers[c] = calloc(1, sizeof(struct peer));
				peers[c]->len = 0;
				ev.events = EPOLLIN;
				ev.data.fd = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				continue;
			}
			p = peers[fd];
			r = read(fd, p->in + p->len, sizeof(p->in) - p->len);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				close(fd);
				continue;
			}
			p->len += (size_t)r;
			for (;;) {
				const unsigned char *end = memmem(p->in, p->len, "\r\n\r\n", 4);
				size_t hl, cl = 0, k;

				if (end == NULL)
					break;
				hl = (size_t)(end - p->in) + 4;
				for (const unsigned char *q = p->in; q < end; q++)
					if ((q == p->in || q[-1] == '\n') &&
					    (size_t)(end - q) > 15 &&
					    strncasecmp((const char *)q, "content-length:", 15) ==
					            0) {
						cl = strtoul((const char *)q + 15, NULL, 10);
						break;
					}
				if (p->len < hl + cl)
					break;
				k = 0;
				while (k < resp_len) { /* small: the socket buffer takes it */
					ssize_t w = write(fd, resp + k, resp_len - k);

					if (w <= 0)
						break;
					k += (size_t)w;
				}
				memmove(p->in, p->in + hl + cl, p->len - hl - cl);
				p->len -= hl + cl;
			}
		}
	}
}

/* The client TLS context: TLS 1.3, this certificate, the server verified
 * against ca. 0, or -1 (reported). */
static int ctx_init(const char *cert, const char *key, const char *ca)
{
	g_ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(g_ctx, TLS1_3_VERSION);
	if (SSL_CTX_use_certificate_chain_file(g_ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(g_ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(g_ctx, ca, NULL) != 1) {
		ERR_print_errors_fp(stderr);
		return -1;
	}
	SSL_CTX_set_verify(g_ctx, SSL_VERIFY_PEER, NULL);
	/* waypointd's default order (tls.ciphersuites): a server that follows
	 * the client's order (h2o 2.2 cannot be told one for TLS 1.3) then
	 * picks the suite waypointd picks by its own preference */
	if (SSL_CTX_set_ciphersuites(g_ctx, WP_TLS13_SUITES_DEFAULT) != 1) {
		ERR_print_errors_fp(stderr);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct gen *gens;
	long ok = 0, failed = 0, nlat = 0;
	const char *suite = NULL;
	float *all;
	double t0, secs;

	if (argc >= 3 && strcmp(argv[1], "serve") == 0)
		return serve(atoi(argv[2]));
	if (argc < 7 || (strcmp(argv[1], "bulk") == 0 && argc < 9)) {
		fprintf(stderr, "usage: l7_load hbone|h2|h1 IP PORT CONNS SECONDS RATE "
		                "[CERT KEY CA AUTHORITY [STREAMS]] | l7_load serve PORT | "
		                "l7_load bulk IP PORT BYTES CERT KEY CA AUTHORITY [SECONDS_MAX "
		                "[MBIT_S]]\n");
		return 2;
	}
	memset(&g_sin, 0, sizeof(g_sin));
	g_sin.sin_family = AF_INET;
	g_sin.sin_port = htons((uint16_t)atoi(argv[3]));
	if (strcmp(argv[1], "bulk") == 0) {
		static struct gen bg;
		char *end;
		unsigned long long bytes = strtoull(argv[4], &end, 10);
		double smax = argc > 9 ? atof(argv[9]) : 120;
		double mbit = argc > 10 ? atof(argv[10]) : 0;

		g_mode = M_BULK;
		g_authority = argv[8];
		bg.fd = -1;
		g_bulk_rate = mbit * 1e6 / 8;
		if (*end != '\0' || smax <= 0 || mbit < 0 ||
		    inet_pton(AF_INET, argv[2], &g_sin.sin_addr) != 1) {
			fprintf(stderr, "l7_load bulk: IP an IPv4 address, BYTES a count, "
			                "SECONDS_MAX > 0, MBIT_S >= 0\n");
			return 2;
		}
		if (ctx_init(argv[5], argv[6], argv[7]) != 0)
			return 1;
		/* records read ahead: fewer reads of the socket per record */
		SSL_CTX_set_read_ahead(g_ctx, 1);
		SSL_CTX_set_default_read_buffer_len(g_ctx, 4 * BULK_RECORD);
		return bulk(&bg, bytes, smax);
	}
	g_mode = strcmp(argv[1], "hbone") == 0 ? M_HBONE : strcmp(argv[1], "h2") == 0 ? M_H2 : M_H1;
	g_conns = atol(argv[4]);
	g_seconds = atof(argv[5]);
	g_rate = atof(argv[6]);
	if (inet_pton(AF_INET, argv[2], &g_sin.sin_addr) != 1 || g_conns <= 0 || g_seconds <= 0)
		return 2;
	if (g_mode != M_H1) {
		if (argc < 11)
			return 2;
		g_authority = argv[10];
		if (g_mode == M_H2 && argc > 11)
			g_streams = atol(argv[11]);
		if (g_streams < 1 || g_streams > 100 || (g_streams > 1 && g_rate > 0)) {
			fprintf(stderr, "l7_load: STREAMS 1..100, and > 1 only in closed loop\n");
			return 2;
		}
		if (ctx_init(argv[7], argv[8], argv[9]) != 0)
			return 1;
	}
	memset(g_body, 'q', sizeof(g_body));
	g_req_len = (size_t)snprintf((char *)g_req, sizeof(g_req),
	                             "POST /bench HTTP/1.1\r\nHost: %s\r\n"
	                             "Content-Type: application/octet-stream\r\n"
	                             "Content-Length: %d\r\n\r\n",
	                             g_authority, BODY);
	memcpy(g_req + g_req_len, g_body, BODY);
	g_req_len += BODY;
	gens = calloc((size_t)g_conns, sizeof(*gens));
	all = malloc(sizeof(float) * MAX_SAMPLES);
	if (gens == NULL || all == NULL)
		return 1;
	t0 = now_s();
	for (long i = 0; i < g_conns; i++) {
		gens[i].cap = MAX_SAMPLES / g_conns;
		gens[i].lat_us = all + i * gens[i].cap;
		gens[i].fd = -1;
		if (g_streams > 1 &&
		    (gens[i].reqs = calloc((size_t)g_streams, sizeof(struct h2req))) == NULL)
			return 1;
		pthread_create(&gens[i].th, NULL, gen_run, &gens[i]);
	}
	for (long i = 0; i < g_conns; i++) {
		pthread_join(gens[i].th, NULL);
		ok += gens[i].ok;
		failed += gens[i].failed;
		free(gens[i].reqs);
	}
	secs = now_s() - t0;
	for (long i = 0; i < g_conns; i++) {
		memmove(all + nlat, gens[i].lat_us, sizeof(float) * (size_t)gens[i].nlat);
		nlat += gens[i].nlat;
		if (gens[i].suite != NULL)
			suite = suite == NULL || strcmp(suite, gens[i].suite) == 0 ? gens[i].suite
			                                                           : "mixed";
	}
	qsort(all, (size_t)nlat, sizeof(float), cmp_f);
	printf("{\"requests\": %ld, \"failed\": %ld, \"seconds\": %.3f, \"rps\": %.0f, "
	       "\"p50_us\": %.1f, \"p99_us\": %.1f, \"conns\": %ld, \"streams\": %ld, "
	       "\"tls_suite\": \"%s\"}\n",
	       ok, failed, secs, ok / secs, nlat ? all[nlat / 2] : 0.0,
	       nlat ? all[(long)(nlat * 0.99)] : 0.0, g_conns, g_streams, suite ? suite : "none");
	return failed ? 1 : 0;
}
