/*
 * libFuzzer driver for cp/ca's IstioCertificateResponse decoder
 * (wp_ca_pb_response), compared with a reference decoder written here from
 * the protobuf wire rules alone: field numbers > 0, wire types 0, 1, 2, 5
 * only, varints of at most 10 bytes, lengths inside the message, every
 * field-1 length-delimited value an element. The input is the message
 * body; the driver adds the gRPC prefix (and also tries it with a wrong
 * length and the compressed flag, which must be refused).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca_int.h"

#define MAX 4

static int ref_varint(const uint8_t *p, size_t len, size_t *off, uint64_t *v)
{
	*v = 0;
	for (int i = 0; i < 10; i++) {
		if (*off >= len)
			return -1;
		uint8_t c = p[(*off)++];
		*v |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80))
			return 0;
	}
	return -1;
}

/* Element count, -EBADMSG or -E2BIG, with the elements' offsets. */
static int ref_decode(const uint8_t *p, size_t len, size_t *off_out, size_t *len_out)
{
	size_t off = 0;
	int n = 0;

	while (off < len) {
		uint64_t key, v;

		if (ref_varint(p, len, &off, &key) || key >> 3 == 0)
			return -EBADMSG;
		switch (key & 7) {
		case 0:
			if (ref_varint(p, len, &off, &v))
				return -EBADMSG;
			break;
		case 1:
		case 5: {
			size_t w = (key & 7) == 1 ? 8 : 4;
			if (len - off < w)
				return -EBADMSG;
			off += w;
			break;
		}
		case 2:
			if (ref_varint(p, len, &off, &v) || v > len - off)
				return -EBADMSG;
			if (key >> 3 == 1) {
				if (n == MAX)
					return -E2BIG;
				off_out[n] = off;
				len_out[n++] = (size_t)v;
			}
			off += (size_t)v;
			break;
		default:
			return -EBADMSG;
		}
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wp_ca_pb_str out[MAX];
	size_t roff[MAX], rlen[MAX];
	uint8_t *buf = malloc(size + 5);
	int got, want;

	if (buf == NULL)
		return 0;
	buf[0] = 0;
	buf[1] = (uint8_t)(size >> 24);
	buf[2] = (uint8_t)(size >> 16);
	buf[3] = (uint8_t)(size >> 8);
	buf[4] = (uint8_t)size;
	memcpy(buf + 5, data, size);
	got = wp_ca_pb_response(buf, size + 5, out, MAX);
	want = ref_decode(data, size, roff, rlen);
	if (got != want)
		abort();
	for (int i = 0; i < got; i++)
		if (out[i].p != (const char *)buf + 5 + roff[i] || out[i].len != rlen[i])
			abort();
	if (size > 0 && wp_ca_pb_response(buf, size + 4, out, MAX) != -EBADMSG)
		abort(); /* the prefix says one byte more than there is */
	buf[0] = 1;
	if (wp_ca_pb_response(buf, size + 5, out, MAX) != -EBADMSG)
		abort();
	free(buf);
	return 0;
}
