/*
 * The Internet checksum (RFC 1071) for IPv4 headers, ICMP messages and TCP
 * segments with their pseudo header, inline: the TCP stack (dp/net/tcp,
 * its own library) checksums every segment it sends and receives. The
 * one's-complement sum does not depend on byte order, so the bytes are
 * summed as 32-bit words as they sit in memory and the result is in memory
 * order: memcpy it into the checksum field as is. Over data that includes a
 * correct checksum field, the result is 0.
 */
#ifndef WP_DP_NET_CKSUM_H
#define WP_DP_NET_CKSUM_H

#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>

/* Adds <len> bytes at <p> to a 64-bit running sum (no fold). */
static inline uint64_t wp_cksum_add(uint64_t sum, const uint8_t *p, uint32_t len)
{
	while (len >= 32) {
		uint64_t w[4];

		memcpy(w, p, sizeof(w));
		sum += (w[0] & 0xffffffffu) + (w[0] >> 32) + (w[1] & 0xffffffffu) + (w[1] >> 32) +
		       (w[2] & 0xffffffffu) + (w[2] >> 32) + (w[3] & 0xffffffffu) + (w[3] >> 32);
		p += 32;
		len -= 32;
	}
	while (len >= 4) {
		uint32_t w;

		memcpy(&w, p, 4);
		sum += w;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t w;

		memcpy(&w, p, 2);
		sum += w;
		p += 2;
		len -= 2;
	}
	if (len) {
		/* the odd byte is the high-order byte of a zero-padded word */
		uint8_t last[2] = {p[0], 0};
		uint16_t w;

		memcpy(&w, last, 2);
		sum += w;
	}
	return sum;
}

/* Folds a running sum to 16 bits and complements it. */
static inline uint16_t wp_cksum_fold(uint64_t sum)
{
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static inline uint16_t wp_inet_cksum(const void *data, uint32_t len)
{
	return wp_cksum_fold(wp_cksum_add(0, (const uint8_t *)data, len));
}

/* The TCP/IPv4 pseudo-header, unfolded: <src_ip>/<dst_ip> in network order. */
static inline uint64_t wp_tcp_phdr_add(uint32_t src_ip, uint32_t dst_ip, uint16_t seg_len)
{
	return (uint64_t)src_ip + dst_ip + htons(6 /* TCP */) + htons(seg_len);
}

/* TCP over IPv4: <src_ip>/<dst_ip> in network order. */
static inline uint16_t wp_tcp_cksum(uint32_t src_ip, uint32_t dst_ip, const void *seg,
                                    uint16_t seg_len)
{
	return wp_cksum_fold(wp_cksum_add(wp_tcp_phdr_add(src_ip, dst_ip, seg_len),
	                                  (const uint8_t *)seg, seg_len));
}

/* What a device that offloads TCP checksums wants in the field before it
 * sums the segment: the pseudo-header's sum, folded, not complemented. */
static inline uint16_t wp_tcp_phdr_sum(uint32_t src_ip, uint32_t dst_ip, uint16_t seg_len)
{
	return (uint16_t)~wp_cksum_fold(wp_tcp_phdr_add(src_ip, dst_ip, seg_len));
}

#endif /* WP_DP_NET_CKSUM_H */
