/*
 * How long a cache line takes to go from one CPU to another and back: two
 * threads pinned to CPUs A and B pass a counter through one shared line,
 * each waiting for the other's value before it writes the next. The mean
 * round trip in TSC cycles and nanoseconds is the price every byte pays
 * that one CPU writes and the other reads, as a packet does on the memif
 * link (the wire on CPU 0 writes it, the worker reads it).
 *
 *   build/bench/c2c [CPU_A CPU_B [ROUND_TRIPS]]
 *
 * CPUs 0 and the last by default, 200,000 round trips; the best of five
 * rounds counts. On a virtual machine the two virtual CPUs may sit on one
 * physical cache or on two, and the host may move them between runs:
 * bench/hbone_bench.py prints this figure beside the tunnel's so that a
 * run can be read against it. Prints one line and one JSON line.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <x86intrin.h>

static _Alignas(64) _Atomic uint64_t line;
static long trips;

static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* B: answers each odd value with the next even one. */
static void *answer(void *arg)
{
	if (pin(*(int *)arg) != 0)
		exit(2);
	for (uint64_t want = 1; want < 2 * (uint64_t)trips; want += 2) {
		while (atomic_load_explicit(&line, memory_order_acquire) != want)
			_mm_pause();
		atomic_store_explicit(&line, want + 1, memory_order_release);
	}
	return NULL;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	int a = argc > 1 ? atoi(argv[1]) : 0;
	int b = argc > 2 ? atoi(argv[2]) : (int)sysconf(_SC_NPROCESSORS_ONLN) - 1;
	double best_c = 1e18, best_ns = 1e18;

	trips = argc > 3 ? atol(argv[3]) : 200000;
	if (argc == 2 || argc > 4 || a < 0 || b < 0 || a == b || trips < 1000) {
		fprintf(stderr,
		        "usage: c2c [CPU_A CPU_B (two different CPUs) [ROUND_TRIPS (>= 1000)]]\n");
		return 2;
	}
	if (pin(a) != 0) {
		fprintf(stderr, "c2c: cannot run on CPU %d\n", a);
		return 1;
	}
	for (int round = 0; round < 5; round++) {
		pthread_t t;
		uint64_t c0;
		double t0;

		atomic_store(&line, 0);
		if (pthread_create(&t, NULL, answer, &b) != 0)
			return 1;
		c0 = __rdtsc();
		t0 = now_ns();
		for (uint64_t next = 1; next < 2 * (uint64_t)trips; next += 2) {
			atomic_store_explicit(&line, next, memory_order_release);
			while (atomic_load_explicit(&line, memory_order_acquire) != next + 1)
				_mm_pause();
		}
		double c = (double)(__rdtsc() - c0) / (double)trips;
		double ns = (now_ns() - t0) / (double)trips;

		pthread_join(t, NULL);
		if (c < best_c) {
			best_c = c;
			best_ns = ns;
		}
	}
	printf("c2c: CPU %d <-> CPU %d, a cache line's round trip %.0f TSC cycles (%.1f ns), best "
	       "of "
	       "5 x %ld\n",
	       a, b, best_c, best_ns, trips);
	printf("{\"bench\": \"c2c\", \"cpu_a\": %d, \"cpu_b\": %d, \"round_trip_tsc\": %.0f, "
	       "\"round_trip_ns\": %.1f}\n",
	       a, b, best_c, best_ns);
	return 0;
}
