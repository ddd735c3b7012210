/* Small string helpers for the object-storage backend: a growable string
 * builder, and the few things it needs from the S3 XML responses.
 *
 * Why not libxml2: the responses we read (ListObjectsV2, Error,
 * InitiateMultipartUpload, CompleteMultipartUpload, ListMultipartUploads)
 * are flat, fixed-schema documents of a handful of element names without
 * attributes we care about, namespaces we need, CDATA or DTDs. A scanner
 * that finds <Name>text</Name> and decodes the five entities and numeric
 * references is a few dozen lines, easy to audit, and adds no library to
 * every crstream binary. It never recurses and never reads outside the
 * buffer. */
#ifndef CRSTREAM_STORE_S3_STR_H
#define CRSTREAM_STORE_S3_STR_H

#include <stdbool.h>
#include <stddef.h>

struct sbuf {
	char *s;		/* NUL-terminated when len > 0 or after sbuf_cstr */
	size_t len;
	size_t cap;
	bool oom;		/* an append failed; checked once at the end */
};

void sbuf_add(struct sbuf *b, const char *s, size_t len);
void sbuf_adds(struct sbuf *b, const char *s);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s with & < > " ' escaped for XML text. */
void sbuf_add_xml(struct sbuf *b, const char *s);
/* The string ("" when empty), or NULL with "out of memory" set if any
 * append failed. Ownership stays with b. */
const char *sbuf_cstr(struct sbuf *b);
/* Hands the string over (caller frees) or NULL on out of memory. */
char *sbuf_take(struct sbuf *b);
void sbuf_free(struct sbuf *b);

/* A view of an element's content: [p, p+len) inside the document. */
struct xml_span {
	const char *p;
	size_t len;
};

/* Finds the next <name>...</name> (or <name/>) in [*pos, end), skipping
 * elements with other names; on success sets *out to its raw content and
 * advances *pos past the closing tag. A tag with attributes
 * (<name xmlns="...">) matches too. Returns false when there is none. */
bool xml_next(const char **pos, const char *end, const char *name, struct xml_span *out);

/* The first <name> element's text inside span, decoded into a malloc'd
 * string; NULL if absent or out of memory (*oom set then). */
char *xml_text(struct xml_span in, const char *name, bool *oom);

/* Decodes entities of [p, p+len) into a malloc'd string (NULL on out of
 * memory or a malformed reference). */
char *xml_decode(const char *p, size_t len);

/* Parses a size: "8388608", "8M", "8MiB", "5m", "1G" (binary units).
 * Returns 0 or -1. */
int s3_parse_size(const char *s, unsigned long long *out);

#endif
