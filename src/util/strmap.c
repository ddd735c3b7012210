#include "util/strmap.h"
#include "util/err.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define INITIAL_BUCKETS 256

static size_t hash_key(const struct strmap *m, const char *s)
{
	return (size_t)XXH3_64bits_withSeed(s, strlen(s), m->seed);
}

/* Unpredictable to whoever crafts the names; getrandom() without blocking
 * (early boot), else something that at least differs per run. */
static uint64_t random_seed(void)
{
	uint64_t seed;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
		return seed;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&seed;
}

int strmap_init(struct strmap *m)
{
	m->nbuckets = INITIAL_BUCKETS;
	m->count = 0;
	m->seed = random_seed();
	m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
	return m->buckets ? 0 : err_set("out of memory");
}

void strmap_free(struct strmap *m)
{
	for (size_t b = 0; m->buckets && b < m->nbuckets; b++) {
		struct strmap_entry *e = m->buckets[b];
		while (e) {
			struct strmap_entry *next = e->next;
			free(e);
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = NULL;
	m->count = 0;
}

struct strmap_entry *strmap_get(const struct strmap *m, const char *key)
{
	for (struct strmap_entry *e = m->buckets[hash_key(m, key) % m->nbuckets]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static void grow(struct strmap *m)
{
	size_t n = m->nbuckets * 4;
	struct strmap_entry **b = calloc(n, sizeof(*b));
	if (!b)
		return; /* keep the longer chains; still correct */
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct strmap_entry *e = m->buckets[i];
		while (e) {
			struct strmap_entry *next = e->next;
			size_t h = hash_key(m, e->key) % n;
			e->next = b[h];
			b[h] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
}

struct strmap_entry *strmap_add(struct strmap *m, const char *key, void *value)
{
	if (strmap_get(m, key)) {
		err_set("%s is already present", key);
		return NULL;
	}
	if (m->count >= m->nbuckets * 2)
		grow(m);
	size_t len = strlen(key);
	struct strmap_entry *e = malloc(sizeof(*e) + len + 1);
	if (!e) {
		err_set("out of memory");
		return NULL;
	}
	memcpy(e->key, key, len + 1);
	e->value = value;
	size_t h = hash_key(m, key) % m->nbuckets;
	e->next = m->buckets[h];
	m->buckets[h] = e;
	m->count++;
	return e;
}

int strmap_each(const struct strmap *m, int (*fn)(struct strmap_entry *e, void *arg), void *arg)
{
	for (size_t b = 0; b < m->nbuckets; b++)
		for (struct strmap_entry *e = m->buckets[b]; e; e = e->next) {
			int rc = fn(e, arg);
			if (rc)
				return rc;
		}
	return 0;
}
