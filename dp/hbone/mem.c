/*
 * Size-class free-list allocator for one worker (see mem.h). Each block has
 * a 16-byte header holding its class and requested size, so free and
 * realloc need no lookup. Slabs are never returned to the system before
 * wp_h2mem_destroy(): a worker's steady state allocates nothing.
 *
 * Classes: a geometric series (32, 48, then four steps per doubling up to
 * 64 KiB), plus the exact sizes an nghttp2 session allocates for as long
 * as it lives (session struct, HPACK rings, stream map, outbound frame
 * buffer). Those are learnt when the allocator is made, from a throwaway
 * server and client session, so they follow the installed libnghttp2: with
 * the series alone, 1.52's 16,394-byte frame buffer lands in the 20 KiB
 * class and an idle connection wastes ~6 KiB to rounding. A slab of a class
 * holds a whole number of its blocks (64 KiB worth, at least one), so
 * carving wastes nothing either.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "wp/common.h"

/* Block sizes (header included), all multiples of 16, so rounding wastes
 * at most 25% for sizes nghttp2 does not hold per session. */
static const uint32_t series[] = {
        32,    48,    64,    80,    96,    112,   128,   160,   192,   224,   256,
        320,   384,   448,   512,   640,   768,   896,   1024,  1280,  1536,  1792,
        2048,  2560,  3072,  3584,  4096,  5120,  6144,  7168,  8192,  10240, 12288,
        14336, 16384, 20480, 24576, 28672, 32768, 40960, 49152, 57344, 65536,
};
#define NSERIES WP_ARRAY_SIZE(series)
#define NLEARNT 16 /* exact classes learnt from nghttp2, at most */
#define NCLASS  (NSERIES + NLEARNT)

#define SLAB_TARGET (64 * 1024)
#define MAX_BLOCK   65536 /* larger: malloc */
#define LARGE       0xff

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
	uint32_t class_size[NCLASS]; /* ascending */
	unsigned nclass;
	struct free_blk *free[NCLASS];
	struct slab *slabs;
	size_t budget;
	struct wp_h2mem_stats st;
	nghttp2_mem ng;
};

/* The smallest class that holds total bytes (total <= MAX_BLOCK). */
static unsigned cls_of(const struct wp_h2mem *m, size_t total)
{
	unsigned lo = 0, hi = m->nclass - 1;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (m->class_size[mid] < total)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t cls_bytes(const struct wp_h2mem *m, unsigned c)
{
	return m->class_size[c];
}

/* Blocks per slab of class c: 64 KiB worth, at least one. */
static size_t cls_per_slab(const struct wp_h2mem *m, unsigned c)
{
	size_t bs = cls_bytes(m, c);

	return bs >= SLAB_TARGET ? 1 : SLAB_TARGET / bs;
}

static int carve(struct wp_h2mem *m, unsigned c)
{
	size_t bs = cls_bytes(m, c), n = cls_per_slab(m, c);
	size_t bytes = sizeof(struct slab) + n * bs;
	struct slab *s;

	if (m->budget && m->st.slab_bytes + bytes > m->budget)
		return -ENOMEM;
	s = malloc(bytes);
	if (s == NULL)
		return -ENOMEM;
	s->next = m->slabs;
	m->slabs = s;
	m->st.slab_bytes += bytes;
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
	if (total > MAX_BLOCK) {
		if (m->budget && m->st.slab_bytes + total > m->budget)
			goto fail;
		h = malloc(total);
		if (h == NULL)
			goto fail;
		h->cls = LARGE;
		m->st.slab_bytes += total;
		m->st.held_bytes += total;
	} else {
		unsigned c = cls_of(m, total);
		if (m->free[c] == NULL && carve(m, c) != 0)
			goto fail;
		h = (struct hdr *)m->free[c];
		m->free[c] = m->free[c]->next;
		h->cls = c;
		m->st.held_bytes += cls_bytes(m, c);
	}
	h->size = (uint32_t)n;
	m->st.live_bytes += n;
	m->st.live_blocks++;
	m->st.allocs++;
	return h + 1;
fail:
	m->st.fails++;
	return NULL;
}

bool wp_h2mem_can_alloc(const struct wp_h2mem *m, size_t n)
{
	size_t total = n + sizeof(struct hdr);
	unsigned c;

	if (n > UINT32_MAX)
		return false;
	if (total > MAX_BLOCK)
		return !m->budget || m->st.slab_bytes + total <= m->budget;
	c = cls_of(m, total);
	return m->free[c] != NULL || !m->budget ||
	       m->st.slab_bytes + sizeof(struct slab) + cls_per_slab(m, c) * cls_bytes(m, c) <=
	               m->budget;
}

void wp_h2mem_release(struct wp_h2mem *m, void *p)
{
	struct hdr *h;

	if (p == NULL)
		return;
	h = (struct hdr *)p - 1;
	m->st.live_bytes -= h->size;
	m->st.live_blocks--;
	if (h->cls == LARGE) {
		m->st.held_bytes -= h->size + sizeof(*h);
		m->st.slab_bytes -= h->size + sizeof(*h);
		free(h);
		return;
	}
	unsigned c = h->cls;
	WP_ASSERT(c < m->nclass);
	m->st.held_bytes -= cls_bytes(m, c);
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
	if (h->cls != LARGE && n + sizeof(*h) <= cls_bytes(m, h->cls)) {
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

/* ---- learning nghttp2's per-session sizes ---- */

/* Live allocations of a throwaway session, on plain malloc. */
struct probe {
	void *p[64];
	size_t n[64];
	unsigned count;
	bool overflow;
};

static void probe_note(struct probe *pr, void *p, size_t n)
{
	if (p == NULL)
		return;
	if (pr->count == WP_ARRAY_SIZE(pr->p)) {
		pr->overflow = true;
		return;
	}
	pr->p[pr->count] = p;
	pr->n[pr->count++] = n;
}

static void probe_forget(struct probe *pr, void *p)
{
	for (unsigned i = 0; i < pr->count; i++)
		if (pr->p[i] == p) {
			pr->p[i] = pr->p[--pr->count];
			pr->n[i] = pr->n[pr->count];
			return;
		}
}

static void *pr_malloc(size_t n, void *ud)
{
	void *p = malloc(n);
	probe_note(ud, p, n);
	return p;
}

static void pr_free(void *p, void *ud)
{
	probe_forget(ud, p);
	free(p);
}

static void *pr_calloc(size_t nmemb, size_t size, void *ud)
{
	void *p = calloc(nmemb, size);
	probe_note(ud, p, nmemb * size);
	return p;
}

static void *pr_realloc(void *p, size_t n, void *ud)
{
	void *q = realloc(p, n);

	if (q != NULL || n == 0)
		probe_forget(ud, p);
	probe_note(ud, q, n);
	return q;
}

/* Adds the class total (header included) unless one of that size exists. */
static void add_class(struct wp_h2mem *m, size_t total)
{
	unsigned i;

	total = (total + 15) & ~(size_t)15;
	if (total > MAX_BLOCK || m->nclass == NCLASS)
		return;
	for (i = 0; i < m->nclass && m->class_size[i] < total; i++)
		;
	if (i < m->nclass && m->class_size[i] == total)
		return;
	memmove(&m->class_size[i + 1], &m->class_size[i],
	        (m->nclass - i) * sizeof(m->class_size[0]));
	m->class_size[i] = (uint32_t)total;
	m->nclass++;
}

/*
 * Runs a server and a client session up to "SETTINGS sent" on a recording
 * allocator and adds a class for each size still allocated then: what
 * every idle connection keeps. Best effort: on failure the series stays.
 */
static void learn_session_sizes(struct wp_h2mem *m)
{
	static const nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
	nghttp2_session_callbacks *cbs;

	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return;
	for (int server = 0; server < 2; server++) {
		struct probe pr = {.count = 0};
		nghttp2_mem mem = {&pr, pr_malloc, pr_free, pr_calloc, pr_realloc};
		nghttp2_session *ss;
		const uint8_t *out;
		int rv = server ? nghttp2_session_server_new3(&ss, cbs, NULL, NULL, &mem)
		                : nghttp2_session_client_new3(&ss, cbs, NULL, NULL, &mem);

		if (rv != 0)
			continue;
		if (nghttp2_submit_settings(ss, NGHTTP2_FLAG_NONE, iv, WP_ARRAY_SIZE(iv)) == 0)
			while (nghttp2_session_mem_send(ss, &out) > 0)
				;
		if (!pr.overflow)
			for (unsigned i = 0; i < pr.count; i++)
				add_class(m, pr.n[i] + sizeof(struct hdr));
		nghttp2_session_del(ss);
	}
	nghttp2_session_callbacks_del(cbs);
}

struct wp_h2mem *wp_h2mem_new(size_t prealloc, size_t budget)
{
	struct wp_h2mem *m = calloc(1, sizeof(*m));
	unsigned c = 0;

	if (m == NULL)
		return NULL;
	memcpy(m->class_size, series, sizeof(series));
	m->nclass = NSERIES;
	learn_session_sizes(m);
	m->budget = budget;
	m->ng.mem_user_data = m;
	m->ng.malloc = ng_malloc;
	m->ng.free = ng_free;
	m->ng.calloc = ng_calloc;
	m->ng.realloc = ng_realloc;
	/* Spread the up-front slabs over the small classes nghttp2 uses most
	 * (up to 2 KiB). */
	while (prealloc > 0) {
		size_t bytes = sizeof(struct slab) + cls_per_slab(m, c) * cls_bytes(m, c);

		if (m->st.slab_bytes + bytes > prealloc)
			break;
		if (carve(m, c) != 0) {
			wp_h2mem_destroy(m);
			return NULL;
		}
		if (++c == m->nclass || m->class_size[c] > 2048)
			c = 0;
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
