/*
 * The control plane's small HTTP/1.1 server: non-blocking kernel sockets
 * behind one epoll descriptor that the owner's event loop waits on (the
 * control-plane thread, cp.c), so a handler runs on the owner's thread and
 * may read its state without locks, and no client can hold that thread:
 * nothing here ever blocks.
 *
 * A server serves any number of listeners, each with its own handler table
 * (the admin endpoint is one; a metrics listener is another call to
 * wp_httpd_listen). Every listener admits at most max_clients connections
 * at once: one more is answered 503 and closed (ADMIN_CLIENT_REFUSED). A
 * request (its head, body and answer) must complete within
 * request_timeout_ms of the connection becoming ready for it, or the
 * connection is closed (ADMIN_TIMEOUT; an idle keep-alive connection is
 * simply closed). Heads and bodies are bounded by max_request_bytes (431,
 * 414, 413: ADMIN_TOO_LARGE). GET and HEAD only (405). HTTP/1.1 keep-alive
 * and pipelining work; answers are written in request order.
 */
#ifndef WP_CP_ADMIN_HTTPD_H
#define WP_CP_ADMIN_HTTPD_H

#include <stdint.h>

#include "httpd_req.h"
#include "wp/addr_types.h"

/* What a handler answers. body is malloc'd (or NULL for none) and belongs
 * to the server once the handler returns. */
struct wp_httpd_reply {
	int status;
	const char *ctype; /* static; NULL = application/json */
	char *body;        /* NUL-terminated */
};

typedef void (*wp_httpd_handler_cb)(void *ctx, const struct wp_httpd_req *req,
                                    struct wp_httpd_reply *rep);

/* One row of a listener's handler table: an exact path. A table ends with
 * a row whose path is NULL; a path no row names is answered 404. */
struct wp_httpd_route {
	const char *path;
	wp_httpd_handler_cb fn;
};

struct wp_httpd_config {
	unsigned max_clients;        /* per listener */
	unsigned request_timeout_ms; /* per request, from the moment the connection waits for it */
	unsigned max_request_bytes;  /* head + body */
	uint64_t *ctr;               /* counters (enum wp_ctr, ADMIN_* rows), owner's array */
};

struct wp_httpd;

/* A server without listeners; NULL when out of memory. */
struct wp_httpd *wp_httpd_create(const struct wp_httpd_config *cfg);

/*
 * Listens on addr:port (family NONE = 127.0.0.1; port 0 = any, *bound gets
 * the port) and serves routes there, passing ctx to the handlers. routes
 * and ctx must outlive the server. 0 or -errno.
 */
int wp_httpd_listen(struct wp_httpd *h, const struct wp_addr *addr, uint16_t port,
                    const struct wp_httpd_route *routes, void *ctx, uint16_t *bound);

/* The descriptor to wait on for readability: wp_httpd_run has work. */
int wp_httpd_fd(const struct wp_httpd *h);

/* Milliseconds from now_ms until the earliest connection deadline (when
 * wp_httpd_run must be called even if the descriptor stayed quiet), or -1
 * when no connection is open. */
int wp_httpd_timeout(const struct wp_httpd *h, uint64_t now_ms);

/* Accepts, reads, answers and writes whatever is ready, and closes the
 * connections whose deadline passed by now_ms (CLOCK_MONOTONIC ms). Never
 * blocks. */
void wp_httpd_run(struct wp_httpd *h, uint64_t now_ms);

/* Closes every listener and connection. */
void wp_httpd_destroy(struct wp_httpd *h);

#endif /* WP_CP_ADMIN_HTTPD_H */
