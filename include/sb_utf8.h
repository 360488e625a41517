/*
 * Incremental UTF-8 validation (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), for text that arrives in pieces.
 */
#ifndef SB_UTF8_H
#define SB_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sb_utf8 {
	uint8_t need;	/* continuation bytes still owed */
	uint8_t lo, hi;	/* the range the next continuation byte must be in */
};

static inline void sb_utf8_init(struct sb_utf8 *u)
{
	u->need = 0;
	u->lo = 0x80;
	u->hi = 0xbf;
}

/* Feeds n more bytes; false as soon as they cannot be UTF-8 (the state is
 * then meaningless until sb_utf8_init). */
bool sb_utf8_feed(struct sb_utf8 *u, const void *data, size_t n);

/* True when the text so far ends on a character boundary. */
static inline bool sb_utf8_complete(const struct sb_utf8 *u)
{
	return u->need == 0;
}

#endif
