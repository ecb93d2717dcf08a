/*
 * The Kubernetes API client's internals (client.c), shared with the watch
 * stream fuzzer (tests/fuzz/fuzz_kube_watch.c) only: the client object,
 * the bounded body buffer and the watch state curl's write callback
 * (wp_kube_watch_body) cuts event lines with. Not part of the client's
 * interface (kube.h).
 */
#ifndef WP_CP_KUBE_CLIENT_INT_H
#define WP_CP_KUBE_CLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <curl/curl.h>

#include "kube.h"
#include "wp/counters.h"

struct wp_kube {
	struct wp_kube_config cfg;
	CURL *curl;
	long timeout;
	char *token;              /* current bearer token (cfg.token, the file or the plugin) */
	struct wp_kube_cred cred; /* the exec plugin's credential (cfg.exec) */
	bool cred_failed;         /* the last attempt to get it failed */
	struct timespec token_mtime;
	ino_t token_ino;
	off_t token_size;
	size_t max_event, max_body; /* 0 = unbounded (wp_kube_set_limits) */
	wp_kube_answer_cb answer_cb;
	void *answer_arg;
	uint64_t ctr[WP_CTR_MAX];
};

/* A growing byte buffer; max (0 = none) bounds len, and over records that
 * something was refused for it. */
struct wp_kube_buf {
	char *p;
	size_t len, cap, max;
	bool over;
};

struct wp_kube_watch {
	struct wp_kube *k;
	struct wp_kube_buf line;
	wp_kube_event_cb cb;
	void *arg;
	int cb_ret;
	const volatile int *stop;
	long status;
};

/* curl's write callback of a WATCH: cuts the body into lines (each at most
 * k->max_event bytes), decodes each (wp_kube_event_parse) and hands it to
 * w->cb; the error answer of a failed WATCH is kept whole. Returns the
 * bytes taken: fewer stops the transfer (a line over the bound, the
 * callback's non-zero answer). */
size_t wp_kube_watch_body(char *p, size_t sz, size_t nm, void *arg);

#endif /* WP_CP_KUBE_CLIENT_INT_H */
