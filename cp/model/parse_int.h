/*
 * Internals of manifest parsing (wp/model.h), shared by its pieces:
 *
 *   ynode.c            the YAML/JSON node layer: libyaml events into a node
 *                      tree per document, and the document loop
 *   parse.c            the object layer: the error context and typed field
 *                      readers below, the kinds table, metadata, and the
 *                      dispatch to the kind readers
 *   core_parse.c       core Kubernetes kinds (Service, Pod) and
 *                      discovery.k8s.io EndpointSlice
 *   gateway_parse.c    gateway.networking.k8s.io (Gateway, HTTPRoute)
 *   networking_parse.c networking.istio.io (ServiceEntry)
 *   authz_parse.c      security.istio.io (AuthorizationPolicy)
 *   telemetry_parse.c  telemetry.istio.io (Telemetry)
 *
 * A reader records the first problem in the context (wp_model_fail), which
 * rejects the object with "ORIGIN:LINE: Kind NS/NAME: FIELD: problem"; later
 * problems are ignored. Everything read is copied into the object's arena.
 * Nothing outside cp/model includes this file; its functions have hidden
 * visibility, so they never leave the library.
 */
#ifndef WP_CP_MODEL_PARSE_INT_H
#define WP_CP_MODEL_PARSE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "wp/addr.h"
#include "wp/model.h"

/* The object being read and its first problem. */
struct pctx {
	const char *origin;
	struct wp_obj *o;
	char msg[WP_MODEL_ERRLEN];
	bool failed;
	bool oom;
};

#pragma GCC visibility push(hidden)

/* ynode.c: a deep copy of node tree s into arena a; NULL when out of memory. */
struct wp_ynode *wp_ynode_copy(struct wp_arena *a, const struct wp_ynode *s);

/* parse.c: builds one object from a document's root map (see there). */
struct wp_obj *wp_model_extract(struct pctx *p, const struct wp_ynode *root, const char *origin);

/* parse.c: the error context and the typed field readers. Each reads
 * map[key] (absent and null alike), names the field as `field` in its
 * error, and allocates from the object's arena. */
void wp_model_fail(struct pctx *p, const struct wp_ynode *at, const char *field, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
void *wp_model_palloc(struct pctx *p, size_t n);
const char *wp_model_pstr(struct pctx *p, const char *s);
const struct wp_ynode *wp_model_get_typed(struct pctx *p, const struct wp_ynode *map,
                                          const char *key, enum wp_ynode_type t, const char *field);
const char *wp_model_get_str(struct pctx *p, const struct wp_ynode *map, const char *key,
                             const char *field, bool required);
bool wp_model_get_port(struct pctx *p, const struct wp_ynode *map, const char *key,
                       const char *field, bool required, bool allow0, uint16_t *out);
bool wp_model_get_bool(struct pctx *p, const struct wp_ynode *map, const char *key,
                       const char *field, bool dflt);
void wp_model_get_labels(struct pctx *p, const struct wp_ynode *map, const char *key,
                         const char *field, struct wp_labels *out);
void wp_model_get_selector(struct pctx *p, const struct wp_ynode *sel, const char *field,
                           struct wp_label_selector *out);
bool wp_model_parse_ip(struct pctx *p, const struct wp_ynode *n, const char *field,
                       struct wp_addr *out);
void wp_model_get_strlist(struct pctx *p, const struct wp_ynode *map, const char *key,
                          const char *field, uint32_t *n_out, const char *const **out);

/* The kind readers, one per kind with a spec of its own; each fills
 * p->o->u from the parts of the document it is handed. */
void wp_model_read_service(struct pctx *p, const struct wp_ynode *spec);
void wp_model_read_pod(struct pctx *p, const struct wp_ynode *spec, const struct wp_ynode *status,
                       const struct wp_ynode *meta);
void wp_model_read_endpointslice(struct pctx *p, const struct wp_ynode *root);
void wp_model_read_gateway(struct pctx *p, const struct wp_ynode *spec,
                           const struct wp_ynode *status);
void wp_model_read_httproute(struct pctx *p, const struct wp_ynode *spec);
void wp_model_read_serviceentry(struct pctx *p, const struct wp_ynode *spec);
void wp_model_read_virtualservice(struct pctx *p, const struct wp_ynode *spec);
void wp_model_read_authz(struct pctx *p, const struct wp_ynode *spec);
void wp_model_read_telemetry(struct pctx *p, const struct wp_ynode *spec);

#pragma GCC visibility pop

#endif
