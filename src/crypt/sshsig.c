/* Manifest signatures in OpenSSH's SSHSIG format (PROTOCOL.sshsig) with
 * Ed25519 keys in OpenSSH's own key formats (PROTOCOL.key), so that
 *
 *   ssh-keygen -Y verify -f allowed_signers -I crstream -n crstream \
 *       -s manifest.json.sig < manifest.json
 *
 * checks a checkpoint, and an existing unencrypted ssh-ed25519 key can
 * sign one. Written from those specifications.
 *
 * SSH wire encoding: uint32 big-endian; string = uint32 length + bytes. */
#include "crypt/crypt_impl.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY_TYPE "ssh-ed25519"
#define PRIVATE_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----"
#define PRIVATE_END "-----END OPENSSH PRIVATE KEY-----"
#define SIG_BEGIN "-----BEGIN SSH SIGNATURE-----"
#define SIG_END "-----END SSH SIGNATURE-----"
#define KEY_MAGIC "openssh-key-v1"
#define SIG_MAGIC "SSHSIG"
#define ARMOR_COLUMNS 70
#define MAX_TRUSTED 64
#define FP_LEN 64

/* ---- wire buffers ---- */

struct wbuf {
	uint8_t data[2048];
	size_t len;
	bool overflow;
};

static void put(struct wbuf *b, const void *p, size_t n)
{
	if (b->len + n > sizeof(b->data)) {
		b->overflow = true;
		return;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void put_u32(struct wbuf *b, uint32_t v)
{
	uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	put(b, be, 4);
}

static void put_string(struct wbuf *b, const void *p, size_t n)
{
	put_u32(b, (uint32_t)n);
	put(b, p, n);
}

static void put_cstring(struct wbuf *b, const char *s)
{
	put_string(b, s, strlen(s));
}

struct rbuf {
	const uint8_t *p;
	size_t left;
};

static int get_u32(struct rbuf *r, uint32_t *v)
{
	if (r->left < 4)
		return -1;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	r->left -= 4;
	return 0;
}

static int get_string(struct rbuf *r, const uint8_t **s, size_t *n)
{
	uint32_t len;
	if (get_u32(r, &len) < 0 || len > r->left)
		return -1;
	*s = r->p;
	*n = len;
	r->p += len;
	r->left -= len;
	return 0;
}

/* The next string must equal want. */
static int expect_string(struct rbuf *r, const char *want)
{
	const uint8_t *s;
	size_t n;
	return get_string(r, &s, &n) == 0 && n == strlen(want) && !memcmp(s, want, n) ? 0 : -1;
}

/* ---- public keys ---- */

/* string "ssh-ed25519", string key */
static void public_blob(const uint8_t pub[ED25519_LEN], struct wbuf *b)
{
	put_cstring(b, KEY_TYPE);
	put_string(b, pub, ED25519_LEN);
}

static int parse_public_blob(const uint8_t *blob, size_t n, uint8_t pub[ED25519_LEN])
{
	struct rbuf r = {blob, n};
	const uint8_t *k;
	size_t kn;
	if (expect_string(&r, KEY_TYPE) < 0)
		return err_set("not an ssh-ed25519 key (only Ed25519 keys sign checkpoints)");
	if (get_string(&r, &k, &kn) < 0 || kn != ED25519_LEN || r.left)
		return err_set("a malformed ssh-ed25519 key");
	memcpy(pub, k, ED25519_LEN);
	return 0;
}

/* "SHA256:<unpadded base64 of the blob's SHA-256>", as ssh-keygen -l. */
static int fingerprint(const uint8_t pub[ED25519_LEN], char fp[FP_LEN])
{
	struct wbuf b = {.len = 0};
	uint8_t d[32];
	public_blob(pub, &b);
	if (sha256(b.data, b.len, d) < 0)
		return -1;
	strcpy(fp, "SHA256:");
	b64_encode(d, sizeof(d), fp + 7, false);
	return 0;
}

/* "ssh-ed25519 AAAA... comment" */
static void public_line(const uint8_t pub[ED25519_LEN], const char *comment, char *out, size_t size)
{
	struct wbuf b = {.len = 0};
	char b64[128];
	public_blob(pub, &b);
	b64_encode(b.data, b.len, b64, true);
	snprintf(out, size, "%s %s %s", KEY_TYPE, b64, comment);
}

/* ---- armor ---- */

/* Base64 wrapped at ARMOR_COLUMNS between begin and end lines (malloc'd). */
static char *armor(const char *begin, const char *end, const uint8_t *data, size_t n, size_t *len)
{
	size_t b64n = b64_len(n, true);
	char *b64 = malloc(b64n + 1);
	char *out = malloc(strlen(begin) + strlen(end) + b64n + b64n / ARMOR_COLUMNS + 8);
	if (!b64 || !out) {
		free(b64);
		free(out);
		err_set("out of memory");
		return NULL;
	}
	b64_encode(data, n, b64, true);
	size_t o = (size_t)sprintf(out, "%s\n", begin);
	for (size_t i = 0; i < b64n; i += ARMOR_COLUMNS) {
		size_t k = b64n - i < ARMOR_COLUMNS ? b64n - i : ARMOR_COLUMNS;
		memcpy(out + o, b64 + i, k);
		o += k;
		out[o++] = '\n';
	}
	o += (size_t)sprintf(out + o, "%s\n", end);
	wipe_free(b64, b64n + 1);
	*len = o;
	return out;
}

/* The data between the armor lines of text (trailing whitespace after
 * the end line is fine), into a malloc'd buffer. */
static int dearmor(const char *text, size_t len, const char *begin, const char *end, uint8_t **data,
		   size_t *n)
{
	size_t bl = strlen(begin);
	if (len <= bl || memcmp(text, begin, bl) || (text[bl] != '\n' && text[bl] != '\r'))
		return err_set("does not start with \"%s\"", begin);
	/* The text is len bytes, not a C string. */
	const char *e = memmem(text + bl, len - bl, end, strlen(end));
	if (!e)
		return err_set("has no \"%s\" line", end);
	for (const char *p = e + strlen(end); p < text + len; p++)
		if (*p != '\n' && *p != '\r' && *p != ' ' && *p != '\t')
			return err_set("has data after \"%s\"", end);
	char *b64 = malloc((size_t)(e - text) + 1);
	size_t bn = 0;
	if (!b64)
		return err_set("out of memory");
	for (const char *p = text + bl; p < e; p++)
		if (*p != '\n' && *p != '\r')
			b64[bn++] = *p;
	*data = malloc(bn / 4 * 3 + 3);
	long got = *data ? b64_decode(b64, bn, *data, bn / 4 * 3 + 3, true) : -1;
	wipe_free(b64, (size_t)(e - text) + 1);
	if (got < 0) {
		free(*data);
		*data = NULL;
		return err_set("is not base64 between its armor lines");
	}
	*n = (size_t)got;
	return 0;
}

/* ---- private keys ---- */

/* The unencrypted OpenSSH private key format with one ssh-ed25519 key. */
static int parse_private(const uint8_t *blob, size_t n, uint8_t seed[ED25519_LEN])
{
	struct rbuf r = {blob, n};
	const uint8_t *s, *pubblob, *priv, *pk, *sk;
	size_t sn, pubn, privn, pkn, skn;
	uint32_t nkeys, check1, check2;
	size_t ml = strlen(KEY_MAGIC) + 1;
	if (n < ml || memcmp(blob, KEY_MAGIC, ml))
		return err_set("not an OpenSSH private key");
	r.p += ml;
	r.left -= ml;
	if (get_string(&r, &s, &sn) < 0)
		return err_set("a malformed OpenSSH private key");
	if (sn != 4 || memcmp(s, "none", 4))
		return err_set("the key is protected by a passphrase: crstream signs unattended, "
			       "with an unencrypted key (crstream keygen --sign, or "
			       "ssh-keygen -t ed25519 -N '')");
	if (expect_string(&r, "none") < 0 || expect_string(&r, "") < 0 || get_u32(&r, &nkeys) < 0 ||
	    nkeys != 1 || get_string(&r, &pubblob, &pubn) < 0 || get_string(&r, &priv, &privn) < 0)
		return err_set("a malformed OpenSSH private key (one key expected)");
	uint8_t pub[ED25519_LEN];
	if (parse_public_blob(pubblob, pubn, pub) < 0)
		return -1;
	struct rbuf p = {priv, privn};
	if (get_u32(&p, &check1) < 0 || get_u32(&p, &check2) < 0 || check1 != check2 ||
	    expect_string(&p, KEY_TYPE) < 0 || get_string(&p, &pk, &pkn) < 0 || pkn != ED25519_LEN ||
	    get_string(&p, &sk, &skn) < 0 || skn != 2 * ED25519_LEN)
		return err_set("a malformed ssh-ed25519 private key");
	/* The secret is seed || public key; all three copies must agree. */
	uint8_t derived[ED25519_LEN];
	if (memcmp(pk, pub, ED25519_LEN) || memcmp(sk + ED25519_LEN, pub, ED25519_LEN) ||
	    ed25519_public(sk, derived) < 0 || memcmp(derived, pub, ED25519_LEN))
		return err_set("an inconsistent ssh-ed25519 private key");
	memcpy(seed, sk, ED25519_LEN);
	return 0;
}

/* Loads a signing key file: the seed and public key. */
static int load_sign_key(const char *path, uint8_t seed[ED25519_LEN], uint8_t pub[ED25519_LEN])
{
	char *text;
	size_t len;
	uint8_t *blob = NULL;
	size_t n = 0;
	if (keyfile_read(path, true, "signing key", &text, &len) < 0)
		return -1;
	int rc = dearmor(text, len, PRIVATE_BEGIN, PRIVATE_END, &blob, &n);
	wipe_free(text, len + 1);
	if (rc == 0)
		rc = parse_private(blob, n, seed);
	wipe_free(blob, n);
	if (rc == 0)
		rc = ed25519_public(seed, pub);
	if (rc < 0) {
		wipe(seed, ED25519_LEN);
		return err_prefix("signing key %s", path);
	}
	return 0;
}

static int make_private(const uint8_t seed[ED25519_LEN], const uint8_t pub[ED25519_LEN],
			const char *comment, struct wbuf *out)
{
	struct wbuf priv = {.len = 0}, pubb = {.len = 0};
	uint32_t check;
	if (random_bytes(&check, sizeof(check)) < 0)
		return -1;
	put_u32(&priv, check);
	put_u32(&priv, check);
	put_cstring(&priv, KEY_TYPE);
	put_string(&priv, pub, ED25519_LEN);
	put_u32(&priv, 2 * ED25519_LEN);
	put(&priv, seed, ED25519_LEN);
	put(&priv, pub, ED25519_LEN);
	put_cstring(&priv, comment);
	for (uint8_t pad = 1; priv.len % 8; pad++)	/* the "none" cipher's block size */
		put(&priv, &pad, 1);
	public_blob(pub, &pubb);
	put(out, KEY_MAGIC, strlen(KEY_MAGIC) + 1);
	put_cstring(out, "none");
	put_cstring(out, "none");
	put_cstring(out, "");
	put_u32(out, 1);
	put_string(out, pubb.data, pubb.len);
	put_string(out, priv.data, priv.len);
	wipe(&priv, sizeof(priv));
	return out->overflow ? err_set("key too large") : 0;
}

int sshsig_keygen(const char *path, char *pub_out, size_t size)
{
	uint8_t seed[ED25519_LEN], pub[ED25519_LEN];
	struct wbuf blob = {.len = 0};
	char pub_path[4200], line[256];
	char *text = NULL;
	size_t len = 0;
	if (snprintf(pub_path, sizeof(pub_path), "%s.pub", path) >= (int)sizeof(pub_path))
		return err_set("%s: path too long", path);
	if (access(pub_path, F_OK) == 0)
		return err_set("%s already exists: refusing to overwrite it", pub_path);
	int rc = ed25519_generate(seed, pub);
	if (rc == 0)
		rc = make_private(seed, pub, "crstream", &blob);
	if (rc == 0 && !(text = armor(PRIVATE_BEGIN, PRIVATE_END, blob.data, blob.len, &len)))
		rc = -1;
	wipe(seed, sizeof(seed));
	wipe(&blob, sizeof(blob));
	if (rc == 0)
		rc = keyfile_create(path, 0600, text, len);
	wipe_free(text, len);
	if (rc < 0)
		return -1;
	public_line(pub, "crstream", line, sizeof(line));
	snprintf(pub_out, size, "%s", line);
	strcat(line, "\n");
	if (keyfile_create(pub_path, 0644, line, strlen(line)) < 0) {
		unlink(path);
		return -1;
	}
	return 0;
}

int sshsig_key_check(const char *path, char *fp, size_t size)
{
	uint8_t seed[ED25519_LEN], pub[ED25519_LEN];
	char f[FP_LEN];
	if (load_sign_key(path, seed, pub) < 0)
		return -1;
	wipe(seed, sizeof(seed));
	if (fingerprint(pub, f) < 0)
		return -1;
	snprintf(fp, size, "%s", f);
	return 0;
}

/* ---- signatures ---- */

/* What Ed25519 signs: "SSHSIG", namespace, reserved, hash algorithm and
 * the message's hash. */
static int signed_data(const char *hash_alg, const void *msg, size_t len, struct wbuf *out)
{
	uint8_t h[64];
	size_t hn = strcmp(hash_alg, "sha512") ? 32 : 64;
	if ((hn == 64 ? sha512(msg, len, h) : sha256(msg, len, h)) < 0)
		return -1;
	put(out, SIG_MAGIC, strlen(SIG_MAGIC));
	put_cstring(out, SIGNATURE_NAMESPACE);
	put_cstring(out, "");
	put_cstring(out, hash_alg);
	put_string(out, h, hn);
	return 0;
}

char *sshsig_sign(const char *path, const char *fp, const void *msg, size_t len, size_t *siglen)
{
	uint8_t seed[ED25519_LEN], pub[ED25519_LEN], sig[ED25519_SIG_LEN];
	char now_fp[FP_LEN];
	struct wbuf data = {.len = 0}, sigblob = {.len = 0}, pubb = {.len = 0}, out = {.len = 0};
	if (load_sign_key(path, seed, pub) < 0)
		return NULL;
	int rc = fingerprint(pub, now_fp);
	if (rc == 0 && strcmp(now_fp, fp))
		rc = err_set("signing key %s changed during the dump (now %s, was %s)", path, now_fp,
			     fp);
	if (rc == 0)
		rc = signed_data("sha512", msg, len, &data);
	if (rc == 0)
		rc = ed25519_sign(seed, data.data, data.len, sig);
	wipe(seed, sizeof(seed));
	if (rc < 0)
		return NULL;
	put_cstring(&sigblob, KEY_TYPE);
	put_string(&sigblob, sig, sizeof(sig));
	public_blob(pub, &pubb);
	put(&out, SIG_MAGIC, strlen(SIG_MAGIC));
	put_u32(&out, 1);
	put_string(&out, pubb.data, pubb.len);
	put_cstring(&out, SIGNATURE_NAMESPACE);
	put_cstring(&out, "");
	put_cstring(&out, "sha512");
	put_string(&out, sigblob.data, sigblob.len);
	return armor(SIG_BEGIN, SIG_END, out.data, out.len, siglen);
}

struct trusted_keys {
	uint8_t key[MAX_TRUSTED][ED25519_LEN];
	char name[MAX_TRUSTED][FP_LEN];
	size_t n;
};

struct trusted_keys *sshsig_trusted_new(void)
{
	struct trusted_keys *t = calloc(1, sizeof(*t));
	if (!t)
		err_set("out of memory");
	return t;
}

void sshsig_trusted_free(struct trusted_keys *t)
{
	free(t);
}

struct pub_walk {
	struct trusted_keys *t;
	const char *path;
	int found;
};

/* "ssh-ed25519 AAAA... [comment]" (an allowed_signers line's principals
 * are not expected here: this is a .pub file). */
static int trusted_line(void *arg, char *line, int lineno)
{
	struct pub_walk *w = arg;
	char *type = strtok(line, " \t"), *b64 = strtok(NULL, " \t");
	uint8_t blob[256], pub[ED25519_LEN];
	long n = b64 ? b64_decode(b64, strlen(b64), blob, sizeof(blob), true) : -1;
	if (!type || strcmp(type, KEY_TYPE) || n < 0 || parse_public_blob(blob, (size_t)n, pub) < 0)
		return err_set("%s:%d: not an ssh-ed25519 public key line (ssh-ed25519 AAAA...)",
			       w->path, lineno);
	if (w->t->n == MAX_TRUSTED)
		return err_set("more than %d trusted keys", MAX_TRUSTED);
	memcpy(w->t->key[w->t->n], pub, ED25519_LEN);
	if (fingerprint(pub, w->t->name[w->t->n]) < 0)
		return -1;
	w->t->n++;
	w->found++;
	return 0;
}

int sshsig_trusted_add_file(struct trusted_keys *t, const char *path)
{
	char *text;
	size_t len;
	if (keyfile_read(path, false, "trusted key", &text, &len) < 0)
		return -1;
	struct pub_walk w = {.t = t, .path = path};
	int rc = keyfile_lines(text, trusted_line, &w);
	free(text);
	if (rc == 0 && w.found == 0)
		rc = err_set("trusted key file %s holds no key", path);
	return rc;
}

static int parse_signature(const uint8_t *blob, size_t n, uint8_t pub[ED25519_LEN],
			   char *hash_alg, size_t alg_size, uint8_t sig[ED25519_SIG_LEN])
{
	struct rbuf r = {blob, n};
	const uint8_t *pubblob, *ns, *alg, *sigblob, *s;
	size_t pubn, nsn, algn, sign, sn;
	uint32_t version;
	size_t ml = strlen(SIG_MAGIC);
	if (n < ml || memcmp(blob, SIG_MAGIC, ml))
		return err_set("not an SSH signature");
	r.p += ml;
	r.left -= ml;
	if (get_u32(&r, &version) < 0 || get_string(&r, &pubblob, &pubn) < 0 ||
	    get_string(&r, &ns, &nsn) < 0 || get_string(&r, &s, &sn) < 0 ||
	    get_string(&r, &alg, &algn) < 0 || get_string(&r, &sigblob, &sign) < 0 || r.left)
		return err_set("a malformed SSH signature");
	if (version != 1)
		return err_set("SSH signature version %u (this reads 1)", version);
	if (nsn != strlen(SIGNATURE_NAMESPACE) || memcmp(ns, SIGNATURE_NAMESPACE, nsn))
		return err_set("a signature for another purpose (namespace \"%.*s\", not \"%s\")",
			       (int)(nsn > 40 ? 40 : nsn), (const char *)ns, SIGNATURE_NAMESPACE);
	if (!((algn == 6 && !memcmp(alg, "sha512", 6)) || (algn == 6 && !memcmp(alg, "sha256", 6))))
		return err_set("an SSH signature with an unknown hash algorithm");
	snprintf(hash_alg, alg_size, "%.*s", (int)algn, (const char *)alg);
	if (parse_public_blob(pubblob, pubn, pub) < 0)
		return err_prefix("signature");
	struct rbuf sr = {sigblob, sign};
	if (expect_string(&sr, KEY_TYPE) < 0 || get_string(&sr, &s, &sn) < 0 ||
	    sn != ED25519_SIG_LEN || sr.left)
		return err_set("a malformed ssh-ed25519 signature");
	memcpy(sig, s, ED25519_SIG_LEN);
	return 0;
}

int sshsig_verify(const struct trusted_keys *t, const void *msg, size_t len, const char *sigtext,
		  size_t siglen, char *signer, size_t size)
{
	uint8_t *blob = NULL, pub[ED25519_LEN], sig[ED25519_SIG_LEN];
	size_t n = 0;
	char alg[8], fp[FP_LEN];
	struct wbuf data = {.len = 0};
	if (dearmor(sigtext, siglen, SIG_BEGIN, SIG_END, &blob, &n) < 0)
		return err_prefix("the signature");
	int rc = parse_signature(blob, n, pub, alg, sizeof(alg), sig);
	free(blob);
	if (rc == 0)
		rc = fingerprint(pub, fp);
	if (rc == 0)
		rc = signed_data(alg, msg, len, &data);
	if (rc < 0)
		return -1;
	int ok = ed25519_verify(pub, data.data, data.len, sig);
	if (ok < 0)
		return -1;
	if (!ok)
		return err_set("the signature does not verify: the manifest was altered after it "
			       "was signed (by %s)", fp);
	for (size_t i = 0; i < t->n; i++) {
		if (!ct_compare(t->key[i], pub, ED25519_LEN)) {
			snprintf(signer, size, "%s", fp);
			return 0;
		}
	}
	return err_set("signed by %s, which is not a trusted key (%zu trusted: %s%s)", fp, t->n,
		       t->n ? t->name[0] : "none", t->n > 1 ? ", ..." : "");
}
