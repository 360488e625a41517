/*
 * The hash map (sb_map): many keys, byte-string keys with embedded NULs and
 * shared prefixes, deletion by backward shift keeping every other key
 * reachable (checked against a plain array model), iteration, shrinking.
 */
#include "check.h"

#include "sb_map.h"


/* Key i of a pool: varied lengths, embedded NULs, many shared prefixes. */
struct key {
	char b[24];
	size_t len;
};

static void make_key(struct key *k, uint32_t i)
{
	/* "k" + 4 little-endian bytes of i (often NUL) + a tail whose length
	 * depends on i, so keys differ in length and share prefixes */
	size_t tail = i % 7;

	k->b[0] = 'k';
	memcpy(k->b + 1, &i, sizeof(i));
	for (size_t t = 0; t < tail; t++)
		k->b[5 + t] = (char)(t % 2 ? '\0' : 'p');
	k->len = 5 + tail;
}

static void test_empty_map(void)
{
	struct sb_map m;
	void *v = NULL;

	sb_map_init(&m);
	CHECK(sb_map_get(&m, "a", 1) == NULL);
	CHECK(sb_map_del(&m, "a", 1) == NULL);
	CHECK_EQ_SIZE(sb_map_next(&m, 0, &v), 0);
	CHECK_EQ_SIZE(m.count, 0);
	sb_map_release(&m);
	sb_map_release(&m);
}

static void test_many_keys(void)
{
	enum { N = 10000 };
	static struct key keys[N];
	static int vals[N];
	struct sb_map m;

	sb_map_init(&m);
	for (uint32_t i = 0; i < N; i++) {
		make_key(&keys[i], i);
		CHECK_EQ_INT(sb_map_put(&m, keys[i].b, keys[i].len, &vals[i]), 0);
		CHECK_EQ_SIZE(m.count, i + 1);
	}
	for (uint32_t i = 0; i < N; i++)
		CHECK(sb_map_get(&m, keys[i].b, keys[i].len) == &vals[i]);
	/* keys that are not there: other numbers, and prefixes of present
	 * keys (one byte shorter) and extensions (one byte longer) */
	for (uint32_t i = 0; i < N; i++) {
		struct key k;

		make_key(&k, N + i);
		CHECK(sb_map_get(&m, k.b, k.len) == NULL);
		CHECK(sb_map_get(&m, keys[i].b, keys[i].len - 1) == NULL);
		memcpy(k.b, keys[i].b, keys[i].len);
		k.b[keys[i].len] = 'z';
		CHECK(sb_map_get(&m, k.b, keys[i].len + 1) == NULL);
	}
	/* the load stays under 3/4, so lookups of absent keys terminate */
	CHECK(m.count * 4 <= m.cap * 3);
	for (uint32_t i = 0; i < N; i += 2)
		CHECK(sb_map_del(&m, keys[i].b, keys[i].len) == &vals[i]);
	for (uint32_t i = 0; i < N; i++)
		CHECK(sb_map_get(&m, keys[i].b, keys[i].len) ==
		      (i % 2 ? &vals[i] : NULL));
	CHECK_EQ_SIZE(m.count, N / 2);
	sb_map_release(&m);
}

/* Keys compare as byte strings of their length: NULs and prefixes count. */
static void test_nul_and_prefix_keys(void)
{
	static const struct {
		const char *b;
		size_t len;
	} keys[] = {
		{ "", 0 },
		{ "a", 1 },
		{ "a\0", 2 },
		{ "a\0\0", 3 },
		{ "a\0b", 3 },
		{ "a\0c", 3 },
		{ "ab", 2 },
		{ "abc", 3 },
		{ "\0", 1 },
		{ "\0\0", 2 },
		{ "b\0a", 3 },
	};
	enum { N = sizeof(keys) / sizeof(keys[0]) };
	int vals[N];
	struct sb_map m;

	sb_map_init(&m);
	for (size_t i = 0; i < N; i++)
		CHECK_EQ_INT(sb_map_put(&m, keys[i].b, keys[i].len, &vals[i]), 0);
	CHECK_EQ_SIZE(m.count, N);
	for (size_t i = 0; i < N; i++)
		CHECK(sb_map_get(&m, keys[i].b, keys[i].len) == &vals[i]);
	/* the same bytes at another address find the entry */
	{
		char copy[3] = { 'a', '\0', 'b' };

		CHECK(sb_map_get(&m, copy, 3) == &vals[4]);
		CHECK(sb_map_get(&m, copy, 2) == &vals[2]);
		CHECK(sb_map_get(&m, copy, 1) == &vals[1]);
	}
	/* remove each in turn; all the others stay reachable */
	for (size_t d = 0; d < N; d++) {
		CHECK(sb_map_del(&m, keys[d].b, keys[d].len) == &vals[d]);
		CHECK(sb_map_del(&m, keys[d].b, keys[d].len) == NULL);
		for (size_t i = 0; i < N; i++)
			CHECK(sb_map_get(&m, keys[i].b, keys[i].len) ==
			      (i <= d ? NULL : &vals[i]));
		CHECK_EQ_SIZE(m.count, N - 1 - d);
	}
	sb_map_release(&m);
}

/*
 * Random puts, deletes and lookups over a pool of keys, compared after
 * every step with an array saying which keys are present.  Deleting from
 * the middle of probe runs is where a broken backward shift loses keys, so
 * every key is looked up regularly, not only the one just touched.
 */
static void test_random_against_model(void)
{
	enum { POOL = 3000, OPS = 300000 };
	static struct key keys[POOL];
	static int vals[POOL];
	static bool present[POOL];
	struct check_rng rng;
	struct sb_map m;
	size_t count = 0;

	check_rng_init(&rng, 777);
	for (uint32_t i = 0; i < POOL; i++) {
		make_key(&keys[i], i * 2654435761u);
		present[i] = false;
	}
	sb_map_init(&m);
	for (int op = 0; op < OPS; op++) {
		uint32_t i = check_rng_below(&rng, POOL);
		/* phases that fill and empty the map, so it grows and shrinks */
		bool filling = (op / 20000) % 2 == 0;
		uint32_t r = check_rng_below(&rng, 100);

		if (!present[i] && r < (filling ? 70u : 25u)) {
			CHECK_EQ_INT(sb_map_put(&m, keys[i].b, keys[i].len, &vals[i]), 0);
			present[i] = true;
			count++;
		} else if (present[i] && r >= (filling ? 70u : 25u)) {
			CHECK(sb_map_del(&m, keys[i].b, keys[i].len) == &vals[i]);
			present[i] = false;
			count--;
		} else {
			CHECK(sb_map_get(&m, keys[i].b, keys[i].len) ==
			      (present[i] ? &vals[i] : NULL));
		}
		CHECK_EQ_SIZE(m.count, count);
		if (op % 997 == 0) {
			for (uint32_t k = 0; k < POOL; k++)
				CHECK(sb_map_get(&m, keys[k].b, keys[k].len) ==
				      (present[k] ? &vals[k] : NULL));
		}
	}
	for (uint32_t k = 0; k < POOL; k++) {
		CHECK(sb_map_get(&m, keys[k].b, keys[k].len) ==
		      (present[k] ? &vals[k] : NULL));
		if (present[k])
			CHECK(sb_map_del(&m, keys[k].b, keys[k].len) == &vals[k]);
	}
	CHECK_EQ_SIZE(m.count, 0);
	sb_map_release(&m);
}

/*
 * Many keys with the same home slot make one long probe run that wraps past
 * the end of the table, with a few other keys mixed in; the run is deleted
 * from its start, from its end and from the middle, and every key still
 * present must stay reachable after each step.
 */
static void test_clustered_deletes(void)
{
	enum { HOME_MASK = 1023, HOME = 1020, CLUSTER = 24, STRANGERS = 8,
	       N = CLUSTER + STRANGERS };
	static struct key keys[N];
	static int vals[N];
	static const int order[][CLUSTER] = {
		{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
		  18, 19, 20, 21, 22, 23 },
		{ 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8,
		  7, 6, 5, 4, 3, 2, 1, 0 },
		{ 12, 0, 23, 6, 18, 3, 9, 15, 21, 1, 22, 2, 20, 4, 19, 5, 17, 7,
		  16, 8, 14, 10, 13, 11 },
	};
	uint32_t found = 0, strangers = 0;
	struct sb_map m;

	/* hashes ending in 1111111100b: in any table of 8 to 1024 slots the
	 * cluster's home is the fourth slot from the end, so its run wraps to
	 * the start, where the strangers live */
	for (uint32_t i = 0; found < CLUSTER || strangers < STRANGERS; i++) {
		struct key k;
		uint64_t home;

		make_key(&k, i);
		home = sb_hash(k.b, k.len) & HOME_MASK;
		if (home == HOME && found < CLUSTER)
			keys[found++] = k;
		else if (home != HOME && home < 20 && strangers < STRANGERS)
			keys[CLUSTER + strangers++] = k;
	}
	for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++) {
		bool gone[N] = { false };

		sb_map_init(&m);
		for (uint32_t i = 0; i < N; i++)
			CHECK_EQ_INT(sb_map_put(&m, keys[i].b, keys[i].len, &vals[i]), 0);
		CHECK(m.cap >= 8 && m.cap <= HOME_MASK + 1);
		for (size_t d = 0; d < CLUSTER; d++) {
			int del = order[o][d];

			CHECK(sb_map_del(&m, keys[del].b, keys[del].len) == &vals[del]);
			gone[del] = true;
			for (uint32_t k = 0; k < N; k++)
				CHECK(sb_map_get(&m, keys[k].b, keys[k].len) ==
				      (gone[k] ? NULL : &vals[k]));
		}
		CHECK_EQ_SIZE(m.count, STRANGERS);
		sb_map_release(&m);
	}
}

static void test_iteration_visits_each_once(void)
{
	enum { N = 10000 };
	static struct key keys[N];
	static int vals[N];
	static int seen[N];
	struct sb_map m;
	size_t visits = 0;
	void *v;

	sb_map_init(&m);
	for (uint32_t i = 0; i < N; i++) {
		make_key(&keys[i], i);
		CHECK_EQ_INT(sb_map_put(&m, keys[i].b, keys[i].len, &vals[i]), 0);
	}
	/* remove some so the table has holes where entries used to be */
	for (uint32_t i = 0; i < N; i += 3)
		CHECK(sb_map_del(&m, keys[i].b, keys[i].len) == &vals[i]);
	memset(seen, 0, sizeof(seen));
	for (size_t pos = 0; (pos = sb_map_next(&m, pos, &v));) {
		ptrdiff_t i = (int *)v - vals;

		CHECK(i >= 0 && i < N);
		seen[i]++;
		visits++;
		CHECK(visits <= m.count);
	}
	CHECK_EQ_SIZE(visits, m.count);
	for (uint32_t i = 0; i < N; i++)
		CHECK_EQ_INT(seen[i], i % 3 ? 1 : 0);
	sb_map_release(&m);
}

/* After most keys are gone the table is made smaller, and what is left is
 * still found. */
static void test_shrinks(void)
{
	enum { N = 10000, KEEP = 10 };
	static struct key keys[N];
	static int vals[N];
	struct sb_map m;
	size_t peak;

	sb_map_init(&m);
	for (uint32_t i = 0; i < N; i++) {
		make_key(&keys[i], i);
		CHECK_EQ_INT(sb_map_put(&m, keys[i].b, keys[i].len, &vals[i]), 0);
	}
	peak = m.cap;
	CHECK(peak >= N);
	for (uint32_t i = KEEP; i < N; i++)
		CHECK(sb_map_del(&m, keys[i].b, keys[i].len) == &vals[i]);
	CHECK_EQ_SIZE(m.count, KEEP);
	CHECK(m.cap < peak);
	CHECK(m.cap <= 128);
	for (uint32_t i = 0; i < N; i++)
		CHECK(sb_map_get(&m, keys[i].b, keys[i].len) ==
		      (i < KEEP ? &vals[i] : NULL));
	for (uint32_t i = 0; i < KEEP; i++)
		CHECK(sb_map_del(&m, keys[i].b, keys[i].len) == &vals[i]);
	CHECK_EQ_SIZE(m.count, 0);
	/* usable again after emptying */
	CHECK_EQ_INT(sb_map_put(&m, keys[3].b, keys[3].len, &vals[3]), 0);
	CHECK(sb_map_get(&m, keys[3].b, keys[3].len) == &vals[3]);
	sb_map_release(&m);
}

static void test_hash(void)
{
	/* the same bytes hash the same, wherever they are */
	char a[] = "room-1", b[] = "room-1";

	CHECK(sb_hash(a, 6) == sb_hash(b, 6));
	CHECK(sb_hash("a", 1) != sb_hash("a\0", 2));
	CHECK(sb_hash("", 0) != sb_hash("\0", 1));
	CHECK(sb_hash("abcdefgh", 8) != sb_hash("abcdefgi", 8));
	CHECK(sb_hash("abcdefghi", 9) != sb_hash("abcdefghj", 9));
}

int main(void)
{
	RUN_TEST(test_empty_map);
	RUN_TEST(test_many_keys);
	RUN_TEST(test_nul_and_prefix_keys);
	RUN_TEST(test_random_against_model);
	RUN_TEST(test_clustered_deletes);
	RUN_TEST(test_iteration_visits_each_once);
	RUN_TEST(test_shrinks);
	RUN_TEST(test_hash);
	return check_summary();
}
