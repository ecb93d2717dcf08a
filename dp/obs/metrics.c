/*
 * Per-core cells for Istio's standard metrics (see wp/metrics.h).
 *
 * A core holds three append-only tables, all sized at create: strings (the
 * label values, bytes in one arena), HTTP series and TCP series. Each table
 * has an open-addressing index (power of two, at least twice the entries,
 * linear probing) that only the owner reads; readers walk the entries by
 * position up to the published count. Nothing is ever removed, so an id or
 * a series handle stays valid for the core's life and a reader never sees
 * an entry change under it, only counts grow.
 */
#include <stdlib.h>
#include <string.h>

#include "wp/counters.h"
#include "wp/hash.h"
#include "wp/metrics.h"

#define STRINGS_PER_SERIES 4  /* distinct values one series adds, on average, at most */
#define BYTES_PER_STRING   48 /* arena bytes per string slot */
#define FIXED_STRINGS      3  /* unknown, overflow, "" */

const char *const wp_metrics_label_names[WP_ML_MAX] = {
#define WP_ML_NAME(id, name) [WP_ML_##id] = name,
        WP_METRICS_LABELS(WP_ML_NAME)
#undef WP_ML_NAME
};

const double wp_metrics_bucket_bounds[WP_METRICS_BUCKETS] = {
        0.5,  1,    5,     10,    25,    50,     100,    250,     500,     1000,
        2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
};

/* The bounds in the units the cells count in: duration in microseconds
 * (the bounds are milliseconds), sizes in bytes (0.5 byte: nothing but 0). */
static const uint64_t dur_bounds_us[WP_METRICS_BUCKETS] = {
        500,      1000,      5000,      10000,      25000,      50000,    100000,
        250000,   500000,    1000000,   2500000,    5000000,    10000000, 30000000,
        60000000, 300000000, 600000000, 1800000000, 3600000000,
};
static const uint64_t byte_bounds[WP_METRICS_BUCKETS] = {
        0,    1,    5,     10,    25,    50,     100,    250,     500,     1000,
        2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
};

struct str {
	uint32_t off, len;
};

struct wp_metrics_core {
	uint64_t *ctr;
	unsigned max_series;
	/* strings */
	struct str *str;
	uint32_t n_str, max_str;
	char *arena;
	uint32_t arena_used, arena_len;
	uint32_t *str_idx; /* id + 1, 0 = empty */
	uint32_t str_mask;
	/* series; [0] is the table's overflow series */
	struct wp_metrics_http *http;
	struct wp_metrics_tcp *tcp;
	uint32_t n_http, n_tcp; /* published with a release store */
	uint32_t *http_idx, *tcp_idx;
	uint32_t series_mask;
};

static uint32_t pow2_at_least(uint64_t n)
{
	uint32_t p = 16;

	while (p < n)
		p <<= 1;
	return p;
}

static uint64_t hash_bytes(const char *s, size_t len)
{
	return wp_hash_bytes(0x9e3779b97f4a7c15ull ^ len, s, len);
}

static uint64_t hash_labels(const struct wp_metrics_labels *l)
{
	uint64_t h = 0x51afd7ed558ccd00ull;

	for (unsigned i = 0; i < WP_ML_MAX; i += 2)
		h = wp_hash_mix64(
		        h ^ ((uint64_t)l->v[i] << 32 | (i + 1 < WP_ML_MAX ? l->v[i + 1] : 0)));
	return h;
}

struct wp_metrics_core *wp_metrics_core_create(unsigned max_series, uint64_t *ctr)
{
	struct wp_metrics_core *m;
	uint64_t strings = (uint64_t)max_series * STRINGS_PER_SERIES + FIXED_STRINGS + 16;

	if (max_series == 0 || max_series > (1u << 24))
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->ctr = ctr;
	m->max_series = max_series;
	m->max_str = (uint32_t)strings;
	m->arena_len = (uint32_t)(strings * BYTES_PER_STRING);
	m->str_mask = pow2_at_least(strings * 2) - 1;
	m->series_mask = pow2_at_least((uint64_t)max_series * 2) - 1;
	m->str = calloc(m->max_str, sizeof(*m->str));
	m->arena = calloc(1, m->arena_len);
	m->str_idx = calloc((size_t)m->str_mask + 1, sizeof(uint32_t));
	m->http = calloc((size_t)max_series + 1, sizeof(*m->http));
	m->tcp = calloc((size_t)max_series + 1, sizeof(*m->tcp));
	m->http_idx = calloc((size_t)m->series_mask + 1, sizeof(uint32_t));
	m->tcp_idx = calloc((size_t)m->series_mask + 1, sizeof(uint32_t));
	if (!m->str || !m->arena || !m->str_idx || !m->http || !m->tcp || !m->http_idx ||
	    !m->tcp_idx) {
		wp_metrics_core_destroy(m);
		return NULL;
	}
	/* the first three strings: ids WP_METRICS_UNKNOWN, _OVERFLOW, _EMPTY */
	(void)wp_metrics_intern(m, "unknown", 7);
	(void)wp_metrics_intern(m, "overflow", 8);
	(void)wp_metrics_intern(m, "", 0);
	for (unsigned i = 0; i < WP_ML_MAX; i++) {
		m->http[0].labels.v[i] = WP_METRICS_OVERFLOW;
		m->tcp[0].labels.v[i] = WP_METRICS_OVERFLOW;
	}
	m->n_http = m->n_tcp = 1;
	return m;
}

void wp_metrics_core_destroy(struct wp_metrics_core *m)
{
	if (!m)
		return;
	free(m->str);
	free(m->arena);
	free(m->str_idx);
	free(m->http);
	free(m->tcp);
	free(m->http_idx);
	free(m->tcp_idx);
	free(m);
}

uint32_t wp_metrics_intern(struct wp_metrics_core *m, const char *s, size_t len)
{
	uint32_t slot, id;

	if (len > WP_METRICS_MAX_VALUE)
		goto overflow;
	for (slot = (uint32_t)hash_bytes(s, len) & m->str_mask;; slot = (slot + 1) & m->str_mask) {
		uint32_t e = m->str_idx[slot];

		if (e == 0)
			break;
		if (m->str[e - 1].len == len && !memcmp(m->arena + m->str[e - 1].off, s, len))
			return e - 1;
	}
	if (m->n_str == m->max_str || m->arena_len - m->arena_used < len)
		goto overflow;
	id = m->n_str++;
	memcpy(m->arena + m->arena_used, s, len);
	m->str[id].off = m->arena_used;
	m->str[id].len = (uint32_t)len;
	m->arena_used += (uint32_t)len;
	m->str_idx[slot] = id + 1;
	/* readers reach a string only through a series published after it
	 * (release store of the series count): no fence needed here */
	return id;
overflow:
	if (m->ctr)
		wp_ctr_inc(m->ctr, WP_CTR_METRICS_LABEL_OVERFLOW);
	return WP_METRICS_OVERFLOW;
}

/* The series of l in a table (index is the table's open-addressing index,
 * labels at (char *)cells + i * size), created when new; 0 (the overflow
 * series) when the table is full. */
static uint32_t lookup(struct wp_metrics_core *m, uint32_t *index, void *cells, size_t size,
                       uint32_t *n, const struct wp_metrics_labels *l)
{
	uint32_t slot = (uint32_t)hash_labels(l) & m->series_mask, i;

	for (;; slot = (slot + 1) & m->series_mask) {
		uint32_t e = index[slot];

		if (e == 0)
			break;
		if (!memcmp((char *)cells + (size_t)e * size, l, sizeof(*l)))
			return e;
	}
	if (*n > m->max_series) {
		if (m->ctr)
			wp_ctr_inc(m->ctr, WP_CTR_METRICS_SERIES_OVERFLOW);
		return 0;
	}
	i = *n;
	memcpy((char *)cells + (size_t)i * size, l, sizeof(*l));
	index[slot] = i;
	__atomic_store_n(n, i + 1, __ATOMIC_RELEASE);
	return i;
}

static inline void bump(uint64_t *p, uint64_t n)
{
	__atomic_store_n(p, *p + n, __ATOMIC_RELAXED);
}

static void observe(struct wp_metrics_hist *h, const uint64_t *bounds, uint64_t v)
{
	unsigned b = 0;

	while (b < WP_METRICS_BUCKETS && v > bounds[b])
		b++;
	bump(&h->bucket[b], 1);
	bump(&h->sum, v);
}

uint32_t wp_metrics_http_series(struct wp_metrics_core *m, const struct wp_metrics_labels *l)
{
	return lookup(m, m->http_idx, m->http, sizeof(*m->http), &m->n_http, l);
}

void wp_metrics_http_add(struct wp_metrics_core *m, uint32_t series, uint64_t duration_us,
                         uint64_t req_bytes, uint64_t resp_bytes)
{
	struct wp_metrics_http *c = &m->http[series < m->n_http ? series : 0];

	bump(&c->requests, 1);
	observe(&c->duration, dur_bounds_us, duration_us);
	observe(&c->req_bytes, byte_bounds, req_bytes);
	observe(&c->resp_bytes, byte_bounds, resp_bytes);
}

void wp_metrics_http_record(struct wp_metrics_core *m, const struct wp_metrics_labels *l,
                            uint64_t duration_us, uint64_t req_bytes, uint64_t resp_bytes)
{
	wp_metrics_http_add(m, wp_metrics_http_series(m, l), duration_us, req_bytes, resp_bytes);
}

uint32_t wp_metrics_tcp_series(struct wp_metrics_core *m, const struct wp_metrics_labels *l)
{
	struct wp_metrics_labels k = *l;

	k.v[WP_ML_RESPONSE_CODE] = WP_METRICS_UNKNOWN;
	k.v[WP_ML_GRPC_RESPONSE_STATUS] = WP_METRICS_UNKNOWN;
	return lookup(m, m->tcp_idx, m->tcp, sizeof(*m->tcp), &m->n_tcp, &k);
}

void wp_metrics_tcp_add(struct wp_metrics_core *m, uint32_t series, uint64_t opened,
                        uint64_t closed, uint64_t sent, uint64_t received)
{
	struct wp_metrics_tcp *c = &m->tcp[series < m->n_tcp ? series : 0];

	bump(&c->opened, opened);
	bump(&c->closed, closed);
	bump(&c->sent, sent);
	bump(&c->received, received);
}

unsigned wp_metrics_n_http(const struct wp_metrics_core *m)
{
	return __atomic_load_n(&m->n_http, __ATOMIC_ACQUIRE);
}

unsigned wp_metrics_n_tcp(const struct wp_metrics_core *m)
{
	return __atomic_load_n(&m->n_tcp, __ATOMIC_ACQUIRE);
}

const struct wp_metrics_http *wp_metrics_http_at(const struct wp_metrics_core *m, unsigned i)
{
	return &m->http[i];
}

const struct wp_metrics_tcp *wp_metrics_tcp_at(const struct wp_metrics_core *m, unsigned i)
{
	return &m->tcp[i];
}

const char *wp_metrics_string(const struct wp_metrics_core *m, uint32_t id, size_t *len)
{
	*len = m->str[id].len;
	return m->arena + m->str[id].off;
}
