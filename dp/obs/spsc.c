/* The worker-to-thread rings (see spsc.h). */
#include <stdlib.h>
#include <string.h>

#include "spsc.h"

struct wp_spsc *wp_spsc_create(unsigned entries, size_t esz)
{
	struct wp_spsc *q;
	uint32_t n = 2;

	while (n < entries && n < (1u << 20))
		n <<= 1;
	if (esz == 0 || esz > UINT32_MAX || posix_memalign((void **)&q, WP_CACHE_LINE, sizeof(*q)))
		return NULL;
	memset(q, 0, sizeof(*q));
	q->mask = n - 1;
	q->esz = (uint32_t)esz;
	q->e = calloc(n, esz);
	if (!q->e) {
		free(q);
		return NULL;
	}
	return q;
}

void wp_spsc_destroy(struct wp_spsc *q)
{
	if (!q)
		return;
	free(q->e);
	free(q);
}

struct wp_spsc_var *wp_spsc_var_create(size_t bytes)
{
	struct wp_spsc_var *q;
	size_t n = 64;

	while (n < bytes && n < ((size_t)1 << 30))
		n <<= 1;
	if (posix_memalign((void **)&q, WP_CACHE_LINE, sizeof(*q)))
		return NULL;
	memset(q, 0, sizeof(*q));
	q->size = n;
	if (posix_memalign((void **)&q->b, WP_CACHE_LINE, n)) {
		free(q);
		return NULL;
	}
	memset(q->b, 0, n);
	return q;
}

void wp_spsc_var_destroy(struct wp_spsc_var *q)
{
	if (!q)
		return;
	free(q->b);
	free(q);
}
