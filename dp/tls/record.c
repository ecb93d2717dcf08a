/*
 * TLS 1.3 record layer after the handshake (see record.h): the kTLS idea
 * in user space. tls.c lets OpenSSL run the handshake, then moves the
 * connection here and frees the SSL object (~18 KB per idle connection).
 *
 * What a connection keeps: per direction an AEAD key (aead.c: AES-GCM on
 * intel-ipsec-mb, ChaCha20-Poly1305 on EVP), the 12-byte IV, the 64-bit
 * record sequence number and the traffic secret (the next one is derived
 * from it on KeyUpdate, RFC 8446 §7.2); the input and output buffers
 * exist only while bytes are in flight (wp_tls_rec_trim gives them back
 * when idle: page-sized ones to a per-thread cache, buf_put).
 *
 * Records (§5): the outer header is always (application_data, 0x0303,
 * length); the AEAD nonce is the IV xor the sequence number, the AAD the
 * 5-byte header; the plaintext is content || content type || zero
 * padding. We read: application data, alerts (close_notify is EOF,
 * user_canceled is ignored, the rest are fatal) and the post-handshake
 * messages KeyUpdate (both roles) and NewSessionTicket (client: skipped
 * without buffering, we do not resume as a client); anything else is
 * unexpected_message. We write records of at most 16 KiB of plaintext,
 * without padding, and a KeyUpdate of our own once a key protected
 * wp_tls_rec_rekey_after records (AES-GCM's safety margin, §5.5). Every error queues
 * the alert RFC 8446 asks for (unless we already sent close_notify), fails
 * the connection and increments a TLS_REC_* counter.
 *
 * Buffers: the input holds [plaintext of the current record][ciphertext
 * not yet decrypted]; records are decrypted in place. It accepts cap bytes
 * unread (at least one whole record) and grows on demand, never beyond
 * cap plus one record. The output holds whole records until taken;
 * wp_tls_rec_write_into seals them into the caller's memory instead (TCP's
 * send ring, in up to two pieces), when the output is empty.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/uio.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "kdf.h"
#include "record_int.h"
#include "wp/counters.h"

enum {
	CT_CCS = 20,
	CT_ALERT = 21,
	CT_HANDSHAKE = 22,
	CT_APP = 23,
};

enum {
	HS_NEW_SESSION_TICKET = 4,
	HS_KEY_UPDATE = 24,
};

enum {
	AL_CLOSE_NOTIFY = 0,
	AL_UNEXPECTED_MESSAGE = 10,
	AL_BAD_RECORD_MAC = 20,
	AL_RECORD_OVERFLOW = 22,
	AL_ILLEGAL_PARAMETER = 47,
	AL_DECODE_ERROR = 50,
	AL_INTERNAL_ERROR = 80,
	AL_USER_CANCELED = 90,
};

uint64_t wp_tls_rec_rekey_after = (uint64_t)1 << 24;

_Static_assert(REC_OVERHEAD == WP_TLS_REC_OVERHEAD && REC_MAX_PT == WP_TLS_REC_MAX_PLAIN,
               "tls.h's record sizes are the record layer's");

static const struct suite suites[] = {
        {0x1301, 16, 32, WP_TLS_AES_128_GCM},
        {0x1302, 32, 48, WP_TLS_AES_256_GCM},
        {0x1303, 32, 32, WP_TLS_CHACHA20_POLY1305},
};

static inline void rec_ctr(struct wp_tls_rec *r, enum wp_ctr c)
{
	if (r->ctrs != NULL)
		wp_ctr_inc(r->ctrs, c);
}

static const struct suite *find_suite(uint16_t id)
{
	for (size_t i = 0; i < WP_ARRAY_SIZE(suites); i++)
		if (suites[i].id == id)
			return &suites[i];
	return NULL;
}

bool wp_tls_rec_suite_ok(uint16_t id, size_t secret_len)
{
	const struct suite *s = find_suite(id);

	return s != NULL && s->hash_len == secret_len && wp_tls_aead_available(s->alg);
}

const char *wp_tls_record_crypto(uint16_t suite)
{
	const struct suite *s = find_suite(suite);

	return s != NULL ? wp_tls_aead_impl(s->alg) : "unavailable";
}

/* ---- key schedule ---- */

/* HKDF-Expand-Label(secret, label, "", out_len) (RFC 8446 §7.1). */
static int expand_label(const struct suite *s, const uint8_t *secret, const char *label,
                        uint8_t *out, size_t out_len)
{
	return wp_tls_expand_label(wp_tls_hash_alg_of(s->hash_len), secret, label, NULL, 0, out,
	                           out_len);
}

/* (Re)keys one direction from d->secret; the sequence number restarts. */
static int install(struct wp_tls_rec *r, struct dir *d, bool enc)
{
	struct wp_tls_hmac_key k;
	uint8_t key[32];
	int err;

	wp_tls_hmac_key_init(&k, wp_tls_hash_alg_of(r->suite->hash_len), d->secret,
	                     r->suite->hash_len);
	if ((err = wp_tls_expand_label_with(&k, "key", NULL, 0, key, r->suite->key_len)) != 0 ||
	    (err = wp_tls_expand_label_with(&k, "iv", NULL, 0, d->iv, REC_IV)) != 0)
		goto out;
	err = wp_tls_aead_set_key(&d->aead, r->suite->alg, key, enc);
	d->seq = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(&k, sizeof(k));
	return err;
}

/* secret = HKDF-Expand-Label(secret, "traffic upd", "", Hash.length),
 * then new keys (§7.2). The old secret does not survive. */
int wp_tls_rec_update_dir(struct wp_tls_rec *r, struct dir *d, bool enc)
{
	uint8_t next[WP_TLS_REC_SECRET_MAX];
	int err = expand_label(r->suite, d->secret, "traffic upd", next, r->suite->hash_len);

	if (err == 0) {
		memcpy(d->secret, next, r->suite->hash_len);
		err = install(r, d, enc);
	}
	OPENSSL_cleanse(next, sizeof(next));
	return err;
}

static void nonce(const struct dir *d, uint8_t out[REC_IV])
{
	memcpy(out, d->iv, REC_IV);
	for (int i = 0; i < 8; i++)
		out[REC_IV - 1 - i] ^= (uint8_t)(d->seq >> (8 * i));
}

/* ---- buffers ---- */

static uint32_t round_up(size_t n)
{
	return (uint32_t)((n + 4095) & ~(size_t)4095);
}

/*
 * Idle connections give their buffers back (wp_tls_rec_trim) and take new
 * ones for each keepalive PING some seconds later: at 100,000 idle
 * connections that is 20,000 4 KiB allocations a second from a heap
 * fragmented by the connections' own state, where malloc showed in the
 * profile. Buffers of the smallest size (one page: a PING record and
 * most requests fit) go to a small cache per thread instead, and come back
 * from it. The cache holds at most BUF_CACHE; the rest are freed. A thread
 * that ends frees its cache (pthread key destructor).
 */
#define BUF_SMALL 4096u
#define BUF_CACHE 256

struct buf_cache {
	uint8_t *b[BUF_CACHE];
	unsigned n;
	bool keyed; /* the destructor will run at thread exit */
};

static __thread struct buf_cache bufs;
static pthread_key_t bufs_key;
static pthread_once_t bufs_once = PTHREAD_ONCE_INIT;
static bool bufs_key_ok;

static void bufs_drop(void *arg)
{
	struct buf_cache *c = arg;

	while (c->n > 0)
		OPENSSL_free(c->b[--c->n]);
}

static void bufs_key_init(void)
{
	bufs_key_ok = pthread_key_create(&bufs_key, bufs_drop) == 0;
}

/* Gives back a buffer of cap bytes (NULL: nothing). <secret>: it held
 * plaintext, cleansed first. */
static void buf_put(uint8_t *p, uint32_t cap, bool secret)
{
	if (p == NULL)
		return;
	if (secret)
		OPENSSL_cleanse(p, cap);
	if (cap == BUF_SMALL && bufs.n < BUF_CACHE) {
		if (!bufs.keyed) {
			pthread_once(&bufs_once, bufs_key_init);
			if (!bufs_key_ok || pthread_setspecific(bufs_key, &bufs) != 0) {
				OPENSSL_free(p);
				return;
			}
			bufs.keyed = true;
		}
		bufs.b[bufs.n++] = p;
		return;
	}
	OPENSSL_free(p);
}

/* Grows <*p> of <*cap> bytes to <want> (a multiple of BUF_SMALL). */
static int buf_grow(struct wp_tls_rec *r, uint8_t **p, uint32_t *cap, uint32_t want)
{
	uint8_t *n;

	if (*p == NULL && want == BUF_SMALL && bufs.n > 0) {
		*p = bufs.b[--bufs.n];
		*cap = want;
		return 0;
	}
	n = OPENSSL_realloc(*p, want);
	if (n == NULL) {
		rec_ctr(r, WP_CTR_TLS_NOMEM);
		return -ENOMEM;
	}
	*p = n;
	*cap = want;
	return 0;
}

unsigned wp_tls_rec_cached(void)
{
	return bufs.n;
}

/* Room for `more` bytes at the end of the output. */
int wp_tls_rec_out_room(struct wp_tls_rec *r, size_t more)
{
	if (r->out_off > 0 && r->out_len + more > r->out_cap) {
		memmove(r->out, r->out + r->out_off, r->out_len - r->out_off);
		r->out_len -= r->out_off;
		r->out_off = 0;
	}
	if (r->out_len + more <= r->out_cap)
		return 0;
	return buf_grow(r, &r->out, &r->out_cap, round_up(r->out_len + more));
}

/* Room for `more` bytes at the end of the input, keeping unread plaintext. */
static int in_room(struct wp_tls_rec *r, size_t more)
{
	uint32_t start = r->pt_len > 0 ? r->pt_off : r->in_off;

	/* No moving while the application reads the plaintext in place:
	 * what does not fit waits in TCP for the next feed. */
	if (r->viewing && r->pt_len > 0 && r->in_len + more > r->in_cap)
		return -EAGAIN;
	if (start > 0 && r->in_len + more > r->in_cap) {
		memmove(r->in, r->in + start, r->in_len - start);
		r->in_len -= start;
		r->in_off -= start;
		if (r->pt_len > 0)
			r->pt_off -= start;
		else
			r->pt_off = 0;
	}
	if (r->in_len + more <= r->in_cap)
		return 0;
	return buf_grow(r, &r->in, &r->in_cap, round_up(r->in_len + more));
}

/* ---- writing records ---- */

/* Where a record is sealed: up to two pieces of memory (a ring's free
 * space wraps once), written in order; pos bytes written so far. */
struct sink {
	uint8_t *p[2];
	size_t n[2];
	size_t pos;
};

/* The next contiguous stretch of the sink, at most want bytes long. */
static uint8_t *sink_at(const struct sink *o, size_t want, size_t *got)
{
	size_t off = o->pos;

	if (off < o->n[0]) {
		*got = WP_MIN(want, o->n[0] - off);
		return o->p[0] + off;
	}
	off -= o->n[0];
	*got = WP_MIN(want, o->n[1] - off);
	return o->p[1] + off;
}

static void sink_put(struct sink *o, const uint8_t *src, size_t len)
{
	while (len > 0) {
		size_t n;
		uint8_t *d = sink_at(o, len, &n);

		memcpy(d, src, n);
		o->pos += n;
		src += n;
		len -= n;
	}
}

/* Encrypts len bytes of src into the sink (AES-GCM and ChaCha20-Poly1305
 * turn each input byte into one output byte, so a piece boundary may fall
 * anywhere). */
static bool sink_encrypt(struct sink *o, struct wp_tls_aead_seal *s, const uint8_t *src, size_t len)
{
	while (len > 0) {
		size_t n;
		uint8_t *d = sink_at(o, len, &n);

		if (wp_tls_aead_seal_update(s, d, src, n) != 0)
			return false;
		o->pos += n;
		src += n;
		len -= n;
	}
	return true;
}

/* Seals one record of content type `type` on the sending key into the
 * sink, which has room for len + REC_OVERHEAD bytes. 0 or -EPROTO. */
static int seal_into(struct wp_tls_rec *r, uint8_t type, const uint8_t *data, size_t len,
                     struct sink *o)
{
	struct dir *d = &r->wr;
	uint8_t h[REC_HDR], iv[REC_IV], tag[REC_TAG];
	size_t ct = len + 1 + REC_TAG;
	struct wp_tls_aead_seal s;

	if (d->seq == UINT64_MAX) {
		rec_ctr(r, WP_CTR_TLS_REC_SEQ_WRAP);
		return -EPROTO;
	}
	h[0] = CT_APP;
	h[1] = 3;
	h[2] = 3;
	h[3] = (uint8_t)(ct >> 8);
	h[4] = (uint8_t)ct;
	nonce(d, iv);
	sink_put(o, h, REC_HDR);
	if (wp_tls_aead_seal_begin(&s, &d->aead, iv, h, REC_HDR) != 0 ||
	    !sink_encrypt(o, &s, data, len) || !sink_encrypt(o, &s, &type, 1) ||
	    wp_tls_aead_seal_end(&s, tag) != 0) {
		rec_ctr(r, WP_CTR_TLS_REC_CRYPTO);
		return -EPROTO;
	}
	sink_put(o, tag, REC_TAG);
	OPENSSL_cleanse(iv, sizeof(iv));
	d->seq++;
	return 0;
}

/* Appends one record of content type `type` protected with the sending
 * key. The caller made room (len + REC_OVERHEAD). */
int wp_tls_rec_seal(struct wp_tls_rec *r, uint8_t type, const void *data, size_t len)
{
	struct sink o = {{r->out + r->out_len, NULL}, {len + REC_OVERHEAD, 0}, 0};
	int rc = seal_into(r, type, data, len, &o);

	if (rc == 0)
		r->out_len += (uint32_t)(len + REC_OVERHEAD);
	return rc;
}

static void rec_failed(struct wp_tls_rec *r, enum wp_tls_fail f)
{
	if (r->state == R_FAILED)
		return;
	r->state = R_FAILED;
	r->fail = (uint8_t)f;
}

/* A fatal error of ours: tell the peer (unless we already closed) and
 * fail. The caller counted the reason. Returns -EPROTO. */
static ssize_t fatal(struct wp_tls_rec *r, uint8_t alert)
{
	uint8_t a[2] = {2, alert};

	if (r->state == R_OPEN && !r->shut_sent &&
	    wp_tls_rec_out_room(r, sizeof(a) + REC_OVERHEAD) == 0 &&
	    wp_tls_rec_seal(r, CT_ALERT, a, sizeof(a)) == 0)
		r->shut_sent = true; /* nothing may follow a fatal alert */
	rec_failed(r, WP_TLS_FAIL_OTHER);
	return -EPROTO;
}

int wp_tls_rec_key_update(struct wp_tls_rec *r, bool request_peer)
{
	uint8_t m[5] = {HS_KEY_UPDATE, 0, 0, 1, request_peer ? 1 : 0};

	if (r->state == R_FAILED)
		return -EPROTO;
	if (r->shut_sent)
		return -EPIPE;
	if (wp_tls_rec_out_room(r, sizeof(m) + REC_OVERHEAD) != 0)
		return -ENOMEM;
	if (wp_tls_rec_seal(r, CT_HANDSHAKE, m, sizeof(m)) != 0) {
		rec_failed(r, WP_TLS_FAIL_OTHER); /* counted by seal */
		return -EPROTO;
	}
	if (wp_tls_rec_update_dir(r, &r->wr, true) != 0) {
		ERR_clear_error();
		rec_ctr(r, WP_CTR_TLS_REC_CRYPTO);
		rec_failed(r, WP_TLS_FAIL_OTHER);
		return -EPROTO;
	}
	rec_ctr(r, WP_CTR_TLS_REC_KEY_UPDATE_TX);
	return 0;
}

ssize_t wp_tls_rec_write(struct wp_tls_rec *r, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t pend = r->out_len - r->out_off, done = 0, nrec;

	if (r->state == R_FAILED)
		return -EPROTO;
	if (r->shut_sent)
		return -EPIPE;
	if (pend >= r->cap || len == 0)
		return 0;
	len = WP_MIN(len, r->cap - pend);
	nrec = (len + REC_MAX_PT - 1) / REC_MAX_PT;
	/* The records and possibly one KeyUpdate. */
	if (wp_tls_rec_out_room(r, len + nrec * REC_OVERHEAD + 5 + REC_OVERHEAD) != 0)
		return 0; /* counted; the bytes stay with the caller */
	while (done < len) {
		size_t n = WP_MIN(len - done, (size_t)REC_MAX_PT);

		if (r->wr.seq >= wp_tls_rec_rekey_after && wp_tls_rec_key_update(r, false) != 0)
			break;
		if (wp_tls_rec_seal(r, CT_APP, p + done, n) != 0) {
			rec_failed(r, WP_TLS_FAIL_OTHER);
			break;
		}
		done += n;
	}
	if (done == 0 && r->state == R_FAILED)
		return -EPROTO;
	return (ssize_t)done;
}

ssize_t wp_tls_rec_write_into(struct wp_tls_rec *r, const void *buf, size_t len,
                              const struct iovec out[2], size_t min_cut, size_t *used)
{
	struct sink o = {{out[0].iov_base, out[1].iov_base}, {out[0].iov_len, out[1].iov_len}, 0};
	const uint8_t *p = buf;
	size_t done = 0, whole = 0; /* sink bytes of whole records */

	*used = 0;
	if (r->state == R_FAILED)
		return -EPROTO;
	if (r->shut_sent)
		return -EPIPE;
	/* Behind what is buffered (and before a KeyUpdate due, in the loop):
	 * the buffered path. */
	if (r->out_len != r->out_off)
		return 0;
	while (done < len) {
		size_t n = WP_MIN(len - done, (size_t)REC_MAX_PT);
		size_t room = o.n[0] + o.n[1] - o.pos;

		if (room < n + REC_OVERHEAD) {
			/* a shorter record fills the room, if it is worth one */
			if (room < min_cut + REC_OVERHEAD)
				break;
			n = room - REC_OVERHEAD;
		}
		if (r->wr.seq >= wp_tls_rec_rekey_after)
			break;
		if (seal_into(r, CT_APP, p + done, n, &o) != 0) {
			rec_failed(r, WP_TLS_FAIL_OTHER);
			break;
		}
		done += n;
		whole = o.pos;
	}
	*used = whole;
	if (done == 0 && r->state == R_FAILED)
		return -EPROTO;
	return (ssize_t)done;
}

int wp_tls_rec_shutdown(struct wp_tls_rec *r)
{
	static const uint8_t a[2] = {1, AL_CLOSE_NOTIFY};

	if (r->state == R_FAILED)
		return -EPROTO;
	if (r->shut_sent)
		return 0;
	if (wp_tls_rec_out_room(r, sizeof(a) + REC_OVERHEAD) != 0)
		return -ENOMEM;
	r->shut_sent = true;
	if (wp_tls_rec_seal(r, CT_ALERT, a, sizeof(a)) != 0) {
		rec_failed(r, WP_TLS_FAIL_OTHER);
		return -EPROTO;
	}
	return 0;
}

size_t wp_tls_rec_pending(const struct wp_tls_rec *r)
{
	return r->out_len - r->out_off;
}

size_t wp_tls_rec_partial(const struct wp_tls_rec *r)
{
	return r->in_len - r->in_off;
}

size_t wp_tls_rec_peek(const struct wp_tls_rec *r, const uint8_t **p)
{
	if (r->out_len == r->out_off) {
		*p = NULL; /* r->out may be NULL (trimmed): no offset from it */
		return 0;
	}
	*p = r->out + r->out_off;
	return r->out_len - r->out_off;
}

void wp_tls_rec_advance(struct wp_tls_rec *r, size_t n)
{
	WP_ASSERT(n <= r->out_len - r->out_off);
	r->out_off += (uint32_t)n;
	if (r->out_off == r->out_len)
		r->out_off = r->out_len = 0;
}

size_t wp_tls_rec_take(struct wp_tls_rec *r, void *buf, size_t len)
{
	const uint8_t *p;
	size_t n = WP_MIN(len, wp_tls_rec_peek(r, &p));

	if (n == 0)
		return 0;
	memcpy(buf, p, n);
	wp_tls_rec_advance(r, n);
	return n;
}

/* ---- reading records ---- */

ssize_t wp_tls_rec_feed(struct wp_tls_rec *r, const void *buf, size_t len)
{
	size_t pend;

	if (r->state == R_FAILED)
		return -EPIPE;
	pend = r->in_len - r->in_off + r->pt_len;
	if (len == 0 || pend >= r->cap)
		return 0;
	len = WP_MIN(len, r->cap - pend);
	if (in_room(r, len) != 0)
		return 0; /* stays in TCP; counted */
	memcpy(r->in + r->in_len, buf, len);
	r->in_len += (uint32_t)len;
	return (ssize_t)len;
}

void wp_tls_rec_feed_eof(struct wp_tls_rec *r)
{
	r->eof_fed = true;
}

/* A post-handshake message's bytes (p, n): the last ones of a record. */
static ssize_t handshake(struct wp_tls_rec *r, const uint8_t *p, size_t n)
{
	while (n > 0) {
		if (r->hs_have < 4) {
			size_t t = WP_MIN(n, (size_t)(4 - r->hs_have));

			memcpy(r->hs_hdr + r->hs_have, p, t);
			r->hs_have += (uint8_t)t;
			p += t;
			n -= t;
			if (r->hs_have < 4)
				break;
			r->hs_left = (uint32_t)r->hs_hdr[1] << 16 | (uint32_t)r->hs_hdr[2] << 8 |
			             r->hs_hdr[3];
			switch (r->hs_hdr[0]) {
			case HS_NEW_SESSION_TICKET:
				if (!r->client)
					goto unexpected;
				break;
			case HS_KEY_UPDATE:
				if (r->hs_left != 1) {
					rec_ctr(r, WP_CTR_TLS_REC_BAD_KEY_UPDATE);
					return fatal(r, AL_DECODE_ERROR);
				}
				break;
			default:
				goto unexpected;
			}
			if (r->hs_left == 0)
				r->hs_have = 0;
			continue;
		}
		if (r->hs_hdr[0] == HS_NEW_SESSION_TICKET) {
			/* We never resume as a client: skip it. */
			size_t t = WP_MIN(n, (size_t)r->hs_left);

			p += t;
			n -= t;
			r->hs_left -= (uint32_t)t;
			if (r->hs_left == 0)
				r->hs_have = 0;
			continue;
		}
		/* KeyUpdate: its one byte, which must end the record (a key
		 * change happens on a record boundary, §5.1). */
		uint8_t req = p[0];

		r->hs_have = 0;
		r->hs_left = 0;
		if (n != 1)
			goto unexpected;
		if (req > 1) {
			rec_ctr(r, WP_CTR_TLS_REC_BAD_KEY_UPDATE);
			return fatal(r, AL_ILLEGAL_PARAMETER);
		}
		if (wp_tls_rec_update_dir(r, &r->rd, false) != 0) {
			ERR_clear_error();
			rec_ctr(r, WP_CTR_TLS_REC_CRYPTO);
			return fatal(r, AL_INTERNAL_ERROR);
		}
		rec_ctr(r, WP_CTR_TLS_REC_KEY_UPDATE_RX);
		/* Asked to update ours too: once, before any more data. After
		 * our close_notify nothing more may be sent. */
		if (req == 1 && !r->shut_sent) {
			int err = wp_tls_rec_key_update(r, false);

			if (err == -ENOMEM)
				return fatal(r, AL_INTERNAL_ERROR);
			if (err != 0)
				return -EPROTO;
		}
		break;
	}
	return 1;
unexpected:
	rec_ctr(r, WP_CTR_TLS_REC_UNEXPECTED);
	return fatal(r, AL_UNEXPECTED_MESSAGE);
}

/* During the handshake, a record in the clear (header h, body clen bytes,
 * avail bytes held): a change_cipher_spec of the middlebox compatibility
 * mode is skipped (RFC 8446 section 5), a peer's alert fails the
 * connection, anything else is unexpected. */
static ssize_t plain_in_handshake(struct wp_tls_rec *r, const uint8_t *h, size_t clen, size_t avail)
{
	if (h[0] == CT_CCS && clen == 1) {
		if (avail < REC_HDR + 1)
			return 0;
		if (h[REC_HDR] == 1) {
			r->in_off += REC_HDR + 1;
			return 1;
		}
	} else if (h[0] == CT_ALERT && clen == 2) {
		if (avail < REC_HDR + 2)
			return 0;
		rec_failed(r, WP_TLS_FAIL_PEER_ALERT);
		return -EPROTO;
	}
	rec_ctr(r, WP_CTR_TLS_REC_UNEXPECTED);
	return fatal(r, AL_UNEXPECTED_MESSAGE);
}

/* Opens the next whole record. 1: a record was processed (plaintext may be
 * waiting), 0: more bytes needed, <0: end or failure (state set). */
static ssize_t next_record(struct wp_tls_rec *r)
{
	struct dir *d = &r->rd;
	uint8_t *h, *p, iv[REC_IV], type;
	size_t avail = r->in_len - r->in_off, clen, n;
	bool ok;

	/* While idle the input is NULL (trimmed): no pointer into it yet. */
	if (avail < REC_HDR)
		return 0;
	h = r->in + r->in_off;
	clen = (size_t)h[3] << 8 | h[4];
	if (h[0] != CT_APP && r->handshaking)
		return plain_in_handshake(r, h, clen, avail);
	if (h[0] != CT_APP) {
		/* Plaintext records (alert, change_cipher_spec) are over. */
		rec_ctr(r, WP_CTR_TLS_REC_BAD_HEADER);
		return fatal(r, AL_UNEXPECTED_MESSAGE);
	}
	if (h[1] != 3 || h[2] != 3) {
		rec_ctr(r, WP_CTR_TLS_REC_BAD_HEADER);
		return fatal(r, AL_DECODE_ERROR);
	}
	if (clen > REC_MAX_CT) {
		rec_ctr(r, WP_CTR_TLS_REC_OVERFLOW);
		return fatal(r, AL_RECORD_OVERFLOW);
	}
	if (clen < 1 + REC_TAG) {
		rec_ctr(r, WP_CTR_TLS_REC_BAD_HEADER);
		return fatal(r, AL_DECODE_ERROR);
	}
	if (avail < REC_HDR + clen)
		return 0;
	if (d->seq == UINT64_MAX) {
		rec_ctr(r, WP_CTR_TLS_REC_SEQ_WRAP);
		return fatal(r, AL_INTERNAL_ERROR);
	}
	p = h + REC_HDR;
	n = clen - REC_TAG;
	nonce(d, iv);
	ok = wp_tls_aead_open(&d->aead, iv, h, REC_HDR, p, n, p + n);
	OPENSSL_cleanse(iv, sizeof(iv));
	if (!ok) {
		rec_ctr(r, WP_CTR_TLS_REC_BAD_MAC);
		return fatal(r, AL_BAD_RECORD_MAC);
	}
	d->seq++;
	r->in_off += (uint32_t)(REC_HDR + clen);
	/* content || type || zeros */
	while (n > 0 && p[n - 1] == 0)
		n--;
	if (n == 0) {
		rec_ctr(r, WP_CTR_TLS_REC_UNEXPECTED);
		return fatal(r, AL_UNEXPECTED_MESSAGE);
	}
	type = p[--n];
	if (n > REC_MAX_PT) {
		rec_ctr(r, WP_CTR_TLS_REC_OVERFLOW);
		return fatal(r, AL_RECORD_OVERFLOW);
	}
	/* A handshake message in pieces admits only more handshake records;
	 * and none of those may be empty (§5.1). */
	if ((r->hs_have > 0 && type != CT_HANDSHAKE) || (type != CT_APP && n == 0)) {
		rec_ctr(r, WP_CTR_TLS_REC_UNEXPECTED);
		return fatal(r, AL_UNEXPECTED_MESSAGE);
	}
	if (r->handshaking && type != CT_ALERT) {
		/* The handshake reads its messages as plaintext; nothing else
		 * may come before the client's Finished (no early data). */
		if (type != CT_HANDSHAKE) {
			rec_ctr(r, WP_CTR_TLS_REC_UNEXPECTED);
			return fatal(r, AL_UNEXPECTED_MESSAGE);
		}
		r->pt_off = (uint32_t)(p - r->in);
		r->pt_len = (uint32_t)n;
		return 1;
	}
	switch (type) {
	case CT_APP:
		r->pt_off = (uint32_t)(p - r->in);
		r->pt_len = (uint32_t)n;
		return 1;
	case CT_ALERT:
		if (n != 2) {
			rec_ctr(r, WP_CTR_TLS_REC_BAD_KEY_UPDATE);
			return fatal(r, AL_DECODE_ERROR);
		}
		if (p[1] == AL_CLOSE_NOTIFY) {
			r->state = R_CLOSED;
			return -EPIPE;
		}
		if (p[1] == AL_USER_CANCELED)
			return 1; /* a close_notify follows */
		rec_failed(r, WP_TLS_FAIL_PEER_ALERT);
		return -EPROTO;
	case CT_HANDSHAKE:
		return handshake(r, p, n);
	default:
		rec_ctr(r, WP_CTR_TLS_REC_UNEXPECTED);
		return fatal(r, AL_UNEXPECTED_MESSAGE);
	}
}

static ssize_t state_ret(const struct wp_tls_rec *r)
{
	switch (r->state) {
	case R_CLOSED:
		return -EPIPE;
	case R_RESET:
		return -ECONNRESET;
	case R_FAILED:
		return -EPROTO;
	default:
		return 0;
	}
}

/* Decrypts records until plaintext is ready (or none can be); its length. */
static size_t plain_ready(struct wp_tls_rec *r)
{
	while (r->pt_len == 0 && r->state == R_OPEN && next_record(r) > 0)
		;
	return r->pt_len;
}

/* Nothing read: what read and view answer then. */
static ssize_t no_plain(struct wp_tls_rec *r)
{
	if (r->pt_len > 0)
		return 0; /* a read of 0 bytes */
	if (r->in_off == r->in_len)
		r->in_off = r->in_len = r->pt_off = 0;
	if (r->state == R_OPEN && r->eof_fed) {
		/* Nothing whole is left and nothing more will come. */
		r->state = R_RESET;
	}
	return state_ret(r);
}

ssize_t wp_tls_rec_view(struct wp_tls_rec *r, const uint8_t **p)
{
	if (plain_ready(r) == 0)
		return no_plain(r);
	*p = r->in + r->pt_off;
	r->viewing = true;
	return (ssize_t)r->pt_len;
}

void wp_tls_rec_consume(struct wp_tls_rec *r, size_t n)
{
	r->viewing = false;
	n = WP_MIN(n, (size_t)r->pt_len);
	r->pt_off += (uint32_t)n;
	r->pt_len -= (uint32_t)n;
	if (r->pt_len == 0 && r->in_off == r->in_len)
		r->in_off = r->in_len = r->pt_off = 0;
}

ssize_t wp_tls_rec_read(struct wp_tls_rec *r, void *buf, size_t len)
{
	uint8_t *dst = buf;
	size_t got = 0;

	while (got < len && plain_ready(r) > 0) {
		size_t n = WP_MIN(len - got, (size_t)r->pt_len);

		memcpy(dst + got, r->in + r->pt_off, n);
		wp_tls_rec_consume(r, n);
		got += n;
	}
	return got > 0 ? (ssize_t)got : no_plain(r);
}

/* ---- life cycle ---- */

struct wp_tls_rec *wp_tls_rec_new(const struct wp_tls_rec_params *p)
{
	struct wp_tls_rec *r;

	if (!wp_tls_rec_suite_ok(p->suite, p->secret_len))
		return NULL;
	r = OPENSSL_zalloc(sizeof(*r));
	if (r == NULL)
		return NULL;
	r->suite = find_suite(p->suite);
	r->ctrs = p->ctrs;
	r->client = p->client;
	r->cap = (uint32_t)WP_MAX(p->cap, (size_t)REC_MAX);
	memcpy(r->wr.secret, p->wsecret, p->secret_len);
	memcpy(r->rd.secret, p->rsecret, p->secret_len);
	if (install(r, &r->wr, true) != 0 || install(r, &r->rd, false) != 0) {
		ERR_clear_error();
		wp_tls_rec_free(r);
		return NULL;
	}
	r->wr.seq = p->wseq;
	r->rd.seq = p->rseq;
	r->handshaking = p->handshake;
	return r;
}

int wp_tls_rec_set_secret(struct wp_tls_rec *r, bool write, const uint8_t *secret)
{
	struct dir *d = write ? &r->wr : &r->rd;

	memcpy(d->secret, secret, r->suite->hash_len);
	if (install(r, d, write) != 0) {
		ERR_clear_error();
		rec_ctr(r, WP_CTR_TLS_REC_CRYPTO);
		return (int)fatal(r, AL_INTERNAL_ERROR);
	}
	return 0;
}

int wp_tls_rec_handshake_done(struct wp_tls_rec *r, const uint8_t *rsecret)
{
	int err = wp_tls_rec_set_secret(r, false, rsecret);

	if (err == 0)
		r->handshaking = false;
	return err;
}

int wp_tls_rec_abort(struct wp_tls_rec *r, uint8_t alert)
{
	return (int)fatal(r, alert);
}

int wp_tls_rec_preload(struct wp_tls_rec *r, const void *in, size_t in_len, const void *out,
                       size_t out_len)
{
	if (in_len > 0) {
		if (in_room(r, in_len) != 0)
			return -ENOMEM;
		memcpy(r->in + r->in_len, in, in_len);
		r->in_len += (uint32_t)in_len;
	}
	if (out_len > 0) {
		if (wp_tls_rec_out_room(r, out_len) != 0)
			return -ENOMEM;
		memcpy(r->out + r->out_len, out, out_len);
		r->out_len += (uint32_t)out_len;
	}
	return 0;
}

void wp_tls_rec_trim(struct wp_tls_rec *r)
{
	if (r->in_len != r->in_off || r->pt_len != 0 || r->out_len != r->out_off)
		return;
	/* The input may hold decrypted plaintext already read: cleansed. */
	buf_put(r->in, r->in_cap, true);
	buf_put(r->out, r->out_cap, false);
	r->in = r->out = NULL;
	r->in_cap = r->in_off = r->in_len = r->pt_off = 0;
	r->out_cap = r->out_off = r->out_len = 0;
}

void wp_tls_rec_free(struct wp_tls_rec *r)
{
	if (r == NULL)
		return;
	wp_tls_aead_clear(&r->rd.aead);
	wp_tls_aead_clear(&r->wr.aead);
	OPENSSL_clear_free(r->in, r->in_cap);
	OPENSSL_free(r->out);
	OPENSSL_clear_free(r, sizeof(*r));
}

enum wp_tls_fail wp_tls_rec_fail(const struct wp_tls_rec *r)
{
	return r->state == R_FAILED ? (enum wp_tls_fail)r->fail : WP_TLS_FAIL_NONE;
}
