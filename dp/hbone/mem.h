/*
 * A per-core allocator for nghttp2 (and the HBONE stream buffers): size
 * classes from 32 bytes to 64 KiB (four per doubling, plus the exact sizes
 * an nghttp2 session keeps for its lifetime, learnt from the installed
 * libnghttp2 when the allocator is made), each a free list refilled by
 * carving slabs of about 64 KiB. A worker owns one; nothing is shared or locked.
 * It keeps exact accounting (bytes requested and bytes held), so tests can
 * measure the cost of an idle connection, and it enforces a byte budget:
 * past it allocations fail and nghttp2 answers with NGHTTP2_ERR_NOMEM
 * rather than growing the process. Blocks larger than 64 KiB come from
 * malloc (counted in the same budget).
 */
#ifndef WP_DP_HBONE_MEM_H
#define WP_DP_HBONE_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

struct wp_h2mem;

struct wp_h2mem_stats {
	size_t live_bytes;  /* requested by callers, not yet freed */
	size_t held_bytes;  /* the same rounded to size classes + headers */
	size_t slab_bytes;  /* carved slabs (free lists included) + large blocks */
	size_t live_blocks; /* blocks handed out, not yet freed */
	uint64_t allocs;
	uint64_t fails; /* refused: budget or malloc */
};

/*
 * Creates an allocator that may hold at most budget bytes of slabs
 * (0 = unlimited) and carves prealloc bytes of slabs up front. NULL on
 * failure.
 */
struct wp_h2mem *wp_h2mem_new(size_t prealloc, size_t budget);
/* Frees every slab. All blocks must have been released. */
void wp_h2mem_destroy(struct wp_h2mem *m);

/* A block of at least n bytes, 16-byte aligned, or NULL. */
void *wp_h2mem_alloc(struct wp_h2mem *m, size_t n);
void *wp_h2mem_calloc(struct wp_h2mem *m, size_t nmemb, size_t size);
void *wp_h2mem_realloc(struct wp_h2mem *m, void *p, size_t n);
/* Whether wp_h2mem_alloc(m, n) would succeed now (a free block of its
 * class, or room in the budget for a slab or a large block). */
bool wp_h2mem_can_alloc(const struct wp_h2mem *m, size_t n);
/* Returns a block (NULL is a no-op). */
void wp_h2mem_release(struct wp_h2mem *m, void *p);

/* The nghttp2_mem view of m (lives as long as m). */
nghttp2_mem *wp_h2mem_nghttp2(struct wp_h2mem *m);

void wp_h2mem_stats(const struct wp_h2mem *m, struct wp_h2mem_stats *st);

#endif /* WP_DP_HBONE_MEM_H */
