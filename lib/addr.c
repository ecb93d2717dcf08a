/*
 * Text <-> struct wp_addr conversions (see wp/addr.h). Thin wrappers around
 * inet_pton/inet_ntop that also handle the bracketed "[v6]:port" form HBONE
 * uses in :authority.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "wp/addr.h"

int wp_addr_parse(const char *s, struct wp_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, s, &out->v4) == 1) {
		out->family = WP_AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out->v6) == 1) {
		out->family = WP_AF_INET6;
		return 0;
	}
	return -EINVAL;
}

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end != '\0' || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int wp_sockaddr_parse(const char *s, struct wp_sockaddr *out)
{
	char host[64];
	const char *colon;
	size_t hlen;

	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return -EINVAL;
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (wp_addr_parse(host, &out->addr) || out->addr.family != WP_AF_INET6)
			return -EINVAL;
		return parse_port(close + 2, &out->port);
	}
	colon = strrchr(s, ':');
	if (colon == NULL)
		return -EINVAL;
	hlen = (size_t)(colon - s);
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (wp_addr_parse(host, &out->addr) || out->addr.family != WP_AF_INET)
		return -EINVAL;
	return parse_port(colon + 1, &out->port);
}

const char *wp_addr_format(const struct wp_addr *a, char *buf, size_t len)
{
	if (a->family == WP_AF_INET)
		inet_ntop(AF_INET, &a->v4, buf, (socklen_t)len);
	else if (a->family == WP_AF_INET6)
		inet_ntop(AF_INET6, a->v6, buf, (socklen_t)len);
	else
		snprintf(buf, len, "-");
	return buf;
}

const char *wp_sockaddr_format(const struct wp_sockaddr *sa, char *buf, size_t len)
{
	char host[WP_ADDR_STRLEN];

	wp_addr_format(&sa->addr, host, sizeof(host));
	if (sa->addr.family == WP_AF_INET6)
		snprintf(buf, len, "[%s]:%u", host, sa->port);
	else
		snprintf(buf, len, "%s:%u", host, sa->port);
	return buf;
}
