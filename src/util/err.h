/* One-line error messages, carried per thread from where a failure happens
 * to the top level, which prints it and exits non-zero.
 *
 * Functions that can fail return -1 (or NULL) after calling err_set() or
 * err_sys(). Callers that know more context (the shard, the file, the
 * offset) add it with err_prefix(), so the final line reads outside-in:
 *   "shard 1 (fd 4): offset 8192: marker length 70000 exceeds 10240 bytes"
 */
#ifndef CRSTREAM_UTIL_ERR_H
#define CRSTREAM_UTIL_ERR_H

#include <stddef.h>

#define ERR_MAX 1024

/* Set the message; returns -1 so that `return err_set(...)` reads naturally. */
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Like err_set(), with ": strerror(errno)" appended (errno is read first). */
int err_sys(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prepend "<context>: " to the current message; returns -1. */
int err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The current thread's message ("" if none). */
const char *err_msg(void);

/* Copy the current message into buf (for handing errors across threads). */
void err_copy(char *buf, size_t size);

/* Clear the current message. */
void err_clear(void);

/* Print "<prog>: <message>" on stderr. */
void err_print(const char *prog);

/* Program name used in diagnostics ("crstream" or "criu-image-streamer"). */
extern const char *err_progname;

/* Diagnostics for the user that are not errors (stderr, prefixed). */
void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
