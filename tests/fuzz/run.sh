#!/bin/bash
# Runs the libFuzzer harnesses of tests/fuzz/ (see README.md there).
#
#   tests/fuzz/run.sh                     every harness 15 s (the test suite's step)
#   tests/fuzz/run.sh --seconds-each N    every harness N seconds
#   tests/fuzz/run.sh --minutes N         deeper: N minutes in all, shared out
#   FUZZ_JOBS=J tests/fuzz/run.sh         J harnesses at a time (default: one per core)
#   tests/fuzz/run.sh --coverage          no fuzzing: line/branch coverage of each
#                                         harness's parser over its corpus (llvm-cov)
#   tests/fuzz/run.sh [...] marker shard  only harnesses whose name contains one of these
#
# Each harness first replays its regression inputs (tests/fuzz/regressions/
# HARNESS/, inputs that once crashed it), then fuzzes from its seeds
# (tests/fuzz/corpus/HARNESS/) and what earlier runs found
# (build-fuzz/corpus/HARNESS/, kept between runs). Any crash, sanitizer
# report, leak, timeout (-timeout, default 10 s per input) or out-of-memory
# (-rss_limit_mb 2048) fails the run; the input that did it is copied into
# the regressions directory, to be committed with the fix.
#
# With CRSTREAM_TEST_RESULTS set (tests/run.sh), appends "pass fuzz:NAME" or
# "fail fuzz:NAME" there per harness.
#
# Exit status: 0 all harnesses clean, 1 a harness failed, 2 misuse.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
FUZZ_DIR=tests/fuzz
WORK=build-fuzz

usage() {
	sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//;p}' "$0" >&2
	exit 2
}

seconds_each=15
minutes=""
coverage=false
filters=()
while [ $# -gt 0 ]; do
	case $1 in
	--seconds-each) [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || usage
		seconds_each=$2; shift 2 ;;
	--minutes) [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || usage
		minutes=$2; shift 2 ;;
	--coverage) coverage=true; shift ;;
	-h|--help) usage ;;
	-*) echo "run.sh: unknown option $1" >&2; usage ;;
	*) filters+=("$1"); shift ;;
	esac
done

selected() {	# selected NAME: matches a filter (or there are none)
	local f
	[ ${#filters[@]} -eq 0 ] && return 0
	for f in "${filters[@]}"; do
		[[ $1 == *"$f"* ]] && return 0
	done
	return 1
}

# The harnesses, as the Makefile builds them.
harnesses() {
	local f c
	for f in "$FUZZ_DIR"/fuzz_*.c; do
		f=$(basename "$f" .c)
		[ "$f" = fuzz_codec ] && continue
		echo "$f"
	done
	for c in none lz4 zstd gzip zlib; do
		echo "fuzz_codec_$c"
	done
}

mapfile -t all < <(harnesses)
names=()
for h in "${all[@]}"; do
	selected "$h" && names+=("$h")
done
[ ${#names[@]} -gt 0 ] || { echo "run.sh: no harness matches ${filters[*]}" >&2; exit 2; }

if $coverage; then
	exec "$FUZZ_DIR/coverage.sh" "${names[@]}"
fi

# Harnesses run FUZZ_JOBS at a time (default: one per core): each still
# gets its full time on a core of its own, and the step takes half as
# long on two cores. A harness's report is printed when it ends.
jobs_max=${FUZZ_JOBS:-$(nproc)}
[[ $jobs_max =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: FUZZ_JOBS=$jobs_max: not a count" >&2; exit 2; }

if [ -n "$minutes" ]; then
	# N minutes of wall time, every core fuzzing.
	seconds_each=$((minutes * 60 * jobs_max / ${#names[@]}))
	[ "$seconds_each" -ge 1 ] || seconds_each=1
fi

echo "  building the harnesses (make FUZZ=1 fuzz)" >&2
make -s -j2 FUZZ=1 fuzz >/dev/null || { echo "run.sh: building the harnesses failed" >&2; exit 1; }

export ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=()

# record pass|fail NAME: one line per harness for tests/run.sh's total.
record() {
	[ -z "${CRSTREAM_TEST_RESULTS:-}" ] || echo "$1 fuzz:$2" >>"$CRSTREAM_TEST_RESULTS"
}

# keep_artifacts NAME LOG: copy what libFuzzer saved into the regressions.
keep_artifacts() {
	local name=$1 log=$2 a kept=""
	mkdir -p "$FUZZ_DIR/regressions/$name"
	for a in "$WORK/artifacts/$name"/*; do
		[ -f "$a" ] || continue
		cp "$a" "$FUZZ_DIR/regressions/$name/"
		kept+=" $FUZZ_DIR/regressions/$name/$(basename "$a")"
		rm -f "$a"
	done
	echo "    kept as regression input:${kept:- (none saved)}; log: $log" >&2
}

# summary LOG: "N runs, cov C, corpus K" from libFuzzer's final lines.
summary() {
	local runs cov corp
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$1")
	cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$1" | tail -n1)
	corp=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$1" | tail -n1)
	echo "${runs:-?} runs, ${cov:-cov ?}, ${corp:-corp ?}"
}

# fuzz_one NAME: its regression inputs, then fuzzing; its report lines on
# stderr, its verdict in the exit status.
fuzz_one() {
	local name=$1 bin=$WORK/fuzz/$1 seeds regress corpus log opts old dirs
	seeds=$FUZZ_DIR/corpus/$name
	regress=$FUZZ_DIR/regressions/$name
	corpus=$WORK/corpus/$name
	mkdir -p "$corpus" "$WORK/artifacts/$name" "$WORK/logs"
	log=$WORK/logs/$name.log
	opts=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1
	      -artifact_prefix="$WORK/artifacts/$name/")
	[ -f "$FUZZ_DIR/dict/$name.dict" ] && opts+=(-dict="$FUZZ_DIR/dict/$name.dict")
	# Room for the longest input the parser takes apart (libFuzzer's
	# default stops at 4 KiB): a marker up to its 10 KiB limit, several
	# shards with payloads, CRIU requests up to the 1 KiB name limit, a
	# files.img of a few hundred sockets.
	case $name in
	fuzz_marker) opts+=(-max_len=10240) ;;
	fuzz_shard_reader | fuzz_files_patch) opts+=(-max_len=32768) ;;
	fuzz_criu_request) opts+=(-max_len=8192) ;;
	esac

	# Inputs that once failed: each must pass before anything else.
	mapfile -t old < <(find "$regress" -type f 2>/dev/null | sort)
	if [ ${#old[@]} -gt 0 ] && ! "$bin" "${opts[@]}" "${old[@]}" >"$log" 2>&1; then
		echo "  $name: FAILED on a regression input (log: $log)" >&2
		grep -m3 -E 'ERROR|check failed|Running:' "$log" | sed 's/^/    /' >&2
		record fail "$name"
		return 1
	fi

	dirs=("$corpus")
	[ -d "$seeds" ] && dirs+=("$seeds")
	[ -d "$regress" ] && dirs+=("$regress")
	if "$bin" "${opts[@]}" -max_total_time="$seconds_each" "${dirs[@]}" >"$log" 2>&1; then
		echo "  $name: ok (${seconds_each} s: $(summary "$log"); ${#old[@]} regression inputs)" >&2
		record pass "$name"
	else
		echo "  $name: FAILED after $(summary "$log")" >&2
		grep -m1 -A2 -E '^==[0-9]+==ERROR|check failed|runtime error|SUMMARY' "$log" | sed 's/^/    /' >&2
		keep_artifacts "$name" "$log"
		record fail "$name"
		return 1
	fi
}

mkdir -p "$WORK/reports"
declare -A running=()
collect() {	# collect: wait for one harness, print its report
	local pid rc=0
	wait -n -p pid || rc=$?
	local name=${running[$pid]}
	unset "running[$pid]"
	cat "$WORK/reports/$name" >&2
	[ "$rc" = 0 ] || failed+=("$name")
}
for name in "${names[@]}"; do
	while [ ${#running[@]} -ge "$jobs_max" ]; do
		collect
	done
	fuzz_one "$name" 2>"$WORK/reports/$name" &
	running[$!]=$name
done
while [ ${#running[@]} -gt 0 ]; do
	collect
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "  fuzz FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "  fuzz: ${#names[@]} harnesses clean" >&2
