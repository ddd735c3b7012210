#!/bin/bash
# Regenerates the seed corpora under tests/fuzz/corpus/ from real
# checkpoints: the test subjects are checkpointed with the real CRIU through
# crstream (every codec, 0-4 streams), and tests/fuzz/corpus.py cuts the
# results down to small seeds (with the third-party shards of
# tests/fixtures). The S3 seeds come from a real Swift: see
# tests/fuzz/s3-corpus.sh. The config seeds are written by hand.
#
#   tests/fuzz/make-corpus.sh      (root; after scripts/setup.sh)
#
# Rewrites the seed directories it owns (corpus.py OWNED), not the S3 and
# config ones; review `git status tests/fuzz/corpus` before committing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
[ "$(id -u)" = 0 ] || { echo "make-corpus.sh: CRIU needs root" >&2; exit 1; }
[ -n "${CRSTREAM_CRIU:-}" ] || source build/env.sh
FIXTURES=$ROOT/tests/fixtures
make -s -j2 all subjects >/dev/null

CRSTREAM_BIN=$ROOT/build/crstream
source tests/lib/harness.sh
T=$(mktemp -d /tmp/crstream-corpus.XXXXXX)
mem=""
files=""
tree=""
cleanup() {
	local pid
	kill_subjects
	for pid in $mem $files $tree; do
		wait_gone "$pid" || true
	done
	rm -rf "$T"
}
trap cleanup EXIT
export CRSTREAM_CONFIG=$T/config.json
echo '{}' >"$T/config.json"

# dump PID NAME ARGS...: a checkpoint into $T/ck/NAME, the process left running.
dump() {
	local pid=$1 name=$2
	shift 2
	"$CRSTREAM" dump "$pid" --dir "$T/ck" --name "$name" --leave-running "$@" >/dev/null
}

# A small process (1 MiB of patterned memory), one with an open file and a
# listening TCP socket (for files.img and its port remapping), and a tree
# of 13 processes (a manifest of about a hundred image files).
mem=$(start_subject mem mem --mib 1)
port=$((20000 + RANDOM % 20000))
echo data >"$T/data"
files=$(start_subject files files --data "$T/data" --port "$port")
tree=$(start_subject tree tree --children 12)

dump "$mem" plain-mem --streams 0
dump "$files" plain-files --streams 0
dump "$files" files-none-2 --streams 2 --compression none
dump "$mem" mem-none-1 --streams 1 --compression none
dump "$mem" mem-none-3 --streams 3 --compression none
dump "$tree" plain-tree --streams 0
for codec in lz4 zstd gzip zlib; do
	dump "$mem" "mem-$codec-2" --streams 2 --compression "$codec"
done
rm -f "$T"/ck/*/criu-dump.log

CORPUS_LISTEN_PORT=$port /usr/bin/python3 tests/fuzz/corpus.py "$T/ck" "$FIXTURES" tests/fuzz/corpus
du -sh tests/fuzz/corpus >&2
