/* Human-readable formatting for progress lines and summaries, and text
 * from checkpoints made safe to print. */
#ifndef CRSTREAM_UTIL_FMT_H
#define CRSTREAM_UTIL_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* "1.5 GiB", "512 B" */
void format_bytes(uint64_t bytes, char *buf, size_t size);

/* Strings from a checkpoint (file names, hostnames, versions, a server's
 * error document) are whatever their writer chose: printed as they are,
 * they could move the cursor, rewrite the terminal's title or forge lines
 * in a log. These escape control characters (C0, DEL and the C1 range
 * U+0080..U+009F) and bytes that are not valid UTF-8 as \xNN; printable
 * ASCII and valid UTF-8 text are kept as they are.
 *
 * escape_text writes into out (cut at size, always NUL-terminated) and
 * returns out; fputs_escaped prints all of s. */
char *escape_text(const char *s, char *out, size_t size);
void fputs_escaped(const char *s, FILE *f);

/* escape_text into a buffer that lives as long as the enclosing block, for
 * printf arguments: printf("%s\n", ESCAPED(m->hostname)). Long enough for
 * any file name (NAME_MAX bytes, each escaped). */
#define ESCAPED_MAX 1040
#define ESCAPED(s) escape_text((s), (char[ESCAPED_MAX]){0}, ESCAPED_MAX)

#endif
