#include "util/bigbuf.h"

#include <sys/mman.h>

void *bigbuf_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Best effort: without huge pages the buffer only faults more often. */
	(void)madvise(p, len, MADV_HUGEPAGE);
	return p;
}

void bigbuf_unmap(void *buf, size_t len)
{
	if (buf)
		munmap(buf, len);
}
