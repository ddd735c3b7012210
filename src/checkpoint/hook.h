/* CRIU action-script hooks. CRIU runs an action script at fixed points of
 * a dump or restore and honours its exit status: a failing post-dump makes
 * CRIU resume the tasks instead of killing them, a failing post-restore
 * makes it kill the restored tree instead of resuming it. crstream installs
 * a tiny script that runs `crstream hook SOCKET`; that process asks the
 * dump/restore in progress over a private UNIX socket whether to go on. */
#ifndef CRSTREAM_CHECKPOINT_HOOK_H
#define CRSTREAM_CHECKPOINT_HOOK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/un.h>

#include "util/err.h"

/* Decides whether CRIU may go on past the action: 0 yes, -1 no (with the
 * reason as the error message). */
typedef int (*hook_handler)(void *arg);

struct hook_server {
	int fd;
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char script_path[4096];
	pthread_t thread;
	int stop_fd;
	const char *action;	/* the one action decided: "post-dump", "post-restore" */
	hook_handler handler;
	void *arg;
	int running;
	/* The verdict, once CRIU has asked (read after CRIU has exited). */
	bool answered;
	int rc;
	char err[ERR_MAX];
};

/* Creates dir/hook.sock and the executable dir/action-script, and starts
 * answering: `action` goes to the handler, every other action passes.
 * self is the crstream binary to run. */
int hook_server_start(struct hook_server *h, const char *dir, const char *self,
		      const char *action, hook_handler handler, void *arg);
void hook_server_stop(struct hook_server *h);

/* `crstream hook SOCKET`, run by CRIU with CRTOOLS_SCRIPT_ACTION set.
 * Returns the exit status for CRIU. */
int hook_client(const char *sock_path);

#endif
