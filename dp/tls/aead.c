/*
 * The record layer's AEAD (see aead.h): AES-GCM on intel-ipsec-mb's direct
 * GCM functions, everything else on OpenSSL's EVP.
 *
 * Once per process (pthread_once) we ask intel-ipsec-mb for the manager
 * that fits this CPU (init_mb_mgr_auto) and keep its GCM entry points;
 * they take no manager and keep no state outside the key and the
 * per-record context, so all cores call them at once. The manager is kept
 * for the life of the process (the entry points belong to it). If the
 * library refuses (no manager), AES-GCM falls back to EVP like
 * ChaCha20-Poly1305.
 *
 * An expanded GCM key (round keys and the powers of the hash key) takes
 * about 1 KiB, aligned to a cache line as the library's header asks; it is
 * cleansed before it is freed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "aead.h"
#include "wp/common.h"

static const char *const evp_names[] = {
        [WP_TLS_AES_128_GCM] = "AES-128-GCM",
        [WP_TLS_AES_256_GCM] = "AES-256-GCM",
        [WP_TLS_CHACHA20_POLY1305] = "ChaCha20-Poly1305",
};
#define NALG WP_ARRAY_SIZE(evp_names)

/* Fetched once per process, shared read-only by all cores. */
static EVP_CIPHER *evp_ciphers[NALG];

#ifdef WP_HAVE_IPSEC_MB
struct gcm_fns {
	aes_gcm_pre_t pre;
	aes_gcm_init_t init;
	aes_gcm_enc_dec_update_t enc_update;
	aes_gcm_enc_dec_finalize_t enc_final;
	aes_gcm_enc_dec_t dec;
};

_Static_assert(WP_TLS_AES_128_GCM == 0 && WP_TLS_AES_256_GCM == 1,
               "gcm_fns is indexed by the algorithm");

static IMB_MGR *imb;
static struct gcm_fns gcm_fns[2]; /* AES-128-GCM, AES-256-GCM */
static char gcm_impl[64];

#define GCM_KEY_SIZE ((sizeof(struct gcm_key_data) + 63) & ~(size_t)63)

static void gcm_start(void)
{
	static const char *const arch_names[IMB_ARCH_NUM] = {
	        [IMB_ARCH_NOAESNI] = "no AES-NI", [IMB_ARCH_SSE] = "SSE",
	        [IMB_ARCH_AVX] = "AVX",           [IMB_ARCH_AVX2] = "AVX2",
	        [IMB_ARCH_AVX512] = "AVX-512",
	};
	IMB_ARCH arch = IMB_ARCH_NONE;
	IMB_MGR *m = alloc_mb_mgr(0);

	if (m == NULL)
		return;
	init_mb_mgr_auto(m, &arch);
	if (imb_get_errno(m) != 0 || arch <= IMB_ARCH_NONE || arch >= IMB_ARCH_NUM) {
		free_mb_mgr(m);
		return;
	}
	imb = m;
	gcm_fns[0] = (struct gcm_fns){m->gcm128_pre, m->gcm128_init, m->gcm128_enc_update,
	                              m->gcm128_enc_finalize, m->gcm128_dec};
	gcm_fns[1] = (struct gcm_fns){m->gcm256_pre, m->gcm256_init, m->gcm256_enc_update,
	                              m->gcm256_enc_finalize, m->gcm256_dec};
	snprintf(gcm_impl, sizeof(gcm_impl), "intel-ipsec-mb %s (%s%s)", imb_get_version_str(),
	         arch_names[arch], (m->features & IMB_FEATURE_VAES) ? ", VAES" : "");
}

static bool on_gcm(enum wp_tls_aead_alg alg)
{
	return alg != WP_TLS_CHACHA20_POLY1305 && imb != NULL;
}
#else
static bool on_gcm(enum wp_tls_aead_alg alg)
{
	(void)alg;
	return false;
}
#endif

static pthread_once_t start_once = PTHREAD_ONCE_INIT;

static void start(void)
{
#ifdef WP_HAVE_IPSEC_MB
	gcm_start();
#endif
	for (size_t i = 0; i < NALG; i++)
		if (!on_gcm((enum wp_tls_aead_alg)i))
			evp_ciphers[i] = EVP_CIPHER_fetch(NULL, evp_names[i], NULL);
	ERR_clear_error();
}

bool wp_tls_aead_available(enum wp_tls_aead_alg alg)
{
	if ((size_t)alg >= NALG)
		return false;
	pthread_once(&start_once, start);
	return on_gcm(alg) || evp_ciphers[alg] != NULL;
}

const char *wp_tls_aead_impl(enum wp_tls_aead_alg alg)
{
	if (!wp_tls_aead_available(alg))
		return "unavailable";
#ifdef WP_HAVE_IPSEC_MB
	if (on_gcm(alg))
		return gcm_impl;
#endif
	return OpenSSL_version(OPENSSL_VERSION);
}

int wp_tls_aead_set_key(struct wp_tls_aead *a, enum wp_tls_aead_alg alg, const uint8_t *key,
                        bool enc)
{
	bool gcm;

	if (!wp_tls_aead_available(alg))
		return -EPROTO;
	gcm = on_gcm(alg);
	if (a->impl != NULL && (a->alg != alg || a->gcm != gcm))
		wp_tls_aead_clear(a);
	a->alg = (uint8_t)alg;
	a->gcm = gcm;
#ifdef WP_HAVE_IPSEC_MB
	if (a->gcm) {
		if (a->impl == NULL && (a->impl = aligned_alloc(64, GCM_KEY_SIZE)) == NULL)
			return -ENOMEM;
		gcm_fns[alg].pre(key, a->impl);
		return 0;
	}
#endif
	if (a->impl == NULL && (a->impl = EVP_CIPHER_CTX_new()) == NULL)
		return -ENOMEM;
	if (EVP_CipherInit_ex2(a->impl, evp_ciphers[alg], key, NULL, enc ? 1 : 0, NULL) != 1) {
		ERR_clear_error();
		return -EPROTO;
	}
	return 0;
}

void wp_tls_aead_clear(struct wp_tls_aead *a)
{
	if (a->impl == NULL)
		return;
#ifdef WP_HAVE_IPSEC_MB
	if (a->gcm) {
		OPENSSL_cleanse(a->impl, GCM_KEY_SIZE);
		free(a->impl);
		a->impl = NULL;
		return;
	}
#endif
	EVP_CIPHER_CTX_free(a->impl);
	a->impl = NULL;
}

int wp_tls_aead_seal_begin(struct wp_tls_aead_seal *s, const struct wp_tls_aead *a,
                           const uint8_t iv[WP_TLS_AEAD_IV], const uint8_t *aad, size_t aad_len)
{
	int n;

	s->a = a;
#ifdef WP_HAVE_IPSEC_MB
	if (a->gcm) {
		gcm_fns[a->alg].init(a->impl, &s->gcm, iv, aad, aad_len);
		return 0;
	}
#endif
	if (EVP_EncryptInit_ex(a->impl, NULL, NULL, NULL, iv) != 1 ||
	    EVP_EncryptUpdate(a->impl, NULL, &n, aad, (int)aad_len) != 1) {
		ERR_clear_error();
		return -EPROTO;
	}
	return 0;
}

int wp_tls_aead_seal_update(struct wp_tls_aead_seal *s, uint8_t *out, const uint8_t *in, size_t len)
{
	int n;

	if (len == 0)
		return 0;
#ifdef WP_HAVE_IPSEC_MB
	if (s->a->gcm) {
		gcm_fns[s->a->alg].enc_update(s->a->impl, &s->gcm, out, in, len);
		return 0;
	}
#endif
	if (EVP_EncryptUpdate(s->a->impl, out, &n, in, (int)len) != 1 || (size_t)n != len) {
		ERR_clear_error();
		return -EPROTO;
	}
	return 0;
}

int wp_tls_aead_seal_end(struct wp_tls_aead_seal *s, uint8_t tag[WP_TLS_AEAD_TAG])
{
	int n;

#ifdef WP_HAVE_IPSEC_MB
	if (s->a->gcm) {
		gcm_fns[s->a->alg].enc_final(s->a->impl, &s->gcm, tag, WP_TLS_AEAD_TAG);
		OPENSSL_cleanse(&s->gcm, sizeof(s->gcm));
		return 0;
	}
#endif
	if (EVP_EncryptFinal_ex(s->a->impl, tag, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(s->a->impl, EVP_CTRL_AEAD_GET_TAG, WP_TLS_AEAD_TAG, tag) != 1) {
		ERR_clear_error();
		return -EPROTO;
	}
	return 0;
}

bool wp_tls_aead_open(const struct wp_tls_aead *a, const uint8_t iv[WP_TLS_AEAD_IV],
                      const uint8_t *aad, size_t aad_len, uint8_t *buf, size_t len,
                      const uint8_t tag[WP_TLS_AEAD_TAG])
{
	int n;
	bool ok;

#ifdef WP_HAVE_IPSEC_MB
	if (a->gcm) {
		struct gcm_context_data ctx;
		uint8_t got[WP_TLS_AEAD_TAG];

		gcm_fns[a->alg].dec(a->impl, &ctx, buf, buf, len, iv, aad, aad_len, got,
		                    sizeof(got));
		ok = CRYPTO_memcmp(got, tag, sizeof(got)) == 0;
		OPENSSL_cleanse(&ctx, sizeof(ctx));
		return ok;
	}
#endif
	ok = EVP_DecryptInit_ex(a->impl, NULL, NULL, NULL, iv) == 1 &&
	     EVP_CIPHER_CTX_ctrl(a->impl, EVP_CTRL_AEAD_SET_TAG, WP_TLS_AEAD_TAG, (void *)tag) ==
	             1 &&
	     EVP_DecryptUpdate(a->impl, NULL, &n, aad, (int)aad_len) == 1 &&
	     EVP_DecryptUpdate(a->impl, buf, &n, buf, (int)len) == 1 &&
	     EVP_DecryptFinal_ex(a->impl, buf + len, &n) == 1;
	if (!ok)
		ERR_clear_error();
	return ok;
}
