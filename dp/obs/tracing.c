/*
 * Span export (see wp/tracing.h): per-core span rings, the OTLP/HTTP JSON
 * and Zipkin v2 JSON encoders, and the exporter thread that batches spans
 * and POSTs them to the collector.
 *
 * Tags are Envoy's for a request span (HttpTracerUtility's: node_id, zone,
 * guid:x-request-id, http.url, http.method, downstream_cluster,
 * user_agent, http.protocol, peer.address, request_size, response_size,
 * response_flags, upstream_cluster, upstream_cluster.name,
 * upstream_address, http.status_code, grpc.status_code, error,
 * component) and Istio's custom tags (istio.canonical_revision,
 * istio.canonical_service, istio.cluster_id, istio.mesh_id,
 * istio.namespace); all string-valued, as Envoy sets them. The span is a
 * SERVER span (Envoy's ingress operation, which a waypoint's connection
 * manager is), named as Istio's route decorator (wp_trace_span_name).
 *
 * Ring: as the access log's (head written by the producer only, tail by
 * the consumer only, acquire / release on the other's index).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "spsc.h"
#include "text.h"
#include "wp/common.h"
#include "wp/config.h"
#include "wp/counters.h"
#include "wp/tracing.h"

/* A span ring is a wp_spsc of span entries; its users only see the name. */
struct wp_span_ring *wp_span_ring_create(unsigned entries)
{
	return (struct wp_span_ring *)wp_spsc_create(entries, sizeof(struct wp_span_entry));
}

void wp_span_ring_destroy(struct wp_span_ring *r)
{
	wp_spsc_destroy((struct wp_spsc *)r);
}

struct wp_span_entry *wp_span_reserve(struct wp_span_ring *r)
{
	return wp_spsc_reserve((struct wp_spsc *)r);
}

void wp_span_commit(struct wp_span_ring *r)
{
	wp_spsc_commit((struct wp_spsc *)r);
}

/* ---- encoding ----------------------------------------------------------------------------- */

static void jhex(struct wp_text *o, const uint8_t *b, size_t n)
{
	static const char hx[16] = "0123456789abcdef";

	wp_text_put(o, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		char two[2] = {hx[b[i] >> 4], hx[b[i] & 15]};

		wp_text_put(o, two, 2);
	}
	wp_text_put(o, "\"", 1);
}

size_t wp_trace_span_name(const struct wp_span_entry *e, char *buf, size_t cap)
{
	int n;

	if (e->host_len)
		n = snprintf(buf, cap, "%.*s:%u/*", (int)e->host_len, e->host, e->port);
	else
		n = snprintf(buf, cap, "%.*s/*", (int)e->authority_len, e->authority);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

#define MAX_TAGS 26

struct tags {
	unsigned n;
	const char *k[MAX_TAGS];
	const char *v[MAX_TAGS];
	size_t len[MAX_TAGS];
	/* storage of the values formatted here */
	char url[300], peer[64], up[80], rx[24], tx[24], code[8], grpc[8];
};

static void tag(struct tags *t, const char *k, const char *v, size_t len)
{
	t->k[t->n] = k;
	t->v[t->n] = v ? v : "";
	t->len[t->n] = v ? len : 0;
	t->n++;
}

static void tag_z(struct tags *t, const char *k, const char *v)
{
	tag(t, k, v, v ? strlen(v) : 0);
}

static const char *const proto_names[] = {"HTTP/1.0", "HTTP/1.1", "HTTP/2", "-"};

/* The tags of <e>, in Envoy's order, then Istio's. */
static void span_tags(const struct wp_span_entry *e, const struct wp_trace_resource *res,
                      struct tags *t)
{
	int n;

	t->n = 0;
	tag_z(t, "node_id", res->node_id);
	tag_z(t, "zone", res->zone);
	tag(t, "guid:x-request-id", e->request_id, e->request_id_len);
	/* scheme://authority/path, cut at Envoy's max_path_tag_length (256) */
	n = snprintf(t->url, sizeof(t->url), "http://%.*s%.*s", (int)e->authority_len, e->authority,
	             (int)e->path_len, e->path);
	tag(t, "http.url", t->url, n < 0 ? 0 : WP_MIN((size_t)n, (size_t)256));
	tag(t, "http.method", e->method, e->method_len);
	tag_z(t, "downstream_cluster", "-");
	tag(t, "user_agent", e->user_agent_len ? e->user_agent : "-",
	    e->user_agent_len ? e->user_agent_len : 1);
	tag_z(t, "http.protocol", proto_names[e->proto < 3 ? e->proto : 3]);
	tag(t, "peer.address", t->peer, wp_text_addr(&e->peer, 0, false, t->peer, sizeof(t->peer)));
	snprintf(t->rx, sizeof(t->rx), "%" PRIu64, e->bytes_rx);
	snprintf(t->tx, sizeof(t->tx), "%" PRIu64, e->bytes_tx);
	tag_z(t, "request_size", t->rx);
	tag_z(t, "response_size", t->tx);
	tag(t, "response_flags", e->flags_len ? e->flags : "-", e->flags_len ? e->flags_len : 1);
	if (e->cluster_len) {
		tag(t, "upstream_cluster", e->cluster, e->cluster_len);
		tag(t, "upstream_cluster.name", e->cluster, e->cluster_len);
	}
	if (e->has_upstream)
		tag(t, "upstream_address", t->up,
		    wp_text_addr(&e->upstream, e->upstream_port, true, t->up, sizeof(t->up)));
	snprintf(t->code, sizeof(t->code), "%u", e->status);
	tag_z(t, "http.status_code", t->code);
	if (e->is_grpc && e->grpc >= 0) {
		snprintf(t->grpc, sizeof(t->grpc), "%d", e->grpc);
		tag_z(t, "grpc.status_code", t->grpc);
	}
	if (e->status == 0 || e->status >= 500)
		tag_z(t, "error", "true");
	tag_z(t, "component", "proxy");
	tag_z(t, "istio.canonical_revision", res->canonical_revision);
	tag_z(t, "istio.canonical_service", res->service_name);
	tag_z(t, "istio.cluster_id", res->cluster_id);
	tag_z(t, "istio.mesh_id", res->mesh_id);
	tag_z(t, "istio.namespace", res->ns);
}

static bool span_error(const struct wp_span_entry *e)
{
	return e->status == 0 || e->status >= 500;
}

size_t wp_trace_encode_otlp(const struct wp_span_entry *const *s, unsigned n,
                            const struct wp_trace_resource *res, char *buf, size_t cap)
{
	struct wp_text o = {.p = buf, .cap = cap};
	struct tags t;
	char name[512];

	wp_text_puts(&o,
	             "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
	             "\"value\":{\"stringValue\":");
	wp_text_json_str(&o, res->service_name, strlen(res->service_name));
	wp_text_puts(
	        &o,
	        "}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"waypointd\",\"version\":\"" WP_VERSION
	        "\"},\"spans\":[");
	for (unsigned i = 0; i < n && !o.full; i++) {
		const struct wp_span_entry *e = s[i];
		size_t nl = wp_trace_span_name(e, name, sizeof(name));

		wp_text_put(&o, i ? ",{" : "{", i ? 2 : 1);
		wp_text_puts(&o, "\"traceId\":");
		jhex(&o, e->trace_id, 16);
		wp_text_puts(&o, ",\"spanId\":");
		jhex(&o, e->span_id, 8);
		if (e->has_parent) {
			wp_text_puts(&o, ",\"parentSpanId\":");
			jhex(&o, e->parent_id, 8);
		}
		wp_text_puts(&o, ",\"name\":");
		wp_text_json_str(&o, name, nl);
		/* SPAN_KIND_SERVER; times as decimal strings (64-bit in JSON) */
		wp_text_printf(&o,
		               ",\"kind\":2,\"startTimeUnixNano\":\"%" PRIu64
		               "\",\"endTimeUnixNano\":\"%" PRIu64 "\",\"attributes\":[",
		               e->start_us * 1000, (e->start_us + e->duration_us) * 1000);
		span_tags(e, res, &t);
		for (unsigned k = 0; k < t.n; k++) {
			wp_text_puts(&o, k ? ",{\"key\":" : "{\"key\":");
			wp_text_json_str(&o, t.k[k], strlen(t.k[k]));
			wp_text_puts(&o, ",\"value\":{\"stringValue\":");
			wp_text_json_str(&o, t.v[k], t.len[k]);
			wp_text_puts(&o, "}}");
		}
		/* STATUS_CODE_ERROR with the error tag, as Envoy's OTel span */
		wp_text_puts(&o, span_error(e) ? "],\"status\":{\"code\":2}}" : "],\"status\":{}}");
	}
	wp_text_puts(&o, "]}]}]}");
	return o.full ? 0 : o.len;
}

size_t wp_trace_encode_zipkin(const struct wp_span_entry *const *s, unsigned n,
                              const struct wp_trace_resource *res, char *buf, size_t cap)
{
	struct wp_text o = {.p = buf, .cap = cap};
	struct tags t;
	char name[512];

	wp_text_put(&o, "[", 1);
	for (unsigned i = 0; i < n && !o.full; i++) {
		const struct wp_span_entry *e = s[i];
		size_t nl = wp_trace_span_name(e, name, sizeof(name));

		wp_text_put(&o, i ? ",{" : "{", i ? 2 : 1);
		wp_text_puts(&o, "\"traceId\":");
		jhex(&o, e->trace_id, 16);
		wp_text_puts(&o, ",\"id\":");
		jhex(&o, e->span_id, 8);
		if (e->has_parent) {
			wp_text_puts(&o, ",\"parentId\":");
			jhex(&o, e->parent_id, 8);
		}
		wp_text_puts(&o, ",\"kind\":\"SERVER\",\"name\":");
		wp_text_json_str(&o, name, nl);
		/* Zipkin wants a duration of at least 1 µs */
		wp_text_printf(&o, ",\"timestamp\":%" PRIu64 ",\"duration\":%" PRIu64, e->start_us,
		               e->duration_us ? e->duration_us : 1);
		wp_text_puts(&o, ",\"localEndpoint\":{\"serviceName\":");
		wp_text_json_str(&o, res->service_name, strlen(res->service_name));
		wp_text_puts(&o, "},\"tags\":{");
		span_tags(e, res, &t);
		for (unsigned k = 0; k < t.n; k++) {
			if (k)
				wp_text_put(&o, ",", 1);
			wp_text_json_str(&o, t.k[k], strlen(t.k[k]));
			wp_text_put(&o, ":", 1);
			wp_text_json_str(&o, t.v[k], t.len[k]);
		}
		wp_text_puts(&o, "}}");
	}
	wp_text_put(&o, "]", 1);
	return o.full ? 0 : o.len;
}

/* ---- the exporter thread ------------------------------------------------------------------ */

#define SPAN_JSON_MAX  6144 /* one encoded span at most (fields are bounded) */
#define BACKOFF_MAX_MS 10000

struct wp_trace_exporter {
	struct wp_tracing_config cfg;
	char host[256], port[8];
	char cluster_id[64];
	struct wp_trace_resource res;
	unsigned n;
	struct wp_span_ring **rings;
	struct wp_span_entry *batch;
	const struct wp_span_entry **ptrs;
	unsigned nb;
	uint64_t first_ms; /* when the batch's first span was taken */
	uint64_t retry_ms, backoff_ms;
	char *body;
	size_t body_cap;
	uint64_t ctr[WP_CTR_MAX]; /* written by the thread, read with atomics */
	pthread_t th;
	volatile bool stop;
	bool final; /* the thread's last flush, after stop */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void count(struct wp_trace_exporter *x, enum wp_ctr c, uint64_t n)
{
	__atomic_store_n(&x->ctr[c], x->ctr[c] + n, __ATOMIC_RELAXED);
}

/* Waits until <fd> is ready for <ev> or <deadline>; true when ready. A
 * stop request ends the wait (outside the final flush, which has its own
 * short deadline), so shutdown never waits for a slow collector. */
static bool wait_fd(const struct wp_trace_exporter *x, int fd, short ev, uint64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = ev};

	for (;;) {
		uint64_t now = mono_ms();
		int n;

		if (now >= deadline || (x->stop && !x->final))
			return false;
		n = poll(&p, 1, (int)WP_MIN(deadline - now, (uint64_t)50));
		if (n != 0)
			return n == 1 && (p.revents & (ev | POLLHUP | POLLERR));
	}
}

static int dial(const struct wp_trace_exporter *x, uint64_t deadline)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	int fd = -1, err = 0;
	socklen_t el = sizeof(err);

	if (getaddrinfo(x->host, x->port, &hints, &ai) != 0 || !ai)
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
	    (errno != EINPROGRESS || !wait_fd(x, fd, POLLOUT, deadline) ||
	     getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0)) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static bool send_all(const struct wp_trace_exporter *x, int fd, const char *p, size_t n,
                     uint64_t deadline)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k > 0) {
			p += k;
			n -= (size_t)k;
		} else if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (!wait_fd(x, fd, POLLOUT, deadline))
				return false;
		} else {
			return false;
		}
	}
	return true;
}

/* Reads the collector's answer whole (we asked it to close: up to its end,
 * or its content-length), so the socket closes cleanly; true when its
 * head came with a 2xx status. */
static bool read_status(const struct wp_trace_exporter *x, int fd, uint64_t deadline)
{
	char buf[2048], scratch[2048];
	size_t got = 0, total = 0, want = SIZE_MAX;
	int status = 0;
	bool head = false;

	while (total < want && wait_fd(x, fd, POLLIN, deadline)) {
		size_t room = head ? sizeof(scratch) : sizeof(buf) - 1 - got;
		ssize_t k;
		const char *end, *cl;

		if (room == 0)
			return false; /* a head over 2 KB: not a collector's */
		k = recv(fd, head ? scratch : buf + got, room, 0);
		if (k == 0)
			break; /* closed: the answer is complete */
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (k < 0)
			return false;
		total += (size_t)k;
		if (head)
			continue;
		got += (size_t)k;
		buf[got] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		head = true;
		if (sscanf(buf, "HTTP/1.%*1[01] %3d", &status) != 1)
			return false;
		cl = strcasestr(buf, "\r\ncontent-length:");
		if (cl && cl < end)
			want = (size_t)(end + 4 - buf) + strtoul(cl + 17, NULL, 10);
	}
	return head && status >= 200 && status < 300;
}

/* POSTs <body>; true on a 2xx answer. */
static bool post(struct wp_trace_exporter *x, const char *body, size_t len, uint64_t deadline)
{
	char head[768];
	int fd = dial(x, deadline), hl;
	bool ok = false;

	if (fd < 0)
		return false;
	hl = snprintf(
	        head, sizeof(head),
	        "POST %s HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\n"
	        "content-length: %zu\r\nconnection: close\r\nuser-agent: waypointd/" WP_VERSION
	        "\r\n\r\n",
	        x->cfg.path, x->cfg.collector, len);
	if (hl > 0 && (size_t)hl < sizeof(head) && send_all(x, fd, head, (size_t)hl, deadline) &&
	    send_all(x, fd, body, len, deadline)) {
		ok = read_status(x, fd, deadline);
	}
	close(fd);
	return ok;
}

static void flush(struct wp_trace_exporter *x, uint64_t deadline)
{
	size_t len;
	bool ok = false;

	if (x->nb == 0)
		return;
	len = x->cfg.protocol == WP_TRACE_ZIPKIN
	              ? wp_trace_encode_zipkin(x->ptrs, x->nb, &x->res, x->body, x->body_cap)
	              : wp_trace_encode_otlp(x->ptrs, x->nb, &x->res, x->body, x->body_cap);
	if (len > 0)
		ok = post(x, x->body, len, deadline);
	if (ok) {
		count(x, WP_CTR_TRACE_SPAN_EXPORTED, x->nb);
		x->backoff_ms = 0;
	} else {
		count(x, WP_CTR_TRACE_BATCH_FAILED, 1);
		count(x, WP_CTR_TRACE_SPAN_LOST, x->nb);
		x->backoff_ms = x->backoff_ms ? WP_MIN(x->backoff_ms * 2, BACKOFF_MAX_MS) : 100;
		x->retry_ms = mono_ms() + x->backoff_ms;
	}
	x->nb = 0;
}

/* Moves spans from the rings into the batch until it is full. */
static unsigned drain(struct wp_trace_exporter *x)
{
	unsigned taken = 0;

	for (unsigned i = 0; i < x->n && x->nb < x->cfg.batch_spans; i++) {
		struct wp_spsc *q = (struct wp_spsc *)x->rings[i];
		const struct wp_span_entry *e;

		while (x->nb < x->cfg.batch_spans && (e = wp_spsc_peek(q)) != NULL) {
			if (x->nb == 0)
				x->first_ms = mono_ms();
			x->batch[x->nb++] = *e;
			wp_spsc_pop(q);
			taken++;
		}
	}
	return taken;
}

static void *exporter_main(void *arg)
{
	struct wp_trace_exporter *x = arg;
	const struct timespec nap = {.tv_sec = 0, .tv_nsec = 2 * 1000 * 1000};
	uint64_t deadline;

	while (!x->stop) {
		unsigned got = drain(x);
		uint64_t now = mono_ms();

		if (x->nb > 0 && now >= x->retry_ms &&
		    (x->nb >= x->cfg.batch_spans || now - x->first_ms >= x->cfg.flush_ms))
			flush(x, now + x->cfg.timeout_ms);
		else if (got == 0)
			nanosleep(&nap, NULL);
	}
	/* what is left: batches until one deadline (timeout_ms, at most a
	 * second), never waiting for a backoff; what does not go is lost */
	x->final = true;
	deadline = mono_ms() + WP_MIN(x->cfg.timeout_ms, 1000u);
	while (drain(x) > 0 || x->nb > 0) {
		if (mono_ms() < deadline) {
			flush(x, deadline);
			continue;
		}
		count(x, WP_CTR_TRACE_BATCH_FAILED, 1); /* out of time: not sent */
		count(x, WP_CTR_TRACE_SPAN_LOST, x->nb);
		x->nb = 0;
	}
	return NULL;
}

struct wp_trace_exporter *wp_trace_exporter_start(const struct wp_tracing_config *cfg,
                                                  const struct wp_trace_resource *res,
                                                  unsigned n_rings)
{
	struct wp_trace_exporter *x = calloc(1, sizeof(*x));
	const char *colon;
	size_t hl;

	if (!x)
		return NULL;
	x->cfg = *cfg;
	colon = strrchr(cfg->collector, ':');
	hl = colon ? (size_t)(colon - cfg->collector) : 0;
	if (hl >= 2 && cfg->collector[0] == '[') /* [v6]:port */
		snprintf(x->host, sizeof(x->host), "%.*s", (int)(hl - 2), cfg->collector + 1);
	else
		snprintf(x->host, sizeof(x->host), "%.*s", (int)hl, cfg->collector);
	snprintf(x->port, sizeof(x->port), "%s", colon ? colon + 1 : "");
	snprintf(x->cluster_id, sizeof(x->cluster_id), "%s",
	         res && res->cluster_id ? res->cluster_id : "");
	x->res = (struct wp_trace_resource){
	        .service_name = x->cfg.service_name,
	        .ns = x->cfg.ns,
	        .canonical_revision = x->cfg.canonical_revision,
	        .mesh_id = x->cfg.mesh_id,
	        .cluster_id = x->cluster_id,
	        .node_id = x->cfg.node_id,
	        .zone = x->cfg.zone,
	};
	x->n = n_rings;
	x->rings = calloc(n_rings ? n_rings : 1, sizeof(*x->rings));
	x->batch = calloc(cfg->batch_spans, sizeof(*x->batch));
	x->ptrs = calloc(cfg->batch_spans, sizeof(*x->ptrs));
	x->body_cap = (size_t)cfg->batch_spans * SPAN_JSON_MAX + 1024;
	x->body = malloc(x->body_cap);
	if (!x->rings || !x->batch || !x->ptrs || !x->body)
		goto fail;
	for (unsigned i = 0; i < cfg->batch_spans; i++)
		x->ptrs[i] = &x->batch[i];
	for (unsigned i = 0; i < n_rings; i++)
		if (!(x->rings[i] = wp_span_ring_create(cfg->ring_entries)))
			goto fail;
	if (pthread_create(&x->th, NULL, exporter_main, x) != 0) {
		errno = EAGAIN;
		goto fail;
	}
	return x;
fail:
	for (unsigned i = 0; x->rings && i < n_rings; i++)
		wp_span_ring_destroy(x->rings[i]);
	free(x->rings);
	free(x->batch);
	free(x->ptrs);
	free(x->body);
	free(x);
	if (!errno)
		errno = ENOMEM;
	return NULL;
}

struct wp_span_ring *wp_trace_exporter_ring(struct wp_trace_exporter *x, unsigned i)
{
	return x && i < x->n ? x->rings[i] : NULL;
}

void wp_trace_exporter_counters(const struct wp_trace_exporter *x, uint64_t *out)
{
	if (!x)
		return;
	for (int i = 0; i < WP_CTR_MAX; i++)
		out[i] += __atomic_load_n(&x->ctr[i], __ATOMIC_RELAXED);
}

void wp_trace_exporter_stop(struct wp_trace_exporter *x)
{
	if (!x)
		return;
	x->stop = true;
	pthread_join(x->th, NULL);
	for (unsigned i = 0; i < x->n; i++)
		wp_span_ring_destroy(x->rings[i]);
	free(x->rings);
	free(x->batch);
	free(x->ptrs);
	free(x->body);
	free(x);
}
