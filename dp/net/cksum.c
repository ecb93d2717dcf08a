/*
 * The Internet checksum (RFC 1071) for IPv4 headers, ICMP messages and TCP
 * segments with their pseudo header. The one's-complement sum does not
 * depend on byte order, so 16-bit words are summed as they sit in memory and
 * the result is stored back as is: callers memcpy the returned value into the
 * checksum field, and a buffer whose checksum is right sums to 0.
 */
#include <string.h>

#include <arpa/inet.h>

#include "dp/net/net.h"

/* Adds len bytes at data to a 64-bit running sum (no fold). */
static uint64_t sum_bytes(uint64_t sum, const uint8_t *p, uint32_t len)
{
	while (len >= 8) {
		uint32_t a, b;
		memcpy(&a, p, 4);
		memcpy(&b, p + 4, 4);
		sum += (uint64_t)a + b;
		p += 8;
		len -= 8;
	}
	while (len >= 2) {
		uint16_t w;
		memcpy(&w, p, 2);
		sum += w;
		p += 2;
		len -= 2;
	}
	if (len) {
		/* The odd byte is the high-order byte of a zero-padded word. */
		uint8_t last[2] = {p[0], 0};
		uint16_t w;
		memcpy(&w, last, 2);
		sum += w;
	}
	return sum;
}

static uint16_t fold(uint64_t sum)
{
	/* 32-bit chunks summed into 64 bits: fold down to 16 bits. */
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

uint16_t wp_inet_cksum(const void *data, uint32_t len)
{
	return fold(sum_bytes(0, data, len));
}

uint16_t wp_tcp_cksum(uint32_t src_ip, uint32_t dst_ip, const void *seg, uint16_t seg_len)
{
	uint64_t sum = (uint64_t)src_ip + dst_ip;

	sum += htons(WP_IPPROTO_TCP);
	sum += htons(seg_len);
	return fold(sum_bytes(sum, seg, seg_len));
}
