/*
 * The diagnostic TCP client: waypointd opening connections itself, so tests
 * can prove the active-open side of the TCP stack against a Linux server.
 *
 * A job is started over DPDK telemetry:
 *   /wp/tcp_client,<ip>:<port>,<connections>,<bytes>
 * Every worker opens its share of the connections from the first port (a
 * local port whose flow hash lands on that worker), sends <bytes> of a
 * deterministic pattern on each, expects the server to echo them, verifies
 * every byte, and closes. /wp/tcp_client_status reports progress:
 *   {"job": n, "connections": .., "done": .., "ok": .., "failed": ..,
 *    "mismatch": .., "bytes_verified": .., "running": 0|1}
 * Byte i of connection k is (((i mod 65521) + 7919 k) * 2654435761 mod 2^32)
 * >> 24: a 65521-byte block repeated, so a test can regenerate what was sent
 * (and hash gigabytes of it) cheaply.
 */
#ifndef WP_DP_DIAG_CLIENT_H
#define WP_DP_DIAG_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

struct wp_worker;

/* Registers the telemetry commands; <workers> must outlive the process. 0 or -errno. */
int wp_diag_client_register(struct wp_worker *const *workers, unsigned n);

/* Worker side: picks up a new job and moves it along. Returns work done (0 = idle). */
unsigned wp_diag_client_poll(struct wp_worker *w, uint64_t now_us);

/* Worker side, at exit: aborts the worker's open connections. */
void wp_diag_client_stop(struct wp_worker *w);

/* The pattern byte <i> of connection <k>. */
static inline uint8_t wp_diag_pattern(uint64_t i, uint32_t k)
{
	return (uint8_t)(((uint32_t)(i % 65521u + 7919u * k) * 2654435761u) >> 24);
}

#endif /* WP_DP_DIAG_CLIENT_H */
