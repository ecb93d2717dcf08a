/*
 * Shared by the pipeline and proxy tests: an authorization table compiled
 * from AuthorizationPolicy YAML by the real compiler
 * (cp/resolve/authz_compile.c) for Service default/reviews behind the
 * waypoint default/waypoint, and a pipeline connection that carries it
 * with a given peer identity.
 */
#ifndef WP_TESTS_L7_AUTHZ_FIXTURE_H
#define WP_TESTS_L7_AUTHZ_FIXTURE_H

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "authz_compile.h"
#include "pipeline.h"
#include "wp/addr.h"
#include "wp/model.h"

struct az_fx {
	struct wp_obj *objs[16];
	uint32_t n;
	struct wp_authz_table *t;
	struct wp_pipe_core core;
	struct wp_pipe_conn conn;
};

static int az_take(void *ctx, struct wp_obj *o)
{
	struct az_fx *f = ctx;

	if (f->n == 16)
		return -1;
	f->objs[f->n++] = o;
	return 0;
}

static void az_err(void *ctx, const struct wp_model_error *e)
{
	(void)ctx;
	fprintf(stderr, "%s\n", e->msg);
}

/* Compiles <yaml> (may be NULL: no table) and opens a connection from
 * <principal> (NULL: none) at 10.1.0.1 to 10.96.0.10:9080. */
static void az_fx_init(struct az_fx *f, const char *yaml, const char *principal, uint64_t *ctr)
{
	struct wp_authz_compile_in in = {
	        .gw_ns = "default",
	        .gw_name = "waypoint",
	        .gw_class = "istio-waypoint",
	        .dest_kind = WP_AUTHZ_DEST_SERVICE,
	        .dest_ns = "default",
	        .dest_name = "reviews",
	};

	memset(f, 0, sizeof(*f));
	wp_pipe_core_init(&f->core, ctr);
	if (yaml) {
		assert_int_equal(wp_model_parse(yaml, strlen(yaml), "fx.yaml", az_take, az_err, f),
		                 0);
		in.policies = (const struct wp_obj *const *)f->objs;
		in.n_policies = f->n;
		f->t = wp_authz_compile(&in);
		assert_non_null(f->t);
		assert_int_equal(f->t->n_errors, 0);
	}
	f->conn.core = &f->core;
	if (principal) {
		f->conn.principal = principal;
		f->conn.principal_len = (uint32_t)strlen(principal);
	}
	f->conn.peer = wp_addr_v4(htonl(0x0a010001));
	f->conn.remote = f->conn.peer;
	f->conn.dst = wp_addr_v4(htonl(0x0a60000a));
	f->conn.dst_port = 9080;
	f->conn.authority = "reviews.default.svc.cluster.local:9080";
	f->conn.authority_len = (uint32_t)strlen(f->conn.authority);
	wp_pipe_conn_set_authz(&f->conn, f->t);
}

static void az_fx_fini(struct az_fx *f)
{
	wp_authz_table_free(f->t);
	for (uint32_t i = 0; i < f->n; i++)
		wp_obj_free(f->objs[i]);
	wp_pipe_core_fini(&f->core);
}

#endif /* WP_TESTS_L7_AUTHZ_FIXTURE_H */
