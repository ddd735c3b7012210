/* The daemon's dump and restore requests: the wire message decoded by
 * protobuf-c (as rpc_unpack does), turned into the operation layer's
 * request by the handlers' own functions (src/daemon/requests.c) and put
 * through the checks op_start_dump/op_start_restore run before anything
 * else.
 *
 * Input: one byte choosing the message (Cedana's daemon.DumpReq /
 * RestoreReq, crstream.v1 DumpRequest / RestoreRequest), then its bytes.
 *
 * Properties: a refusal has a status code and a message; a request that
 * passes the checks keeps the promises the rest of the daemon relies on
 * (a name that is one path component, absolute paths or object-storage
 * URLs, 0-64 streams or "default", a known codec and a level it takes, at
 * most WORKER_EXTERNAL_MAX non-empty External entries, a process or a job
 * named), and matches the message it came from. */
#include "fuzz.h"
#include "codec/codec.h"
#include "daemon/requests.h"
#include "daemon/worker.h"
#include "store/store.h"

#define DEFAULT_CODEC "lz4"

static void refused(const struct rpc_status *st, const char *what)
{
	FUZZ_CHECK(st->code != GRPC_STATUS_OK, "%s refused with status OK", what);
	FUZZ_CHECK(st->msg[0] != '\0', "%s refused without a message", what);
}

static bool absolute_or_remote(const char *p)
{
	return !p || !*p || store_is_remote(p) || (p[0] == '/' && !strstr(p, "/../"));
}

static void check_flags(const struct criu_flags *f)
{
	FUZZ_CHECK(f->nexternal <= WORKER_EXTERNAL_MAX, "%zu External entries", f->nexternal);
	for (size_t i = 0; i < f->nexternal; i++)
		FUZZ_CHECK(f->external[i] && *f->external[i], "External[%zu] empty", i);
	FUZZ_CHECK(f->shell_job >= -1 && f->shell_job <= 1, "shell_job %d", f->shell_job);
}

/* Whether the request passed the checks (then it keeps their promises). */
static bool check_dump(const struct dump_request *rq)
{
	struct rpc_status st = {0};
	if (check_dump_request(rq, DEFAULT_CODEC, &st) < 0) {
		refused(&st, "check_dump_request");
		return false;
	}
	if (rq->name && *rq->name) {
		FUZZ_CHECK(!strchr(rq->name, '/') && !strstr(rq->name, ".."), "name \"%s\"", rq->name);
		FUZZ_CHECK(strlen(rq->name) <= 200, "name of %zu bytes", strlen(rq->name));
	}
	FUZZ_CHECK(absolute_or_remote(rq->dir), "dir \"%s\"", rq->dir);
	FUZZ_CHECK(rq->streams >= -1 && rq->streams <= 64, "streams %d", rq->streams);
	const struct codec *c =
		codec_by_name(rq->compression && *rq->compression ? rq->compression : DEFAULT_CODEC);
	FUZZ_CHECK(c, "codec \"%s\"", rq->compression);
	FUZZ_CHECK(!rq->level || (rq->level >= c->min_level && rq->level <= c->max_level),
		   "level %d for %s", rq->level, c->name);
	check_flags(&rq->criu);
	return true;
}

static void check_restore(const struct restore_request *rq)
{
	struct rpc_status st = {0};
	if (check_restore_request(rq, &st) < 0)
		return refused(&st, "check_restore_request");
	FUZZ_CHECK(absolute_or_remote(rq->path), "path \"%s\"", rq->path);
	FUZZ_CHECK(!rq->pid_file || !*rq->pid_file ||
			   (rq->pid_file[0] == '/' && !strstr(rq->pid_file, "/../")),
		   "pid file \"%s\"", rq->pid_file);
	check_flags(&rq->criu);
}

static void cedana_dump(const uint8_t *data, size_t size)
{
	Daemon__DumpReq *r = daemon__dump_req__unpack(NULL, size, data);
	if (!r)
		return;
	struct dump_request rq;
	struct rpc_status st = {0};
	if (cedana_dump_request(r, &rq, &st) < 0) {
		refused(&st, "cedana_dump_request");
	} else {
		FUZZ_CHECK(!r->has_streams || rq.streams == r->streams, "streams %d from %d", rq.streams,
			   r->streams);
		bool job = r->type && !strcmp(r->type, "job");
		FUZZ_CHECK(!job || (rq.jid && *rq.jid), "a job dump without a JID");
		(void)check_dump(&rq);
	}
	daemon__dump_req__free_unpacked(r, NULL);
}

static void cedana_restore(const uint8_t *data, size_t size)
{
	Daemon__RestoreReq *r = daemon__restore_req__unpack(NULL, size, data);
	if (!r)
		return;
	struct restore_request rq;
	struct rpc_status st = {0};
	if (cedana_restore_request(r, &rq, &st) < 0) {
		refused(&st, "cedana_restore_request");
	} else {
		FUZZ_CHECK(!r->n_env && !r->n_groups, "Env or Groups taken");
		check_restore(&rq);
	}
	daemon__restore_req__free_unpacked(r, NULL);
}

static void v1_dump(const uint8_t *data, size_t size)
{
	Crstream__V1__DumpRequest *r = crstream__v1__dump_request__unpack(NULL, size, data);
	if (!r)
		return;
	struct dump_request rq;
	struct rpc_status st = {0};
	if (v1_dump_request(r, &rq, &st) < 0) {
		refused(&st, "v1_dump_request");
	} else if (check_dump(&rq)) {
		/* Unset streams is the default, a number is itself, plain is 0. */
		int want = r->plain ? 0 : r->streams ? (int)r->streams : -1;
		FUZZ_CHECK(r->streams <= 64 && rq.streams == want, "streams %d from %u (plain %d)",
			   rq.streams, r->streams, r->plain);
	}
	crstream__v1__dump_request__free_unpacked(r, NULL);
}

static void v1_restore(const uint8_t *data, size_t size)
{
	Crstream__V1__RestoreRequest *r = crstream__v1__restore_request__unpack(NULL, size, data);
	if (!r)
		return;
	struct restore_request rq;
	v1_restore_request(r, &rq);
	check_restore(&rq);
	crstream__v1__restore_request__free_unpacked(r, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static void (*const kinds[])(const uint8_t *, size_t) = {cedana_dump, cedana_restore, v1_dump,
								  v1_restore};
	kinds[data[0] % 4](data + 1, size - 1);
	return 0;
}
