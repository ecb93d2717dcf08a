/*
 * Configuration sources. A source turns some outside truth (a manifest
 * directory, the Kubernetes API) into a stream of object events delivered to
 * a sink (the resolver's object store). Everything runs on the control-plane
 * thread: the runner calls start() once, then polls the source's fd and
 * calls poll() when it is readable (or every tick when fd() is -1). A source
 * that does blocking I/O on a thread of its own (the Kubernetes watch) must
 * queue what it receives and deliver it from poll(), so sink calls never
 * race.
 *
 * Implementations: the manifest directory (wp_source_manifest_dir_create,
 * cp/source/manifest_dir.c) and the Kubernetes list/watch (cp/kube/: what
 * waypointd needs of it is declared at the end of this file, the rest in
 * cp/kube/kube_source.h).
 */
#ifndef WP_SOURCE_H
#define WP_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wp/common.h"
#include "wp/model_types.h"

/* Where a source delivers events. Implemented by the resolver
 * (wp_resolver_sink()). All calls on the control-plane thread. */
struct wp_source_sink_ops {
	/* Adds or replaces the object (kind, meta.ns, meta.name). The sink
	 * owns obj afterwards, whatever the return. 0 or -errno. */
	int (*upsert)(void *ctx, struct wp_obj *obj);
	/* Removes an object; removing an unknown one is not an error. */
	int (*remove)(void *ctx, enum wp_kind kind, const char *ns, const char *name);
	/* Reports a rejected object or file: msg is "ORIGIN:LINE: ...". The
	 * object's last good version (if any) stays. */
	void (*error)(void *ctx, const char *origin, const char *msg);
	/* Forgets every error reported earlier for origin (it was re-read). */
	void (*clear_errors)(void *ctx, const char *origin);
	/* The source has delivered a complete initial state (its first list
	 * is done); the runner publishes the first snapshot after every source
	 * has synced. */
	void (*synced)(void *ctx, const char *source_name);
	/* Optional (NULL for the resolver): every document the manifest-dir
	 * source parses, before it is typed, whatever its kind
	 * (wp_model_doc_cb); for checkers such as `wpctl analyze`. */
	void (*document)(void *ctx, const char *origin, const struct wp_ynode *root);
};

struct wp_source_sink {
	const struct wp_source_sink_ops *ops;
	void *ctx;
};

struct wp_source;
struct json_t;

/* How far a source is from its origin right now (wp_source_ops.state). */
#define WP_SOURCE_MAX_LAGGING 16
#define WP_SOURCE_MAX_MEMBERS 32
struct wp_source_state {
	/* Kinds whose objects in the sink may be missing or stale: not listed
	 * yet ("listing"), relisting ("relisting"), or cut off from the origin
	 * and retrying ("retrying"). Static strings. */
	unsigned n_lagging;
	const char *lagging[WP_SOURCE_MAX_LAGGING];
	const char *why[WP_SOURCE_MAX_LAGGING];
	/* Writes back to the origin (Gateway status) decided but not done. */
	unsigned pending_writes;
	/* Who may write back, when several appliances elect one (the
	 * Kubernetes source's Lease); has_lease false: no election. */
	bool has_lease;
	struct {
		char name[128], namespace[64];
		char identity[128];   /* this appliance */
		char holder[128];     /* the holder last seen ("" = none or unknown) */
		bool leading;         /* this appliance writes now */
		double age_s;         /* since the record last changed (-1: never read) */
		double since_renew_s; /* since our last renewal (-1: never) */
		long long transitions;
	} lease;
	/* The appliances registered as endpoints of the waypoint's Service
	 * (the Kubernetes source's membership, one WorkloadEntry each, as last
	 * listed); has_members false: this appliance does not register. */
	bool has_members;
	bool registered; /* this appliance's entry exists */
	unsigned n_members;
	struct {
		char name[128], identity[128], address[64];
		double age_s; /* since the entry last changed (renewed) */
	} members[WP_SOURCE_MAX_MEMBERS];
};

struct wp_source_ops {
	const char *name; /* "manifest-dir", "kubernetes" */
	/* Delivers the initial state to sink, then sink->synced (a source
	 * that cannot do that synchronously calls synced later from poll).
	 * The sink must outlive the source. 0 or -errno. */
	int (*start)(struct wp_source *src, const struct wp_source_sink *sink);
	/* A descriptor that turns readable when poll() has work, or -1. */
	int (*fd)(struct wp_source *src);
	/* Delivers pending changes. >0 when something was delivered, 0 when
	 * nothing, <0 on an error (the source stays usable). */
	int (*poll)(struct wp_source *src);
	/* Optional (NULL: the source is current once it synced, and writes
	 * nothing back). Fills *st; control-plane thread. */
	void (*state)(struct wp_source *src, struct wp_source_state *st);
	/* Optional: a snapshot was published; rows are its enrollment
	 * (wp_enrollment_json with details: every Service and Pod with its
	 * waypoint and whether this appliance serves it), borrowed for the
	 * call. For sources that write status depending on it (the Kubernetes
	 * status writer: WaypointAccepted of Service-targeted policies).
	 * Control-plane thread. */
	void (*published)(struct wp_source *src, struct json_t *rows);
	void (*destroy)(struct wp_source *src);
};

/* Every source starts with this header (embed it first). */
struct wp_source {
	const struct wp_source_ops *ops;
	const struct wp_source_sink *sink; /* set by start() */
};

/*
 * Helper for sources that receive object text (e.g. one JSON object per
 * Kubernetes watch event): parses buf as one or more objects, upserts the
 * valid ones and reports the rejected ones through sink->error. origin names
 * the text in messages ("k8s:Pod/ns/name"). Returns the number of objects
 * upserted, or -errno (the error was reported).
 */
int wp_source_deliver_text(const struct wp_source_sink *sink, const char *origin, const char *buf,
                           size_t len);

/*
 * The manifest-directory source: every *.yaml, *.yml and *.json file directly
 * in dir, loaded at start() and followed with inotify. A changed file is
 * re-parsed and applied as a difference (objects that left the file are
 * removed). A file with a YAML syntax error keeps all its previous objects;
 * a rejected document keeps that object's previous version. NULL on error.
 */
struct wp_source *wp_source_manifest_dir_create(const char *dir);

/* Loads a directory once (no inotify) into sink; for offline tools such as
 * `wpctl enrollment --dir`. Returns the number of rejected documents or
 * files, or -errno if the directory cannot be read. */
int wp_source_manifest_dir_load(const char *dir, const struct wp_source_sink *sink);

static inline void wp_source_destroy(struct wp_source *src)
{
	if (src)
		src->ops->destroy(src);
}

struct wp_config;

/* The Kubernetes list/watch source waypointd runs: credentials and settings
 * from the config's `kubernetes` group, the served set from its `cluster`
 * group (the status writer follows it). NULL with the reason in err.
 * (cp/kube/kube_conf.c) */
struct wp_source *wp_kube_source_from_config(const struct wp_config *cfg, char *err, size_t errlen);

/* Counters summed over that source's clients (KUBE_* rows of enum wp_ctr);
 * out must hold WP_CTR_MAX entries. Safe from the control-plane thread. */
void wp_kube_source_counters(struct wp_source *src, uint64_t *out);

/* Membership (kubernetes.membership): ready registers this appliance as an
 * endpoint of the waypoint's Service and keeps it registered; not ready
 * deregisters it. No-op without membership. Any thread. */
void wp_kube_source_set_ready(struct wp_source *src, bool ready);
/* Deregisters and waits up to timeout seconds for it to be done. false
 * when it is not (or there is no membership). */
bool wp_kube_source_deregister(struct wp_source *src, double timeout);

#endif /* WP_SOURCE_H */
