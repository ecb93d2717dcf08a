/*
 * The WaypointAccepted condition of AuthorizationPolicies bound to this
 * appliance's waypoints, as istiod writes it for its own (pilot's
 * WaypointPolicyStatus): decided here from the policy's targetRefs and the
 * Gateways and GatewayClasses the status writer (status.c) has seen; the
 * writer puts it in status.conditions through the /status subresource.
 *
 * Per targetRef istiod decides a binding:
 *   Gateway NS/NAME       the waypoint exists: bound, "Accepted",
 *                         "bound to NS/NAME"; else "TargetNotFound",
 *                         "not bound";
 *   GatewayClass NAME     only from the root namespace ("Invalid", "Authori-
 *                         zationPolicy must be in the root namespace `ROOT`
 *                         when referencing a GatewayClass"); the class
 *                         exists: bound, "bound to NAME"; else
 *                         "TargetNotFound", "not bound".
 * One binding is the condition as it is; several are flattened: True when
 * any is bound, reason Accepted (all bound, no message), PartiallyInvalid
 * or Invalid, message "Invalid targetRefs: KIND.GROUP:NS/NAME, ...".
 * observedGeneration is the policy's generation, written as istiod's
 * protobuf JSON writes an int64: a string. The status has no controller
 * field to fill (Istio's status is not Gateway API's ancestor status):
 * istiod's writes are told apart only by their server-side-apply field
 * manager; ours by being a read-modify-write of our condition type alone.
 *
 *   Service NS/NAME       bound to a waypoint: bound, "bound to WPNS/WPNAME";
 *                         not bound: "AncestorNotBound", "Service NS/NAME is
 *                         not bound to a waypoint"; absent:
 *                         "TargetNotFound", "Service NS/NAME was not found".
 *
 * A policy bound here that cannot be used as written (a rule or the policy
 * unreadable: the data path then fails closed on it) is reported False,
 * reason "Invalid", with the first problem as the message: istiod's webhook
 * refuses such objects, so it never has to; an appliance that enforces them
 * fail-closed says so where the operator looks.
 *
 * Only the targetRefs that concern this appliance are judged: a Gateway it
 * owns (the Gateway status writer's rule), its own GatewayClass, a Service
 * the published snapshot binds to such a Gateway (enrollment is the
 * resolver's: the control plane hands the writer each published snapshot's
 * rows), and, for a policy whose condition it wrote before, a Gateway,
 * class or Service binding that has since gone (False, as istiod writes
 * it). ServiceEntry targetRefs, and Gateways that are istiod's (and
 * Services bound to them), are istiod's to report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"
#include "wp/model.h"

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

struct binding {
	bool bound;
	const char *reason;
	char message[600];
	char ancestor[600];
};

/* Whether class is one of this appliance's GatewayClasses. */
static bool class_ours(const struct wp_kube_authz_view *v, const char *name, json_t *gc)
{
	const char *ctrl = jstr(json_object_get(gc, "spec"), "controllerName");
	const char *served = v->pol->served_class && v->pol->served_class[0] ? v->pol->served_class
	                                                                     : "istio-waypoint";

	if (ctrl && !strcmp(ctrl, v->pol->controller_name))
		return true;
	/* standalone: no istiod; this appliance is the waypoint of its class */
	return v->pol->standalone && !strcmp(name, served);
}

/* Judges one targetRef into *b. false: not this appliance's to judge. */
static bool judge(const struct wp_kube_authz_view *v, json_t *ap, json_t *ref, struct binding *b)
{
	json_t *meta = json_object_get(ap, "metadata");
	const char *pns = jstr(meta, "namespace"), *kind = jstr(ref, "kind");
	const char *name = jstr(ref, "name"), *group = jstr(ref, "group");
	const char *ns = jstr(ref, "namespace");
	const char *root = v->root_ns && v->root_ns[0] ? v->root_ns : "istio-system";
	char key[520];

	if (!kind || !name || !pns)
		return false;
	if (!ns || !ns[0])
		ns = pns;
	snprintf(key, sizeof(key), "%s/%s", ns, name);
	snprintf(b->ancestor, sizeof(b->ancestor), "%s.%s:%s", kind,
	         group && group[0] ? group : "core", key);
	b->bound = false;
	b->reason = "TargetNotFound";
	snprintf(b->message, sizeof(b->message), "not bound");
	if (!strcmp(kind, "Gateway")) {
		json_t *gw = json_object_get(v->gateways, key);
		const char *cls = jstr(json_object_get(gw, "spec"), "gatewayClassName");
		json_t *gc;

		if (!gw)
			return v->was_ours;
		gc = json_object_get(v->classes, cls ? cls : "");
		if (!wp_kube_status_owns(v->pol, gw,
		                         jstr(json_object_get(gc, "spec"), "controllerName")))
			return false;
		b->bound = true;
		b->reason = "Accepted";
		snprintf(b->message, sizeof(b->message), "bound to %s", key);
		return true;
	}
	if (!strcmp(kind, "Service") && (!group || !group[0] || !strcmp(group, "core"))) {
		json_t *row = json_object_get(v->services, key);
		const char *wp = jstr(row, "waypoint");
		json_t *gw = wp ? json_object_get(v->gateways, wp) : NULL;

		if (!v->services)
			return false; /* nothing published yet */
		if (gw && json_is_true(json_object_get(row, "served"))) {
			const char *cls = jstr(json_object_get(gw, "spec"), "gatewayClassName");
			json_t *gc = json_object_get(v->classes, cls ? cls : "");

			if (wp_kube_status_owns(
			            v->pol, gw,
			            jstr(json_object_get(gc, "spec"), "controllerName"))) {
				b->bound = true;
				b->reason = "Accepted";
				snprintf(b->message, sizeof(b->message), "bound to %s", wp);
				return true;
			}
		}
		if (!v->was_ours || wp)
			return false; /* not ours, or bound to a waypoint that is not */
		if (row) {
			b->reason = "AncestorNotBound";
			snprintf(b->message, sizeof(b->message),
			         "Service %s is not bound to a waypoint", key);
		} else {
			snprintf(b->message, sizeof(b->message), "Service %s was not found", key);
		}
		return true;
	}
	if (!strcmp(kind, "GatewayClass")) {
		json_t *gc = json_object_get(v->classes, name);

		if (!gc)
			return v->was_ours;
		if (!class_ours(v, name, gc))
			return false;
		if (strcmp(pns, root)) {
			b->reason = "Invalid";
			snprintf(b->message, sizeof(b->message),
			         "AuthorizationPolicy must be in the root namespace `%s` when "
			         "referencing a GatewayClass",
			         root);
			return true;
		}
		b->bound = true;
		b->reason = "Accepted";
		snprintf(b->message, sizeof(b->message), "bound to %s", name);
		return true;
	}
	return false;
}

/* spec.targetRefs, or the older single spec.targetRef, as an array
 * (borrowed or new: *owned tells). */
static json_t *target_refs(json_t *ap, bool *owned)
{
	json_t *spec = json_object_get(ap, "spec"), *refs = json_object_get(spec, "targetRefs");
	json_t *one = json_object_get(spec, "targetRef");

	*owned = false;
	if (json_is_array(refs) && json_array_size(refs))
		return refs;
	if (json_is_object(one)) {
		*owned = true;
		return json_pack("[O]", one);
	}
	return NULL;
}

/* The first problem that makes policy ap unusable as written (copied into
 * out), or false when it reads whole. */
static bool policy_problem(json_t *ap, char *out, size_t len)
{
	json_t *c = json_copy(ap); /* list items may come without their kind */
	char *txt, err[256];
	struct wp_obj *o;
	const char *why = NULL;

	if (!c)
		return false;
	json_object_set_new(c, "apiVersion", json_string("security.istio.io/v1"));
	json_object_set_new(c, "kind", json_string("AuthorizationPolicy"));
	txt = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	o = txt ? wp_model_parse_one(txt, strlen(txt), "status", err, sizeof(err)) : NULL;
	free(txt);
	if (!o)
		return false;
	if (o->kind == WP_KIND_AUTHORIZATIONPOLICY) {
		why = o->u.authz.invalid;
		for (uint32_t i = 0; !why && i < o->u.authz.n_rules; i++)
			why = o->u.authz.rules[i].invalid;
	}
	if (why) {
		/* "ORIGIN:LINE: " locates the text we serialized: not the operator's */
		const char *p = strstr(why, ": ");

		snprintf(out, len, "%s", p && !strncmp(why, "status:", 7) ? p + 2 : why);
	}
	wp_obj_free(o);
	return why != NULL;
}

json_t *wp_kube_authz_condition(const struct wp_kube_authz_view *v, json_t *ap)
{
	struct binding b[16];
	json_int_t gen =
	        json_integer_value(json_object_get(json_object_get(ap, "metadata"), "generation"));
	unsigned n = 0, n_bound = 0;
	bool owned;
	json_t *refs = target_refs(ap, &owned), *ref, *c;
	char gens[32], msg[2048] = "";
	const char *reason;
	size_t i, off = 0;

	json_array_foreach(refs, i, ref)
	{
		if (n < 16 && judge(v, ap, ref, &b[n]))
			n_bound += b[n++].bound;
	}
	if (owned)
		json_decref(refs);
	if (!n)
		return NULL;
	snprintf(gens, sizeof(gens), "%lld", (long long)(gen ? gen : 1));
	if (n == 1) {
		reason = b[0].reason;
		snprintf(msg, sizeof(msg), "%s", b[0].message);
	} else {
		reason = n_bound == n ? "Accepted" : n_bound ? "PartiallyInvalid" : "Invalid";
		for (unsigned k = 0; k < n && off < sizeof(msg); k++)
			if (!b[k].bound)
				off += (size_t)snprintf(
				        msg + off, sizeof(msg) - off, "%s%s",
				        off ? ", " : "Invalid targetRefs: ", b[k].ancestor);
	}
	if (n_bound && policy_problem(ap, msg, sizeof(msg))) {
		n_bound = 0;
		reason = "Invalid";
	}
	c = json_pack("{s:s, s:s, s:s, s:s}", "type", "WaypointAccepted", "status",
	              n_bound ? "True" : "False", "reason", reason, "observedGeneration", gens);
	/* istiod's protobuf JSON leaves an empty message out */
	if (c && msg[0])
		json_object_set_new(c, "message", json_string(msg));
	return c;
}

json_t *wp_kube_authz_status_desired(const struct wp_kube_authz_view *v, json_t *ap,
                                     const char *now)
{
	json_t *cur = json_object_get(ap, "status");
	json_t *want = wp_kube_authz_condition(v, ap), *st, *conds, *c;
	const char *ltt = now;
	bool placed = false;
	size_t i;

	if (!want)
		return NULL;
	st = json_is_object(cur) ? json_deep_copy(cur) : json_object();
	conds = json_array();
	/* the transition time stays while the status does */
	json_array_foreach(json_object_get(cur, "conditions"), i, c)
	{
		const char *t = jstr(c, "type");

		if (!t || strcmp(t, "WaypointAccepted")) {
			json_array_append(conds, c);
			continue;
		}
		if (jstr(c, "status") && !strcmp(jstr(c, "status"), jstr(want, "status")) &&
		    jstr(c, "lastTransitionTime"))
			ltt = jstr(c, "lastTransitionTime");
		if (!placed) {
			json_array_append(conds, want); /* in its place */
			placed = true;
		}
	}
	if (!placed)
		json_array_append(conds, want);
	json_object_set_new(want, "lastTransitionTime", json_string(ltt));
	json_decref(want);
	json_object_set_new(st, "conditions", conds);
	return st;
}

bool wp_kube_authz_refers(json_t *ap, const char *kind, const char *ns, const char *name)
{
	const char *pns = jstr(json_object_get(ap, "metadata"), "namespace");
	bool owned, hit = false;
	json_t *refs = target_refs(ap, &owned), *ref;
	size_t i;

	json_array_foreach(refs, i, ref)
	{
		const char *k = jstr(ref, "kind"), *n = jstr(ref, "name"),
		           *rns = jstr(ref, "namespace");

		if (!rns || !rns[0])
			rns = pns;
		if (k && n && !strcmp(k, kind) && !strcmp(n, name) &&
		    (!ns || (rns && !strcmp(rns, ns))))
			hit = true;
	}
	if (owned)
		json_decref(refs);
	return hit;
}

bool wp_kube_authz_refers_any(json_t *ap)
{
	bool owned, hit = false;
	json_t *refs = target_refs(ap, &owned), *ref;
	size_t i;

	json_array_foreach(refs, i, ref)
	{
		const char *k = jstr(ref, "kind");

		if (k &&
		    (!strcmp(k, "Gateway") || !strcmp(k, "GatewayClass") || !strcmp(k, "Service")))
			hit = true;
	}
	if (owned)
		json_decref(refs);
	return hit;
}

bool wp_kube_authz_services_changed(json_t *ap, json_t *before, json_t *now)
{
	const char *pns = jstr(json_object_get(ap, "metadata"), "namespace");
	bool owned, changed = false;
	json_t *refs = target_refs(ap, &owned), *ref;
	size_t i;

	json_array_foreach(refs, i, ref)
	{
		const char *k = jstr(ref, "kind"), *n = jstr(ref, "name"),
		           *rns = jstr(ref, "namespace");
		char key[520];

		if (!k || strcmp(k, "Service") || !n)
			continue;
		snprintf(key, sizeof(key), "%s/%s", rns && rns[0] ? rns : pns ? pns : "", n);
		if (!before || !json_equal(json_object_get(before, key), json_object_get(now, key)))
			changed = true;
	}
	if (owned)
		json_decref(refs);
	return changed;
}
