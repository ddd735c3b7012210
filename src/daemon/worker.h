/* The daemon's worker: every dump, restore and store operation the daemon
 * performs runs in a process of its own, `crstream daemon-worker PPID`,
 * which calls the same checkpoint layer as the CLI (checkpoint_dump(),
 * checkpoint_restore(), the store backends).
 *
 * Why a process and not a thread: the checkpoint layer owns its process's
 * signals (it blocks SIGINT/SIGTERM/SIGCHLD and waits on a signalfd,
 * waitpid()s CRIU), which a daemon reaping every child as a subreaper
 * would fight; a worker isolates each operation (its memory, its CRIU,
 * its failures); cancelling is SIGINT to the worker, exactly like Ctrl-C
 * on the CLI; and the worker dies with the daemon (PR_SET_PDEATHSIG), so a
 * killed daemon's dumps cannot reach their post-dump hook and CRIU resumes
 * their processes. The daemon itself never loads object storage.
 *
 * Protocol. stdin: one JSON request object, then EOF. fd 3: events, one a
 * line, a word and a JSON object:
 *   progress {"phase": "capturing", "streams": 4, "elapsed_ms": ..., ...}
 *   result {...}                       always the last line
 * Requests ("op" and its fields; absent fields take the configuration's
 * value, as absent flags do on the command line):
 *   dump      pid, dir, name, streams, compression, level, leave_running,
 *             shell_job, tcp_established, file_locks, ext_unix_sk, external[]
 *             -> {"result": <dump --json object>, "manifest_checksum": "..."}
 *   restore   path, pid_file, shell_job, tcp_established, tcp_close,
 *             file_locks, ext_unix_sk, external[]
 *             -> {"result": <restore --json object>}
 *   remove    location     -> {"status": "ok", "objects": N}
 *   manifest  location     -> {"status": "ok", "manifest": "...",
 *                              "complete": bool, "checksum": "..."}
 *                             or {"status": "missing"}
 *   health    dir, full    -> {"status": "ok", "checks": [{"area", "level",
 *                              "message"}...]}
 * A failure: {"status": "error", "error": "one line"} (dump and restore:
 * their --json error object inside "result"). */
#ifndef CRSTREAM_DAEMON_WORKER_H
#define CRSTREAM_DAEMON_WORKER_H

#define WORKER_COMMAND "daemon-worker"
#define WORKER_EVENTS_FD 3
/* Most external[] entries a request carries (the CLI's --external takes as
 * many); the daemon refuses more with INVALID_ARGUMENT. */
#define WORKER_EXTERNAL_MAX 64

int cmd_daemon_worker(int argc, char **argv);

#endif
