#!/bin/bash
# Regenerates the S3 seed corpora (tests/fuzz/corpus/fuzz_s3_header/ and
# fuzz_s3_xml/) from a real server: crstream dumps a small process into a
# real OpenStack Swift (scripts/s3-server.sh), lists, inspects, restores
# and removes it, probes the location, and tries a wrong secret, all
# through tests/fuzz/s3_recorder.py, which keeps every answer's head and XML
# body. Error documents come from the same server.
#
#   CRSTREAM_SWIFT_PORT=P CRSTREAM_SWIFT_DIR=D tests/fuzz/s3-corpus.sh   (root)
#
# Starts Swift (and stops it again if it was not running). Rewrites the
# recorded seeds; review `git status tests/fuzz/corpus` before committing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
[ "$(id -u)" = 0 ] || { echo "s3-corpus.sh: CRIU needs root" >&2; exit 1; }
[ -n "${CRSTREAM_CRIU:-}" ] || source build/env.sh
make -s -j2 all subjects >/dev/null

SWIFT=$ROOT/scripts/s3-server.sh
was_running=0
"$SWIFT" status && was_running=1
eval "$("$SWIFT" start)"
PROXY_PORT=$((${CRSTREAM_SWIFT_PORT:-18080} + 7))
upstream=${AWS_ENDPOINT_URL##*:}

CRSTREAM_BIN=$ROOT/build/crstream
source tests/lib/harness.sh
T=$(mktemp -d /tmp/crstream-s3corpus.XXXXXX)
recorder=""
mem=""
cleanup() {
	kill_subjects
	[ -z "$mem" ] || wait_gone "$mem" || true
	[ -z "$recorder" ] || kill "$recorder"
	[ "$was_running" = 1 ] || "$SWIFT" stop
	rm -rf "$T"
}
trap cleanup EXIT
export CRSTREAM_CONFIG=$T/config.json
echo '{}' >"$T/config.json"

/usr/bin/python3 tests/fuzz/s3_recorder.py "$PROXY_PORT" "$upstream" "$T/seeds" &
recorder=$!
for _ in $(seq 100); do
	curl -s -o /dev/null "http://127.0.0.1:$PROXY_PORT/" && break
	sleep 0.1
done
export AWS_ENDPOINT_URL=http://127.0.0.1:$PROXY_PORT
loc=s3://$CRSTREAM_TEST_S3_BUCKET/fuzz-corpus-$$

mem=$(start_subject mem mem --mib 1)
"$CRSTREAM" dump "$mem" --dir "$loc" --name ck --streams 2 --compression lz4 >/dev/null
wait_gone "$mem"
"$CRSTREAM" ls "$loc" >/dev/null
"$CRSTREAM" inspect "$loc/ck" >/dev/null
"$CRSTREAM" restore --path "$loc/ck" --pid-file "$T/pid" >/dev/null
kill -9 "$(cat "$T/pid")"
"$CRSTREAM" check --dir "$loc" >/dev/null 2>&1 || true
"$CRSTREAM" rm "$loc/ck" >/dev/null
# A stream of three parts: initiate, parts, complete multipart upload.
mem=$(start_subject big mem --mib 12)
CRSTREAM_S3_PART_SIZE=5M "$CRSTREAM" dump "$mem" --dir "$loc" --name big --streams 1 \
	--compression none >/dev/null
wait_gone "$mem"
"$CRSTREAM" rm "$loc/big" >/dev/null
# An upload left open, as a dump killed mid-way leaves it: listed, aborted.
aws() { /usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }
key=${loc#s3://*/}/left/img-0
id=$(aws s3api create-multipart-upload --bucket "$CRSTREAM_TEST_S3_BUCKET" --key "$key" \
	--query UploadId --output text)
aws s3api list-multipart-uploads --bucket "$CRSTREAM_TEST_S3_BUCKET" --prefix "$key" >/dev/null
aws s3api abort-multipart-upload --bucket "$CRSTREAM_TEST_S3_BUCKET" --key "$key" \
	--upload-id "$id"
AWS_SECRET_ACCESS_KEY=wrong "$CRSTREAM" ls "$loc" >/dev/null 2>&1 || true
"$CRSTREAM" inspect "$loc/missing" >/dev/null 2>&1 || true

rm -rf tests/fuzz/corpus/fuzz_s3_header tests/fuzz/corpus/fuzz_s3_xml
cp -r "$T/seeds/fuzz_s3_header" "$T/seeds/fuzz_s3_xml" tests/fuzz/corpus/
echo "s3-corpus: $(find tests/fuzz/corpus/fuzz_s3_header tests/fuzz/corpus/fuzz_s3_xml -type f | wc -l) seeds" >&2
