#include "checkpoint/session.h"
#include "criu/criu_exec.h"
#include "util/fdio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Room left for "/streamer-capture.sock" in a 108-byte sun_path. */
#define SOCKET_DIR_MAX 80

int session_mkdir(char *buf, size_t size)
{
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp || strlen(tmp) > SOCKET_DIR_MAX - 20)
		tmp = "/tmp";
	if (snprintf(buf, size, "%s/crstream.XXXXXX", tmp) >= (int)size)
		return err_set("temporary directory path too long");
	if (!mkdtemp(buf))	/* mkdtemp makes it 0700 */
		return err_sys("cannot create a private directory in %s", tmp);
	return 0;
}

void session_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			char path[PATH_MAX];
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(dir);
}

/* ---- the engine in a thread ---- */

static void on_listen(void *arg)
{
	struct engine_thread *et = arg;
	pthread_mutex_lock(&et->mu);
	et->listening = true;
	pthread_cond_broadcast(&et->cv);
	pthread_mutex_unlock(&et->mu);
	if (et->user_on_listen)
		et->user_on_listen(et->user_listen_arg);
}

static void *engine_main(void *arg)
{
	struct engine_thread *et = arg;
	int rc = et->fn(et->o, et->res);
	pthread_mutex_lock(&et->mu);
	et->rc = rc;
	if (rc < 0)
		err_copy(et->err, sizeof(et->err));
	et->done = true;
	pthread_cond_broadcast(&et->cv);
	pthread_mutex_unlock(&et->mu);
	return NULL;
}

int engine_thread_start(struct engine_thread *et,
			int (*fn)(const struct engine_opts *, struct engine_result *),
			struct engine_opts *o, struct engine_result *res)
{
	memset(et, 0, sizeof(*et));
	et->fn = fn;
	et->o = o;
	et->res = res;
	pthread_mutex_init(&et->mu, NULL);
	pthread_cond_init(&et->cv, NULL);
	et->user_on_listen = o->on_listen;
	et->user_listen_arg = o->listen_arg;
	o->on_listen = on_listen;
	o->listen_arg = et;
	if (pthread_create(&et->thread, NULL, engine_main, et) != 0)
		return err_set("cannot start the streaming engine");
	et->started = true;
	pthread_mutex_lock(&et->mu);
	while (!et->listening && !et->done)
		pthread_cond_wait(&et->cv, &et->mu);
	bool failed = et->done && et->rc < 0;
	pthread_mutex_unlock(&et->mu);
	if (failed) {
		engine_thread_join(et);
		return -1;
	}
	return 0;
}

int engine_thread_join(struct engine_thread *et)
{
	if (et->started && !et->joined) {
		pthread_join(et->thread, NULL);
		et->joined = true;
	}
	if (et->rc < 0)
		return err_set("%s", et->err);
	return 0;
}

/* ---- CRIU and signals ---- */

static void signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGCHLD);
}

int session_block_signals(void)
{
	sigset_t set;
	signal_set(&set);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return err_set("cannot block signals");
	return 0;
}

static void exit_interrupted(int sig)
{
	static const char msg[] = ": interrupted\n";
	(void)sig;
	/* Only async-signal-safe calls: write(2) and _exit(2). */
	(void)!write(STDERR_FILENO, err_progname, strlen(err_progname));
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

int session_exit_on_signals(void)
{
	struct sigaction sa = {.sa_handler = exit_interrupted};
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		return err_sys("sigaction");
	return 0;
}

bool session_interrupted(void)
{
	sigset_t pending;
	return sigpending(&pending) == 0 &&
	       (sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1);
}

/* Handles the signals that are pending; returns 1 once CRIU has exited
 * (status in *status). */
static int drain_signals(struct criu_watch *w, int sfd, int *status)
{
	struct signalfd_siginfo si;
	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
			w->signal = (int)si.ssi_signo;
			if (w->on_signal)
				w->on_signal(w->arg, (int)si.ssi_signo);
		}
	}
	/* SIGCHLD may be for another child or coalesced: just ask. */
	pid_t r = waitpid(w->pid, status, WNOHANG);
	return r == w->pid;
}

int criu_watch_wait(struct criu_watch *w)
{
	sigset_t set;
	signal_set(&set);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return err_sys("signalfd");
	int status = 0;
	for (;;) {
		if (drain_signals(w, sfd, &status))
			break;
		struct pollfd pfd = {.fd = sfd, .events = POLLIN};
		int n = poll(&pfd, 1, 250);
		if (n < 0 && errno != EINTR) {
			close(sfd);
			return err_sys("poll");
		}
		if (n == 0 && w->on_tick)
			w->on_tick(w->arg);
	}
	close(sfd);
	return criu_check_status(status, w->log_path);
}

bool process_alive(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* "pid (comm) S ...": the state follows the last ')'. */
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

enum process_state process_observe(pid_t pid, pid_t *tracer)
{
	char path[64], line[256];
	*tracer = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return PROCESS_GONE;
	char state = '?';
	int tpid = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "State: %c", &state) != 1)
			sscanf(line, "TracerPid: %d", &tpid);
	fclose(f);
	if (state == 'Z' || state == 'X' || state == '?')
		return PROCESS_GONE;
	if (tpid > 0) {
		*tracer = (pid_t)tpid;
		return PROCESS_TRACED;
	}
	return state == 'T' || state == 't' ? PROCESS_STOPPED : PROCESS_RUNNING;
}

const char *process_state_name(enum process_state st)
{
	static const char *const names[] = {"gone", "running", "stopped", "traced"};
	return names[st];
}

enum process_state process_describe(pid_t pid, char *buf, size_t size)
{
	pid_t tracer;
	enum process_state st = process_observe(pid, &tracer);
	char comm[64] = "?", path[64];
	switch (st) {
	case PROCESS_GONE:
		snprintf(buf, size, "pid %d is gone", (int)pid);
		break;
	case PROCESS_RUNNING:
		snprintf(buf, size, "pid %d keeps running", (int)pid);
		break;
	case PROCESS_STOPPED:
		snprintf(buf, size, "pid %d is stopped", (int)pid);
		break;
	case PROCESS_TRACED:
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)tracer);
		FILE *f = fopen(path, "re");
		if (f && fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		if (f)
			fclose(f);
		snprintf(buf, size, "pid %d is held by pid %d (%s), another checkpoint or a debugger: "
			 "what becomes of it is up to that one", (int)pid, (int)tracer, comm);
		break;
	}
	return st;
}

bool wait_process_exit(pid_t pid, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		if (!process_alive(pid))
			return true;
		usleep(10000);
	}
	return false;
}

int resolve_program(const char *name, char *buf, size_t size)
{
	if (strchr(name, '/')) {
		if (access(name, X_OK) < 0)
			return err_sys("%s", name);
		if (!realpath(name, buf) && snprintf(buf, size, "%s", name) >= (int)size)
			return err_set("path too long: %s", name);
		return 0;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	char *copy = strdup(path), *save = NULL;
	if (!copy)
		return err_set("out of memory");
	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(buf, size, "%s/%s", dir, name);
		if (access(buf, X_OK) == 0) {
			free(copy);
			return 0;
		}
	}
	free(copy);
	return err_set("%s: not found in PATH", name);
}

int criu_argv_start(struct argv *a, const char *criu, const char *action, bool stream,
		    const char *images_dir, const char *log_path, const char *script)
{
	int rc = 0;
	rc |= argv_add(a, criu);
	rc |= argv_add(a, action);
	if (stream)
		rc |= argv_add(a, "--stream");
	rc |= argv_add(a, "-D");
	rc |= argv_add(a, images_dir);
	rc |= argv_addf(a, "--log-file=%s", log_path);
	rc |= argv_add(a, "-v4");
	rc |= argv_addf(a, "--action-script=%s", script);
	return rc ? -1 : 0;
}

int session_run_criu(const char *privdir, struct argv *a, struct criu_watch *w, uint64_t *ms)
{
	char out_path[PATH_MAX];
	if (snprintf(out_path, sizeof(out_path), "%s/criu-output.txt", privdir) >= (int)sizeof(out_path)) {
		argv_free(a);
		return err_set("path too long: %s", privdir);
	}
	uint64_t t = now_ms();
	int rc = criu_spawn(a, NULL, out_path, &w->pid);
	argv_free(a);
	if (rc < 0)
		return -1;
	rc = criu_watch_wait(w);
	*ms = now_ms() - t;
	return rc;
}
