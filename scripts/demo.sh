#!/bin/bash
# The main job, from a fresh Debian 12 machine: set everything up, start a
# real process holding 256 MiB of known data and a running counter,
# checkpoint it through 4 compressed streams, restore it, and show that it
# continues where it stopped with its memory intact.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if [ "${1:-}" != --inside ]; then
	scripts/setup.sh >&2
	make -s -j2 all subjects >/dev/null
	source build/env.sh
	# Under a subreaper, the dumped process's PID is freed the moment it
	# dies, so the restore can take it back at once.
	exec build/tools/subreaper "$0" --inside
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
CRSTREAM=$ROOT/build/crstream
DEMO=$(mktemp -d /tmp/crstream-demo.XXXXXX)
STATUS=$DEMO/app.status
export CRSTREAM_CONFIG=$DEMO/config.json
echo '{}' >"$CRSTREAM_CONFIG"

say "crstream check"
"$CRSTREAM" check --dir "$DEMO/checkpoints" || true

say "starting a process with 256 MiB of known data and a counter"
setsid build/subjects/subject mem --mib 256 --status "$STATUS" </dev/null >/dev/null 2>&1 &
disown # its death at the dump is expected: no "Killed" notice from bash
build/tools/testtool wait-status "$STATUS" state=ready --timeout 60 >/dev/null
PID=$(sed -n 's/^pid=//p' "$STATUS")
sleep 1
BEFORE=$(sed -n 's/^counter=//p' "$STATUS")
echo "pid $PID is running, counter at $BEFORE"

say "crstream dump $PID --streams 4 --compression lz4"
"$CRSTREAM" dump "$PID" --streams 4 --compression lz4 --dir "$DEMO/checkpoints" --name demo
AT_DUMP=$(sed -n 's/^counter=//p' "$STATUS")
build/tools/testtool wait-gone "$PID" --timeout 30 >/dev/null
echo "pid $PID is gone (counter was at $AT_DUMP)"
ls -l "$DEMO/checkpoints/demo"

say "crstream restore --path $DEMO/checkpoints/demo"
"$CRSTREAM" restore --path "$DEMO/checkpoints/demo"

say "the restored process checks its 256 MiB and keeps counting"
SEQ=$(sed -n 's/^verify_seq=//p' "$STATUS")
kill -USR1 "$PID"
build/tools/testtool wait-status "$STATUS" "verify_seq>$SEQ" --timeout 60 >/dev/null
sleep 1
STATE=$(sed -n 's/^state=//p' "$STATUS")
AFTER=$(sed -n 's/^counter=//p' "$STATUS")
echo "pid $PID: memory $STATE, counter $AT_DUMP at the dump -> $AFTER now"
kill -9 "$PID"
rm -rf "$DEMO"
if [ "$STATE" != verified ] || [ "$AFTER" -le "$AT_DUMP" ]; then
	echo "demo FAILED" >&2
	exit 1
fi
say "done: checkpointed through 4 streams, restored, continued where it stopped"
