/*
 * Where the Kubernetes client finds its API server and credentials: a pod's
 * service account (in-cluster) or a kubeconfig file. The kubeconfig is YAML;
 * libyaml's document API loads it and every scalar is read as a string (see
 * PITFALLS: YAML 1.1 booleans), except insecure-skip-tls-verify.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "cp/kube/kube.h"

void wp_kube_config_clear(struct wp_kube_config *cfg)
{
	free(cfg->server);
	free(cfg->ca_file);
	free(cfg->ca_data);
	free(cfg->cert_file);
	free(cfg->cert_data);
	free(cfg->key_file);
	free(cfg->key_data);
	free(cfg->token);
	free(cfg->token_file);
	free(cfg->namespace);
	memset(cfg, 0, sizeof(*cfg));
}

static char *read_small_file(const char *path, size_t max)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = calloc(1, max + 1);
	if (!buf) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, max, f);
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return buf;
}

static int file_exists(const char *path)
{
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	fclose(f);
	return 1;
}

int wp_kube_config_in_cluster(struct wp_kube_config *cfg, const char *sa_dir)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char path[4096];

	memset(cfg, 0, sizeof(*cfg));
	if (!host || !host[0])
		return -ENOENT;
	if (!port || !port[0])
		port = "443";
	if (strspn(port, "0123456789") != strlen(port))
		return -EINVAL;
	if (!sa_dir)
		sa_dir = WP_KUBE_SA_DIR;
	/* An IPv6 service host needs brackets in a URL. */
	if (asprintf(&cfg->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
	             port) < 0) {
		cfg->server = NULL;
		return -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/token", sa_dir);
	if (!file_exists(path)) {
		wp_kube_config_clear(cfg);
		return -ENOENT;
	}
	cfg->token_file = strdup(path);
	snprintf(path, sizeof(path), "%s/ca.crt", sa_dir);
	if (file_exists(path))
		cfg->ca_file = strdup(path);
	snprintf(path, sizeof(path), "%s/namespace", sa_dir);
	cfg->namespace = read_small_file(path, 253);
	return 0;
}

/* --- kubeconfig ---------------------------------------------------------- */

static yaml_node_t *ymap_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *pair;

	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(doc, pair->key);

		if (k && k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, key))
			return yaml_document_get_node(doc, pair->value);
	}
	return NULL;
}

static const char *yscalar(yaml_node_t *n)
{
	if (!n || n->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)n->data.scalar.value;
}

/* The entry {name: NAME, <field>: {...}} of a named list, its <field> map. */
static yaml_node_t *ynamed(yaml_document_t *doc, yaml_node_t *root, const char *list,
                           const char *name, const char *field)
{
	yaml_node_t *seq = ymap_get(doc, root, list);
	yaml_node_item_t *it;

	if (!seq || seq->type != YAML_SEQUENCE_NODE || !name)
		return NULL;
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(doc, *it);
		const char *n = yscalar(ymap_get(doc, e, "name"));

		if (n && !strcmp(n, name))
			return ymap_get(doc, e, field);
	}
	return NULL;
}

static char *resolve_path(const char *dir, const char *p)
{
	char *out;

	if (!p)
		return NULL;
	if (p[0] == '/' || !dir)
		return strdup(p);
	if (asprintf(&out, "%s/%s", dir, p) < 0)
		return NULL;
	return out;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

char *wp_kube_b64decode(const char *in, size_t *out_len)
{
	size_t n = strlen(in), o = 0;
	unsigned acc = 0;
	int bits = 0;
	char *out = malloc(n * 3 / 4 + 4);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)in[i], v;

		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=')
			break;
		v = b64val(c);
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = 0;
	if (out_len)
		*out_len = o;
	return out;
}

static int set_data(char **dst, size_t *len, const char *b64, const char *what, char *err,
                    size_t errlen)
{
	*dst = wp_kube_b64decode(b64, len);
	if (!*dst) {
		snprintf(err, errlen, "%s is not valid base64", what);
		return -EINVAL;
	}
	return 0;
}

static int parse_kubeconfig(struct wp_kube_config *cfg, yaml_document_t *doc, const char *dir,
                            const char *ctx_name, char *err, size_t errlen)
{
	yaml_node_t *root = yaml_document_get_root_node(doc);
	yaml_node_t *ctx, *cluster, *user;
	const char *s, *cname, *uname;
	size_t n;
	int ret;

	if (!root || root->type != YAML_MAPPING_NODE) {
		snprintf(err, errlen, "not a kubeconfig (top level is not a mapping)");
		return -EINVAL;
	}
	if (!ctx_name)
		ctx_name = yscalar(ymap_get(doc, root, "current-context"));
	if (!ctx_name || !ctx_name[0]) {
		snprintf(err, errlen, "no current-context is set");
		return -EINVAL;
	}
	ctx = ynamed(doc, root, "contexts", ctx_name, "context");
	if (!ctx) {
		snprintf(err, errlen, "context \"%s\" not found", ctx_name);
		return -EINVAL;
	}
	cname = yscalar(ymap_get(doc, ctx, "cluster"));
	uname = yscalar(ymap_get(doc, ctx, "user"));
	cluster = ynamed(doc, root, "clusters", cname, "cluster");
	if (!cluster) {
		snprintf(err, errlen, "cluster \"%s\" of context \"%s\" not found",
		         cname ? cname : "", ctx_name);
		return -EINVAL;
	}
	/* Trailing slashes go (paths are appended); nothing else may be left. */
	s = yscalar(ymap_get(doc, cluster, "server"));
	n = s ? strlen(s) : 0;
	while (n && s[n - 1] == '/')
		n--;
	if (!n) {
		snprintf(err, errlen, "cluster \"%s\" has no server", cname);
		return -EINVAL;
	}
	cfg->server = strndup(s, n);
	if (!cfg->server)
		return -ENOMEM;
	if ((s = yscalar(ymap_get(doc, cluster, "certificate-authority-data")))) {
		ret = set_data(&cfg->ca_data, &cfg->ca_len, s, "certificate-authority-data", err,
		               errlen);
		if (ret)
			return ret;
	} else if ((s = yscalar(ymap_get(doc, cluster, "certificate-authority")))) {
		cfg->ca_file = resolve_path(dir, s);
	}
	s = yscalar(ymap_get(doc, cluster, "insecure-skip-tls-verify"));
	cfg->insecure = s && (!strcmp(s, "true") || !strcmp(s, "True"));
	if ((s = yscalar(ymap_get(doc, ctx, "namespace"))) && s[0])
		cfg->namespace = strdup(s);

	user = uname ? ynamed(doc, root, "users", uname, "user") : NULL;
	if (uname && !user) {
		snprintf(err, errlen, "user \"%s\" of context \"%s\" not found", uname, ctx_name);
		return -EINVAL;
	}
	if (!user)
		return 0;
	if (ymap_get(doc, user, "exec") || ymap_get(doc, user, "auth-provider")) {
		snprintf(err, errlen,
		         "user \"%s\": exec and auth-provider plugins are not supported", uname);
		return -EINVAL;
	}
	if ((s = yscalar(ymap_get(doc, user, "client-certificate-data")))) {
		ret = set_data(&cfg->cert_data, &cfg->cert_len, s, "client-certificate-data", err,
		               errlen);
		if (ret)
			return ret;
	} else if ((s = yscalar(ymap_get(doc, user, "client-certificate")))) {
		cfg->cert_file = resolve_path(dir, s);
	}
	if ((s = yscalar(ymap_get(doc, user, "client-key-data")))) {
		ret = set_data(&cfg->key_data, &cfg->key_len, s, "client-key-data", err, errlen);
		if (ret)
			return ret;
	} else if ((s = yscalar(ymap_get(doc, user, "client-key")))) {
		cfg->key_file = resolve_path(dir, s);
	}
	if ((s = yscalar(ymap_get(doc, user, "token"))) && s[0])
		cfg->token = strdup(s);
	else if ((s = yscalar(ymap_get(doc, user, "tokenFile"))) && s[0])
		cfg->token_file = resolve_path(dir, s);
	if ((cfg->cert_file || cfg->cert_data) != (cfg->key_file || cfg->key_data)) {
		snprintf(err, errlen,
		         "user \"%s\": a client certificate needs its key and vice versa", uname);
		return -EINVAL;
	}
	return 0;
}

int wp_kube_config_parse(struct wp_kube_config *cfg, const char *buf, size_t len, const char *dir,
                         const char *ctx_name, char *err, size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errlen, "YAML error at line %zu: %s", parser.problem_mark.line + 1,
		         parser.problem ? parser.problem : "?");
		yaml_parser_delete(&parser);
		return -EINVAL;
	}
	ret = parse_kubeconfig(cfg, &doc, dir, ctx_name, err, errlen);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (ret)
		wp_kube_config_clear(cfg);
	return ret;
}

int wp_kube_config_load(struct wp_kube_config *cfg, const char *path, const char *ctx_name,
                        char *err, size_t errlen)
{
	char *chosen = NULL, *buf = NULL, *dircopy;
	const char *env;
	size_t len = 0, cap = 0;
	FILE *f;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	if (path) {
		chosen = strdup(path);
	} else if ((env = getenv("KUBECONFIG")) && env[0]) {
		char *list = strdup(env), *save = NULL, *p;

		for (p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save))
			if (file_exists(p)) {
				chosen = strdup(p);
				break;
			}
		free(list);
	} else if ((env = getenv("HOME"))) {
		if (asprintf(&chosen, "%s/.kube/config", env) < 0)
			chosen = NULL;
	}
	if (!chosen || !(f = fopen(chosen, "r"))) {
		snprintf(err, errlen, "no kubeconfig found%s%s", chosen ? " at " : "",
		         chosen ? chosen : "");
		free(chosen);
		return -ENOENT;
	}
	for (;;) {
		size_t n;

		if (len + 4096 > cap) {
			char *q = realloc(buf, cap = cap ? cap * 2 : 8192);
			if (!q) {
				fclose(f);
				free(buf);
				free(chosen);
				return -ENOMEM;
			}
			buf = q;
		}
		n = fread(buf + len, 1, 4096, f);
		len += n;
		if (n < 4096)
			break;
	}
	fclose(f);
	dircopy = strdup(chosen);
	ret = wp_kube_config_parse(cfg, buf, len, dirname(dircopy), ctx_name, err, errlen);
	if (ret && err[0]) {
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "%s: %s", chosen, err);
		snprintf(err, errlen, "%s", tmp);
	}
	free(dircopy);
	free(buf);
	free(chosen);
	return ret;
}

int wp_kube_config_auto(struct wp_kube_config *cfg, char *err, size_t errlen)
{
	int ret = wp_kube_config_in_cluster(cfg, getenv("WP_KUBE_SA_DIR"));

	if (ret != -ENOENT) {
		if (ret)
			snprintf(err, errlen, "bad in-cluster configuration");
		return ret;
	}
	return wp_kube_config_load(cfg, NULL, NULL, err, errlen);
}
