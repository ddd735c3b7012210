#!/bin/bash
# crstream with object storage, end to end: the real CRIU dumps real
# processes into s3:// and restores them from there, against a real
# OpenStack Swift with its S3 API (scripts/s3-server.sh) and Debian's
# awscli. Round trips, multipart streams, no local staging, ls/rm, a wrong
# secret, the server crashing mid-dump and mid-restore, awscli interop and
# `crstream check`.
#
# The server is started once for this file (a no-op if it already runs)
# and stopped at the end unless it was running before. Each test works
# under its own prefix s3://BUCKET/s3it-RUN/TEST; the run's objects are
# deleted at the end.
source "$(dirname "$0")/../lib/harness.sh"

SWIFT=$ROOT/scripts/s3-server.sh
# The crash tests kill and restart a second proxy of their own, in front of
# the same Swift servers, so that whoever else uses the main one (and the
# other tests) never sees it go away.
FAULT_PORT=$((${CRSTREAM_SWIFT_PORT:-18080} + 5))
FAULT_URL=http://127.0.0.1:$FAULT_PORT

SWIFT_WAS_RUNNING=0
"$SWIFT" status && SWIFT_WAS_RUNNING=1
RUN=s3it-$(date -u +%Y%m%dT%H%M%S)-$$

awscli() { /usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }
export AWS_PAGER=""

cleanup_swift() {
	if [ -n "${B:-}" ] && "$SWIFT" status; then
		awscli s3 rm --recursive --only-show-errors "s3://$B/$RUN/" >/dev/null 2>&1 || true
	fi
	"$SWIFT" stop-proxy "$FAULT_PORT" 2>/dev/null || true
	[ "$SWIFT_WAS_RUNNING" = 1 ] || "$SWIFT" stop
}
trap cleanup_swift EXIT

echo "  starting Swift (scripts/s3-server.sh start, start-proxy $FAULT_PORT)" >&2
SWIFT_ENV=$("$SWIFT" start) || { echo "  cannot start Swift" >&2; exit 1; }
eval "$SWIFT_ENV"
"$SWIFT" start-proxy "$FAULT_PORT" || { echo "  cannot start the fault proxy" >&2; exit 1; }
B=$CRSTREAM_TEST_S3_BUCKET
: "${AWS_ENDPOINT_URL:?}" "${AWS_SECRET_ACCESS_KEY:?}"

P=""	# set per test by s3_begin: this test's prefix in the bucket

# s3_begin: this test's prefix, and both proxies answering (a crash test
# that failed half-way may have left its proxy restarting).
s3_begin() {
	P=$RUN/${FUNCNAME[1]#test_}
	local i
	for i in $(seq 1 300); do
		"$SWIFT" status && curl -s -o /dev/null --max-time 2 "$FAULT_URL/healthcheck" && return 0
		sleep 0.1
	done
	fail "Swift does not answer"
}

json_get() {	# json_get FILE KEY (flat objects only)
	"$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# no_uploads_left PREFIX: no multipart upload in progress under PREFIX/.
no_uploads_left() {
	local up
	up=$(awscli s3api list-multipart-uploads --bucket "$B" --prefix "$1/" \
		--query 'Uploads[].[Key, UploadId]' --output text) ||
		{ fail "list-multipart-uploads failed"; return 1; }
	[ -z "$up" ] || [ "$up" = None ] || { fail "multipart uploads left under $1/: $up"; return 1; }
}

# objects PREFIX: "key size etag" of every object under PREFIX/, one a line
# (tab-separated); fails if they cannot be listed.
objects() {
	local out
	out=$(awscli s3api list-objects-v2 --bucket "$B" --prefix "$1/" \
		--query 'Contents[].[Key, Size, ETag]' --output text) ||
		{ fail "list-objects-v2 failed"; return 1; }
	[ "$out" = None ] || [ -z "$out" ] || printf '%s\n' "$out"
}

# no_objects PREFIX: nothing stored under PREFIX/.
no_objects() {
	objects "$1" >"$T/objects.left"
	[ ! -s "$T/objects.left" ] || { fail "objects left under $1/: $(cat "$T/objects.left")"; return 1; }
}

# dump_s3 NAME PID ARGS...: crstream dump into s3://B/P; JSON in $T/NAME.dump.json.
dump_s3() {
	local name=$1 pid=$2
	shift 2
	"$CRSTREAM" dump "$pid" --dir "s3://$B/$P" --json "$@" >"$T/$name.dump.json" ||
		{ fail "dump $name: $(cat "$T/$name.dump.json")"; return 1; }
	wait_gone "$pid"
}

# restore_ok NAME PATH ARGS...: restore, JSON in $T/NAME.restore.json.
restore_ok() {
	local name=$1 path=$2
	shift 2
	"$CRSTREAM" restore --path "$path" --json "$@" >"$T/$name.restore.json" ||
		{ fail "restore $name from $path: $(cat "$T/$name.restore.json")"; return 1; }
}

subject_args() {	# the four kinds of test process, by index
	case $(($1 % 4)) in
	0) echo "mem --mib 48" ;;
	1) echo "threads --threads 3 --mib 24" ;;
	2) echo "tree --children 2" ;;
	3) echo "files --data $T/data-$1 --port 0" ;;
	esac
}

ext_of() {
	case $1 in none) ;; lz4) echo .lz4 ;; zstd) echo .zst ;; gzip) echo .gz ;; zlib) echo .zlib ;; esac
}

# 1. dump -> S3 -> restore, streams 1 and 4 x none, lz4, zstd, with every
# kind of process; the checkpoint keeps its default name under the prefix.
test_round_trips_streams_1_and_4_every_codec() {
	s3_begin
	local n c k=0 name pid counter ck
	for n in 1 4; do
		for c in none lz4 zstd; do
			name=rt-$n-$c
			echo x >"$T/data-$k"
			# shellcheck disable=SC2046
			pid=$(start_subject "$name" $(subject_args $k))
			k=$((k + 1))
			counter=$(status_get "$T/$name.status" counter)
			dump_s3 "$name" "$pid" --streams "$n" --compression "$c"
			ck=$(json_get "$T/$name.dump.json" checkpoint)
			[[ "$ck" == "s3://$B/$P/dump-$pid-"* ]] || fail "$name: checkpoint at $ck"
			"$CRSTREAM" inspect "$ck" >"$T/$name.inspect"
			grep -q '^status: *complete' "$T/$name.inspect" &&
				grep -q "^streams: *$n ($c" "$T/$name.inspect" &&
				grep -q "img-$((n - 1))$(ext_of "$c") " "$T/$name.inspect" ||
				fail "$name: $(cat "$T/$name.inspect")"
			restore_ok "$name" "$ck"
			[ "$(json_get "$T/$name.restore.json" streams)" = "$n" ] &&
				[ "$(json_get "$T/$name.restore.json" compression)" = "$c" ] ||
				fail "$name: $(cat "$T/$name.restore.json")"
			[ "$(json_get "$T/$name.restore.json" pid)" = "$pid" ] || fail "restored under another pid"
			verify_subject "$name" "$counter"
			kill_subject "$name"
		done
	done
	log "$k dump/restore cycles through s3://$B/$P"
}

# Trusted checkpoints in object storage: streams 1 and 4 x none, lz4, zstd
# encrypted with age and signed, each restored under a trust policy; a
# stream fetched with awscli decrypts with `age -d`, and a stream altered
# in the bucket is refused before CRIU gets a byte of it.
TEST_TIMEOUT[test_encrypted_and_signed_round_trips]=480
test_encrypted_and_signed_round_trips() {
	s3_begin
	local rec n c name pid counter
	rec=$("$CRSTREAM" keygen --output "$T/id.txt")
	"$CRSTREAM" keygen --sign --output "$T/sign" >/dev/null
	for n in 1 4; do
		for c in none lz4 zstd; do
			name=enc-$n-$c
			pid=$(start_subject "$name" mem --mib 8)
			counter=$(status_get "$T/$name.status" counter)
			dump_s3 "$name" "$pid" --name "$name" --streams "$n" --compression "$c" \
				--recipient "$rec" --sign-key "$T/sign"
			restore_ok "$name" "s3://$B/$P/$name" --identity "$T/id.txt" --trusted-key "$T/sign.pub"
			[[ "$(json_get "$T/$name.restore.json" trust)" == "signature verified"* ]] ||
				fail "$name: $(cat "$T/$name.restore.json")"
			verify_subject "$name" "$counter"
			kill_subject "$name"
		done
	done
	awscli s3 cp --only-show-errors "s3://$B/$P/enc-1-lz4/img-0.lz4.age" "$T/img-0.lz4.age"
	age -d -i "$T/id.txt" "$T/img-0.lz4.age" | lz4 -dc >/dev/null || fail "age -d | lz4 -dc failed"
	flip_byte "$T/img-0.lz4.age" 100
	awscli s3 cp --only-show-errors "$T/img-0.lz4.age" "s3://$B/$P/enc-1-lz4/img-0.lz4.age"
	local rc=0
	"$CRSTREAM" restore --path "s3://$B/$P/enc-1-lz4" --identity "$T/id.txt" \
		--trusted-key "$T/sign.pub" --json >"$T/bad.json" || rc=$?
	[ "$rc" = 1 ] && [[ "$(json_get "$T/bad.json" error)" == *"img-0.lz4.age: chunk 0"* ]] &&
		[ "$(json_get "$T/bad.json" served_bytes)" = 0 ] || fail "altered stream: $(cat "$T/bad.json")"
}

# 1. Streams of more than three 5 MiB parts each: every stream object is a
# completed multipart upload of ceil(size / 5 MiB) parts (its ETag says how
# many: "md5-of-md5s-N"), and it restores (ranged GETs of 5 MiB).
test_multipart_streams_of_more_than_3_parts() {
	s3_begin
	local pid counter part=$((5 << 20))
	pid=$(start_subject mp mem --mib 80)
	counter=$(status_get "$T/mp.status" counter)
	CRSTREAM_S3_PART_SIZE=5M dump_s3 mp "$pid" --name mp --streams 2 --compression none
	awscli s3 cp --only-show-errors "s3://$B/$P/mp/manifest.json" "$T/manifest.json"
	objects "$P/mp" >"$T/objects"
	local i stored size etag parts
	for i in 0 1; do
		stored=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["stream_files"][int(sys.argv[2])]["stored_bytes"])' \
			"$T/manifest.json" "$i")
		log "img-$i: $stored bytes stored; $(grep "/img-$i	" "$T/objects")"
		[ "$stored" -gt $((3 * part)) ] || fail "img-$i: only $stored bytes (want > 3 parts of 5 MiB)"
		read -r _ size etag < <(grep "/mp/img-$i	" "$T/objects") || fail "no object img-$i"
		[ "$size" = "$stored" ] || fail "img-$i: object has $size bytes, the manifest says $stored"
		parts=${etag//\"/}
		parts=${parts##*-}
		[ "$parts" = $(((stored + part - 1) / part)) ] ||
			fail "img-$i: ETag $etag: not a multipart upload of $(((stored + part - 1) / part)) parts"
	done
	CRSTREAM_S3_PART_SIZE=5M restore_ok mp "s3://$B/$P/mp"
	verify_subject mp "$counter"
}

# ns_setup: a private mount namespace for this test, kept in $T/ns/mnt,
# in which /tmp, $T/tmpdir and $T/cwd are fresh 4 MiB tmpfs and $T is
# this test's directory as outside (status files stay visible), and so is
# the tree ($ROOT: the binaries), should it be under /tmp. in_ns CMD...
# runs CMD in it. Everything that takes part in a dump or restore (the
# subject, crstream, CRIU) runs in it, so that CRIU sees one mount
# namespace.
ns_setup() {
	mkdir -p "$T/ns" "$T/tmpdir" "$T/cwd"
	# A namespace can be kept only on a mount that does not propagate.
	mount -t tmpfs -o size=64k tmpfs "$T/ns"
	mount --make-private "$T/ns"
	touch "$T/ns/mnt"
	unshare --mount="$T/ns/mnt" --propagation private bash -euo pipefail -c '
		exec 9<"$1" 8<"$2"
		mount -t tmpfs -o size=4m tmpfs /tmp
		mkdir -p "$1"
		mount --no-canonicalize --bind /proc/self/fd/9 "$1"
		mount -t tmpfs -o size=4m tmpfs "$1/tmpdir"
		mount -t tmpfs -o size=4m tmpfs "$1/cwd"
		case $2 in /tmp/*)
			mkdir -p "$2"
			mount --no-canonicalize --bind /proc/self/fd/8 "$2" ;;
		esac' ns_setup "$T" "$ROOT"
}

# The directories in /tmp that lead to the tree, when it is there
# (ns_setup makes them): not something a dump left.
root_path_in_tmp() {
	local d=$ROOT
	while [[ $d == /tmp/* ]]; do
		echo "$d"
		d=$(dirname "$d")
	done
}

in_ns() {
	nsenter --mount="$T/ns/mnt" -- "$@"
}

# ns_empty WHEN: nothing is left in /tmp, $TMPDIR or the working directory
# (beyond the directories that lead to $T and to the tree).
ns_empty() {
	in_ns find /tmp "$T/tmpdir" "$T/cwd" -xdev -mindepth 1 ! -path "$T" >"$T/found.$1" ||
		{ fail "$1: find in the namespace failed"; return 1; }
	local rc=0
	grep -vxF -f <(root_path_in_tmp; echo "$T") "$T/found.$1" >"$T/left.$1" || rc=$?
	[ "$rc" -le 1 ] || { fail "$1: grep failed"; return 1; }
	[ ! -s "$T/left.$1" ] || { fail "$1: files left: $(cat "$T/left.$1")"; return 1; }
	in_ns df --output=used -B1 /tmp "$T/tmpdir" "$T/cwd" | tail -n +2 >"$T/used.$1"
	! awk '$1 > 65536 { bad = 1 } END { exit !bad }' "$T/used.$1" ||
		{ fail "$1: a tmpfs is in use: $(cat "$T/used.$1")"; return 1; }
}

# 5. Nothing staged locally: with /tmp, $TMPDIR and the working directory
# each a 4 MiB tmpfs (a private mount namespace), a checkpoint many times
# that size goes to S3 and comes back, and all three are empty after the
# dump and after the restore. Then ls lists it as complete and rm removes it.
test_no_local_staging_then_ls_and_rm() {
	s3_begin
	ns_setup
	local pid counter
	# The subject has only files opened in the namespace: CRIU cannot
	# dump a descriptor of a mount it does not see.
	(in_ns bash -c 'for fd in $(ls /proc/$$/fd); do [ "$fd" -le 2 ] || eval "exec $fd>&-"; done
		cd "$1" && exec setsid "$2" mem --status "$1/ns.status" --mib 64 \
		</dev/null >/dev/null 2>"$1/ns.stderr"' sh "$T" "$SUBJECT" &)
	"$TESTTOOL" wait-status "$T/ns.status" state=ready --timeout 120 >/dev/null ||
		fail "the subject did not start: $(cat "$T/ns.stderr")"
	pid=$(status_get "$T/ns.status" pid)
	counter=$(status_get "$T/ns.status" counter)
	# $TMPDIR is where crstream works: without it, no dump.
	expect_fail "cannot create a private directory in $T/tmpdir/missing" \
		in_ns env TMPDIR="$T/tmpdir/missing" "$CRSTREAM" dump "$pid" --dir "s3://$B/$P" --name ns
	(cd "$T/cwd" && in_ns env TMPDIR="$T/tmpdir" "$CRSTREAM" dump "$pid" --dir "s3://$B/$P" \
		--name ns --streams 2 --compression none --json) >"$T/ns.dump.json" ||
		fail "dump: $(cat "$T/ns.dump.json")"
	wait_gone "$pid"
	local stored
	stored=$(json_get "$T/ns.dump.json" stored_bytes)
	[ "$stored" -gt $((16 << 20)) ] || fail "checkpoint of $stored bytes: not > 4x a tmpfs"
	ns_empty "after the dump"
	# A restore spills to $TMPDIR only what exceeds --memory-limit (see
	# test_memory.sh); with a limit above the image, nothing may land.
	(cd "$T/cwd" && in_ns env TMPDIR="$T/tmpdir" "$CRSTREAM" restore --path "s3://$B/$P/ns" \
		--memory-limit 128M --json) >"$T/ns.restore.json" || fail "restore: $(cat "$T/ns.restore.json")"
	verify_subject ns "$counter"
	ns_empty "after the restore"
	kill_subject ns

	"$CRSTREAM" ls "s3://$B/$P" >"$T/ls"
	grep -Eq "^ns +[0-9TZ:-]+ +[0-9.]+ MiB +2  none +complete$" "$T/ls" || fail "ls: $(cat "$T/ls")"
	"$CRSTREAM" rm "s3://$B/$P/ns" >"$T/rm"
	grep -q "^removed s3://$B/$P/ns " "$T/rm" || fail "rm: $(cat "$T/rm")"
	"$CRSTREAM" ls "s3://$B/$P" >"$T/ls"
	! grep -q '^ns ' "$T/ls" || fail "ls after rm: $(cat "$T/ls")"
	no_objects "$P"
}

# The leftover check the fault tests rely on does see an upload in progress.
test_leftover_upload_check_sees_an_open_upload() {
	s3_begin
	local id
	id=$(awscli s3api create-multipart-upload --bucket "$B" --key "$P/x/img-0" \
		--query UploadId --output text)
	! no_uploads_left "$P" 2>"$T/err" || fail "no_uploads_left missed upload $id"
	grep -qF "$P/x/img-0	$id" "$T/err" || fail "no_uploads_left said: $(cat "$T/err")"
	awscli s3api abort-multipart-upload --bucket "$B" --key "$P/x/img-0" --upload-id "$id"
}

# 3a. A wrong secret: the dump fails at once naming the auth error, the
# process never stops running, nothing is left in the bucket.
test_wrong_secret_fails_cleanly() {
	s3_begin
	local pid counter
	pid=$(start_subject ws mem --mib 32)
	counter=$(status_get "$T/ws.status" counter)
	local wrong=wrong-secret-5Kp
	expect_fail "403 SignatureDoesNotMatch" env AWS_SECRET_ACCESS_KEY=$wrong \
		"$CRSTREAM" dump "$pid" --dir "s3://$B/$P" --streams 2
	log "$LAST_ERROR"
	[ "$(wc -l <<<"$LAST_ERROR")" = 1 ] || fail "more than one line: $LAST_ERROR"
	[[ "$LAST_ERROR" != *"$wrong"* ]] || fail "the secret is in the message: $LAST_ERROR"
	verify_subject ws "$counter"
	no_uploads_left "$P"
	no_objects "$P"
}

# 3b. The proxy dies about a second into the dump of a big process (64 of
# its 256 MiB sent) and comes back a few seconds later: the data requests
# give up after CRSTREAM_S3_RETRIES=2 retries and the dump fails saying
# why; CRIU resumes the process; the multipart uploads are aborted once the
# proxy is back (aborts retry longer, by design); the checkpoint stays
# incomplete.
test_proxy_crash_mid_dump() {
	s3_begin
	local pid counter
	pid=$(start_subject cd mem --mib 256)
	counter=$(status_get "$T/cd.status" counter)
	mkdir "$T/tmp"
	TMPDIR=$T/tmp AWS_ENDPOINT_URL=$FAULT_URL CRSTREAM_S3_RETRIES=2 \
		"$CRSTREAM" dump "$pid" --dir "s3://$B/$P" --name crash --streams 2 --compression none \
		>/dev/null 2>"$T/err" &
	local dump=$!
	# About a second in: the upload is under way.
	wait_traffic "$dump" bytes_sent $((64 << 20)) || fail "dump: $(cat "$T/err")"
	"$SWIFT" stop-proxy "$FAULT_PORT"
	(sleep 2 && "$SWIFT" start-proxy "$FAULT_PORT") >"$T/restart.log" 2>&1 &
	local restarter=$! rc=0
	wait "$dump" || rc=$?
	wait "$restarter" || fail "the proxy did not come back: $(cat "$T/restart.log")"
	log "dump: $(cat "$T/err")"
	[ "$rc" -ne 0 ] || fail "the dump succeeded with its server gone"
	grep -q "127.0.0.1:$FAULT_PORT: .*(after 3 attempts)" "$T/err" || fail "dump said: $(cat "$T/err")"
	grep -q "pid $pid keeps running" "$T/err" || fail "dump said: $(cat "$T/err")"
	! grep -q "left behind" "$T/err" || fail "an upload was left behind: $(cat "$T/err")"
	verify_subject cd "$counter"
	no_uploads_left "$P"
	"$CRSTREAM" ls "s3://$B/$P" >"$T/ls"
	grep -Eq '^crash .* INCOMPLETE$' "$T/ls" || fail "ls: $(cat "$T/ls")"
	objects "$P" >"$T/objects"
	! grep -q '/img-' "$T/objects" || fail "stream objects left: $(cat "$T/objects")"
	expect_fail "the checkpoint is incomplete" "$CRSTREAM" restore --path "s3://$B/$P/crash"
}

# traffic PID FIELD: the sum of FIELD (bytes_sent, bytes_received) over
# PID's open connections to the fault proxy.
traffic() {
	ss -Htnpi state established "( dport = :$FAULT_PORT )" | awk -v p="pid=$1," -v f="$2:" '
		index($0, p) { mine = 1; next }
		mine && match($0, f "[0-9]+") { sum += substr($0, RSTART + length(f), RLENGTH - length(f)) }
		{ mine = 0 }
		END { print sum + 0 }'
}

# wait_traffic PID FIELD BYTES: until PID has moved BYTES over its open
# connections to the fault proxy (so a transfer is in flight), or is gone.
wait_traffic() {
	local i n=0
	for i in $(seq 1 3000); do
		n=$(traffic "$1" "$2")
		[ "$n" -ge "$3" ] && return 0
		alive "$1" || break
		sleep 0.02
	done
	fail "pid $1 moved only $n bytes ($2) to or from the proxy"
}

# crash_restore NAME RETRIES: restore s3://B/P/big through the fault proxy
# with CRSTREAM_S3_RETRIES=RETRIES; the proxy is killed while the download
# is in flight (32 of the 256 MiB received) and restarted 2 s later. Sets
# RESTORE_RC and RESTORE_ERR (the JSON's error); JSON in $T/NAME.json.
crash_restore() {
	local name=$1 retries=$2
	mkdir -p "$T/tmp"	# where a failed restore keeps CRIU's log
	TMPDIR=$T/tmp AWS_ENDPOINT_URL=$FAULT_URL CRSTREAM_S3_RETRIES=$retries \
		"$CRSTREAM" restore --path "s3://$B/$P/big" --json >"$T/$name.json" 2>"$T/$name.err" &
	local rst=$!
	wait_traffic "$rst" bytes_received $((32 << 20)) || fail "$name: $(cat "$T/$name.json")"
	"$SWIFT" stop-proxy "$FAULT_PORT"
	(sleep 2 && "$SWIFT" start-proxy "$FAULT_PORT") >"$T/restart.log" 2>&1 &
	local restarter=$!
	RESTORE_RC=0
	wait "$rst" || RESTORE_RC=$?
	wait "$restarter" || fail "the proxy did not come back: $(cat "$T/restart.log")"
	RESTORE_ERR=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("error", ""))' "$T/$name.json") ||
		fail "$name: no JSON: $(cat "$T/$name.json" "$T/$name.err")"
	log "$name: rc $RESTORE_RC${RESTORE_ERR:+: $RESTORE_ERR}"
}

# 3c. The proxy dies in the middle of a restore and comes back: with
# retries to outlast the outage the download resumes and the process comes
# back whole; with none the restore fails saying why and leaves no process.
test_proxy_crash_mid_restore() {
	s3_begin
	local pid counter
	pid=$(start_subject cr mem --mib 256)
	counter=$(status_get "$T/cr.status" counter)
	dump_s3 big "$pid" --name big --streams 2 --compression none

	crash_restore resumed 8
	[ "$RESTORE_RC" = 0 ] || fail "the restore did not survive the outage: $RESTORE_ERR"
	[ "$(json_get "$T/resumed.json" pid)" = "$pid" ] || fail "restored under another pid"
	verify_subject cr "$counter"
	kill_subject cr

	heartbeat_mark cr
	crash_restore failed 0
	[ "$RESTORE_RC" -ne 0 ] || fail "the restore succeeded without retries through an outage"
	grep -q "s3://$B/$P/big/img-[01]: GET offset [0-9]*: http://127.0.0.1:$FAULT_PORT: " <<<"$RESTORE_ERR" ||
		fail "restore said: $RESTORE_ERR"
	assert_never_ran cr	# never a half-restored process
}

# 4a. A checkpoint crstream uploaded, fetched with `aws s3 cp --recursive`,
# restores from the local copy.
test_awscli_download_restores_locally() {
	s3_begin
	local pid counter
	pid=$(start_subject ad mem --mib 48)
	counter=$(status_get "$T/ad.status" counter)
	CRSTREAM_S3_PART_SIZE=5M dump_s3 ad "$pid" --name ad --streams 2 --compression lz4
	awscli s3 cp --recursive --only-show-errors "s3://$B/$P/ad" "$T/local/ad"
	ls "$T/local/ad/img-0.lz4" "$T/local/ad/img-1.lz4" "$T/local/ad/manifest.json" >/dev/null
	restore_ok ad "$T/local/ad"
	[ "$(json_get "$T/ad.restore.json" pid)" = "$pid" ] || fail "restored under another pid"
	verify_subject ad "$counter"
}

# 4b. A local checkpoint uploaded with `aws s3 cp --recursive` (multipart
# uploads of awscli's own 8 MiB parts) restores from its s3:// URL.
test_awscli_upload_restores_from_s3() {
	s3_begin
	local pid counter
	pid=$(start_subject au threads --threads 3 --mib 48)
	counter=$(status_get "$T/au.status" counter)
	"$CRSTREAM" dump "$pid" --dir "$T/ck" --name au --streams 2 --compression none >/dev/null
	wait_gone "$pid"
	awscli s3 cp --recursive --only-show-errors "$T/ck/au" "s3://$B/$P/au"
	objects "$P/au" >"$T/objects"
	grep -Eq '/au/img-0	[0-9]+	"[0-9a-f]+-[0-9]+"$' "$T/objects" ||
		fail "img-0 is not a multipart upload: $(cat "$T/objects")"
	restore_ok au "s3://$B/$P/au"
	[ "$(json_get "$T/au.restore.json" pid)" = "$pid" ] || fail "restored under another pid"
	verify_subject au "$counter"
}

# 4c. s3fs as a plain --dir: an s3fs-fuse mount of the bucket (the FUSE
# route for remote directories) takes a streamed dump and gives it back,
# compressed and uncompressed (the latter through splice into the file and
# a mapping for the checksum). The mount is remade before the restore, so
# that the bytes come from the server, not s3fs's caches; what s3fs stored
# is an ordinary checkpoint, which crstream also restores from its s3://
# URL. s3fs's passwd file cannot hold Swift's "test:tester" key (it splits
# at the ':'), so the keys go in its environment.
s3fs_mount() {
	mkdir -p "$T/s3fs"
	AWSACCESSKEYID=$AWS_ACCESS_KEY_ID AWSSECRETACCESSKEY=$AWS_SECRET_ACCESS_KEY \
		s3fs "$B" "$T/s3fs" -o url="$AWS_ENDPOINT_URL" -o use_path_request_style \
		-o endpoint=us-east-1 || { fail "s3fs did not mount $B"; return 1; }
	local i
	for i in $(seq 1 100); do
		mountpoint -q "$T/s3fs" && return 0
		sleep 0.1
	done
	fail "s3fs: $T/s3fs is not a mount point"
}

test_s3fs_mount_as_a_plain_dir() {
	if [ ! -e /dev/fuse ]; then
		log "SKIPPED: /dev/fuse is missing (no FUSE, no s3fs mount)"
		return 0
	fi
	s3_begin
	local c n pid counter name
	for c in lz4 none; do
		n=$([ $c = lz4 ] && echo 2 || echo 1)
		name=fuse-$c
		s3fs_mount
		pid=$(start_subject "$name" mem --mib 48)
		counter=$(status_get "$T/$name.status" counter)
		"$CRSTREAM" dump "$pid" --dir "$T/s3fs/$P" --name "$name" --streams $n --compression $c \
			--json >"$T/$name.dump.json" || fail "dump through s3fs: $(cat "$T/$name.dump.json")"
		wait_gone "$pid"
		umount "$T/s3fs"
		s3fs_mount
		restore_ok "$name" "$T/s3fs/$P/$name"
		verify_subject "$name" "$counter"
		umount "$T/s3fs"
		"$CRSTREAM" inspect "s3://$B/$P/$name" >"$T/$name.inspect"
		grep -q '^status: *complete' "$T/$name.inspect" || fail "s3://$B/$P/$name: $(cat "$T/$name.inspect")"
		kill -9 "$pid"
		wait_gone "$pid"
		restore_ok "$name-s3" "s3://$B/$P/$name"
		verify_subject "$name" "$counter"
		kill -9 "$pid"
		wait_gone "$pid"
	done
}

# 5. crstream check probes the location (credentials, bucket, a write and
# a delete) without printing the secret, from the environment or the
# config file; with a wrong secret the location FAILs and check exits 1.
test_check_probes_the_location() {
	s3_begin
	local out rc
	out=$("$CRSTREAM" check --dir "s3://$B/$P" 2>&1) || fail "check failed: $out"
	grep -Eq "^ok +checkpoint location s3://$B/$P at $AWS_ENDPOINT_URL .*credentials from environment.*write\+delete ok$" <<<"$out" ||
		fail "check: $out"
	[[ "$out" != *"$AWS_SECRET_ACCESS_KEY"* ]] || fail "the secret is in the output: $out"
	# The secret from the config file: not shown by check or config show.
	printf '{"s3": {"endpoint": "%s", "access_key_id": "%s", "secret_access_key": "%s"}}\n' \
		"$AWS_ENDPOINT_URL" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$CRSTREAM_CONFIG"
	out=$(env -u AWS_ENDPOINT_URL -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
		"$CRSTREAM" check --dir "s3://$B/$P" 2>&1) || fail "check (config file) failed: $out"
	grep -Eq "^ok +checkpoint location s3://$B/$P .*credentials from config" <<<"$out" || fail "check: $out"
	out+=$("$CRSTREAM" config show 2>&1)
	[[ "$out" != *"$AWS_SECRET_ACCESS_KEY"* ]] || fail "the secret is in the output: $out"
	printf '{}\n' >"$CRSTREAM_CONFIG"
	no_objects "$P"	# the probe cleans up after itself

	local wrong=wrong-secret-7Qx
	rc=0
	out=$(env AWS_SECRET_ACCESS_KEY=$wrong "$CRSTREAM" check --dir "s3://$B/$P" 2>&1) || rc=$?
	[ "$rc" -ne 0 ] || fail "check passed with a wrong secret: $out"
	grep -Eq "^FAIL +checkpoint location s3://$B/$P: .*403 SignatureDoesNotMatch" <<<"$out" ||
		fail "check: $out"
	[[ "$out" != *"$wrong"* ]] || fail "the secret is in the output: $out"
	log "$(grep '^FAIL' <<<"$out")"
}

# relay_start NAME RULE...: tests/tools/s3relay.py in front of Swift,
# cutting the connection on requests that match RULE (its options); its
# URL in RELAY_URL, its log in $T/NAME.relay.
relay_start() {
	local name=$1
	shift
	"$PYTHON" "$ROOT/tests/tools/s3relay.py" --upstream "${AWS_ENDPOINT_URL#http://}" \
		--port-file "$T/$name.port" --log "$T/$name.relay" "$@" 2>"$T/$name.relay.err" &
	"$TESTTOOL" wait-status "$T/$name.port" 'port>0' --timeout 30 >/dev/null ||
		{ fail "the relay did not start: $(cat "$T/$name.relay.err")"; return 1; }
	RELAY_URL=http://127.0.0.1:$(status_get "$T/$name.port" port)
}

# dump_cut NAME WANT: dump subject NAME (48 MiB, 2 multipart streams of
# 5 MiB parts, no compression) through the relay, which cuts what it was
# told to; the dump fails with WANT, the process resumes whole, nothing is
# left but an incomplete checkpoint, which is refused and never runs.
dump_cut() {
	local name=$1 want=$2 pid counter
	pid=$(start_subject "$name" mem --mib 48)
	counter=$(status_get "$T/$name.status" counter)
	AWS_ENDPOINT_URL=$RELAY_URL CRSTREAM_S3_PART_SIZE=5M CRSTREAM_S3_RETRIES=1 \
		expect_fail "$want" "$CRSTREAM" dump "$pid" --dir "s3://$B/$P" --name "$name" \
		--streams 2 --compression none
	log "$LAST_ERROR"
	[[ "$LAST_ERROR" == *"(pid $pid keeps running;"* ]] ||
		fail "not resumed: $LAST_ERROR"
	verify_subject "$name" "$counter"
	no_uploads_left "$P"
	objects "$P" >"$T/objects"
	! grep -q '/img-' "$T/objects" || fail "stream objects left: $(cat "$T/objects")"
	"$CRSTREAM" ls "s3://$B/$P" >"$T/ls"
	grep -Eq "^$name .* INCOMPLETE$" "$T/ls" || fail "ls: $(cat "$T/ls")"
	kill_subject "$name"
	expect_refused "$name" "the checkpoint is incomplete" "$CRSTREAM" restore --path "s3://$B/$P/$name"
}

# 1. The connection cut on every CompleteMultipartUpload (POST ?uploadId=),
# which the post-dump hook sends to make the streams durable: the server
# never completes a stream.
test_connection_cut_on_complete_multipart_upload() {
	s3_begin
	relay_start cmu --method POST --query 'uploadId=' --when before
	dump_cut cmu "complete multipart upload: "
	grep -q "^CUT-BEFORE POST /$B/$P/cmu/img-[01]?uploadId=" "$T/cmu.relay" ||
		fail "no CompleteMultipartUpload was cut: $(cat "$T/cmu.relay")"
	grep -q "^PUT /$B/$P/cmu/img-[01]?partNumber=2&uploadId=" "$T/cmu.relay" ||
		fail "the streams were not multipart uploads: $(cat "$T/cmu.relay")"
}

# 1. The connection cut on the final manifest's PUT (the one that says
# "complete": true, the last step of the hook) after the server stored it:
# the server has a complete manifest, crstream was never told. The
# checkpoint must still end up refused, its streams deleted.
test_connection_cut_after_the_final_manifest_put() {
	s3_begin
	relay_start man --method PUT --path '/manifest\.json$' --body '"complete": *true' --when after
	dump_cut man "writing the manifest"
	grep -q "^CUT-AFTER PUT /$B/$P/man/manifest.json 200$" "$T/man.relay" ||
		fail "the final manifest PUT was not cut after the server took it: $(cat "$T/man.relay")"
}

# 2. Damaged checkpoints in the bucket (a flipped byte, a truncated
# stream, a wrong checksum in the manifest) are refused and never run.
test_damaged_s3_checkpoints_are_refused() {
	s3_begin
	local pid
	pid=$(start_subject dm mem --mib 32)
	dump_s3 dm "$pid" --name good --streams 2 --compression lz4
	awscli s3 cp --recursive --only-show-errors "s3://$B/$P/good" "$T/good"
	# damaged NAME: upload the local copy $T/NAME as checkpoint NAME.
	damaged() {
		awscli s3 cp --recursive --only-show-errors "$T/$1" "s3://$B/$P/$1"
	}
	cp -a "$T/good" "$T/flip"
	flip_byte "$T/flip/img-1.lz4" $(($(stat -c %s "$T/flip/img-1.lz4") / 2))
	damaged flip
	expect_refused dm "img-1.lz4" "$CRSTREAM" restore --path "s3://$B/$P/flip"
	cp -a "$T/good" "$T/short"
	truncate -s -1000 "$T/short/img-0.lz4"
	damaged short
	expect_refused dm "(truncated)" "$CRSTREAM" restore --path "s3://$B/$P/short"
	cp -a "$T/good" "$T/sum"
	"$PYTHON" -c 'import json,sys
m = json.load(open(sys.argv[1]))
s = m["stream_files"][0]
s["checksum"] = ("0" if s["checksum"][0] != "0" else "1") + s["checksum"][1:]
json.dump(m, open(sys.argv[1], "w"), indent=2)' "$T/sum/manifest.json"
	damaged sum
	expect_refused dm "checksum mismatch" "$CRSTREAM" restore --path "s3://$B/$P/sum"
	# The check can see a run: the intact checkpoint restores.
	heartbeat_mark dm
	restore_ok dm "s3://$B/$P/good"
	assert_ran dm
	verify_subject dm
}

# 4. An S3 dump keeps at most part size x parts in flight of each stream
# in memory (here 2 streams x 5 MiB x 2 = 20 MiB): crstream alone in a
# cgroup of that + S3_OVERHEAD (the unsanitized build, with the S3
# plugin's libcurl and OpenSSL; the method: test_memory.sh) dumps a
# process whose streams are each bigger than the whole cgroup, without
# being killed. Measured here: 25 MiB charged at the peak (nothing local
# is written, so this is crstream's own memory); S3_OVERHEAD 16 MiB.
S3_OVERHEAD=$((16 * MIB))
test_dump_memory_within_its_part_buffers() {
	s3_begin
	memcg_setup
	local pid counter rc=0 bound=$((2 * 5 * 2 * MIB))
	pid=$(start_subject pb mem --mib 128)
	counter=$(status_get "$T/pb.status" counter)
	memcg_create s3dump $((bound + S3_OVERHEAD))
	CRSTREAM_CRIU=$T/criu-outside CRSTREAM_S3_PART_SIZE=5M CRSTREAM_S3_PARTS_IN_FLIGHT=2 \
		memcg_run "$CRSTREAM_PLAIN" dump "$pid" --dir "s3://$B/$P" --name pb --streams 2 \
		--compression none --json >"$T/pb.json" 2>"$T/pb.err" || rc=$?
	memcg_check "S3 dump" $((bound + S3_OVERHEAD))
	[ "$rc" = 0 ] || fail "dump failed (exit $rc): $(cat "$T/pb.json" "$T/pb.err")"
	wait_gone "$pid"
	local stored
	stored=$(json_get "$T/pb.json" stored_bytes)
	log "stored $((stored / MIB)) MiB in 2 streams"
	[ "$stored" -gt $((2 * (bound + S3_OVERHEAD))) ] || fail "streams too small for the test: $stored bytes"
	restore_ok pb "s3://$B/$P/pb"
	verify_subject pb "$counter"
}

# The store layer's own live tests (tests/unit/test_s3_live.c: multipart
# sizes, aborts, ranged-GET resume through a cutting relay, awscli both
# ways), here where a real server runs; it skips itself without one.
test_store_layer_live_tests() {
	s3_begin
	CRSTREAM_TEST_S3_ENDPOINT=$AWS_ENDPOINT_URL "$ROOT/build-asan/tests/test_s3_live" >&2 ||
		fail "test_s3_live failed"
}

run_tests "$@"
