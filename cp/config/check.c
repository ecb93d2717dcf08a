/*
 * What waypoint.conf names outside itself, checked the way start-up uses
 * it (wp_config_check_files, wp/config.h), so that --check-config refuses
 * what start-up would: the manifest directory the control plane watches
 * (cp/source/manifest_dir.c), the Kubernetes credentials its source loads
 * (cp/kube/kube_conf.c), and, with HBONE on, the certificate, key and roots
 * the TLS context is built from (dp/tls/tls.c: the same OpenSSL calls in
 * the same order, on a scratch SSL_CTX). wp_config_load has already
 * checked everything the file says by itself.
 *
 * Errors read "CONF: key 'k' (PATH): problem": the key to change and the
 * file it names.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "kube.h"
#include "wp/config.h"

static int say(char *err, size_t errlen, const struct wp_config *cfg, const char *key,
               const char *file, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: key '%s' (%s): %s", cfg->path, key, file, msg);
	return -EINVAL;
}

/* The reason OpenSSL queued for the last failure, and the queue cleared. */
static const char *ssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	snprintf(buf, len, "%s", e ? ERR_reason_error_string(e) ?: "unknown" : "no detail");
	ERR_clear_error();
	return buf;
}

/* Whether OpenSSL refused a key because it is not the certificate's (it
 * checks that when the key is installed after the certificate). */
static bool key_mismatch(void)
{
	unsigned long e = ERR_peek_last_error();

	return ERR_GET_LIB(e) == ERR_LIB_X509 && (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
	                                          ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH);
}

/* A file start-up opens: set, and readable. */
static int readable(const struct wp_config *cfg, const char *key, const char *file, char *err,
                    size_t errlen)
{
	FILE *f;

	if (file[0] == '\0') {
		snprintf(err, errlen, "%s: key '%s': not set (%s needs it)", cfg->path, key,
		         cfg->ca.enabled ? "ca.enabled = true" : "hbone.enabled = true");
		return -EINVAL;
	}
	f = fopen(file, "r");
	if (f == NULL)
		return say(err, errlen, cfg, key, file, "cannot read: %s", strerror(errno));
	fclose(f);
	return 0;
}

static int check_tls(const struct wp_config *cfg, char *err, size_t errlen)
{
	const struct wp_tls_files_config *t = &cfg->tls;
	char why[128];
	SSL_CTX *s;
	int rc;

	if ((rc = readable(cfg, "tls.cert", t->cert, err, errlen)) ||
	    (rc = readable(cfg, "tls.key", t->key, err, errlen)) ||
	    (rc = readable(cfg, "tls.ca", t->ca, err, errlen)))
		return rc;
	s = SSL_CTX_new(TLS_server_method());
	if (s == NULL) {
		snprintf(err, errlen, "%s: tls: out of memory", cfg->path);
		return -ENOMEM;
	}
	if (SSL_CTX_use_certificate_chain_file(s, t->cert) != 1)
		rc = say(err, errlen, cfg, "tls.cert", t->cert, "not a PEM certificate chain: %s",
		         ssl_reason(why, sizeof(why)));
	else if (SSL_CTX_use_PrivateKey_file(s, t->key, SSL_FILETYPE_PEM) != 1 && !key_mismatch())
		rc = say(err, errlen, cfg, "tls.key", t->key, "not a PEM private key: %s",
		         ssl_reason(why, sizeof(why)));
	else if (SSL_CTX_check_private_key(s) != 1) /* also when the use failed on it */
		rc = say(err, errlen, cfg, "tls.key", t->key,
		         "does not match the certificate of tls.cert (%s)", t->cert);
	else if (SSL_CTX_load_verify_locations(s, t->ca, NULL) != 1)
		rc = say(err, errlen, cfg, "tls.ca", t->ca, "no PEM root certificate: %s",
		         ssl_reason(why, sizeof(why)));
	ERR_clear_error();
	SSL_CTX_free(s);
	return rc;
}

static int check_kubernetes(const struct wp_config *cfg, char *err, size_t errlen)
{
	const struct wp_kubernetes_config *k = &cfg->kubernetes;
	struct wp_kube_config kc;
	char why[384] = "";
	FILE *f;
	int rc;

	if (k->kubeconfig[0] != '\0') {
		f = fopen(k->kubeconfig, "r");
		if (f == NULL)
			return say(err, errlen, cfg, "kubernetes.kubeconfig", k->kubeconfig,
			           "cannot read: %s", strerror(errno));
		fclose(f);
	}
	if (k->kubeconfig[0] == '\0' && k->context[0] == '\0')
		rc = wp_kube_config_auto(&kc, why, sizeof(why));
	else
		rc = wp_kube_config_load(&kc, k->kubeconfig[0] ? k->kubeconfig : NULL,
		                         k->context[0] ? k->context : NULL, why, sizeof(why));
	if (rc == 0) {
		wp_kube_config_clear(&kc);
		return 0;
	}
	if (k->kubeconfig[0] != '\0')
		return say(err, errlen, cfg, "kubernetes.kubeconfig", k->kubeconfig, "%s",
		           why[0] ? why : strerror(-rc));
	snprintf(err, errlen,
	         "%s: key 'kubernetes.kubeconfig': not set, and %s (kubernetes.enabled = true "
	         "needs credentials)",
	         cfg->path, why[0] ? why : "no in-cluster service account");
	return -EINVAL;
}

int wp_config_check_files(const struct wp_config *cfg, char *err, size_t errlen)
{
	const char *dir = cfg->cluster.manifest_dir;
	DIR *d;
	int rc;

	if (dir[0] != '\0') {
		d = opendir(dir); /* what the source reads at start */
		if (d == NULL)
			return say(err, errlen, cfg, "cluster.manifest_dir", dir, "%s",
			           strerror(errno));
		closedir(d);
	}
	if (cfg->kubernetes.enabled && (rc = check_kubernetes(cfg, err, errlen)) != 0)
		return rc;
	if (cfg->ca.enabled) {
		/* the certificate comes from istiod: what the CA client reads */
		if ((rc = readable(cfg, "ca.root_cert", cfg->ca.root_cert, err, errlen)) != 0)
			return rc;
		if (cfg->ca.token_file[0] &&
		    (rc = readable(cfg, "ca.token_file", cfg->ca.token_file, err, errlen)) != 0)
			return rc;
	} else if (cfg->hbone.enabled && (rc = check_tls(cfg, err, errlen)) != 0) {
		return rc;
	}
	return 0;
}
