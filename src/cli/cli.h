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
int cmd_keygen(int argc, char **argv);
/* `crstream extract --path CHECKPOINT ...`, told apart from the shard form
 * by its --path. */
bool extract_wants_checkpoint(int argc, char **argv);
int cmd_extract_checkpoint(int argc, char **argv);
/* In the daemon plugin (cli/daemon_cli.c loads it): `crstream daemon`,
 * and `crstream run|manage|jobs|kill` (argv[1] says which). */
int cmd_daemon(int argc, char **argv);
int cmd_jobs(int argc, char **argv);

/* Going through a daemon. */
struct daemon_plugin;
/* The daemon plugin (NULL with the error set if it cannot be loaded). */
const struct daemon_plugin *daemon_plugin(const char *what);
/* Takes `--daemon`, `--daemon ADDR` (ADDR: unix:///path or /path) or
 * `--daemon=ADDR` out of argv (before any "--"); true if it was there. */
bool take_daemon_flag(int *argc, char **argv, const char **addr);
/* The daemon a command goes through, or NULL (do it locally): the flag's
 * ADDR, else $CRSTREAM_DAEMON, else with the flag unix://<daemon.socket>. */
const char *daemon_target(bool flag, const char *flag_addr, char *buf, size_t size);
/* The --daemon line of a command's help. */
#define DAEMON_OPTION_HELP \
	"      --daemon [ADDR]     through the crstream daemon at ADDR\n" \
	"                          [$CRSTREAM_DAEMON, else unix://<daemon.socket>]\n"

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
	const char *options;	/* more option lines for the help, or NULL */
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

struct config;
/* Deletes the checkpoint s is opened at (location, for messages): its
 * streams, log, manifest last. Refuses a location that is not one.
 * *objects gets how many objects there were. */
int remove_checkpoint(struct store *s, const char *location, size_t *objects);

struct dump_result;
void print_dump_summary(const struct dump_result *r);

/* A repeatable file/key option collected into one comma-separated value
 * for a list configuration key (checkpoint.recipients, ...). */
struct flag_list {
	char *joined;
	int n;
};
/* 0, or -1 (error set) if v is empty or holds a comma. */
int flag_list_add(struct flag_list *l, const char *v);
void flag_list_free(struct flag_list *l);
struct dump_opts;
/* The effective configuration (flags included) into dump options: streams,
 * location, codec and level, leave-running, the CRIU binary (into criu).
 * Shared by `crstream dump` and the daemon's worker. 0; EXIT_USAGE for a
 * bad value (error set, nothing printed); -1 on failure. */
int dump_opts_resolve(struct config *cfg, struct dump_opts *o, char *criu, size_t size);

/* The result objects of `dump --json` and `restore --json` (one line);
 * rc < 0: the error object, with the current error message. */
void dump_result_json(FILE *out, const struct dump_result *r, int rc);
struct restore_result;
void restore_result_json(FILE *out, const char *path, const struct restore_result *r, int rc);

/* `crstream check`'s checks, reported one by one (the daemon's HealthCheck
 * reports the same), each with an area and a name: "criu" ("binary": its
 * version; "criu check" if criu_check), "streaming" ("--stream"), "kernel"
 * (pipe limits), "storage" ("checkpoint.dir", or dir: free space, or
 * credentials, bucket and a write+delete probe). */
enum check_level { CHECK_OK, CHECK_WARN, CHECK_FAIL };
struct check_sink {
	void (*fn)(void *arg, const char *area, const char *name, enum check_level level,
		   const char *msg);
	void *arg;
};
void run_checks(struct config *cfg, const char *dir, bool criu_check, const struct check_sink *sink);

struct ckpt_progress;
/* A progress sink drawing the terminal line on stderr; arg points to a
 * bool (false at first) that says whether a line is on the screen. */
void progress_line_render(void *arg, const struct ckpt_progress *p);

#endif
