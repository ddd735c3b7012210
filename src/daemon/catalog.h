/* The daemon's catalog of jobs and checkpoints: SQLite in WAL mode, one
 * file (daemon.db), a schema version (PRAGMA user_version) and the
 * migrations that bring an older file up to it. It outlives the daemon:
 * at start the daemon reconciles what was in progress when it stopped.
 *
 * Every function is thread-safe (one connection, one lock) and returns
 * 0, 1 for "no such row" where it says so, or -1 with an error naming the
 * database file. */
#ifndef CRSTREAM_DAEMON_CATALOG_H
#define CRSTREAM_DAEMON_CATALOG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CATALOG_SCHEMA_VERSION 2

struct catalog;

struct ckpt_row {
	char id[40];
	char jid[64];			/* "" for a process dump */
	pid_t pid;
	char location[4200];		/* DIR/NAME, s3://bucket/prefix/NAME */
	int64_t created_ms;		/* Unix ms */
	uint64_t stored_bytes;
	uint64_t image_bytes;
	int streams;
	char compression[16];
	char state[16];			/* in_progress, complete, incomplete */
	char error[512];
	char manifest_checksum[40];
	bool policy;			/* made by the job's periodic policy */
};

struct job_row {
	char jid[64];
	pid_t pid;
	uint64_t pid_start;		/* the process's start time, against pid reuse */
	char state[16];			/* running, exited, checkpointed */
	int exit_code;			/* -1 unless it exited normally */
	int exit_signal;		/* 0 unless a signal ended it */
	char args[4096];		/* JSON array of strings */
	char working_dir[1024];
	char log[1024];
	int64_t started_ms;
	bool child;			/* the daemon's child: its exit status is known */
	char restored_from[40];
	/* Periodic checkpoints (interval 0: none). */
	uint32_t policy_interval;	/* seconds */
	uint32_t policy_keep;
	char policy_dir[1024];
	int policy_streams;
	char policy_compression[16];
	int64_t policy_next_ms;
};

/* Opens (creating the file 0600 if needed) and migrates. Refuses a file
 * another daemon holds, and a schema newer than this crstream knows. */
int catalog_open(const char *path, struct catalog **out);
void catalog_close(struct catalog *c);
int catalog_version(struct catalog *c);
const char *catalog_path(struct catalog *c);
/* "wal" normally. */
int catalog_journal_mode(struct catalog *c, char *buf, size_t size);

int catalog_add_checkpoint(struct catalog *c, const struct ckpt_row *r);
/* Updates everything but id and created_ms. */
int catalog_update_checkpoint(struct catalog *c, const struct ckpt_row *r);
int catalog_get_checkpoint(struct catalog *c, const char *id, struct ckpt_row *r);	/* 0/1/-1 */
/* The newest complete checkpoint of a job. 0/1/-1 */
int catalog_latest_checkpoint(struct catalog *c, const char *jid, struct ckpt_row *r);
/* The newest checkpoint at that location. 0/1/-1 */
int catalog_checkpoint_at(struct catalog *c, const char *location, struct ckpt_row *r);
int catalog_delete_checkpoint(struct catalog *c, const char *id);
/* Oldest first. jid NULL: all; state NULL: any; under: location prefix
 * (a directory or bucket prefix) or NULL. fn's non-zero return stops. */
int catalog_each_checkpoint(struct catalog *c, const char *jid, const char *state,
			    const char *under, int (*fn)(const struct ckpt_row *r, void *arg),
			    void *arg);
/* How many checkpoints a job has (all states). */
int catalog_count_checkpoints(struct catalog *c, const char *jid, uint32_t *n);

int catalog_add_job(struct catalog *c, const struct job_row *j);	/* 1 if the JID exists */
int catalog_update_job(struct catalog *c, const struct job_row *j);
int catalog_get_job(struct catalog *c, const char *jid, struct job_row *j);	/* 0/1/-1 */
/* The running job with this pid. 0/1/-1 */
int catalog_job_by_pid(struct catalog *c, pid_t pid, struct job_row *j);
int catalog_delete_job(struct catalog *c, const char *jid);
/* Oldest first. */
int catalog_each_job(struct catalog *c, int (*fn)(const struct job_row *j, void *arg), void *arg);

#endif
