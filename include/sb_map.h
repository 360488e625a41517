/*
 * A hash map from byte-string keys to pointers: open addressing with linear
 * probing and backward-shift deletion (no tombstones).  Keys are not copied:
 * each key must stay valid, unchanged, for as long as its entry exists.
 * Hashing is SipHash-1-3 with a per-process random key, so clients cannot
 * choose names that collide.  Not synchronized: the registry guards it.
 */
#ifndef SB_MAP_H
#define SB_MAP_H

#include <stddef.h>
#include <stdint.h>

struct sb_map_slot {
	const char *key;	/* NULL: empty */
	size_t len;
	uint64_t hash;
	void *val;
};

struct sb_map {
	struct sb_map_slot *slots;
	size_t cap;	/* 0 or a power of two */
	size_t count;
};

void sb_map_init(struct sb_map *m);
void sb_map_release(struct sb_map *m);

/* The value stored under key, or NULL. */
void *sb_map_get(const struct sb_map *m, const char *key, size_t len);

/* Stores val under key, which must not be present.  -ENOMEM leaves the map
 * unchanged. */
int sb_map_put(struct sb_map *m, const char *key, size_t len, void *val);

/* Removes key and returns its value, or NULL when absent. */
void *sb_map_del(struct sb_map *m, const char *key, size_t len);

/* Iteration: for (size_t i = 0; (i = sb_map_next(m, i, &val)); ) ...
 * Starts at 0, returns 0 at the end.  The map must not change meanwhile. */
size_t sb_map_next(const struct sb_map *m, size_t pos, void **val);

/* Seeds the hash from the kernel's random source; call once at start-up.
 * Without it a fixed key is used (tests). */
void sb_map_seed(void);

uint64_t sb_hash(const char *key, size_t len);

#endif
