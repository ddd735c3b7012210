/* The local store: a directory, possibly FUSE-mounted. Objects are files
 * under it; checkpoints hold process memory, so directories are 0700 and
 * files 0600 whatever the umask. Writes become durable on close (fsync of
 * the file, then of its directory) so that a checkpoint reported complete
 * survives a crash of the machine.
 *
 * crstream runs as root over directories others may write to: below the
 * root (the user's path), every name is resolved relative to its parent's
 * fd without following symbolic links; new files are created exclusively
 * (an existing name is an error, never a file to truncate); directories
 * written into must be ours and private; objects read must be regular
 * files (a FIFO would block the reader forever). */
#include "store/store.h"
#include "util/err.h"
#include "util/fdio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* The file `crstream check` writes and deletes to probe a location. */
#define PROBE_NAME ".crstream-probe"

struct local_store {
	struct store s;
	char *root;
	/* The root, opened once and then kept: after that its path is never
	 * resolved again, so every operation of a command (the removals of
	 * `rm` after its listing, say) happens in the same directory. */
	pthread_mutex_t mu;
	int rootfd;
};

struct local_writer {
	struct writer w;
	int fd;
	int dirfd;	/* the directory holding it: unlink on abort, fsync on close */
	char *path;	/* for messages */
	char *base;	/* its name in dirfd */
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

/* mkdir -p of path itself, each new directory 0700. */
static int make_dirs(const char *path)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s/", path) >= (int)sizeof(buf))
		return err_set("path too long: %s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) == 0) {
			if (chmod(buf, 0700) < 0)	/* defeat the umask */
				return err_sys("chmod %s", buf);
		} else if (errno != EEXIST) {
			return err_sys("cannot create directory %s", buf);
		}
		*p = '/';
	}
	return 0;
}

/* The root's fd (owned by the store); -1 with errno ENOENT when it does
 * not exist and create is false. */
static int root_fd(struct store *s, bool create)
{
	struct local_store *ls = (struct local_store *)s;
	pthread_mutex_lock(&ls->mu);
	int fd = ls->rootfd;
	if (fd < 0 && (!create || make_dirs(ls->root) == 0)) {
		fd = open(ls->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 && errno == ENOTDIR)
			err_set("%s is not a directory", ls->root);
		else if (fd < 0 && (create || errno != ENOENT))
			err_sys("cannot open directory %s", ls->root);
		ls->rootfd = fd;
	}
	pthread_mutex_unlock(&ls->mu);
	return fd;
}

/* The directories on the way to a key, opened one by one: the root by its
 * path (the user's choice, symbolic links and all), everything below it
 * relative to its parent's fd and never through a symbolic link, so that a
 * checkpoint's content cannot lead reads or writes out of it. */
#define KEY_DEPTH_MAX 8

struct key_path {
	int fd[KEY_DEPTH_MAX + 1];	/* fd[0] the root (the store's), fd[i + 1] is name[i] in fd[i] */
	const char *name[KEY_DEPTH_MAX + 1];	/* name[n]: the key's last component */
	int n;
	char buf[PATH_MAX];	/* the key, split at its slashes */
	char label[PATH_MAX + 64];	/* "root/dir/..." as far as opened, for messages */
};

static void key_close(struct key_path *kp)
{
	for (int i = 1; i <= kp->n; i++)
		if (kp->fd[i] >= 0)
			close(kp->fd[i]);
	kp->n = -1;
}

/* Opens the directories of `key`. Writing creates them as needed (0700)
 * and requires those below the root to be ours and private. Returns 0,
 * 1 when reading and a directory does not exist (no message), -1. */
static int key_open(struct store *s, const char *key, bool write, struct key_path *kp)
{
	const char *root = root_of(s);
	kp->n = -1;
	if (check_key(key) < 0)
		return -1;
	if (snprintf(kp->buf, sizeof(kp->buf), "%s", key) >= (int)sizeof(kp->buf))
		return err_set("object name too long: %s", key);
	snprintf(kp->label, sizeof(kp->label), "%s", root);
	kp->fd[0] = root_fd(s, write);
	if (kp->fd[0] < 0)
		return !write && errno == ENOENT ? 1 : -1;
	kp->n = 0;
	char *p = kp->buf;
	for (char *slash; (slash = strchr(p, '/')); p = slash + 1) {
		*slash = '\0';
		if (kp->n == KEY_DEPTH_MAX) {
			key_close(kp);
			return err_set("object name nested too deep: %s", key);
		}
		kp->name[kp->n] = p;
		size_t len = strlen(kp->label);
		snprintf(kp->label + len, sizeof(kp->label) - len, "/%s", p);
		int fd = dir_open_at(kp->fd[kp->n], p, write, write, kp->label);
		if (fd < 0) {
			bool absent = !write && errno == ENOENT;
			key_close(kp);
			return absent ? 1 : -1;
		}
		kp->fd[++kp->n] = fd;
	}
	kp->name[kp->n] = p;
	return 0;
}

static int key_dirfd(const struct key_path *kp)
{
	return kp->fd[kp->n];
}

static const char *key_base(const struct key_path *kp)
{
	return kp->name[kp->n];
}

/* fsync a directory, so that its new entries are durable. */
static int sync_dir(int dirfd, const char *label)
{
	/* Some FUSE filesystems do not implement fsync on directories. */
	if (fsync(dirfd) < 0 && errno != EINVAL && errno != ENOTSUP)
		return err_sys("fsync %s", label);
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
	if (lw->dirfd >= 0)
		close(lw->dirfd);
	free(lw->path);
	free(lw->base);
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
	if (rc == 0 && sync_dir(lw->dirfd, lw->path) < 0)
		rc = -1;
	/* Not durable is not stored: like abort(), leave no object behind
	 * (a failed dump must not leave a stream file that looks whole). */
	if (rc < 0)
		unlinkat(lw->dirfd, lw->base, 0);
	lw_free(lw);
	return rc;
}

static void lw_abort(struct writer *w)
{
	struct local_writer *lw = (struct local_writer *)w;
	unlinkat(lw->dirfd, lw->base, 0);
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

static struct writer *local_create(struct store *s, const char *key)
{
	struct key_path kp;
	if (key_open(s, key, true, &kp) != 0)
		return NULL;
	struct local_writer *lw = calloc(1, sizeof(*lw));
	if (!lw) {
		key_close(&kp);
		err_set("out of memory");
		return NULL;
	}
	lw->w.ops = &local_writer_ops;
	lw->fd = -1;
	lw->dirfd = fcntl(key_dirfd(&kp), F_DUPFD_CLOEXEC, 0);
	lw->path = join(root_of(s), key);
	lw->base = strdup(key_base(&kp));
	key_close(&kp);
	if (lw->dirfd < 0 || !lw->path || !lw->base) {
		err_set("out of memory");
		lw_free(lw);
		return NULL;
	}
	/* Readable too: the uncompressed fast path hashes what it spliced in
	 * through a mapping of the file. */
	lw->fd = file_create_at(lw->dirfd, lw->base, O_RDWR, lw->path);
	if (lw->fd < 0) {
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

/* The regular file at key, opened for reading. Returns the fd, -1 with
 * errno ENOENT (no message) if there is none, or -1. */
static int open_object(struct store *s, const char *key, const char *path, struct stat *st)
{
	struct key_path kp;
	int rc = key_open(s, key, false, &kp);
	if (rc != 0) {
		if (rc == 1)
			errno = ENOENT;
		return -1;
	}
	int fd = file_open_regular_at(key_dirfd(&kp), key_base(&kp), path, st);
	int saved = errno;
	key_close(&kp);
	errno = saved;
	return fd;
}

static struct reader *local_open_read(struct store *s, const char *key, uint64_t *size)
{
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
	lr->fd = open_object(s, key, lr->path, &st);
	if (lr->fd < 0) {
		if (errno == ENOENT)
			err_set("cannot open %s: %s", lr->path, strerror(ENOENT));
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
	struct key_path kp;
	if (key_open(s, key, true, &kp) != 0)
		return -1;
	int dirfd = key_dirfd(&kp), fd = -1, rc = -1;
	bool created = false;	/* tmp is ours: remove it if anything fails */
	char *path = join(root_of(s), key), *tmp = NULL, *tmp_path = NULL;
	if (!path || asprintf(&tmp, "%s.tmp", key_base(&kp)) < 0 ||
	    asprintf(&tmp_path, "%s.tmp", path) < 0) {
		err_set("out of memory");
		goto out;
	}
	if ((fd = file_create_at(dirfd, tmp, O_WRONLY, tmp_path)) < 0)
		goto out;
	created = true;
	if (write_full(fd, buf, len) < 0) {
		err_sys("%s: write", tmp_path);
		goto out;
	}
	if (fsync(fd) < 0) {
		err_sys("%s: fsync", tmp_path);
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		err_sys("%s: close", tmp_path);
		goto out;
	}
	fd = -1;
	/* rename() is the atomic step: readers see the old or the new file. */
	if (renameat(dirfd, tmp, dirfd, key_base(&kp)) < 0) {
		err_sys("cannot rename %s to %s", tmp_path, path);
		goto out;
	}
	created = false;	/* renamed: now the object */
	rc = sync_dir(dirfd, path);
out:
	if (fd >= 0)
		close(fd);
	if (created)
		unlinkat(dirfd, tmp, 0);
	free(tmp);
	free(tmp_path);
	free(path);
	key_close(&kp);
	return rc;
}

static int local_get(struct store *s, const char *key, void **out, size_t *len)
{
	char *path = join(root_of(s), key);
	if (!path)
		return -1;
	struct stat st;
	int fd = open_object(s, key, path, &st);
	if (fd < 0) {
		int rc = errno == ENOENT ? 1 : -1;
		free(path);
		return rc;
	}
	char *buf = NULL;
	int rc = -1;
	if ((uint64_t)st.st_size > STORE_SMALL_MAX) {
		err_set("%s has %llu bytes, more than the %u a manifest may have", path,
			(unsigned long long)st.st_size, STORE_SMALL_MAX);
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

/* Lists the directory dirfd (rel under the root; takes dirfd over), never
 * following a symbolic link. */
static int walk_dir(struct walk *w, int dirfd, const char *rel, int depth)
{
	DIR *d = fdopendir(dirfd);
	if (!d) {
		int rc = err_sys("cannot list %s/%s", w->root, rel);
		close(dirfd);
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
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISDIR(st.st_mode) && depth < KEY_DEPTH_MAX) {
				int sub = openat(dirfd, de->d_name,
						 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (sub >= 0)
					rc = walk_dir(w, sub, key, depth + 1);
			} else if (S_ISREG(st.st_mode) && !strncmp(key, w->prefix, strlen(w->prefix))) {
				struct store_entry e = {.key = key, .size = (uint64_t)st.st_size,
							.mtime = st.st_mtime};
				rc = w->fn(&e, w->arg);
			}
		}
		free(key);
	}
	closedir(d);
	return rc;
}

static int local_list(struct store *s, const char *prefix, store_list_fn fn, void *arg)
{
	struct walk w = {.root = root_of(s), .prefix = prefix ? prefix : "", .fn = fn, .arg = arg};
	int root = root_fd(s, false);
	/* Unlike an object-storage prefix, a directory exists or not: a
	 * mistyped path is said to be one, not listed as empty. */
	if (root < 0)
		return errno == ENOENT ? err_set("%s does not exist", w.root) : -1;
	int fd = fcntl(root, F_DUPFD_CLOEXEC, 0);	/* walk_dir's to close */
	if (fd < 0)
		return err_sys("cannot list %s", w.root);
	return walk_dir(&w, fd, "", 0);
}

static int local_remove(struct store *s, const char *key)
{
	struct key_path kp;
	int rc = key_open(s, key, false, &kp);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (unlinkat(key_dirfd(&kp), key_base(&kp), 0) < 0 && errno != ENOENT)
		rc = err_sys("cannot remove %s/%s", root_of(s), key);
	/* Drop directories the removal left empty, up to the root. */
	for (int i = kp.n - 1; rc == 0 && i >= 0; i--)
		if (unlinkat(kp.fd[i], kp.name[i], AT_REMOVEDIR) < 0)
			break;
	key_close(&kp);
	return rc;
}

static int local_probe(struct store *s, char *report, size_t size)
{
	const char *root = root_of(s);
	int dirfd = root_fd(s, true);
	if (dirfd < 0)
		return -1;
	char *probe = join(root, PROBE_NAME);
	int rc = probe ? 0 : -1;
	int fd = probe ? file_create_at(dirfd, PROBE_NAME, O_WRONLY, probe) : -1;
	if (fd < 0) {
		rc = -1;
	} else {
		if (write_full(fd, "probe\n", 6) < 0 || fsync(fd) < 0)
			rc = err_sys("%s: write", probe);
		close(fd);
		unlinkat(dirfd, PROBE_NAME, 0);
	}
	free(probe);
	struct statvfs vfs;
	if (rc == 0 && fstatvfs(dirfd, &vfs) < 0)
		rc = err_sys("statvfs %s", root);
	if (rc == 0)
		snprintf(report, size, "%s: write+delete ok, %.1f GiB free", root,
			 (double)vfs.f_bavail * (double)vfs.f_frsize / (1u << 30));
	return rc;
}

static void local_close(struct store *s)
{
	struct local_store *ls = (struct local_store *)s;
	if (ls->rootfd >= 0)
		close(ls->rootfd);
	pthread_mutex_destroy(&ls->mu);
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
	ls->rootfd = -1;
	pthread_mutex_init(&ls->mu, NULL);
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
