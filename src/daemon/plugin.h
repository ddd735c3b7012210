/* What the crstream binary calls in the daemon plugin (crstream-daemon.so,
 * see util/plugin.h): the daemon itself, and the client side of the
 * commands that talk to it. */
#ifndef CRSTREAM_DAEMON_PLUGIN_H
#define CRSTREAM_DAEMON_PLUGIN_H

#define DAEMON_PLUGIN "crstream-daemon.so"
#define DAEMON_PLUGIN_SYMBOL "crstream_daemon_plugin"

struct daemon_plugin {
	/* `crstream daemon [options]`: the exit status. */
	int (*daemon_main)(int argc, char **argv);
};

#endif
