/*
 * The request pipeline's policy stages (see pipeline.h): path
 * normalization and authorization, shared by the HTTP/1.1 proxy, the h2c /
 * gRPC proxy and opaque TCP tunnels; and the one table of the texts their
 * local answers carry (wp_pipe_local_text()).
 */
#include <errno.h>
#include <string.h>

#include "cbreak.h"
#include "fault.h"
#include "pipeline.h"
#include "wp/counters.h"

void wp_pipe_core_init(struct wp_pipe_core *pc, uint64_t *ctr)
{
	memset(pc, 0, sizeof(*pc)); /* no metrics until wp_pipe_core_set_metrics() */
	pc->ctr = ctr;
}

void wp_pipe_core_fini(struct wp_pipe_core *pc)
{
	wp_authz_scratch_fini(&pc->az);
}

void wp_pipe_conn_set_authz(struct wp_pipe_conn *c, const struct wp_authz_table *t)
{
	c->authz = t;
	c->authz_ready = true;
	if (t && c->core && wp_authz_scratch_reserve(&c->core->az, t) != 0) {
		wp_ctr_inc(c->core->ctr, WP_CTR_AUTHZ_SCRATCH_NOMEM);
		c->authz_ready = false;
	}
}

/* Does the target need the normalizer at all? Most paths are plain. */
static bool plain_path(const char *p, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch == '%' || ch == '.' || ch == '\\' || ch == '#' || ch <= 0x20 || ch >= 0x7f ||
		    ch == '"' || ch == '<' || ch == '>' || ch == '^' || ch == '`' || ch == '{' ||
		    ch == '|' || ch == '}')
			return false;
	}
	return true;
}

int wp_pipe_normalize(struct wp_pipe_core *pc, struct wp_route_req *r)
{
	size_t out_len, path_len;
	int rc;

	if (r->target_len == 0 || r->target[0] != '/')
		return 0; /* authority-form (CONNECT) or asterisk-form */
	if (plain_path(r->target, r->path_len) &&
	    !memchr(r->target + r->path_len, '#', r->target_len - r->path_len))
		return 0; /* nothing to do (the query is kept as sent anyway) */
	if (r->target_len > WP_PIPE_TARGET_MAX) {
		wp_ctr_inc(pc->ctr, WP_CTR_L7_PATH_INVALID);
		return -EINVAL;
	}
	rc = wp_path_norm(r->target, r->target_len, pc->norm, sizeof(pc->norm), &out_len,
	                  &path_len);
	if (rc != 0) {
		wp_ctr_inc(pc->ctr, WP_CTR_L7_PATH_INVALID);
		return -EINVAL;
	}
	if (out_len != r->target_len || memcmp(pc->norm, r->target, out_len) != 0)
		wp_ctr_inc(pc->ctr, WP_CTR_L7_PATH_NORMALIZED);
	r->target = pc->norm;
	r->target_len = (uint32_t)out_len;
	r->path_len = (uint32_t)path_len;
	return 0;
}

/* The header lookup a decision makes: every field named <name> (names are
 * lower-case on both sides), joined with "," when there are several. */
struct hdr_view {
	const struct wp_route_req *r;
	struct wp_pipe_core *pc;
};

static const char *hdr_get(void *ctx, const char *name, uint32_t name_len, uint32_t *value_len)
{
	const struct hdr_view *v = ctx;
	const char *first = NULL;
	uint32_t used = 0;
	int n = 0;

	for (uint16_t i = 0; i < v->r->n_hdrs; i++) {
		const struct wp_http_hdr *h = &v->r->hdrs[i];

		if (h->name_len != name_len || memcmp(h->name, name, name_len) != 0)
			continue;
		if (n++ == 0) {
			first = h->value;
			*value_len = h->value_len;
			continue;
		}
		if (n == 2) {
			if (*value_len > sizeof(v->pc->hjoin))
				break; /* the first field alone does not fit: keep it */
			memcpy(v->pc->hjoin, first, *value_len);
			used = *value_len;
			first = v->pc->hjoin;
		}
		if (used + 1 + h->value_len > sizeof(v->pc->hjoin)) {
			wp_ctr_inc(v->pc->ctr, WP_CTR_AUTHZ_HEADER_TRUNCATED);
			break;
		}
		v->pc->hjoin[used++] = ',';
		memcpy(v->pc->hjoin + used, h->value, h->value_len);
		used += h->value_len;
		*value_len = used;
	}
	return first;
}

static void count(uint64_t *ctr, const struct wp_authz_decision *d)
{
	static const uint16_t by_reason[] = {
	        [WP_AUTHZ_R_NO_POLICY] = WP_CTR_AUTHZ_ALLOWED_NO_POLICY,
	        [WP_AUTHZ_R_ALLOW_MATCH] = WP_CTR_AUTHZ_ALLOWED_MATCH,
	        [WP_AUTHZ_R_DENY_MATCH] = WP_CTR_AUTHZ_DENIED_MATCH,
	        [WP_AUTHZ_R_DENY_INVALID] = WP_CTR_AUTHZ_DENIED_INVALID,
	        [WP_AUTHZ_R_CUSTOM] = WP_CTR_AUTHZ_DENIED_CUSTOM,
	        [WP_AUTHZ_R_NO_ALLOW_MATCH] = WP_CTR_AUTHZ_DENIED_NO_ALLOW,
	        [WP_AUTHZ_R_TABLE_ERROR] = WP_CTR_AUTHZ_DENIED_TABLE,
	};

	if (d->reason < WP_ARRAY_SIZE(by_reason))
		wp_ctr_inc(ctr, by_reason[d->reason]);
	if (d->audited)
		wp_ctr_inc(ctr, WP_CTR_AUTHZ_AUDITED);
}

bool wp_pipe_authorize(const struct wp_pipe_conn *c, const struct wp_route_req *r,
                       const char *method, size_t method_len, struct wp_authz_decision *d)
{
	struct wp_authz_req q;
	struct hdr_view hv;

	memset(d, 0, sizeof(*d));
	d->rule = -1;
	if (!c || !c->authz) {
		d->allowed = true; /* nothing applies: WP_AUTHZ_R_NO_POLICY */
		if (c)
			wp_ctr_inc(c->core->ctr, WP_CTR_AUTHZ_ALLOWED_NO_POLICY);
		return true;
	}
	if (!c->authz_ready) { /* the scratch could not grow: fail closed */
		d->reason = WP_AUTHZ_R_TABLE_ERROR;
		count(c->core->ctr, d);
		return false;
	}
	memset(&q, 0, sizeof(q));
	q.principal = c->principal;
	q.principal_len = c->principal_len;
	q.src_ip = c->peer;
	q.remote_ip = c->remote;
	q.dst_ip = c->dst;
	q.dst_port = c->dst_port;
	if (r) {
		q.is_http = true;
		q.method = method;
		q.method_len = (uint32_t)method_len;
		q.path = r->target;
		q.path_len = r->path_len;
		q.host = c->authority;
		q.host_len = c->authority_len;
		for (uint16_t i = 0; i < r->n_hdrs; i++)
			if (r->hdrs[i].name_len == 4 && !memcmp(r->hdrs[i].name, "host", 4)) {
				q.host = r->hdrs[i].value;
				q.host_len = r->hdrs[i].value_len;
				break;
			}
		hv.r = r;
		hv.pc = c->core;
		q.header = hdr_get;
		q.header_ctx = &hv;
	}
	wp_authz_eval(c->authz, &c->core->az, &q, d);
	count(c->core->ctr, d);
	return d->allowed;
}

const char *wp_pipe_local_text(uint16_t status, uint16_t flags)
{
#define RESET_BEFORE_HEADERS "upstream connect error or disconnect/reset before headers. "
#define RESET_REASON(r)                                                                            \
	(flags & WP_PIPE_F(URX) ? RESET_BEFORE_HEADERS "retried and the latest reset reason: " r   \
	                        : RESET_BEFORE_HEADERS "reset reason: " r)
	if (flags & WP_PIPE_F(UO))
		return wp_cb_overflow_body;
	if (flags & WP_PIPE_F(FI))
		return WP_FAULT_ABORT_BODY;
	if (flags & WP_PIPE_F(UH))
		return "no healthy upstream";
	if (flags & WP_PIPE_F(UT))
		return "upstream request timeout";
	if (flags & WP_PIPE_F(UF))
		return RESET_REASON("connection failure");
	if (flags & WP_PIPE_F(UC))
		return RESET_REASON("connection termination");
	if (flags & WP_PIPE_F(UR))
		return RESET_REASON("remote reset");
	if (flags & WP_PIPE_F(NR))
		return "";
	if (status == WP_PIPE_DENIED_STATUS)
		return WP_PIPE_DENIED_BODY;
	return NULL;
#undef RESET_REASON
#undef RESET_BEFORE_HEADERS
}
