#!/usr/bin/env bash
# provision-criu.sh - find or build a CRIU that crstream can drive.
#
# Usage: scripts/provision-criu.sh [-h|--help | --mirrors]
#        scripts/provision-criu.sh --source DIR
#
#   --mirrors   print the Debian mirrors found in apt's sources (best first,
#               one per line; see "Where the tarball comes from") and exit.
#
# --source DIR: instead, provide the pinned CRIU's source tree (fetched and
# sha256-verified exactly as for the build below, its build dependencies
# installed) unpacked under DIR, and print its path. A tree unpacked by an
# earlier run from the same verified tarball is reused. Used by
# tests/zdtm/run.sh to build CRIU's own test suite.
#
# Output
#   stdout  exactly one line: the absolute path of a qualifying criu binary
#           (with --source: of the source tree).
#   stderr  all progress and diagnostics, each line prefixed "provision-criu:".
#   exit    0 on success, 1 when no qualifying CRIU could be provided,
#           2 on a usage error.
#
# A CRIU "qualifies" when all of these hold (checked in this order, and the
# first one that fails is named in the error):
#   1. it is an executable file;
#   2. `criu --version` reports a version >= $CRIU_MIN_VERSION (4.2, below);
#   3. `criu --help` lists --stream (crstream talks to CRIU over its
#      image-streamer protocol);
#   4. `criu check` exits 0. Its verdict is taken from the exit status only:
#      a passing check may still warn on stderr (e.g. "Can't keep kdat cache
#      on non-tempfs"), which is harmless. When the check fails, its output is
#      shown. `criu check` needs root.
#
# Where the CRIU comes from, first match wins:
#   a. $CRSTREAM_CRIU, if set: that binary is validated and used. If it does
#      not qualify the script fails; it never silently substitutes another.
#   b. `criu` found in PATH, if it qualifies. It often does not: Debian 12
#      ships CRIU 3.17, which predates the kernel's [vvar_vclock] mapping, so
#      `criu check` fails on current kernels (and 3.17 is far too old anyway).
#   c. The pinned CRIU below, built from Debian's upstream ("orig") tarball
#      into ${CRSTREAM_CACHE_DIR:-/var/cache/crstream}/criu-<version>/criu,
#      next to a stamp file recording version and sha256. Later runs reuse it
#      without rebuilding (re-validating it each time). The tarball comes
#      from the Debian pool of this machine's own mirror; if that download
#      fails it is fetched with `apt-get source --download-only` through a
#      private apt configuration kept in the cache dir (/etc/apt is never
#      touched). Either way its sha256 is verified before it is extracted.
#      Missing build dependencies
#      are installed with apt-get (this needs root). A lock file in the cache
#      dir serialises concurrent runs so only one of them builds.
#
# Environment
#   CRSTREAM_CRIU             use exactly this criu (path, or name in PATH).
#   CRSTREAM_CACHE_DIR        cache root; default /var/cache/crstream.
#   CRSTREAM_CRIU_POOL_URL    base URL of the Debian pool directory holding
#                             criu_<version>.orig.tar.xz; default
#                             MIRROR/pool/main/c/criu for each mirror found
#                             (below), tried in turn. Also for tests: point
#                             it at a URL that fails (e.g.
#                             .../pool/main/c/no-such-dir) to exercise the
#                             apt-get source fallback.
#   CRSTREAM_CRIU_APT_MIRROR  Debian mirror for the apt-get source fallback;
#                             default the first mirror found (below).
#   APT_CONFIG                apt's own: another apt configuration, e.g. one
#                             naming other source lists (used by the tests).
#
# Where the tarball comes from: no mirror is named here. The mirrors are the
# machine's own, read from apt's sources (Dir::Etc::sourcelist, by default
# /etc/apt/sources.list, and Dir::Etc::sourceparts/*.list and *.sources, in
# the one-line and the deb822 formats): every enabled `deb` or `deb-src`
# entry with the `main` component, except security archives (suite
# *-security or */updates, whose pools hold only security uploads). Entries
# for this release's suites (its codename, codename-updates, ...) come first,
# then the others in the order apt reads them. The tarball's sha256 is what
# makes any of them trustworthy.
#   TMPDIR                    where the temporary build directory is made.

set -euo pipefail

# ---- pins -------------------------------------------------------------------
# The version we build when nothing usable is installed, the sha256 of its
# upstream tarball as published in Debian's pool, and the Debian source
# package version (in the suite below) that carries the same tarball, used by
# the apt-get source fallback.
# 4.2.1 rather than trixie's 4.1.1: CRIU 4.1.x cannot dump any TCP socket on
# Linux 6.16 and later (it asks for SO_PASSCRED/SO_PASSSEC, which the kernel
# now refuses on non-UNIX sockets), and the tests checkpoint listeners.
CRIU_VERSION=4.2.1
CRIU_SHA256=29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9
CRIU_DEBIAN_VERSION=4.2.1-1
CRIU_DEBIAN_SUITE=sid
# Oldest CRIU accepted from $CRSTREAM_CRIU or PATH (see above for why not 4.1).
CRIU_MIN_VERSION=4.2

# Packages needed to build CRIU from source (Debian 12 names). iproute2 is a
# runtime need of CRIU (it calls `ip` for network namespaces); curl and
# xz-utils fetch and unpack the tarball.
CRIU_BUILD_DEPS=(
	build-essential pkg-config python3 curl xz-utils iproute2
	libbsd-dev libcap-dev libgnutls28-dev libnet1-dev libnftables-dev
	libnl-3-dev libprotobuf-c-dev libprotobuf-dev protobuf-c-compiler
	protobuf-compiler uuid-dev python3-protobuf libaio-dev
)

CACHE_ROOT=${CRSTREAM_CACHE_DIR:-/var/cache/crstream}
TARBALL=criu_${CRIU_VERSION}.orig.tar.xz

# stdout carries only the final path. Keep the real stdout on fd 3 and send
# everything else written to stdout (ours or a child's) to stderr.
exec 3>&1 1>&2

log() { printf 'provision-criu: %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}
# Show captured command output, indented under our prefix.
show() { [[ -z ${1:-} ]] || printf '%s\n' "$1" | sed 's/^/provision-criu:   | /' >&2; }
# Run a command with its output prefixed; keeps the command's exit status.
run_prefixed() { "$@" 2>&1 | sed -u 's/^/provision-criu:   | /' >&2; }

# ---- the Debian mirrors, from this machine's apt sources -------------------
# apt_source_entries: one line "TYPE URI SUITE COMPONENT..." for every enabled
# entry of apt's source lists, in the order apt reads them.
apt_source_entries() {
	local APT_SOURCELIST=/etc/apt/sources.list APT_SOURCEPARTS=/etc/apt/sources.list.d/
	if command -v apt-config >/dev/null; then
		eval "$(apt-config shell APT_SOURCELIST Dir::Etc::sourcelist/f \
			APT_SOURCEPARTS Dir::Etc::sourceparts/d)"
	fi
	local files=() f
	[[ -f $APT_SOURCELIST ]] && files+=("$APT_SOURCELIST")
	for f in "${APT_SOURCEPARTS%/}"/*.list "${APT_SOURCEPARTS%/}"/*.sources; do
		[[ -f $f ]] && files+=("$f")
	done
	((${#files[@]})) || return 0
	awk '
	function flush(   t, u, s, nt, nu, ns, i, j, k, T, U, S) {
		if (enabled != "no" && types != "" && uris != "" && suites != "") {
			nt = split(types, T); nu = split(uris, U); ns = split(suites, S)
			for (i = 1; i <= nt; i++) for (j = 1; j <= nu; j++) for (k = 1; k <= ns; k++)
				print T[i], U[j], S[k], comps
		}
		types = uris = suites = comps = field = ""; enabled = "yes"
	}
	FNR == 1 { if (deb822) flush(); deb822 = FILENAME ~ /\.sources$/ }
	/^[ \t]*#/ { next }
	deb822 && /^[ \t]*$/ { flush(); next }
	deb822 && /^[ \t]/ { if (field != "") value[field] = value[field] " " $0; set(); next }
	deb822 {
		field = tolower($0); sub(/:.*/, "", field)
		v = $0; sub(/^[^:]*:[ \t]*/, "", v); value[field] = v; set(); next
	}
	# One-line format: TYPE [ OPTIONS ] URI SUITE [COMPONENT...]
	$1 == "deb" || $1 == "deb-src" {
		line = $0; sub(/#.*/, "", line); gsub(/\[[^]]*\]/, " ", line)
		n = split(line, w)
		if (n >= 3) { c = ""; for (i = 4; i <= n; i++) c = c " " w[i]; print w[1], w[2], w[3], c }
	}
	function set() {
		if (field == "types") types = value[field]
		else if (field == "uris") uris = value[field]
		else if (field == "suites") suites = value[field]
		else if (field == "components") comps = value[field]
		else if (field == "enabled") enabled = tolower(value[field])
		gsub(/^[ \t]+|[ \t]+$/, "", enabled)
	}
	END { if (deb822) flush() }
	' "${files[@]}"
}

# debian_mirrors: the base URIs of the Debian archives in apt's sources, best
# first, one per line (see the header for the rules).
debian_mirrors() {
	local codename='' type uri suite comps rank
	# shellcheck source=/dev/null
	codename=$(. /etc/os-release 2>/dev/null && printf '%s' "${VERSION_CODENAME:-}") || true
	while read -r type uri suite comps; do
		[[ $type == deb || $type == deb-src ]] || continue
		[[ $uri == http://* || $uri == https://* || $uri == file:/* ]] || continue
		[[ $suite == *-security || $suite == */updates ]] && continue
		[[ " $comps " == *" main "* ]] || continue
		rank=1
		[[ -n $codename && ($suite == "$codename" || $suite == "$codename"-*) ]] && rank=0
		printf '%s %s\n' "$rank" "${uri%/}"
	done < <(apt_source_entries) | awk '!seen[$2]++' | sort -s -n -k1,1 | cut -d' ' -f2-
}

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0" >&2; }

SOURCE_DIR=
case ${1:-} in
'') ;;
-h | --help)
	usage 2>&3
	exit 0
	;;
--mirrors)
	mirrors=$(debian_mirrors)
	[[ -n $mirrors ]] || die "no Debian mirror in apt's sources"
	printf '%s\n' "$mirrors" >&3
	exit 0
	;;
--source)
	[[ $# -eq 2 && -n $2 ]] || {
		log "--source needs exactly one argument, the directory to unpack into"
		usage
		exit 2
	}
	SOURCE_DIR=$2
	;;
*)
	log "unknown argument: $1"
	usage
	exit 2
	;;
esac

# version_ge A B: true when version A >= version B.
version_ge() { printf '%s\n%s\n' "$2" "$1" | sort -V -C; }

# qualify BIN: true when BIN is a usable CRIU; otherwise logs which check
# failed (with the command's output) and returns 1. Sets QUALIFIED_VERSION.
QUALIFIED_VERSION=
qualify() {
	local bin=$1 out ver rc
	QUALIFIED_VERSION=
	if [[ ! -f $bin || ! -x $bin ]]; then
		log "$bin: check 'executable' failed: not an executable file"
		return 1
	fi
	if ! out=$("$bin" --version 2>&1); then
		log "$bin: check 'version' failed: '--version' exited non-zero:"
		show "$out"
		return 1
	fi
	ver=$(sed -n 's/^Version: *\([0-9][0-9.]*\).*/\1/p' <<<"$out")
	ver=${ver%%$'\n'*}
	if [[ -z $ver ]]; then
		log "$bin: check 'version' failed: no 'Version: X.Y' line in its --version output:"
		show "${out:-(no output)}"
		return 1
	fi
	if ! version_ge "$ver" "$CRIU_MIN_VERSION"; then
		log "$bin: check 'version' failed: version $ver is older than the required $CRIU_MIN_VERSION"
		return 1
	fi
	out=$("$bin" --help 2>&1) || true
	if ! grep -q -e '--stream' <<<"$out"; then
		log "$bin: check '--stream' failed: '$bin --help' does not list --stream"
		return 1
	fi
	rc=0
	out=$(timeout 120 "$bin" check 2>&1) || rc=$?
	if ((rc != 0)); then
		log "$bin: check 'criu check' failed (exit $rc)$( ((EUID == 0)) || echo '; note: criu check needs root'):"
		show "${out:-(no output)}"
		return 1
	fi
	QUALIFIED_VERSION=$ver
	return 0
}

# Print the absolute form of a path, or of a command name looked up in PATH.
# Symlinks are kept as given (a user pointing at a symlink meant it).
abs_path() {
	local p=$1
	if [[ $p != */* ]]; then
		p=$(type -P -- "$p") || return 1
	fi
	realpath -s -m -- "$p"
}

# ---- package installation ---------------------------------------------------
# shellcheck disable=SC2034 # read by lib/packages.sh
LOG_PREFIX=provision-criu
# shellcheck source=lib/packages.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/packages.sh"

# ---- fetching the pinned tarball ---------------------------------------------
# pool_urls: where the pool directory holding the tarball is, best first.
pool_urls() {
	if [[ -n ${CRSTREAM_CRIU_POOL_URL:-} ]]; then
		printf '%s\n' "$CRSTREAM_CRIU_POOL_URL"
		return
	fi
	debian_mirrors | sed 's|$|/pool/main/c/criu|'
}

# fetch_from_pool DIR: download the orig tarball into DIR/$TARBALL from the
# first pool that has it.
fetch_from_pool() {
	local dir=$1 pool url
	while read -r pool; do
		url="$pool/$TARBALL"
		log "downloading $url"
		if run_prefixed curl -fsS -L --connect-timeout 20 --retry 2 -o "$dir/$TARBALL.part" "$url"; then
			mv -f "$dir/$TARBALL.part" "$dir/$TARBALL"
			return 0
		fi
	done < <(pool_urls)
	[[ -n $(pool_urls) ]] || log "no Debian mirror in apt's sources; set CRSTREAM_CRIU_POOL_URL"
	return 1
}

# fetch_with_apt_source DIR: fallback. Ask apt for the Debian source package
# carrying the same tarball, through a private apt configuration under the
# cache dir: its own sources.list, package lists and cache, so the system's
# /etc/apt and /var/lib/apt stay untouched.
fetch_with_apt_source() {
	local dir=$1 aptdir="$CACHE_ROOT/apt-src" dl mirror=${CRSTREAM_CRIU_APT_MIRROR:-}
	[[ -n $mirror ]] || mirror=$(debian_mirrors | head -n1)
	[[ -n $mirror ]] || {
		log "no Debian mirror in apt's sources; set CRSTREAM_CRIU_APT_MIRROR"
		return 1
	}
	mkdir -p "$aptdir/sources.list.d" "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
	printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
		"$mirror" "$CRIU_DEBIAN_SUITE" >"$aptdir/sources.list"
	local opts=(
		-q
		-o "Dir::Etc::sourcelist=$aptdir/sources.list"
		-o "Dir::Etc::sourceparts=$aptdir/sources.list.d"
		-o "Dir::State::Lists=$aptdir/lists"
		-o "Dir::Cache=$aptdir/cache"
		-o Acquire::Languages=none
	)
	log "fetching source package criu=$CRIU_DEBIAN_VERSION ($CRIU_DEBIAN_SUITE) with apt-get source"
	run_prefixed apt-get "${opts[@]}" update || return 1
	# apt downloads as the unprivileged _apt user; give it a directory it can
	# write to (the build dir above it is world-traversable).
	dl="$dir/apt-source"
	mkdir -p "$dl"
	if ((EUID == 0)) && id _apt >/dev/null 2>&1; then chown _apt "$dl"; fi
	# Only the orig tarball matters here. apt-get source also fetches the
	# .dsc and Debian diff and fails if either is unavailable (some mirrors
	# and proxies lack them), so its exit status alone does not decide: the
	# tarball is used if it arrived, and it is sha256-verified next anyway.
	if ! (cd "$dl" && run_prefixed apt-get "${opts[@]}" source --download-only "criu=$CRIU_DEBIAN_VERSION"); then
		log "apt-get source reported errors; checking whether $TARBALL arrived anyway"
	fi
	[[ -f $dl/$TARBALL ]] || {
		log "apt-get source did not produce $TARBALL"
		return 1
	}
	mv -f "$dl/$TARBALL" "$dir/$TARBALL"
}

verify_sha256() {
	local file=$1 got
	got=$(sha256sum -- "$file")
	got=${got%% *}
	if [[ $got != "$CRIU_SHA256" ]]; then
		log "sha256 mismatch for $(basename -- "$file"): expected $CRIU_SHA256, got $got"
		return 1
	fi
	log "sha256 verified: $got"
}

# ---- the cached build ---------------------------------------------------------
INST_DIR=$CACHE_ROOT/criu-$CRIU_VERSION
STAMP=$INST_DIR/stamp

# The cache entry is intact when the stamp names the pinned version and
# tarball sha256, and the binary still has the sha256 recorded at install.
cache_intact() {
	[[ -x $INST_DIR/criu && -f $STAMP ]] || return 1
	grep -qx "version=$CRIU_VERSION" "$STAMP" || return 1
	grep -qx "source_sha256=$CRIU_SHA256" "$STAMP" || return 1
	local bin_sha
	bin_sha=$(sha256sum -- "$INST_DIR/criu")
	grep -qx "binary_sha256=${bin_sha%% *}" "$STAMP"
}

# Temp paths removed on exit, whatever happens.
WORK=
STAGE=
OLD=
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
	local d
	for d in "$WORK" "$STAGE" "$OLD"; do
		[[ -z $d ]] || rm -rf -- "$d"
	done
}
trap cleanup EXIT

# unpack_verified DIR: fetch the pinned tarball into DIR, verify it, unpack
# it under DIR/src and set UNPACKED to the source tree's path.
UNPACKED=
unpack_verified() {
	local dir=$1
	if ! fetch_from_pool "$dir"; then
		log "download from the Debian pool failed; falling back to apt-get source"
		fetch_with_apt_source "$dir" || die "could not fetch $TARBALL (pool download and apt-get source both failed)"
	fi
	# Never unpack (let alone build and run as root) unverified source.
	verify_sha256 "$dir/$TARBALL" || die "refusing to use CRIU source from a tarball with an unexpected sha256"

	mkdir "$dir/src"
	tar --no-same-owner -C "$dir/src" -xJf "$dir/$TARBALL"
	local srcs=("$dir"/src/*/)
	((${#srcs[@]} == 1)) || die "unexpected layout in $TARBALL"
	UNPACKED=${srcs[0]%/}
}

build_pinned() {
	ensure_packages "${CRIU_BUILD_DEPS[@]}"

	WORK=$(mktemp -d "${TMPDIR:-/tmp}/crstream-criu-build.XXXXXX")
	chmod 755 "$WORK" # the apt fallback's _apt user must reach a subdir
	unpack_verified "$WORK"
	local src=$UNPACKED

	local jobs buildlog="$WORK/build.log"
	jobs=$(nproc 2>/dev/null || echo 2)
	log "building CRIU $CRIU_VERSION (make -j$jobs criu); this takes a minute or so"
	local t0=$SECONDS
	if ! make -C "$src" -j"$jobs" criu >"$buildlog" 2>&1; then
		cp -f "$buildlog" "$CACHE_ROOT/criu-$CRIU_VERSION.build.log" || true
		show "$(tail -n 30 "$buildlog")"
		die "CRIU build failed; full log: $CACHE_ROOT/criu-$CRIU_VERSION.build.log"
	fi
	log "build finished in $((SECONDS - t0)) s"

	# Stage the result next to its final place (same filesystem), validate it
	# there, then rename it into place so readers never see a partial install.
	STAGE=$(mktemp -d "$CACHE_ROOT/.criu-$CRIU_VERSION.stage.XXXXXX")
	chmod 755 "$STAGE"
	install -m 0755 "$src/criu/criu" "$STAGE/criu"
	local bin_sha
	bin_sha=$(sha256sum -- "$STAGE/criu")
	{
		printf 'version=%s\n' "$CRIU_VERSION"
		printf 'source_sha256=%s\n' "$CRIU_SHA256"
		printf 'binary_sha256=%s\n' "${bin_sha%% *}"
		printf 'built=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	} >"$STAGE/stamp"
	qualify "$STAGE/criu" || die "the freshly built CRIU $CRIU_VERSION does not qualify (see above)"

	if [[ -e $INST_DIR ]]; then
		OLD=$(mktemp -d "$CACHE_ROOT/.criu-$CRIU_VERSION.old.XXXXXX")
		mv -T -- "$INST_DIR" "$OLD/criu"
	fi
	mv -T -- "$STAGE" "$INST_DIR"
	STAGE=
	rm -rf -- "$WORK"
	WORK=
	log "installed $INST_DIR/criu"
}

emit() {
	log "using $1 (CRIU $QUALIFIED_VERSION)"
	printf '%s\n' "$1" >&3
	exit 0
}

# provide_source DIR: the --source mode. The tree is unpacked next to its
# final place and renamed into it, with a stamp naming the tarball's sha256,
# so a half-unpacked tree is never mistaken for a finished one.
provide_source() {
	local parent=$1 tree stamp
	mkdir -p "$parent" || die "cannot create $parent"
	parent=$(cd -- "$parent" && pwd -P)
	tree=$parent/criu-$CRIU_VERSION
	stamp=$tree/.crstream-source
	exec {lock_fd}>>"$parent/.criu-$CRIU_VERSION.lock" || die "cannot open a lock file in $parent"
	flock "$lock_fd"
	if [[ -f $stamp ]] && grep -qx "source_sha256=$CRIU_SHA256" "$stamp"; then
		log "reusing the source tree $tree"
	else
		[[ ! -e $tree ]] || die "$tree exists but was not unpacked by this script from the pinned tarball; remove it"
		WORK=$(mktemp -d "$parent/.criu-src.XXXXXX")
		chmod 755 "$WORK" # the apt fallback's _apt user must reach a subdir
		unpack_verified "$WORK"
		printf 'source_sha256=%s\n' "$CRIU_SHA256" >"$UNPACKED/.crstream-source"
		mv -T -- "$UNPACKED" "$tree"
		log "unpacked CRIU $CRIU_VERSION source into $tree"
	fi
	ensure_packages "${CRIU_BUILD_DEPS[@]}"
	printf '%s\n' "$tree" >&3
	exit 0
}

# ---- main ---------------------------------------------------------------------

[[ -z $SOURCE_DIR ]] || provide_source "$SOURCE_DIR"

# (a) An explicit choice is honoured or refused, never replaced.
if [[ -n ${CRSTREAM_CRIU:-} ]]; then
	bin=$(abs_path "$CRSTREAM_CRIU") || die "CRSTREAM_CRIU=$CRSTREAM_CRIU: not found in PATH"
	log "validating CRSTREAM_CRIU=$bin"
	qualify "$bin" || die "CRSTREAM_CRIU=$CRSTREAM_CRIU does not qualify (see the failed check above); unset it to let this script find or build one"
	emit "$bin"
fi

# (b) A system CRIU, when it is new enough and works on this kernel.
if sys=$(type -P criu); then
	sys=$(abs_path "$sys")
	log "found criu in PATH: $sys; validating"
	if qualify "$sys"; then
		emit "$sys"
	fi
	log "system criu does not qualify; using the pinned CRIU $CRIU_VERSION instead"
fi

# (c) The pinned build, reused from the cache or built now. Everything from
# here on holds the lock, so parallel runs build at most once.
mkdir -p "$CACHE_ROOT" || die "cannot create cache dir $CACHE_ROOT"
LOCK=$CACHE_ROOT/criu-$CRIU_VERSION.lock
exec {lock_fd}>>"$LOCK" || die "cannot open lock file $LOCK"
if ! flock -n "$lock_fd"; then
	log "another run holds $LOCK; waiting for it"
	flock "$lock_fd"
fi

if cache_intact; then
	log "reusing cached build $INST_DIR/criu; validating"
	if ! qualify "$INST_DIR/criu"; then
		# A binary that is intact but no longer runs usually lost a shared
		# library; the build dependencies bring them back.
		log "cached CRIU failed validation; making sure its libraries are installed and retrying"
		ensure_packages "${CRIU_BUILD_DEPS[@]}"
		qualify "$INST_DIR/criu" || die "cached CRIU $INST_DIR/criu does not qualify (see above); remove $INST_DIR to force a rebuild"
	fi
	emit "$INST_DIR/criu"
fi

if [[ -e $INST_DIR ]]; then
	log "cache entry $INST_DIR is incomplete or does not match the pins; rebuilding"
else
	log "no cached CRIU $CRIU_VERSION in $CACHE_ROOT; building it"
fi
build_pinned
emit "$INST_DIR/criu"
