/*
 * What the fuzz targets share: a check that says what failed and aborts (so
 * that libFuzzer keeps the input as a crash, like any sanitizer report), and
 * a chunker that cuts a byte stream into pieces the way reads from a socket
 * might, driven by one byte of the input so that the fuzzer explores the
 * cuts as well as the bytes.
 */
#ifndef SB_FUZZ_H
#define SB_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SB_FUZZ_CHECK(cond, ...)                                              \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__,\
				__LINE__, #cond);                             \
			fprintf(stderr, __VA_ARGS__);                         \
			fputc('\n', stderr);                                  \
			abort();                                              \
		}                                                             \
	} while (0)

struct sb_fuzz_chunks {
	uint32_t rng;		/* xorshift32 state; 0: one piece */
	size_t max;		/* the largest piece */
};

/* sel 0: the whole stream in one piece; otherwise pieces of 1 to
 * 2^(sel % 12) bytes, their sizes drawn from a generator seeded by sel. */
static inline void sb_fuzz_chunks_init(struct sb_fuzz_chunks *c, uint8_t sel)
{
	c->rng = sel ? (uint32_t)sel * 2654435761u : 0;
	c->max = (size_t)1 << (sel % 12);
}

/* The size of the next piece, 1 to left (left > 0). */
static inline size_t sb_fuzz_chunk(struct sb_fuzz_chunks *c, size_t left)
{
	size_t n;

	if (!c->rng)
		return left;
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 17;
	c->rng ^= c->rng << 5;
	n = 1 + c->rng % c->max;
	return n < left ? n : left;
}

#endif
