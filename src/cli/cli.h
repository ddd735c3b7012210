/* Command-line front ends. Each command returns the process exit status:
 * 0 success, 1 failure (message printed), 2 usage error. */
#ifndef CRSTREAM_CLI_H
#define CRSTREAM_CLI_H

#include <stdbool.h>
#include <stdint.h>

#define CRSTREAM_VERSION "0.1.0"

#define EXIT_USAGE 2

/* criu-image-streamer compatible commands ("capture", "serve", "extract"
 * given as argv's operation word, anywhere among the options). */
int cmd_streamer(int argc, char **argv, bool as_reference);

/* Prints "crstream: <msg>" plus a hint to --help; returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "64M", "1G", "4096" -> bytes. -1 if malformed. */
int parse_size(const char *s, uint64_t *out);

#endif
