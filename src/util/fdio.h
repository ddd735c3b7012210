/* Small, checked wrappers around file-descriptor I/O. */
#ifndef CRSTREAM_UTIL_FDIO_H
#define CRSTREAM_UTIL_FDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* Parse a non-negative decimal int that fits an int; -1 if malformed. */
int parse_fd_number(const char *s);

/* Make a directory and its parents with the given mode (existing ok). */
int mkdir_p(const char *path, unsigned mode);

/* Whether path (a file or directory, symlinks followed) may hold code that
 * crstream, usually root, runs: owned by root or the effective user, and
 * writable by nobody else. 0, or -1 with a message starting with label
 * (if not NULL) that says why it is refused. */
int path_trusted(const char *path, const char *label);

#endif
