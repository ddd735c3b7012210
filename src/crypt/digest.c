/* Chunk digests of stored bytes: the dump side records the SHA-256 of
 * every DIGEST_CHUNK of a stream as it goes to the store; the restore side
 * holds back each chunk until its digest matched the signed list, so that
 * nothing downstream (decryption, the decoder, CRIU) ever sees a byte the
 * signer did not write. */
#include "crypt/crypt_impl.h"
#include "util/err.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sha256_ctx {
	EVP_MD *md;
	EVP_MD_CTX *ctx;
};

static int sha256_init(struct sha256_ctx *c)
{
	c->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	c->ctx = EVP_MD_CTX_new();
	if (!c->md || !c->ctx || EVP_DigestInit_ex2(c->ctx, c->md, NULL) != 1)
		return err_set("SHA-256: cannot initialise");
	return 0;
}

static void sha256_done(struct sha256_ctx *c)
{
	EVP_MD_CTX_free(c->ctx);
	EVP_MD_free(c->md);
}

/* The digest so far into out, and a fresh start. */
static int sha256_take(struct sha256_ctx *c, uint8_t out[DIGEST_LEN])
{
	unsigned len = 0;
	if (EVP_DigestFinal_ex(c->ctx, out, &len) != 1 || len != DIGEST_LEN ||
	    EVP_DigestInit_ex2(c->ctx, c->md, NULL) != 1)
		return err_set("SHA-256 failed");
	return 0;
}

int digest_hex(const void *buf, size_t len, char hex[DIGEST_HEX + 1])
{
	uint8_t d[DIGEST_LEN];
	if (sha256(buf, len, d) < 0)
		return -1;
	hex_encode(d, sizeof(d), hex);
	return 0;
}

static int append_digest(struct chunk_digests *d, const uint8_t digest[DIGEST_LEN])
{
	/* Doubling: a 1 TiB stream has 262,144 chunks. */
	if ((d->count & (d->count - 1)) == 0) {
		size_t cap = d->count ? 2 * d->count : 16;
		void *p = realloc(d->digest, cap * DIGEST_LEN);
		if (!p)
			return err_set("out of memory");
		d->digest = p;
	}
	memcpy(d->digest[d->count++], digest, DIGEST_LEN);
	return 0;
}

/* ---- dump: the digest writer ---- */

struct digest_w {
	struct writer w;
	struct sha256_ctx sha;
	struct chunk_digests *out;
	uint64_t in_chunk;	/* bytes of the current chunk so far */
};

static int dw_write(struct writer *w, const void *buf, size_t len)
{
	struct digest_w *d = (struct digest_w *)w;
	const uint8_t *p = buf;
	size_t left = len;
	while (left > 0) {
		uint64_t room = d->out->chunk_size - d->in_chunk;
		size_t n = left < room ? left : (size_t)room;
		if (EVP_DigestUpdate(d->sha.ctx, p, n) != 1)
			return err_set("SHA-256 failed");
		d->in_chunk += n;
		p += n;
		left -= n;
		if (d->in_chunk == d->out->chunk_size) {
			uint8_t digest[DIGEST_LEN];
			if (sha256_take(&d->sha, digest) < 0 || append_digest(d->out, digest) < 0)
				return -1;
			d->in_chunk = 0;
		}
	}
	d->out->bytes += len;
	return writer_write(w->next, buf, len);
}

static int dw_close(struct writer *w)
{
	struct digest_w *d = (struct digest_w *)w;
	struct writer *next = w->next;
	int rc = 0;
	if (d->in_chunk > 0) {
		uint8_t digest[DIGEST_LEN];
		rc = sha256_take(&d->sha, digest);
		if (rc == 0)
			rc = append_digest(d->out, digest);
	}
	sha256_done(&d->sha);
	free(d);
	if (rc < 0) {
		writer_abort(next);
		return -1;
	}
	return writer_close(next);
}

static void dw_abort(struct writer *w)
{
	struct digest_w *d = (struct digest_w *)w;
	struct writer *next = w->next;
	sha256_done(&d->sha);
	free(d);
	writer_abort(next);
}

static const struct writer_ops digest_writer_ops = {
	.write = dw_write,
	.close = dw_close,
	.abort = dw_abort,
};

struct writer *digest_writer(struct writer *next, struct chunk_digests *out)
{
	struct digest_w *d = calloc(1, sizeof(*d));
	if (!d) {
		err_set("out of memory");
		return NULL;
	}
	if (sha256_init(&d->sha) < 0) {
		sha256_done(&d->sha);
		free(d);
		return NULL;
	}
	memset(out, 0, sizeof(*out));
	out->chunk_size = DIGEST_CHUNK;
	d->out = out;
	d->w.ops = &digest_writer_ops;
	d->w.next = next;
	return &d->w;
}

/* ---- restore: the verifying reader ---- */

struct verify_r {
	struct reader r;
	struct sha256_ctx sha;
	const struct chunk_digests *expect;
	uint64_t chunk;		/* the next chunk to read */
	uint8_t *buf;		/* a verified chunk */
	size_t pos;
	size_t len;
};

static size_t chunk_len(const struct chunk_digests *e, uint64_t i)
{
	return i + 1 < e->count ? (size_t)e->chunk_size : (size_t)(e->bytes - i * e->chunk_size);
}

/* Reads, digests and compares the next chunk; 0 at the verified end. */
static int vr_next_chunk(struct verify_r *v)
{
	const struct chunk_digests *e = v->expect;
	uint64_t offset = v->chunk * e->chunk_size;
	if (v->chunk == e->count) {
		/* Everything signed has been read: the stream must end here. */
		uint8_t extra;
		ssize_t n = reader_read(v->r.next, &extra, 1);
		if (n < 0)
			return -1;
		if (n > 0)
			return err_set("longer than the %llu bytes the signed manifest covers",
				       (unsigned long long)e->bytes);
		return 0;
	}
	size_t want = chunk_len(e, v->chunk);
	ssize_t n = reader_read_full(v->r.next, v->buf, want);
	if (n < 0)
		return -1;
	if ((size_t)n < want)
		return err_set("truncated: ends at byte %llu, the signed manifest covers %llu",
			       (unsigned long long)(offset + (uint64_t)n), (unsigned long long)e->bytes);
	uint8_t digest[DIGEST_LEN];
	if (EVP_DigestUpdate(v->sha.ctx, v->buf, want) != 1 || sha256_take(&v->sha, digest) < 0)
		return -1;
	if (ct_compare(digest, e->digest[v->chunk], DIGEST_LEN))
		return err_set("chunk %llu (bytes %llu..%llu) does not match its signed SHA-256 "
			       "(altered, reordered or swapped data)",
			       (unsigned long long)v->chunk, (unsigned long long)offset,
			       (unsigned long long)(offset + want - 1));
	v->chunk++;
	v->pos = 0;
	v->len = want;
	return 1;
}

static ssize_t vr_read(struct reader *r, void *buf, size_t cap)
{
	struct verify_r *v = (struct verify_r *)r;
	while (v->pos == v->len) {
		int rc = vr_next_chunk(v);
		if (rc <= 0)
			return rc;
	}
	size_t n = v->len - v->pos;
	if (n > cap)
		n = cap;
	memcpy(buf, v->buf + v->pos, n);
	v->pos += n;
	return (ssize_t)n;
}

static void vr_close(struct reader *r)
{
	struct verify_r *v = (struct verify_r *)r;
	struct reader *next = r->next;
	sha256_done(&v->sha);
	free(v->buf);
	free(v);
	reader_close(next);
}

static const struct reader_ops verify_reader_ops = {
	.read = vr_read,
	.close = vr_close,
};

struct reader *verify_reader(struct reader *next, const struct chunk_digests *expect)
{
	struct verify_r *v = calloc(1, sizeof(*v));
	size_t cap = expect->count > 1 ? (size_t)expect->chunk_size : (size_t)expect->bytes;
	if (!v || !(v->buf = malloc(cap ? cap : 1))) {
		if (v)
			free(v);
		err_set("out of memory");
		return NULL;
	}
	if (sha256_init(&v->sha) < 0) {
		sha256_done(&v->sha);
		free(v->buf);
		free(v);
		return NULL;
	}
	v->expect = expect;
	v->r.ops = &verify_reader_ops;
	v->r.next = next;
	return &v->r;
}

/* ---- the text form ---- */

char *digests_format(const struct chunk_digests *d, size_t *len)
{
	size_t n = (size_t)d->count * (DIGEST_HEX + 1);
	char *text = malloc(n + 1);
	if (!text) {
		err_set("out of memory");
		return NULL;
	}
	for (uint64_t i = 0; i < d->count; i++) {
		hex_encode(d->digest[i], DIGEST_LEN, text + i * (DIGEST_HEX + 1));
		text[i * (DIGEST_HEX + 1) + DIGEST_HEX] = '\n';
	}
	text[n] = '\0';
	*len = n;
	return text;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int digests_parse(const char *text, size_t len, uint64_t chunk_size, uint64_t bytes,
		  struct chunk_digests *d)
{
	memset(d, 0, sizeof(*d));
	if (chunk_size < AGE_CHUNK || chunk_size > ((uint64_t)1 << 30) ||
	    (chunk_size & (chunk_size - 1)))
		return err_set("chunk size %llu is not a power of two from 64 KiB to 1 GiB",
			       (unsigned long long)chunk_size);
	uint64_t count = bytes / chunk_size + (bytes % chunk_size ? 1 : 0);
	if (len % (DIGEST_HEX + 1) || len / (DIGEST_HEX + 1) != count)
		return err_set("%zu bytes of digests for %llu chunks (%llu bytes)", len,
			       (unsigned long long)count, (unsigned long long)bytes);
	d->chunk_size = chunk_size;
	d->bytes = bytes;
	d->digest = malloc(count ? count * DIGEST_LEN : 1);
	if (!d->digest)
		return err_set("out of memory");
	for (uint64_t i = 0; i < count; i++) {
		const char *line = text + i * (DIGEST_HEX + 1);
		bool ok = line[DIGEST_HEX] == '\n';
		for (int k = 0; ok && k < DIGEST_LEN; k++) {
			int hi = hex_value(line[2 * k]), lo = hex_value(line[2 * k + 1]);
			ok = hi >= 0 && lo >= 0;
			if (ok)
				d->digest[i][k] = (uint8_t)(hi << 4 | lo);
		}
		if (!ok) {
			free(d->digest);
			d->digest = NULL;
			return err_set("digest line %llu is not 64 lowercase hex digits",
				       (unsigned long long)i + 1);
		}
	}
	d->count = count;
	return 0;
}
