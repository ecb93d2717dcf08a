/* Text the access log and the span exporter share (see text.h). */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

void wp_text_put(struct wp_text *o, const char *s, size_t n)
{
	if (o->full || o->len + n > o->cap) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

void wp_text_puts(struct wp_text *o, const char *s)
{
	wp_text_put(o, s, strlen(s));
}

void wp_text_printf(struct wp_text *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		o->full = true;
	else
		o->len += (size_t)n;
}

void wp_text_json_str(struct wp_text *o, const char *s, size_t n)
{
	wp_text_put(o, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			wp_text_put(o, "\\", 1);
			wp_text_put(o, s + i, 1);
		} else if (c < 0x20 || c >= 0x7f) {
			wp_text_printf(o, "\\u%04x", c);
		} else {
			wp_text_put(o, s + i, 1);
		}
	}
	wp_text_put(o, "\"", 1);
}

size_t wp_text_addr(const struct wp_addr *a, uint16_t port, bool with_port, char *buf, size_t cap)
{
	char ip[64];
	int n;

	if (a->family == WP_AF_INET)
		inet_ntop(AF_INET, &a->v4, ip, sizeof(ip));
	else if (a->family == WP_AF_INET6)
		inet_ntop(AF_INET6, a->v6, ip, sizeof(ip));
	else
		return 0;
	if (!with_port)
		n = snprintf(buf, cap, "%s", ip);
	else if (a->family == WP_AF_INET6)
		n = snprintf(buf, cap, "[%s]:%u", ip, port);
	else
		n = snprintf(buf, cap, "%s:%u", ip, port);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
