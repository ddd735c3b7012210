/* crstream's entry point: picks the command from argv[0] or argv[1]. */
#include "checkpoint/hook.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "codec/codec.h"
#include "criu/criu_exec.h"
#include "crypt/crypt.h"
#include "daemon/worker.h"
#include "store/store.h"
#include "util/err.h"
#include "util/plugin.h"
#include "util/trace.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char main_usage[] =
	"Usage: crstream <command> [options]\n"
	"\n"
	"Streaming checkpoint/restore of Linux processes, built on CRIU.\n"
	"\n"
	"Commands:\n"
	"  dump <pid>  checkpoint a process tree through N compressed streams\n"
	"  restore     restore a checkpoint (DIR/NAME or s3://.../NAME)\n"
	"  inspect     show a checkpoint's manifest, streams and files\n"
	"  ls          list the checkpoints under a directory or s3:// / gs:// prefix\n"
	"  rm          delete a checkpoint\n"
	"  check       can this machine checkpoint and restore? (CRIU, kernel, pipes,\n"
	"              storage)\n"
	"  config show the effective configuration and where each value comes from\n"
	"  keygen      make an encryption identity or a signing key (--sign)\n"
	"  daemon      serve checkpoints, restores and jobs over gRPC (Cedana's daemon\n"
	"              API and crstream.v1), with a catalog of checkpoints\n"
	"  run         run a command as a job of the daemon (-- CMD ARGS...)\n"
	"  manage      make a running process a job of the daemon\n"
	"  jobs        list the daemon's jobs\n"
	"  kill        signal a job\n"
	"\n"
	"dump, restore, ls and rm go through a daemon with --daemon [ADDR] or\n"
	"$CRSTREAM_DAEMON (unix:///run/crstream/crstream.sock); `dump job JID` does always.\n"
	"\n"
	"criu-image-streamer compatible commands (CRIU runs with --stream):\n"
	"  capture     receive an image from `criu dump --stream`, write it as shards\n"
	"  serve       read shards, serve the image to `criu restore --stream`\n"
	"  extract     read shards (or with --path a stored checkpoint), write the\n"
	"              image files into a directory\n"
	"\n"
	"Options:\n"
	"  -h, --help      this help\n"
	"      --version   crstream's version, the CRIU it will use, the codecs and\n"
	"                  whether object storage is available\n"
	"\n"
	"Run `crstream <command> --help` for a command's options, `man crstream-<command>`\n"
	"for the details. Invoked as `criu-image-streamer`, crstream behaves exactly\n"
	"like it.\n";

/* `crstream --version`: what this crstream will work with. */
static int version(void)
{
	printf("crstream %s\n", CRSTREAM_VERSION);
	struct config *cfg = NULL;
	char path[PATH_MAX], v[64];
	if (config_load(&cfg) < 0)
		printf("config:         %s\n", err_msg());
	else
		printf("config:         %s%s\n", config_path(cfg),
		       access(config_path(cfg), R_OK) == 0 ? "" : " (not present)");
	if (find_criu(cfg ? config_get(cfg, "criu.path") : "criu", path, sizeof(path)) < 0)
		printf("criu:           %s\n", err_msg());
	else if (criu_version(path, v, sizeof(v)) < 0)
		printf("criu:           %s (%s)\n", path, err_msg());
	else
		printf("criu:           %s (version %s)\n", path, v);
	printf("codecs:         %s\n", codec_names());
	if (store_plugin_load(path, sizeof(path), NULL) < 0)
		printf("object storage: not available (plugin %s): %s\n", path, err_msg());
	else
		printf("object storage: s3://, gs:// (plugin %s)\n", path);
	if (plugin_load(CRYPT_PLUGIN, path, sizeof(path), NULL) < 0)
		printf("keys:           not available (plugin %s): %s\n", path, err_msg());
	else
		printf("keys:           age encryption, SSH signatures (plugin %s)\n", path);
	config_free(cfg);
	return 0;
}

static int streamer_name(const char *argv0)
{
	const char *base = strrchr(argv0, '/');
	base = base ? base + 1 : argv0;
	return strcmp(base, "criu-image-streamer") == 0;
}

int main(int argc, char **argv)
{
	/* A consumer that goes away (CRIU closing a pipe early, a shard reader
	 * dying) must show up as EPIPE where we can report it, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	/* CRSTREAM_TRACE's timeline starts here. */
	(void)trace_on();

	if (argc > 0 && streamer_name(argv[0])) {
		err_progname = "criu-image-streamer";
		return cmd_streamer(argc, argv, true);
	}
	if (argc < 2) {
		fputs(main_usage, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(main_usage, stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version"))
		return version();
	if (!strcmp(cmd, "extract") && extract_wants_checkpoint(argc, argv))
		return cmd_extract_checkpoint(argc, argv);
	if (!strcmp(cmd, "capture") || !strcmp(cmd, "serve") || !strcmp(cmd, "extract"))
		return cmd_streamer(argc, argv, false);
	if (!strcmp(cmd, "dump"))
		return cmd_dump(argc, argv);
	if (!strcmp(cmd, "restore"))
		return cmd_restore(argc, argv);
	if (!strcmp(cmd, "check"))
		return cmd_check(argc, argv);
	if (!strcmp(cmd, "config"))
		return cmd_config(argc, argv);
	if (!strcmp(cmd, "inspect"))
		return cmd_inspect(argc, argv);
	if (!strcmp(cmd, "ls"))
		return cmd_ls(argc, argv);
	if (!strcmp(cmd, "rm"))
		return cmd_rm(argc, argv);
	if (!strcmp(cmd, "keygen"))
		return cmd_keygen(argc, argv);
	if (!strcmp(cmd, "daemon"))
		return cmd_daemon(argc, argv);
	if (!strcmp(cmd, "run") || !strcmp(cmd, "manage") || !strcmp(cmd, "jobs") ||
	    !strcmp(cmd, "kill"))
		return cmd_jobs(argc, argv);
	/* Run by the daemon for each operation (see daemon/worker.h). */
	if (!strcmp(cmd, WORKER_COMMAND))
		return cmd_daemon_worker(argc, argv);
	/* Run by CRIU as its action script (see checkpoint/hook.h). */
	if (!strcmp(cmd, "hook") && argc == 3)
		return hook_client(argv[2]);
	fprintf(stderr, "crstream: unknown command \"%s\" (see crstream --help)\n", cmd);
	return EXIT_USAGE;
}
