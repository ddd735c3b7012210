/* Running the CRIU binary: spawning it, waiting for it, asking its version
 * and reading the statistics it leaves in the images directory. */
#ifndef CRSTREAM_CRIU_EXEC_H
#define CRSTREAM_CRIU_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A growable argv. */
struct argv {
	char **v;
	int n;
	int cap;
};

int argv_add(struct argv *a, const char *arg);
int argv_addf(struct argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void argv_free(struct argv *a);
/* "criu dump -t 12 ..." for messages (malloc'd). */
char *argv_join(const struct argv *a);

/* Start argv (argv.v[0] is the CRIU path) with stdin from /dev/null and
 * stdout/stderr appended to output_path. CRIU gets its own process group,
 * so a Ctrl-C in the terminal reaches crstream, which stops CRIU cleanly,
 * rather than CRIU in the middle of its work. env entries ("K=V") are
 * added to CRIU's environment. */
int criu_spawn(const struct argv *argv, const char *const *env, const char *output_path,
	       pid_t *pid);

/* Wait for CRIU; returns 0 if it exited 0, else -1 with a message naming
 * the exit status or signal and the reason from its log (criu_log_error).
 * Where the log is kept is for the caller to say. */
int criu_wait(pid_t pid, const char *log_path);

/* The same verdict for a status already collected with waitpid(). */
int criu_check_status(int status, const char *log_path);

/* "4.1.1" from `criu --version`, into buf. */
int criu_version(const char *criu, char *buf, size_t size);

/* Runs `criu check`; out gets what it printed. 0 if it passed. */
int criu_check(const char *criu, char *out, size_t size);

/* True if `criu --help` mentions --stream. */
bool criu_has_stream(const char *criu);

/* Timings from CRIU's stats-dump (microseconds). */
struct criu_dump_stats {
	uint64_t freezing_us;
	uint64_t frozen_us;	/* freeze to kill (or resume) */
	uint64_t memdump_us;
	uint64_t memwrite_us;
	uint64_t pages_written;
};

/* Read DIR/stats-dump. */
int criu_read_dump_stats(const char *images_dir, struct criu_dump_stats *st);

/* The reason CRIU gives in its log for failing: its last error line,
 * skipping the known-benign ones and the final "Dumping FAILED." summary.
 * Empty if there is none. */
void criu_log_error(const char *log_path, char *buf, size_t size);

#endif
