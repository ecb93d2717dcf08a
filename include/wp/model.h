/*
 * Parsing Kubernetes manifests into struct wp_obj (wp/model_types.h), and
 * the label/selector helpers the resolver uses.
 *
 * One buffer of text goes in with an origin name (a file path, or e.g.
 * "k8s:Pod/default/x" for an object from the API server). It may hold
 * several YAML documents, a JSON object (JSON parses as YAML: libyaml does
 * both), or a `kind: List` whose items are objects. Every object of a known
 * kind is validated; a bad one is rejected with "ORIGIN:LINE: KIND NS/NAME:
 * FIELD: problem" while the others still load. Objects of kinds the model
 * does not know (Deployment, ConfigMap, ...) are skipped silently.
 */
#ifndef WP_MODEL_H
#define WP_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "wp/common.h"
#include "wp/model_types.h"

/* Label keys the resolver reads. */
#define WP_LABEL_USE_WAYPOINT    "istio.io/use-waypoint"
#define WP_LABEL_USE_WAYPOINT_NS "istio.io/use-waypoint-namespace"
#define WP_LABEL_WAYPOINT_FOR    "istio.io/waypoint-for"
#define WP_LABEL_SERVICE_NAME    "kubernetes.io/service-name"
#define WP_LABEL_GATEWAY_MANAGED "gateway.istio.io/managed"
#define WP_LABEL_GATEWAY_NAME    "gateway.networking.k8s.io/gateway-name"
#define WP_MESH_CONTROLLER       "istio.io-mesh-controller"

#define WP_MODEL_ERRLEN 512

/* A rejected document. kind/ns/name are filled in when the document got far
 * enough to name itself (else WP_KIND_NONE / NULL), so a source can keep the
 * last good version of exactly that object. */
struct wp_model_error {
	const char *origin;
	uint32_t line;
	enum wp_kind kind;
	const char *ns;
	const char *name;
	const char *msg; /* "ORIGIN:LINE: ..." */
};

/* Receives one parsed object; the callee owns obj (free with
 * wp_obj_free). Return 0 to go on, <0 to stop parsing with that error. */
typedef int (*wp_model_obj_cb)(void *ctx, struct wp_obj *obj);
/* Receives one rejected document; the struct is valid during the call. */
typedef void (*wp_model_err_cb)(void *ctx, const struct wp_model_error *err);

/*
 * Parses buf[0..len) (YAML documents or JSON). Calls obj_cb for each valid
 * object and err_cb for each rejected one, in document order. Returns the
 * number of rejected documents (0 = all good), -EBADMSG on a YAML syntax
 * error (reported through err_cb; objects before it were delivered, the
 * caller decides whether to keep them), or the callback's negative return.
 */
int wp_model_parse(const char *buf, size_t len, const char *origin, wp_model_obj_cb obj_cb,
                   wp_model_err_cb err_cb, void *ctx);

/* Receives every document that is a mapping (each item of a List) as the
 * generic node tree, before it is typed and whatever its kind, so a checker
 * (wpctl analyze) also sees what the model skips. Valid during the call. */
typedef void (*wp_model_doc_cb)(void *ctx, const char *origin, const struct wp_ynode *root);

/* wp_model_parse that also calls doc_cb (NULL: none) for each document. */
int wp_model_parse_docs(const char *buf, size_t len, const char *origin, wp_model_obj_cb obj_cb,
                        wp_model_err_cb err_cb, wp_model_doc_cb doc_cb, void *ctx);

/*
 * Parses a buffer that holds exactly one object (e.g. one JSON object from
 * the Kubernetes API). Returns the object (caller owns it) or NULL with the
 * reason in err; a buffer of an unknown kind gives NULL with err "" .
 */
struct wp_obj *wp_model_parse_one(const char *buf, size_t len, const char *origin, char *err,
                                  size_t errlen);

/*
 * Types the rules of an AuthorizationPolicy (cp/model/authz_parse.c) into
 * obj->u.authz. Never rejects the object: a rule that cannot be used gets
 * rule.invalid, a policy-wide problem authz.invalid ("ORIGIN:LINE: ..."),
 * so the compiler can fail closed on it. spec may be NULL.
 */
void wp_authz_parse(struct wp_obj *obj, const struct wp_ynode *spec);

/* Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (full length).
 * Host bits are cleared. 0 or -EINVAL. */
int wp_authz_cidr_parse(const char *s, struct wp_authz_cidr *out);

/* Frees an object and everything it owns. NULL is fine. */
void wp_obj_free(struct wp_obj *obj);

/* "Pod", "Service", ... ; "?" for WP_KIND_NONE. */
const char *wp_kind_name(enum wp_kind kind);

/* The kind for a Kubernetes kind name ("Pod"), or WP_KIND_NONE. The group
 * tells the Gateway API Gateway from Istio's networking Gateway: pass the
 * apiVersion ("gateway.networking.k8s.io/v1"), or NULL to skip the check. */
enum wp_kind wp_kind_from_name(const char *kind, const char *api_version);

/* True when kind lives in a namespace (everything but Namespace and
 * GatewayClass). */
bool wp_kind_namespaced(enum wp_kind kind);

/* The value of key in l, or NULL. */
const char *wp_labels_get(const struct wp_labels *l, const char *key);

/* True when every key=value of sel is in labels (an equality selector,
 * e.g. a Service's spec.selector; an empty selector matches everything). */
bool wp_labels_subset(const struct wp_labels *sel, const struct wp_labels *labels);

/* metav1.LabelSelector semantics; an empty selector matches everything. */
bool wp_selector_match(const struct wp_label_selector *s, const struct wp_labels *labels);

/* Child of a map node by key, or NULL. */
const struct wp_ynode *wp_ynode_get(const struct wp_ynode *map, const char *key);

/* True for a missing node or a plain null scalar (null, ~, empty). */
bool wp_ynode_is_null(const struct wp_ynode *n);

#endif /* WP_MODEL_H */
