/* Human-readable formatting for progress lines and summaries. */
#ifndef CRSTREAM_UTIL_FMT_H
#define CRSTREAM_UTIL_FMT_H

#include <stddef.h>
#include <stdint.h>

/* "1.5 GiB", "512 B" */
void format_bytes(uint64_t bytes, char *buf, size_t size);

#endif
