# Shared helpers for the integration tests (bash). Each test file sources
# this, defines test_* functions and ends with `run_tests "$@"`.
#
# The tests drive the real CRIU against real processes (tests/subjects),
# with crstream built under ASan+UBSan unless CRSTREAM_BIN says otherwise.
# They run as root under tests/tools/subreaper, so that killed and restored
# processes are reaped at once (PID 1 here reaps orphans only every few
# seconds, and a restore into a PID still held by a zombie fails).

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CRSTREAM=${CRSTREAM_BIN:-$ROOT/build-asan/crstream}
CRSTREAM_PLAIN=$ROOT/build/crstream	# unsanitized: for memory measurements
SUBJECT=$ROOT/build/subjects/subject
TESTTOOL=$ROOT/build/tools/testtool
IMGCMP=$ROOT/build/tools/imgcmp
: "${CRSTREAM_CRIU:?run through tests/run.sh (CRSTREAM_CRIU must name a working CRIU)}"
CRIU=$CRSTREAM_CRIU
export CRSTREAM_CRIU
# Tests never see the machine's configuration: each test gets an empty
# config file (run_tests) and no inherited CRSTREAM_* settings.
for v in $(env | sed -n 's/^\(CRSTREAM_[A-Z_]*\)=.*/\1/p'); do
	# CRSTREAM_SWIFT_*: where scripts/s3-server.sh runs its test server.
	case $v in CRSTREAM_CRIU|CRSTREAM_BIN|CRSTREAM_CACHE_DIR|CRSTREAM_SWIFT_*) ;; *) unset "$v" ;; esac
done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

TESTS_RUN=0
TESTS_FAILED=0
FAILED_NAMES=()
T=""		# the current test's scratch directory
SUBJECT_PIDS=()

log() { printf '    %s\n' "$*" >&2; }

# fail MESSAGE: fail the current test (the test function returns non-zero).
fail() {
	printf '    FAIL: %s\n' "$*" >&2
	return 1
}

# start_subject NAME MODE [ARGS...]: start a subject detached, wait until it
# is ready; its status file is $T/NAME.status and its pid is printed.
start_subject() {
	local name=$1 mode=$2
	shift 2
	local status=$T/$name.status
	rm -f "$status"
	# SUBJECT_ENV: extra VAR=value settings for the subject.
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

alive() {
	[ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

# expect_fail "substring" CMD...: CMD must exit non-zero and print the
# substring on stderr.
expect_fail() {
	local want=$1
	shift
	local out rc=0
	out=$("$@" 2>&1 >/dev/null) || rc=$?
	[ "$rc" -ne 0 ] || { fail "expected failure, got success: $*"; return 1; }
	[[ "$out" == *"$want"* ]] || { fail "expected \"$want\" in the error of: $*; got: $out"; return 1; }
	LAST_ERROR=$out
}

# A checkpoint's stream files are 0600 and its directory 0700.
check_modes() {
	local dir=$1 f
	[ "$(stat -c %a "$dir")" = 700 ] || { fail "$dir has mode $(stat -c %a "$dir")"; return 1; }
	for f in "$dir"/*; do
		[ "$(stat -c %a "$f")" = 600 ] || { fail "$f has mode $(stat -c %a "$f")"; return 1; }
	done
}

kill_subjects() {
	local pid
	for pid in "${SUBJECT_PIDS[@]}"; do
		kill -9 "$pid" 2>/dev/null
	done
	SUBJECT_PIDS=()
}

# run_tests [FILTER]: run every test_* function (or those matching FILTER),
# each in a fresh scratch directory.
run_tests() {
	local filter=${1:-} fn
	for fn in $(declare -F | awk '{print $3}' | grep '^test_' | grep -- "$filter"); do
		T=$(mktemp -d /tmp/crstream-it.XXXXXX)
		TESTS_RUN=$((TESTS_RUN + 1))
		local start=$SECONDS
		printf '  %-50s ' "$fn" >&2
		printf '{}\n' >"$T/config.json"
		# Not in an `if` or `||` list: bash ignores set -e inside those.
		(export CRSTREAM_CONFIG=$T/config.json; set -e; cd "$T"; "$fn") 2>"$T/test.log"
		local rc=$?
		if [ "$rc" -eq 0 ]; then
			printf 'ok   (%ds)\n' $((SECONDS - start)) >&2
		else
			printf 'FAIL (%ds)\n' $((SECONDS - start)) >&2
			sed 's/^/      /' "$T/test.log" | tail -n 40 >&2
			TESTS_FAILED=$((TESTS_FAILED + 1))
			FAILED_NAMES+=("$fn")
		fi
		kill_subjects
		# Subjects started in the subshell: kill by status files.
		local s
		for s in "$T"/*.status; do
			[ -e "$s" ] && kill -9 "$(status_get "$s" pid)" 2>/dev/null
		done
		# A test that failed half-way may leave a mount behind.
		awk -v t="$T" 'index($2, t) == 1 {print $2}' /proc/mounts | xargs -r umount -l
		rm -rf "$T"
	done
	printf '  %d run, %d failed%s\n' "$TESTS_RUN" "$TESTS_FAILED" \
		"${FAILED_NAMES[*]:+: ${FAILED_NAMES[*]}}" >&2
	[ "$TESTS_FAILED" -eq 0 ]
}
