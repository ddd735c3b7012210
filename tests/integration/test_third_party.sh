#!/bin/bash
# Real third-party bytes: shards written by the upstream Rust
# criu-image-streamer 1.0.0 and by Cedana's fork (tests/fixtures/*/README.md
# say how they were made), read by crstream. The expected image files are
# the SHA-256 sums of what each program's own `extract` wrote. The images
# describe processes of another machine, so they are extracted, not
# restored. (Cedana's split layout goes through the restore path's reader
# in tests/unit/test_fixtures.c: `crstream extract`, like upstream's, reads
# only the reference layout.)
source "$(dirname "$0")/../lib/harness.sh"

FIXTURES=${CRSTREAM_TEST_FIXTURES:-$ROOT/tests/fixtures}
UPSTREAM=$FIXTURES/criu-image-streamer-1.0.0

# The shard files are the ones the fixture's README lists (byte for byte).
fixture_ok() {
	[ -d "$UPSTREAM" ] || skip "no fixtures at $UPSTREAM"
	local want
	want=$(sed -n 's/^| `\(img-[0-9]\)` | \([0-9]*\) | \([0-9a-f]\{64\}\) |$/\3  \1/p' \
		"$FIXTURES/cedana-image-streamer/README.md")
	[ "$(wc -l <<<"$want")" = 2 ] || fail "cannot read the shard table of the Cedana README"
	(cd "$FIXTURES/cedana-image-streamer" && sha256sum --quiet -c <<<"$want") ||
		fail "the Cedana shards are not the ones its README lists"
}

# same_files DIR SUMS: DIR holds exactly the files SHA256SUMS lists, with
# those contents.
same_files() {
	local dir=$1 sums=$2
	(cd "$dir" && sha256sum --quiet -c "$sums") || { fail "$dir: contents differ from $sums"; return 1; }
	diff <(awk '{print $2}' "$sums" | sort) <(ls -A "$dir" | sort) >&2 ||
		{ fail "$dir: not exactly the files of $sums"; return 1; }
}

extract() {	# extract DIR SHARD0 SHARD1: crstream extract of two shards
	"$CRSTREAM" extract -D "$1" -s 10,11 10<"$2" 11<"$3" 2>"$T/extract.err" ||
		{ fail "extract: $(cat "$T/extract.err")"; return 1; }
}

test_upstream_shards_extract_to_upstreams_files() {
	fixture_ok
	extract "$T/x" "$UPSTREAM/img-0" "$UPSTREAM/img-1"
	same_files "$T/x" "$UPSTREAM/SHA256SUMS"
	# The statistics line names both shards with their sizes.
	grep -q "^{\"shards\":\[{\"size\":$(stat -c %s "$UPSTREAM/img-0")," "$T/extract.err" ||
		fail "statistics: $(cat "$T/extract.err")"
}

# The .lz4 pair, as users of that streamer store shards: `lz4 -d` gives
# the raw shards, and a directory of img-N.lz4 is that streamer's layout
# (2 streams, lz4) for crstream.
test_upstream_lz4_directory_is_detected_and_decodes_to_the_shards() {
	fixture_ok
	local i
	mkdir "$T/ck"
	for i in 0 1; do
		cp "$UPSTREAM/img-$i.lz4" "$T/ck/"
		lz4 -q -dc "$UPSTREAM/img-$i.lz4" >"$T/raw-$i"
		cmp "$T/raw-$i" "$UPSTREAM/img-$i" || fail "img-$i.lz4 does not decode to img-$i"
	done
	"$CRSTREAM" inspect "$T/ck" >"$T/inspect"
	grep -q '^status: *no manifest; criu-image-streamer layout$' "$T/inspect" ||
		fail "not detected as criu-image-streamer's layout: $(cat "$T/inspect")"
	grep -q '^streams: *2 (lz4)$' "$T/inspect" || fail "not 2 lz4 streams: $(cat "$T/inspect")"
	extract "$T/x" "$T/raw-0" "$T/raw-1"
	same_files "$T/x" "$UPSTREAM/SHA256SUMS"
}

# A flipped byte in a marker and a truncated shard: refused, naming the
# shard and the offset, with nothing half-written passed off as an image.
test_upstream_damaged_shards_are_refused_naming_shard_and_offset() {
	fixture_ok
	cp "$UPSTREAM/img-0" "$T/s0"
	cp "$UPSTREAM/img-1" "$T/s1"
	# img-0's third record (offset 96) is a 6-byte marker: its tag byte
	# (offset 100) turned into an invalid one.
	printf '\xff' | dd of="$T/s0" bs=1 seek=100 conv=notrunc status=none
	expect_fail "shard 0: offset 96: malformed marker" \
		"$CRSTREAM" extract -D "$T/x1" -s 10,11 10<"$T/s0" 11<"$T/s1"
	[ "$(wc -l <<<"$LAST_ERROR")" = 1 ] || fail "more than one line: $LAST_ERROR"
	# Truncated inside a page payload.
	head -c 300000 "$UPSTREAM/img-1" >"$T/short"
	expect_fail "shard 1: offset 262220: truncated" \
		"$CRSTREAM" extract -D "$T/x2" -s 10,11 10<"$UPSTREAM/img-0" 11<"$T/short"
	# Truncated at a record boundary: the image never ends.
	head -c 96 "$UPSTREAM/img-0" >"$T/short0"
	expect_fail "image incomplete" \
		"$CRSTREAM" extract -D "$T/x3" -s 10,11 10<"$T/short0" 11<"$UPSTREAM/img-1"
}

# Cedana's shards are not the reference layout: `crstream extract` says
# so instead of writing a wrong image (upstream's extract exits 0 with
# pages-1.img missing, says the fixture's README).
test_cedana_shards_are_not_taken_for_the_reference_layout() {
	fixture_ok
	local c=$FIXTURES/cedana-image-streamer
	expect_fail "shard 1: offset 0: marker seq 0 appears twice" \
		"$CRSTREAM" extract -D "$T/x" -s 10,11 10<"$c/img-0" 11<"$c/img-1"
}

run_tests "$@"
