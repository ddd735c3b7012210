#!/bin/bash
# A single-node OpenStack Swift with its S3 API (s3api + tempauth) on
# 127.0.0.1, for crstream's object-storage tests. Swift checks SigV4
# signatures, payload hashes, part sizes and multipart ETags the way AWS
# does, which is why the S3 backend is tested against it.
#
#   scripts/s3-server.sh start   install (if missing) and start; no-op if up
#   scripts/s3-server.sh stop    stop the servers (data is kept)
#   scripts/s3-server.sh env     print `export` lines for the tests
#   scripts/s3-server.sh status  exit 0 if the S3 endpoint answers
#   scripts/s3-server.sh install install the packages only (start does it
#                        too; for callers that start it without a network)
#   scripts/s3-server.sh stop-proxy [PORT]   kill a proxy at once (SIGKILL,
#                        like a crash: open connections are reset)
#   scripts/s3-server.sh start-proxy [PORT]  start it again, wait until it
#                        answers
#     Without PORT these act on the main proxy. With another PORT they run
#     an extra proxy in front of the same servers (config, pid and log
#     named proxy-PORT), which fault tests can crash and restart without
#     disturbing anyone else using the main one; `stop` stops those too.
#
# Settings (environment):
#   CRSTREAM_SWIFT_DIR   state directory (default /tmp/crstream-swift):
#                        configs, rings, object storage, pids and logs
#   CRSTREAM_SWIFT_PORT  proxy port (default 18080); the account, container
#                        and object servers and memcached (tempauth keeps
#                        its tokens there) take the four ports above it
#   CRSTREAM_SWIFT_BUCKET  test bucket created at start (default crstream-test)
#   CRSTREAM_SWIFT_ADDR  the proxy's address (default 127.0.0.1), the one
#                        the endpoint names; bench/remote.sh runs Swift in a
#                        network namespace of its own and sets the address
#                        of its end of the emulated link. The servers behind
#                        the proxy stay on 127.0.0.1.
#
# Credentials: tempauth user test:tester, key testing, i.e. S3 access key id
# "test:tester" and secret "testing". Region us-east-1.
set -euo pipefail

DIR=${CRSTREAM_SWIFT_DIR:-/tmp/crstream-swift}
PORT=${CRSTREAM_SWIFT_PORT:-18080}
BUCKET=${CRSTREAM_SWIFT_BUCKET:-crstream-test}
ADDR=${CRSTREAM_SWIFT_ADDR:-127.0.0.1}
ENDPOINT="http://$ADDR:$PORT"
SERVERS="memcached account container object proxy"

log() { echo "s3-server: $*" >&2; }
die() { log "$*"; exit 1; }

port_of() {
	case $1 in
	proxy) echo "$PORT" ;;
	account) echo $((PORT + 1)) ;;
	container) echo $((PORT + 2)) ;;
	object) echo $((PORT + 3)) ;;
	memcached) echo $((PORT + 4)) ;;
	esac
}

# shellcheck disable=SC2034 # read by lib/packages.sh
LOG_PREFIX=s3-server
# shellcheck source=lib/packages.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/packages.sh"

install_packages() {
	# awscli and s3fs are not needed by the server: the tests use awscli
	# to check that objects cross between it and crstream both ways, and
	# s3fs to mount the bucket as a plain directory.
	ensure_packages swift-proxy swift-account swift-container swift-object python3-lxml \
		memcached awscli s3fs
}

# Swift keeps metadata in extended attributes; refuse early, with a clear
# message, on a file system without user xattrs (old tmpfs, some overlays).
check_xattr() {
	local probe="$DIR/.xattr-probe"
	: >"$probe"
	if ! python3_sys -c "import os,sys; os.setxattr(sys.argv[1], 'user.crstream', b'1')" "$probe" 2>/dev/null; then
		rm -f "$probe"
		die "$DIR: file system has no user xattr support; set CRSTREAM_SWIFT_DIR elsewhere"
	fi
	rm -f "$probe"
}

# Swift is a Debian package built for /usr/bin/python3, whatever python3 is
# first in PATH.
python3_sys() { /usr/bin/python3 "$@"; }

write_configs() {
	local etc="$DIR/etc" user
	user=$(id -un)
	mkdir -p "$etc" "$DIR/srv/d1" "$DIR/run" "$DIR/log" "$DIR/cache"
	local common="[DEFAULT]
bind_ip = 127.0.0.1
user = $user
swift_dir = $etc
devices = $DIR/srv
mount_check = false
disable_fallocate = true
# Serve from the parent process: no fork, a faster start.
workers = 0
log_name = %s
log_facility = LOG_LOCAL2
log_level = WARNING
"
	printf "$common" account >"$etc/account-server.conf"
	cat >>"$etc/account-server.conf" <<CONF
bind_port = $(port_of account)
[pipeline:main]
pipeline = account-server
[app:account-server]
use = egg:swift#account
CONF
	printf "$common" container >"$etc/container-server.conf"
	cat >>"$etc/container-server.conf" <<CONF
bind_port = $(port_of container)
[pipeline:main]
pipeline = container-server
[app:container-server]
use = egg:swift#container
CONF
	printf "$common" object >"$etc/object-server.conf"
	cat >>"$etc/object-server.conf" <<CONF
bind_port = $(port_of object)
[pipeline:main]
pipeline = object-server
[app:object-server]
use = egg:swift#object
CONF
	# The proxy: s3api in front of tempauth; slo/dlo carry multipart
	# uploads. AWS allows 10,000 parts; so do we (s3api and slo default to
	# 1000).
	printf "$common" proxy | sed "s/^bind_ip = .*/bind_ip = $ADDR/" >"$etc/proxy-server.conf"
	cat >>"$etc/proxy-server.conf" <<CONF
bind_port = $PORT
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$(port_of memcached)
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
max_upload_part_num = 10000
[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000
max_manifest_size = 8388608
[filter:dlo]
use = egg:swift#dlo
CONF
}

# One Python process builds all three rings: swift-ring-builder would take
# nine interpreter starts (~15 s) for the same work.
build_rings() {
	local etc="$DIR/etc"
	[ -f "$etc/account.ring.gz" ] && [ -f "$etc/container.ring.gz" ] &&
		[ -f "$etc/object.ring.gz" ] && return 0
	python3_sys - "$etc" "$(port_of account)" "$(port_of container)" "$(port_of object)" <<'PY'
import sys
from swift.common.ring import RingBuilder
etc = sys.argv[1]
for name, port in zip(("account", "container", "object"), sys.argv[2:]):
    # 2^6 partitions, 1 replica, 1 hour between moves: one disk.
    b = RingBuilder(6, 1, 1)
    b.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port),
               "device": "d1", "weight": 100})
    b.rebalance()
    b.save("%s/%s.builder" % (etc, name))
    b.get_ring().save("%s/%s.ring.gz" % (etc, name))
PY
}

running() {
	local pidfile="$DIR/run/$1.pid"
	[ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

answers() {
	# The proxy's healthcheck middleware answers "OK" once it serves.
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$ENDPOINT/healthcheck" || true)
	[ "$code" = 200 ]
}

start_servers() {
	local s
	for s in $SERVERS; do
		running "$s" && continue
		if [ "$s" = memcached ]; then
			setsid /usr/bin/memcached -l 127.0.0.1 -p "$(port_of memcached)" -U 0 \
				-m 64 -u "$(id -un)" >>"$DIR/log/$s.log" 2>&1 </dev/null &
		else
			setsid /usr/bin/python3 "/usr/bin/swift-$s-server" "$DIR/etc/$s-server.conf" \
				>>"$DIR/log/$s.log" 2>&1 </dev/null &
		fi
		echo $! >"$DIR/run/$s.pid"
	done
}

# port_open PORT: something listens there (proxies on $ADDR, the servers
# behind them on 127.0.0.1).
port_open() {
	local host=$ADDR
	case $1 in
	"$(port_of account)" | "$(port_of container)" | "$(port_of object)" | "$(port_of memcached)")
		host=127.0.0.1 ;;
	esac
	(exec 3<>"/dev/tcp/$host/$1") 2>/dev/null
}

# The proxy may answer before the servers behind it listen: wait for all.
wait_ready() {
	local i s ok
	for i in $(seq 1 300); do
		ok=1
		for s in $SERVERS; do
			port_open "$(port_of "$s")" || ok=0
		done
		[ $ok = 1 ] && answers && return 0
		sleep 0.1
	done
	die "Swift did not answer at $ENDPOINT within 30 s; logs in $DIR/log"
}

# The bucket is a Swift container of account AUTH_test; create it with the
# native API (tempauth token), which needs no S3 client.
create_bucket() {
	local hdrs token url code
	hdrs=$(curl -s -D - -o /dev/null -H 'X-Auth-User: test:tester' \
		-H 'X-Auth-Key: testing' "$ENDPOINT/auth/v1.0")
	token=$(printf '%s' "$hdrs" | tr -d '\r' | sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: //p')
	url=$(printf '%s' "$hdrs" | tr -d '\r' | sed -n 's/^[Xx]-[Ss]torage-[Uu]rl: //p')
	[ -n "$token" ] && [ -n "$url" ] || die "tempauth did not issue a token at $ENDPOINT/auth/v1.0"
	code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "X-Auth-Token: $token" "$url/$BUCKET")
	case $code in
	201 | 202) ;;
	*) die "creating container $BUCKET: HTTP $code" ;;
	esac
}

cmd_start() {
	install_packages
	mkdir -p "$DIR"
	if answers; then
		create_bucket
		return 0
	fi
	check_xattr
	[ -f "$DIR/etc/proxy-server.conf" ] && grep -q "^bind_port = $PORT\$" "$DIR/etc/proxy-server.conf" &&
		grep -q "^bind_ip = $ADDR\$" "$DIR/etc/proxy-server.conf" || write_configs
	build_rings
	start_servers
	wait_ready
	create_bucket
	log "Swift S3 API up at $ENDPOINT (state in $DIR)"
}

cmd_stop() {
	local s f ports=""
	for f in "$DIR"/run/proxy-*.pid; do
		[ -e "$f" ] || continue
		s=$(basename "$f" .pid)
		kill_server "$s" TERM && ports+=" ${s#proxy-}"
	done
	for s in $SERVERS; do
		kill_server "$s" TERM && ports+=" $(port_of "$s")"
	done
	# Gone (their ports closed) before we return.
	local i p open
	for i in $(seq 1 100); do
		open=0
		for p in $ports; do
			port_open "$p" && open=1
		done
		[ $open = 0 ] && return 0
		sleep 0.1
	done
	log "some servers still listen after 10 s:$ports"
}

# kill_server NAME SIGNAL: signal the server's process group, forget its
# pid; false if it has no pid file.
kill_server() {
	local pid
	[ -f "$DIR/run/$1.pid" ] || return 1
	pid=$(cat "$DIR/run/$1.pid")
	# setsid made each server its own process group (workers included).
	kill "-$2" -- "-$pid" 2>/dev/null || true
	rm -f "$DIR/run/$1.pid"
}

# proxy_name [PORT]: "proxy" for the main one, else "proxy-PORT".
proxy_name() {
	if [ -z "${1:-}" ] || [ "$1" = "$PORT" ]; then
		echo proxy
	else
		case $1 in *[!0-9]*) die "not a port: $1" ;; esac
		echo "proxy-$1"
	fi
}

cmd_stop_proxy() {
	local name pid
	name=$(proxy_name "${1:-}")
	[ -f "$DIR/run/$name.pid" ] || die "$name is not running (no $DIR/run/$name.pid)"
	pid=$(cat "$DIR/run/$name.pid")
	kill_server "$name" KILL || true
	# Its listening socket closed before we say so (a zombie, not yet
	# reaped, holds no sockets).
	local i
	for i in $(seq 1 100); do
		port_open "${1:-$PORT}" || return 0
		sleep 0.05
	done
	die "$name (pid $pid) still listens on port ${1:-$PORT}"
}

cmd_start_proxy() {
	local port=${1:-$PORT} name
	name=$(proxy_name "$port")
	[ -f "$DIR/etc/proxy-server.conf" ] || die "Swift is not set up in $DIR: run $0 start first"
	if [ "$name" != proxy ]; then
		sed "s/^bind_port = .*/bind_port = $port/" "$DIR/etc/proxy-server.conf" \
			>"$DIR/etc/$name-server.conf"
	fi
	if ! running "$name"; then
		setsid /usr/bin/python3 /usr/bin/swift-proxy-server "$DIR/etc/$name-server.conf" \
			>>"$DIR/log/$name.log" 2>&1 </dev/null &
		echo $! >"$DIR/run/$name.pid"
	fi
	local i code
	for i in $(seq 1 300); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
			"http://$ADDR:$port/healthcheck" || true)
		[ "$code" = 200 ] && return 0
		running "$name" || die "$name exited at start; see $DIR/log/$name.log"
		sleep 0.1
	done
	die "$name did not answer on port $port within 30 s; see $DIR/log/$name.log"
}

cmd_env() {
	cat <<ENV
export AWS_ENDPOINT_URL=$ENDPOINT
export AWS_ACCESS_KEY_ID=test:tester
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export CRSTREAM_TEST_S3_ENDPOINT=$ENDPOINT
export CRSTREAM_TEST_S3_BUCKET=$BUCKET
ENV
}

case ${1:-} in
start) cmd_start && cmd_env ;;
stop) cmd_stop ;;
env) cmd_env ;;
status) answers ;;
install) install_packages ;;
stop-proxy) cmd_stop_proxy "${2:-}" ;;
start-proxy) cmd_start_proxy "${2:-}" ;;
*) die "usage: $0 start|stop|env|status|install|stop-proxy [PORT]|start-proxy [PORT]" ;;
esac
