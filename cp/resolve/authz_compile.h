/*
 * Authorization compilation (control plane): the AuthorizationPolicies that
 * attach to one target behind one waypoint -> one immutable
 * struct wp_authz_table (wp/authz.h) that lib/authz.c evaluates.
 *
 * Attachment (Istio waypoints, security.istio.io/v1): targetRefs to the
 * waypoint's Gateway (all its traffic), to its GatewayClass for a policy in
 * the root namespace, to the destination Service or ServiceEntry (traffic to
 * it). Policies with a selector, or with neither selector nor targetRefs,
 * are for ztunnel and sidecars: they never apply here and are listed in
 * table->ignored with the reason, as are dry-run policies (not enforced).
 *
 * Fail closed: a policy that could not be read (rule.invalid /
 * authz.invalid from the model, with file:line) is listed in table->errors;
 * a DENY, AUDIT or CUSTOM one then matches every request of the target, an
 * ALLOW rule that could not be read matches nothing.
 */
#ifndef WP_CP_AUTHZ_COMPILE_H
#define WP_CP_AUTHZ_COMPILE_H

#include <stdint.h>

#include "wp/authz.h"
#include "wp/model_types.h"

enum wp_authz_dest_kind {
	WP_AUTHZ_DEST_NONE = 0, /* a workload address: Gateway-level policies only */
	WP_AUTHZ_DEST_SERVICE,
	WP_AUTHZ_DEST_SERVICEENTRY,
};

struct wp_authz_compile_in {
	const char *root_ns;      /* NULL: istio-system */
	const char *trust_domain; /* NULL: cluster.local */
	uint32_t n_aliases;       /* trust domain aliases */
	const char *const *aliases;
	const char *gw_ns; /* the waypoint Gateway and its GatewayClass */
	const char *gw_name;
	const char *gw_class;
	uint8_t dest_kind; /* enum wp_authz_dest_kind */
	const char *dest_ns;
	const char *dest_name;
	uint32_t n_policies; /* every AuthorizationPolicy object */
	const struct wp_obj *const *policies;
	/* may be NULL (no sharing); starts zeroed, must outlive the tables
	 * built with it, and is empty again once they are all freed */
	struct wp_authz_db_cache *cache;
};

/*
 * Builds the table. Returns it (free with wp_authz_table_free()) or NULL
 * with errno ENOMEM. A Hyperscan failure does not fail the build: the table
 * is marked broken (every request denied) with the reason in errors.
 * The table copies what it keeps: the policy objects may go before it.
 */
struct wp_authz_table *wp_authz_compile(const struct wp_authz_compile_in *in);

void wp_authz_table_free(struct wp_authz_table *t);

#endif /* WP_CP_AUTHZ_COMPILE_H */
