/* Pieces shared by the capture, serve and extract engines. */
#ifndef CRSTREAM_ENGINE_UTIL_H
#define CRSTREAM_ENGINE_UTIL_H

#include <stdbool.h>

#include "criu/criu_socket.h"

/* Accept CRIU's connection, giving up with an error when cancel_fd (if not
 * -1) becomes readable first. */
int engine_accept(struct criu_listener *l, int cancel_fd);

struct engine_opts;

/* Refuse image file names that could leave the images directory. */
int engine_check_name(const char *name);

/* Index of the external file named `name` in o->ext, or -1. */
int engine_find_ext(const struct engine_opts *o, const char *name);

/* Fail naming the first external file that never appeared in the image. */
int engine_missing_ext(const struct engine_opts *o, const bool *used);

#endif
