/*
 * Where the Kubernetes client finds its API server and credentials: a pod's
 * service account (in-cluster) or a kubeconfig file. The kubeconfig is YAML;
 * libyaml's document API loads it and every scalar is read as a string (see
 * PITFALLS: YAML 1.1 booleans), except insecure-skip-tls-verify.
 *
 * A user's `exec` entry names a credential plugin: it runs (posix_spawnp, no
 * shell, stdin /dev/null, KUBERNETES_EXEC_INFO in its environment, killed
 * after WP_KUBE_EXEC_TIMEOUT_S) and prints an ExecCredential whose token or
 * client certificate is cached in the struct wp_kube_exec that every client
 * made from this config shares, until it expires or the server refuses it.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <yaml.h>

#include "kube.h"

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
	wp_kube_exec_unref(cfg->exec);
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

/* --- exec credential plugins --------------------------------------------- */

#define EXEC_STDOUT_MAX (1u << 20) /* an ExecCredential is a few KiB */
#define EXEC_STDERR_MAX 512        /* what of stderr an error quotes */

extern char **environ;

struct wp_kube_exec {
	pthread_mutex_t lock; /* one run at a time; guards cred and gen */
	int refs;             /* atomic */
	char *command;        /* as written, or resolved against the kubeconfig's dir */
	char **argv;          /* command, args..., NULL */
	char **env;           /* "NAME=VALUE" from exec.env, NULL-terminated */
	size_t n_env;
	char *api_version;
	char *install_hint;
	char *info;  /* "KUBERNETES_EXEC_INFO=<ExecCredential JSON>" */
	char *where; /* "kubeconfig FILE, user NAME" for messages */
	struct wp_kube_cred cred;
	unsigned gen;
};

struct wp_kube_exec *wp_kube_exec_ref(struct wp_kube_exec *ex)
{
	__atomic_add_fetch(&ex->refs, 1, __ATOMIC_RELAXED);
	return ex;
}

void wp_kube_exec_unref(struct wp_kube_exec *ex)
{
	if (!ex || __atomic_sub_fetch(&ex->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	/* argv[0] is command. */
	for (char **p = ex->argv ? ex->argv + 1 : NULL; p && *p; p++)
		free(*p);
	free(ex->command);
	for (char **p = ex->env; p && *p; p++)
		free(*p);
	free(ex->argv);
	free(ex->env);
	free(ex->api_version);
	free(ex->install_hint);
	free(ex->info);
	free(ex->where);
	wp_kube_cred_clear(&ex->cred);
	pthread_mutex_destroy(&ex->lock);
	free(ex);
}

void wp_kube_cred_clear(struct wp_kube_cred *cred)
{
	free(cred->token);
	free(cred->cert_data);
	free(cred->key_data);
	memset(cred, 0, sizeof(*cred));
}

bool wp_kube_cred_expired(const struct wp_kube_cred *cred, time_t now)
{
	return cred->expiry && now >= cred->expiry;
}

int wp_kube_rfc3339_parse(const char *s, time_t *t)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, sec, n = 0, oh, om;
	long off = 0;

	if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n != 19)
		return -EINVAL;
	s += n;
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++)
			;
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if ((*s == '+' || *s == '-') && sscanf(s + 1, "%2d:%2d%n", &oh, &om, &n) == 2 &&
	           n == 5) {
		off = (oh * 3600L + om * 60L) * (*s == '-' ? -1 : 1);
		s += 6;
	} else {
		return -EINVAL;
	}
	if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*t = timegm(&tm) - off;
	return 0;
}

int wp_kube_exec_cred_parse(const char *buf, size_t len, const char *api_version,
                            struct wp_kube_cred *cred, char *err, size_t errlen)
{
	json_t *root = json_loadb(buf, len, 0, NULL), *st;
	const char *kind, *av, *tok, *cert, *key, *exp;
	int ret = -EINVAL;

	memset(cred, 0, sizeof(*cred));
	if (!json_is_object(root)) {
		snprintf(err, errlen, "its output is not a JSON object");
		goto out;
	}
	kind = json_string_value(json_object_get(root, "kind"));
	av = json_string_value(json_object_get(root, "apiVersion"));
	if (!kind || strcmp(kind, "ExecCredential") != 0) {
		snprintf(err, errlen, "its output is not an ExecCredential (kind %s)",
		         kind ? kind : "missing");
		goto out;
	}
	if (!av || strcmp(av, api_version) != 0) {
		snprintf(err, errlen, "it answered apiVersion %s, the kubeconfig asks for %s",
		         av ? av : "(none)", api_version);
		goto out;
	}
	st = json_object_get(root, "status");
	if (!json_is_object(st)) {
		snprintf(err, errlen, "its ExecCredential has no status");
		goto out;
	}
	tok = json_string_value(json_object_get(st, "token"));
	cert = json_string_value(json_object_get(st, "clientCertificateData"));
	key = json_string_value(json_object_get(st, "clientKeyData"));
	exp = json_string_value(json_object_get(st, "expirationTimestamp"));
	if ((cert && cert[0]) != (key && key[0])) {
		snprintf(err, errlen,
		         "its status has clientCertificateData without clientKeyData "
		         "or the reverse");
		goto out;
	}
	if (!(tok && tok[0]) && !(cert && cert[0])) {
		snprintf(err, errlen,
		         "its status has neither token nor "
		         "clientCertificateData/clientKeyData");
		goto out;
	}
	if (exp && exp[0] && wp_kube_rfc3339_parse(exp, &cred->expiry) != 0) {
		snprintf(err, errlen, "its status.expirationTimestamp \"%s\" is not RFC 3339", exp);
		goto out;
	}
	if (tok && tok[0] && !(cred->token = strdup(tok)))
		goto nomem;
	if (cert && cert[0]) {
		cred->cert_data = strdup(cert);
		cred->key_data = strdup(key);
		if (!cred->cert_data || !cred->key_data)
			goto nomem;
		cred->cert_len = strlen(cert);
		cred->key_len = strlen(key);
	}
	ret = 0;
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
	ret = -ENOMEM;
out:
	if (ret)
		wp_kube_cred_clear(cred);
	json_decref(root);
	return ret;
}

static int cred_copy(struct wp_kube_cred *dst, const struct wp_kube_cred *src)
{
	*dst = *src;
	dst->token = src->token ? strdup(src->token) : NULL;
	dst->cert_data = src->cert_data ? strdup(src->cert_data) : NULL;
	dst->key_data = src->key_data ? strdup(src->key_data) : NULL;
	if ((src->token && !dst->token) || (src->cert_data && !dst->cert_data) ||
	    (src->key_data && !dst->key_data)) {
		wp_kube_cred_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

/* The environment of a run: ours without the names exec.env sets, then
 * exec.env, then KUBERNETES_EXEC_INFO. The strings are borrowed. */
static char **exec_envp(const struct wp_kube_exec *ex)
{
	size_t n = 0, o = 0;
	char **envp;

	while (environ && environ[n])
		n++;
	envp = calloc(n + ex->n_env + 2, sizeof(*envp));
	if (!envp)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t klen = strcspn(environ[i], "=");
		bool shadowed = !strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21);

		for (size_t j = 0; j < ex->n_env && !shadowed; j++)
			shadowed = !strncmp(environ[i], ex->env[j], klen + 1);
		if (!shadowed)
			envp[o++] = environ[i];
	}
	for (size_t j = 0; j < ex->n_env; j++)
		envp[o++] = ex->env[j];
	envp[o++] = ex->info;
	return envp;
}

/* Reads the plugin's stdout (up to EXEC_STDOUT_MAX) and the start of its
 * stderr until both close or the deadline passes. Returns 0, -ETIMEDOUT or
 * -EMSGSIZE. */
static int exec_collect(int ofd, int efd, char **out, size_t *olen, char *ebuf, size_t *elen)
{
	struct timespec t0, t;
	size_t cap = 0;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (ofd >= 0 || efd >= 0) {
		struct pollfd p[2] = {{.fd = ofd, .events = POLLIN}, {.fd = efd, .events = POLLIN}};
		long left;
		char tmp[4096];
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &t);
		left = WP_KUBE_EXEC_TIMEOUT_S * 1000L - (t.tv_sec - t0.tv_sec) * 1000L -
		       (t.tv_nsec - t0.tv_nsec) / 1000000L;
		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(p, 2, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (ofd >= 0 && p[0].revents) {
			n = read(ofd, tmp, sizeof(tmp));
			if (n <= 0) {
				ofd = -1;
			} else if (*olen + (size_t)n > EXEC_STDOUT_MAX) {
				ret = -EMSGSIZE;
				ofd = -1;
			} else {
				if (*olen + (size_t)n + 1 > cap) {
					char *q = realloc(*out, cap = (*olen + (size_t)n + 1) * 2);
					if (!q)
						return -ENOMEM;
					*out = q;
				}
				memcpy(*out + *olen, tmp, (size_t)n);
				*olen += (size_t)n;
				(*out)[*olen] = 0;
			}
		}
		if (efd >= 0 && p[1].revents) {
			n = read(efd, tmp, sizeof(tmp));
			if (n <= 0) {
				efd = -1;
			} else if (*elen < EXEC_STDERR_MAX) {
				size_t k = EXEC_STDERR_MAX - *elen < (size_t)n
				                   ? EXEC_STDERR_MAX - *elen
				                   : (size_t)n;
				memcpy(ebuf + *elen, tmp, k);
				*elen += k;
			}
		}
		if (ret)
			return ret;
	}
	return 0;
}

/* The executable a bare command name means: the first of $PATH's
 * directories that holds it executable (as kubectl looks it up, and so
 * that "not found" is known before spawning). */
static char *look_path(const char *cmd)
{
	const char *path = getenv("PATH");
	char *list, *save = NULL, *out = NULL;

	if (strchr(cmd, '/'))
		return strdup(cmd);
	list = strdup(path && path[0] ? path : "/usr/local/bin:/usr/bin:/bin");
	for (char *d = list ? strtok_r(list, ":", &save) : NULL; d && !out;
	     d = strtok_r(NULL, ":", &save)) {
		if (asprintf(&out, "%s/%s", d, cmd) < 0) {
			out = NULL;
			break;
		}
		if (access(out, X_OK) != 0) {
			free(out);
			out = NULL;
		}
	}
	free(list);
	return out;
}

/* Runs the plugin once into *cred. */
static int exec_run(struct wp_kube_exec *ex, struct wp_kube_cred *cred, char *err, size_t errlen)
{
	int op[2] = {-1, -1}, ep[2] = {-1, -1}, status = 0, ret;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	char ebuf[EXEC_STDERR_MAX + 1], why[512] = "", *out = NULL;
	size_t olen = 0, elen = 0;
	char **envp, *exe = look_path(ex->command);
	pid_t pid;

	if (!exe) {
		snprintf(err, errlen,
		         "%s: exec plugin \"%s\": executable file not found in $PATH%s%s",
		         ex->where, ex->command, ex->install_hint ? "\n" : "",
		         ex->install_hint ? ex->install_hint : "");
		return -ENOENT;
	}
	if (pipe2(op, O_CLOEXEC) || pipe2(ep, O_CLOEXEC)) {
		ret = -errno;
		snprintf(err, errlen, "%s: exec plugin: pipe: %s", ex->where, strerror(-ret));
		goto close;
	}
	envp = exec_envp(ex);
	if (!envp) {
		ret = -ENOMEM;
		snprintf(err, errlen, "%s: exec plugin: out of memory", ex->where);
		goto close;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, op[1], 1);
	posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
	/* Nothing else of ours (sockets, files without O_CLOEXEC) leaks in. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	/* The calling thread may block or ignore signals (waypointd takes
	 * them through signalfd): the plugin starts with none of that. */
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	ret = -posix_spawn(&pid, exe, &fa, &attr, ex->argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	close(op[1]);
	close(ep[1]);
	op[1] = ep[1] = -1;
	if (ret) {
		snprintf(err, errlen, "%s: exec plugin \"%s\": %s%s%s", ex->where, ex->command,
		         ret == -ENOENT ? "executable file not found" : strerror(-ret),
		         ex->install_hint ? "\n" : "", ex->install_hint ? ex->install_hint : "");
		goto close;
	}
	ret = exec_collect(op[0], ep[0], &out, &olen, ebuf, &elen);
	if (ret)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	while (elen && (ebuf[elen - 1] == '\n' || ebuf[elen - 1] == ' '))
		elen--;
	ebuf[elen] = 0;
	if (ret == -ETIMEDOUT)
		snprintf(why, sizeof(why), "no answer within %d s (killed)",
		         WP_KUBE_EXEC_TIMEOUT_S);
	else if (ret == -EMSGSIZE)
		snprintf(why, sizeof(why), "printed more than %u bytes", EXEC_STDOUT_MAX);
	else if (ret)
		snprintf(why, sizeof(why), "%s", strerror(-ret));
	else if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "killed by signal %d", WTERMSIG(status));
	else if (WEXITSTATUS(status))
		snprintf(why, sizeof(why), "exit status %d", WEXITSTATUS(status));
	if (why[0]) {
		snprintf(err, errlen, "%s: exec plugin \"%s\" failed: %s%s%s", ex->where,
		         ex->command, why, elen ? ": " : "", ebuf);
		ret = ret ? ret : -EIO;
		goto close;
	}
	ret = wp_kube_exec_cred_parse(out ? out : "", olen, ex->api_version, cred, why,
	                              sizeof(why));
	if (ret)
		snprintf(err, errlen, "%s: exec plugin \"%s\": %s", ex->where, ex->command, why);
close:
	for (int i = 0; i < 2; i++) {
		if (op[i] >= 0)
			close(op[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	free(out);
	free(exe);
	return ret;
}

int wp_kube_exec_credential(struct wp_kube_exec *ex, unsigned rejected_gen,
                            struct wp_kube_cred *out, char *err, size_t errlen)
{
	struct wp_kube_cred fresh;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&ex->lock);
	if (!ex->gen || ex->cred.gen == rejected_gen ||
	    wp_kube_cred_expired(&ex->cred, time(NULL))) {
		ret = exec_run(ex, &fresh, err, errlen);
		if (ret == 0) {
			wp_kube_cred_clear(&ex->cred);
			ex->cred = fresh;
			ex->cred.gen = ++ex->gen;
			ret = 1;
		}
	}
	if (ret >= 0 && cred_copy(out, &ex->cred) != 0) {
		snprintf(err, errlen, "%s: exec plugin: out of memory", ex->where);
		ret = -ENOMEM;
	}
	pthread_mutex_unlock(&ex->lock);
	return ret;
}

static char *b64encode(const char *in, size_t n)
{
	static const char tab[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;

		if (i + 1 < n)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		*o++ = tab[(v >> 18) & 63];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? tab[v & 63] : '=';
	}
	*o = 0;
	return out;
}

/* KUBERNETES_EXEC_INFO: the ExecCredential spec the plugin reads; with
 * provideClusterInfo, the cluster (cfg holds it, CA bytes included). */
static char *exec_info(const char *api_version, bool cluster_info, const struct wp_kube_config *cfg)
{
	json_t *spec = json_pack("{s:b}", "interactive", 0), *root;
	char *ca = NULL, *js, *line = NULL;

	if (cluster_info) {
		json_t *cl = json_pack("{s:s}", "server", cfg->server);

		if (cfg->insecure)
			json_object_set_new(cl, "insecure-skip-tls-verify", json_true());
		if (cfg->ca_data) {
			ca = b64encode(cfg->ca_data, cfg->ca_len);
		} else if (cfg->ca_file) {
			/* The file's bytes as they are (the plugin may hash them). */
			FILE *f = fopen(cfg->ca_file, "r");
			char *pem = calloc(1, EXEC_STDOUT_MAX);
			size_t n = f && pem ? fread(pem, 1, EXEC_STDOUT_MAX, f) : 0;

			if (n)
				ca = b64encode(pem, n);
			free(pem);
			if (f)
				fclose(f);
		}
		if (ca)
			json_object_set_new(cl, "certificate-authority-data", json_string(ca));
		json_object_set_new(spec, "cluster", cl);
	}
	root = json_pack("{s:s,s:s,s:o}", "apiVersion", api_version, "kind", "ExecCredential",
	                 "spec", spec);
	js = root ? json_dumps(root, JSON_COMPACT) : NULL;
	if (js && asprintf(&line, "KUBERNETES_EXEC_INFO=%s", js) < 0)
		line = NULL;
	free(js);
	free(ca);
	json_decref(root);
	return line;
}

/* users[].user.exec into cfg->exec. path (may be NULL) names the file. */
static int parse_exec(struct wp_kube_config *cfg, yaml_document_t *doc, yaml_node_t *exec,
                      const char *dir, const char *path, const char *uname, char *err,
                      size_t errlen)
{
	const char *cmd = yscalar(ymap_get(doc, exec, "command"));
	const char *av = yscalar(ymap_get(doc, exec, "apiVersion"));
	const char *mode = yscalar(ymap_get(doc, exec, "interactiveMode"));
	const char *pci = yscalar(ymap_get(doc, exec, "provideClusterInfo"));
	const char *hint = yscalar(ymap_get(doc, exec, "installHint"));
	yaml_node_t *args = ymap_get(doc, exec, "args"), *env = ymap_get(doc, exec, "env");
	size_t nargs =
	        args && args->type == YAML_SEQUENCE_NODE
	                ? (size_t)(args->data.sequence.items.top - args->data.sequence.items.start)
	                : 0;
	size_t nenv =
	        env && env->type == YAML_SEQUENCE_NODE
	                ? (size_t)(env->data.sequence.items.top - env->data.sequence.items.start)
	                : 0;
	struct wp_kube_exec *ex;

	if (!cmd || !cmd[0]) {
		snprintf(err, errlen, "user \"%s\": exec has no command", uname);
		return -EINVAL;
	}
	if (!av || (strcmp(av, "client.authentication.k8s.io/v1") != 0 &&
	            strcmp(av, "client.authentication.k8s.io/v1beta1") != 0)) {
		snprintf(err, errlen,
		         "user \"%s\": exec apiVersion \"%s\" is not "
		         "client.authentication.k8s.io/v1 or v1beta1",
		         uname, av ? av : "");
		return -EINVAL;
	}
	if (mode && strcmp(mode, "Never") != 0 && strcmp(mode, "IfAvailable") != 0) {
		snprintf(err, errlen,
		         "user \"%s\": exec interactiveMode \"%s\" needs a terminal, and neither "
		         "wpctl nor waypointd gives the plugin one (Never or IfAvailable work)",
		         uname, mode);
		return -EINVAL;
	}
	ex = calloc(1, sizeof(*ex));
	if (!ex)
		return -ENOMEM;
	pthread_mutex_init(&ex->lock, NULL);
	ex->refs = 1;
	cfg->exec = ex;
	ex->argv = calloc(nargs + 2, sizeof(*ex->argv));
	ex->env = calloc(nenv + 1, sizeof(*ex->env));
	ex->api_version = strdup(av);
	ex->install_hint = hint && hint[0] ? strdup(hint) : NULL;
	/* A command with a slash is a path, relative to the kubeconfig's
	 * directory as kubectl takes it; a bare name is looked up in PATH. */
	ex->command = strchr(cmd, '/') ? resolve_path(dir, cmd) : strdup(cmd);
	if (!ex->argv || !ex->env || !ex->api_version || !ex->command ||
	    asprintf(&ex->where, "kubeconfig %s, user \"%s\"", path ? path : "(in memory)", uname) <
	            0)
		return -ENOMEM;
	ex->argv[0] = ex->command;
	for (size_t i = 0; i < nargs; i++) {
		const char *a =
		        yscalar(yaml_document_get_node(doc, args->data.sequence.items.start[i]));

		if (!a || !(ex->argv[i + 1] = strdup(a))) {
			snprintf(err, errlen, "user \"%s\": exec args must be strings", uname);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < nenv; i++) {
		yaml_node_t *e = yaml_document_get_node(doc, env->data.sequence.items.start[i]);
		const char *n = yscalar(ymap_get(doc, e, "name"));
		const char *v = yscalar(ymap_get(doc, e, "value"));

		if (!n || !n[0] || strchr(n, '=') || !v) {
			snprintf(err, errlen,
			         "user \"%s\": exec env entries need a name and a value", uname);
			return -EINVAL;
		}
		if (asprintf(&ex->env[i], "%s=%s", n, v) < 0) {
			ex->env[i] = NULL;
			return -ENOMEM;
		}
		ex->n_env = i + 1;
	}
	ex->info = exec_info(av, pci && !strcmp(pci, "true"), cfg);
	return ex->info ? 0 : -ENOMEM;
}

static int parse_kubeconfig(struct wp_kube_config *cfg, yaml_document_t *doc, const char *dir,
                            const char *path, const char *ctx_name, char *err, size_t errlen)
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
	if (ymap_get(doc, user, "auth-provider")) {
		snprintf(err, errlen,
		         "user \"%s\": auth-provider plugins are not supported (use an exec "
		         "plugin, as kubectl does since it dropped them)",
		         uname);
		return -EINVAL;
	}
	if (ymap_get(doc, user, "exec"))
		return parse_exec(cfg, doc, ymap_get(doc, user, "exec"), dir, path, uname, err,
		                  errlen);
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

static int parse_buf(struct wp_kube_config *cfg, const char *buf, size_t len, const char *dir,
                     const char *path, const char *ctx_name, char *err, size_t errlen)
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
	ret = parse_kubeconfig(cfg, &doc, dir, path, ctx_name, err, errlen);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (ret)
		wp_kube_config_clear(cfg);
	return ret;
}

int wp_kube_config_parse(struct wp_kube_config *cfg, const char *buf, size_t len, const char *dir,
                         const char *ctx_name, char *err, size_t errlen)
{
	return parse_buf(cfg, buf, len, dir, NULL, ctx_name, err, errlen);
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
	ret = parse_buf(cfg, buf, len, dirname(dircopy), chosen, ctx_name, err, errlen);
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
