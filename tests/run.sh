#!/bin/bash
# Runs the whole test suite: unit tests, then integration tests with the
# real CRIU, both against crstream built with ASan+UBSan. Needs root and a
# prepared machine (scripts/setup.sh; scripts/test.sh does both).
#
#   tests/run.sh                  everything
#   tests/run.sh streamer         integration files matching "streamer"
#   tests/run.sh streamer mem_1   ... and only tests matching "mem_1"
#   tests/run.sh unit             the unit tests only
#   tests/run.sh fuzz [HARNESS]   the fuzz harnesses only (tests/fuzz/run.sh)
#
# Every test is counted: the run ends with the line
#   total: N passed, N failed, N skipped
# and exits non-zero if anything failed or if the filters matched nothing.
# CRSTREAM_TEST_TIMEOUT=S changes the per-test timeout (default 300 s).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ "$(id -u)" = 0 ] || { echo "tests/run.sh: the tests run CRIU and need root" >&2; exit 1; }
if [ -z "${CRSTREAM_CRIU:-}" ] && [ -f build/env.sh ]; then
	source build/env.sh
fi
: "${CRSTREAM_CRIU:?no CRIU: run scripts/setup.sh (or set CRSTREAM_CRIU)}"
export CRSTREAM_CRIU

echo "== build" >&2
make -s -j2 all subjects >/dev/null && make -s -j2 SANITIZE=1 all >/dev/null || exit 1

file_filter=${1:-}
test_filter=${2:-}
RESULTS=$(mktemp /tmp/crstream-results.XXXXXX)
trap 'rm -f "$RESULTS"' EXIT
export CRSTREAM_TEST_RESULTS=$RESULTS
SANITIZER_PATTERN='AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:'

# A unit test program prints "ok   NAME", "FAIL NAME" or "skip NAME: why"
# per test (tests/unit/unit.h); exit 77 skips the whole program.
run_unit() {
	local t=$1 name out rc=0
	name=$(basename "$t")
	out=$("$t" 2>&1) || rc=$?
	if [ "$rc" -eq 77 ]; then
		echo "  $name: SKIPPED: $(grep -m1 SKIP <<<"$out")" >&2
		echo "skip $name" >>"$RESULTS"
		return
	fi
	sed -n "s/^ok  *\([a-z_0-9]*\).*/pass $name:\1/p; s/^FAIL *\([a-z_0-9]*\).*/fail $name:\1/p; s/^skip *\([a-z_0-9]*\).*/skip $name:\1/p" \
		<<<"$out" >>"$RESULTS"
	if [ "$rc" -eq 0 ] && ! grep -Eq "$SANITIZER_PATTERN" <<<"$out"; then
		echo "  $name: $(tail -n1 <<<"$out")" >&2
		grep '^skip ' <<<"$out" | sed 's/^/    /' >&2 || true
		return
	fi
	echo "$out" | grep -v '^ok ' >&2 || true
	# A crash or a sanitizer report counts even if no single test said FAIL.
	grep -q '^FAIL ' <<<"$out" && [ "$rc" -ne 0 ] || echo "fail $name (exit $rc)" >>"$RESULTS"
}

if [ -z "$file_filter" ] || [ "$file_filter" = unit ]; then
	echo "== unit tests (ASan+UBSan)" >&2
	for t in build-asan/tests/test_*; do
		# Needs a live server: runs inside test_s3.sh, against Swift.
		[ "$(basename "$t")" = test_s3_live ] && continue
		run_unit "$t"
	done
fi

if [ -z "$file_filter" ] || [ "$file_filter" = lint ]; then
	echo "== lint: checks that set -e cannot see (tests/tools/lint-tests.sh)" >&2
	if tests/tools/lint-tests.sh tests/lib/*.sh tests/integration/*.sh >&2; then
		echo "pass lint" >>"$RESULTS"
	else
		echo "fail lint" >>"$RESULTS"
	fi
fi

# libFuzzer harnesses, 15 s each; tests/fuzz/run.sh records one line per
# harness in $RESULTS (tests/fuzz/README.md).
if [ -z "$file_filter" ] || [ "$file_filter" = fuzz ]; then
	echo "== fuzz: libFuzzer harnesses (tests/fuzz/run.sh)" >&2
	harnesses=""
	[ "$file_filter" = fuzz ] && harnesses=$test_filter
	tests/fuzz/run.sh --seconds-each 15 $harnesses || grep -q '^fail fuzz' "$RESULTS" ||
		echo "fail fuzz (tests/fuzz/run.sh failed)" >>"$RESULTS"
fi

for f in tests/integration/test_*.sh; do
	name=$(basename "$f" .sh)
	[ -n "$file_filter" ] && [[ "$name" != *"$file_filter"* ]] && continue
	echo "== $name" >&2
	before=$(wc -l <"$RESULTS")
	rc=0
	build/tools/subreaper bash "$f" "$test_filter" || rc=$?
	# A file that failed outside its tests (e.g. its server did not
	# start) has recorded nothing for it: count the file as failed.
	if [ "$rc" -ne 0 ] && ! tail -n +$((before + 1)) "$RESULTS" | grep -q '^fail '; then
		echo "fail $name (exit $rc)" >>"$RESULTS"
	fi
done

passed=$(grep -c '^pass ' "$RESULTS" || true)
failed=$(grep -c '^fail ' "$RESULTS" || true)
skipped=$(grep -c '^skip ' "$RESULTS" || true)
# Filters that match no test do not pass.
if [ $((passed + failed + skipped)) -eq 0 ]; then
	echo "no test matches \"$file_filter\" \"$test_filter\"" >&2
	echo "fail no-test-matches" >>"$RESULTS"
	failed=1
fi
if [ "$failed" -gt 0 ]; then
	echo "FAILED: $(grep '^fail ' "$RESULTS" | cut -d' ' -f2 | tr '\n' ' ')" >&2
fi
if [ "$skipped" -gt 0 ]; then
	echo "skipped: $(grep '^skip ' "$RESULTS" | cut -d' ' -f2 | tr '\n' ' ')" >&2
fi
echo "total: $passed passed, $failed failed, $skipped skipped" >&2
[ "$failed" -eq 0 ]
