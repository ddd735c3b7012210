#include "daemon/requests.h"
#include "codec/codec.h"
#include "daemon/worker.h"
#include "store/store.h"

#include <string.h>

#define STREAMS_MAX 64

/* ---- from the wire ---- */

/* CriuOpts' fields that a dump and a restore take alike; shell_job stays
 * as it was (automatic) when the request leaves it out. */
static void take_criu_flags(const Criu__CriuOpts *o, struct criu_flags *f)
{
	f->tcp_established = o->has_tcp_established && o->tcp_established;
	f->file_locks = o->has_file_locks && o->file_locks;
	f->ext_unix_sk = o->has_ext_unix_sk && o->ext_unix_sk;
	if (o->has_shell_job)
		f->shell_job = o->shell_job;
	f->external = o->external;
	f->nexternal = o->n_external;
}

/* Type and Details: a process by PID, or a job by JID. */
static int cedana_dump_target(const Daemon__DumpReq *r, struct dump_request *rq,
			      struct rpc_status *st)
{
	const char *type = field_set(r->type) ? r->type : "process";
	if (!strcmp(type, "process")) {
		rq->pid = r->details && r->details->process && r->details->process->has_pid
				  ? (pid_t)r->details->process->pid
				  : 0;
		return 0;
	}
	if (strcmp(type, "job"))
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT,
				 "Type \"%s\": crstream dumps a \"process\" or a \"job\"", type);
	rq->jid = r->details ? r->details->jid : NULL;
	if (!field_set(rq->jid))
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT,
				 "Details.JID: missing for Type \"job\"");
	return 0;
}

int cedana_dump_request(const Daemon__DumpReq *r, struct dump_request *rq, struct rpc_status *st)
{
	*rq = (struct dump_request){.streams = -1, .criu.shell_job = -1};
	if (r->has_streams && (r->streams < 0 || r->streams > STREAMS_MAX))
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "Streams %d: must be 0 to %d",
				 r->streams, STREAMS_MAX);
	if (r->has_action && r->action != 0)
		return rpc_error(st, GRPC_STATUS_UNIMPLEMENTED,
				 "Action %d: only DUMP (0) is supported, not FREEZE_ONLY/UNFREEZE_ONLY",
				 r->action);
	if (cedana_dump_target(r, rq, st) < 0)
		return -1;
	rq->dir = r->dir;
	rq->name = r->name;
	rq->compression = r->compression;
	if (r->has_streams)
		rq->streams = r->streams;
	if (r->criu) {
		rq->leave_running = r->criu->has_leave_running && r->criu->leave_running;
		take_criu_flags(r->criu, &rq->criu);
	}
	return 0;
}

int cedana_restore_request(const Daemon__RestoreReq *r, struct restore_request *rq,
			   struct rpc_status *st)
{
	*rq = (struct restore_request){.criu.shell_job = -1};
	const char *type = field_set(r->type) ? r->type : "process";
	if ((r->has_uid && r->uid) || (r->has_gid && r->gid) || r->n_groups)
		return rpc_error(st, GRPC_STATUS_UNIMPLEMENTED,
				 "UID/GID/Groups: a restored tree keeps the credentials it was dumped with");
	if (r->n_env)
		return rpc_error(st, GRPC_STATUS_UNIMPLEMENTED,
				 "Env: a restored tree keeps the environment it was dumped with");
	if (r->has_attachable && r->attachable)
		return rpc_error(st, GRPC_STATUS_UNIMPLEMENTED, "Attachable: not supported by crstream");
	if (strcmp(type, "process") && strcmp(type, "job"))
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT,
				 "Type \"%s\": crstream restores a \"process\" or a \"job\"", type);
	if (!strcmp(type, "job") && !(r->details && field_set(r->details->jid)))
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT,
				 "Details.JID: missing for Type \"job\"");
	rq->path = r->path;
	rq->jid = r->details ? r->details->jid : NULL;
	rq->pid_file = r->pid_file;
	if (r->criu) {
		rq->tcp_close = r->criu->has_tcp_close && r->criu->tcp_close;
		take_criu_flags(r->criu, &rq->criu);
	}
	return 0;
}

/* The CRIU flags of a v1 DumpRequest or RestoreRequest: the two messages
 * name them alike (a macro, as they are distinct generated types). */
#define V1_CRIU_FLAGS(r) \
	{ \
		.shell_job = (r)->shell_job ? 1 : -1, \
		.tcp_established = (r)->tcp_established, \
		.file_locks = (r)->file_locks, \
		.ext_unix_sk = (r)->ext_unix_sk, \
		.external = (r)->external, \
		.nexternal = (r)->n_external, \
	}

int v1_dump_request(const Crstream__V1__DumpRequest *r, struct dump_request *rq,
		    struct rpc_status *st)
{
	*rq = (struct dump_request){.criu = V1_CRIU_FLAGS(r)};
	/* On the unsigned wire value: converted first, 2^32 - 1 would read
	 * as -1, "the configured default". */
	if (r->streams > STREAMS_MAX)
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "streams %u: must be 0 to %d",
				 r->streams, STREAMS_MAX);
	if (r->plain && r->streams)
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "streams %u and plain: choose one",
				 r->streams);
	rq->pid = (pid_t)r->pid;
	rq->jid = r->jid;
	rq->dir = r->dir;
	rq->name = r->name;
	rq->compression = r->compression;
	rq->level = r->level;
	rq->streams = r->plain ? 0 : r->streams ? (int)r->streams : -1;
	rq->leave_running = r->leave_running;
	return 0;
}

void v1_restore_request(const Crstream__V1__RestoreRequest *r, struct restore_request *rq)
{
	*rq = (struct restore_request){
		.path = r->path,
		.ckpt_id = r->checkpoint_id,
		.jid = r->jid,
		.pid_file = r->pid_file,
		.criu = V1_CRIU_FLAGS(r),
		.tcp_close = r->tcp_close,
	};
}

/* ---- the fields' rules ---- */

static int check_name(const char *name, struct rpc_status *st)
{
	if (!field_set(name))
		return 0;
	if (strchr(name, '/') || strstr(name, "..") || !strcmp(name, "."))
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT,
				 "Name \"%s\": must not contain \"/\" or \"..\"", name);
	if (strlen(name) > 200)
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "Name: longer than 200 characters");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT,
					 "Name: contains a control character");
	return 0;
}

/* An absolute path, or (if remote_ok) an s3:// or gs:// URL. */
int check_request_path(const char *field, const char *v, bool remote_ok, struct rpc_status *st)
{
	if (!field_set(v))
		return 0;
	if (remote_ok && store_is_remote(v))
		return 0;
	if (v[0] != '/')
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "%s \"%s\": must be an absolute path%s",
				 field, v, remote_ok ? " or an s3:// or gs:// URL" : "");
	if (strstr(v, "/../") || (strlen(v) >= 3 && !strcmp(v + strlen(v) - 3, "/..")))
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "%s \"%s\": must not contain \"..\"",
				 field, v);
	return 0;
}

static int check_criu_flags(const struct criu_flags *f, struct rpc_status *st)
{
	if (f->nexternal > WORKER_EXTERNAL_MAX)
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "External: %zu entries, at most %d",
				 f->nexternal, WORKER_EXTERNAL_MAX);
	for (size_t i = 0; i < f->nexternal; i++)
		if (!field_set(f->external[i]))
			return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "External[%zu]: empty", i);
	return 0;
}

int check_dump_request(const struct dump_request *rq, const char *default_compression,
		       struct rpc_status *st)
{
	if (check_name(rq->name, st) < 0 || check_request_path("Dir", rq->dir, true, st) < 0 ||
	    check_criu_flags(&rq->criu, st) < 0)
		return -1;
	if (rq->streams < -1 || rq->streams > STREAMS_MAX)
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "Streams %d: must be 0 to %d",
				 rq->streams, STREAMS_MAX);
	const char *comp = field_set(rq->compression) ? rq->compression : default_compression;
	const struct codec *codec = codec_by_name(comp);
	if (!codec)
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT,
				 "Compression \"%s\": unknown (use %s)", comp, codec_names());
	if (rq->level && (rq->level < codec->min_level || rq->level > codec->max_level))
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "level %d: %s takes %d to %d",
				 rq->level, codec->name, codec->min_level, codec->max_level);
	return 0;
}

int check_restore_request(const struct restore_request *rq, struct rpc_status *st)
{
	if (check_request_path("Path", rq->path, true, st) < 0 ||
	    check_request_path("PidFile", rq->pid_file, false, st) < 0)
		return -1;
	return check_criu_flags(&rq->criu, st);
}
