/*
 * RFC 7239 Forwarded: for= extraction (see forwarded.h). Only the first
 * element counts; parameters are `token=value` pairs separated by `;`,
 * values a token or a quoted string; names are case-insensitive.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "forwarded.h"
#include "wp/addr.h"

static size_t skip_ows(const char *v, size_t i, size_t len)
{
	while (i < len && (v[i] == ' ' || v[i] == '\t'))
		i++;
	return i;
}

/* <val> (unquoted) as an address: "ip", "ip:port", "[v6]", "[v6]:port". */
static int parse_node(const char *val, size_t n, struct wp_addr *out)
{
	char buf[WP_ADDR_STRLEN];
	const char *a = val;
	size_t alen = n;

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	if (val[0] == '[') {
		const char *close = memchr(val, ']', n);

		if (!close)
			return -EINVAL;
		a = val + 1;
		alen = (size_t)(close - a);
	} else {
		const char *colon = memchr(val, ':', n);

		if (colon)
			alen = (size_t)(colon - val);
	}
	memcpy(buf, a, alen);
	buf[alen] = '\0';
	return wp_addr_parse(buf, out);
}

int wp_forwarded_for(const char *v, size_t len, struct wp_addr *out)
{
	size_t i = 0;

	while (i < len) {
		size_t name, nlen, val, vlen;

		i = skip_ows(v, i, len);
		name = i;
		while (i < len && v[i] != '=' && v[i] != ';' && v[i] != ',')
			i++;
		nlen = i - name;
		while (nlen > 0 && (v[name + nlen - 1] == ' ' || v[name + nlen - 1] == '\t'))
			nlen--;
		if (i >= len || v[i] != '=')
			return -ENOENT; /* end, or the first element ended without for= */
		i = skip_ows(v, i + 1, len);
		if (i < len && v[i] == '"') {
			val = ++i;
			while (i < len && v[i] != '"')
				i++;
			if (i >= len)
				return -EINVAL; /* unterminated quoted string */
			vlen = i - val;
			i++;
		} else {
			val = i;
			while (i < len && v[i] != ';' && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
				i++;
			vlen = i - val;
		}
		if (nlen == 3 && strncasecmp(v + name, "for", 3) == 0)
			return parse_node(v + val, vlen, out);
		i = skip_ows(v, i, len);
		if (i < len && v[i] == ',')
			return -ENOENT; /* only the first element */
		if (i < len && v[i] == ';')
			i++;
	}
	return -ENOENT;
}
