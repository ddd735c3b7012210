#!/bin/bash
# crstream daemon, driven by an independent client: Python's gRPC with
# stubs generated at test time from tests/daemon/proto (written from the
# API's wire facts, not from the daemon's proto files). Real CRIU, real
# subjects; each test has its own daemon on a private socket and catalog.
source "$(dirname "$0")/../lib/harness.sh"

DC_PY=$ROOT/tests/daemon/dc.py
# Stubs are generated once for the whole file.
export DC_GEN
DC_GEN=$(mktemp -d /tmp/crstream-dc.XXXXXX)
trap 'rm -rf "$DC_GEN"' EXIT

# dc SERVICE.METHOD [JSON] [dc.py options]: the client against this test's
# daemon; the answer (or {"code": ..., "details": ...}) on stdout. Through
# the test's client server (one Python for the test, see start_daemon)
# when there is one; calls run in the background use dc_bg.
dc() {
	if [ -z "${DC_SERVE:-}" ]; then
		dc_bg "$@"
		return
	fi
	local req
	# NUL-separated (jq 1.6 drops a trailing NUL; a later one may not).
	req=$(printf '%s\0' --addr "$DC_ADDR" "$@" |
		jq -Rsc 'split("\u0000") | if .[-1] == "" then .[:-1] else . end')
	printf '%s\n' "$req" >"$DC_SERVE/in"
	local out rc
	out=$(cat "$DC_SERVE/out")
	rc=${out##*#rc=}
	out=${out%#rc=*}
	printf '%s' "$out"
	return "$rc"
}

# dc_bg ...: a client of its own (for calls run concurrently).
dc_bg() {
	"$PYTHON" "$DC_PY" "$@"
}

# dc_ok / dc_err CODE: the call must succeed / fail with CODE; the answer
# is printed (and kept in $T/last.json).
dc_ok() {
	dc "$@" >"$T/last.json" || { fail "dc $1 failed: $(cat "$T/last.json")"; return 1; }
	cat "$T/last.json"
}
dc_err() {
	local code=$1
	shift
	if dc "$@" >"$T/last.json"; then
		fail "dc $1 succeeded, expected $code: $(cat "$T/last.json")"
		return 1
	fi
	[ "$(jq -r .code "$T/last.json")" = "$code" ] ||
		{ fail "dc $1: expected $code, got $(cat "$T/last.json")"; return 1; }
	cat "$T/last.json"
}

DAEMON_PIDS=()
SWIFT_STARTED=0
cleanup_daemons() {
	local p
	for p in "${DAEMON_PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null || true
	done
	[ "$SWIFT_STARTED" = 0 ] || "$ROOT/scripts/s3-server.sh" stop >/dev/null 2>&1 || true
}

# start_daemon [OPTIONS]: a daemon serving $T/run/d.sock with the catalog
# $T/d.db and checkpoints under $T/ck; returns once it listens.
start_daemon() {
	export DC_ADDR=unix://$T/run/d.sock
	local lines=0
	[ -e "$T/daemon.log" ] && lines=$(wc -l <"$T/daemon.log")
	CRSTREAM_CHECKPOINT_DIR=$T/ck CRSTREAM_DAEMON_JOB_LOGS=$T/logs \
		"$CRSTREAM" daemon --socket "$T/run/d.sock" --db "$T/d.db" "$@" 2>>"$T/daemon.log" &
	DAEMON_PID=$!
	DAEMON_PIDS+=("$DAEMON_PID")
	trap cleanup_daemons EXIT
	if [ -z "${DC_SERVE:-}" ]; then
		DC_SERVE=$T/dc
		mkdir -p "$DC_SERVE"
		"$PYTHON" "$DC_PY" --serve "$DC_SERVE" 2>>"$T/dc.log" &
		DAEMON_PIDS+=($!)
		local n
		for n in $(seq 300); do
			[ -p "$DC_SERVE/out" ] && break
			sleep 0.1
		done
	fi
	local i
	for i in $(seq 300); do
		tail -n +$((lines + 1)) "$T/daemon.log" | grep -q 'serving on' && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	fail "the daemon did not start: $(cat "$T/daemon.log")"
}

# stop_daemon: SIGTERM, and the daemon must exit 0.
stop_daemon() {
	kill -TERM "$DAEMON_PID"
	local rc=0
	wait "$DAEMON_PID" || rc=$?
	[ "$rc" = 0 ] || { fail "the daemon exited $rc: $(tail -n 20 "$T/daemon.log")"; return 1; }
}

dump_req() {	# dump_req PID [extra JSON fields]
	printf '{"Details":{"Process":{"PID":%d}}%s}' "$1" "${2:+,$2}"
}

# notify_listener FILE: a datagram socket at $T/notify, as systemd's
# NOTIFY_SOCKET, whose messages are appended to FILE; its pid in LISTENER.
notify_listener() {
	"$PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2], "w").close()
while True:
    with open(sys.argv[2], "a") as f:
        f.write(s.recv(4096).decode() + "\n")
' "$T/notify" "$1" &
	LISTENER=$!
	local i
	for i in $(seq 300); do
		[ -S "$T/notify" ] && return 0
		sleep 0.1
	done
	fail "no notify listener"
}

# wait_log TEXT: the daemon has logged TEXT.
wait_log() {
	local i
	for i in $(seq 600); do
		grep -qF -- "$1" "$T/daemon.log" && return 0
		sleep 0.1
	done
	fail "the daemon never logged \"$1\": $(tail -n 20 "$T/daemon.log")"
}

# wait_state LOCATION STATE: the catalog's checkpoint at LOCATION reaches STATE.
wait_state() {
	local i
	for i in $(seq 600); do
		dc_ok v1.GetCheckpoint '{"location":"'"$1"'"}' | jq_holds --arg s "$2" '.state == $s' &&
			return 0
		sleep 0.1
	done
	fail "checkpoint $1 never became $2: $(cat "$T/last.json")"
}

# signal_taken PID SIG: SIG is no longer pending for PID (a process that
# blocks it and reads it from a signalfd has taken it).
signal_taken() {
	local i mask
	for i in $(seq 300); do
		mask=$(sed -n 's/^ShdPnd:\s*//p' "/proc/$1/status")
		(( (16#$mask >> ($2 - 1) & 1) == 0 )) && return 0
		sleep 0.1
	done
	fail "pid $1 never took signal $2"
}

test_health_check_lists_criu_streaming_storage_and_catalog() {
	notify_listener "$T/notified"
	NOTIFY_SOCKET=$T/notify start_daemon
	dc_ok daemon.HealthCheck '{"Full": true}' >"$T/h.json"
	local area
	for area in criu streaming storage catalog; do
		jq_holds --arg a "$area" '.Results[] | select(.Name == $a) | .Components | length > 0' \
			<"$T/h.json" || fail "no $area result: $(cat "$T/h.json")"
	done
	jq_holds '[.Results[].Components[] | select(.Errors)] | length == 0' <"$T/h.json" ||
		fail "errors in a healthy setup: $(cat "$T/h.json")"
	jq -r '.Results[] | select(.Name == "criu") | .Components[].Data' "$T/h.json" |
		grep -q "version 4\." || fail "no CRIU version: $(cat "$T/h.json")"
	jq -r '.Results[] | select(.Name == "streaming") | .Components[].Data' "$T/h.json" |
		grep -q -- "--stream support: yes" || fail "no --stream support: $(cat "$T/h.json")"
	jq -r '.Results[] | select(.Name == "catalog") | .Components[].Data' "$T/h.json" |
		grep -q "schema version 2, journal wal" || fail "catalog: $(cat "$T/h.json")"
	# Without CRIU the daemon cannot checkpoint: an error, not a warning.
	stop_daemon
	# systemd heard it: ready once serving, then stopping.
	grep -q "^READY=1" "$T/notified" || fail "no READY=1: $(cat "$T/notified")"
	grep -q "^STOPPING=1" "$T/notified" || fail "no STOPPING=1: $(cat "$T/notified")"
	kill "$LISTENER"
	CRSTREAM_CRIU=/nonexistent/criu start_daemon
	dc_ok daemon.HealthCheck >"$T/h.json"
	jq_holds '.Results[] | select(.Name == "criu") | .Components[] | select(.Errors)' <"$T/h.json" ||
		fail "a missing CRIU is not an error: $(cat "$T/h.json")"
	stop_daemon
}

# The CRIU options of a Dump and a Restore request reach CRIU: it runs
# through a shim that records its command line and execs the real one.
test_criu_options_of_requests_reach_criu() {
	local pid counter op line o
	pid=$(start_subject p mem --mib 8)
	counter=$(status_get "$T/p.status" counter)
	printf '#!/bin/sh\nprintf "%%s\\n" "$*" >>"%s"\nexec "%s" "$@"\n' "$T/criu-argv" "$CRIU" \
		>"$T/criu-shim"
	chmod 0755 "$T/criu-shim"
	CRSTREAM_CRIU=$T/criu-shim start_daemon
	local criu='"Criu":{"images_dir_fd":-1,"file_locks":true,"ext_unix_sk":true,'
	criu+='"tcp_established":true,"external":["unix[1]"]}'
	dc_ok daemon.Dump "$(dump_req "$pid" '"Dir":"'"$T"'/ck","Name":"p",'"$criu")" >/dev/null
	wait_gone "$pid"
	dc_ok daemon.Restore '{"Path":"'"$T"'/ck/p",'"$criu"'}' >/dev/null
	verify_subject p "$counter"
	stop_daemon
	for op in dump restore; do
		line=$(grep "^$op " "$T/criu-argv") || fail "CRIU never ran $op: $(cat "$T/criu-argv")"
		for o in --file-locks --ext-unix-sk --tcp-established '--external[= ]unix\[1\]'; do
			grep -Eq -- "(^| )$o( |$)" <<<"$line" || fail "$op: no $o in CRIU's command line: $line"
		done
	done
}

test_dump_streams_4_lz4_and_restore_verifies() {
	local pid counter
	pid=$(start_subject p mem --mib 24)
	counter=$(status_get "$T/p.status" counter)
	start_daemon
	dc_ok daemon.Dump "$(dump_req "$pid" '"Dir":"'"$T"'/ck","Name":"p","Streams":4,"Compression":"lz4"')" \
		>"$T/dump.json"
	jq_holds --arg p "$T/ck/p" '.Paths == [$p]' <"$T/dump.json" ||
		fail "Paths: $(cat "$T/dump.json")"
	[ "$(ls "$T/ck/p" | grep -c '^img-[0-3]\.lz4$')" = 4 ] || fail "streams: $(ls "$T/ck/p")"
	jq_holds '.complete and .streams == 4 and .compression == "lz4"' <"$T/ck/p/manifest.json" ||
		fail "manifest: $(head -c 300 "$T/ck/p/manifest.json")"
	wait_gone "$pid"
	dc_ok daemon.Restore '{"Path":"'"$T"'/ck/p"}' >"$T/restore.json"
	[ "$(jq -r .PID "$T/restore.json")" = "$pid" ] || fail "restored as $(cat "$T/restore.json")"
	verify_subject p "$counter"
	# The daemon is a subreaper: the restored tree is its child.
	[ "$(ps -o ppid= -p "$pid" | tr -d ' ')" = "$DAEMON_PID" ] ||
		fail "restored pid $pid has parent $(ps -o ppid= -p "$pid")"
	stop_daemon
}

test_list_and_delete_checkpoints_agree_with_the_disk() {
	local pid
	pid=$(start_subject p mem --mib 8)
	start_daemon
	local crit='"Criu":{"images_dir_fd":-1,"leave_running":true}'
	dc_ok daemon.Dump "$(dump_req "$pid" '"Name":"a","Streams":2,'"$crit")" >/dev/null
	dc_ok daemon.Dump "$(dump_req "$pid" '"Name":"b","Streams":0,'"$crit")" >/dev/null
	alive "$pid" || fail "leave_running: the subject is gone"
	dc_ok daemon.ListCheckpoints >"$T/list.json"
	jq -r '.Checkpoints[].Path' "$T/list.json" | sort >"$T/paths"
	ls -d "$T"/ck/* | sort >"$T/disk"
	diff "$T/paths" "$T/disk" >&2 || fail "catalog and disk differ"
	jq_holds '.Checkpoints | all(.ID != "" and (.Time | tonumber) > 0 and (.Size | tonumber) > 0)' \
		<"$T/list.json" || fail "entries: $(cat "$T/list.json")"
	local a
	a=$(jq -r '.Checkpoints[] | select(.Path | endswith("/a")) | .ID' "$T/list.json")
	dc_ok daemon.GetCheckpoint '{"ID":"'"$a"'"}' | jq_holds --arg p "$T/ck/a" '.Checkpoint.Path == $p' ||
		fail "GetCheckpoint: $(cat "$T/last.json")"
	dc_ok daemon.DeleteCheckpoint '{"ID":"'"$a"'"}' >/dev/null
	[ ! -e "$T/ck/a" ] || fail "DeleteCheckpoint left $(ls -la "$T/ck/a")"
	dc_ok daemon.ListCheckpoints | jq -r '.Checkpoints[].Path' >"$T/paths"
	ls -d "$T"/ck/* >"$T/disk"
	diff "$T/paths" "$T/disk" >&2 || fail "catalog and disk differ after the delete"
	dc_err NOT_FOUND daemon.DeleteCheckpoint '{"ID":"'"$a"'"}' >/dev/null
	stop_daemon
}

test_bad_requests_get_status_codes_and_the_daemon_keeps_serving() {
	local pid
	pid=$(start_subject p mem --mib 4)
	start_daemon
	local p='"Details":{"Process":{"PID":'$pid'}}'
	# field -> expected code and the field named in the message
	dc_err INVALID_ARGUMENT daemon.Dump "{$p,\"Name\":\"a/b\"}" | grep -q Name || fail "$(cat "$T/last.json")"
	dc_err INVALID_ARGUMENT daemon.Dump "{$p,\"Name\":\"..\"}" | grep -q Name || fail "$(cat "$T/last.json")"
	dc_err INVALID_ARGUMENT daemon.Dump "{$p,\"Streams\":65}" | grep -q Streams || fail "$(cat "$T/last.json")"
	dc_err INVALID_ARGUMENT daemon.Dump "{$p,\"Streams\":-1}" | grep -q Streams || fail "$(cat "$T/last.json")"
	# v1's streams is unsigned: 2^32 - 1 is out of range, not -1 ("default").
	dc_err INVALID_ARGUMENT v1.Dump '{"pid":'"$pid"',"streams":4294967295}' --stream |
		grep -q 'streams 4294967295: must be 0 to 64' || fail "$(cat "$T/last.json")"
	dc_err INVALID_ARGUMENT daemon.Dump "{$p,\"Compression\":\"brotli\"}" | grep -q Compression ||
		fail "$(cat "$T/last.json")"
	dc_err INVALID_ARGUMENT daemon.Dump "{$p,\"Dir\":\"relative/dir\"}" | grep -q Dir || fail "$(cat "$T/last.json")"
	dc_err INVALID_ARGUMENT daemon.Restore '{"Path":"relative"}' | grep -q Path || fail "$(cat "$T/last.json")"
	dc_err INVALID_ARGUMENT daemon.Run '{"Details":{"Process":{"Path":"/bin/true"}},"Log":"/tmp/../x.log"}' |
		grep -q 'Log .*/tmp/\.\./x\.log.*must not contain' || fail "$(cat "$T/last.json")"
	# More External entries than CRIU gets (64), or an empty one: refused,
	# not cut short.
	local many
	many=$(seq 65 | jq -cR '"unix[\(.)]"' | jq -cs '{"images_dir_fd": -1, "external": .}')
	dc_err INVALID_ARGUMENT daemon.Dump "{$p,\"Criu\":$many}" | grep -q 'External: 65 entries, at most 64' ||
		fail "$(cat "$T/last.json")"
	dc_err INVALID_ARGUMENT daemon.Restore '{"Path":"'"$T"'/x","Criu":'"$many"'}' | grep -q External ||
		fail "$(cat "$T/last.json")"
	dc_err INVALID_ARGUMENT daemon.Dump "{$p,\"Criu\":{\"images_dir_fd\":-1,\"external\":[\"\"]}}" |
		grep -q 'External\[0\]: empty' || fail "$(cat "$T/last.json")"
	dc_err INVALID_ARGUMENT daemon.Restore '{"Path":"'"$T"'/x","PidFile":"pid"}' | grep -q PidFile ||
		fail "$(cat "$T/last.json")"
	dc_err NOT_FOUND daemon.Dump '{"Details":{"Process":{"PID":4000000}}}' | grep -q 4000000 ||
		fail "$(cat "$T/last.json")"
	dc_err NOT_FOUND daemon.Dump '{"Type":"job","Details":{"JID":"nosuchjob"}}' | grep -q nosuchjob ||
		fail "$(cat "$T/last.json")"
	dc_err NOT_FOUND daemon.GetCheckpoint '{"ID":"0123456789abcdef"}' >/dev/null
	dc_err NOT_FOUND daemon.DeleteCheckpoint '{"ID":"0123456789abcdef"}' >/dev/null
	dc_err NOT_FOUND daemon.Get '{"JID":"nosuchjob"}' >/dev/null
	# Bytes that are no DumpReq (a truncated length-delimited field).
	dc_err INVALID_ARGUMENT daemon.Dump --raw 0a0501 | grep -q DumpReq || fail "$(cat "$T/last.json")"
	dc_err UNIMPLEMENTED daemon.Freeze "{$p}" >/dev/null
	dc_err UNIMPLEMENTED daemon.Dump "{$p,\"Action\":\"FREEZE_ONLY\"}" >/dev/null
	dc_err FAILED_PRECONDITION daemon.Dump '{"Details":{"Process":{"PID":1}}}' >/dev/null
	alive "$pid" || fail "the subject died"
	[ ! -e "$T/ck" ] || [ -z "$(ls -A "$T/ck")" ] || fail "refused dumps left $(ls "$T/ck")"
	dc_ok daemon.HealthCheck >/dev/null
	stop_daemon
}

test_catalog_survives_a_restart() {
	local pid
	pid=$(start_subject p mem --mib 4)
	# Cedana's spelling of checkpoint.streams: the default for a dump that
	# leaves Streams unset.
	printf '{"checkpoint": {"stream": 3}}\n' >"$T/config.json"
	start_daemon
	dc_ok daemon.Dump "$(dump_req "$pid" '"Name":"x","Criu":{"images_dir_fd":-1,"leave_running":true}')" >/dev/null
	jq_holds '.streams == 3' <"$T/ck/x/manifest.json" ||
		fail "streams: $(head -c 200 "$T/ck/x/manifest.json")"
	dc_ok daemon.ListCheckpoints >"$T/before.json"
	stop_daemon
	start_daemon
	dc_ok daemon.ListCheckpoints >"$T/after.json"
	diff "$T/before.json" "$T/after.json" >&2 || fail "the catalog changed across a restart"
	jq_holds '.Checkpoints | length == 1' <"$T/after.json" || fail "$(cat "$T/after.json")"
	stop_daemon
}

# job_field JID JQ: a field of daemon.Daemon's Get answer.
job_field() {
	dc_ok daemon.Get '{"JID":"'"$1"'"}' | jq -r ".Job$2"
}

# run_subject_job JID NAME MODE [ARGS]: Run a subject as a job (its
# status file $T/NAME.status, as start_subject's); prints its pid.
run_subject_job() {
	local jid=$1 name=$2 mode=$3 args
	shift 3
	args=$(printf '%s\n' "$mode" --status "$T/$name.status" "$@" | jq -cRn '[inputs]')
	dc_ok daemon.Run '{"JID":"'"$jid"'","Details":{"Process":{"Path":"'"$SUBJECT"'","Args":'"$args"',
		"WorkingDir":"'"$T"'"}}}' >"$T/run.json"
	"$TESTTOOL" wait-status "$T/$name.status" state=ready --timeout 120 >/dev/null ||
		{ fail "job $jid did not become ready: $(cat "$T/logs/$jid.log")"; return 1; }
	jq -r .PID "$T/run.json"
}

test_jobs_run_dump_twice_restore_latest_kill() {
	start_daemon
	local pid counter
	pid=$(run_subject_job j1 j mem --mib 8)
	[ "$(status_get "$T/j.status" pid)" = "$pid" ] || fail "Run said pid $pid, the job is $(status_get "$T/j.status" pid)"
	[ "$(ps -o ppid= -p "$pid" | tr -d ' ')" = "$DAEMON_PID" ] || fail "the job is not the daemon's child"
	[ "$(job_field j1 .State.Status)" = running ] || fail "state: $(cat "$T/last.json")"
	local job='"Type":"job","Details":{"JID":"j1"}'
	dc_ok daemon.Dump '{'"$job"',"Name":"first","Criu":{"images_dir_fd":-1,"leave_running":true}}' >/dev/null
	alive "$pid" || fail "leave_running: the job's process is gone"
	[ "$(job_field j1 .State.Status)" = running ] || fail "after leave_running: $(cat "$T/last.json")"
	counter=$(status_get "$T/j.status" counter)
	dc_ok daemon.Dump '{'"$job"',"Name":"second"}' >/dev/null
	wait_gone "$pid"
	[ "$(job_field j1 .State.Status)" = checkpointed ] || fail "after the dump: $(cat "$T/last.json")"
	dc_ok daemon.ListCheckpoints '{"JID":"j1"}' | jq -r '.Checkpoints[].Path' >"$T/paths"
	printf '%s\n' "$T/ck/first" "$T/ck/second" | diff - "$T/paths" >&2 || fail "the job's checkpoints"
	dc_ok daemon.GetCheckpoint '{"JID":"j1"}' | jq_holds --arg p "$T/ck/second" '.Checkpoint.Path == $p' ||
		fail "latest: $(cat "$T/last.json")"
	# Restore the latest, as the job.
	dc_ok daemon.Restore '{"Type":"job","Details":{"JID":"j1"}}' >"$T/restore.json"
	[ "$(jq -r .PID "$T/restore.json")" = "$pid" ] || fail "restored as $(cat "$T/restore.json")"
	verify_subject j "$counter"
	dc_ok daemon.List >"$T/list.json"
	jq_holds --argjson p "$pid" '.Jobs | length == 1 and .[0].JID == "j1" and .[0].State.PID == $p and
		.[0].State.IsRunning' <"$T/list.json" || fail "List: $(cat "$T/list.json")"
	job_field j1 .State.Status | grep -q '^running (restored from ' || fail "Get: $(cat "$T/last.json")"
	# The restored process is the daemon's child again: its end is reaped.
	dc_ok daemon.Kill '{"JIDs":["j1"]}' | grep -q 'killed by signal 9' || fail "Kill: $(cat "$T/last.json")"
	wait_gone "$pid"
	[ "$(job_field j1 .State.Status)" = "killed by signal 9 (Killed)" ] || fail "after Kill: $(cat "$T/last.json")"
	# proto3 JSON leaves false out.
	[ "$(jq -r ".Job.State.IsRunning // false" "$T/last.json")" = false ] || fail "$(cat "$T/last.json")"
	dc_err FAILED_PRECONDITION daemon.Kill '{"JIDs":["j1"]}' >/dev/null
	dc_ok daemon.Delete '{"JIDs":["j1"]}' >/dev/null
	dc_err NOT_FOUND daemon.Get '{"JID":"j1"}' >/dev/null
	stop_daemon
}

test_job_output_goes_to_its_log_and_exit_code_is_recorded() {
	start_daemon
	dc_ok daemon.Run '{"JID":"sh","Details":{"Process":{"Path":"sh","Args":["-c",
		"echo to-stdout; echo to-stderr >&2; read x; exit 3"]}}}' >/dev/null
	local pid
	pid=$(job_field sh .State.PID)
	# It waits on stdin, which is /dev/null: it reads EOF and exits 3.
	wait_gone "$pid"
	local i
	for i in $(seq 50); do
		[ "$(job_field sh .State.Status)" != running ] && break
		sleep 0.1
	done
	[ "$(job_field sh .State.Status)" = "exited with code 3" ] || fail "$(cat "$T/last.json")"
	[ "$(job_field sh .Log)" = "$T/logs/sh.log" ] || fail "log: $(cat "$T/last.json")"
	printf 'to-stdout\nto-stderr\n' | diff - "$T/logs/sh.log" >&2 || fail "the job's log"
	dc_err ALREADY_EXISTS daemon.Run '{"JID":"sh","Details":{"Process":{"Path":"true"}}}' >/dev/null
	dc_err INVALID_ARGUMENT daemon.Run '{"Details":{"Process":{"Path":"/nonexistent/x"}}}' |
		grep -q nonexistent || fail "$(cat "$T/last.json")"
	dc_err INVALID_ARGUMENT daemon.Run '{"JID":"a/b","Details":{"Process":{"Path":"true"}}}' |
		grep -q JID || fail "$(cat "$T/last.json")"
	stop_daemon
}

test_manage_adopts_a_running_process() {
	local pid
	pid=$(start_subject p mem --mib 4)
	start_daemon
	dc_ok daemon.Manage '{"JID":"adopted","Details":{"Process":{"PID":'"$pid"'}},"Action":"MANAGE_EXISTING"}' \
		>/dev/null
	[ "$(job_field adopted .State.PID)" = "$pid" ] || fail "$(cat "$T/last.json")"
	job_field adopted .State.Cmdline | grep -q "subject mem" || fail "$(cat "$T/last.json")"
	dc_err ALREADY_EXISTS daemon.Manage '{"Details":{"Process":{"PID":'"$pid"'}}}' >/dev/null
	dc_ok daemon.Dump '{"Type":"job","Details":{"JID":"adopted"},"Name":"a"}' >/dev/null
	wait_gone "$pid"
	[ "$(job_field adopted .State.Status)" = checkpointed ] || fail "$(cat "$T/last.json")"
	dc_ok daemon.Restore '{"Type":"job","Details":{"JID":"adopted"}}' >/dev/null
	verify_subject p
	[ "$(job_field adopted .State.Status | cut -d' ' -f1)" = running ] || fail "$(cat "$T/last.json")"
	stop_daemon
}

SHIM=$ROOT/build/tools/faultinject.so

# keys FILE: the sorted keys of a JSON object.
keys() {
	jq -r 'keys[]' "$1" | sort
}

# start_stalling_daemon: a daemon whose dumps stall inside CRIU's post-dump
# hook (the tree frozen, CRIU waiting on crstream's answer), on the first
# stream's fsync, until $T/fault/release exists (tests/tools/faultinject.c).
start_stalling_daemon() {
	mkdir -p "$T/fault"
	LD_PRELOAD=$SHIM CRSTREAM_FAULT='fsync:*/img-0.lz4:stall' CRSTREAM_FAULT_DIR=$T/fault \
		ASAN_OPTIONS=$ASAN_OPTIONS:verify_asan_link_order=0 start_daemon "$@"
}

# wait_stalled: a dump is held in its post-dump hook; prints the worker's pid.
wait_stalled() {
	"$TESTTOOL" wait-status "$T/fault/stalled" call=fsync --timeout 120 >/dev/null ||
		{ fail "no dump reached its post-dump hook: $(tail -n 5 "$T/daemon.log")"; return 1; }
	local worker
	worker=$(status_get "$T/fault/stalled" pid)
	"$TESTTOOL" wait-proc "$worker" --cmdline-has "crstream hook " --env CRTOOLS_SCRIPT_ACTION=post-dump \
		--timeout 60 >/dev/null || { fail "CRIU is not waiting on the post-dump hook"; return 1; }
	echo "$worker"
}

test_three_dumps_at_once_all_complete_and_verify() {
	local n pids=()
	declare -A counter
	for n in a b c; do
		start_subject "$n" mem --mib 8 >/dev/null
		counter[$n]=$(status_get "$T/$n.status" counter)
	done
	start_daemon
	for n in a b c; do
		dc_bg daemon.Dump "$(dump_req "$(status_get "$T/$n.status" pid)" \
			'"Name":"'"$n"'","Streams":2,"Compression":"lz4"')" >"$T/$n.json" &
		pids+=($!)
	done
	for n in 0 1 2; do
		wait "${pids[$n]}" || fail "dump $n: $(cat "$T"/{a,b,c}.json)"
	done
	pids=()
	for n in a b c; do
		wait_gone "$(status_get "$T/$n.status" pid)"
		dc_bg daemon.Restore '{"Path":"'"$T/ck/$n"'"}' >"$T/$n.r.json" &
		pids+=($!)
	done
	for n in 0 1 2; do
		wait "${pids[$n]}" || fail "restore $n: $(cat "$T"/{a,b,c}.r.json)"
	done
	for n in a b c; do
		verify_subject "$n" "${counter[$n]}"
	done
	stop_daemon
}

test_two_dumps_of_one_tree_at_once_exactly_one_proceeds() {
	local pid child
	pid=$(start_subject t tree --children 2 --mib 4)
	child=$(status_get "$T/t.status" child_pids | cut -d, -f1)
	[ -n "$child" ] || fail "no child pid in $(cat "$T/t.status")"
	start_stalling_daemon
	dc_bg daemon.Dump "$(dump_req "$pid" '"Name":"one"')" >"$T/one.json" &
	local one=$!
	dc_bg daemon.Dump "$(dump_req "$pid" '"Name":"two"')" >"$T/two.json" &
	local two=$!
	wait_stalled >/dev/null
	# The one held in the hook has the lock: the other is refused while
	# it holds it.
	local first=0 refused held
	wait -n "$one" "$two" || first=$?
	[ "$first" = 1 ] || fail "a dump ended while the other was held: $(cat "$T/one.json" "$T/two.json")"
	if [ -s "$T/one.json" ]; then refused=one held=$two; else refused=two held=$one; fi
	jq_holds '.code == "FAILED_PRECONDITION" and (.details | contains("being checkpointed already"))' \
		<"$T/$refused.json" || fail "refused: $(cat "$T/$refused.json")"
	# A process of the same tree, its child, is refused as well.
	dc_err FAILED_PRECONDITION daemon.Dump "$(dump_req "$child" '"Name":"child"')" >/dev/null
	touch "$T/fault/release"
	wait "$held" || fail "the held dump failed: $(cat "$T/one.json" "$T/two.json")"
	[ "$(ls "$T/ck")" = "$([ $refused = one ] && echo two || echo one)" ] ||
		fail "checkpoints: $(ls "$T/ck")"
	stop_daemon
}

# mid_dump NAME: subject NAME (16 MiB) dumped by this test's (stalling)
# daemon through a client in the background ($CLIENT); returns once the
# dump is held inside its post-dump hook.
mid_dump() {
	local pid
	pid=$(start_subject "$1" mem --mib 8)
	start_stalling_daemon
	dc_bg daemon.Dump "$(dump_req "$pid" '"Name":"'"$1"'","Streams":2,"Compression":"lz4"')" \
		>"$T/client.json" &
	CLIENT=$!
	WORKER=$(wait_stalled)
}

# incomplete_after_restart NAME: a fresh daemon on the same catalog
# refuses to restore the checkpoint NAME: it is incomplete.
incomplete_after_restart() {
	start_daemon
	dc_err FAILED_PRECONDITION daemon.Restore '{"Path":"'"$T/ck/$1"'"}' | grep -q 'is incomplete' ||
		fail "$(cat "$T/last.json")"
	jq_holds '.complete == false' <"$T/ck/$1/manifest.json" || fail "the manifest says complete"
	dc_ok v1.GetCheckpoint '{"location":"'"$T/ck/$1"'"}' | jq_holds '.state == "incomplete"' ||
		fail "catalog: $(cat "$T/last.json")"
	stop_daemon
}

test_daemon_killed_mid_dump_process_resumes_checkpoint_incomplete() {
	mid_dump k
	local counter
	counter=$(status_get "$T/k.status" counter)
	kill -9 "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null || true
	# Its worker died with it: CRIU's post-dump hook gets no answer, and
	# CRIU resumes the tree instead of killing it.
	"$TESTTOOL" wait-status "$T/k.status" "counter>$counter" --timeout 60 >/dev/null ||
		fail "the process did not resume"
	verify_subject k
	! wait "$CLIENT" || fail "the client's dump succeeded: $(cat "$T/client.json")"
	incomplete_after_restart k
	grep -q "was in progress when the daemon stopped: now incomplete" "$T/daemon.log" ||
		fail "no reconciliation: $(cat "$T/daemon.log")"
}

test_daemon_terminated_mid_dump_cancels_it_cleanly() {
	mid_dump k
	kill -TERM "$DAEMON_PID"
	wait_log "cancelled 1 dump(s); their processes keep running"
	signal_taken "$WORKER" 2
	touch "$T/fault/release"
	stop_daemon
	! wait "$CLIENT" || fail "the client's dump succeeded: $(cat "$T/client.json")"
	jq_holds '.code == "CANCELLED"' <"$T/client.json" || fail "client: $(cat "$T/client.json")"
	verify_subject k
	incomplete_after_restart k
}

test_client_going_away_does_not_cancel_the_dump() {
	mid_dump k
	local pid
	pid=$(status_get "$T/k.status" pid)
	kill -9 "$CLIENT"
	wait "$CLIENT" 2>/dev/null || true
	touch "$T/fault/release"
	# The dump completes: CRIU kills the tree once the checkpoint is durable.
	wait_gone "$pid"
	jq_holds '.complete' <"$T/ck/k/manifest.json" || fail "the dump did not complete"
	dc_ok daemon.Restore '{"Path":"'"$T/ck/k"'"}' >/dev/null
	verify_subject k
	stop_daemon
}

test_v1_streams_progress_then_the_result_object() {
	local pid
	pid=$(start_subject p mem --mib 8)
	start_daemon
	dc_ok v1.Dump '{"pid":'"$pid"',"name":"p","streams":2,"compression":"zstd","level":3}' --stream \
		>"$T/events"
	head -n1 "$T/events" | jq_holds --arg l "$T/ck/p" '.started.location == $l and .started.op == "dump"
		and (.started.checkpoint_id | length) == 16' || fail "first: $(head -n1 "$T/events")"
	jq -r 'select(.progress) | .progress.phase' "$T/events" | uniq >"$T/phases"
	grep -qx capturing "$T/phases" || fail "phases: $(cat "$T/phases")"
	[ "$(tail -n1 "$T/phases")" = done ] || fail "phases: $(cat "$T/phases")"
	jq -se '[.[] | select(.progress.phase? == "done")] | length == 1 and
		(.[0].progress.stored_bytes | tonumber > 0)' "$T/events" >/dev/null ||
		fail "no stored bytes: $(grep '"done"' "$T/events")"
	tail -n1 "$T/events" | jq_holds '.result.ok' || fail "last: $(tail -n1 "$T/events")"
	# The result object has the fields of `crstream dump --json`.
	tail -n1 "$T/events" | jq -r .result.json >"$T/result.json"
	local other
	other=$(start_subject q mem --mib 4)
	"$CRSTREAM" dump "$other" --dir "$T/local" --json >"$T/local.json"
	diff <(keys "$T/local.json") <(keys "$T/result.json") >&2 || fail "result fields differ from --json's"
	jq_holds --arg l "$T/ck/p" '.status == "ok" and .checkpoint == $l and .streams == 2 and
		.compression == "zstd"' <"$T/result.json" || fail "result: $(cat "$T/result.json")"
	# The manifest, and its checksum in the catalog.
	local id
	id=$(tail -n1 "$T/events" | jq -r .result.checkpoint_id)
	dc_ok v1.GetCheckpoint '{"id":"'"$id"'","with_manifest":true}' >"$T/ck.json"
	jq -j .manifest "$T/ck.json" | cmp - "$T/ck/p/manifest.json" || fail "manifest differs"
	[ "$(jq -r .manifest_checksum "$T/ck.json")" = "$(xxh128sum "$T/ck/p/manifest.json" | cut -d' ' -f1)" ] ||
		fail "manifest checksum: $(cat "$T/ck.json")"
	jq_holds '.state == "complete" and .streams == 2' <"$T/ck.json" || fail "$(cat "$T/ck.json")"
	dc_ok v1.Restore '{"checkpoint_id":"'"$id"'"}' --stream >"$T/r.events"
	tail -n1 "$T/r.events" | jq_holds --argjson p "$pid" '.result.ok and .result.pid == $p' ||
		fail "restore: $(tail -n1 "$T/r.events")"
	verify_subject p
	stop_daemon
}

test_v1_cancel_stops_a_dump_and_the_process_keeps_running() {
	local pid
	pid=$(start_subject p mem --mib 8)
	start_stalling_daemon
	dc_bg v1.Dump '{"pid":'"$pid"',"name":"p"}' --stream >"$T/events" &
	local client=$! worker
	worker=$(wait_stalled)
	local op
	op=$(head -n1 "$T/events" | jq -r .operation_id)
	dc_ok v1.ListCheckpoints | jq_holds --arg o "$op" '.checkpoints[0].state == "in_progress" and
		.checkpoints[0].operation_id == $o' || fail "catalog: $(cat "$T/last.json")"
	# Watching it from elsewhere sees the same operation.
	dc_bg v1.Watch '{"operation_id":"'"$op"'"}' --stream >"$T/watch" &
	local watcher=$! i
	for i in $(seq 300); do
		[ -s "$T/watch" ] && break
		sleep 0.1
	done
	head -n1 "$T/watch" | jq_holds --arg o "$op" '.operation_id == $o and .started' ||
		fail "the watcher is not watching: $(cat "$T/watch")"
	dc_ok v1.Cancel '{"operation_id":"'"$op"'"}' | jq_holds .cancelled || fail "$(cat "$T/last.json")"
	signal_taken "$worker" 2
	touch "$T/fault/release"
	! wait "$client" || fail "the cancelled dump's stream ended OK"
	tail -n1 "$T/events" | jq_holds '.code == "CANCELLED"' || fail "$(tail -n2 "$T/events")"
	tail -n2 "$T/events" | head -n1 | jq_holds '(.result.ok // false) == false and .result.process_running' ||
		fail "result: $(tail -n2 "$T/events")"
	! wait "$watcher" || fail "the watcher's stream ended OK"
	grep -q '"result"' "$T/watch" || fail "the watcher saw no result: $(cat "$T/watch")"
	verify_subject p
	dc_ok v1.ListCheckpoints | jq_holds '.checkpoints[0].state == "incomplete"' ||
		fail "catalog: $(cat "$T/last.json")"
	dc_err NOT_FOUND v1.Cancel '{"operation_id":"'"$op"'"}' >/dev/null
	stop_daemon
}

test_cli_interrupted_cancels_the_daemons_dump() {
	local pid
	pid=$(start_subject p mem --mib 8)
	start_stalling_daemon
	"$CRSTREAM" dump "$pid" --daemon "$DC_ADDR" --name p 2>"$T/cli.err" &
	local cli=$! worker
	worker=$(wait_stalled)
	kill -INT "$cli"
	# The CLI's Cancel reached the daemon, and the worker took the SIGINT:
	# the dump backs out once its stalled call returns.
	wait_log "cancelled (SIGINT to worker $worker)"
	signal_taken "$worker" 2
	touch "$T/fault/release"
	local rc=0
	wait "$cli" || rc=$?
	[ "$rc" = 1 ] || fail "the CLI exited $rc: $(cat "$T/cli.err")"
	grep -q "interrupted (pid $pid keeps running" "$T/cli.err" ||
		fail "$(cat "$T/cli.err")"
	verify_subject p
	# Async: the answer comes once the dump has started; the catalog has it.
	dc_ok daemon.Dump "$(dump_req "$pid" '"Name":"a","Async":true')" >"$T/async.json"
	grep -q "dump started, asynchronously" "$T/async.json" || fail "$(cat "$T/async.json")"
	wait_state "$T/ck/a" complete
	stop_daemon
}

test_cli_through_the_daemon() {
	start_daemon
	export CRSTREAM_DAEMON=$DC_ADDR
	"$CRSTREAM" run --jid cli -- "$SUBJECT" mem --mib 8 --status "$T/c.status" >"$T/run.out"
	grep -q "^job cli: running (pid [0-9]*), log $T/logs/cli.log" "$T/run.out" || fail "run: $(cat "$T/run.out")"
	"$TESTTOOL" wait-status "$T/c.status" state=ready --timeout 60 >/dev/null || fail "the job is not ready"
	local pid
	pid=$(status_get "$T/c.status" pid)
	"$CRSTREAM" jobs --json | jq_holds --argjson p "$pid" 'select(.jid == "cli") | .pid == $p and
		.state == "running" and .child' || fail "jobs: $("$CRSTREAM" jobs --json)"
	"$CRSTREAM" jobs | grep -q "^cli  *$pid  *running " || fail "jobs: $("$CRSTREAM" jobs)"
	# On a terminal, the progress line comes through the daemon.
	script -qfec "$(printf '%q ' "$CRSTREAM" dump job cli --leave-running --name first)" "$T/dump.tty" \
		>/dev/null
	tr '\r' '\n' <"$T/dump.tty" | grep -aq "^crstream: dump pid $pid: capturing" ||
		fail "no progress line: $(tr '\r' '\n' <"$T/dump.tty" | tail -n 5)"
	grep -aq "catalog ID [0-9a-f]*, job cli" "$T/dump.tty" || fail "summary: $(cat "$T/dump.tty")"
	"$CRSTREAM" dump job cli --name second --json >"$T/second.json"
	jq_holds '.status == "ok"' <"$T/second.json" || fail "dump job: $(cat "$T/second.json")"
	wait_gone "$pid"
	"$CRSTREAM" ls >"$T/ls"
	[ "$(grep -c ' complete  *cli ' "$T/ls")" = 2 ] || fail "ls: $(cat "$T/ls")"
	local id
	id=$(awk '$NF ~ /second$/ {print $1}' "$T/ls")
	"$CRSTREAM" restore --path "$id" >"$T/restore.out"
	grep -q "^  job cli" "$T/restore.out" || fail "restore: $(cat "$T/restore.out")"
	verify_subject c
	# The job, running again under its JID, with its two checkpoints.
	"$CRSTREAM" jobs --json | jq_holds --argjson p "$pid" 'select(.jid == "cli") | .pid == $p and
		.state == "running" and .restored_from != "" and .checkpoints == 2' ||
		fail "jobs after the restore: $("$CRSTREAM" jobs --json)"
	"$CRSTREAM" kill cli | grep -q "killed by signal 9" || fail "kill"
	"$CRSTREAM" rm "$id" | grep -q "^removed $T/ck/second " || fail "rm"
	[ ! -e "$T/ck/second" ] || fail "rm left $T/ck/second"
	# The daemon's health, in check.
	"$CRSTREAM" check >"$T/check" || fail "check: $(cat "$T/check")"
	grep -q "^ok    daemon $DC_ADDR: catalog: " "$T/check" || fail "check: $(cat "$T/check")"
	unset CRSTREAM_DAEMON
	CRSTREAM_DAEMON_LISTEN=0.0.0.0:1 "$CRSTREAM" check --dir "$T" >"$T/check" || true
	grep -q "^warn  daemon.listen 0.0.0.0:1 without daemon.tls_cert.*non-loopback" "$T/check" ||
		fail "check: $(cat "$T/check")"
	# `dump process` is `dump`, and without a daemon, dump works alone.
	local other
	other=$(start_subject o mem --mib 4)
	"$CRSTREAM" dump process "$other" --dir "$T/alone" --name o >/dev/null
	[ -e "$T/alone/o/manifest.json" ] || fail "dump process"
	expect_fail "no crstream daemon answers at unix:///nonexistent.sock" \
		"$CRSTREAM" jobs --daemon unix:///nonexistent.sock
	stop_daemon
}

# Keys are the daemon's own configuration, never a request's: a dump
# through the daemon is encrypted and signed with the daemon's
# checkpoint.recipients and checkpoint.sign_key, restored under its
# restore.identities and restore.trusted_keys; key options through the
# daemon are refused as misuse, the process running on.
test_daemon_seals_with_its_own_keys_only() {
	local rec pid
	rec=$("$CRSTREAM" keygen --output "$T/id.txt")
	"$CRSTREAM" keygen --sign --output "$T/sign" >/dev/null
	CRSTREAM_CHECKPOINT_RECIPIENTS=$rec CRSTREAM_CHECKPOINT_SIGN_KEY=$T/sign \
		CRSTREAM_RESTORE_IDENTITIES=$T/id.txt CRSTREAM_RESTORE_TRUSTED_KEYS=$T/sign.pub start_daemon
	export CRSTREAM_DAEMON=$DC_ADDR
	pid=$(start_subject k mem --mib 8)
	"$CRSTREAM" keygen --output "$T/mine.txt" >"$T/mine.rec"
	expect_misuse "--recipient, --recipients-file and --sign-key are not available through the daemon" \
		"$CRSTREAM" dump "$pid" --recipient "$(cat "$T/mine.rec")"
	alive "$pid" || fail "the process did not survive a refused dump"
	"$CRSTREAM" dump "$pid" --name sealed --json >"$T/d.json" || fail "dump: $(cat "$T/d.json")"
	jq_holds '.status == "ok" and .encrypted and .signed' <"$T/d.json" || fail "dump: $(cat "$T/d.json")"
	wait_gone "$pid"
	[ -e "$T/ck/sealed/manifest.json.sig" ] && compgen -G "$T/ck/sealed/img-0*.age" >/dev/null ||
		fail "not sealed: $(ls "$T/ck/sealed")"
	expect_misuse "--identity, --trusted-key and --verify-first are not available through the daemon" \
		"$CRSTREAM" restore --path "$T/ck/sealed" --identity "$T/mine.txt"
	"$CRSTREAM" restore --path "$T/ck/sealed" --json >"$T/r.json" || fail "restore: $(cat "$T/r.json")"
	jq_holds '.status == "ok" and .encrypted and (.trust | startswith("signature verified"))' <"$T/r.json" ||
		fail "restore: $(cat "$T/r.json")"
	verify_subject k
	unset CRSTREAM_DAEMON
	stop_daemon
}

test_periodic_policy_checkpoints_and_prunes_to_keep() {
	start_daemon
	CRSTREAM_DAEMON=$DC_ADDR "$CRSTREAM" run --jid per --every 1s --keep 2 --policy-dir "$T/periodic" \
		-- "$SUBJECT" mem --mib 4 --status "$T/per.status" >/dev/null
	"$TESTTOOL" wait-status "$T/per.status" state=ready --timeout 60 >/dev/null || fail "not ready"
	# Until four checkpoints have been seen complete, each look at the
	# catalog must show at most keep complete ones (keep + 1 for the
	# moment between a completion and its pruning).
	local seen=() latest deadline=$((SECONDS + 120))
	while ((SECONDS < deadline)); do
		dc_ok v1.ListCheckpoints '{"jid":"per"}' >"$T/list.json"
		[ "$(jq '[.checkpoints[]? | select(.state == "complete")] | length' "$T/list.json")" -le 3 ] ||
			fail "more than keep + 1 complete: $(cat "$T/list.json")"
		latest=$(jq -r '[.checkpoints[]? | select(.state == "complete")] | last | .id // ""' "$T/list.json")
		if [ -n "$latest" ] && [[ " ${seen[*]} " != *" $latest "* ]]; then
			seen+=("$latest")
		fi
		[ "${#seen[@]}" -ge 4 ] && break
		sleep 0.1
	done
	[ "${#seen[@]}" -ge 4 ] || fail "only ${#seen[@]} periodic checkpoints: $(cat "$T/list.json")"
	# Policy off; once nothing runs, exactly keep remain, the newest.
	dc_ok v1.SetPolicy '{"jid":"per","policy":{"interval_seconds":0,"keep":2}}' >/dev/null
	deadline=$((SECONDS + 120))
	while ((SECONDS < deadline)); do
		dc_ok v1.ListCheckpoints '{"jid":"per"}' >"$T/list.json"
		jq_holds '(.checkpoints | length == 2) and all(.checkpoints[]; .state == "complete")' \
			<"$T/list.json" && break
		sleep 0.1
	done
	jq_holds '(.checkpoints | length == 2) and all(.checkpoints[]; .state == "complete")' \
		<"$T/list.json" || fail "not pruned to 2: $(cat "$T/list.json")"
	local newest
	newest=$(jq -r '.checkpoints[-1].id' "$T/list.json")
	[ "$newest" = "$(dc_ok v1.GetCheckpoint '{"jid":"per"}' | jq -r .id)" ] || fail "latest"
	jq -r '.checkpoints[].location' "$T/list.json" | sort >"$T/catalog"
	ls -d "$T"/periodic/* | sort >"$T/disk"
	diff "$T/catalog" "$T/disk" >&2 || fail "the pruned checkpoints are still on disk"
	# The job ran on throughout, and its latest checkpoint restores.
	verify_subject per
	dc_ok daemon.Kill '{"JIDs":["per"]}' >/dev/null
	dc_ok daemon.Restore '{"Type":"job","Details":{"JID":"per"}}' >/dev/null
	verify_subject per
	stop_daemon
}

# The daemon with object storage: the S3 server (OpenStack Swift on
# loopback, scripts/s3-server.sh; CRSTREAM_SWIFT_PORT and _DIR say where)
# is started for this test unless it runs already, and stopped after it.
test_s3_checkpoint_through_the_daemon() {
	local swift=$ROOT/scripts/s3-server.sh exports
	if ! "$swift" status; then
		SWIFT_STARTED=1
		trap cleanup_daemons EXIT
	fi
	exports=$("$swift" start) || fail "cannot start the S3 server"
	eval "$exports"
	local url=s3://$CRSTREAM_TEST_S3_BUCKET/daemon-$$-$RANDOM pid
	pid=$(start_subject p mem --mib 8)
	start_daemon	# with the server's credentials in its environment
	dc_ok daemon.Dump "$(dump_req "$pid" '"Dir":"'"$url"'","Name":"p","Streams":2,"Compression":"lz4"')" \
		>/dev/null
	wait_gone "$pid"
	dc_ok daemon.ListCheckpoints | jq_holds --arg p "$url/p" '.Checkpoints | length == 1 and
		.[0].Path == $p' || fail "catalog: $(cat "$T/last.json")"
	"$CRSTREAM" ls "$url" | grep -q "^p .* complete$" || fail "not in the bucket: $("$CRSTREAM" ls "$url")"
	dc_ok daemon.Restore '{"Path":"'"$url/p"'"}' >/dev/null
	verify_subject p
	local id
	id=$(dc_ok daemon.ListCheckpoints | jq -r '.Checkpoints[0].ID')
	dc_ok daemon.DeleteCheckpoint '{"ID":"'"$id"'"}' >/dev/null
	[ -z "$("$CRSTREAM" ls "$url" | tail -n +2)" ] || fail "objects left: $("$CRSTREAM" ls "$url")"
	dc_ok daemon.ListCheckpoints | jq_holds '.Checkpoints | length == 0' ||
		fail "catalog: $(cat "$T/last.json")"
	stop_daemon
}

# as_user UID CMD...: CMD as that uid (and gid), no supplementary groups.
as_user() {
	local uid=$1
	shift
	setpriv --reuid "$uid" --regid "$uid" --clear-groups --inh-caps=-all "$@"
}

test_callers_credentials_decide() {
	# Nobody else can reach a root-only daemon's socket at all.
	start_daemon
	[ "$(stat -c %a "$T/run")" = 700 ] || fail "socket directory mode $(stat -c %a "$T/run")"
	[ "$(stat -c %a "$T/run/d.sock")" = 600 ] || fail "socket mode $(stat -c %a "$T/run/d.sock")"
	chmod 755 "$T" "$DC_GEN"
	dc_ok daemon.HealthCheck >/dev/null	# generates the stubs, as root
	chmod -R a+rX "$DC_GEN"
	# The client where other users can read it: the tree may be in a 0700
	# directory (a clone in mktemp -d).
	cp -r "$(dirname "$DC_PY")" "$T/client"
	chmod -R a+rX "$T/client"
	local dc_py=$T/client/dc.py
	# jq_holds: an empty answer (the client could not even run) fails.
	as_user 65534 "$PYTHON" "$dc_py" daemon.List >"$T/nobody.json" || true
	jq_holds '.code == "UNAVAILABLE"' <"$T/nobody.json" ||
		fail "nobody: $(cat "$T/nobody.json")"
	stop_daemon
	rm -rf "$T/run"
	# With daemon.allowed_uids, others can connect, and SO_PEERCRED decides.
	CRSTREAM_DAEMON_ALLOWED_UIDS=4242 start_daemon
	[ "$(stat -c %a "$T/run")" = 711 ] || fail "socket directory mode $(stat -c %a "$T/run")"
	[ "$(stat -c %a "$T/run/d.sock")" = 666 ] || fail "socket mode $(stat -c %a "$T/run/d.sock")"
	local pid
	pid=$(start_subject p mem --mib 4)
	as_user 65534 "$PYTHON" "$dc_py" daemon.Dump "$(dump_req "$pid")" >"$T/nobody.json" || true
	jq_holds '.code == "PERMISSION_DENIED" and (.details | contains("daemon.allowed_uids"))' \
		<"$T/nobody.json" || fail "nobody: $(cat "$T/nobody.json")"
	alive "$pid" || fail "the subject is gone"
	as_user 4242 "$PYTHON" "$dc_py" daemon.HealthCheck >"$T/allowed.json" ||
		fail "uid 4242: $(cat "$T/allowed.json")"
	dc_ok daemon.HealthCheck >/dev/null
	stop_daemon
}

# tls_files DIR: a CA, a server certificate for 127.0.0.1 and a client
# certificate, all signed by the CA; and a stranger: a client certificate
# from another CA.
tls_files() {
	local d=$1 ca
	mkdir -p "$d"
	for ca in ca other; do
		openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/$ca.key" -out "$d/$ca.crt" \
			-subj "/CN=crstream test $ca" -days 2 2>/dev/null
	done
	openssl req -newkey rsa:2048 -nodes -keyout "$d/server.key" -out "$d/server.csr" \
		-subj /CN=localhost 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/san"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-out "$d/server.crt" -days 2 -extfile "$d/san" 2>/dev/null
	local who signer
	for who in client stranger; do
		signer=ca
		[ "$who" = stranger ] && signer=other
		openssl req -newkey rsa:2048 -nodes -keyout "$d/$who.key" -out "$d/$who.csr" \
			-subj "/CN=$who" 2>/dev/null
		openssl x509 -req -in "$d/$who.csr" -CA "$d/$signer.crt" -CAkey "$d/$signer.key" \
			-CAcreateserial -out "$d/$who.crt" -days 2 2>/dev/null
	done
}

# A port of this engineer's range (the S3 tests use CRSTREAM_SWIFT_PORT).
TLS_PORT=${CRSTREAM_DAEMON_TEST_PORT:-18711}

test_tcp_is_served_with_client_certificates_only() {
	# No TLS files: the daemon refuses to listen on TCP at all.
	expect_fail "daemon.listen needs daemon.tls_cert" "$CRSTREAM" daemon --socket "$T/run/x.sock" \
		--db "$T/x.db" --listen "127.0.0.1:$TLS_PORT"
	tls_files "$T/tls"
	CRSTREAM_DAEMON_TLS_CERT=$T/tls/server.crt CRSTREAM_DAEMON_TLS_KEY=$T/tls/server.key \
		CRSTREAM_DAEMON_TLS_CLIENT_CA=$T/tls/ca.crt start_daemon --listen "127.0.0.1:$TLS_PORT"
	local tls=$T/tls/ca.crt
	dc_ok daemon.HealthCheck --addr "127.0.0.1:$TLS_PORT" --tls "$tls,$T/tls/client.crt,$T/tls/client.key" \
		>/dev/null
	dc_err UNAVAILABLE daemon.HealthCheck --addr "127.0.0.1:$TLS_PORT" --tls "$tls,-,-" --timeout 20 >/dev/null
	dc_err UNAVAILABLE daemon.HealthCheck --addr "127.0.0.1:$TLS_PORT" \
		--tls "$tls,$T/tls/stranger.crt,$T/tls/stranger.key" --timeout 20 >/dev/null
	dc_err UNAVAILABLE daemon.HealthCheck --addr "127.0.0.1:$TLS_PORT" --timeout 20 >/dev/null
	stop_daemon
}

run_tests "$@"
