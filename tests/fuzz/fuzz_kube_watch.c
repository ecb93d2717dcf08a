/*
 * libFuzzer driver for the Kubernetes watch stream (cp/kube/client.c): the
 * bytes of a chunked WATCH body as curl hands them to wp_kube_watch_body, which
 * cuts lines (bounded by max_event) and decodes each with
 * wp_kube_event_parse, driven as curl drives it (client_int.h), without
 * a server. The first input byte picks the
 * line bound and how the rest is cut into writes; each write lives in its
 * own heap buffer, freed once consumed, so ASan catches a pointer kept into
 * curl's buffer. Checks beyond memory safety:
 *   - what the caller sees (events, bad lines, a refused long line) does not
 *     depend on how the body is cut: digests of a one-shot feed and of the
 *     cut feed are equal;
 *   - every event has a known type and an object; rv is the object's
 *     metadata.resourceVersion; ADDED/MODIFIED/DELETED objects have a name;
 *     ERROR carries the Status code;
 *   - the callback is never called once a line outgrew the bound, and the
 *     line buffer never holds more than the bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

struct run {
	uint64_t digest;
	unsigned events;
	bool over;
	size_t max;
	const struct wp_kube_watch *w;
};

static void mix(uint64_t *d, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		*d = (*d ^ b[i]) * 0x100000001b3ULL;
}

static int on_event(void *arg, const struct wp_kube_event *ev)
{
	struct run *r = arg;
	json_t *meta;
	char *text;

	if (r->w->line.over || ev->type > WP_KUBE_EV_ERROR || !json_is_object(ev->object))
		abort();
	meta = json_object_get(ev->object, "metadata");
	if (ev->rv != json_string_value(json_object_get(meta, "resourceVersion")))
		abort();
	if (ev->type <= WP_KUBE_EV_DELETED && !json_is_string(json_object_get(meta, "name")))
		abort();
	if (ev->type == WP_KUBE_EV_ERROR &&
	    ev->code != (json_is_integer(json_object_get(ev->object, "code"))
	                         ? (long)json_integer_value(json_object_get(ev->object, "code"))
	                         : 0))
		abort();
	r->events++;
	mix(&r->digest, &ev->type, sizeof(ev->type));
	text = json_dumps(ev->object, JSON_COMPACT | JSON_SORT_KEYS);
	if (text) {
		mix(&r->digest, text, strlen(text));
		free(text);
	}
	return 0;
}

/* Feeds body through wp_kube_watch_body in writes of the sizes cut() gives
 * (0: one write), as curl would: it stops at the first write not taken. */
static void feed(struct run *r, const uint8_t *body, size_t len, uint32_t cut_seed)
{
	struct wp_kube k;
	struct wp_kube_watch w;
	size_t off = 0;

	memset(&k, 0, sizeof(k));
	k.max_event = r->max;
	memset(&w, 0, sizeof(w));
	w.k = &k;
	w.cb = on_event;
	w.arg = r;
	w.status = 200;
	w.line.max = r->max;
	r->w = &w;
	while (off < len) {
		size_t n = len - off;
		char *chunk;

		if (cut_seed) {
			cut_seed = cut_seed * 1103515245u + 12345u;
			n = 1 + (cut_seed >> 16) % 97;
			if (n > len - off)
				n = len - off;
		}
		chunk = malloc(n);
		if (!chunk)
			abort();
		memcpy(chunk, body + off, n);
		size_t took = wp_kube_watch_body(chunk, 1, n, &w);
		free(chunk);
		if (w.line.len > r->max)
			abort();
		if (took != n) {
			if (!w.line.over && !w.cb_ret)
				abort(); /* only the bound (or the callback) stops a write */
			break;
		}
		off += n;
	}
	r->over = w.line.over;
	mix(&r->digest, &r->over, sizeof(r->over));
	mix(&r->digest, &k.ctr[WP_CTR_KUBE_WATCH_BAD_EVENT], sizeof(uint64_t));
	free(w.line.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run one = {0}, cut = {0};

	if (size < 1)
		return 0;
	/* Bounds from 64 bytes to 16 KiB: seeds and mutations reach them. */
	one.max = cut.max = (size_t)64 << (data[0] & 7);
	feed(&one, data + 1, size - 1, 0);
	feed(&cut, data + 1, size - 1, 0x9e3779b9u ^ data[0]);
	if (one.digest != cut.digest || one.events != cut.events || one.over != cut.over)
		abort();
	return 0;
}
