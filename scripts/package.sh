#!/usr/bin/env bash
# package.sh - build crstream's Debian package from this tree.
#
# Usage: scripts/package.sh [--no-lintian]     (as root on a fresh machine,
#                                               or as anyone with the build
#                                               dependencies installed)
#
# Steps:
#   1. install what building needs and is missing: debian/control's
#      Build-Depends, dpkg-dev, and lintian (scripts/lib/packages.sh);
#   2. copy the tree (the files git tracks plus new ones it does not ignore;
#      everything but build output without git) into a temporary directory,
#      so that this tree's build/ and build-asan/ are left alone;
#   3. run `dpkg-buildpackage -us -uc -b` there (DEB_BUILD_OPTIONS is
#      honoured, e.g. nocheck to skip the unit tests);
#   4. move the .debs into dist/ (older crstream .debs there are removed);
#   5. run lintian on them at its default level, its output on stderr and in
#      dist/lintian.txt; any error or warning fails the script.
#
# Output: the paths of the two .debs on stdout, crstream's then
# crstream-daemon's (gRPC, SQLite and libsystemd are that package's
# dependencies alone); progress on stderr, prefixed "package:".
# Exit: 0 on success, 1 on failure, 2 on a usage error.

set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
DIST=$ROOT/dist

log() { printf 'package: %s\n' "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

lintian=1
case ${1:-} in
'') ;;
--no-lintian) lintian=0 ;;
-h | --help)
	sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"
	exit 0
	;;
*)
	log "unknown argument: $1 (see --help)"
	exit 2
	;;
esac

# ---- build dependencies -------------------------------------------------------
# debian/control's Build-Depends as package names: versions and
# architecture qualifiers dropped, the first of alternatives, and
# debhelper-compat (a virtual package) as debhelper.
build_depends() {
	sed -n '/^Build-Depends:/,/^[^ ]/{s/^Build-Depends://;/^[^ ]/d;p}' "$ROOT/debian/control" |
		tr ',' '\n' | sed -e 's/|.*//' -e 's/[[(].*//' -e 's/^[[:space:]]*//;s/[[:space:]]*$//' |
		sed -e 's/^debhelper-compat$/debhelper/' | grep -v '^$'
}

# shellcheck disable=SC2034 # read by lib/packages.sh
LOG_PREFIX=package
# shellcheck source=lib/packages.sh
source "$ROOT/scripts/lib/packages.sh"
mapfile -t deps < <(build_depends)
tools=(dpkg-dev)
((lintian)) && tools+=(lintian)
ensure_packages "${deps[@]}" "${tools[@]}"

# ---- a private copy of the tree -----------------------------------------------
version=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/crstream-package.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT
src=$WORK/crstream-$version
mkdir "$src"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
	# Tracked files still present, and new files not ignored.
	(cd "$ROOT" && git ls-files -z -co --exclude-standard --deduplicate |
		while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
		tar --null -T - -cf -) | tar -xf - -C "$src"
else
	tar -C "$ROOT" --exclude=./build --exclude=./build-asan --exclude=./dist -cf - . |
		tar -xf - -C "$src"
fi

# ---- build --------------------------------------------------------------------
log "building crstream $version (dpkg-buildpackage -us -uc -b) in $src"
t0=$SECONDS
buildlog=$WORK/build.log
if ! (cd "$src" && dpkg-buildpackage -us -uc -b -Jauto) >"$buildlog" 2>&1; then
	tail -n 40 "$buildlog" | sed 's/^/package:   | /' >&2
	mkdir -p "$DIST"
	cp -f "$buildlog" "$DIST/build.log"
	die "dpkg-buildpackage failed; full log: $DIST/build.log"
fi
log "built in $((SECONDS - t0)) s"

mkdir -p "$DIST"
rm -f "$DIST"/crstream_*.deb "$DIST"/crstream-daemon_*.deb
debs=()
for pkg in crstream crstream-daemon; do
	made=("$WORK/${pkg}_${version}"_*.deb)
	[[ -f ${made[0]} ]] || die "dpkg-buildpackage made no ${pkg}_${version}_*.deb"
	mv -f "${made[0]}" "$DIST/"
	debs+=("$DIST/$(basename -- "${made[0]}")")
done

# ---- lintian ------------------------------------------------------------------
if ((lintian)); then
	log "lintian ${debs[*]}"
	rc=0
	# Lintian advises against running as root; it only needs to read the .deb.
	as_user=()
	if ((EUID == 0)) && id nobody >/dev/null 2>&1; then
		chmod a+r "${debs[@]}"
		as_user=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups --reset-env)
	fi
	(cd / && "${as_user[@]}" lintian --fail-on error,warning "${debs[@]}") >"$DIST/lintian.txt" 2>&1 || rc=$?
	sed 's/^/package:   | /' "$DIST/lintian.txt" >&2
	((rc == 0)) || die "lintian found errors or warnings (dist/lintian.txt)"
	log "lintian: clean (no errors or warnings)"
fi
printf '%s\n' "${debs[@]}"
