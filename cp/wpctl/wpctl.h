/*
 * wpctl: the operator's CLI. main.c dispatches the first word to one of the
 * commands below; each lives in its own cmd_<name>.c and parses the rest of
 * argv itself. A command returns the process exit status (0 ok, 1 failure,
 * 2 usage error) and prints its own errors to stderr, prefixed "wpctl: ".
 */
#ifndef WP_WPCTL_H
#define WP_WPCTL_H

/* Per-core data-plane statistics from the DPDK telemetry socket. */
int wp_wpctl_stats(int argc, char **argv);

/* istioctl-compatible waypoint verbs against the Kubernetes API
 * (cmd_waypoint.c; errors printed as istioctl does, "Error: ..."). */
int wp_wpctl_waypoint(int argc, char **argv);

#endif /* WP_WPCTL_H */
