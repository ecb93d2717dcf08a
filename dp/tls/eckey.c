/*
 * Fast decoding of EC public keys in certificates (see tls_int.h).
 *
 * OpenSSL 3.0 decodes the public key of every certificate it parses
 * through its provider decoders, and builds a decoder chain from the
 * provider store for each one (OSSL_DECODER_CTX_new_for_pkey). A server
 * handshake parses the client's certificate twice (on receipt, and again
 * when the stateless ticket copies the session through DER), a resumption
 * once (the ticket's session): measured in callgrind, that was 35% of the
 * instructions of a server's full mTLS handshake. OpenSSL 3.2 caches the
 * decoder; 3.0 only skips it when an ENGINE claims the key type, and then
 * decodes the key with its own built-in EC code (the 1.1.1 path), which
 * costs a few microseconds.
 *
 * So this registers an ENGINE that claims EC keys and hands back OpenSSL's
 * own built-in EC key method: nothing of ours is in the key parsing or in
 * the signature checks (ECDSA_verify in OpenSSL, the same arithmetic as
 * the provider's). The ENGINE API is deprecated in OpenSSL 3 but present
 * in every 3.x. Installed once per process, before the first SSL_CTX
 * (wp_tls_ctx_new), and never removed.
 *
 * What else it changes in the process: keys read from PEM files keep
 * their provider implementation, and OpenSSL's TLS key shares on P-256
 * work either way (dp_tls_verify tests both). But a new EC key context
 * asked for by name (EVP_PKEY_CTX_new_from_name "EC", hence EVP_EC_gen)
 * now gets the built-in method, which does not understand the group-name
 * parameter: EC keys are made by curve NID (EVP_PKEY_CTX_set_ec_paramgen_
 * curve_nid) instead, as cp/ca does (cp_ca_eckey tests it).
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* ENGINE_* and EVP_PKEY_meth_find */

#include <pthread.h>

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "tls_int.h"

static const int ec_nids[] = {EVP_PKEY_EC};
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int installed = -1;

static int ec_pkey_meths(ENGINE *e, EVP_PKEY_METHOD **pmeth, const int **nids, int nid)
{
	(void)e;
	if (pmeth == NULL) {
		*nids = ec_nids;
		return 1;
	}
	*pmeth = nid == EVP_PKEY_EC ? (EVP_PKEY_METHOD *)EVP_PKEY_meth_find(EVP_PKEY_EC) : NULL;
	return *pmeth != NULL;
}

static void install(void)
{
	ENGINE *e = ENGINE_new();

	if (e == NULL)
		goto fail;
	if (!ENGINE_set_id(e, "waypointd-ec-decode") ||
	    !ENGINE_set_name(e, "waypointd: OpenSSL's built-in EC key method") ||
	    !ENGINE_set_pkey_meths(e, ec_pkey_meths) || !ENGINE_add(e))
		goto fail;
	if (!ENGINE_init(e)) {
		ENGINE_remove(e);
		goto fail;
	}
	if (!ENGINE_set_default_pkey_meths(e)) {
		ENGINE_finish(e);
		ENGINE_remove(e);
		goto fail;
	}
	/* The default table holds its own functional reference and the engine
	 * list a structural one; OPENSSL_cleanup() releases both at exit. */
	ENGINE_finish(e);
	ENGINE_free(e);
	installed = 1;
	return;
fail:
	ENGINE_free(e);
	ERR_clear_error();
	installed = 0;
}

bool wp_tls_ec_decode_install(void)
{
	pthread_once(&once, install);
	return installed == 1;
}
