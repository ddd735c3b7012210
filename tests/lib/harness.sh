# Shared helpers for the integration tests (bash). Each test file sources
# this, defines test_* functions and ends with `run_tests "$@"`.
#
# The tests drive the real CRIU against real processes (tests/subjects),
# with crstream built under ASan+UBSan unless CRSTREAM_BIN says otherwise.
# They run as root under tests/tools/subreaper, so that killed and restored
# processes are reaped at once (PID 1 here reaps orphans only every few
# seconds, and a restore into a PID still held by a zombie fails).
#
# What the harness guarantees, so that a run cannot report what it did not
# check:
#   - every test runs with `set -euo pipefail` and inherit_errexit: the
#     first failing command fails the test. A check written `A && B` fails
#     nothing when A fails (bash's rule); write `A || fail ...` per check.
#   - a test that runs longer than its timeout (CRSTREAM_TEST_TIMEOUT,
#     default 300 s: generous, the test machines are shared and slow at
#     times; TEST_TIMEOUT[test_name]=S for a slower one) is killed with
#     everything it started and counted as failed, by name;
#   - any sanitizer report of any crstream process (also one whose output
#     a test threw away, or CRIU's hook child) fails the test;
#   - `skip REASON` counts as skipped, with the reason printed; a filter
#     that matches no test fails the run;
#   - a failing test's log is shown (a passing one's too with
#     CRSTREAM_TEST_VERBOSE=1);
#   - each file ends with "N passed, N failed, N skipped"; with
#     CRSTREAM_TEST_RESULTS set (tests/run.sh), one line per test is
#     appended there for the suite's total.

set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CRSTREAM=${CRSTREAM_BIN:-$ROOT/build-asan/crstream}
CRSTREAM_PLAIN=$ROOT/build/crstream	# unsanitized: for memory measurements
SUBJECT=$ROOT/build/subjects/subject
TESTTOOL=$ROOT/build/tools/testtool
IMGCMP=$ROOT/build/tools/imgcmp
# Debian's python3 (the first on PATH may be another one, or a slow shim).
PYTHON=/usr/bin/python3
: "${CRSTREAM_CRIU:?run through tests/run.sh (CRSTREAM_CRIU must name a working CRIU)}"
CRIU=$CRSTREAM_CRIU
export CRSTREAM_CRIU
# Tests never see the machine's configuration: each test gets an empty
# config file (run_tests) and no inherited CRSTREAM_* settings.
for v in $(env | sed -n 's/^\(CRSTREAM_[A-Z_]*\)=.*/\1/p'); do
	# CRSTREAM_SWIFT_*: where scripts/s3-server.sh runs its test server.
	case $v in CRSTREAM_CRIU|CRSTREAM_BIN|CRSTREAM_CACHE_DIR|CRSTREAM_SWIFT_*|CRSTREAM_TEST_*) ;; *) unset "$v" ;; esac
done
SANITIZER_BASE_ASAN=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
SANITIZER_BASE_UBSAN=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=$SANITIZER_BASE_ASAN UBSAN_OPTIONS=$SANITIZER_BASE_UBSAN
# What a sanitizer report looks like in a command's output.
SANITIZER_PATTERN='AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:'

TEST_TIMEOUT_DEFAULT=${CRSTREAM_TEST_TIMEOUT:-300}
declare -A TEST_TIMEOUT=()	# per test: TEST_TIMEOUT[test_name]=SECONDS
T=""		# the current test's scratch directory
MIB=1048576
SUBJECT_PIDS=()	# kept for tests that read it; cleanup goes by status files
LAST_ERROR=""

log() { printf '    %s\n' "$*" >&2; }

# fail MESSAGE: fail the current test (the test function returns non-zero).
fail() {
	printf '    FAIL: %s\n' "$*" >&2
	return 1
}

# jq_holds [JQ-OPTIONS] FILTER <JSON: whether FILTER's last result on the
# JSON read from stdin is true, as `jq -e` says, except that no JSON at all
# is a failure: jq 1.6 exits 0 when its input is empty, so a check of an
# answer that never came would pass. tests/tools/lint-tests.sh flags a
# bare `jq -e`.
jq_holds() {
	local input
	input=$(cat)
	if [ -z "${input//[[:space:]]/}" ]; then
		printf '    jq_holds: no JSON to check %s against\n' "${*: -1}" >&2
		return 1
	fi
	jq -e "$@" <<<"$input" >/dev/null	# lint: input checked above
}

# skip REASON: end the current test as skipped (not passed, not failed).
skip() {
	printf '%s\n' "$*" >"$T/.skipped"
	exit 77
}

# start_subject NAME MODE [ARGS...]: start a subject detached, wait until it
# is ready; its status file is $T/NAME.status and its pid is printed.
start_subject() {
	local name=$1 mode=$2
	shift 2
	local status=$T/$name.status
	rm -f "$status"
	# SUBJECT_ENV: extra VAR=value settings for the subject.
	# shellcheck disable=SC2086
	(cd "$T" && exec env ${SUBJECT_ENV:-} setsid "$SUBJECT" "$mode" --status "$status" "$@" </dev/null >/dev/null 2>"$T/$name.stderr") &
	"$TESTTOOL" wait-status "$status" state=ready --timeout 120 >/dev/null ||
		{ fail "subject $name ($mode) did not become ready: $(cat "$T/$name.stderr" 2>/dev/null)"; return 1; }
	local pid
	pid=$(status_get "$status" pid)
	SUBJECT_PIDS+=("$pid")
	echo "$pid"
}

# status_get FILE KEY
status_get() {
	sed -n "s/^$2=//p" "$1" | head -n1
}

# verify_subject NAME: ask the subject to check its whole state (SIGUSR1)
# and require state=verified with the counter past its value at the dump.
# The subject's pid is read from its status file.
verify_subject() {
	local name=$1 status=$T/$1.status
	local pid seq counter
	pid=$(status_get "$status" pid)
	seq=$(status_get "$status" verify_seq)
	counter=${2:-$(status_get "$status" counter)}
	kill -USR1 "$pid" || { fail "subject $name (pid $pid) is not running"; return 1; }
	"$TESTTOOL" wait-status "$status" "verify_seq>$seq" --timeout 120 >/dev/null ||
		{ fail "subject $name did not answer the verification"; return 1; }
	local state
	state=$(status_get "$status" state)
	[ "$state" = verified ] || { fail "subject $name: state=$state: $(status_get "$status" detail)"; return 1; }
	"$TESTTOOL" wait-status "$status" "counter>$counter" --timeout 30 >/dev/null ||
		{ fail "subject $name: counter stuck at or below $counter"; return 1; }
}

# wait_gone PID: the process has exited and been reaped.
wait_gone() {
	"$TESTTOOL" wait-gone "$1" --timeout 30 >/dev/null || { fail "pid $1 is still there"; return 1; }
}

# dump_ok NAME PID ARGS...: crstream dump of PID into $T/ck/NAME, its --json
# result in $T/NAME.dump.json; waits for the process to go.
dump_ok() {
	local name=$1 pid=$2
	shift 2
	"$CRSTREAM" dump "$pid" --dir "$T/ck" --name "$name" --json "$@" >"$T/$name.dump.json" ||
		{ fail "dump $name: $(cat "$T/$name.dump.json")"; return 1; }
	wait_gone "$pid"
}

# alive PID: the process exists and is not a zombie.
alive() {
	[ -e "/proc/$1" ] || return 1
	! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

# kill_subject NAME: SIGKILL the subject NAME and wait until it is gone.
# Only if the process is still that subject (its command line names this
# test's status file): a PID is never killed on trust.
kill_subject() {
	local status=$T/$1.status pid
	pid=$(status_get "$status" pid)
	"$TESTTOOL" kill "$pid" --cmdline-has "--status $status" ||
		{ fail "pid $pid is no longer subject $1"; return 1; }
	wait_gone "$pid"
}

# "It never ran": a subject rewrites its status file (a new inode, by
# rename) every 100 ms and at once on the first tick after it was stopped,
# so a restored copy that runs at all, even for a moment, changes it.
#
# heartbeat_mark NAME: remember the heartbeat of subject NAME, which must
# not be running (killed, or dumped), before a restore is tried.
heartbeat_mark() {
	local status=$T/$1.status pid
	pid=$(status_get "$status" pid)
	! alive "$pid" || { fail "heartbeat_mark $1: pid $pid is running"; return 1; }
	cp -p "$status" "$T/$1.beat" && stat -c %i "$status" >"$T/$1.beat.inode"
}

# assert_never_ran NAME: no process of subject NAME ran since
# heartbeat_mark, and none is there now.
assert_never_ran() {
	local status=$T/$1.status pid
	pid=$(status_get "$T/$1.beat" pid)
	wait_gone "$pid" || return 1
	if [ "$(stat -c %i "$status")" != "$(cat "$T/$1.beat.inode")" ] || ! cmp -s "$status" "$T/$1.beat" ||
		[ "$status.tmp" -nt "$T/$1.beat" ]; then
		fail "subject $1 ran after the restore began: heartbeat $(status_get "$T/$1.beat" counter)/$(status_get "$T/$1.beat" heartbeat_ms) -> $(status_get "$status" counter)/$(status_get "$status" heartbeat_ms)"
		return 1
	fi
}

# assert_ran NAME: the heartbeat of subject NAME moved since heartbeat_mark
# (the check above can see a run).
assert_ran() {
	"$TESTTOOL" wait-status "$T/$1.status" "counter>$(status_get "$T/$1.beat" counter)" --timeout 30 >/dev/null ||
		{ fail "subject $1: no heartbeat after heartbeat_mark"; return 1; }
}

# expect_refused NAME "substring" CMD...: CMD (a restore of subject NAME)
# fails as expect_fail says, and the subject never ran.
expect_refused() {
	local name=$1
	shift
	heartbeat_mark "$name" || return 1
	expect_fail "$@" || return 1
	assert_never_ran "$name"
}

# flip_byte FILE OFFSET: XOR the byte at OFFSET with 0x40.
flip_byte() {
	"$PYTHON" -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0]^0x40]))' "$1" "$2"
}

# ---- memory cgroups (v1 memory hierarchy, or cgroup v2 with memory) ----
# For measuring from outside what crstream itself uses: it runs alone in a
# cgroup with a hard limit (memcg_create, memcg_run); CRIU, which it
# starts, is moved back out by $T/criu-outside (pass it as CRSTREAM_CRIU).
# See tests/integration/test_memory.sh.


# memcg_setup: MEMCG_KIND (v1|v2), MEMCG_HOME (the cgroup we run in, where
# processes go back to); skips the test if no memory controller is usable.
memcg_setup() {
	local rel
	if [ -e /sys/fs/cgroup/memory/memory.max_usage_in_bytes ]; then
		MEMCG_KIND=v1
		rel=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
		MEMCG_HOME=/sys/fs/cgroup/memory${rel%/}
	elif grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
		MEMCG_KIND=v2
		rel=$(sed -n 's/^0:://p' /proc/self/cgroup)
		MEMCG_HOME=/sys/fs/cgroup${rel%/}
		# Children of the root cgroup get the controller.
		grep -qw memory /sys/fs/cgroup/cgroup.subtree_control ||
			echo +memory >/sys/fs/cgroup/cgroup.subtree_control
	else
		skip "no memory cgroup controller (neither v1 nor cgroup v2 with memory)"
	fi
}

# memcg_create NAME LIMIT: a cgroup with a hard limit of LIMIT bytes, in
# MEMCG (v1: below the cgroup we run in; v2: below the root, since a
# cgroup with processes cannot have controlled children).
memcg_create() {
	if [ "$MEMCG_KIND" = v1 ]; then
		MEMCG=$MEMCG_HOME/crstream-test-$1-$$
		mkdir "$MEMCG"
		echo "$2" >"$MEMCG/memory.limit_in_bytes"
	else
		MEMCG=/sys/fs/cgroup/crstream-test-$1-$$
		mkdir "$MEMCG"
		echo "$2" >"$MEMCG/memory.max"
		[ ! -e "$MEMCG/memory.swap.max" ] || echo 0 >"$MEMCG/memory.swap.max"
	fi
	echo "$MEMCG" >>"$T/memcgs"
	# CRIU runs outside: the wrapper moves itself home before exec.
	printf '#!/bin/sh\necho $$ >%s/cgroup.procs && exec %s "$@"\n' "$MEMCG_HOME" "$CRIU" >"$T/criu-outside"
	chmod +x "$T/criu-outside"
}

# memcg_run CMD...: run CMD inside MEMCG (as a child of a shell that joins
# it first); its exit status.
memcg_run() {
	sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$MEMCG" "$@"
}

memcg_peak() {
	if [ "$MEMCG_KIND" = v1 ]; then cat "$MEMCG/memory.max_usage_in_bytes"; else cat "$MEMCG/memory.peak"; fi
}

memcg_oom_kills() {
	if [ "$MEMCG_KIND" = v1 ]; then
		sed -n 's/^oom_kill //p' "$MEMCG/memory.oom_control"
	else
		sed -n 's/^oom_kill //p' "$MEMCG/memory.events"
	fi
}

memcg_cleanup() {
	local cg
	[ -e "$T/memcgs" ] || return 0
	while read -r cg; do rmdir "$cg" 2>/dev/null || true; done <"$T/memcgs"
}

# memcg_check WHAT LIMIT: the command that just ran in MEMCG was not killed
# by the kernel and stayed within LIMIT.
memcg_check() {
	local what=$1 limit=$2 peak kills
	peak=$(memcg_peak)
	kills=$(memcg_oom_kills)
	log "$what: cgroup limit $((limit / MIB)) MiB ($MEMCG_KIND), peak charged $((peak / MIB)) MiB (page cache included), OOM kills ${kills:-?}"
	[ "${kills:-0}" = 0 ] || fail "$what: the kernel OOM-killed crstream $kills time(s) at a limit of $limit bytes"
}

# spill_dir: SPILL, a directory on disk (not tmpfs) for spill files: the
# kernel can write back and reclaim their page cache under a cgroup's
# limit, so that the limit binds crstream's own memory.
spill_dir() {
	SPILL=$(mktemp -d /var/tmp/crstream-spill.XXXXXX)
	echo "$SPILL" >>"$T/spilldirs"
}

spill_cleanup() {
	[ -e "$T/spilldirs" ] || return 0
	xargs -r rm -rf <"$T/spilldirs"
}

# sanitizer_reports: the sanitizer reports written in this test so far
# (ASan/UBSan write them to $T/.sanitizer, see run_tests).
sanitizer_reports() {
	local f
	for f in "$T"/.sanitizer/*; do
		[ -e "$f" ] || continue
		printf '%s:\n' "$f"
		head -n 30 "$f"
	done
}

# expect_fail [--status N] "substring" CMD...: CMD must exit with status N
# (default 1: failure; 2 is misuse, see expect_misuse), print the
# substring on stderr, and trigger no sanitizer report. Its stderr is
# left in LAST_ERROR.
expect_fail() {
	local status=1
	if [ "$1" = --status ]; then
		status=$2
		shift 2
	fi
	local want=$1
	shift
	local out rc=0
	out=$("$@" 2>&1 >/dev/null) || rc=$?
	LAST_ERROR=$out
	if grep -Eq "$SANITIZER_PATTERN" <<<"$out" || [ -n "$(sanitizer_reports)" ]; then
		fail "sanitizer report from: $*: $out $(sanitizer_reports)"
		return 1
	fi
	[ "$rc" -ne 0 ] || { fail "expected failure, got success: $*"; return 1; }
	[ "$rc" -eq "$status" ] || { fail "exit status $rc, expected $status: $*: $out"; return 1; }
	[[ "$out" == *"$want"* ]] || { fail "expected \"$want\" in the error of: $*; got: $out"; return 1; }
}

# expect_misuse "substring" CMD...: CMD is refused as misuse (exit 2).
expect_misuse() {
	expect_fail --status 2 "$@"
}

# A checkpoint's stream files are 0600 and its directory 0700.
check_modes() {
	local dir=$1 f
	[ "$(stat -c %a "$dir")" = 700 ] || { fail "$dir has mode $(stat -c %a "$dir")"; return 1; }
	for f in "$dir"/*; do
		[ "$(stat -c %a "$f")" = 600 ] || { fail "$f has mode $(stat -c %a "$f")"; return 1; }
	done
}

# Kills every subject of the test that is still running (by status file;
# verified by testtool kill).
kill_subjects() {
	local s pid
	for s in "$T"/*.status; do
		[ -e "$s" ] || continue
		pid=$(status_get "$s" pid)
		[ -n "$pid" ] && "$TESTTOOL" kill "$pid" --cmdline-has "--status $s" || true
	done
	SUBJECT_PIDS=()
}

# record_result pass|fail|skip NAME [DETAIL]
record_result() {
	case $1 in
	pass) TESTS_PASSED=$((TESTS_PASSED + 1)) ;;
	fail) TESTS_FAILED=$((TESTS_FAILED + 1)); FAILED_NAMES+=("$2") ;;
	skip) TESTS_SKIPPED=$((TESTS_SKIPPED + 1)) ;;
	esac
	if [ -n "${CRSTREAM_TEST_RESULTS:-}" ]; then
		printf '%s %s %s\n' "$1" "$2" "${3:-}" >>"$CRSTREAM_TEST_RESULTS"
	fi
}

# run_one FN: runs test FN in $T under a watchdog; its status (0 passed,
# 77 skipped, else failed) goes to RUN_RC. Called as a plain command:
# inside an `if`, `||` or `&&`, bash would ignore set -e in the test.
run_one() {
	local fn=$1 limit=${TEST_TIMEOUT[$1]:-$TEST_TIMEOUT_DEFAULT}
	(
		export CRSTREAM_CONFIG=$T/config.json
		export ASAN_OPTIONS=$SANITIZER_BASE_ASAN:log_path=$T/.sanitizer/asan
		export UBSAN_OPTIONS=$SANITIZER_BASE_UBSAN:log_path=$T/.sanitizer/ubsan
		cd "$T"
		"$fn"
	) 2>"$T/test.log" &
	local tpid=$! rc=0
	"$TESTTOOL" watchdog "$tpid" "$limit" "$T/.timeout" 2>>"$T/watchdog.log" &
	local dog=$!
	# (bash's "Killed" notice for a test the watchdog ended: not needed)
	{ wait "$tpid"; } 2>/dev/null || rc=$?
	wait "$dog" || true
	if [ -e "$T/.timeout" ]; then
		cat "$T/watchdog.log" >>"$T/test.log"
		printf '    FAIL: timed out after %ss (TEST_TIMEOUT[%s] to change)\n' "$limit" "$fn" >>"$T/test.log"
		rc=124
	fi
	RUN_RC=$rc
}

# run_tests [FILTER]: run every test_* function (or those matching FILTER),
# each in a fresh scratch directory.
run_tests() {
	local filter=${1:-} fn rc
	local names
	names=$(declare -F | awk '{print $3}' | grep '^test_' | grep -- "$filter" || true)
	TESTS_PASSED=0 TESTS_FAILED=0 TESTS_SKIPPED=0
	FAILED_NAMES=()
	if [ -z "$names" ]; then
		# Under tests/run.sh, other files may match: it fails a run in
		# which nothing ran. On its own, this file fails.
		printf '  no test matches "%s"\n' "$filter" >&2
		[ -n "${CRSTREAM_TEST_RESULTS:-}" ] || return 1
		return 0
	fi
	for fn in $names; do
		T=$(mktemp -d /tmp/crstream-it.XXXXXX)
		mkdir "$T/.sanitizer"
		local start=$SECONDS
		printf '  %-50s ' "$fn" >&2
		printf '{}\n' >"$T/config.json"
		run_one "$fn"
		rc=$RUN_RC
		local reports
		reports=$(sanitizer_reports)
		if [ -n "$reports" ] && [ "$rc" -eq 0 -o "$rc" -eq 77 ]; then
			printf '    FAIL: sanitizer report(s):\n%s\n' "$reports" >>"$T/test.log"
			rc=1
		fi
		if [ "$rc" -eq 0 ]; then
			printf 'ok   (%ds)\n' $((SECONDS - start)) >&2
			# CRSTREAM_TEST_VERBOSE=1: what passing tests logged, too.
			[ -z "${CRSTREAM_TEST_VERBOSE:-}" ] || sed 's/^/      /' "$T/test.log" >&2
			record_result pass "$fn"
		elif [ "$rc" -eq 77 ]; then
			printf 'SKIP (%s)\n' "$(cat "$T/.skipped" 2>/dev/null)" >&2
			record_result skip "$fn" "$(cat "$T/.skipped" 2>/dev/null)"
		else
			printf 'FAIL (%ds)\n' $((SECONDS - start)) >&2
			sed 's/^/      /' "$T/test.log" | tail -n 40 >&2
			record_result fail "$fn"
		fi
		kill_subjects
		memcg_cleanup
		spill_cleanup
		# A test that failed half-way may leave a mount behind.
		awk -v t="$T" 'index($2, t) == 1 {print $2}' /proc/mounts | sort -r | xargs -r umount -l
		rm -rf "$T"
	done
	printf '  %d passed, %d failed, %d skipped%s\n' "$TESTS_PASSED" "$TESTS_FAILED" "$TESTS_SKIPPED" \
		"${FAILED_NAMES[*]:+: ${FAILED_NAMES[*]}}" >&2
	[ "$TESTS_FAILED" -eq 0 ]
}
