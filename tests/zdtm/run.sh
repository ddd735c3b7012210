#!/usr/bin/env bash
# run.sh - CRIU's own test suite (zdtm) against crstream as criu-image-streamer.
#
# Usage: tests/zdtm/run.sh [--stream] [--asan] [ZDTM-RUN-ARGS...]     (as root)
#
#   --stream  run zdtm with --stream, crstream serving as criu-image-streamer
#             (without it: plain CRIU, the baseline to compare with)
#   --asan    use the ASan+UBSan build (build-asan/) instead of build/
#   ZDTM-RUN-ARGS
#             passed to `zdtm.py run`; default `-a` (every test). `-f uns`
#             is added unless a flavour is given (only uns works without
#             CAP_SYS_RESOURCE), and always `--keep-going --report DIR`.
#             E.g. `tests/zdtm/run.sh --stream -t zdtm/static/maps09 -k always`.
#
# Not part of scripts/test.sh: a full run takes about an hour on 2 busy cores. Steps:
#   1. install what zdtm needs (Debian packages, below);
#   2. get the pinned CRIU's source tree, sha256-verified, from
#      scripts/provision-criu.sh --source into the cache dir (outside the
#      repo) and build CRIU, its libraries and the zdtm tests there
#      (incremental after the first run);
#   3. build crstream (make, or make SANITIZE=1);
#   4. run zdtm.py from the CRIU tree with Debian's python3. A lock on the
#      cache dir serialises runs (they share the CRIU tree's test dirs).
#
# Output: zdtm's own output; at the end a summary: the counts of passed,
# failed and skipped tests and the failed tests' names, also written to
# $CACHE/runs/<time>-<mode>/summary.txt next to zdtm's TAP report
# (criu-testreport.tap, with each failure's output). Images of failed tests
# stay in $CACHE/criu-<version>/test/dump/ (img-streamer.log is the
# streamer's stderr).
#
# Environment
#   CRSTREAM_ZDTM_CACHE  cache dir; default ${CRSTREAM_CACHE_DIR:-/var/cache/crstream}/zdtm
#
# Exit: zdtm's status (0 when every test ran passed or was skipped), 2 on
# misuse.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
CACHE=${CRSTREAM_ZDTM_CACHE:-${CRSTREAM_CACHE_DIR:-/var/cache/crstream}/zdtm}

log() { printf 'zdtm: %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}
usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0" >&2; }

# What zdtm needs beyond CRIU's build dependencies (which provision-criu.sh
# installs): Debian's YAML and protobuf modules for zdtm.py and pycriu;
# libnl-route for the netns_sub_veth test; iptables and nftables, which
# CRIU runs to lock the network and the netns-nf/socket-tcp* tests use.
ZDTM_PACKAGES=(python3-yaml python3-protobuf libnl-route-3-dev iptables nftables)

stream=false
build_dir=build
args=()
while (($#)); do
	case $1 in
	--stream) stream=true ;;
	--asan) build_dir=build-asan ;;
	-h | --help)
		usage
		exit 0
		;;
	*) args+=("$1") ;;
	esac
	shift
done
((EUID == 0)) || {
	log "must be run as root (CRIU dumps and restores the tests' processes)"
	exit 2
}

# Defaults for what the caller did not choose: every test, the uns flavour.
has_arg() {
	local a want
	for a in "${args[@]}"; do
		for want in "$@"; do [[ $a == "$want" ]] && return 0; done
	done
	return 1
}
has_arg -t --test -T --tests -a --all --from || args=(-a "${args[@]}")
has_arg -f --flavor || args+=(-f uns)

# ---- 1. packages, 2. CRIU's tree and tests ------------------------------------------
# shellcheck disable=SC2034 # read by lib/packages.sh
LOG_PREFIX=zdtm
# shellcheck source=../../scripts/lib/packages.sh
source "$ROOT/scripts/lib/packages.sh"
ensure_packages "${ZDTM_PACKAGES[@]}"

mkdir -p "$CACHE"
exec {lock_fd}>>"$CACHE/run.lock"
if ! flock -n "$lock_fd"; then
	log "another zdtm run holds $CACHE/run.lock; waiting for it"
	flock "$lock_fd"
fi

src=$("$ROOT/scripts/provision-criu.sh" --source "$CACHE") || die "could not get CRIU's source (see above)"
jobs=$(nproc 2>/dev/null || echo 2)
log "building CRIU and the zdtm tests in $src (make lib, make -C test/zdtm)"
buildlog=$CACHE/build.log
if ! { make -C "$src" -j"$jobs" lib && make -C "$src/test/zdtm" -j"$jobs"; } >"$buildlog" 2>&1; then
	tail -n 30 "$buildlog" | sed 's/^/zdtm:   | /' >&2
	die "building CRIU's tests failed; full log: $buildlog"
fi

# ---- 3. crstream ---------------------------------------------------------------
log "building crstream ($build_dir/)"
make_args=(-C "$ROOT" -j"$jobs" all)
[[ $build_dir == build ]] || make_args+=(SANITIZE=1)
make "${make_args[@]}" >"$CACHE/crstream-build.log" 2>&1 ||
	die "building crstream failed; log: $CACHE/crstream-build.log"

# ---- 4. the run -----------------------------------------------------------------
mode=plain
$stream && mode=stream
# What is tested, taken now: the tree may move on during an hour-long run.
commit=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')
run_dir=$CACHE/runs/$(date -u +%Y%m%dT%H%M%SZ)-$mode
mkdir -p "$run_dir"
zdtm_args=(run "${args[@]}" --keep-going --report "$run_dir")
if $stream; then
	# zdtm.py looks for criu-image-streamer in a directory of its own.
	mkdir "$run_dir/streamer"
	ln -s "$ROOT/$build_dir/criu-image-streamer" "$run_dir/streamer/criu-image-streamer"
	zdtm_args+=(--stream --criu-image-streamer-dir "$run_dir/streamer")
fi
log "running: zdtm.py ${zdtm_args[*]} (in $src/test)"
rc=0
(cd "$src/test" && PATH=/usr/sbin:/usr/bin:/sbin:/bin /usr/bin/python3 zdtm.py "${zdtm_args[@]}") || rc=$?

# The summary, from the TAP report ("ok N - name", "ok N - name # SKIP why",
# "not ok N - name # flavor F").
tap=$run_dir/criu-testreport.tap
if [[ -f $tap ]]; then
	{
		printf 'mode: %s, crstream %s (%s), zdtm.py %s\n' "$mode" "$commit" "$build_dir" "${zdtm_args[*]}"
		printf 'passed: %d\n' "$(grep -Ec '^ok [0-9]+ - [^#]*$' "$tap")"
		printf 'failed: %d\n' "$(grep -Ec '^not ok ' "$tap")"
		printf 'skipped: %d\n' "$(grep -Ec '^ok [0-9]+ - .*# SKIP' "$tap")"
		sed -n 's/^not ok [0-9]* - \([^ ]*\).*/  failed: \1/p' "$tap"
	} | tee "$run_dir/summary.txt" >&2
else
	log "no TAP report in $run_dir (zdtm exited $rc before writing one)"
fi
exit "$rc"
