/* What a dump and a restore share: a private working directory, the
 * engine running in a thread, and waiting for CRIU while staying
 * responsive to Ctrl-C. */
#ifndef CRSTREAM_CHECKPOINT_SESSION_H
#define CRSTREAM_CHECKPOINT_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "criu/criu_exec.h"
#include "engine/engine.h"
#include "util/err.h"

/* A fresh 0700 directory under $TMPDIR (or /tmp): CRIU's -D, its socket,
 * our hook socket and action script live there, out of other users'
 * reach. Falls back to /tmp when $TMPDIR's path is too long for sockets. */
int session_mkdir(char *buf, size_t size);
/* Remove it and the files in it. */
void session_rmdir(const char *dir);

struct engine_thread {
	int (*fn)(const struct engine_opts *o, struct engine_result *res);
	struct engine_opts *o;
	struct engine_result *res;
	pthread_t thread;
	bool started;
	bool joined;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool listening;
	bool done;
	int rc;
	char err[ERR_MAX];
	/* The caller's on_listen, chained. */
	void (*user_on_listen)(void *arg);
	void *user_listen_arg;
};

/* Start the engine; returns once its socket listens (CRIU may start), or
 * with the engine's error if it failed before that. o->on_listen is
 * taken over (the caller's is still called). */
int engine_thread_start(struct engine_thread *et,
			int (*fn)(const struct engine_opts *, struct engine_result *),
			struct engine_opts *o, struct engine_result *res);
/* Wait for the engine to return; its result (error message set). */
int engine_thread_join(struct engine_thread *et);

/* Block SIGINT, SIGTERM and SIGCHLD in the calling thread (call before any
 * thread starts, so that all inherit it): the session's wait loop takes
 * them from a signalfd. */
int session_block_signals(void);

/* Before the session takes SIGINT and SIGTERM, a step may block for good
 * (a stalled server, a stuck mount) and must still end on them: this makes
 * either print "<prog>: interrupted" and exit(1) at once, which is right
 * as long as nothing has started that needs cleaning up. */
int session_exit_on_signals(void);

/* True if SIGINT or SIGTERM is pending (blocked and not yet taken): long
 * steps before CRIU runs check it as they go. */
bool session_interrupted(void);

struct criu_watch {
	pid_t pid;
	const char *log_path;
	/* SIGINT or SIGTERM arrived (may be called more than once). */
	void (*on_signal)(void *arg, int sig);
	/* Called about 4 times a second while CRIU runs. Optional. */
	void (*on_tick)(void *arg);
	void *arg;
	int signal;		/* the last signal seen, 0 if none */
};

/* Wait for CRIU to exit; 0 if it succeeded, else -1 with its error. */
int criu_watch_wait(struct criu_watch *w);

/* The start of every CRIU command line we run: `criu ACTION [--stream] -D
 * DIR`, its log, full verbosity, and our action script. */
int criu_argv_start(struct argv *a, const char *criu, const char *action, bool stream,
		    const char *images_dir, const char *log_path, const char *script);

/* Runs CRIU (argv is consumed) with its output in privdir/criu-output.txt,
 * watching it with w (w->pid is set here); *ms gets its run time. 0 if
 * CRIU succeeded, else -1 with its error. */
int session_run_criu(const char *privdir, struct argv *a, struct criu_watch *w, uint64_t *ms);

/* True if the process exists and is not a zombie. */
bool process_alive(pid_t pid);
/* What can be seen of a process from outside. */
enum process_state {
	PROCESS_GONE,		/* no such process, or a zombie */
	PROCESS_RUNNING,
	PROCESS_STOPPED,
	PROCESS_TRACED,		/* held by a tracer: another CRIU, a debugger */
};
enum process_state process_observe(pid_t pid, pid_t *tracer);
/* The same as one phrase for messages: "pid 12 keeps running", "pid 12 is
 * gone", "pid 12 is held by pid 40 (criu), ...". */
enum process_state process_describe(pid_t pid, char *buf, size_t size);
/* "gone", "running", "stopped", "traced". */
const char *process_state_name(enum process_state st);
/* Wait (up to timeout_ms) until pid has exited; true if it did. */
bool wait_process_exit(pid_t pid, int timeout_ms);

/* Absolute path of a program: itself if it contains '/', else from $PATH. */
int resolve_program(const char *name, char *buf, size_t size);

#endif
