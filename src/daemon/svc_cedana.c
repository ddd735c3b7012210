/* daemon.Daemon: Cedana's daemon API, answered by crstream's operations.
 * The wire facts (paths, field numbers, types) are Cedana's; the
 * semantics are crstream's where Cedana's do not apply (see README). */
#include "daemon/server.h"
#include "daemon/requests.h"
#include "daemon.pb-c.h"
#include "util/version.h"

#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define A(c) ((c)->arena)

static char *dup_str(struct rpc_call *c, const char *s)
{
	return arena_strdup(A(c), s);
}

static void add_message(struct rpc_call *c, char ***list, size_t *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add_message(struct rpc_call *c, char ***list, size_t *n, const char *fmt, ...)
{
	char buf[ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	arena_push(A(c), list, n, dup_str(c, buf));
}

/* ---- process and job descriptions ---- */

/* "Uid:\t0\t0\t0\t0" -> the ids, from /proc/PID/status. */
static void read_ids(struct rpc_call *c, pid_t pid, const char *key, uint32_t **ids, size_t *n)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	*n = 0;
	while (f && fgets(line, sizeof(line), f)) {
		size_t k = strlen(key);
		if (strncmp(line, key, k) || line[k] != ':')
			continue;
		*ids = arena_alloc(A(c), 64 * sizeof(uint32_t));
		char *p = line + k + 1, *end;
		for (unsigned long v; *n < 64 && (v = strtoul(p, &end, 10), end != p); p = end)
			(*ids)[(*n)++] = (uint32_t)v;
		break;
	}
	if (f)
		fclose(f);
}

static Daemon__ProcessState *process_state(struct rpc_call *c, pid_t pid, const struct job_row *j)
{
	Daemon__ProcessState *ps = arena_alloc(A(c), sizeof(*ps));
	daemon__process_state__init(ps);
	ps->has_pid = true;
	ps->pid = (uint32_t)pid;
	int64_t start_ms = 0;
	bool alive = process_start(pid, NULL, &start_ms);
	if (j) {
		alive = alive && !strcmp(j->state, "running");
		start_ms = j->started_ms;
		struct json_object *a = json_tokener_parse(j->args);
		char *cmd = arena_strdup(A(c), "");
		for (size_t i = 0; a && i < json_object_array_length(a); i++)
			cmd = arena_printf(A(c), "%s%s%s", cmd, i ? " " : "",
					   json_object_get_string(json_object_array_get_idx(a, i)));
		json_object_put(a);
		ps->cmdline = cmd;
		ps->working_dir = dup_str(c, j->working_dir);
		char line[256];
		job_status_line(j, line, sizeof(line));
		ps->status = dup_str(c, line);
	} else {
		char path[64], buf[4096];
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
		FILE *f = fopen(path, "re");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
		if (f)
			fclose(f);
		for (size_t i = 0; i + 1 < n; i++)
			if (!buf[i])
				buf[i] = ' ';
		buf[n] = '\0';
		ps->cmdline = dup_str(c, buf);
		snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
		ssize_t m = readlink(path, buf, sizeof(buf) - 1);
		buf[m > 0 ? m : 0] = '\0';
		ps->working_dir = dup_str(c, buf);
		ps->status = dup_str(c, alive ? "running" : "not running");
	}
	ps->has_start_time = start_ms > 0;
	ps->start_time = (uint64_t)start_ms;
	ps->has_is_running = true;
	ps->is_running = alive;
	if (alive) {
		read_ids(c, pid, "Uid", &ps->uids, &ps->n_uids);
		read_ids(c, pid, "Gid", &ps->gids, &ps->n_gids);
		read_ids(c, pid, "Groups", &ps->groups, &ps->n_groups);
		pid_t sid = getsid(pid);
		ps->has_sid = sid > 0;
		ps->sid = sid > 0 ? (uint32_t)sid : 0;
	}
	return ps;
}

static Daemon__Job *job_message(struct rpc_call *c, const struct job_row *j)
{
	Daemon__Job *m = arena_alloc(A(c), sizeof(*m));
	Daemon__Details *det = arena_alloc(A(c), sizeof(*det));
	Daemon__Process *p = arena_alloc(A(c), sizeof(*p));
	daemon__job__init(m);
	daemon__details__init(det);
	daemon__process__init(p);
	det->jid = dup_str(c, j->jid);
	det->process = p;
	p->has_pid = true;
	p->pid = (uint32_t)j->pid;
	p->working_dir = dup_str(c, j->working_dir);
	struct json_object *a = json_tokener_parse(j->args);
	size_t n = a ? json_object_array_length(a) : 0;
	p->path = dup_str(c, n ? json_object_get_string(json_object_array_get_idx(a, 0)) : "");
	for (size_t i = 1; i < n; i++)
		arena_push(A(c), &p->args, &p->n_args,
			   dup_str(c, json_object_get_string(json_object_array_get_idx(a, i))));
	json_object_put(a);
	m->details = det;
	m->jid = dup_str(c, j->jid);
	m->type = dup_str(c, "process");
	m->state = process_state(c, j->pid, j);
	m->log = dup_str(c, j->log);
	return m;
}

static Daemon__Checkpoint *checkpoint_message(struct rpc_call *c, const struct ckpt_row *r)
{
	Daemon__Checkpoint *m = arena_alloc(A(c), sizeof(*m));
	daemon__checkpoint__init(m);
	m->id = dup_str(c, r->id);
	m->jid = dup_str(c, r->jid);
	m->path = dup_str(c, r->location);
	m->has_time = true;
	m->time = r->created_ms;
	m->has_size = true;
	m->size = (int64_t)r->stored_bytes;
	return m;
}

/* ---- Dump and Restore ---- */

static void finish_error(struct rpc_call *c, const struct rpc_status *st)
{
	rpc_call_finish(c, NULL, st);
}

/* Waits for the operation to end (it is not cancelled if the caller goes
 * away: only Cancel, or a draining daemon, stops it). */
static void wait_done(struct daemon *d, struct op *op)
{
	uint64_t seq = 0;
	while (!op_wait(d, op, &seq, 1000))
		;
}

static void operation_failed(struct op *op, struct rpc_status *st)
{
	if (op->cancelled)
		rpc_error(st, GRPC_STATUS_CANCELLED, "%s cancelled: %s%s",
			  op->kind == OP_DUMP ? "dump" : "restore", op->error,
			  op->kind == OP_DUMP && op->process_running ? " (the process keeps running)" : "");
	else
		rpc_error(st, GRPC_STATUS_INTERNAL, "%s failed: %s",
			  op->kind == OP_DUMP ? "dump" : "restore", op->error);
}

static void handle_dump(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Daemon__DumpReq *r = (const Daemon__DumpReq *)m;
	struct rpc_status st = {0};
	struct dump_request rq;
	if (cedana_dump_request(r, &rq, &st) < 0)
		return finish_error(c, &st);
	struct op *op;
	if (op_start_dump(d, &rq, &op, &st) < 0)
		return finish_error(c, &st);
	Daemon__DumpResp resp = DAEMON__DUMP_RESP__INIT;
	uint64_t seq = 0;
	bool done = r->has_async && r->async ? op_wait(d, op, &seq, 0) : (wait_done(d, op), true);
	if (done && !op->ok) {
		operation_failed(op, &st);
	} else {
		add_message(c, &resp.messages, &resp.n_messages, "checkpoint %s%s", op->ckpt_id,
			    done ? "" : " (dump started, asynchronously)");
		add_message(c, &resp.messages, &resp.n_messages, "operation %s", op->id);
		if (op->jid[0])
			add_message(c, &resp.messages, &resp.n_messages, "job %s", op->jid);
		if (done && op->result_json)
			add_message(c, &resp.messages, &resp.n_messages, "%s", op->result_json);
		arena_push(A(c), &resp.paths, &resp.n_paths, dup_str(c, op->location));
		resp.state = process_state(c, op->pid, NULL);
	}
	op_put(d, op);
	rpc_call_finish(c, &resp.base, &st);
}

static void handle_restore(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Daemon__RestoreReq *r = (const Daemon__RestoreReq *)m;
	struct rpc_status st = {0};
	struct restore_request rq;
	if (cedana_restore_request(r, &rq, &st) < 0)
		return finish_error(c, &st);
	struct op *op;
	if (op_start_restore(d, &rq, &op, &st) < 0)
		return finish_error(c, &st);
	wait_done(d, op);
	Daemon__RestoreResp resp = DAEMON__RESTORE_RESP__INIT;
	if (!op->ok) {
		operation_failed(op, &st);
	} else {
		add_message(c, &resp.messages, &resp.n_messages, "restored %s as pid %d", op->location,
			    (int)op->restored_pid);
		if (op->jid[0])
			add_message(c, &resp.messages, &resp.n_messages, "job %s", op->jid);
		if (field_set(r->log))
			add_message(c, &resp.messages, &resp.n_messages,
				    "Log ignored: a restored tree keeps the files it had open");
		if (op->result_json)
			add_message(c, &resp.messages, &resp.n_messages, "%s", op->result_json);
		resp.has_pid = true;
		resp.pid = (uint32_t)op->restored_pid;
		resp.state = process_state(c, op->restored_pid, NULL);
	}
	op_put(d, op);
	rpc_call_finish(c, &resp.base, &st);
}

/* ---- checkpoints ---- */

struct list_ctx {
	struct rpc_call *c;
	Daemon__ListCheckpointsResp *resp;
};

static int list_one(const struct ckpt_row *r, void *arg)
{
	struct list_ctx *l = arg;
	arena_push(A(l->c), &l->resp->checkpoints, &l->resp->n_checkpoints,
		   checkpoint_message(l->c, r));
	return 0;
}

static void handle_list_checkpoints(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Daemon__ListCheckpointsReq *r = (const Daemon__ListCheckpointsReq *)m;
	struct rpc_status st = {0};
	Daemon__ListCheckpointsResp resp = DAEMON__LIST_CHECKPOINTS_RESP__INIT;
	struct list_ctx l = {c, &resp};
	if (catalog_each_checkpoint(d->cat, field_set(r->jid) ? r->jid : NULL, NULL, NULL, list_one, &l) < 0)
		rpc_error(&st, GRPC_STATUS_INTERNAL, "%s", err_msg());
	rpc_call_finish(c, &resp.base, &st);
}

static void handle_get_checkpoint(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Daemon__GetCheckpointReq *r = (const Daemon__GetCheckpointReq *)m;
	struct rpc_status st = {0};
	Daemon__GetCheckpointResp resp = DAEMON__GET_CHECKPOINT_RESP__INIT;
	struct ckpt_row row;
	struct job_row j;
	int rc;
	if (field_set(r->id)) {
		rc = catalog_get_checkpoint(d->cat, r->id, &row);
		if (rc == 1)
			rpc_error(&st, GRPC_STATUS_NOT_FOUND, "ID \"%s\": no such checkpoint", r->id);
	} else if (field_set(r->jid)) {
		rc = job_get(d, r->jid, &j, &st) < 0 ? 2 : catalog_latest_checkpoint(d->cat, r->jid, &row);
		if (rc == 1)
			rpc_error(&st, GRPC_STATUS_NOT_FOUND, "JID \"%s\": no complete checkpoint", r->jid);
	} else {
		rc = 2;
		rpc_error(&st, GRPC_STATUS_INVALID_ARGUMENT, "ID or JID: one of them is needed");
	}
	if (rc < 0)
		rpc_error(&st, GRPC_STATUS_INTERNAL, "%s", err_msg());
	if (rc == 0)
		resp.checkpoint = checkpoint_message(c, &row);
	rpc_call_finish(c, &resp.base, &st);
}

static void handle_delete_checkpoint(struct daemon *d, struct rpc_call *c,
				     const ProtobufCMessage *m)
{
	const Daemon__DeleteCheckpointReq *r = (const Daemon__DeleteCheckpointReq *)m;
	struct rpc_status st = {0};
	Daemon__DeleteCheckpointResp resp = DAEMON__DELETE_CHECKPOINT_RESP__INIT;
	struct ckpt_row row;
	unsigned objects;
	int rc = field_set(r->id) ? catalog_get_checkpoint(d->cat, r->id, &row) : 2;
	if (rc == 2)
		rpc_error(&st, GRPC_STATUS_INVALID_ARGUMENT, "ID: missing");
	else if (rc == 1)
		rpc_error(&st, GRPC_STATUS_NOT_FOUND, "ID \"%s\": no such checkpoint", r->id);
	else if (rc < 0)
		rpc_error(&st, GRPC_STATUS_INTERNAL, "%s", err_msg());
	else
		checkpoint_delete(d, &row, &objects, &st);
	rpc_call_finish(c, &resp.base, &st);
}

/* ---- jobs ---- */

static void run_or_manage(struct daemon *d, struct rpc_call *c, const Daemon__RunReq *r, bool manage)
{
	struct rpc_status st = {0};
	Daemon__RunResp resp = DAEMON__RUN_RESP__INIT;
	struct job_row j;
	int action = r->has_action ? r->action : manage ? 1 : 0;
	const Daemon__Process *p = r->details ? r->details->process : NULL;
	const char *jid = field_set(r->jid) ? r->jid : r->details ? r->details->jid : NULL;
	if (field_set(r->type) && strcmp(r->type, "process"))
		rpc_error(&st, GRPC_STATUS_UNIMPLEMENTED,
			  "Type \"%s\": crstream runs and manages processes only", r->type);
	else if (action == 2)
		rpc_error(&st, GRPC_STATUS_UNIMPLEMENTED, "Action MANAGE_UPCOMING: not supported");
	else if (action != 0 && action != 1)
		rpc_error(&st, GRPC_STATUS_INVALID_ARGUMENT, "Action %d: unknown", action);
	else if (r->has_attachable && r->attachable)
		rpc_error(&st, GRPC_STATUS_UNIMPLEMENTED, "Attachable: not supported by crstream");
	if (st.code)
		return finish_error(c, &st);
	int rc;
	if (action == 1) {
		rc = job_manage(d, p && p->has_pid ? (pid_t)p->pid : 0, jid, &j, &st);
	} else {
		struct run_request rq = {.jid = jid, .log = r->log, .pid_file = r->pid_file};
		char **args = arena_alloc(A(c), ((p ? p->n_args : 0) + 1) * sizeof(char *));
		args[0] = p && p->path ? p->path : "";
		for (size_t i = 0; p && i < p->n_args; i++)
			args[i + 1] = p->args[i];
		rq.args = args;
		rq.nargs = (p ? p->n_args : 0) + 1;
		rq.working_dir = p ? p->working_dir : NULL;
		if (r->n_env) {
			rq.env = r->env;
			rq.nenv = r->n_env;
		}
		rq.as_user = (r->has_uid && r->uid) || (r->has_gid && r->gid) || r->n_groups;
		rq.uid = r->uid;
		rq.gid = r->gid;
		rq.groups = r->groups;
		rq.ngroups = r->n_groups;
		rc = job_run(d, &rq, &j, &st);
	}
	if (rc == 0) {
		resp.has_pid = true;
		resp.pid = (uint32_t)j.pid;
		add_message(c, &resp.messages, &resp.n_messages, "job %s", j.jid);
	}
	rpc_call_finish(c, &resp.base, &st);
}

static void handle_run(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	run_or_manage(d, c, (const Daemon__RunReq *)m, false);
}

static void handle_manage(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	run_or_manage(d, c, (const Daemon__RunReq *)m, true);
}

static void handle_get(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Daemon__GetReq *r = (const Daemon__GetReq *)m;
	struct rpc_status st = {0};
	Daemon__GetResp resp = DAEMON__GET_RESP__INIT;
	struct job_row j;
	if (job_get(d, r->jid, &j, &st) == 0)
		resp.job = job_message(c, &j);
	rpc_call_finish(c, &resp.base, &st);
}

struct jobs_ctx {
	struct rpc_call *c;
	Daemon__ListResp *resp;
	char **jids;
	size_t njids;
};

static int list_job(const struct job_row *j, void *arg)
{
	struct jobs_ctx *l = arg;
	if (job_listed(l->jids, l->njids, j->jid))
		arena_push(A(l->c), &l->resp->jobs, &l->resp->n_jobs, job_message(l->c, j));
	return 0;
}

static void handle_list(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Daemon__ListReq *r = (const Daemon__ListReq *)m;
	struct rpc_status st = {0};
	Daemon__ListResp resp = DAEMON__LIST_RESP__INIT;
	struct jobs_ctx l = {c, &resp, r->jids, r->n_jids};
	if (catalog_each_job(d->cat, list_job, &l) < 0)
		rpc_error(&st, GRPC_STATUS_INTERNAL, "%s", err_msg());
	rpc_call_finish(c, &resp.base, &st);
}

static void handle_kill(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Daemon__KillReq *r = (const Daemon__KillReq *)m;
	struct rpc_status st = {0};
	Daemon__KillResp resp = DAEMON__KILL_RESP__INIT;
	if (!r->n_jids)
		rpc_error(&st, GRPC_STATUS_INVALID_ARGUMENT, "JIDs: none given");
	for (size_t i = 0; i < r->n_jids && !st.code; i++) {
		struct job_row j;
		if (job_kill(d, r->jids[i], r->has_signal ? r->signal : 0, &j, &st) == 0) {
			char line[256];
			job_status_line(&j, line, sizeof(line));
			add_message(c, &resp.messages, &resp.n_messages, "job %s: %s", j.jid, line);
		}
	}
	rpc_call_finish(c, &resp.base, &st);
}

static void handle_delete(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Daemon__DeleteReq *r = (const Daemon__DeleteReq *)m;
	struct rpc_status st = {0};
	Daemon__DeleteResp resp = DAEMON__DELETE_RESP__INIT;
	if (!r->n_jids)
		rpc_error(&st, GRPC_STATUS_INVALID_ARGUMENT, "JIDs: none given");
	for (size_t i = 0; i < r->n_jids && !st.code; i++)
		if (job_delete(d, r->jids[i], &st) == 0)
			add_message(c, &resp.messages, &resp.n_messages, "job %s deleted", r->jids[i]);
	rpc_call_finish(c, &resp.base, &st);
}

/* ---- health ---- */

static Daemon__HealthCheckResult *result_for(struct rpc_call *c, Daemon__HealthCheckResp *resp,
					     const char *area)
{
	for (size_t i = 0; i < resp->n_results; i++)
		if (!strcmp(resp->results[i]->name, area))
			return resp->results[i];
	Daemon__HealthCheckResult *r = arena_alloc(A(c), sizeof(*r));
	daemon__health_check_result__init(r);
	r->name = dup_str(c, area);
	arena_push(A(c), &resp->results, &resp->n_results, r);
	return r;
}

static void add_component(struct rpc_call *c, Daemon__HealthCheckResp *resp, const char *area,
			  const char *name, const char *level, const char *data)
{
	Daemon__HealthCheckResult *r = result_for(c, resp, area);
	Daemon__HealthCheckComponent *k = arena_alloc(A(c), sizeof(*k));
	daemon__health_check_component__init(k);
	k->name = dup_str(c, name);
	k->data = dup_str(c, data);
	if (!strcmp(level, "fail"))
		arena_push(A(c), &k->errors, &k->n_errors, dup_str(c, data));
	else if (!strcmp(level, "warn"))
		arena_push(A(c), &k->warnings, &k->n_warnings, dup_str(c, data));
	arena_push(A(c), &r->components, &r->n_components, k);
}

/* What HealthCheck and crstream.v1's Health report: the worker's checks
 * (the same as `crstream check`) and the daemon's own. */
void health_components(struct daemon *d, bool full,
		       void (*add)(void *arg, const char *area, const char *name, const char *level,
				   const char *data),
		       void *arg)
{
	struct rpc_status st;
	struct json_object *req = json_object_new_object(), *res = NULL, *checks;
	json_object_object_add(req, "op", json_object_new_string("health"));
	json_object_object_add(req, "full", json_object_new_boolean(full));
	if (worker_run(d, req, &res, &st) < 0) {
		add(arg, "daemon", "worker", "fail", st.msg);
	} else if (json_object_object_get_ex(res, "checks", &checks)) {
		for (size_t i = 0; i < json_object_array_length(checks); i++) {
			struct json_object *k = json_object_array_get_idx(checks, i), *v;
			const char *f[4] = {"", "", "", ""}, *keys[4] = {"area", "name", "level", "message"};
			for (int n = 0; n < 4; n++)
				if (json_object_object_get_ex(k, keys[n], &v))
					f[n] = json_object_get_string(v);
			add(arg, f[0], f[1], f[2], f[3]);
		}
	}
	json_object_put(req);
	json_object_put(res);

	char buf[1024], mode[16] = "?";
	int version = catalog_version(d->cat);
	catalog_journal_mode(d->cat, mode, sizeof(mode));
	snprintf(buf, sizeof(buf), "%s: schema version %d, journal %s", catalog_path(d->cat), version,
		 mode);
	add(arg, "catalog", "database", version == CATALOG_SCHEMA_VERSION ? "ok" : "fail", buf);
	snprintf(buf, sizeof(buf), "crstream %s, pid %d, up %lld s, %d operation(s) running",
		 CRSTREAM_VERSION, (int)d->pid, (long long)(unix_ms() - d->started_ms) / 1000,
		 ops_running(d));
	add(arg, "daemon", "service", "ok", buf);
}

struct health_ctx {
	struct rpc_call *c;
	Daemon__HealthCheckResp *resp;
};

static void add_health(void *arg, const char *area, const char *name, const char *level,
		       const char *data)
{
	struct health_ctx *h = arg;
	add_component(h->c, h->resp, area, name, level, data);
}

static void handle_health(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Daemon__HealthCheckReq *r = (const Daemon__HealthCheckReq *)m;
	struct rpc_status st = {0};
	Daemon__HealthCheckResp resp = DAEMON__HEALTH_CHECK_RESP__INIT;
	struct health_ctx h = {c, &resp};
	health_components(d, r->has_full && r->full, add_health, &h);
	rpc_call_finish(c, &resp.base, &st);
}

#define METHOD(name, req, fn) {"/daemon.Daemon/" name, &daemon__##req##__descriptor, fn}

const struct method cedana_methods[] = {
	METHOD("Dump", dump_req, handle_dump),
	METHOD("Restore", restore_req, handle_restore),
	METHOD("Run", run_req, handle_run),
	METHOD("Manage", run_req, handle_manage),
	METHOD("Get", get_req, handle_get),
	METHOD("List", list_req, handle_list),
	METHOD("Kill", kill_req, handle_kill),
	METHOD("Delete", delete_req, handle_delete),
	METHOD("GetCheckpoint", get_checkpoint_req, handle_get_checkpoint),
	METHOD("ListCheckpoints", list_checkpoints_req, handle_list_checkpoints),
	METHOD("DeleteCheckpoint", delete_checkpoint_req, handle_delete_checkpoint),
	METHOD("HealthCheck", health_check_req, handle_health),
	{NULL, NULL, NULL},
};
