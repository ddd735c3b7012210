/* Dumps and restores: validated and locked here, run by a worker process,
 * followed by a monitor thread that turns the worker's events into the
 * operation's progress and its result into the catalog. */
#include "daemon/daemon.h"
#include "daemon/requests.h"
#include "checkpoint/manifest.h"
#include "checkpoint/session.h"
#include "cli/config.h"
#include "codec/codec.h"
#include "store/store.h"
#include "util/fdio.h"

#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void new_id(char *buf, size_t size, const char *prefix)
{
	unsigned char r[8];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		/* Not expected on Linux >= 3.17; time and pid still differ. */
		uint64_t t = (uint64_t)unix_ms() ^ ((uint64_t)getpid() << 40);
		memcpy(r, &t, sizeof(r));
	}
	snprintf(buf, size, "%s%02x%02x%02x%02x%02x%02x%02x%02x", prefix, r[0], r[1], r[2], r[3],
		 r[4], r[5], r[6], r[7]);
}

/* ---- processes ---- */

static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	int ppid;
	return p && sscanf(p + 1, " %*c %d", &ppid) == 1 ? (pid_t)ppid : -1;
}

/* The daemon itself or one of its ancestors: dumping it would freeze us. */
static bool holds_daemon(struct daemon *d, pid_t pid)
{
	for (pid_t p = d->pid; p > 0; p = parent_of(p))
		if (p == pid)
			return true;
	return false;
}

/* pid and every descendant, from a scan of /proc. */
static int process_tree(pid_t root, pid_t **out, int *n)
{
	size_t cap = 256, count = 0;
	struct pp { pid_t pid, ppid; } *all = malloc(cap * sizeof(*all));
	DIR *dp = opendir("/proc");
	struct dirent *de;
	while (all && dp && (de = readdir(dp))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		if (count == cap) {
			struct pp *g = realloc(all, cap * 2 * sizeof(*all));
			if (!g)
				break;
			all = g;
			cap *= 2;
		}
		all[count].pid = (pid_t)pid;
		all[count++].ppid = parent_of((pid_t)pid);
	}
	if (dp)
		closedir(dp);
	pid_t *tree = all ? malloc((count + 1) * sizeof(pid_t)) : NULL;
	if (!tree) {
		free(all);
		return err_set("out of memory");
	}
	int m = 0;
	tree[m++] = root;
	/* Breadth-first: tree[] is its own queue. */
	for (int i = 0; i < m; i++)
		for (size_t k = 0; k < count; k++)
			if (all[k].ppid == tree[i] && all[k].pid != root)
				tree[m++] = all[k].pid;
	free(all);
	*out = tree;
	*n = m;
	return 0;
}

/* A running dump already holding one of these processes (d->mu held). */
static struct op *tree_conflict(struct daemon *d, const pid_t *tree, int n)
{
	for (struct op *op = d->ops; op; op = op->next) {
		if (op->done || op->kind != OP_DUMP)
			continue;
		for (int i = 0; i < op->ntree; i++)
			for (int k = 0; k < n; k++)
				if (op->tree[i] == tree[k])
					return op;
	}
	return NULL;
}

bool op_busy_job(struct daemon *d, const char *jid)
{
	for (struct op *op = d->ops; op; op = op->next)
		if (!op->done && jid && *jid && !strcmp(op->jid, jid))
			return true;
	return false;
}

/* ---- the operation list ---- */

static void op_free(struct op *op)
{
	free(op->tree);
	free(op->request);
	free(op->result_json);
	free(op);
}

void op_put(struct daemon *d, struct op *op)
{
	if (!op)
		return;
	pthread_mutex_lock(&d->mu);
	bool last = --op->refs == 0;
	pthread_mutex_unlock(&d->mu);
	if (last)
		op_free(op);
}

struct op *op_find(struct daemon *d, const char *id)
{
	pthread_mutex_lock(&d->mu);
	struct op *op = d->ops;
	while (op && strcmp(op->id, id))
		op = op->next;
	if (op)
		op->refs++;
	pthread_mutex_unlock(&d->mu);
	return op;
}

static void op_unlink(struct daemon *d, struct op *gone)
{
	for (struct op **p = &d->ops; *p; p = &(*p)->next)
		if (*p == gone) {
			*p = gone->next;
			return;
		}
}

bool op_wait(struct daemon *d, struct op *op, uint64_t *seq, int timeout_ms)
{
	struct timespec until = deadline_after_ms(timeout_ms);
	pthread_mutex_lock(&d->mu);
	while (op->seq == *seq && !op->done)
		if (pthread_cond_timedwait(&d->cv, &d->mu, &until) != 0)
			break;
	*seq = op->seq;
	bool done = op->done;
	pthread_mutex_unlock(&d->mu);
	return done;
}

int op_cancel(struct daemon *d, const char *id, struct rpc_status *st)
{
	pthread_mutex_lock(&d->mu);
	struct op *op = d->ops;
	while (op && strcmp(op->id, id))
		op = op->next;
	int rc = 0;
	if (!op || op->done) {
		rc = rpc_error(st, GRPC_STATUS_NOT_FOUND, "operation %s: not running", id);
	} else {
		op->cancelled = true;
		/* SIGINT: what Ctrl-C does to the CLI. A dump backs out and
		 * CRIU resumes the tree. */
		if (op->worker > 0)
			kill(op->worker, SIGINT);
		fprintf(stderr, "crstream daemon: operation %s: cancelled (SIGINT to worker %d)\n", id,
			(int)op->worker);
	}
	pthread_mutex_unlock(&d->mu);
	return rc;
}

int ops_cancel_dumps(struct daemon *d)
{
	int n = 0;
	pthread_mutex_lock(&d->mu);
	for (struct op *op = d->ops; op; op = op->next)
		if (!op->done && op->kind == OP_DUMP) {
			op->cancelled = true;
			if (op->worker > 0)
				kill(op->worker, SIGINT);
			n++;
		}
	pthread_mutex_unlock(&d->mu);
	return n;
}

int ops_running(struct daemon *d)
{
	int n = 0;
	pthread_mutex_lock(&d->mu);
	for (struct op *op = d->ops; op; op = op->next)
		n += !op->done;
	pthread_mutex_unlock(&d->mu);
	return n;
}

bool ops_wait_idle(struct daemon *d, int timeout_ms)
{
	int64_t until = unix_ms() + timeout_ms;
	pthread_mutex_lock(&d->mu);
	while (d->ops && unix_ms() < until) {
		struct timespec ts = {.tv_sec = 0};
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&d->cv, &d->mu, &ts);
	}
	bool idle = d->ops == NULL;
	pthread_mutex_unlock(&d->mu);
	return idle;
}

/* ---- following a worker ---- */

struct monitor {
	struct daemon *d;
	struct op *op;
};

static uint64_t jnum(struct json_object *o, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) ? (uint64_t)json_object_get_int64(v) : 0;
}

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

static void on_progress(void *arg, struct json_object *p)
{
	struct monitor *m = arg;
	struct op_progress pr = {0};
	snprintf(pr.phase, sizeof(pr.phase), "%s", jstr(p, "phase") ? jstr(p, "phase") : "");
	pr.streams = (int)jnum(p, "streams");
	pr.elapsed_ms = jnum(p, "elapsed_ms");
	pr.captured_bytes = jnum(p, "captured_bytes");
	pr.done_bytes = jnum(p, "done_bytes");
	pr.total_bytes = jnum(p, "total_bytes");
	pr.stored_bytes = jnum(p, "stored_bytes");
	pr.rate = jnum(p, "rate");
	pr.eta_ms = (int64_t)jnum(p, "eta_ms");
	pthread_mutex_lock(&m->d->mu);
	m->op->progress = pr;
	m->op->seq++;
	pthread_cond_broadcast(&m->d->cv);
	pthread_mutex_unlock(&m->d->mu);
}

/* Why a worker ended without a result. */
static void describe_status(int status, char *buf, size_t size)
{
	if (WIFSIGNALED(status))
		snprintf(buf, size, "the worker was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, size, "the worker exited with status %d without a result",
			 WEXITSTATUS(status));
}

/* The result's object and its "result" member (dump, restore). */
static struct json_object *parse_result(struct op *op, const char *text, int status,
					struct json_object **inner)
{
	struct json_object *o = text ? json_tokener_parse(text) : NULL;
	*inner = NULL;
	if (o && !json_object_object_get_ex(o, "result", inner))
		*inner = o;
	if (!*inner) {
		describe_status(status, op->error, sizeof(op->error));
		return o;
	}
	op->ok = jstr(*inner, "status") && !strcmp(jstr(*inner, "status"), "ok");
	if (!op->ok)
		snprintf(op->error, sizeof(op->error), "%s",
			 jstr(*inner, "error") ? jstr(*inner, "error") : "failed");
	op->result_json = strdup(json_object_to_json_string_ext(
		*inner, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	return o;
}

static void finish_dump(struct daemon *d, struct op *op, const char *text, int status)
{
	struct json_object *inner, *o = parse_result(op, text, status, &inner);
	struct ckpt_row r;
	if (catalog_get_checkpoint(d->cat, op->ckpt_id, &r) == 0) {
		snprintf(r.state, sizeof(r.state), "%s", op->ok ? "complete" : "incomplete");
		snprintf(r.error, sizeof(r.error), "%.500s", op->ok ? "" : op->error);
		if (inner && op->ok) {
			r.image_bytes = jnum(inner, "image_bytes");
			r.streams = (int)jnum(inner, "streams");
			/* A plain image directory stores the image as it is. */
			r.stored_bytes = r.streams ? jnum(inner, "stored_bytes") : r.image_bytes;
			snprintf(r.compression, sizeof(r.compression), "%s",
				 jstr(inner, "compression") ? jstr(inner, "compression") : "");
			snprintf(r.manifest_checksum, sizeof(r.manifest_checksum), "%s",
				 jstr(o, "manifest_checksum") ? jstr(o, "manifest_checksum") : "");
		}
		if (catalog_update_checkpoint(d->cat, &r) < 0)
			warnx_("%s", err_msg());
	}
	op->process_running = process_alive(op->pid);
	json_object_put(o);
	if (!op->jid[0])
		return;
	pthread_mutex_lock(&d->mu);
	struct job_row j;
	if (catalog_get_job(d->cat, op->jid, &j) == 0 && !strcmp(j.state, "running") &&
	    j.pid == op->pid) {
		if (op->ok && !op->leave_running) {
			snprintf(j.state, sizeof(j.state), "checkpointed");
			if (catalog_update_job(d->cat, &j) < 0)
				warnx_("%s", err_msg());
		} else if (!op->process_running) {
			/* It died during a dump that failed: its status went to
			 * the reaper while the dump held the job. */
			snprintf(j.state, sizeof(j.state), "exited");
			j.exit_code = -1;
			j.exit_signal = 0;
			if (catalog_update_job(d->cat, &j) < 0)
				warnx_("%s", err_msg());
		}
	}
	pthread_mutex_unlock(&d->mu);
}

static void finish_restore(struct daemon *d, struct op *op, const char *text, int status)
{
	struct json_object *inner, *o = parse_result(op, text, status, &inner);
	if (op->ok && inner)
		op->restored_pid = (pid_t)jnum(inner, "pid");
	json_object_put(o);
	if (!op->ok || !op->jid[0] || op->restored_pid <= 0)
		return;
	pthread_mutex_lock(&d->mu);
	struct job_row j;
	if (catalog_get_job(d->cat, op->jid, &j) == 0) {
		j.pid = op->restored_pid;
		process_start(j.pid, &j.pid_start, NULL);
		snprintf(j.state, sizeof(j.state), "running");
		j.exit_code = -1;
		j.exit_signal = 0;
		/* CRIU has exited: the restored root was its child and is ours
		 * now, the subreaper's. */
		j.child = true;
		snprintf(j.restored_from, sizeof(j.restored_from), "%s", op->ckpt_id);
		if (catalog_update_job(d->cat, &j) < 0)
			warnx_("%s", err_msg());
		else
			child_register_job(d, j.pid, j.jid);
	}
	pthread_mutex_unlock(&d->mu);
}

static void *monitor_main(void *arg)
{
	struct monitor *m = arg;
	struct daemon *d = m->d;
	struct op *op = m->op;
	struct rpc_status st = {0};
	char *text = NULL;
	int status = 0, fd;
	pid_t pid;
	if (worker_spawn(d, op->request, &pid, &fd, &st) == 0) {
		pthread_mutex_lock(&d->mu);
		op->worker = pid;
		if (op->cancelled)
			kill(pid, SIGINT);
		pthread_mutex_unlock(&d->mu);
		worker_read(fd, on_progress, m, &text);
		status = child_wait(d, pid);
	} else {
		snprintf(op->error, sizeof(op->error), "%s", st.msg);
	}
	if (op->kind == OP_DUMP)
		finish_dump(d, op, text, status);
	else
		finish_restore(d, op, text, status);
	free(text);
	/* Before the end is announced: whoever sees it done sees it pruned. */
	if (op->policy && op->ok && op->jid[0])
		policy_prune(d, op->jid);
	pthread_mutex_lock(&d->mu);
	op->done = true;
	op->worker = 0;
	op->seq++;
	op_unlink(d, op);
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	op_put(d, op);
	free(m);
	return NULL;
}

/* Adds op to the running list and starts its monitor (d->mu not held). */
static int launch(struct daemon *d, struct op *op, struct rpc_status *st)
{
	struct monitor *m = calloc(1, sizeof(*m));
	pthread_attr_t attr;
	pthread_t t;
	if (!m)
		return rpc_error(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	m->d = d;
	m->op = op;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &attr, monitor_main, m);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		free(m);
		return rpc_error(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "cannot start a thread: %s",
				 strerror(rc));
	}
	return 0;
}

static struct op *op_new(enum op_kind kind)
{
	struct op *op = calloc(1, sizeof(*op));
	if (!op)
		return NULL;
	op->kind = kind;
	op->refs = 2;	/* the running list's (the monitor drops it) and the caller's */
	new_id(op->id, sizeof(op->id), "op-");
	return op;
}

/* ---- dump ---- */

static void json_add_str(struct json_object *o, const char *k, const char *v)
{
	if (v && *v)
		json_object_object_add(o, k, json_object_new_string(v));
}

/* The worker reads these alike for a dump and a restore (worker.c). */
static void json_add_criu_flags(struct json_object *o, const struct criu_flags *f)
{
	if (f->shell_job >= 0)
		json_object_object_add(o, "shell_job", json_object_new_boolean(f->shell_job));
	json_object_object_add(o, "tcp_established", json_object_new_boolean(f->tcp_established));
	json_object_object_add(o, "file_locks", json_object_new_boolean(f->file_locks));
	json_object_object_add(o, "ext_unix_sk", json_object_new_boolean(f->ext_unix_sk));
	struct json_object *ext = json_object_new_array();
	for (size_t i = 0; i < f->nexternal; i++)
		json_object_array_add(ext, json_object_new_string(f->external[i]));
	json_object_object_add(o, "external", ext);
}

static char *dump_request_json(const struct dump_request *rq, const struct op *op,
			       const char *dir, const char *name)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "op", json_object_new_string("dump"));
	json_object_object_add(o, "pid", json_object_new_int(op->pid));
	json_add_str(o, "dir", dir);
	json_add_str(o, "name", name);
	if (rq->streams >= 0)
		json_object_object_add(o, "streams", json_object_new_int(rq->streams));
	json_add_str(o, "compression", rq->compression);
	if (rq->level)
		json_object_object_add(o, "level", json_object_new_int(rq->level));
	if (rq->leave_running)
		json_object_object_add(o, "leave_running", json_object_new_boolean(true));
	json_add_criu_flags(o, &rq->criu);
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

static void default_name(const struct op *op, char *buf, size_t size)
{
	int64_t ms = unix_ms();
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char stamp[32];
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	/* Milliseconds: a job's periodic checkpoints may come a second apart. */
	if (op->jid[0])
		snprintf(buf, size, "%s-%s.%03dZ", op->jid, stamp, (int)(ms % 1000));
	else
		snprintf(buf, size, "dump-%d-%sZ", (int)op->pid, stamp);
}

/* The target's pid (by job or pid), checked. */
static int dump_target(struct daemon *d, const struct dump_request *rq, struct op *op,
		       struct rpc_status *st)
{
	if (rq->jid && *rq->jid) {
		struct job_row j;
		int rc = catalog_get_job(d->cat, rq->jid, &j);
		if (rc < 0)
			return rpc_error(st, GRPC_STATUS_INTERNAL, "%s", err_msg());
		if (rc == 1)
			return rpc_error(st, GRPC_STATUS_NOT_FOUND, "JID \"%s\": no such job", rq->jid);
		if (strcmp(j.state, "running")) {
			char line[128];
			job_status_line(&j, line, sizeof(line));
			return rpc_error(st, GRPC_STATUS_FAILED_PRECONDITION,
					 "job %s is not running (%s)", j.jid, line);
		}
		op->pid = j.pid;
		snprintf(op->jid, sizeof(op->jid), "%s", j.jid);
	} else {
		if (rq->pid <= 0)
			return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT,
					 "PID: missing (a dump names a process or a job)");
		op->pid = rq->pid;
	}
	if (!process_alive(op->pid))
		return rpc_error(st, GRPC_STATUS_NOT_FOUND, "PID %d: no such process", (int)op->pid);
	if (holds_daemon(d, op->pid))
		return rpc_error(st, GRPC_STATUS_FAILED_PRECONDITION,
				 "PID %d: its tree holds the crstream daemon, which cannot dump itself",
				 (int)op->pid);
	return 0;
}

/* Refuses a location the catalog or the local disk already has. */
static int check_new_location(struct daemon *d, const char *location, struct rpc_status *st)
{
	struct ckpt_row r;
	struct stat sb;
	if (catalog_checkpoint_at(d->cat, location, &r) == 0 && strcmp(r.state, "incomplete"))
		return rpc_error(st, GRPC_STATUS_ALREADY_EXISTS, "checkpoint %s exists (ID %s)",
				 location, r.id);
	if (!store_is_remote(location) && stat(location, &sb) == 0)
		return rpc_error(st, GRPC_STATUS_ALREADY_EXISTS, "%s exists", location);
	return 0;
}

int op_start_dump(struct daemon *d, const struct dump_request *rq, struct op **out,
		  struct rpc_status *st)
{
	*out = NULL;
	struct op *op = op_new(OP_DUMP);
	if (!op)
		return rpc_error(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	if (check_dump_request(rq, config_get(d->cfg, "checkpoint.compression"), st) < 0 ||
	    dump_target(d, rq, op, st) < 0)
		goto fail;
	if (process_tree(op->pid, &op->tree, &op->ntree) < 0) {
		rpc_error(st, GRPC_STATUS_INTERNAL, "%s", err_msg());
		goto fail;
	}
	op->leave_running = rq->leave_running;
	op->policy = rq->policy;
	snprintf(op->target, sizeof(op->target), "pid %d", (int)op->pid);
	char dir[3901], name[256];
	snprintf(dir, sizeof(dir), "%s",
		 rq->dir && *rq->dir ? rq->dir : config_get(d->cfg, "checkpoint.dir"));
	for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--)
		dir[n - 1] = '\0';
	if (rq->name && *rq->name)
		snprintf(name, sizeof(name), "%s", rq->name);
	else
		default_name(op, name, sizeof(name));
	snprintf(op->location, sizeof(op->location), "%.3900s/%.255s", dir, name);
	new_id(op->ckpt_id, sizeof(op->ckpt_id), "");
	op->request = dump_request_json(rq, op, dir, name);
	if (!op->request) {
		rpc_error(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto fail;
	}

	/* The lock: no other dump may hold a process of this tree, and no
	 * other operation the job. Checked and taken at once. */
	pthread_mutex_lock(&d->mu);
	struct op *other = d->draining ? NULL : tree_conflict(d, op->tree, op->ntree);
	int rc = 0;
	if (d->draining)
		rc = rpc_error(st, GRPC_STATUS_UNAVAILABLE, "the daemon is shutting down");
	else if (other)
		rc = rpc_error(st, GRPC_STATUS_FAILED_PRECONDITION,
			       "PID %d: its tree is being checkpointed already (operation %s, pid %d)",
			       (int)op->pid, other->id, (int)other->pid);
	else if (op_busy_job(d, op->jid))
		rc = rpc_error(st, GRPC_STATUS_FAILED_PRECONDITION,
			       "job %s: another operation on it is running", op->jid);
	if (rc == 0 && check_new_location(d, op->location, st) < 0)
		rc = -1;
	if (rc == 0) {
		struct ckpt_row r = {.pid = op->pid, .created_ms = unix_ms(), .policy = op->policy};
		snprintf(r.id, sizeof(r.id), "%s", op->ckpt_id);
		snprintf(r.jid, sizeof(r.jid), "%s", op->jid);
		snprintf(r.location, sizeof(r.location), "%s", op->location);
		snprintf(r.state, sizeof(r.state), "in_progress");
		if (catalog_add_checkpoint(d->cat, &r) < 0)
			rc = rpc_error(st, GRPC_STATUS_INTERNAL, "%s", err_msg());
	}
	if (rc == 0) {
		op->next = d->ops;
		d->ops = op;
	}
	pthread_mutex_unlock(&d->mu);
	if (rc < 0)
		goto fail;
	if (launch(d, op, st) < 0) {
		pthread_mutex_lock(&d->mu);
		op_unlink(d, op);
		pthread_mutex_unlock(&d->mu);
		catalog_delete_checkpoint(d->cat, op->ckpt_id);
		goto fail;
	}
	*out = op;
	return 0;
fail:
	op_free(op);
	return -1;
}

/* ---- restore ---- */

static char *restore_request_json(const struct restore_request *rq, const char *location)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "op", json_object_new_string("restore"));
	json_add_str(o, "path", location);
	json_add_str(o, "pid_file", rq->pid_file);
	json_add_criu_flags(o, &rq->criu);
	json_object_object_add(o, "tcp_close", json_object_new_boolean(rq->tcp_close));
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

/* Which checkpoint, and which job it brings back (op->location, op->jid,
 * op->ckpt_id). */
static int restore_source(struct daemon *d, const struct restore_request *rq, struct op *op,
			  struct rpc_status *st)
{
	struct ckpt_row r;
	int rc = 1;
	if (rq->ckpt_id && *rq->ckpt_id) {
		rc = catalog_get_checkpoint(d->cat, rq->ckpt_id, &r);
		if (rc == 1)
			return rpc_error(st, GRPC_STATUS_NOT_FOUND, "checkpoint ID \"%s\": no such checkpoint",
					 rq->ckpt_id);
	} else if (rq->path && *rq->path) {
		rc = catalog_checkpoint_at(d->cat, rq->path, &r);
		snprintf(op->location, sizeof(op->location), "%s", rq->path);
	} else if (rq->jid && *rq->jid) {
		rc = catalog_latest_checkpoint(d->cat, rq->jid, &r);
		if (rc == 1)
			return rpc_error(st, GRPC_STATUS_NOT_FOUND,
					 "JID \"%s\": no complete checkpoint of this job", rq->jid);
	} else {
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT,
				 "Path: missing (a restore names a checkpoint or a job)");
	}
	if (rc < 0)
		return rpc_error(st, GRPC_STATUS_INTERNAL, "%s", err_msg());
	if (rc == 0) {
		if (strcmp(r.state, "complete"))
			return rpc_error(st, GRPC_STATUS_FAILED_PRECONDITION, "checkpoint %s (%s) is %s%s%s",
					 r.id, r.location, r.state, r.error[0] ? ": " : "", r.error);
		snprintf(op->location, sizeof(op->location), "%s", r.location);
		snprintf(op->ckpt_id, sizeof(op->ckpt_id), "%s", r.id);
		snprintf(op->jid, sizeof(op->jid), "%s", r.jid);
	}
	if (rq->jid && *rq->jid)
		snprintf(op->jid, sizeof(op->jid), "%s", rq->jid);
	if (!op->jid[0])
		return 0;
	struct job_row j;
	rc = catalog_get_job(d->cat, op->jid, &j);
	if (rc < 0)
		return rpc_error(st, GRPC_STATUS_INTERNAL, "%s", err_msg());
	if (rc == 1)
		return rpc_error(st, GRPC_STATUS_NOT_FOUND, "JID \"%s\": no such job", op->jid);
	if (!strcmp(j.state, "running"))
		return rpc_error(st, GRPC_STATUS_FAILED_PRECONDITION,
				 "job %s is running (pid %d): kill it, or dump it without "
				 "leave_running, before restoring it", j.jid, (int)j.pid);
	return 0;
}

int op_start_restore(struct daemon *d, const struct restore_request *rq, struct op **out,
		     struct rpc_status *st)
{
	*out = NULL;
	struct op *op = op_new(OP_RESTORE);
	if (!op)
		return rpc_error(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	if (check_restore_request(rq, st) < 0 || restore_source(d, rq, op, st) < 0)
		goto fail;
	snprintf(op->target, sizeof(op->target), "%s", op->location);
	op->request = restore_request_json(rq, op->location);
	if (!op->request) {
		rpc_error(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto fail;
	}
	pthread_mutex_lock(&d->mu);
	int rc = 0;
	if (d->draining)
		rc = rpc_error(st, GRPC_STATUS_UNAVAILABLE, "the daemon is shutting down");
	else if (op_busy_job(d, op->jid))
		rc = rpc_error(st, GRPC_STATUS_FAILED_PRECONDITION,
			       "job %s: another operation on it is running", op->jid);
	if (rc == 0) {
		op->next = d->ops;
		d->ops = op;
	}
	pthread_mutex_unlock(&d->mu);
	if (rc < 0)
		goto fail;
	if (launch(d, op, st) < 0) {
		pthread_mutex_lock(&d->mu);
		op_unlink(d, op);
		pthread_mutex_unlock(&d->mu);
		goto fail;
	}
	*out = op;
	return 0;
fail:
	op_free(op);
	return -1;
}

/* ---- store operations, waited for ---- */

int worker_run(struct daemon *d, struct json_object *req, struct json_object **result,
	       struct rpc_status *st)
{
	pid_t pid;
	int fd;
	char *text = NULL;
	*result = NULL;
	if (worker_spawn(d, json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN), &pid, &fd,
			 st) < 0)
		return -1;
	worker_read(fd, NULL, NULL, &text);
	int status = child_wait(d, pid);
	*result = text ? json_tokener_parse(text) : NULL;
	free(text);
	if (!*result) {
		char why[256];
		describe_status(status, why, sizeof(why));
		return rpc_error(st, GRPC_STATUS_INTERNAL, "%s", why);
	}
	return 0;
}

int checkpoint_delete(struct daemon *d, const struct ckpt_row *r, unsigned *objects,
		      struct rpc_status *st)
{
	if (!strcmp(r->state, "in_progress"))
		return rpc_error(st, GRPC_STATUS_FAILED_PRECONDITION,
				 "checkpoint %s is being written: cancel its dump first", r->id);
	struct json_object *req = json_object_new_object(), *res;
	json_object_object_add(req, "op", json_object_new_string("remove"));
	json_object_object_add(req, "location", json_object_new_string(r->location));
	json_object_object_add(req, "missing_ok", json_object_new_boolean(true));
	int rc = worker_run(d, req, &res, st);
	json_object_put(req);
	if (rc < 0)
		return -1;
	if (!jstr(res, "status") || strcmp(jstr(res, "status"), "ok")) {
		rc = rpc_error(st, GRPC_STATUS_UNAVAILABLE, "removing %s: %s", r->location,
			       jstr(res, "error") ? jstr(res, "error") : "failed");
	} else {
		*objects = (unsigned)jnum(res, "objects");
		if (catalog_delete_checkpoint(d->cat, r->id) < 0)
			rc = rpc_error(st, GRPC_STATUS_INTERNAL, "%s", err_msg());
	}
	json_object_put(res);
	return rc;
}

/* ---- after a restart ---- */

static void reconcile_one(struct daemon *d, struct ckpt_row *r)
{
	struct rpc_status st;
	struct json_object *req = json_object_new_object(), *res = NULL;
	json_object_object_add(req, "op", json_object_new_string("manifest"));
	json_object_object_add(req, "location", json_object_new_string(r->location));
	int rc = worker_run(d, req, &res, &st);
	json_object_put(req);
	struct json_object *v;
	bool complete = rc == 0 && json_object_object_get_ex(res, "complete", &v) &&
			json_object_get_boolean(v);
	struct manifest m;
	if (complete && manifest_parse(jstr(res, "manifest"), &m) == 0) {
		/* Finished after all: the daemon stopped between the seal and
		 * hearing about it. */
		snprintf(r->state, sizeof(r->state), "complete");
		r->image_bytes = m.image_bytes;
		r->stored_bytes = 0;
		for (int i = 0; m.stream && i < m.streams; i++)
			r->stored_bytes += m.stream[i].stored_bytes;
		r->streams = m.streams;
		snprintf(r->compression, sizeof(r->compression), "%s", m.compression);
		snprintf(r->manifest_checksum, sizeof(r->manifest_checksum), "%s",
			 jstr(res, "checksum"));
		manifest_free(&m);
	} else {
		snprintf(r->state, sizeof(r->state), "incomplete");
		snprintf(r->error, sizeof(r->error),
			 "the daemon stopped while the dump was in progress%s%.400s",
			 rc < 0 ? "; manifest unreadable: " : "", rc < 0 ? st.msg : "");
	}
	json_object_put(res);
	if (catalog_update_checkpoint(d->cat, r) < 0)
		warnx_("%s", err_msg());
	else
		warnx_("checkpoint %s (%s) was in progress when the daemon stopped: now %s", r->id,
		       r->location, r->state);
}

struct row_list {
	struct ckpt_row *rows;
	size_t n;
};

static int collect_row(const struct ckpt_row *r, void *arg)
{
	struct row_list *l = arg;
	struct ckpt_row *g = realloc(l->rows, (l->n + 1) * sizeof(*g));
	if (!g)
		return err_set("out of memory");
	l->rows = g;
	l->rows[l->n++] = *r;
	return 0;
}

void ops_reconcile(struct daemon *d)
{
	/* Collected first: each takes a worker, and the catalog is updated
	 * outside the walk. */
	struct row_list l = {0};
	if (catalog_each_checkpoint(d->cat, NULL, "in_progress", NULL, collect_row, &l) < 0)
		warnx_("reconciling the catalog: %s", err_msg());
	for (size_t i = 0; i < l.n; i++)
		reconcile_one(d, &l.rows[i]);
	free(l.rows);
}
