#include "util/fdio.h"
#include "util/err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

int pipe_queued(int fd)
{
	int n;
	if (ioctl(fd, FIONREAD, &n) < 0)
		return -1;
	return n;
}

int pipe_grow(int fd, int want)
{
	int cur = fcntl(fd, F_GETPIPE_SZ);
	if (cur < 0)
		return -1;
	/* EPERM means the size exceeds pipe-max-size or the user's pipe page
	 * budget; a smaller pipe still works, only with smaller chunks. */
	for (int size = want; size > cur; size /= 2) {
		int got = fcntl(fd, F_SETPIPE_SZ, size);
		if (got >= 0)
			return got;
		if (errno != EPERM && errno != EBUSY)
			return -1;
	}
	return cur;
}

int fd_check(int fd, bool for_writing, const char *what, enum fd_kind *kind)
{
	struct stat st;
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fstat(fd, &st) < 0)
		return err_sys("%s is not open", what);
	int acc = flags & O_ACCMODE;
	if (for_writing && acc == O_RDONLY)
		return err_set("%s is open read-only, but it must be writable here", what);
	if (!for_writing && acc == O_WRONLY)
		return err_set("%s is open write-only, but it must be readable here", what);
	if (kind) {
		if (S_ISFIFO(st.st_mode))
			*kind = FD_PIPE;
		else if (S_ISREG(st.st_mode))
			*kind = FD_REGULAR;
		else if (S_ISSOCK(st.st_mode))
			*kind = FD_SOCKET;
		else
			*kind = FD_OTHER;
	}
	return 0;
}

int set_nonblock(int fd, bool on)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0)
		return err_sys("fcntl(F_GETFL) on fd %d", fd);
	flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
	if (fcntl(fd, F_SETFL, flags) < 0)
		return err_sys("fcntl(F_SETFL) on fd %d", fd);
	return 0;
}

int set_cloexec(int fd)
{
	int flags = fcntl(fd, F_GETFD);
	if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
		return err_sys("fcntl(FD_CLOEXEC) on fd %d", fd);
	return 0;
}

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t now_ms(void)
{
	return now_ns() / 1000000u;
}

struct timespec deadline_after_ms(int ms)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

const char *tmp_dir(void)
{
	const char *dir = getenv("TMPDIR");
	return dir && *dir ? dir : "/tmp";
}

int tmpfile_open(const char *dir)
{
	return open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
}

int fs_free_bytes(int fd, const char *dir, uint64_t *avail)
{
	struct statvfs vfs;
	if (fstatvfs(fd, &vfs) < 0)
		return err_sys("statvfs %s", dir);
	*avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	return 0;
}

int parse_fd_number(const char *s)
{
	if (!s || !*s)
		return -1;
	long v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
		if (v > INT_MAX)
			return -1;
	}
	return (int)v;
}

bool is_plain_name(const char *name)
{
	return name[0] && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..") &&
	       strlen(name) <= NAME_MAX;
}

int mkdir_p(const char *path, unsigned mode)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return err_set("path too long: %s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return err_sys("cannot create directory %s", buf);
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return err_sys("cannot create directory %s", buf);
	return 0;
}

int dir_check_private(int dirfd, const char *label)
{
	struct stat st;
	if (fstat(dirfd, &st) < 0)
		return err_sys("%s", label);
	if (st.st_uid != geteuid())
		return err_set("%s belongs to uid %u, not to uid %u: refusing to write into it", label,
			       (unsigned)st.st_uid, (unsigned)geteuid());
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return err_set("%s has mode %04o, writable by group or others: refusing to write "
			       "into it", label, (unsigned)(st.st_mode & 07777));
	return 0;
}

int dir_open_at(int atfd, const char *name, bool create, bool for_writing, const char *label)
{
	bool made = false;
	if (create) {
		if (mkdirat(atfd, name, 0700) == 0)
			made = true;
		else if (errno != EEXIST)
			return err_sys("cannot create directory %s", label);
	}
	int fd = openat(atfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)
			return err_set("%s is a symbolic link: refusing to follow it", label);
		if (errno == ENOTDIR)
			return err_set("%s is not a directory", label);
		return err_sys("cannot open directory %s", label);
	}
	/* A new directory is ours: defeat the umask. */
	if (made && fchmod(fd, 0700) < 0) {
		err_sys("chmod %s", label);
		close(fd);
		return -1;
	}
	if (for_writing && dir_check_private(fd, label) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int file_create_at(int dirfd, const char *name, int accmode, const char *label)
{
	int fd = openat(dirfd, name, accmode | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		struct stat st;
		if (errno == EEXIST && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(st.st_mode))
			return err_set("%s exists already as a symbolic link: refusing to write "
				       "through it", label);
		if (errno == EEXIST)
			return err_set("%s exists already: refusing to overwrite it", label);
		return err_sys("cannot create %s", label);
	}
	if (fchmod(fd, 0600) < 0) {	/* defeat the umask */
		err_sys("chmod %s", label);
		close(fd);
		return -1;
	}
	return fd;
}

int file_open_regular_at(int dirfd, const char *name, const char *label, struct stat *st)
{
	/* O_NONBLOCK: opening a FIFO would otherwise wait for a writer. */
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return -1;
		if (errno == ELOOP)
			return err_set("%s is a symbolic link: refusing to follow it", label);
		return err_sys("cannot open %s", label);
	}
	const char *kind = NULL;
	if (fstat(fd, st) < 0) {
		err_sys("%s", label);
	} else if (!S_ISREG(st->st_mode)) {
		kind = S_ISFIFO(st->st_mode) ? "a FIFO" : S_ISDIR(st->st_mode) ? "a directory"
		       : S_ISSOCK(st->st_mode) ? "a socket" : "a device";
		err_set("%s is %s, not a regular file", label, kind);
	} else if (set_nonblock(fd, false) == 0) {
		return fd;
	}
	close(fd);
	errno = EINVAL;	/* not ENOENT: the message is set */
	return -1;
}
int path_trusted(const char *path, const char *label)
{
	struct stat st;
	const char *sep = label ? ": " : "";
	label = label ? label : "";
	if (stat(path, &st) < 0)
		return err_set("%s%s%s", label, sep, strerror(errno));
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return err_set("%s%sowned by uid %u, not by root: refused (its code would run as "
			       "this user)", label, sep, (unsigned)st.st_uid);
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return err_set("%s%swritable by %s (mode %04o): refused (anyone could replace the "
			       "code crstream runs)", label, sep,
			       st.st_mode & S_IWOTH ? "everyone" : "its group",
			       (unsigned)(st.st_mode & 07777));
	return 0;
}
