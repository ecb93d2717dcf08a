/*
 * `wpctl cert [--admin HOST:PORT] [-o json]`: the certificate the data path
 * serves HBONE with (GET /certs on the admin endpoint): where it comes from
 * (a file, or istiod's CA), the identity, serial and validity, and with
 * istiod how many were issued, how many requests failed, when the next
 * request is due and the last error.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "wpctl.h"

static void row(json_t *o, const char *label, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL)
		return;
	if (json_is_string(v))
		printf("%-14s %s\n", label, json_string_value(v)[0] ? json_string_value(v) : "-");
	else if (json_is_integer(v))
		printf("%-14s %lld\n", label, (long long)json_integer_value(v));
}

int wp_wpctl_cert(int argc, char **argv)
{
	static const char usage[] = "usage: wpctl cert [--admin HOST:PORT] [-o json]\n"
	                            "\n"
	                            "The certificate HBONE is served with: its source (file or\n"
	                            "istiod), identity, serial, validity and renewal state.\n";
	const char *admin = "127.0.0.1:15000";
	bool as_json = false;
	char *body = NULL;
	json_t *o;
	int st;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h") ||
		    !strcmp(argv[i], "help")) {
			fputs(usage, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--admin") && i + 1 < argc) {
			admin = argv[++i];
		} else if (!strncmp(argv[i], "--admin=", 8)) {
			admin = argv[i] + 8;
		} else if (!strcmp(argv[i], "-o") && i + 1 < argc && !strcmp(argv[i + 1], "json")) {
			as_json = true;
			i++;
		} else {
			fputs(usage, stderr);
			return 2;
		}
	}
	st = wp_wpctl_admin_get(admin, "/certs", &body);
	if (st != 200) {
		if (st > 0)
			fprintf(stderr, "wpctl: %s/certs answered %d\n", admin, st);
		free(body);
		return 1;
	}
	o = json_loads(body, 0, NULL);
	if (as_json || o == NULL) {
		fputs(body, stdout);
		if (body[0] && body[strlen(body) - 1] != '\n')
			putchar('\n');
		free(body);
		json_decref(o);
		return o == NULL && !as_json;
	}
	row(o, "source", "source");
	row(o, "file", "file");
	row(o, "identity", "identity");
	row(o, "serial", "serial");
	row(o, "not before", "not_before");
	row(o, "not after", "not_after");
	row(o, "expires in (s)", "expires_in_s");
	row(o, "ca", "ca_address");
	row(o, "issued", "issued");
	row(o, "failed", "failed");
	row(o, "next request", "next_request");
	row(o, "last error", "last_error");
	if (json_object_get(o, "identity") == NULL)
		fprintf(stderr, "wpctl: no certificate loaded yet\n");
	json_decref(o);
	free(body);
	return 0;
}
