/* A small string-keyed hash map (keys copied, values borrowed). Image files
 * number in the hundreds; this is all the map they need.
 *
 * Keys come from checkpoints, i.e. from whoever wrote them: the hash is
 * XXH3 with a random seed per map, so that no one can pick names that all
 * land in one bucket and make filling the map quadratic. */
#ifndef CRSTREAM_UTIL_STRMAP_H
#define CRSTREAM_UTIL_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strmap_entry {
	struct strmap_entry *next;
	void *value;
	char key[];
};

struct strmap {
	struct strmap_entry **buckets;
	size_t nbuckets;
	size_t count;
	uint64_t seed;
};

int strmap_init(struct strmap *m);
/* Frees the entries (not the values). */
void strmap_free(struct strmap *m);
/* NULL if absent. */
struct strmap_entry *strmap_get(const struct strmap *m, const char *key);
/* Inserts a new key; fails (with a message) if it exists or memory runs out. */
struct strmap_entry *strmap_add(struct strmap *m, const char *key, void *value);
/* Calls fn on every entry; stops and returns fn's value when non-zero. */
int strmap_each(const struct strmap *m, int (*fn)(struct strmap_entry *e, void *arg), void *arg);

#endif
