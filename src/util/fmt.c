#include "util/fmt.h"

#include <stdio.h>
#include <string.h>

void format_bytes(uint64_t bytes, char *buf, size_t size)
{
	const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}


/* Length of the valid UTF-8 sequence of a printable character at p, or 0
 * (invalid, overlong, a surrogate, or a C1 control). */
static size_t utf8_printable(const unsigned char *p)
{
	unsigned char b = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xBF;	/* range of the second byte */
	if (b >= 0xC2 && b <= 0xDF) {
		n = 2;
		if (b == 0xC2)
			lo = 0xA0;	/* U+0080..U+009F are the C1 controls */
	} else if (b >= 0xE0 && b <= 0xEF) {
		n = 3;
		if (b == 0xE0)
			lo = 0xA0;	/* overlong */
		else if (b == 0xED)
			hi = 0x9F;	/* surrogates */
	} else if (b >= 0xF0 && b <= 0xF4) {
		n = 4;
		if (b == 0xF0)
			lo = 0x90;
		else if (b == 0xF4)
			hi = 0x8F;	/* beyond U+10FFFF */
	} else {
		return 0;
	}
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return n;
}

/* The next piece of s as it is to be printed: into piece (NUL-terminated,
 * at most 8 bytes with the NUL); returns how many bytes of s it stands for. */
static size_t escape_piece(const unsigned char *s, char piece[8])
{
	if (*s >= 0x20 && *s < 0x7F) {
		piece[0] = (char)*s;
		piece[1] = '\0';
		return 1;
	}
	size_t n = *s >= 0x80 ? utf8_printable(s) : 0;
	if (n) {
		memcpy(piece, s, n);
		piece[n] = '\0';
		return n;
	}
	snprintf(piece, 8, "\\x%02x", *s);
	return 1;
}

char *escape_text(const char *s, char *out, size_t size)
{
	size_t used = 0;
	if (size == 0)
		return out;
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		char piece[8];
		size_t consumed = escape_piece(p, piece);
		size_t len = strlen(piece);
		if (used + len >= size)
			break;
		memcpy(out + used, piece, len);
		used += len;
		p += consumed;
	}
	out[used] = '\0';
	return out;
}

void fputs_escaped(const char *s, FILE *f)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		char piece[8];
		p += escape_piece(p, piece);
		fputs(piece, f);
	}
}
