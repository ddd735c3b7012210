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

# ---- man pages and --help ----

# The --help texts and the completion do not depend on the sanitizers: the
# plain build answers faster.
CLI=$CRSTREAM_PLAIN
MAN_SRC=$ROOT/man
MAN_OUT=$(dirname "$CLI")/man

# The commands of `crstream --help` (its "...commands...:" sections).
help_commands() {
	"$CLI" --help | awk '
		/^[^ ].*:$/ { in_commands = tolower($0) ~ /commands/; next }
		in_commands && /^  [a-z]/ { print $1 }'
}

# help_options [COMMAND]: the options of `crstream [COMMAND] --help`, from
# its option lines (first column, up to two spaces: "-d, --dir DIR").
help_options() {
	"$CLI" "$@" --help | sed -nE 's/^ +(-[^ ]([^ ]| [^ ])*).*/\1/p' |
		grep -oE '(^|[ ,])--?[A-Za-z0-9][A-Za-z0-9-]*' | tr -d ' ,' | sort -u
}

# page_options PAGE.scd: the options defined in the page's OPTIONS section
# (definition lines starting with "*-", see man/README.md).
page_options() {
	sed -n '/^# OPTIONS/,/^# /p' "$1" | grep -E '^\*-' |
		grep -oE '\*--?[A-Za-z0-9][A-Za-z0-9-]*\*' | tr -d '*' | sort -u
}

# page_source COMMAND: the scdoc source documenting it, following the .so
# aliases the Makefile makes (crstream-capture.1 -> criu-image-streamer.1).
page_source() {
	local src=$MAN_SRC/crstream-$1.1.scd target
	if [ ! -f "$src" ] && [ -f "$MAN_OUT/crstream-$1.1" ]; then
		target=$(sed -n 's|^\.so man1/||p' "$MAN_OUT/crstream-$1.1")
		src=$MAN_SRC/$target.scd
	fi
	echo "$src"
}

# same_options WHAT HELP_OPTIONS PAGE: the two lists are equal, or say
# which option is missing where.
same_options() {
	local what=$1 help=$2 page=$3 missing
	missing=$(comm -23 <(printf '%s\n' "$help") <(printf '%s\n' "$page"))
	[ -z "$missing" ] || { fail "$what: in --help but not in the man page: $(tr '\n' ' ' <<<"$missing")"; return 1; }
	missing=$(comm -13 <(printf '%s\n' "$help") <(printf '%s\n' "$page"))
	[ -z "$missing" ] || { fail "$what: in the man page but not in --help: $(tr '\n' ' ' <<<"$missing")"; return 1; }
}

test_man_pages_match_help() {
	local cmd src commands bad=0
	same_options "crstream" "$(help_options)" "$(page_options "$MAN_SRC/crstream.1.scd")" || bad=1
	commands=$(help_commands)
	[ "$(echo "$commands" | wc -l)" -ge 10 ] || { fail "too few commands in --help: $commands"; return 1; }
	for cmd in $commands; do
		src=$(page_source "$cmd")
		[ -f "$src" ] || { fail "$cmd: no man page ($src)"; bad=1; continue; }
		[ -f "$MAN_OUT/$(basename "$src" .scd)" ] || { fail "$cmd: $src is not built"; bad=1; }
		sed -n '/^# COMMANDS/,/^# /p' "$MAN_SRC/crstream.1.scd" | grep -E '^\*' |
			grep -qE "\*${cmd}[* ]" ||
			{ fail "$cmd: not in crstream(1)'s COMMANDS"; bad=1; }
		same_options "crstream $cmd" "$(help_options "$cmd")" "$(page_options "$src")" || bad=1
	done
	# extract --path (a stored checkpoint) has its own options and section.
	same_options "crstream extract --path" "$(help_options extract --path x)" \
		"$(sed -n '/^# EXTRACTING A STORED CHECKPOINT/,/^# /p' "$MAN_SRC/criu-image-streamer.1.scd" |
			grep -E '^\*-' | grep -oE '\*--?[A-Za-z0-9][A-Za-z0-9-]*\*' | tr -d '*' | sort -u)" || bad=1
	[ -f "$MAN_OUT/crstream.json.5" ] || { fail "crstream.json(5) is not built"; bad=1; }
	return $bad
}

# ---- bash completion ----

# complete_words WORD...: what the completion offers for the command line
# WORD... (the last word is the one being completed), one per line.
complete_words() {
	bash -c 'source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_crstream; printf "%s\n" "${COMPREPLY[@]}"' _ "$ROOT/completion/crstream.bash" "$@"
}

# offers WORD... expect EXPECTED...: the completion of WORD... includes every
# EXPECTED word.
offers() {
	local words=() got w
	while [ "$1" != expect ]; do words+=("$1"); shift; done
	shift
	got=$(complete_words "${words[@]}")
	for w in "$@"; do
		grep -qxF -- "$w" <<<"$got" || { fail "completing '${words[*]}': no $w in: $(tr '\n' ' ' <<<"$got")"; return 1; }
	done
}

test_bash_completion() {
	local streamer
	streamer=$(dirname "$CLI")/criu-image-streamer
	# shellcheck disable=SC2046 # one word per command
	offers "$CLI" "" expect $(help_commands) --version
	offers "$CLI" dump --comp expect --compression
	offers "$CLI" dump -- expect --streams --dir --name --leave-running --no-progress
	offers "$CLI" restore -- expect --path --no-progress --memory-limit
	offers "$CLI" dump --compression "" expect none lz4 zstd gzip zlib auto
	offers "$CLI" dump -c z expect zstd zlib
	offers "$CLI" dump "" expect $$ 1 job process
	offers "$CLI" manage "" expect $$
	offers "$CLI" dump -- expect --daemon
	offers "$CLI" run -- expect --every --keep --policy-dir --jid
	mkdir -p "$T/ckpts/dump-1"
	offers "$CLI" restore "$T/ck" expect "$T/ckpts"
	offers "$CLI" restore --path "$T/ckpts/d" expect "$T/ckpts/dump-1"
	offers "$CLI" ls --dir "$T/ck" expect "$T/ckpts"
	offers "$CLI" dump --dir = "$T/ck" expect "$T/ckpts"
	offers "$CLI" config "" expect show
	offers "$CLI" capture -- expect --images-dir --shard-fds --progress-fd
	offers "$streamer" "" expect capture serve extract
	# Trusted checkpoints: keygen, the key options, key files.
	offers "$CLI" keygen -- expect --output --sign
	offers "$CLI" dump --re expect --recipient --recipients-file
	offers "$CLI" restore -- expect --identity --trusted-key --verify-first --no-verify-first
	offers "$CLI" extract --path "$T/ckpts/dump-1" -- expect --identity --trusted-key --images-dir
	touch "$T/ckpts/sign.pub"
	offers "$CLI" restore --trusted-key "$T/ckpts/s" expect "$T/ckpts/sign.pub"
	offers "$CLI" extract --path "$T/ckpts/d" expect "$T/ckpts/dump-1"
	# Nothing but the codecs after --compression, nothing after --name.
	[ "$(complete_words "$CLI" dump --compression "" | wc -l)" -eq 6 ] ||
		fail "--compression offers: $(complete_words "$CLI" dump --compression "")"
	[ -z "$(complete_words "$CLI" dump --name "")" ] || fail "--name offers something"
}

# ---- the plugins' directory ----

# The plugin runs as root: its directory and file must be root's (or the
# user's) and writable by nobody else, or they are refused.
test_plugin_directory_must_be_trusted() {
	local p=$T/plugins
	mkdir -m 755 "$p"
	install -m 644 "$(dirname "$CLI")/crstream-s3.so" "$p/"
	plugin_status() { CRSTREAM_PLUGIN_DIR=$p "$CLI" --version | sed -n 's/^object storage: //p'; }
	refused() {
		local got
		got=$(plugin_status)
		[[ $got == "not available (plugin $p/crstream-s3.so): $1" ]] || { fail "plugin: $got; want: $1"; return 1; }
	}
	[ "$(plugin_status)" = "s3://, gs:// (plugin $p/crstream-s3.so)" ] || { fail "a good directory: $(plugin_status)"; return 1; }
	# The daemon's plugin loads from there (then finds no daemon).
	install -m 644 "$(dirname "$CLI")/crstream-daemon.so" "$p/"
	expect_fail "no crstream daemon answers at unix://$T/none.sock" \
		env CRSTREAM_PLUGIN_DIR="$p" "$CLI" jobs --daemon "unix://$T/none.sock"
	chmod 777 "$p"
	refused "CRSTREAM_PLUGIN_DIR=$p: writable by everyone (mode 0777): refused (anyone could replace the code crstream runs)"
	# The refusal is the load path's, not only --version's; the daemon's
	# plugin is refused the same way (a daemon started anyway would serve
	# until the timeout).
	expect_fail "s3://bucket/x: object storage needs the plugin $p/crstream-s3.so: CRSTREAM_PLUGIN_DIR=$p: writable by everyone" \
		env CRSTREAM_PLUGIN_DIR="$p" "$CLI" ls s3://bucket/x
	expect_fail "crstream daemon needs the plugin $p/crstream-daemon.so: CRSTREAM_PLUGIN_DIR=$p: writable by everyone" \
		timeout 30 env CRSTREAM_PLUGIN_DIR="$p" "$CLI" daemon --socket "$T/d.sock" --db "$T/d.db"
	[ ! -e "$T/d.sock" ] || fail "a refused plugin's daemon made its socket"
	chmod 1777 "$p"
	refused "CRSTREAM_PLUGIN_DIR=$p: writable by everyone (mode 1777): refused (anyone could replace the code crstream runs)"
	chmod 775 "$p"
	refused "CRSTREAM_PLUGIN_DIR=$p: writable by its group (mode 0775): refused (anyone could replace the code crstream runs)"
	chmod 755 "$p"
	chown nobody "$p"
	refused "CRSTREAM_PLUGIN_DIR=$p: owned by uid $(id -u nobody), not by root: refused (its code would run as this user)"
	chown root "$p"
	chmod 666 "$p/crstream-s3.so"
	refused "writable by everyone (mode 0666): refused (anyone could replace the code crstream runs)"
	chmod 644 "$p/crstream-s3.so"
	chown nobody "$p/crstream-s3.so"
	refused "owned by uid $(id -u nobody), not by root: refused (its code would run as this user)"
}

# ---- make install / uninstall ----

test_make_install_and_uninstall() {
	local stage=$T/stage prefix=/usr/local f
	make -s -C "$ROOT" install DESTDIR="$stage" >"$T/make.log" 2>&1 || { fail "make install: $(cat "$T/make.log")"; return 1; }
	local want=(
		"755 $prefix/bin/crstream"
		"777 $prefix/bin/criu-image-streamer"
		"644 $prefix/lib/crstream/crstream-s3.so"
		"644 $prefix/lib/crstream/crstream-crypt.so"
		"644 $prefix/lib/crstream/crstream-daemon.so"
		"644 $prefix/lib/systemd/system/crstream.service"
		"755 $prefix/libexec/crstream/provision-criu"
		"644 $prefix/libexec/crstream/lib/packages.sh"
		"644 $prefix/share/bash-completion/completions/crstream"
		"644 $prefix/share/bash-completion/completions/criu-image-streamer"
		"644 $prefix/share/doc/crstream/examples/config.json"
		"644 $prefix/share/man/man5/crstream.json.5"
	)
	for f in "$MAN_SRC"/*.1.scd; do
		want+=("644 $prefix/share/man/man1/$(basename "$f" .scd)")
	done
	for f in crstream-capture crstream-serve crstream-extract crstream-manage crstream-jobs crstream-kill; do
		want+=("644 $prefix/share/man/man1/$f.1")
	done
	local got
	got=$(cd "$stage" && find . ! -type d -printf '%m /%P\n' | sort)
	[ "$got" = "$(printf '%s\n' "${want[@]}" | sort)" ] ||
		{ fail "installed: $(diff <(printf '%s\n' "${want[@]}" | sort) <(echo "$got"))"; return 1; }
	[ "$(readlink "$stage$prefix/bin/criu-image-streamer")" = crstream ] || fail "criu-image-streamer is not a link to crstream"
	# The plugin directory is compiled in, and the staged plugin loads.
	"$stage$prefix/bin/crstream" --version | grep -qF "(plugin $prefix/lib/crstream/crstream-s3.so)" ||
		fail "compiled-in plugin directory: $("$stage$prefix/bin/crstream" --version)"
	CRSTREAM_PLUGIN_DIR=$stage$prefix/lib/crstream "$stage$prefix/bin/crstream" --version |
		grep -qF "object storage: s3://, gs:// (plugin $stage$prefix/lib/crstream/crstream-s3.so)" ||
		fail "the installed plugin does not load"
	CRSTREAM_PLUGIN_DIR=$stage$prefix/lib/crstream "$stage$prefix/bin/crstream" --version |
		grep -qF "keys:           age encryption, SSH signatures (plugin $stage$prefix/lib/crstream/crstream-crypt.so)" ||
		fail "the installed crypto plugin does not load"
	grep -q "^\.so man1/criu-image-streamer.1" "$stage$prefix/share/man/man1/crstream-serve.1" || fail "no .so alias"
	grep -qx "ExecStart=$prefix/bin/crstream daemon" "$stage$prefix/lib/systemd/system/crstream.service" ||
		fail "the unit does not start the installed binary: $(grep ExecStart "$stage$prefix/lib/systemd/system/crstream.service")"
	make -s -C "$ROOT" uninstall DESTDIR="$stage" >"$T/make.log" 2>&1 || { fail "make uninstall: $(cat "$T/make.log")"; return 1; }
	got=$(cd "$stage" && find . ! -type d)
	[ -z "$got" ] || fail "left after make uninstall: $got"
	[ ! -e "$stage$prefix/lib/crstream" ] && [ ! -e "$stage$prefix/libexec/crstream" ] &&
		[ ! -e "$stage$prefix/share/doc/crstream" ] || fail "crstream's own directories are left"
}

# ---- the Debian package ----

# Building the package compiles everything again (-O2, hardened).
# shellcheck disable=SC2034,SC2154 # the harness's table
TEST_TIMEOUT[test_deb_package_install_use_remove]=1200

apt_get() {
	DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0 "$@"
}

# The acceptance test of issue 11: scripts/package.sh builds the .debs,
# apt-get installs crstream, the installed crstream round-trips a process and
# loads its installed object-storage plugin, man renders its pages; then
# crstream-daemon, whose plugin and unit crstream alone lacks; and apt-get
# remove leaves nothing behind (crstream ships no conffile). The unit tests
# and lintian are left to the suite and to package.sh's own run
# (DEB_BUILD_OPTIONS=nocheck, --no-lintian), to keep this short.
test_deb_package_install_use_remove() {
	local pkg
	for pkg in crstream crstream-daemon; do
		if [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)" = installed ]; then
			skip "$pkg is installed on this machine already; this test would replace it"
		fi
	done
	trap 'dpkg --purge crstream-daemon crstream >/dev/null 2>&1 || true' EXIT
	# Places a maintainer script could fill that remove would have to empty.
	local d absent=()
	for d in /etc/crstream /var/lib/crstream /usr/lib/crstream /usr/libexec/crstream; do
		[ -e "$d" ] || absent+=("$d")
	done
	local debs deb daemon_deb
	debs=$(DEB_BUILD_OPTIONS=nocheck "$ROOT/scripts/package.sh" --no-lintian 2>"$T/package.log") ||
		{ fail "scripts/package.sh: $(tail -n 20 "$T/package.log")"; return 1; }
	{ read -r deb && read -r daemon_deb; } <<<"$debs" || { fail "package.sh printed: $debs"; return 1; }
	[ "$deb" = "$(echo "$ROOT"/dist/crstream_*.deb)" ] || { fail "the .deb is not in dist/: $deb"; return 1; }
	[ "$daemon_deb" = "$(echo "$ROOT"/dist/crstream-daemon_*.deb)" ] ||
		{ fail "the daemon's .deb is not in dist/: $daemon_deb"; return 1; }
	# gRPC, SQLite and libsystemd are the daemon package's dependencies only.
	dpkg-deb -f "$deb" Depends >"$T/depends"
	dpkg-deb -f "$daemon_deb" Depends >"$T/daemon-depends"
	! grep -Eo 'libgrpc[^ ,]*|libsqlite3[^ ,]*|libsystemd[^ ,]*' "$T/depends" ||
		fail "crstream depends on the daemon's libraries: $(cat "$T/depends")"
	for d in libgrpc libsqlite3 libsystemd "crstream (= $(dpkg-deb -f "$deb" Version))"; do
		grep -qF "$d" "$T/daemon-depends" || fail "crstream-daemon does not depend on $d: $(cat "$T/daemon-depends")"
	done
	apt_get install "$deb" >"$T/apt.log" 2>&1 || { fail "apt-get install: $(tail -n 20 "$T/apt.log")"; return 1; }
	local files
	files=$(dpkg -L crstream)
	[ "$(dpkg-deb -f "$deb" Version)" = "$(/usr/bin/crstream --version | sed -n '1s/^crstream //p')" ] ||
		fail "package version $(dpkg-deb -f "$deb" Version), program $(/usr/bin/crstream --version | head -n1)"

	# The installed crstream, its compiled-in plugin directory.
	[ "$(command -v crstream)" = /usr/bin/crstream ] || fail "crstream is not /usr/bin/crstream"
	/usr/bin/crstream --version >"$T/version" || { fail "crstream --version failed"; return 1; }
	grep -qF "object storage: s3://, gs:// (plugin /usr/lib/crstream/crstream-s3.so)" "$T/version" &&
		grep -qF "keys:           age encryption, SSH signatures (plugin /usr/lib/crstream/crstream-crypt.so)" "$T/version" ||
		fail "version: $(cat "$T/version")"

	# A round trip (CRSTREAM_CRIU names the provisioned CRIU).
	local pid counter
	pid=$(start_subject pkg mem --mib 32)
	counter=$(status_get "$T/pkg.status" counter)
	/usr/bin/crstream dump "$pid" --dir "$T/ck" --name pkg --streams 2 >"$T/out" 2>"$T/err" ||
		{ fail "installed dump: $(cat "$T/err")"; return 1; }
	wait_gone "$pid"
	/usr/bin/crstream restore "$T/ck/pkg" >"$T/out" 2>"$T/err" ||
		{ fail "installed restore: $(cat "$T/err")"; return 1; }
	verify_subject pkg "$counter"

	# dump --dir s3://... loads the installed plugin (the dynamic loader
	# says so), which then talks S3: here to a port where nobody listens.
	# The process keeps running.
	pid=$(start_subject s3 mem --mib 8)
	LD_DEBUG=files LD_DEBUG_OUTPUT=$T/ld AWS_ACCESS_KEY_ID=id AWS_SECRET_ACCESS_KEY=secret \
		AWS_ENDPOINT_URL=http://127.0.0.1:1 CRSTREAM_S3_RETRIES=0 \
		/usr/bin/crstream dump "$pid" --dir s3://bucket/pkg >/dev/null 2>"$T/err" &&
		{ fail "a dump to a closed port succeeded"; return 1; }
	cat "$T"/ld.* >"$T/ld"
	grep -q "file=/usr/lib/crstream/crstream-s3.so .*dynamically loaded by /usr/bin/crstream" "$T/ld" ||
		fail "the installed plugin was not loaded: $(grep crstream-s3 "$T/ld")"
	grep -q "s3://bucket/pkg/.*GET: http://127.0.0.1:1: .*Couldn't connect to server" "$T/err" ||
		fail "dump said: $(cat "$T/err")"
	alive "$pid" || fail "the subject died"

	# man finds and renders the pages, the aliases too.
	local page
	[ -f /usr/share/man/man1/crstream-dump.1.gz ] ||
		{ fail "no man pages installed (a dpkg path-exclude in /etc/dpkg/dpkg.cfg.d?)"; return 1; }
	for page in crstream crstream-dump crstream-restore crstream-serve crstream.json; do
		MANWIDTH=80 man "$page" >"$T/man" 2>"$T/man.err" || { fail "man $page: $(cat "$T/man.err")"; continue; }
		! grep -qiE "warn|error|can.t" "$T/man.err" || fail "man $page: $(cat "$T/man.err")"
	done
	MANWIDTH=80 man crstream-dump | grep -q -- "--compression C" || fail "man crstream-dump has no --compression"
	man -w crstream.json | grep -q "/usr/share/man/man5/crstream.json.5" || fail "crstream.json(5): $(man -w crstream.json)"
	# Bash completion where bash-completion looks.
	[ -f /usr/share/bash-completion/completions/crstream ] || fail "no bash completion"
	# Without crstream-daemon: no daemon, and the error says where it is.
	[ ! -e /usr/lib/crstream/crstream-daemon.so ] || fail "crstream ships the daemon's plugin"
	[ ! -e /lib/systemd/system/crstream.service ] || fail "crstream ships the daemon's unit"
	expect_fail "crstream daemon needs the plugin /usr/lib/crstream/crstream-daemon.so, which is not installed (on Debian: apt-get install crstream-daemon)" \
		/usr/bin/crstream daemon --socket "$T/d.sock"

	# crstream-daemon: its plugin and unit (where dh_installsystemd finds
	# units), its man pages.
	apt_get install "$daemon_deb" >"$T/apt.log" 2>&1 ||
		{ fail "apt-get install crstream-daemon: $(tail -n 20 "$T/apt.log")"; return 1; }
	files+=$'\n'$(dpkg -L crstream-daemon)
	[ "$(dpkg -S /usr/lib/crstream/crstream-daemon.so)" = "crstream-daemon: /usr/lib/crstream/crstream-daemon.so" ] ||
		fail "the daemon's plugin: $(dpkg -S /usr/lib/crstream/crstream-daemon.so)"
	grep -qx "ExecStart=/usr/bin/crstream daemon" /lib/systemd/system/crstream.service ||
		fail "no unit starting /usr/bin/crstream daemon in /lib/systemd/system"
	for page in crstream-daemon crstream-run crstream-jobs; do
		MANWIDTH=80 man "$page" >"$T/man" 2>"$T/man.err" || fail "man $page: $(cat "$T/man.err")"
	done
	/usr/bin/crstream daemon --help | grep -q -- "--socket" || fail "crstream daemon --help: no --socket"

	# apt-get remove: every file gone (no conffiles, nothing but config kept).
	apt_get remove crstream crstream-daemon >"$T/apt.log" 2>&1 ||
		{ fail "apt-get remove: $(tail -n 20 "$T/apt.log")"; return 1; }
	local conffiles left="" f
	conffiles=$(dpkg-query -W -f='${Conffiles}' crstream crstream-daemon 2>/dev/null | awk '{print $1}' || true)
	while read -r f; do
		[ -n "$f" ] || continue
		grep -qxF -- "$f" <<<"$conffiles" && continue
		# Directories stay when other packages use them; /lib is one, and
		# on a merged-/usr system a symlink to usr/lib.
		[ -d "$f" ] && continue
		if [ -L "$f" ] || [ -f "$f" ]; then
			left+=" $f"
		fi
	done <<<"$files"
	[ -z "$left" ] || fail "left after apt-get remove:$left"
	for f in "${absent[@]}" /usr/share/doc/crstream /usr/share/doc/crstream-daemon; do
		[ ! -e "$f" ] || fail "left after apt-get remove: $f"
	done
	[ ! -e /usr/bin/crstream ] || fail "/usr/bin/crstream is still there"
	dpkg --purge crstream-daemon crstream >/dev/null
}

run_tests "$@"
