#!/bin/bash
# Faults inside the windows where crstream's promises live, injected into
# the real binary by tests/tools/faultinject.so (LD_PRELOAD; no fault hooks
# in crstream itself):
#
#   post-dump   CRIU has sent its last image and waits on crstream's hook
#               before it kills the tree. Whatever fails there (the dump
#               killed, a stream's fsync, the manifest's rename), the tree
#               must be resumed with its memory intact and the checkpoint
#               refused.
#   post-restore  CRIU has restored the tree and waits on the hook before
#               it lets it run. If crstream dies there, the tree must never
#               run (its heartbeat does not move).
#
# The object-storage counterparts (connection cut on CompleteMultipartUpload
# and on the manifest PUT) are in test_s3.sh, which runs the S3 server.
source "$(dirname "$0")/../lib/harness.sh"

SHIM=$ROOT/build/tools/faultinject.so

json_get() {	# json_get FILE KEY (flat objects only)
	"$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# fault RULE: FAULT_ENV becomes the environment that preloads the shim with
# CRSTREAM_FAULT=RULE (see faultinject.c), for `env "${FAULT_ENV[@]}" CMD`;
# the shim reports to $T/fault/.
fault() {
	mkdir -p "$T/fault"
	# ASan wants to be the first library; the shim has to come first here.
	FAULT_ENV=("LD_PRELOAD=$SHIM" "CRSTREAM_FAULT=$1" "CRSTREAM_FAULT_DIR=$T/fault"
		"ASAN_OPTIONS=$ASAN_OPTIONS:verify_asan_link_order=0")
}

# injected CALL PATTERN: the shim acted on CALL for a path matching PATTERN.
injected() {
	grep -q "^$1 $2 " "$T/fault/injected" 2>/dev/null ||
		{ fail "no $1 fault was injected on $2: $(cat "$T/fault/injected" 2>/dev/null)"; return 1; }
}

# wait_hook PID ACTION: a `crstream hook` child is running for ACTION below
# PID: CRIU is waiting on crstream's answer.
wait_hook() {
	"$TESTTOOL" wait-proc "$1" --cmdline-has "crstream hook " --env "CRTOOLS_SCRIPT_ACTION=$2" \
		--timeout 60 >/dev/null || { fail "CRIU is not waiting on the $2 hook"; return 1; }
}

# refused_afterwards NAME CKPT: the subject, resumed, is whole; killed, its
# checkpoint is refused and never runs.
refused_afterwards() {
	verify_subject "$1"
	kill_subject "$1"
	expect_refused "$1" "the checkpoint is incomplete" "$CRSTREAM" restore --path "$2"
	"$CRSTREAM" inspect "$2" | grep -q INCOMPLETE || fail "inspect does not say INCOMPLETE"
}

# killed_in_the_hook NAME RULE: dump subject NAME with RULE stalling a call
# of the post-dump hook's work; once stalled, with CRIU waiting on the
# hook, SIGKILL the dump.
killed_in_the_hook() {
	local name=$1 rule=$2 pid counter
	pid=$(start_subject "$name" mem --mib 64)
	counter=$(status_get "$T/$name.status" counter)
	fault "$rule"
	env "${FAULT_ENV[@]}" "$CRSTREAM" dump "$pid" --dir "$T/ck" --name "$name" --streams 2 \
		--compression lz4 2>"$T/$name.err" &
	local dump=$!
	"$TESTTOOL" wait-status "$T/fault/stalled" "pid=$dump" --timeout 120 >/dev/null ||
		fail "the dump never reached the stalled call: $(cat "$T/$name.err")"
	wait_hook "$dump" post-dump
	kill -9 "$dump"
	wait "$dump" 2>/dev/null || true
	# The hook's child sees crstream go and says no: CRIU resumes the tree.
	"$TESTTOOL" wait-status "$T/$name.status" "counter>$counter" --timeout 60 >/dev/null ||
		fail "the process did not resume"
	refused_afterwards "$name" "$T/ck/$name"
}

test_dump_killed_while_the_hook_fsyncs_a_stream() {
	killed_in_the_hook fs 'fsync:*/img-0.lz4:stall'
}

# The last step of all: the final manifest written and fsync'd, not yet
# renamed into place.
test_dump_killed_just_before_the_manifest_rename() {
	killed_in_the_hook mr 'rename:*/manifest.json:stall:2'
	[ -e "$T/ck/mr/manifest.json.tmp" ] || fail "the dump did not get as far as the final manifest"
}

# fail_in_the_hook NAME RULE WANT: the dump of NAME fails with WANT, from
# a fault RULE inside the post-dump hook.
fail_in_the_hook() {
	local name=$1 rule=$2 want=$3 pid counter
	pid=$(start_subject "$name" mem --mib 64)
	counter=$(status_get "$T/$name.status" counter)
	fault "$rule"
	expect_fail "$want" env "${FAULT_ENV[@]}" "$CRSTREAM" dump "$pid" --dir "$T/ck" --name "$name" \
		--streams 2 --compression lz4
	log "$LAST_ERROR"
	[[ "$LAST_ERROR" == *"(pid $pid keeps running;"* ]] ||
		fail "not resumed: $LAST_ERROR"
	[ "$(wc -l <<<"$LAST_ERROR")" = 1 ] || fail "more than one line: $LAST_ERROR"
	# The fault hit inside the window: CRIU ran the hook and was told no.
	grep -q "post-dump refused" "$T/ck/$name/criu-dump.log" ||
		fail "CRIU's log shows no refused post-dump hook"
	! ls "$T/ck/$name"/img-* >/dev/null 2>&1 || fail "stream files left: $(ls "$T/ck/$name")"
	"$TESTTOOL" wait-status "$T/$name.status" "counter>$counter" --timeout 60 >/dev/null ||
		fail "the process did not resume"
	refused_afterwards "$name" "$T/ck/$name"
}

test_stream_fsync_eio_in_the_hook() {
	fail_in_the_hook eio 'fsync:*/img-1.lz4:EIO' "img-1.lz4: fsync after"
	injected fsync '.*/img-1.lz4'
	[[ "$LAST_ERROR" == *"Input/output error"* ]] || fail "no EIO in: $LAST_ERROR"
}

test_manifest_rename_fails_in_the_hook() {
	fail_in_the_hook ren 'rename:*/manifest.json:EIO:2' "writing the manifest: cannot rename"
	injected rename '.*/manifest.json'
}

# crstream restore SIGKILLed while CRIU waits on the post-restore hook (the
# hook's child held at its connect, the whole image consumed): CRIU gets
# no answer and kills the tree, which never ran.
test_restore_killed_while_criu_waits_on_the_hook() {
	local pid
	pid=$(start_subject rk mem --mib 64)
	"$CRSTREAM" dump "$pid" --dir "$T/ck" --name rk --streams 2 --compression lz4 >/dev/null
	wait_gone "$pid"
	heartbeat_mark rk
	fault 'connect:*/hook.sock:stall'
	env "${FAULT_ENV[@]}" "$CRSTREAM" restore --path "$T/ck/rk" 2>"$T/rk.err" &
	local rst=$!
	"$TESTTOOL" wait-status "$T/fault/stalled" call=connect --timeout 120 >/dev/null ||
		fail "the hook never connected: $(cat "$T/rk.err")"
	wait_hook "$rst" post-restore
	# The danger is real: the tree is restored, waiting to be let go.
	"$TESTTOOL" wait-proc "$rst" --cmdline-has "--status $T/rk.status" --timeout 5 >/dev/null ||
		fail "no restored process below the restore"
	kill -9 "$rst"
	wait "$rst" 2>/dev/null || true
	touch "$T/fault/release"
	assert_never_ran rk
	# The checkpoint itself is fine: it restores.
	restore_ok_plain rk
}

# A CRIU that goes on although crstream's post-restore hook refused (its
# action script wrapped so that the refusal never reaches CRIU): crstream
# must still fail and must not leave the unverified tree running. The
# tree did run for a moment here (CRIU let it go), so this checks what
# crstream can still promise: a failure, and no process afterwards.
test_restore_fails_if_criu_ignores_the_hooks_refusal() {
	local pid
	pid=$(start_subject ig mem --mib 32)
	"$CRSTREAM" dump "$pid" --dir "$T/ck" --name ig --streams 2 --compression lz4 >/dev/null
	wait_gone "$pid"
	# Intact streams, a wrong checksum: only the hook stands in the way.
	"$PYTHON" -c 'import json,sys
m = json.load(open(sys.argv[1]))
s = m["stream_files"][0]
s["checksum"] = ("0" if s["checksum"][0] != "0" else "1") + s["checksum"][1:]
json.dump(m, open(sys.argv[1], "w"), indent=2)' "$T/ck/ig/manifest.json"
	# CRIU, with its action script's failures hidden from it.
	cat >"$T/lenient-criu" <<EOF
#!/bin/bash
args=()
for a in "\$@"; do
	case \$a in
	--action-script=*)
		printf '#!/bin/sh\n"%s" "\$@"\necho "hook said \$?" >>%s\nexit 0\n' "\${a#--action-script=}" "$T/lenient.log" >"$T/lenient-hook"
		chmod +x "$T/lenient-hook"
		a=--action-script=$T/lenient-hook ;;
	esac
	args+=("\$a")
done
exec "$CRIU" "\${args[@]}"
EOF
	chmod +x "$T/lenient-criu"
	CRSTREAM_CRIU=$T/lenient-criu expect_fail "checksum mismatch" "$CRSTREAM" restore --path "$T/ck/ig"
	# The setup made the danger real: the hook refused and CRIU went on.
	grep -q "hook said [1-9]" "$T/lenient.log" || fail "the hook never refused: $(cat "$T/lenient.log")"
	[[ "$LAST_ERROR" == *"CRIU went on after the refusal"* ]] || fail "not said: $LAST_ERROR"
	wait_gone "$pid"
}

restore_ok_plain() {
	"$CRSTREAM" restore --path "$T/ck/$1" >/dev/null 2>"$T/$1.err" || fail "restore $1: $(cat "$T/$1.err")"
	verify_subject "$1"
}

run_tests "$@"
