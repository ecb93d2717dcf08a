/*
 * The two protobuf messages of Istio's CA service, by hand, and the gRPC
 * message prefix. They are tiny (a CSR string and an int64 out, a list of
 * PEM strings back), so a generated codec (protobuf-c) or a gRPC library
 * would add a build dependency for some fifty lines; see README.md. Field
 * numbers are Istio's security/proto/pki/ca.proto (istio.v1.auth).
 */
#include <errno.h>
#include <string.h>

#include "ca_int.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

#define GRPC_PREFIX 5

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* 0 and *v, or -EBADMSG (truncated, or longer than 10 bytes). */
static int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	const uint8_t *p = *pp;
	uint64_t r = 0;

	for (int shift = 0; shift < 70; shift += 7) {
		if (p == end)
			return -EBADMSG;
		r |= (uint64_t)(*p & 0x7f) << shift;
		if (!(*p++ & 0x80)) {
			*pp = p;
			*v = r;
			return 0;
		}
	}
	return -EBADMSG;
}

ssize_t wp_ca_pb_request(uint8_t *buf, size_t cap, const char *csr, size_t csr_len,
                         int64_t validity_s)
{
	/* prefix + tag + length varint + csr + tag + int64 varint */
	size_t need = GRPC_PREFIX + 1 + 10 + csr_len + 1 + 10, n = GRPC_PREFIX, body;

	if (cap < need)
		return -ENOSPC;
	buf[n++] = (1 << 3) | WT_LEN;
	n += put_varint(buf + n, csr_len);
	memcpy(buf + n, csr, csr_len);
	n += csr_len;
	if (validity_s != 0) { /* proto3: a zero scalar is not sent */
		buf[n++] = (3 << 3) | WT_VARINT;
		n += put_varint(buf + n, (uint64_t)validity_s);
	}
	body = n - GRPC_PREFIX;
	buf[0] = 0; /* not compressed */
	buf[1] = (uint8_t)(body >> 24);
	buf[2] = (uint8_t)(body >> 16);
	buf[3] = (uint8_t)(body >> 8);
	buf[4] = (uint8_t)body;
	return (ssize_t)n;
}

int wp_ca_pb_response(const uint8_t *buf, size_t len, struct wp_ca_pb_str *out, int max)
{
	const uint8_t *p = buf + GRPC_PREFIX, *end = buf + len;
	uint32_t body;
	int n = 0;

	if (len < GRPC_PREFIX || buf[0] != 0)
		return -EBADMSG;
	body = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4];
	if (body != len - GRPC_PREFIX)
		return -EBADMSG;
	while (p < end) {
		uint64_t key, v;

		if (get_varint(&p, end, &key) || (key >> 3) == 0)
			return -EBADMSG;
		switch (key & 7) {
		case WT_VARINT:
			if (get_varint(&p, end, &v))
				return -EBADMSG;
			break;
		case WT_I64:
			if (end - p < 8)
				return -EBADMSG;
			p += 8;
			break;
		case WT_I32:
			if (end - p < 4)
				return -EBADMSG;
			p += 4;
			break;
		case WT_LEN:
			if (get_varint(&p, end, &v) || v > (uint64_t)(end - p))
				return -EBADMSG;
			if ((key >> 3) == 1) {
				if (n == max)
					return -E2BIG;
				out[n].p = (const char *)p;
				out[n].len = (size_t)v;
				n++;
			}
			p += v;
			break;
		default: /* groups (3, 4) are not in proto3 */
			return -EBADMSG;
		}
	}
	return n;
}
