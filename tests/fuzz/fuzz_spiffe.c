/*
 * libFuzzer driver for the SPIFFE identity checks of dp/tls/tls.c: the ID
 * parser (wp_tls_spiffe_parse), the peer certificate's subjectAltName check
 * (wp_tls_check_identity, from dp/tls/tls_int.h) and the client's expected
 * peer (wp_tls_conn_set_expected_peer). Each is compared with a reference
 * written here from the rules alone, so a wrong accept or reject is a
 * finding, not only a crash:
 *
 *   an ID is "spiffe://" (any case) + exactly five '/'-separated segments
 *   <td> "ns" <ns> "sa" <sa>, td/ns/sa non-empty, every byte 0x21..0x7e;
 *   a leaf passes when its SAN holds exactly one URI, shorter than
 *   WP_TLS_ID_MAX, that is such an ID, whose trust domain is ours or an
 *   alias, and that equals the expected peer when one is set; it then
 *   becomes the peer ID, and its parts are slices of it.
 *
 * Input: byte 0 holds flags (0x01: the first URI is also the expected peer;
 * 0x80: the rest is the raw DER of a subjectAltName extension). Otherwise
 * the rest is a list of SAN entries, each <type> <len> <len bytes>: type % 4
 * picks URI, DNS, email or IP, and type & 4 adds 256 to len. Every URI entry
 * is also parsed on its own.
 */
#include <stdint.h>
#include <string.h>

#include <errno.h>

#include <openssl/x509v3.h>

#include "tls_int.h"

#define TD    "cluster.local"
#define ALIAS "td.example"

struct ref_id {
	bool ok;
	size_t td_off, td_len, ns_off, ns_len, sa_off, sa_len;
};

/* The reference parser: split after the scheme, count segments. */
static struct ref_id ref_parse(const char *id, size_t len)
{
	struct ref_id r = {0};
	size_t start[5], end[5], nseg = 0, i, pos = 9;

	if (len < 9 || strncasecmp(id, "spiffe://", 9) != 0)
		return r;
	for (i = 0; i < len; i++)
		if ((unsigned char)id[i] < 0x21 || (unsigned char)id[i] > 0x7e)
			return r;
	start[0] = pos;
	for (i = pos; i <= len; i++) {
		if (i == len || id[i] == '/') {
			if (nseg == 5)
				return r; /* a sixth segment */
			end[nseg] = i;
			nseg++;
			if (nseg < 5)
				start[nseg] = i + 1;
		}
	}
	if (nseg != 5)
		return r;
	for (i = 0; i < 5; i++)
		if (end[i] == start[i])
			return r;
	if (end[1] - start[1] != 2 || memcmp(id + start[1], "ns", 2) != 0 ||
	    end[3] - start[3] != 2 || memcmp(id + start[3], "sa", 2) != 0)
		return r;
	r.ok = true;
	r.td_off = start[0];
	r.td_len = end[0] - start[0];
	r.ns_off = start[2];
	r.ns_len = end[2] - start[2];
	r.sa_off = start[4];
	r.sa_len = end[4] - start[4];
	return r;
}

static void check_parse(const char *id, size_t len)
{
	const char *td, *ns, *sa;
	size_t td_len, ns_len, sa_len;
	struct ref_id want = ref_parse(id, len);
	int rc = wp_tls_spiffe_parse(id, len, &td, &td_len, &ns, &ns_len, &sa, &sa_len);

	if ((rc == 0) != want.ok || (rc != 0 && rc != -EINVAL))
		abort();
	if (rc == 0 && (td != id + want.td_off || td_len != want.td_len || ns != id + want.ns_off ||
	                ns_len != want.ns_len || sa != id + want.sa_off || sa_len != want.sa_len))
		abort();
}

static bool slice_is(const char *p, size_t len, const char *s)
{
	return strlen(s) == len && memcmp(p, s, len) == 0;
}

/* What wp_tls_check_identity must answer for the SAN OpenSSL decodes from <leaf>. */
static enum wp_tls_fail ref_identity(X509 *leaf, const char *expected)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	const ASN1_IA5STRING *uri = NULL;
	enum wp_tls_fail f = WP_TLS_FAIL_NONE;
	struct ref_id id;
	int nuri = 0;

	if (gens == NULL)
		return WP_TLS_FAIL_NO_SPIFFE_ID;
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_URI) {
			nuri++;
			uri = g->d.uniformResourceIdentifier;
		}
	}
	if (nuri != 1) {
		f = WP_TLS_FAIL_NO_SPIFFE_ID;
	} else {
		const char *s = (const char *)ASN1_STRING_get0_data(uri);
		size_t len = (size_t)ASN1_STRING_length(uri);

		id = ref_parse(s, len);
		if (len >= WP_TLS_ID_MAX || !id.ok)
			f = WP_TLS_FAIL_NO_SPIFFE_ID;
		else if (!slice_is(s + id.td_off, id.td_len, TD) &&
		         !slice_is(s + id.td_off, id.td_len, ALIAS))
			f = WP_TLS_FAIL_FOREIGN_TD;
		else if (expected != NULL && !slice_is(s, len, expected))
			f = WP_TLS_FAIL_WRONG_PEER;
	}
	GENERAL_NAMES_free(gens);
	return f;
}

/* Adds the SAN entries of <p, n> to <gens>; returns the first URI entry. */
static const uint8_t *add_entries(GENERAL_NAMES *gens, const uint8_t *p, size_t n,
                                  size_t *first_uri_len)
{
	const uint8_t *first = NULL;

	while (n >= 2) {
		int type = p[0] % 4;
		size_t len = WP_MIN((size_t)p[1] + (p[0] & 4 ? 256 : 0), n - 2);
		const uint8_t *v = p + 2;
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_STRING *s = type == 3 ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();

		if (g == NULL || s == NULL || !ASN1_STRING_set(s, v, (int)len))
			abort();
		switch (type) {
		case 0:
			GENERAL_NAME_set0_value(g, GEN_URI, s);
			if (first == NULL) {
				first = v;
				*first_uri_len = len;
			}
			check_parse((const char *)v, len);
			break;
		case 1:
			GENERAL_NAME_set0_value(g, GEN_DNS, s);
			break;
		case 2:
			GENERAL_NAME_set0_value(g, GEN_EMAIL, s);
			break;
		default:
			GENERAL_NAME_set0_value(g, GEN_IPADD, s);
			break;
		}
		if (!sk_GENERAL_NAME_push(gens, g))
			abort();
		p += 2 + len;
		n -= 2 + len;
	}
	return first;
}

static X509 *leaf_with_san(const uint8_t *data, size_t size, bool raw, const uint8_t **first,
                           size_t *first_len)
{
	X509 *x = X509_new();

	if (x == NULL)
		abort();
	*first = NULL;
	if (raw) {
		ASN1_OCTET_STRING *der = ASN1_OCTET_STRING_new();
		X509_EXTENSION *ext;

		if (der == NULL || !ASN1_OCTET_STRING_set(der, data, (int)size))
			abort();
		ext = X509_EXTENSION_create_by_NID(NULL, NID_subject_alt_name, 0, der);
		if (ext == NULL || !X509_add_ext(x, ext, -1))
			abort();
		X509_EXTENSION_free(ext);
		ASN1_OCTET_STRING_free(der);
	} else {
		GENERAL_NAMES *gens = GENERAL_NAMES_new();

		if (gens == NULL)
			abort();
		*first = add_entries(gens, data, size, first_len);
		if (sk_GENERAL_NAME_num(gens) > 0 &&
		    !X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0))
			abort();
		GENERAL_NAMES_free(gens);
	}
	return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wp_tls_ctx t = {.cfg = {.trust_domain = TD, .aliases = {ALIAS}}};
	struct wp_tls_conn c = {.ctx = &t, .role = WP_TLS_CLIENT};
	const uint8_t *first;
	size_t first_len = 0;
	enum wp_tls_fail want, got;
	X509 *leaf;

	if (size < 1 || size > 4096)
		return 0;
	leaf = leaf_with_san(data + 1, size - 1, data[0] & 0x80, &first, &first_len);

	/* The expected peer: accepted exactly when it is a short valid ID. */
	if ((data[0] & 0x01) && first != NULL) {
		char id[512];
		size_t len;
		int rc;

		memcpy(id, first, first_len);
		id[first_len] = '\0';
		len = strlen(id);
		rc = wp_tls_conn_set_expected_peer(&c, id);
		if (rc != (len >= WP_TLS_ID_MAX    ? -ENAMETOOLONG
		           : ref_parse(id, len).ok ? 0
		                                   : -EINVAL))
			abort();
		if (rc == 0 && strcmp(c.expected, id) != 0)
			abort();
	}

	want = ref_identity(leaf, c.expected);
	got = wp_tls_check_identity(&c, leaf);
	if (got != want)
		abort();
	c.state = ST_ESTABLISHED;
	if (got == WP_TLS_FAIL_NONE) {
		const char *id = wp_tls_conn_peer_id(&c), *td, *ns, *sa;
		size_t td_len, ns_len, sa_len;
		struct ref_id r;

		if (id == NULL ||
		    wp_tls_conn_peer_parts(&c, &td, &td_len, &ns, &ns_len, &sa, &sa_len) != 0)
			abort();
		r = ref_parse(id, strlen(id));
		if (!r.ok || td != id + r.td_off || td_len != r.td_len || ns != id + r.ns_off ||
		    ns_len != r.ns_len || sa != id + r.sa_off || sa_len != r.sa_len)
			abort();
		if (c.expected != NULL && strcmp(c.expected, id) != 0)
			abort();
	} else if (c.peer_id != NULL) {
		abort(); /* a refused leaf leaves no identity behind */
	}
	OPENSSL_free(c.peer_id);
	OPENSSL_free(c.expected);
	X509_free(leaf);
	return 0;
}
