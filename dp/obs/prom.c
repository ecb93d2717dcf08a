/*
 * Prometheus text exposition (see prom.h).
 *
 * Istio series are merged across cores by their label text: a cell's text
 * is made once, when the renderer first sees the cell, and looked up in a
 * table of merged series (open addressing on a hash of the text); the
 * cell's index in that table is cached per core, so later scrapes only add
 * numbers. The merged table grows with new label sets (this runs on the
 * control-plane thread, which may allocate); cells are never removed, so
 * neither are merged series.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"
#include "wp/counters.h"
#include "wp/hash.h"

struct buf {
	char *p;
	size_t len, cap;
	bool failed;
};

enum fam { HTTP, TCP };

struct merged {
	char *text; /* label pairs, without braces */
	size_t len;
	enum fam fam;
	union {
		struct {
			uint64_t requests;
			struct wp_metrics_hist h[3];
		} http;
		struct {
			uint64_t v[4]; /* opened, closed, sent, received */
		} tcp;
	} acc;
};

struct core_map {
	uint32_t *http, *tcp; /* cell index -> merged index + 1 */
	unsigned n_http, n_tcp, cap_http, cap_tcp;
};

struct wp_prom {
	struct wp_stats *const *stats;
	struct wp_metrics_core *const *cores;
	unsigned n;
	uint64_t tsc_hz;
	struct core_map *map;
	struct merged *m;
	unsigned n_m, cap_m;
	uint32_t *idx; /* merged index + 1; 0 = empty */
	uint32_t idx_mask;
	size_t last_len; /* the previous exposition's size: the next buffer's */
};

/* ---- output buffer ------------------------------------------------------------------------ */

static bool reserve(struct buf *b, size_t more)
{
	char *p;
	size_t cap;

	if (b->failed)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->failed = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void put(struct buf *b, const char *s, size_t len)
{
	if (!reserve(b, len))
		return;
	memcpy(b->p + b->len, s, len);
	b->len += len;
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void put_u64(struct buf *b, uint64_t v)
{
	char t[24];
	int i = sizeof(t);

	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(b, t + i, sizeof(t) - (size_t)i);
}

/* HELP text: backslash and line feed escaped. */
static void put_help(struct buf *b, const char *name, const char *help)
{
	puts_(b, "# HELP ");
	puts_(b, name);
	put(b, " ", 1);
	for (const char *s = help; *s; s++) {
		if (*s == '\\')
			put(b, "\\\\", 2);
		else if (*s == '\n')
			put(b, "\\n", 2);
		else
			put(b, s, 1);
	}
	put(b, "\n", 1);
}

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
	put_help(b, name, help);
	puts_(b, "# TYPE ");
	puts_(b, name);
	put(b, " ", 1);
	puts_(b, type);
	put(b, "\n", 1);
}

size_t wp_prom_escape(char *out, const char *s, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		switch (s[i]) {
		case '\\':
			out[o++] = '\\';
			out[o++] = '\\';
			break;
		case '"':
			out[o++] = '\\';
			out[o++] = '"';
			break;
		case '\n':
			out[o++] = '\\';
			out[o++] = 'n';
			break;
		default:
			out[o++] = s[i];
		}
	}
	return o;
}

/* ---- waypointd_* ---------------------------------------------------------------------------- */

static const struct stat_field {
	const char *name, *type, *help;
	size_t off;
} stat_fields[] = {
#define F(field, name, type, help)                                                                 \
	{                                                                                          \
		name, type, help, offsetof(struct wp_stats, field)                                 \
	}
        F(rx_pkts, "waypointd_rx_packets_total", "counter", "Packets received by the worker"),
        F(rx_bytes, "waypointd_rx_bytes_total", "counter", "Bytes received by the worker"),
        F(tx_pkts, "waypointd_tx_packets_total", "counter", "Packets sent by the worker"),
        F(tx_bytes, "waypointd_tx_bytes_total", "counter", "Bytes sent by the worker"),
        F(busy_cycles, "waypointd_busy_cycles_total", "counter",
          "TSC cycles in loop iterations that did work (waypointd_tsc_hz per second)"),
        F(idle_cycles, "waypointd_idle_cycles_total", "counter",
          "TSC cycles in empty loop iterations and sleeps"),
        F(io_cycles, "waypointd_io_cycles_total", "counter",
          "Part of the busy cycles spent in the driver's receive and transmit calls"),
        F(loops, "waypointd_loops_total", "counter", "Poll loop iterations"),
        F(busy_loops, "waypointd_busy_loops_total", "counter",
          "Poll loop iterations that did work (their cycles are the busy cycles)"),
        F(tcp_conns, "waypointd_tcp_conns", "gauge", "TCP control blocks in use"),
        F(tcp_established, "waypointd_tcp_established", "gauge", "TCP connections in ESTABLISHED"),
        F(tcp_time_wait, "waypointd_tcp_time_wait", "gauge", "Compact TIME_WAIT entries"),
        F(tcp_rcv_bufs, "waypointd_tcp_rcv_bufs", "gauge", "TCP receive buffers in use"),
        F(tcp_snd_bufs, "waypointd_tcp_snd_bufs", "gauge", "TCP send buffers in use"),
        F(hbone_conns, "waypointd_hbone_conns", "gauge",
          "HBONE connections open, inbound and originated"),
        F(tunnels, "waypointd_tunnels", "gauge", "HBONE tunnels open"),
#undef F
};

/* Counter rows the control plane keeps (never a worker): one series each,
 * without a core label. */
static const enum wp_ctr cp_rows[] = {
#define WP_CTR(name, kind, desc) WP_CTR_##name,
#define WP_CTR_ONLY              WP_CTR_GROUP_CP
#include "wp/counters/list.h"
#undef WP_CTR_ONLY
#define WP_CTR_ONLY WP_CTR_GROUP_KUBE
#include "wp/counters/list.h"
#undef WP_CTR_ONLY
#define WP_CTR_ONLY WP_CTR_GROUP_CA
#include "wp/counters/list.h"
#undef WP_CTR_ONLY
#undef WP_CTR
};

static bool is_cp_row(unsigned c)
{
	for (size_t i = 0; i < WP_ARRAY_SIZE(cp_rows); i++)
		if (cp_rows[i] == c)
			return true;
	return false;
}

static void core_label(struct buf *b, const char *name, unsigned core, uint64_t v)
{
	puts_(b, name);
	puts_(b, "{core=\"");
	put_u64(b, core);
	puts_(b, "\"} ");
	put_u64(b, v);
	put(b, "\n", 1);
}

static void render_waypointd(struct wp_prom *p, struct buf *b, const uint64_t *cp_ctr)
{
	char name[96];

	family(b, "waypointd_workers", "gauge",
	       "Worker cores (the core label's values are 0..N-1)");
	puts_(b, "waypointd_workers ");
	put_u64(b, p->n);
	put(b, "\n", 1);
	family(b, "waypointd_tsc_hz", "gauge", "TSC cycles per second (the *_cycles_total unit)");
	puts_(b, "waypointd_tsc_hz ");
	put_u64(b, p->tsc_hz);
	put(b, "\n", 1);
	for (size_t f = 0; f < WP_ARRAY_SIZE(stat_fields); f++) {
		const struct stat_field *sf = &stat_fields[f];

		family(b, sf->name, sf->type, sf->help);
		for (unsigned c = 0; c < p->n; c++)
			core_label(b, sf->name, c,
			           wp_metrics_load((const uint64_t *)((const char *)p->stats[c] +
			                                              sf->off)));
	}
	for (unsigned i = 0; i < WP_CTR_MAX; i++) {
		bool cp = is_cp_row(i);

		snprintf(name, sizeof(name), "waypointd_%s_total", wp_ctr_info[i].name);
		family(b, name, "counter", wp_ctr_info[i].desc);
		if (cp) {
			puts_(b, name);
			put(b, " ", 1);
			put_u64(b, cp_ctr ? cp_ctr[i] : 0);
			put(b, "\n", 1);
			continue;
		}
		for (unsigned c = 0; c < p->n; c++)
			core_label(b, name, c, wp_metrics_load(&p->stats[c]->ctr[i]));
	}
}

/* ---- istio_* ------------------------------------------------------------------------------------
 */

static uint64_t hash_text(const char *s, size_t len, enum fam fam)
{
	return wp_hash_bytes(0x27d4eb2f165667c5ull ^ len ^ ((uint64_t)fam << 63), s, len);
}

static int grow_index(struct wp_prom *p)
{
	uint32_t cap = p->idx_mask ? (p->idx_mask + 1) * 2 : 256, *idx = calloc(cap, sizeof(*idx));

	if (!idx)
		return -ENOMEM;
	for (unsigned i = 0; i < p->n_m; i++) {
		uint32_t s =
		        (uint32_t)hash_text(p->m[i].text, p->m[i].len, p->m[i].fam) & (cap - 1);

		while (idx[s])
			s = (s + 1) & (cap - 1);
		idx[s] = i + 1;
	}
	free(p->idx);
	p->idx = idx;
	p->idx_mask = cap - 1;
	return 0;
}

/* The merged series of a label text (taken over by the table when new).
 * Returns its index + 1, or 0 when out of memory (text freed). */
static uint32_t merge(struct wp_prom *p, char *text, size_t len, enum fam fam)
{
	uint32_t s;

	if ((p->n_m + 1) * 2 > p->idx_mask + 1 && grow_index(p)) {
		free(text);
		return 0;
	}
	for (s = (uint32_t)hash_text(text, len, fam) & p->idx_mask; p->idx[s];
	     s = (s + 1) & p->idx_mask) {
		struct merged *m = &p->m[p->idx[s] - 1];

		if (m->fam == fam && m->len == len && !memcmp(m->text, text, len)) {
			free(text);
			return p->idx[s];
		}
	}
	if (p->n_m == p->cap_m) {
		unsigned cap = p->cap_m ? p->cap_m * 2 : 64;
		struct merged *m = realloc(p->m, cap * sizeof(*m));

		if (!m) {
			free(text);
			return 0;
		}
		p->m = m;
		p->cap_m = cap;
	}
	memset(&p->m[p->n_m], 0, sizeof(p->m[0]));
	p->m[p->n_m].text = text;
	p->m[p->n_m].len = len;
	p->m[p->n_m].fam = fam;
	p->idx[s] = ++p->n_m;
	return p->n_m;
}

/* The label text of a cell: reporter first, then Istio's labels in order
 * (TCP series without response_code and grpc_response_status). */
static char *label_text(const struct wp_metrics_core *core, const struct wp_metrics_labels *l,
                        enum fam fam, size_t *len)
{
	size_t cap = sizeof("reporter=\"waypoint\"");
	char *t, *o;

	for (unsigned i = 0; i < WP_ML_MAX; i++) {
		size_t vl;

		wp_metrics_string(core, l->v[i], &vl);
		cap += strlen(wp_metrics_label_names[i]) + 4 + 2 * vl;
	}
	t = malloc(cap);
	if (!t)
		return NULL;
	o = t + sprintf(t, "reporter=\"waypoint\"");
	for (unsigned i = 0; i < WP_ML_MAX; i++) {
		size_t vl;
		const char *v;

		if (fam == TCP && (i == WP_ML_RESPONSE_CODE || i == WP_ML_GRPC_RESPONSE_STATUS))
			continue;
		v = wp_metrics_string(core, l->v[i], &vl);
		o += sprintf(o, ",%s=\"", wp_metrics_label_names[i]);
		o += wp_prom_escape(o, v, vl);
		*o++ = '"';
	}
	*len = (size_t)(o - t);
	return t;
}

/* Makes room in a core's cell -> merged map for n cells. */
static int map_reserve(uint32_t **map, unsigned *cap, unsigned n)
{
	unsigned c = *cap ? *cap : 64;
	uint32_t *m;

	if (n <= *cap)
		return 0;
	while (c < n)
		c *= 2;
	m = realloc(*map, c * sizeof(*m));
	if (!m)
		return -ENOMEM;
	memset(m + *cap, 0, (c - *cap) * sizeof(*m));
	*map = m;
	*cap = c;
	return 0;
}

static void add_hist(struct wp_metrics_hist *acc, const struct wp_metrics_hist *h)
{
	for (unsigned b = 0; b <= WP_METRICS_BUCKETS; b++)
		acc->bucket[b] += wp_metrics_load(&h->bucket[b]);
	acc->sum += wp_metrics_load(&h->sum);
}

/* Adds every published cell of every core into the merged series. */
static void gather(struct wp_prom *p)
{
	for (unsigned i = 0; i < p->n_m; i++)
		memset(&p->m[i].acc, 0, sizeof(p->m[i].acc));
	for (unsigned c = 0; c < p->n; c++) {
		const struct wp_metrics_core *core = p->cores[c];
		struct core_map *map = &p->map[c];
		unsigned nh, nt;

		if (!core)
			continue;
		nh = wp_metrics_n_http(core);
		nt = wp_metrics_n_tcp(core);
		if (map_reserve(&map->http, &map->cap_http, nh) ||
		    map_reserve(&map->tcp, &map->cap_tcp, nt))
			continue; /* out of memory: this core waits for the next scrape */
		for (unsigned i = 0; i < nh; i++) {
			const struct wp_metrics_http *h = wp_metrics_http_at(core, i);
			struct merged *m;

			if (!map->http[i]) {
				size_t len;
				char *t = label_text(core, &h->labels, HTTP, &len);

				map->http[i] = t ? merge(p, t, len, HTTP) : 0;
				if (!map->http[i])
					continue;
			}
			m = &p->m[map->http[i] - 1];
			m->acc.http.requests += wp_metrics_load(&h->requests);
			add_hist(&m->acc.http.h[0], &h->duration);
			add_hist(&m->acc.http.h[1], &h->req_bytes);
			add_hist(&m->acc.http.h[2], &h->resp_bytes);
		}
		for (unsigned i = 0; i < nt; i++) {
			const struct wp_metrics_tcp *t = wp_metrics_tcp_at(core, i);
			struct merged *m;

			if (!map->tcp[i]) {
				size_t len;
				char *txt = label_text(core, &t->labels, TCP, &len);

				map->tcp[i] = txt ? merge(p, txt, len, TCP) : 0;
				if (!map->tcp[i])
					continue;
			}
			m = &p->m[map->tcp[i] - 1];
			m->acc.tcp.v[0] += wp_metrics_load(&t->opened);
			m->acc.tcp.v[1] += wp_metrics_load(&t->closed);
			m->acc.tcp.v[2] += wp_metrics_load(&t->sent);
			m->acc.tcp.v[3] += wp_metrics_load(&t->received);
		}
	}
}

static bool used(const struct merged *m)
{
	uint64_t n = 0;

	if (m->fam == TCP)
		return m->acc.tcp.v[0] || m->acc.tcp.v[1] || m->acc.tcp.v[2] || m->acc.tcp.v[3];
	for (unsigned b = 0; b <= WP_METRICS_BUCKETS; b++)
		n += m->acc.http.h[0].bucket[b];
	return n || m->acc.http.requests;
}

static void sample(struct buf *b, const char *name, const struct merged *m, const char *extra,
                   uint64_t v)
{
	puts_(b, name);
	put(b, "{", 1);
	put(b, m->text, m->len);
	if (extra)
		puts_(b, extra);
	puts_(b, "} ");
	put_u64(b, v);
	put(b, "\n", 1);
}

static const char *const le_text[WP_METRICS_BUCKETS + 1] = {
        ",le=\"0.5\"",    ",le=\"1\"",      ",le=\"5\"",       ",le=\"10\"",      ",le=\"25\"",
        ",le=\"50\"",     ",le=\"100\"",    ",le=\"250\"",     ",le=\"500\"",     ",le=\"1000\"",
        ",le=\"2500\"",   ",le=\"5000\"",   ",le=\"10000\"",   ",le=\"30000\"",   ",le=\"60000\"",
        ",le=\"300000\"", ",le=\"600000\"", ",le=\"1800000\"", ",le=\"3600000\"", ",le=\"+Inf\"",
};

static void histogram(struct buf *b, const char *name, const struct merged *m,
                      const struct wp_metrics_hist *h, bool micro)
{
	char n[96];
	uint64_t cum = 0;

	snprintf(n, sizeof(n), "%s_bucket", name);
	for (unsigned i = 0; i <= WP_METRICS_BUCKETS; i++) {
		cum += h->bucket[i];
		sample(b, n, m, le_text[i], cum);
	}
	snprintf(n, sizeof(n), "%s_sum", name);
	puts_(b, n);
	put(b, "{", 1);
	put(b, m->text, m->len);
	puts_(b, "} ");
	put_u64(b, micro ? h->sum / 1000 : h->sum);
	if (micro) {
		char frac[8];

		snprintf(frac, sizeof(frac), ".%03u", (unsigned)(h->sum % 1000));
		puts_(b, frac);
	}
	put(b, "\n", 1);
	/* the count is the +Inf bucket of the same reading: consistent */
	snprintf(n, sizeof(n), "%s_count", name);
	sample(b, n, m, NULL, cum);
}

static void render_istio(struct wp_prom *p, struct buf *b)
{
	static const struct {
		const char *name, *type, *help;
		enum fam fam;
	} fams[] = {
	        {"istio_requests_total", "counter", "Requests the waypoint completed", HTTP},
	        {"istio_request_duration_milliseconds", "histogram",
	         "Request duration, first byte received to last byte sent", HTTP},
	        {"istio_request_bytes", "histogram",
	         "Bytes received from the downstream per request", HTTP},
	        {"istio_response_bytes", "histogram", "Bytes sent to the downstream per request",
	         HTTP},
	        {"istio_tcp_connections_opened_total", "counter", "TCP connections opened", TCP},
	        {"istio_tcp_connections_closed_total", "counter", "TCP connections closed", TCP},
	        {"istio_tcp_sent_bytes_total", "counter", "Bytes sent to the downstream", TCP},
	        {"istio_tcp_received_bytes_total", "counter", "Bytes received from the downstream",
	         TCP},
	};
	unsigned tcp_field = 0;

	gather(p);
	for (size_t f = 0; f < WP_ARRAY_SIZE(fams); f++) {
		bool any = false;

		for (unsigned i = 0; i < p->n_m; i++) {
			const struct merged *m = &p->m[i];

			if (m->fam != fams[f].fam || !used(m))
				continue;
			if (!any)
				family(b, fams[f].name, fams[f].type, fams[f].help);
			any = true;
			if (f == 0)
				sample(b, fams[f].name, m, NULL, m->acc.http.requests);
			else if (fams[f].fam == HTTP)
				histogram(b, fams[f].name, m, &m->acc.http.h[f - 1], f == 1);
			else
				sample(b, fams[f].name, m, NULL, m->acc.tcp.v[tcp_field]);
		}
		if (fams[f].fam == TCP)
			tcp_field++;
	}
}

/* ---- life cycle ---------------------------------------------------------------------------------
 */

struct wp_prom *wp_prom_create(struct wp_stats *const *stats, struct wp_metrics_core *const *cores,
                               unsigned n, uint64_t tsc_hz)
{
	struct wp_prom *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->map = calloc(n ? n : 1, sizeof(*p->map));
	if (!p->map) {
		free(p);
		return NULL;
	}
	p->stats = stats;
	p->cores = cores;
	p->n = n;
	p->tsc_hz = tsc_hz;
	return p;
}

void wp_prom_destroy(struct wp_prom *p)
{
	if (!p)
		return;
	for (unsigned c = 0; c < p->n; c++) {
		free(p->map[c].http);
		free(p->map[c].tcp);
	}
	for (unsigned i = 0; i < p->n_m; i++)
		free(p->m[i].text);
	free(p->map);
	free(p->m);
	free(p->idx);
	free(p);
}

char *wp_prom_render(struct wp_prom *p, const uint64_t *cp_ctr, size_t *len)
{
	struct buf b = {0};

	if (!reserve(&b, p->last_len ? p->last_len + p->last_len / 8 : 64 * 1024))
		return NULL;
	render_waypointd(p, &b, cp_ctr);
	render_istio(p, &b);
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	b.p[b.len] = '\0';
	p->last_len = b.len;
	*len = b.len;
	return b.p;
}
