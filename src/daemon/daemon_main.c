/* `crstream daemon`: serve daemon.Daemon and crstream.v1 until SIGTERM. */
#include "daemon/daemon.h"
#include "daemon/plugin.h"
#include "daemon/server.h"
#include "checkpoint/session.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "util/fdio.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

static const char daemon_usage[] =
	"Usage: crstream daemon [options]\n"
	"\n"
	"Runs crstream as a service, in the foreground: checkpoints and restores\n"
	"processes and the jobs it runs or manages, keeps a catalog of them, and\n"
	"answers gRPC on a unix socket: Cedana's daemon API (daemon.Daemon) and\n"
	"crstream's own (crstream.v1, used by `crstream --daemon` and `crstream run`).\n"
	"Each dump or restore runs in a worker process of its own; the catalog is\n"
	"SQLite. SIGTERM drains: dumps still running are cancelled (their processes\n"
	"keep running), restores finish. Notifies systemd when ready (Type=notify).\n"
	"\n"
	"Options (defaults from the config file and CRSTREAM_* variables):\n"
	"  -s, --socket PATH    the unix socket                    [daemon.socket]\n"
	"      --listen H:P     also serve TCP, with TLS and client certificates\n"
	"                       (daemon.tls_cert, _key, _client_ca) [daemon.listen]\n"
	"      --db PATH        the catalog                        [daemon.db]\n"
	"  -h, --help           this help\n"
	"\n"
	"Callers: root and the daemon's own user; others only if daemon.allowed_uids\n"
	"lists them (the socket is 0600 otherwise). Exit status: 0 after a clean\n"
	"drain, 1 if the daemon could not start, 2 on misuse.\n";

static int parse(int argc, char **argv, struct config *cfg, bool *help)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},
		{"listen", required_argument, NULL, 'L'},
		{"db", required_argument, NULL, 'D'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		const char *key = c == 's' ? "daemon.socket" : c == 'L' ? "daemon.listen"
				  : c == 'D' ? "daemon.db" : NULL;
		if (c == 'h') {
			*help = true;
			return 0;
		}
		if (!key)
			return EXIT_USAGE;
		if (config_set_flag(cfg, key, optarg) < 0)
			return usage_error("crstream daemon", "%s", err_msg());
	}
	if (optind + 1 < argc)
		return usage_error("crstream daemon", "unexpected argument \"%s\"", argv[optind + 1]);
	return 0;
}

static int open_catalog(struct daemon *d)
{
	const char *path = config_get(d->cfg, "daemon.db");
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir_p(dir, 0700) < 0)
			return err_prefix("daemon.db");
	}
	return catalog_open(path, &d->cat);
}

/* Until SIGTERM or SIGINT. */
static int wait_for_stop(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	int sig;
	while (sigwait(&set, &sig) != 0)
		;
	return sig;
}

static void drain(struct daemon *d, int sig)
{
	fprintf(stderr, "crstream daemon: %s: draining\n", strsignal(sig));
	sd_notify(0, "STOPPING=1\nSTATUS=draining");
	pthread_mutex_lock(&d->mu);
	d->draining = true;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	policy_stop(d);
	/* A dump cancelled backs out: CRIU resumes the tree, the checkpoint
	 * is left incomplete. Restores are left to finish. */
	int n = ops_cancel_dumps(d);
	if (n)
		fprintf(stderr, "crstream daemon: cancelled %d dump(s); their processes keep running\n", n);
	if (!ops_wait_idle(d, 120000))
		fprintf(stderr, "crstream daemon: operations still running after 120 s; leaving them\n");
}

static int run(struct daemon *d)
{
	const char *sock = config_get(d->cfg, "daemon.socket");
	snprintf(d->socket_path, sizeof(d->socket_path), "%s", sock);
	if (self_path(d->self, sizeof(d->self)) < 0 || open_catalog(d) < 0 || reaper_start(d) < 0)
		return -1;
	jobs_reconcile(d);
	ops_reconcile(d);
	grpc_init();
	int rc = server_start(d, sock, config_get(d->cfg, "daemon.listen"));
	if (rc == 0)
		rc = policy_start(d);
	if (rc == 0) {
		const char *listen = config_get(d->cfg, "daemon.listen");
		fprintf(stderr, "crstream daemon: pid %d serving on unix://%s%s%s (catalog %s)\n",
			(int)d->pid, sock, *listen ? " and tls://" : "", listen,
			config_get(d->cfg, "daemon.db"));
		sd_notifyf(0, "READY=1\nSTATUS=serving on unix://%s\nMAINPID=%d", sock, (int)d->pid);
		drain(d, wait_for_stop());
	}
	char saved[ERR_MAX];
	err_copy(saved, sizeof(saved));
	policy_stop(d);
	server_stop(d);
	grpc_shutdown();
	err_set("%s", saved);
	return rc;
}



int daemon_main(int argc, char **argv)
{
	struct daemon *d = calloc(1, sizeof(*d));
	bool help = false;
	if (!d || config_load(&d->cfg) < 0) {
		err_print(NULL);
		free(d);
		return 1;
	}
	int rc = parse(argc, argv, d->cfg, &help);
	if (help || rc) {
		if (help)
			fputs(daemon_usage, stdout);
		config_free(d->cfg);
		free(d);
		return rc;
	}
	err_progname = "crstream daemon";
	/* Before any thread exists, so that all inherit it: SIGCHLD goes to
	 * the reaper's signalfd, SIGTERM/SIGINT to the main thread. */
	if (session_block_signals() < 0) {
		err_print(NULL);
		return 1;
	}
	umask(077);
	d->pid = getpid();
	d->started_ms = unix_ms();
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	if (geteuid() != 0)
		warnx_("not running as root: CRIU will not be able to checkpoint");
	rc = run(d);
	if (rc < 0)
		err_print(NULL);
	reaper_stop(d);
	catalog_close(d->cat);
	config_free(d->cfg);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	free(d);
	if (rc == 0)
		fprintf(stderr, "crstream daemon: stopped\n");
	return rc < 0 ? 1 : 0;
}
