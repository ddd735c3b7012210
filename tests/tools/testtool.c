/* testtool: waits and probes the bash test harness needs and that are
 * awkward (or racy) in bash.
 *
 *   testtool wait-status FILE COND... [--timeout SEC]
 *   testtool wait-gone PID... [--timeout SEC]
 *   testtool tcp-get HOST PORT [--timeout SEC] [--wait]
 *   testtool wait-proc ANCESTOR --cmdline-has STR [--env VAR=VALUE] [--timeout SEC]
 *   testtool wait-seized PID [--timeout SEC]
 *   testtool kill PID --cmdline-has STR
 *   testtool watchdog PID SECONDS MARKER
 *   testtool measure OUT TIMEOUT-SEC CMD [ARGS...]
 *   testtool hold PID
 *
 * Exit status: 0 success, 1 timeout or failure (with the reason on
 * stderr), 2 usage error.  tests/subjects/README.md has the details. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_S 10.0
#define STATUS_POLL_MS 20
#define PID_POLL_MS 10
#define CONNECT_RETRY_MS 50
#define MAX_STATUS 65536

static int usage(void)
{
	fprintf(stderr, "usage: testtool wait-status FILE COND... [--timeout SEC]\n"
			"         COND is key=value, key!=value, key>N or key>=N (quote > for the shell)\n"
			"       testtool wait-gone PID... [--timeout SEC]\n"
			"       testtool tcp-get HOST PORT [--timeout SEC] [--wait]\n"
			"       testtool hold PID\n"
			"       testtool wait-proc ANCESTOR --cmdline-has STR [--env VAR=VALUE] [--timeout SEC]\n"
			"       testtool wait-seized PID [--timeout SEC]\n"
			"       testtool kill PID --cmdline-has STR\n"
			"       testtool watchdog PID SECONDS MARKER\n"
			"       testtool measure OUT TIMEOUT-SEC CMD [ARGS...]\n");
	return 2;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Splits argv into positional arguments and the common options. */
struct args {
	char **positional;
	int count;
	double timeout_s;
	bool wait;
	const char *cmdline_has;	/* --cmdline-has: a substring of the process's argv */
	const char *env;		/* --env VAR=VALUE: an entry of its environment */
};

static int parse_args(int argc, char **argv, struct args *a)
{
	a->positional = calloc((size_t)argc + 1, sizeof(char *));
	if (!a->positional) {
		fprintf(stderr, "testtool: out of memory\n");
		return -1;
	}
	a->count = 0;
	a->timeout_s = DEFAULT_TIMEOUT_S;
	a->wait = false;
	a->cmdline_has = NULL;
	a->env = NULL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--timeout") == 0) {
			char *end;
			if (i + 1 >= argc || (a->timeout_s = strtod(argv[i + 1], &end), *end) || a->timeout_s < 0) {
				fprintf(stderr, "testtool: --timeout needs a number of seconds\n");
				return -1;
			}
			i++;
		} else if (strcmp(argv[i], "--wait") == 0) {
			a->wait = true;
		} else if (strcmp(argv[i], "--cmdline-has") == 0 || strcmp(argv[i], "--env") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "testtool: %s needs a value\n", argv[i]);
				return -1;
			}
			*(argv[i][2] == 'c' ? &a->cmdline_has : &a->env) = argv[i + 1];
			i++;
		} else if (strncmp(argv[i], "--", 2) == 0) {
			fprintf(stderr, "testtool: unknown option %s\n", argv[i]);
			return -1;
		} else {
			a->positional[a->count++] = argv[i];
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* wait-status                                                         */
/* ------------------------------------------------------------------ */

enum cond_op { OP_EQ, OP_NE, OP_GT, OP_GE };

struct condition {
	char key[128];
	enum cond_op op;
	const char *value;
	uint64_t number;
};

static int parse_condition(const char *text, struct condition *c)
{
	size_t key_len = strcspn(text, "!=>");
	const char *op = text + key_len;
	if (key_len == 0 || key_len >= sizeof(c->key) || !*op)
		return -1;
	memcpy(c->key, text, key_len);
	c->key[key_len] = '\0';
	if (strncmp(op, "!=", 2) == 0)
		c->op = OP_NE, c->value = op + 2;
	else if (strncmp(op, ">=", 2) == 0)
		c->op = OP_GE, c->value = op + 2;
	else if (*op == '>')
		c->op = OP_GT, c->value = op + 1;
	else if (*op == '=')
		c->op = OP_EQ, c->value = op + 1;
	else
		return -1;
	if (c->op == OP_GT || c->op == OP_GE) {
		char *end;
		errno = 0;
		c->number = strtoull(c->value, &end, 10);
		if (errno || end == c->value || *end)
			return -1;
	}
	return 0;
}

/* Reads the whole file; false if it does not exist (yet). */
static bool read_status(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	size_t len = 0;
	while (len < size - 1) {
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return true;
}

/* Finds "key=" at a line start and copies its value; false if absent. */
static bool lookup(const char *status, const char *key, char *value, size_t size)
{
	size_t key_len = strlen(key);
	for (const char *line = status; *line;) {
		const char *eol = strchr(line, '\n');
		size_t line_len = eol ? (size_t)(eol - line) : strlen(line);
		if (line_len > key_len && strncmp(line, key, key_len) == 0 && line[key_len] == '=') {
			size_t n = line_len - key_len - 1;
			if (n >= size)
				n = size - 1;
			memcpy(value, line + key_len + 1, n);
			value[n] = '\0';
			return true;
		}
		if (!eol)
			break;
		line = eol + 1;
	}
	return false;
}

static bool condition_holds(const char *status, const struct condition *c)
{
	char value[4096];
	if (!lookup(status, c->key, value, sizeof(value)))
		return false;
	switch (c->op) {
	case OP_EQ: return strcmp(value, c->value) == 0;
	case OP_NE: return strcmp(value, c->value) != 0;
	case OP_GT:
	case OP_GE: {
		char *end;
		errno = 0;
		uint64_t v = strtoull(value, &end, 10);
		if (errno || end == value || *end)
			return false;
		return c->op == OP_GT ? v > c->number : v >= c->number;
	}
	}
	return false;
}

static int cmd_wait_status(struct args *a)
{
	if (a->count < 2)
		return usage();
	const char *path = a->positional[0];
	int n = a->count - 1;
	struct condition *conds = calloc((size_t)n, sizeof(*conds));
	if (!conds) {
		fprintf(stderr, "testtool: out of memory\n");
		return 1;
	}
	for (int i = 0; i < n; i++)
		if (parse_condition(a->positional[i + 1], &conds[i]) < 0) {
			fprintf(stderr, "testtool: bad condition \"%s\"\n", a->positional[i + 1]);
			return usage();
		}

	static char status[MAX_STATUS];
	double deadline = now_s() + a->timeout_s;
	for (;;) {
		bool exists = read_status(path, status, sizeof(status));
		bool all = exists;
		for (int i = 0; all && i < n; i++)
			all = condition_holds(status, &conds[i]);
		if (all) {
			fputs(status, stdout); /* the snapshot that matched */
			return 0;
		}
		if (now_s() >= deadline) {
			fprintf(stderr, "testtool: timed out after %gs waiting for %s:", a->timeout_s, path);
			for (int i = 0; i < n; i++)
				fprintf(stderr, " %s", a->positional[i + 1]);
			fprintf(stderr, "\n");
			if (exists)
				fprintf(stderr, "--- %s ---\n%s---\n", path, status);
			else
				fprintf(stderr, "(%s does not exist)\n", path);
			return 1;
		}
		sleep_ms(STATUS_POLL_MS);
	}
}

/* ------------------------------------------------------------------ */
/* wait-gone                                                           */
/* ------------------------------------------------------------------ */

/* A zombie still holds its PID, so it counts as present. */
static bool pid_exists(pid_t pid)
{
	return kill(pid, 0) == 0 || errno != ESRCH;
}

static void describe_pid(pid_t pid)
{
	char path[64], buf[256] = "";
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
	fprintf(stderr, "testtool: pid %d still exists: %s\n", (int)pid, buf[0] ? buf : "(no /proc entry)");
}

static int cmd_wait_gone(struct args *a)
{
	if (a->count < 1)
		return usage();
	for (int i = 0; i < a->count; i++) {
		char *end;
		long v = strtol(a->positional[i], &end, 10);
		if (*end || v <= 0) {
			fprintf(stderr, "testtool: not a PID: %s\n", a->positional[i]);
			return usage();
		}
	}
	double deadline = now_s() + a->timeout_s;
	for (;;) {
		int remaining = 0;
		for (int i = 0; i < a->count; i++)
			remaining += pid_exists((pid_t)atol(a->positional[i]));
		if (remaining == 0)
			return 0;
		if (now_s() >= deadline) {
			fprintf(stderr, "testtool: timed out after %gs waiting for processes to go\n", a->timeout_s);
			for (int i = 0; i < a->count; i++)
				if (pid_exists((pid_t)atol(a->positional[i])))
					describe_pid((pid_t)atol(a->positional[i]));
			return 1;
		}
		sleep_ms(PID_POLL_MS);
	}
}

/* ------------------------------------------------------------------ */
/* tcp-get                                                             */
/* ------------------------------------------------------------------ */

static int remaining_ms(double deadline)
{
	double left = deadline - now_s();
	return left <= 0 ? 0 : (int)(left * 1000) + 1;
}

/* Non-blocking connect bounded by the deadline; fd or -1 with errno. */
static int connect_before(const struct addrinfo *ai, double deadline)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS)
		goto fail;
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int n = poll(&pfd, 1, remaining_ms(deadline));
	if (n == 0)
		errno = ETIMEDOUT;
	if (n <= 0)
		goto fail;
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		goto fail;
	if (err) {
		errno = err;
		goto fail;
	}
	return fd;
fail: {
	int saved = errno;
	close(fd);
	errno = saved;
	return -1;
}
}

/* Reads until a newline or EOF; returns the length or -1 with errno. */
static ssize_t read_line_before(int fd, char *buf, size_t size, double deadline)
{
	size_t len = 0;
	while (len < size - 1 && !memchr(buf, '\n', len)) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int n = poll(&pfd, 1, remaining_ms(deadline));
		if (n == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (n < 0)
			return -1;
		ssize_t got = read(fd, buf + len, size - 1 - len);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got < 0)
			return -1;
		if (got == 0)
			break;
		len += (size_t)got;
	}
	buf[len] = '\0';
	char *eol = memchr(buf, '\n', len);
	if (eol)
		*eol = '\0';
	return (ssize_t)strlen(buf);
}

static int cmd_tcp_get(struct args *a)
{
	if (a->count != 2)
		return usage();
	const char *host = a->positional[0], *port = a->positional[1];
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		fprintf(stderr, "testtool: cannot resolve %s:%s: %s\n", host, port, gai_strerror(rc));
		return 1;
	}
	double deadline = now_s() + a->timeout_s;
	int fd = -1;
	for (;;) {
		/* Try every address ("localhost" may be ::1 first, the subject
		 * listens on 127.0.0.1 only). */
		for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
			fd = connect_before(ai, deadline);
		/* --wait: a refused connection may just mean "not restored yet". */
		if (fd >= 0 || !a->wait || errno != ECONNREFUSED || now_s() >= deadline)
			break;
		sleep_ms(CONNECT_RETRY_MS);
	}
	freeaddrinfo(res);
	if (fd < 0) {
		fprintf(stderr, "testtool: cannot connect to %s:%s: %s\n", host, port, strerror(errno));
		return 1;
	}
	char line[4096];
	ssize_t len = read_line_before(fd, line, sizeof(line), deadline);
	int saved = errno;
	close(fd);
	if (len < 0) {
		fprintf(stderr, "testtool: reading from %s:%s: %s\n", host, port, strerror(saved));
		return 1;
	}
	if (len == 0) {
		fprintf(stderr, "testtool: %s:%s closed the connection without a reply\n", host, port);
		return 1;
	}
	printf("%s\n", line);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Processes: identity, descendants, watchdog                          */
/* ------------------------------------------------------------------ */

static int parse_pid(const char *text, pid_t *pid)
{
	char *end;
	long v = strtol(text, &end, 10);
	if (*end || v <= 0 || v > INT32_MAX) {
		fprintf(stderr, "testtool: not a PID: %s\n", text);
		return -1;
	}
	*pid = (pid_t)v;
	return 0;
}

/* /proc/PID/FILE with NULs turned into spaces (cmdline, environ are
 * NUL-separated); the length, or -1 if the process is gone. */
static ssize_t read_proc(pid_t pid, const char *file, char *buf, size_t size)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = 0;
	ssize_t n;
	while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

static bool cmdline_has(pid_t pid, const char *needle)
{
	static char buf[MAX_STATUS];
	ssize_t len = read_proc(pid, "cmdline", buf, sizeof(buf));
	for (ssize_t i = 0; i < len; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	return len > 0 && strstr(buf, needle) != NULL;
}

static bool environ_has(pid_t pid, const char *entry)
{
	static char buf[1 << 20];
	ssize_t len = read_proc(pid, "environ", buf, sizeof(buf));
	for (ssize_t off = 0; off < len; off += (ssize_t)strlen(buf + off) + 1)
		if (strcmp(buf + off, entry) == 0)
			return true;
	return false;
}

/* The parent of pid from /proc/PID/stat (after the command's ")"), or 0. */
static pid_t parent_of(pid_t pid)
{
	char buf[1024];
	if (read_proc(pid, "stat", buf, sizeof(buf)) <= 0)
		return 0;
	const char *p = strrchr(buf, ')');
	int ppid = 0;
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return (pid_t)ppid;
}

/* Every live process below ancestor, at the time of the scan; their
 * count (at most max). */
static int descendants(pid_t ancestor, pid_t *out, int max)
{
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	static pid_t pids[65536], parents[65536];
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < 65536) {
		char *end;
		long v = strtol(de->d_name, &end, 10);
		if (*end || v <= 0)
			continue;
		pids[n] = (pid_t)v;
		parents[n++] = parent_of((pid_t)v);
	}
	closedir(d);
	/* Breadth first: out[] grows as the children of its members are found. */
	int count = 0;
	for (int i = 0; i < n && count < max; i++)
		if (parents[i] == ancestor)
			out[count++] = pids[i];
	for (int k = 0; k < count; k++)
		for (int i = 0; i < n && count < max; i++)
			if (parents[i] == out[k] && pids[i] != ancestor)
				out[count++] = pids[i];
	return count;
}

/* wait-proc ANCESTOR --cmdline-has STR [--env VAR=VALUE]: until a process
 * below ANCESTOR matches; prints its pid. */
static int cmd_wait_proc(struct args *a)
{
	pid_t ancestor;
	if (a->count != 1 || !a->cmdline_has || parse_pid(a->positional[0], &ancestor) < 0)
		return usage();
	double deadline = now_s() + a->timeout_s;
	static pid_t found[4096];
	for (;;) {
		int n = descendants(ancestor, found, 4096);
		for (int i = 0; i < n; i++)
			if (cmdline_has(found[i], a->cmdline_has) && (!a->env || environ_has(found[i], a->env))) {
				printf("%d\n", (int)found[i]);
				return 0;
			}
		if (!pid_exists(ancestor) || now_s() >= deadline) {
			fprintf(stderr, "testtool: no process \"%s\"%s%s below pid %d (%s)\n", a->cmdline_has,
				a->env ? " with " : "", a->env ? a->env : "", (int)ancestor,
				pid_exists(ancestor) ? "timed out" : "it has exited");
			return 1;
		}
		sleep_ms(PID_POLL_MS);
	}
}

/* wait-seized PID: until a tracer (CRIU) has seized the process. */
static int cmd_wait_seized(struct args *a)
{
	pid_t pid;
	if (a->count != 1 || parse_pid(a->positional[0], &pid) < 0)
		return usage();
	double deadline = now_s() + a->timeout_s;
	static char buf[MAX_STATUS];
	for (;;) {
		if (read_proc(pid, "status", buf, sizeof(buf)) <= 0) {
			fprintf(stderr, "testtool: pid %d is gone\n", (int)pid);
			return 1;
		}
		const char *t = strstr(buf, "\nTracerPid:");
		if (t && atoi(t + 11) > 0)
			return 0;
		if (now_s() >= deadline) {
			fprintf(stderr, "testtool: pid %d was not seized within %gs\n", (int)pid, a->timeout_s);
			return 1;
		}
		sleep_ms(PID_POLL_MS);
	}
}

/* kill PID --cmdline-has STR: SIGKILL the process only if it is still the
 * one we mean. The pidfd pins the identity: if PID is reused after the
 * check, the signal goes nowhere (ESRCH) instead of to a stranger. Exit
 * 0 killed or already gone, 1 if PID is someone else. */
static int cmd_kill(struct args *a)
{
	pid_t pid;
	if (a->count != 1 || !a->cmdline_has || parse_pid(a->positional[0], &pid) < 0)
		return usage();
	int pfd = pidfd_open(pid, 0);
	if (pfd < 0)
		return errno == ESRCH ? 0 : (fprintf(stderr, "testtool: pidfd_open %d: %s\n", (int)pid,
						     strerror(errno)), 1);
	int rc = 0;
	if (!cmdline_has(pid, a->cmdline_has)) {
		/* Gone meanwhile (no cmdline: a zombie, or no /proc entry) is fine. */
		char probe[8];
		if (read_proc(pid, "cmdline", probe, sizeof(probe)) > 0) {
			fprintf(stderr, "testtool: pid %d is not \"%s\": not killed\n", (int)pid, a->cmdline_has);
			rc = 1;
		}
	} else if (pidfd_send_signal(pfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH) {
		fprintf(stderr, "testtool: kill %d: %s\n", (int)pid, strerror(errno));
		rc = 1;
	}
	close(pfd);
	return rc;
}

/* SIGKILL root and everything below it. Stopped first, so that nothing
 * forks away between the scan and the kill. */
static void kill_tree(pid_t root)
{
	static pid_t below[4096];
	kill(root, SIGSTOP);
	int n = 0;
	for (int round = 0; round < 5; round++) {
		int m = descendants(root, below, 4096);
		for (int i = 0; i < m; i++)
			kill(below[i], SIGSTOP);
		if (m == n)
			break;
		n = m;
	}
	n = descendants(root, below, 4096);
	for (int i = 0; i < n; i++) {
		fprintf(stderr, "testtool: watchdog: killing pid %d below %d\n", (int)below[i], (int)root);
		kill(below[i], SIGKILL);
	}
	kill(root, SIGKILL);
}

/* watchdog PID SECONDS MARKER: if PID (a child of our caller, not yet
 * reaped, so its number cannot be reused) still runs after SECONDS,
 * create MARKER and kill it with everything below it; exit 1. Exit 0
 * as soon as PID exits. */
static int cmd_watchdog(struct args *a)
{
	pid_t pid;
	char *end;
	if (a->count != 3 || parse_pid(a->positional[0], &pid) < 0)
		return usage();
	double seconds = strtod(a->positional[1], &end);
	if (*end || seconds <= 0)
		return usage();
	int pfd = pidfd_open(pid, 0);
	if (pfd < 0)
		return 0;	/* already gone */
	struct pollfd p = {.fd = pfd, .events = POLLIN};
	double deadline = now_s() + seconds;
	int n;
	while ((n = poll(&p, 1, remaining_ms(deadline))) < 0 && errno == EINTR)
		;
	if (n != 0) {
		close(pfd);
		return 0;
	}
	int fd = open(a->positional[2], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	kill_tree(pid);
	close(pfd);
	return 1;
}

/* ------------------------------------------------------------------ */
/* measure                                                             */
/* ------------------------------------------------------------------ */

/* Runs CMD in its own process group and writes its peak RSS, wall time and
 * exit status to OUT ("rss_kb=N\nwall_ms=N\nstatus=N\n"); exits with its
 * status. After TIMEOUT seconds the group is killed and the status is 124:
 * the hang guard of tests that must not hang, never a timing assertion. */
static int cmd_measure(int argc, char **argv)
{
	char *end;
	double timeout = argc >= 4 ? strtod(argv[3], &end) : -1;
	if (argc < 5 || *end || timeout <= 0)
		return usage();
	double t0 = now_s();
	pid_t pid = fork();
	if (pid < 0) {
		perror("testtool: fork");
		return 1;
	}
	if (pid == 0) {
		setpgid(0, 0);
		execvp(argv[4], argv + 4);
		fprintf(stderr, "testtool: %s: %s\n", argv[4], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	int status = 0, rc = -1;
	struct rusage ru;
	bool timed_out = false;
	while ((rc = (int)wait4(pid, &status, WNOHANG, &ru)) == 0) {
		if (now_s() - t0 > timeout && !timed_out) {
			timed_out = true;
			kill(-pid, SIGKILL);
		}
		sleep_ms(PID_POLL_MS);
	}
	if (rc < 0) {
		perror("testtool: wait4");
		return 1;
	}
	int code = timed_out ? 124 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	FILE *out = fopen(argv[2], "w");
	if (!out) {
		fprintf(stderr, "testtool: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	fprintf(out, "rss_kb=%ld\nwall_ms=%.0f\nstatus=%d\n", ru.ru_maxrss, (now_s() - t0) * 1000.0,
		code);
	fclose(out);
	return code;
}

/* ------------------------------------------------------------------ */
/* hold: be PID's tracer (as a concurrent CRIU or a debugger would be)  */
/* until killed; the process runs on, but nobody else can trace it.     */
/* ------------------------------------------------------------------ */

static int cmd_hold(const struct args *a)
{
	char *end;
	long pid = a->count == 1 ? strtol(a->positional[0], &end, 10) : 0;
	if (pid <= 0 || *end)
		return usage();
	/* SEIZE, not ATTACH: the process is not stopped. */
	if (ptrace(PTRACE_SEIZE, (pid_t)pid, NULL, NULL) < 0) {
		fprintf(stderr, "testtool: PTRACE_SEIZE %ld: %s\n", pid, strerror(errno));
		return 1;
	}
	printf("held %ld\n", pid);
	fflush(stdout);
	for (;;)
		pause();	/* killed by the test; the kernel detaches */
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "measure") == 0)
		return cmd_measure(argc, argv);
	struct args a;
	if (parse_args(argc - 2, argv + 2, &a) < 0)
		return usage();
	int rc;
	if (strcmp(argv[1], "wait-status") == 0)
		rc = cmd_wait_status(&a);
	else if (strcmp(argv[1], "wait-gone") == 0)
		rc = cmd_wait_gone(&a);
	else if (strcmp(argv[1], "tcp-get") == 0)
		rc = cmd_tcp_get(&a);
	else if (strcmp(argv[1], "wait-proc") == 0)
		rc = cmd_wait_proc(&a);
	else if (strcmp(argv[1], "wait-seized") == 0)
		rc = cmd_wait_seized(&a);
	else if (strcmp(argv[1], "kill") == 0)
		rc = cmd_kill(&a);
	else if (strcmp(argv[1], "watchdog") == 0)
		rc = cmd_watchdog(&a);
	else if (strcmp(argv[1], "hold") == 0)
		rc = cmd_hold(&a);
	else
		rc = usage();
	free(a.positional);
	return rc;
}
