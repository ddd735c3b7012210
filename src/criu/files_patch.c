#include "criu/files_patch.h"
#include "util/err.h"
#include "criu_files.pb-c.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* From CRIU's criu/include/magic.h and <netinet/tcp.h>. */
#define IMG_COMMON_MAGIC 0x54564319u
#define FILES_MAGIC 0x56303138u
#define TCP_STATE_LISTEN 10u
#define ENTRY_MAX (16u << 20)

static uint32_t load_u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);	/* CRIU images are in host byte order */
	return v;
}

static void store_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

struct patch {
	const struct port_remap *remaps;
	int n;
	bool *used;
	char found[256];	/* listening ports seen, for the error message */
	size_t found_len;
};

/* Patches one decoded entry in place; returns true if it changed. */
static bool patch_entry(struct patch *p, Crs__CriuFileEntry *fe)
{
	Crs__CriuInetSk *sk = fe->isk;
	if (!sk || !sk->has_proto || sk->proto != IPPROTO_TCP || !sk->has_state ||
	    sk->state != TCP_STATE_LISTEN || !sk->has_src_port)
		return false;
	if (p->found_len < sizeof(p->found) - 8)
		p->found_len += (size_t)snprintf(p->found + p->found_len, sizeof(p->found) - p->found_len,
						 "%s%u", p->found_len ? "," : "", sk->src_port);
	for (int i = 0; i < p->n; i++) {
		if (p->remaps[i].from == sk->src_port) {
			sk->src_port = p->remaps[i].to;
			p->used[i] = true;
			return true;
		}
	}
	return false;
}

static int unmatched(struct patch *p)
{
	for (int i = 0; i < p->n; i++)
		if (!p->used[i])
			return err_set("--tcp-listen-remap %u:%u: no listening TCP socket on port %u "
				       "in files.img (listening ports: %s)",
				       p->remaps[i].from, p->remaps[i].to, p->remaps[i].from,
				       p->found_len ? p->found : "none");
	return 0;
}

/* A re-encoded entry must decode again: protobuf-c reads some malformed
 * encodings that it cannot read back once it has written them out again
 * (an unknown field numbered 0, given in a two-byte key), and CRIU would
 * refuse the patched image. Such an entry is refused here instead. */
static int check_reencoded(const uint8_t *entry, size_t n, size_t offset)
{
	Crs__CriuFileEntry *fe = crs__criu_file_entry__unpack(NULL, n, entry);
	if (!fe)
		return err_set("files.img: malformed entry at offset %zu (it does not survive "
			       "re-encoding)", offset);
	crs__criu_file_entry__free_unpacked(fe, NULL);
	return 0;
}

int criu_patch_tcp_listen(const uint8_t *img, size_t len, const struct port_remap *remaps,
			  int nremaps, uint8_t **out, size_t *out_len)
{
	if (len < 8 || load_u32(img) != IMG_COMMON_MAGIC || load_u32(img + 4) != FILES_MAGIC)
		return err_set("files.img: not a CRIU files image (bad magic)");
	struct patch p = {.remaps = remaps, .n = nremaps};
	p.used = calloc((size_t)nremaps + 1, sizeof(bool));
	/* Re-encoding may grow a varint by a few bytes per entry. */
	size_t cap = len * 2 + 64;
	uint8_t *buf = malloc(cap);
	if (!p.used || !buf) {
		free(p.used);
		free(buf);
		return err_set("out of memory");
	}
	memcpy(buf, img, 8);
	size_t in = 8, o = 8;
	int rc = 0;
	while (rc == 0 && in < len) {
		if (len - in < 4) {
			rc = err_set("files.img: truncated entry header at offset %zu", in);
			break;
		}
		uint32_t elen = load_u32(img + in);
		if (elen > ENTRY_MAX || elen > len - in - 4) {
			rc = err_set("files.img: entry of %u bytes at offset %zu runs past the end", elen, in);
			break;
		}
		Crs__CriuFileEntry *fe = crs__criu_file_entry__unpack(NULL, elen, img + in + 4);
		if (!fe) {
			rc = err_set("files.img: malformed entry at offset %zu", in);
			break;
		}
		if (patch_entry(&p, fe)) {
			size_t n = crs__criu_file_entry__get_packed_size(fe);
			if (o + 4 + n > cap) {
				rc = err_set("files.img: patched image too large");
			} else {
				store_u32(buf + o, (uint32_t)n);
				crs__criu_file_entry__pack(fe, buf + o + 4);
				rc = check_reencoded(buf + o + 4, n, in);
				o += 4 + n;
			}
		} else {
			/* Untouched entries are copied byte for byte. */
			memcpy(buf + o, img + in, 4 + elen);
			o += 4 + elen;
		}
		crs__criu_file_entry__free_unpacked(fe, NULL);
		in += 4 + elen;
	}
	if (rc == 0)
		rc = unmatched(&p);
	free(p.used);
	if (rc < 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	*out_len = o;
	return 0;
}

static int parse_port(const char *s, const char *end, uint16_t *port)
{
	unsigned long v = 0;
	if (s == end)
		return -1;
	for (const char *p = s; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 65535)
			return -1;
	}
	if (v == 0)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int parse_port_remaps(const char *s, struct port_remap **out, int *n)
{
	int count = 1;
	for (const char *p = s; *p; p++)
		count += *p == ',';
	struct port_remap *r = calloc((size_t)count, sizeof(*r));
	if (!r)
		return err_set("out of memory");
	int i = 0;
	const char *p = s;
	for (;;) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		const char *colon = memchr(p, ':', (size_t)(end - p));
		if (!colon || parse_port(p, colon, &r[i].from) < 0 ||
		    parse_port(colon + 1, end, &r[i].to) < 0) {
			free(r);
			return err_set("--tcp-listen-remap: \"%.*s\" is not OLD:NEW with ports 1-65535",
				       (int)(end - p), p);
		}
		i++;
		if (!comma)
			break;
		p = comma + 1;
	}
	*out = r;
	*n = i;
	return 0;
}
