/* What the crstream binary calls in the daemon plugin (crstream-daemon.so,
 * see util/plugin.h): the daemon itself, and the client side of the
 * commands that talk to it over crstream.v1. */
#ifndef CRSTREAM_DAEMON_PLUGIN_H
#define CRSTREAM_DAEMON_PLUGIN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "checkpoint/dump.h"
#include "checkpoint/progress.h"
#include "checkpoint/restore.h"

#define DAEMON_PLUGIN "crstream-daemon.so"
#define DAEMON_PLUGIN_SYMBOL "crstream_daemon_plugin"

/* A dump through the daemon: only what the command line said; the rest
 * is the daemon's configuration. */
struct remote_dump {
	pid_t pid;			/* or */
	const char *jid;
	const char *dir, *name, *compression;	/* NULL: the daemon's default */
	int level;			/* 0: default */
	int streams;			/* -1: default; 0: plain image directory */
	bool leave_running;
	int shell_job;			/* -1: automatic */
	bool tcp_established, file_locks, ext_unix_sk;
	char *const *external;
	int nexternal;
};

struct remote_restore {
	const char *path;
	const char *pid_file;
	int shell_job;			/* -1: as dumped */
	bool tcp_established, tcp_close;
};

/* What came back: the result object (`--json`'s, from the daemon's
 * worker), and the same parsed into the CLI's result structures. */
struct remote_result {
	char *json;			/* malloc'd; NULL if the daemon refused */
	bool ok;
	struct dump_result dump;
	struct restore_result restore;
	char checkpoint_id[40];
	char jid[64];
};

struct daemon_plugin {
	/* `crstream daemon [options]`: the exit status. */
	int (*daemon_main)(int argc, char **argv);
	/* `crstream run|manage|jobs|kill ...` (argv as main's): the exit status. */
	int (*command)(int argc, char **argv);
	/* A dump or restore through the daemon at addr, its progress events
	 * to sink (may be NULL). 0 if it succeeded; -1 with the error set,
	 * res->json then holds the error object if the operation had begun.
	 * SIGINT/SIGTERM meanwhile cancel it, as they do a local one. */
	int (*dump)(const char *addr, const struct remote_dump *rq,
		    const struct ckpt_progress_sink *sink, struct remote_result *res);
	int (*restore)(const char *addr, const struct remote_restore *rq,
		       const struct ckpt_progress_sink *sink, struct remote_result *res);
	/* `crstream ls --daemon [LOCATION]`, `crstream rm --daemon CKPT`: the
	 * exit status, output printed. */
	int (*ls)(const char *addr, const char *location);
	int (*rm)(const char *addr, const char *what);
	/* The daemon's health for `crstream check`: 0 and its components
	 * reported to fn; -1 if it cannot be reached (error set). */
	int (*health)(const char *addr,
		      void (*fn)(void *arg, const char *area, const char *name, bool error,
				 bool warning, const char *data),
		      void *arg);
};

#endif
