#include "criu/criu_socket.h"
#include "util/err.h"
#include "util/fdio.h"
#include "criu_streamer.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int criu_listen(struct criu_listener *l, const char *images_dir, const char *sock_name)
{
	l->fd = -1;
	int n = snprintf(l->path, sizeof(l->path), "%s/%s", images_dir, sock_name);
	if (n < 0 || (size_t)n >= sizeof(l->path))
		return err_set("socket path too long for a UNIX socket: %s/%s (%d bytes, limit %zu)",
			       images_dir, sock_name, n, sizeof(l->path) - 1);

	if (unlink(l->path) < 0 && errno != ENOENT)
		return err_sys("cannot remove stale socket %s", l->path);

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_sys("socket(AF_UNIX)");
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	memcpy(addr.sun_path, l->path, (size_t)n + 1);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		err_sys("cannot bind %s", l->path);
		close(fd);
		return -1;
	}
	/* 0600 whatever the umask, before anyone can connect (no one can
	 * before listen()); never through a symbolic link put in its place. */
	if (fchmodat(AT_FDCWD, l->path, 0600, AT_SYMLINK_NOFOLLOW) < 0) {
		err_sys("chmod %s", l->path);
		close(fd);
		unlink(l->path);
		return -1;
	}
	if (listen(fd, 1) < 0) {
		err_sys("cannot listen on %s", l->path);
		close(fd);
		unlink(l->path);
		return -1;
	}
	l->fd = fd;
	return 0;
}

/* The peer is CRIU, run by root or by whoever runs us: anyone else who got
 * to the socket first would be served the image, or feed us one. */
static int check_peer(int c, const char *path)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return err_sys("%s: SO_PEERCRED", path);
	if (cred.uid != 0 && cred.uid != getuid())
		return err_set("%s: the first process to connect (pid %d, uid %u) is neither root "
			       "nor uid %u: refused", path, (int)cred.pid, (unsigned)cred.uid,
			       (unsigned)getuid());
	return 0;
}

int criu_accept(struct criu_listener *l)
{
	for (;;) {
		int c = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c >= 0) {
			if (check_peer(c, l->path) < 0) {
				close(c);
				return -1;
			}
			return c;
		}
		if (errno != EINTR)
			return err_sys("accept on %s", l->path);
	}
}

void criu_listener_close(struct criu_listener *l)
{
	if (l->fd >= 0) {
		close(l->fd);
		unlink(l->path);
		l->fd = -1;
	}
}

/* Reads exactly len bytes. Returns 1, 0 on EOF before any byte, -1 on error
 * (including EOF inside the message). Exact reads matter: the byte after a
 * request carries the pipe, and reading it with read() would drop the fd. */
static int read_exact(int conn, void *buf, size_t len, const char *what)
{
	ssize_t n = read_full(conn, buf, len);
	if (n < 0)
		return err_sys("reading %s from CRIU", what);
	if (n == 0)
		return 0;
	if ((size_t)n < len)
		return err_set("CRIU closed the connection inside %s (%zd of %zu bytes)", what, n, len);
	return 1;
}

int criu_read_request(int conn, char *name, size_t cap)
{
	uint32_t len;
	int rc = read_exact(conn, &len, sizeof(len), "a request header");
	if (rc <= 0)
		return rc;
	if (len > CRIU_NAME_MAX + 16)
		return err_set("CRIU request of %u bytes is too large (corrupt or not CRIU)", len);
	uint8_t buf[CRIU_NAME_MAX + 16];
	if (len && read_exact(conn, buf, len, "a request") <= 0)
		return err_prefix("truncated request");
	Crs__StreamerRequest *req = crs__streamer_request__unpack(NULL, len, buf);
	if (!req)
		return err_set("malformed request from CRIU (%u bytes)", len);
	size_t nlen = strlen(req->filename);
	if (nlen == 0 || nlen >= cap || strchr(req->filename, '/')) {
		err_set("CRIU requested an invalid file name \"%.64s\"", req->filename);
		crs__streamer_request__free_unpacked(req, NULL);
		return -1;
	}
	memcpy(name, req->filename, nlen + 1);
	crs__streamer_request__free_unpacked(req, NULL);
	return 1;
}

int criu_send_reply(int conn, bool exists)
{
	Crs__StreamerReply reply = CRS__STREAMER_REPLY__INIT;
	reply.exists = exists;
	uint8_t buf[16];
	uint32_t len = (uint32_t)crs__streamer_reply__get_packed_size(&reply);
	memcpy(buf, &len, sizeof(len));
	crs__streamer_reply__pack(&reply, buf + sizeof(len));
	if (write_full(conn, buf, sizeof(len) + len) < 0)
		return err_sys("sending reply to CRIU");
	return 0;
}

/* Closes every fd a refused message brought in: whoever is on the other
 * end of the socket must not be able to make us keep fds open. */
static void close_passed_fds(struct msghdr *msg)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			close(fd);
		}
	}
}

int criu_recv_pipe(int conn, bool criu_writes)
{
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf),
	};
	ssize_t n;
	do
		n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return err_sys("receiving a pipe from CRIU");
	if (n == 0)
		return err_set("CRIU closed the connection before sending the file's pipe");
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (msg.msg_flags & MSG_CTRUNC) {
		close_passed_fds(&msg);
		return err_set("CRIU's control message was truncated");
	}
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)) || CMSG_NXTHDR(&msg, c)) {
		close_passed_fds(&msg);
		return err_set("CRIU's message carries no pipe, or more than one fd (protocol "
			       "mismatch)");
	}
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	char what[64];
	snprintf(what, sizeof(what), "the pipe CRIU sent (fd %d)", fd);
	enum fd_kind kind = FD_OTHER;
	/* On dump CRIU writes, so we receive the read end. */
	if (fd_check(fd, !criu_writes, what, &kind) < 0) {
		close(fd);
		return -1;
	}
	if (kind != FD_PIPE) {
		close(fd);
		return err_set("%s is not a pipe", what);
	}
	return fd;
}
