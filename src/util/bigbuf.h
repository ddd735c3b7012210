/* Large buffers that live long and are reused (the restore's buffer pool,
 * object-storage parts and ranges): mapped, not malloc'd, with a hint for
 * transparent huge pages. Fresh anonymous memory faults in at about half a
 * GB/s here, a 4 KiB page at a time: a malloc'd buffer per 8 MiB part cost
 * an S3 restore more page faults than bytes it downloaded. Mapped once and
 * reused, with huge pages where the kernel gives them, that cost is paid
 * once and in 2 MiB steps. */
#ifndef CRSTREAM_UTIL_BIGBUF_H
#define CRSTREAM_UTIL_BIGBUF_H

#include <stddef.h>

/* len bytes of zeroed, private memory (address space now, pages on first
 * touch); NULL with errno set if it cannot be mapped. */
void *bigbuf_map(size_t len);

/* Unmaps what bigbuf_map(len) returned (NULL is fine). */
void bigbuf_unmap(void *buf, size_t len);

#endif
