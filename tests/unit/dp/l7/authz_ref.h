/*
 * The reference authorization evaluator: Istio's AuthorizationPolicy
 * semantics written straight from the model (struct wp_k8s_authz), one
 * policy and one value at a time, no Hyperscan, no precomputation but the
 * list of policies that attach. It is the oracle the compiled engine
 * (wp/authz.h) is checked against (differential test, fuzzer) and the
 * linear walk the benchmark compares it with. Shares no code with the
 * engine beyond the model types.
 */
#ifndef WP_TESTS_AUTHZ_REF_H
#define WP_TESTS_AUTHZ_REF_H

#include "authz_compile.h"
#include "wp/authz.h"

struct authz_ref {
	const struct wp_authz_compile_in *in;
	uint32_t n;
	const struct wp_obj **applied; /* sorted by namespace/name */
};

/* Selects the policies of in that apply to its target. 0 or -ENOMEM. */
int authz_ref_init(struct authz_ref *r, const struct wp_authz_compile_in *in);
void authz_ref_fini(struct authz_ref *r);

void authz_ref_eval(const struct authz_ref *r, const struct wp_authz_req *q,
                    struct wp_authz_decision *d);

#endif /* WP_TESTS_AUTHZ_REF_H */
