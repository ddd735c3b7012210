#!/bin/bash
# bench/remote.sh — checkpoints over a real, rate-limited network to object
# storage: plain CRIU + awscli (A), CRIU + tar | lz4 | awscli (B), CRIU into
# an s3fs mount (C) and crstream straight to s3:// (D), on the same subject
# in the same run. One command, as root:
#
#   bench/remote.sh                       # 1 Gbit/s 5 ms and 10 Gbit/s 1 ms,
#                                         # 1 GiB + 4 GiB subjects, 3 repeats
#   bench/remote.sh --quick               # fewer rows, one link, 1 repeat (a check)
#   bench/remote.sh --links 1gbit:5ms --rows 'lz4-4|A'   # choose links and rows
#   bench/remote.sh --update-results      # also rewrite bench/REMOTE.md + chart
#   bench/remote.sh --help                # every option
#
# The network: two network namespaces made here, a client (the subject,
# CRIU, crstream, awscli, s3fs) and a server (OpenStack Swift with its S3
# API, scripts/s3-server.sh), joined by a veth pair made inside them. Each
# veth's egress is shaped with tc tbf (the rate) and every packet a side
# receives waits in a netfilter queue for the one-way delay
# (build/tools/linkem, bench/linkem.c: this kernel has no sch_netem). No
# host interface is touched and no packet leaves the two namespaces. Bytes
# over the link come from the veth's counters.
#
# Cleanup, also when interrupted or failing: s3fs mounts unmounted, Swift
# stopped, linkem and anything else left in the two namespaces killed, the
# namespaces deleted, scratch directories removed. Exit status 1 if anything
# failed, including a restored subject that does not verify. It measures and
# reports; it asserts nothing about speed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

for arg in "$@"; do
	case $arg in -h | --help) exec python3 bench/remote.py --help ;; esac
done
[ "$(id -u)" = 0 ] || { echo "bench/remote.sh: CRIU and network namespaces need root" >&2; exit 1; }

NS_CLIENT=crstream-remote-client
NS_SERVER=crstream-remote-server
DEV_CLIENT=crs-client	# the client's end of the veth pair
DEV_SERVER=crs-server
ADDR_CLIENT=10.201.0.1
ADDR_SERVER=10.201.0.2
SWIFT_PORT=${CRSTREAM_SWIFT_PORT:-18800}
# Swift's objects and the local image directories of rows A-C live on the
# root disk (as they would on a real client and server); the s3fs mounts
# under it.
WORK=${REMOTE_WORK:-/var/tmp/crstream-remote}
SWIFT_DIR=$WORK/swift
MNT=$WORK/mnt

echo "== setup (packages, CRIU)" >&2
# awscli: rows A and B; s3fs + fuse3: row C; iproute2 (ip, tc) and iptables:
# the emulated network; lz4: row B; gnuplot-nox: the chart.
EXTRA_PACKAGES="awscli s3fs fuse3 iproute2 iptables lz4 gnuplot-nox ${EXTRA_PACKAGES:-}" \
	scripts/setup.sh >/dev/null
# Swift's packages now: its namespace has no route to a package mirror.
scripts/s3-server.sh install
# shellcheck source=/dev/null
source build/env.sh
export CRSTREAM_CRIU

echo "== build (unsanitized build/crstream, its S3 plugin, subjects, tools, linkem)" >&2
make -s -j2 build/crstream build/crstream-s3.so subjects build/tools/linkem >/dev/null

in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }

swift() {
	in_ns "$NS_SERVER" env CRSTREAM_SWIFT_DIR="$SWIFT_DIR" CRSTREAM_SWIFT_PORT="$SWIFT_PORT" \
		CRSTREAM_SWIFT_ADDR="$ADDR_SERVER" CRSTREAM_SWIFT_BUCKET=remote-bench \
		scripts/s3-server.sh "$@"
}

# Everything this script may have left: safe to run at any point, twice,
# and before setup (a run killed with SIGKILL leaves its namespaces).
cleanup() {
	local m ns pids
	set +e
	# s3fs mounts (row C) first: their daemons live in the client namespace.
	if [ -d "$MNT" ]; then
		awk -v m="$MNT" 'index($2, m) == 1 {print $2}' /proc/mounts | while read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m"
		done
	fi
	[ -e "/run/netns/$NS_SERVER" ] && [ -f "$SWIFT_DIR/run/proxy.pid" ] && swift stop >/dev/null 2>&1
	for ns in "$NS_CLIENT" "$NS_SERVER"; do
		[ -e "/run/netns/$ns" ] || continue
		# linkem (started by remote.py in the client namespace), s3fs,
		# subjects, anything else a failed run left in there.
		pids=$(ip netns pids "$ns" 2>/dev/null)
		[ -n "$pids" ] && kill -9 $pids 2>/dev/null
		ip netns del "$ns"
	done
	rm -rf "$WORK/images" "$MNT"
	set -e
}

make_network() {
	ip netns add "$NS_CLIENT"
	ip netns add "$NS_SERVER"
	ip -n "$NS_CLIENT" link set lo up
	ip -n "$NS_SERVER" link set lo up
	# Both ends are created inside the namespaces, never in the host's.
	ip -n "$NS_CLIENT" link add "$DEV_CLIENT" type veth peer name "$DEV_SERVER" netns "$NS_SERVER"
	ip -n "$NS_CLIENT" addr add "$ADDR_CLIENT/30" dev "$DEV_CLIENT"
	ip -n "$NS_SERVER" addr add "$ADDR_SERVER/30" dev "$DEV_SERVER"
	ip -n "$NS_CLIENT" link set "$DEV_CLIENT" up
	ip -n "$NS_SERVER" link set "$DEV_SERVER" up
	# What a side receives over the link waits in netfilter queue 0 for
	# linkem's verdict (the delay). Until linkem runs, nothing crosses.
	in_ns "$NS_CLIENT" iptables -A INPUT -i "$DEV_CLIENT" -j NFQUEUE --queue-num 0
	in_ns "$NS_SERVER" iptables -A INPUT -i "$DEV_SERVER" -j NFQUEUE --queue-num 0
}

cleanup
trap cleanup EXIT
trap 'exit 130' INT TERM	# until the benchmark runs
mkdir -p "$WORK" "$MNT"

echo "== network: namespaces $NS_CLIENT ($ADDR_CLIENT) <-> $NS_SERVER ($ADDR_SERVER)" >&2
make_network

echo "== Swift in $NS_SERVER at http://$ADDR_SERVER:$SWIFT_PORT (state in $SWIFT_DIR)" >&2
# The server is reached over the link, so it answers only once linkem lets
# packets through; s3-server.sh checks it from inside its own namespace.
swift start >/dev/null

# In the background, so that a signal reaches this script at once (bash
# runs traps only between commands): it is passed on to the benchmark as
# SIGTERM (a background job ignores SIGINT), which stops, unmounts and
# stops linkem, and then cleanup() runs.
in_ns "$NS_CLIENT" build/tools/subreaper python3 bench/remote.py \
	--ns-client "$NS_CLIENT" --ns-server "$NS_SERVER" \
	--dev-client "$DEV_CLIENT" --dev-server "$DEV_SERVER" \
	--endpoint "http://$ADDR_SERVER:$SWIFT_PORT" --bucket remote-bench \
	--work "$WORK" --mnt "$MNT" --swift-dir "$SWIFT_DIR" "$@" &
bench=$!
trap 'kill -TERM "$bench" 2>/dev/null' INT TERM
while :; do
	rc=0
	wait "$bench" || rc=$?
	kill -0 "$bench" 2>/dev/null || break
done
exit "$rc"
