/*
 * wpctl: the operator's CLI. main.c dispatches the first word to one of the
 * commands below; each lives in its own cmd_<name>.c and parses the rest of
 * argv itself. A command returns the process exit status (0 ok, 1 failure,
 * 2 usage error) and prints its own errors to stderr, prefixed "wpctl: "
 * (the istioctl-compatible waypoint verbs: "Error: "). Every command and
 * subcommand answers --help, -h and a `help` word with its own help on
 * stdout and 0; an unknown flag or subcommand, or a missing argument, is a
 * usage error (stderr, 2).
 */
#ifndef WP_WPCTL_H
#define WP_WPCTL_H

#include <jansson.h>

/* Per-core data-plane statistics from the DPDK telemetry socket. */
int wp_wpctl_stats(int argc, char **argv);

/* `outliers`: the endpoints outlier detection ejected (/wp/outliers over
 * DPDK telemetry; cmd_outliers.c). */
int wp_wpctl_outliers(int argc, char **argv);

/* `top`: a live per-core view of rates (cmd_top.c). */
int wp_wpctl_top(int argc, char **argv);

/* CLOCK_MONOTONIC in seconds, and a sleep until such a time (tel.c). */
double wp_wpctl_now(void);
void wp_wpctl_sleep_until(double t);

/* ---- the DPDK telemetry client (tel.c) ---------------------------------------------------- */

struct wp_wpctl_tel {
	int fd;
	char buf[64 * 1024]; /* one reply */
};

/* Connects to the waypointd of DPDK file prefix <prefix>. 0 or -errno
 * (the reason printed). */
int wp_wpctl_tel_open(struct wp_wpctl_tel *t, const char *prefix);

void wp_wpctl_tel_close(struct wp_wpctl_tel *t);

/* Sends one command; returns the value under the command's key, or NULL
 * (caller decrefs). */
json_t *wp_wpctl_tel_query(struct wp_wpctl_tel *t, const char *cmd);

/* Telemetry nests the counters in one dict per name prefix (a telemetry
 * dict holds at most 256 values): merges them into one flat object. Takes
 * o's reference, returns a new one. */
json_t *wp_wpctl_tel_flatten(json_t *o);

/* {"version", "tsc_hz", "workers": [flat per-worker dicts],
 *  "control_plane": {..}, "total": {..}} (the total includes the control
 * plane's counters), or NULL. */
json_t *wp_wpctl_tel_collect(struct wp_wpctl_tel *t);

/* istioctl-compatible waypoint verbs against the Kubernetes API
 * (cmd_waypoint.c; errors printed as istioctl does, "Error: ..."). */
int wp_wpctl_waypoint(int argc, char **argv);

/* `cert`: the HBONE certificate from the admin endpoint's /certs
 * (cmd_cert.c). */
int wp_wpctl_cert(int argc, char **argv);

/* `config dump`: the running snapshot as JSON (cmd_config.c). */
int wp_wpctl_config(int argc, char **argv);

/* `enrollment`: Services and Pods with their waypoint and reason, offline
 * with --dir or from the admin endpoint (cmd_enrollment.c). */
int wp_wpctl_enrollment(int argc, char **argv);

/* `analyze`: istioctl analyze for a manifest directory, read as waypointd
 * reads it (cmd_analyze.c). */
int wp_wpctl_analyze(int argc, char **argv);

/* `authz check`: the AuthorizationPolicy decision for one request, offline
 * with --dir or from the admin endpoint (cmd_authz.c). */
int wp_wpctl_authz(int argc, char **argv);

/* GET http://HOSTPORT/PATH. Returns the HTTP status (body in *body, the
 * caller frees it) or <0 after printing why (cmd_config.c). */
int wp_wpctl_admin_get(const char *hostport, const char *path, char **body);

#endif /* WP_WPCTL_H */
