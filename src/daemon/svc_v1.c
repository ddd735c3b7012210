/* crstream.v1: crstream's own service (proto/rpc/crstream_v1.proto), the
 * one the CLI uses. The same operations as daemon.Daemon, plus the
 * progress stream, Cancel, the manifest and periodic policies. */
#include "daemon/server.h"
#include "daemon/requests.h"
#include "crstream_v1.pb-c.h"
#include "util/version.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define A(c) ((c)->arena)

static char *dup_str(struct rpc_call *c, const char *s)
{
	return arena_strdup(A(c), s);
}

/* ---- events ---- */

static Crstream__V1__Event *event(struct rpc_call *c, const struct op *op)
{
	Crstream__V1__Event *e = arena_alloc(A(c), sizeof(*e));
	crstream__v1__event__init(e);
	e->operation_id = dup_str(c, op->id);
	return e;
}

static int send_started(struct rpc_call *c, const struct op *op)
{
	Crstream__V1__Event *e = event(c, op);
	Crstream__V1__Started *s = arena_alloc(A(c), sizeof(*s));
	crstream__v1__started__init(s);
	s->op = dup_str(c, op->kind == OP_DUMP ? "dump" : "restore");
	s->checkpoint_id = dup_str(c, op->ckpt_id);
	s->location = dup_str(c, op->location);
	s->jid = dup_str(c, op->jid);
	e->kind_case = CRSTREAM__V1__EVENT__KIND_STARTED;
	e->started = s;
	return rpc_call_send(c, &e->base);
}

/* d->mu held: a consistent copy of the progress. */
static Crstream__V1__Event *progress_event(struct rpc_call *c, const struct op *op)
{
	Crstream__V1__Event *e = event(c, op);
	Crstream__V1__Progress *p = arena_alloc(A(c), sizeof(*p));
	crstream__v1__progress__init(p);
	const struct op_progress *pr = &op->progress;
	p->op = dup_str(c, op->kind == OP_DUMP ? "dump" : "restore");
	p->target = dup_str(c, op->target);
	p->phase = dup_str(c, pr->phase);
	p->streams = pr->streams;
	p->elapsed_ms = pr->elapsed_ms;
	p->captured_bytes = pr->captured_bytes;
	p->done_bytes = pr->done_bytes;
	p->total_bytes = pr->total_bytes;
	p->stored_bytes = pr->stored_bytes;
	p->rate = pr->rate;
	p->eta_ms = pr->eta_ms;
	e->kind_case = CRSTREAM__V1__EVENT__KIND_PROGRESS;
	e->progress = p;
	return e;
}

static Crstream__V1__Event *result_event(struct rpc_call *c, const struct op *op)
{
	Crstream__V1__Event *e = event(c, op);
	Crstream__V1__Result *r = arena_alloc(A(c), sizeof(*r));
	crstream__v1__result__init(r);
	r->ok = op->ok;
	r->error = dup_str(c, op->ok ? "" : op->error);
	r->json = dup_str(c, op->result_json ? op->result_json : "");
	r->checkpoint_id = dup_str(c, op->ckpt_id);
	r->location = dup_str(c, op->location);
	r->pid = (uint32_t)(op->kind == OP_RESTORE ? op->restored_pid : op->pid);
	r->process_running = op->process_running;
	r->jid = dup_str(c, op->jid);
	e->kind_case = CRSTREAM__V1__EVENT__KIND_RESULT;
	e->result = r;
	return e;
}

/* Streams the operation's progress, then its result, then the status.
 * Progress is sent as it comes, one message at a time: a slow client
 * gets the latest, never a backlog; a client that went away stops the
 * stream, not the operation. */
static void follow(struct daemon *d, struct rpc_call *c, struct op *op)
{
	struct rpc_status st = {0};
	uint64_t sent = 0, seq = 0;
	bool alive = send_started(c, op) == 0;
	for (;;) {
		op_wait(d, op, &seq, 1000);
		pthread_mutex_lock(&d->mu);
		bool done = op->done;
		Crstream__V1__Event *e = !done && seq != sent ? progress_event(c, op) : NULL;
		pthread_mutex_unlock(&d->mu);
		if (done)
			break;
		if (e && alive) {
			sent = seq;
			alive = rpc_call_send(c, &e->base) == 0;
		}
	}
	if (alive)
		rpc_call_send(c, &result_event(c, op)->base);
	if (!op->ok)
		rpc_error(&st, op->cancelled ? GRPC_STATUS_CANCELLED : GRPC_STATUS_INTERNAL, "%s %s: %s",
			  op->kind == OP_DUMP ? "dump" : "restore", op->cancelled ? "cancelled" : "failed",
			  op->error);
	rpc_call_finish(c, NULL, &st);
}

static void handle_dump(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Crstream__V1__DumpRequest *r = (const Crstream__V1__DumpRequest *)m;
	struct rpc_status st = {0};
	struct dump_request rq;
	if (v1_dump_request(r, &rq, &st) < 0)
		return rpc_call_finish(c, NULL, &st);
	struct op *op;
	if (op_start_dump(d, &rq, &op, &st) < 0)
		return rpc_call_finish(c, NULL, &st);
	follow(d, c, op);
	op_put(d, op);
}

static void handle_restore(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Crstream__V1__RestoreRequest *r = (const Crstream__V1__RestoreRequest *)m;
	struct rpc_status st = {0};
	struct restore_request rq;
	v1_restore_request(r, &rq);
	struct op *op;
	if (op_start_restore(d, &rq, &op, &st) < 0)
		return rpc_call_finish(c, NULL, &st);
	follow(d, c, op);
	op_put(d, op);
}

static void handle_watch(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Crstream__V1__WatchRequest *r = (const Crstream__V1__WatchRequest *)m;
	struct rpc_status st = {0};
	struct op *op = field_set(r->operation_id) ? op_find(d, r->operation_id) : NULL;
	if (!op) {
		rpc_error(&st, GRPC_STATUS_NOT_FOUND, "operation \"%s\": not running", r->operation_id);
		return rpc_call_finish(c, NULL, &st);
	}
	follow(d, c, op);
	op_put(d, op);
}

static void handle_cancel(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Crstream__V1__CancelRequest *r = (const Crstream__V1__CancelRequest *)m;
	struct rpc_status st = {0};
	Crstream__V1__CancelResponse resp = CRSTREAM__V1__CANCEL_RESPONSE__INIT;
	if (op_cancel(d, r->operation_id, &st) == 0) {
		resp.cancelled = true;
		resp.message = arena_printf(A(c), "operation %s: cancelling", r->operation_id);
	}
	rpc_call_finish(c, &resp.base, &st);
}

/* ---- checkpoints ---- */

static Crstream__V1__Checkpoint *checkpoint_message(struct daemon *d, struct rpc_call *c,
						    const struct ckpt_row *r)
{
	Crstream__V1__Checkpoint *m = arena_alloc(A(c), sizeof(*m));
	crstream__v1__checkpoint__init(m);
	m->id = dup_str(c, r->id);
	m->jid = dup_str(c, r->jid);
	m->location = dup_str(c, r->location);
	m->created_ms = r->created_ms;
	m->stored_bytes = r->stored_bytes;
	m->image_bytes = r->image_bytes;
	m->streams = r->streams;
	m->compression = dup_str(c, r->compression);
	m->state = dup_str(c, r->state);
	m->error = dup_str(c, r->error);
	m->manifest_checksum = dup_str(c, r->manifest_checksum);
	m->pid = (uint32_t)r->pid;
	if (!strcmp(r->state, "in_progress")) {
		pthread_mutex_lock(&d->mu);
		for (struct op *op = d->ops; op; op = op->next)
			if (!strcmp(op->ckpt_id, r->id) && op->kind == OP_DUMP)
				m->operation_id = dup_str(c, op->id);
		pthread_mutex_unlock(&d->mu);
	}
	return m;
}

struct list_ctx {
	struct daemon *d;
	struct rpc_call *c;
	Crstream__V1__ListCheckpointsResponse *resp;
};

static int list_one(const struct ckpt_row *r, void *arg)
{
	struct list_ctx *l = arg;
	arena_push(A(l->c), &l->resp->checkpoints, &l->resp->n_checkpoints,
		   checkpoint_message(l->d, l->c, r));
	return 0;
}

static void handle_list_checkpoints(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Crstream__V1__ListCheckpointsRequest *r = (const Crstream__V1__ListCheckpointsRequest *)m;
	struct rpc_status st = {0};
	Crstream__V1__ListCheckpointsResponse resp = CRSTREAM__V1__LIST_CHECKPOINTS_RESPONSE__INIT;
	struct list_ctx l = {d, c, &resp};
	if (catalog_each_checkpoint(d->cat, field_set(r->jid) ? r->jid : NULL, NULL,
				    field_set(r->location) ? r->location : NULL, list_one, &l) < 0)
		rpc_error(&st, GRPC_STATUS_INTERNAL, "%s", err_msg());
	rpc_call_finish(c, &resp.base, &st);
}

/* The catalog row a request names: by id, job or location. */
static int find_checkpoint(struct daemon *d, const char *id, const char *jid, const char *location,
			   struct ckpt_row *row, struct rpc_status *st)
{
	int rc;
	const char *what;
	if (field_set(id)) {
		rc = catalog_get_checkpoint(d->cat, id, row);
		what = id;
	} else if (field_set(jid)) {
		rc = catalog_latest_checkpoint(d->cat, jid, row);
		what = jid;
	} else if (field_set(location)) {
		rc = catalog_checkpoint_at(d->cat, location, row);
		what = location;
	} else {
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "id, jid or location: one is needed");
	}
	if (rc < 0)
		return rpc_error(st, GRPC_STATUS_INTERNAL, "%s", err_msg());
	if (rc == 1)
		return rpc_error(st, GRPC_STATUS_NOT_FOUND, "%s: no such checkpoint in the catalog%s", what,
				 field_set(jid) && !field_set(id) ? " (complete, of this job)" : "");
	return 0;
}

static void handle_get_checkpoint(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Crstream__V1__GetCheckpointRequest *r = (const Crstream__V1__GetCheckpointRequest *)m;
	struct rpc_status st = {0};
	struct ckpt_row row;
	Crstream__V1__Checkpoint *resp = NULL;
	if (find_checkpoint(d, r->id, r->jid, r->location, &row, &st) == 0) {
		resp = checkpoint_message(d, c, &row);
		if (r->with_manifest) {
			struct json_object *req = json_object_new_object(), *res = NULL, *v;
			json_object_object_add(req, "op", json_object_new_string("manifest"));
			json_object_object_add(req, "location", json_object_new_string(row.location));
			if (worker_run(d, req, &res, &st) == 0 &&
			    json_object_object_get_ex(res, "manifest", &v))
				resp->manifest = dup_str(c, json_object_get_string(v));
			else if (st.code == 0)
				rpc_error(&st, GRPC_STATUS_UNAVAILABLE, "%s: no manifest readable",
					  row.location);
			json_object_put(req);
			json_object_put(res);
		}
	}
	rpc_call_finish(c, resp ? &resp->base : NULL, &st);
}

struct same_location {
	const char *location;
	char (*ids)[40];
	size_t n, cap;
};

static int collect_at(const struct ckpt_row *r, void *arg)
{
	struct same_location *s = arg;
	if (strcmp(r->location, s->location) || s->n == s->cap)
		return 0;
	snprintf(s->ids[s->n++], 40, "%s", r->id);
	return 0;
}

static void handle_delete_checkpoint(struct daemon *d, struct rpc_call *c,
				     const ProtobufCMessage *m)
{
	const Crstream__V1__DeleteCheckpointRequest *r = (const Crstream__V1__DeleteCheckpointRequest *)m;
	struct rpc_status st = {0};
	Crstream__V1__DeleteCheckpointResponse resp = CRSTREAM__V1__DELETE_CHECKPOINT_RESPONSE__INIT;
	struct ckpt_row row;
	unsigned objects = 0;
	int rc = find_checkpoint(d, r->id, NULL, r->location, &row, &st);
	if (rc < 0 && st.code == GRPC_STATUS_NOT_FOUND && field_set(r->location)) {
		/* Not in the catalog: a checkpoint all the same, made without
		 * the daemon. */
		memset(&row, 0, sizeof(row));
		snprintf(row.location, sizeof(row.location), "%s", r->location);
		snprintf(row.state, sizeof(row.state), "complete");
		st.code = GRPC_STATUS_OK;
		struct json_object *req = json_object_new_object(), *res = NULL, *v;
		json_object_object_add(req, "op", json_object_new_string("remove"));
		json_object_object_add(req, "location", json_object_new_string(r->location));
		if (worker_run(d, req, &res, &st) == 0) {
			if (json_object_object_get_ex(res, "objects", &v))
				objects = (unsigned)json_object_get_int(v);
			else
				rpc_error(&st, GRPC_STATUS_NOT_FOUND, "%s",
					  json_object_object_get_ex(res, "error", &v)
						  ? json_object_get_string(v)
						  : "not a checkpoint");
		}
		json_object_put(req);
		json_object_put(res);
	} else if (rc == 0 && checkpoint_delete(d, &row, &objects, &st) == 0) {
		/* Other catalog entries for the same place (a failed attempt
		 * before it) describe what is gone now. */
		char ids[16][40];
		struct same_location s = {row.location, ids, 0, 16};
		catalog_each_checkpoint(d->cat, NULL, NULL, NULL, collect_at, &s);
		for (size_t i = 0; i < s.n; i++)
			catalog_delete_checkpoint(d->cat, ids[i]);
	}
	resp.location = dup_str(c, row.location);
	resp.objects = objects;
	rpc_call_finish(c, &resp.base, &st);
}

/* ---- jobs ---- */

static Crstream__V1__Policy *policy_message(struct rpc_call *c, const struct job_row *j)
{
	Crstream__V1__Policy *p = arena_alloc(A(c), sizeof(*p));
	crstream__v1__policy__init(p);
	p->interval_seconds = j->policy_interval;
	p->keep = j->policy_keep;
	p->dir = dup_str(c, j->policy_dir);
	p->streams = j->policy_streams > 0 ? (uint32_t)j->policy_streams : 0;
	p->compression = dup_str(c, j->policy_compression);
	p->next_ms = j->policy_next_ms;
	return p;
}

static Crstream__V1__Job *job_message(struct daemon *d, struct rpc_call *c, const struct job_row *j)
{
	Crstream__V1__Job *m = arena_alloc(A(c), sizeof(*m));
	crstream__v1__job__init(m);
	m->jid = dup_str(c, j->jid);
	m->pid = (uint32_t)j->pid;
	m->state = dup_str(c, j->state);
	m->exit_code = j->exit_code;
	m->exit_signal = j->exit_signal;
	struct json_object *a = json_tokener_parse(j->args);
	for (size_t i = 0; a && i < json_object_array_length(a); i++)
		arena_push(A(c), &m->args, &m->n_args,
			   dup_str(c, json_object_get_string(json_object_array_get_idx(a, i))));
	json_object_put(a);
	m->working_dir = dup_str(c, j->working_dir);
	m->log = dup_str(c, j->log);
	m->started_ms = j->started_ms;
	m->child = j->child;
	m->restored_from = dup_str(c, j->restored_from);
	catalog_count_checkpoints(d->cat, j->jid, &m->checkpoints);
	struct ckpt_row latest;
	if (catalog_latest_checkpoint(d->cat, j->jid, &latest) == 0)
		m->latest_checkpoint = dup_str(c, latest.id);
	if (j->policy_interval)
		m->policy = policy_message(c, j);
	char line[256];
	job_status_line(j, line, sizeof(line));
	m->status = dup_str(c, line);
	return m;
}

static void to_policy(const Crstream__V1__Policy *p, struct policy_request *out)
{
	memset(out, 0, sizeof(*out));
	if (!p)
		return;
	out->given = true;
	out->interval = p->interval_seconds;
	out->keep = p->keep;
	out->dir = p->dir;
	out->streams = p->streams;
	out->compression = p->compression;
}

/* Answers with the job, its policy set first if the request has one. */
static void answer_job(struct daemon *d, struct rpc_call *c, const char *jid,
		       const Crstream__V1__Policy *policy, struct rpc_status *st)
{
	struct job_row j;
	struct policy_request pr;
	to_policy(policy, &pr);
	if (st->code == 0 && pr.given)
		policy_set(d, jid, &pr, st);
	if (st->code == 0)
		job_get(d, jid, &j, st);
	rpc_call_finish(c, st->code ? NULL : &job_message(d, c, &j)->base, st);
}

static void handle_run(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Crstream__V1__RunRequest *r = (const Crstream__V1__RunRequest *)m;
	struct rpc_status st = {0};
	struct run_request rq = {
		.jid = r->jid,
		.args = r->args,
		.nargs = r->n_args,
		.working_dir = r->working_dir,
		.env = r->n_env ? r->env : NULL,
		.nenv = r->n_env,
		.log = r->log,
		.pid_file = r->pid_file,
	};
	struct job_row j = {0};
	struct policy_request pr;
	to_policy(r->policy, &pr);
	if (policy_check(d, &pr, &st) == 0)
		job_run(d, &rq, &j, &st);
	answer_job(d, c, j.jid, r->policy, &st);
}

static void handle_manage(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Crstream__V1__ManageRequest *r = (const Crstream__V1__ManageRequest *)m;
	struct rpc_status st = {0};
	struct job_row j = {0};
	struct policy_request pr;
	to_policy(r->policy, &pr);
	if (policy_check(d, &pr, &st) == 0)
		job_manage(d, (pid_t)r->pid, r->jid, &j, &st);
	answer_job(d, c, j.jid, r->policy, &st);
}

struct jobs_ctx {
	struct daemon *d;
	struct rpc_call *c;
	Crstream__V1__ListJobsResponse *resp;
	char **jids;
	size_t njids;
};

static int list_job(const struct job_row *j, void *arg)
{
	struct jobs_ctx *l = arg;
	if (job_listed(l->jids, l->njids, j->jid))
		arena_push(A(l->c), &l->resp->jobs, &l->resp->n_jobs, job_message(l->d, l->c, j));
	return 0;
}

static void handle_list_jobs(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Crstream__V1__ListJobsRequest *r = (const Crstream__V1__ListJobsRequest *)m;
	struct rpc_status st = {0};
	Crstream__V1__ListJobsResponse resp = CRSTREAM__V1__LIST_JOBS_RESPONSE__INIT;
	struct jobs_ctx l = {d, c, &resp, r->jids, r->n_jids};
	if (catalog_each_job(d->cat, list_job, &l) < 0)
		rpc_error(&st, GRPC_STATUS_INTERNAL, "%s", err_msg());
	for (size_t i = 0; i < r->n_jids && !st.code; i++) {
		struct job_row j;
		job_get(d, r->jids[i], &j, &st);
	}
	rpc_call_finish(c, &resp.base, &st);
}

static void handle_kill(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Crstream__V1__KillRequest *r = (const Crstream__V1__KillRequest *)m;
	struct rpc_status st = {0};
	struct job_row j;
	if (job_kill(d, r->jid, r->signal, &j, &st) == 0)
		return rpc_call_finish(c, &job_message(d, c, &j)->base, &st);
	rpc_call_finish(c, NULL, &st);
}

static void handle_delete_job(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Crstream__V1__DeleteJobRequest *r = (const Crstream__V1__DeleteJobRequest *)m;
	struct rpc_status st = {0};
	Crstream__V1__DeleteJobResponse resp = CRSTREAM__V1__DELETE_JOB_RESPONSE__INIT;
	job_delete(d, r->jid, &st);
	rpc_call_finish(c, &resp.base, &st);
}

static void handle_set_policy(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Crstream__V1__SetPolicyRequest *r = (const Crstream__V1__SetPolicyRequest *)m;
	struct rpc_status st = {0};
	struct job_row j;
	if (job_get(d, r->jid, &j, &st) == 0 && !r->policy)
		rpc_error(&st, GRPC_STATUS_INVALID_ARGUMENT, "policy: missing");
	struct policy_request pr;
	to_policy(r->policy, &pr);
	if (st.code == 0)
		policy_check(d, &pr, &st);
	answer_job(d, c, r->jid, r->policy, &st);
}

/* ---- health ---- */

struct health_ctx {
	struct rpc_call *c;
	Crstream__V1__HealthResponse *resp;
};

static void add_health(void *arg, const char *area, const char *name, const char *level,
		       const char *data)
{
	struct health_ctx *h = arg;
	Crstream__V1__HealthComponent *k = arena_alloc(A(h->c), sizeof(*k));
	crstream__v1__health_component__init(k);
	k->area = dup_str(h->c, area);
	k->name = dup_str(h->c, name);
	k->data = dup_str(h->c, data);
	if (!strcmp(level, "fail")) {
		arena_push(A(h->c), &k->errors, &k->n_errors, dup_str(h->c, data));
		h->resp->ready = false;
	} else if (!strcmp(level, "warn")) {
		arena_push(A(h->c), &k->warnings, &k->n_warnings, dup_str(h->c, data));
	}
	arena_push(A(h->c), &h->resp->components, &h->resp->n_components, k);
}

static void handle_health(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *m)
{
	const Crstream__V1__HealthRequest *r = (const Crstream__V1__HealthRequest *)m;
	struct rpc_status st = {0};
	Crstream__V1__HealthResponse resp = CRSTREAM__V1__HEALTH_RESPONSE__INIT;
	resp.version = dup_str(c, CRSTREAM_VERSION);
	resp.api = dup_str(c, "crstream.v1");
	resp.ready = true;
	struct health_ctx h = {c, &resp};
	health_components(d, r->full, add_health, &h);
	rpc_call_finish(c, &resp.base, &st);
}

#define METHOD(name, req, fn) {"/crstream.v1.Crstream/" name, &crstream__v1__##req##__descriptor, fn}

const struct method v1_methods[] = {
	METHOD("Dump", dump_request, handle_dump),
	METHOD("Restore", restore_request, handle_restore),
	METHOD("Watch", watch_request, handle_watch),
	METHOD("Cancel", cancel_request, handle_cancel),
	METHOD("ListCheckpoints", list_checkpoints_request, handle_list_checkpoints),
	METHOD("GetCheckpoint", get_checkpoint_request, handle_get_checkpoint),
	METHOD("DeleteCheckpoint", delete_checkpoint_request, handle_delete_checkpoint),
	METHOD("Run", run_request, handle_run),
	METHOD("Manage", manage_request, handle_manage),
	METHOD("ListJobs", list_jobs_request, handle_list_jobs),
	METHOD("Kill", kill_request, handle_kill),
	METHOD("DeleteJob", delete_job_request, handle_delete_job),
	METHOD("SetPolicy", set_policy_request, handle_set_policy),
	METHOD("Health", health_request, handle_health),
	{NULL, NULL, NULL},
};
