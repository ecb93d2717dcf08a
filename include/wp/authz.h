/*
 * Authorization (Istio AuthorizationPolicy on a waypoint): the compiled
 * per-target table and the evaluator.
 *
 * The control plane (cp/resolve/authz_compile.c) compiles the policies that
 * attach to one target (a destination Service or ServiceEntry behind one
 * waypoint) into an immutable struct wp_authz_table:
 *   - every string matcher of one request field (principal, host, method,
 *     path, SNI, each header name) goes into ONE Hyperscan database, so a
 *     request costs one scan per field whatever the number of policies;
 *     namespaces and service accounts are regexes over the principal, so
 *     they share its database; identical databases are shared between
 *     tables (struct wp_authz_db_cache);
 *   - IP blocks go into per-prefix-length sorted tables, ports into a
 *     sorted table;
 *   - a match sets the bit of every "term" (the OR of the values of one
 *     field of one entry) it belongs to; a rule is a boolean formula over
 *     term bits (negations: notX holds when no value of notX matched);
 *   - each rule is indexed under one or a few "anchor" terms it cannot
 *     match without, so only the rules some anchor fired for are evaluated
 *     (plus the few that have no positive condition at all).
 * The data plane (lib/authz.c) calls wp_authz_eval() with a per-core
 * struct wp_authz_scratch; nothing allocates there.
 *
 * Decision (Istio's order): a matching CUSTOM rule denies (no external
 * authorizer is configured: fail closed); then any matching DENY rule
 * denies; then, if any ALLOW policy applies, one of its rules must match;
 * otherwise the request is allowed. AUDIT rules only set `audited`.
 */
#ifndef WP_AUTHZ_H
#define WP_AUTHZ_H

#include <stdbool.h>
#include <stdint.h>

#include "wp/addr_types.h"
#include "wp/arena.h"
#include "wp/common.h"
#include "wp/hash.h"
#include "wp/model_types.h"

struct hs_database;
struct hs_scratch;

enum wp_authz_reason {
	WP_AUTHZ_R_NO_POLICY = 0,  /* allowed: no ALLOW policy applies, nothing denied */
	WP_AUTHZ_R_ALLOW_MATCH,    /* allowed by an ALLOW rule */
	WP_AUTHZ_R_DENY_MATCH,     /* denied by a DENY rule */
	WP_AUTHZ_R_DENY_INVALID,   /* denied by a DENY policy that could not be compiled */
	WP_AUTHZ_R_CUSTOM,         /* denied: a CUSTOM rule matched, no external authorizer */
	WP_AUTHZ_R_NO_ALLOW_MATCH, /* denied: ALLOW policies apply and none matched */
	WP_AUTHZ_R_TABLE_ERROR,    /* denied: the table could not be built */
};

/* "no_policy", "allow_match", ... */
const char *wp_authz_reason_name(enum wp_authz_reason r);

struct wp_authz_decision {
	bool allowed;
	bool audited;
	uint8_t reason;   /* enum wp_authz_reason */
	const char *ns;   /* the deciding policy (NULL for NO_POLICY, NO_ALLOW_MATCH, */
	const char *name; /* TABLE_ERROR) */
	int32_t rule;     /* rule index in it; -1: the policy as a whole */
};

/* Returns the value of request header <name> (lower-case), several fields
 * joined with ",", or NULL when absent. */
typedef const char *(*wp_authz_header_cb)(void *ctx, const char *name, uint32_t name_len,
                                          uint32_t *value_len);

/* What a decision looks at. Strings are not NUL-terminated; NULL = absent. */
struct wp_authz_req {
	const char *principal; /* mTLS peer identity without spiffe:// ("td/ns/x/sa/y") */
	uint32_t principal_len;
	struct wp_addr src_ip;    /* source.ip / ipBlocks */
	struct wp_addr remote_ip; /* remote.ip / remoteIpBlocks (original client) */
	struct wp_addr dst_ip;    /* destination.ip */
	uint16_t dst_port;        /* ports / destination.port */
	bool is_http;             /* false: opaque TCP (HTTP fields handled as Istio does) */
	const char *host;         /* :authority as received (port kept; values
	                           * match it with or without the port) */
	uint32_t host_len;
	const char *method;
	uint32_t method_len;
	const char *path; /* normalized (wp/path_norm.h), without the query */
	uint32_t path_len;
	const char *sni;
	uint32_t sni_len;
	wp_authz_header_cb header; /* may be NULL: no headers */
	void *header_ctx;
};

/* Hosts match with or without the port: the length of host[0..len) without
 * a trailing ":<digits>" (an IPv6 literal keeps its brackets), or len. */
static inline uint32_t wp_authz_host_len(const char *host, uint32_t len)
{
	uint32_t i = len;

	while (i > 0 && host[i - 1] >= '0' && host[i - 1] <= '9')
		i--;
	if (i == len || i < 2 || host[i - 1] != ':')
		return len;
	i--; /* the colon */
	if (host[0] == '[')
		return host[i - 1] == ']' ? i : len;
	for (uint32_t k = 0; k < i; k++)
		if (host[k] == ':')
			return len; /* a bare IPv6 address: no port */
	return i;
}

/* ---- compiled table (built by cp/resolve/authz_compile.c) ---------------- */

enum wp_authz_field_kind {
	WP_AUTHZ_F_PRINCIPAL = 0, /* principals, namespaces, service accounts */
	WP_AUTHZ_F_HOST,
	WP_AUTHZ_F_METHOD,
	WP_AUTHZ_F_PATH,
	WP_AUTHZ_F_SNI,
	WP_AUTHZ_F_HEADER, /* one per header name */
	WP_AUTHZ_F_SRC_IP,
	WP_AUTHZ_F_REMOTE_IP,
	WP_AUTHZ_F_DST_IP,
	WP_AUTHZ_F_PORT,
	WP_AUTHZ_F_NONE, /* JWT attributes: never set (no RequestAuthentication) */
};

/* A Hyperscan database, shared by every table with the same pattern set. */
struct wp_authz_db {
	struct hs_database *hs;
	uint64_t hash;
	uint32_t refs;
	size_t blob_len;
	char *blob; /* the pattern set, for exact comparison */
	struct wp_authz_db_cache *cache;
	struct wp_authz_db *next;
};

/* Control-plane cache of databases; must outlive the tables built with it. */
struct wp_authz_db_cache {
	struct wp_authz_db *head;
	uint32_t n; /* databases alive */
};

/* What a pattern's match must also satisfy (patterns carry no end anchor:
 * Hyperscan serves those much slower than plain literals). */
enum wp_authz_check {
	WP_AUTHZ_CHECK_NONE = 0,
	WP_AUTHZ_CHECK_END, /* the match ends at the end of the value */
	WP_AUTHZ_CHECK_SA,  /* ends at the end, or at a '/' followed by more */
};

/* An exact, case-sensitive value of a string field, kept out of its
 * Hyperscan database: one hash probe finds it however many there are
 * (a field's principals are mostly such values). */
struct wp_authz_exact {
	uint64_t hash; /* wp_authz_exact_hash(s, len) */
	const char *s; /* NULL: empty slot */
	uint32_t len;
	uint32_t pat; /* the pattern it stands for */
};

static inline uint64_t wp_authz_exact_hash(const char *s, uint32_t len)
{
	return wp_hash_bytes(0x9e3779b97f4a7c15ULL ^ len, s, len);
}

/* A string field scanned with one database. Pattern p sets the terms
 * terms[off[p] .. off[p+1]) when its match passes check[p]; present[] are
 * set when the field is present (host, method, header: value "*") or
 * non-empty (principal, path, SNI). */
struct wp_authz_sfield {
	uint8_t kind;     /* enum wp_authz_field_kind */
	const char *name; /* HEADER: lower-case name */
	uint32_t name_len;
	struct wp_authz_db *db; /* NULL: presence terms only */
	uint32_t n_pats;
	const uint32_t *off;
	const uint32_t *terms;
	const uint8_t *check; /* enum wp_authz_check */
	uint32_t n_present;
	const uint32_t *present;
	/* its exact values (patterns not in db): exact_mask + 1 slots, a
	 * power of two, or exact NULL */
	const struct wp_authz_exact *exact;
	uint32_t exact_mask;
};

/* Addresses as 128-bit keys (IPv4 in the low 32 bits, host order). */
struct wp_authz_key128 {
	uint64_t hi, lo;
};

/* All blocks of one length and family, sorted by key; block i sets
 * terms[off[i] .. off[i+1]). */
struct wp_authz_iplen {
	uint8_t family;
	uint8_t len;
	uint32_t n;
	const struct wp_authz_key128 *keys;
	const uint32_t *off;
	const uint32_t *terms;
};

struct wp_authz_ipfield {
	uint32_t n_lens;
	const struct wp_authz_iplen *lens;
};

struct wp_authz_portfield {
	uint32_t n;
	const uint16_t *ports; /* sorted, distinct */
	const uint32_t *off;
	const uint32_t *terms;
};

/* One condition of a rule: term bit != neg, or true when http_only and the
 * request is not HTTP (Istio drops HTTP-only fields of DENY / AUDIT / CUSTOM
 * rules on TCP; ALLOW rules with one never match TCP: WP_AUTHZ_CR_TCP_VOID). */
struct wp_authz_conj {
	uint32_t term;
	uint8_t neg;
	uint8_t http_only;
};

/* entry: conj[first .. first+n) all true; group: any of its entries. */
struct wp_authz_span {
	uint32_t first;
	uint32_t n;
};

#define WP_AUTHZ_CR_TCP_VOID 0x1 /* ALLOW rule with an HTTP-only field */
#define WP_AUTHZ_CR_INVALID  0x2 /* stands for a policy that failed to compile */

/* A compiled rule: all of its groups hold. Rules are numbered in decision
 * precedence (policies by namespace/name, then rule order). */
struct wp_authz_crule {
	uint32_t first_group;
	uint32_t n_groups;
	uint32_t policy; /* index into table->policies */
	int32_t index;   /* rule index in the policy; -1: the whole policy */
	uint8_t action;  /* enum wp_authz_action */
	uint8_t flags;   /* WP_AUTHZ_CR_* */
};

/* An applied policy. */
struct wp_authz_pinfo {
	const char *ns, *name;
	const char *attach; /* "Gateway", "GatewayClass", "Service", "ServiceEntry" */
	uint8_t action;     /* enum wp_authz_action */
	uint32_t n_rules;   /* compiled rules (an ALLOW may have none) */
};

/* A policy near this target that does not apply, and why. */
struct wp_authz_ignored {
	const char *ns, *name;
	const char *why;
};

struct wp_authz_table {
	uint32_t n_policies;
	const struct wp_authz_pinfo *policies;
	uint32_t n_ignored;
	const struct wp_authz_ignored *ignored;
	uint32_t n_errors;
	const char *const *errors; /* "ORIGIN:LINE: ...: problem" */
	bool has_allow;            /* some ALLOW policy applies */
	bool broken;               /* could not be built: every request is denied */

	uint32_t n_rules;
	const struct wp_authz_crule *rules;
	const struct wp_authz_span *groups;  /* entry ranges */
	const struct wp_authz_span *entries; /* conj ranges */
	const struct wp_authz_conj *conjs;
	uint32_t n_terms;

	uint32_t n_sfields;
	const struct wp_authz_sfield *sfields;
	struct wp_authz_ipfield ip[3]; /* SRC_IP, REMOTE_IP, DST_IP */
	struct wp_authz_portfield port;

	/* [0] HTTP requests, [1] TCP: rules anchored on term t are
	 * anchor_rules[m][anchor_off[m][t] .. anchor_off[m][t+1]); always[m]
	 * are evaluated on every request of that kind. */
	const uint32_t *anchor_off[2];
	const uint32_t *anchor_rules[2];
	uint32_t n_always[2];
	const uint32_t *always[2];

	struct wp_arena arena; /* owns everything above but the databases */
	struct wp_authz_db **dbs;
	uint32_t n_dbs;
};

/* ---- evaluation (lib/authz.c) ------------------------------------------ */

/* Per-core state of one decision. Zero it, reserve it for every table the
 * core may see (control plane, when a snapshot is built), then use it from
 * that core only. */
struct wp_authz_scratch {
	struct hs_scratch *hs;
	uint64_t *bits; /* term bitmap, all zero between decisions */
	uint32_t n_words;
	uint32_t *touched; /* words of bits set during this decision */
	uint32_t *stamp;   /* per rule: gen when queued */
	uint32_t *cand;
	uint32_t n_rules;
	uint32_t gen;
};

/* Grows s to serve t. 0 or -ENOMEM (s still serves what it served). */
int wp_authz_scratch_reserve(struct wp_authz_scratch *s,
                             const struct wp_authz_table *t) WP_MUST_CHECK;

void wp_authz_scratch_fini(struct wp_authz_scratch *s);

/* Decides one request. t NULL means no policy (allowed). Never allocates. */
void wp_authz_eval(const struct wp_authz_table *t, struct wp_authz_scratch *s,
                   const struct wp_authz_req *r, struct wp_authz_decision *d);

#endif /* WP_AUTHZ_H */
