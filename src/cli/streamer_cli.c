/* `crstream capture|serve|extract` and the `criu-image-streamer` personality:
 * the same options as criu-image-streamer, so CRIU's tooling (zdtm.py
 * --stream) can drive crstream unchanged. */
#include "cli/cli.h"
#include "engine/engine.h"
#include "util/err.h"
#include "util/fdio.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char streamer_usage[] =
	"Usage: %s [OPTIONS] --images-dir DIR <capture|serve|extract>\n"
	"\n"
	"Streams CRIU images between CRIU (run with --stream) and shards.\n"
	"  capture   CRIU -> shards: run before `criu dump --stream -D DIR`\n"
	"  serve     shards -> CRIU: run before `criu restore --stream -D DIR`\n"
	"  extract   shards -> image files written into DIR (with --path\n"
	"            CHECKPOINT: a stored checkpoint's, see extract --path X -h)\n"
	"\n"
	"Options:\n"
	"  -D, --images-dir DIR        directory of CRIU's UNIX socket (extract: output)\n"
	"  -s, --shard-fds FD[,FD...]  shard file descriptors, pipes or regular files\n"
	"                              (default: stdout for capture, stdin otherwise)\n"
	"  -e, --ext-file-fds NAME:FD[,NAME:FD...]\n"
	"                              external files woven into the image: read from FD\n"
	"                              on capture, written to FD on serve/extract\n"
	"  -p, --progress-fd FD        progress messages (default: stderr)\n"
	"      --tcp-listen-remap OLD:NEW[,OLD:NEW...]\n"
	"                              serve: restore listening TCP sockets on new ports\n"
	"      --memory-limit SIZE     serve: file data held in memory before spilling\n"
	"                              to $TMPDIR (default 64M)\n"
	"      --version               print the version and exit\n"
	"  -h, --help                  print this help and exit\n"
	"\n"
	"Progress messages (one per line): capture prints socket-init when CRIU may\n"
	"start, checkpoint-start once the tasks are frozen, then statistics\n"
	"{\"shards\":[{\"size\":N,\"transfer_duration_millis\":M},...]}; serve prints\n"
	"the statistics once the image is loaded, then socket-init; extract prints\n"
	"the statistics. Exit status is 0 only if the whole image was moved.\n";

enum { OPT_REMAP = 1000, OPT_VERSION, OPT_MEMORY };

static const struct option long_opts[] = {
	{"images-dir", required_argument, NULL, 'D'},
	{"shard-fds", required_argument, NULL, 's'},
	{"ext-file-fds", required_argument, NULL, 'e'},
	{"progress-fd", required_argument, NULL, 'p'},
	{"tcp-listen-remap", required_argument, NULL, OPT_REMAP},
	{"memory-limit", required_argument, NULL, OPT_MEMORY},
	{"version", no_argument, NULL, OPT_VERSION},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

struct streamer_args {
	const char *op;
	const char *images_dir;
	int *shard_fds;
	int nshards;
	struct ext_file *ext;
	int next;
	int progress_fd;
	struct port_remap *remaps;
	int nremaps;
	uint64_t memory_limit;
};

static const char *prog;

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", err_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see %s --help)\n", cmd);
	return EXIT_USAGE;
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s)
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (*end == 'i' || *end == 'B')
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_fd_list(const char *s, int **out, int *n)
{
	int count = 1;
	for (const char *p = s; *p; p++)
		count += *p == ',';
	int *fds = calloc((size_t)count, sizeof(int));
	char *copy = strdup(s);
	if (!fds || !copy) {
		free(fds);
		free(copy);
		return err_set("out of memory");
	}
	int i = 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int fd = parse_fd_number(tok);
		if (fd < 0) {
			err_set("--shard-fds: \"%s\" is not a file descriptor number", tok);
			free(fds);
			free(copy);
			return -1;
		}
		fds[i++] = fd;
	}
	free(copy);
	if (i != count) {
		free(fds);
		return err_set("--shard-fds: empty entry in \"%s\"", s);
	}
	*out = fds;
	*n = i;
	return 0;
}

static int parse_ext_list(const char *s, struct ext_file **out, int *n)
{
	int count = 1;
	for (const char *p = s; *p; p++)
		count += *p == ',';
	struct ext_file *ext = calloc((size_t)count, sizeof(*ext));
	char *copy = strdup(s);	/* names point into it for the process lifetime */
	if (!ext || !copy) {
		free(ext);
		free(copy);
		return err_set("out of memory");
	}
	int i = 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(tok, ':');
		int fd = colon ? parse_fd_number(colon + 1) : -1;
		if (!colon || colon == tok || fd < 0) {
			err_set("--ext-file-fds: \"%s\" is not NAME:FD", tok);
			free(ext);
			free(copy);
			return -1;
		}
		*colon = '\0';
		if (strchr(tok, '/')) {
			err_set("--ext-file-fds: name \"%s\" must not contain '/'", tok);
			free(ext);
			free(copy);
			return -1;
		}
		ext[i].name = tok;
		ext[i].fd = fd;
		i++;
	}
	if (i != count) {
		free(ext);
		free(copy);
		return err_set("--ext-file-fds: empty entry in \"%s\"", s);
	}
	*out = ext;
	*n = i;
	return 0;
}

static int parse_args(int argc, char **argv, struct streamer_args *a, bool *done)
{
	int c;
	*done = false;
	a->progress_fd = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "D:s:e:p:h", long_opts, NULL)) != -1) {
		switch (c) {
		case 'D':
			a->images_dir = optarg;
			break;
		case 's':
			free(a->shard_fds);
			if (parse_fd_list(optarg, &a->shard_fds, &a->nshards) < 0)
				return usage_error(prog, "%s", err_msg());
			break;
		case 'e':
			if (parse_ext_list(optarg, &a->ext, &a->next) < 0)
				return usage_error(prog, "%s", err_msg());
			break;
		case 'p':
			a->progress_fd = parse_fd_number(optarg);
			if (a->progress_fd < 0)
				return usage_error(prog, "--progress-fd: \"%s\" is not a file descriptor number", optarg);
			break;
		case OPT_REMAP:
			if (parse_port_remaps(optarg, &a->remaps, &a->nremaps) < 0)
				return usage_error(prog, "%s", err_msg());
			break;
		case OPT_MEMORY:
			if (parse_size(optarg, &a->memory_limit) < 0 || a->memory_limit == 0)
				return usage_error(prog, "--memory-limit: \"%s\" is not a size like 64M or 1G", optarg);
			break;
		case OPT_VERSION:
			printf("%s %s\n", err_progname, CRSTREAM_VERSION);
			*done = true;
			return 0;
		case 'h':
			printf(streamer_usage, prog);
			*done = true;
			return 0;
		default:
			return usage_error(prog, "unknown option");
		}
	}
	for (int i = optind; i < argc; i++) {
		if (a->op)
			return usage_error(prog, "unexpected argument \"%s\"", argv[i]);
		a->op = argv[i];
	}
	if (!a->op)
		return usage_error(prog, "missing operation: capture, serve or extract");
	if (strcmp(a->op, "capture") && strcmp(a->op, "serve") && strcmp(a->op, "extract"))
		return usage_error(prog, "unknown operation \"%s\": use capture, serve or extract", a->op);
	if (!a->images_dir)
		return usage_error(prog, "--images-dir is required");
	if (a->nremaps && strcmp(a->op, "serve"))
		return usage_error(prog, "--tcp-listen-remap applies to serve only");
	return 0;
}

/* Every fd named on the command line must be open in the direction the
 * operation uses it. */
static int check_fds(struct streamer_args *a, bool capture)
{
	char what[96];
	for (int i = 0; i < a->nshards; i++) {
		snprintf(what, sizeof(what), "--shard-fds: fd %d", a->shard_fds[i]);
		if (fd_check(a->shard_fds[i], capture, what, NULL) < 0)
			return -1;
		for (int j = 0; j < i; j++)
			if (a->shard_fds[j] == a->shard_fds[i])
				return err_set("--shard-fds: fd %d is given twice", a->shard_fds[i]);
	}
	for (int i = 0; i < a->next; i++) {
		snprintf(what, sizeof(what), "--ext-file-fds: %s (fd %d)", a->ext[i].name, a->ext[i].fd);
		if (fd_check(a->ext[i].fd, !capture, what, NULL) < 0)
			return -1;
	}
	if (a->progress_fd >= 0) {
		snprintf(what, sizeof(what), "--progress-fd: fd %d", a->progress_fd);
		if (fd_check(a->progress_fd, true, what, NULL) < 0)
			return -1;
	}
	return 0;
}

static void free_args(struct streamer_args *a)
{
	free(a->shard_fds);
	if (a->ext && a->next)
		free((char *)a->ext[0].name);
	free(a->ext);
	free(a->remaps);
}

int cmd_streamer(int argc, char **argv, bool as_reference)
{
	struct streamer_args a = {0};
	bool done;
	prog = as_reference ? "criu-image-streamer" : "crstream";
	int rc = parse_args(argc, argv, &a, &done);
	if (rc || done) {
		free_args(&a);
		return rc;
	}
	bool capture = strcmp(a.op, "capture") == 0;
	if (!a.shard_fds) {
		a.shard_fds = calloc(1, sizeof(int));
		if (!a.shard_fds) {
			free_args(&a);
			return 1;
		}
		a.shard_fds[0] = capture ? STDOUT_FILENO : STDIN_FILENO;
		a.nshards = 1;
	}
	if (a.progress_fd < 0)
		a.progress_fd = STDERR_FILENO;
	if (check_fds(&a, capture) < 0) {
		err_print(prog);
		free_args(&a);
		return 1;
	}
	struct shard_stat *stats = calloc((size_t)a.nshards, sizeof(*stats));
	struct engine_opts o;
	engine_opts_init(&o);
	o.images_dir = a.images_dir;
	o.shard_fds = a.shard_fds;
	o.nshards = a.nshards;
	o.ext = a.ext;
	o.next = a.next;
	o.progress_fd = a.progress_fd;
	o.remaps = a.remaps;
	o.nremaps = a.nremaps;
	o.memory_limit = a.memory_limit;
	o.load_before_listen = true;
	struct engine_result res = {.shards = stats};
	if (!stats)
		rc = err_set("out of memory");
	else if (capture)
		rc = engine_capture(&o, &res);
	else if (!strcmp(a.op, "serve"))
		rc = engine_serve(&o, &res);
	else
		rc = engine_extract(&o, &res);
	if (rc < 0)
		err_print(prog);
	free(stats);
	free_args(&a);
	return rc < 0 ? 1 : 0;
}
