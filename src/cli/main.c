/* crstream's entry point: picks the command from argv[0] or argv[1]. */
#include "cli/cli.h"
#include "util/err.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char main_usage[] =
	"Usage: crstream <command> [options]\n"
	"\n"
	"Streaming checkpoint/restore of Linux processes, built on CRIU.\n"
	"\n"
	"criu-image-streamer compatible commands (CRIU runs with --stream):\n"
	"  capture     receive an image from `criu dump --stream`, write it as shards\n"
	"  serve       read shards, serve the image to `criu restore --stream`\n"
	"  extract     read shards, write the image files into a directory\n"
	"\n"
	"Run `crstream <command> --help` for a command's options.\n"
	"Invoked as `criu-image-streamer`, crstream behaves exactly like it.\n";

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
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("crstream %s\n", CRSTREAM_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "capture") || !strcmp(cmd, "serve") || !strcmp(cmd, "extract"))
		return cmd_streamer(argc, argv, false);
	fprintf(stderr, "crstream: unknown command \"%s\" (see crstream --help)\n", cmd);
	return EXIT_USAGE;
}
