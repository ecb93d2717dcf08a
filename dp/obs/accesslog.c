/*
 * The access log (see wp/accesslog.h): per-core single-producer rings of
 * compact variable-size entries (dp/obs/spsc.h's byte ring: an entry is
 * complete before the consumer sees it and free again before the producer
 * reuses its bytes), Istio's default text format and its JSON encoding,
 * and the writer thread that drains the rings into a file.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spsc.h"
#include "text.h"
#include "wp/accesslog.h"
#include "wp/common.h"
#include "wp/counters.h"

/* The bytes of the next entry prefetched for writing at each commit: a
 * typical entry's (its lines were last read by the writer thread, on
 * another core; the next request finds them here). */
#define WP_ALOG_PREFETCH 256

struct wp_alog_ring {
	struct wp_spsc_var *q;
	uint64_t *ctr;
};

struct wp_alog_ring *wp_alog_ring_create(unsigned entries, uint64_t *ctr)
{
	struct wp_alog_ring *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->q = wp_spsc_var_create((size_t)entries * WP_ALOG_RING_LINE);
	if (!r->q) {
		free(r);
		return NULL;
	}
	r->ctr = ctr;
	return r;
}

void wp_alog_ring_destroy(struct wp_alog_ring *r)
{
	if (!r)
		return;
	wp_spsc_var_destroy(r->q);
	free(r);
}

struct wp_alog_entry *wp_alog_reserve(struct wp_alog_ring *r,
                                      const struct wp_alog_text t[WP_ALOG_NTEXT])
{
	struct wp_alog_entry *e = wp_spsc_var_reserve(r->q, wp_alog_entry_size(t));

	if (!e) {
		if (r->ctr)
			wp_ctr_inc(r->ctr, WP_CTR_ACCESS_LOG_DROPPED);
		return NULL;
	}
	wp_alog_entry_text(e, t);
	return e;
}

void wp_alog_commit(struct wp_alog_ring *r)
{
	wp_spsc_var_commit(r->q);
	wp_spsc_var_prefetch(r->q, WP_ALOG_PREFETCH);
}

/* ---- formatting --------------------------------------------------------------------------- */

/* The writer formats every line the workers send, so it goes by runs of
 * bytes (no printf), and remembers the last second's date and the last
 * text of each address (a core's lines share them). */

static const char hex[] = "0123456789abcdef";

/* The bytes at the start of s[0..n) that go out as they are: printable
 * ASCII but '"' and '\' (in text and in JSON alike). */
static size_t plain_run(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			break;
		i++;
	}
	return i;
}

/* A value as Envoy writes it in text: "-" when absent; bytes outside
 * printable ASCII and '"' escaped so one request stays one line. */
static void text_val(struct wp_text *o, const char *s, size_t n)
{
	if (n == 0) {
		wp_text_put(o, "-", 1);
		return;
	}
	for (;;) {
		size_t k = plain_run(s, n);
		unsigned char c;

		wp_text_put(o, s, k);
		if (k == n)
			return;
		c = (unsigned char)s[k];
		wp_text_put(o, (const char[4]){'\\', 'x', hex[c >> 4], hex[c & 15]}, 4);
		s += k + 1;
		n -= k + 1;
	}
}

/* A JSON string value, or null when absent (the escapes of
 * wp_text_json_str()). */
static void json_val(struct wp_text *o, const char *s, size_t n)
{
	if (n == 0) {
		wp_text_put(o, "null", 4);
		return;
	}
	wp_text_put(o, "\"", 1);
	for (;;) {
		size_t k = plain_run(s, n);
		unsigned char c;

		wp_text_put(o, s, k);
		if (k == n)
			break;
		c = (unsigned char)s[k];
		if (c == '"' || c == '\\')
			wp_text_put(o, (const char[2]){'\\', (char)c}, 2);
		else
			wp_text_put(o,
			            (const char[6]){'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]},
			            6);
		s += k + 1;
		n -= k + 1;
	}
	wp_text_put(o, "\"", 1);
}

/* <v> in decimal. */
static void put_u64(struct wp_text *o, uint64_t v)
{
	char d[20];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	wp_text_put(o, d + i, sizeof(d) - i);
}

/* START_TIME as Envoy prints it, 2020-11-25T21:26:18.409Z, into w[40];
 * returns its length. */
static size_t when_text(uint64_t start_us, char *w)
{
	static __thread time_t last = -1;
	static __thread char day[32]; /* last's date and time to the second */
	static __thread size_t day_len;
	time_t sec = (time_t)(start_us / 1000000);
	unsigned ms = (unsigned)(start_us / 1000 % 1000);

	if (sec != last) {
		struct tm tm;

		gmtime_r(&sec, &tm);
		day_len = strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
		last = sec;
	}
	memcpy(w, day, day_len);
	w[day_len] = '.';
	w[day_len + 1] = (char)('0' + ms / 100);
	w[day_len + 2] = (char)('0' + ms / 10 % 10);
	w[day_len + 3] = (char)('0' + ms % 10);
	w[day_len + 4] = 'Z';
	return day_len + 5;
}

/* The addresses of a line: upstream host, downstream local, remote. */
enum { ADDR_UP, ADDR_LOCAL, ADDR_REMOTE, ADDR_N };

/* The text of address <a> (":port" when with_port), for the role <role>
 * whose last text it remembers; returns its length, 0 for no family. */
static size_t addr_text(unsigned role, const struct wp_addr *a, uint16_t port, bool with_port,
                        const char **out)
{
	static __thread struct {
		struct wp_addr a;
		uint16_t port;
		size_t len;
		char s[64];
	} memo[ADDR_N]; /* zero: no family, "" */
	struct wp_addr *m = &memo[role].a;
	bool same =
	        a->family == m->family && port == memo[role].port &&
	        (a->family == WP_AF_INET6 ? !memcmp(a->v6, m->v6, sizeof(a->v6)) : a->v4 == m->v4);

	if (!same) {
		memo[role].len =
		        wp_text_addr(a, port, with_port, memo[role].s, sizeof(memo[role].s));
		memset(m, 0, sizeof(*m));
		m->family = a->family;
		memcpy(m->v6, a->v6, sizeof(a->v6));
		memo[role].port = port;
	}
	*out = memo[role].s;
	return memo[role].len;
}

static const char *const proto_names[] = {"HTTP/1.0", "HTTP/1.1", "HTTP/2", ""};

size_t wp_alog_format(const struct wp_alog_entry *e, bool json, char *buf, size_t cap)
{
	struct wp_text o = {.p = buf, .cap = cap};
	char when[40];
	const char *up = NULL, *local, *remote;
	size_t up_len = 0, local_len, remote_len, when_len = when_text(e->start_us, when);
	const char *proto = e->proto < WP_ARRAY_SIZE(proto_names) ? proto_names[e->proto] : "";
	const char *t[WP_ALOG_NTEXT], *p = (const char *)(e + 1);
	const uint16_t *tl = e->len;

	for (unsigned i = 0; i < WP_ALOG_NTEXT; i++) {
		t[i] = p;
		p += tl[i];
	}
	if (e->has_upstream)
		up_len = addr_text(ADDR_UP, &e->upstream, e->upstream_port, true, &up);
	local_len = addr_text(ADDR_LOCAL, &e->local, e->local_port, true, &local);
	remote_len = addr_text(ADDR_REMOTE, &e->remote, 0, false, &remote);
	if (!json) {
		/* [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%
		 * %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%
		 * %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%"
		 * %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
		 * %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%"
		 * "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%"
		 * "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS%
		 * %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%
		 * %REQUESTED_SERVER_NAME% %ROUTE_NAME% */
		wp_text_put(&o, "[", 1);
		wp_text_put(&o, when, when_len);
		wp_text_puts(&o, "] \"");
		text_val(&o, t[WP_ALOG_METHOD], tl[WP_ALOG_METHOD]);
		wp_text_put(&o, " ", 1);
		text_val(&o, t[WP_ALOG_PATH], tl[WP_ALOG_PATH]);
		wp_text_put(&o, " ", 1);
		text_val(&o, proto, strlen(proto));
		wp_text_puts(&o, "\" ");
		put_u64(&o, e->status);
		wp_text_put(&o, " ", 1);
		text_val(&o, t[WP_ALOG_FLAGS], tl[WP_ALOG_FLAGS]);
		wp_text_puts(&o, " - - \"-\" ");
		put_u64(&o, e->bytes_rx);
		wp_text_put(&o, " ", 1);
		put_u64(&o, e->bytes_tx);
		wp_text_put(&o, " ", 1);
		put_u64(&o, e->duration_us / 1000);
		wp_text_puts(&o, " - \"");
		text_val(&o, t[WP_ALOG_XFF], tl[WP_ALOG_XFF]);
		wp_text_puts(&o, "\" \"");
		text_val(&o, t[WP_ALOG_USER_AGENT], tl[WP_ALOG_USER_AGENT]);
		wp_text_puts(&o, "\" \"");
		text_val(&o, t[WP_ALOG_REQUEST_ID], tl[WP_ALOG_REQUEST_ID]);
		wp_text_puts(&o, "\" \"");
		text_val(&o, t[WP_ALOG_AUTHORITY], tl[WP_ALOG_AUTHORITY]);
		wp_text_puts(&o, "\" \"");
		text_val(&o, up, up_len);
		wp_text_puts(&o, "\" ");
		text_val(&o, t[WP_ALOG_CLUSTER], tl[WP_ALOG_CLUSTER]);
		wp_text_puts(&o, " - ");
		text_val(&o, local, local_len);
		wp_text_put(&o, " ", 1);
		text_val(&o, remote, remote_len);
		wp_text_puts(&o, " - -\n");
	} else {
		/* Istio's EnvoyJSONLogFormatIstio keys; absent values are null */
		wp_text_puts(&o, "{\"start_time\":");
		json_val(&o, when, when_len);
		wp_text_puts(&o, ",\"method\":");
		json_val(&o, t[WP_ALOG_METHOD], tl[WP_ALOG_METHOD]);
		wp_text_puts(&o, ",\"path\":");
		json_val(&o, t[WP_ALOG_PATH], tl[WP_ALOG_PATH]);
		wp_text_puts(&o, ",\"protocol\":");
		json_val(&o, proto, strlen(proto));
		wp_text_puts(&o, ",\"response_code\":");
		put_u64(&o, e->status);
		wp_text_puts(&o, ",\"response_flags\":");
		json_val(&o, t[WP_ALOG_FLAGS], tl[WP_ALOG_FLAGS]);
		wp_text_puts(&o,
		             ",\"response_code_details\":null,\"connection_termination_details\":"
		             "null,\"upstream_transport_failure_reason\":null,\"bytes_received\":");
		put_u64(&o, e->bytes_rx);
		wp_text_puts(&o, ",\"bytes_sent\":");
		put_u64(&o, e->bytes_tx);
		wp_text_puts(&o, ",\"duration\":");
		put_u64(&o, e->duration_us / 1000);
		wp_text_puts(&o, ",\"upstream_service_time\":null,\"x_forwarded_for\":");
		json_val(&o, t[WP_ALOG_XFF], tl[WP_ALOG_XFF]);
		wp_text_puts(&o, ",\"user_agent\":");
		json_val(&o, t[WP_ALOG_USER_AGENT], tl[WP_ALOG_USER_AGENT]);
		wp_text_puts(&o, ",\"request_id\":");
		json_val(&o, t[WP_ALOG_REQUEST_ID], tl[WP_ALOG_REQUEST_ID]);
		wp_text_puts(&o, ",\"authority\":");
		json_val(&o, t[WP_ALOG_AUTHORITY], tl[WP_ALOG_AUTHORITY]);
		wp_text_puts(&o, ",\"upstream_host\":");
		json_val(&o, up, up_len);
		wp_text_puts(&o, ",\"upstream_cluster\":");
		json_val(&o, t[WP_ALOG_CLUSTER], tl[WP_ALOG_CLUSTER]);
		wp_text_puts(&o, ",\"upstream_local_address\":null,\"downstream_local_address\":");
		json_val(&o, local, local_len);
		wp_text_puts(&o, ",\"downstream_remote_address\":");
		json_val(&o, remote, remote_len);
		wp_text_puts(&o, ",\"requested_server_name\":null,\"route_name\":null}\n");
	}
	return o.full ? 0 : o.len;
}

/* ---- the writer thread -------------------------------------------------------------------- */

#define WBUF (256 * 1024)

struct wp_alog_writer {
	struct wp_alog_ring *const *rings;
	unsigned n;
	bool json;
	char path[4096];
	FILE *f;
	pthread_t th;
	volatile bool stop, reopen;
	uint64_t lines;
	char buf[WBUF];
	size_t used;
};

static FILE *open_out(const char *path)
{
	if (path[0] == '\0' || !strcmp(path, "/dev/stdout"))
		return stdout;
	return fopen(path, "a");
}

static void flush_buf(struct wp_alog_writer *w)
{
	if (w->used && w->f) {
		(void)fwrite(w->buf, 1, w->used, w->f);
		(void)fflush(w->f);
	}
	w->used = 0;
}

/* Formats what the rings hold; returns the entries taken. */
static unsigned drain(struct wp_alog_writer *w)
{
	unsigned taken = 0;

	for (unsigned i = 0; i < w->n; i++) {
		struct wp_alog_ring *r = w->rings[i];
		const struct wp_alog_entry *e;

		while ((e = wp_spsc_var_peek(r->q, NULL)) != NULL) {
			size_t k;

			if (WBUF - w->used < 4096)
				flush_buf(w);
			k = wp_alog_format(e, w->json, w->buf + w->used, WBUF - w->used);
			w->used += k;
			__atomic_store_n(&w->lines, w->lines + (k > 0), __ATOMIC_RELAXED);
			wp_spsc_var_pop(r->q);
			taken++;
		}
	}
	flush_buf(w);
	return taken;
}

static void *writer_main(void *arg)
{
	struct wp_alog_writer *w = arg;
	const struct timespec nap = {.tv_sec = 0, .tv_nsec = 2 * 1000 * 1000};

	while (!w->stop) {
		if (w->reopen) {
			w->reopen = false;
			if (w->f && w->f != stdout)
				fclose(w->f);
			w->f = open_out(w->path); /* NULL: lines are lost until the next reopen */
		}
		if (drain(w) == 0)
			nanosleep(&nap, NULL);
	}
	drain(w);
	return NULL;
}

struct wp_alog_writer *wp_alog_writer_start(struct wp_alog_ring *const *rings, unsigned n,
                                            const char *path, bool json)
{
	struct wp_alog_writer *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->rings = rings;
	w->n = n;
	w->json = json;
	snprintf(w->path, sizeof(w->path), "%s", path ? path : "");
	w->f = open_out(w->path);
	if (!w->f) {
		free(w);
		return NULL;
	}
	if (pthread_create(&w->th, NULL, writer_main, w) != 0) {
		if (w->f != stdout)
			fclose(w->f);
		free(w);
		errno = EAGAIN;
		return NULL;
	}
	return w;
}

void wp_alog_writer_reopen(struct wp_alog_writer *w)
{
	if (w)
		w->reopen = true;
}

void wp_alog_writer_stop(struct wp_alog_writer *w)
{
	if (!w)
		return;
	w->stop = true;
	pthread_join(w->th, NULL);
	if (w->f && w->f != stdout)
		fclose(w->f);
	else if (w->f)
		fflush(w->f);
	free(w);
}

uint64_t wp_alog_writer_lines(const struct wp_alog_writer *w)
{
	return __atomic_load_n(&w->lines, __ATOMIC_RELAXED);
}
