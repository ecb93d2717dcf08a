/*
 * OpenSSL's allocator (CRYPTO_set_mem_functions): accounting and a
 * per-thread cache of freed blocks (see tls.h, wp_tls_mem_accounting_enable).
 *
 * A TLS 1.3 handshake makes some thousands of small allocations in OpenSSL
 * (certificate parsing, the key decoder OpenSSL 3.0 builds for each
 * certificate's public key, the transcript, the session) and frees most of
 * them before it ends. Profiled in hbone_bench's handshake phase, glibc's
 * malloc and free took ~11% of the worker against ~7% for jemalloc in
 * nghttpx on the same handshakes: glibc's per-thread cache holds 7 blocks
 * per size, the rest goes through its bins (and every request of 1 KiB or
 * more first consolidates the fast bins). Here each thread keeps the blocks
 * OpenSSL frees, by size class, and hands them out again; only what does
 * not fit a class or overflows a class's list reaches malloc/free.
 *
 * Classes: multiples of 16 bytes up to 1 KiB (64 classes, at most
 * SMALL_KEEP blocks each), then powers of two up to 32 KiB (5 classes, at
 * most BIG_KEEP each), and at most CACHE_MAX bytes in all per thread.
 * A block freed on another thread than the one that made it goes to the
 * freeing thread's cache. A thread's cache is given back to malloc when
 * the thread exits (a pthread key's destructor).
 *
 * Accounting: every block carries a 16-byte header with the size OpenSSL
 * asked for and its class; mem_live adds and subtracts those sizes (cached
 * blocks are not live).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "mem_int.h"
#include "tls.h"

#define SMALL_STEP 16u
#define SMALL_MAX  1024u
#define NSMALL     (SMALL_MAX / SMALL_STEP)
#define NBIG       5u /* 2, 4, 8, 16, 32 KiB */
#define NCLS       (NSMALL + NBIG)
#define SMALL_KEEP WP_TLS_MEM_SMALL_KEEP
#define BIG_KEEP   WP_TLS_MEM_BIG_KEEP
#define CACHE_MAX  WP_TLS_MEM_CACHE_MAX
#define NO_CLS     WP_TLS_MEM_NO_CLASS

struct mem_hdr {
	size_t size;  /* what OpenSSL asked for */
	uint32_t cls; /* size class, NO_CLS if none */
	uint32_t pad; /* keeps the payload 16-byte aligned */
};

/* A cached block's payload links it into its class's list. */
struct free_blk {
	struct free_blk *next;
};

struct thread_cache {
	struct free_blk *head[NCLS];
	uint16_t n[NCLS];
	size_t bytes;    /* payload bytes held */
	bool registered; /* the exit destructor is armed */
};

static __thread int64_t mem_live;
static __thread struct thread_cache tc;
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static bool key_ok;

static inline size_t class_size(uint32_t cls)
{
	if (cls < NSMALL)
		return (size_t)(cls + 1) * SMALL_STEP;
	return (size_t)2048 << (cls - NSMALL);
}

static inline uint32_t size_class(size_t n)
{
	uint32_t c;

	if (n <= SMALL_MAX)
		return n == 0 ? 0 : (uint32_t)((n - 1) / SMALL_STEP);
	/* 1025..2048 -> NSMALL, 2049..4096 -> NSMALL + 1, ... */
	c = NSMALL + (uint32_t)(64 - __builtin_clzll((unsigned long long)(n - 1))) - 11;
	return c < NCLS ? c : NO_CLS;
}

size_t wp_tls_mem_class_size(uint32_t cls)
{
	return class_size(cls);
}

uint32_t wp_tls_mem_class(size_t n)
{
	return size_class(n);
}

static unsigned keep(uint32_t cls)
{
	return cls < NSMALL ? SMALL_KEEP : BIG_KEEP;
}

void wp_tls_mem_flush(void)
{
	for (uint32_t c = 0; c < NCLS; c++) {
		while (tc.head[c] != NULL) {
			struct free_blk *b = tc.head[c];

			tc.head[c] = b->next;
			free((struct mem_hdr *)b - 1);
		}
		tc.n[c] = 0;
	}
	tc.bytes = 0;
}

/* OpenSSL's own thread-exit clean-up may free blocks after this ran: the
 * next free arms the key again and the destructor runs once more. */
static void on_thread_exit(void *arg)
{
	(void)arg;
	wp_tls_mem_flush();
	tc.registered = false;
}

static void key_init(void)
{
	key_ok = pthread_key_create(&exit_key, on_thread_exit) == 0;
}

/* Arms the destructor the first time this thread caches a block (it runs
 * only for a non-NULL key value). */
static bool arm_exit(void)
{
	if (tc.registered)
		return true;
	pthread_once(&key_once, key_init);
	if (!key_ok || pthread_setspecific(exit_key, &tc) != 0)
		return false;
	tc.registered = true;
	return true;
}

void *wp_tls_mem_alloc(size_t n, const char *file, int line)
{
	uint32_t cls = size_class(n);
	struct mem_hdr *h;

	(void)file;
	(void)line;
	if (cls != NO_CLS && tc.head[cls] != NULL) {
		struct free_blk *b = tc.head[cls];

		tc.head[cls] = b->next;
		tc.n[cls]--;
		tc.bytes -= class_size(cls);
		h = (struct mem_hdr *)b - 1;
	} else {
		h = malloc(sizeof(*h) + (cls != NO_CLS ? class_size(cls) : n));
		if (h == NULL)
			return NULL;
		h->cls = cls;
	}
	h->size = n;
	mem_live += (int64_t)n;
	return h + 1;
}

void wp_tls_mem_free(void *p, const char *file, int line)
{
	struct mem_hdr *h;
	struct free_blk *b = p;

	(void)file;
	(void)line;
	if (p == NULL)
		return;
	h = (struct mem_hdr *)p - 1;
	mem_live -= (int64_t)h->size;
	if (h->cls == NO_CLS || tc.n[h->cls] >= keep(h->cls) ||
	    tc.bytes + class_size(h->cls) > CACHE_MAX || !arm_exit()) {
		free(h);
		return;
	}
	b->next = tc.head[h->cls];
	tc.head[h->cls] = b;
	tc.n[h->cls]++;
	tc.bytes += class_size(h->cls);
}

void *wp_tls_mem_realloc(void *p, size_t n, const char *file, int line)
{
	struct mem_hdr *h;
	void *q;

	if (p == NULL)
		return wp_tls_mem_alloc(n, file, line);
	if (n == 0) {
		wp_tls_mem_free(p, file, line);
		return NULL;
	}
	h = (struct mem_hdr *)p - 1;
	if (h->cls != NO_CLS && n <= class_size(h->cls)) {
		/* still fits its block */
		mem_live += (int64_t)n - (int64_t)h->size;
		h->size = n;
		return p;
	}
	if (h->cls == NO_CLS && size_class(n) == NO_CLS) {
		size_t old = h->size;

		h = realloc(h, sizeof(*h) + n);
		if (h == NULL)
			return NULL;
		h->size = n;
		mem_live += (int64_t)n - (int64_t)old;
		return h + 1;
	}
	q = wp_tls_mem_alloc(n, file, line);
	if (q == NULL)
		return NULL;
	memcpy(q, p, WP_MIN(h->size, n));
	wp_tls_mem_free(p, file, line);
	return q;
}

size_t wp_tls_mem_cached(void)
{
	return tc.bytes;
}

int wp_tls_mem_accounting_enable(void)
{
	return CRYPTO_set_mem_functions(wp_tls_mem_alloc, wp_tls_mem_realloc, wp_tls_mem_free)
	               ? 0
	               : -EBUSY;
}

int64_t wp_tls_mem_live(void)
{
	return mem_live;
}
