#!/bin/bash
# Source-based coverage of each harness's parser over its corpus: the
# seeds, the regression inputs and whatever earlier fuzzing runs found
# (build-fuzz/corpus/HARNESS/). Run tests/fuzz/run.sh first for the latter.
#
#   tests/fuzz/coverage.sh [HARNESS...]     (tests/fuzz/run.sh --coverage does the same)
#
# Builds the coverage variant (make FUZZ=cov fuzz, in build-fuzzcov/),
# replays each corpus once (-runs=0) and prints llvm-cov's per-function
# report for the functions the harness is there to reach; the annotated
# source of the uncovered parts goes to build-fuzzcov/report/HARNESS.txt.
# Needs llvm-14 (llvm-profdata, llvm-cov): installed if missing (root).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=build-fuzzcov

log() { echo "coverage: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck disable=SC2034 # read by lib/packages.sh
LOG_PREFIX=coverage
source scripts/lib/packages.sh
# llvm-14: llvm-profdata and llvm-cov, matching Debian 12's clang 14.
ensure_packages llvm-14
PROFDATA=/usr/bin/llvm-profdata-14
COV=/usr/bin/llvm-cov-14

# The source files (and functions, as a regex; empty: all) each harness is
# there to reach.
targets() {
	case $1 in
	fuzz_marker) echo "src/shard/marker.c marker_decode" ;;
	fuzz_shard_reader) echo "src/shard/shard_reader.c ." ;;
	fuzz_codec_none) echo "src/codec/codec_none.c none_read" ;;
	fuzz_codec_lz4) echo "src/codec/codec_filter.c src/codec/codec_lz4.c decoder|lz4_step" ;;
	fuzz_codec_zstd) echo "src/codec/codec_filter.c src/codec/codec_zstd.c decoder|zstd_step" ;;
	fuzz_codec_gzip | fuzz_codec_zlib)
		echo "src/codec/codec_filter.c src/codec/codec_igzip.c decoder|igzip_(inflate|step|next_frame|feed_carry|leftover|error|start_member)|header" ;;
	fuzz_manifest) echo "src/checkpoint/manifest.c parse|field|get_u64|opt_str|copy_opt|is_checksum|add_file" ;;
	fuzz_layout) echo "src/checkpoint/layout.c ." ;;
	fuzz_criu_request) echo "src/criu/criu_socket.c read_request|read_exact|recv_pipe|close_passed" ;;
	fuzz_files_patch) echo "src/criu/files_patch.c ." ;;
	fuzz_s3_xml) echo "src/store/s3_str.c xml_|tag_is|decode_ref|add_utf8" ;;
	fuzz_s3_header) echo "src/store/s3_http.c s3_resp_header" ;;
	fuzz_config) echo "src/cli/config.c src/cli/streamer_cli.c load|validate|assign|json_scalar|valid_integer|set_flag|parse_size" ;;
	fuzz_age) echo "src/crypt/age_header.c src/crypt/age_stream.c next_line|parse|open_x25519|age_header_open|ar_fill|ar_next_chunk|ar_read|ar_open_header|age_reader" ;;
	fuzz_signature) echo "src/crypt/sshsig.c src/crypt/digest.c dearmor|parse_signature|parse_public_blob|get_|expect_string|signed_data|sshsig_verify|digests_parse|hex_value" ;;
	*) echo "" ;;
	esac
}

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in tests/fuzz/fuzz_*.c; do
		f=$(basename "$f" .c)
		[ "$f" = fuzz_codec ] || names+=("$f")
	done
	names+=(fuzz_codec_none fuzz_codec_lz4 fuzz_codec_zstd fuzz_codec_gzip fuzz_codec_zlib)
fi

log "building the coverage variant (make FUZZ=cov fuzz)"
make -s -j2 FUZZ=cov fuzz >/dev/null || die "build failed"
mkdir -p "$OUT/report" "$OUT/profiles"

for name in "${names[@]}"; do
	read -r -a t <<<"$(targets "$name")"
	[ ${#t[@]} -ge 2 ] || die "no coverage targets for $name"
	funcs=${t[-1]}
	files=("${t[@]:0:${#t[@]}-1}")
	dirs=()
	for d in tests/fuzz/corpus/$name tests/fuzz/regressions/$name build-fuzz/corpus/$name; do
		[ -d "$d" ] && dirs+=("$d")
	done
	rm -f "$OUT/profiles/$name".*
	LLVM_PROFILE_FILE=$OUT/profiles/$name.%p.profraw "$OUT/fuzz/$name" -runs=0 \
		-artifact_prefix="$OUT/report/$name-" "${dirs[@]}" >"$OUT/report/$name.run.log" 2>&1 ||
		die "$name failed replaying its corpus (see $OUT/report/$name.run.log)"
	"$PROFDATA" merge -sparse -o "$OUT/profiles/$name.profdata" "$OUT/profiles/$name".*.profraw
	echo "== $name ($(find "${dirs[@]}" -type f | wc -l) inputs)"
	"$COV" report -show-functions -instr-profile "$OUT/profiles/$name.profdata" \
		"$OUT/fuzz/$name" "${files[@]}" |
		awk -v re="$funcs" 'NR <= 2 || $1 ~ re || /^TOTAL|^-/' |
		sed 's/^/  /'
	"$COV" show -show-line-counts-or-regions -instr-profile "$OUT/profiles/$name.profdata" \
		"$OUT/fuzz/$name" "${files[@]}" >"$OUT/report/$name.txt"
done
