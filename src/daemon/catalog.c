#include "daemon/catalog.h"
#include "util/err.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct catalog {
	sqlite3 *db;
	pthread_mutex_t mu;
	int lock_fd;		/* flock: one daemon per catalog */
	char path[4096];
};

/* Schema migrations: migrations[i] brings version i to version i + 1.
 * Never edit one that has shipped; append. */
static const char *const migrations[] = {
	/* 0 -> 1: jobs and their checkpoints */
	"CREATE TABLE jobs ("
	"  jid TEXT PRIMARY KEY,"
	"  pid INTEGER NOT NULL,"
	"  pid_start INTEGER NOT NULL DEFAULT 0,"
	"  state TEXT NOT NULL,"
	"  exit_code INTEGER NOT NULL DEFAULT -1,"
	"  exit_signal INTEGER NOT NULL DEFAULT 0,"
	"  args TEXT NOT NULL DEFAULT '[]',"
	"  working_dir TEXT NOT NULL DEFAULT '',"
	"  log TEXT NOT NULL DEFAULT '',"
	"  started_ms INTEGER NOT NULL,"
	"  child INTEGER NOT NULL DEFAULT 0,"
	"  restored_from TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE checkpoints ("
	"  id TEXT PRIMARY KEY,"
	"  jid TEXT NOT NULL DEFAULT '',"
	"  pid INTEGER NOT NULL,"
	"  location TEXT NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  stored_bytes INTEGER NOT NULL DEFAULT 0,"
	"  image_bytes INTEGER NOT NULL DEFAULT 0,"
	"  streams INTEGER NOT NULL DEFAULT 0,"
	"  compression TEXT NOT NULL DEFAULT '',"
	"  state TEXT NOT NULL,"
	"  error TEXT NOT NULL DEFAULT '',"
	"  manifest_checksum TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX checkpoints_by_job ON checkpoints(jid, created_ms);"
	"CREATE INDEX checkpoints_by_location ON checkpoints(location);",
	/* 1 -> 2: periodic checkpoint policies */
	"ALTER TABLE jobs ADD COLUMN policy_interval INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN policy_keep INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN policy_dir TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE jobs ADD COLUMN policy_streams INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN policy_compression TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE jobs ADD COLUMN policy_next_ms INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE checkpoints ADD COLUMN policy INTEGER NOT NULL DEFAULT 0;",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == CATALOG_SCHEMA_VERSION,
	       "one migration per schema version");

static int db_error(struct catalog *c, const char *what)
{
	return err_set("catalog %s: %s: %s", c->path, what, sqlite3_errmsg(c->db));
}

static int exec_sql(struct catalog *c, const char *sql, const char *what)
{
	char *msg = NULL;
	if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		err_set("catalog %s: %s: %s", c->path, what, msg ? msg : sqlite3_errmsg(c->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int read_version(struct catalog *c, int *version)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return db_error(c, "reading the schema version");
	int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : db_error(c, "reading the schema version");
	*version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc;
}

static int migrate(struct catalog *c)
{
	int version;
	if (exec_sql(c, "BEGIN IMMEDIATE", "starting the migration") < 0)
		return -1;
	if (read_version(c, &version) < 0)
		goto fail;
	if (version > CATALOG_SCHEMA_VERSION) {
		err_set("catalog %s: schema version %d is newer than this crstream's (%d)", c->path,
			version, CATALOG_SCHEMA_VERSION);
		goto fail;
	}
	for (; version < CATALOG_SCHEMA_VERSION; version++) {
		char what[64], set[64];
		snprintf(what, sizeof(what), "migrating to schema version %d", version + 1);
		snprintf(set, sizeof(set), "PRAGMA user_version = %d", version + 1);
		if (exec_sql(c, migrations[version], what) < 0 || exec_sql(c, set, what) < 0)
			goto fail;
	}
	return exec_sql(c, "COMMIT", "committing the migration");
fail:
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int catalog_open(const char *path, struct catalog **out)
{
	struct catalog *c = calloc(1, sizeof(*c));
	if (!c)
		return err_set("out of memory");
	snprintf(c->path, sizeof(c->path), "%s", path);
	/* Recursive: a walk's callback may look something else up. */
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&c->mu, &attr);
	pthread_mutexattr_destroy(&attr);
	c->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (c->lock_fd < 0) {
		err_sys("catalog %s", path);
		goto fail;
	}
	if (flock(c->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			err_set("catalog %s is in use by another crstream daemon", path);
		else
			err_sys("catalog %s: flock", path);
		goto fail;
	}
	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				 SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		db_error(c, "opening");
		goto fail;
	}
	sqlite3_busy_timeout(c->db, 5000);
	/* WAL: readers never wait for the writer, and a commit is one append
	 * (fsync'd: synchronous=FULL, a recorded checkpoint survives power
	 * loss as the checkpoint itself does). */
	if (exec_sql(c, "PRAGMA journal_mode=WAL", "enabling WAL") < 0 ||
	    exec_sql(c, "PRAGMA synchronous=FULL", "setting synchronous") < 0 ||
	    exec_sql(c, "PRAGMA foreign_keys=ON", "enabling foreign keys") < 0 || migrate(c) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	catalog_close(c);
	return -1;
}

void catalog_close(struct catalog *c)
{
	if (!c)
		return;
	if (c->db)
		sqlite3_close(c->db);
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

int catalog_version(struct catalog *c)
{
	int v = -1;
	pthread_mutex_lock(&c->mu);
	if (read_version(c, &v) < 0)
		v = -1;
	pthread_mutex_unlock(&c->mu);
	return v;
}

const char *catalog_path(struct catalog *c)
{
	return c->path;
}

int catalog_journal_mode(struct catalog *c, char *buf, size_t size)
{
	sqlite3_stmt *st;
	int rc = -1;
	pthread_mutex_lock(&c->mu);
	if (sqlite3_prepare_v2(c->db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			snprintf(buf, size, "%s", (const char *)sqlite3_column_text(st, 0));
			rc = 0;
		}
		sqlite3_finalize(st);
	}
	if (rc < 0)
		db_error(c, "reading the journal mode");
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* ---- statements ---- */

static void copy_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	snprintf(dst, size, "%s", t ? (const char *)t : "");
}

#define CKPT_COLUMNS                                                                       \
	"id, jid, pid, location, created_ms, stored_bytes, image_bytes, streams, compression, " \
	"state, error, manifest_checksum, policy"

static void read_ckpt(sqlite3_stmt *st, struct ckpt_row *r)
{
	memset(r, 0, sizeof(*r));
	copy_text(r->id, sizeof(r->id), st, 0);
	copy_text(r->jid, sizeof(r->jid), st, 1);
	r->pid = (pid_t)sqlite3_column_int(st, 2);
	copy_text(r->location, sizeof(r->location), st, 3);
	r->created_ms = sqlite3_column_int64(st, 4);
	r->stored_bytes = (uint64_t)sqlite3_column_int64(st, 5);
	r->image_bytes = (uint64_t)sqlite3_column_int64(st, 6);
	r->streams = sqlite3_column_int(st, 7);
	copy_text(r->compression, sizeof(r->compression), st, 8);
	copy_text(r->state, sizeof(r->state), st, 9);
	copy_text(r->error, sizeof(r->error), st, 10);
	copy_text(r->manifest_checksum, sizeof(r->manifest_checksum), st, 11);
	r->policy = sqlite3_column_int(st, 12) != 0;
}

/* Binds the columns after id (2..13) in CKPT_COLUMNS order. */
static void bind_ckpt(sqlite3_stmt *st, const struct ckpt_row *r)
{
	sqlite3_bind_text(st, 1, r->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, r->jid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 3, (int)r->pid);
	sqlite3_bind_text(st, 4, r->location, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 5, r->created_ms);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)r->stored_bytes);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)r->image_bytes);
	sqlite3_bind_int(st, 8, r->streams);
	sqlite3_bind_text(st, 9, r->compression, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 10, r->state, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 11, r->error, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 12, r->manifest_checksum, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 13, r->policy);
}

#define JOB_COLUMNS                                                                          \
	"jid, pid, pid_start, state, exit_code, exit_signal, args, working_dir, log, started_ms, " \
	"child, restored_from, policy_interval, policy_keep, policy_dir, policy_streams, "         \
	"policy_compression, policy_next_ms"

static void read_job(sqlite3_stmt *st, struct job_row *j)
{
	memset(j, 0, sizeof(*j));
	copy_text(j->jid, sizeof(j->jid), st, 0);
	j->pid = (pid_t)sqlite3_column_int(st, 1);
	j->pid_start = (uint64_t)sqlite3_column_int64(st, 2);
	copy_text(j->state, sizeof(j->state), st, 3);
	j->exit_code = sqlite3_column_int(st, 4);
	j->exit_signal = sqlite3_column_int(st, 5);
	copy_text(j->args, sizeof(j->args), st, 6);
	copy_text(j->working_dir, sizeof(j->working_dir), st, 7);
	copy_text(j->log, sizeof(j->log), st, 8);
	j->started_ms = sqlite3_column_int64(st, 9);
	j->child = sqlite3_column_int(st, 10) != 0;
	copy_text(j->restored_from, sizeof(j->restored_from), st, 11);
	j->policy_interval = (uint32_t)sqlite3_column_int64(st, 12);
	j->policy_keep = (uint32_t)sqlite3_column_int64(st, 13);
	copy_text(j->policy_dir, sizeof(j->policy_dir), st, 14);
	j->policy_streams = sqlite3_column_int(st, 15);
	copy_text(j->policy_compression, sizeof(j->policy_compression), st, 16);
	j->policy_next_ms = sqlite3_column_int64(st, 17);
}

static void bind_job(sqlite3_stmt *st, const struct job_row *j)
{
	sqlite3_bind_text(st, 1, j->jid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, (int)j->pid);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)j->pid_start);
	sqlite3_bind_text(st, 4, j->state, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 5, j->exit_code);
	sqlite3_bind_int(st, 6, j->exit_signal);
	sqlite3_bind_text(st, 7, j->args, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 8, j->working_dir, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 9, j->log, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 10, j->started_ms);
	sqlite3_bind_int(st, 11, j->child);
	sqlite3_bind_text(st, 12, j->restored_from, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 13, j->policy_interval);
	sqlite3_bind_int64(st, 14, j->policy_keep);
	sqlite3_bind_text(st, 15, j->policy_dir, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 16, j->policy_streams);
	sqlite3_bind_text(st, 17, j->policy_compression, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 18, j->policy_next_ms);
}

/* One statement that changes rows: prepared, bound, stepped, under the
 * lock. *changes gets how many rows it changed (may be NULL). */
static int write_stmt(struct catalog *c, const char *sql, const char *what,
		      void (*bind)(sqlite3_stmt *st, const void *row), const void *row,
		      const char *key, int *changes)
{
	sqlite3_stmt *st;
	int rc = 0;
	pthread_mutex_lock(&c->mu);
	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = db_error(c, what);
	} else {
		if (bind)
			bind(st, row);
		if (key)
			sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
		int s = sqlite3_step(st);
		if (s == SQLITE_CONSTRAINT)
			rc = 1;
		else if (s != SQLITE_DONE)
			rc = db_error(c, what);
		if (changes)
			*changes = sqlite3_changes(c->db);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* A query: fn called on each row (under the lock) until it returns
 * non-zero; binds are text parameters, NULL ones skipped. */
static int read_stmt(struct catalog *c, const char *sql, const char *what, const char *const *binds,
		     int nbinds, int (*fn)(sqlite3_stmt *st, void *arg), void *arg)
{
	sqlite3_stmt *st;
	int rc = 0;
	pthread_mutex_lock(&c->mu);
	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = db_error(c, what);
	} else {
		for (int i = 0; i < nbinds; i++)
			if (binds[i])
				sqlite3_bind_text(st, i + 1, binds[i], -1, SQLITE_TRANSIENT);
		int s;
		while ((s = sqlite3_step(st)) == SQLITE_ROW)
			if ((rc = fn(st, arg)) != 0)
				break;
		if (rc == 0 && s != SQLITE_DONE)
			rc = db_error(c, what);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static void bind_ckpt_v(sqlite3_stmt *st, const void *row)
{
	bind_ckpt(st, row);
}

static void bind_job_v(sqlite3_stmt *st, const void *row)
{
	bind_job(st, row);
}

/* ---- checkpoints ---- */

int catalog_add_checkpoint(struct catalog *c, const struct ckpt_row *r)
{
	int rc = write_stmt(c, "INSERT INTO checkpoints (" CKPT_COLUMNS ") VALUES "
			    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
			    "recording a checkpoint", bind_ckpt_v, r, NULL, NULL);
	return rc == 1 ? err_set("catalog %s: checkpoint %s exists", c->path, r->id) : rc;
}

int catalog_update_checkpoint(struct catalog *c, const struct ckpt_row *r)
{
	return write_stmt(c, "UPDATE checkpoints SET jid = ?2, pid = ?3, location = ?4, "
			  "stored_bytes = ?6, image_bytes = ?7, streams = ?8, compression = ?9, "
			  "state = ?10, error = ?11, manifest_checksum = ?12, policy = ?13 "
			  "WHERE id = ?1",
			  "updating a checkpoint", bind_ckpt_v, r, NULL, NULL);
}

static int one_ckpt(sqlite3_stmt *st, void *arg)
{
	read_ckpt(st, arg);
	return 1;
}

static int get_one_ckpt(struct catalog *c, const char *sql, const char *key, struct ckpt_row *r)
{
	int rc = read_stmt(c, sql, "reading a checkpoint", &key, 1, one_ckpt, r);
	return rc < 0 ? -1 : rc == 1 ? 0 : 1;
}

int catalog_get_checkpoint(struct catalog *c, const char *id, struct ckpt_row *r)
{
	return get_one_ckpt(c, "SELECT " CKPT_COLUMNS " FROM checkpoints WHERE id = ?1", id, r);
}

int catalog_latest_checkpoint(struct catalog *c, const char *jid, struct ckpt_row *r)
{
	return get_one_ckpt(c, "SELECT " CKPT_COLUMNS " FROM checkpoints WHERE jid = ?1 AND "
			    "state = 'complete' ORDER BY created_ms DESC, rowid DESC LIMIT 1", jid, r);
}

int catalog_checkpoint_at(struct catalog *c, const char *location, struct ckpt_row *r)
{
	return get_one_ckpt(c, "SELECT " CKPT_COLUMNS " FROM checkpoints WHERE location = ?1 "
			    "ORDER BY created_ms DESC, rowid DESC LIMIT 1", location, r);
}

int catalog_delete_checkpoint(struct catalog *c, const char *id)
{
	return write_stmt(c, "DELETE FROM checkpoints WHERE id = ?1", "deleting a checkpoint", NULL,
			  NULL, id, NULL);
}

struct each_ckpt {
	int (*fn)(const struct ckpt_row *r, void *arg);
	void *arg;
	const char *under;
};

static int each_ckpt_row(sqlite3_stmt *st, void *arg)
{
	struct each_ckpt *e = arg;
	struct ckpt_row *r = malloc(sizeof(*r));
	if (!r)
		return err_set("out of memory");
	read_ckpt(st, r);
	size_t n = e->under ? strlen(e->under) : 0;
	while (n > 1 && e->under[n - 1] == '/')
		n--;
	/* Under a directory: the location is DIR/NAME. */
	bool in = !e->under || (!strncmp(r->location, e->under, n) && r->location[n] == '/');
	int rc = in ? e->fn(r, e->arg) : 0;
	free(r);
	return rc;
}

int catalog_each_checkpoint(struct catalog *c, const char *jid, const char *state,
			    const char *under, int (*fn)(const struct ckpt_row *r, void *arg),
			    void *arg)
{
	struct each_ckpt e = {fn, arg, under};
	const char *binds[] = {jid, state};
	return read_stmt(c, "SELECT " CKPT_COLUMNS " FROM checkpoints WHERE "
			 "(?1 IS NULL OR jid = ?1) AND (?2 IS NULL OR state = ?2) "
			 "ORDER BY created_ms, rowid",
			 "listing checkpoints", binds, 2, each_ckpt_row, &e);
}

static int count_row(sqlite3_stmt *st, void *arg)
{
	*(uint32_t *)arg = (uint32_t)sqlite3_column_int64(st, 0);
	return 0;
}

int catalog_count_checkpoints(struct catalog *c, const char *jid, uint32_t *n)
{
	*n = 0;
	return read_stmt(c, "SELECT count(*) FROM checkpoints WHERE jid = ?1", "counting checkpoints",
			 &jid, 1, count_row, n);
}

/* ---- jobs ---- */

int catalog_add_job(struct catalog *c, const struct job_row *j)
{
	return write_stmt(c, "INSERT INTO jobs (" JOB_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
			  "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
			  "recording a job", bind_job_v, j, NULL, NULL);
}

int catalog_update_job(struct catalog *c, const struct job_row *j)
{
	return write_stmt(c, "UPDATE jobs SET pid = ?2, pid_start = ?3, state = ?4, exit_code = ?5, "
			  "exit_signal = ?6, args = ?7, working_dir = ?8, log = ?9, started_ms = ?10, "
			  "child = ?11, restored_from = ?12, policy_interval = ?13, policy_keep = ?14, "
			  "policy_dir = ?15, policy_streams = ?16, policy_compression = ?17, "
			  "policy_next_ms = ?18 WHERE jid = ?1",
			  "updating a job", bind_job_v, j, NULL, NULL);
}

static int one_job(sqlite3_stmt *st, void *arg)
{
	read_job(st, arg);
	return 1;
}

int catalog_get_job(struct catalog *c, const char *jid, struct job_row *j)
{
	int rc = read_stmt(c, "SELECT " JOB_COLUMNS " FROM jobs WHERE jid = ?1", "reading a job", &jid,
			   1, one_job, j);
	return rc < 0 ? -1 : rc == 1 ? 0 : 1;
}

int catalog_job_by_pid(struct catalog *c, pid_t pid, struct job_row *j)
{
	char key[16];
	const char *k = key;
	snprintf(key, sizeof(key), "%d", (int)pid);
	int rc = read_stmt(c, "SELECT " JOB_COLUMNS " FROM jobs WHERE pid = CAST(?1 AS INTEGER) AND "
			   "state = 'running'", "reading a job", &k, 1, one_job, j);
	return rc < 0 ? -1 : rc == 1 ? 0 : 1;
}

int catalog_delete_job(struct catalog *c, const char *jid)
{
	int changes = 0;
	int rc = write_stmt(c, "DELETE FROM jobs WHERE jid = ?1", "deleting a job", NULL, NULL, jid,
			    &changes);
	return rc < 0 ? -1 : changes ? 0 : 1;
}

struct each_job {
	int (*fn)(const struct job_row *j, void *arg);
	void *arg;
};

static int each_job_row(sqlite3_stmt *st, void *arg)
{
	struct each_job *e = arg;
	struct job_row *j = malloc(sizeof(*j));
	if (!j)
		return err_set("out of memory");
	read_job(st, j);
	int rc = e->fn(j, e->arg);
	free(j);
	return rc;
}

int catalog_each_job(struct catalog *c, int (*fn)(const struct job_row *j, void *arg), void *arg)
{
	struct each_job e = {fn, arg};
	return read_stmt(c, "SELECT " JOB_COLUMNS " FROM jobs ORDER BY started_ms, rowid",
			 "listing jobs", NULL, 0, each_job_row, &e);
}
