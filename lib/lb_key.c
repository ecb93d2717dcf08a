/*
 * Consistent-hash keys for lb.c: the 64-bit hash used for keys and for
 * endpoint identities, and the extraction of a cookie or query parameter
 * value from request bytes (the header-value and source-IP keys need no
 * extraction). All functions are pure and allocation-free.
 */
#include <errno.h>
#include <string.h>

#include "wp/hash.h"
#include "wp/lb.h"

/* FNV-1a over the bytes, then a 64-bit avalanche finaliser so that keys
 * differing in one byte land far apart on the ring and in the table. */
uint64_t wp_lb_hash(const void *key, size_t len)
{
	const uint8_t *p = key;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return wp_hash_mix64(h);
}

uint64_t wp_lb_hash_addr(const struct wp_addr *a)
{
	if (a->family == WP_AF_INET6)
		return wp_lb_hash(a->v6, 16);
	return wp_lb_hash(&a->v4, 4);
}

static inline bool ows(char c)
{
	return c == ' ' || c == '\t';
}

int wp_lb_key_cookie(const char *cookie, size_t len, const char *name, size_t nlen,
                     const char **val, size_t *vlen)
{
	size_t i = 0;

	while (i < len) {
		while (i < len && (ows(cookie[i]) || cookie[i] == ';'))
			i++;
		size_t ns = i;
		while (i < len && cookie[i] != '=' && cookie[i] != ';')
			i++;
		size_t ne = i;
		while (ne > ns && ows(cookie[ne - 1]))
			ne--;
		if (i >= len || cookie[i] != '=')
			continue; /* a pair without '=' */
		i++;
		while (i < len && ows(cookie[i]))
			i++;
		size_t vs = i;
		while (i < len && cookie[i] != ';')
			i++;
		size_t ve = i;
		while (ve > vs && ows(cookie[ve - 1]))
			ve--;
		/* RFC 6265 allows a DQUOTE'd value */
		if (ve - vs >= 2 && cookie[vs] == '"' && cookie[ve - 1] == '"') {
			vs++;
			ve--;
		}
		if (ne - ns == nlen && memcmp(cookie + ns, name, nlen) == 0) {
			*val = cookie + vs;
			*vlen = ve - vs;
			return 0;
		}
	}
	return -ENOENT;
}

int wp_lb_key_query(const char *target, size_t len, const char *name, size_t nlen, const char **val,
                    size_t *vlen)
{
	const char *frag = memchr(target, '#', len);
	size_t end = frag ? (size_t)(frag - target) : len;
	const char *q = memchr(target, '?', end);
	if (!q)
		return -ENOENT;
	size_t i = (size_t)(q - target) + 1;

	while (i < end) {
		size_t ks = i;
		while (i < end && target[i] != '&' && target[i] != '=')
			i++;
		size_t ke = i, vs = i, ve = i;
		if (i < end && target[i] == '=') {
			vs = ++i;
			while (i < end && target[i] != '&')
				i++;
			ve = i;
		}
		if (ke - ks == nlen && memcmp(target + ks, name, nlen) == 0) {
			*val = target + vs;
			*vlen = ve - vs;
			return 0;
		}
		if (i < end)
			i++; /* skip '&' */
	}
	return -ENOENT;
}
