#include "criu/criu_exec.h"
#include "util/err.h"
#include "util/fdio.h"
#include "criu_stats.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int argv_add(struct argv *a, const char *arg)
{
	if (a->n + 2 > a->cap) {
		int cap = a->cap ? a->cap * 2 : 32;
		char **v = realloc(a->v, (size_t)cap * sizeof(*v));
		if (!v)
			return err_set("out of memory");
		a->v = v;
		a->cap = cap;
	}
	if (!(a->v[a->n] = strdup(arg)))
		return err_set("out of memory");
	a->n++;
	a->v[a->n] = NULL;
	return 0;
}

int argv_addf(struct argv *a, const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return err_set("out of memory");
	int rc = argv_add(a, s);
	free(s);
	return rc;
}

void argv_free(struct argv *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

char *argv_join(const struct argv *a)
{
	size_t len = 1;
	for (int i = 0; i < a->n; i++)
		len += strlen(a->v[i]) + 1;
	char *s = malloc(len);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (int i = 0; i < a->n; i++) {
		if (i)
			strcat(s, " ");
		strcat(s, a->v[i]);
	}
	return s;
}

int criu_spawn(const struct argv *argv, const char *const *env, const char *output_path,
	       pid_t *pid)
{
	int out = open(output_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (out < 0)
		return err_sys("cannot create %s", output_path);
	pid_t child = fork();
	if (child < 0) {
		close(out);
		return err_sys("fork");
	}
	if (child == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(127);
		setpgid(0, 0);
		signal(SIGPIPE, SIG_DFL);	/* CRIU ignores it itself */
		for (int i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(argv->v[0], argv->v);
		dprintf(2, "crstream: cannot execute %s: %s\n", argv->v[0], strerror(errno));
		_exit(127);
	}
	close(out);
	*pid = child;
	return 0;
}

int criu_wait(pid_t pid, const char *log_path)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return err_sys("waitpid(CRIU %d)", pid);
	return criu_check_status(status, log_path);
}

int criu_check_status(int status, const char *log_path)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char why[512];
	criu_log_error(log_path, why, sizeof(why));
	if (WIFEXITED(status))
		return err_set("CRIU exited with status %d%s%s", WEXITSTATUS(status),
			       why[0] ? ": " : "", why);
	return err_set("CRIU was killed by signal %d%s%s", WTERMSIG(status), why[0] ? ": " : "",
		       why);
}

/* Errors CRIU logs and then carries on from: never the reason it failed. */
static const char *const benign_errors[] = {
	/* It tries to raise its own fd limit; without CAP_SYS_RESOURCE (most
	 * containers) it cannot, and works within the limit it has. */
	"rlimit: Can't setup RLIMIT_NOFILE",
};

static bool benign_error(const char *msg)
{
	for (size_t i = 0; i < sizeof(benign_errors) / sizeof(benign_errors[0]); i++)
		if (!strncmp(msg, benign_errors[i], strlen(benign_errors[i])))
			return true;
	return false;
}

/* "Dumping FAILED.", "Restoring FAILED.": that it gave up, not why. */
static bool summary_error(const char *msg)
{
	size_t n = strlen(msg);
	return n >= 7 && !strcmp(msg + n - 7, "FAILED.");
}

void criu_log_error(const char *log_path, char *buf, size_t size)
{
	buf[0] = '\0';
	FILE *f = log_path ? fopen(log_path, "r") : NULL;
	if (!f)
		return;
	char line[1024];
	/* The last error before CRIU gives up is the one it gave up on; what
	 * comes earlier was survived (or is listed as benign). */
	while (fgets(line, sizeof(line), f)) {
		char *e = strstr(line, "Error (");
		if (!e)
			continue;
		char *msg = strstr(e, "): ");
		msg = msg ? msg + 3 : e;
		msg[strcspn(msg, "\n")] = '\0';
		if (!benign_error(msg) && !summary_error(msg))
			snprintf(buf, size, "%s", msg);
	}
	fclose(f);
}

/* Runs `criu <arg>` and captures its stdout and, if want_stderr, stderr
 * (first size-1 bytes); *status gets its exit status. */
static int criu_run(const char *criu, const char *arg, bool want_stderr, char *buf, size_t size,
		    int *status_out)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_sys("pipe");
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return err_sys("fork");
	}
	if (pid == 0) {
		dup2(p[1], 1);
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(want_stderr ? p[1] : devnull, 2);
		}
		execl(criu, criu, arg, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	ssize_t n = read_full(p[0], buf, size - 1);
	buf[n > 0 ? n : 0] = '\0';
	/* Drain the rest so that CRIU never blocks on a full pipe. */
	char sink[4096];
	while (read(p[0], sink, sizeof(sink)) > 0)
		;
	close(p[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) == 127)
		return err_set("cannot run %s", criu);
	if (status_out)
		*status_out = WEXITSTATUS(status);
	return 0;
}

static int criu_output(const char *criu, const char *arg, char *buf, size_t size)
{
	return criu_run(criu, arg, false, buf, size, NULL);
}

int criu_check(const char *criu, char *out, size_t size)
{
	int status;
	if (criu_run(criu, "check", true, out, size, &status) < 0)
		return -1;
	return status == 0 ? 0 : err_set("criu check failed (exit %d)", status);
}

int criu_version(const char *criu, char *buf, size_t size)
{
	char out[256];
	if (criu_output(criu, "--version", out, sizeof(out)) < 0)
		return -1;
	const char *v = strstr(out, "Version: ");
	if (!v)
		return err_set("%s --version printed no version", criu);
	v += strlen("Version: ");
	snprintf(buf, size, "%.*s", (int)strcspn(v, " \n"), v);
	return 0;
}

bool criu_has_stream(const char *criu)
{
	static char out[32768];
	return criu_output(criu, "--help", out, sizeof(out)) == 0 && strstr(out, "--stream");
}

#define IMG_SERVICE_MAGIC 0x55105940u
#define STATS_MAGIC 0x57093306u

int criu_read_dump_stats(const char *images_dir, struct criu_dump_stats *st)
{
	char path[4096];
	uint8_t buf[4096];
	snprintf(path, sizeof(path), "%s/stats-dump", images_dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys("cannot open %s", path);
	ssize_t n = read_full(fd, buf, sizeof(buf));
	close(fd);
	uint32_t magic[3];
	if (n < 12)
		return err_set("%s: too short", path);
	memcpy(magic, buf, sizeof(magic));
	if (magic[0] != IMG_SERVICE_MAGIC || magic[1] != STATS_MAGIC || magic[2] > (uint32_t)n - 12)
		return err_set("%s: not a CRIU stats image", path);
	Crs__CriuStats *s = crs__criu_stats__unpack(NULL, magic[2], buf + 12);
	if (!s || !s->dump) {
		if (s)
			crs__criu_stats__free_unpacked(s, NULL);
		return err_set("%s: no dump statistics", path);
	}
	st->freezing_us = s->dump->freezing_time;
	st->frozen_us = s->dump->frozen_time;
	st->memdump_us = s->dump->memdump_time;
	st->memwrite_us = s->dump->memwrite_time;
	st->pages_written = s->dump->pages_written;
	crs__criu_stats__free_unpacked(s, NULL);
	return 0;
}
