/*
 * A small chained hash map with string keys and intrusive entries, for the
 * control plane's object store. Not thread-safe.
 */
#ifndef WP_RESOLVE_HMAP_H
#define WP_RESOLVE_HMAP_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct hent {
	struct hent *next;
	uint64_t hash;
	const char *key;
};

struct hmap {
	struct hent **b;
	size_t nb; /* power of two */
	size_t n;
};

static inline uint64_t hmap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h ^ (h >> 29);
}

static inline int hmap_init(struct hmap *m, size_t nb)
{
	m->nb = nb;
	m->n = 0;
	m->b = calloc(nb, sizeof(*m->b));
	return m->b ? 0 : -1;
}

static inline void hmap_fini(struct hmap *m)
{
	free(m->b);
	m->b = NULL;
	m->nb = m->n = 0;
}

static inline struct hent *hmap_find(const struct hmap *m, const char *key)
{
	uint64_t h = hmap_hash(key);

	for (struct hent *e = m->b[h & (m->nb - 1)]; e; e = e->next)
		if (e->hash == h && !strcmp(e->key, key))
			return e;
	return NULL;
}

static inline void hmap_grow(struct hmap *m)
{
	size_t nb = m->nb * 2;
	struct hent **b = calloc(nb, sizeof(*b));

	if (!b)
		return; /* stay at the current size: slower, still correct */
	for (size_t i = 0; i < m->nb; i++) {
		struct hent *e = m->b[i];

		while (e) {
			struct hent *n = e->next;

			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
			e = n;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
}

/* e->key must be set and stay valid while e is in the map. */
static inline void hmap_insert(struct hmap *m, struct hent *e)
{
	if (m->n >= m->nb)
		hmap_grow(m);
	e->hash = hmap_hash(e->key);
	e->next = m->b[e->hash & (m->nb - 1)];
	m->b[e->hash & (m->nb - 1)] = e;
	m->n++;
}

static inline void hmap_remove(struct hmap *m, struct hent *e)
{
	struct hent **pp = &m->b[e->hash & (m->nb - 1)];

	while (*pp) {
		if (*pp == e) {
			*pp = e->next;
			m->n--;
			return;
		}
		pp = &(*pp)->next;
	}
}

#define hmap_foreach(m, e)                                                                         \
	for (size_t _i = 0; _i < (m)->nb; _i++)                                                    \
		for (struct hent *e = (m)->b[_i], *_n = e ? e->next : NULL; e;                     \
		     e = _n, _n = e ? e->next : NULL)

#endif /* WP_RESOLVE_HMAP_H */
