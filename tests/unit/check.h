/*
 * Assertions and a runner for the unit tests.
 *
 * The checks always run (they do not depend on NDEBUG, unlike assert()).  A
 * failed check prints file:line, the expression and both operands, names
 * the test that was running, and aborts: a test program stops at its first
 * failure, so ctest sees a crash.  A program that gets to the end prints
 * one "ok NAME" line per test and then "N passed, 0 failed".
 *
 * Each test program is one translation unit that includes this header once;
 * everything here is static.
 */
#ifndef SB_TEST_CHECK_H
#define SB_TEST_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The test now running, for the failure message; written by main only. */
static const char *check_current_test = "(none)";
static int check_passed_count;

static inline void check_fail_begin(const char *file, int line)
{
	fflush(stdout);
	fprintf(stderr, "%s:%d: check failed in test '%s'\n", file, line,
		check_current_test);
}

static inline void check_fail_end(void)
{
	fflush(stderr);
	abort();
}

/* Prints up to 256 bytes of p as a C-like string literal. */
static inline void check_print_bytes(const char *label, const void *p,
				     size_t len)
{
	const unsigned char *s = p;
	size_t shown = len < 256 ? len : 256;

	fprintf(stderr, "  %s (%zu bytes): \"", label, len);
	for (size_t i = 0; i < shown; i++) {
		if (s[i] == '"' || s[i] == '\\')
			fprintf(stderr, "\\%c", s[i]);
		else if (s[i] >= 0x20 && s[i] < 0x7f)
			fputc(s[i], stderr);
		else
			fprintf(stderr, "\\x%02x", s[i]);
	}
	fprintf(stderr, "\"%s\n", shown < len ? "..." : "");
}

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond)) {                                                \
			check_fail_begin(__FILE__, __LINE__);                 \
			fprintf(stderr, "  CHECK(%s)\n", #cond);              \
			check_fail_end();                                     \
		}                                                             \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                    \
	do {                                                                  \
		long long check_a_ = (long long)(a);                          \
		long long check_b_ = (long long)(b);                          \
		if (check_a_ != check_b_) {                                   \
			check_fail_begin(__FILE__, __LINE__);                 \
			fprintf(stderr, "  CHECK_EQ_INT(%s, %s)\n  %lld != %lld\n", \
				#a, #b, check_a_, check_b_);                  \
			check_fail_end();                                     \
		}                                                             \
	} while (0)

#define CHECK_EQ_SIZE(a, b)                                                   \
	do {                                                                  \
		size_t check_a_ = (size_t)(a);                                \
		size_t check_b_ = (size_t)(b);                                \
		if (check_a_ != check_b_) {                                   \
			check_fail_begin(__FILE__, __LINE__);                 \
			fprintf(stderr, "  CHECK_EQ_SIZE(%s, %s)\n  %zu != %zu\n", \
				#a, #b, check_a_, check_b_);                  \
			check_fail_end();                                     \
		}                                                             \
	} while (0)

#define CHECK_EQ_DOUBLE(a, b)                                                 \
	do {                                                                  \
		double check_a_ = (double)(a);                                \
		double check_b_ = (double)(b);                                \
		if (check_a_ != check_b_) {                                   \
			check_fail_begin(__FILE__, __LINE__);                 \
			fprintf(stderr, "  CHECK_EQ_DOUBLE(%s, %s)\n  %.17g != %.17g\n", \
				#a, #b, check_a_, check_b_);                  \
			check_fail_end();                                     \
		}                                                             \
	} while (0)

/* NUL-terminated strings; NULL is allowed and equals only NULL. */
#define CHECK_EQ_STR(a, b)                                                    \
	do {                                                                  \
		const char *check_a_ = (a);                                   \
		const char *check_b_ = (b);                                   \
		if ((check_a_ == NULL || check_b_ == NULL)                    \
			    ? check_a_ != check_b_                            \
			    : strcmp(check_a_, check_b_) != 0) {              \
			check_fail_begin(__FILE__, __LINE__);                 \
			fprintf(stderr, "  CHECK_EQ_STR(%s, %s)\n", #a, #b);  \
			if (check_a_)                                         \
				check_print_bytes("left", check_a_,           \
						  strlen(check_a_));          \
			else                                                  \
				fprintf(stderr, "  left: NULL\n");            \
			if (check_b_)                                         \
				check_print_bytes("right", check_b_,          \
						  strlen(check_b_));          \
			else                                                  \
				fprintf(stderr, "  right: NULL\n");           \
			check_fail_end();                                     \
		}                                                             \
	} while (0)

/* Byte strings with lengths: equal when the lengths and the bytes are. */
#define CHECK_EQ_MEM(a, alen, b, blen)                                        \
	do {                                                                  \
		const void *check_a_ = (a);                                   \
		const void *check_b_ = (b);                                   \
		size_t check_al_ = (size_t)(alen);                            \
		size_t check_bl_ = (size_t)(blen);                            \
		if (check_al_ != check_bl_ ||                                 \
		    (check_al_ && memcmp(check_a_, check_b_, check_al_))) {   \
			check_fail_begin(__FILE__, __LINE__);                 \
			fprintf(stderr, "  CHECK_EQ_MEM(%s, %s, %s, %s)\n",   \
				#a, #alen, #b, #blen);                        \
			check_print_bytes("left", check_a_, check_al_);       \
			check_print_bytes("right", check_b_, check_bl_);      \
			check_fail_end();                                     \
		}                                                             \
	} while (0)

/* Runs one test function and reports it. */
#define RUN_TEST(fn) check_run(#fn, fn)

static inline void check_run(const char *name, void (*fn)(void))
{
	check_current_test = name;
	fn();
	check_passed_count++;
	printf("ok %s\n", name);
	fflush(stdout);
	check_current_test = "(none)";
}

/* The last line of a test program that got to its end. */
static inline int check_summary(void)
{
	printf("%d passed, 0 failed\n", check_passed_count);
	fflush(stdout);
	return 0;
}

/*
 * A small deterministic generator (xorshift64*) so that randomized tests
 * repeat exactly.  check_seed() takes SB_TEST_SEED from the environment when
 * set, and prints the seed in use so a failure can be replayed.
 */
struct check_rng {
	uint64_t s;
};

static inline void check_rng_init(struct check_rng *r, uint64_t seed)
{
	r->s = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

static inline uint64_t check_rng_next(struct check_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

/* Uniform enough in [0, n) for test purposes; n > 0. */
static inline uint32_t check_rng_below(struct check_rng *r, uint32_t n)
{
	return (uint32_t)((check_rng_next(r) >> 32) % n);
}

static inline uint64_t check_seed(uint64_t fallback)
{
	const char *env = getenv("SB_TEST_SEED");
	uint64_t seed = fallback;

	if (env && *env)
		seed = strtoull(env, NULL, 0);
	printf("seed %llu (set SB_TEST_SEED to replay)\n",
	       (unsigned long long)seed);
	return seed;
}

#endif
