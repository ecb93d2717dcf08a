/*
 * Small helpers every module uses: branch hints, the assertion macro that
 * stays on in debug builds, container_of, array sizes and the return
 * conventions shared by the whole tree (0 / -errno, WP_AGAIN for "nothing to
 * do yet").
 */
#ifndef WP_COMMON_H
#define WP_COMMON_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define WP_LIKELY(x)     __builtin_expect(!!(x), 1)
#define WP_UNLIKELY(x)   __builtin_expect(!!(x), 0)
#define WP_MUST_CHECK    __attribute__((warn_unused_result))
#define WP_UNUSED        __attribute__((unused))
#define WP_CACHE_LINE    64
#define WP_CACHE_ALIGNED __attribute__((aligned(WP_CACHE_LINE)))

#define WP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define WP_MIN(a, b)     ((a) < (b) ? (a) : (b))
#define WP_MAX(a, b)     ((a) > (b) ? (a) : (b))

#define wp_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* A deadline <ms> after <now_ms> on a worker's clock, which counts whole
 * milliseconds: one later than the sum, so that it never comes before <ms>
 * have passed (something that starts late in one millisecond still gets its
 * whole time). */
static inline uint64_t wp_deadline_ms(uint64_t now_ms, uint64_t ms)
{
	return now_ms + ms + 1;
}

/* Returned by I/O-ish calls when there is nothing to do right now. */
#define WP_AGAIN 0

/*
 * Invariant check. On in debug builds (NDEBUG unset), compiled out in release
 * builds; the expression must have no side effects.
 */
#ifndef NDEBUG
#define WP_ASSERT(cond)                                                                            \
	do {                                                                                       \
		if (WP_UNLIKELY(!(cond))) {                                                        \
			fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__,       \
			        #cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)
#else
#define WP_ASSERT(cond) ((void)0)
#endif

#endif /* WP_COMMON_H */
