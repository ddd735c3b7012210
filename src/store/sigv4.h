/* AWS Signature Version 4 for S3-compatible object storage, done here with
 * OpenSSL rather than curl's --aws-sigv4: libcurl 7.88 mis-signs valueless
 * query parameters (`?uploads`) and re-encodes already encoded paths, and
 * strict servers (AWS, Swift's s3api) reject those requests.
 *
 * The caller builds the request path and query with sigv4_uri_encode() and
 * sigv4_canonical_query() and sends exactly those strings, so what is signed
 * is byte for byte what goes on the wire (S3 rule: the path is encoded once,
 * never twice). */
#ifndef CRSTREAM_STORE_SIGV4_H
#define CRSTREAM_STORE_SIGV4_H

#include <stdbool.h>
#include <stddef.h>

#define SIGV4_HEX 65		/* 64 hex digits and a NUL */
#define SIGV4_AMZ_DATE 17	/* "20130524T000000Z" and a NUL */

/* The payload hash to send when the body is not hashed (over https). */
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* SHA-256 of the empty string. */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct sigv4_key {
	const char *access_key;
	const char *secret_key;
	const char *region;	/* "us-east-1"; "auto" for GCS */
	const char *service;	/* "s3" */
};

struct sigv4_header {
	const char *name;	/* any case; lower-cased for signing */
	const char *value;
};

struct sigv4_param {
	const char *name;	/* raw, not encoded */
	const char *value;	/* raw; NULL or "" is signed as "name=" */
};

/* Hex SHA-256 of len bytes. Returns 0 or -1 (OpenSSL failure). */
int sigv4_sha256_hex(const void *data, size_t len, char out[SIGV4_HEX]);

/* RFC 3986 percent-encoding of len bytes: unreserved characters
 * (A-Z a-z 0-9 - . _ ~) stay, every other byte becomes %XX (upper-case
 * hex); '/' stays too when keep_slash (object key paths). Returns a
 * malloc'd string or NULL (out of memory, error set). */
char *sigv4_uri_encode(const char *s, size_t len, bool keep_slash);

/* The canonical query string: names and values encoded, pairs sorted by
 * name then value, joined with '&', every pair written "name=value" (even
 * with an empty value). Also the query to put in the URL. malloc'd ("" for
 * n == 0), NULL on out of memory (error set). */
char *sigv4_canonical_query(const struct sigv4_param *p, size_t n);

/* "YYYYMMDDTHHMMSSZ" for t (UTC). */
void sigv4_amz_date(long long t, char out[SIGV4_AMZ_DATE]);

/* The canonical request (method, path, query, sorted lower-cased headers
 * with trimmed values, signed header list, payload hash). The headers must
 * include host and x-amz-date; each name at most once. malloc'd or NULL. */
char *sigv4_canonical_request(const char *method, const char *canonical_uri,
			      const char *canonical_query, const struct sigv4_header *h,
			      size_t nh, const char *payload_hash);

/* The Authorization header value for a request signed at amz_date.
 * Writes into out; returns 0, or -1 with the error set (message without
 * any secret). */
int sigv4_authorization(const struct sigv4_key *k, const char *method, const char *canonical_uri,
			const char *canonical_query, const struct sigv4_header *h, size_t nh,
			const char *payload_hash, const char *amz_date, char *out, size_t size);

/* The string to sign for a canonical request (exposed for tests). malloc'd
 * or NULL. */
char *sigv4_string_to_sign(const struct sigv4_key *k, const char *amz_date,
			   const char *canonical_request);

#endif
