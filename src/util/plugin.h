/* Plugins: parts of crstream that pull in large libraries (libcurl and
 * OpenSSL for object storage, libcrypto for encryption and signatures) are
 * shared objects loaded only by the commands that need them, so that a
 * local dump does not pay for them in memory.
 *
 * Where they are, first match: $CRSTREAM_PLUGIN_DIR; next to the crstream
 * binary when the plugin is there (a build tree); the directory compiled in
 * (`make install`'s $(PREFIX)/lib/crstream). crstream runs as root, and
 * loading a plugin runs its code: the directory and the file must belong to
 * root (or to the user running crstream) and be writable by nobody else, or
 * they are refused. */
#ifndef CRSTREAM_UTIL_PLUGIN_H
#define CRSTREAM_UTIL_PLUGIN_H

#include <stddef.h>

/* Finds, checks and loads the plugin `file` ("crstream-s3.so"): 0 with its
 * path in path (and its dlopen handle in *handle if not NULL), or -1 with
 * the reason it cannot be used (path then says where it was looked for). */
int plugin_load(const char *file, char *path, size_t size, void **handle);

/* plugin_load, then the address of its symbol `sym`. The handle is never
 * closed. On failure sets an error saying what the plugin is needed for
 * (`what`) and returns NULL. */
void *plugin_symbol(const char *file, const char *sym, const char *what);

#endif
