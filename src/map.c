#include "sb_map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static uint64_t sip_k0 = 0x0706050403020100ULL, sip_k1 = 0x0f0e0d0c0b0a0908ULL;

void sb_map_seed(void)
{
	uint64_t k[2];

	if (getrandom(k, sizeof(k), 0) == (ssize_t)sizeof(k)) {
		sip_k0 = k[0];
		sip_k1 = k[1];
	}
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                           \
	do {                                                               \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);  \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                     \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                     \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);  \
	} while (0)

/* SipHash-1-3 (one compression round, three finalization rounds). */
uint64_t sb_hash(const char *key, size_t len)
{
	const unsigned char *p = (const unsigned char *)key;
	uint64_t v0 = 0x736f6d6570736575ULL ^ sip_k0;
	uint64_t v1 = 0x646f72616e646f6dULL ^ sip_k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ sip_k0;
	uint64_t v3 = 0x7465646279746573ULL ^ sip_k1;
	uint64_t b = (uint64_t)len << 56, w;
	size_t i, tail = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, p + i, 8);
		v3 ^= w;
		SIPROUND;
		v0 ^= w;
	}
	for (size_t t = 0; t < tail; t++)
		b |= (uint64_t)p[i + t] << (8 * t);
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

void sb_map_init(struct sb_map *m)
{
	memset(m, 0, sizeof(*m));
}

void sb_map_release(struct sb_map *m)
{
	free(m->slots);
	sb_map_init(m);
}

static struct sb_map_slot *find(const struct sb_map *m, const char *key,
				size_t len, uint64_t h)
{
	size_t mask = m->cap - 1;

	if (!m->cap)
		return NULL;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct sb_map_slot *s = &m->slots[i];

		if (!s->key)
			return NULL;
		if (s->hash == h && s->len == len && !memcmp(s->key, key, len))
			return s;
	}
}

void *sb_map_get(const struct sb_map *m, const char *key, size_t len)
{
	struct sb_map_slot *s = find(m, key, len, sb_hash(key, len));

	return s ? s->val : NULL;
}

static void insert(struct sb_map_slot *slots, size_t cap,
		   const struct sb_map_slot *in)
{
	size_t mask = cap - 1, i = in->hash & mask;

	while (slots[i].key)
		i = (i + 1) & mask;
	slots[i] = *in;
}

static int resize(struct sb_map *m, size_t ncap)
{
	struct sb_map_slot *ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key)
			insert(ns, ncap, &m->slots[i]);
	free(m->slots);
	m->slots = ns;
	m->cap = ncap;
	return 0;
}

int sb_map_put(struct sb_map *m, const char *key, size_t len, void *val)
{
	struct sb_map_slot s = { key, len, sb_hash(key, len), val };

	/* keep the load under 3/4 */
	if ((m->count + 1) * 4 > m->cap * 3) {
		size_t ncap = m->cap ? m->cap * 2 : 8;

		if (ncap < m->cap || resize(m, ncap))
			return -ENOMEM;
	}
	insert(m->slots, m->cap, &s);
	m->count++;
	return 0;
}

void *sb_map_del(struct sb_map *m, const char *key, size_t len)
{
	struct sb_map_slot *s = find(m, key, len, sb_hash(key, len));
	size_t mask, i, j;
	void *val;

	if (!s)
		return NULL;
	val = s->val;
	mask = m->cap - 1;
	i = (size_t)(s - m->slots);
	/* backward shift: pull later members of the probe run into the hole
	 * unless their home lies cyclically in (i, j] */
	for (j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
		size_t home = m->slots[j].hash & mask;

		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	memset(&m->slots[i], 0, sizeof(m->slots[i]));
	m->count--;
	/* give memory back when mostly empty; failure just keeps the table */
	if (m->count == 0) {
		sb_map_release(m);
	} else if (m->cap > 64 && m->count * 8 < m->cap) {
		(void)resize(m, m->cap / 2);
	}
	return val;
}

size_t sb_map_next(const struct sb_map *m, size_t pos, void **val)
{
	for (; pos < m->cap; pos++) {
		if (m->slots[pos].key) {
			*val = m->slots[pos].val;
			return pos + 1;
		}
	}
	return 0;
}
