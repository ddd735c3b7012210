/* The S3 XML scanner (store/s3_str.h): xml_next, xml_text and
 * xml_decode, walked the way the object-storage backend reads the
 * server's answers (ListObjectsV2, ListMultipartUploads, Initiate and
 * Complete multipart upload, error documents).
 *
 * Input: an HTTP response body as the server (or anyone on the path of a
 * plain-http endpoint) sends it.
 *
 * Properties: every span found lies inside the document and the scan
 * position only moves forward; xml_text is xml_decode of the span
 * xml_next finds, and never longer than its source. */
#include "fuzz.h"
#include "store/s3_str.h"

/* Containers and the fields the backend reads inside them. */
static const char *const list_fields[] = {"Key", "Size", "LastModified", NULL};
static const char *const upload_fields[] = {"Key", "UploadId", NULL};
static const char *const error_fields[] = {"Code", "Message", NULL};
static const char *const complete_fields[] = {"Location", "ETag", NULL};
static const struct {
	const char *container;
	const char *const *fields;
} walks[] = {
	{"Contents", list_fields},
	{"Upload", upload_fields},
	{"Error", error_fields},
	{"CompleteMultipartUploadResult", complete_fields},
};
/* Fields read from the whole document. */
static const char *const top_fields[] = {
	"IsTruncated", "NextContinuationToken", "NextKeyMarker", "NextUploadIdMarker",
	"UploadId", "Code", "Message",
};

static void check_text(const char *doc, const char *end, struct xml_span span, const char *name)
{
	bool oom = false;
	char *t = xml_text(span, name, &oom);
	FUZZ_CHECK(!oom || !t, "oom set with a result");
	const char *pos = span.p;
	struct xml_span inner;
	bool found = xml_next(&pos, span.p + span.len, name, &inner);
	FUZZ_CHECK(found || !t, "xml_text found <%s> that xml_next does not", name);
	if (found) {
		FUZZ_CHECK(inner.p >= doc && inner.p + inner.len <= end, "<%s> span outside the "
			   "document", name);
		char *d = xml_decode(inner.p, inner.len);
		FUZZ_CHECK(!t == !d && (!t || !strcmp(t, d)), "xml_text and xml_decode disagree "
			   "on <%s>", name);
		/* References only ever shrink: &#x10FFFF; is 10 bytes for 4. */
		FUZZ_CHECK(!d || strlen(d) <= inner.len, "<%s> decodes longer than its source",
			   name);
		free(d);
	}
	free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *doc = (const char *)data, *end = doc + size;
	for (size_t w = 0; w < sizeof(walks) / sizeof(walks[0]); w++) {
		const char *pos = doc;
		struct xml_span c;
		int guard = 0;
		while (xml_next(&pos, end, walks[w].container, &c)) {
			FUZZ_CHECK(pos > doc && pos <= end, "scan position outside the document");
			FUZZ_CHECK(c.p >= doc && c.p + c.len <= pos, "<%s> span outside what was "
				   "scanned", walks[w].container);
			for (const char *const *f = walks[w].fields; *f; f++)
				check_text(doc, end, c, *f);
			FUZZ_CHECK(++guard <= (int)size, "xml_next does not advance");
		}
	}
	struct xml_span all = {doc, size};
	for (size_t i = 0; i < sizeof(top_fields) / sizeof(top_fields[0]); i++)
		check_text(doc, end, all, top_fields[i]);
	return 0;
}
