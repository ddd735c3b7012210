/* Jobs: processes the daemon runs (Run: its children, their output in a
 * log file, their exit status reaped) or adopts (Manage: any running
 * process, watched through /proc). A job keeps its JID through dumps and
 * restores: restoring its checkpoint brings it back under the same JID. */
#include "daemon/daemon.h"
#include "daemon/requests.h"
#include "checkpoint/session.h"
#include "cli/config.h"
#include "util/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- processes ---- */

static int64_t boot_time_ms(void)
{
	static int64_t boot;
	if (boot)
		return boot;
	FILE *f = fopen("/proc/stat", "re");
	char line[256];
	long long btime = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %lld", &btime) == 1)
			break;
	if (f)
		fclose(f);
	boot = btime * 1000;
	return boot;
}

bool process_start(pid_t pid, uint64_t *ticks, int64_t *ms)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	char state;
	unsigned long long start;
	/* Fields after the command: state (3) ... starttime (22). */
	if (!p || sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
			 "%*d %*d %*d %llu", &state, &start) != 2)
		return false;
	if (ticks)
		*ticks = start;
	if (ms)
		*ms = boot_time_ms() + (int64_t)(start * 1000 / (unsigned long long)sysconf(_SC_CLK_TCK));
	return state != 'Z' && state != 'X';
}

/* The same process as recorded (not a new one that got its pid). */
static bool job_process_alive(const struct job_row *j)
{
	uint64_t ticks;
	return process_start(j->pid, &ticks, NULL) && (!j->pid_start || ticks == j->pid_start);
}

void job_status_line(const struct job_row *j, char *buf, size_t size)
{
	if (!strcmp(j->state, "exited")) {
		if (j->exit_signal)
			snprintf(buf, size, "killed by signal %d (%s)", j->exit_signal,
				 strsignal(j->exit_signal));
		else if (j->exit_code >= 0)
			snprintf(buf, size, "exited with code %d", j->exit_code);
		else
			snprintf(buf, size, "exited (status unknown: not the daemon's child)");
	} else if (!strcmp(j->state, "running") && j->restored_from[0]) {
		snprintf(buf, size, "running (restored from %s)", j->restored_from);
	} else {
		snprintf(buf, size, "%s", j->state);
	}
}

/* ---- exits ---- */

void job_exited(struct daemon *d, const char *jid, pid_t pid, int status, bool known)
{
	struct job_row j;
	if (catalog_get_job(d->cat, jid, &j) != 0 || strcmp(j.state, "running") || j.pid != pid)
		return;
	/* A dump in progress decides: its end says checkpointed or exited. */
	if (op_busy_job(d, jid))
		return;
	snprintf(j.state, sizeof(j.state), "exited");
	j.exit_code = known && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	j.exit_signal = known && WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	if (catalog_update_job(d->cat, &j) < 0)
		warnx_("%s", err_msg());
	pthread_cond_broadcast(&d->cv);
}

static int poll_one(const struct job_row *row, void *arg)
{
	struct daemon *d = arg;
	if (strcmp(row->state, "running") || row->child || job_process_alive(row))
		return 0;
	job_exited(d, row->jid, row->pid, 0, false);
	return 0;
}

void jobs_poll(struct daemon *d)
{
	pthread_mutex_lock(&d->mu);
	if (catalog_each_job(d->cat, poll_one, d) < 0)
		warnx_("%s", err_msg());
	pthread_mutex_unlock(&d->mu);
}

static int reconcile_one(const struct job_row *row, void *arg)
{
	struct daemon *d = arg;
	if (strcmp(row->state, "running") || !row->child)
		return 0;
	/* A daemon that restarted has no children: its jobs were reparented
	 * when it stopped. They are watched through /proc from now on. */
	struct job_row j = *row;
	j.child = false;
	if (catalog_update_job(d->cat, &j) < 0)
		warnx_("%s", err_msg());
	return 0;
}

void jobs_reconcile(struct daemon *d)
{
	pthread_mutex_lock(&d->mu);
	if (catalog_each_job(d->cat, reconcile_one, d) < 0)
		warnx_("reconciling jobs: %s", err_msg());
	pthread_mutex_unlock(&d->mu);
	jobs_poll(d);
}

/* ---- requests ---- */

static int check_jid(const char *jid, struct rpc_status *st)
{
	size_t n = strlen(jid);
	if (n == 0 || n > 63)
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "JID \"%s\": 1 to 63 characters", jid);
	for (const char *p = jid; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_' || *p == '.'))
			return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT,
					 "JID \"%s\": only letters, digits, \"-\", \"_\" and \".\"", jid);
	if (strstr(jid, ".."))
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "JID \"%s\": must not contain \"..\"",
				 jid);
	return 0;
}

static void args_json(char *const *args, size_t n, char *buf, size_t size)
{
	struct json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(args[i]));
	snprintf(buf, size, "%s", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
	json_object_put(a);
}

static int write_pid_file(const char *path, pid_t pid, struct rpc_status *st)
{
	if (!path || !*path)
		return 0;
	char text[16];
	int n = snprintf(text, sizeof(text), "%d\n", (int)pid);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_full(fd, text, (size_t)n) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "PidFile %s: %s", path, strerror(e));
	}
	close(fd);
	return 0;
}

/* A fresh JID that no job has. */
static int pick_jid(struct daemon *d, const char *want, char *jid, size_t size,
		    struct rpc_status *st)
{
	struct job_row j;
	if (want && *want) {
		if (check_jid(want, st) < 0)
			return -1;
		snprintf(jid, size, "%s", want);
	} else {
		new_id(jid, size, "job-");
	}
	int rc = catalog_get_job(d->cat, jid, &j);
	if (rc < 0)
		return rpc_error(st, GRPC_STATUS_INTERNAL, "%s", err_msg());
	if (rc == 0)
		return rpc_error(st, GRPC_STATUS_ALREADY_EXISTS, "JID \"%s\": a job has it already", jid);
	return 0;
}

static int open_log(struct daemon *d, const struct run_request *rq, const char *jid, char *path,
		    size_t size, struct rpc_status *st)
{
	if (rq->log && *rq->log) {
		snprintf(path, size, "%s", rq->log);
	} else {
		const char *dir = config_get(d->cfg, "daemon.job_logs");
		if (mkdir_p(dir, 0700) < 0)
			return rpc_error(st, GRPC_STATUS_UNAVAILABLE, "job logs: %s", err_msg());
		snprintf(path, size, "%s/%s.log", dir, jid);
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "Log %s: %s", path, strerror(errno));
	if (rq->as_user && fchown(fd, rq->uid, rq->gid) < 0) {
		int e = errno;
		close(fd);
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "Log %s: chown: %s", path, strerror(e));
	}
	return fd;
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void exec_job(const struct run_request *rq, const char *program, char **argv, char **envp,
		     int log_fd, int err_fd)
{
	sigset_t none;
	sigemptyset(&none);
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	int null = open("/dev/null", O_RDONLY);
	int rc = setsid() < 0 || null < 0 || dup2(null, 0) < 0 || dup2(log_fd, 1) < 0 ||
		 dup2(log_fd, 2) < 0;
	umask(022);
	if (!rc && rq->as_user)
		rc = setgroups(rq->ngroups, rq->groups) < 0 || setgid(rq->gid) < 0 || setuid(rq->uid) < 0;
	if (!rc && rq->working_dir && *rq->working_dir)
		rc = chdir(rq->working_dir) < 0;
	if (!rc) {
		close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
		execve(program, argv, envp);
	}
	int e = errno;
	(void)!write(err_fd, &e, sizeof(e));
	_exit(127);
}

int job_run(struct daemon *d, const struct run_request *rq, struct job_row *out,
	    struct rpc_status *st)
{
	char program[4096], log[1024];
	if (!rq->nargs || !rq->args[0][0])
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT,
				 "Path: missing (the command a job runs)");
	if (check_request_path("WorkingDir", rq->working_dir, false, st) < 0 ||
	    check_request_path("Log", rq->log, false, st) < 0 ||
	    check_request_path("PidFile", rq->pid_file, false, st) < 0)
		return -1;
	if (resolve_program(rq->args[0], program, sizeof(program)) < 0)
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "Path: %s", err_msg());
	struct job_row j = {.exit_code = -1, .child = true, .started_ms = unix_ms()};
	pthread_mutex_lock(&d->mu);
	int rc = pick_jid(d, rq->jid, j.jid, sizeof(j.jid), st);
	int log_fd = rc < 0 ? -1 : open_log(d, rq, j.jid, log, sizeof(log), st);
	int errp[2] = {-1, -1};
	if (log_fd < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		if (log_fd >= 0) {
			close(log_fd);
			rpc_error(st, GRPC_STATUS_UNAVAILABLE, "pipe: %s", strerror(errno));
		}
		pthread_mutex_unlock(&d->mu);
		return -1;
	}
	char **argv = calloc(rq->nargs + 1, sizeof(char *));
	if (argv)
		memcpy(argv, rq->args, rq->nargs * sizeof(char *));
	char **envp = rq->env ? calloc(rq->nenv + 1, sizeof(char *)) : environ;
	if (envp && rq->env)
		memcpy(envp, rq->env, rq->nenv * sizeof(char *));
	/* Forked with d->mu held: the reaper cannot see the child exit before
	 * it is recorded. */
	pid_t pid = argv && envp ? fork() : -2;
	if (pid == 0)
		exec_job(rq, program, argv, envp, log_fd, errp[1]);
	int e = pid == -1 ? errno : pid == -2 ? ENOMEM : 0;
	close(errp[1]);
	close(log_fd);
	if (pid > 0 && read(errp[0], &e, sizeof(e)) != (ssize_t)sizeof(e))
		e = 0;	/* EOF: exec succeeded */
	close(errp[0]);
	free(argv);
	if (envp != environ)
		free(envp);
	if (e) {
		pthread_mutex_unlock(&d->mu);
		return rpc_error(st, pid > 0 ? GRPC_STATUS_INVALID_ARGUMENT : GRPC_STATUS_UNAVAILABLE,
				 "cannot run %s: %s", program, strerror(e));
	}
	j.pid = pid;
	process_start(pid, &j.pid_start, NULL);
	snprintf(j.state, sizeof(j.state), "running");
	args_json(rq->args, rq->nargs, j.args, sizeof(j.args));
	snprintf(j.log, sizeof(j.log), "%s", log);
	if (rq->working_dir && *rq->working_dir)
		snprintf(j.working_dir, sizeof(j.working_dir), "%s", rq->working_dir);
	else if (!getcwd(j.working_dir, sizeof(j.working_dir)))
		j.working_dir[0] = '\0';
	rc = catalog_add_job(d->cat, &j);
	if (rc == 0)
		child_register_job(d, pid, j.jid);
	pthread_mutex_unlock(&d->mu);
	if (rc != 0) {
		kill(pid, SIGKILL);
		return rpc_error(st, GRPC_STATUS_INTERNAL, "%s", err_msg());
	}
	write_pid_file(rq->pid_file, pid, st);
	return job_get(d, j.jid, out, st);
}

static void read_cmdline(pid_t pid, char *json, size_t size)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	char *args[256];
	size_t na = 0;
	for (ssize_t i = 0; n > 0 && i < n && na < 256; i += (ssize_t)strlen(buf + i) + 1) {
		buf[n] = '\0';
		args[na++] = buf + i;
	}
	args_json(args, na, json, size);
}

int job_manage(struct daemon *d, pid_t pid, const char *want_jid, struct job_row *out,
	       struct rpc_status *st)
{
	struct job_row j = {.exit_code = -1, .pid = pid};
	if (pid <= 0)
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "PID: missing (the process to manage)");
	if (!process_start(pid, &j.pid_start, &j.started_ms))
		return rpc_error(st, GRPC_STATUS_NOT_FOUND, "PID %d: no such process", (int)pid);
	if (pid == d->pid)
		return rpc_error(st, GRPC_STATUS_FAILED_PRECONDITION, "PID %d is the daemon itself",
				 (int)pid);
	pthread_mutex_lock(&d->mu);
	struct job_row other;
	int rc = catalog_job_by_pid(d->cat, pid, &other);
	if (rc == 0)
		rc = rpc_error(st, GRPC_STATUS_ALREADY_EXISTS, "PID %d is job %s already", (int)pid,
			       other.jid);
	else if (rc < 0)
		rc = rpc_error(st, GRPC_STATUS_INTERNAL, "%s", err_msg());
	else
		rc = pick_jid(d, want_jid, j.jid, sizeof(j.jid), st);
	if (rc == 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
		ssize_t n = readlink(path, j.working_dir, sizeof(j.working_dir) - 1);
		j.working_dir[n > 0 ? n : 0] = '\0';
		read_cmdline(pid, j.args, sizeof(j.args));
		snprintf(j.state, sizeof(j.state), "running");
		/* An orphan reparented to the daemon is its child: reaped here. */
		char stat_path[64];
		snprintf(stat_path, sizeof(stat_path), "/proc/%d/status", (int)pid);
		FILE *f = fopen(stat_path, "re");
		char line[128];
		int ppid = -1;
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "PPid: %d", &ppid) == 1)
				break;
		if (f)
			fclose(f);
		j.child = ppid == (int)d->pid;
		rc = catalog_add_job(d->cat, &j);
		if (rc != 0)
			rc = rpc_error(st, GRPC_STATUS_INTERNAL, "%s", err_msg());
		else if (j.child)
			child_register_job(d, pid, j.jid);
	}
	pthread_mutex_unlock(&d->mu);
	return rc < 0 ? -1 : job_get(d, j.jid, out, st);
}

int job_get(struct daemon *d, const char *jid, struct job_row *out, struct rpc_status *st)
{
	if (!jid || !*jid)
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "JID: missing");
	int rc = catalog_get_job(d->cat, jid, out);
	if (rc < 0)
		return rpc_error(st, GRPC_STATUS_INTERNAL, "%s", err_msg());
	if (rc == 1)
		return rpc_error(st, GRPC_STATUS_NOT_FOUND, "JID \"%s\": no such job", jid);
	return 0;
}

int job_kill(struct daemon *d, const char *jid, int sig, struct job_row *out,
	     struct rpc_status *st)
{
	if (job_get(d, jid, out, st) < 0)
		return -1;
	if (sig < 0 || sig >= NSIG)
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "Signal %d: not a signal", sig);
	if (strcmp(out->state, "running"))
		return rpc_error(st, GRPC_STATUS_FAILED_PRECONDITION, "job %s is not running (%s)", jid,
				 out->state);
	if (!job_process_alive(out))
		return rpc_error(st, GRPC_STATUS_FAILED_PRECONDITION, "job %s: pid %d is gone", jid,
				 (int)out->pid);
	if (kill(out->pid, sig ? sig : SIGKILL) < 0)
		return rpc_error(st, GRPC_STATUS_FAILED_PRECONDITION, "job %s: kill %d: %s", jid,
				 (int)out->pid, strerror(errno));
	/* Let the reaper record the end (or the poll see it), for a moment. */
	int64_t until = unix_ms() + 5000;
	pthread_mutex_lock(&d->mu);
	while (catalog_get_job(d->cat, jid, out) == 0 && !strcmp(out->state, "running") &&
	       unix_ms() < until) {
		struct timespec ts = deadline_after_ms(100);
		pthread_cond_timedwait(&d->cv, &d->mu, &ts);
	}
	pthread_mutex_unlock(&d->mu);
	return 0;
}

bool job_listed(char *const *jids, size_t n, const char *jid)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(jids[i], jid))
			return true;
	return n == 0;
}

int job_delete(struct daemon *d, const char *jid, struct rpc_status *st)
{
	struct job_row j;
	if (job_get(d, jid, &j, st) < 0)
		return -1;
	pthread_mutex_lock(&d->mu);
	int rc = 0;
	if (!strcmp(j.state, "running") && job_process_alive(&j))
		rc = rpc_error(st, GRPC_STATUS_FAILED_PRECONDITION,
			       "job %s is running (pid %d): kill it first", jid, (int)j.pid);
	else if (op_busy_job(d, jid))
		rc = rpc_error(st, GRPC_STATUS_FAILED_PRECONDITION,
			       "job %s: an operation on it is running", jid);
	else if (catalog_delete_job(d->cat, jid) < 0)
		rc = rpc_error(st, GRPC_STATUS_INTERNAL, "%s", err_msg());
	pthread_mutex_unlock(&d->mu);
	return rc;
}
