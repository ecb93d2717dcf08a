/*
 * Bump allocator (see wp/arena.h): chunks are malloc'd, handed out in
 * 16-byte aligned slices, and all released together by wp_arena_free().
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wp/arena.h"

struct wp_arena_chunk {
	struct wp_arena_chunk *next;
	size_t size; /* usable bytes in data[] */
	size_t off;
	_Alignas(16) unsigned char data[];
};

void wp_arena_init(struct wp_arena *a, size_t chunk_size)
{
	a->head = NULL;
	a->chunk_size = chunk_size < 256 ? 256 : chunk_size;
	a->used = 0;
}

void wp_arena_free(struct wp_arena *a)
{
	struct wp_arena_chunk *c = a->head;

	while (c) {
		struct wp_arena_chunk *n = c->next;
		free(c);
		c = n;
	}
	a->head = NULL;
	a->used = 0;
}

void *wp_arena_alloc(struct wp_arena *a, size_t n)
{
	struct wp_arena_chunk *c = a->head;
	size_t need = (n + 15) & ~(size_t)15;
	void *p;

	if (need < n)
		return NULL;
	if (!c || c->size - c->off < need) {
		size_t sz = need > a->chunk_size ? need : a->chunk_size;

		c = malloc(sizeof(*c) + sz);
		if (!c)
			return NULL;
		c->size = sz;
		c->off = 0;
		/* A big one-off allocation goes behind the current chunk so
		 * the current chunk's free space is not wasted. */
		if (a->head && need > a->chunk_size) {
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
	}
	p = c->data + c->off;
	c->off += need;
	a->used += need;
	memset(p, 0, n);
	return p;
}

char *wp_arena_strndup(struct wp_arena *a, const char *s, size_t n)
{
	char *d = wp_arena_alloc(a, n + 1);

	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *wp_arena_strdup(struct wp_arena *a, const char *s)
{
	if (!s)
		return NULL;
	return wp_arena_strndup(a, s, strlen(s));
}

char *wp_arena_sprintf(struct wp_arena *a, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *d;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	d = wp_arena_alloc(a, (size_t)n + 1);
	if (!d)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(d, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return d;
}
