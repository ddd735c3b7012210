# Installing Debian packages only when missing; sourced by the setup
# scripts. The caller defines log() and die() and sets LOG_PREFIX (the tag
# apt's output is indented under, e.g. "setup"). Packages this installed
# are appended to the INSTALLED array.

INSTALLED=()

# Print the packages among "$@" that dpkg does not have installed.
missing_packages() {
	local p
	for p in "$@"; do
		# shellcheck disable=SC2016 # ${...} is a dpkg-query format, not ours
		[[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] ||
			printf '%s\n' "$p"
	done
}

apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		-o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0 "$@"
}

# Install whichever of "$@" are missing. `apt-get update` is run only when
# the install fails in a way that means the package lists are absent or
# stale (a fresh machine, or an old list pointing at superseded .debs).
ensure_packages() {
	local missing aptlog indent="s/^/${LOG_PREFIX:-packages}:   | /"
	mapfile -t missing < <(missing_packages "$@")
	((${#missing[@]} > 0)) || return 0
	((EUID == 0)) || die "missing packages: ${missing[*]} (run as root, or install them first)"
	log "installing missing packages: ${missing[*]}"
	aptlog=$(mktemp)
	if ! apt_install "${missing[@]}" 2>&1 | tee "$aptlog" | sed -u "$indent" >&2; then
		if ! grep -qE 'Unable to locate package|has no installation candidate|Failed to fetch|Unable to fetch some archives' "$aptlog"; then
			rm -f "$aptlog"
			die "apt-get install ${missing[*]} failed"
		fi
		log "package lists look missing or stale; running apt-get update and retrying"
		apt-get update -q -o DPkg::Lock::Timeout=300 2>&1 | sed -u "$indent" >&2 ||
			die "apt-get update failed"
		apt_install "${missing[@]}" 2>&1 | sed -u "$indent" >&2 ||
			die "apt-get install ${missing[*]} failed"
	fi
	rm -f "$aptlog"
	INSTALLED+=("${missing[@]}")
}
