/* The config file parser: config_load on a file named by $CRSTREAM_CONFIG
 * (here a memfd holding the input), then `config show`, and flags on top.
 *
 * Input: the config file, optionally followed by FUZZ_SEPARATOR and
 * "key=value" lines applied as command-line flags.
 *
 * Properties: a failure has a message; every value the file or a flag set
 * is one the same key accepts again as a flag (what was validated stays
 * valid after normalisation). */
#include "fuzz.h"
#include "cli/config.h"

#include <stdio.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* The file is the only input: no setting from the environment. */
	extern char **environ;
	for (char **e = environ; *e;) {
		if (strncmp(*e, "CRSTREAM_", 9) == 0) {
			char name[256];
			snprintf(name, sizeof(name), "%.*s", (int)strcspn(*e, "="), *e);
			unsetenv(name);
		} else {
			e++;
		}
	}
	return 0;
}

/* Each key `config show` lists has a value that validates as a flag. */
static void check_values(struct config *c)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	FUZZ_CHECK(f, "open_memstream");
	config_show(c, f);
	fclose(f);
	char *save = NULL;
	int keys = 0;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char key[128];
		if (strncmp(line, "config file:", 12) == 0 || sscanf(line, "%127s", key) != 1)
			continue;
		keys++;
		if (!config_is_set(c, key))
			continue;
		char *v = strdup(config_get(c, key));
		FUZZ_CHECK(v, "out of memory");
		FUZZ_CHECK(config_set_flag(c, key, v) == 0, "%s=\"%s\" is not accepted again: %s",
			   key, v, err_msg());
		free(v);
	}
	FUZZ_CHECK(keys > 10, "config show listed %d keys", keys);
	free(text);
}

static void apply_flags(struct config *c, const struct fuzz_part *flags)
{
	char *text = fuzz_cstr(flags->p, flags->len);
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		err_clear();
		if (config_set_flag(c, line, eq + 1) < 0)
			fuzz_failed_with_message("config_set_flag");
	}
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part parts[2];
	int n = fuzz_split(data, size, parts, 2);
	int fd = fuzz_memfd("config.json", parts[0].p, parts[0].len);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	FUZZ_CHECK(setenv("CRSTREAM_CONFIG", path, 1) == 0, "setenv");

	struct config *c = NULL;
	err_clear();
	if (config_load(&c) < 0) {
		fuzz_failed_with_message("config_load");
	} else {
		if (n == 2)
			apply_flags(c, &parts[1]);
		check_values(c);
		config_free(c);
	}
	close(fd);
	return 0;
}
