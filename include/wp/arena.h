/*
 * A bump allocator for the control plane. A parsed object, a YAML node tree
 * or a snapshot block lives in one arena and dies with it, so freeing is one
 * call and nothing is leaked piecemeal. Not thread-safe; control-plane only
 * (never on the data path).
 */
#ifndef WP_ARENA_H
#define WP_ARENA_H

#include <stddef.h>

struct wp_arena_chunk;

struct wp_arena {
	struct wp_arena_chunk *head; /* newest chunk first */
	size_t chunk_size;           /* default size of a new chunk */
	size_t used;                 /* bytes handed out, for accounting */
};

/* Prepares an empty arena whose chunks are at least chunk_size bytes. */
void wp_arena_init(struct wp_arena *a, size_t chunk_size);

/* Frees every chunk; the arena is empty (and reusable) afterwards. */
void wp_arena_free(struct wp_arena *a);

/* Zeroed, 16-byte aligned memory owned by the arena, or NULL. */
void *wp_arena_alloc(struct wp_arena *a, size_t n);

/* A NUL-terminated copy of s (NULL gives NULL), owned by the arena. */
char *wp_arena_strdup(struct wp_arena *a, const char *s);

/* A NUL-terminated copy of n bytes of s, owned by the arena. */
char *wp_arena_strndup(struct wp_arena *a, const char *s, size_t n);

/* printf into arena memory. */
char *wp_arena_sprintf(struct wp_arena *a, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

#endif /* WP_ARENA_H */
