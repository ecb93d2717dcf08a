/*
 * wpctl entry point: picks the command named by argv[1] and hands it the
 * remaining arguments. See wpctl.h for the command contract (help on stdout
 * and 0, usage errors on stderr and 2, runtime failures 1).
 */
#include <stdio.h>
#include <string.h>

#include "wpctl.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
};

static const struct command commands[] = {
        {"analyze", wp_wpctl_analyze, "check a manifest directory as waypointd reads it"},
        {"authz", wp_wpctl_authz,
         "the AuthorizationPolicy decision for one request (offline or running)"},
        {"cert", wp_wpctl_cert,
         "the HBONE certificate: source (file or istiod), identity, expiry, renewal"},
        {"config", wp_wpctl_config,
         "print the running snapshot (config dump) from the admin endpoint"},
        {"enrollment", wp_wpctl_enrollment, "every Service and Pod with its waypoint and why"},
        {"outliers", wp_wpctl_outliers,
         "endpoints ejected by DestinationRule outlier detection, and why"},
        {"stats", wp_wpctl_stats, "per-core data-plane statistics (DPDK telemetry)"},
        {"top", wp_wpctl_top, "live per-core rates: packets, Gbit/s, requests, tunnels, busy"},
        {"waypoint", wp_wpctl_waypoint, "generate, apply, delete, list waypoints (as istioctl)"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: wpctl COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n'wpctl COMMAND --help' describes one command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		/* `wpctl help COMMAND` is `wpctl COMMAND --help` */
		for (size_t i = 0; argc > 2 && i < sizeof(commands) / sizeof(commands[0]); i++) {
			char *help_argv[] = {argv[2], "--help", NULL};

			if (!strcmp(argv[2], commands[i].name))
				return commands[i].run(2, help_argv);
		}
		if (argc > 2) {
			fprintf(stderr, "wpctl: unknown command \"%s\"\n", argv[2]);
			usage(stderr);
			return 2;
		}
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("wpctl %s\n", WP_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		static char prog[64];

		if (strcmp(argv[1], commands[i].name))
			continue;
		/* getopt's messages then read "wpctl stats: ...". */
		snprintf(prog, sizeof(prog), "wpctl %s", commands[i].name);
		argv[1] = prog;
		/* `wpctl COMMAND help` is `wpctl COMMAND --help` (waypoint has
		 * `help VERB` of its own). */
		if (argc == 3 && !strcmp(argv[2], "help") && strcmp(commands[i].name, "waypoint"))
			argv[2] = "--help";
		return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "wpctl: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}
