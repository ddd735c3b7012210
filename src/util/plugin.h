/* Optional parts of crstream built as shared objects next to the crstream
 * binary (or in $CRSTREAM_PLUGIN_DIR) and loaded on first use: object
 * storage (libcurl, OpenSSL) and the daemon (gRPC, SQLite). Their libraries
 * cost several MB of memory and tens of milliseconds of start-up; a local
 * dump pays for neither. A plugin calls back into the binary (errors, byte
 * streams, the checkpoint layer), which exports its symbols for that. */
#ifndef CRSTREAM_UTIL_PLUGIN_H
#define CRSTREAM_UTIL_PLUGIN_H

/* The symbol sym of plugin file ("crstream-s3.so"), loading the plugin on
 * first use (handles are kept for the life of the process). NULL with an
 * error naming what for ("s3://b/p: object storage") and why. Thread-safe. */
void *plugin_symbol(const char *file, const char *sym, const char *what);

#endif
