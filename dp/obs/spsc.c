/* The worker-to-thread ring (see spsc.h). */
#include <stdlib.h>
#include <string.h>

#include "dp/obs/spsc.h"

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
