/*
 * libFuzzer driver for the trace context headers (dp/http/tracectx.c). The
 * input is cut at '\n' into header values, each offered under the name its
 * first byte picks (traceparent, b3, the x-b3-* five, or another). Checks
 * beyond memory safety:
 *   - the malformed count never exceeds the headers offered, and a context
 *     or a decision is only read from a header that came;
 *   - an accepted context has non-zero ids, and its traceparent form
 *     re-parses to the same trace id, span id and sampled flag;
 *   - whatever came, the upstream headers for a child span (in the formats
 *     that came, or W3C) parse again as one context: the same trace id, the
 *     child's span id, the decision written, nothing malformed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tracectx.h"

static const char *const names[] = {"traceparent",       "b3",           "x-b3-traceid",
                                    "x-b3-spanid",       "x-b3-sampled", "x-b3-flags",
                                    "x-b3-parentspanid", "TraceParent",  "tracestate"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t zero[16];
	struct wp_tracectx t, u;
	struct wp_tc_out o;
	const struct wp_http_hdr_mods *m;
	uint8_t span[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	unsigned offered = 0, bad;
	size_t i = 0;

	wp_tc_init(&t);
	while (i < size) {
		size_t end = i + 1;
		const char *name = names[data[i] % (sizeof(names) / sizeof(names[0]))];

		while (end < size && data[end] != '\n')
			end++;
		wp_tc_header(&t, name, strlen(name), (const char *)data + i + 1, end - i - 1);
		offered++;
		i = end + 1;
	}
	bad = wp_tc_finish(&t);
	must(bad <= offered && bad == t.invalid);
	must(t.present || (!t.has_ctx && t.sampled == -1 && bad == 0));
	must(t.sampled >= -1 && t.sampled <= 1);
	if (t.has_ctx) {
		must(memcmp(t.trace_id, zero, 16) != 0 && memcmp(t.span_id, zero, 8) != 0);
		m = wp_tc_render(WP_TC_W3C, t.trace_id, t.span_id, NULL, false, t.sampled == 1, &o);
		wp_tc_init(&u);
		wp_tc_header(&u, "traceparent", 11, m->set[0].value, m->set[0].value_len);
		must(wp_tc_finish(&u) == 0 && u.has_ctx);
		must(!memcmp(u.trace_id, t.trace_id, 16) && !memcmp(u.span_id, t.span_id, 8));
		must(u.sampled == (t.sampled == 1));
	}
	/* a child span's headers, as the proxies write them */
	{
		uint8_t tid[16] = {0xab, 0xcd};
		const uint8_t *trace = t.has_ctx ? t.trace_id : tid;
		bool sampled = size & 1;

		m = wp_tc_render(t.present ? t.present : WP_TC_W3C, trace, span,
		                 t.has_ctx ? t.span_id : NULL, t.has_ctx && t.b3_64, sampled, &o);
		wp_tc_init(&u);
		for (uint16_t k = 0; k < m->n_set; k++)
			wp_tc_header(&u, m->set[k].name, m->set[k].name_len, m->set[k].value,
			             m->set[k].value_len);
		must(wp_tc_finish(&u) == 0 && u.has_ctx);
		must(!memcmp(u.trace_id, trace, 16) && !memcmp(u.span_id, span, 8));
		must(u.sampled == sampled);
	}
	return 0;
}
