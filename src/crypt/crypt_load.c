/* The part of the crypto layer linked into crstream itself: finding the
 * plugin. Everything else in src/crypt/ is in crstream-crypt.so. */
#include "crypt/crypt.h"
#include "util/plugin.h"

const struct crypt_ops *crypt_load(const char *what)
{
	return plugin_symbol(CRYPT_PLUGIN, "crypt_plugin_ops", what, NULL);
}
