/* The daemon's SQLite catalog: migrations from an older schema, refusal
 * of a newer one and of a second daemon, and the rows round-tripping. */
#include "unit.h"
#include "daemon/catalog.h"
#include "util/err.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[] = "/tmp/crstream-catalog.XXXXXX";

static void path_of(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", dir, name);
}

/* A file as crstream's first catalog schema (version 1) wrote it. */
static void make_v1(const char *path)
{
	sqlite3 *db;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db,
			   "CREATE TABLE jobs (jid TEXT PRIMARY KEY, pid INTEGER NOT NULL, "
			   "pid_start INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL, "
			   "exit_code INTEGER NOT NULL DEFAULT -1, exit_signal INTEGER NOT NULL DEFAULT 0, "
			   "args TEXT NOT NULL DEFAULT '[]', working_dir TEXT NOT NULL DEFAULT '', "
			   "log TEXT NOT NULL DEFAULT '', started_ms INTEGER NOT NULL, "
			   "child INTEGER NOT NULL DEFAULT 0, restored_from TEXT NOT NULL DEFAULT '');"
			   "CREATE TABLE checkpoints (id TEXT PRIMARY KEY, jid TEXT NOT NULL DEFAULT '', "
			   "pid INTEGER NOT NULL, location TEXT NOT NULL, created_ms INTEGER NOT NULL, "
			   "stored_bytes INTEGER NOT NULL DEFAULT 0, image_bytes INTEGER NOT NULL DEFAULT 0, "
			   "streams INTEGER NOT NULL DEFAULT 0, compression TEXT NOT NULL DEFAULT '', "
			   "state TEXT NOT NULL, error TEXT NOT NULL DEFAULT '', "
			   "manifest_checksum TEXT NOT NULL DEFAULT '');"
			   "INSERT INTO jobs (jid, pid, state, started_ms) VALUES ('old', 42, 'exited', 7);"
			   "INSERT INTO checkpoints (id, jid, pid, location, created_ms, state) VALUES "
			   "('c1', 'old', 42, '/ck/old-1', 8, 'complete');"
			   "PRAGMA user_version = 1;",
			   NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
}

static void test_migrates_version_1(void)
{
	char path[128];
	path_of("v1.db", path, sizeof(path));
	make_v1(path);
	struct catalog *c;
	CHECK(catalog_open(path, &c) == 0);
	if (!c)
		return;
	CHECK(catalog_version(c) == CATALOG_SCHEMA_VERSION);
	char mode[16];
	CHECK(catalog_journal_mode(c, mode, sizeof(mode)) == 0 && !strcmp(mode, "wal"));
	struct job_row j;
	CHECK(catalog_get_job(c, "old", &j) == 0 && j.pid == 42 && j.policy_interval == 0);
	struct ckpt_row r;
	CHECK(catalog_latest_checkpoint(c, "old", &r) == 0 && !strcmp(r.id, "c1") && !r.policy);
	j.policy_interval = 60;
	j.policy_keep = 2;
	CHECK(catalog_update_job(c, &j) == 0);
	CHECK(catalog_get_job(c, "old", &j) == 0 && j.policy_interval == 60 && j.policy_keep == 2);
	catalog_close(c);
}

static void test_refuses_newer_schema_and_second_daemon(void)
{
	char path[128];
	path_of("new.db", path, sizeof(path));
	sqlite3 *db;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	struct catalog *c = NULL;
	CHECK(catalog_open(path, &c) < 0);
	CHECK_ERR("schema version 99 is newer than this crstream's");

	path_of("busy.db", path, sizeof(path));
	struct catalog *first;
	CHECK(catalog_open(path, &first) == 0);
	CHECK(catalog_open(path, &c) < 0);
	CHECK_ERR("in use by another crstream daemon");
	catalog_close(first);
}

static int count(const struct ckpt_row *r, void *arg)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

static void test_checkpoint_rows(void)
{
	char path[128];
	path_of("rows.db", path, sizeof(path));
	struct catalog *c;
	CHECK(catalog_open(path, &c) == 0);
	if (!c)
		return;
	struct ckpt_row r = {.pid = 7, .created_ms = 100, .streams = 4};
	snprintf(r.id, sizeof(r.id), "a");
	snprintf(r.jid, sizeof(r.jid), "j");
	snprintf(r.location, sizeof(r.location), "/ck/j-1");
	snprintf(r.state, sizeof(r.state), "complete");
	CHECK(catalog_add_checkpoint(c, &r) == 0);
	CHECK(catalog_add_checkpoint(c, &r) < 0);
	CHECK_ERR("checkpoint a exists");
	snprintf(r.id, sizeof(r.id), "b");
	snprintf(r.location, sizeof(r.location), "/ck/j-2");
	r.created_ms = 200;
	snprintf(r.state, sizeof(r.state), "in_progress");
	CHECK(catalog_add_checkpoint(c, &r) == 0);
	struct ckpt_row got;
	/* The latest complete one, not the newer one in progress. */
	CHECK(catalog_latest_checkpoint(c, "j", &got) == 0 && !strcmp(got.id, "a"));
	snprintf(r.state, sizeof(r.state), "complete");
	r.stored_bytes = 12345;
	CHECK(catalog_update_checkpoint(c, &r) == 0);
	CHECK(catalog_latest_checkpoint(c, "j", &got) == 0 && !strcmp(got.id, "b") &&
	      got.stored_bytes == 12345);
	CHECK(catalog_checkpoint_at(c, "/ck/j-1", &got) == 0 && !strcmp(got.id, "a"));
	int n = 0;
	CHECK(catalog_each_checkpoint(c, NULL, NULL, "/ck/", count, &n) == 0 && n == 2);
	n = 0;
	CHECK(catalog_each_checkpoint(c, NULL, NULL, "/ck/j", count, &n) == 0 && n == 0);
	CHECK(catalog_delete_checkpoint(c, "a") == 0);
	CHECK(catalog_get_checkpoint(c, "a", &got) == 1);
	CHECK(catalog_get_checkpoint(c, "nope", &got) == 1);
	catalog_close(c);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_migrates_version_1);
	RUN(test_refuses_newer_schema_and_second_daemon);
	RUN(test_checkpoint_rows);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return unit_done();
}
