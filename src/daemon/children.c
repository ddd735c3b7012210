/* The daemon's children: the workers it spawns for its operations, the
 * jobs it runs, and, as a subreaper, whatever their trees leave behind
 * (restored trees come back to it when CRIU exits). One thread reaps them
 * all with waitpid(-1) and hands each exit to whoever waits for it; no
 * other part of the daemon calls waitpid(). */
#include "daemon/daemon.h"
#include "daemon/worker.h"
#include "util/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* d->mu held. */
static struct child *child_add(struct daemon *d, pid_t pid, const char *jid)
{
	struct child *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->pid = pid;
	snprintf(c->jid, sizeof(c->jid), "%s", jid ? jid : "");
	c->next = d->children;
	d->children = c;
	return c;
}

static struct child *child_find(struct daemon *d, pid_t pid)
{
	for (struct child *c = d->children; c; c = c->next)
		if (c->pid == pid)
			return c;
	return NULL;
}

static void child_remove(struct daemon *d, struct child *gone)
{
	for (struct child **p = &d->children; *p; p = &(*p)->next)
		if (*p == gone) {
			*p = gone->next;
			free(gone);
			return;
		}
}

/* An exit no registered child claimed: kept for a while, in case it is
 * a process someone is about to claim (a restored tree exits quickly). */
static void remember_exit(struct daemon *d, pid_t pid, int status)
{
	size_t n = sizeof(d->recent) / sizeof(d->recent[0]);
	memmove(&d->recent[1], &d->recent[0], (n - 1) * sizeof(d->recent[0]));
	d->recent[0].pid = pid;
	d->recent[0].status = status;
	if (d->nrecent < (int)n)
		d->nrecent++;
}

void child_register_job(struct daemon *d, pid_t pid, const char *jid)
{
	for (int i = 0; i < d->nrecent; i++)
		if (d->recent[i].pid == pid) {
			int status = d->recent[i].status;
			d->recent[i].pid = 0;
			job_exited(d, jid, pid, status, true);
			return;
		}
	struct child *c = child_find(d, pid);
	if (!c)
		c = child_add(d, pid, jid);
	if (c) {
		snprintf(c->jid, sizeof(c->jid), "%s", jid);
		c->job_recorded = true;
	}
}

/* ---- workers ---- */

int worker_spawn(struct daemon *d, const char *request, pid_t *pid, int *events_fd,
		 struct rpc_status *st)
{
	int in[2] = {-1, -1}, ev[2] = {-1, -1};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	char ppid[16];
	char *argv[] = {d->self, WORKER_COMMAND, ppid, NULL};
	snprintf(ppid, sizeof(ppid), "%d", (int)d->pid);
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(ev, O_CLOEXEC) < 0) {
		int e = errno;
		for (int i = 0; i < 2; i++) {
			if (in[i] >= 0)
				close(in[i]);
			if (ev[i] >= 0)
				close(ev[i]);
		}
		return rpc_error(st, GRPC_STATUS_UNAVAILABLE, "cannot start a worker: pipe: %s",
				 strerror(e));
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, ev[1], WORKER_EVENTS_FD);
	/* Nothing else of the daemon's (its sockets, its catalog). */
	posix_spawn_file_actions_addclosefrom_np(&fa, WORKER_EVENTS_FD + 1);
	posix_spawnattr_init(&attr);
	/* The daemon blocks the signals its threads take from signalfds; a
	 * worker starts with none blocked and default dispositions (it sets
	 * up its own, as the CLI does). */
	sigemptyset(&none);
	sigfillset(&defaults);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	pthread_mutex_lock(&d->mu);
	/* Registered before the reaper can see it exit. */
	int rc = posix_spawn(pid, d->self, &fa, &attr, argv, environ);
	if (rc == 0)
		child_add(d, *pid, NULL);
	pthread_mutex_unlock(&d->mu);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(in[0]);
	close(ev[1]);
	if (rc != 0) {
		close(in[1]);
		close(ev[0]);
		return rpc_error(st, GRPC_STATUS_UNAVAILABLE, "cannot start a worker (%s): %s",
				 d->self, strerror(rc));
	}
	/* A worker that dies before reading it must not kill us: EPIPE. */
	if (write_full(in[1], request, strlen(request)) < 0 && errno != EPIPE)
		warnx_("writing to worker %d: %s", (int)*pid, strerror(errno));
	close(in[1]);
	*events_fd = ev[0];
	return 0;
}

int worker_read(int fd, void (*on_progress)(void *arg, struct json_object *p), void *arg,
		char **result_text)
{
	FILE *f = fdopen(fd, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	*result_text = NULL;
	if (!f) {
		close(fd);
		return err_sys("worker events");
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (!strncmp(line, "progress ", 9) && on_progress) {
			struct json_object *p = json_tokener_parse(line + 9);
			if (p)
				on_progress(arg, p);
			json_object_put(p);
		} else if (!strncmp(line, "result ", 7)) {
			free(*result_text);
			*result_text = strdup(line + 7);
		}
	}
	free(line);
	fclose(f);
	return 0;
}

int child_wait(struct daemon *d, pid_t pid)
{
	pthread_mutex_lock(&d->mu);
	struct child *c;
	while ((c = child_find(d, pid)) && !c->exited)
		pthread_cond_wait(&d->cv, &d->mu);
	int status = c ? c->status : 0;
	if (c)
		child_remove(d, c);
	pthread_mutex_unlock(&d->mu);
	return status;
}

/* ---- the reaper ---- */

static void reap(struct daemon *d)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		pthread_mutex_lock(&d->mu);
		struct child *c = child_find(d, pid);
		if (c && c->jid[0] && c->job_recorded) {
			job_exited(d, c->jid, pid, status, true);
			child_remove(d, c);
		} else if (c) {
			c->exited = true;
			c->status = status;
		} else {
			remember_exit(d, pid, status);
		}
		pthread_cond_broadcast(&d->cv);
		pthread_mutex_unlock(&d->mu);
	}
}

static void *reaper_main(void *arg)
{
	struct daemon *d = arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		warnx_("reaper: signalfd: %s", strerror(errno));
		return NULL;
	}
	struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = d->reaper_stop_fd, .events = POLLIN}};
	int64_t last_poll = 0;
	for (;;) {
		reap(d);
		/* Processes that are not our children (adopted by Manage)
		 * send no SIGCHLD: look at them now and then. */
		if (unix_ms() - last_poll >= 1000) {
			jobs_poll(d);
			last_poll = unix_ms();
		}
		if (poll(p, 2, 1000) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		struct signalfd_siginfo si;
		while (read(sfd, &si, sizeof(si)) == sizeof(si))
			;
	}
	close(sfd);
	return NULL;
}

int reaper_start(struct daemon *d)
{
	/* Orphans of our subtree (restored trees, jobs' children) come to us
	 * rather than to init, so we can reap and account for them. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return err_sys("PR_SET_CHILD_SUBREAPER");
	d->reaper_stop_fd = eventfd(0, EFD_CLOEXEC);
	if (d->reaper_stop_fd < 0)
		return err_sys("eventfd");
	if (pthread_create(&d->reaper, NULL, reaper_main, d) != 0)
		return err_set("cannot start the reaper thread");
	d->reaper_started = true;
	return 0;
}

void reaper_stop(struct daemon *d)
{
	if (!d->reaper_started)
		return;
	uint64_t one = 1;
	(void)!write(d->reaper_stop_fd, &one, sizeof(one));
	pthread_join(d->reaper, NULL);
	close(d->reaper_stop_fd);
	d->reaper_started = false;
	pthread_mutex_lock(&d->mu);
	while (d->children)
		child_remove(d, d->children);
	pthread_mutex_unlock(&d->mu);
}
