/*
 * TLS 1.3 session ticket keys (see ticket.h): a ratchet of epoch keys,
 * behind OpenSSL's ticket key callback.
 *
 * A ticket's key name (16 bytes) is "wptk", the key set's random id (so a
 * ticket from another process or appliance is refused by name, without a
 * MAC check) and the epoch, big-endian. From the ratchet state of epoch E
 * come that epoch's AES-256 and HMAC-SHA256 keys (HMAC of the state with a
 * label each) and the state of E + 1 (HMAC with a third label); the keys of
 * E and E - 1 are kept, everything older is erased.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "kdf.h"
#include "ticket.h"
#include "tls_int.h"
#include "wp/counters.h"

#define KEY_LEN       32
#define NAME_MAGIC    "wptk"
#define DEFAULT_S     3600u
#define MAX_RATCHET   4096u /* epochs stepped at once; a bigger clock jump re-seeds */
#define TICKET_IV_LEN 16    /* AES-CBC */

struct epoch_keys {
	uint64_t epoch;
	bool valid;
	uint8_t aes[KEY_LEN], mac[KEY_LEN];
};

struct wp_tls_tickets {
	atomic_int refs;
	pthread_mutex_t mu;
	uint32_t period_s;
	uint64_t (*now_s)(void);
	uint8_t id[4];
	uint64_t epoch;         /* of state */
	uint8_t state[KEY_LEN]; /* the ratchet at epoch */
	struct epoch_keys cur, prev;
};

static int ex_idx = -1;
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;
/* Fetched once per process: EVP_aes_256_cbc() would make OpenSSL 3 look
 * the cipher up in its provider store on every ticket sealed or opened. */
static EVP_CIPHER *aes_cbc;

static void ex_init(void)
{
	ex_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	aes_cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
}

static uint64_t wall_s(void)
{
	return (uint64_t)time(NULL);
}

static bool hmac_label(const uint8_t key[KEY_LEN], const char *label, uint8_t out[KEY_LEN])
{
	unsigned int n = KEY_LEN;

	return HMAC(EVP_sha256(), key, KEY_LEN, (const unsigned char *)label, strlen(label), out,
	            &n) != NULL &&
	       n == KEY_LEN;
}

static bool derive(const uint8_t state[KEY_LEN], uint64_t epoch, struct epoch_keys *k)
{
	k->epoch = epoch;
	k->valid = hmac_label(state, "waypointd ticket aes", k->aes) &&
	           hmac_label(state, "waypointd ticket mac", k->mac);
	return k->valid;
}

static bool seed(struct wp_tls_tickets *k, uint64_t epoch)
{
	OPENSSL_cleanse(&k->prev, sizeof(k->prev));
	k->epoch = epoch;
	return RAND_bytes(k->state, KEY_LEN) == 1 && derive(k->state, epoch, &k->cur);
}

/* Moves the ratchet to epoch e (never back); false on a crypto failure. */
static bool advance(struct wp_tls_tickets *k, uint64_t e)
{
	if (e <= k->epoch)
		return k->cur.valid;
	if (e - k->epoch > MAX_RATCHET)
		return seed(k, e); /* nothing issued that long ago is still valid */
	while (k->epoch < e) {
		uint8_t next[KEY_LEN];

		if (!hmac_label(k->state, "waypointd ticket ratchet", next))
			return false;
		memcpy(k->state, next, KEY_LEN);
		OPENSSL_cleanse(next, sizeof(next));
		k->epoch++;
		k->prev = k->cur;
		if (!derive(k->state, k->epoch, &k->cur))
			return false;
	}
	if (k->prev.epoch + 1 != k->cur.epoch)
		OPENSSL_cleanse(&k->prev, sizeof(k->prev));
	return true;
}

struct wp_tls_tickets *wp_tls_tickets_new(uint32_t period_s)
{
	struct wp_tls_tickets *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return NULL;
	atomic_init(&k->refs, 1);
	k->period_s = period_s ? period_s : DEFAULT_S;
	k->now_s = wall_s;
	if (pthread_mutex_init(&k->mu, NULL) != 0) {
		free(k);
		return NULL;
	}
	if (RAND_bytes(k->id, sizeof(k->id)) != 1 || !seed(k, k->now_s() / k->period_s)) {
		wp_tls_tickets_unref(k);
		return NULL;
	}
	return k;
}

void wp_tls_tickets_ref(struct wp_tls_tickets *k)
{
	atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
}

void wp_tls_tickets_unref(struct wp_tls_tickets *k)
{
	if (k == NULL || atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) != 1)
		return;
	pthread_mutex_destroy(&k->mu);
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

void wp_tls_tickets_set_clock(struct wp_tls_tickets *k, uint64_t (*now_s)(void))
{
	pthread_mutex_lock(&k->mu);
	k->now_s = now_s ? now_s : wall_s;
	pthread_mutex_unlock(&k->mu);
}

/* The keys to seal a ticket with (enc: the current epoch's; fills name),
 * or to open the ticket called <name> with; false when there are none
 * (a key of another process, or of an epoch gone). */
static bool keys_for(struct wp_tls_tickets *k, bool enc, uint8_t name[16], struct epoch_keys *use,
                     bool *renewed)
{
	*renewed = false;
	pthread_mutex_lock(&k->mu);
	if (!advance(k, k->now_s() / k->period_s)) {
		pthread_mutex_unlock(&k->mu);
		return false;
	}
	if (enc) {
		*use = k->cur;
		memcpy(name, NAME_MAGIC, 4);
		memcpy(name + 4, k->id, 4);
		for (int i = 0; i < 8; i++)
			name[8 + i] = (uint8_t)(use->epoch >> (56 - 8 * i));
	} else if (memcmp(name, NAME_MAGIC, 4) == 0 && memcmp(name + 4, k->id, 4) == 0) {
		uint64_t e = 0;

		for (int i = 0; i < 8; i++)
			e = e << 8 | name[8 + i];
		if (e == k->cur.epoch) {
			*use = k->cur;
		} else if (k->prev.valid && e == k->prev.epoch) {
			*use = k->prev;
			*renewed = true;
		}
	}
	pthread_mutex_unlock(&k->mu);
	return use->valid;
}

static void count(uint64_t *ctrs, enum wp_ctr id)
{
	if (ctrs != NULL)
		wp_ctr_inc(ctrs, id);
}

static uint64_t *ssl_ctrs(SSL *s)
{
	struct wp_tls_conn *c = SSL_get_app_data(s);

	return c != NULL ? c->ctrs : NULL;
}

static int ticket_cb(SSL *s, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
	struct wp_tls_tickets *k = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), ex_idx);
	struct epoch_keys use = {0};
	OSSL_PARAM params[3];
	bool renewed;
	int rc;

	if (k == NULL)
		return -1;
	if (!keys_for(k, enc != 0, name, &use, &renewed)) {
		count(ssl_ctrs(s), WP_CTR_TLS_TICKET_REFUSED);
		return 0; /* unknown or expired key: a full handshake */
	}
	/* 2 on decryption: good, and a fresh ticket follows (under the
	 * current key): a TLS 1.3 client uses a ticket once (RFC 8446
	 * 4.6.1, rustls does), and OpenSSL sends none after a resumption
	 * unless asked */
	rc = enc ? 1 : 2;
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, use.mac, KEY_LEN);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (enc) {
		if (RAND_bytes(iv, TICKET_IV_LEN) != 1 ||
		    EVP_EncryptInit_ex(cctx, aes_cbc, NULL, use.aes, iv) != 1)
			rc = -1;
	} else if (EVP_DecryptInit_ex(cctx, aes_cbc, NULL, use.aes, iv) != 1) {
		rc = -1;
	}
	if (rc > 0 && EVP_MAC_CTX_set_params(hctx, params) != 1)
		rc = -1;
	OPENSSL_cleanse(&use, sizeof(use));
	if (rc > 0)
		count(ssl_ctrs(s), enc       ? WP_CTR_TLS_TICKET_ISSUED
		                   : renewed ? WP_CTR_TLS_TICKET_RENEWED
		                             : WP_CTR_TLS_TICKET_ACCEPTED);
	return rc;
}

/* AES-256-CBC of len bytes (a multiple of the block) from in to out. */
static bool cbc(const struct epoch_keys *use, const uint8_t *iv, const uint8_t *in, size_t len,
                uint8_t *out, bool enc)
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int n = 0;
	bool ok = x != NULL &&
	          EVP_CipherInit_ex(x, aes_cbc, NULL, use->aes, iv, enc ? 1 : 0) == 1 &&
	          EVP_CIPHER_CTX_set_padding(x, 0) == 1 &&
	          EVP_CipherUpdate(x, out, &n, in, (int)len) == 1 && (size_t)n == len;

	EVP_CIPHER_CTX_free(x);
	return ok;
}

int wp_tls_tickets_seal(struct wp_tls_tickets *k, const uint8_t *pt, size_t len, uint8_t *out,
                        size_t *out_len, uint64_t *ctrs)
{
	struct epoch_keys use = {0};
	size_t padded = (len / 16 + 1) * 16, n = 16 + TICKET_IV_LEN;
	uint8_t *body = out + n;
	bool renewed, ok;

	pthread_once(&ex_once, ex_init);
	if (aes_cbc == NULL || len > WP_TLS_TICKET_PLAIN_MAX ||
	    !keys_for(k, true, out, &use, &renewed))
		return -1;
	/* PKCS#7 padding, as OpenSSL's tickets */
	memcpy(body, pt, len);
	memset(body + len, (int)(padded - len), padded - len);
	ok = RAND_bytes(out + 16, TICKET_IV_LEN) == 1 &&
	     cbc(&use, out + 16, body, padded, body, true);
	if (ok) {
		n += padded;
		wp_tls_hmac(WP_TLS_SHA256, use.mac, KEY_LEN, out, n, out + n);
		*out_len = n + 32;
		count(ctrs, WP_CTR_TLS_TICKET_ISSUED);
	}
	OPENSSL_cleanse(&use, sizeof(use));
	return ok ? 0 : -1;
}

ssize_t wp_tls_tickets_open(struct wp_tls_tickets *k, const uint8_t *t, size_t len, uint8_t *out,
                            uint64_t *ctrs)
{
	struct epoch_keys use = {0};
	uint8_t name[16], mac[32];
	size_t body;
	bool renewed;
	ssize_t n = -1;

	pthread_once(&ex_once, ex_init);
	if (aes_cbc == NULL || len < 16 + TICKET_IV_LEN + 16 + 32)
		return -1;
	body = len - 16 - TICKET_IV_LEN - 32;
	if (body % 16 != 0)
		return -1;
	memcpy(name, t, 16);
	if (!keys_for(k, false, name, &use, &renewed)) {
		count(ctrs, WP_CTR_TLS_TICKET_REFUSED);
		return -1;
	}
	wp_tls_hmac(WP_TLS_SHA256, use.mac, KEY_LEN, t, len - 32, mac);
	if (CRYPTO_memcmp(mac, t + len - 32, 32) == 0 &&
	    cbc(&use, t + 16, t + 16 + TICKET_IV_LEN, body, out, false)) {
		uint8_t pad = out[body - 1];

		if (pad >= 1 && pad <= 16) {
			n = (ssize_t)(body - pad);
			count(ctrs,
			      renewed ? WP_CTR_TLS_TICKET_RENEWED : WP_CTR_TLS_TICKET_ACCEPTED);
		}
	}
	OPENSSL_cleanse(&use, sizeof(use));
	return n;
}

uint32_t wp_tls_tickets_lifetime(const struct wp_tls_tickets *k)
{
	return k->period_s;
}

uint64_t wp_tls_tickets_now(struct wp_tls_tickets *k)
{
	uint64_t t;

	pthread_mutex_lock(&k->mu);
	t = k->now_s();
	pthread_mutex_unlock(&k->mu);
	return t;
}

int wp_tls_tickets_attach(struct wp_tls_tickets *k, SSL_CTX *ctx)
{
	pthread_once(&ex_once, ex_init);
	if (ex_idx < 0 || aes_cbc == NULL || SSL_CTX_set_ex_data(ctx, ex_idx, k) != 1)
		return -ENOMEM;
	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1)
		return -ENOMEM;
	/* the lifetime hint: a ticket is good for at least one period */
	SSL_CTX_set_timeout(ctx, (long)k->period_s);
	return 0;
}
