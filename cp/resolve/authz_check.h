/*
 * `wpctl authz check` and the admin endpoint's GET /authz/check: the
 * authorization decision for one concrete request, against a snapshot.
 *
 * One code path for both: wpctl --dir builds a snapshot from a manifest
 * directory and calls wp_authz_check_run() itself; online, wpctl sends the
 * same request as a query string (wp_authz_check_query) and the control
 * plane parses it back (wp_authz_check_parse_query) and runs the check on
 * the published snapshot. Either way the answer is the JSON object of
 * wp_authz_check_run(), printed as text by wp_authz_check_print().
 *
 * The request is built as the data path builds it (dp/l7): principal is the
 * SPIFFE ID without "spiffe://", src_ip the HBONE peer, remote_ip the
 * original client (default: src_ip), dst_ip the Service VIP and dst_port
 * the service port, host the :authority as given (default: `to` as
 * written), method GET by default, path "/" by default, normalized with
 * wp_path_norm (wp/path_norm.h) and without its query, header names
 * lower-cased, SNI empty; tcp means opaque TCP (is_http false, and no
 * host, method, path or headers: JSON null / {}).
 */
#ifndef WP_CP_AUTHZ_CHECK_H
#define WP_CP_AUTHZ_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "wp/authz.h"
#include "wp/snapshot_types.h"

#define WP_AUTHZ_CHECK_MAX_HEADERS 32

/* A request to check, as the operator wrote it. Strings are borrowed
 * (argv), or owned by buf after wp_authz_check_parse_query. */
struct wp_authz_check_in {
	const char *from;      /* principal, with or without spiffe:// */
	const char *to;        /* HOST:PORT: hostname, name.ns or VIP, and service port */
	const char *host;      /* :authority; NULL = to as written */
	const char *method;    /* NULL = GET */
	const char *path;      /* request target; NULL = "/" */
	const char *source_ip; /* HBONE peer; NULL = none (ipBlocks match nothing) */
	const char *remote_ip; /* original client; NULL = source_ip */
	bool tcp;              /* opaque TCP: no HTTP fields */
	unsigned n_headers;
	const char *headers[WP_AUTHZ_CHECK_MAX_HEADERS]; /* "name=value" */
	char *buf; /* owns the strings when parsed from a query (free with _fini) */
};

void wp_authz_check_fini(struct wp_authz_check_in *in);

/*
 * Checks what needs no snapshot: required fields, principal, addresses,
 * headers, path. 0, or -EINVAL with the reason in err.
 */
int wp_authz_check_validate(const struct wp_authz_check_in *in, char *err, size_t errlen);

/*
 * Decides in against snapshot s with scratch sc (grown here as the table
 * needs: the caller owns it and must use it from one thread). On 0 *out is
 * the answer (new reference):
 *   {"decision": "ALLOW"|"DENY", "allowed", "audited",
 *    "reason": wp_authz_reason_name(),
 *    "policy": {"namespace", "name", "action", "rule"} | null  (rule -1: the
 *              policy as a whole, e.g. one that failed to compile),
 *    "service": {"namespace", "name", "hostname", "waypoint", "port"},
 *    "policies": [{"namespace", "name", "action", "targetRef"}] applied,
 *    "errors": ["ORIGIN:LINE: ..."] of policies that could not be read,
 *    "request": {"principal", "src_ip", "remote_ip", "dst_ip" (the VIP asked
 *                for, else the Service's first), "dst_port", "http", "host",
 *                "method", "path", "headers": {name: value}},
 *    "snapshot_version"}
 * Else -EINVAL (bad request), -ENOENT (the destination is not a Service
 * this snapshot captures, or not that port), -ENOMEM, with err set.
 */
int wp_authz_check_run(const struct wp_snapshot *s, struct wp_authz_scratch *sc,
                       const struct wp_authz_check_in *in, json_t **out, char *err, size_t errlen);

/* The answer as text (a few "key: value" lines). */
void wp_authz_check_print(FILE *f, json_t *answer);

/* "from=..&to=..": in as the admin endpoint's query (malloc'd, every
 * value percent-encoded), or NULL. */
char *wp_authz_check_query(const struct wp_authz_check_in *in);

/*
 * Parses such a query into in (zeroed first; the strings are decoded into
 * in->buf). 0, or -EINVAL (unknown or repeated key, bad escape, too many
 * headers) / -ENOMEM with the reason in err.
 */
int wp_authz_check_parse_query(const char *query, struct wp_authz_check_in *in, char *err,
                               size_t errlen);

#endif /* WP_CP_AUTHZ_CHECK_H */
