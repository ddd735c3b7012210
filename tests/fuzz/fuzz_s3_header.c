/* S3 response header parsing (s3_resp_header): the status line and the
 * headers the backend keeps (ETag, Content-Range, Content-Length), one
 * line at a time as libcurl hands them over.
 *
 * Input: a response head; each line (up to and including '\n') is one
 * callback, as from libcurl.
 *
 * Properties: the kept strings stay NUL-terminated inside their fields
 * whatever the line length; a status line resets what an earlier response
 * left (ETag, Content-Range, Content-Length).
 *
 * Mutations: libFuzzer's, and one time in eight a run of bytes grown long
 * (a line past the parser's 512-byte buffer). */
#include "fuzz.h"
#include "fuzz_mutate.h"
#include "store/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s3_resp resp;
	char reason[64];
	memset(&resp, 0x5a, sizeof(resp));
	memset(reason, 0x5a, sizeof(reason));
	resp.etag[0] = resp.content_range[0] = '\0';
	resp.has_length = false;
	const uint8_t *p = data, *end = data + size;
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		/* libcurl's buffer is not NUL-terminated: hand over an exact copy. */
		char *line = malloc(len);
		FUZZ_CHECK(line, "out of memory");
		memcpy(line, p, len);
		s3_resp_header(&resp, reason, sizeof(reason), line, len);
		free(line);
		FUZZ_CHECK(memchr(resp.etag, '\0', sizeof(resp.etag)), "etag not terminated");
		FUZZ_CHECK(memchr(resp.content_range, '\0', sizeof(resp.content_range)),
			   "content_range not terminated");
		if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
			FUZZ_CHECK(memchr(reason, '\0', sizeof(reason)), "reason not terminated");
			FUZZ_CHECK(!resp.etag[0] && !resp.content_range[0] && !resp.has_length,
				   "a status line kept the previous response's headers");
		}
		p += len;
	}
	return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
	fuzz_rng_seed(seed);
	if (fuzz_rand(8) == 0)
		return fuzz_grow_run(data, size, max_size);
	return LLVMFuzzerMutate(data, size, max_size);
}
