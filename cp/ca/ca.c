/*
 * The CA client thread: gets the first certificate, renews it at about
 * half its lifetime, retries failures with doubling backoff, and installs
 * each accepted key and chain as ca.dir/identity.pem (see wp/ca.h for how
 * the data path picks it up). It owns its state; /certs reads a copy under
 * the lock, and the counters are atomics any thread may add up.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "ca_int.h"
#include "wp/log.h"
#include "wp/ca.h"
#include "wp/config.h"
#include "wp/counters.h"
#include "wp/rand.h"

#define CA_PATH   "/istio.v1.auth.IstioCertificateService/CreateCertificate"
#define MAX_CHAIN 8
#define MAX_TOKEN 8000

struct wp_ca {
	const struct wp_ca_config *cfg;
	char id[384];   /* spiffe://td/ns/x/sa/y */
	char host[256]; /* ca.address split */
	char port[16];
	char file[PATH_MAX]; /* dir/identity.pem */
	char tmp[PATH_MAX];
	uint64_t rnd;
	pthread_t thread;
	bool started;
	atomic_bool ready;
	uint64_t ctr[WP_CTR_MAX]; /* __atomic adds */

	pthread_mutex_t lock; /* the fields below */
	pthread_cond_t wake;
	bool stop;
	bool have;
	bool expired_counted;
	struct wp_ca_leaf leaf;
	int64_t next_ms; /* wall clock, ms: the next request */
	char last_error[256];
};

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void count(struct wp_ca *ca, enum wp_ctr c)
{
	__atomic_add_fetch(&ca->ctr[c], 1, __ATOMIC_RELAXED);
}

/* The token, trimmed, into buf; -errno when unreadable or empty. */
static int read_token(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -errno;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	if (n == 0 || (size_t)n == cap - 1)
		return -EINVAL; /* empty, or longer than we send */
	return 0;
}

/* Writes key + chain to a temporary file and renames it over identity.pem. */
static int install(struct wp_ca *ca, EVP_PKEY *key, const struct wp_ca_pb_str *chain, int n)
{
	int fd = open(ca->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	bool ok;

	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
	for (int i = 0; ok && i < n; i++) {
		ok = fwrite(chain[i].p, 1, chain[i].len, f) == chain[i].len;
		if (ok && (chain[i].len == 0 || chain[i].p[chain[i].len - 1] != '\n'))
			ok = fputc('\n', f) != EOF;
	}
	ok = fflush(f) == 0 && ok && fsync(fileno(f)) == 0;
	if (fclose(f) != 0)
		ok = false;
	if (!ok || rename(ca->tmp, ca->file) != 0) {
		int err = errno ? errno : EIO;
		unlink(ca->tmp);
		return -err;
	}
	return 0;
}

/* One request. 0 with the new leaf in *leaf, or <0 with why set (counted). */
static int fetch(struct wp_ca *ca, struct wp_ca_leaf *leaf, char *why, size_t whylen)
{
	const struct wp_ca_config *cfg = ca->cfg;
	struct wp_ca_call call = {.host = ca->host,
	                          .port = ca->port,
	                          .server_name = cfg->server_name,
	                          .root_file = cfg->root_cert,
	                          .cluster_id = cfg->cluster_id,
	                          .path = CA_PATH,
	                          .timeout_ms = cfg->timeout_ms};
	struct wp_ca_pb_str chain[MAX_CHAIN];
	char token[MAX_TOKEN + 1];
	EVP_PKEY *key = NULL;
	char *csr = NULL;
	size_t csr_len = 0, resp_len = 0, req_cap;
	uint8_t *req = NULL, *resp = NULL;
	ssize_t req_len;
	int n, gs, rc = -EIO;

	if (cfg->token_file[0] != '\0') {
		rc = read_token(cfg->token_file, token, sizeof(token));
		if (rc != 0) {
			count(ca, WP_CTR_CA_TOKEN_UNREADABLE);
			snprintf(why, whylen, "token %.160s: %s", cfg->token_file,
			         rc == -EINVAL ? "empty or too long" : strerror(-rc));
			return rc;
		}
		call.token = token;
	}
	rc = -ENOMEM;
	snprintf(why, whylen, "out of memory (key or CSR)");
	key = wp_ca_key_new();
	if (key == NULL || (csr = wp_ca_csr_pem(key, ca->id, &csr_len)) == NULL)
		goto out;
	req_cap = csr_len + 64;
	req = malloc(req_cap);
	if (req == NULL ||
	    (req_len = wp_ca_pb_request(req, req_cap, csr, csr_len, (int64_t)cfg->lifetime_s)) < 0)
		goto out;
	rc = -EIO;
	switch (wp_ca_grpc_call(&call, req, (size_t)req_len, &resp, &resp_len, &gs, why, whylen)) {
	case WP_CA_CALL_OK:
		break;
	case WP_CA_CALL_TRANSPORT:
		count(ca, WP_CTR_CA_TRANSPORT_ERROR);
		goto out;
	case WP_CA_CALL_STATUS:
		count(ca, WP_CTR_CA_GRPC_ERROR);
		goto out;
	case WP_CA_CALL_BAD:
		count(ca, WP_CTR_CA_BAD_RESPONSE);
		goto out;
	}
	n = wp_ca_pb_response(resp, resp_len, chain, MAX_CHAIN);
	if (n < 0) {
		count(ca, WP_CTR_CA_BAD_RESPONSE);
		snprintf(why, whylen, "not an IstioCertificateResponse (%s)", strerror(-n));
		goto out;
	}
	switch (wp_ca_chain_check(key, ca->id, chain, n, cfg->root_cert, leaf, why, whylen)) {
	case WP_CA_CHECK_OK:
		break;
	case WP_CA_CHECK_BAD_PEM:
		count(ca, WP_CTR_CA_BAD_RESPONSE);
		goto out;
	case WP_CA_CHECK_KEY:
		count(ca, WP_CTR_CA_KEY_MISMATCH);
		goto out;
	case WP_CA_CHECK_SAN:
		count(ca, WP_CTR_CA_WRONG_SAN);
		goto out;
	case WP_CA_CHECK_CHAIN:
	case WP_CA_CHECK_NO_ROOTS:
		count(ca, WP_CTR_CA_UNTRUSTED_CHAIN);
		goto out;
	}
	rc = install(ca, key, chain, n);
	if (rc != 0) {
		count(ca, WP_CTR_CA_INSTALL_FAILED);
		snprintf(why, whylen, "cannot write %.160s: %s", ca->file, strerror(-rc));
		goto out;
	}
	count(ca, WP_CTR_CA_ISSUED);
	rc = 0;
out:
	OPENSSL_cleanse(token, sizeof(token));
	EVP_PKEY_free(key);
	free(csr);
	free(req);
	free(resp);
	return rc;
}

/* Half the lifetime from notBefore, minus up to a tenth of it: replicas
 * started together do not all come back at once. Never sooner than
 * backoff_base_ms: a CA that backdates notBefore by more than half the
 * lifetime (or a clock far ahead) must not make us ask in a tight loop. */
static int64_t renewal_ms(struct wp_ca *ca, const struct wp_ca_leaf *l)
{
	int64_t life = (l->not_after - l->not_before) * 1000, at = 0;
	int64_t soonest = wall_ms() + ca->cfg->backoff_base_ms;

	if (life > 0)
		at = l->not_before * 1000 + life / 2 -
		     (int64_t)wp_rand_below(&ca->rnd, (uint64_t)life / 10 + 1);
	return at > soonest ? at : soonest;
}

static void *ca_main(void *arg)
{
	struct wp_ca *ca = arg;
	unsigned backoff = ca->cfg->backoff_base_ms;

	pthread_mutex_lock(&ca->lock);
	while (!ca->stop) {
		int64_t now = wall_ms();
		struct wp_ca_leaf leaf;
		char why[256];
		int rc;

		if (now < ca->next_ms) {
			int64_t t = ca->next_ms - now;
			struct timespec ts;

			/* Waits in pieces of at most a second: a wall-clock step
			 * (NTP at boot) cannot make the wait overshoot by much. */
			clock_gettime(CLOCK_MONOTONIC, &ts);
			t = t > 1000 ? 1000 : t;
			ts.tv_sec += t / 1000;
			ts.tv_nsec += (t % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&ca->wake, &ca->lock, &ts);
			continue;
		}
		if (ca->have && now / 1000 >= ca->leaf.not_after && !ca->expired_counted) {
			ca->expired_counted = true;
			count(ca, WP_CTR_CA_EXPIRED);
			wp_log(WP_LOG_ERR,
			       "waypointd: ca: the certificate for %s expired; renewal keeps "
			       "failing (%s)\n",
			       ca->id, ca->last_error);
		}
		pthread_mutex_unlock(&ca->lock);
		rc = fetch(ca, &leaf, why, sizeof(why));
		pthread_mutex_lock(&ca->lock);
		if (rc == 0) {
			ca->leaf = leaf;
			ca->have = true;
			ca->expired_counted = false;
			ca->last_error[0] = '\0';
			ca->next_ms = renewal_ms(ca, &leaf);
			backoff = ca->cfg->backoff_base_ms;
			atomic_store(&ca->ready, true);
			printf("waypointd: ca: certificate for %s issued (serial %s, valid %lld "
			       "s); "
			       "renewal in %lld s\n",
			       ca->id, leaf.serial, (long long)(leaf.not_after - leaf.not_before),
			       (long long)((ca->next_ms - wall_ms()) / 1000));
			fflush(stdout);
			continue;
		}
		count(ca, WP_CTR_CA_RENEW_FAILED);
		snprintf(ca->last_error, sizeof(ca->last_error), "%s", why);
		ca->next_ms =
		        wall_ms() + backoff + (int64_t)wp_rand_below(&ca->rnd, backoff / 4 + 1);
		wp_log(WP_LOG_WARNING,
		       "waypointd: ca: request for %s failed: %s; retry in %u ms%s\n", ca->id, why,
		       backoff, ca->have ? ", keeping the current certificate" : "");
		backoff = backoff * 2 > ca->cfg->backoff_max_ms ? ca->cfg->backoff_max_ms
		                                                : backoff * 2;
	}
	pthread_mutex_unlock(&ca->lock);
	return NULL;
}

/* HOST:PORT or [V6]:PORT. */
static int split_address(struct wp_ca *ca, const char *a)
{
	const char *colon = strrchr(a, ':');
	size_t hl;

	if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) >= sizeof(ca->port))
		return -EINVAL;
	hl = (size_t)(colon - a);
	if (hl >= 2 && a[0] == '[' && a[hl - 1] == ']') {
		a++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(ca->host))
		return -EINVAL;
	memcpy(ca->host, a, hl);
	ca->host[hl] = '\0';
	strcpy(ca->port, colon + 1);
	return 0;
}

struct wp_ca *wp_ca_start(const struct wp_config *cfg)
{
	struct wp_ca *ca = calloc(1, sizeof(*ca));
	pthread_condattr_t ca_attr;
	struct stat sb;

	if (ca == NULL) {
		wp_log(WP_LOG_ERR, "waypointd: ca: out of memory\n");
		return NULL;
	}
	ca->cfg = &cfg->ca;
	if ((size_t)snprintf(ca->id, sizeof(ca->id), "spiffe://%s/ns/%s/sa/%s",
	                     cfg->tls.trust_domain, cfg->ca.namespace,
	                     cfg->ca.service_account) >= sizeof(ca->id) ||
	    split_address(ca, cfg->ca.address) != 0) {
		wp_log(WP_LOG_ERR,
		       "waypointd: ca: identity or ca.address '%s' too long or malformed\n",
		       cfg->ca.address);
		free(ca);
		return NULL;
	}
	snprintf(ca->file, sizeof(ca->file), "%s", cfg->tls.cert);
	if ((size_t)snprintf(ca->tmp, sizeof(ca->tmp), "%s.tmp", ca->file) >= sizeof(ca->tmp)) {
		wp_log(WP_LOG_ERR, "waypointd: ca: ca.dir too long\n");
		free(ca);
		return NULL;
	}
	/* Private: only we read the key. A leftover identity from an earlier
	 * run is removed, so nothing is served before the CA answered. */
	if ((mkdir(cfg->ca.dir, 0700) != 0 && errno != EEXIST) || stat(cfg->ca.dir, &sb) != 0 ||
	    !S_ISDIR(sb.st_mode) || chmod(cfg->ca.dir, 0700) != 0 ||
	    (unlink(ca->file) != 0 && errno != ENOENT)) {
		wp_log(WP_LOG_ERR, "waypointd: ca: cannot prepare the private directory %s: %s\n",
		       cfg->ca.dir, strerror(errno));
		free(ca);
		return NULL;
	}
	if (getrandom(&ca->rnd, sizeof(ca->rnd), 0) != sizeof(ca->rnd))
		ca->rnd = (uint64_t)wall_ms() ^ (uint64_t)getpid();
	pthread_mutex_init(&ca->lock, NULL);
	pthread_condattr_init(&ca_attr);
	pthread_condattr_setclock(&ca_attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ca->wake, &ca_attr);
	pthread_condattr_destroy(&ca_attr);
	if (pthread_create(&ca->thread, NULL, ca_main, ca) != 0) {
		wp_log(WP_LOG_ERR, "waypointd: ca: cannot start the thread\n");
		wp_ca_stop(ca);
		return NULL;
	}
	ca->started = true;
	printf("waypointd: ca: requesting %s from %s\n", ca->id, cfg->ca.address);
	fflush(stdout);
	return ca;
}

bool wp_ca_ready(struct wp_ca *ca)
{
	return atomic_load(&ca->ready);
}

void wp_ca_stop(struct wp_ca *ca)
{
	if (ca == NULL)
		return;
	wp_ca_certs_register(NULL, NULL);
	if (ca->started) {
		pthread_mutex_lock(&ca->lock);
		ca->stop = true;
		pthread_cond_signal(&ca->wake);
		pthread_mutex_unlock(&ca->lock);
		pthread_join(ca->thread, NULL);
	}
	pthread_cond_destroy(&ca->wake);
	pthread_mutex_destroy(&ca->lock);
	free(ca);
}

void wp_ca_counters(struct wp_ca *ca, uint64_t *out)
{
	for (int i = 0; i < WP_CTR_MAX; i++)
		out[i] += __atomic_load_n(&ca->ctr[i], __ATOMIC_RELAXED);
}

/* ---- /certs ---- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct wp_ca *reg_ca;
static char reg_file[PATH_MAX];

void wp_ca_certs_register(struct wp_ca *ca, const char *cert_file)
{
	pthread_mutex_lock(&reg_lock);
	reg_ca = ca;
	snprintf(reg_file, sizeof(reg_file), "%s", cert_file ? cert_file : "");
	pthread_mutex_unlock(&reg_lock);
}

static json_t *rfc3339(int64_t t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

char *wp_ca_certs_json(void)
{
	json_t *o = json_object();
	struct wp_ca_leaf leaf;
	char *s = NULL;

	if (o == NULL)
		return NULL;
	pthread_mutex_lock(&reg_lock);
	json_object_set_new(o, "source", json_string(reg_ca ? "istiod" : "file"));
	json_object_set_new(o, "file", json_string(reg_file));
	if (reg_file[0] != '\0' && wp_ca_leaf_from_file(reg_file, &leaf) == 0) {
		json_object_set_new(o, "identity", json_string(leaf.id));
		json_object_set_new(o, "serial", json_string(leaf.serial));
		json_object_set_new(o, "not_before", rfc3339(leaf.not_before));
		json_object_set_new(o, "not_after", rfc3339(leaf.not_after));
		json_object_set_new(o, "expires_in_s",
		                    json_integer(leaf.not_after - wall_ms() / 1000));
	}
	if (reg_ca != NULL) {
		pthread_mutex_lock(&reg_ca->lock);
		json_object_set_new(o, "requested_identity", json_string(reg_ca->id));
		json_object_set_new(o, "ca_address", json_string(reg_ca->cfg->address));
		json_object_set_new(o, "issued",
		                    json_integer((json_int_t)__atomic_load_n(
		                            &reg_ca->ctr[WP_CTR_CA_ISSUED], __ATOMIC_RELAXED)));
		json_object_set_new(
		        o, "failed",
		        json_integer((json_int_t)__atomic_load_n(
		                &reg_ca->ctr[WP_CTR_CA_RENEW_FAILED], __ATOMIC_RELAXED)));
		json_object_set_new(o, "next_request", rfc3339(reg_ca->next_ms / 1000));
		json_object_set_new(o, "last_error", json_string(reg_ca->last_error));
		pthread_mutex_unlock(&reg_ca->lock);
	}
	pthread_mutex_unlock(&reg_lock);
	s = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	return s;
}
