/* `crstream check`: can this machine checkpoint and restore with crstream? */
#include "cli/cli.h"
#include "cli/config.h"
#include "checkpoint/protect.h"
#include "daemon/plugin.h"
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
	"(with the fix to apply), the checkpoint location (free space, or for\n"
	"s3:// and gs:// the credentials, the bucket and a write+delete probe), and\n"
	"the configured keys (checkpoint.recipients, checkpoint.sign_key,\n"
	"restore.identities, restore.trusted_keys: readable, private, well-formed).\n"
	"Secrets are never printed. Then the daemon: its TCP settings, and if one\n"
	"answers (at --daemon's ADDR, $CRSTREAM_DAEMON or daemon.socket), its health.\n"
	"\n"
	"Options:\n"
	"  -d, --dir LOCATION      location to probe           [checkpoint.dir]\n"
	"      --daemon [ADDR]     the daemon to ask      [$CRSTREAM_DAEMON, else\n"
	"                          unix://<daemon.socket> if that socket exists]\n"
	"  -h, --help              this help\n"
	"\n"
	"Exit status: 0 when nothing blocks crstream, 1 otherwise, 2 on misuse.\n";

static void report(const struct check_sink *c, const char *area, const char *name,
		   enum check_level level, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void report(const struct check_sink *c, const char *area, const char *name,
		   enum check_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->fn(c->arg, area, name, level, msg);
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
static bool check_criu(const struct check_sink *c, struct config *cfg, char *criu, size_t size)
{
	if (find_criu(config_get(cfg, "criu.path"), criu, size) < 0) {
		report(c, "criu", "binary", CHECK_FAIL, "CRIU: %s", err_msg());
		report(c, "streaming", "--stream", CHECK_FAIL, "CRIU --stream support: no CRIU");
		return false;
	}
	char version[64];
	if (criu_version(criu, version, sizeof(version)) < 0) {
		report(c, "criu", "binary", CHECK_FAIL, "CRIU %s: %s", criu, err_msg());
		report(c, "streaming", "--stream", CHECK_FAIL, "CRIU --stream support: no usable CRIU");
		return false;
	}
	int major = 0, minor = 0;
	sscanf(version, "%d.%d", &major, &minor);
	bool new_enough = major > 4 || (major == 4 && minor >= 1);
	bool tcp_ok = major > 4 || (major == 4 && minor >= 2);
	report(c, "criu", "binary", !new_enough ? CHECK_FAIL : tcp_ok ? CHECK_OK : CHECK_WARN,
	       "CRIU %s, version %s%s", criu,
	       version,
	       !new_enough ? " (4.1 or later needed: older CRIU fails on kernels with the "
			     "[vvar_vclock] mapping)"
	       : !tcp_ok ? " (4.1 cannot dump TCP sockets on Linux 6.16 and later; use 4.2)" : "");
	bool stream = criu_has_stream(criu);
	report(c, "streaming", "--stream", stream ? CHECK_OK : CHECK_FAIL, "CRIU --stream support: %s",
	       stream ? "yes" : "no");
	return new_enough && stream;
}

static void check_criu_check(const struct check_sink *c, const char *criu)
{
	char out[8192]; /* not static: the daemon's HealthCheck runs this in a thread */
	if (require_privilege("check") < 0) {
		report(c, "criu", "criu check", CHECK_FAIL, "%s", err_msg());
		return;
	}
	int rc = criu_check(criu, out, sizeof(out));
	char *last = out, *save = NULL;
	for (char *p = strtok_r(out, "\n", &save); p; p = strtok_r(NULL, "\n", &save))
		last = p;
	report(c, "criu", "criu check", rc == 0 ? CHECK_OK : CHECK_FAIL, "criu check: %s", rc == 0 ? last : (*last ? last : err_msg()));
}

static void check_pipes(const struct check_sink *c)
{
	long max = read_sysctl("/proc/sys/fs/pipe-max-size");
	long soft = read_sysctl("/proc/sys/fs/pipe-user-pages-soft");
	long hard = read_sysctl("/proc/sys/fs/pipe-user-pages-hard");
	if (max >= (1 << 20))
		report(c, "kernel", "pipe-max-size", CHECK_OK, "pipe-max-size %ld: 1 MiB pipes, 252 KiB chunks", max);
	else
		report(c, "kernel", "pipe-max-size", CHECK_WARN, "pipe-max-size %ld: chunks shrink to a quarter of it, costing CPU; "
		       "fix: sysctl -w fs.pipe-max-size=1048576", max);
	/* Root (CAP_SYS_ADMIN / CAP_SYS_RESOURCE) is exempt from the per-user
	 * pipe budgets; others get one-page pipes once over the soft limit. */
	if (geteuid() == 0 || (soft == 0 && hard == 0))
		report(c, "kernel", "pipe-user-pages", CHECK_OK, "pipe-user-pages-soft %ld, -hard %ld (root is exempt)", soft, hard);
	else
		report(c, "kernel", "pipe-user-pages", CHECK_WARN, "pipe-user-pages-soft %ld, -hard %ld limit non-root pipes; fix: "
		       "sysctl -w fs.pipe-user-pages-soft=0 fs.pipe-user-pages-hard=0", soft, hard);
}

static void check_location(const struct check_sink *c, struct config *cfg, const char *dir)
{
	struct store_options so = {.config = config_lookup, .ctx = cfg};
	struct store *s;
	char summary[512];
	if (store_open(dir, &so, &s) < 0) {
		report(c, "storage", "checkpoint.dir", CHECK_FAIL, "checkpoint location %s: %s", dir, err_msg());
		return;
	}
	if (s->ops->probe(s, summary, sizeof(summary)) < 0)
		report(c, "storage", "checkpoint.dir", CHECK_FAIL, "checkpoint location %s: %s", dir, err_msg());
	else
		report(c, "storage", "checkpoint.dir", CHECK_OK, "checkpoint location %s", summary);
	store_close(s);
}

/* The configured keys load (files private and well-formed). */
static void check_keys(const struct check_sink *c, struct config *cfg)
{
	struct protect *dump = NULL, *restore = NULL;
	char summary[512];
	if (protect_dump_new(config_get(cfg, "checkpoint.recipients"),
			     config_get(cfg, "checkpoint.sign_key"), &dump) < 0)
		report(c, "keys", "dump", CHECK_FAIL, "dump keys: %s", err_msg());
	else if (dump) {
		protect_summary(dump, summary, sizeof(summary));
		report(c, "keys", "dump", CHECK_OK, "dump keys: %s", summary);
	}
	const char *trusted = config_get(cfg, "restore.trusted_keys");
	if (protect_restore_new(config_get(cfg, "restore.identities"), trusted, &restore) < 0)
		report(c, "keys", "restore", CHECK_FAIL, "restore keys: %s", err_msg());
	else if (restore) {
		protect_summary(restore, summary, sizeof(summary));
		report(c, "keys", "restore", CHECK_OK, "restore keys: %s", summary);
	}
	if (!*trusted)
		report(c, "keys", "trust policy", CHECK_OK, "no trust policy (restore.trusted_keys): "
		       "restores accept unsigned checkpoints and say \"unsigned checkpoint\"");
	protect_free(dump);
	protect_free(restore);
}

void run_checks(struct config *cfg, const char *dir, bool criu_check, const struct check_sink *sink)
{
	char criu[4096];
	if (check_criu(sink, cfg, criu, sizeof(criu)) && criu_check)
		check_criu_check(sink, criu);
	check_pipes(sink);
	check_location(sink, cfg, dir ? dir : config_get(cfg, "checkpoint.dir"));
}

struct checks {
	int blockers;
	int warnings;
};

static void print_check(void *arg, const char *area, const char *name, enum check_level level,
			const char *msg)
{
	struct checks *c = arg;
	(void)area;
	(void)name;
	printf("%-5s %s\n", level == CHECK_OK ? "ok" : level == CHECK_WARN ? "warn" : "FAIL", msg);
	c->blockers += level == CHECK_FAIL;
	c->warnings += level == CHECK_WARN;
}

static bool loopback(const char *hostport)
{
	return !strncmp(hostport, "127.", 4) || !strncmp(hostport, "localhost:", 10) ||
	       !strncmp(hostport, "[::1]:", 6);
}

struct daemon_report {
	const struct check_sink *sink;
	const char *addr;
};

static void report_daemon(void *arg, const char *area, const char *name, bool error, bool warning,
			  const char *data)
{
	struct daemon_report *r = arg;
	report(r->sink, "daemon", name, error ? CHECK_FAIL : warning ? CHECK_WARN : CHECK_OK,
	       "daemon %s: %s: %s", r->addr, area, data);
}

/* The daemon's TCP settings, and the health of a daemon that answers. */
static void check_daemon(const struct check_sink *c, struct config *cfg, bool flag,
			 const char *flag_addr)
{
	const char *listen = config_get(cfg, "daemon.listen");
	bool tls = *config_get(cfg, "daemon.tls_cert") && *config_get(cfg, "daemon.tls_key") &&
		   *config_get(cfg, "daemon.tls_client_ca");
	if (*listen && !tls)
		report(c, "daemon", "daemon.listen", CHECK_WARN,
		       "daemon.listen %s without daemon.tls_cert, daemon.tls_key and "
		       "daemon.tls_client_ca: %s; the daemon refuses to serve TCP without client "
		       "certificates", listen,
		       loopback(listen) ? "loopback only" : "a non-loopback address, reachable from "
							    "other machines");
	char buf[256];
	const char *addr = daemon_target(flag, flag_addr, buf, sizeof(buf));
	if (!addr) {
		const char *sock = config_get(cfg, "daemon.socket");
		if (access(sock, F_OK) < 0) {
			report(c, "daemon", "socket", CHECK_OK,
			       "no crstream daemon (%s absent): commands run without one", sock);
			return;
		}
		snprintf(buf, sizeof(buf), "unix://%s", sock);
		addr = buf;
	}
	const struct daemon_plugin *p = daemon_plugin("crstream check");
	struct daemon_report r = {c, addr};
	if (!p || p->health(addr, report_daemon, &r) < 0)
		report(c, "daemon", "socket", flag ? CHECK_FAIL : CHECK_WARN, "daemon %s: %s", addr,
		       err_msg());
}

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct config *cfg;
	const char *flag_addr;
	bool via_daemon = take_daemon_flag(&argc, argv, &flag_addr);
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
	struct check_sink sink = {print_check, &c};
	run_checks(cfg, dir, true, &sink);
	check_keys(&sink, cfg);
	check_daemon(&sink, cfg, via_daemon, flag_addr);
	printf("\n%s: %d blocker%s, %d warning%s\n", c.blockers ? "NOT READY" : "ready", c.blockers,
	       c.blockers == 1 ? "" : "s", c.warnings, c.warnings == 1 ? "" : "s");
	config_free(cfg);
	return c.blockers ? 1 : 0;
}
