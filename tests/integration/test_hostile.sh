#!/bin/bash
# Issue 9: crstream runs as root over checkpoints others can write. Each
# test plants what a hostile writer would (symlinks, FIFOs, bombs, floods,
# foreign directories, a foreign peer) and requires a one-line refusal,
# nothing written where it should not be, nothing restored, no hang; the
# hostile restores are measured (peak RSS must stay under 100 MB; wall
# time is reported, a generous timeout is only the hang guard).
source "$(dirname "$0")/../lib/harness.sh"

MKHOSTILE=$ROOT/tests/tools/mkhostile.py
HANG_GUARD=60	# seconds; a refusal takes about one
TEST_TIMEOUT[test_hostile_inputs_are_refused_in_bounded_time_and_memory]=300

# victim: a file that no refused write may touch.
make_victim() {
	printf 'precious\n' >"$T/victim"
}

victim_intact() {
	[ "$(cat "$T/victim")" = precious ] || fail "the symlink's target was written: $(head -c 80 "$T/victim" | od -c | head -2)"
}

dump_plain() {	# dump_plain NAME PID ARGS...: into $T/ck/NAME, output in $T/NAME.dump.out (no --json)
	local name=$1 pid=$2
	shift 2
	"$CRSTREAM" dump "$pid" --dir "$T/ck" --name "$name" "$@" >"$T/$name.dump.out" 2>&1 ||
		{ fail "dump $name: $(cat "$T/$name.dump.out")"; return 1; }
	wait_gone "$pid"
}

# A symlink at each name crstream writes, in a directory it writes into:
# refused, the target untouched, the process still running.
test_symlink_planted_at_each_name_crstream_writes() {
	make_victim
	local pid name
	pid=$(start_subject s mem --mib 8)
	for name in manifest.json.tmp img-0.lz4; do
		rm -rf "$T/ck/pl"
		mkdir -p -m 700 "$T/ck/pl"
		ln -s "$T/victim" "$T/ck/pl/$name"
		expect_fail "pl/$name exists already as a symbolic link: refusing to write through it" \
			"$CRSTREAM" dump "$pid" --dir "$T/ck" --name pl --streams 1 --compression lz4
		victim_intact
		alive "$pid" || fail "the process died ($name)"
	done
	# The plain image directory CRIU writes into must hold nothing else.
	rm -rf "$T/ck/pl"
	mkdir -p -m 700 "$T/ck/pl"
	ln -s "$T/victim" "$T/ck/pl/inventory.img"
	expect_fail "is not empty (inventory.img is there): CRIU would write over it" \
		"$CRSTREAM" dump "$pid" --dir "$T/ck" --name pl --streams 0
	victim_intact
	# CRIU's log is kept last, after the dump: the dump stands, the log
	# is not written through the link.
	rm -rf "$T/ck/pl"
	mkdir -p -m 700 "$T/ck/pl"
	ln -s "$T/victim" "$T/ck/pl/criu-dump.log"
	dump_plain pl "$pid" --streams 1 --compression lz4
	grep -q "could not keep CRIU's log in the checkpoint: .*criu-dump.log exists already as a symbolic link" \
		"$T/pl.dump.out" || fail "dump said: $(cat "$T/pl.dump.out")"
	victim_intact

	# extract -D: the image file's name planted as a symlink.
	"$PYTHON" "$MKHOSTILE" shard "$T/one.shard" core-1.img "image bytes"
	mkdir -p -m 700 "$T/x"
	ln -s "$T/victim" "$T/x/core-1.img"
	expect_fail "core-1.img exists already as a symbolic link" \
		"$CRSTREAM" extract -D "$T/x" -s 10 10<"$T/one.shard"
	victim_intact
	rm "$T/x/core-1.img"
	"$CRSTREAM" extract -D "$T/x" -s 10 10<"$T/one.shard" 2>/dev/null || fail "extract failed"
	[ "$(cat "$T/x/core-1.img")" = "image bytes" ] || fail "extract wrote something else"
	# ... and an existing file is not a truncation target either.
	expect_fail "core-1.img exists already: refusing to overwrite it" \
		"$CRSTREAM" extract -D "$T/x" -s 10 10<"$T/one.shard"

	# check's probe.
	mkdir -p "$T/probe"
	ln -s "$T/victim" "$T/probe/.crstream-probe"
	"$CRSTREAM" check --dir "$T/probe" >"$T/check.out" 2>&1 || true
	grep -q "FAIL .*\.crstream-probe exists already as a symbolic link" "$T/check.out" ||
		fail "check said: $(cat "$T/check.out")"
	victim_intact
}

# A directory written into must be ours and private, whoever made it.
test_foreign_or_world_writable_directories_are_refused() {
	local pid
	pid=$(start_subject s mem --mib 8)
	mkdir -p -m 700 "$T/ck/theirs" "$T/ck/open"
	chown 65534:65534 "$T/ck/theirs"
	chmod 777 "$T/ck/open"
	expect_fail "ck/theirs belongs to uid 65534, not to uid 0: refusing to write into it" \
		"$CRSTREAM" dump "$pid" --dir "$T/ck" --name theirs --streams 1
	expect_fail "ck/open has mode 0777, writable by group or others: refusing to write into it" \
		"$CRSTREAM" dump "$pid" --dir "$T/ck" --name open --streams 1
	[ -z "$(ls -A "$T/ck/theirs")" ] && [ -z "$(ls -A "$T/ck/open")" ] ||
		fail "files written: $(ls -AR "$T/ck")"
	alive "$pid" || fail "the process died"
	"$PYTHON" "$MKHOSTILE" shard "$T/one.shard" core-1.img "image bytes"
	mkdir -m 777 "$T/x"
	expect_fail "has mode 0777, writable by group or others" \
		"$CRSTREAM" extract -D "$T/x" -s 10 10<"$T/one.shard"
	[ -z "$(ls -A "$T/x")" ] || fail "extract wrote into a world-writable directory"
}

# A FIFO named manifest.json made restore block in open() for good.
test_fifo_as_manifest_is_refused_at_once() {
	mkdir -p "$T/ck/fifo"
	mkfifo "$T/ck/fifo/manifest.json"
	local rc=0
	"$TESTTOOL" measure "$T/m" "$HANG_GUARD" "$CRSTREAM" restore --path "$T/ck/fifo" 2>"$T/err" || rc=$?
	[ "$rc" = 1 ] || fail "restore exited $rc: $(cat "$T/err")"
	grep -q "manifest.json is a FIFO, not a regular file" "$T/err" || fail "restore said: $(cat "$T/err")"
	[ "$(wc -l <"$T/err")" = 1 ] || fail "more than one line: $(cat "$T/err")"
	log "FIFO manifest refused in $(status_get "$T/m" wall_ms) ms"
	expect_fail "is a FIFO, not a regular file" "$CRSTREAM" inspect "$T/ck/fifo"
}

# Signals end a restore blocked before CRIU starts: reading the manifest
# from a server that accepts and never answers.
test_sigterm_ends_a_restore_blocked_on_the_checkpoint() {
	"$PYTHON" -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
while True:
    c, _ = s.accept()
    held.append(c)
    open(sys.argv[2], "a").write("connected\n")
' "$T/port" "$T/conns" &
	local srv=$! port rst rc=0 i
	until [ -s "$T/port" ]; do sleep 0.05; done
	port=$(cat "$T/port")
	AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=y AWS_ENDPOINT_URL=http://127.0.0.1:$port \
		CRSTREAM_S3_TIMEOUT_SECONDS=3600 CRSTREAM_S3_REQUEST_TIMEOUT_SECONDS=3600 \
		"$CRSTREAM" restore --path s3://bucket/ck 2>"$T/err" &
	rst=$!
	for i in $(seq 1 1200); do
		grep -q connected "$T/conns" 2>/dev/null && break
		alive "$rst" || break
		sleep 0.05
	done
	grep -q connected "$T/conns" || { kill -9 "$srv"; fail "restore never reached the server: $(cat "$T/err")"; return 1; }
	kill -TERM "$rst"
	"$TESTTOOL" wait-gone "$rst" --timeout 30 >/dev/null || { kill -9 "$rst" "$srv"; fail "SIGTERM did not end the blocked restore"; return 1; }
	wait "$rst" || rc=$?
	kill "$srv"
	[ "$rc" = 1 ] || fail "restore exited $rc"
	grep -q "interrupted" "$T/err" || fail "restore said: $(cat "$T/err")"
}

# `rm` removes the names a checkpoint is made of, each by name, and
# nothing else: not an unrelated file, not a subdirectory, not a symlink
# carrying a stream's name (crstream never makes one), nor its target.
test_rm_removes_only_the_checkpoint_names() {
	make_victim
	local pid
	pid=$(start_subject s mem --mib 8)
	"$CRSTREAM" dump "$pid" --dir "$T/ck" --name st --streams 2 --compression lz4 \
		--leave-running >/dev/null
	echo keep >"$T/ck/st/notes.txt"
	mkdir "$T/ck/st/sub"
	echo keep >"$T/ck/st/sub/img-0.lz4"
	ln -s "$T/victim" "$T/ck/st/img-7.lz4"
	"$CRSTREAM" rm "$T/ck/st" >"$T/rm.out" || fail "rm: $(cat "$T/rm.out")"
	[ "$(ls -A "$T/ck/st" | sort | tr '\n' ' ')" = "img-7.lz4 notes.txt sub " ] ||
		fail "left: $(ls -A "$T/ck/st")"
	[ -s "$T/ck/st/sub/img-0.lz4" ] || fail "a file in a subdirectory was removed"
	victim_intact
	# A plain image directory: its image files go, the stranger stays.
	dump_plain plain "$pid" --streams 0
	echo keep >"$T/ck/plain/notes.txt"
	"$CRSTREAM" rm "$T/ck/plain" >/dev/null
	[ "$(ls -A "$T/ck/plain")" = notes.txt ] || fail "left: $(ls -A "$T/ck/plain")"
}

# Plain image directories: names checked, strangers refused, files read
# through the fds that were checked, nothing written into the checkpoint.
test_plain_checkpoint_is_read_only_through_checked_files() {
	make_victim
	local pid counter ck=$T/ck
	pid=$(start_subject p mem --mib 8)
	counter=$(status_get "$T/p.status" counter)
	dump_plain plain "$pid" --streams 0
	heartbeat_mark p
	cp -a "$ck/plain" "$ck/stranger"
	echo x >"$ck/stranger/extra.img"
	expect_fail "extra.img is in the image directory but not in its manifest.json" \
		"$CRSTREAM" restore --path "$ck/stranger"
	cp -a "$ck/plain" "$ck/link"
	mv "$ck/link/pstree.img" "$T/pstree.img"
	ln -s "$T/pstree.img" "$ck/link/pstree.img"
	expect_fail "pstree.img is a symbolic link: refusing to follow it" \
		"$CRSTREAM" restore --path "$ck/link"
	cp -a "$ck/plain" "$ck/dotdot"
	sed -i 's/"name": *"pstree.img"/"name":"..\/..\/victim"/' "$ck/dotdot/manifest.json"
	expect_fail "unsafe file name \"../../victim\"" "$CRSTREAM" restore --path "$ck/dotdot"
	# CRIU writes stats-restore where it reads the image: not an image name.
	cp -a "$ck/plain" "$ck/stats"
	mv "$ck/stats/pstree.img" "$ck/stats/stats-restore"
	sed -i 's/"name": *"pstree.img"/"name":"stats-restore"/' "$ck/stats/manifest.json"
	expect_fail "manifest.json: stats-restore is listed as an image file" \
		"$CRSTREAM" restore --path "$ck/stats"
	assert_never_ran p
	local before
	before=$(ls -A "$ck/plain" | sort | tr '\n' ' ')
	"$CRSTREAM" restore --path "$ck/plain" >/dev/null || fail "the intact plain checkpoint did not restore"
	verify_subject p "$counter"
	[ "$(ls -A "$ck/plain" | sort | tr '\n' ' ')" = "$before" ] ||
		fail "the restore wrote into the checkpoint: $(ls -A "$ck/plain")"
	victim_intact
}

# The streamer's socket: 0600 whatever the umask, and a first peer that
# is neither root nor the invoking user is refused (it gets there only
# with CAP_DAC_OVERRIDE, which it is given here to test the second check).
test_streamer_socket_is_private_and_checks_its_peer() {
	"$PYTHON" "$MKHOSTILE" shard "$T/one.shard" core-1.img "image bytes"
	mkdir -p "$T/img"
	(umask 000 && exec "$CRSTREAM" serve -D "$T/img" -p 3 3>"$T/progress" <"$T/one.shard" 2>"$T/err") &
	local srv=$! rc=0
	until grep -q socket-init "$T/progress" 2>/dev/null; do
		alive "$srv" || { fail "serve ended: $(cat "$T/err")"; return 1; }
		sleep 0.05
	done
	[ "$(stat -c %a "$T/img/streamer-serve.sock")" = 600 ] ||
		fail "socket mode $(stat -c %a "$T/img/streamer-serve.sock") under umask 000"
	local connect='import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.recv(1)'
	! setpriv --reuid=65534 --regid=65534 --clear-groups "$PYTHON" -c "$connect" \
		"$T/img/streamer-serve.sock" 2>"$T/nobody.err" || fail "uid 65534 could connect"
	grep -q PermissionError "$T/nobody.err" || fail "uid 65534: $(cat "$T/nobody.err")"
	setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=+dac_override \
		--ambient-caps=+dac_override "$PYTHON" -c "$connect" "$T/img/streamer-serve.sock" \
		2>/dev/null || true
	"$TESTTOOL" wait-gone "$srv" --timeout 30 >/dev/null || { kill -9 "$srv"; fail "serve still runs"; return 1; }
	wait "$srv" || rc=$?
	[ "$rc" = 1 ] || fail "serve exited $rc"
	grep -q "the first process to connect (pid [0-9]*, uid 65534) is neither root nor uid 0: refused" \
		"$T/err" || fail "serve said: $(cat "$T/err")"
}

# --tcp-listen-remap holds files.img in memory to patch it: within a
# quarter of the memory limit, whatever size the shard claims.
test_remapped_files_img_is_held_within_the_memory_limit() {
	"$PYTHON" "$MKHOSTILE" shard "$T/files.shard" files.img "0123456789abcdef" 20000
	mkdir -p "$T/img"
	expect_fail "files.img: over 262144 bytes: --tcp-listen-remap holds files.img in memory" \
		"$CRSTREAM" serve -D "$T/img" --tcp-listen-remap 1:2 --memory-limit 1M -p 3 \
		3>/dev/null <"$T/files.shard"
}

# hostile NAME MESSAGE [ENV...] -- RESTORE-ARGS: the restore of $T/ck/NAME
# is refused with MESSAGE, under ASan, and measured on the plain binary:
# one line, exit 1, peak RSS < 100 MB.
hostile() {
	local name=$1 want=$2
	shift 2
	local envs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	expect_fail "$want" env "${envs[@]}" "$CRSTREAM" restore --path "$T/ck/$name" "$@"
	[ "$(wc -l <<<"$LAST_ERROR")" = 1 ] || fail "$name: more than one line: $LAST_ERROR"
	local rc=0
	"$TESTTOOL" measure "$T/$name.m" "$HANG_GUARD" env "${envs[@]}" "$CRSTREAM_PLAIN" restore \
		--path "$T/ck/$name" "$@" 2>"$T/$name.err" || rc=$?
	[ "$rc" = 1 ] || fail "$name: exit $rc (124: hung): $(cat "$T/$name.err")"
	local rss ms
	rss=$(status_get "$T/$name.m" rss_kb)
	ms=$(status_get "$T/$name.m" wall_ms)
	log "$(printf '%-16s refused in %5d ms, peak RSS %6d KiB: %s' "$name" "$ms" "$rss" "$want")"
	[ "$rss" -lt $((100 * 1024)) ] || fail "$name: peak RSS $rss KiB"
}

json_set() {	# json_set FILE PYTHON-STATEMENT (on m, the manifest)
	"$PYTHON" -c 'import json,sys; m=json.load(open(sys.argv[1])); exec(sys.argv[2]); json.dump(m, open(sys.argv[1],"w"))' "$1" "$2"
}

test_hostile_inputs_are_refused_in_bounded_time_and_memory() {
	local ck=$T/ck pid i
	mkdir -p "$ck"
	# A zstd bomb: ~1 MB expanding to 30 GB, its manifest promising 1 KiB.
	mkdir "$ck/bomb"
	"$PYTHON" "$MKHOSTILE" zstd-bomb "$ck/bomb/img-0.zst" 30
	"$PYTHON" "$MKHOSTILE" manifest "$ck/bomb/manifest.json" zstd 1024 "$ck/bomb/img-0.zst" pages-1.img 10
	hostile bomb "the shard goes on past the 1024 bytes its manifest records" --
	# The same bomb with no manifest: the spill limit stops it.
	mkdir "$ck/bomb-bare"
	cp "$ck/bomb/img-0.zst" "$ck/bomb-bare/"
	hostile bomb-bare "the image needs more than 33554432 bytes of spill space" \
		CRSTREAM_RESTORE_SPILL_LIMIT=32M -- --memory-limit 16M
	# 4,097 streams without a manifest.
	mkdir "$ck/streams"
	for i in $(seq 0 4096); do : >"$ck/streams/img-$i.lz4"; done
	hostile streams "a checkpoint has at most 64 streams" --
	# A manifest of 100 MB, and one of 3 MiB of empty objects.
	mkdir "$ck/huge" "$ck/objects"
	"$PYTHON" "$MKHOSTILE" big-manifest "$ck/huge/manifest.json" 100
	hostile huge "bytes, more than the 4194304 a manifest may have" --
	"$PYTHON" "$MKHOSTILE" object-flood "$ck/objects/manifest.json" 3
	hostile objects "far more than a manifest of at most 16384 files holds" --
	# 100,000 names that collide under an unseeded hash.
	mkdir "$ck/names"
	"$PYTHON" "$MKHOSTILE" names "$ck/names/img-0" 100000
	hostile names "more than 16384 image files" --

	# A real checkpoint, its manifest made to promise less than the
	# streams hold: refused where the stream breaks the promise.
	pid=$(start_subject h mem --mib 16)
	dump_plain real "$pid" --streams 1 --compression lz4
	heartbeat_mark h
	cp -a "$ck/real" "$ck/longer"
	json_set "$ck/longer/manifest.json" 'm["stream_files"][0]["raw_bytes"] //= 2'
	hostile longer "the shard goes on past the" --
	cp -a "$ck/real" "$ck/unlisted"
	json_set "$ck/unlisted/manifest.json" 'm["files"] = [f for f in m["files"] if f["name"] != "pstree.img"]'
	hostile unlisted "pstree.img is not in the image's manifest" --
	cp -a "$ck/real" "$ck/bigfile"
	json_set "$ck/bigfile/manifest.json" '[f.update(size=4096) for f in m["files"] if f["name"] == "pages-1.img"]'
	hostile bigfile "pages-1.img: longer than the 4096 bytes its manifest records" --
	assert_never_ran h
}

run_tests "$@"
