/* Plugins: parts of crstream that pull in large libraries (libcurl and
 * OpenSSL for object storage, libcrypto for encryption and signatures) are
 * shared objects next to the crstream binary, loaded only by the commands
 * that need them, so that a local dump does not pay for them in memory. */
#ifndef CRSTREAM_UTIL_PLUGIN_H
#define CRSTREAM_UTIL_PLUGIN_H

/* dlopen()s the plugin `file` ("crstream-s3.so") from $CRSTREAM_PLUGIN_DIR,
 * else from the directory of the running binary, and returns the address
 * of its symbol `sym`. The handle is never closed. On failure sets an error
 * saying what the plugin is needed for (`what`) and returns NULL. */
void *plugin_symbol(const char *file, const char *sym, const char *what);

#endif
