/*
 * The OpenSSL allocator's internals (mem.c), for its unit tests: the
 * functions wp_tls_mem_accounting_enable() hands to OpenSSL, the size
 * classes and the calling thread's cache.
 */
#ifndef WP_DP_TLS_MEM_INT_H
#define WP_DP_TLS_MEM_INT_H

#include <stddef.h>
#include <stdint.h>

/* Blocks a thread keeps per class (up to 1 KiB, above), and payload bytes
 * in all; wp_tls_mem_class() of a request that has no class. */
#define WP_TLS_MEM_SMALL_KEEP 256u
#define WP_TLS_MEM_BIG_KEEP   16u
#define WP_TLS_MEM_CACHE_MAX  ((size_t)2 << 20)
#define WP_TLS_MEM_NO_CLASS   0xffffffffu

void *wp_tls_mem_alloc(size_t n, const char *file, int line);
void *wp_tls_mem_realloc(void *p, size_t n, const char *file, int line);
void wp_tls_mem_free(void *p, const char *file, int line);

/* The class of an n-byte request (WP_TLS_MEM_NO_CLASS: plain malloc) and the
 * payload size of a class's blocks. */
uint32_t wp_tls_mem_class(size_t n);
size_t wp_tls_mem_class_size(uint32_t cls);

/* Payload bytes the calling thread holds in its cache; and gives them all
 * back to malloc (also done when the thread exits). */
size_t wp_tls_mem_cached(void);
void wp_tls_mem_flush(void);

#endif /* WP_DP_TLS_MEM_INT_H */
