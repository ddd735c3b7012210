/* Key files: read with the permission checks secrets need, created
 * private and never overwritten, walked line by line. */
#include "crypt/crypt_impl.h"
#include "util/err.h"
#include "util/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYFILE_MAX ((size_t)64 << 10)

/* A secret must be a regular file of ours that nobody else can read or
 * change: refusing anything else is how a key left world-readable by
 * mistake gets noticed. */
static int check_secret(int fd, const char *path, const char *what)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return err_sys("%s %s", what, path);
	if (!S_ISREG(st.st_mode))
		return err_set("%s %s is not a regular file", what, path);
	if (st.st_uid != geteuid())
		return err_set("%s %s is owned by uid %u, not by the caller (uid %u)", what, path,
			       (unsigned)st.st_uid, (unsigned)geteuid());
	if (st.st_mode & 077)
		return err_set("%s %s has mode %04o: a key file must be private (chmod 600 %s)", what,
			       path, (unsigned)(st.st_mode & 07777), path);
	return 0;
}

int keyfile_read(const char *path, bool secret, const char *what, char **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	/* O_NOFOLLOW only for secrets: a recipients or .pub file may well be
	 * a link into a shared directory. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | (secret ? O_NOFOLLOW : 0));
	if (fd < 0)
		return err_sys("%s %s", what, path);
	struct stat st;
	int rc = secret ? check_secret(fd, path, what) : 0;
	if (rc == 0 && fstat(fd, &st) < 0)
		rc = err_sys("%s %s", what, path);
	if (rc == 0 && (size_t)st.st_size > KEYFILE_MAX)
		rc = err_set("%s %s is larger than %zu bytes: not a key file", what, path, KEYFILE_MAX);
	char *b = NULL;
	size_t got = 0;
	if (rc == 0 && !(b = malloc(KEYFILE_MAX + 1)))
		rc = err_set("out of memory");
	if (rc == 0) {
		ssize_t n = read_full(fd, b, KEYFILE_MAX + 1);
		if (n < 0)
			rc = err_sys("reading %s %s", what, path);
		else if ((size_t)n > KEYFILE_MAX)
			rc = err_set("%s %s is larger than %zu bytes: not a key file", what, path,
				     KEYFILE_MAX);
		else
			got = (size_t)n;
	}
	close(fd);
	if (rc == 0 && memchr(b, '\0', got))
		rc = err_set("%s %s is not a text file", what, path);
	/* Callers wipe *len + 1 bytes: hand over an exactly sized copy. */
	char *exact = rc == 0 ? malloc(got + 1) : NULL;
	if (rc == 0 && !exact)
		rc = err_set("out of memory");
	if (rc == 0) {
		memcpy(exact, b, got);
		exact[got] = '\0';
		*buf = exact;
		*len = got;
	}
	wipe_free(b, KEYFILE_MAX + 1);
	return rc;
}

int keyfile_create(const char *path, unsigned mode, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return err_set("%s already exists: refusing to overwrite it", path);
		return err_sys("cannot create %s", path);
	}
	int rc = 0;
	if (fchmod(fd, mode) < 0 || write_full(fd, data, len) < 0 || fsync(fd) < 0)
		rc = err_sys("writing %s", path);
	if (close(fd) < 0 && rc == 0)
		rc = err_sys("writing %s", path);
	if (rc < 0)
		unlink(path);
	return rc;
}

int keyfile_lines(char *text, int (*fn)(void *arg, char *line, int lineno), void *arg)
{
	int lineno = 0;
	char *p = text;
	while (*p) {
		char *end = strchr(p, '\n');
		char *next = end ? end + 1 : p + strlen(p);
		if (end)
			*end = '\0';
		lineno++;
		size_t n = strlen(p);
		if (n && p[n - 1] == '\r')
			p[--n] = '\0';
		if (n && p[0] != '#' && fn(arg, p, lineno) < 0)
			return -1;
		p = next;
	}
	return 0;
}
