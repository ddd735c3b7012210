/* The commands served by the daemon plugin (crstream-daemon.so): loaded
 * only by them, so that other commands never pay for gRPC. */
#include "cli/cli.h"
#include "daemon/plugin.h"
#include "util/err.h"
#include "util/plugin.h"

#include <stdio.h>

static const struct daemon_plugin *load(const char *what)
{
	const struct daemon_plugin *p = plugin_symbol(DAEMON_PLUGIN, DAEMON_PLUGIN_SYMBOL, what);
	if (!p)
		err_print(NULL);
	return p;
}

int cmd_daemon(int argc, char **argv)
{
	const struct daemon_plugin *p = load("crstream daemon");
	return p ? p->daemon_main(argc, argv) : 1;
}
