/* Base64 (RFC 4648) with strict decoding, Bech32 (BIP 173), hex. */
#include "crypt/crypt_impl.h"
#include "util/err.h"

#include <ctype.h>
#include <string.h>

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t b64_len(size_t n, bool pad)
{
	return pad ? (n + 2) / 3 * 4 : (n * 4 + 2) / 3;
}

void b64_encode(const uint8_t *in, size_t n, char *out, bool pad)
{
	size_t i = 0;
	char *o = out;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*o++ = b64_alphabet[v >> 18];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = b64_alphabet[(v >> 6) & 63];
		*o++ = b64_alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		*o++ = b64_alphabet[v >> 18];
		*o++ = b64_alphabet[(v >> 12) & 63];
		if (pad) {
			*o++ = '=';
			*o++ = '=';
		}
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*o++ = b64_alphabet[v >> 18];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = b64_alphabet[(v >> 6) & 63];
		if (pad)
			*o++ = '=';
	}
	*o = '\0';
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_alphabet, c) : NULL;
	return p ? (int)(p - b64_alphabet) : -1;
}

long b64_decode(const char *in, size_t len, uint8_t *out, size_t cap, bool pad)
{
	if (pad) {
		if (len % 4)
			return -1;
		/* Strip the padding the encoder would have written. */
		size_t eq = 0;
		while (eq < 2 && len > 0 && in[len - 1] == '=') {
			len--;
			eq++;
		}
		if ((len % 4 == 2 && eq != 2) || (len % 4 == 3 && eq != 1) || (len % 4 == 0 && eq))
			return -1;
	}
	if (len % 4 == 1)
		return -1;
	size_t n = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
	if (n > cap)
		return -1;
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value(in[i]);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Canonical: the bits left over from the last character are zero. */
	if (acc != 0)
		return -1;
	return (long)o;
}

void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---- Bech32 ---- */

static const char bech32_charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t polymod_step(uint32_t chk, uint8_t v)
{
	static const uint32_t gen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
	uint32_t top = chk >> 25;
	chk = (chk & 0x1ffffff) << 5 ^ v;
	for (int i = 0; i < 5; i++)
		if ((top >> i) & 1)
			chk ^= gen[i];
	return chk;
}

/* The checksum state after the (lowercase) human-readable part. */
static uint32_t polymod_hrp(const char *hrp, size_t n)
{
	uint32_t chk = 1;
	for (size_t i = 0; i < n; i++)
		chk = polymod_step(chk, (uint8_t)tolower((unsigned char)hrp[i]) >> 5);
	chk = polymod_step(chk, 0);
	for (size_t i = 0; i < n; i++)
		chk = polymod_step(chk, (uint8_t)tolower((unsigned char)hrp[i]) & 31);
	return chk;
}

int bech32_encode(const char *hrp, const uint8_t *data, size_t n, char *out, size_t size)
{
	size_t hn = strlen(hrp);
	size_t groups = (n * 8 + 4) / 5;
	if (hn + 1 + groups + 6 + 1 > size)
		return err_set("bech32: output too long");
	bool upper = hn && isupper((unsigned char)hrp[0]);
	uint32_t chk = polymod_hrp(hrp, hn);
	memcpy(out, hrp, hn);
	char *o = out + hn;
	*o++ = '1';
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n) {
			acc = acc << 8 | data[i];
			bits += 8;
		} else if (bits > 0) {	/* pad the last group with zeros */
			acc <<= 5 - bits;
			bits = 5;
		}
		while (bits >= 5) {
			bits -= 5;
			uint8_t v = (acc >> bits) & 31;
			chk = polymod_step(chk, v);
			*o++ = bech32_charset[v];
		}
	}
	for (int i = 0; i < 6; i++)
		chk = polymod_step(chk, 0);
	chk ^= 1;
	for (int i = 0; i < 6; i++)
		*o++ = bech32_charset[(chk >> (5 * (5 - i))) & 31];
	*o = '\0';
	if (upper)
		for (char *p = out + hn; *p; p++)
			*p = (char)toupper((unsigned char)*p);
	return 0;
}

long bech32_decode(const char *s, char *hrp, size_t hrp_size, uint8_t *data, size_t cap)
{
	size_t len = strlen(s);
	bool lower = false, upper = false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 33 || c > 126)
			return -1;
		lower |= islower(c) != 0;
		upper |= isupper(c) != 0;
	}
	if (lower && upper)
		return -1;
	const char *sep = strrchr(s, '1');
	if (!sep || sep == s || (size_t)(s + len - sep) < 7)
		return -1;
	size_t hn = (size_t)(sep - s);
	if (hn + 1 > hrp_size)
		return -1;
	for (size_t i = 0; i < hn; i++)
		hrp[i] = (char)tolower((unsigned char)s[i]);
	hrp[hn] = '\0';
	uint32_t chk = polymod_hrp(s, hn);
	const char *d = sep + 1;
	size_t dn = (size_t)(s + len - d);
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < dn; i++) {
		const char *p = strchr(bech32_charset, tolower((unsigned char)d[i]));
		if (!p)
			return -1;
		uint8_t v = (uint8_t)(p - bech32_charset);
		chk = polymod_step(chk, v);
		if (i >= dn - 6)
			continue;	/* checksum characters carry no data */
		acc = acc << 5 | v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return -1;
			data[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* At most 4 bits of zero padding, as the encoder writes. */
	if (chk != 1 || bits > 4 || acc != 0)
		return -1;
	return (long)o;
}
