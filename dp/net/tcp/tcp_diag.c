/*
 * Echo, discard and source services (see tcp_diag.h). Echo and discard keep
 * no state of their own (the stack's buffers are the state); source keeps a
 * small pooled session per connection for the request parser and progress.
 */
#include <errno.h>
#include <string.h>

#include "tcp_diag.h"

#define SOURCE_MAX_DIGITS 15
#define SOURCE_CHUNK      4096

struct source_session {
	struct wp_tcp_diag *d;
	uint64_t want, sent;
	uint8_t digits;
	bool sending, cr;
	uint32_t next_free;
};

struct wp_tcp_diag {
	struct wp_tcp_stack *st;
	uint16_t ports[3];
	struct source_session *sess;
	uint32_t nsess, free_head;
};

/* ---- echo ---- */

static size_t echo_data(struct wp_tcp_conn *c, void *arg, const uint8_t *data, size_t len)
{
	(void)arg;
	ssize_t n = wp_tcp_send(c, data, len);
	if (n < 0)
		return n == -ENOBUFS ? 0 : len; /* pool empty: retry on resume; else drop */
	return (size_t)n;
}

static void echo_writable(struct wp_tcp_conn *c, void *arg)
{
	(void)arg;
	wp_tcp_recv_resume(c);
}

static void fin_on_eof(struct wp_tcp_conn *c, void *arg)
{
	(void)arg;
	(void)wp_tcp_shutdown(c);
}

static const struct wp_tcp_callbacks echo_cbs = {
        .data = echo_data,
        .eof = fin_on_eof,
        .writable = echo_writable,
};

/* ---- discard ---- */

static size_t discard_data(struct wp_tcp_conn *c, void *arg, const uint8_t *data, size_t len)
{
	(void)c;
	(void)arg;
	(void)data;
	return len;
}

static const struct wp_tcp_callbacks discard_cbs = {
        .data = discard_data,
        .eof = fin_on_eof,
};

/* ---- source ---- */

static void session_free(struct source_session *s)
{
	struct wp_tcp_diag *d = s->d;
	s->next_free = d->free_head;
	d->free_head = (uint32_t)(s - d->sess);
}

/* Queues pattern bytes while send space lasts; closes after the last one. */
static void source_fill(struct wp_tcp_conn *c, struct source_session *s)
{
	uint8_t buf[SOURCE_CHUNK];
	while (s->sent < s->want) {
		size_t n = (size_t)WP_MIN((uint64_t)sizeof(buf), s->want - s->sent);
		/* With no space, a 1-byte send returns 0 and arms writable(). */
		n = WP_MIN(n, WP_MAX(wp_tcp_send_space(c), (size_t)1));
		for (size_t i = 0; i < n; i++)
			buf[i] = wp_tcp_diag_pattern(s->sent + i);
		ssize_t w = wp_tcp_send(c, buf, n);
		if (w <= 0)
			return;
		s->sent += (uint64_t)w;
	}
	session_free(s);
	wp_tcp_close(c); /* graceful: queued bytes go out, then FIN */
}

static size_t source_data(struct wp_tcp_conn *c, void *arg, const uint8_t *data, size_t len)
{
	struct source_session *s = arg;
	if (s->sending)
		return len;
	for (size_t i = 0; i < len; i++) {
		uint8_t ch = data[i];
		if (ch >= '0' && ch <= '9' && !s->cr && s->digits < SOURCE_MAX_DIGITS) {
			s->want = s->want * 10 + (ch - '0');
			s->digits++;
		} else if (ch == '\r' && s->digits && !s->cr) {
			s->cr = true;
		} else if (ch == '\n' && s->digits) {
			s->sending = true;
			source_fill(c, s);
			return len;
		} else {
			session_free(s);
			wp_tcp_abort(c);
			return len;
		}
	}
	return len;
}

static void source_writable(struct wp_tcp_conn *c, void *arg)
{
	struct source_session *s = arg;
	if (s->sending)
		source_fill(c, s);
}

static void source_eof(struct wp_tcp_conn *c, void *arg)
{
	struct source_session *s = arg;
	if (s->sending)
		return; /* half-closed client still reads */
	session_free(s);
	wp_tcp_close(c);
}

static void source_closed(struct wp_tcp_conn *c, void *arg, enum wp_tcp_close_reason why)
{
	(void)c;
	(void)why;
	session_free(arg);
}

static const struct wp_tcp_callbacks source_cbs = {
        .data = source_data,
        .eof = source_eof,
        .writable = source_writable,
        .closed = source_closed,
};

/* ---- accept ---- */

static int accept_echo(struct wp_tcp_conn *c, void *arg)
{
	(void)arg;
	wp_tcp_conn_set_callbacks(c, &echo_cbs, NULL);
	return 0;
}

static int accept_discard(struct wp_tcp_conn *c, void *arg)
{
	(void)arg;
	wp_tcp_conn_set_callbacks(c, &discard_cbs, NULL);
	return 0;
}

static int accept_source(struct wp_tcp_conn *c, void *arg)
{
	struct wp_tcp_diag *d = arg;
	if (d->free_head == UINT32_MAX)
		return -ENOBUFS;
	struct source_session *s = &d->sess[d->free_head];
	d->free_head = s->next_free;
	memset(s, 0, sizeof(*s));
	s->d = d;
	wp_tcp_conn_set_callbacks(c, &source_cbs, s);
	return 0;
}

struct wp_tcp_diag *wp_tcp_diag_listen(struct wp_tcp_stack *st, uint16_t echo_port,
                                       uint16_t discard_port, uint16_t source_port,
                                       uint32_t max_sessions)
{
	struct wp_tcp_diag *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->st = st;
	d->free_head = UINT32_MAX;
	if (source_port && max_sessions) {
		d->sess = calloc(max_sessions, sizeof(*d->sess));
		if (!d->sess)
			goto fail;
		d->nsess = max_sessions;
		for (uint32_t i = max_sessions; i-- > 0;) {
			d->sess[i].next_free = d->free_head;
			d->free_head = i;
		}
	}
	if (echo_port) {
		if (wp_tcp_listen(st, echo_port, accept_echo, d) < 0)
			goto fail;
		d->ports[0] = echo_port;
	}
	if (discard_port) {
		if (wp_tcp_listen(st, discard_port, accept_discard, d) < 0)
			goto fail;
		d->ports[1] = discard_port;
	}
	if (source_port) {
		if (wp_tcp_listen(st, source_port, accept_source, d) < 0)
			goto fail;
		d->ports[2] = source_port;
	}
	return d;
fail:
	wp_tcp_diag_destroy(d);
	return NULL;
}

void wp_tcp_diag_destroy(struct wp_tcp_diag *d)
{
	if (!d)
		return;
	for (int i = 0; i < 3; i++)
		if (d->ports[i])
			(void)wp_tcp_unlisten(d->st, d->ports[i]);
	free(d->sess);
	free(d);
}
