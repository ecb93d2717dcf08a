/*
 * A small Kubernetes API client for the control plane and wpctl.
 *
 * libcurl does HTTPS (CA, client certificate or bearer token) and jansson the
 * JSON. Configuration comes from inside a pod (KUBERNETES_SERVICE_HOST/PORT
 * and the service-account directory) or from a kubeconfig ($KUBECONFIG or
 * ~/.kube/config, parsed with libyaml). Calls are blocking; one struct
 * wp_kube serves one thread at a time (make one per thread that talks to the
 * API server). WATCH streams line-delimited JSON events through a curl write
 * callback to a caller's function as they arrive.
 *
 * A kubeconfig user may name an exec credential plugin (the
 * client.authentication.k8s.io ExecCredential protocol, as kubectl runs it);
 * its credential is cached, shared by every client made from one loaded
 * config, and renewed when it expires or the server answers 401.
 *
 * Not supported: auth-provider plugins (gone from kubectl), merging several
 * kubeconfig files (the first readable file of $KUBECONFIG is used), HTTP
 * proxies other than what libcurl picks from the environment.
 */
#ifndef WP_CP_KUBE_H
#define WP_CP_KUBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "wp/common.h"

/* Where the service-account files live inside a pod. */
#define WP_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* A kubeconfig user's exec credential plugin, with its cached credential
 * (opaque; reference counted and locked, shared between clients). */
struct wp_kube_exec;

/* A credential an exec plugin printed. Strings are heap copies; cert/key
 * are PEM. */
struct wp_kube_cred {
	char *token;
	char *cert_data;
	size_t cert_len;
	char *key_data;
	size_t key_len;
	time_t expiry; /* status.expirationTimestamp; 0 = does not expire */
	unsigned gen;  /* which run of the plugin produced it (from 1) */
};

/* Connection settings. All strings are heap copies owned by the struct;
 * *_data are decoded PEM bytes (from a kubeconfig's "-data" fields). */
struct wp_kube_config {
	char *server; /* "https://host:port", no trailing slash */
	char *ca_file;
	char *ca_data;
	size_t ca_len;
	char *cert_file;
	char *cert_data;
	size_t cert_len;
	char *key_file;
	char *key_data;
	size_t key_len;
	char *token;               /* a fixed bearer token */
	char *token_file;          /* re-read whenever it changes (rotation) */
	char *namespace;           /* the context's / pod's namespace, or NULL */
	bool insecure;             /* insecure-skip-tls-verify */
	struct wp_kube_exec *exec; /* exec plugin (one reference), or NULL */
};

/*
 * Fills cfg from a pod's environment: KUBERNETES_SERVICE_HOST/PORT and
 * sa_dir/{token,ca.crt,namespace} (sa_dir NULL = WP_KUBE_SA_DIR; tests point
 * it elsewhere). Returns 0, -ENOENT when not in a pod, -EINVAL on bad values.
 * On error cfg holds nothing to free.
 */
int wp_kube_config_in_cluster(struct wp_kube_config *cfg, const char *sa_dir) WP_MUST_CHECK;

/*
 * Fills cfg from a kubeconfig file (path NULL: the first readable file of
 * $KUBECONFIG, else ~/.kube/config), its current-context (or the context
 * named by ctx_name when not NULL). Relative file paths are taken relative to
 * the kubeconfig's directory. Returns 0, -ENOENT without a file, -EINVAL with
 * a message in err (errlen bytes) for a malformed one.
 */
int wp_kube_config_load(struct wp_kube_config *cfg, const char *path, const char *ctx_name,
                        char *err, size_t errlen) WP_MUST_CHECK;

/* The same for a kubeconfig held in memory; dir (may be NULL) resolves
 * relative paths. */
int wp_kube_config_parse(struct wp_kube_config *cfg, const char *buf, size_t len, const char *dir,
                         const char *ctx_name, char *err, size_t errlen) WP_MUST_CHECK;

/* In-cluster (service-account directory $WP_KUBE_SA_DIR or the default) when
 * KUBERNETES_SERVICE_HOST is set, else the kubeconfig. */
int wp_kube_config_auto(struct wp_kube_config *cfg, char *err, size_t errlen) WP_MUST_CHECK;

/* Frees the strings in cfg (drops its exec reference) and zeroes it. */
void wp_kube_config_clear(struct wp_kube_config *cfg);

/* Seconds an exec plugin may run before it is killed. */
#define WP_KUBE_EXEC_TIMEOUT_S 60

/* Another reference to ex (returns ex); the last unref frees it. */
struct wp_kube_exec *wp_kube_exec_ref(struct wp_kube_exec *ex);
void wp_kube_exec_unref(struct wp_kube_exec *ex);

/*
 * The plugin's current credential, copied into out (clear it with
 * wp_kube_cred_clear): the cached one unless there is none, it expired, or
 * its gen is rejected_gen (the server refused it; 0 = nothing refused), in
 * which case the plugin runs (at most one run at a time per ex). Returns 0
 * (cached), 1 (the plugin ran), or <0 with a message in err naming the
 * kubeconfig and user, with the plugin's stderr or installHint.
 */
int wp_kube_exec_credential(struct wp_kube_exec *ex, unsigned rejected_gen,
                            struct wp_kube_cred *out, char *err, size_t errlen) WP_MUST_CHECK;

/*
 * Decodes a plugin's stdout: an ExecCredential of apiVersion api_version
 * with status.token, or status.clientCertificateData and clientKeyData, and
 * an optional status.expirationTimestamp. Returns 0 or -EINVAL with err.
 */
int wp_kube_exec_cred_parse(const char *buf, size_t len, const char *api_version,
                            struct wp_kube_cred *cred, char *err, size_t errlen) WP_MUST_CHECK;

/* True when cred has an expiry and now is at or past it. */
bool wp_kube_cred_expired(const struct wp_kube_cred *cred, time_t now);
void wp_kube_cred_clear(struct wp_kube_cred *cred);

/* An RFC 3339 time ("2026-01-02T03:04:05Z", fraction and offset allowed)
 * into *t. Returns 0 or -EINVAL. */
int wp_kube_rfc3339_parse(const char *s, time_t *t) WP_MUST_CHECK;

/* A Kubernetes resource type: enough to build its paths. */
struct wp_kube_resource {
	const char *group; /* "" for the core group */
	const char *version;
	const char *kind;
	const char *plural;
	bool namespaced;
	/* the version to read when the API server does not serve version
	 * (404: an older CRD), or NULL; when it serves neither, the kind is
	 * taken as listed and empty, and asked for again after a backoff */
	const char *alt_version;
};

/* The resources the waypoint reads (index by enum wp_kind of wp/model_types.h:
 * WP_KUBE_RES_*). */
enum {
	WP_KUBE_RES_NAMESPACE,
	WP_KUBE_RES_SERVICE,
	WP_KUBE_RES_POD,
	WP_KUBE_RES_ENDPOINTSLICE,
	WP_KUBE_RES_GATEWAY,
	WP_KUBE_RES_GATEWAYCLASS,
	WP_KUBE_RES_HTTPROUTE,
	WP_KUBE_RES_AUTHORIZATIONPOLICY,
	WP_KUBE_RES_DESTINATIONRULE,
	WP_KUBE_RES_SERVICEENTRY,
	WP_KUBE_RES_VIRTUALSERVICE,
	WP_KUBE_RES_TELEMETRY,
	WP_KUBE_RES_COUNT
};
extern const struct wp_kube_resource wp_kube_resources[WP_KUBE_RES_COUNT];

/*
 * Writes the URL path of a collection (name NULL) or an object, optionally
 * its subresource ("status"), into buf. ns NULL on a namespaced resource
 * means all namespaces. Returns the length, or -ENAMETOOLONG.
 */
int wp_kube_path(char *buf, size_t len, const struct wp_kube_resource *res, const char *ns,
                 const char *name, const char *sub);

struct wp_kube;

/* A client for cfg (copied). Returns NULL on allocation or curl failure. */
struct wp_kube *wp_kube_new(const struct wp_kube_config *cfg);
void wp_kube_free(struct wp_kube *k);

/* The client's counters, indexed by enum wp_ctr (KUBE_* rows). */
uint64_t *wp_kube_counters(struct wp_kube *k);

/* Per-request timeout in seconds for non-watch calls (default 30). */
void wp_kube_set_timeout(struct wp_kube *k, long seconds);

/*
 * Memory bounds (0 = none, the default): max_event caps one watch event line
 * (wp_kube_watch returns -EMSGSIZE past it, counted KUBE_EVENT_TOO_BIG);
 * max_body caps the answer to any other request, a LIST page included
 * (-EMSGSIZE, counted KUBE_BODY_TOO_BIG).
 */
void wp_kube_set_limits(struct wp_kube *k, size_t max_event, size_t max_body);

/* Told the HTTP status of every answer k receives (each status line, before
 * the body), on the thread making the request. The list/watch source learns
 * from it that the API server is reachable again. */
typedef void (*wp_kube_answer_cb)(void *arg, long status);
void wp_kube_set_answer_cb(struct wp_kube *k, wp_kube_answer_cb cb, void *arg);

/* The answer to one request. body is NUL-terminated and owned by the struct;
 * json is the parsed body (NULL when not JSON) and also owned by it. */
struct wp_kube_resp {
	long status; /* HTTP status; 0 when no answer came */
	char *body;
	size_t len;
	json_t *json;
	long retry_after; /* seconds from Retry-After, -1 when absent */
	char error[1024]; /* transport or credential error when status is 0 */
};

/* Frees what resp holds and zeroes it. */
void wp_kube_resp_clear(struct wp_kube_resp *resp);

/* The message of a Status object in resp (or the transport error, or ""). */
const char *wp_kube_resp_message(const struct wp_kube_resp *resp);

/*
 * One request. path starts with "/" and may carry a query. body may be NULL.
 * Returns 0 when an HTTP answer arrived (whatever its status: check
 * resp->status), -EIO when none did (resp->error says why), -EMSGSIZE when
 * the answer outgrew max_body (resp->error says so). A 401 makes the client
 * re-read its token file once and retry.
 */
int wp_kube_request(struct wp_kube *k, const char *method, const char *path,
                    const char *content_type, const char *body, size_t len,
                    struct wp_kube_resp *resp) WP_MUST_CHECK;

/* GET; same returns as wp_kube_request. */
int wp_kube_get(struct wp_kube *k, const char *path, struct wp_kube_resp *resp) WP_MUST_CHECK;

/* PATCH types. */
enum wp_kube_patch {
	WP_KUBE_PATCH_MERGE,     /* application/merge-patch+json */
	WP_KUBE_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
	WP_KUBE_PATCH_APPLY,     /* server-side apply; needs field_manager */
};

/* PATCH path (an object or its /status) with a JSON body. field_manager is
 * sent when not NULL (required for APPLY); force sets force=true on apply. */
int wp_kube_patch(struct wp_kube *k, const char *path, enum wp_kube_patch type,
                  const char *field_manager, bool force, const char *body,
                  struct wp_kube_resp *resp) WP_MUST_CHECK;

/* DELETE path. */
int wp_kube_delete(struct wp_kube *k, const char *path, struct wp_kube_resp *resp) WP_MUST_CHECK;

/* Receives one item of a LIST page (borrowed: json_incref to keep it). The
 * item lacks kind/apiVersion, as the API server sends it. Return 0 to go on,
 * <0 to stop the list with that error. */
typedef int (*wp_kube_item_cb)(void *arg, json_t *item);

/*
 * Paged LIST of a collection path (no query), limit items per page (0 = no
 * paging), optional label selector. Calls cb for each item; on success
 * stores the list's resourceVersion in rv (rvlen bytes) and returns 0.
 * Returns -ESTALE for 410 Gone (an expired continue token: relist),
 * -EAGAIN for 429/5xx (retry later; *retry_after set when not NULL),
 * -EACCES for 401/403, -EIO for a transport error, -EMSGSIZE for a page
 * longer than max_body, -EPROTO for anything else, or the callback's error.
 */
int wp_kube_list(struct wp_kube *k, const char *path, const char *label_selector, unsigned limit,
                 wp_kube_item_cb cb, void *arg, char *rv, size_t rvlen,
                 long *retry_after) WP_MUST_CHECK;

/* Watch event types. */
enum wp_kube_event_type {
	WP_KUBE_EV_ADDED,
	WP_KUBE_EV_MODIFIED,
	WP_KUBE_EV_DELETED,
	WP_KUBE_EV_BOOKMARK,
	WP_KUBE_EV_ERROR,
};

/* One decoded watch event. object is owned by the event (borrowed by the
 * callback). For ERROR, code is the Status code (410 = expired). rv points
 * into object (metadata.resourceVersion) or is NULL. */
struct wp_kube_event {
	enum wp_kube_event_type type;
	json_t *object;
	const char *rv;
	long code;
};

/*
 * Decodes one line of a watch stream. Returns 0 with ev filled (release with
 * wp_kube_event_clear), -EBADMSG for a malformed line.
 */
int wp_kube_event_parse(const char *line, size_t len, struct wp_kube_event *ev) WP_MUST_CHECK;
void wp_kube_event_clear(struct wp_kube_event *ev);

/* Receives each event of a watch. Return 0 to go on, <0 to end the watch
 * (wp_kube_watch returns that value). */
typedef int (*wp_kube_event_cb)(void *arg, const struct wp_kube_event *ev);

/*
 * WATCH a collection path from resourceVersion rv (NULL: from now, with
 * synthetic ADDED events for what exists), with bookmarks, for at most
 * timeout_s seconds (server side; 0 = server default). Blocks while events
 * flow to cb. *stop (may be NULL) is polled about every 100 ms and ends the
 * watch early (-ECANCELED). Returns 0 when the server ended the stream
 * cleanly, -ESTALE when the server answered 410 (HTTP status; an in-stream
 * 410 ERROR arrives through cb), -EAGAIN for 429/5xx (*retry_after set),
 * -EACCES for 401/403, -EIO when the connection broke, -EMSGSIZE when an
 * event line outgrew max_event (the stream was dropped there: relist),
 * -EPROTO otherwise, or cb's negative value. Events with bad JSON are skipped
 * and counted.
 */
int wp_kube_watch(struct wp_kube *k, const char *path, const char *rv, unsigned timeout_s,
                  wp_kube_event_cb cb, void *arg, const volatile int *stop,
                  long *retry_after) WP_MUST_CHECK;

/* Exponential backoff with jitter: the n-th delay (n from 0) is uniform in
 * [0.75 d, 1.25 d] for d = min(base * 2^n, max), and never above max. */
struct wp_kube_backoff {
	double base;  /* seconds, e.g. 0.8 */
	double max;   /* seconds, e.g. 30 */
	unsigned n;   /* failures since the last success */
	uint64_t rng; /* xorshift state; seed with anything non-zero */
};

void wp_kube_backoff_init(struct wp_kube_backoff *b, double base, double max, uint64_t seed);
/* The next delay in seconds (and counts one failure). */
double wp_kube_backoff_next(struct wp_kube_backoff *b);
/* After a success. */
void wp_kube_backoff_reset(struct wp_kube_backoff *b);

/* Base64 (standard alphabet, padding optional, whitespace ignored) into a
 * new NUL-terminated buffer; *out_len gets the length. NULL on bad input. */
char *wp_kube_b64decode(const char *in, size_t *out_len);

/* Copies a JSON object to text (caller frees), compact. */
char *wp_kube_json_dump(const json_t *j);

#endif /* WP_CP_KUBE_H */
