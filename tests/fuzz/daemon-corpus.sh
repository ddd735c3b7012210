#!/bin/bash
# Regenerates the seed corpus of fuzz_daemon_request: dump and restore
# requests, as clients send them, encoded by protoc from text format. Each
# seed is one kind byte (0 daemon.DumpReq, 1 daemon.RestoreReq,
# 2 crstream.v1.DumpRequest, 3 crstream.v1.RestoreRequest; see the
# harness) and the message's bytes.
#
#   tests/fuzz/daemon-corpus.sh
#
# Rewrites tests/fuzz/corpus/fuzz_daemon_request/ (the same bytes on every
# run).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/tests/fuzz/corpus/fuzz_daemon_request
rm -rf "$OUT"
mkdir -p "$OUT"
n=0

# seed KIND MESSAGE TEXT: one seed file.
seed() {
	local kind=$1 msg=$2 text=$3 file
	file=$(printf '%s/seed-%02d' "$OUT" "$n")
	n=$((n + 1))
	printf "\\x$(printf %02x "$kind")" >"$file"
	printf '%s\n' "$text" | protoc -I"$ROOT/proto/rpc" --encode="$msg" daemon.proto crstream_v1.proto \
		>>"$file"
}

seed 0 daemon.DumpReq 'details { process { pid: 4242 } } dir: "/var/lib/crstream/checkpoints" name: "ckpt-1" compression: "lz4" streams: 4'
seed 0 daemon.DumpReq 'type: "job" details { jid: "j1" } dir: "s3://bucket/prefix" compression: "zstd" streams: 2 criu { leave_running: true tcp_established: true external: "unix[1]" external: "mnt[/data]:data" }'
seed 0 daemon.DumpReq 'details { process { pid: 1 } } name: "../x" streams: 65 action: 1'
seed 1 daemon.RestoreReq 'path: "/var/lib/crstream/checkpoints/ckpt-1" pid_file: "/run/restored.pid" criu { tcp_close: true file_locks: true ext_unix_sk: true shell_job: true }'
seed 1 daemon.RestoreReq 'type: "job" details { jid: "j1" } uid: 1000 env: "A=B" attachable: true'
seed 2 crstream.v1.DumpRequest 'pid: 4242 dir: "gs://bucket/x" name: "n" compression: "gzip" level: 6 streams: 8 leave_running: true external: "unix[7]" shell_job: true'
seed 2 crstream.v1.DumpRequest 'jid: "j2" plain: true streams: 3 level: 99 compression: "brotli"'
seed 3 crstream.v1.RestoreRequest 'checkpoint_id: "0123456789abcdef" pid_file: "relative/pid" tcp_established: true external: ""'
seed 3 crstream.v1.RestoreRequest 'path: "/ck/../etc" jid: "j1" file_locks: true'
echo "daemon-corpus: $n seeds in $OUT" >&2
