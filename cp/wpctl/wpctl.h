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

/* Per-core data-plane statistics from the DPDK telemetry socket. */
int wp_wpctl_stats(int argc, char **argv);

/* istioctl-compatible waypoint verbs against the Kubernetes API
 * (cmd_waypoint.c; errors printed as istioctl does, "Error: ..."). */
int wp_wpctl_waypoint(int argc, char **argv);

/* `config dump`: the running snapshot as JSON (cmd_config.c). */
int wp_wpctl_config(int argc, char **argv);

/* `enrollment`: Services and Pods with their waypoint and reason, offline
 * with --dir or from the admin endpoint (cmd_enrollment.c). */
int wp_wpctl_enrollment(int argc, char **argv);

/* `analyze`: istioctl analyze for a manifest directory, read as waypointd
 * reads it (cmd_analyze.c). */
int wp_wpctl_analyze(int argc, char **argv);

/* GET http://HOSTPORT/PATH. Returns the HTTP status (body in *body, the
 * caller frees it) or <0 after printing why (cmd_config.c). */
int wp_wpctl_admin_get(const char *hostport, const char *path, char **body);

#endif /* WP_WPCTL_H */
