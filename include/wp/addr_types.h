/*
 * Family-agnostic addresses. Flow keys, endpoints and the snapshot all hold a
 * struct wp_addr so that IPv6 can be parsed later without changing any of
 * them. Bytes are in network order; v4 sits in the first four bytes.
 */
#ifndef WP_ADDR_TYPES_H
#define WP_ADDR_TYPES_H

#include <stdint.h>

enum wp_af {
	WP_AF_NONE = 0,
	WP_AF_INET = 4,
	WP_AF_INET6 = 6,
};

struct wp_addr {
	uint8_t family; /* enum wp_af */
	uint8_t pad[3];
	union {
		uint32_t v4; /* network byte order */
		uint8_t v6[16];
	};
};

/* An address and a port (host byte order), e.g. a service VIP:port. */
struct wp_sockaddr {
	struct wp_addr addr;
	uint16_t port;
};

#endif /* WP_ADDR_TYPES_H */
