/* The crypto plugin's parts on their own: encodings against the age
 * specification's vectors, the age header parser against malformed
 * headers, the age and chunk-digest filters against every kind of
 * tampering, SSHSIG signing and verification, and key file permissions.
 * Interoperability with the real `age` and `ssh-keygen` is in
 * tests/integration/test_crypto.sh. */
#include "unit.h"
#include "crypt/crypt_impl.h"
#include "util/err.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/crstream-unit-crypt.XXXXXX";

static void path_in_tmp(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", tmpdir, name);
	unlink(buf);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	CHECK(fd >= 0);
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	CHECK(fchmod(fd, mode) == 0);
	close(fd);
}

/* ---- encodings ---- */

static void test_base64_is_strict(void)
{
	uint8_t out[16];
	char enc[32];
	b64_encode((const uint8_t *)"ab", 2, enc, false);
	CHECK(!strcmp(enc, "YWI"));
	b64_encode((const uint8_t *)"ab", 2, enc, true);
	CHECK(!strcmp(enc, "YWI="));
	CHECK(b64_decode("YWI", 3, out, sizeof(out), false) == 2 && !memcmp(out, "ab", 2));
	CHECK(b64_decode("YWI=", 4, out, sizeof(out), true) == 2);
	/* Non-canonical: unused bits set. */
	CHECK(b64_decode("YWJ", 3, out, sizeof(out), false) < 0);
	/* Padding where none belongs, and none where it must be. */
	CHECK(b64_decode("YWI=", 4, out, sizeof(out), false) < 0);
	CHECK(b64_decode("YWI", 3, out, sizeof(out), true) < 0);
	CHECK(b64_decode("Y", 1, out, sizeof(out), false) < 0);
	CHECK(b64_decode("YW I", 4, out, sizeof(out), false) < 0);
	CHECK(b64_decode("YWJjZA", 6, out, 3, false) < 0);	/* does not fit */
}

/* The X25519 example of the age specification (c2sp.org/age). */
static void test_bech32_and_x25519_match_the_age_spec(void)
{
	const char *id = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
	const char *want = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";
	char hrp[32], text[128];
	uint8_t secret[33], pub[32];
	CHECK(bech32_decode(id, hrp, sizeof(hrp), secret, sizeof(secret)) == 32);
	CHECK(!strcmp(hrp, "age-secret-key-"));
	CHECK(x25519_public(secret, pub) == 0);
	CHECK(bech32_encode("age", pub, 32, text, sizeof(text)) == 0);
	CHECK(!strcmp(text, want));
	CHECK(bech32_encode("AGE-SECRET-KEY-", secret, 32, text, sizeof(text)) == 0);
	CHECK(!strcmp(text, id));
	/* A changed character breaks the checksum; mixed case is refused. */
	char bad[128];
	snprintf(bad, sizeof(bad), "%s", want);
	bad[10] = bad[10] == 'q' ? 'p' : 'q';
	CHECK(bech32_decode(bad, hrp, sizeof(hrp), pub, sizeof(pub)) < 0);
	snprintf(bad, sizeof(bad), "%s", want);
	bad[5] = 'V';
	CHECK(bech32_decode(bad, hrp, sizeof(hrp), pub, sizeof(pub)) < 0);
}

/* ---- the age header ---- */

static int parse_text(const char *text)
{
	struct age_header h;
	int rc = age_header_parse((const uint8_t *)text, strlen(text), &h);
	if (rc == 0)
		age_header_free(&h);
	return rc;
}

#define MAC " AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n"

static void test_header_parser_refuses_malformed_headers(void)
{
	const char *ok = "age-encryption.org/v1\n-> X25519 abc\nYWI\n---" MAC;
	CHECK(parse_text(ok) == 0);
	/* Cut anywhere before the end: "need more", never a crash. */
	for (size_t i = 0; i < strlen(ok); i++) {
		char cut[256];
		memcpy(cut, ok, i);
		cut[i] = '\0';
		CHECK(parse_text(cut) == 1);
	}
	CHECK(parse_text("age-encryption.org/v2\n") < 0);
	CHECK_ERR("unsupported version");
	CHECK(parse_text("not an age file at all\n") < 0);
	CHECK(parse_text("age-encryption.org/v1\n---" MAC) < 0);
	CHECK_ERR("no recipient stanza");
	CHECK(parse_text("age-encryption.org/v1\n->  X25519\n\n---" MAC) < 0);
	CHECK(parse_text("age-encryption.org/v1\n-> \n\n---" MAC) < 0);
	CHECK(parse_text("age-encryption.org/v1\n-> a\xff\n\n---" MAC) < 0);
	CHECK(parse_text("age-encryption.org/v1\n-> a\nYWJ\n---" MAC) < 0);	/* non-canonical */
	CHECK(parse_text("age-encryption.org/v1\n-> a\nYW!\n---" MAC) < 0);
	CHECK(parse_text("age-encryption.org/v1\n-> a\n\n--- short\n") < 0);
	CHECK(parse_text("age-encryption.org/v1\n-> a\n\nsomething else\n") < 0);
	/* A 64-column line must be followed by another body line. */
	char body[64 + 1];
	memset(body, 'A', 64);
	body[64] = '\0';
	char text[512];
	snprintf(text, sizeof(text), "age-encryption.org/v1\n-> a\n%s\n---" MAC, body);
	CHECK(parse_text(text) < 0);
	snprintf(text, sizeof(text), "age-encryption.org/v1\n-> a\n%s\n\n---" MAC, body);
	CHECK(parse_text(text) == 0);
	snprintf(text, sizeof(text), "age-encryption.org/v1\n-> a\n%sA\n---" MAC, body);
	CHECK(parse_text(text) < 0);
}

/* ---- age round trips and tampering ---- */

struct keys {
	struct age_recipients *r;
	struct age_identities *ids;
	struct age_identities *other;
};

static void make_keys(struct keys *k)
{
	char id[256], id2[256], rec[128], rec2[128];
	path_in_tmp(id, sizeof(id), "id.txt");
	path_in_tmp(id2, sizeof(id2), "id2.txt");
	CHECK(age_keygen(id, rec, sizeof(rec)) == 0);
	CHECK(age_keygen(id2, rec2, sizeof(rec2)) == 0);
	k->r = age_recipients_new();
	k->ids = age_identities_new();
	k->other = age_identities_new();
	CHECK(age_recipients_add(k->r, rec) == 0);
	CHECK(age_identities_add_file(k->ids, id) == 0);
	CHECK(age_identities_add_file(k->other, id2) == 0);
}

static void free_keys(struct keys *k)
{
	age_recipients_free(k->r);
	age_identities_free(k->ids);
	age_identities_free(k->other);
}

static void encrypt(const struct keys *k, const uint8_t *data, size_t len, struct membuf *out)
{
	memset(out, 0, sizeof(*out));
	struct writer *w = age_writer(membuf_writer(out), k->r);
	CHECK(w != NULL);
	/* In uneven pieces, so chunk boundaries fall inside writes, and in
	 * pieces of several chunks (sealed in place). */
	static const size_t pieces[] = {10007, 3 * AGE_CHUNK + 5, AGE_CHUNK, 1, 2 * AGE_CHUNK};
	for (size_t off = 0, i = 0; w && off < len; i++) {
		size_t n = pieces[i % 5];
		if (n > len - off)
			n = len - off;
		CHECK(writer_write(w, data + off, n) == 0);
		off += n;
	}
	CHECK(w && writer_close(w) == 0);
}

/* Decrypts; returns the plaintext length or -1 (error set). */
static long decrypt(const struct age_identities *ids, const uint8_t *enc, size_t len, uint8_t *out,
		    size_t cap, size_t chunk)
{
	struct reader *src = mem_reader(enc, len, chunk);
	struct reader *r = age_reader(src, ids);
	if (!r) {
		reader_close(src);
		return -1;
	}
	/* chunk also sets the size of our reads: small reads take the
	 * buffered path, large ones the in-place one. */
	ssize_t n = 0;
	while (chunk && n >= 0 && (size_t)n < cap) {
		ssize_t got = reader_read(r, out + n, cap - (size_t)n < 1000 ? cap - (size_t)n : 1000);
		if (got <= 0) {
			n = got < 0 ? -1 : n;
			break;
		}
		n += got;
	}
	if (!chunk)
		n = reader_read_full(r, out, cap);
	uint8_t extra;
	if (n >= 0 && reader_read(r, &extra, 1) != 0)
		n = -1;
	reader_close(r);
	return n;
}

static uint8_t *pattern(size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	uint32_t x = 2463534242u;	/* xorshift: no two chunks alike */
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
	return p;
}

static void test_age_round_trips(void)
{
	struct keys k;
	make_keys(&k);
	size_t sizes[] = {0, 1, AGE_CHUNK - 1, AGE_CHUNK, AGE_CHUNK + 1, 3 * AGE_CHUNK, 1000000,
			  4 * AGE_CHUNK + 10007};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *data = pattern(sizes[i]);
		struct membuf enc;
		encrypt(&k, data, sizes[i], &enc);
		size_t chunks = sizes[i] / AGE_CHUNK + (sizes[i] % AGE_CHUNK || !sizes[i] ? 1 : 0);
		CHECK(enc.len > sizes[i] + 16 * chunks + 16);
		uint8_t *back = malloc(sizes[i] + 1);
		CHECK(decrypt(k.ids, enc.data, enc.len, back, sizes[i] + 1, 0) == (long)sizes[i]);
		CHECK(!memcmp(back, data, sizes[i]));
		/* Short reads from below change nothing. */
		CHECK(decrypt(k.ids, enc.data, enc.len, back, sizes[i] + 1, 777) == (long)sizes[i]);
		CHECK(decrypt(k.other, enc.data, enc.len, back, sizes[i] + 1, 0) < 0);
		CHECK_ERR("no identity matches");
		free(back);
		free(enc.data);
		free(data);
	}
	free_keys(&k);
}

static void test_age_refuses_tampering(void)
{
	struct keys k;
	make_keys(&k);
	size_t len = 3 * AGE_CHUNK + 100;
	uint8_t *data = pattern(len), *back = malloc(len + 1);
	struct membuf enc;
	encrypt(&k, data, len, &enc);
	/* The payload starts after "\n--- <43 characters>\n" and the nonce. */
	uint8_t *mac_line = memmem(enc.data, enc.len, "\n---", 4);
	CHECK(mac_line != NULL);
	size_t header = (size_t)(mac_line - enc.data) + 49 + 16;
	size_t sealed = AGE_CHUNK + 16;
	/* A flipped bit anywhere: the header (MAC), the nonce, each chunk. */
	size_t spots[] = {30, header - 20, header + 5, header + sealed + 9, enc.len - 1};
	for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
		enc.data[spots[i]] ^= 0x10;
		CHECK(decrypt(k.ids, enc.data, enc.len, back, len + 1, 0) < 0);
		enc.data[spots[i]] ^= 0x10;
	}
	CHECK(decrypt(k.ids, enc.data, enc.len, back, len + 1, 0) == (long)len);
	/* Truncated inside a chunk, and exactly at a chunk boundary (the
	 * last chunk is then not marked as last). */
	CHECK(decrypt(k.ids, enc.data, enc.len - 50, back, len + 1, 0) < 0);
	CHECK(decrypt(k.ids, enc.data, header + 2 * sealed, back, len + 1, 0) < 0);
	CHECK_ERR("chunk 1");
	CHECK(decrypt(k.ids, enc.data, header, back, len + 1, 0) < 0);
	CHECK_ERR("no final chunk");
	CHECK(decrypt(k.ids, enc.data, header - 3, back, len + 1, 0) < 0);
	/* Appended bytes. */
	uint8_t *longer = malloc(enc.len + 10);
	memcpy(longer, enc.data, enc.len);
	memset(longer + enc.len, 0, 10);
	CHECK(decrypt(k.ids, longer, enc.len + 10, back, len + 1, 0) < 0);
	/* Two chunks swapped. */
	memcpy(longer, enc.data, enc.len);
	memcpy(longer + header, enc.data + header + sealed, sealed);
	memcpy(longer + header + sealed, enc.data + header, sealed);
	CHECK(decrypt(k.ids, longer, enc.len, back, len + 1, 0) < 0);
	CHECK_ERR("chunk 0");
	free(longer);
	free(enc.data);
	free(data);
	free(back);
	free_keys(&k);
}

/* ---- chunk digests ---- */

static long verified_read(const struct chunk_digests *d, const uint8_t *data, size_t len,
			  uint8_t *out, size_t cap)
{
	struct reader *r = verify_reader(mem_reader(data, len, 100000), d);
	ssize_t n = reader_read_full(r, out, cap);
	reader_close(r);
	return n;
}

static void test_chunk_digests(void)
{
	size_t len = 2 * DIGEST_CHUNK + 12345;
	uint8_t *data = pattern(len), *back = malloc(len + 1);
	struct membuf stored = {0};
	struct chunk_digests d;
	struct writer *w = digest_writer(membuf_writer(&stored), &d);
	CHECK(writer_write(w, data, 1000) == 0 && writer_write(w, data + 1000, len - 1000) == 0);
	CHECK(writer_close(w) == 0);
	CHECK(d.count == 3 && d.bytes == len && stored.len == len);
	size_t tlen;
	char *text = digests_format(&d, &tlen);
	struct chunk_digests p;
	CHECK(digests_parse(text, tlen, DIGEST_CHUNK, len, &p) == 0);
	CHECK(p.count == 3 && !memcmp(p.digest, d.digest, 3 * DIGEST_LEN));
	chunk_digests_free(&p);
	CHECK(digests_parse(text, tlen, DIGEST_CHUNK, len + DIGEST_CHUNK, &p) < 0);
	text[5] = 'G';
	CHECK(digests_parse(text, tlen, DIGEST_CHUNK, len, &p) < 0);
	CHECK(verified_read(&d, data, len, back, len + 1) == (long)len && !memcmp(back, data, len));
	/* A flipped byte in each chunk; truncation; extension; swapped chunks. */
	size_t spots[] = {0, DIGEST_CHUNK + 7, len - 1};
	for (size_t i = 0; i < 3; i++) {
		data[spots[i]] ^= 1;
		CHECK(verified_read(&d, data, len, back, len + 1) < 0);
		CHECK_ERR("does not match its signed SHA-256");
		data[spots[i]] ^= 1;
	}
	CHECK(verified_read(&d, data, len - 1, back, len + 1) < 0);
	CHECK_ERR("truncated");
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, data, len);
	longer[len] = 0;
	CHECK(verified_read(&d, longer, len + 1, back, len + 1) < 0);
	CHECK_ERR("longer than");
	memcpy(longer, data + DIGEST_CHUNK, DIGEST_CHUNK);
	memcpy(longer + DIGEST_CHUNK, data, DIGEST_CHUNK);
	CHECK(verified_read(&d, longer, len, back, len + 1) < 0);
	/* Nothing of a bad chunk is returned: reading stops before it. */
	data[DIGEST_CHUNK + 7] ^= 1;
	struct reader *r = verify_reader(mem_reader(data, len, 0), &d);
	ssize_t n = reader_read_full(r, back, len);
	CHECK(n < 0 && r->bytes_out == DIGEST_CHUNK);
	reader_close(r);
	free(longer);
	free(text);
	chunk_digests_free(&p);
	chunk_digests_free(&d);
	free(stored.data);
	free(data);
	free(back);
}

/* ---- signatures and key files ---- */

static void test_sign_and_verify(void)
{
	char key[256], pubpath[300], other[256], pub[256], fp[80], signer[80];
	path_in_tmp(key, sizeof(key), "sign");
	path_in_tmp(other, sizeof(other), "other");
	snprintf(pubpath, sizeof(pubpath), "%s.pub", key);
	unlink(pubpath);
	snprintf(pubpath, sizeof(pubpath), "%s.pub", other);
	unlink(pubpath);
	CHECK(sshsig_keygen(key, pub, sizeof(pub)) == 0);
	CHECK(!strncmp(pub, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", 37));
	CHECK(sshsig_keygen(key, pub, sizeof(pub)) < 0);
	CHECK_ERR("refusing to overwrite");
	CHECK(sshsig_keygen(other, pub, sizeof(pub)) == 0);
	CHECK(sshsig_key_check(key, fp, sizeof(fp)) == 0 && !strncmp(fp, "SHA256:", 7));
	const char *msg = "{\"manifest\": true}\n";
	size_t siglen;
	char *sig = sshsig_sign(key, fp, msg, strlen(msg), &siglen);
	CHECK(sig && !strncmp(sig, "-----BEGIN SSH SIGNATURE-----\n", 30));
	struct trusted_keys *t = sshsig_trusted_new(), *wrong = sshsig_trusted_new();
	snprintf(pubpath, sizeof(pubpath), "%s.pub", key);
	CHECK(sshsig_trusted_add_file(t, pubpath) == 0);
	snprintf(pubpath, sizeof(pubpath), "%s.pub", other);
	CHECK(sshsig_trusted_add_file(wrong, pubpath) == 0);
	CHECK(sshsig_verify(t, msg, strlen(msg), sig, siglen, signer, sizeof(signer)) == 0);
	CHECK(!strcmp(signer, fp));
	CHECK(sshsig_verify(wrong, msg, strlen(msg), sig, siglen, signer, sizeof(signer)) < 0);
	CHECK_ERR("not a trusted key");
	CHECK(sshsig_verify(t, "{\"manifest\": false}\n", strlen(msg), sig, siglen, signer,
			    sizeof(signer)) < 0);
	CHECK_ERR("does not verify");
	CHECK(sshsig_verify(t, msg, strlen(msg), sig, 20, signer, sizeof(signer)) < 0);
	/* The key changing under a dump is noticed. */
	char fp2[80];
	CHECK(sshsig_key_check(other, fp2, sizeof(fp2)) == 0);
	CHECK(sshsig_sign(key, fp2, msg, strlen(msg), &siglen) == NULL);
	CHECK_ERR("changed during the dump");
	free(sig);
	sshsig_trusted_free(t);
	sshsig_trusted_free(wrong);
}

static void test_key_files_must_be_private(void)
{
	char id[256], rec[128], key[256], pub[256], fp[80], pubpath[300];
	path_in_tmp(id, sizeof(id), "open-id.txt");
	path_in_tmp(key, sizeof(key), "open-sign");
	snprintf(pubpath, sizeof(pubpath), "%s.pub", key);
	unlink(pubpath);
	CHECK(age_keygen(id, rec, sizeof(rec)) == 0);
	CHECK(sshsig_keygen(key, pub, sizeof(pub)) == 0);
	struct stat st;
	CHECK(stat(id, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(chmod(id, 0644) == 0 && chmod(key, 0640) == 0);
	struct age_identities *ids = age_identities_new();
	CHECK(age_identities_add_file(ids, id) < 0);
	CHECK_ERR("has mode 0644: a key file must be private");
	CHECK(sshsig_key_check(key, fp, sizeof(fp)) < 0);
	CHECK_ERR("has mode 0640");
	/* No key material in the message of a malformed identity file. */
	write_file(id, "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n", 0600);
	CHECK(age_identities_add_file(ids, id) < 0);
	CHECK_ERR(":1: not an age X25519 identity");
	CHECK(!strstr(err_msg(), "QQQQ"));
	age_identities_free(ids);
	/* A passphrase-protected OpenSSH key is refused with the reason. */
	path_in_tmp(key, sizeof(key), "enc-sign");
	uint8_t blob[64];
	size_t n = 0;
	memcpy(blob, "openssh-key-v1\0\0\0\0\012aes256-ctr", 15 + 4 + 10);
	n = 29;
	char b64[128], text[256];
	b64_encode(blob, n, b64, true);
	snprintf(text, sizeof(text),
		 "-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n-----END OPENSSH PRIVATE KEY-----\n", b64);
	write_file(key, text, 0600);
	CHECK(sshsig_key_check(key, fp, sizeof(fp)) < 0);
	CHECK_ERR("protected by a passphrase");
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_base64_is_strict);
	RUN(test_bech32_and_x25519_match_the_age_spec);
	RUN(test_header_parser_refuses_malformed_headers);
	RUN(test_age_round_trips);
	RUN(test_age_refuses_tampering);
	RUN(test_chunk_digests);
	RUN(test_sign_and_verify);
	RUN(test_key_files_must_be_private);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return unit_done();
}
