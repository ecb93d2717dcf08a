/*
 * The Kubernetes API client: requests over libcurl, JSON via jansson,
 * token-file rotation, paged LIST and streaming WATCH. See cp/kube/kube.h.
 *
 * A watch is one long GET whose chunked body carries one JSON event per
 * line; the curl write callback cuts lines and hands each decoded event to
 * the caller as it arrives, so memory stays bounded by the longest event,
 * and that by max_event (wp_kube_set_limits); a LIST page is held whole, so
 * it is bounded by max_body.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>

#include "client_int.h"
#include "wp/counters.h"
#include "wp/log.h"

const struct wp_kube_resource wp_kube_resources[WP_KUBE_RES_COUNT] = {
        [WP_KUBE_RES_NAMESPACE] = {"", "v1", "Namespace", "namespaces", false},
        [WP_KUBE_RES_SERVICE] = {"", "v1", "Service", "services", true},
        [WP_KUBE_RES_POD] = {"", "v1", "Pod", "pods", true},
        [WP_KUBE_RES_ENDPOINTSLICE] = {"discovery.k8s.io", "v1", "EndpointSlice", "endpointslices",
                                       true},
        [WP_KUBE_RES_GATEWAY] = {"gateway.networking.k8s.io", "v1", "Gateway", "gateways", true},
        [WP_KUBE_RES_GATEWAYCLASS] = {"gateway.networking.k8s.io", "v1", "GatewayClass",
                                      "gatewayclasses", false},
        [WP_KUBE_RES_HTTPROUTE] = {"gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes",
                                   true},
        [WP_KUBE_RES_AUTHORIZATIONPOLICY] = {"security.istio.io", "v1", "AuthorizationPolicy",
                                             "authorizationpolicies", true},
        [WP_KUBE_RES_DESTINATIONRULE] = {"networking.istio.io", "v1", "DestinationRule",
                                         "destinationrules", true},
        [WP_KUBE_RES_SERVICEENTRY] = {"networking.istio.io", "v1", "ServiceEntry", "serviceentries",
                                      true},
        [WP_KUBE_RES_VIRTUALSERVICE] = {"networking.istio.io", "v1", "VirtualService",
                                        "virtualservices", true},
        /* Istio serves telemetry.istio.io/v1 from 1.22, v1alpha1 before */
        [WP_KUBE_RES_TELEMETRY] = {"telemetry.istio.io", "v1", "Telemetry", "telemetries", true,
                                   "v1alpha1"},
};

uint64_t *wp_kube_counters(struct wp_kube *k)
{
	return k->ctr;
}

int wp_kube_path(char *buf, size_t len, const struct wp_kube_resource *res, const char *ns,
                 const char *name, const char *sub)
{
	int n;
	char base[256];

	if (res->group[0])
		n = snprintf(base, sizeof(base), "/apis/%s/%s", res->group, res->version);
	else
		n = snprintf(base, sizeof(base), "/api/%s", res->version);
	if (n < 0 || (size_t)n >= sizeof(base))
		return -ENAMETOOLONG;
	if (res->namespaced && ns)
		n = snprintf(buf, len, "%s/namespaces/%s/%s%s%s%s%s", base, ns, res->plural,
		             name ? "/" : "", name ? name : "", sub ? "/" : "", sub ? sub : "");
	else
		n = snprintf(buf, len, "%s/%s%s%s%s%s", base, res->plural, name ? "/" : "",
		             name ? name : "", sub ? "/" : "", sub ? sub : "");
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return n;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static char *dup_mem(const char *s, size_t n)
{
	char *p;

	if (!s)
		return NULL;
	p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

/* Re-reads the token file when its identity, size or mtime changed (or when
 * force). Returns 0; keeps the old token when the file cannot be read. */
static int token_refresh(struct wp_kube *k, bool force)
{
	struct stat st;
	FILE *f;
	char *buf;
	size_t n;

	if (!k->cfg.token_file)
		return 0;
	if (stat(k->cfg.token_file, &st) != 0)
		return -errno;
	if (!force && k->token && st.st_ino == k->token_ino && st.st_size == k->token_size &&
	    st.st_mtim.tv_sec == k->token_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == k->token_mtime.tv_nsec)
		return 0;
	f = fopen(k->cfg.token_file, "r");
	if (!f)
		return -errno;
	buf = calloc(1, 16384);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(buf, 1, 16383, f);
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = 0;
	if (k->token && strcmp(k->token, buf) != 0)
		wp_ctr_inc(k->ctr, WP_CTR_KUBE_TOKEN_RELOADED);
	free(k->token);
	k->token = buf;
	k->token_ino = st.st_ino;
	k->token_size = st.st_size;
	k->token_mtime = st.st_mtim;
	return 0;
}

struct wp_kube *wp_kube_new(const struct wp_kube_config *cfg)
{
	static int curl_ready;
	struct wp_kube *k;

	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return NULL;
		curl_ready = 1;
	}
	if (!cfg->server)
		return NULL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->timeout = 30;
	k->cfg.server = dup_or_null(cfg->server);
	k->cfg.ca_file = dup_or_null(cfg->ca_file);
	k->cfg.ca_data = dup_mem(cfg->ca_data, cfg->ca_len);
	k->cfg.ca_len = cfg->ca_len;
	k->cfg.cert_file = dup_or_null(cfg->cert_file);
	k->cfg.cert_data = dup_mem(cfg->cert_data, cfg->cert_len);
	k->cfg.cert_len = cfg->cert_len;
	k->cfg.key_file = dup_or_null(cfg->key_file);
	k->cfg.key_data = dup_mem(cfg->key_data, cfg->key_len);
	k->cfg.key_len = cfg->key_len;
	k->cfg.token = dup_or_null(cfg->token);
	k->cfg.token_file = dup_or_null(cfg->token_file);
	k->cfg.namespace = dup_or_null(cfg->namespace);
	k->cfg.insecure = cfg->insecure;
	k->cfg.exec = cfg->exec ? wp_kube_exec_ref(cfg->exec) : NULL;
	k->curl = curl_easy_init();
	if (!k->curl || !k->cfg.server) {
		wp_kube_free(k);
		return NULL;
	}
	if (k->cfg.token)
		k->token = strdup(k->cfg.token);
	else if (token_refresh(k, true) != 0 && !k->cfg.cert_file && !k->cfg.cert_data)
		wp_log(WP_LOG_ERR, "kube: cannot read token file %s\n", k->cfg.token_file);
	return k;
}

void wp_kube_free(struct wp_kube *k)
{
	if (!k)
		return;
	if (k->curl)
		curl_easy_cleanup(k->curl);
	free(k->token);
	wp_kube_cred_clear(&k->cred);
	wp_kube_config_clear(&k->cfg);
	free(k);
}

void wp_kube_set_timeout(struct wp_kube *k, long seconds)
{
	k->timeout = seconds;
}

void wp_kube_set_limits(struct wp_kube *k, size_t max_event, size_t max_body)
{
	k->max_event = max_event;
	k->max_body = max_body;
}

void wp_kube_set_answer_cb(struct wp_kube *k, wp_kube_answer_cb cb, void *arg)
{
	k->answer_cb = cb;
	k->answer_arg = arg;
}

void wp_kube_resp_clear(struct wp_kube_resp *resp)
{
	free(resp->body);
	if (resp->json)
		json_decref(resp->json);
	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
}

const char *wp_kube_resp_message(const struct wp_kube_resp *resp)
{
	const char *m;

	if (resp->status == 0)
		return resp->error;
	if (resp->json && (m = json_string_value(json_object_get(resp->json, "message"))))
		return m;
	return resp->body ? resp->body : "";
}

static int buf_add(struct wp_kube_buf *b, const char *p, size_t n)
{
	if (b->max && n > b->max - b->len) {
		b->over = true;
		return -EMSGSIZE;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *q;

		while (cap < b->len + n + 1)
			cap *= 2;
		q = realloc(b->p, cap);
		if (!q)
			return -ENOMEM;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
	return 0;
}

static size_t body_cb(char *p, size_t sz, size_t nm, void *arg)
{
	struct wp_kube_buf *b = arg;

	if (buf_add(b, p, sz * nm) != 0)
		return 0;
	return sz * nm;
}

/* What the header callback fills in for one request. */
struct hdr_ctx {
	struct wp_kube *k;
	long retry_after;
};

static size_t header_cb(char *p, size_t sz, size_t nm, void *arg)
{
	struct hdr_ctx *h = arg;
	size_t n = sz * nm;

	if (n > 12 && !strncasecmp(p, "Retry-After:", 12))
		h->retry_after = strtol(p + 12, NULL, 10);
	else if (n > 9 && !strncmp(p, "HTTP/", 5) && h->k->answer_cb) {
		/* A status line ("HTTP/1.1 200 OK"): the server answered. */
		const char *sp = memchr(p, ' ', n);

		if (sp && sp + 4 <= p + n)
			h->k->answer_cb(h->k->answer_arg, strtol(sp + 1, NULL, 10));
	}
	return n;
}

/*
 * With an exec plugin: makes k->token / k->cred current before a request.
 * The plugin runs (through the shared cache) when k holds no credential, it
 * expired, or rejected (a 401) says the server refused the one k holds.
 * Returns 0, or <0 with the message in err.
 */
static int cred_ensure(struct wp_kube *k, bool rejected, char *err, size_t errlen)
{
	struct wp_kube_cred fresh;
	int ret;

	if (!k->cfg.exec)
		return 0;
	if (!rejected && k->cred.gen && !wp_kube_cred_expired(&k->cred, time(NULL)))
		return 0;
	ret = wp_kube_exec_credential(k->cfg.exec, rejected ? k->cred.gen : 0, &fresh, err, errlen);
	k->cred_failed = ret < 0;
	if (ret < 0) {
		wp_ctr_inc(k->ctr, WP_CTR_KUBE_EXEC_FAILED);
		return ret;
	}
	if (ret > 0)
		wp_ctr_inc(k->ctr, WP_CTR_KUBE_EXEC_RUN);
	wp_kube_cred_clear(&k->cred);
	k->cred = fresh;
	free(k->token);
	k->token = dup_or_null(k->cred.token);
	return 0;
}

/* Sets up the handle for one request: URL, TLS, auth. */
static int prepare(struct wp_kube *k, const char *method, const char *path,
                   struct curl_slist **hdrs, const char *content_type)
{
	CURL *c = k->curl;
	char *url;
	char line[16400];

	curl_easy_reset(c);
	token_refresh(k, false);
	if (asprintf(&url, "%s%s", k->cfg.server, path) < 0)
		return -ENOMEM;
	curl_easy_setopt(c, CURLOPT_URL, url);
	free(url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "waypointd/" WP_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
	if (k->cfg.ca_data) {
		struct curl_blob blob = {k->cfg.ca_data, k->cfg.ca_len, CURL_BLOB_COPY};
		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
	} else if (k->cfg.ca_file) {
		curl_easy_setopt(c, CURLOPT_CAINFO, k->cfg.ca_file);
	}
	if (k->cred.cert_data) {
		struct curl_blob blob = {k->cred.cert_data, k->cred.cert_len, CURL_BLOB_COPY};
		struct curl_blob key = {k->cred.key_data, k->cred.key_len, CURL_BLOB_COPY};

		curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &blob);
		curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key);
		curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (k->cfg.cert_data) {
		struct curl_blob blob = {k->cfg.cert_data, k->cfg.cert_len, CURL_BLOB_COPY};
		curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &blob);
		curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
	} else if (k->cfg.cert_file) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, k->cfg.cert_file);
	}
	if (k->cfg.key_data) {
		struct curl_blob blob = {k->cfg.key_data, k->cfg.key_len, CURL_BLOB_COPY};
		curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &blob);
		curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (k->cfg.key_file) {
		curl_easy_setopt(c, CURLOPT_SSLKEY, k->cfg.key_file);
	}
	if (k->cfg.insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	*hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (k->token && k->token[0]) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", k->token);
		*hdrs = curl_slist_append(*hdrs, line);
	}
	if (content_type) {
		snprintf(line, sizeof(line), "Content-Type: %s", content_type);
		*hdrs = curl_slist_append(*hdrs, line);
	}
	/* No "Expect: 100-continue" round trip. */
	*hdrs = curl_slist_append(*hdrs, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
	return 0;
}

static void count_status(struct wp_kube *k, long status)
{
	if (status == 429 || status >= 500)
		wp_ctr_inc(k->ctr, WP_CTR_KUBE_HTTP_RETRYABLE);
	else if (status == 401 || status == 403)
		wp_ctr_inc(k->ctr, WP_CTR_KUBE_HTTP_UNAUTHORIZED);
}

static int request_once(struct wp_kube *k, const char *method, const char *path,
                        const char *content_type, const char *body, size_t len,
                        struct wp_kube_resp *resp)
{
	struct curl_slist *hdrs = NULL;
	struct wp_kube_buf b = {.max = k->max_body};
	struct hdr_ctx h = {.k = k, .retry_after = -1};
	CURLcode rc;
	int ret;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	if (cred_ensure(k, false, resp->error, sizeof(resp->error)) != 0)
		return -EIO;
	ret = prepare(k, method, path, &hdrs, content_type);
	if (ret)
		return ret;
	if (body) {
		curl_easy_setopt(k->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(k->curl, CURLOPT_POSTFIELDSIZE, (long)len);
	}
	curl_easy_setopt(k->curl, CURLOPT_TIMEOUT, k->timeout);
	curl_easy_setopt(k->curl, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(k->curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(k->curl, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(k->curl, CURLOPT_HEADERDATA, &h);
	rc = curl_easy_perform(k->curl);
	curl_slist_free_all(hdrs);
	resp->retry_after = h.retry_after;
	if (b.over) {
		/* Refused by our own bound, not a transport failure. */
		curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &resp->status);
		snprintf(resp->error, sizeof(resp->error), "%s%s: answer longer than %zu bytes",
		         k->cfg.server, path, b.max);
		free(b.p);
		wp_ctr_inc(k->ctr, WP_CTR_KUBE_BODY_TOO_BIG);
		return -EMSGSIZE;
	}
	if (rc != CURLE_OK) {
		snprintf(resp->error, sizeof(resp->error), "%s%s: %s", k->cfg.server, path,
		         curl_easy_strerror(rc));
		free(b.p);
		wp_ctr_inc(k->ctr, WP_CTR_KUBE_TRANSPORT_ERROR);
		return -EIO;
	}
	curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &resp->status);
	resp->body = b.p ? b.p : strdup("");
	resp->len = b.len;
	resp->json = json_loadb(resp->body, resp->len, 0, NULL);
	count_status(k, resp->status);
	return 0;
}

int wp_kube_request(struct wp_kube *k, const char *method, const char *path,
                    const char *content_type, const char *body, size_t len,
                    struct wp_kube_resp *resp)
{
	int ret = request_once(k, method, path, content_type, body, len, resp);

	if (ret == 0 && resp->status == 401 && (k->cfg.token_file || k->cfg.exec)) {
		/* The token may have rotated between our stat and the server's
		 * check (or the plugin's credential been revoked): re-read it
		 * unconditionally and try once more. */
		token_refresh(k, true);
		wp_kube_resp_clear(resp);
		if (cred_ensure(k, true, resp->error, sizeof(resp->error)) != 0)
			return -EIO;
		ret = request_once(k, method, path, content_type, body, len, resp);
	}
	return ret;
}

int wp_kube_get(struct wp_kube *k, const char *path, struct wp_kube_resp *resp)
{
	return wp_kube_request(k, "GET", path, NULL, NULL, 0, resp);
}

int wp_kube_patch(struct wp_kube *k, const char *path, enum wp_kube_patch type,
                  const char *field_manager, bool force, const char *body,
                  struct wp_kube_resp *resp)
{
	static const char *const ctypes[] = {
	        [WP_KUBE_PATCH_MERGE] = "application/merge-patch+json",
	        [WP_KUBE_PATCH_STRATEGIC] = "application/strategic-merge-patch+json",
	        [WP_KUBE_PATCH_APPLY] = "application/apply-patch+yaml",
	};
	char full[1024];
	int n;

	if (type == WP_KUBE_PATCH_APPLY && !field_manager)
		return -EINVAL;
	if (field_manager) {
		char *esc = curl_easy_escape(NULL, field_manager, 0);
		n = snprintf(full, sizeof(full), "%s%sfieldManager=%s%s", path,
		             strchr(path, '?') ? "&" : "?", esc ? esc : "",
		             force ? "&force=true" : "");
		curl_free(esc);
	} else {
		n = snprintf(full, sizeof(full), "%s", path);
	}
	if (n < 0 || (size_t)n >= sizeof(full))
		return -ENAMETOOLONG;
	return wp_kube_request(k, "PATCH", full, ctypes[type], body, strlen(body), resp);
}

int wp_kube_delete(struct wp_kube *k, const char *path, struct wp_kube_resp *resp)
{
	return wp_kube_request(k, "DELETE", path, NULL, NULL, 0, resp);
}

static int status_to_errno(long status)
{
	if (status == 410)
		return -ESTALE;
	if (status == 429 || status >= 500)
		return -EAGAIN;
	if (status == 401 || status == 403)
		return -EACCES;
	if (status == 404)
		return -ENOENT; /* the resource type is not served */
	return -EPROTO;
}

int wp_kube_list(struct wp_kube *k, const char *path, const char *label_selector, unsigned limit,
                 wp_kube_item_cb cb, void *arg, char *rv, size_t rvlen, long *retry_after)
{
	char *cont = NULL;
	char *sel = NULL;
	int ret = 0;

	if (label_selector && label_selector[0])
		sel = curl_easy_escape(NULL, label_selector, 0);
	for (;;) {
		struct wp_kube_resp resp;
		char *url, *esc = NULL;
		json_t *items, *meta, *item;
		const char *c, *r;
		size_t i;

		if (cont)
			esc = curl_easy_escape(NULL, cont, 0);
		if (asprintf(&url, "%s?limit=%u%s%s%s%s", path, limit, sel ? "&labelSelector=" : "",
		             sel ? sel : "", esc ? "&continue=" : "", esc ? esc : "") < 0) {
			curl_free(esc);
			ret = -ENOMEM;
			break;
		}
		curl_free(esc);
		ret = wp_kube_get(k, url, &resp);
		free(url);
		if (ret) {
			/* The source has no answer to show: say why here. */
			if (k->cred_failed)
				wp_log(WP_LOG_WARNING, "kube: %s\n", resp.error);
			wp_kube_resp_clear(&resp);
			break;
		}
		if (resp.status != 200 || !json_is_object(resp.json)) {
			ret = resp.status == 200 ? -EPROTO : status_to_errno(resp.status);
			if (ret == -ESTALE)
				wp_ctr_inc(k->ctr, WP_CTR_KUBE_WATCH_EXPIRED);
			if (retry_after)
				*retry_after = resp.retry_after;
			wp_kube_resp_clear(&resp);
			break;
		}
		items = json_object_get(resp.json, "items");
		json_array_foreach(items, i, item)
		{
			ret = cb(arg, item);
			if (ret)
				break;
		}
		meta = json_object_get(resp.json, "metadata");
		r = json_string_value(json_object_get(meta, "resourceVersion"));
		c = json_string_value(json_object_get(meta, "continue"));
		if (!ret && rv && r)
			snprintf(rv, rvlen, "%s", r);
		free(cont);
		cont = (!ret && c && c[0]) ? strdup(c) : NULL;
		wp_kube_resp_clear(&resp);
		if (ret || !cont)
			break;
	}
	free(cont);
	curl_free(sel);
	return ret;
}

void wp_kube_event_clear(struct wp_kube_event *ev)
{
	if (ev->object)
		json_decref(ev->object);
	memset(ev, 0, sizeof(*ev));
}

int wp_kube_event_parse(const char *line, size_t len, struct wp_kube_event *ev)
{
	static const struct {
		const char *name;
		enum wp_kube_event_type type;
	} types[] = {
	        {"ADDED", WP_KUBE_EV_ADDED},     {"MODIFIED", WP_KUBE_EV_MODIFIED},
	        {"DELETED", WP_KUBE_EV_DELETED}, {"BOOKMARK", WP_KUBE_EV_BOOKMARK},
	        {"ERROR", WP_KUBE_EV_ERROR},
	};
	json_t *root, *obj;
	const char *t;
	size_t i;

	memset(ev, 0, sizeof(*ev));
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(root))
		goto bad;
	t = json_string_value(json_object_get(root, "type"));
	obj = json_object_get(root, "object");
	if (!t || !json_is_object(obj))
		goto bad;
	for (i = 0; i < WP_ARRAY_SIZE(types); i++)
		if (!strcmp(t, types[i].name))
			break;
	if (i == WP_ARRAY_SIZE(types))
		goto bad;
	ev->type = types[i].type;
	ev->object = json_incref(obj);
	json_decref(root);
	ev->rv = json_string_value(
	        json_object_get(json_object_get(ev->object, "metadata"), "resourceVersion"));
	if (ev->type == WP_KUBE_EV_ERROR) {
		json_t *code = json_object_get(ev->object, "code");
		ev->code = json_is_integer(code) ? (long)json_integer_value(code) : 0;
	} else if (ev->type != WP_KUBE_EV_BOOKMARK &&
	           !json_string_value(
	                   json_object_get(json_object_get(ev->object, "metadata"), "name"))) {
		wp_kube_event_clear(ev);
		return -EBADMSG;
	}
	return 0;
bad:
	if (root)
		json_decref(root);
	return -EBADMSG;
}

size_t wp_kube_watch_body(char *p, size_t sz, size_t nm, void *arg)
{
	struct wp_kube_watch *w = arg;
	size_t n = sz * nm, i, start = 0;

	if (w->status == 0)
		curl_easy_getinfo(w->k->curl, CURLINFO_RESPONSE_CODE, &w->status);
	if (w->status != 200) {
		/* An error answer: keep it for the caller's message. */
		if (buf_add(&w->line, p, n) != 0)
			return 0;
		return n;
	}
	for (i = 0; i < n; i++) {
		struct wp_kube_event ev;

		if (p[i] != '\n')
			continue;
		if (buf_add(&w->line, p + start, i - start) != 0)
			return 0;
		start = i + 1;
		if (w->line.len) {
			if (wp_kube_event_parse(w->line.p, w->line.len, &ev) == 0) {
				w->cb_ret = w->cb(w->arg, &ev);
				wp_kube_event_clear(&ev);
			} else {
				wp_ctr_inc(w->k->ctr, WP_CTR_KUBE_WATCH_BAD_EVENT);
			}
		}
		w->line.len = 0;
		if (w->cb_ret)
			return 0; /* aborts the transfer */
	}
	if (start < n && buf_add(&w->line, p + start, n - start) != 0)
		return 0;
	return n;
}

static int watch_progress_cb(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct wp_kube_watch *w = arg;

	(void)a, (void)b, (void)c, (void)d;
	return (w->stop && *w->stop) ? 1 : 0;
}

int wp_kube_watch(struct wp_kube *k, const char *path, const char *rv, unsigned timeout_s,
                  wp_kube_event_cb cb, void *arg, const volatile int *stop, long *retry_after)
{
	struct wp_kube_watch w = {
	        .k = k, .cb = cb, .arg = arg, .stop = stop, .line.max = k->max_event};
	struct curl_slist *hdrs = NULL;
	struct hdr_ctx h = {.k = k, .retry_after = -1};
	char *url, *esc = NULL, cerr[1024];
	CURLcode rc;
	int ret;

	for (int attempt = 0; attempt < 2; attempt++) {
		if (rv && rv[0])
			esc = curl_easy_escape(NULL, rv, 0);
		if (asprintf(&url, "%s?watch=1&allowWatchBookmarks=true%s%s&timeoutSeconds=%u",
		             path, esc ? "&resourceVersion=" : "", esc ? esc : "",
		             timeout_s ? timeout_s : 1800) < 0) {
			curl_free(esc);
			return -ENOMEM;
		}
		curl_free(esc);
		esc = NULL;
		ret = cred_ensure(k, false, cerr, sizeof(cerr));
		if (ret) {
			wp_log(WP_LOG_WARNING, "kube: %s\n", cerr);
			free(url);
			return -EIO;
		}
		ret = prepare(k, "GET", url, &hdrs, NULL);
		free(url);
		if (ret)
			return ret;
		/* Server-side timeout plus slack; a dead peer is caught by the
		 * low-speed limit (bookmarks keep a live watch above it). */
		curl_easy_setopt(k->curl, CURLOPT_TIMEOUT,
		                 (long)(timeout_s ? timeout_s : 1800) + 30);
		curl_easy_setopt(k->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(k->curl, CURLOPT_LOW_SPEED_TIME, 300L);
		curl_easy_setopt(k->curl, CURLOPT_TCP_KEEPALIVE, 1L);
		curl_easy_setopt(k->curl, CURLOPT_WRITEFUNCTION, wp_kube_watch_body);
		curl_easy_setopt(k->curl, CURLOPT_WRITEDATA, &w);
		curl_easy_setopt(k->curl, CURLOPT_HEADERFUNCTION, header_cb);
		curl_easy_setopt(k->curl, CURLOPT_HEADERDATA, &h);
		curl_easy_setopt(k->curl, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(k->curl, CURLOPT_XFERINFOFUNCTION, watch_progress_cb);
		curl_easy_setopt(k->curl, CURLOPT_XFERINFODATA, &w);
		rc = curl_easy_perform(k->curl);
		curl_slist_free_all(hdrs);
		hdrs = NULL;
		if (w.status == 0)
			curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &w.status);
		if (rc == CURLE_OK && w.status == 401 && (k->cfg.token_file || k->cfg.exec) &&
		    attempt == 0) {
			token_refresh(k, true);
			if (cred_ensure(k, true, cerr, sizeof(cerr)) != 0) {
				wp_log(WP_LOG_WARNING, "kube: %s\n", cerr);
				break;
			}
			w.status = 0;
			w.line.len = 0;
			h.retry_after = -1;
			continue;
		}
		break;
	}
	free(w.line.p);
	if (retry_after)
		*retry_after = h.retry_after;
	if (w.cb_ret)
		return w.cb_ret;
	if (w.line.over) {
		/* One line (or an error body) outgrew max_event: the stream
		 * cannot be resumed past it. */
		wp_ctr_inc(k->ctr, WP_CTR_KUBE_EVENT_TOO_BIG);
		return -EMSGSIZE;
	}
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		return -ECANCELED;
	if (w.status && w.status != 200) {
		count_status(k, w.status);
		ret = status_to_errno(w.status);
		if (ret == -ESTALE)
			wp_ctr_inc(k->ctr, WP_CTR_KUBE_WATCH_EXPIRED);
		return ret;
	}
	if (rc != CURLE_OK) {
		wp_ctr_inc(k->ctr, WP_CTR_KUBE_WATCH_BROKEN);
		return -EIO;
	}
	wp_ctr_inc(k->ctr, WP_CTR_KUBE_WATCH_CLOSED);
	return 0;
}

void wp_kube_backoff_init(struct wp_kube_backoff *b, double base, double max, uint64_t seed)
{
	b->base = base;
	b->max = max;
	b->n = 0;
	b->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

double wp_kube_backoff_next(struct wp_kube_backoff *b)
{
	double d = b->base;
	double u;

	for (unsigned i = 0; i < b->n && d < b->max; i++)
		d *= 2;
	if (d > b->max)
		d = b->max;
	if (b->n < 64)
		b->n++;
	b->rng ^= b->rng << 13;
	b->rng ^= b->rng >> 7;
	b->rng ^= b->rng << 17;
	u = (double)(b->rng >> 11) / (double)(1ull << 53);
	d *= 0.75 + 0.5 * u;
	return d > b->max ? b->max : d;
}

void wp_kube_backoff_reset(struct wp_kube_backoff *b)
{
	b->n = 0;
}

char *wp_kube_json_dump(const json_t *j)
{
	return json_dumps(j, JSON_COMPACT);
}
