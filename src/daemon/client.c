/* The client side of crstream.v1, for the CLI: `crstream run|manage|jobs|
 * kill`, and dump, restore, ls, rm and check through a daemon. */
#include "daemon/daemon.h"
#include "daemon/plugin.h"
#include "daemon/rpc.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "crstream_v1.pb-c.h"
#include "util/fmt.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define V1 "/crstream.v1.Crstream/"

/* ---- connecting ---- */

static bool grpc_ready;

/* Signals are blocked before gRPC starts its threads, so that SIGINT and
 * SIGTERM reach the canceller below rather than killing the client in
 * the middle of a call. */
static int connect_daemon(const char *addr, struct rpc_client *c)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (!grpc_ready) {
		grpc_init();
		grpc_ready = true;
	}
	struct rpc_status st;
	if (rpc_client_open(addr, c, &st) < 0)
		return err_set("%s", st.msg);
	return 0;
}

static void disconnect(struct rpc_client *c)
{
	rpc_client_close(c);
	/* grpc_shutdown() is left to the process's exit: the CLI exits
	 * right after, and gRPC's own threads would only be waited for. */
}

/* A call's failure as the CLI's one-line error. */
static int call_error(const char *addr, const struct rpc_status *st)
{
	if (st->code == GRPC_STATUS_UNAVAILABLE && strstr(st->msg, "connect"))
		return err_set("no crstream daemon answers at %s (%s)", addr, st->msg);
	return err_set("%s", st->msg);
}

static int unary(const char *addr, const char *method, const ProtobufCMessage *req,
		 const ProtobufCMessageDescriptor *d, ProtobufCMessage **resp)
{
	struct rpc_client c;
	struct rpc_status st = {0};
	if (connect_daemon(addr, &c) < 0)
		return -1;
	int rc = rpc_client_unary(&c, method, req, d, resp, &st);
	disconnect(&c);
	return rc < 0 ? call_error(addr, &st) : 0;
}

/* ---- following an operation ---- */

struct follow {
	struct rpc_client *c;
	const struct ckpt_progress_sink *sink;
	pthread_mutex_t mu;
	char op_id[64];
	int stop_fd;
	Crstream__V1__Result *result;	/* a copy's fields below */
	char *json;
	bool ok;
	char error[ERR_MAX];
	char checkpoint_id[40];
	char location[4200];
	char jid[64];
	pid_t pid;
	bool process_running;
};

/* Ctrl-C or SIGTERM: cancel the operation, as they do a local one; the
 * stream then ends with its result. */
static void *canceller_main(void *arg)
{
	struct follow *f = arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = f->stop_fd, .events = POLLIN}};
	while (sfd >= 0 && poll(p, 2, -1) >= 0 && !p[1].revents) {
		struct signalfd_siginfo si;
		if (!(p[0].revents & POLLIN) || read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		pthread_mutex_lock(&f->mu);
		char id[64];
		snprintf(id, sizeof(id), "%s", f->op_id);
		pthread_mutex_unlock(&f->mu);
		if (!id[0])
			continue;
		Crstream__V1__CancelRequest req = CRSTREAM__V1__CANCEL_REQUEST__INIT;
		req.operation_id = id;
		ProtobufCMessage *resp;
		struct rpc_status st;
		if (rpc_client_unary(f->c, V1 "Cancel", &req.base, &crstream__v1__cancel_response__descriptor,
				     &resp, &st) == 0)
			protobuf_c_message_free_unpacked(resp, NULL);
	}
	if (sfd >= 0)
		close(sfd);
	return NULL;
}

static enum ckpt_phase phase_of(const char *name)
{
	for (int i = CKPT_PREPARING; i <= CKPT_FAILED; i++)
		if (!strcmp(ckpt_phase_name((enum ckpt_phase)i), name))
			return (enum ckpt_phase)i;
	return CKPT_PREPARING;
}

static void on_event(struct follow *f, const Crstream__V1__Event *e)
{
	if (e->kind_case == CRSTREAM__V1__EVENT__KIND_STARTED) {
		pthread_mutex_lock(&f->mu);
		snprintf(f->op_id, sizeof(f->op_id), "%s", e->operation_id);
		pthread_mutex_unlock(&f->mu);
		snprintf(f->checkpoint_id, sizeof(f->checkpoint_id), "%s", e->started->checkpoint_id);
		snprintf(f->location, sizeof(f->location), "%s", e->started->location);
		snprintf(f->jid, sizeof(f->jid), "%s", e->started->jid);
	} else if (e->kind_case == CRSTREAM__V1__EVENT__KIND_PROGRESS && f->sink && f->sink->fn) {
		const Crstream__V1__Progress *p = e->progress;
		struct ckpt_progress cp = {
			.op = p->op, .target = p->target, .phase = phase_of(p->phase),
			.streams = p->streams, .elapsed_ms = p->elapsed_ms,
			.captured_bytes = p->captured_bytes, .done_bytes = p->done_bytes,
			.total_bytes = p->total_bytes, .stored_bytes = p->stored_bytes, .rate = p->rate,
			.eta_ms = p->eta_ms,
		};
		f->sink->fn(f->sink->arg, &cp);
	} else if (e->kind_case == CRSTREAM__V1__EVENT__KIND_RESULT) {
		const Crstream__V1__Result *r = e->result;
		free(f->json);
		f->json = strdup(r->json[0] ? r->json : "{}");
		f->ok = r->ok;
		snprintf(f->error, sizeof(f->error), "%s", r->error);
		snprintf(f->checkpoint_id, sizeof(f->checkpoint_id), "%s", r->checkpoint_id);
		snprintf(f->location, sizeof(f->location), "%s", r->location);
		snprintf(f->jid, sizeof(f->jid), "%s", r->jid);
		f->pid = (pid_t)r->pid;
		f->process_running = r->process_running;
	}
}

/* Runs a Dump or Restore call to its end. 0 if the operation succeeded. */
static int follow_call(const char *addr, const char *method, const ProtobufCMessage *req,
		       const struct ckpt_progress_sink *sink, struct follow *f)
{
	struct rpc_client c;
	struct rpc_status st = {0};
	if (connect_daemon(addr, &c) < 0)
		return -1;
	f->c = &c;
	f->sink = sink;
	pthread_mutex_init(&f->mu, NULL);
	f->stop_fd = eventfd(0, EFD_CLOEXEC);
	pthread_t canceller;
	bool cancelling = f->stop_fd >= 0 && pthread_create(&canceller, NULL, canceller_main, f) == 0;
	struct rpc_stream *s;
	int rc = rpc_client_stream(&c, method, req, &s, &st);
	ProtobufCMessage *m;
	while (rc == 0 && rpc_stream_next(s, &crstream__v1__event__descriptor, &m, &st) == 1) {
		on_event(f, (const Crstream__V1__Event *)m);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	struct rpc_status fin = {0};
	if (rc == 0 && rpc_stream_close(s, &fin) < 0 && !f->json)
		st = fin;
	if (cancelling) {
		uint64_t one = 1;
		(void)!write(f->stop_fd, &one, sizeof(one));
		pthread_join(canceller, NULL);
	}
	if (f->stop_fd >= 0)
		close(f->stop_fd);
	pthread_mutex_destroy(&f->mu);
	disconnect(&c);
	if (!f->json)
		return call_error(addr, st.code ? &st : &fin);
	if (!f->ok)
		return err_set("%s", f->error);
	return 0;
}

static uint64_t jnum(struct json_object *o, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) ? (uint64_t)json_object_get_int64(v) : 0;
}

static void jcopy(struct json_object *o, const char *key, char *buf, size_t size)
{
	struct json_object *v;
	snprintf(buf, size, "%s", json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "");
}

static int remote_dump(const char *addr, const struct remote_dump *rq,
		       const struct ckpt_progress_sink *sink, struct remote_result *res)
{
	Crstream__V1__DumpRequest req = CRSTREAM__V1__DUMP_REQUEST__INIT;
	char empty[] = "";
	req.pid = (uint32_t)rq->pid;
	req.jid = rq->jid ? (char *)rq->jid : empty;
	req.dir = rq->dir ? (char *)rq->dir : empty;
	req.name = rq->name ? (char *)rq->name : empty;
	req.compression = rq->compression ? (char *)rq->compression : empty;
	req.level = rq->level;
	req.streams = rq->streams > 0 ? (uint32_t)rq->streams : 0;
	req.plain = rq->streams == 0;
	req.leave_running = rq->leave_running;
	req.shell_job = rq->shell_job == 1;
	req.tcp_established = rq->tcp_established;
	req.file_locks = rq->file_locks;
	req.ext_unix_sk = rq->ext_unix_sk;
	req.external = (char **)rq->external;
	req.n_external = (size_t)rq->nexternal;
	struct follow f = {0};
	memset(res, 0, sizeof(*res));
	int rc = follow_call(addr, V1 "Dump", &req.base, sink, &f);
	char saved[ERR_MAX];
	err_copy(saved, sizeof(saved));
	res->json = f.json;
	res->ok = rc == 0;
	snprintf(res->checkpoint_id, sizeof(res->checkpoint_id), "%s", f.checkpoint_id);
	snprintf(res->jid, sizeof(res->jid), "%s", f.jid);
	struct dump_result *r = &res->dump;
	snprintf(r->location, sizeof(r->location), "%s", f.location);
	r->process_running = f.process_running;
	struct json_object *o = f.json ? json_tokener_parse(f.json) : NULL;
	if (o) {
		jcopy(o, "name", r->name, sizeof(r->name));
		jcopy(o, "compression", r->compression, sizeof(r->compression));
		r->streams = (int)jnum(o, "streams");
		r->image_bytes = jnum(o, "image_bytes");
		r->stored_bytes = jnum(o, "stored_bytes");
		struct json_object *v;
		if (json_object_object_get_ex(o, "frozen_ms", &v))
			r->frozen_us = (uint64_t)(json_object_get_double(v) * 1000.0);
		r->criu_ms = jnum(o, "criu_ms");
		r->dump_ms = jnum(o, "dump_ms");
		json_object_put(o);
	}
	err_set("%s", saved);
	return rc;
}

static int remote_restore(const char *addr, const struct remote_restore *rq,
			  const struct ckpt_progress_sink *sink, struct remote_result *res)
{
	Crstream__V1__RestoreRequest req = CRSTREAM__V1__RESTORE_REQUEST__INIT;
	char empty[] = "";
	bool is_path = strchr(rq->path, '/') != NULL;
	/* A path, or a catalog ID (no slash). */
	req.path = is_path ? (char *)rq->path : empty;
	req.checkpoint_id = is_path ? empty : (char *)rq->path;
	req.pid_file = rq->pid_file ? (char *)rq->pid_file : empty;
	req.shell_job = rq->shell_job == 1;
	req.tcp_established = rq->tcp_established;
	req.tcp_close = rq->tcp_close;
	struct follow f = {0};
	memset(res, 0, sizeof(*res));
	int rc = follow_call(addr, V1 "Restore", &req.base, sink, &f);
	char saved[ERR_MAX];
	err_copy(saved, sizeof(saved));
	res->json = f.json;
	res->ok = rc == 0;
	snprintf(res->checkpoint_id, sizeof(res->checkpoint_id), "%s", f.checkpoint_id);
	snprintf(res->jid, sizeof(res->jid), "%s", f.jid);
	struct restore_result *r = &res->restore;
	r->pid = f.pid;
	struct json_object *o = f.json ? json_tokener_parse(f.json) : NULL;
	if (o) {
		jcopy(o, "compression", r->compression, sizeof(r->compression));
		jcopy(o, "layout", r->layout, sizeof(r->layout));
		r->streams = (int)jnum(o, "streams");
		r->image_bytes = jnum(o, "image_bytes");
		r->stored_bytes = jnum(o, "stored_bytes");
		r->criu_ms = jnum(o, "criu_ms");
		r->restore_ms = jnum(o, "restore_ms");
		r->peak_buffered = jnum(o, "peak_buffered_bytes");
		r->spilled = jnum(o, "spilled_bytes");
		json_object_put(o);
	}
	err_set("%s", saved);
	return rc;
}

/* ---- checkpoints ---- */

static void format_time(int64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int remote_ls(const char *addr, const char *location)
{
	Crstream__V1__ListCheckpointsRequest req = CRSTREAM__V1__LIST_CHECKPOINTS_REQUEST__INIT;
	char empty[] = "";
	req.jid = empty;
	req.location = location ? (char *)location : empty;
	ProtobufCMessage *m;
	if (unary(addr, V1 "ListCheckpoints", &req.base,
		  &crstream__v1__list_checkpoints_response__descriptor, &m) < 0) {
		err_print(NULL);
		return 1;
	}
	const Crstream__V1__ListCheckpointsResponse *r = (const Crstream__V1__ListCheckpointsResponse *)m;
	printf("%-16s %-20s %10s %7s  %-11s %-11s %-20s %s\n", "ID", "CREATED", "SIZE", "STREAMS",
	       "COMPRESSION", "STATE", "JOB", "LOCATION");
	for (size_t i = 0; i < r->n_checkpoints; i++) {
		const Crstream__V1__Checkpoint *k = r->checkpoints[i];
		char when[32], size[32];
		format_time(k->created_ms, when, sizeof(when));
		format_bytes(k->stored_bytes, size, sizeof(size));
		printf("%-16s %-20s %10s %7d  %-11s %-11s %-20s %s\n", k->id, when, size, k->streams,
		       k->compression[0] ? k->compression : "-", k->state, k->jid[0] ? k->jid : "-",
		       k->location);
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

static int remote_rm(const char *addr, const char *what)
{
	Crstream__V1__DeleteCheckpointRequest req = CRSTREAM__V1__DELETE_CHECKPOINT_REQUEST__INIT;
	char empty[] = "";
	bool is_location = strchr(what, '/') != NULL;
	req.id = is_location ? empty : (char *)what;
	req.location = is_location ? (char *)what : empty;
	ProtobufCMessage *m;
	if (unary(addr, V1 "DeleteCheckpoint", &req.base,
		  &crstream__v1__delete_checkpoint_response__descriptor, &m) < 0) {
		err_print(NULL);
		return 1;
	}
	const Crstream__V1__DeleteCheckpointResponse *r = (const Crstream__V1__DeleteCheckpointResponse *)m;
	printf("removed %s (%u objects)\n", r->location, r->objects);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

static int remote_health(const char *addr,
			 void (*fn)(void *arg, const char *area, const char *name, bool error,
				    bool warning, const char *data),
			 void *arg)
{
	Crstream__V1__HealthRequest req = CRSTREAM__V1__HEALTH_REQUEST__INIT;
	ProtobufCMessage *m;
	if (unary(addr, V1 "Health", &req.base, &crstream__v1__health_response__descriptor, &m) < 0)
		return -1;
	const Crstream__V1__HealthResponse *r = (const Crstream__V1__HealthResponse *)m;
	for (size_t i = 0; i < r->n_components; i++) {
		const Crstream__V1__HealthComponent *k = r->components[i];
		fn(arg, k->area, k->name, k->n_errors > 0, k->n_warnings > 0, k->data);
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

/* ---- jobs: run, manage, jobs, kill ---- */

static const char *address(const char *given, char *buf, size_t size)
{
	if (given)
		return given;
	const char *env = getenv("CRSTREAM_DAEMON");
	if (env && *env)
		return env;
	struct config *cfg;
	if (config_load(&cfg) < 0)
		return NULL;
	snprintf(buf, size, "unix://%s", config_get(cfg, "daemon.socket"));
	config_free(cfg);
	return buf;
}

/* "90", "90s", "10m", "2h", "1d" -> seconds; -1 if malformed. */
static long parse_duration(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (end == s || errno || v < 0)
		return -1;
	long unit = !*end || !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60 : !strcmp(end, "h") ? 3600
		    : !strcmp(end, "d") ? 86400 : -1;
	return unit < 0 || v > 366L * 86400 / unit ? -1 : v * unit;
}

static void print_job_json(const Crstream__V1__Job *j, FILE *out)
{
	struct json_object *o = json_object_new_object(), *args = json_object_new_array();
	json_object_object_add(o, "jid", json_object_new_string(j->jid));
	json_object_object_add(o, "pid", json_object_new_int((int)j->pid));
	json_object_object_add(o, "state", json_object_new_string(j->state));
	json_object_object_add(o, "status", json_object_new_string(j->status));
	json_object_object_add(o, "exit_code", json_object_new_int(j->exit_code));
	json_object_object_add(o, "exit_signal", json_object_new_int(j->exit_signal));
	for (size_t i = 0; i < j->n_args; i++)
		json_object_array_add(args, json_object_new_string(j->args[i]));
	json_object_object_add(o, "args", args);
	json_object_object_add(o, "working_dir", json_object_new_string(j->working_dir));
	json_object_object_add(o, "log", json_object_new_string(j->log));
	json_object_object_add(o, "started_ms", json_object_new_int64(j->started_ms));
	json_object_object_add(o, "child", json_object_new_boolean(j->child));
	json_object_object_add(o, "checkpoints", json_object_new_int((int)j->checkpoints));
	json_object_object_add(o, "latest_checkpoint", json_object_new_string(j->latest_checkpoint));
	json_object_object_add(o, "restored_from", json_object_new_string(j->restored_from));
	if (j->policy) {
		struct json_object *p = json_object_new_object();
		json_object_object_add(p, "interval_seconds",
				       json_object_new_int64(j->policy->interval_seconds));
		json_object_object_add(p, "keep", json_object_new_int64(j->policy->keep));
		json_object_object_add(p, "dir", json_object_new_string(j->policy->dir));
		json_object_object_add(p, "next_ms", json_object_new_int64(j->policy->next_ms));
		json_object_object_add(o, "policy", p);
	}
	fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	      out);
	json_object_put(o);
}

static void print_job_line(const Crstream__V1__Job *j)
{
	char cmd[256] = "", policy[32] = "-";
	size_t n = 0;
	for (size_t i = 0; i < j->n_args && n < sizeof(cmd) - 1; i++)
		n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, "%s%s", i ? " " : "", j->args[i]);
	if (j->policy && j->policy->interval_seconds)
		snprintf(policy, sizeof(policy), "every %us, keep %u", j->policy->interval_seconds,
			 j->policy->keep);
	printf("%-20s %8u  %-36s %5u  %-22s %s\n", j->jid, j->pid, j->status, j->checkpoints, policy,
	       cmd);
}

struct job_opts {
	const char *addr;
	const char *jid;
	const char *log;
	const char *pid_file;
	long every;
	long keep;
	const char *policy_dir;
	bool json;
	int signal;
	char *env[64];
	size_t nenv;
};

static const char job_usage[] =
	"Usage: crstream run [options] -- COMMAND [ARGS...]\n"
	"       crstream manage PID [options]\n"
	"       crstream jobs [--json] [JID...]\n"
	"       crstream kill JID [--signal N]\n"
	"\n"
	"Jobs, through the crstream daemon: `run` starts COMMAND as a job (the\n"
	"daemon's child, its output in the job's log, its exit status recorded),\n"
	"`manage` adopts a running process, `jobs` lists them, `kill` signals one\n"
	"(SIGKILL by default). `crstream dump job JID` checkpoints a job;\n"
	"`crstream restore --daemon --path ID` brings it back under its JID.\n"
	"\n"
	"Options:\n"
	"      --daemon ADDR     the daemon (default $CRSTREAM_DAEMON, else\n"
	"                        unix://<daemon.socket>)\n"
	"      --jid JID         the job's ID (default: generated)\n"
	"      --log FILE        run: its stdout and stderr (default\n"
	"                        <daemon.job_logs>/JID.log, on the daemon's side)\n"
	"      --pid-file FILE   run: write the job's pid there\n"
	"      --env K=V         run: its environment (repeatable; default: the\n"
	"                        daemon's)\n"
	"      --every DURATION  a periodic checkpoint (leave-running) every\n"
	"                        DURATION (90s, 10m, 2h)\n"
	"      --keep K          complete periodic checkpoints kept [policy.keep]\n"
	"      --policy-dir DIR  where they go [policy.dir, else checkpoint.dir]\n"
	"      --signal N        kill: the signal number\n"
	"      --json            jobs: JSON lines, one job each; run, manage: the job\n"
	"  -h, --help            this help\n";

static int parse_job_opts(int argc, char **argv, struct job_opts *o, int *first_arg)
{
	static const struct option opts[] = {
		{"daemon", required_argument, NULL, 'D'}, {"jid", required_argument, NULL, 'j'},
		{"log", required_argument, NULL, 'l'},	  {"pid-file", required_argument, NULL, 'p'},
		{"every", required_argument, NULL, 'e'},  {"keep", required_argument, NULL, 'k'},
		{"policy-dir", required_argument, NULL, 'P'}, {"json", no_argument, NULL, 'J'},
		{"signal", required_argument, NULL, 's'}, {"env", required_argument, NULL, 'E'},
		{"help", no_argument, NULL, 'h'},	  {NULL, 0, NULL, 0},
	};
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "crstream %s", argv[1]);
	int c;
	optind = 2;
	/* "+": stop at the first non-option, COMMAND's own options are its. */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'D': o->addr = optarg; break;
		case 'j': o->jid = optarg; break;
		case 'l': o->log = optarg; break;
		case 'p': o->pid_file = optarg; break;
		case 'P': o->policy_dir = optarg; break;
		case 'J': o->json = true; break;
		case 'e':
			if ((o->every = parse_duration(optarg)) <= 0)
				return usage_error(cmd, "--every \"%s\": a duration like 90s, 10m or 2h",
						   optarg);
			break;
		case 'k':
			o->keep = strtol(optarg, &end, 10);
			if (*end || o->keep <= 0 || o->keep > 10000)
				return usage_error(cmd, "--keep \"%s\": a number from 1 to 10000", optarg);
			break;
		case 's':
			o->signal = (int)strtol(optarg, &end, 10);
			if (*end || o->signal <= 0 || o->signal >= NSIG)
				return usage_error(cmd, "--signal \"%s\": a signal number", optarg);
			break;
		case 'E':
			if (o->nenv >= 64 || !strchr(optarg, '='))
				return usage_error(cmd, "--env \"%s\": KEY=VALUE, at most 64", optarg);
			o->env[o->nenv++] = optarg;
			break;
		case 'h':
			fputs(job_usage, stdout);
			return -2;
		default:
			return EXIT_USAGE;
		}
	}
	*first_arg = optind;
	return 0;
}

static Crstream__V1__Policy *policy_of(const struct job_opts *o, Crstream__V1__Policy *p)
{
	if (!o->every && !o->keep && !o->policy_dir)
		return NULL;
	crstream__v1__policy__init(p);
	p->interval_seconds = (uint32_t)o->every;
	p->keep = (uint32_t)o->keep;
	p->dir = o->policy_dir ? (char *)o->policy_dir : p->dir;
	return p;
}

static int show_job(ProtobufCMessage *m, const struct job_opts *o, const char *verb)
{
	const Crstream__V1__Job *j = (const Crstream__V1__Job *)m;
	if (o->json) {
		print_job_json(j, stdout);
		putchar('\n');
	} else {
		printf("job %s: %s%s (pid %u)%s%s\n", j->jid, verb, j->status, j->pid,
		       j->log[0] ? ", log " : "", j->log);
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

static int job_cmd_run(int argc, char **argv, struct job_opts *o, int first, const char *addr)
{
	if (first >= argc)
		return usage_error("crstream run", "missing the command: crstream run [options] -- CMD");
	Crstream__V1__RunRequest req = CRSTREAM__V1__RUN_REQUEST__INIT;
	Crstream__V1__Policy policy;
	char cwd[4096];
	req.args = argv + first;
	req.n_args = (size_t)(argc - first);
	if (getcwd(cwd, sizeof(cwd)))
		req.working_dir = cwd;
	req.env = o->env;
	req.n_env = o->nenv;
	if (o->jid)
		req.jid = (char *)o->jid;
	if (o->log)
		req.log = (char *)o->log;
	if (o->pid_file)
		req.pid_file = (char *)o->pid_file;
	req.policy = policy_of(o, &policy);
	ProtobufCMessage *m;
	if (unary(addr, V1 "Run", &req.base, &crstream__v1__job__descriptor, &m) < 0) {
		err_print(NULL);
		return 1;
	}
	return show_job(m, o, "");
}

static int job_cmd_manage(int argc, char **argv, struct job_opts *o, int first, const char *addr)
{
	char *end;
	long pid = first + 1 == argc ? strtol(argv[first], &end, 10) : 0;
	if (first + 1 != argc || *end || pid <= 0)
		return usage_error("crstream manage", "usage: crstream manage PID [options]");
	Crstream__V1__ManageRequest req = CRSTREAM__V1__MANAGE_REQUEST__INIT;
	Crstream__V1__Policy policy;
	req.pid = (uint32_t)pid;
	if (o->jid)
		req.jid = (char *)o->jid;
	req.policy = policy_of(o, &policy);
	ProtobufCMessage *m;
	if (unary(addr, V1 "Manage", &req.base, &crstream__v1__job__descriptor, &m) < 0) {
		err_print(NULL);
		return 1;
	}
	return show_job(m, o, "");
}

static int job_cmd_list(int argc, char **argv, struct job_opts *o, int first, const char *addr)
{
	Crstream__V1__ListJobsRequest req = CRSTREAM__V1__LIST_JOBS_REQUEST__INIT;
	req.jids = argv + first;
	req.n_jids = (size_t)(argc - first);
	ProtobufCMessage *m;
	if (unary(addr, V1 "ListJobs", &req.base, &crstream__v1__list_jobs_response__descriptor, &m) < 0) {
		err_print(NULL);
		return 1;
	}
	const Crstream__V1__ListJobsResponse *r = (const Crstream__V1__ListJobsResponse *)m;
	if (o->json) {
		for (size_t i = 0; i < r->n_jobs; i++) {
			print_job_json(r->jobs[i], stdout);
			putchar('\n');
		}
	} else {
		printf("%-20s %8s  %-36s %5s  %-22s %s\n", "JID", "PID", "STATE", "CKPTS", "POLICY",
		       "COMMAND");
		for (size_t i = 0; i < r->n_jobs; i++)
			print_job_line(r->jobs[i]);
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

static int job_cmd_kill(int argc, char **argv, struct job_opts *o, int first, const char *addr)
{
	if (first + 1 != argc)
		return usage_error("crstream kill", "usage: crstream kill JID [--signal N]");
	Crstream__V1__KillRequest req = CRSTREAM__V1__KILL_REQUEST__INIT;
	req.jid = argv[first];
	req.signal = o->signal;
	ProtobufCMessage *m;
	if (unary(addr, V1 "Kill", &req.base, &crstream__v1__job__descriptor, &m) < 0) {
		err_print(NULL);
		return 1;
	}
	return show_job(m, o, "");
}

static int command(int argc, char **argv)
{
	struct job_opts o = {0};
	int first = 2;
	int rc = parse_job_opts(argc, argv, &o, &first);
	if (rc)
		return rc == -2 ? 0 : rc;
	char buf[256];
	const char *addr = address(o.addr, buf, sizeof(buf));
	if (!addr) {
		err_print(NULL);
		return 1;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "run"))
		return job_cmd_run(argc, argv, &o, first, addr);
	if (!strcmp(cmd, "manage"))
		return job_cmd_manage(argc, argv, &o, first, addr);
	if (!strcmp(cmd, "jobs"))
		return job_cmd_list(argc, argv, &o, first, addr);
	return job_cmd_kill(argc, argv, &o, first, addr);
}



const struct daemon_plugin crstream_daemon_plugin = {
	.daemon_main = daemon_main,
	.command = command,
	.dump = remote_dump,
	.restore = remote_restore,
	.ls = remote_ls,
	.rm = remote_rm,
	.health = remote_health,
};
