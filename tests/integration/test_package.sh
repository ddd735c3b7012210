#!/bin/bash
# crstream as a Debian tool: where setup finds its mirror, man pages in step
# with --help, shell completion, `make install`, and the .deb itself (built,
# installed with apt-get, used, removed).
source "$(dirname "$0")/../lib/harness.sh"

# ---- provision-criu.sh reads the mirror from apt's sources ----

# apt_fixture DIR: apt source lists in both formats with every kind of
# entry the mirror choice must skip or rank, and an apt.conf naming them.
apt_fixture() {
	local d=$1
	mkdir -p "$d/parts"
	cat >"$d/sources.list" <<'EOF'
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://one-line.example/debian/ sid main contrib
deb http://one-line.example/debian-security bookworm-security main
deb-src http://src-only.example/debian bookworm main
deb http://no-main.example/debian bookworm contrib
EOF
	cat >"$d/parts/a.sources" <<'EOF'
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no

# a third-party repository
Types: deb
URIs: https://third-party.example/repo
Suites: nodistro
Components: main

Types: deb deb-src
URIs: http://first.example/debian
 http://second.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://sec.example/debian-security
Suites: bookworm-security
Components: main
EOF
	echo "deb ftp://ftp-only.example/debian bookworm main" >"$d/parts/b.list"
	echo "deb http://not-read.example/debian bookworm main" >"$d/parts/c.list.disabled"
	printf 'Dir::Etc::sourcelist "%s/sources.list";\nDir::Etc::sourceparts "%s/parts";\n' \
		"$d" "$d" >"$d/apt.conf"
}

test_mirrors_come_from_apt_sources() {
	apt_fixture "$T/apt"
	local got want
	# This release's suites first (in apt's reading order), then the rest;
	# no security archive, no disabled entry, no entry without main.
	want=$(printf '%s\n' http://src-only.example/debian http://first.example/debian \
		http://second.example/debian http://one-line.example/debian https://third-party.example/repo)
	# The ranking assumes a bookworm machine (the fixture's suites).
	# shellcheck source=/dev/null
	[ "$(. /etc/os-release && echo "$VERSION_CODENAME")" = bookworm ] ||
		want=$(printf '%s\n' http://one-line.example/debian http://src-only.example/debian \
			http://first.example/debian http://second.example/debian https://third-party.example/repo)
	got=$(APT_CONFIG=$T/apt/apt.conf "$ROOT/scripts/provision-criu.sh" --mirrors 2>"$T/err") ||
		{ fail "--mirrors failed: $(cat "$T/err")"; return 1; }
	[ "$got" = "$want" ] || { fail "mirrors: got [$got], want [$want]"; return 1; }
	# No sources at all: a one-line reason, not a guess.
	: >"$T/apt/sources.list"
	rm -f "$T/apt/parts"/*
	expect_fail "no Debian mirror in apt's sources" \
		env APT_CONFIG="$T/apt/apt.conf" "$ROOT/scripts/provision-criu.sh" --mirrors
}

# No package mirror or registry is named anywhere in the tree: the
# machine's own configuration says where packages come from. The pattern
# is written so that it does not match itself.
test_no_mirror_host_in_tree() {
	local pattern='(deb|ftp[0-9]*([.][a-z]+)?|security|httpredir|snapshot|archive|mirrors?|cdn)[.](debian|ubuntu)[.](org|com)'
	pattern+='|registry[.](npmjs[.]org|yarnpkg[.]com)|pypi[.](org|python[.]org)|files[.]pythonhosted[.]org'
	pattern+='|packages[.]cloud[.]google[.]com|deb[.]nodesource[.]com|proxy[.]golang[.]org'
	local files hits
	if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
		files=$(cd "$ROOT" && git ls-files -co --exclude-standard)
	else
		files=$(cd "$ROOT" && find . -path ./build -prune -o -path ./build-asan -prune -o -type f -print)
	fi
	hits=$(cd "$ROOT" && printf '%s\n' "$files" | xargs -d '\n' grep -nIE "$pattern" -- 2>/dev/null || true)
	[ -z "$hits" ] || { fail "mirror host names in the tree: $hits"; return 1; }
	# The check itself works: it finds a host name planted in a scratch file.
	printf 'see http://%s.%s.%s/debian\n' deb debian org >"$T/planted"
	grep -qE "$pattern" "$T/planted" || { fail "the pattern misses a planted host name"; return 1; }
}

run_tests "$@"
