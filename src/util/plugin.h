/* Optional parts of crstream built as shared objects and loaded on first
 * use: object storage (crstream-s3.so: libcurl, OpenSSL), encryption and
 * signatures (crstream-crypt.so: libcrypto) and the daemon
 * (crstream-daemon.so: gRPC, SQLite). Their libraries cost several MB of
 * memory and tens of milliseconds of start-up; a local dump pays for
 * neither. A plugin calls back into the binary (errors, byte streams, the
 * checkpoint layer), which exports its symbols for that.
 *
 * Where a plugin is, first match: $CRSTREAM_PLUGIN_DIR; next to the
 * crstream binary (a build tree); the directory compiled in (`make
 * install`'s $(PREFIX)/lib/crstream). crstream runs as root, and loading a
 * plugin runs its code: the directory and the file must belong to root (or
 * to the user running crstream) and be writable by nobody else, or they are
 * refused. */
#ifndef CRSTREAM_UTIL_PLUGIN_H
#define CRSTREAM_UTIL_PLUGIN_H

#include <stddef.h>

/* Loads plugin file, leaving its path in path (also on failure, to name
 * it) and its handle in *handle (may be NULL). Handles are kept for the
 * life of the process. Thread-safe. */
int plugin_load(const char *file, char *path, size_t size, void **handle);

/* The symbol sym of plugin file, loading the plugin on first use. NULL with
 * an error naming what for ("s3://b/p: object storage") and why; when the
 * plugin is not there at all, with missing_hint (where to get it) if not
 * NULL. */
void *plugin_symbol(const char *file, const char *sym, const char *what,
		    const char *missing_hint);

#endif
