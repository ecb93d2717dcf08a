/*
 * Admin HTTP server internals shared by admin.c and the runner cp.c.
 */
#ifndef WP_ADMIN_ADMIN_H
#define WP_ADMIN_ADMIN_H

#include <stdint.h>
#include <stdlib.h>

#include "wp/addr_types.h"

struct wp_admin_reply {
	int status;
	const char *ctype; /* default application/json */
	char *body;        /* malloc'd, freed by the server */
};

typedef void (*wp_admin_handler_cb)(void *ctx, const char *path, struct wp_admin_reply *rep);

/* A non-blocking listening socket on addr:port (family NONE = 127.0.0.1);
 * *bound gets the port. Returns the fd or -errno. */
int wp_admin_listen(const struct wp_addr *addr, uint16_t port, uint16_t *bound);

/* Accepts and answers one request. 1 served, 0 nothing pending, <0 the
 * request was rejected (400/404/405). */
int wp_admin_serve_one(int lfd, wp_admin_handler_cb handler, void *ctx);

#endif /* WP_ADMIN_ADMIN_H */
