/*
 * Size-class free-list allocator for one worker (see mem.h). Each block has
 * a 16-byte header holding its class and requested size, so free and
 * realloc need no lookup. Slabs are never returned to the system before
 * wp_h2mem_destroy(): a worker's steady state allocates nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dp/hbone/mem.h"
#include "wp/common.h"

/* Block sizes (header included): 32, 48, then four steps per doubling up
 * to 64 KiB, all multiples of 16, so rounding wastes at most 25%. */
static const uint32_t class_size[] = {
        32,    48,    64,    80,    96,    112,   128,   160,   192,   224,   256,
        320,   384,   448,   512,   640,   768,   896,   1024,  1280,  1536,  1792,
        2048,  2560,  3072,  3584,  4096,  5120,  6144,  7168,  8192,  10240, 12288,
        14336, 16384, 20480, 24576, 28672, 32768, 40960, 49152, 57344, 65536,
};
#define NCLASS WP_ARRAY_SIZE(class_size)

#define SLAB_BYTES (64 * 1024 + 16)
#define LARGE      0xff

struct hdr {
	uint32_t cls;  /* size class index, or LARGE */
	uint32_t size; /* bytes requested */
	uint64_t pad;  /* 16-byte alignment of the payload */
};

struct free_blk {
	struct free_blk *next;
};

struct slab {
	struct slab *next;
	uint64_t pad;
	unsigned char mem[];
};

struct wp_h2mem {
	struct free_blk *free[NCLASS];
	struct slab *slabs;
	size_t budget;
	struct wp_h2mem_stats st;
	nghttp2_mem ng;
};

static unsigned cls_of(size_t total)
{
	unsigned lo = 0, hi = NCLASS - 1;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (class_size[mid] < total)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t cls_bytes(unsigned c)
{
	return class_size[c];
}

static int carve(struct wp_h2mem *m, unsigned c)
{
	size_t bs = cls_bytes(c), n = (SLAB_BYTES - 16) / bs;
	struct slab *s;

	if (m->budget && m->st.slab_bytes + SLAB_BYTES > m->budget)
		return -ENOMEM;
	s = malloc(sizeof(*s) + SLAB_BYTES);
	if (s == NULL)
		return -ENOMEM;
	s->next = m->slabs;
	m->slabs = s;
	m->st.slab_bytes += SLAB_BYTES;
	for (size_t i = n; i-- > 0;) {
		struct free_blk *b = (struct free_blk *)(s->mem + i * bs);
		b->next = m->free[c];
		m->free[c] = b;
	}
	return 0;
}

void *wp_h2mem_alloc(struct wp_h2mem *m, size_t n)
{
	size_t total = n + sizeof(struct hdr);
	struct hdr *h;

	if (n > UINT32_MAX)
		goto fail;
	if (total > cls_bytes(NCLASS - 1)) {
		if (m->budget && m->st.slab_bytes + total > m->budget)
			goto fail;
		h = malloc(total);
		if (h == NULL)
			goto fail;
		h->cls = LARGE;
		m->st.slab_bytes += total;
		m->st.held_bytes += total;
	} else {
		unsigned c = cls_of(total);
		if (m->free[c] == NULL && carve(m, c) != 0)
			goto fail;
		h = (struct hdr *)m->free[c];
		m->free[c] = m->free[c]->next;
		h->cls = c;
		m->st.held_bytes += cls_bytes(c);
	}
	h->size = (uint32_t)n;
	m->st.live_bytes += n;
	m->st.allocs++;
	return h + 1;
fail:
	m->st.fails++;
	return NULL;
}

void wp_h2mem_release(struct wp_h2mem *m, void *p)
{
	struct hdr *h;

	if (p == NULL)
		return;
	h = (struct hdr *)p - 1;
	m->st.live_bytes -= h->size;
	if (h->cls == LARGE) {
		m->st.held_bytes -= h->size + sizeof(*h);
		m->st.slab_bytes -= h->size + sizeof(*h);
		free(h);
		return;
	}
	unsigned c = h->cls;
	WP_ASSERT(c < NCLASS);
	m->st.held_bytes -= cls_bytes(c);
	((struct free_blk *)h)->next = m->free[c];
	m->free[c] = (struct free_blk *)h;
}

void *wp_h2mem_calloc(struct wp_h2mem *m, size_t nmemb, size_t size)
{
	void *p;

	if (size && nmemb > SIZE_MAX / size)
		return NULL;
	p = wp_h2mem_alloc(m, nmemb * size);
	if (p != NULL)
		memset(p, 0, nmemb * size);
	return p;
}

void *wp_h2mem_realloc(struct wp_h2mem *m, void *p, size_t n)
{
	struct hdr *h;
	void *q;

	if (p == NULL)
		return wp_h2mem_alloc(m, n);
	if (n == 0) {
		wp_h2mem_release(m, p);
		return NULL;
	}
	h = (struct hdr *)p - 1;
	if (h->cls != LARGE && n + sizeof(*h) <= cls_bytes(h->cls)) {
		m->st.live_bytes = m->st.live_bytes - h->size + n;
		h->size = (uint32_t)n;
		return p;
	}
	q = wp_h2mem_alloc(m, n);
	if (q == NULL)
		return NULL;
	memcpy(q, p, WP_MIN(n, (size_t)h->size));
	wp_h2mem_release(m, p);
	return q;
}

static void *ng_malloc(size_t n, void *ud)
{
	return wp_h2mem_alloc(ud, n);
}

static void ng_free(void *p, void *ud)
{
	wp_h2mem_release(ud, p);
}

static void *ng_calloc(size_t nmemb, size_t size, void *ud)
{
	return wp_h2mem_calloc(ud, nmemb, size);
}

static void *ng_realloc(void *p, size_t n, void *ud)
{
	return wp_h2mem_realloc(ud, p, n);
}

struct wp_h2mem *wp_h2mem_new(size_t prealloc, size_t budget)
{
	struct wp_h2mem *m = calloc(1, sizeof(*m));
	unsigned c = 0;

	if (m == NULL)
		return NULL;
	m->budget = budget;
	m->ng.mem_user_data = m;
	m->ng.malloc = ng_malloc;
	m->ng.free = ng_free;
	m->ng.calloc = ng_calloc;
	m->ng.realloc = ng_realloc;
	/* Spread the up-front slabs over the small classes nghttp2 uses most. */
	while (m->st.slab_bytes + SLAB_BYTES <= prealloc) {
		if (carve(m, c) != 0) {
			wp_h2mem_destroy(m);
			return NULL;
		}
		c = (c + 1) % 24; /* up to 2 KiB */
	}
	return m;
}

void wp_h2mem_destroy(struct wp_h2mem *m)
{
	if (m == NULL)
		return;
	while (m->slabs != NULL) {
		struct slab *s = m->slabs;
		m->slabs = s->next;
		free(s);
	}
	free(m);
}

nghttp2_mem *wp_h2mem_nghttp2(struct wp_h2mem *m)
{
	return &m->ng;
}

void wp_h2mem_stats(const struct wp_h2mem *m, struct wp_h2mem_stats *st)
{
	*st = m->st;
}
