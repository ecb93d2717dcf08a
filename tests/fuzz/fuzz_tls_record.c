/*
 * libFuzzer driver for our TLS 1.3 record layer (dp/tls/record.c). Two
 * record layers, a client and a server, share traffic secrets; the input is
 * a script of operations on them, so the receiving side parses records that
 * authenticate (and therefore reach the inner parser: content types,
 * padding, alerts, split handshake messages, KeyUpdate) as well as
 * corrupted and arbitrary bytes:
 *
 *   op % 8 == 0  client writes <len> application bytes; when the third
 *                byte of the op is odd, sealed straight into a two-piece
 *                sink first (wp_tls_rec_write_into: the first piece's size
 *                and the floor of a cut record from <t>), the rest
 *                written as usual, as the tunnel session does
 *   op % 8 == 1  client seals one record of content type <t> with <len>
 *                bytes of payload (anything: handshake messages, alerts,
 *                zero padding, an empty or oversize inner plaintext)
 *   op % 8 == 2  <len> raw bytes go to the server as ciphertext
 *   op % 8 == 3  the next client ciphertext byte at <off> is flipped
 *   op % 8 == 4  client KeyUpdate (update_requested from <t>)
 *   op % 8 == 5  client close_notify
 *   op % 8 == 6  server writes <len> bytes back; client reads
 *   op % 8 == 7  end of stream at the server
 * After every op the client's ciphertext moves to the server and the server
 * reads what it can (in place when <t> & 0x40, else by copies). Build
 * with -Dfuzz=true (see meson.build).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "record_int.h"
#include "wp/common.h"
#include "wp/counters.h"

static uint64_t ctrs[WP_CTR_MAX];
static volatile uint8_t sink; /* what drain() touched */

/* Client application bytes, as op 0 describes. */
static void client_write(struct wp_tls_rec *c, struct wp_tls_rec *s, const uint8_t *p, size_t len,
                         uint8_t t, bool direct)
{
	static uint8_t a[1 << 15], b[1 << 16];
	struct iovec v[2] = {{a, ((size_t)t * 131u) % sizeof(a)}, {b, sizeof(b)}};
	size_t used = 0;
	ssize_t w = 0;

	if (direct) {
		w = wp_tls_rec_write_into(c, p, len, v, 1 + (size_t)t * 64u, &used);
		(void)wp_tls_rec_feed(s, a, WP_MIN(used, v[0].iov_len));
		if (used > v[0].iov_len)
			(void)wp_tls_rec_feed(s, b, used - v[0].iov_len);
	}
	if (w >= 0 && (size_t)w < len)
		(void)wp_tls_rec_write(c, p + w, len - (size_t)w);
}

static void move(struct wp_tls_rec *from, struct wp_tls_rec *to, int flip_at)
{
	uint8_t buf[4096];
	size_t n;

	while ((n = wp_tls_rec_take(from, buf, sizeof(buf))) > 0) {
		if (flip_at >= 0 && (size_t)flip_at < n) {
			buf[flip_at] ^= 0x5a;
			flip_at = -1;
		}
		(void)wp_tls_rec_feed(to, buf, n);
	}
}

/* Reads all the plaintext there is: by copies, or in place a piece at a
 * time (wp_tls_rec_view; its first and last byte are touched, so that a
 * view past the buffer is caught). */
static void drain(struct wp_tls_rec *r, bool in_place)
{
	uint8_t buf[4096];
	const uint8_t *v;
	ssize_t n;

	if (!in_place) {
		while (wp_tls_rec_read(r, buf, sizeof(buf)) > 0)
			;
		return;
	}
	while ((n = wp_tls_rec_view(r, &v)) > 0) {
		sink ^= v[0] ^ v[n - 1];
		wp_tls_rec_consume(r, WP_MIN((size_t)n, 1000u));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t cs[32] = {1, 2, 3}, ss[32] = {4, 5, 6};
	struct wp_tls_rec_params pc = {.suite = 0x1301,
	                               .client = true,
	                               .wsecret = cs,
	                               .rsecret = ss,
	                               .secret_len = 32,
	                               .cap = 1 << 18,
	                               .ctrs = ctrs};
	struct wp_tls_rec_params ps = pc;
	struct wp_tls_rec *c, *s;
	size_t i = 0;

	if (size > 0 && (data[0] & 3) == 1) {
		pc.suite = ps.suite = 0x1303;
	} else if (size > 0 && (data[0] & 3) == 2) {
		static const uint8_t c48[48] = {7}, s48[48] = {8};
		pc.suite = ps.suite = 0x1302;
		pc.secret_len = ps.secret_len = 48;
		pc.wsecret = c48;
		pc.rsecret = s48;
	}
	ps.client = false;
	ps.wsecret = pc.rsecret;
	ps.rsecret = pc.wsecret;
	c = wp_tls_rec_new(&pc);
	s = wp_tls_rec_new(&ps);
	if (!c || !s)
		goto out;
	i = 1;
	while (i + 3 <= size) {
		uint8_t op = data[i], t = data[i + 1];
		size_t len = data[i + 2] * 64u + (t & 63u), flip = (size_t)-1;

		i += 3;
		switch (op % 8) {
		case 0:
			len = WP_MIN(len, size - i);
			client_write(c, s, data + i, len, t, (data[i - 1] & 1) != 0);
			i += len;
			break;
		case 1:
			len = WP_MIN(len, size - i);
			if (c->state == R_OPEN && wp_tls_rec_out_room(c, len + REC_OVERHEAD) == 0)
				(void)wp_tls_rec_seal(c, t, data + i, len);
			i += len;
			break;
		case 2:
			len = WP_MIN(len, size - i);
			(void)wp_tls_rec_feed(s, data + i, len);
			i += len;
			break;
		case 3:
			flip = len;
			break;
		case 4:
			(void)wp_tls_rec_key_update(c, t & 1);
			break;
		case 5:
			(void)wp_tls_rec_shutdown(c);
			break;
		case 6: {
			static uint8_t back[16384];
			(void)wp_tls_rec_write(s, back, WP_MIN(len, sizeof(back)));
			move(s, c, -1);
			drain(c, false);
			break;
		}
		case 7:
			wp_tls_rec_feed_eof(s);
			break;
		}
		move(c, s, flip == (size_t)-1 ? -1 : (int)WP_MIN(flip, 4095u));
		drain(s, (t & 0x40) != 0);
		if (t & 0x80)
			wp_tls_rec_trim(s);
	}
out:
	wp_tls_rec_free(c);
	wp_tls_rec_free(s);
	return 0;
}
