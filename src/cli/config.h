/* Configuration: built-in defaults < config file < environment < flags.
 *
 * The file is JSON, /etc/crstream/config.json unless $CRSTREAM_CONFIG names
 * another, with one object per section: {"checkpoint": {"streams": 4}}.
 * Each key has an environment variable: CRSTREAM_ + the key upper-cased
 * with dots as underscores (checkpoint.streams -> CRSTREAM_CHECKPOINT_STREAMS).
 * Unknown keys and wrong types are errors that name the key and where it
 * came from. */
#ifndef CRSTREAM_CLI_CONFIG_H
#define CRSTREAM_CLI_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_DEFAULT_PATH "/etc/crstream/config.json"

enum config_source { CFG_DEFAULT, CFG_FILE, CFG_ENV, CFG_FLAG };

struct config;

/* Loads defaults, the file (missing default file is fine; a missing
 * $CRSTREAM_CONFIG file is an error) and the environment. */
int config_load(struct config **out);
void config_free(struct config *c);

/* A value from a command-line flag; validated like the others. */
int config_set_flag(struct config *c, const char *key, const char *value);

/* The effective value as a string ("" when unset and without default). */
const char *config_get(const struct config *c, const char *key);
uint64_t config_uint(const struct config *c, const char *key);
int64_t config_int(const struct config *c, const char *key);
bool config_bool(const struct config *c, const char *key);
/* True if the key has a value (from any source). */
bool config_is_set(const struct config *c, const char *key);

/* For store_options: returns the value or NULL when unset. */
const char *config_lookup(void *config, const char *key);

/* `crstream config show`: every key, its effective value (secrets masked)
 * and where it came from. */
void config_show(const struct config *c, FILE *out);

/* Parses a uid list ("1000,1001"); fills up to max uids (uids may be
 * NULL) and returns how many there are, or -1 with an error. */
int config_parse_uids(const char *s, unsigned *uids, int max);

/* The path of the config file in use (which may not exist). */
const char *config_path(const struct config *c);

#endif
