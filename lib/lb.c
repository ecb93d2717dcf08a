/*
 * Load-balancing tables and picks (see wp/lb.h).
 *
 * Everything costly happens in wp_lb_table_build(), on the control plane:
 *   ROUND_ROBIN  one cycle of nginx's smooth weighted round robin is
 *                precomputed (weights divided by their gcd, scaled down if
 *                the cycle would exceed rr_max_len), so a pick is a cursor
 *                step and the per-core state is one integer;
 *   RANDOM and LEAST_REQUEST  prefix sums of the weights: a weighted draw is
 *                one binary search;
 *   RING_HASH    ketama-like: each endpoint gets ring entries in proportion
 *                to its weight (a power-of-two number of replicas per unit
 *                of weight so that the ring has at least ring_min_size
 *                entries, at most ring_max_size), each hashed from
 *                (address, port, replica); a pick is a binary search;
 *   MAGLEV       the Maglev paper's permutation fill of a prime-sized table,
 *                weighted by letting an endpoint take a turn only when its
 *                accumulated weight reaches the largest weight; a pick is one
 *                array read.
 * Endpoint identities depend only on (address, port), never on the index,
 * so removing an endpoint moves only its own keys on the ring and about
 * 1/n of the keys in the maglev table. Outlier detection does not rebuild:
 * a pick that lands on an endpoint the caller's core marked ejected takes
 * the policy's next choice (pick_other()), so on the ring and in the maglev
 * table only the ejected endpoint's keys move, and back when it returns.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wp/counters.h"
#include "wp/lb.h"
#include "wp/rand.h"

static inline uint32_t weight_of(const struct wp_lb_endpoint *e)
{
	return e->weight ? e->weight : 1;
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

bool wp_lb_is_prime(uint32_t m)
{
	if (m < 2)
		return false;
	for (uint32_t d = 2; (uint64_t)d * d <= m; d++)
		if (m % d == 0)
			return false;
	return true;
}

/* Identity bytes of an endpoint: family, address of that family, port. */
static uint64_t ep_hash(const struct wp_lb_endpoint *e, uint32_t salt)
{
	uint8_t b[1 + 16 + 2 + 4];
	size_t n = 0;
	b[n++] = e->addr.family;
	if (e->addr.family == WP_AF_INET6) {
		memcpy(b + n, e->addr.v6, 16);
		n += 16;
	} else {
		memcpy(b + n, &e->addr.v4, 4);
		n += 4;
	}
	b[n++] = (uint8_t)(e->port >> 8);
	b[n++] = (uint8_t)e->port;
	memcpy(b + n, &salt, 4);
	n += 4;
	return wp_lb_hash(b, n);
}

static int build_rr(struct wp_lb_table *t, uint32_t max_len)
{
	uint32_t n = t->n_ep;
	uint64_t g = 0, total = 0;
	uint64_t *w = calloc(n, sizeof(*w));
	int64_t *cur = calloc(n, sizeof(*cur));
	int rc = -ENOMEM;

	if (!w || !cur)
		goto out;
	for (uint32_t i = 0; i < n; i++)
		g = gcd64(g, weight_of(&t->eps[i]));
	for (uint32_t i = 0; i < n; i++) {
		w[i] = weight_of(&t->eps[i]) / g;
		total += w[i];
	}
	if (total > max_len) {
		/* scale down, keeping every endpoint in the cycle */
		uint64_t ntotal = 0;
		for (uint32_t i = 0; i < n; i++) {
			uint64_t s = w[i] * (max_len - n) / total;
			w[i] = s ? s : 1;
			ntotal += w[i];
		}
		total = ntotal;
	}
	t->rr_seq = malloc(total * sizeof(*t->rr_seq));
	if (!t->rr_seq)
		goto out;
	t->rr_len = (uint32_t)total;
	/* nginx's smooth weighted round robin, run for one full cycle */
	for (uint32_t k = 0; k < total; k++) {
		uint32_t best = 0;
		for (uint32_t i = 0; i < n; i++) {
			cur[i] += (int64_t)w[i];
			if (cur[i] > cur[best])
				best = i;
		}
		cur[best] -= (int64_t)total;
		t->rr_seq[k] = best;
	}
	rc = 0;
out:
	free(w);
	free(cur);
	return rc;
}

static int ring_cmp(const void *a, const void *b)
{
	const struct wp_lb_ring_entry *x = a, *y = b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->ep < y->ep ? -1 : x->ep > y->ep;
}

static uint64_t pow2_ceil(uint64_t v)
{
	uint64_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

static int build_ring(struct wp_lb_table *t, uint32_t min_size, uint32_t max_size)
{
	uint32_t n = t->n_ep;
	uint64_t total = t->total_weight;
	/* Replicas per unit of weight: the power of two that gives at least
	 * min_size entries. Rounding to a power of two keeps it unchanged when
	 * one endpoint of many leaves, so the other endpoints keep exactly
	 * their points and only the leaver's keys move. */
	uint64_t per = pow2_ceil((min_size + total - 1) / total);
	bool capped = per * total > max_size;
	uint64_t len = 0;
	uint32_t *cnt = calloc(n, sizeof(*cnt));

	if (!cnt)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t w = weight_of(&t->eps[i]);
		uint64_t c = capped ? w * max_size / total : w * per;
		cnt[i] = (uint32_t)(c ? c : 1);
		len += cnt[i];
	}
	t->ring = malloc(len * sizeof(*t->ring));
	if (!t->ring) {
		free(cnt);
		return -ENOMEM;
	}
	uint64_t k = 0;
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t r = 0; r < cnt[i]; r++)
			t->ring[k++] =
			        (struct wp_lb_ring_entry){.hash = ep_hash(&t->eps[i], r), .ep = i};
	qsort(t->ring, len, sizeof(*t->ring), ring_cmp);
	t->ring_len = (uint32_t)len;
	free(cnt);
	return 0;
}

static int build_maglev(struct wp_lb_table *t, uint32_t m)
{
	uint32_t n = t->n_ep;
	uint64_t wmax = 0;
	uint32_t *offset = malloc(n * sizeof(*offset));
	uint32_t *skip = malloc(n * sizeof(*skip));
	uint32_t *next = calloc(n, sizeof(*next));
	uint64_t *credit = calloc(n, sizeof(*credit));
	int rc = -ENOMEM;

	t->maglev = malloc((size_t)m * sizeof(*t->maglev));
	if (!offset || !skip || !next || !credit || !t->maglev)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		offset[i] = (uint32_t)(ep_hash(&t->eps[i], 0x6d61676c) % m);         /* "magl" */
		skip[i] = (uint32_t)(ep_hash(&t->eps[i], 0x65762121) % (m - 1)) + 1; /* "ev!!" */
		wmax = WP_MAX(wmax, (uint64_t)weight_of(&t->eps[i]));
	}
	memset(t->maglev, 0xff, (size_t)m * sizeof(*t->maglev));
	uint32_t filled = 0;
	while (filled < m) {
		for (uint32_t i = 0; i < n && filled < m; i++) {
			credit[i] += weight_of(&t->eps[i]);
			if (credit[i] < wmax)
				continue;
			credit[i] -= wmax;
			/* next free slot in this endpoint's permutation */
			uint32_t c;
			do {
				c = (uint32_t)((offset[i] + (uint64_t)next[i] * skip[i]) % m);
				next[i]++;
			} while (t->maglev[c] != UINT16_MAX);
			t->maglev[c] = (uint16_t)i;
			filled++;
		}
	}
	t->maglev_len = m;
	rc = 0;
out:
	free(offset);
	free(skip);
	free(next);
	free(credit);
	return rc;
}

/* Numbers the tables built (wp_lb_table.serial); any thread may build. */
static uint64_t build_serial;

struct wp_lb_table *wp_lb_table_build(const struct wp_lb_params *params,
                                      const struct wp_lb_endpoint *eps, uint32_t n)
{
	struct wp_lb_table *t;
	uint32_t ring_min = params->ring_min_size ? params->ring_min_size : WP_LB_RING_MIN_DEFAULT;
	uint32_t ring_max = params->ring_max_size ? params->ring_max_size : WP_LB_RING_MAX_DEFAULT;
	uint32_t mag = params->maglev_size ? params->maglev_size : WP_LB_MAGLEV_SIZE_DEFAULT;
	uint32_t rr_max = params->rr_max_len ? params->rr_max_len : WP_LB_RR_MAX_DEFAULT;
	int rc;

	if (params->policy > WP_LB_MAGLEV || n > WP_LB_MAX_ENDPOINTS || (n && !eps) ||
	    ring_min > ring_max || (params->policy == WP_LB_ROUND_ROBIN && rr_max <= n) ||
	    (params->policy == WP_LB_MAGLEV && (!wp_lb_is_prime(mag) || mag <= n))) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		goto nomem;
	t->policy = params->policy;
	t->serial = __atomic_add_fetch(&build_serial, 1, __ATOMIC_RELAXED);
	t->n_ep = n;
	t->od = params->od;
	if (n == 0)
		return t;
	t->eps = malloc(n * sizeof(*eps));
	t->cum = malloc(n * sizeof(*t->cum));
	if (!t->eps || !t->cum)
		goto nomem;
	memcpy(t->eps, eps, n * sizeof(*eps));
	for (uint32_t i = 0; i < n; i++) {
		t->total_weight += weight_of(&eps[i]);
		t->cum[i] = t->total_weight;
	}
	switch (t->policy) {
	case WP_LB_ROUND_ROBIN:
		rc = build_rr(t, rr_max);
		break;
	case WP_LB_RING_HASH:
		rc = build_ring(t, ring_min, ring_max);
		break;
	case WP_LB_MAGLEV:
		rc = build_maglev(t, mag);
		break;
	default:
		rc = 0;
		break;
	}
	if (rc)
		goto nomem;
	return t;
nomem:
	wp_lb_table_free(t);
	errno = ENOMEM;
	return NULL;
}

void wp_lb_table_free(struct wp_lb_table *t)
{
	if (!t)
		return;
	free(t->eps);
	free(t->cum);
	free(t->rr_seq);
	free(t->ring);
	free(t->maglev);
	free(t);
}

static inline uint64_t rng_below(struct wp_lb_core *c, uint64_t n)
{
	return wp_rand_below(&c->rng, n);
}

void wp_lb_core_init(struct wp_lb_core *c, const struct wp_lb_table *t, uint64_t seed,
                     uint32_t *active, uint64_t *ctr)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	c->rng = z ? z : 1;
	c->rr_pos = t->rr_len ? (uint32_t)rng_below(c, t->rr_len) : 0;
	c->active = active;
	c->ctr = ctr;
	c->ejected = NULL;
	c->none_healthy = false;
}

/* Weighted draw: first endpoint whose prefix sum exceeds r. */
static uint32_t pick_weighted(const struct wp_lb_table *t, struct wp_lb_core *c)
{
	uint64_t r = rng_below(c, t->total_weight);
	uint32_t lo = 0, hi = t->n_ep - 1;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (t->cum[mid] > r)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static uint32_t pick_p2c(const struct wp_lb_table *t, struct wp_lb_core *c)
{
	/* two weighted draws; the one with fewer active requests per unit of
	 * weight wins, the first draw on a tie (so an idle set follows the
	 * weights exactly and a loaded one converges to load ~ weight) */
	uint32_t a = pick_weighted(t, c), b = pick_weighted(t, c);
	if (a == b && t->n_ep > 1)
		b = pick_weighted(t, c);
	if (!c->active || a == b)
		return a;
	uint64_t la = (uint64_t)c->active[a] * weight_of(&t->eps[b]);
	uint64_t lb = (uint64_t)c->active[b] * weight_of(&t->eps[a]);
	return lb < la ? b : a;
}

/* First ring entry with hash >= h, wrapping to the start. */
static uint32_t ring_pos(const struct wp_lb_table *t, uint64_t h)
{
	uint32_t lo = 0, hi = t->ring_len;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (t->ring[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == t->ring_len ? 0 : lo;
}

static inline bool is_ejected(const struct wp_lb_core *c, uint32_t i)
{
	return (c->ejected[i >> 6] >> (i & 63)) & 1;
}

/* The pick <i> is ejected: the replacement by the policy's own order (see
 * wp_lb_pick()). The owner never marks every endpoint, so each walk finds
 * one; the bounds only guard against a bitmap that changed under us. */
static uint32_t pick_other(const struct wp_lb_table *t, struct wp_lb_core *c, uint32_t i,
                           uint64_t hash, bool hashed)
{
	switch (t->policy) {
	case WP_LB_ROUND_ROBIN:
		for (uint32_t k = 0; k < t->rr_len; k++) {
			uint32_t j = t->rr_seq[c->rr_pos];
			if (++c->rr_pos == t->rr_len)
				c->rr_pos = 0;
			if (!is_ejected(c, j))
				return j;
		}
		return i;
	case WP_LB_RING_HASH:
		if (hashed) {
			uint32_t p = ring_pos(t, hash);
			for (uint32_t k = 1; k < t->ring_len; k++) {
				uint32_t j = t->ring[(p + k) % t->ring_len].ep;
				if (!is_ejected(c, j))
					return j;
			}
			return i;
		}
		break;
	case WP_LB_MAGLEV:
		if (hashed) {
			uint64_t p = hash % t->maglev_len;
			for (uint32_t k = 1; k < t->maglev_len; k++) {
				uint32_t j = t->maglev[(p + k) % t->maglev_len];
				if (!is_ejected(c, j))
					return j;
			}
			return i;
		}
		break;
	default:
		break;
	}
	/* weighted draws: a few more, then the next endpoint in table order */
	for (int k = 0; k < 4; k++) {
		uint32_t j = pick_weighted(t, c);
		if (!is_ejected(c, j))
			return j;
	}
	for (uint32_t k = 1; k < t->n_ep; k++) {
		uint32_t j = (i + k) % t->n_ep;
		if (!is_ejected(c, j))
			return j;
	}
	return i;
}

static uint32_t pick_one(const struct wp_lb_table *t, struct wp_lb_core *c, uint64_t hash,
                         bool has_hash)
{
	switch (t->policy) {
	case WP_LB_ROUND_ROBIN: {
		uint32_t i = t->rr_seq[c->rr_pos];
		if (++c->rr_pos == t->rr_len)
			c->rr_pos = 0;
		return i;
	}
	case WP_LB_LEAST_REQUEST:
		return pick_p2c(t, c);
	case WP_LB_RING_HASH:
		if (WP_LIKELY(has_hash))
			return t->ring[ring_pos(t, hash)].ep;
		break;
	case WP_LB_MAGLEV:
		if (WP_LIKELY(has_hash))
			return t->maglev[hash % t->maglev_len];
		break;
	case WP_LB_RANDOM:
	default:
		return pick_weighted(t, c);
	}
	wp_ctr_inc(c->ctr, WP_CTR_L7_LB_HASH_KEY_MISSING);
	return pick_weighted(t, c);
}

int wp_lb_pick(const struct wp_lb_table *t, struct wp_lb_core *c, uint64_t hash, bool has_hash)
{
	uint32_t i;

	if (WP_UNLIKELY(t->n_ep == 0)) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_LB_NO_ENDPOINT);
		return -ENOENT;
	}
	if (WP_UNLIKELY(c->none_healthy)) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_OD_NONE_HEALTHY);
		return -EHOSTUNREACH;
	}
	i = pick_one(t, c, hash, has_hash);
	if (WP_UNLIKELY(c->ejected != NULL) && is_ejected(c, i)) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_OD_SKIPPED);
		i = pick_other(t, c, i, hash, has_hash);
	}
	return (int)i;
}
