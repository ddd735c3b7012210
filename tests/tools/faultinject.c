/* faultinject.so: an LD_PRELOAD shim that makes one named call fail, or
 * stall, on one named path, so that a test can put a fault exactly where
 * a promise matters (a stream's fsync, the manifest's rename, the hook's
 * connect) in the real binary. Test-only: nothing in crstream knows of it.
 *
 *   CRSTREAM_FAULT="CALL:GLOB:ACTION[:NTH]"
 *       CALL    fsync (also fdatasync; the path is the fd's), rename (also
 *               renameat, renameat2; the path is the new name, a relative
 *               one joined to its directory fd's path), connect
 *               (AF_UNIX; the path is the socket's)
 *       GLOB    fnmatch(3) pattern for the whole path (no ':'), such as
 *               "*" followed by "/manifest.json"
 *       ACTION  an errno name (EIO, ENOSPC, EACCES): the call fails with it
 *               and does nothing; or "stall": the call waits until the
 *               file $CRSTREAM_FAULT_DIR/release exists, then goes on
 *       NTH     act on the NTH matching call only (default 1); 0 = on all
 *   CRSTREAM_FAULT_DIR  where the shim reports: it appends
 *               "CALL PATH ACTION pid=PID" to DIR/injected when it acts,
 *               and writes DIR/stalled ("call=CALL", "path=PATH", "pid=PID"
 *               lines, for testtool wait-status) once a stall has begun.
 *
 * The shim stays in the environment of child processes (CRIU, and the
 * action script CRIU runs), so a rule may target them as well. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stddef.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define STALL_POLL_NS 10000000L

static struct {
	bool on;
	char call[32];
	char glob[PATH_MAX];
	char action[32];
	int err;	/* 0 for stall */
	long nth;
	long seen;
	const char *dir;
} rule;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static const struct {
	const char *name;
	int value;
} errnos[] = {{"EIO", EIO}, {"ENOSPC", ENOSPC}, {"EACCES", EACCES}, {"EPERM", EPERM},
	      {"EDQUOT", EDQUOT}, {"EROFS", EROFS}, {"ECONNREFUSED", ECONNREFUSED}};

static void complain(const char *what)
{
	/* No stdio: this may run inside any call of any program. */
	static const char prefix[] = "faultinject: bad CRSTREAM_FAULT: ";
	(void)!write(2, prefix, sizeof(prefix) - 1);
	(void)!write(2, what, strlen(what));
	(void)!write(2, "\n", 1);
}

__attribute__((constructor)) static void load_rule(void)
{
	const char *spec = getenv("CRSTREAM_FAULT");
	rule.dir = getenv("CRSTREAM_FAULT_DIR");
	if (!spec || !*spec)
		return;
	char nth[32] = "1";
	/* The glob may not contain ':'. */
	int n = sscanf(spec, "%31[^:]:%4095[^:]:%31[^:]:%31s", rule.call, rule.glob, rule.action, nth);
	if (n < 3) {
		complain(spec);
		return;
	}
	char *end;
	rule.nth = strtol(nth, &end, 10);
	if (*end || rule.nth < 0) {
		complain(spec);
		return;
	}
	if (strcmp(rule.action, "stall") != 0) {
		for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
			if (strcmp(rule.action, errnos[i].name) == 0)
				rule.err = errnos[i].value;
		if (!rule.err) {
			complain(spec);
			return;
		}
	}
	rule.on = true;
}

static void report(const char *file, const char *line)
{
	if (!rule.dir)
		return;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", rule.dir, file);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	(void)!write(fd, line, strlen(line));
	close(fd);
}

static bool released(void)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/release", rule.dir ? rule.dir : ".");
	return access(path, F_OK) == 0;
}

/* Whether this call on this path is the one to fault; stalls here if so
 * and the action is "stall". Returns the errno to fail with, or 0. */
static int fault_for(const char *call, const char *path)
{
	if (!rule.on || strcmp(call, rule.call) != 0 || fnmatch(rule.glob, path, 0) != 0)
		return 0;
	pthread_mutex_lock(&mu);
	long k = ++rule.seen;
	pthread_mutex_unlock(&mu);
	if (rule.nth != 0 && k != rule.nth)
		return 0;
	char line[PATH_MAX + 128];
	snprintf(line, sizeof(line), "%s %s %s pid=%d\n", call, path, rule.action, (int)getpid());
	report("injected", line);
	if (rule.err)
		return rule.err;
	snprintf(line, sizeof(line), "call=%s\npath=%s\npid=%d\n", call, path, (int)getpid());
	report("stalled", line);
	struct timespec ts = {0, STALL_POLL_NS};
	while (!released())
		nanosleep(&ts, NULL);
	return 0;
}

static const char *fd_path(int fd, char *buf, size_t size)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, buf, size - 1);
	buf[n < 0 ? 0 : n] = '\0';
	return buf;
}

#define NEXT(name, type) ((type)dlsym(RTLD_NEXT, name))

int fsync(int fd)
{
	char p[PATH_MAX];
	int e = rule.on ? fault_for("fsync", fd_path(fd, p, sizeof(p))) : 0;
	if (e) {
		errno = e;
		return -1;
	}
	return NEXT("fsync", int (*)(int))(fd);
}

int fdatasync(int fd)
{
	char p[PATH_MAX];
	int e = rule.on ? fault_for("fsync", fd_path(fd, p, sizeof(p))) : 0;
	if (e) {
		errno = e;
		return -1;
	}
	return NEXT("fdatasync", int (*)(int))(fd);
}

/* The new name of a renameat() as a path: relative to its directory fd
 * (crstream renames by directory fd, never following a symlink). */
static const char *at_path(int dirfd, const char *name, char *buf, size_t size)
{
	char dir[PATH_MAX];
	if (name[0] == '/' || dirfd == AT_FDCWD)
		return name;
	snprintf(buf, size, "%s/%s", fd_path(dirfd, dir, sizeof(dir)), name);
	return buf;
}

int rename(const char *old, const char *new)
{
	int e = rule.on ? fault_for("rename", new) : 0;
	if (e) {
		errno = e;
		return -1;
	}
	return NEXT("rename", int (*)(const char *, const char *))(old, new);
}

int renameat(int ofd, const char *old, int nfd, const char *new)
{
	char p[PATH_MAX + 256];
	int e = rule.on ? fault_for("rename", at_path(nfd, new, p, sizeof(p))) : 0;
	if (e) {
		errno = e;
		return -1;
	}
	return NEXT("renameat", int (*)(int, const char *, int, const char *))(ofd, old, nfd, new);
}

int renameat2(int ofd, const char *old, int nfd, const char *new, unsigned flags)
{
	char p[PATH_MAX + 256];
	int e = rule.on ? fault_for("rename", at_path(nfd, new, p, sizeof(p))) : 0;
	if (e) {
		errno = e;
		return -1;
	}
	return NEXT("renameat2", int (*)(int, const char *, int, const char *, unsigned))(ofd, old, nfd,
											     new, flags);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (rule.on && addr && addr->sa_family == AF_UNIX && len > offsetof(struct sockaddr_un, sun_path)) {
		const struct sockaddr_un *un = (const struct sockaddr_un *)addr;
		char p[sizeof(un->sun_path) + 1];
		size_t n = len - offsetof(struct sockaddr_un, sun_path);
		memcpy(p, un->sun_path, n < sizeof(un->sun_path) ? n : sizeof(un->sun_path));
		p[n < sizeof(un->sun_path) ? n : sizeof(un->sun_path)] = '\0';
		int e = fault_for("connect", p);
		if (e) {
			errno = e;
			return -1;
		}
	}
	return NEXT("connect", int (*)(int, const struct sockaddr *, socklen_t))(fd, addr, len);
}
