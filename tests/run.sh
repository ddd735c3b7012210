#!/bin/bash
# Runs the whole test suite: unit tests, then integration tests with the
# real CRIU, both against crstream built with ASan+UBSan. Needs root and a
# prepared machine (scripts/setup.sh; scripts/test.sh does both).
#
#   tests/run.sh                  everything
#   tests/run.sh streamer         integration files matching "streamer"
#   tests/run.sh streamer mem_1   ... and only tests matching "mem_1"
#   tests/run.sh fuzz [HARNESS]   only the fuzz harnesses (tests/fuzz/run.sh)
set -uo pipefail

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

failed=()
file_filter=${1:-}
test_filter=${2:-}

if [ -z "$file_filter" ] || [ "$file_filter" = unit ]; then
	echo "== unit tests (ASan+UBSan)" >&2
	for t in build-asan/tests/test_*; do
		# Needs a live server: runs inside test_s3.sh, against Swift.
		[ "$(basename "$t")" = test_s3_live ] && continue
		out=$("$t" 2>&1)
		rc=$?
		if [ $rc -eq 0 ]; then
			echo "  $(basename "$t"): $(tail -n1 <<<"$out")" >&2
		elif [ $rc -eq 77 ]; then
			echo "  $(basename "$t"): SKIPPED: $(grep -m1 SKIP <<<"$out")" >&2
		else
			echo "$out" | grep -v '^ok ' >&2
			failed+=("$(basename "$t")")
		fi
	done
fi

# libFuzzer harnesses, 15 s each (tests/fuzz/README.md).
if [ -z "$file_filter" ] || [ "$file_filter" = fuzz ]; then
	echo "== fuzz" >&2
	harnesses=$([ "$file_filter" = fuzz ] && echo "$test_filter")
	tests/fuzz/run.sh --seconds-each 15 $harnesses || failed+=(fuzz)
fi

for f in tests/integration/test_*.sh; do
	name=$(basename "$f" .sh)
	[ -n "$file_filter" ] && [[ "$name" != *"$file_filter"* ]] && continue
	echo "== $name" >&2
	build/tools/subreaper bash "$f" "$test_filter" || failed+=("$name")
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "all tests passed" >&2
