/*
 * libFuzzer driver for the HBONE client (dp/hbone): a client wp_hbconn opens
 * three CONNECT streams and writes into them, then arbitrary bytes play
 * the server (split at 0xff into several inputs). Checks memory safety,
 * one on_close per stream, and that all memory returns to the allocator.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hbone.h"
#include "wp/addr.h"
#include "wp/counters.h"

static int closed;

static void on_response(struct wp_hbstream *s, int status)
{
	if (status == 200)
		(void)wp_hbstream_write(s, (const uint8_t *)"hello", 5);
}

static void on_data(struct wp_hbstream *s, const uint8_t *d, size_t len)
{
	(void)d;
	(void)wp_hbstream_consume(s, len);
}

static void on_eof(struct wp_hbstream *s)
{
	(void)wp_hbstream_shutdown(s);
}

static void on_close(struct wp_hbstream *s, enum wp_hbone_close why, uint32_t err)
{
	(void)s;
	(void)why;
	(void)err;
	closed++;
}

static const struct wp_hbone_ops ops = {
        .on_response = on_response,
        .on_data = on_data,
        .on_eof = on_eof,
        .on_close = on_close,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t ctrs[WP_CTR_MAX];
	struct wp_h2mem *mem = wp_h2mem_new(0, 8 << 20);
	struct wp_h2mem_stats st;
	struct wp_sockaddr sa;
	struct wp_hbconn *c;
	const uint8_t *p;
	ssize_t n;
	size_t off = 0;
	int opened = 0;

	closed = 0;
	c = wp_hbconn_new(false, NULL, mem, &ops, NULL, ctrs, 0);
	if (c == NULL || wp_sockaddr_parse("10.1.2.3:8080", &sa) != 0)
		abort();
	for (int i = 0; i < 3; i++)
		if (wp_hbconn_open(c, &sa, "k=v", NULL, NULL, NULL) != NULL)
			opened++;
	while ((n = wp_hbconn_peek(c, &p)) > 0)
		wp_hbconn_advance(c, (size_t)n);
	while (off < size) {
		const uint8_t *cut = memchr(data + off, 0xff, size - off);
		size_t len = cut ? (size_t)(cut - (data + off)) + 1 : size - off;
		uint8_t *chunk = malloc(len);
		memcpy(chunk, data + off, len);
		n = wp_hbconn_input(c, chunk, len, off);
		free(chunk);
		if (n < 0)
			break;
		off += len;
		while ((n = wp_hbconn_peek(c, &p)) > 0)
			wp_hbconn_advance(c, (size_t)n);
	}
	wp_hbconn_free(c);
	if (closed != opened)
		abort();
	wp_h2mem_stats(mem, &st);
	if (st.live_bytes != 0)
		abort();
	wp_h2mem_destroy(mem);
	return 0;
}
