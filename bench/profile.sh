#!/bin/bash
# bench/profile.sh — one dump + restore of a mem subject under a
# system-wide `perf record` (cpu-clock sampling: this VM has no hardware
# counters), to see where the time goes: per process (crstream, criu, the
# frozen subject, kernel threads) and per symbol. Run bench/run.sh once
# first (it installs and builds everything); run as root.
#
#   bench/profile.sh [--mib S] [--streams N] [--compression C] [--dir DIR] [--baseline]
#
# --baseline profiles plain `criu dump`/`criu restore` (baseline A) instead.
# Output: a text summary on stdout; perf.data files in $OUT (default
# /tmp/crstream-profile). Nothing here changes or asserts anything.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MIB=1024 STREAMS=2 CODEC=lz4 DIR=/dev/shm/crstream-profile BASELINE=0
OUT=${OUT:-/tmp/crstream-profile}
while [ $# -gt 0 ]; do
	case $1 in
	--mib) MIB=$2; shift 2 ;;
	--streams) STREAMS=$2; shift 2 ;;
	--compression) CODEC=$2; shift 2 ;;
	--dir) DIR=$2; shift 2 ;;
	--baseline) BASELINE=1; shift ;;
	*) sed -n '2,14p' "$0"; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "profile.sh: needs root" >&2; exit 1; }
if [ -z "${CRSTREAM_CRIU:-}" ]; then source "$ROOT/build/env.sh"; fi
export CRSTREAM_CRIU
command -v perf >/dev/null || { echo "profile.sh: perf is not installed (Debian: linux-perf)" >&2; exit 1; }

if [ "${PROFILE_INNER:-}" != 1 ]; then
	PROFILE_INNER=1 exec "$ROOT/build/tools/subreaper" "$0" --mib "$MIB" --streams "$STREAMS" \
		--compression "$CODEC" --dir "$DIR" $([ $BASELINE = 1 ] && echo --baseline)
fi

rm -rf "$OUT" "$DIR"
mkdir -p "$OUT" "$DIR"
echo '{}' >"$OUT/config.json"
export CRSTREAM_CONFIG=$OUT/config.json
status=$OUT/subject.status
(cd "$OUT" && setsid -f "$ROOT/build/subjects/subject" mem --mib "$MIB" --status "$status" </dev/null >/dev/null 2>&1)
"$ROOT/build/tools/testtool" wait-status "$status" state=ready --timeout 300 >/dev/null
pid=$(sed -n 's/^pid=//p' "$status")

rec() {	# rec NAME CMD...: system-wide samples while CMD runs
	local name=$1
	shift
	perf record -q -a -g -F 999 -e cpu-clock -o "$OUT/$name.data" -- "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
}
if [ $BASELINE = 1 ]; then
	what="baseline A (criu -> $DIR)"
	rec dump "$CRSTREAM_CRIU" dump -D "$DIR" -t "$pid" -o "$OUT/criu-dump.log" -v4
	"$ROOT/build/tools/testtool" wait-gone "$pid" --timeout 60
	rec restore "$CRSTREAM_CRIU" restore -D "$DIR" -d -o "$OUT/criu-restore.log" -v4
else
	what="crstream $CODEC x$STREAMS -> $DIR"
	rec dump "$ROOT/build/crstream" dump "$pid" --dir "$DIR" --name ck --streams "$STREAMS" \
		--compression "$CODEC" --json --no-progress
	"$ROOT/build/tools/testtool" wait-gone "$pid" --timeout 60
	rec restore "$ROOT/build/crstream" restore --path "$DIR/ck" --json
fi
kill -USR1 "$pid"
"$ROOT/build/tools/testtool" wait-status "$status" 'verify_seq>0' --timeout 300 >/dev/null
grep -q '^state=verified' "$status" || { echo "profile.sh: VERIFICATION FAILED: $(grep ^detail= "$status")" >&2; exit 1; }
kill -9 "$pid"

echo "# $what, mem $MIB MiB (restore verified)"
ours=crstream,criu,subject,action-script
for phase in dump restore; do
	echo
	echo "## $phase: $(cat "$OUT/$phase.out")"
	echo
	echo "### samples by process, all CPUs (other jobs on this shared machine included)"
	perf report -i "$OUT/$phase.data" --no-children --sort comm --stdio -g none 2>/dev/null |
		grep -v '^#' | grep -v '^$' | head -12 || true
	echo
	echo "### top symbols of $ours (share of all samples)"
	perf report -i "$OUT/$phase.data" --comms "$ours" --no-children --sort comm,dso,sym --stdio -g none 2>/dev/null |
		grep -v '^#' | grep -v '^$' | head -40 || true
done
rm -rf "$DIR"
