#include "store/s3_str.h"
#include "util/err.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool sbuf_reserve(struct sbuf *b, size_t more)
{
	if (b->oom)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 128;
	while (cap < b->len + more + 1) {
		if (cap > ((size_t)-1) / 2) {
			b->oom = true;
			return false;
		}
		cap *= 2;
	}
	char *s = realloc(b->s, cap);
	if (!s) {
		b->oom = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

void sbuf_add(struct sbuf *b, const char *s, size_t len)
{
	if (!sbuf_reserve(b, len))
		return;
	memcpy(b->s + b->len, s, len);
	b->len += len;
	b->s[b->len] = '\0';
}

void sbuf_adds(struct sbuf *b, const char *s)
{
	sbuf_add(b, s, strlen(s));
}

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if (!sbuf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sbuf_add_xml(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': sbuf_adds(b, "&amp;"); break;
		case '<': sbuf_adds(b, "&lt;"); break;
		case '>': sbuf_adds(b, "&gt;"); break;
		case '"': sbuf_adds(b, "&quot;"); break;
		case '\'': sbuf_adds(b, "&apos;"); break;
		default: sbuf_add(b, s, 1);
		}
	}
}

const char *sbuf_cstr(struct sbuf *b)
{
	if (b->oom) {
		err_set("out of memory");
		return NULL;
	}
	return b->s ? b->s : "";
}

char *sbuf_take(struct sbuf *b)
{
	if (b->oom) {
		sbuf_free(b);
		err_set("out of memory");
		return NULL;
	}
	char *s = b->s ? b->s : strdup("");
	if (!s)
		err_set("out of memory");
	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

void sbuf_free(struct sbuf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
	b->oom = false;
}

/* Does the tag at p (just after '<' or "</") carry exactly this name? */
static bool tag_is(const char *p, const char *end, const char *name, size_t nlen)
{
	if ((size_t)(end - p) <= nlen || memcmp(p, name, nlen) != 0)
		return false;
	char c = p[nlen];
	return c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool xml_next(const char **pos, const char *end, const char *name, struct xml_span *out)
{
	size_t nlen = strlen(name);
	const char *p = *pos;
	while (p < end) {
		const char *lt = memchr(p, '<', (size_t)(end - p));
		if (!lt)
			return false;
		p = lt + 1;
		if (!tag_is(p, end, name, nlen))
			continue;
		const char *gt = memchr(p, '>', (size_t)(end - p));
		if (!gt)
			return false;
		if (gt[-1] == '/') {	/* <name/>: empty */
			out->p = gt + 1;
			out->len = 0;
			*pos = gt + 1;
			return true;
		}
		/* Our elements of interest do not nest in themselves, so the
		 * first closing tag of the same name ends it. */
		const char *q = gt + 1;
		while (q < end) {
			const char *c = memchr(q, '<', (size_t)(end - q));
			if (!c || end - c < 2)
				return false;
			if (c[1] == '/' && tag_is(c + 2, end, name, nlen)) {
				out->p = gt + 1;
				out->len = (size_t)(c - (gt + 1));
				const char *close = memchr(c, '>', (size_t)(end - c));
				*pos = close ? close + 1 : end;
				return true;
			}
			q = c + 1;
		}
		return false;
	}
	return false;
}

/* Appends the UTF-8 encoding of code point cp. */
static bool add_utf8(struct sbuf *b, unsigned long cp)
{
	char u[4];
	size_t n;
	if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return false;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	sbuf_add(b, u, n);
	return true;
}

/* Decodes one reference starting at p ('&'); returns its length or 0. */
static size_t decode_ref(const char *p, const char *end, struct sbuf *b)
{
	static const struct {
		const char *name;
		char c;
	} ents[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
	p++;
	for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
		size_t n = strlen(ents[i].name);
		if ((size_t)(end - p) >= n && memcmp(p, ents[i].name, n) == 0) {
			sbuf_add(b, &ents[i].c, 1);
			return n + 1;
		}
	}
	if (p >= end || *p != '#')
		return 0;
	const char *q = p + 1;
	int base = 10;
	if (q < end && (*q == 'x' || *q == 'X')) {
		base = 16;
		q++;
	}
	unsigned long cp = 0;
	const char *digits = q;
	while (q < end && *q != ';') {
		int d = isdigit((unsigned char)*q)	       ? *q - '0'
			: base == 16 && isxdigit((unsigned char)*q) ? (tolower((unsigned char)*q) - 'a' + 10)
								: -1;
		if (d < 0 || cp > 0x10FFFF)
			return 0;
		cp = cp * (unsigned long)base + (unsigned long)d;
		q++;
	}
	if (q >= end || q == digits || !add_utf8(b, cp))
		return 0;
	return (size_t)(q + 1 - (p - 1));
}

char *xml_decode(const char *p, size_t len)
{
	struct sbuf b = {0};
	const char *end = p + len;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		if (!amp) {
			sbuf_add(&b, p, (size_t)(end - p));
			break;
		}
		sbuf_add(&b, p, (size_t)(amp - p));
		size_t n = decode_ref(amp, end, &b);
		if (n == 0) {
			sbuf_free(&b);
			return NULL;
		}
		p = amp + n;
	}
	return sbuf_take(&b);
}

char *xml_text(struct xml_span in, const char *name, bool *oom)
{
	const char *pos = in.p;
	struct xml_span s;
	if (!xml_next(&pos, in.p + in.len, name, &s))
		return NULL;
	char *t = xml_decode(s.p, s.len);
	if (!t && oom)
		*oom = true;
	return t;
}

int s3_parse_size(const char *s, unsigned long long *out)
{
	char *end;
	errno = 0;
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	unsigned shift = 0;
	switch (tolower((unsigned char)*end)) {
	case '\0': break;
	case 'k': shift = 10; end++; break;
	case 'm': shift = 20; end++; break;
	case 'g': shift = 30; end++; break;
	default: return -1;
	}
	if (shift && (strcmp(end, "") == 0 || strcasecmp(end, "ib") == 0 || strcasecmp(end, "b") == 0))
		end += strlen(end);
	if (*end || (shift && v > (~0ULL >> shift)))
		return -1;
	*out = v << shift;
	return 0;
}
