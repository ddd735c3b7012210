/* `crstream daemon-worker PPID`: one daemon operation in a process of its
 * own (see worker.h for why and for the protocol). */
#include "daemon/worker.h"
#include "checkpoint/checksum.h"
#include "checkpoint/dump.h"
#include "checkpoint/manifest.h"
#include "checkpoint/restore.h"
#include "checkpoint/session.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "store/store.h"
#include "util/err.h"
#include "util/fdio.h"

#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

struct worker {
	struct json_object *req;
	struct config *cfg;
	struct store_options so;
	char criu[4096];
	char self[4096];
};

/* ---- the request ---- */

static const char *req_string(struct worker *w, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(w->req, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool req_bool(struct worker *w, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(w->req, key, &v) && json_object_get_boolean(v);
}

static bool req_has(struct worker *w, const char *key)
{
	return json_object_object_get_ex(w->req, key, NULL);
}

static int64_t req_int(struct worker *w, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(w->req, key, &v) ? json_object_get_int64(v) : 0;
}

/* Request fields that stand for configuration keys are set as flags
 * would be, so that the CLI's resolution applies to them unchanged. */
static int req_to_flag(struct worker *w, const char *field, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(w->req, field, &v))
		return 0;
	if (config_set_flag(w->cfg, key, json_object_get_string(v)) < 0)
		return err_prefix("request field %s", field);
	return 0;
}

/* The strings of an array field into list (at most max). */
static int req_strings(struct worker *w, const char *key, char **list, int max)
{
	struct json_object *a;
	if (!json_object_object_get_ex(w->req, key, &a) || !json_object_is_type(a, json_type_array))
		return 0;
	int n = 0;
	for (size_t i = 0; i < json_object_array_length(a) && n < max; i++)
		list[n++] = (char *)json_object_get_string(json_object_array_get_idx(a, i));
	return n;
}

/* The CRIU flags a dump and a restore request carry alike (ops.c writes
 * them with json_add_criu_flags). */
struct req_criu_flags {
	int shell_job;		/* -1: not in the request */
	bool tcp_established, file_locks, ext_unix_sk;
	char *external[WORKER_EXTERNAL_MAX];
	int nexternal;
};

static void req_criu_flags(struct worker *w, struct req_criu_flags *f)
{
	f->shell_job = req_has(w, "shell_job") ? req_bool(w, "shell_job") : -1;
	f->tcp_established = req_bool(w, "tcp_established");
	f->file_locks = req_bool(w, "file_locks");
	f->ext_unix_sk = req_bool(w, "ext_unix_sk");
	f->nexternal = req_strings(w, "external", f->external, WORKER_EXTERNAL_MAX);
}

static struct json_object *read_request(void)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	ssize_t n;
	while (buf && (n = read(STDIN_FILENO, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap) {
			char *nb = cap < (1 << 20) ? realloc(buf, cap * 2) : NULL;
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (!buf) {
		err_set("request: too large or out of memory");
		return NULL;
	}
	buf[len] = '\0';
	struct json_object *req = json_tokener_parse(buf);
	free(buf);
	if (!req || !json_object_is_type(req, json_type_object)) {
		json_object_put(req);
		err_set("request: not a JSON object");
		return NULL;
	}
	return req;
}

/* ---- events ---- */

static FILE *events;

/* Progress lines are dropped rather than wait: a daemon slow to read must
 * never stall a dump whose tree is frozen. The result line waits. */
static void emit_progress(void *arg, const struct ckpt_progress *p)
{
	(void)arg;
	char line[512];
	int n = snprintf(line, sizeof(line),
			 "progress {\"op\":\"%s\",\"phase\":\"%s\",\"streams\":%d,\"elapsed_ms\":%llu,"
			 "\"captured_bytes\":%llu,\"done_bytes\":%llu,\"total_bytes\":%llu,"
			 "\"stored_bytes\":%llu,\"rate\":%llu,\"eta_ms\":%lld}\n",
			 p->op, ckpt_phase_name(p->phase), p->streams,
			 (unsigned long long)p->elapsed_ms, (unsigned long long)p->captured_bytes,
			 (unsigned long long)p->done_bytes, (unsigned long long)p->total_bytes,
			 (unsigned long long)p->stored_bytes, (unsigned long long)p->rate,
			 (long long)p->eta_ms);
	if (n > 0 && (size_t)n < sizeof(line))
		(void)!write(WORKER_EVENTS_FD, line, (size_t)n);
}

/* The final line: "result " and the object text (which ends in "\n"). */
static void emit_result(const char *object)
{
	set_nonblock(WORKER_EVENTS_FD, false);
	fprintf(events, "result %s", object);
	if (object[0] && object[strlen(object) - 1] != '\n')
		fputc('\n', events);
	fflush(events);
}

static void emit_error(void)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string("error"));
	json_object_object_add(o, "error", json_object_new_string(err_msg()[0] ? err_msg()
									 : "unknown error"));
	emit_result(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

/* ---- operations ---- */

/* The manifest of the checkpoint at location: 0, 1 if it has none, -1. */
static int read_manifest(struct worker *w, const char *location, char **text, size_t *len)
{
	struct store *s;
	if (store_open(location, &w->so, &s) < 0)
		return -1;
	void *buf = NULL;
	int rc = s->ops->get(s, MANIFEST_NAME, &buf, len);
	store_close(s);
	*text = buf;
	return rc;
}

static void checksum_text(const char *text, size_t len, char hex[CHECKSUM_HEX + 1])
{
	struct checksum_state *st = checksum_new();
	struct checksum_result res = {0};
	hex[0] = '\0';
	if (!st)
		return;
	checksum_update(st, text, len);
	checksum_final(st, &res);
	checksum_free(st);
	snprintf(hex, CHECKSUM_HEX + 1, "%s", res.hex);
}

/* dump_result_json()'s text, without its newline (malloc'd). */
static char *dump_json_text(const struct dump_result *r, int rc)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);
	if (!f)
		return NULL;
	dump_result_json(f, r, rc);
	fclose(f);
	if (size && text[size - 1] == '\n')
		text[size - 1] = '\0';
	return text;
}

static int op_dump(struct worker *w)
{
	struct dump_opts o = {0};
	struct req_criu_flags flags;
	char *criu_opts[1];
	if (req_to_flag(w, "streams", "checkpoint.streams") < 0 ||
	    req_to_flag(w, "compression", "checkpoint.compression") < 0 ||
	    req_to_flag(w, "level", "checkpoint.level") < 0 ||
	    req_to_flag(w, "dir", "checkpoint.dir") < 0 ||
	    req_to_flag(w, "leave_running", "criu.leave_running") < 0)
		return -1;
	o.pid = (pid_t)req_int(w, "pid");
	o.name = req_string(w, "name");
	req_criu_flags(w, &flags);
	o.shell_job = flags.shell_job;
	o.tcp_established = flags.tcp_established;
	o.file_locks = flags.file_locks;
	o.ext_unix_sk = flags.ext_unix_sk;
	o.nexternal = flags.nexternal;
	o.external = flags.external;
	o.criu_opts = criu_opts;
	if (dump_opts_resolve(w->cfg, &o, w->criu, sizeof(w->criu)) != 0)
		return -1;
	o.self = w->self;
	o.store_opt = &w->so;
	o.progress = (struct ckpt_progress_sink){emit_progress, NULL};
	struct dump_result r;
	int rc = session_block_signals();
	if (rc == 0)
		rc = checkpoint_dump(&o, &r);
	else
		memset(&r, 0, sizeof(r));
	char hex[CHECKSUM_HEX + 1] = "";
	char *manifest = NULL;
	size_t len;
	char saved[ERR_MAX];
	err_copy(saved, sizeof(saved));
	if (rc == 0 && read_manifest(w, r.location, &manifest, &len) == 0)
		checksum_text(manifest, len, hex);
	free(manifest);
	err_set("%s", saved);
	char *obj = dump_json_text(&r, rc);
	if (!obj)
		return err_set("out of memory");
	char *line = NULL;
	if (asprintf(&line, "{\"result\":%s,\"manifest_checksum\":\"%s\"}", obj, hex) < 0)
		line = NULL;
	free(obj);
	if (!line)
		return err_set("out of memory");
	emit_result(line);
	free(line);
	return 0;
}

static int op_restore(struct worker *w)
{
	struct restore_opts o = {.detach = true};
	struct req_criu_flags flags;
	char *criu_opts[2 + 2 * WORKER_EXTERNAL_MAX];
	o.path = req_string(w, "path");
	if (!o.path)
		return err_set("request: no path");
	o.pid_file = req_string(w, "pid_file");
	req_criu_flags(w, &flags);
	o.shell_job = flags.shell_job;
	o.tcp_established = flags.tcp_established;
	o.tcp_close = req_bool(w, "tcp_close");
	/* restore_opts takes the other flags as options for CRIU, as the
	 * CLI's --criu-opt does. */
	if (flags.ext_unix_sk)
		criu_opts[o.ncriu_opts++] = "--ext-unix-sk";
	if (flags.file_locks)
		criu_opts[o.ncriu_opts++] = "--file-locks";
	for (int i = 0; i < flags.nexternal; i++) {
		criu_opts[o.ncriu_opts++] = "--external";
		criu_opts[o.ncriu_opts++] = flags.external[i];
	}
	o.criu_opts = criu_opts;
	o.memory_limit = config_uint(w->cfg, "restore.memory_limit");
	o.spill_limit = config_uint(w->cfg, "restore.spill_limit");
	/* Keys and the trust policy: the daemon's own configuration, never
	 * the request's (no request field maps to these keys). */
	o.identities = config_get(w->cfg, "restore.identities");
	o.trusted_keys = config_get(w->cfg, "restore.trusted_keys");
	o.verify_first = config_is_set(w->cfg, "restore.verify_first")
				 ? config_bool(w->cfg, "restore.verify_first")
				 : -1;
	if (resolve_program(config_get(w->cfg, "criu.path"), w->criu, sizeof(w->criu)) < 0)
		return -1;
	o.criu = w->criu;
	o.self = w->self;
	o.store_opt = &w->so;
	o.progress = (struct ckpt_progress_sink){emit_progress, NULL};
	struct restore_result r = {0};
	int rc = session_block_signals();
	if (rc == 0)
		rc = checkpoint_restore(&o, &r);
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);
	if (!f)
		return err_set("out of memory");
	fputs("{\"result\":", f);
	restore_result_json(f, o.path, &r, rc);
	fseek(f, -1, SEEK_CUR);	/* over the object's newline */
	fputs("}", f);
	fclose(f);
	emit_result(text);
	free(text);
	return 0;
}

static int count_object(const struct store_entry *e, void *arg)
{
	(void)e;
	(*(size_t *)arg)++;
	return 0;
}

static int op_remove(struct worker *w)
{
	const char *location = req_string(w, "location");
	struct store *s;
	size_t objects = 0;
	if (!location)
		return err_set("request: no location");
	if (store_open(location, &w->so, &s) < 0)
		return -1;
	int rc = remove_checkpoint(s, location, &objects);
	/* Gone already (removed by hand, or never written): nothing to do. */
	if (rc < 0 && req_bool(w, "missing_ok")) {
		objects = 0;
		if (s->ops->list(s, "", count_object, &objects) == 0 && objects == 0)
			rc = 0;
	}
	store_close(s);
	if (rc < 0)
		return -1;
	char line[64];
	snprintf(line, sizeof(line), "{\"status\":\"ok\",\"objects\":%zu}", objects);
	emit_result(line);
	return 0;
}

static int op_manifest(struct worker *w)
{
	const char *location = req_string(w, "location");
	char *text;
	size_t len;
	if (!location)
		return err_set("request: no location");
	int rc = read_manifest(w, location, &text, &len);
	if (rc < 0)
		return -1;
	struct json_object *o = json_object_new_object();
	if (rc == 1) {
		json_object_object_add(o, "status", json_object_new_string("missing"));
	} else {
		struct manifest m;
		char hex[CHECKSUM_HEX + 1];
		bool complete = false;
		if (manifest_parse(text, &m) == 0) {
			complete = m.complete;
			manifest_free(&m);
		}
		checksum_text(text, len, hex);
		json_object_object_add(o, "status", json_object_new_string("ok"));
		json_object_object_add(o, "manifest", json_object_new_string_len(text, (int)len));
		json_object_object_add(o, "complete", json_object_new_boolean(complete));
		json_object_object_add(o, "checksum", json_object_new_string(hex));
		free(text);
	}
	emit_result(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return 0;
}

static void collect_check(void *arg, const char *area, const char *name, enum check_level level,
			  const char *msg)
{
	struct json_object *a = arg, *o = json_object_new_object();
	json_object_object_add(o, "area", json_object_new_string(area));
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "level", json_object_new_string(level == CHECK_OK ? "ok"
								  : level == CHECK_WARN ? "warn"
											: "fail"));
	json_object_object_add(o, "message", json_object_new_string(msg));
	json_object_array_add(a, o);
}

static int op_health(struct worker *w)
{
	struct json_object *o = json_object_new_object(), *checks = json_object_new_array();
	run_checks(w->cfg, req_string(w, "dir"), req_bool(w, "full"),
		   &(struct check_sink){collect_check, checks});
	json_object_object_add(o, "status", json_object_new_string("ok"));
	json_object_object_add(o, "checks", checks);
	emit_result(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(struct worker *w);
} ops[] = {
	{"dump", op_dump},	   {"restore", op_restore}, {"remove", op_remove},
	{"manifest", op_manifest}, {"health", op_health},
};

static int run(struct worker *w)
{
	const char *op = req_string(w, "op");
	for (size_t i = 0; op && i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(ops[i].name, op))
			return ops[i].fn(w);
	return err_set("request: unknown op \"%s\"", op ? op : "");
}

int cmd_daemon_worker(int argc, char **argv)
{
	/* Die with the daemon: a dump whose daemon is gone must not finish
	 * (its post-dump hook then cannot be reached and CRIU resumes the
	 * tree). The parent check closes the race with a daemon that died
	 * before the prctl. */
	if (argc != 3 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
	    getppid() != (pid_t)strtol(argv[2], NULL, 10)) {
		fprintf(stderr, "crstream: %s is run by the daemon, not by hand\n", WORKER_COMMAND);
		return EXIT_USAGE;
	}
	err_progname = "crstream daemon-worker";
	events = fdopen(WORKER_EVENTS_FD, "w");
	if (!events || set_nonblock(WORKER_EVENTS_FD, true) < 0) {
		fprintf(stderr, "crstream: %s: no events pipe on fd %d\n", WORKER_COMMAND,
			WORKER_EVENTS_FD);
		return EXIT_USAGE;
	}
	struct worker w = {0};
	int rc = -1;
	w.req = read_request();
	if (w.req && config_load(&w.cfg) == 0 && self_path(w.self, sizeof(w.self)) == 0) {
		w.so = (struct store_options){.config = config_lookup, .ctx = w.cfg};
		rc = run(&w);
	}
	if (rc < 0)
		emit_error();
	fclose(events);
	config_free(w.cfg);
	json_object_put(w.req);
	return rc < 0 ? 1 : 0;
}
