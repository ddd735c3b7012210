/* Rewrites of CRIU images that a streamer can do in flight. */
#ifndef CRSTREAM_CRIU_FILES_PATCH_H
#define CRSTREAM_CRIU_FILES_PATCH_H

#include <stddef.h>
#include <stdint.h>

struct port_remap {
	uint16_t from;
	uint16_t to;
};

/* Rewrite the port of every listening TCP socket in a files.img whose port
 * is remapped. On success *out is a new malloc'd image. Fails if the image
 * is malformed or a remap matches no listening socket (the message lists
 * the listening ports the image does have). */
int criu_patch_tcp_listen(const uint8_t *img, size_t len, const struct port_remap *remaps,
			  int nremaps, uint8_t **out, size_t *out_len);

/* Parse "old:new[,old:new...]" into a malloc'd array. */
int parse_port_remaps(const char *s, struct port_remap **out, int *n);

#endif
