/*
 * Text the access log (accesslog.c) and the span exporter (tracing.c) both
 * write, off the workers: a bounded output buffer that remembers running
 * out of room instead of writing past it, JSON strings, and addresses as
 * Envoy prints them ("ip", "ip:port", "[v6]:port").
 */
#ifndef WP_DP_OBS_TEXT_H
#define WP_DP_OBS_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wp/addr_types.h"

/* Writes into p[0..cap); full once something did not fit (then nothing
 * more is written: the caller drops the whole text). */
struct wp_text {
	char *p;
	size_t len, cap;
	bool full;
};

void wp_text_put(struct wp_text *o, const char *s, size_t n);
void wp_text_puts(struct wp_text *o, const char *s);
void wp_text_printf(struct wp_text *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* <s>[0..n) as a quoted JSON string: '"' and '\' escaped, bytes outside
 * printable ASCII as \u00XX. */
void wp_text_json_str(struct wp_text *o, const char *s, size_t n);

/* <a> as text into buf, with ":port" (IPv6 in brackets) when <with_port>.
 * Returns the length, 0 for an address of no family or when cap is short. */
size_t wp_text_addr(const struct wp_addr *a, uint16_t port, bool with_port, char *buf, size_t cap);

#endif /* WP_DP_OBS_TEXT_H */
