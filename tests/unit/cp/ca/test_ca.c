/*
 * cp/ca unit tests: the IstioCertificateRequest bytes exactly as protobuf
 * and gRPC define them, the response decoder on good, odd (unknown fields)
 * and broken input, the CSR's contents, and every way wp_ca_chain_check
 * refuses an issued chain (certificates made here with OpenSSL).
 *
 * Built twice: cp_ca_eckey runs the same tests with dp/tls's EC key
 * routing in place (dp/tls/eckey.c), as in waypointd once its TLS
 * contexts exist, where the CA client keeps renewing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_int.h"
#ifdef WP_TEST_EC_ENGINE
#include "tls_int.h"
#endif

#define ID "spiffe://cluster.local/ns/default/sa/waypoint"

static void test_request_bytes(void **state)
{
	static const uint8_t want[] = {0, 0, 0, 0, 7, 0x0a, 3, 'a', 'b', 'c', 0x18, 60};
	uint8_t buf[64], big[400];
	char csr[300];

	(void)state;
	assert_int_equal(wp_ca_pb_request(buf, sizeof(buf), "abc", 3, 60), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	/* proto3: a zero validity is not sent */
	assert_int_equal(wp_ca_pb_request(buf, sizeof(buf), "abc", 3, 0), 10);
	assert_int_equal(buf[4], 5);
	/* a two-byte length varint, and 86400 as three bytes */
	memset(csr, 'x', sizeof(csr));
	assert_int_equal(wp_ca_pb_request(big, sizeof(big), csr, 300, 86400),
	                 5 + 1 + 2 + 300 + 1 + 3);
	assert_int_equal(big[5], 0x0a);
	assert_int_equal(big[6], 0xac); /* 300 = 0b10_0101100 */
	assert_int_equal(big[7], 0x02);
	assert_int_equal(big[308], 0x18);
	assert_int_equal(big[309], 0x80);
	assert_int_equal(big[310], 0xa3);
	assert_int_equal(big[311], 0x05);
	assert_int_equal(big[3] << 8 | big[4], 1 + 2 + 300 + 1 + 3);
	assert_int_equal(wp_ca_pb_request(buf, sizeof(buf), csr, 60, 1), -ENOSPC);
}

/* Frames body (len bytes) behind a gRPC prefix into out. */
static size_t frame(uint8_t *out, const uint8_t *body, size_t len)
{
	out[0] = 0;
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
	memcpy(out + 5, body, len);
	return len + 5;
}

static void test_response(void **state)
{
	static const uint8_t body[] = {
	        0x0a, 2,    'A',  'B',                  /* cert_chain "AB" */
	        0x10, 0x96, 0x01,                       /* field 2 varint 150 */
	        0x29, 1,    2,    3,   4,   5, 6, 7, 8, /* field 5 fixed64 */
	        0x35, 1,    2,    3,   4,               /* field 6 fixed32 */
	        0x3a, 1,    'z',                        /* field 7 bytes */
	        0x0a, 0,                                /* cert_chain "" */
	        0x0a, 3,    'C',  'D', 'E',             /* cert_chain "CDE" */
	};
	struct wp_ca_pb_str out[4];
	uint8_t buf[128];
	size_t n = frame(buf, body, sizeof(body));

	(void)state;
	assert_int_equal(wp_ca_pb_response(buf, n, out, 4), 3);
	assert_int_equal(out[0].len, 2);
	assert_memory_equal(out[0].p, "AB", 2);
	assert_int_equal(out[1].len, 0);
	assert_int_equal(out[2].len, 3);
	assert_memory_equal(out[2].p, "CDE", 3);
	assert_int_equal(wp_ca_pb_response(buf, n, out, 2), -E2BIG);
	/* an empty message: no chain */
	assert_int_equal(wp_ca_pb_response(buf, frame(buf, body, 0), out, 4), 0);
}

static void test_response_broken(void **state)
{
	static const uint8_t trunc_len[] = {0x0a, 5, 'A'};
	static const uint8_t trunc_varint[] = {0x10, 0x96};
	static const uint8_t trunc_fixed[] = {0x29, 1, 2, 3};
	static const uint8_t group[] = {0x0b, 0x0c};
	static const uint8_t field0[] = {0x02, 0};
	static const uint8_t long_varint[] = {0x10, 0xff, 0xff, 0xff, 0xff, 0xff,
	                                      0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	static const uint8_t ok[] = {0x0a, 1, 'A'};
	struct wp_ca_pb_str out[4];
	uint8_t buf[64];
	size_t n;

	(void)state;
	assert_int_equal(wp_ca_pb_response(buf, frame(buf, trunc_len, sizeof(trunc_len)), out, 4),
	                 -EBADMSG);
	assert_int_equal(
	        wp_ca_pb_response(buf, frame(buf, trunc_varint, sizeof(trunc_varint)), out, 4),
	        -EBADMSG);
	assert_int_equal(
	        wp_ca_pb_response(buf, frame(buf, trunc_fixed, sizeof(trunc_fixed)), out, 4),
	        -EBADMSG);
	assert_int_equal(wp_ca_pb_response(buf, frame(buf, group, sizeof(group)), out, 4),
	                 -EBADMSG);
	assert_int_equal(wp_ca_pb_response(buf, frame(buf, field0, sizeof(field0)), out, 4),
	                 -EBADMSG);
	assert_int_equal(
	        wp_ca_pb_response(buf, frame(buf, long_varint, sizeof(long_varint)), out, 4),
	        -EBADMSG);
	n = frame(buf, ok, sizeof(ok));
	assert_int_equal(wp_ca_pb_response(buf, n, out, 4), 1);
	assert_int_equal(wp_ca_pb_response(buf, n - 1, out, 4), -EBADMSG); /* prefix says 3 */
	assert_int_equal(wp_ca_pb_response(buf, 4, out, 4), -EBADMSG);     /* no whole prefix */
	buf[0] = 1;                                                        /* compressed */
	assert_int_equal(wp_ca_pb_response(buf, n, out, 4), -EBADMSG);
}

static void test_csr(void **state)
{
	EVP_PKEY *key = wp_ca_key_new();
	size_t len = 0;
	char *pem;
	BIO *b;
	X509_REQ *req;
	STACK_OF(X509_EXTENSION) * exts;
	GENERAL_NAMES *names;
	const GENERAL_NAME *g;
	int crit = -1;

	(void)state;
	assert_non_null(key);
	assert_string_equal(EVP_PKEY_get0_type_name(key), "EC");
	assert_int_equal(EVP_PKEY_get_bits(key), 256);
	pem = wp_ca_csr_pem(key, ID, &len);
	assert_non_null(pem);
	assert_int_equal(strlen(pem), len);
	assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE REQUEST-----"));
	b = BIO_new_mem_buf(pem, (int)len);
	req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
	assert_non_null(req);
	assert_int_equal(X509_REQ_verify(req, key), 1);
	assert_int_equal(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 0);
	exts = X509_REQ_get_extensions(req);
	assert_int_equal(sk_X509_EXTENSION_num(exts), 1);
	names = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
	assert_int_equal(crit, 1);
	assert_int_equal(sk_GENERAL_NAME_num(names), 1);
	g = sk_GENERAL_NAME_value(names, 0);
	assert_int_equal(g->type, GEN_URI);
	assert_int_equal(g->d.uniformResourceIdentifier->length, strlen(ID));
	assert_memory_equal(g->d.uniformResourceIdentifier->data, ID, strlen(ID));
	GENERAL_NAMES_free(names);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	BIO_free(b);
	free(pem);
	EVP_PKEY_free(key);
}

/* ---- chains ---- */

static X509 *mkcert(EVP_PKEY *subject_key, EVP_PKEY *issuer_key, X509 *issuer, const char *uri,
                    long serial, long from_s, long to_s)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), from_s);
	X509_gmtime_adj(X509_getm_notAfter(x), to_s);
	X509_set_pubkey(x, subject_key);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
	                           (const unsigned char *)(uri ? "leaf" : "ca"), -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	if (uri != NULL) {
		char san[512];
		X509_EXTENSION *e;

		snprintf(san, sizeof(san), "URI:%s", uri);
		e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	} else {
		X509_EXTENSION *e =
		        X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
	X509_NAME_free(n);
	return x;
}

static char *pem_of(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *s;
	long n;

	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &data);
	s = strndup(data, (size_t)n);
	BIO_free(b);
	return s;
}

struct pki {
	EVP_PKEY *ca_key, *rogue_key, *key, *other_key;
	X509 *ca, *rogue;
	char root_file[64];
};

static int pki_setup(void **state)
{
	struct pki *p = calloc(1, sizeof(*p));
	FILE *f;
	int fd;

	p->ca_key = wp_ca_key_new();
	p->rogue_key = wp_ca_key_new();
	p->key = wp_ca_key_new();
	p->other_key = wp_ca_key_new();
	p->ca = mkcert(p->ca_key, p->ca_key, NULL, NULL, 1, -60, 3600);
	p->rogue = mkcert(p->rogue_key, p->rogue_key, NULL, NULL, 1, -60, 3600);
	strcpy(p->root_file, "/tmp/wp-test-ca-root.XXXXXX");
	fd = mkstemp(p->root_file);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	PEM_write_X509(f, p->ca);
	fclose(f);
	*state = p;
	return 0;
}

static int pki_teardown(void **state)
{
	struct pki *p = *state;

	unlink(p->root_file);
	X509_free(p->ca);
	X509_free(p->rogue);
	EVP_PKEY_free(p->ca_key);
	EVP_PKEY_free(p->rogue_key);
	EVP_PKEY_free(p->key);
	EVP_PKEY_free(p->other_key);
	free(p);
	return 0;
}

/* Checks a chain of leaf (+ issuer) against p's root file. */
static enum wp_ca_check check(struct pki *p, X509 *leaf, X509 *issuer, struct wp_ca_leaf *out,
                              char *why)
{
	char *a = pem_of(leaf), *b = issuer ? pem_of(issuer) : NULL;
	struct wp_ca_pb_str chain[2] = {{a, strlen(a)}, {b, b ? strlen(b) : 0}};
	enum wp_ca_check r =
	        wp_ca_chain_check(p->key, ID, chain, issuer ? 2 : 1, p->root_file, out, why, 256);

	free(a);
	free(b);
	X509_free(leaf);
	return r;
}

static void test_chain_ok(void **state)
{
	struct pki *p = *state;
	struct wp_ca_leaf leaf;
	char why[256];
	int64_t now = (int64_t)time(NULL);

	assert_int_equal(check(p, mkcert(p->key, p->ca_key, p->ca, ID, 0x1234abcd, -1, 60), p->ca,
	                       &leaf, why),
	                 WP_CA_CHECK_OK);
	assert_string_equal(leaf.id, ID);
	assert_string_equal(leaf.serial, "1234abcd");
	assert_true(leaf.not_before >= now - 5 && leaf.not_before <= now);
	assert_int_equal(leaf.not_after - leaf.not_before, 61);
	/* the leaf alone verifies too (the root is in the file) */
	assert_int_equal(
	        check(p, mkcert(p->key, p->ca_key, p->ca, ID, 2, -1, 60), NULL, &leaf, why),
	        WP_CA_CHECK_OK);
}

static void test_chain_refused(void **state)
{
	struct pki *p = *state;
	struct wp_ca_leaf leaf;
	char why[256];
	struct wp_ca_pb_str junk = {"-----BEGIN CERTIFICATE-----\nAAAA\n", 33};
	char *a, *two;
	struct wp_ca_pb_str chain[1];

	assert_int_equal(check(p,
	                       mkcert(p->key, p->ca_key, p->ca,
	                              "spiffe://cluster.local/ns/default/sa/intruder", 3, -1, 60),
	                       p->ca, &leaf, why),
	                 WP_CA_CHECK_SAN);
	assert_non_null(strstr(why, "intruder"));
	assert_int_equal(
	        check(p, mkcert(p->key, p->ca_key, p->ca, ID "/x", 3, -1, 60), p->ca, &leaf, why),
	        WP_CA_CHECK_SAN);
	assert_int_equal(
	        check(p, mkcert(p->other_key, p->ca_key, p->ca, ID, 4, -1, 60), p->ca, &leaf, why),
	        WP_CA_CHECK_KEY);
	assert_int_equal(check(p, mkcert(p->key, p->rogue_key, p->rogue, ID, 5, -1, 60), p->rogue,
	                       &leaf, why),
	                 WP_CA_CHECK_CHAIN);
	assert_non_null(strstr(why, "does not verify"));
	/* expired */
	assert_int_equal(
	        check(p, mkcert(p->key, p->ca_key, p->ca, ID, 6, -120, -60), p->ca, &leaf, why),
	        WP_CA_CHECK_CHAIN);
	/* not PEM; nothing; two certificates in one element */
	assert_int_equal(wp_ca_chain_check(p->key, ID, &junk, 1, p->root_file, &leaf, why, 256),
	                 WP_CA_CHECK_BAD_PEM);
	assert_int_equal(wp_ca_chain_check(p->key, ID, &junk, 0, p->root_file, &leaf, why, 256),
	                 WP_CA_CHECK_BAD_PEM);
	{
		X509 *l = mkcert(p->key, p->ca_key, p->ca, ID, 7, -1, 60);

		a = pem_of(l);
		X509_free(l);
	}
	two = malloc(2 * strlen(a) + 1);
	strcpy(two, a);
	strcat(two, a);
	chain[0] = (struct wp_ca_pb_str){two, strlen(two)};
	assert_int_equal(wp_ca_chain_check(p->key, ID, chain, 1, p->root_file, &leaf, why, 256),
	                 WP_CA_CHECK_BAD_PEM);
	chain[0] = (struct wp_ca_pb_str){a, strlen(a)};
	assert_int_equal(
	        wp_ca_chain_check(p->key, ID, chain, 1, "/nonexistent/root.pem", &leaf, why, 256),
	        WP_CA_CHECK_NO_ROOTS);
	free(two);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_request_bytes),
	        cmocka_unit_test(test_response),
	        cmocka_unit_test(test_response_broken),
	        cmocka_unit_test(test_csr),
	        cmocka_unit_test_setup_teardown(test_chain_ok, pki_setup, pki_teardown),
	        cmocka_unit_test_setup_teardown(test_chain_refused, pki_setup, pki_teardown),
	};

#ifdef WP_TEST_EC_ENGINE
	if (!wp_tls_ec_decode_install()) {
		fprintf(stderr, "dp/tls's EC key routing could not be installed\n");
		return 1;
	}
#endif
	return cmocka_run_group_tests(tests, NULL, NULL);
}
