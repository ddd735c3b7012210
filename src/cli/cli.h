/* Command-line front ends. Each command returns the process exit status:
 * 0 success, 1 failure (message printed), 2 usage error. */
#ifndef CRSTREAM_CLI_H
#define CRSTREAM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/version.h"

#define EXIT_USAGE 2

/* criu-image-streamer compatible commands ("capture", "serve", "extract"
 * given as argv's operation word, anywhere among the options). */
int cmd_streamer(int argc, char **argv, bool as_reference);

/* Prints "crstream: <msg>" plus a hint to --help; returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "64M", "1G", "4096" -> bytes. -1 if malformed. */
int parse_size(const char *s, uint64_t *out);

/* The commands. */
int cmd_dump(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_rm(int argc, char **argv);

/* The running crstream binary's absolute path (for CRIU's action script). */
int self_path(char *buf, size_t size);

/* s as a JSON string literal. */
void json_print_string(FILE *out, const char *s);

/* ",\"peak_rss_bytes\":N,\"cpu_seconds\":S" for this process (CRIU not counted). */
void print_self_usage_json(FILE *out);

/* Commands on one location (`crstream ls [LOCATION]`, `crstream rm
 * CHECKPOINT`), given as the argument or with an option (-d/--dir for a
 * directory of checkpoints, -p/--path for one checkpoint). */
struct location_cmd {
	const char *name;	/* "ls" */
	const char *usage;	/* "crstream ls [LOCATION]" */
	const char *help;	/* what it does, one paragraph */
	const char *option;	/* "dir" or "path" */
	const char *metavar;	/* "LOCATION", "CHECKPOINT" */
	bool optional;		/* the default is checkpoint.dir */
};
/* -1 to go on with *loc (NULL: the default); otherwise the command's exit
 * status (the help was printed, or a usage error). */
int location_args(int argc, char **argv, const struct location_cmd *c, const char **loc);

/* True if argv (after the command) has -h or --help: the help is printed
 * even when the configuration it would show defaults from is broken. */
bool asks_for_help(int argc, char **argv);

/* 0 if this process may run CRIU (root, CAP_SYS_ADMIN or
 * CAP_CHECKPOINT_RESTORE); else -1 with a message saying so. */
int require_privilege(const char *cmd);

/* The CRIU binary: want (criu.path) as a path or a name in PATH. For the
 * default name "criu", when PATH has none or one older than 4.1, the
 * newest one scripts/provision-criu.sh built into its cache
 * ($CRSTREAM_CACHE_DIR, /var/cache/crstream). The error says how to get
 * one. */
int find_criu(const char *want, char *buf, size_t size);

struct config;
struct store;
/* Load the configuration and open a store at location with it (NULL:
 * checkpoint.dir). */
int open_location(const char *location, struct config **cfg, struct store **s);
/* Close what open_location opened; the exit status for rc (the message
 * printed if rc < 0). */
int close_location(struct config *cfg, struct store *s, int rc);

struct dump_result;
void print_dump_summary(const struct dump_result *r);

struct ckpt_progress;
/* A progress sink drawing the terminal line on stderr; arg points to a
 * bool (false at first) that says whether a line is on the screen. */
void progress_line_render(void *arg, const struct ckpt_progress *p);

#endif
