#!/bin/bash
# The engine as criu-image-streamer: the real CRIU dumps and restores real
# processes through `crstream capture` / `serve`, with 1 and 4 shards.
source "$(dirname "$0")/../lib/harness.sh"

STREAMER=$(dirname "$CRSTREAM")/criu-image-streamer

# wait_line FILE LINE: until FILE has the line (progress messages).
wait_line() {
	local i
	for i in $(seq 1 600); do
		grep -qx -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "no \"$2\" in $1: $(cat "$1" 2>/dev/null)"
}

# fd_list N: "10,11,..." and REDIR gets the matching redirections.
shard_redirs() {
	local n=$1 dir=$2 io=$3 i list="" redir=""
	for ((i = 0; i < n; i++)); do
		list+="${list:+,}$((10 + i))"
		redir+=" $((10 + i))${io}$T/shard-$i"
	done
	SHARD_FDS=$list
	SHARD_REDIRS=$redir
}

# stream_dump PID NSHARDS [capture options...]: checkpoint PID through
# `crstream capture` into $T/shard-*; the tree is killed by CRIU.
stream_dump() {
	local pid=$1 n=$2
	shift 2
	mkdir -p "$T/img"
	shard_redirs "$n" "$T/img" ">"
	rm -f "$T/cap.progress"
	eval "\"$CRSTREAM\" capture -D \"$T/img\" -s $SHARD_FDS -p 3 \"\$@\" 3>\"$T/cap.progress\" $SHARD_REDIRS 2>\"$T/cap.err\" &"
	local cap=$!
	wait_line "$T/cap.progress" socket-init
	"$CRIU" dump --stream -D "$T/img" -t "$pid" -o dump.log -v4 ||
		{ fail "criu dump failed: $(grep Error "$T/img/dump.log" | head -3)"; return 1; }
	wait "$cap" || { fail "capture failed: $(cat "$T/cap.err")"; return 1; }
	grep -qx checkpoint-start "$T/cap.progress" || { fail "no checkpoint-start"; return 1; }
	wait_gone "$pid"
}

# stream_restore NSHARDS [serve options...]
stream_restore() {
	local n=$1
	shift
	shard_redirs "$n" "$T/img" "<"
	rm -f "$T/srv.progress"
	eval "\"$CRSTREAM\" serve -D \"$T/img\" -s $SHARD_FDS -p 3 \"\$@\" 3>\"$T/srv.progress\" $SHARD_REDIRS 2>\"$T/srv.err\" &"
	local srv=$!
	wait_line "$T/srv.progress" socket-init
	"$CRIU" restore --stream -D "$T/img" -d -o restore.log -v4 ||
		{ fail "criu restore failed: $(grep Error "$T/img/restore.log" | head -3)"; return 1; }
	wait "$srv" || { fail "serve failed: $(cat "$T/srv.err")"; return 1; }
}

roundtrip() {
	local name=$1 n=$2 mode=$3
	shift 3
	local pid
	pid=$(start_subject "$name" "$mode" "$@")
	local counter
	counter=$(status_get "$T/$name.status" counter)
	stream_dump "$pid" "$n"
	stream_restore "$n"
	verify_subject "$name" "$counter"
	kill_subject "$name"
	rm -rf "$T/img" "$T"/shard-*
}

test_mem_1gib_1_shard_through_pipes_like_zdtm() {
	# zdtm.py's way: criu-image-streamer with the shard on stdout/stdin,
	# through `cat` pipes.
	local pid counter
	pid=$(start_subject mem mem --mib 1024)
	counter=$(status_get "$T/mem.status" counter)
	mkdir -p "$T/img"
	bash -c "set -o pipefail; '$STREAMER' --images-dir '$T/img' --progress-fd 3 capture 3>'$T/cap.progress' | cat > '$T/img.criu'" 2>"$T/cap.err" &
	local cap=$!
	wait_line "$T/cap.progress" socket-init
	"$CRIU" dump --stream -D "$T/img" -t "$pid" -o dump.log
	wait "$cap" || fail "capture: $(cat "$T/cap.err")"
	wait_gone "$pid"
	# progress: socket-init, checkpoint-start, statistics with the size.
	local size
	size=$(stat -c %s "$T/img.criu")
	[ "$(sed -n 2p "$T/cap.progress")" = checkpoint-start ] || fail "progress: $(cat "$T/cap.progress")"
	grep -q "^{\"shards\":\[{\"size\":$size,\"transfer_duration_millis\":[0-9]*}\]}$" "$T/cap.progress" ||
		fail "bad statistics: $(cat "$T/cap.progress")"
	bash -c "set -o pipefail; cat '$T/img.criu' | '$STREAMER' --images-dir '$T/img' --progress-fd 3 serve 3>'$T/srv.progress'" 2>"$T/srv.err" &
	local srv=$!
	wait_line "$T/srv.progress" socket-init
	# zdtm reads the statistics line first, then socket-init.
	head -n1 "$T/srv.progress" | grep -q '^{"shards":\[{"size":' || fail "serve: statistics first"
	"$CRIU" restore --stream -D "$T/img" -d -o restore.log
	wait "$srv" || fail "serve: $(cat "$T/srv.err")"
	verify_subject mem "$counter"
}

test_mem_1gib_4_shards() {
	roundtrip mem 4 mem --mib 1024
}

test_threads_1_and_4_shards() {
	roundtrip th1 1 threads --threads 4 --mib 64
	roundtrip th4 4 threads --threads 4 --mib 64
}

test_tree_with_pipes_1_and_4_shards() {
	roundtrip tree1 1 tree --children 3
	roundtrip tree4 4 tree --children 3
}

test_open_file_and_listening_socket_with_port_remap() {
	local port=$((20000 + RANDOM % 20000)) new
	new=$((port + 1))
	echo seed >"$T/data"
	local pid counter
	pid=$(start_subject files files --data "$T/data" --port "$port")
	"$TESTTOOL" tcp-get 127.0.0.1 "$port" >/dev/null
	counter=$(status_get "$T/files.status" counter)
	stream_dump "$pid" 4
	stream_restore 4 --tcp-listen-remap "$port:$new"
	verify_subject files "$counter"
	local reply
	reply=$("$TESTTOOL" tcp-get 127.0.0.1 "$new")
	[[ "$reply" == pong*"pid=$pid"* ]] || fail "restored listener on $new answered: $reply"
	! "$TESTTOOL" tcp-get 127.0.0.1 "$port" --timeout 1 >/dev/null 2>&1 ||
		fail "something still listens on the old port $port"
	# 1 shard, no remap: the listener is back on its own port.
	kill_subject files
	rm -rf "$T/img" "$T"/shard-*
	pid=$(start_subject files1 files --data "$T/data" --port "$port")
	stream_dump "$pid" 1
	stream_restore 1
	verify_subject files1
	"$TESTTOOL" tcp-get 127.0.0.1 "$port" | grep -q "pid=$pid" || fail "no listener of pid $pid on $port"
}

test_unknown_remap_port_is_refused() {
	local port=$((20000 + RANDOM % 20000))
	echo seed >"$T/data"
	local pid
	pid=$(start_subject files files --data "$T/data" --port "$port")
	stream_dump "$pid" 2
	shard_redirs 2 "$T/img" "<"
	heartbeat_mark files
	eval "\"$CRSTREAM\" serve -D \"$T/img\" -s $SHARD_FDS -p 3 --tcp-listen-remap 1:2 3>\"$T/srv.progress\" $SHARD_REDIRS 2>\"$T/srv.err\" &"
	local srv=$!
	wait_line "$T/srv.progress" socket-init
	! "$CRIU" restore --stream -D "$T/img" -d -o restore.log || fail "restore succeeded"
	! wait "$srv" || fail "serve exited 0"
	grep -q "no listening TCP socket on port 1 in files.img (listening ports: $port)" "$T/srv.err" ||
		fail "serve said: $(cat "$T/srv.err")"
	assert_never_ran files
}

test_external_tar_woven_into_the_image() {
	mkdir -p "$T/data/sub"
	head -c 3000000 /dev/urandom >"$T/data/blob"
	echo hello >"$T/data/sub/note"
	local pid counter
	pid=$(start_subject mem mem --mib 32)
	counter=$(status_get "$T/mem.status" counter)
	mkdir -p "$T/img"
	exec 20< <(tar -C "$T/data" -cf - .)
	"$CRSTREAM" capture -D "$T/img" -s 10,11 -e fs.tar:20 -p 3 3>"$T/cap.progress" 10>"$T/shard-0" 11>"$T/shard-1" 2>"$T/cap.err" &
	local cap=$!
	exec 20<&-
	wait_line "$T/cap.progress" socket-init
	"$CRIU" dump --stream -D "$T/img" -t "$pid" -o dump.log
	wait "$cap" || fail "capture: $(cat "$T/cap.err")"
	wait_gone "$pid"
	# Serve: the tarball goes to tar while CRIU restores.
	mkdir -p "$T/out"
	exec 21> >(tar -C "$T/out" -xf -)
	local tarpid=$!
	"$CRSTREAM" serve -D "$T/img" -s 10,11 -e fs.tar:21 -p 3 3>"$T/srv.progress" 10<"$T/shard-0" 11<"$T/shard-1" 2>"$T/srv.err" &
	local srv=$!
	exec 21>&-
	wait_line "$T/srv.progress" socket-init
	"$CRIU" restore --stream -D "$T/img" -d -o restore.log
	wait "$srv" || fail "serve: $(cat "$T/srv.err")"
	wait "$tarpid" || fail "tar could not unpack what serve wrote"
	diff -r "$T/data" "$T/out" || fail "the tarball did not come back whole"
	verify_subject mem "$counter"
	# Extract: the tarball to its fd, the image files to the directory.
	mkdir -p "$T/ext" "$T/out2"
	exec 22> >(tar -C "$T/out2" -xf -)
	tarpid=$!
	"$CRSTREAM" extract -D "$T/ext" -s 10,11 -e fs.tar:22 10<"$T/shard-0" 11<"$T/shard-1" 2>/dev/null
	exec 22>&-
	wait "$tarpid" || fail "tar could not unpack what extract wrote"
	diff -r "$T/data" "$T/out2" || fail "extract: the tarball differs"
	[ -s "$T/ext/inventory.img" ] || fail "extract wrote no inventory.img"
	[ ! -e "$T/ext/fs.tar" ] || fail "extract wrote fs.tar into the image directory"
}

# Two dumps of one stopped process: plain `criu dump`, and crstream capture
# with 4 shards then extract. Same files, byte for byte, except what
# differs between any two dumps (inventory's dump time and run id, timens's
# clocks; imgcmp decodes those two and compares every other field).
test_extracted_image_matches_plain_criu_dump() {
	local pid
	# glibc's rseq area records the CPU that CRIU's parasite last ran on,
	# which differs between any two dumps: take rseq out of the picture.
	pid=$(SUBJECT_ENV=GLIBC_TUNABLES=glibc.pthread.rseq=0 start_subject mem mem --mib 64)
	kill -STOP "$pid"
	until grep -q '^State:.*T' "/proc/$pid/status"; do sleep 0.01; done
	mkdir -p "$T/plain" "$T/img" "$T/extracted"
	"$CRIU" dump -D "$T/plain" -t "$pid" -o dump.log --leave-running
	"$CRSTREAM" capture -D "$T/img" -s 10,11,12,13 -p 3 3>"$T/cap.progress" 10>"$T/shard-0" 11>"$T/shard-1" 12>"$T/shard-2" 13>"$T/shard-3" &
	local cap=$!
	wait_line "$T/cap.progress" socket-init
	"$CRIU" dump --stream -D "$T/img" -t "$pid" -o dump.log --leave-running
	wait "$cap"
	"$CRSTREAM" extract -D "$T/extracted" -s 10,11,12,13 10<"$T/shard-0" 11<"$T/shard-1" 12<"$T/shard-2" 13<"$T/shard-3"
	rm -f "$T/plain/dump.log" "$T/extracted/dump.log"
	"$IMGCMP" "$T/plain" "$T/extracted" >&2 || fail "images differ"
	# imgcmp can fail: a changed byte in a page is caught.
	printf 'X' | dd of="$T/extracted/pages-1.img" bs=1 seek=4096 conv=notrunc 2>/dev/null
	! "$IMGCMP" "$T/plain" "$T/extracted" >/dev/null 2>&1 || fail "imgcmp missed a changed page"
	kill -CONT "$pid"
}

test_cli_errors_name_the_fd() {
	mkdir -p "$T/img"
	expect_fail "--shard-fds: fd 9 is not open" "$CRSTREAM" capture -D "$T/img" -s 9
	expect_fail "--shard-fds: fd 10 is open read-only, but it must be writable here" \
		"$CRSTREAM" capture -D "$T/img" -s 10 10</dev/null
	expect_fail "--shard-fds: fd 10 is open write-only, but it must be readable here" \
		"$CRSTREAM" serve -D "$T/img" -s 10 10>"$T/x"
	expect_misuse "unknown operation \"dance\"" "$STREAMER" dance -D "$T/img"
	expect_misuse "unexpected argument \"dance\"" "$CRSTREAM" capture dance -D "$T/img"
	expect_misuse "--images-dir is required" "$STREAMER" capture
	expect_misuse "is not NAME:FD" "$STREAMER" -D "$T/img" -e fs.tar capture
	"$STREAMER" --version | grep -q '^criu-image-streamer ' || fail "--version: $("$STREAMER" --version)"
	local long
	long=$T/$(printf 'd%.0s' $(seq 1 120))
	expect_fail "socket path too long for a UNIX socket" "$CRSTREAM" capture -D "$long"
}

test_truncated_and_corrupt_shards_are_refused() {
	local pid
	pid=$(start_subject mem mem --mib 16)
	stream_dump "$pid" 2
	local size
	size=$(stat -c %s "$T/shard-0")
	head -c $((size - 100)) "$T/shard-0" >"$T/short"
	expect_fail "truncated" "$CRSTREAM" extract -D "$T/x1" -s 10,11 10<"$T/short" 11<"$T/shard-1"
	# Both shards but shard 1 empty: markers are missing.
	expect_fail "image incomplete" "$CRSTREAM" extract -D "$T/x2" -s 10,11 10<"$T/shard-0" 11</dev/null
	# Serve refuses before CRIU gets a single file.
	expect_fail "truncated" bash -c "'$CRSTREAM' serve -D '$T/x3' -s 10,11 -p 3 3>/dev/null 10<'$T/short' 11<'$T/shard-1'"
}

run_tests "$@"
