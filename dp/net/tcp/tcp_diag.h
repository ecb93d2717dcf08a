/*
 * Diagnostic TCP services on top of the connection API (tcp.h), used to
 * exercise the user-space stack end to end with ordinary clients (nc, a
 * Python socket) and in the two-stack unit tests:
 *
 *   echo    (RFC 862, port 7)  every byte received is sent back; when the send
 *           buffer is full the bytes stay unconsumed, so the client's window
 *           closes (backpressure). Our FIN follows the client's FIN.
 *   discard (RFC 863, port 9)  every byte is consumed and dropped; FIN answers FIN.
 *   source  (port 19 by convention; not RFC 864's chargen): the client sends a
 *           decimal byte count N (1 to 15 ASCII digits, an optional '\r') and
 *           '\n'. The server replies with exactly N bytes, byte i (0-based)
 *           being wp_tcp_diag_pattern(i) = i % 251, then closes (FIN). Bytes
 *           after the '\n' are ignored; a malformed request is answered with
 *           RST. N = 0 gives an immediate FIN.
 */
#ifndef WP_DP_TCP_DIAG_H
#define WP_DP_TCP_DIAG_H

#include <stdint.h>

#include "tcp.h"

struct wp_tcp_diag;

static inline uint8_t wp_tcp_diag_pattern(uint64_t i)
{
	return (uint8_t)(i % 251);
}

/*
 * Listens for the services whose port is non-zero. <max_sessions> bounds the
 * concurrent "source" sessions (their state is pooled here; a connection
 * beyond it is refused with RST). Start-up call: allocates. Returns NULL on
 * failure (a port already taken, no listener slot, no memory).
 */
struct wp_tcp_diag *wp_tcp_diag_listen(struct wp_tcp_stack *st, uint16_t echo_port,
                                       uint16_t discard_port, uint16_t source_port,
                                       uint32_t max_sessions);

/*
 * Stops listening and frees the session pool. Connections already accepted
 * must be gone first (e.g. the stack destroyed) if source sessions are live.
 */
void wp_tcp_diag_destroy(struct wp_tcp_diag *d);

#endif /* WP_DP_TCP_DIAG_H */
