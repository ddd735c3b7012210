#!/bin/bash
# crstream as a new user meets it: paths that do not exist, the same
# options where they mean the same thing, --version, finding CRIU, running
# unprivileged, and CRIU failures that say what CRIU and the process did.
source "$(dirname "$0")/../lib/harness.sh"

test_missing_locations_are_named() {
	expect_fail "/nonexistent/ckpt does not exist" "$CRSTREAM" restore --path /nonexistent/ckpt
	[[ $LAST_ERROR != *"is not a checkpoint"* ]] || fail "restore said: $LAST_ERROR"
	expect_fail "$T/none does not exist" "$CRSTREAM" ls "$T/none"
	expect_fail "$T/none does not exist" "$CRSTREAM" inspect "$T/none"
	expect_fail "$T/none does not exist" "$CRSTREAM" rm "$T/none"
	: >"$T/file"
	expect_fail "$T/file is not a directory" "$CRSTREAM" ls "$T/file"
	# An existing directory without checkpoints: an empty list, and a note.
	mkdir "$T/empty"
	local out
	out=$("$CRSTREAM" ls "$T/empty" 2>"$T/err") || { fail "ls of an empty directory failed"; return 1; }
	[ "$(wc -l <<<"$out")" -eq 1 ] || fail "ls printed more than its header: $out"
	grep -q "no checkpoints in $T/empty" "$T/err" || fail "ls said: $(cat "$T/err")"
	# Not a checkpoint, but there: said so.
	expect_fail "$T/empty is not a checkpoint" "$CRSTREAM" restore "$T/empty"
}

# The same thing is asked the same way everywhere: the location as the
# argument or as --path / --dir, --no-progress on dump and restore.
test_commands_take_the_same_options() {
	local pid
	pid=$(start_subject opt mem --mib 8)
	"$CRSTREAM" dump "$pid" --dir "$T/ck" --name c --streams 2 --no-progress --leave-running \
		>/dev/null 2>"$T/err" || { fail "dump: $(cat "$T/err")"; return 1; }
	"$CRSTREAM" ls "$T/ck" >"$T/ls1" && "$CRSTREAM" ls --dir "$T/ck" >"$T/ls2" && "$CRSTREAM" ls -d "$T/ck" >"$T/ls3" ||
		{ fail "ls failed"; return 1; }
	grep -q "^c .*complete" "$T/ls1" || fail "ls: $(cat "$T/ls1")"
	cmp -s "$T/ls1" "$T/ls2" && cmp -s "$T/ls1" "$T/ls3" || fail "ls DIR and ls --dir DIR differ"
	"$CRSTREAM" inspect --path "$T/ck/c" >"$T/i1" && "$CRSTREAM" inspect "$T/ck/c" >"$T/i2" ||
		{ fail "inspect failed"; return 1; }
	cmp -s "$T/i1" "$T/i2" || fail "inspect CKPT and inspect --path CKPT differ"
	# The default location is checkpoint.dir.
	CRSTREAM_CHECKPOINT_DIR=$T/ck "$CRSTREAM" ls >"$T/ls4" && cmp -s "$T/ls1" "$T/ls4" ||
		fail "ls without a location does not list checkpoint.dir"
	expect_misuse "unexpected argument" "$CRSTREAM" inspect --path "$T/ck/c" "$T/ck/c"
	expect_misuse "usage: crstream rm CHECKPOINT" "$CRSTREAM" rm
	# restore takes the checkpoint as its argument, and --no-progress.
	kill -9 "$pid"
	wait_gone "$pid"
	"$CRSTREAM" restore "$T/ck/c" --no-progress >"$T/out" 2>"$T/err" ||
		{ fail "restore CKPT --no-progress: $(cat "$T/err")"; return 1; }
	verify_subject opt
	"$CRSTREAM" rm --path "$T/ck/c" >/dev/null || fail "rm --path failed"
	[ -z "$(ls -A "$T/ck/c")" ] || fail "rm --path left $(ls "$T/ck/c")"
}

test_version_says_what_it_will_use() {
	local out criu_version
	out=$("$CRSTREAM" --version) || { fail "--version failed"; return 1; }
	log "$out"
	criu_version=$("$CRIU" --version | sed -n 's/^Version: *//p')
	grep -qx "crstream [0-9][0-9.]*" <<<"$(head -n1 <<<"$out")" || fail "first line: $(head -n1 <<<"$out")"
	grep -qF "criu:           $(realpath "$CRIU") (version $criu_version)" <<<"$out" ||
		fail "no CRIU path and version in: $out"
	grep -q "^codecs: .*none.*lz4.*zstd.*gzip.*zlib" <<<"$out" || fail "no codecs in: $out"
	grep -qF "object storage: s3://, gs:// (plugin $(dirname "$CRSTREAM")/crstream-s3.so)" <<<"$out" ||
		fail "no plugin in: $out"
	grep -qF "keys:           age encryption, SSH signatures (plugin $(dirname "$CRSTREAM")/crstream-crypt.so)" <<<"$out" ||
		fail "no crypto plugin in: $out"
	out=$(CRSTREAM_PLUGIN_DIR=$T/none "$CRSTREAM" --version)
	grep -qF "object storage: not available (plugin $T/none/crstream-s3.so): CRSTREAM_PLUGIN_DIR=$T/none: No such file" <<<"$out" ||
		fail "a missing plugin is not said: $out"
	grep -qF "keys:           not available (plugin $T/none/crstream-crypt.so): CRSTREAM_PLUGIN_DIR=$T/none: No such file" <<<"$out" ||
		fail "a missing crypto plugin is not said: $out"
}

# With no criu in PATH, the one provision-criu.sh built into its cache is
# used (the newest); with none there either, the error says how to get one.
test_criu_is_found_in_the_provisioning_cache() {
	mkdir -p "$T/bin" "$T/cache/criu-4.2.1" "$T/cache/criu-4.10.0" "$T/cache/criu-9.0.0"
	ln -s "$(realpath "$CRIU")" "$T/cache/criu-4.2.1/criu"
	ln -s "$(realpath "$CRIU")" "$T/cache/criu-4.10.0/criu"	# newer than 4.2.1
	: >"$T/cache/criu-9.0.0/criu"	# not executable: not a CRIU
	: >"$T/cache/criu-9.0.0.lock"
	local out
	out=$(env -u CRSTREAM_CRIU PATH="$T/bin" CRSTREAM_CACHE_DIR="$T/cache" "$CRSTREAM" --version)
	grep -qF "criu:           $T/cache/criu-4.10.0/criu (version" <<<"$out" || fail "not the cached CRIU: $out"
	# It is the one a dump runs.
	local pid
	pid=$(start_subject cache mem --mib 8)
	env -u CRSTREAM_CRIU PATH="$T/bin" CRSTREAM_CACHE_DIR="$T/cache" \
		"$CRSTREAM" dump "$pid" --dir "$T/ck" --name c -R --json >"$T/out" 2>"$T/err" ||
		{ fail "dump with the cached CRIU: $(cat "$T/err")"; return 1; }
	# crstream runs it as root: a version directory others may write to is
	# passed over (said on stderr), a cache others may write to not read.
	chmod 775 "$T/cache/criu-4.10.0"
	out=$(env -u CRSTREAM_CRIU PATH="$T/bin" CRSTREAM_CACHE_DIR="$T/cache" "$CRSTREAM" --version 2>"$T/err")
	grep -qF "criu:           $T/cache/criu-4.2.1/criu (version" <<<"$out" || fail "not the trusted CRIU: $out"
	grep -qF "not using $T/cache/criu-4.10.0: writable by its group (mode 0775)" "$T/err" ||
		fail "the refused CRIU is not said: $(cat "$T/err")"
	chmod 755 "$T/cache/criu-4.10.0"
	chmod 777 "$T/cache"
	expect_fail "not looking for CRIU in $T/cache: writable by everyone (mode 0777)" \
		env -u CRSTREAM_CRIU PATH="$T/bin" CRSTREAM_CACHE_DIR="$T/cache" "$CRSTREAM" dump "$pid"
	chmod 755 "$T/cache"
	# A CRIU too old to work (Debian 12's) in PATH: the cached one.
	printf '#!/bin/sh\necho "Version: 3.17"\n' >"$T/bin/criu"
	chmod +x "$T/bin/criu"
	out=$(env -u CRSTREAM_CRIU PATH="$T/bin" CRSTREAM_CACHE_DIR="$T/cache" "$CRSTREAM" --version)
	grep -qF "criu:           $T/cache/criu-4.10.0/criu (version" <<<"$out" || fail "not the cached CRIU: $out"
	# A working CRIU in PATH comes first.
	rm "$T/bin/criu"
	ln -s "$(realpath "$CRIU")" "$T/bin/criu"
	out=$(env -u CRSTREAM_CRIU PATH="$T/bin" CRSTREAM_CACHE_DIR="$T/cache" "$CRSTREAM" --version)
	grep -qF "criu:           $T/bin/criu (version" <<<"$out" || fail "not the CRIU in PATH: $out"
	# Nowhere: the error says where it looked and what to do.
	rm "$T/bin/criu"
	rm -r "$T/cache"
	expect_fail "CRIU not found (no criu in PATH nor in $T/cache): crstream needs CRIU 4.1 or later" \
		env -u CRSTREAM_CRIU PATH="$T/bin" CRSTREAM_CACHE_DIR="$T/cache" "$CRSTREAM" dump "$pid"
	[[ $LAST_ERROR == *"criu.path"* ]] || fail "no way out in: $LAST_ERROR"
	# An explicit choice is never replaced.
	expect_fail "criu.path: $T/no-criu" env CRSTREAM_CRIU="$T/no-criu" "$CRSTREAM" dump "$pid"
	alive "$pid" || fail "the subject died"
}

test_unprivileged_user_is_told_to_be_root() {
	# (Not the test's config file: nobody cannot read it.)
	local pid nobody=(env -u CRSTREAM_CONFIG setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
	pid=$(start_subject unpriv mem --mib 8)
	expect_fail "crstream dump needs root (or CAP_CHECKPOINT_RESTORE)" \
		"${nobody[@]}" "$CRSTREAM" dump "$pid" --dir "$T/ck"
	[[ $LAST_ERROR != *"criu"*"not found"* ]] || fail "dump said: $LAST_ERROR"
	expect_fail "crstream restore needs root" "${nobody[@]}" "$CRSTREAM" restore /nonexistent
	local out
	out=$("${nobody[@]}" "$CRSTREAM" check --dir "$T" 2>&1) && fail "check passed as nobody"
	grep -q "^FAIL  crstream check needs root" <<<"$out" || fail "check said: $out"
	alive "$pid" || fail "the subject died"
}

# dump_fails_like REASON PID [dump options]: the dump of PID fails with
# CRIU's REASON, not the benign rlimit error CRIU logs first without
# CAP_SYS_RESOURCE, and names the log it kept.
dump_fails_like() {
	local reason=$1 pid=$2
	shift 2
	expect_fail "$reason" "$CRSTREAM" dump "$pid" --dir "$T/ck" --name bad "$@" || return 1
	log "dump said: $LAST_ERROR"
	[[ $LAST_ERROR != *RLIMIT_NOFILE* ]] || { fail "the benign rlimit error as the reason: $LAST_ERROR"; return 1; }
	[[ $LAST_ERROR == *"CRIU's log: $T/ck/bad/criu-dump.log)"* ]] || { fail "no log named: $LAST_ERROR"; return 1; }
	[ -s "$T/ck/bad/criu-dump.log" ] || fail "no CRIU log kept"
}

# A terminal CRIU cannot dump: the reason is CRIU's own, and the process,
# seen running afterwards, is said to be.
test_criu_failure_gives_criu_reason() {
	# The process holds the slave side of a pty whose master stays outside.
	script -qfc "echo \$\$ >'$T/tty.pid'; exec sleep 600" /dev/null </dev/null >/dev/null 2>&1 &
	local script_pid=$! pid
	# Not a subject: the harness would not clean it up.
	# shellcheck disable=SC2064 # the pids now: the locals are gone at exit
	trap "kill -9 $script_pid 2>/dev/null || true" EXIT
	for _ in $(seq 100); do [ -s "$T/tty.pid" ] && break; sleep 0.1; done
	pid=$(cat "$T/tty.pid")
	# shellcheck disable=SC2064
	trap "kill -9 $script_pid $pid 2>/dev/null || true" EXIT
	dump_fails_like "CRIU exited with status 1: tty: " "$pid" || return 1
	[[ $LAST_ERROR == *"(pid $pid keeps running;"* ]] || fail "fate not said: $LAST_ERROR"
	alive "$pid" || fail "the process died"
}

# Another tracer holds the process (as a concurrent dump would): the
# failed dump says so instead of claiming that the process runs on.
test_dump_of_a_held_process_says_who_holds_it() {
	local pid holder
	pid=$(start_subject held mem --mib 8)
	"$TESTTOOL" hold "$pid" >"$T/hold.out" 2>&1 &
	holder=$!
	# shellcheck disable=SC2064 # the pid now: the local is gone at exit
	trap "kill -9 $holder 2>/dev/null || true" EXIT
	for _ in $(seq 100); do grep -q "^TracerPid:[[:space:]]*$holder$" "/proc/$pid/status" && break; sleep 0.1; done
	grep -q "^TracerPid:[[:space:]]*$holder$" "/proc/$pid/status" || { fail "not held: $(cat "$T/hold.out")"; return 1; }
	dump_fails_like "(pid $pid is held by pid $holder (testtool)" "$pid" || return 1
	[[ $LAST_ERROR != *"keeps running"* ]] || fail "claims it keeps running: $LAST_ERROR"
	if "$CRSTREAM" dump "$pid" --dir "$T/ck" --name bad-json --json >"$T/json" 2>/dev/null; then
		fail "the dump of a held process succeeded"
	fi
	grep -q '"process_running":false,"process_state":"traced"' "$T/json" || fail "json: $(cat "$T/json")"
	kill -9 "$holder"
	wait "$holder" 2>/dev/null || true
	verify_subject held
}

# --help answers even when the configuration it shows defaults from is
# broken (shell completion reads --help); the commands themselves refuse.
test_help_works_with_a_broken_config() {
	local cmd out
	echo '{"checkpoint": {"streams": "many"}}' >"$T/bad.json"
	for cmd in dump restore check inspect ls rm config; do
		out=$(CRSTREAM_CONFIG=$T/bad.json "$CRSTREAM" "$cmd" --help) || { fail "$cmd --help failed"; return 1; }
		grep -q "^Usage: crstream $cmd" <<<"$out" || fail "$cmd --help: $out"
	done
	expect_fail "$T/bad.json: checkpoint.streams must be a non-negative integer" \
		env CRSTREAM_CONFIG="$T/bad.json" "$CRSTREAM" dump 1
}

run_tests "$@"
