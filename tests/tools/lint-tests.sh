#!/bin/bash
# lint-tests.sh FILE...: finds checks that set -e cannot see. Bash ignores
# a failure anywhere in an `A && B` list but its last command, so
#     [ -s "$f" ] && grep -q x "$f"
# passes when $f is empty. A list of checks must end in `|| fail ...`.
# Flags every statement that is an && list ending in a check ([, [[, test,
# grep -q, cmp, diff, !) with no `||`; prints FILE:LINE: text, exit 1.
# (Lists used as conditions, `A && return`, `A && break` are not checks.)
#
# Also flags `jq -e` without -s: jq 1.6 exits 0 when its input is empty,
# so such a check passes on an answer that never came (use jq_holds).
set -euo pipefail
rc=0
awk '
	function flush() {
		if (stmt != "" && stmt !~ /^(if|elif|while|until) / && stmt ~ / && / && stmt !~ /\|\|/) {
			last = stmt
			sub(/.* && /, "", last)
			if (last ~ /^(\[|\[\[|test |grep -q|grep -Eq|grep -qx|cmp |diff |! )/) {
				printf "%s:%d: a check in an && list without || fail: %s\n", FILENAME, start, stmt
				bad = 1
			}
		}
		stmt = ""
	}
	FNR == 1 { flush() }
	{
		line = $0
		sub(/^[ \t]+/, "", line)
		if (stmt == "") {
			if (line ~ /^#/)
				next
			start = FNR
		}
		stmt = stmt (stmt == "" ? "" : " ") line
		# A statement goes on after \, &&, || or |.
		if (line ~ /(\\|&&|\|\||\|)$/) {
			sub(/\\$/, "", stmt)
			next
		}
		flush()
	}
	END { flush(); exit bad }
' "$@" || rc=1
if grep -nE "jq +(-[a-rt-z]+ +)*-[a-rt-z]*e[a-rt-z]*( |$)" "$@" | grep -v -e '^[^:]*:[0-9]*:[[:space:]]*#' -e '# lint: input checked above$' |
	sed 's/^/jq -e passes on empty input (use jq_holds): /' | grep .; then
	rc=1
fi
exit $rc
