#!/usr/bin/env bash
# tests/run's own failure modes, on a tiny fake meson project (never the real
# suites): a copy of tests/run and scripts/build in a scratch tree with a
# no-op scripts/setup, whose meson.build defines a few shell tests. Each
# case runs the copied runner and checks its exit status and its words:
#   - a passing suite: exit 0, "1 passed, 0 failed, 0 skipped" last;
#   - a misspelt suite right after a good run (the old runner re-read the
#     previous log and passed): fails, "no test ran";
#   - a test that deletes the log, one that kills meson (a truncated log):
#     fails;
#   - a failing test: fails;
#   - a skipped test: allowed off CI; in CI (CI=true) as root, a failure
#     naming the test and its reason;
#   - a required test dependency missing (cmocka's place): fails at once;
#   - the fuzz stage on fake libFuzzer drivers found under tests/fuzz: one
#     that passes, one that "crashes" and one without a seed corpus; only
#     the first passes.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d /tmp/wp-run-selftest.XXXXXX)
trap 'rm -rf "$T"' EXIT
unset WP_BUILD_DIR WP_TEST_ARGS WP_MESON_ARGS CI

mktree() { # DIR: the fake project
	mkdir -p "$1/tests" "$1/scripts"
	cp "$SRC/tests/run" "$1/tests/run"
	cp "$SRC/scripts/build" "$1/scripts/build"
	printf '#!/bin/sh\nexit 0\n' >"$1/scripts/setup"
	chmod +x "$1/scripts/setup"
	echo "option('tests', type : 'feature', value : 'auto')" >"$1/meson_options.txt"
	cat >"$1/meson.build" <<'MESON'
project('wp-run-selftest', meson_version : '>= 1.0.0')
sh = find_program('sh')
logs = meson.project_build_root() / 'meson-logs'
test('ok', sh, args : ['-c', 'exit 0'], suite : ['unit', 'lostlog', 'killed', 'skipping'],
	is_parallel : false, priority : 10)
test('fails', sh, args : ['-c', 'exit 1'], suite : 'failing')
test('skips', sh, args : ['-c', 'echo "needs the widget"; exit 77'], suite : 'skipping',
	is_parallel : false)
test('loses-log', sh, args : ['-c', 'rm -f "$0"/testlog-run-lostlog.json', logs],
	suite : 'lostlog', is_parallel : false)
test('kills-meson', sh, args : ['-c', 'kill -KILL $PPID'], suite : 'killed', is_parallel : false)
MESON
}

# run_case NAME WANT(0|fail) GREP [env...] -- ARGS: runs the copied runner.
run_case() {
	local name=$1 want=$2 grep=$3 rc=0
	shift 3
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	env "${envs[@]}" WP_BUILD_DIR="$TREE/build" "$TREE/tests/run" "$@" >"$T/$name.out" 2>&1 || rc=$?
	if { [ "$want" = 0 ] && [ $rc != 0 ]; } || { [ "$want" = fail ] && [ $rc = 0 ]; }; then
		echo "FAIL $name: exit $rc, wanted $want"; cat "$T/$name.out"; exit 1
	fi
	grep -qE -- "$grep" "$T/$name.out" || { echo "FAIL $name: no '$grep' in:"; cat "$T/$name.out"; exit 1; }
	echo "ok $name (exit $rc)"
}
last_line() { # NAME LINE: the runner's last line is exactly LINE
	[ "$(tail -1 "$T/$1.out")" = "$2" ] || { echo "FAIL $1: last line '$(tail -1 "$T/$1.out")', wanted '$2'"; exit 1; }
}

TREE=$T/tree
mktree "$TREE"
run_case pass 0 '^1 passed, 0 failed, 0 skipped$' -- unit
last_line pass "1 passed, 0 failed, 0 skipped"
run_case misspelt fail 'FAILED unti: .*no test ran' -- unti
last_line misspelt "0 passed, 1 failed, 0 skipped"
run_case lostlog fail 'FAILED lostlog: meson test \(exit 0\) wrote no log' -- lostlog
run_case killed fail 'FAILED killed: the log lists no test' -- killed
run_case failing fail 'FAILED failing/.*fails: FAIL' -- failing
last_line failing "0 passed, 1 failed, 0 skipped"
run_case skip-dev 0 'skipped skipping/.*skips: needs the widget' -- skipping
last_line skip-dev "1 passed, 0 failed, 1 skipped"
if [ "$(id -u)" = 0 ]; then
	run_case skip-ci fail 'SKIPPED in CI as root \(a failure here\): skipping/.*skips: needs the widget' \
		CI=true -- skipping
	last_line skip-ci "1 passed, 1 failed, 0 skipped"
else
	# not root: the CI policy does not apply (tests/run unit needs no root)
	run_case skip-ci 0 '^1 passed, 0 failed, 1 skipped$' CI=true -- skipping
fi

NODEP=$T/nodep
mktree "$NODEP"
echo "dependency('wp-run-selftest-absent', required : get_option('tests'))" >>"$NODEP/meson.build"
TREE=$NODEP run_case nodep fail 'the build failed' -- unit
FUZZ=$T/fuzz
mktree "$FUZZ"
echo "option('fuzz', type : 'boolean', value : false)" >>"$FUZZ/meson_options.txt"
cat >>"$FUZZ/meson.build" <<'MESON'
add_languages('c', native : false)
if get_option('fuzz')
	subdir('tests/fuzz')
endif
MESON
mkdir -p "$FUZZ/tests/fuzz/corpus/good" "$FUZZ/tests/fuzz/corpus/bad"
cat >"$FUZZ/tests/fuzz/meson.build" <<'MESON'
executable('fuzz_good', 'fake.c', c_args : ['-DRC=0'])
executable('fuzz_bad_input', 'fake.c', c_args : ['-DRC=1'])
executable('fuzz_nocorpus', 'fake.c', c_args : ['-DRC=0'])
MESON
# a stand-in for a libFuzzer driver: checks it was given a scratch corpus
# and its seed corpus, prints libFuzzer's last line, exits RC
cat >"$FUZZ/tests/fuzz/fake.c" <<'C'
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
	const char *seeds = argv[argc - 1];
	if (argc < 3 || strncmp(argv[1], "-max_total_time=", 16) ||
	    !strstr(seeds, "/tests/fuzz/corpus/"))
		return 2;
	printf("Done 1 runs in 0 second(s)\n");
	return RC;
}
C
TREE=$FUZZ run_case fuzz fail 'FAILED fuzz/fuzz_bad_input: exit 1' WP_FUZZ_SECONDS=1 -- fuzz
grep -q 'FAILED fuzz/fuzz_nocorpus: no seed corpus' "$T/fuzz.out" || { cat "$T/fuzz.out"; exit 1; }
grep -q 'fuzz fuzz_good: Done 1 runs' "$T/fuzz.out" || { cat "$T/fuzz.out"; exit 1; }
last_line fuzz "1 passed, 2 failed, 0 skipped"
echo "tests/run self-test: ok"
