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
[ "$(id -u)" = 0 ] || { echo "bench/run.sh: CRIU needs root; run it as root" >&2; exit 1; }

echo "== setup (packages, CRIU)" >&2
EXTRA_PACKAGES="gnuplot-nox ${EXTRA_PACKAGES:-}" scripts/setup.sh >/dev/null
# shellcheck source=/dev/null
source build/env.sh
export CRSTREAM_CRIU

echo "== build (unsanitized build/crstream, subjects, tools)" >&2
make -s -j2 build/crstream build/crstream-crypt.so subjects >/dev/null

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
