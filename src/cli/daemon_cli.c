/* The commands served by the daemon plugin (crstream-daemon.so), and the
 * way to it for those that may go through a daemon: the plugin is loaded
 * only by them, so that other commands never pay for gRPC. */
#include "cli/cli.h"
#include "cli/config.h"
#include "daemon/plugin.h"
#include "util/err.h"
#include "util/plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct daemon_plugin *daemon_plugin(const char *what)
{
	/* Debian ships it apart, so that crstream alone needs no gRPC. */
	return plugin_symbol(DAEMON_PLUGIN, DAEMON_PLUGIN_SYMBOL, what,
			     "on Debian: apt-get install crstream-daemon");
}

static bool is_address(const char *s)
{
	return !strncmp(s, "unix:", 5) || s[0] == '/';
}

bool take_daemon_flag(int *argc, char **argv, const char **addr)
{
	bool found = false;
	*addr = NULL;
	for (int i = 2; i < *argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		int drop = 0;
		if (!strcmp(argv[i], "--daemon")) {
			drop = 1;
			if (i + 1 < *argc && is_address(argv[i + 1])) {
				*addr = argv[i + 1];
				drop = 2;
			}
		} else if (!strncmp(argv[i], "--daemon=", 9)) {
			*addr = argv[i] + 9;
			drop = 1;
		}
		if (!drop)
			continue;
		found = true;
		memmove(&argv[i], &argv[i + drop], (size_t)(*argc - i - drop + 1) * sizeof(char *));
		*argc -= drop;
		i--;
	}
	return found;
}

const char *daemon_target(bool flag, const char *flag_addr, char *buf, size_t size)
{
	const char *env = getenv("CRSTREAM_DAEMON");
	if (flag_addr)
		return flag_addr;
	if (env && *env)
		return env;
	if (!flag)
		return NULL;
	struct config *cfg;
	if (config_load(&cfg) < 0)
		return NULL;
	snprintf(buf, size, "unix://%s", config_get(cfg, "daemon.socket"));
	config_free(cfg);
	return buf;
}

int cmd_daemon(int argc, char **argv)
{
	const struct daemon_plugin *p = daemon_plugin("crstream daemon");
	if (!p) {
		err_print(NULL);
		return 1;
	}
	return p->daemon_main(argc, argv);
}

int cmd_jobs(int argc, char **argv)
{
	char what[64];
	snprintf(what, sizeof(what), "crstream %s", argv[1]);
	const struct daemon_plugin *p = daemon_plugin(what);
	if (!p) {
		err_print(NULL);
		return 1;
	}
	return p->command(argc, argv);
}
