/* Small, checked wrappers around file-descriptor I/O. */
#ifndef CRSTREAM_UTIL_FDIO_H
#define CRSTREAM_UTIL_FDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

/* Read until len bytes or EOF; returns bytes read (< len only at EOF), -1 on
 * error (errno kept, no message set: callers know the context). */
ssize_t read_full(int fd, void *buf, size_t len);

/* Write all len bytes; -1 on error (errno kept). */
int write_full(int fd, const void *buf, size_t len);

/* Bytes waiting in a pipe (FIONREAD); -1 on error. */
int pipe_queued(int fd);

/* Try to set a pipe's capacity to `want` bytes, falling back to smaller
 * powers of two when the kernel refuses (pipe-max-size, pipe-user-pages-*).
 * Returns the resulting capacity, or -1 if fd is not a pipe. */
int pipe_grow(int fd, int want);

/* Kind of an fd as the shard / ext-file options need it. */
enum fd_kind { FD_PIPE, FD_REGULAR, FD_SOCKET, FD_OTHER };

/* Checks that fd is open and usable in the given direction. On failure,
 * sets an error naming `what` (e.g. "--shard-fds: fd 7"). */
int fd_check(int fd, bool for_writing, const char *what, enum fd_kind *kind);

int set_nonblock(int fd, bool on);
int set_cloexec(int fd);

/* Monotonic clock in nanoseconds / milliseconds. */
uint64_t now_ns(void);
uint64_t now_ms(void);

/* The CLOCK_REALTIME time ms milliseconds from now: the deadline that
 * pthread_cond_timedwait() takes. */
struct timespec deadline_after_ms(int ms);

/* Scratch files (the restore's spill, the copies held until verified):
 * unnamed (O_TMPFILE, 0600), so nothing is left behind whichever way we
 * exit, in $TMPDIR (or /tmp), and never filling their filesystem to the
 * last TMP_FREE_MARGIN bytes. */
#define TMP_FREE_MARGIN (64ull << 20)
const char *tmp_dir(void);
/* A new scratch file in dir: an fd, or -1 with errno set. */
int tmpfile_open(const char *dir);
/* Bytes free to an unprivileged writer on fd's filesystem (dir names it
 * in the message). 0, or -1 with an error set. */
int fs_free_bytes(int fd, const char *dir, uint64_t *avail);

/* Parse a non-negative decimal int that fits an int; -1 if malformed. */
int parse_fd_number(const char *s);

/* A single path component: not empty, no '/', not "." or "..", at most
 * NAME_MAX bytes. Image file names from checkpoints must be. */
bool is_plain_name(const char *name);

/* Make a directory and its parents with the given mode (existing ok). */
int mkdir_p(const char *path, unsigned mode);

/* Files crstream creates run as root in directories others may write to:
 * every name is resolved relative to a directory fd, never through a
 * symbolic link, and an existing file is an error, never overwritten.
 * `label` names the directory (or file) in messages. */

/* The directory `name` in atfd, opened O_DIRECTORY|O_NOFOLLOW. With
 * `create`, made (mode 0700) if absent. With `for_writing`, it must belong
 * to the effective user and not be writable by group or others, whoever
 * made it: otherwise someone else could swap the files written in it. */
int dir_open_at(int atfd, const char *name, bool create, bool for_writing, const char *label);

/* Checks a directory fd for writing into, as dir_open_at does. */
int dir_check_private(int dirfd, const char *label);

/* Creates `name` in dirfd (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600 whatever
 * the umask); accmode is O_WRONLY or O_RDWR. An existing name, symbolic
 * link or not, is refused. */
int file_create_at(int dirfd, const char *name, int accmode, const char *label);

/* Opens `name` in dirfd for reading: a regular file (not a FIFO, device or
 * directory), not through a symbolic link, without blocking. errno is
 * ENOENT (no message set) when there is no such name; *st gets its stat. */
int file_open_regular_at(int dirfd, const char *name, const char *label, struct stat *st);
/* Whether path (a file or directory, symlinks followed) may hold code that
 * crstream, usually root, runs: owned by root or the effective user, and
 * writable by nobody else. 0, or -1 with a message starting with label
 * (if not NULL) that says why it is refused. */
int path_trusted(const char *path, const char *label);

#endif
