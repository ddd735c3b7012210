/* The primitives, over OpenSSL 3's EVP interface only (no deprecated
 * low-level calls): X25519, HKDF-SHA-256, HMAC-SHA-256, SHA-2,
 * ChaCha20-Poly1305, Ed25519, the CSPRNG. */
#include "crypt/crypt_impl.h"
#include "util/err.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

/* OpenSSL's reason for the last failure, after ours. */
static int ossl_fail(const char *what)
{
	unsigned long e = ERR_get_error();
	char why[256] = "";
	if (e)
		ERR_error_string_n(e, why, sizeof(why));
	ERR_clear_error();
	return err_set("%s failed%s%s", what, e ? ": " : "", why);
}

void wipe(void *p, size_t n)
{
	if (p)
		OPENSSL_cleanse(p, n);
}

void wipe_free(void *p, size_t n)
{
	wipe(p, n);
	free(p);
}

int random_bytes(void *buf, size_t n)
{
	return RAND_bytes(buf, (int)n) == 1 ? 0 : ossl_fail("the random number generator");
}

int ct_compare(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n);
}

/* ---- X25519 ---- */

int x25519_public(const uint8_t secret[X25519_LEN], uint8_t pub[X25519_LEN])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, secret, X25519_LEN);
	size_t len = X25519_LEN;
	int rc = k && EVP_PKEY_get_raw_public_key(k, pub, &len) == 1 && len == X25519_LEN
			 ? 0
			 : ossl_fail("X25519");
	EVP_PKEY_free(k);
	return rc;
}

int x25519_shared(const uint8_t secret[X25519_LEN], const uint8_t peer[X25519_LEN],
		  uint8_t out[X25519_LEN])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, secret, X25519_LEN);
	EVP_PKEY *p = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, X25519_LEN);
	EVP_PKEY_CTX *ctx = k ? EVP_PKEY_CTX_new(k, NULL) : NULL;
	size_t len = X25519_LEN;
	int rc = -1;
	if (!p || !ctx || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, p) != 1 ||
	    EVP_PKEY_derive(ctx, out, &len) != 1 || len != X25519_LEN) {
		/* OpenSSL refuses an all-zero result itself. */
		ossl_fail("X25519 key agreement (a low-order share?)");
	} else {
		static const uint8_t zero[X25519_LEN];
		rc = ct_compare(out, zero, X25519_LEN) ? 0 : err_set("X25519: all-zero shared secret");
	}
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(p);
	EVP_PKEY_free(k);
	return rc;
}

/* ---- HKDF, HMAC, SHA-2 ---- */

int hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
		const char *info, uint8_t out[32])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[5], *p = params;
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	/* An empty salt is HKDF's default (zeros), but say it explicitly. */
	static uint8_t zero_salt[32];
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
						 salt_len ? (void *)salt : zero_salt,
						 salt_len ? salt_len : sizeof(zero_salt));
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
	*p = OSSL_PARAM_construct_end();
	int rc = ctx && EVP_KDF_derive(ctx, out, 32, params) == 1 ? 0 : ossl_fail("HKDF-SHA-256");
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return rc;
}

int hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len, uint8_t out[32])
{
	size_t out_len = 0;
	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, key_len, data, len, out, 32,
		       &out_len) || out_len != 32)
		return ossl_fail("HMAC-SHA-256");
	return 0;
}

static int digest(const char *name, const void *data, size_t len, uint8_t *out)
{
	return EVP_Q_digest(NULL, name, NULL, data, len, out, NULL) ? 0 : ossl_fail(name);
}

int sha256(const void *data, size_t len, uint8_t out[32])
{
	return digest("SHA256", data, len, out);
}

int sha512(const void *data, size_t len, uint8_t out[64])
{
	return digest("SHA512", data, len, out);
}

/* ---- ChaCha20-Poly1305 ---- */

struct aead {
	EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
};

struct aead *aead_new(const uint8_t key[32])
{
	struct aead *a = calloc(1, sizeof(*a));
	if (!a) {
		err_set("out of memory");
		return NULL;
	}
	a->cipher = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
	a->enc = EVP_CIPHER_CTX_new();
	a->dec = EVP_CIPHER_CTX_new();
	/* The key goes into both contexts now; each chunk only sets a nonce. */
	if (!a->cipher || !a->enc || !a->dec ||
	    EVP_EncryptInit_ex2(a->enc, a->cipher, key, NULL, NULL) != 1 ||
	    EVP_DecryptInit_ex2(a->dec, a->cipher, key, NULL, NULL) != 1) {
		ossl_fail("ChaCha20-Poly1305");
		aead_free(a);
		return NULL;
	}
	return a;
}

void aead_free(struct aead *a)
{
	if (!a)
		return;
	EVP_CIPHER_CTX_free(a->enc);	/* clears the key schedule */
	EVP_CIPHER_CTX_free(a->dec);
	EVP_CIPHER_free(a->cipher);
	free(a);
}

int aead_seal(struct aead *a, const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *in, size_t len,
	      uint8_t *out)
{
	int n = 0, m = 0;
	if (EVP_EncryptInit_ex2(a->enc, NULL, NULL, nonce, NULL) != 1 ||
	    (len && EVP_EncryptUpdate(a->enc, out, &n, in, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(a->enc, out + n, &m) != 1 || (size_t)(n + m) != len ||
	    EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_LEN, out + len) != 1)
		return ossl_fail("ChaCha20-Poly1305 encryption");
	return 0;
}

int aead_open(struct aead *a, const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *in, size_t len,
	      uint8_t *out)
{
	int n = 0, m = 0;
	if (EVP_DecryptInit_ex2(a->dec, NULL, NULL, nonce, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_LEN, (void *)(in + len)) != 1 ||
	    (len && EVP_DecryptUpdate(a->dec, out, &n, in, (int)len) != 1) ||
	    EVP_DecryptFinal_ex(a->dec, out + n, &m) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* ---- Ed25519 ---- */

static EVP_PKEY *ed25519_key(const uint8_t seed[ED25519_LEN])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, ED25519_LEN);
	if (!k)
		ossl_fail("Ed25519 key");
	return k;
}

int ed25519_generate(uint8_t seed[ED25519_LEN], uint8_t pub[ED25519_LEN])
{
	if (random_bytes(seed, ED25519_LEN) < 0)
		return -1;
	return ed25519_public(seed, pub);
}

int ed25519_public(const uint8_t seed[ED25519_LEN], uint8_t pub[ED25519_LEN])
{
	EVP_PKEY *k = ed25519_key(seed);
	size_t len = ED25519_LEN;
	int rc = k && EVP_PKEY_get_raw_public_key(k, pub, &len) == 1 && len == ED25519_LEN
			 ? 0
			 : ossl_fail("Ed25519 public key");
	EVP_PKEY_free(k);	/* clears the private key */
	return rc;
}

int ed25519_sign(const uint8_t seed[ED25519_LEN], const void *msg, size_t len,
		 uint8_t sig[ED25519_SIG_LEN])
{
	EVP_PKEY *k = ed25519_key(seed);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t sig_len = ED25519_SIG_LEN;
	int rc = k && ctx && EVP_DigestSignInit_ex(ctx, NULL, NULL, NULL, NULL, k, NULL) == 1 &&
			 EVP_DigestSign(ctx, sig, &sig_len, msg, len) == 1 && sig_len == ED25519_SIG_LEN
		 ? 0
		 : ossl_fail("Ed25519 signing");
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	return rc;
}

int ed25519_verify(const uint8_t pub[ED25519_LEN], const void *msg, size_t len,
		   const uint8_t sig[ED25519_SIG_LEN])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, ED25519_LEN);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = -1;
	if (!k || !ctx || EVP_DigestVerifyInit_ex(ctx, NULL, NULL, NULL, NULL, k, NULL) != 1) {
		ossl_fail("Ed25519 verification");
	} else {
		rc = EVP_DigestVerify(ctx, sig, ED25519_SIG_LEN, msg, len) == 1;
		ERR_clear_error();
	}
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	return rc;
}
