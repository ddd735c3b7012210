/* `crstream ls LOCATION` and `crstream rm CHECKPOINT`. */
#include "checkpoint/layout.h"
#include "checkpoint/manifest.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "daemon/plugin.h"
#include "util/err.h"
#include "util/fmt.h"
#include "util/strmap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What ls knows about one checkpoint (one first-level "directory"). */
struct entry {
	uint64_t bytes;
	int64_t mtime;
	bool has_manifest;
	int streams;		/* img-N objects seen */
};

static int group(const struct store_entry *e, void *arg)
{
	struct strmap *m = arg;
	const char *slash = strchr(e->key, '/');
	if (!slash)
		return 0;	/* loose objects at the top are not checkpoints */
	char name[1024];
	snprintf(name, sizeof(name), "%.*s", (int)(slash - e->key), e->key);
	struct strmap_entry *me = strmap_get(m, name);
	if (!me) {
		struct entry *n = calloc(1, sizeof(*n));
		if (!n || !(me = strmap_add(m, name, n))) {
			free(n);
			return err_set("out of memory");
		}
	}
	struct entry *c = me->value;
	const char *file = slash + 1;
	c->bytes += e->size;
	if (e->mtime > c->mtime)
		c->mtime = e->mtime;
	c->has_manifest |= !strcmp(file, MANIFEST_NAME);
	c->streams += !strncmp(file, "img-", 4) && !strchr(file, '/');
	return 0;
}

struct ls_ctx {
	struct store *s;
	int shown;
};

static int show(struct strmap_entry *me, void *arg)
{
	struct ls_ctx *l = arg;
	struct entry *c = me->value;
	if (!c->has_manifest && !c->streams)
		return 0;
	char size[32], key[1100];
	format_bytes(c->bytes, size, sizeof(size));
	struct manifest m = {0};
	void *json = NULL;
	size_t len;
	const char *status = "no manifest";
	char when[32] = "-", comp[16] = "?";
	int streams = c->streams;
	snprintf(key, sizeof(key), "%s/%s", me->key, MANIFEST_NAME);
	if (c->has_manifest && l->s->ops->get(l->s, key, &json, &len) == 0 &&
	    manifest_parse(json, &m) == 0) {
		status = m.complete ? "complete" : "INCOMPLETE";
		snprintf(when, sizeof(when), "%s", m.started_at);
		snprintf(comp, sizeof(comp), "%s", m.compression);
		streams = m.streams;
	} else if (c->has_manifest) {
		status = "bad manifest";
	}
	/* Names and manifests are whoever wrote them's: escaped. */
	printf("%-40s %-20s %10s %7d  %-11s %s\n", ESCAPED(me->key), ESCAPED(when), size, streams,
	       ESCAPED(comp), status);
	manifest_free(&m);
	free(json);
	l->shown++;
	return 0;
}

static int free_entry(struct strmap_entry *me, void *arg)
{
	(void)arg;
	free(me->value);
	return 0;
}

int cmd_ls(int argc, char **argv)
{
	static const struct location_cmd ls = {
		.name = "ls",
		.usage = "crstream ls [LOCATION]",
		.help = "Lists the checkpoints under a directory, s3://bucket/prefix or\n"
			"gs://bucket/prefix (default: checkpoint.dir): name, start time, size,\n"
			"streams, compression, and whether the dump completed.\n"
			"With --daemon [ADDR] (or $CRSTREAM_DAEMON): the daemon's catalog, all\n"
			"of it or what is under LOCATION, with IDs and jobs.\n",
		.option = "dir",
		.metavar = "LOCATION",
		.optional = true,
		.options = DAEMON_OPTION_HELP,
	};
	const char *flag_addr, *loc;
	char addr_buf[256];
	bool via_daemon = take_daemon_flag(&argc, argv, &flag_addr);
	int status = location_args(argc, argv, &ls, &loc);
	if (status >= 0)
		return status;
	const char *addr = daemon_target(via_daemon, flag_addr, addr_buf, sizeof(addr_buf));
	if (addr) {
		const struct daemon_plugin *p = daemon_plugin("crstream ls --daemon");
		if (!p) {
			err_print(NULL);
			return 1;
		}
		return p->ls(addr, loc);
	}
	struct config *cfg = NULL;
	struct store *s = NULL;
	struct strmap m = {0};
	int rc = open_location(loc, &cfg, &s);
	if (rc == 0)
		rc = strmap_init(&m);
	if (rc == 0)
		rc = s->ops->list(s, "", group, &m);
	if (rc == 0) {
		struct ls_ctx l = {.s = s};
		printf("%-40s %-20s %10s %7s  %-11s %s\n", "NAME", "STARTED", "SIZE", "STREAMS",
		       "COMPRESSION", "STATUS");
		strmap_each(&m, show, &l);
		if (!l.shown)
			fprintf(stderr, "crstream: no checkpoints in %s\n", s->location);
	}
	if (m.buckets) {
		strmap_each(&m, free_entry, NULL);
		strmap_free(&m);
	}
	return close_location(cfg, s, rc);
}

/* The names to remove: only those a checkpoint is made of, at its top;
 * anything else someone put there stays. */
struct rm_ctx {
	struct strmap keys;
	const struct manifest *m;
	bool is_checkpoint;
};

static int collect_key(const struct store_entry *e, void *arg)
{
	struct rm_ctx *c = arg;
	c->is_checkpoint |= !strcmp(e->key, MANIFEST_NAME) || !strncmp(e->key, "img-", 4);
	if (!layout_owns_name(c->m, e->key))
		return 0;
	return strmap_add(&c->keys, e->key, NULL) ? 0 : -1;
}

/* The manifest goes last: a checkpoint half-removed by a failure still
 * says what it was, and restore refuses it for its missing streams. */
static int remove_data(struct strmap_entry *me, void *arg)
{
	struct store *s = arg;
	return strcmp(me->key, MANIFEST_NAME) ? s->ops->remove(s, me->key) : 0;
}

int remove_checkpoint(struct store *s, const char *location, size_t *objects)
{
	struct rm_ctx c = {0};
	struct manifest m = {0};
	void *json = NULL;
	size_t len;
	int rc = strmap_init(&c.keys);
	/* A plain image directory's files are the ones its manifest lists; an
	 * unreadable manifest only means that none of them is removed. */
	if (rc == 0 && s->ops->get(s, MANIFEST_NAME, &json, &len) == 0 && manifest_parse(json, &m) == 0)
		c.m = &m;
	err_clear();
	if (rc == 0)
		rc = s->ops->list(s, "", collect_key, &c);
	if (rc == 0 && !c.is_checkpoint)
		rc = err_set("%s is not a checkpoint (no %s, no img-N streams): nothing removed",
			     location, MANIFEST_NAME);
	if (rc == 0)
		rc = strmap_each(&c.keys, remove_data, s);
	if (rc == 0)
		rc = s->ops->remove(s, MANIFEST_NAME);
	/* A local checkpoint is a directory: it goes too, once empty (what is
	 * not a checkpoint's stays, and so does the directory then). */
	const char *dir = !strncmp(location, "file://", 7) ? location + 7 : location;
	if (rc == 0 && !store_is_remote(location) && rmdir(dir) < 0 && errno != ENOENT &&
	    errno != ENOTEMPTY && errno != EEXIST)
		warnx_("could not remove the directory %s: %s", dir, strerror(errno));
	*objects = c.keys.count;
	if (c.keys.buckets)
		strmap_free(&c.keys);
	manifest_free(&m);
	free(json);
	return rc;
}

int cmd_rm(int argc, char **argv)
{
	static const struct location_cmd rm = {
		.name = "rm",
		.usage = "crstream rm CHECKPOINT",
		.help = "Deletes a checkpoint (its streams or image files, manifest and log),\n"
			"complete or not: only the files a checkpoint is made of, each by name;\n"
			"anything else in its directory stays. Refuses a location that is not a\n"
			"checkpoint.\n"
			"With --daemon [ADDR] (or $CRSTREAM_DAEMON): through the daemon, which\n"
			"drops it from its catalog too; CHECKPOINT may be a catalog ID.\n",
		.option = "path",
		.metavar = "CHECKPOINT",
		.options = DAEMON_OPTION_HELP,
	};
	const char *flag_addr, *loc;
	char addr_buf[256];
	bool via_daemon = take_daemon_flag(&argc, argv, &flag_addr);
	int status = location_args(argc, argv, &rm, &loc);
	if (status >= 0)
		return status;
	const char *addr = daemon_target(via_daemon, flag_addr, addr_buf, sizeof(addr_buf));
	if (addr) {
		const struct daemon_plugin *p = daemon_plugin("crstream rm --daemon");
		if (!p) {
			err_print(NULL);
			return 1;
		}
		return p->rm(addr, loc);
	}
	struct config *cfg = NULL;
	struct store *s = NULL;
	size_t objects = 0;
	int rc = open_location(loc, &cfg, &s);
	if (rc == 0)
		rc = remove_checkpoint(s, loc, &objects);
	if (rc == 0)
		printf("removed %s (%zu objects)\n", loc, objects);
	return close_location(cfg, s, rc);
}
