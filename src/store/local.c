/* The local store: a directory, possibly FUSE-mounted. Objects are files
 * under it; checkpoints hold process memory, so directories are 0700 and
 * files 0600 whatever the umask. Writes become durable on close (fsync of
 * the file, then of its directory) so that a checkpoint reported complete
 * survives a crash of the machine. */
#include "store/store.h"
#include "util/err.h"
#include "util/fdio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

struct local_store {
	struct store s;
	char *root;
};

struct local_writer {
	struct writer w;
	int fd;
	char *path;
	uint64_t offset;
};

struct local_reader {
	struct reader r;
	int fd;
	char *path;
	uint64_t offset;
};

static const char *root_of(struct store *s)
{
	return ((struct local_store *)s)->root;
}

static char *join(const char *root, const char *key)
{
	char *p;
	if (asprintf(&p, "%s/%s", root, key) < 0) {
		err_set("out of memory");
		return NULL;
	}
	return p;
}

/* Keys are relative and stay under the root. */
static int check_key(const char *key)
{
	bool bad = !key[0] || key[0] == '/';
	for (const char *p = key; !bad && *p; p = strchr(p, '/') ? strchr(p, '/') + 1 : p + strlen(p))
		bad = !strncmp(p, "..", 2) && (p[2] == '/' || p[2] == '\0');
	return bad ? err_set("invalid object name \"%s\"", key) : 0;
}

/* mkdir -p of path's parent, each new directory 0700. */
static int make_parents(const char *path)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return err_set("path too long: %s", path);
	char *slash = strrchr(buf, '/');
	if (!slash || slash == buf)
		return 0;
	*slash = '\0';
	for (char *p = buf + 1; ; p++) {
		bool end = *p == '\0';
		if (*p != '/' && !end)
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) == 0) {
			if (chmod(buf, 0700) < 0)	/* defeat the umask */
				return err_sys("chmod %s", buf);
		} else if (errno != EEXIST) {
			return err_sys("cannot create directory %s", buf);
		}
		if (end)
			break;
		*p = '/';
	}
	return 0;
}

/* fsync the directory holding path, so that its new entry is durable. */
static int sync_parent(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	char *slash = strrchr(buf, '/');
	if (slash == buf)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(buf, ".");
	int fd = open(buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_sys("cannot open directory %s", buf);
	int rc = fsync(fd);
	int saved = errno;
	close(fd);
	errno = saved;
	/* Some FUSE filesystems do not implement fsync on directories. */
	if (rc < 0 && errno != EINVAL && errno != ENOTSUP)
		return err_sys("fsync %s", buf);
	return 0;
}

/* ---- writer ---- */

static int lw_write(struct writer *w, const void *buf, size_t len)
{
	struct local_writer *lw = (struct local_writer *)w;
	if (write_full(lw->fd, buf, len) < 0)
		return err_sys("%s: write at offset %llu", lw->path, (unsigned long long)lw->offset);
	lw->offset += len;
	return 0;
}

static void lw_free(struct local_writer *lw)
{
	if (lw->fd >= 0)
		close(lw->fd);
	free(lw->path);
	free(lw);
}

static int lw_close(struct writer *w)
{
	struct local_writer *lw = (struct local_writer *)w;
	int rc = 0;
	if (fsync(lw->fd) < 0)
		rc = err_sys("%s: fsync after %llu bytes", lw->path, (unsigned long long)lw->offset);
	if (close(lw->fd) < 0 && rc == 0)
		rc = err_sys("%s: close", lw->path);
	lw->fd = -1;
	if (rc == 0 && sync_parent(lw->path) < 0)
		rc = -1;
	/* Not durable is not stored: like abort(), leave no object behind
	 * (a failed dump must not leave a stream file that looks whole). */
	if (rc < 0)
		unlink(lw->path);
	lw_free(lw);
	return rc;
}

static void lw_abort(struct writer *w)
{
	struct local_writer *lw = (struct local_writer *)w;
	unlink(lw->path);
	lw_free(lw);
}

static int lw_local_fd(struct writer *w)
{
	return ((struct local_writer *)w)->fd;
}

static const struct writer_ops local_writer_ops = {
	.write = lw_write,
	.close = lw_close,
	.abort = lw_abort,
	.local_fd = lw_local_fd,
};

static int open_private(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys("cannot create %s", path);
	if (fchmod(fd, 0600) < 0) {	/* defeat the umask and old modes */
		err_sys("chmod %s", path);
		close(fd);
		return -1;
	}
	return fd;
}

static struct writer *local_create(struct store *s, const char *key)
{
	if (check_key(key) < 0)
		return NULL;
	struct local_writer *lw = calloc(1, sizeof(*lw));
	if (!lw) {
		err_set("out of memory");
		return NULL;
	}
	lw->w.ops = &local_writer_ops;
	lw->fd = -1;
	lw->path = join(root_of(s), key);
	if (!lw->path || make_parents(lw->path) < 0 ||
	    /* Readable too: the uncompressed fast path hashes what it spliced
	     * in through a mapping of the file. */
	    (lw->fd = open_private(lw->path, O_RDWR | O_CREAT | O_TRUNC)) < 0) {
		lw_free(lw);
		return NULL;
	}
	return &lw->w;
}

/* ---- reader ---- */

static ssize_t lr_read(struct reader *r, void *buf, size_t cap)
{
	struct local_reader *lr = (struct local_reader *)r;
	for (;;) {
		ssize_t n = read(lr->fd, buf, cap);
		if (n >= 0) {
			lr->offset += (uint64_t)n;
			return n;
		}
		if (errno != EINTR)
			return err_sys("%s: read at offset %llu", lr->path,
				       (unsigned long long)lr->offset);
	}
}

static void lr_close(struct reader *r)
{
	struct local_reader *lr = (struct local_reader *)r;
	close(lr->fd);
	free(lr->path);
	free(lr);
}

static int lr_local_fd(struct reader *r)
{
	return ((struct local_reader *)r)->fd;
}

static const struct reader_ops local_reader_ops = {
	.read = lr_read,
	.close = lr_close,
	.local_fd = lr_local_fd,
};

static struct reader *local_open_read(struct store *s, const char *key, uint64_t *size)
{
	if (check_key(key) < 0)
		return NULL;
	struct local_reader *lr = calloc(1, sizeof(*lr));
	struct stat st;
	if (!lr) {
		err_set("out of memory");
		return NULL;
	}
	lr->r.ops = &local_reader_ops;
	lr->path = join(root_of(s), key);
	if (!lr->path) {
		free(lr);
		return NULL;
	}
	lr->fd = open(lr->path, O_RDONLY | O_CLOEXEC);
	if (lr->fd < 0 || fstat(lr->fd, &st) < 0) {
		err_sys("cannot open %s", lr->path);
		if (lr->fd >= 0)
			close(lr->fd);
		free(lr->path);
		free(lr);
		return NULL;
	}
	/* Reading a stream once, front to back. */
	posix_fadvise(lr->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (size)
		*size = (uint64_t)st.st_size;
	return &lr->r;
}

/* ---- small objects ---- */

static int local_put(struct store *s, const char *key, const void *buf, size_t len)
{
	if (check_key(key) < 0)
		return -1;
	char *path = join(root_of(s), key), *tmp = NULL;
	int fd = -1, rc = -1;
	if (!path || make_parents(path) < 0 || asprintf(&tmp, "%s.tmp", path) < 0)
		goto out;
	if ((fd = open_private(tmp, O_WRONLY | O_CREAT | O_TRUNC)) < 0)
		goto out;
	if (write_full(fd, buf, len) < 0) {
		err_sys("%s: write", tmp);
		goto out;
	}
	if (fsync(fd) < 0) {
		err_sys("%s: fsync", tmp);
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		err_sys("%s: close", tmp);
		goto out;
	}
	fd = -1;
	/* rename() is the atomic step: readers see the old or the new file. */
	if (rename(tmp, path) < 0) {
		err_sys("cannot rename %s to %s", tmp, path);
		goto out;
	}
	rc = sync_parent(path);
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0 && tmp)
		unlink(tmp);
	free(tmp);
	free(path);
	return rc;
}

static int local_get(struct store *s, const char *key, void **out, size_t *len)
{
	if (check_key(key) < 0)
		return -1;
	char *path = join(root_of(s), key);
	if (!path)
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int rc = errno == ENOENT ? 1 : err_sys("cannot open %s", path);
		free(path);
		return rc;
	}
	struct stat st;
	char *buf = NULL;
	int rc = -1;
	if (fstat(fd, &st) < 0) {
		err_sys("%s", path);
	} else if (!(buf = malloc((size_t)st.st_size + 1))) {
		err_set("out of memory");
	} else {
		ssize_t n = read_full(fd, buf, (size_t)st.st_size);
		if (n < 0) {
			err_sys("%s: read", path);
		} else {
			buf[n] = '\0';
			*out = buf;
			*len = (size_t)n;
			buf = NULL;
			rc = 0;
		}
	}
	free(buf);
	close(fd);
	free(path);
	return rc;
}

/* ---- listing and removal ---- */

struct walk {
	const char *root;
	const char *prefix;
	store_list_fn fn;
	void *arg;
};

static int walk_dir(struct walk *w, const char *rel, int depth)
{
	char *dir = rel[0] ? join(w->root, rel) : strdup(w->root);
	if (!dir)
		return err_set("out of memory");
	DIR *d = opendir(dir);
	if (!d) {
		int rc = (errno == ENOENT && !rel[0]) ? 0 : err_sys("cannot list %s", dir);
		free(dir);
		return rc;
	}
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *key;
		if (asprintf(&key, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) < 0) {
			rc = err_set("out of memory");
			break;
		}
		struct stat st;
		char *path = join(w->root, key);
		if (path && lstat(path, &st) == 0) {
			if (S_ISDIR(st.st_mode) && depth < 8)
				rc = walk_dir(w, key, depth + 1);
			else if (S_ISREG(st.st_mode) && !strncmp(key, w->prefix, strlen(w->prefix))) {
				struct store_entry e = {.key = key, .size = (uint64_t)st.st_size,
							.mtime = st.st_mtime};
				rc = w->fn(&e, w->arg);
			}
		}
		free(path);
		free(key);
	}
	closedir(d);
	free(dir);
	return rc;
}

static int local_list(struct store *s, const char *prefix, store_list_fn fn, void *arg)
{
	struct walk w = {.root = root_of(s), .prefix = prefix ? prefix : "", .fn = fn, .arg = arg};
	return walk_dir(&w, "", 0);
}

static int local_remove(struct store *s, const char *key)
{
	if (check_key(key) < 0)
		return -1;
	char *path = join(root_of(s), key);
	if (!path)
		return -1;
	int rc = 0;
	if (unlink(path) < 0 && errno != ENOENT)
		rc = err_sys("cannot remove %s", path);
	/* Drop directories the removal left empty, up to the root. */
	for (char *slash; rc == 0 && (slash = strrchr(path, '/'));) {
		*slash = '\0';
		if (strlen(path) <= strlen(root_of(s)) || rmdir(path) < 0)
			break;
	}
	free(path);
	return rc;
}

static int local_probe(struct store *s, char *report, size_t size)
{
	const char *root = root_of(s);
	if (mkdir_p(root, 0700) < 0)
		return -1;
	char *probe = join(root, ".crstream-probe");
	if (!probe)
		return -1;
	int fd = open_private(probe, O_WRONLY | O_CREAT | O_TRUNC);
	int rc = fd < 0 ? -1 : 0;
	if (fd >= 0) {
		if (write_full(fd, "probe\n", 6) < 0 || fsync(fd) < 0)
			rc = err_sys("%s: write", probe);
		close(fd);
		unlink(probe);
	}
	free(probe);
	struct statvfs vfs;
	if (rc == 0 && statvfs(root, &vfs) < 0)
		rc = err_sys("statvfs %s", root);
	if (rc == 0)
		snprintf(report, size, "%s: write+delete ok, %.1f GiB free", root,
			 (double)vfs.f_bavail * (double)vfs.f_frsize / (1u << 30));
	return rc;
}

static void local_close(struct store *s)
{
	struct local_store *ls = (struct local_store *)s;
	free(ls->root);
	free(s->location);
	free(ls);
}

static bool local_handles(const char *location)
{
	return !strstr(location, "://") || !strncmp(location, "file://", 7);
}

static int local_open(const char *location, const struct store_options *opt, struct store **out);

const struct store_ops local_store_ops = {
	.scheme = "file",
	.handles = local_handles,
	.open = local_open,
	.create = local_create,
	.open_read = local_open_read,
	.put = local_put,
	.get = local_get,
	.list = local_list,
	.remove = local_remove,
	.probe = local_probe,
	.close = local_close,
};

static int local_open(const char *location, const struct store_options *opt, struct store **out)
{
	(void)opt;
	const char *path = strncmp(location, "file://", 7) ? location : location + 7;
	struct local_store *ls = calloc(1, sizeof(*ls));
	if (!ls)
		return err_set("out of memory");
	ls->s.ops = &local_store_ops;
	ls->s.location = strdup(location);
	ls->root = strdup(*path ? path : ".");
	if (!ls->s.location || !ls->root) {
		local_close(&ls->s);
		return err_set("out of memory");
	}
	/* Trailing slashes would double up in messages. */
	for (size_t n = strlen(ls->root); n > 1 && ls->root[n - 1] == '/'; n--)
		ls->root[n - 1] = '\0';
	*out = &ls->s;
	return 0;
}
