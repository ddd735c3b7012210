#!/bin/bash
# bench/run.sh — the end-to-end benchmark: plain CRIU (baselines A and B)
# against crstream's streaming dump/restore, on the same subjects in the
# same run. One command, as root, on a machine set up or not:
#
#   bench/run.sh                    # full run (~15 min on 2 cores): 1 GiB mem
#                                   # subject (A, B, crstream 1/2/4 streams x
#                                   # none/lz4/zstd/gzip x tmpfs/disk), threads
#                                   # subject, 256 MiB and 4 GiB scaling rows
#   bench/run.sh --quick            # fewer rows (~5 min)
#   bench/run.sh --update-results   # also rewrite bench/RESULTS.md + charts
#   bench/run.sh --against REV      # also every main crstream row built from git
#                                   # revision REV, interleaved (regression check)
#   bench/run.sh --help             # every option (--mib, --repeat, --rows, ...)
#
# It installs what is missing (scripts/setup.sh with gnuplot-nox for the
# charts; a pinned CRIU), builds the unsanitized build/crstream, the subjects
# and the test tools, mounts a fresh tmpfs for the tmpfs rows (unmounted at
# the end) and runs bench/bench.py under build/tools/subreaper. Results: a
# Markdown report on stdout (progress on stderr), raw and summary CSV/JSON in
# bench/results/<date>-mem<S>/. Exit status 1 if anything failed, including
# a restored subject that does not verify. It measures and reports; it
# asserts nothing about speed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

for arg in "$@"; do
	case $arg in -h | --help) exec python3 bench/bench.py --help ;; esac
done
# --against REV: build crstream at git revision REV (in a worktree under
# /var/tmp, outside this tree) and run every main-subject crstream row with
# it too, interleaved (bench.py --against-bin): "is this tree slower than
# REV", answered in one run on one machine.
args=() against=
while (($#)); do
	case $1 in
	--against)
		[ $# -ge 2 ] || { echo "bench/run.sh: --against needs a git revision" >&2; exit 2; }
		against=$2
		shift 2
		;;
	--against=*) against=${1#--against=}; shift ;;
	*) args+=("$1"); shift ;;
	esac
done
set -- ${args[@]+"${args[@]}"}
[ "$(id -u)" = 0 ] || { echo "bench/run.sh: CRIU needs root; run it as root" >&2; exit 1; }

echo "== setup (packages, CRIU)" >&2
EXTRA_PACKAGES="gnuplot-nox ${EXTRA_PACKAGES:-}" scripts/setup.sh >/dev/null
# shellcheck source=/dev/null
source build/env.sh
export CRSTREAM_CRIU

echo "== build (unsanitized build/crstream, subjects, tools)" >&2
make -s -j2 build/crstream build/crstream-crypt.so subjects >/dev/null
if [ -n "$against" ]; then
	rev=$(git rev-parse --short=12 --verify "$against^{commit}") ||
		{ echo "bench/run.sh: --against $against: not a git revision" >&2; exit 2; }
	wt=/var/tmp/crstream-bench-against/$rev
	if [ ! -x "$wt/build/crstream" ]; then
		echo "== build crstream at $rev (in $wt)" >&2
		rm -rf "$wt"
		git worktree prune
		git worktree add --detach -f "$wt" "$rev" >/dev/null
		make -s -C "$wt" -j2 build/crstream >/dev/null
	fi
	set -- "$@" --against-bin "$wt/build/crstream" --against-name "$rev"
fi

# A fresh tmpfs for the tmpfs rows: size-limited only, pages are used as
# they are written.
TMPFS=$(mktemp -d /tmp/crstream-bench-tmpfs.XXXXXX)
mem_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)
mount -t tmpfs -o size=$((mem_kb * 8 / 10))k,mode=0700 crstream-bench "$TMPFS"
cleanup() {
	umount "$TMPFS" 2>/dev/null || umount -l "$TMPFS" 2>/dev/null || true
	rmdir "$TMPFS" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rc=0
build/tools/subreaper python3 bench/bench.py --tmpfs "$TMPFS" "$@" || rc=$?
exit "$rc"
