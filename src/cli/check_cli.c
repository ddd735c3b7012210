/* `crstream check`: can this machine checkpoint and restore with crstream? */
#include "cli/cli.h"
#include "cli/config.h"
#include "checkpoint/session.h"
#include "criu/criu_exec.h"
#include "store/store.h"
#include "util/err.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char check_usage[] =
	"Usage: crstream check [--dir LOCATION]\n"
	"\n"
	"Tells whether this machine can checkpoint and restore with crstream: the\n"
	"CRIU binary, its version and --stream support, `criu check`, pipe limits\n"
	"(with the fix to apply), and the checkpoint location (free space, or for\n"
	"s3:// and gs:// the credentials, the bucket and a write+delete probe).\n"
	"Secrets are never printed.\n"
	"\n"
	"Options:\n"
	"  -d, --dir LOCATION      location to probe           [checkpoint.dir]\n"
	"  -h, --help              this help\n"
	"\n"
	"Exit status: 0 when nothing blocks crstream, 1 otherwise, 2 on misuse.\n";

struct checks {
	int blockers;
	int warnings;
};

static void report(struct checks *c, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(struct checks *c, const char *level, const char *fmt, ...)
{
	va_list ap;
	printf("%-5s ", level);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!strcmp(level, "FAIL"))
		c->blockers++;
	else if (!strcmp(level, "warn"))
		c->warnings++;
}

static long read_sysctl(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* Returns the CRIU path if it is usable at all. */
static bool check_criu(struct checks *c, struct config *cfg, char *criu, size_t size)
{
	if (find_criu(config_get(cfg, "criu.path"), criu, size) < 0) {
		report(c, "FAIL", "CRIU: %s", err_msg());
		return false;
	}
	char version[64];
	if (criu_version(criu, version, sizeof(version)) < 0) {
		report(c, "FAIL", "CRIU %s: %s", criu, err_msg());
		return false;
	}
	int major = 0, minor = 0;
	sscanf(version, "%d.%d", &major, &minor);
	bool new_enough = major > 4 || (major == 4 && minor >= 1);
	bool tcp_ok = major > 4 || (major == 4 && minor >= 2);
	report(c, !new_enough ? "FAIL" : tcp_ok ? "ok" : "warn", "CRIU %s, version %s%s", criu,
	       version,
	       !new_enough ? " (4.1 or later needed: older CRIU fails on kernels with the "
			     "[vvar_vclock] mapping)"
	       : !tcp_ok ? " (4.1 cannot dump TCP sockets on Linux 6.16 and later; use 4.2)" : "");
	bool stream = criu_has_stream(criu);
	report(c, stream ? "ok" : "FAIL", "CRIU --stream support: %s", stream ? "yes" : "no");
	return new_enough && stream;
}

static void check_criu_check(struct checks *c, const char *criu)
{
	static char out[8192];
	if (require_privilege("check") < 0) {
		report(c, "FAIL", "%s", err_msg());
		return;
	}
	int rc = criu_check(criu, out, sizeof(out));
	char *last = out;
	for (char *p = strtok(out, "\n"); p; p = strtok(NULL, "\n"))
		last = p;
	report(c, rc == 0 ? "ok" : "FAIL", "criu check: %s", rc == 0 ? last : (*last ? last : err_msg()));
}

static void check_pipes(struct checks *c)
{
	long max = read_sysctl("/proc/sys/fs/pipe-max-size");
	long soft = read_sysctl("/proc/sys/fs/pipe-user-pages-soft");
	long hard = read_sysctl("/proc/sys/fs/pipe-user-pages-hard");
	if (max >= (1 << 20))
		report(c, "ok", "pipe-max-size %ld: 1 MiB pipes, 252 KiB chunks", max);
	else
		report(c, "warn", "pipe-max-size %ld: chunks shrink to a quarter of it, costing CPU; "
		       "fix: sysctl -w fs.pipe-max-size=1048576", max);
	/* Root (CAP_SYS_ADMIN / CAP_SYS_RESOURCE) is exempt from the per-user
	 * pipe budgets; others get one-page pipes once over the soft limit. */
	if (geteuid() == 0 || (soft == 0 && hard == 0))
		report(c, "ok", "pipe-user-pages-soft %ld, -hard %ld (root is exempt)", soft, hard);
	else
		report(c, "warn", "pipe-user-pages-soft %ld, -hard %ld limit non-root pipes; fix: "
		       "sysctl -w fs.pipe-user-pages-soft=0 fs.pipe-user-pages-hard=0", soft, hard);
}

static void check_location(struct checks *c, struct config *cfg, const char *dir)
{
	struct store_options so = {.config = config_lookup, .ctx = cfg};
	struct store *s;
	char summary[512];
	if (store_open(dir, &so, &s) < 0) {
		report(c, "FAIL", "checkpoint location %s: %s", dir, err_msg());
		return;
	}
	if (s->ops->probe(s, summary, sizeof(summary)) < 0)
		report(c, "FAIL", "checkpoint location %s: %s", dir, err_msg());
	else
		report(c, "ok", "checkpoint location %s", summary);
	store_close(s);
}

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct config *cfg;
	if (config_load(&cfg) < 0) {
		if (asks_for_help(argc, argv)) {
			fputs(check_usage, stdout);
			return 0;
		}
		err_print(NULL);
		return 1;
	}
	const char *dir = NULL;
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
		if (o == 'd') {
			dir = optarg;
		} else if (o == 'h') {
			fputs(check_usage, stdout);
			config_free(cfg);
			return 0;
		} else {
			config_free(cfg);
			return EXIT_USAGE;
		}
	}
	struct checks c = {0};
	char criu[4096];
	if (check_criu(&c, cfg, criu, sizeof(criu)))
		check_criu_check(&c, criu);
	check_pipes(&c);
	check_location(&c, cfg, dir ? dir : config_get(cfg, "checkpoint.dir"));
	printf("\n%s: %d blocker%s, %d warning%s\n", c.blockers ? "NOT READY" : "ready", c.blockers,
	       c.blockers == 1 ? "" : "s", c.warnings, c.warnings == 1 ? "" : "s");
	config_free(cfg);
	return c.blockers ? 1 : 0;
}
