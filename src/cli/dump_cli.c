/* `crstream dump <pid>` */
#include "checkpoint/dump.h"
#include "checkpoint/manifest.h"
#include "checkpoint/session.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "daemon/plugin.h"
#include "util/err.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char dump_usage[] =
	"Usage: crstream dump <pid> [options]\n"
	"       crstream dump process <pid> [options]   (the same; Cedana's spelling)\n"
	"       crstream dump job <JID> [options]       (a job of the daemon)\n"
	"\n"
	"Checkpoints the process tree rooted at <pid> through N parallel compressed\n"
	"streams into DIR/NAME: img-0 .. img-(N-1) (with the codec's extension),\n"
	"manifest.json and criu-dump.log. The checkpoint is complete and durable\n"
	"before CRIU kills the tree; if anything fails first, the tree keeps running\n"
	"and the checkpoint is left marked incomplete.\n"
	"\n"
	"Options (defaults from the config file and CRSTREAM_* variables; see\n"
	"`crstream config show`):\n"
	"  -n, --streams N         parallel streams, 1-64; 0 = plain CRIU image\n"
	"                          directory, no streaming     [checkpoint.streams]\n"
	"  -d, --dir DIR           a directory, s3://bucket/prefix or gs://bucket/prefix\n"
	"                                                      [checkpoint.dir]\n"
	"      --name NAME         checkpoint name (default dump-<pid>-<UTC time>)\n"
	"  -c, --compression C     none, lz4, zstd, gzip, zlib, or auto: zstd whose\n"
	"                          level follows the bottleneck (upload or CPU)\n"
	"                                                      [checkpoint.compression]\n"
	"  -l, --level L           compression level (auto: the highest it may use)\n"
	"                                                      [checkpoint.level]\n"
	"  -R, --leave-running     keep the tree running after the dump\n"
	"                                                      [criu.leave_running]\n"
	"      --shell-job         the tree is not a session leader (automatic)\n"
	"      --tcp-established   checkpoint established TCP connections\n"
	"      --file-locks        checkpoint file locks\n"
	"      --ext-unix-sk       allow external UNIX sockets\n"
	"      --external RES      CRIU --external (repeatable)\n"
	"      --criu-opt OPT      pass OPT to `criu dump` (repeatable)\n"
	"  -r, --recipient R       encrypt every stream with age to R (age1..., from\n"
	"                          crstream keygen or age-keygen; repeatable)\n"
	"                                                      [checkpoint.recipients]\n"
	"      --recipients-file F encrypt to every recipient listed in F (repeatable)\n"
	"      --sign-key FILE     sign the manifest with this Ed25519 key (crstream\n"
	"                          keygen --sign; must be private)\n"
	"                                                      [checkpoint.sign_key]\n"
	"      --json              print the result as JSON on stdout\n"
	"      --no-progress       no progress line on the terminal\n"
	"      --daemon [ADDR]     through the crstream daemon at ADDR (default\n"
	"                          $CRSTREAM_DAEMON, else unix://<daemon.socket>);\n"
	"                          $CRSTREAM_DAEMON alone does the same. Options not\n"
	"                          given take the daemon's configuration\n"
	"  -h, --help              this help\n"
	"\n"
	"Example: crstream dump 1234 --streams 4 --compression zstd --dir /var/ckpt\n"
	"Exit status: 0 when the checkpoint is complete, 1 on failure, 2 on misuse.\n";

enum {
	O_NAME = 1000, O_SHELL, O_TCP, O_LOCKS, O_EXTUNIX, O_EXTERNAL, O_CRIUOPT, O_JSON,
	O_NOPROGRESS, O_RECIPIENTS_FILE, O_SIGN_KEY
};

static const struct option opts[] = {
	{"streams", required_argument, NULL, 'n'},
	{"dir", required_argument, NULL, 'd'},
	{"name", required_argument, NULL, O_NAME},
	{"compression", required_argument, NULL, 'c'},
	{"level", required_argument, NULL, 'l'},
	{"leave-running", no_argument, NULL, 'R'},
	{"shell-job", no_argument, NULL, O_SHELL},
	{"tcp-established", no_argument, NULL, O_TCP},
	{"file-locks", no_argument, NULL, O_LOCKS},
	{"ext-unix-sk", no_argument, NULL, O_EXTUNIX},
	{"external", required_argument, NULL, O_EXTERNAL},
	{"criu-opt", required_argument, NULL, O_CRIUOPT},
	{"recipient", required_argument, NULL, 'r'},
	{"recipients-file", required_argument, NULL, O_RECIPIENTS_FILE},
	{"sign-key", required_argument, NULL, O_SIGN_KEY},
	{"json", no_argument, NULL, O_JSON},
	{"no-progress", no_argument, NULL, O_NOPROGRESS},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

struct dump_args {
	struct dump_opts o;
	char *external[64];
	char *criu_opts[64];
	struct flag_list recipients;
	bool key_flags;			/* --recipient, --recipients-file, --sign-key */
	bool json;
	bool no_progress;
	const char *jid;		/* `dump job JID` */
	/* What the command line said, for a dump through the daemon. */
	const char *streams, *dir, *compression, *level;
	bool leave_running;
};

static int add_list(char **list, int *n, const char *v, const char *what)
{
	if (*n >= 64)
		return usage_error("crstream dump", "too many %s options", what);
	list[(*n)++] = (char *)v;
	return 0;
}

static int parse(int argc, char **argv, struct config *cfg, struct dump_args *a, bool *help)
{
	int c, rc = 0;
	optind = 1;
	while (rc == 0 && (c = getopt_long(argc, argv, "n:d:c:l:Rr:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			a->streams = optarg;
			if (config_set_flag(cfg, "checkpoint.streams", optarg) < 0)
				rc = usage_error("crstream dump", "--streams: \"%s\" is not a number", optarg);
			break;
		case 'd':
			a->dir = optarg;
			rc = config_set_flag(cfg, "checkpoint.dir", optarg);
			break;
		case 'c':
			a->compression = optarg;
			if (config_set_flag(cfg, "checkpoint.compression", optarg) < 0)
				rc = usage_error("crstream dump", "unknown compression \"%s\" (use %s)",
						 optarg, codec_names());
			break;
		case 'l':
			a->level = optarg;
			if (config_set_flag(cfg, "checkpoint.level", optarg) < 0)
				rc = usage_error("crstream dump", "--level: \"%s\" is not a number", optarg);
			break;
		case 'R':
			a->leave_running = true;
			rc = config_set_flag(cfg, "criu.leave_running", "true");
			break;
		case O_NAME: a->o.name = optarg; break;
		case O_SHELL: a->o.shell_job = 1; break;
		case O_TCP: a->o.tcp_established = true; break;
		case O_LOCKS: a->o.file_locks = true; break;
		case O_EXTUNIX: a->o.ext_unix_sk = true; break;
		case O_EXTERNAL: rc = add_list(a->external, &a->o.nexternal, optarg, "--external"); break;
		case O_CRIUOPT: rc = add_list(a->criu_opts, &a->o.ncriu_opts, optarg, "--criu-opt"); break;
		case 'r':
		case O_RECIPIENTS_FILE: rc = flag_list_add(&a->recipients, optarg); break;
		case O_SIGN_KEY:
			a->key_flags = true;
			rc = config_set_flag(cfg, "checkpoint.sign_key", optarg);
			break;
		case O_JSON: a->json = true; break;
		case O_NOPROGRESS: a->no_progress = true; break;
		case 'h': *help = true; return 0;
		default: return EXIT_USAGE;
		}
	}
	a->key_flags |= a->recipients.n > 0;
	if (rc == 0 && a->recipients.n)
		rc = config_set_flag(cfg, "checkpoint.recipients", a->recipients.joined);
	if (rc < 0)
		return usage_error("crstream dump", "%s", err_msg());
	if (rc)
		return rc;
	if (optind + 2 != argc)	/* argv[1] is "dump" */
		return usage_error("crstream dump", optind + 2 > argc ? (a->jid ? "missing <JID>" : "missing <pid>") :
				   "unexpected argument \"%s\"", argv[optind + 2 > argc ? 0 : optind + 2]);
	const char *pid = argv[optind + 1];
	if (a->jid) {
		a->jid = pid;
		return 0;
	}
	char *end;
	long v = strtol(pid, &end, 10);
	if (!*pid || *end || v <= 0 || v > 4194304)
		return usage_error("crstream dump", "\"%s\" is not a process id", pid);
	a->o.pid = (pid_t)v;
	return 0;
}

int dump_opts_resolve(struct config *cfg, struct dump_opts *o, char *criu, size_t size)
{
	uint64_t streams = config_uint(cfg, "checkpoint.streams");
	if (streams > STREAMS_MAX) {
		err_set("--streams %llu: at most %d streams", (unsigned long long)streams, STREAMS_MAX);
		return EXIT_USAGE;
	}
	o->streams = (int)streams;
	o->dir = config_get(cfg, "checkpoint.dir");
	o->codec = codec_by_name(config_get(cfg, "checkpoint.compression"));
	o->level = config_is_set(cfg, "checkpoint.level") ? (int)config_int(cfg, "checkpoint.level")
							   : o->codec->default_level;
	if (o->streams && (o->level < o->codec->min_level || o->level > o->codec->max_level)) {
		err_set("--level %d: %s takes %d to %d", o->level, o->codec->name,
			o->codec->min_level, o->codec->max_level);
		return EXIT_USAGE;
	}
	o->leave_running = config_bool(cfg, "criu.leave_running");
	o->recipients = config_get(cfg, "checkpoint.recipients");
	o->sign_key = config_get(cfg, "checkpoint.sign_key");
	if (o->streams == 0 && (*o->recipients || *o->sign_key)) {
		err_set("--streams 0 (a plain CRIU image directory) cannot be encrypted or signed: "
			"CRIU writes its files in the clear; use --streams 1 or more");
		return EXIT_USAGE;
	}
	if (require_privilege("dump") < 0 || find_criu(config_get(cfg, "criu.path"), criu, size) < 0)
		return -1;
	o->criu = criu;
	return 0;
}

void dump_result_json(FILE *out, const struct dump_result *r, int rc)
{
	if (rc < 0) {
		fprintf(out, "{\"status\":\"error\",\"error\":");
		json_print_string(out, err_msg());
		fprintf(out, ",\"checkpoint\":");
		json_print_string(out, r->location);
		fprintf(out, ",\"process_running\":%s", r->process_running ? "true" : "false");
		if (r->process_state)
			fprintf(out, ",\"process_state\":\"%s\"", r->process_state);
		fprintf(out, "}\n");
		return;
	}
	fprintf(out, "{\"status\":\"ok\",\"encrypted\":%s,\"signed\":%s,\"checkpoint\":",
		r->encrypted ? "true" : "false", r->signed_manifest ? "true" : "false");
	json_print_string(out, r->location);
	fprintf(out, ",\"name\":");
	json_print_string(out, r->name);
	fprintf(out, ",\"streams\":%d,\"compression\":\"%s\",\"image_bytes\":%llu,\"stored_bytes\":%llu,"
		"\"compression_ratio\":%.3f,\"frozen_ms\":%.1f,\"criu_ms\":%llu,\"dump_ms\":%llu",
		r->streams, r->compression, (unsigned long long)r->image_bytes,
		(unsigned long long)r->stored_bytes,
		r->stored_bytes ? (double)r->image_bytes / (double)r->stored_bytes : 1.0,
		(double)r->frozen_us / 1000.0, (unsigned long long)r->criu_ms,
		(unsigned long long)r->dump_ms);
	print_self_usage_json(out);
	fprintf(out, "}\n");
}

/* The dump through a daemon: the options the command line gave, the
 * rest the daemon's configuration. */
static int dump_remote(const char *addr, struct dump_args *a, bool *line_drawn)
{
	if (a->o.ncriu_opts)
		return usage_error("crstream dump", "--criu-opt is not available through the daemon");
	/* Keys are the daemon's own (its checkpoint.recipients and
	 * checkpoint.sign_key), never a request's. */
	if (a->key_flags)
		return usage_error("crstream dump", "--recipient, --recipients-file and --sign-key are "
				   "not available through the daemon: it encrypts and signs with its own "
				   "checkpoint.recipients and checkpoint.sign_key");
	const struct daemon_plugin *p = daemon_plugin("crstream dump --daemon");
	if (!p) {
		err_print(NULL);
		return 1;
	}
	char *end;
	struct remote_dump rq = {
		.pid = a->o.pid, .jid = a->jid, .dir = a->dir, .name = a->o.name,
		.compression = a->compression, .streams = a->streams ? (int)strtol(a->streams, &end, 10) : -1,
		.level = a->level ? (int)strtol(a->level, &end, 10) : 0,
		.leave_running = a->leave_running, .shell_job = a->o.shell_job,
		.tcp_established = a->o.tcp_established, .file_locks = a->o.file_locks,
		.ext_unix_sk = a->o.ext_unix_sk, .external = a->external, .nexternal = a->o.nexternal,
	};
	if (rq.streams > STREAMS_MAX)
		return usage_error("crstream dump", "--streams %d: at most %d streams", rq.streams,
				   STREAMS_MAX);
	struct ckpt_progress_sink sink = {0};
	if (!a->json && !a->no_progress && isatty(STDERR_FILENO))
		sink = (struct ckpt_progress_sink){progress_line_render, line_drawn};
	struct remote_result res;
	int rc = p->dump(addr, &rq, &sink, &res);
	if (a->json && res.json)
		printf("%s\n", res.json);
	else if (a->json)
		dump_result_json(stdout, &res.dump, -1);
	else if (rc < 0)
		err_print(NULL);
	else {
		print_dump_summary(&res.dump);
		printf("  catalog ID %s%s%s\n", res.checkpoint_id, res.jid[0] ? ", job " : "", res.jid);
	}
	free(res.json);
	return rc < 0 ? 1 : 0;
}

int cmd_dump(int argc, char **argv)
{
	struct dump_args a = {.o.shell_job = -1};
	struct config *cfg = NULL;
	char criu[4096], self[4096], addr_buf[256];
	bool help = false;
	const char *flag_addr;
	bool via_daemon = take_daemon_flag(&argc, argv, &flag_addr);
	/* `dump process PID` is Cedana's `dump PID`; `dump job JID` names a
	 * job of the daemon. */
	if (argc > 2 && (!strcmp(argv[2], "job") || !strcmp(argv[2], "process"))) {
		if (!strcmp(argv[2], "job"))
			a.jid = "";
		memmove(&argv[2], &argv[3], (size_t)(argc - 2) * sizeof(char *));
		argc--;
	}
	if (config_load(&cfg) < 0) {
		if (asks_for_help(argc, argv)) {
			fputs(dump_usage, stdout);
			return 0;
		}
		err_print(NULL);
		return 1;
	}
	int rc = parse(argc, argv, cfg, &a, &help);
	flag_list_free(&a.recipients);
	if (help) {
		fputs(dump_usage, stdout);
		config_free(cfg);
		return 0;
	}
	const char *addr = rc ? NULL : daemon_target(via_daemon || a.jid, flag_addr, addr_buf,
						     sizeof(addr_buf));
	if (addr) {
		config_free(cfg);
		bool line_drawn = false;
		a.o.external = a.external;
		return dump_remote(addr, &a, &line_drawn);
	}
	if (rc == 0) {
		rc = dump_opts_resolve(cfg, &a.o, criu, sizeof(criu));
		if (rc == EXIT_USAGE)
			usage_error("crstream dump", "%s", err_msg());
	}
	if (rc == 0 && self_path(self, sizeof(self)) < 0)
		rc = -1;
	if (rc) {
		if (rc < 0)
			err_print(NULL);
		config_free(cfg);
		return rc < 0 ? 1 : rc;
	}
	a.o.external = a.external;
	a.o.criu_opts = a.criu_opts;
	a.o.self = self;
	struct store_options so = {.config = config_lookup, .ctx = cfg};
	a.o.store_opt = &so;
	bool line_drawn = false;
	if (!a.json && !a.no_progress && isatty(STDERR_FILENO))
		a.o.progress = (struct ckpt_progress_sink){progress_line_render, &line_drawn};
	struct dump_result r;
	rc = session_block_signals();
	if (rc == 0)
		rc = checkpoint_dump(&a.o, &r);
	if (a.json)
		dump_result_json(stdout, &r, rc);
	else if (rc < 0)
		err_print(NULL);
	else
		print_dump_summary(&r);
	config_free(cfg);
	return rc < 0 ? 1 : 0;
}
