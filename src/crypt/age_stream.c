/* The age payload as writer and reader filters: after the header, a
 * 16-byte nonce, then the plaintext in 64 KiB chunks, each sealed with
 * ChaCha20-Poly1305 under the payload key and the nonce
 * counter(11 bytes, big-endian) || last(1 byte). The last chunk is marked,
 * so truncation, reordering and appending are all authentication
 * failures; a chunk's plaintext is returned only after its tag matched. */
#include "crypt/crypt_impl.h"
#include "util/err.h"

#include <stdlib.h>
#include <string.h>

#define SEALED_CHUNK (AGE_CHUNK + AEAD_TAG_LEN)
/* Ciphertext goes to next a sealed chunk at a time: the codec above
 * already writes in large pieces, and a dump's memory is this times the
 * streams. */
#define AGE_OUT_CAP SEALED_CHUNK
/* Ciphertext read from next at a time: at least a sealed chunk and one
 * byte, and a whole header. (The fuzz build makes it smaller, as it does
 * CODEC_IN_CAP: fewer pages touched per input.) */
#ifndef AGE_IN_CAP
#define AGE_IN_CAP ((size_t)1 << 20)
#endif
_Static_assert(AGE_IN_CAP > SEALED_CHUNK && AGE_IN_CAP >= AGE_HEADER_MAX, "AGE_IN_CAP too small");

static void chunk_nonce(uint64_t counter, bool last, uint8_t nonce[AEAD_NONCE_LEN])
{
	memset(nonce, 0, AEAD_NONCE_LEN);
	for (int i = 0; i < 8; i++)
		nonce[10 - i] = (uint8_t)(counter >> (8 * i));
	nonce[11] = last ? 1 : 0;
}

/* ---- encryption ---- */

struct age_w {
	struct writer w;
	struct aead *aead;
	uint64_t counter;
	uint8_t *plain;		/* the chunk being filled */
	size_t plain_len;
	uint8_t *out;		/* sealed chunks not yet written to next */
	size_t out_len;
	bool failed;
};

static int aw_flush(struct age_w *a)
{
	if (a->out_len && writer_write(a->w.next, a->out, a->out_len) < 0)
		return -1;
	a->out_len = 0;
	return 0;
}

/* Seals len bytes at plain as the next chunk into the output buffer. */
static int aw_seal_from(struct age_w *a, const uint8_t *plain, size_t len, bool last)
{
	if (a->out_len + SEALED_CHUNK > AGE_OUT_CAP && aw_flush(a) < 0)
		return -1;
	uint8_t nonce[AEAD_NONCE_LEN];
	chunk_nonce(a->counter, last, nonce);
	if (aead_seal(a->aead, nonce, plain, len, a->out + a->out_len) < 0)
		return -1;
	a->out_len += len + AEAD_TAG_LEN;
	a->counter++;
	return 0;
}

/* Seals the buffered chunk. A full chunk is sealed only once more data
 * follows it, or at close as the last one: the last chunk must be marked. */
static int aw_seal(struct age_w *a, bool last)
{
	if (aw_seal_from(a, a->plain, a->plain_len, last) < 0)
		return -1;
	a->plain_len = 0;
	return 0;
}

static int aw_write(struct writer *w, const void *buf, size_t len)
{
	struct age_w *a = (struct age_w *)w;
	const uint8_t *p = buf;
	if (a->failed)
		return err_set("age: an earlier write failed");
	while (len > 0) {
		if (a->plain_len == AGE_CHUNK && aw_seal(a, false) < 0) {
			a->failed = true;
			return -1;
		}
		/* Whole chunks with more data after them: sealed in place. */
		if (a->plain_len == 0 && len > AGE_CHUNK) {
			if (aw_seal_from(a, p, AGE_CHUNK, false) < 0) {
				a->failed = true;
				return -1;
			}
			p += AGE_CHUNK;
			len -= AGE_CHUNK;
			continue;
		}
		size_t n = AGE_CHUNK - a->plain_len;
		if (n > len)
			n = len;
		memcpy(a->plain + a->plain_len, p, n);
		a->plain_len += n;
		p += n;
		len -= n;
	}
	return 0;
}

static void aw_free(struct age_w *a)
{
	aead_free(a->aead);
	wipe_free(a->plain, AGE_CHUNK);
	free(a->out);
	free(a);
}

static int aw_close(struct writer *w)
{
	struct age_w *a = (struct age_w *)w;
	struct writer *next = w->next;
	bool failed = a->failed;
	if (failed || aw_seal(a, true) < 0 || aw_flush(a) < 0) {
		aw_free(a);
		writer_abort(next);
		return failed ? err_set("age: an earlier write failed") : -1;
	}
	aw_free(a);
	return writer_close(next);
}

static void aw_abort(struct writer *w)
{
	struct writer *next = w->next;
	aw_free((struct age_w *)w);
	writer_abort(next);
}

static const struct writer_ops age_writer_ops = {
	.write = aw_write,
	.close = aw_close,
	.abort = aw_abort,
};

struct writer *age_writer(struct writer *next, const struct age_recipients *r)
{
	uint8_t file_key[AGE_FILE_KEY_LEN], nonce[AGE_NONCE_LEN], key[32];
	char *header = NULL;
	size_t header_len = 0;
	struct age_w *a = calloc(1, sizeof(*a));
	if (!a || !(a->plain = malloc(AGE_CHUNK)) || !(a->out = malloc(AGE_OUT_CAP))) {
		err_set("out of memory");
		goto fail;
	}
	if (age_recipients_count(r) == 0) {
		err_set("age: no recipient");
		goto fail;
	}
	/* A fresh file key and nonce per stream, as the format requires. */
	if (random_bytes(file_key, sizeof(file_key)) < 0 || random_bytes(nonce, sizeof(nonce)) < 0 ||
	    age_header_make(file_key, age_recipients_keys(r), age_recipients_count(r), &header,
			    &header_len) < 0 ||
	    age_payload_key(file_key, nonce, key) < 0 || !(a->aead = aead_new(key)))
		goto fail;
	if (header_len + AGE_NONCE_LEN > AGE_OUT_CAP) {
		err_set("age: header too large");
		goto fail;
	}
	memcpy(a->out, header, header_len);
	memcpy(a->out + header_len, nonce, AGE_NONCE_LEN);
	a->out_len = header_len + AGE_NONCE_LEN;
	free(header);
	wipe(file_key, sizeof(file_key));
	wipe(key, sizeof(key));
	a->w.ops = &age_writer_ops;
	a->w.next = next;
	return &a->w;
fail:
	free(header);
	wipe(file_key, sizeof(file_key));
	wipe(key, sizeof(key));
	if (a)
		aw_free(a);
	return NULL;
}

/* ---- decryption ---- */

struct age_r {
	struct reader r;
	struct aead *aead;
	uint64_t counter;
	uint64_t payload_start;	/* stored offset of the first chunk */
	uint8_t *in;		/* ciphertext read from next */
	size_t in_pos;
	size_t in_len;
	bool eof;		/* next has ended */
	bool last_seen;		/* the final chunk has been opened */
	uint8_t *plain;		/* an opened chunk not yet returned */
	size_t plain_pos;
	size_t plain_len;
};

/* Reads from next until `want` bytes are buffered or next ends. */
static int ar_fill(struct age_r *a, size_t want)
{
	if (a->in_len - a->in_pos >= want || a->eof)
		return 0;
	if (a->in_pos) {
		memmove(a->in, a->in + a->in_pos, a->in_len - a->in_pos);
		a->in_len -= a->in_pos;
		a->in_pos = 0;
	}
	while (a->in_len < want && !a->eof) {
		ssize_t n = reader_read(a->r.next, a->in + a->in_len, AGE_IN_CAP - a->in_len);
		if (n < 0)
			return -1;
		if (n == 0)
			a->eof = true;
		a->in_len += (size_t)n;
	}
	return 0;
}

/* Opens the next chunk into dst (room for AGE_CHUNK bytes), its length
 * into *len; 0 at the clean end. */
static int ar_next_chunk(struct age_r *a, uint8_t *dst, size_t *plain_len)
{
	uint64_t offset = a->payload_start + a->counter * SEALED_CHUNK;
	/* One byte beyond a full chunk tells whether it is the last. */
	if (ar_fill(a, SEALED_CHUNK + 1) < 0)
		return -1;
	size_t avail = a->in_len - a->in_pos;
	if (a->last_seen) {
		if (avail)
			return err_set("age: data after the final chunk at offset %llu",
				       (unsigned long long)offset);
		return 0;
	}
	if (avail == 0)
		return err_set("age: truncated: no final chunk (ends at offset %llu)",
			       (unsigned long long)offset);
	bool last = avail <= SEALED_CHUNK;
	size_t len = last ? avail : SEALED_CHUNK;
	if (len < AEAD_TAG_LEN || (last && len == AEAD_TAG_LEN && a->counter > 0))
		return err_set("age: truncated chunk %llu at offset %llu",
			       (unsigned long long)a->counter, (unsigned long long)offset);
	uint8_t nonce[AEAD_NONCE_LEN];
	chunk_nonce(a->counter, last, nonce);
	/* Plaintext lands in dst before the tag is checked, but a failed
	 * chunk's bytes are never returned: the read fails. */
	if (aead_open(a->aead, nonce, a->in + a->in_pos, len - AEAD_TAG_LEN, dst) < 0)
		return err_set("age: chunk %llu at offset %llu does not authenticate (altered, "
			       "reordered or truncated data)",
			       (unsigned long long)a->counter, (unsigned long long)offset);
	a->in_pos += len;
	a->counter++;
	a->last_seen = last;
	*plain_len = len - AEAD_TAG_LEN;
	return 1;
}

static ssize_t ar_read(struct reader *r, void *buf, size_t cap)
{
	struct age_r *a = (struct age_r *)r;
	uint8_t *out = buf;
	size_t done = 0;
	if (a->plain_pos < a->plain_len) {
		done = a->plain_len - a->plain_pos < cap ? a->plain_len - a->plain_pos : cap;
		memcpy(out, a->plain + a->plain_pos, done);
		a->plain_pos += done;
		return (ssize_t)done;
	}
	/* Whole chunks straight into the caller's buffer while they fit. */
	while (cap - done >= AGE_CHUNK) {
		size_t n;
		int rc = ar_next_chunk(a, out + done, &n);
		if (rc < 0)
			return -1;
		if (rc == 0)
			return (ssize_t)done;
		done += n;
		if (a->last_seen)
			return (ssize_t)done;
	}
	if (done)
		return (ssize_t)done;
	int rc = ar_next_chunk(a, a->plain, &a->plain_len);
	if (rc <= 0)
		return rc;
	a->plain_pos = 0;
	return ar_read(r, buf, cap);
}

static void ar_free(struct age_r *a)
{
	aead_free(a->aead);
	free(a->in);
	wipe_free(a->plain, AGE_CHUNK);
	free(a);
}

static void ar_close(struct reader *r)
{
	struct reader *next = r->next;
	ar_free((struct age_r *)r);
	reader_close(next);
}

static const struct reader_ops age_reader_ops = {
	.read = ar_read,
	.close = ar_close,
};

/* Reads and opens the header: the payload key into key. */
static int ar_open_header(struct age_r *a, const struct age_identities *ids, uint8_t key[32])
{
	struct age_header h;
	int rc;
	for (;;) {
		size_t have = a->in_len;
		if (ar_fill(a, have + 1) < 0)
			return -1;
		rc = age_header_parse(a->in, a->in_len, &h);
		if (rc < 0)
			return err_prefix("age");
		if (rc == 0)
			break;
		if (a->eof)
			return err_set(a->in_len ? "age: truncated header" : "age: empty file");
		if (a->in_len >= AGE_HEADER_MAX)
			return err_set("age: header larger than %zu bytes", AGE_HEADER_MAX);
	}
	uint8_t file_key[AGE_FILE_KEY_LEN];
	rc = age_header_open(&h, a->in, age_identities_keys(ids), age_identities_count(ids),
			     file_key);
	a->in_pos = h.len;
	age_header_free(&h);
	if (rc < 0)
		return err_prefix("age");
	if (ar_fill(a, AGE_NONCE_LEN) < 0 || a->in_len - a->in_pos < AGE_NONCE_LEN) {
		wipe(file_key, sizeof(file_key));
		return a->eof ? err_set("age: truncated before the payload nonce") : -1;
	}
	rc = age_payload_key(file_key, a->in + a->in_pos, key);
	wipe(file_key, sizeof(file_key));
	a->in_pos += AGE_NONCE_LEN;
	a->payload_start = (uint64_t)a->in_pos;
	return rc;
}

struct reader *age_reader(struct reader *next, const struct age_identities *ids)
{
	uint8_t key[32];
	struct age_r *a = calloc(1, sizeof(*a));
	if (!a || !(a->in = malloc(AGE_IN_CAP)) || !(a->plain = malloc(AGE_CHUNK))) {
		err_set("out of memory");
		goto fail;
	}
	a->r.ops = &age_reader_ops;
	a->r.next = next;
	if (ar_open_header(a, ids, key) < 0 || !(a->aead = aead_new(key)))
		goto fail;
	wipe(key, sizeof(key));
	return &a->r;
fail:
	wipe(key, sizeof(key));
	if (a)
		ar_free(a);
	return NULL;
}
