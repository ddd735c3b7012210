#!/bin/bash
# The progress line tells the truth: on a terminal, a dump shows its phase
# and, while the streams are compressed and stored (the long part, with the
# tree frozen), the stored bytes advancing against the image size; a
# restore shows the bytes fetched against the total.
source "$(dirname "$0")/../lib/harness.sh"

# on_pty LOG CMD...: run CMD with stderr on a pseudo-terminal (script(1)),
# everything it drew kept in LOG.
on_pty() {
	local log=$1
	shift
	script -qfec "$(printf '%q ' "$@")" "$log" >/dev/null
}

# progress_lines LOG PHASE: every redraw of the line in PHASE, one a line.
progress_lines() {
	tr '\r' '\n' <"$1" | sed 's/\x1b\[K//g' | grep -a ": $2 " || true
}

# bytes_of "12.5 MiB": the figure in bytes (format_bytes' units).
bytes_of() {
	/usr/bin/python3 -c '
import sys
n, u = sys.argv[1].split()
print(int(float(n) * {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[u]))' "$1"
}

# A slow seal (zstd at a high level, one stream) keeps the tree frozen
# for seconds while the parked pages are compressed and stored: the line
# must move during that time, not sit at the captured size.
test_dump_line_shows_stored_bytes_advancing() {
	local pid counter
	pid=$(start_subject p mem --mib 24)
	counter=$(status_get "$T/p.status" counter)
	on_pty "$T/dump.tty" "$CRSTREAM" dump "$pid" --dir "$T/ck" --name p --streams 1 \
		--compression zstd --level 15
	wait_gone "$pid"
	progress_lines "$T/dump.tty" capturing | grep -q 'from CRIU, 1 stream' ||
		fail "no capturing line: $(tr '\r' '\n' <"$T/dump.tty" | tail -n 5)"
	local storing
	storing=$(progress_lines "$T/dump.tty" storing)
	log "$(wc -l <<<"$storing") storing redraws; last: $(tail -n1 <<<"$storing")"
	# "storing 12.0 MiB of 48.1 MiB (24%), 3.1 MiB/s, ETA 12s, 1 stream"
	local figures first last
	figures=$(sed -n 's/.*storing \([0-9.]* [KMGT]*i*B\) of .*/\1/p' <<<"$storing" | uniq)
	[ "$(wc -l <<<"$figures")" -ge 2 ] ||
		fail "the stored figure did not advance while storing: $storing"
	first=$(bytes_of "$(head -n1 <<<"$figures")")
	last=$(bytes_of "$(tail -n1 <<<"$figures")")
	[ "$last" -gt "$first" ] || fail "stored bytes went from $first to $last"
	grep -q 'ETA ' <<<"$storing" || fail "no ETA while storing: $storing"
	grep -q ' of 2[45]\.[0-9] MiB' <<<"$storing" || fail "not against the image size: $storing"
	# The restore's line: fetched against the manifest's total.
	on_pty "$T/restore.tty" "$CRSTREAM" restore --path "$T/ck/p"
	progress_lines "$T/restore.tty" fetching | grep -q ' of .* MiB (' ||
		fail "no fetching line with a total: $(tr '\r' '\n' <"$T/restore.tty" | tail -n 5)"
	verify_subject p "$counter"
}

run_tests "$@"
