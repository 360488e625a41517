/*
 * A growable byte buffer with a hard maximum, for building text: JSON
 * events, /metrics and other HTTP bodies.
 * Appends after a failure are no-ops, so a caller may append a whole
 * document and check sb_buf_failed() once at the end.
 * Not synchronized: one owner.
 */
#ifndef SB_BUF_H
#define SB_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct sb_buf {
	char *p;
	size_t len, cap, max;
	bool failed;	/* out of memory or over max */
};

void sb_buf_init(struct sb_buf *b, size_t max);
void sb_buf_release(struct sb_buf *b);
void sb_buf_reset(struct sb_buf *b);	/* len 0, not failed; keeps memory */

void sb_buf_add(struct sb_buf *b, const void *data, size_t len);
void sb_buf_adds(struct sb_buf *b, const char *s);	/* NUL-terminated */

/* Appends data as a JSON string literal with its quotes.  data must be
 * valid UTF-8; '"', '\\' and control characters are escaped. */
void sb_buf_add_jstr(struct sb_buf *b, const char *data, size_t len);

static inline bool sb_buf_failed(const struct sb_buf *b)
{
	return b->failed;
}

#endif
