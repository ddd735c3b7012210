#!/bin/bash
# Memory limits that bind, measured from outside: crstream (the unsanitized
# build; ASan's shadow memory would drown the numbers) runs alone in a
# memory cgroup whose hard limit is what crstream promises plus a stated
# constant, and must finish without the kernel having had to kill it (the
# cgroup's OOM-kill count stays 0). The cgroup's peak is logged.
#
# Only crstream is in the cgroup: CRIU (with its hook child and the tree it
# restores) is moved back out by a wrapper before it runs (CRSTREAM_CRIU =
# $T/criu-outside), and a serve's CRIU is not its child anyway. A memory
# cgroup also charges page cache (v1 and v2 alike; on tmpfs it is not
# even reclaimable): the spill file goes to a directory on disk
# ($TMPDIR=/var/tmp/...), whose dirty pages the kernel writes back and
# reclaims when the limit is reached, so what has to fit under the limit
# is crstream's own memory -- heap, stacks, mappings, pipe and socket
# buffers. (The peak charged then reads as the limit: page cache fills it.)
#
# OVERHEAD, the stated constant: what a restore or serve needs besides the
# image data --memory-limit speaks of: program and libraries, thread
# stacks, lz4 decoder state (4 MiB blocks in and out per stream), the
# pipes between workers and engine. Measured here at a 16M limit: 16 MiB
# was too little (OOM-killed), 20 MiB enough; 32 MiB leaves a margin.
# (An S3 dump: test_s3.sh, test_dump_memory_within_its_part_buffers.)
source "$(dirname "$0")/../lib/harness.sh"

OVERHEAD=$((32 * MIB))

json_get() {	# json_get FILE KEY (flat objects only)
	"$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# ---- the tests ----

# capture_reference NAME MIB: checkpoint a mem subject of MIB MiB through
# `crstream capture` without deferring pages (as criu-image-streamer
# does): pages-1.img sits at the front of the shards $T/s0, $T/s1, and
# CRIU asks for it last on restore, so nearly all of it must be held back
# -- spilled -- while CRIU reads the rest. Prints the subject's counter.
capture_reference() {
	local name=$1 pid
	pid=$(start_subject "$name" mem --mib "$2")
	status_get "$T/$name.status" counter
	mkdir -p "$T/img"
	"$CRSTREAM_PLAIN" capture -D "$T/img" -s 10,11 -p 3 3>"$T/cap.progress" \
		10>"$T/s0" 11>"$T/s1" 2>"$T/cap.err" &
	local cap=$!
	until grep -qx socket-init "$T/cap.progress"; do sleep 0.05; done
	"$CRIU" dump --stream -D "$T/img" -t "$pid" -o dump.log ||
		{ fail "criu dump: $(tail -3 "$T/img/dump.log")"; return 1; }
	wait "$cap" || { fail "capture: $(cat "$T/cap.err")"; return 1; }
	wait_gone "$pid"
}

# crstream restore with --memory-limit 16M of a 256 MiB image (the two
# shards above, lz4-compressed as that streamer's users store them) in a
# cgroup of 16 MiB + OVERHEAD; then crstream serve of the raw shards
# (through pipes), with CRIU driven from here, in a cgroup of the same size.
test_restore_and_serve_within_their_memory_limit() {
	memcg_setup
	local counter limit=$((16 * MIB))
	counter=$(capture_reference r 256)
	mkdir -p "$T/ck/r"
	lz4 -q -c "$T/s0" >"$T/ck/r/img-0.lz4"
	lz4 -q -c "$T/s1" >"$T/ck/r/img-1.lz4"
	spill_dir
	memcg_create restore $((limit + OVERHEAD))
	local rc=0
	CRSTREAM_CRIU=$T/criu-outside TMPDIR=$SPILL memcg_run "$CRSTREAM_PLAIN" restore --path "$T/ck/r" \
		--memory-limit 16M --json >"$T/r.json" 2>"$T/r.err" || rc=$?
	memcg_check restore $((limit + OVERHEAD))
	[ "$rc" = 0 ] || fail "restore failed (exit $rc): $(cat "$T/r.json" "$T/r.err")"
	local image spilled
	image=$(json_get "$T/r.json" image_bytes)
	spilled=$(json_get "$T/r.json" spilled_bytes)
	log "image $((image / MIB)) MiB, spilled $((spilled / MIB)) MiB"
	# The setup made a breach possible: the image is several times the
	# cgroup, and most of it had to be kept out of memory.
	[ "$image" -gt $((4 * (limit + OVERHEAD))) ] || fail "image too small for the test: $image"
	[ "$spilled" -gt $((image / 2)) ] || fail "only $spilled bytes spilled"
	verify_subject r "$counter"
	kill_subject r

	# Shards through pipes, as zdtm gives them: serve cannot leave the data
	# in the shard files, it must hold or spill it.
	memcg_create serve $((limit + OVERHEAD))
	mkdir -p "$T/srv"
	TMPDIR=$SPILL memcg_run "$CRSTREAM_PLAIN" serve -D "$T/srv" -s 10,11 -p 3 --memory-limit 16M \
		3>"$T/srv.progress" 10< <(cat "$T/s0") 11< <(cat "$T/s1") 2>"$T/srv.err" &
	local srv=$!
	until grep -qx socket-init "$T/srv.progress" || ! alive "$srv"; do sleep 0.05; done
	rc=0
	"$CRIU" restore --stream -D "$T/srv" -d -o restore.log || rc=$?
	wait "$srv" || rc=$?
	memcg_check serve $((limit + OVERHEAD))
	[ "$rc" = 0 ] || fail "serve/CRIU restore failed: $(cat "$T/srv.err"; grep Error "$T/srv/restore.log" | head -3)"
	verify_subject r
}

run_tests "$@"
