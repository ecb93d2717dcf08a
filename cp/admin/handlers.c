/*
 * The admin endpoint's handlers (see wp/cp.h for what each path answers),
 * called by the HTTP server (httpd.c) on the control-plane thread
 * (cp/thread/cp.c), whose state they read (cp/thread/cp_int.h): the JSON
 * views /config_dump and /enrollment, readiness, and the Prometheus
 * exposition the data path renders. Also the route tables of the admin and
 * metrics listeners.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_check.h"
#include "cp_int.h"
#include "wp/ca.h"
#include "wp/model.h"

static const struct {
	enum wp_ctr id;
	const char *name;
} cp_ctrs[] = {
#define WP_CTR(name, kind, desc) {WP_CTR_##name, #name},
#define WP_CTR_ONLY              WP_CTR_GROUP_CP
#include "wp/counters/list.h"
#undef WP_CTR_ONLY
#undef WP_CTR
};

/*
 * The views. By default /config_dump and /enrollment show what the workers
 * run (the published snapshot; nothing before the first one), and say
 * whether that is current: "lagging" names the kinds a source has not
 * caught up on (first list, relist, or retrying after an outage). With
 * ?view=store they show the control plane's object store instead (what has
 * been received so far, possibly half-listed), labelled as such.
 */

/* Whether the request's query asks for the store view. */
static bool wants_store(const char *query)
{
	for (const char *q = query; q && *q;) {
		size_t n = strcspn(q, "&");

		if (n == 10 && !strncmp(q, "view=store", 10))
			return true;
		q += n + (q[n] == '&');
	}
	return false;
}

/* {"view", "snapshot_version", "synced", "lagging": [{"source", "kind",
 * "state"}], "note"}: what the answer shows and how current it is. */
static json_t *view_json(struct wp_cp *cp, bool store)
{
	const struct wp_snapshot *snap = wp_snapshot_slot_current(cp->slot);
	json_t *o = json_object(), *lag = json_array();
	char note[512], kinds[256] = "";
	size_t off = 0;

	for (unsigned i = 0; i < cp->n_src; i++) {
		struct wp_source_state st;

		if (!cp->src[i]->ops->state)
			continue;
		cp->src[i]->ops->state(cp->src[i], &st);
		for (unsigned k = 0; k < st.n_lagging; k++) {
			json_array_append_new(lag, json_pack("{s:s, s:s, s:s}", "source",
			                                     cp->src[i]->ops->name, "kind",
			                                     st.lagging[k], "state", st.why[k]));
			if (off < sizeof(kinds))
				off += (size_t)snprintf(kinds + off, sizeof(kinds) - off,
				                        "%s%s (%s)", off ? ", " : "", st.lagging[k],
				                        st.why[k]);
		}
	}
	json_object_set_new(o, "view", json_string(store ? "store" : snap ? "snapshot" : "none"));
	json_object_set_new(o, "snapshot_version",
	                    snap ? json_integer((json_int_t)snap->version) : json_null());
	json_object_set_new(o, "synced", json_boolean(all_synced(cp)));
	json_object_set_new(o, "lagging", lag);
	if (store)
		snprintf(note, sizeof(note),
		         "the control plane's object store, not what the workers run%s%s%s",
		         kinds[0] ? "; not current for: " : "", kinds,
		         all_synced(cp) ? ""
		                        : "; first full sync not done: objects may be missing");
	else if (!snap)
		snprintf(note, sizeof(note),
		         "no snapshot published yet: the workers capture nothing until the first "
		         "full sync%s%s (?view=store, wpctl --store, shows what has been received)",
		         kinds[0] ? "; waiting for: " : "", kinds);
	else if (kinds[0])
		snprintf(note, sizeof(note),
		         "the snapshot the workers run; not current for: %s (changes to those "
		         "kinds follow when they catch up)",
		         kinds);
	else
		snprintf(note, sizeof(note), "the snapshot the workers run");
	json_object_set_new(o, "note", json_string(note));
	return o;
}

static char *dump_config(struct wp_cp *cp, bool store)
{
	json_t *o = view_json(cp, store), *errs = json_array(), *ctr = json_object(), *srcs;
	const char *const *msgs;
	unsigned ne = wp_resolver_errors(cp->res, &msgs);
	char *out;

	json_object_set_new(o, "snapshot", wp_snapshot_json(wp_snapshot_slot_current(cp->slot)));
	for (unsigned i = 0; i < ne; i++)
		json_array_append_new(errs, json_string(msgs[i]));
	json_object_set_new(o, "errors", errs);
	for (size_t i = 0; i < WP_ARRAY_SIZE(cp_ctrs); i++)
		json_object_set_new(ctr, cp_ctrs[i].name,
		                    json_integer((json_int_t)cp->ctr[cp_ctrs[i].id]));
	json_object_set_new(o, "counters", ctr);
	if (store) {
		json_t *objs = json_object();

		for (int k = WP_KIND_NONE + 1; k < WP_KIND_MAX; k++)
			json_object_set_new(
			        objs, wp_kind_name(k),
			        json_integer((json_int_t)wp_resolver_count(cp->res, k)));
		json_object_set_new(o, "objects", objs);
	}
	srcs = json_array();
	for (unsigned i = 0; i < cp->n_src; i++) {
		struct wp_source_state st = {0};
		json_t *so = json_pack("{s:s, s:b}", "name", cp->src[i]->ops->name, "synced",
		                       cp->synced[i]);

		if (cp->src[i]->ops->state) {
			cp->src[i]->ops->state(cp->src[i], &st);
			json_object_set_new(so, "pending_writes", json_integer(st.pending_writes));
			if (st.has_lease)
				json_object_set_new(
				        so, "lease",
				        json_pack("{s:s, s:s, s:s, s:s?, s:b, s:f, s:f, s:I}",
				                  "name", st.lease.name, "namespace",
				                  st.lease.namespace, "identity", st.lease.identity,
				                  "holder",
				                  st.lease.holder[0] ? st.lease.holder : NULL,
				                  "leading", st.lease.leading, "age_s",
				                  st.lease.age_s, "since_renew_s",
				                  st.lease.since_renew_s, "transitions",
				                  (json_int_t)st.lease.transitions));
			if (st.has_members) {
				json_t *ms = json_array();

				for (unsigned m = 0; m < st.n_members; m++)
					json_array_append_new(
					        ms, json_pack("{s:s, s:s, s:s, s:f}", "name",
					                      st.members[m].name, "identity",
					                      st.members[m].identity, "address",
					                      st.members[m].address, "age_s",
					                      st.members[m].age_s));
				json_object_set_new(so, "membership",
				                    json_pack("{s:b, s:o}", "registered",
				                              st.registered, "members", ms));
			}
		}
		json_array_append_new(srcs, so);
	}
	json_object_set_new(o, "sources", srcs);
	out = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	return out;
}

/* A 200 whose body could not be built (out of memory) is a 503. */
static void reply_json(struct wp_httpd_reply *rep, char *body)
{
	rep->status = body ? 200 : 503;
	rep->ctype = body ? NULL : "text/plain";
	rep->body = body ? body : strdup("out of memory\n");
}

static void h_config_dump(void *ctx, const struct wp_httpd_req *req, struct wp_httpd_reply *rep)
{
	reply_json(rep, dump_config(ctx, wants_store(req->query)));
}

/* The enrollment view: view_json's fields plus "rows" (wp_enrollment_json
 * with details) of the published snapshot, or of the store on request. */
static char *dump_enrollment(struct wp_cp *cp, bool store)
{
	json_t *o = view_json(cp, store);
	/* No rows for a published snapshot (out of memory at publish): 503,
	 * not an empty view that looks like the workers capture nothing. */
	json_t *rows = store                                 ? wp_enrollment_json(cp->res, true)
	               : !wp_snapshot_slot_current(cp->slot) ? json_array()
	               : cp->pub_rows                        ? json_incref(cp->pub_rows)
	                                                     : NULL;
	char *out = NULL;

	if (o && rows && !json_object_set_new(o, "rows", rows))
		out = json_dumps(o, JSON_INDENT(2));
	else if (rows && !o)
		json_decref(rows);
	json_decref(o);
	return out;
}

static void h_enrollment(void *ctx, const struct wp_httpd_req *req, struct wp_httpd_reply *rep)
{
	reply_json(rep, dump_enrollment(ctx, wants_store(req->query)));
}

/* GET /authz/check?from=..&to=..[&method=..&path=..&header=K%3DV&host=..
 * &source_ip=..&remote_ip=..&tcp=1]: the decision of the published snapshot
 * for that request (cp/resolve/authz_check.h), or {"error": why} with 400
 * (bad parameters), 404 (not a captured Service and port, no snapshot yet)
 * or 503 (out of memory). */
static void h_authz_check(void *ctx, const struct wp_httpd_req *req, struct wp_httpd_reply *rep)
{
	struct wp_cp *cp = ctx;
	struct wp_authz_check_in in;
	json_t *ans = NULL;
	char err[512];
	int rc = wp_authz_check_parse_query(req->query, &in, err, sizeof(err));

	if (!rc) {
		rc = wp_authz_check_run(wp_snapshot_slot_current(cp->slot), &cp->authz_sc, &in,
		                        &ans, err, sizeof(err));
		wp_authz_check_fini(&in);
	}
	if (!rc) {
		json_object_set_new(ans, "view", json_string("snapshot"));
		reply_json(rep, json_dumps(ans, JSON_INDENT(2)));
		json_decref(ans);
		return;
	}
	cp->ctr[WP_CTR_ADMIN_AUTHZ_CHECK_REFUSED]++;
	rep->status = rc == -EINVAL ? 400 : rc == -ENOENT ? 404 : 503;
	ans = json_pack("{s:s}", "error", err);
	rep->body = ans ? json_dumps(ans, JSON_INDENT(2)) : NULL;
	json_decref(ans);
	if (!rep->body) {
		rep->status = 503;
		rep->ctype = "text/plain";
		rep->body = strdup("out of memory\n");
	}
}

/* /certs: the data path's certificate, and with istiod its renewal state
 * (wp/ca.h). */
static void h_certs(void *ctx WP_UNUSED, const struct wp_httpd_req *req WP_UNUSED,
                    struct wp_httpd_reply *rep)
{
	reply_json(rep, wp_ca_certs_json());
}

static void h_ready(void *ctx, const struct wp_httpd_req *req WP_UNUSED, struct wp_httpd_reply *rep)
{
	struct wp_cp *cp = ctx;

	rep->status = cp->published ? 200 : 503;
	rep->ctype = "text/plain";
	rep->body = strdup(cp->published ? "ready\n" : "not ready\n");
}

/*
 * /stats/prometheus. Rendering costs the control-plane thread about 2.5 us
 * per series, so a turn of the loop renders at most once: every scrape
 * answered in the same turn (other clients, pipelined requests) gets a copy
 * of that text, and a burst of scrapes cannot hold the loop for more than
 * one rendering per turn.
 */
static void h_prometheus(void *ctx, const struct wp_httpd_req *req WP_UNUSED,
                         struct wp_httpd_reply *rep)
{
	struct wp_cp *cp = ctx;
	uint64_t ctr[WP_CTR_MAX];
	char *body = NULL;
	bool hooked;

	if (!cp->prom.text) {
		wp_cp_all_counters(cp, ctr);
		/* uncontended but for the moment the hook is set or cleared */
		pthread_mutex_lock(&cp->prom.lock);
		hooked = cp->prom.fn != NULL;
		if (hooked)
			cp->prom.text = cp->prom.fn(cp->prom.ctx, ctr, &cp->prom.len);
		pthread_mutex_unlock(&cp->prom.lock);
	} else {
		hooked = true;
	}
	if (cp->prom.text) {
		body = malloc(cp->prom.len + 1);
		if (body)
			memcpy(body, cp->prom.text, cp->prom.len + 1);
	}
	if (body) {
		rep->status = 200;
		rep->ctype = "text/plain; version=0.0.4; charset=utf-8";
		rep->body = body;
		return;
	}
	rep->status = 503;
	rep->ctype = "text/plain";
	rep->body = strdup(hooked ? "out of memory\n" : "the data path is not running yet\n");
}

const struct wp_httpd_route wp_cp_admin_routes[] = {
        {"/config_dump", h_config_dump},
        {"/authz/check", h_authz_check},
        {"/enrollment", h_enrollment},
        {"/healthz/ready", h_ready},
        {"/stats/prometheus", h_prometheus},
        {"/certs", h_certs},
        {NULL, NULL},
};

const struct wp_httpd_route wp_cp_metrics_routes[] = {
        {"/stats/prometheus", h_prometheus},
        {"/metrics", h_prometheus},
        {NULL, NULL},
};
