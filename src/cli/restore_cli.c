/* `crstream restore --path CHECKPOINT` */
#include "checkpoint/restore.h"
#include "checkpoint/session.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "daemon/plugin.h"
#include "util/err.h"
#include "util/fmt.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char restore_usage[] =
	"Usage: crstream restore [--path] CHECKPOINT [options]\n"
	"\n"
	"Restores a checkpoint made by `crstream dump` (or by criu-image-streamer or\n"
	"Cedana setups: img-N[.lz4|.gz|.zlib|.zst] streams without a manifest). The\n"
	"stream count, compression and encryption are detected. Streams are fetched, checked and\n"
	"decompressed in parallel while CRIU restores; the restored tree only runs\n"
	"once every stream has been read to its end and matched its checksum, so a\n"
	"damaged checkpoint is refused, never half-restored. The tree runs detached.\n"
	"\n"
	"Options (defaults from the config file and CRSTREAM_* variables; see\n"
	"`crstream config show`):\n"
	"  -p, --path CHECKPOINT   DIR/NAME, s3://bucket/prefix/NAME or gs://...\n"
	"                          (or CHECKPOINT as the argument)\n"
	"      --pid-file FILE     write the restored root's pid to FILE\n"
	"      --shell-job         restore as a shell job (default: as dumped)\n"
	"      --tcp-established   restore established TCP connections\n"
	"      --tcp-close         restore established TCP connections closed\n"
	"      --leave-stopped     leave the restored tasks stopped\n"
	"      --memory-limit SIZE\n"
	"                          image data held in memory before spilling to\n"
	"                          $TMPDIR (e.g. 256M)        [restore.memory_limit]\n"
	"      --criu-opt OPT      pass OPT to `criu restore` (repeatable)\n"
	"  -i, --identity FILE     age identity file to decrypt an encrypted checkpoint\n"
	"                          (repeatable; must be private)  [restore.identities]\n"
	"      --trusted-key FILE  accept only a checkpoint signed by this key (.pub,\n"
	"                          repeatable): unsigned, foreign-signed or altered\n"
	"                          checkpoints are refused before CRIU starts, and\n"
	"                          every chunk is verified before CRIU sees it\n"
	"                                                      [restore.trusted_keys]\n"
	"      --verify-first      start CRIU only once every stream has been read\n"
	"                          and verified: a checkpoint refused anywhere gives\n"
	"                          CRIU nothing. The default under a trust policy\n"
	"                          (the verified stored bytes are held in $TMPDIR,\n"
	"                          decoding still overlaps CRIU); without one, every\n"
	"                          stream is decoded first (beyond --memory-limit\n"
	"                          it spills to $TMPDIR)   [restore.verify_first]\n"
	"      --no-verify-first   stream verified chunks to CRIU as they arrive: no\n"
	"                          room needed in $TMPDIR, but a bad chunk late in a\n"
	"                          stream stops a restore CRIU has begun (nothing\n"
	"                          unverified reaches it, nothing runs)\n"
	"      --json              print the result as JSON on stdout\n"
	"      --no-progress       no progress line on the terminal\n"
	"      --daemon [ADDR]     through the crstream daemon at ADDR (default\n"
	"                          $CRSTREAM_DAEMON, else unix://<daemon.socket>);\n"
	"                          $CRSTREAM_DAEMON alone does the same. CHECKPOINT\n"
	"                          may then be a catalog ID; a job's checkpoint\n"
	"                          comes back as that job\n"
	"  -h, --help              this help\n"
	"\n"
	"Example: crstream restore /var/lib/crstream/checkpoints/dump-1234-20261126T001500Z\n"
	"Exit status: 0 when the tree was restored and resumed, 1 on failure, 2 on\n"
	"misuse.\n";

enum {
	O_PIDFILE = 1000, O_SHELL, O_TCP, O_TCPCLOSE, O_STOPPED, O_MEM, O_CRIUOPT, O_JSON,
	O_TRUSTED, O_VERIFY_FIRST, O_NO_VERIFY_FIRST, O_NOPROGRESS
};

static const struct option opts[] = {
	{"path", required_argument, NULL, 'p'},
	{"pid-file", required_argument, NULL, O_PIDFILE},
	{"shell-job", no_argument, NULL, O_SHELL},
	{"tcp-established", no_argument, NULL, O_TCP},
	{"tcp-close", no_argument, NULL, O_TCPCLOSE},
	{"leave-stopped", no_argument, NULL, O_STOPPED},
	{"memory-limit", required_argument, NULL, O_MEM},
	{"criu-opt", required_argument, NULL, O_CRIUOPT},
	{"identity", required_argument, NULL, 'i'},
	{"trusted-key", required_argument, NULL, O_TRUSTED},
	{"verify-first", no_argument, NULL, O_VERIFY_FIRST},
	{"no-verify-first", no_argument, NULL, O_NO_VERIFY_FIRST},
	{"json", no_argument, NULL, O_JSON},
	{"no-progress", no_argument, NULL, O_NOPROGRESS},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

struct restore_args {
	struct restore_opts o;
	char *criu_opts[64];
	struct flag_list identities;
	struct flag_list trusted;
	bool key_flags;			/* --identity, --trusted-key, --[no-]verify-first */
	bool json;
	bool memory_limit;		/* given on the command line */
	bool no_progress;
};

static int parse(int argc, char **argv, struct config *cfg, struct restore_args *a, bool *help)
{
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:i:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': a->o.path = optarg; break;
		case O_PIDFILE: a->o.pid_file = optarg; break;
		case O_SHELL: a->o.shell_job = 1; break;
		case O_TCP: a->o.tcp_established = true; break;
		case O_TCPCLOSE: a->o.tcp_close = true; break;
		case O_STOPPED: a->o.leave_stopped = true; break;
		case O_MEM:
			a->memory_limit = true;
			if (config_set_flag(cfg, "restore.memory_limit", optarg) < 0)
				return usage_error("crstream restore", "--memory-limit: \"%s\" is not a size "
						   "like 64M or 1G", optarg);
			break;
		case O_CRIUOPT:
			if (a->o.ncriu_opts >= 64)
				return usage_error("crstream restore", "too many --criu-opt options");
			a->criu_opts[a->o.ncriu_opts++] = optarg;
			break;
		case 'i':
			a->key_flags = true;
			if (flag_list_add(&a->identities, optarg) < 0)
				return usage_error("crstream restore", "--identity: %s", err_msg());
			break;
		case O_TRUSTED:
			a->key_flags = true;
			if (flag_list_add(&a->trusted, optarg) < 0)
				return usage_error("crstream restore", "--trusted-key: %s", err_msg());
			break;
		case O_VERIFY_FIRST:
		case O_NO_VERIFY_FIRST:
			a->key_flags = true;
			config_set_flag(cfg, "restore.verify_first",
					c == O_VERIFY_FIRST ? "true" : "false");
			break;
		case O_JSON: a->json = true; break;
		case O_NOPROGRESS: a->no_progress = true; break;
		case 'h': *help = true; return 0;
		default: return EXIT_USAGE;
		}
	}
	if ((a->identities.n &&
	     config_set_flag(cfg, "restore.identities", a->identities.joined) < 0) ||
	    (a->trusted.n && config_set_flag(cfg, "restore.trusted_keys", a->trusted.joined) < 0))
		return usage_error("crstream restore", "%s", err_msg());
	/* argv[1] is "restore"; the checkpoint may come as the argument. */
	if (optind + 1 < argc && !a->o.path)
		a->o.path = argv[optind++ + 1];
	if (optind + 1 < argc)
		return usage_error("crstream restore", "unexpected argument \"%s\"", argv[optind + 1]);
	if (!a->o.path)
		return usage_error("crstream restore", "--path CHECKPOINT is required");
	return 0;
}

void restore_result_json(FILE *out, const char *path, const struct restore_result *r, int rc)
{
	if (rc < 0) {
		fprintf(out, "{\"status\":\"error\",\"error\":");
		json_print_string(out, err_msg());
		fprintf(out, ",\"checkpoint\":");
		json_print_string(out, path);
		/* What CRIU got before the refusal: 0 when it was refused before
		 * CRIU started, never a byte of an unverified chunk. */
		fprintf(out, ",\"served_bytes\":%llu}\n", (unsigned long long)r->served_bytes);
		return;
	}
	fprintf(out, "{\"status\":\"ok\",\"checkpoint\":");
	json_print_string(out, path);
	fprintf(out, ",\"encrypted\":%s,\"trust\":", r->encrypted ? "true" : "false");
	json_print_string(out, r->trust);
	fprintf(out, ",\"pid\":%d,\"layout\":\"%s\",\"streams\":%d,\"compression\":\"%s\","
		"\"image_bytes\":%llu,\"stored_bytes\":%llu,\"criu_ms\":%llu,\"restore_ms\":%llu,"
		"\"peak_buffered_bytes\":%llu,\"spilled_bytes\":%llu",
		(int)r->pid, r->layout, r->streams, r->compression,
		(unsigned long long)r->image_bytes, (unsigned long long)r->stored_bytes,
		(unsigned long long)r->criu_ms, (unsigned long long)r->restore_ms,
		(unsigned long long)r->peak_buffered, (unsigned long long)r->spilled);
	print_self_usage_json(out);
	fprintf(out, "}\n");
}

static void print_summary(const struct restore_opts *o, const struct restore_result *r)
{
	char img[32];
	format_bytes(r->image_bytes, img, sizeof(img));
	printf("restored %s as pid %d\n", o->path, (int)r->pid);
	printf("  %s of image from %d %s stream%s (%s layout) in %llu ms\n", img, r->streams,
	       r->compression, r->streams == 1 ? "" : "s", r->layout,
	       (unsigned long long)r->restore_ms);
	printf("  %s%s\n", r->encrypted ? "decrypted (age), " : "", r->trust);
}

static int restore_remote(const char *addr, struct restore_args *a)
{
	if (a->o.ncriu_opts || a->o.leave_stopped || a->memory_limit)
		return usage_error("crstream restore", "--criu-opt, --leave-stopped and --memory-limit "
				   "are not available through the daemon");
	/* Keys and the trust policy are the daemon's own (its
	 * restore.identities, restore.trusted_keys), never a request's. */
	if (a->key_flags)
		return usage_error("crstream restore", "--identity, --trusted-key and --verify-first are "
				   "not available through the daemon: it decrypts and verifies with its "
				   "own restore.identities and restore.trusted_keys");
	const struct daemon_plugin *p = daemon_plugin("crstream restore --daemon");
	if (!p) {
		err_print(NULL);
		return 1;
	}
	struct remote_restore rq = {
		.path = a->o.path, .pid_file = a->o.pid_file, .shell_job = a->o.shell_job,
		.tcp_established = a->o.tcp_established, .tcp_close = a->o.tcp_close,
	};
	bool line_drawn = false;
	struct ckpt_progress_sink sink = {0};
	if (!a->json && !a->no_progress && isatty(STDERR_FILENO))
		sink = (struct ckpt_progress_sink){progress_line_render, &line_drawn};
	struct remote_result res;
	int rc = p->restore(addr, &rq, &sink, &res);
	if (a->json && res.json)
		printf("%s\n", res.json);
	else if (a->json)
		restore_result_json(stdout, a->o.path, &res.restore, -1);
	else if (rc < 0)
		err_print(NULL);
	else {
		print_summary(&a->o, &res.restore);
		if (res.jid[0])
			printf("  job %s\n", res.jid);
	}
	free(res.json);
	return rc < 0 ? 1 : 0;
}

int cmd_restore(int argc, char **argv)
{
	struct restore_args a = {.o.shell_job = -1, .o.detach = true};
	struct config *cfg = NULL;
	char criu[4096], self[4096];
	bool help = false;
	if (config_load(&cfg) < 0) {
		if (asks_for_help(argc, argv)) {
			fputs(restore_usage, stdout);
			return 0;
		}
		err_print(NULL);
		return 1;
	}
	const char *flag_addr;
	char addr_buf[256];
	bool via_daemon = take_daemon_flag(&argc, argv, &flag_addr);
	int rc = parse(argc, argv, cfg, &a, &help);
	flag_list_free(&a.identities);
	flag_list_free(&a.trusted);
	if (help || rc) {
		if (help)
			fputs(restore_usage, stdout);
		config_free(cfg);
		return rc;
	}
	const char *addr = daemon_target(via_daemon, flag_addr, addr_buf, sizeof(addr_buf));
	if (addr) {
		config_free(cfg);
		return restore_remote(addr, &a);
	}
	if (require_privilege("restore") < 0 ||
	    find_criu(config_get(cfg, "criu.path"), criu, sizeof(criu)) < 0 ||
	    self_path(self, sizeof(self)) < 0) {
		err_print(NULL);
		config_free(cfg);
		return 1;
	}
	a.o.criu = criu;
	a.o.self = self;
	a.o.criu_opts = a.criu_opts;
	a.o.memory_limit = config_uint(cfg, "restore.memory_limit");
	a.o.identities = config_get(cfg, "restore.identities");
	a.o.trusted_keys = config_get(cfg, "restore.trusted_keys");
	a.o.verify_first = config_is_set(cfg, "restore.verify_first")
				   ? config_bool(cfg, "restore.verify_first")
				   : -1;
	a.o.spill_limit = config_uint(cfg, "restore.spill_limit");
	struct store_options so = {.config = config_lookup, .ctx = cfg};
	a.o.store_opt = &so;
	bool line_drawn = false;
	if (!a.json && !a.no_progress && isatty(STDERR_FILENO))
		a.o.progress = (struct ckpt_progress_sink){progress_line_render, &line_drawn};
	struct restore_result r = {0};
	rc = checkpoint_restore(&a.o, &r);
	if (a.json)
		restore_result_json(stdout, a.o.path, &r, rc);
	else if (rc < 0)
		err_print(NULL);
	else
		print_summary(&a.o, &r);
	config_free(cfg);
	return rc < 0 ? 1 : 0;
}
