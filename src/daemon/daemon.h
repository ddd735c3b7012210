/* The daemon's internals, shared by its parts:
 *
 *   server.c      the sockets, callers' credentials, gRPC calls to handlers
 *   svc_cedana.c  daemon.Daemon (Cedana's wire API) -> the operations below
 *   svc_v1.c      crstream.v1 (crstream's own, with progress streams)
 *   ops.c         dumps and restores, each in a worker process
 *   jobs.c        Run, Manage, Kill, Delete; job states
 *   children.c    spawning workers and jobs; the reaper (the daemon is a
 *                 subreaper: it reaps jobs and what they leave behind)
 *   policy.c      periodic checkpoints
 *   catalog.c     the SQLite catalog
 *
 * Both services translate their messages into the request structures here
 * and answer from the same operations, so they cannot drift apart. */
#ifndef CRSTREAM_DAEMON_DAEMON_H
#define CRSTREAM_DAEMON_DAEMON_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/catalog.h"
#include "daemon/rpc.h"

struct config;
struct daemon;
struct json_object;

/* ---- operations (dumps and restores) ---- */

struct op_progress {
	char phase[16];
	int streams;
	uint64_t elapsed_ms, captured_bytes, done_bytes, total_bytes, stored_bytes, rate;
	int64_t eta_ms;
};

enum op_kind { OP_DUMP, OP_RESTORE };

struct op {
	struct op *next;
	int refs;			/* d->mu */
	char id[24];
	enum op_kind kind;
	char target[4200];		/* "pid 1234", or the checkpoint restored */
	pid_t pid;			/* dump: the tree's root */
	char jid[64];
	char ckpt_id[40];		/* dump: the checkpoint made; restore: from */
	char location[4200];
	pid_t *tree;			/* dump: the processes it holds (the lock) */
	int ntree;
	bool leave_running;
	bool policy;			/* started by a periodic policy */
	char *request;			/* the worker's JSON request */
	pid_t worker;
	bool cancelled;
	/* Changes under d->mu, announced on d->cv. */
	uint64_t seq;			/* bumped at each progress event */
	struct op_progress progress;
	bool done;
	bool ok;
	char *result_json;		/* the --json object */
	char error[ERR_MAX];
	pid_t restored_pid;
	bool process_running;
};

/* The CRIU options a dump and a restore request both carry. */
struct criu_flags {
	int shell_job;			/* -1: automatic (dump), as dumped (restore) */
	bool tcp_established, file_locks, ext_unix_sk;
	char **external;
	size_t nexternal;
};

struct dump_request {
	pid_t pid;			/* 0: by jid */
	const char *jid;
	const char *dir;		/* NULL/"": checkpoint.dir */
	const char *name;		/* NULL/"": generated */
	const char *compression;	/* NULL/"": checkpoint.compression */
	int level;			/* 0: default */
	int streams;			/* -1: checkpoint.streams */
	bool leave_running;
	struct criu_flags criu;
	bool policy;
};

struct restore_request {
	const char *path;		/* one of path, */
	const char *ckpt_id;		/* a catalog ID, */
	const char *jid;		/* or a job's latest complete checkpoint */
	const char *pid_file;
	struct criu_flags criu;
	bool tcp_close;
};

/* Validate, lock, record and start; *out holds a reference (op_put). */
int op_start_dump(struct daemon *d, const struct dump_request *rq, struct op **out,
		  struct rpc_status *st);
int op_start_restore(struct daemon *d, const struct restore_request *rq, struct op **out,
		     struct rpc_status *st);
/* Waits (up to timeout_ms) for progress after *seq, or the end; updates
 * *seq. True once the operation has ended. */
bool op_wait(struct daemon *d, struct op *op, uint64_t *seq, int timeout_ms);
struct op *op_find(struct daemon *d, const char *id);	/* a reference, or NULL */
void op_put(struct daemon *d, struct op *op);
int op_cancel(struct daemon *d, const char *id, struct rpc_status *st);
/* Dumps still running: cancel them all (drain). Returns how many. */
int ops_cancel_dumps(struct daemon *d);
/* Waits until no operation runs (up to timeout_ms); true if none does. */
bool ops_wait_idle(struct daemon *d, int timeout_ms);
int ops_running(struct daemon *d);
/* Is a dump or restore of this job running? (d->mu held) */
bool op_busy_job(struct daemon *d, const char *jid);

/* A store operation in a worker, waited for: "remove", "manifest",
 * "health". *result: the worker's result object (json_object_put it). */
int worker_run(struct daemon *d, struct json_object *req, struct json_object **result,
	       struct rpc_status *st);
/* Deletes a checkpoint's objects and its catalog entry. */
int checkpoint_delete(struct daemon *d, const struct ckpt_row *r, unsigned *objects,
		      struct rpc_status *st);
/* At start: checkpoints left in progress by a daemon that stopped. */
void ops_reconcile(struct daemon *d);

/* ---- jobs ---- */

struct run_request {
	const char *jid;		/* NULL/"": generated */
	char **args;			/* args[0]: the program (PATH searched) */
	size_t nargs;
	const char *working_dir;
	char **env;			/* NULL: the daemon's environment */
	size_t nenv;
	const char *log;		/* NULL/"": daemon.job_logs/JID.log */
	const char *pid_file;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	size_t ngroups;
	bool as_user;			/* uid/gid/groups given */
};

int job_run(struct daemon *d, const struct run_request *rq, struct job_row *out,
	    struct rpc_status *st);
int job_manage(struct daemon *d, pid_t pid, const char *jid, struct job_row *out,
	       struct rpc_status *st);
int job_get(struct daemon *d, const char *jid, struct job_row *out, struct rpc_status *st);
/* Sends sig (0: SIGKILL) and waits a moment for the end to be recorded. */
int job_kill(struct daemon *d, const char *jid, int sig, struct job_row *out,
	     struct rpc_status *st);
int job_delete(struct daemon *d, const char *jid, struct rpc_status *st);
/* Whether a List request naming jids[0..n) wants the job jid (none named:
 * every job). */
bool job_listed(char *const *jids, size_t n, const char *jid);
/* "running", "exited with code 3", "killed by signal 9 (Killed)", ... */
void job_status_line(const struct job_row *j, char *buf, size_t size);
/* A process's start time (Unix ms) and the ticks since boot /proc gives
 * it; false if it is not running. */
bool process_start(pid_t pid, uint64_t *ticks, int64_t *unix_ms);
/* The catalog's jobs against the processes (at start: the daemon's
 * children are not its children any more). */
void jobs_reconcile(struct daemon *d);
/* Called by the reaper with d->mu held. */
void job_exited(struct daemon *d, const char *jid, pid_t pid, int status, bool status_known);
/* Periodically: adopted processes that ended. */
void jobs_poll(struct daemon *d);

/* ---- children ---- */

struct child {
	struct child *next;
	pid_t pid;
	char jid[64];			/* a job's process: "" for a worker */
	bool job_recorded;		/* the job's row exists: exits go there */
	bool exited;
	int status;
};

/* Spawns a worker; request is written to its stdin; *events_fd reads its
 * events. The caller's thread must live until the worker has exited
 * (PR_SET_PDEATHSIG follows the thread that spawned it). */
int worker_spawn(struct daemon *d, const char *request, pid_t *pid, int *events_fd,
		 struct rpc_status *st);
/* Reads a worker's event lines until EOF; on_progress for each progress
 * line; *result_text the result line's object (malloc'd) or NULL. */
int worker_read(int fd, void (*on_progress)(void *arg, struct json_object *p), void *arg,
		char **result_text);
/* Waits for a registered child to exit (the reaper collects it) and
 * unregisters it; its wait status. */
int child_wait(struct daemon *d, pid_t pid);
/* Registers a job's process (d->mu held); if it already exited (reaped
 * before anyone knew it), the exit is applied at once. */
void child_register_job(struct daemon *d, pid_t pid, const char *jid);
int reaper_start(struct daemon *d);
void reaper_stop(struct daemon *d);

/* ---- policies ---- */

/* A job's periodic checkpoints: every interval seconds a dump with
 * leave-running, into dir; once one is complete, the policy's complete
 * checkpoints beyond the newest keep are deleted (and its incomplete ones
 * older than the newest complete one). */
struct policy_request {
	bool given;
	uint32_t interval;		/* seconds; 0: none */
	uint32_t keep;			/* 0: policy.keep */
	const char *dir;		/* NULL/"": policy.dir, else checkpoint.dir */
	uint32_t streams;		/* 0: checkpoint.streams */
	const char *compression;	/* NULL/"": checkpoint.compression */
};

int policy_check(struct daemon *d, const struct policy_request *p, struct rpc_status *st);
int policy_set(struct daemon *d, const char *jid, const struct policy_request *p,
	       struct rpc_status *st);
int policy_start(struct daemon *d);
void policy_stop(struct daemon *d);
/* After a policy's dump completed: prune to keep. */
void policy_prune(struct daemon *d, const char *jid);

/* ---- the daemon ---- */

struct daemon {
	struct config *cfg;
	char self[PATH_MAX];		/* the crstream binary, for workers */
	pid_t pid;
	struct catalog *cat;
	int64_t started_ms;
	char socket_path[108];

	pthread_mutex_t mu;
	pthread_cond_t cv;		/* children exited, ops progressed or ended */
	struct op *ops;			/* running, then the last few finished */
	struct child *children;
	struct {			/* exits of children no one waited for */
		pid_t pid;
		int status;
	} recent[64];
	int nrecent;
	bool draining;

	pthread_t reaper, policy;
	int reaper_stop_fd, policy_stop_fd;
	bool reaper_started, policy_started;
	void *server;			/* server.c's state */
};

/* What HealthCheck and crstream.v1's Health report, component by
 * component: the worker's checks (those of `crstream check`: CRIU, --stream,
 * kernel, storage) and the daemon's own (catalog, service). level: "ok",
 * "warn" or "fail" (the daemon cannot checkpoint). */
void health_components(struct daemon *d, bool full,
		       void (*add)(void *arg, const char *area, const char *name, const char *level,
				   const char *data),
		       void *arg);

/* `crstream daemon` (daemon_main.c). */
int daemon_main(int argc, char **argv);

/* Unix ms now. */
int64_t unix_ms(void);
/* A random identifier: 16 hex digits (prefix prepended). */
void new_id(char *buf, size_t size, const char *prefix);

#endif
