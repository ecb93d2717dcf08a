/*
 * The key, the CSR and the checks on what the CA sends back (OpenSSL).
 * The key never leaves the process except into the private identity file;
 * the CSR names only our SPIFFE ID (a URI SAN, critical since the subject is
 * empty, as RFC 5280 wants). An issued chain is installed only when its
 * leaf is for our key, names exactly our identity, and verifies against the
 * mesh root now; the caller keeps the old certificate otherwise.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_int.h"

/*
 * A P-256 key, asked for by curve NID through EVP_PKEY_CTX_set_ec_paramgen_
 * curve_nid, which works whether OpenSSL serves EC keys from its provider
 * or, once the data path's TLS contexts exist, from its built-in EC code
 * (dp/tls/eckey.c routes EC keys there; EVP_EC_gen's group-name parameter
 * is then not understood and it fails).
 */
EVP_PKEY *wp_ca_key_new(void)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
	EVP_PKEY *key = NULL;

	if (pc == NULL || EVP_PKEY_keygen_init(pc) <= 0 ||
	    EVP_PKEY_CTX_set_ec_paramgen_curve_nid(pc, NID_X9_62_prime256v1) <= 0 ||
	    EVP_PKEY_keygen(pc, &key) <= 0) {
		EVP_PKEY_free(key);
		key = NULL;
		ERR_clear_error();
	}
	EVP_PKEY_CTX_free(pc);
	return key;
}

static char *bio_string(BIO *b, size_t *len)
{
	char *data, *s;
	long n = BIO_get_mem_data(b, &data);

	if (n <= 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	if (len != NULL)
		*len = (size_t)n;
	return s;
}

char *wp_ca_csr_pem(EVP_PKEY *key, const char *id, size_t *len)
{
	X509_REQ *req = X509_REQ_new();
	GENERAL_NAMES *names = GENERAL_NAMES_new();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *uri = ASN1_IA5STRING_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *ext = NULL;
	BIO *out = BIO_new(BIO_s_mem());
	char *pem = NULL;

	if (!req || !names || !gn || !uri || !exts || !out)
		goto out;
	if (!ASN1_STRING_set(uri, id, (int)strlen(id)))
		goto out;
	GENERAL_NAME_set0_value(gn, GEN_URI, uri);
	uri = NULL;
	if (!sk_GENERAL_NAME_push(names, gn))
		goto out;
	gn = NULL;
	ext = X509V3_EXT_i2d(NID_subject_alt_name, 1, names);
	if (ext == NULL || !sk_X509_EXTENSION_push(exts, ext))
		goto out;
	ext = NULL;
	if (!X509_REQ_set_version(req, 0) || !X509_REQ_set_pubkey(req, key) ||
	    !X509_REQ_add_extensions(req, exts) || X509_REQ_sign(req, key, EVP_sha256()) <= 0 ||
	    !PEM_write_bio_X509_REQ(out, req))
		goto out;
	pem = bio_string(out, len);
out:
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ASN1_IA5STRING_free(uri);
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(names);
	X509_REQ_free(req);
	BIO_free(out);
	ERR_clear_error();
	return pem;
}

/* The one URI SAN of x into buf; -ENOENT without one, -EINVAL with more. */
static int uri_san(X509 *x, char *buf, size_t cap)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int found = 0;

	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		const ASN1_IA5STRING *s;

		if (g->type != GEN_URI)
			continue;
		s = g->d.uniformResourceIdentifier;
		if (found++ || (size_t)s->length >= cap ||
		    memchr(s->data, '\0', (size_t)s->length) != NULL) {
			found = -1;
			break;
		}
		memcpy(buf, s->data, (size_t)s->length);
		buf[s->length] = '\0';
	}
	GENERAL_NAMES_free(names);
	return found == 1 ? 0 : found == 0 ? -ENOENT : -EINVAL;
}

static int64_t asn1_secs(const ASN1_TIME *t)
{
	struct tm tm;

	if (!ASN1_TIME_to_tm(t, &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

static void leaf_facts(X509 *x, struct wp_ca_leaf *leaf)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	memset(leaf, 0, sizeof(*leaf));
	leaf->not_before = asn1_secs(X509_get0_notBefore(x));
	leaf->not_after = asn1_secs(X509_get0_notAfter(x));
	if (hex != NULL) {
		snprintf(leaf->serial, sizeof(leaf->serial), "%s", hex);
		for (char *c = leaf->serial; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	}
	(void)uri_san(x, leaf->id, sizeof(leaf->id));
	OPENSSL_free(hex);
	BN_free(bn);
}

/* Exactly one PEM certificate in s (whitespace around it allowed). */
static X509 *one_cert(const struct wp_ca_pb_str *s)
{
	BIO *b = BIO_new_mem_buf(s->p, (int)s->len);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	char rest[64];
	int n;

	if (x != NULL) {
		while ((n = BIO_read(b, rest, sizeof(rest))) > 0)
			for (int i = 0; i < n; i++)
				if (!isspace((unsigned char)rest[i])) {
					X509_free(x);
					x = NULL;
					goto out;
				}
	}
out:
	BIO_free(b);
	ERR_clear_error();
	return x;
}

enum wp_ca_check wp_ca_chain_check(EVP_PKEY *key, const char *id, const struct wp_ca_pb_str *chain,
                                   int n, const char *root_file, struct wp_ca_leaf *leaf, char *why,
                                   size_t whylen)
{
	STACK_OF(X509) *rest = sk_X509_new_null();
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *vctx = X509_STORE_CTX_new();
	X509 *x = NULL;
	char san[384];
	enum wp_ca_check res = WP_CA_CHECK_BAD_PEM;
	int rc;

	snprintf(why, whylen, "out of memory");
	if (!rest || !store || !vctx)
		goto out;
	snprintf(why, whylen, "empty cert_chain");
	if (n <= 0)
		goto out;
	for (int i = 0; i < n; i++) {
		X509 *c = one_cert(&chain[i]);

		if (c == NULL) {
			snprintf(why, whylen, "cert_chain[%d] is not one PEM certificate", i);
			goto out;
		}
		if (i == 0)
			x = c;
		else if (!sk_X509_push(rest, c)) {
			X509_free(c);
			goto out;
		}
	}
	res = WP_CA_CHECK_KEY;
	snprintf(why, whylen, "the certificate is not for our key");
	if (EVP_PKEY_eq(X509_get0_pubkey(x), key) != 1)
		goto out;
	res = WP_CA_CHECK_SAN;
	rc = uri_san(x, san, sizeof(san));
	if (rc != 0 || strcmp(san, id) != 0) {
		snprintf(why, whylen, "URI SAN %s%s%s, want %s", rc ? "" : "'",
		         rc == -ENOENT ? "missing"
		         : rc          ? "not single"
		                       : san,
		         rc ? "" : "'", id);
		goto out;
	}
	res = WP_CA_CHECK_NO_ROOTS;
	snprintf(why, whylen, "cannot load the roots %s", root_file);
	if (!X509_STORE_load_file(store, root_file))
		goto out;
	res = WP_CA_CHECK_CHAIN;
	if (!X509_STORE_CTX_init(vctx, store, x, rest))
		goto out;
	if (X509_verify_cert(vctx) != 1) {
		snprintf(why, whylen, "chain does not verify against %s: %s", root_file,
		         X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
		goto out;
	}
	leaf_facts(x, leaf);
	res = WP_CA_CHECK_OK;
	why[0] = '\0';
out:
	X509_free(x);
	sk_X509_pop_free(rest, X509_free);
	X509_STORE_CTX_free(vctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return res;
}

int wp_ca_leaf_from_file(const char *path, struct wp_ca_leaf *leaf)
{
	BIO *b = BIO_new_file(path, "r");
	X509 *x;

	if (b == NULL) {
		ERR_clear_error();
		return -ENOENT;
	}
	x = PEM_read_bio_X509(b, NULL, NULL, NULL); /* skips a key block before it */
	BIO_free(b);
	ERR_clear_error();
	if (x == NULL)
		return -EBADMSG;
	leaf_facts(x, leaf);
	X509_free(x);
	return 0;
}
